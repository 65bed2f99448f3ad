"""app.pipeline: the signals computed beside the embedder equal those computed before it; signals off is the
emotion path alone; the helper thread stops with the pipeline."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from app.capture.sources import open_source
from app.pipeline import Pipeline, PipelineConfig


@pytest.fixture(scope="module")
def frames(videos):
    out = []
    with open_source(videos / "single_face.mp4") as src:
        while len(out) < 24 and (f := src.read()) is not None:
            out.append(f)
    return out


def _signal_threads() -> int:
    return sum(t.name.startswith("signals") for t in threading.enumerate())


def test_signals_beside_the_embedder_equal_those_before_it(frames):
    before = _signal_threads()
    with Pipeline() as beside, Pipeline() as inline:
        n = 0
        for frame in frames:
            a = beside.process(frame)                                  # helper thread
            b = inline.recognize(inline.detect(frame), beside=False)   # the caller's thread
            assert a.signals.keys() == b.signals.keys() == a.predictions.keys()
            for tid, s in a.signals.items():
                t = b.signals[tid]
                assert np.array_equal(s.blendshapes, t.blendshapes)
                assert (s.yaw, s.pitch, s.roll, s.reliability) == (t.yaw, t.pitch, t.roll, t.reliability)
                n += 1
            for r in (a, b):
                assert {"detect_align", "embed", "head", "signals", "signals_wait", "total"} <= r.timings.keys()
                assert r.timings["signals"] > 0 if r.signals else r.timings["signals"] == 0
        assert n >= 20
        assert _signal_threads() == before + 1   # one helper, for the pipeline that used it
    assert _signal_threads() == before           # close() stopped it


def test_signals_off_is_the_emotion_path_alone(frames):
    with Pipeline(PipelineConfig(signals=False)) as off, Pipeline() as on:
        assert off.signals is None and not off.detector.config.refine_landmarks
        assert on.detector.config.refine_landmarks
        for frame in frames[:8]:
            r = off.process(frame)
            assert r.predictions and r.signals == {} and r.timings["signals"] == 0.0
            # the readings themselves do not depend on the signals (the refined mesh moves the alignment points
            # slightly, so compare the labels, not the bits)
            assert {p.label for p in r.predictions.values()} == {p.label for p in on.process(frame).predictions.values()}
