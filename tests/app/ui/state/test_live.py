"""The window's Qt-free view model: what a stream of FrameResults leaves on screen."""
import subprocess
import sys

import numpy as np

from app.capture.frame import Frame
from app.faces.detect import Face
from app.recognition.recognizer import Prediction
from app.paths import ROOT
from app.pipeline import FrameResult
from app.signals.extract import FaceSignals
from app.ui.state.live import LiveState


def _face(tid: int, x0: float, size: float) -> Face:
    lm5 = np.array([[x0 + .3 * size, 30], [x0 + .7 * size, 30], [x0 + .5 * size, 50], [x0 + .35 * size, 70],
                    [x0 + .65 * size, 70]])
    return Face(box=(x0, 10, x0 + size, 10 + size), landmarks5=lm5, track_id=tid)


def _pred(tid: int, k: int, frame: int) -> Prediction:
    probs = np.full(7, 0.02, np.float32)
    probs[k] = 1 - 0.02 * 6
    return Prediction(track_id=tid, probs=probs, label=("anger", "disgust", "fear", "happiness", "sadness",
                                                        "surprise", "neutral")[k],
                      confidence=float(probs[k]), alpha=[0.5], weight=[1.0], frame_indices=[frame])


def _signals(reliability: float) -> FaceSignals:
    bs = np.linspace(0, 1, 52, dtype=np.float32)
    return FaceSignals(bs, yaw=5.0, pitch=-2.0, roll=1.0, sharpness=4.0, face_px=60.0, reliability=reliability)


def _result(i: int, preds: dict[int, int], sizes: dict[int, float], ended=(), reliability=None) -> FrameResult:
    frame = Frame(image=np.zeros((120, 400, 3), np.uint8), index=i, time_s=i / 10)
    faces = [_face(t, 10 + 120 * n, s) for n, (t, s) in enumerate(sizes.items())]
    signals = {t: _signals(reliability) for t in preds} if reliability is not None else {}
    return FrameResult(frame=frame, faces=faces, predictions={t: _pred(t, k, i) for t, k in preds.items()},
                       ended=list(ended), timings={"total": 12.0}, signals=signals)


def test_the_largest_face_is_shown_until_one_is_picked_and_the_pick_outlives_its_absence():
    s = LiveState()
    s.push(_result(0, {1: 3, 2: 6}, {1: 40, 2: 80}), generation=1, latency_ms=20)
    assert s.follow() == 2 and s.shown_face == 2
    s.select(1)
    assert s.follow() == 1
    s.push(_result(1, {2: 6}, {2: 80}), generation=1, latency_ms=20)   # face 1 out of view: the largest shows
    assert s.follow() == 2 and s.selected_face == 1
    s.push(_result(2, {1: 3, 2: 6}, {1: 40, 2: 80}), generation=1, latency_ms=20)  # back: the pick shows again
    assert s.follow() == 1


def test_smoothing_shows_an_ema_and_raw_shows_the_newest_prediction():
    s = LiveState(smoothing=True)
    s.push(_result(0, {1: 3}, {1: 60}), 1, 10)
    s.push(_result(1, {1: 6}, {1: 60}), 1, 10)          # happiness, then neutral
    d = s.displayed(1)
    assert d.label == "happiness" and d.confidence < 0.88  # the EMA still leans to the first reading
    s.smoothing = False
    assert s.displayed(1).label == "neutral" and abs(s.displayed(1).confidence - 0.88) < 1e-6
    assert s.displayed(7) is None                        # no prediction yet: nothing to show


def test_history_meters_and_ended_tracks():
    s = LiveState()
    for i in range(5):
        s.push(_result(i, {1: 3}, {1: 60}), 1, latency_ms=10 + i)
    t, p, _, _ = s.series(1, span_s=10)
    assert np.allclose(t, [0, .1, .2, .3, .4]) and p.shape == (5, 7)
    assert s.latency.value() == 12 and s.model_ms.value() == 12
    s.push(_result(5, {}, {}, ended=[1]), 1, 10)
    assert 1 not in s.last_predictions and s.displayed(1) is None and s.follow() is None


def test_a_new_generation_starts_over_but_a_new_source_also_forgets_the_pick():
    s = LiveState()
    s.push(_result(0, {1: 3}, {1: 60}), 1, 10)
    s.select(1)
    s.timeline_face = 1
    assert s.push(_result(0, {4: 3}, {4: 60}), 2, 10) is True      # a seek: tracks restart
    assert set(s.last_predictions) == {4} and s.timeline_face is None and s.selected_face == 1
    assert len(s.series(1, 10)[0]) == 0
    s.clear_source()
    assert s.latest is None and s.selected_face is None and not s.last_predictions


def test_signals_are_kept_per_face_with_a_reliability_history_for_the_timeline():
    s = LiveState()
    for i, r in enumerate((0.9, 0.8, 0.2, 0.1)):
        s.push(_result(i, {1: 3}, {1: 60}, reliability=r), 1, 10)
    assert s.last_signals[1].reliability == 0.1 and s.last_signals[1].top_blendshapes(2)[0][0] == "noseSneerRight"
    t, p, rt, rel = s.series(1, span_s=10)
    assert np.allclose(rt, t) and np.allclose(rel, [0.9, 0.8, 0.2, 0.1])
    s.push(_result(4, {}, {}, ended=[1]), 1, 10)
    assert 1 not in s.last_signals


def test_the_view_model_imports_no_qt():
    # app.ui's __init__ patches PySide6 (QtCore) for every module of the package; no widget or GUI module may load
    code = "import sys, app.ui.state.live; sys.exit(any(m in sys.modules for m in ('PySide6.QtGui', 'PySide6.QtWidgets')))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
