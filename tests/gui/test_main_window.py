"""The main window end to end: files, Image menu with undo/redo, errors, jobs, settings, About."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRect, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QScrollArea

from engine import __version__
from engine.images import Image, load_image
from engine.jobs import Job
from gui.main_window import MainWindow
from gui.settings import Settings, open_settings
from gui.theme import apply_theme
from tests.conftest import gradient_rgb
from tests.gui.helpers import open_via_menu


def test_open_through_the_file_menu(window, qtbot, write_image, monkeypatch):
    path = write_image("photo.png")
    open_via_menu(qtbot, window, path, monkeypatch)
    np.testing.assert_array_equal(window.document.image.rgb, gradient_rgb())
    assert window.size_label.text() == "64 × 48 px"
    assert window.windowTitle() == "photo.png[*] — GANvas"
    assert window.canvas.item.after.size().width() == 64
    assert window.act.rotate_cw.isEnabled()


def test_image_actions_wait_for_an_image(window):
    assert not window.act.rotate_cw.isEnabled() and not window.act.export.isEnabled()
    assert window.size_label.text() == "No image"


def test_open_sample(window, qtbot):
    with qtbot.waitSignal(window.imageOpened, timeout=10000):
        window.act.open_sample.trigger()
    image = window.document.image
    assert image.width > 256 and image.height > 256 and image.rgb.std() > 10  # a real picture


def file_mime(path: Path) -> QMimeData:
    """What a file manager puts on a drag; the caller keeps it alive while events use it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


def drop_event(mime: QMimeData, kind=QDropEvent):
    if kind is QDragEnterEvent:
        return QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                               Qt.KeyboardModifier.NoModifier)
    return QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)


def test_drop_an_image_file_on_the_canvas(window, qtbot, write_image):
    path = write_image("dropped.jpg", quality=98)
    mime = file_mime(path)
    enter = drop_event(mime, QDragEnterEvent)
    QApplication.sendEvent(window.canvas.viewport(), enter)  # reaches the window, which accepts drops
    assert enter.isAccepted()
    with qtbot.waitSignal(window.imageOpened, timeout=10000) as blocker:
        QApplication.sendEvent(window.canvas.viewport(), drop_event(mime))
    assert blocker.args == [path]
    assert window.document.image.rgb.shape == (48, 64, 3)


