"""GANvas desktop front end (PySide6): the window, the canvas, undo/redo and the job thread.

The GUI holds no image maths: it observes a :class:`gui.document.Document`, runs
``engine`` functions on one worker thread through :class:`gui.jobs.JobRunner`, and shows
their progress, previews and results.
"""

from __future__ import annotations

import sys


def _check_signal_refcounts() -> None:
    """Refuse a PySide6 build whose ``Signal.emit()`` loses a reference to ``True``.

    PySide6 6.12.0 on Python < 3.12 does: every emit from Python drops one reference,
    and after a few thousand signals the interpreter aborts ("bool_dealloc"). Since
    3.12, ``True`` is immortal and the bug is harmless, so only older Pythons probe.
    """
    if sys.version_info >= (3, 12):
        return
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe, emits = _Probe(), 16
    before = sys.getrefcount(True)
    for _ in range(emits):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost >= emits // 2:
        import ctypes

        for _ in range(lost):  # give back what the probe took, so the exit below is clean
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
        raise ImportError(
            f"PySide6 {pyside_version} loses a reference to True on every Signal.emit() under "
            f"Python {sys.version_info.major}.{sys.version_info.minor}, which crashes the app; "
            f"install another version, e.g. pip install 'PySide6-Essentials==6.11.3'. Got: {pyside_version}"
        )


_check_signal_refcounts()
