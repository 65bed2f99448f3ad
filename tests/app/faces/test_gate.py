"""The face gate: when the face mesh may be skipped on frames with no tracked face."""
from __future__ import annotations

import numpy as np
import pytest

from app.faces.gate import FaceGate, GateConfig


def test_parse_and_bad_values():
    assert GateConfig.parse("off") == GateConfig()
    assert GateConfig.parse("stride:3") == GateConfig(mode="stride", stride=3)
    assert GateConfig.parse("detector").mode == "detector"
    for bad in ("stride:0", "stride:x", "nope", "off:2"):
        with pytest.raises(ValueError):
            GateConfig.parse(bad)


def test_stride_runs_every_kth_idle_frame_and_always_while_tracking():
    gate = FaceGate(GateConfig(mode="stride", stride=3))
    img = np.zeros((8, 8, 3), np.uint8)
    assert [gate.allows(img, tracking=False) for _ in range(7)] == [True, False, False, True, False, False, True]
    assert all(gate.allows(img, tracking=True) for _ in range(4))
    assert gate.allows(img, tracking=False)  # the count restarts when a track ends: the next empty frame is looked at
    assert gate.calls == {"mesh": 8, "gated": 4}


def test_off_never_gates():
    gate = FaceGate()
    assert all(gate.allows(np.zeros((8, 8, 3), np.uint8), tracking=False) for _ in range(5))


def test_detector_opens_on_a_real_face_and_stays_shut_on_an_empty_frame(astronaut_bgr):
    gate = FaceGate(GateConfig(mode="detector"))
    try:
        assert gate.allows(astronaut_bgr, tracking=False)
        assert not gate.allows(np.full_like(astronaut_bgr, 127), tracking=False)
        assert gate.allows(np.full_like(astronaut_bgr, 127), tracking=True)  # never gates a tracked face
    finally:
        gate.close()
