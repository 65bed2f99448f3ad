"""The application around the window: a file's window session equals its headless export, and the stop signals
(run_app's handlers) close the window like its close button."""
from __future__ import annotations

import time

import pytest

from app.timeline.formats import read_session

pytestmark = pytest.mark.qt

TIMEOUT_MS = 60_000  # generous: two shared cores, a model and MediaPipe starting


def headless_rows(video, weights, tmp_path):
    """The rows `python main.py --video X --export Y --no-window` writes for the same file and model."""
    import subprocess
    import sys

    from app.paths import ROOT

    out = tmp_path / "headless.csv"
    proc = subprocess.run([sys.executable, "main.py", "--video", str(video), "--export", str(out), "--no-window",
                           "--quiet", "--weights", str(weights), "--device", "cpu"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return read_session(out)[1]


@pytest.mark.data
def test_a_files_window_session_equals_its_headless_export(make_window, videos, random_weights, tmp_path, qtbot,
                                                           monkeypatch):
    """A file waits for the model to load, every frame is analysed, and the session is row for row the headless
    export of the same file."""
    from app.pipeline import Pipeline

    init = Pipeline.__init__

    def slow_load(self, *a, **k):
        time.sleep(1.5)  # a model that takes a while to load (the shipped one takes ~2 s)
        init(self, *a, **k)

    monkeypatch.setattr(Pipeline, "__init__", slow_load)
    video = videos / "single_face.mp4"
    w = make_window(video)  # real time, 1x
    saved = []
    w.session_saved.connect(saved.append)
    qtbot.waitUntil(lambda: bool(saved), timeout=TIMEOUT_MS)
    csv_path, json_path = saved[0]
    window_rows = read_session(csv_path)[1]
    meta, json_rows = read_session(json_path)
    assert window_rows == json_rows and meta["source"] == str(video)
    assert window_rows[0].frame_index == 0
    assert window_rows == headless_rows(video, random_weights, tmp_path)


@pytest.fixture
def display_env(request) -> dict:
    """The environment for a window in a child process: a private Xvfb display (xcb) where Xvfb is installed, as CI
    has it, else offscreen."""
    import shutil

    if shutil.which("Xvfb") is None:
        return {"QT_QPA_PLATFORM": "offscreen"}
    return {"QT_QPA_PLATFORM": "xcb", "DISPLAY": request.getfixturevalue("xvfb_display")}


@pytest.mark.data
@pytest.mark.parametrize("name, to_end", [("single_face.mp4", True), ("WolfgangLanger_Pexels.mp4", False)],
                         ids=["played-to-the-end", "mid-file"])
def test_sigterm_closes_the_window_like_its_close_button(videos, random_weights, tmp_path, display_env, name, to_end):
    """`python main.py --video FILE` closed with SIGTERM (a `kill`, a logout) leaves a CSV and a JSON, not only the
    journal, whose rows are the headless export's: all of them when the file was played to its end, those up to
    the kill otherwise."""
    import os
    import signal
    import subprocess
    import sys

    from app.paths import ROOT

    sessions = tmp_path / "sessions"
    env = {**os.environ, **display_env, "FANLIVE_SESSIONS_DIR": str(sessions),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}  # the user's own settings stay untouched
    video = videos / name
    proc = subprocess.Popen([sys.executable, "main.py", "--video", str(video), "--weights", str(random_weights),
                             "--device", "cpu"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def ready() -> bool:
        if not sessions.is_dir():
            return False
        if to_end:  # the file's session is saved when its last frame is analysed (not the journal's own JSON)
            return any(".partial" not in p.name for p in sessions.glob("*.json"))
        journals = list(sessions.glob("*.partial.csv"))
        return bool(journals) and len(journals[0].read_text().splitlines()) > 20

    try:
        deadline = time.monotonic() + 180
        while not ready():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the window recorded nothing in 180 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not list(sessions.glob("*.partial*")) and not list(sessions.glob("*.tmp"))
    (csv_path,) = sessions.glob("*.csv")
    (json_path,) = sessions.glob("*.json")
    rows = read_session(csv_path)[1]
    assert len(rows) >= 20 and read_session(json_path)[1] == rows  # ready() waited for a header + 20 rows
    headless = headless_rows(video, random_weights, tmp_path)
    assert rows == (headless if to_end else headless[: len(rows)])
