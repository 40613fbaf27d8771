"""The window's actions, menus and toolbar, declared in one place.

Shortcuts come from ``QKeySequence`` standard keys where the platform has one (so a Mac
gets Cmd+O and Linux Ctrl+O), with a fixed fallback where it has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from gui.resources import icon

if TYPE_CHECKING:
    from gui.main_window import MainWindow

Std = QKeySequence.StandardKey


@dataclass
class Actions:
    open: QAction
    open_sample: QAction
    clear_recent: QAction
    save: QAction
    save_as: QAction
    export: QAction
    export_as: QAction
    export_animation: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    select_all: QAction
    deselect: QAction
    square_lock: QAction
    zoom_in: QAction
    zoom_out: QAction
    fit: QAction
    actual_size: QAction
    compare: QAction
    crop: QAction
    crop_square: QAction
    rotate_cw: QAction
    rotate_ccw: QAction
    flip_horizontal: QAction
    flip_vertical: QAction
    resize: QAction
    open_model: QAction
    about: QAction

    def image_actions(self) -> list[QAction]:
        """Actions that need an open image."""
        return [
            self.export, self.export_as, self.select_all, self.zoom_in, self.zoom_out, self.fit,
            self.actual_size, self.compare, self.crop_square, self.rotate_cw, self.rotate_ccw,
            self.flip_horizontal, self.flip_vertical, self.resize,
        ]

    def latent_actions(self) -> list[QAction]:
        """Actions that need a latent behind the image (a generated sample, an opened document)."""
        return [self.save, self.save_as, self.export_animation]


def _action(
    window: MainWindow,
    text: str,
    slot: Callable[[], object] | None = None,
    shortcut: Std | str | None = None,
    fallback: str | None = None,
    icon_name: str | None = None,
    tip: str | None = None,
    checkable: bool = False,
) -> QAction:
    action = QAction(text, window)
    if isinstance(shortcut, Std):
        keys = QKeySequence.keyBindings(shortcut)
        action.setShortcuts(keys if keys else [QKeySequence(fallback)] if fallback else [])
    elif shortcut:
        action.setShortcut(QKeySequence(shortcut))
    if icon_name:
        action.setIcon(icon(icon_name))
    if tip:
        action.setStatusTip(tip)
    action.setCheckable(checkable)
    if slot is not None:
        (action.toggled if checkable else action.triggered).connect(lambda *_: slot())
    return action


def build_actions(window: MainWindow) -> Actions:
    canvas, stack, files = window.canvas, window.document.undo_stack, window.files
    undo = stack.createUndoAction(window, "&Undo")
    undo.setShortcuts(QKeySequence.keyBindings(Std.Undo))
    undo.setIcon(icon("undo"))
    redo = stack.createRedoAction(window, "&Redo")
    redo.setShortcuts(QKeySequence.keyBindings(Std.Redo))
    redo.setIcon(icon("redo"))
    compare = _action(window, "&Compare Before/After", None, "Y", icon_name="compare", checkable=True,
                      tip="Split the view: the image before the last change on the left, now on the right")
    compare.toggled.connect(canvas.set_compare)
    canvas.compareChanged.connect(compare.setChecked)
    square_lock = _action(window, "&Square Selection", None, "S", icon_name="square", checkable=True,
                          tip="Keep the selection square (GAN inputs are square); Shift does it for one drag")
    square_lock.toggled.connect(lambda on: setattr(canvas, "square_lock", on))
    actions = Actions(
        open=_action(window, "&Open…", files.open_dialog, Std.Open, "Ctrl+O", "open",
                     "Open an image or a GANvas document (.ganvas)"),
        open_sample=_action(window, "Open &Sample", window.open_sample, tip="Open the sample picture"),
        clear_recent=_action(window, "&Clear Recent", files.clear_recent),
        save=_action(window, "&Save", files.save, Std.Save, "Ctrl+S",
                     "Save the document (latent, edits, model reference) as .ganvas, to reopen it exactly"),
        save_as=_action(window, "Save &As…", files.save_as, Std.SaveAs, "Ctrl+Shift+S",
                        tip="Save the document as a new .ganvas file"),
        # GIMP's keys: Save keeps the editable document, Export writes pixels.
        export=_action(window, "&Export", files.export, "Ctrl+E", icon_name="save",
                       tip="Write the image to the file last exported to (asks the first time)"),
        export_as=_action(window, "Export &As…", files.export_as, "Ctrl+Shift+E",
                          tip="Write the image as PNG or JPEG"),
        export_animation=_action(window, "Export A&nimation…", files.export_animation,
                                 tip="Sweep a direction or the interpolation into a GIF or MP4"),
        quit=_action(window, "&Quit", window.close, Std.Quit, "Ctrl+Q"),
        undo=undo,
        redo=redo,
        select_all=_action(window, "Select &All", canvas.select_all, Std.SelectAll, "Ctrl+A"),
        deselect=_action(window, "&Deselect", lambda: canvas.set_selection(None), Std.Deselect, "Ctrl+Shift+A"),
        square_lock=square_lock,
        zoom_in=_action(window, "Zoom &In", canvas.zoom_in, Std.ZoomIn, "Ctrl++", "zoom-in"),
        zoom_out=_action(window, "Zoom &Out", canvas.zoom_out, Std.ZoomOut, "Ctrl+-", "zoom-out"),
        fit=_action(window, "&Fit to Window", canvas.fit, "Ctrl+0", icon_name="fit"),
        actual_size=_action(window, "&Actual Size (100 %)", canvas.actual_size, "Ctrl+1", icon_name="actual-size"),
        compare=compare,
        crop=_action(window, "&Crop to Selection", window.edits.crop_to_selection, "Ctrl+Shift+X", icon_name="crop",
                     tip="Cut the image to the selected rectangle"),
        crop_square=_action(window, "Crop to Centre &Square", window.edits.crop_to_square,
                            tip="Cut the largest centred square out of the image"),
        rotate_cw=_action(window, "Rotate 90° &Clockwise", lambda: window.edits.rotate(True), "Ctrl+R",
                          icon_name="rotate-cw"),
        rotate_ccw=_action(window, "Rotate 90° C&ounter-clockwise", lambda: window.edits.rotate(False), "Ctrl+Shift+R",
                           icon_name="rotate-ccw"),
        flip_horizontal=_action(window, "Flip &Horizontal", lambda: window.edits.flip(True), icon_name="flip-h"),
        flip_vertical=_action(window, "Flip &Vertical", lambda: window.edits.flip(False), icon_name="flip-v"),
        resize=_action(window, "&Resize…", window.resize_dialog, "Ctrl+Alt+I", icon_name="resize"),
        # The Model menu's own logic lives in gui/model_menu.py, built after the actions.
        open_model=_action(window, "Open &Checkpoint…", lambda: window.model_menu.open_dialog(), "Ctrl+Shift+O",
                           tip="Load a generator from a .pkl, .pt, .pth or .safetensors file"),
        about=_action(window, "&About GANvas", window.show_about),
    )
    actions.about.setMenuRole(QAction.MenuRole.AboutRole)
    actions.quit.setMenuRole(QAction.MenuRole.QuitRole)
    return actions


def build_menus(window: MainWindow, a: Actions) -> tuple[QMenu, QMenu, QMenu]:
    """Fill the menu bar; return the Open Recent, the Panels and the Model menus (filled later)."""
    bar = window.menuBar()
    file = bar.addMenu("&File")
    file.addActions([a.open, a.open_sample])
    recent = file.addMenu("Open &Recent")
    file.addSeparator()
    file.addActions([a.save, a.save_as])
    file.addSeparator()
    file.addActions([a.export, a.export_as, a.export_animation])
    file.addSeparator()
    file.addAction(a.quit)

    edit = bar.addMenu("&Edit")
    edit.addActions([a.undo, a.redo])
    edit.addSeparator()
    edit.addActions([a.select_all, a.deselect, a.square_lock])

    view = bar.addMenu("&View")
    view.addActions([a.zoom_in, a.zoom_out, a.fit, a.actual_size])
    view.addSeparator()
    view.addAction(a.compare)
    hold = view.addAction("Hold \\ to See the Before Image")
    hold.setEnabled(False)  # a reminder: a held key cannot be a menu action
    view.addSeparator()
    panels = view.addMenu("&Panels")

    image = bar.addMenu("&Image")
    image.addActions([a.crop, a.crop_square])
    image.addSeparator()
    image.addActions([a.rotate_cw, a.rotate_ccw, a.flip_horizontal, a.flip_vertical])
    image.addSeparator()
    image.addAction(a.resize)

    model = bar.addMenu("&Model")
    model.addAction(a.open_model)

    bar.addMenu("&Help").addAction(a.about)
    return recent, panels, model


def build_toolbar(window: MainWindow, a: Actions) -> QToolBar:
    bar = QToolBar("Tools", window)
    bar.setObjectName("main-toolbar")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    groups = (
        [a.open, a.export],
        [a.undo, a.redo],
        [a.zoom_out, a.zoom_in, a.fit, a.actual_size],
        [a.compare, a.square_lock, a.crop],
        [a.rotate_ccw, a.rotate_cw, a.flip_horizontal, a.flip_vertical, a.resize],
    )
    for index, group in enumerate(groups):
        if index:
            bar.addSeparator()
        for action in group:
            bar.addAction(action)
            if not action.toolTip() or action.toolTip() == action.text().replace("&", ""):
                keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                label = action.text().replace("&", "").rstrip("…")
                action.setToolTip(f"{label} ({keys})" if keys else label)
    return bar
