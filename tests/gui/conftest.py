"""Qt fixtures: private settings for every test, and a themed main window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from gui.main_window import MainWindow
from gui.settings import Settings, open_settings
from gui.theme import apply_theme


@pytest.fixture(autouse=True)
def private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every QSettings a test could create at tmp_path, never at the user's settings."""
    monkeypatch.setenv("GANVAS_SETTINGS", str(tmp_path / "env-settings.ini"))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(tmp_path / "qsettings"))


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def settings(settings_path: Path) -> Settings:
    return Settings(open_settings(settings_path))


@pytest.fixture
def window(qtbot, qapp, settings: Settings):
    """A shown 960 x 680 main window; closed (worker stopped) after the test."""
    apply_theme(qapp)
    win = MainWindow(settings)
    win.confirm_discard = lambda: True  # the unsaved-changes question would block teardown
    win.resize(960, 680)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.confirm_discard = lambda: True  # a test may have patched it to refuse
    win.close()
    stopped = not win.runner._thread.isRunning()
    win.runner.shutdown()
    win.deleteLater()
    assert stopped, "closing the window must stop the worker thread"

