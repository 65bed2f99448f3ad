"""Fixtures for the window tests: one random model per run (FOR TESTS ONLY), and windows with their own settings
file and sessions folder, no camera, closed (threads stopped) at teardown."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from app.ui.controllers.sessions import SESSIONS_ENV


@pytest.fixture(scope="session")
def random_weights(random_gray_model) -> Path:
    return random_gray_model


@pytest.fixture
def sessions(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "sessions"
    monkeypatch.setenv(SESSIONS_ENV, str(folder))
    return folder


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch, sessions, random_weights):
    from PySide6.QtCore import QSettings

    from app.ui.widgets import main_window
    from app.ui.state.options import WindowOptions

    # no camera on a CI machine, and the test must not depend on one being there
    monkeypatch.setattr(main_window, "list_cameras", lambda *a, **k: [])
    windows = []

    def make(video: Path | None = None, weights: Path | None | str = "random", fast: bool = False, **args):
        store = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
        options = WindowOptions(video=video, weights=random_weights if weights == "random" else weights,
                                device="cpu", **args)
        w = main_window.MainWindow(options, store)
        qtbot.addWidget(w)
        if fast:
            w.set_speed_fast()
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
        assert w.threads_running() == []


@pytest.fixture
def xvfb_display():
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 "
                    "libxcb-render-util0 libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0 libxcb-shape0 "
                    "libxcb-cursor0")
    read_end, write_end = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it here once it accepts connections
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as f:
            number = f.readline().strip()
        if not number:
            pytest.fail(f"Xvfb did not start: {proc.stderr.read().decode(errors='replace')[-500:]}")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)
