"""DetectAhead: stage 1 of the next frames on a thread, in order, errors surfacing in the caller.
(That an overlapped replay gives the sequential rows byte for byte is tested in test_parallel.py: one worker
overlaps, two workers of one core each do not.)"""
from __future__ import annotations

import threading

import pytest

from app.runs.overlap import DetectAhead


class _Stage1:
    """Stands in for Pipeline.detect: records the thread it ran on; fails on frame `fail`."""

    def __init__(self, fail: int | None = None):
        self.fail = fail
        self.threads: set[str] = set()

    def detect(self, frame):
        self.threads.add(threading.current_thread().name)
        if frame == self.fail:
            raise RuntimeError(f"bad frame {frame}")
        return frame * 10


def test_order_and_thread():
    stage = _Stage1()
    with DetectAhead(stage, range(50), maxsize=2) as ahead:
        assert list(ahead) == [i * 10 for i in range(50)]
    assert stage.threads == {"detect ahead"}


def test_an_error_in_stage_1_reaches_the_caller_after_the_frames_before_it():
    got = []
    with pytest.raises(RuntimeError, match="bad frame 3"), DetectAhead(_Stage1(fail=3), range(10)) as ahead:
        for d in ahead:
            got.append(d)
    assert got == [0, 10, 20]


def test_stopping_early_stops_the_thread():
    ahead = DetectAhead(_Stage1(), iter(range(10_000)), maxsize=1)
    with ahead:
        next(ahead)
    assert not ahead._thread.is_alive()
