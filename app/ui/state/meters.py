"""Streaming meters for the status bar: an event rate (fps) and a rolling median (latency), each a deque with one
`push`. Plain classes on time.monotonic(), so they are tested without Qt and without sleeping (pass `now`).
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque


class RateMeter:
    """Events per second over the last `window_s` seconds (at most `maxlen` events kept).

    Thread-safe: a worker pushes, the GUI reads."""

    def __init__(self, window_s: float = 2.0, maxlen: int = 512):
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def push(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] > self.window_s:
                self._times.popleft()
            n = len(self._times)
            if n < 2:
                return 0.0
            span = self._times[-1] - self._times[0]
        # n events span n-1 intervals; an idle tail (paused source) is dropped by the window above, not averaged in
        return (n - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        with self._lock:
            self._times.clear()


class RollingMedian:
    """Median of the last `maxlen` values (latency in ms); None before the first value."""

    def __init__(self, maxlen: int = 60):
        self._values: deque[float] = deque(maxlen=maxlen)

    def push(self, value: float) -> None:
        self._values.append(float(value))

    def value(self) -> float | None:
        return statistics.median(self._values) if self._values else None

    def reset(self) -> None:
        self._values.clear()