def test_drop_of_a_non_image_is_refused(window, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    mime = file_mime(notes)
    enter = drop_event(mime, QDragEnterEvent)
    QApplication.sendEvent(window.canvas.viewport(), enter)
    assert not enter.isAccepted()


@pytest.fixture
def opened(window, qtbot, write_image, monkeypatch) -> np.ndarray:
    open_via_menu(qtbot, window, write_image("photo.png"), monkeypatch)
    return gradient_rgb()


def undo_redo(window, before: np.ndarray, after: np.ndarray) -> None:
    np.testing.assert_array_equal(window.document.image.rgb, after)
    np.testing.assert_array_equal(window.document.before.rgb, before)
    window.act.undo.trigger()
    np.testing.assert_array_equal(window.document.image.rgb, before)
    window.act.redo.trigger()
    np.testing.assert_array_equal(window.document.image.rgb, after)


@pytest.mark.parametrize(
    "action, expected",
    [
        ("rotate_cw", lambda a: np.rot90(a, -1)),
        ("rotate_ccw", lambda a: np.rot90(a, 1)),
        ("flip_horizontal", lambda a: a[:, ::-1]),
        ("flip_vertical", lambda a: a[::-1]),
    ],
)
def test_rotate_and_flip_are_undoable(window, opened, action, expected):
    getattr(window.act, action).trigger()
    undo_redo(window, opened, expected(opened))
    assert window.canvas.compare  # each edit is shown against the state before it
    assert window.document.modified and window.isWindowModified()


def test_crop_to_selection_is_undoable(window, opened):
    window.canvas.set_selection(QRect(5, 7, 30, 20))
    window.act.crop.trigger()
    undo_redo(window, opened, opened[7:27, 5:35])
    assert window.size_label.text() == "30 × 20 px"
    assert window.canvas.selection() is None


def test_crop_to_centre_square(window, opened):
    window.act.crop_square.trigger()
    undo_redo(window, opened, opened[:, 8:56])


def test_resize_dialog_result_is_an_undoable_job(window, qtbot, opened, monkeypatch):
    monkeypatch.setattr(window, "ask_resize", lambda w, h: (w // 2, h // 2))
    with qtbot.waitSignal(window.document.stateChanged, timeout=10000):
        window.act.resize.trigger()
    # Halving by area averaging: each output pixel is the mean of a 2 x 2 block.
    blocks = opened.astype(np.float64).reshape(24, 2, 32, 2, 3).mean(axis=(1, 3))
    result = window.document.image.rgb
    assert result.shape == (24, 32, 3)
    assert np.abs(result.astype(np.float64) - blocks).max() <= 1.0
    undo_redo(window, opened, result)


def test_stale_job_result_is_dropped(window, qtbot, opened):
    revision = window.document.revision
    window.act.flip_vertical.trigger()  # the user edits while the job runs
    assert not window.edits.apply_result(Image(opened[:10, :10]), "Late result", revision)
    assert window.document.image.rgb.shape == (48, 64, 3)
    assert "dropped" in window.statusBar().currentMessage()


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("truncated.jpg", "truncated", "corrupt or truncated"),
        ("text.png", b"this is not a picture\n", "not an image file"),
        ("empty.png", b"", "empty (0 bytes)"),
        ("huge.png", "huge", "above the limit"),
    ],
)
def test_bad_image_shows_error_and_keeps_previous_image(window, qtbot, opened, write_image, tmp_path,
                                                        settings, name, content, expected):
    path = tmp_path / name
    if content == "truncated":
        data = write_image("whole.jpg", gradient_rgb(256, 256)).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "huge":
        write_image(name, gradient_rgb(100, 100))
        settings.set_max_pixels(5000)
    else:
        path.write_bytes(content)
    previous = window.document.image
    with qtbot.waitSignal(window.errorShown, timeout=10000) as blocker:
        window.open_path(path)
    title, message = blocker.args
    assert expected in message and name in message and name in title
    assert window.last_error_box is not None and window.last_error_box.isVisible()
    assert expected in window.last_error_box.text()
    assert window.document.image is previous and window.isVisible()
    assert window.canvas.item.after.width() == 64  # still painting the previous image
    window.last_error_box.close()


def test_recent_files_persist_across_windows(window, qtbot, write_image, monkeypatch, settings_path):
    first, second = write_image("first.png"), write_image("second.png")
    open_via_menu(qtbot, window, first, monkeypatch)
    open_via_menu(qtbot, window, second, monkeypatch)
    assert window.settings.recent_files() == [second.resolve(), first.resolve()]

    later = MainWindow(Settings(open_settings(settings_path)))  # a new session on the same file
    try:
        later.recent_menu.aboutToShow.emit()
        names = [a.text() for a in later.recent_menu.actions() if a.text() and "Clear" not in a.text()]
        assert names == ["&1  second.png", "&2  first.png"]
        with qtbot.waitSignal(later.imageOpened, timeout=10000) as blocker:
            later.recent_menu.actions()[1].trigger()
        assert blocker.args == [first.resolve()]
        later.act.clear_recent.trigger()
        assert Settings(open_settings(settings_path)).recent_files() == []
    finally:
        later.close()


def test_window_geometry_persists(qtbot, qapp, settings_path):
    first = MainWindow(Settings(open_settings(settings_path)))
    first.resize(700, 520)  # inside the offscreen screen (800 x 600), which restoring clamps to
    first.show()
    qtbot.waitExposed(first)
    first.close()
    second = MainWindow(Settings(open_settings(settings_path)))
    try:
        assert (second.width(), second.height()) == (700, 520)
    finally:
        second.close()


def test_export_png_and_jpeg(window, qtbot, opened, tmp_path, monkeypatch, settings):
    window.act.rotate_cw.trigger()
    png = tmp_path / "out.png"
    monkeypatch.setattr(window, "choose_save_path", lambda suggestion: png)
    with qtbot.waitSignal(window.exported, timeout=10000):
        window.act.export_as.trigger()
    np.testing.assert_array_equal(load_image(png).rgb, np.rot90(opened, -1))
    assert not window.document.modified

    jpeg, asked = tmp_path / "out.jpg", []
    monkeypatch.setattr(window, "choose_save_path", lambda suggestion: jpeg)
    monkeypatch.setattr(window, "ask_jpeg_quality", lambda default: asked.append(default) or 70)
    with qtbot.waitSignal(window.exported, timeout=10000):
        window.act.export_as.trigger()
    assert asked == [92] and settings.jpeg_quality() == 70
    written = load_image(jpeg).rgb
    assert written.shape == (64, 48, 3)
    assert np.abs(written.astype(int) - np.rot90(opened, -1)).mean() < 12

    jpeg.unlink()
    with qtbot.waitSignal(window.exported, timeout=10000):
        window.act.export.trigger()  # Export again: same file, no questions
    assert jpeg.exists() and len(asked) == 1


def test_cancelling_a_previewing_job_leaves_the_document_unchanged(window, qtbot, opened):
    """A real multi-step blur over the image: live previews, then Cancel in the job area."""
    done, ticks = [], []

    def blur(rgb, steps, progress=None, cancel=None):
        job = Job(steps, progress, cancel)
        out = np.repeat(np.repeat(rgb.astype(np.float32), 8, 0), 8, 1)  # 384 x 512: a few ms a round
        for step in range(1, steps + 1):
            out = (out + np.roll(out, 1, 0) + np.roll(out, -1, 0) + np.roll(out, 1, 1) + np.roll(out, -1, 1)) / 5
            job.step(step, f"round {step}", preview=out / 255.0)
            done.append(step)
        return Image(out.astype(np.uint8))

    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    image, history = window.document.image, window.document.undo_stack.count()
    revision, shown = window.document.revision, window.canvas.image_rect()
    window.runner.submit(blur, opened, 100000, title="Blur",
                         on_result=lambda result: window.edits.apply_result(result, "Blur", revision))
    qtbot.waitUntil(lambda: window.canvas.previewing and len(done) > 3 and len(ticks) >= 3, timeout=10000)
    assert window.runner.busy  # the timer ticked while the job ran
    assert window.canvas.item.after.width() == 512  # the preview, not the document image...
    assert window.canvas.image_rect() == shown  # ...stretched over it: the view does not jump
    assert window.job_area.cancel_button.isVisible() and window.job_area.progress.isVisible()
    assert window.job_area.label.text().startswith("Blur: round")
    qtbot.mouseClick(window.job_area.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=5000)
    timer.stop()
    assert window.job_area.label.text() == "Cancelled: Blur"
    assert "Cancelled" in window.statusBar().currentMessage()
    assert not window.job_area.cancel_button.isVisible()
    assert not window.canvas.previewing and window.canvas.item.after.width() == 64
    assert window.document.image is image and window.document.undo_stack.count() == history


def test_device_is_picked_on_the_worker_and_shown(window, qtbot):
    with qtbot.waitSignal(window.deviceChanged, timeout=60000) as blocker:
        window.start_device_job("cpu")
    assert blocker.args[0].device.type == "cpu"
    assert window.device_label.text().startswith("Device: CPU")


def test_about_box_shows_version_and_credits(window, qtbot):
    window.act.about.trigger()
    dialog = window.about_dialog
    qtbot.waitUntil(dialog.isVisible)
    texts = [label.text() for label in dialog.findChildren(QLabel)]
    assert f"GANvas {__version__}" in texts
    credits = dialog.credits.toPlainText()
    assert "PySide6" in credits and "Models and data" in credits
    assert "Pablo Stanley" in credits and "DiceBear" in credits  # the house generator's data
    dialog.close()


def test_panels_dock_on_the_right_and_tab_together(window, qtbot):
    first = window.add_panel("Extra one", QLabel("one"))
    second = window.add_panel("Extra two", QLabel("two"))
    for dock in (first, second):
        assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    qtbot.waitUntil(lambda: second in window.tabifiedDockWidgets(first))
    titles = [a.text() for a in window.panels_menu.actions()]
    assert titles[:3] == ["History", "Generate", "Edit"] and titles[-2:] == ["Extra one", "Extra two"]
    assert len(window.findChildren(QDockWidget)) == len(titles)


DOCK_WIDTH = 282  # px: the right docks of a 1280 x 900 window, as a saved layout has them


@pytest.fixture
def large_window(qtbot, qapp, settings: Settings):
    """A main window first shown at 1280 x 900 (the docks take their width when first shown)."""
    apply_theme(qapp)
    win = MainWindow(settings)
    win.confirm_discard = lambda: True
    win.resize(1280, 900)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
    win.runner.shutdown()
    win.deleteLater()


def test_every_panel_fits_its_dock_without_scrolling_sideways(large_window, qtbot, one_torch_thread):
    """With house-gan loaded and the docks DOCK_WIDTH wide, no panel is wider than its dock: the panels
    scroll up and down only, so anything wider would be cut off at the right edge. Room is kept for
    the vertical scroll bar, which a panel gets as soon as it grows taller than the dock."""
    window = large_window
    with qtbot.waitSignal(window.model.loaded, timeout=30000):
        window.model.load("house-gan")
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30000)
    docks = window.findChildren(QDockWidget)
    assert {d.windowTitle() for d in docks} == {"History", "Generate", "Edit", "Invert", "Upscale", "Sketch"}
    window.resizeDocks(docks, [DOCK_WIDTH] * len(docks), Qt.Orientation.Horizontal)
    too_wide = []
    for dock in docks:
        dock.raise_()
        qtbot.wait(50)  # the Upscale panel loads its model when first shown
        qtbot.waitUntil(lambda: not window.runner.busy, timeout=30000)
        assert dock.width() == DOCK_WIDTH
        panel = dock.widget()
        scroll = panel.findChild(QScrollArea, options=Qt.FindChildOption.FindDirectChildrenOnly)
        if scroll is None:
            content, room = panel, panel.width()
        else:
            content, room = scroll.widget(), scroll.viewport().width()
            bar = scroll.verticalScrollBar()
            if not bar.isVisible():
                room -= bar.sizeHint().width()
        needed = content.minimumSizeHint().width()
        if needed > room:
            too_wide.append(f"{dock.windowTitle()}: {needed} px in {room} px")
    assert window.upscale_panel.picker.loaded is not None  # the model's facts were measured too
    assert not too_wide


def test_standard_shortcuts(window):
    def first_key(standard):
        return QKeySequence.keyBindings(standard)[0]

    a = window.act
    assert a.open.shortcut() == first_key(QKeySequence.StandardKey.Open)
    assert a.undo.shortcut() == first_key(QKeySequence.StandardKey.Undo)
    assert a.redo.shortcut() == first_key(QKeySequence.StandardKey.Redo)
    assert a.zoom_in.shortcut() == first_key(QKeySequence.StandardKey.ZoomIn)
    assert a.save.shortcut() == first_key(QKeySequence.StandardKey.Save)
    assert a.save_as.shortcut() == first_key(QKeySequence.StandardKey.SaveAs)
    assert not a.quit.shortcut().isEmpty()


def test_unsaved_changes_can_veto_opening(window, qtbot, opened, write_image, monkeypatch):
    window.act.flip_vertical.trigger()
    monkeypatch.setattr(window, "confirm_discard", lambda: False)
    assert window.open_path(write_image("other.png")) is None
    assert not window.runner.busy
    np.testing.assert_array_equal(window.document.image.rgb, opened[::-1])
