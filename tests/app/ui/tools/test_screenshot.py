"""The real window on a real (virtual) X display: a screenshot mid-replay is not blank and its video area shows the
frame the window says it is showing. Runs `python -m app.ui.tools.screenshot` in a child process on the xcb platform
(this test process is already offscreen) under a private Xvfb server (tests/app/ui/conftest.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from app.capture.sources import open_source
from app.paths import ROOT

pytestmark = [pytest.mark.qt, pytest.mark.data]


def test_real_window_screenshot_mid_replay(xvfb_display, videos, random_weights, tmp_path):
    video = videos / "single_face.mp4"
    out = tmp_path / "window.png"
    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb"}
    run = subprocess.run([sys.executable, "-m", "app.ui.tools.screenshot", "--video", str(video), "--frame", "36",
                          "--weights", str(random_weights), "--device", "cpu", "--out", str(out)],
                         check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["platform"] == "xcb" and meta["faces"] == 1

    shot = cv2.imread(str(out))
    assert shot is not None and shot.shape[:2] == tuple(reversed(meta["image_size"]))
    # not blank: real contrast and many colours (a blank or black window has a handful)
    assert shot.std() > 20 and len(np.unique(shot.reshape(-1, 3), axis=0)) > 2000

    # the video area shows the frame the window reports (box and label drawn over it: compare structure, not bytes)
    x, y, w, h = meta["video_rect"]
    assert w > 300 and h > 150
    shown = cv2.cvtColor(shot[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY).astype(np.float32)
    with open_source(video) as src:
        src.seek(meta["frame_index"])
        frame = src.read()
    expected = cv2.cvtColor(cv2.resize(frame.image, (w, h), interpolation=cv2.INTER_AREA),
                            cv2.COLOR_BGR2GRAY).astype(np.float32)
    corr = np.corrcoef(shown.ravel(), expected.ravel())[0, 1]
    assert corr > 0.9, f"video area does not show frame {meta['frame_index']} (correlation {corr:.2f})"
