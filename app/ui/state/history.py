"""The timeline's data: per-face ring buffers of (session time, 7 probabilities), appended once per processed frame.

A fixed-size numpy ring per face keeps each append O(1) and lets the plot take one contiguous view of the last
`span_s` seconds without copying the whole session; the full session lives in the recorder, not here.
"""
from __future__ import annotations

import numpy as np


class _Ring:
    def __init__(self, capacity: int, n_classes: int):
        self.t = np.zeros(capacity, np.float64)
        self.p = np.zeros((capacity, n_classes), np.float32)
        self.n = 0  # values written in total; the ring holds the last `capacity`

    def append(self, t: float, probs: np.ndarray) -> None:
        i = self.n % len(self.t)
        self.t[i] = t
        self.p[i] = probs
        self.n += 1

    def ordered(self) -> tuple[np.ndarray, np.ndarray]:
        cap = len(self.t)
        if self.n <= cap:
            return self.t[:self.n], self.p[:self.n]
        i = self.n % cap
        return np.concatenate([self.t[i:], self.t[:i]]), np.concatenate([self.p[i:], self.p[:i]])


class ProbabilityHistory:
    """Recent probabilities of every face, keyed by track id. Times must not go backwards within a face; a seek or a
    loop calls `clear()` (the session time restarts with the media time)."""

    def __init__(self, n_classes: int = 7, capacity: int = 4096):
        self.n_classes = n_classes
        self.capacity = capacity
        self._rings: dict[int, _Ring] = {}
        self.latest_time = 0.0

    def append(self, track_id: int, time_s: float, probs: np.ndarray) -> None:
        ring = self._rings.get(track_id)
        if ring is None:
            ring = self._rings[track_id] = _Ring(self.capacity, self.n_classes)
        ring.append(float(time_s), np.asarray(probs, np.float32))
        self.latest_time = max(self.latest_time, float(time_s))

    def series(self, track_id: int, span_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(times (N,), probs (N, K)) of one face, oldest first, limited to the last `span_s` seconds of the session."""
        ring = self._rings.get(track_id)
        if ring is None:
            return np.zeros(0), np.zeros((0, self.n_classes), np.float32)
        t, p = ring.ordered()
        if span_s is not None and len(t):
            start = int(np.searchsorted(t, self.latest_time - span_s, side="left"))
            t, p = t[start:], p[start:]
        return t, p

    @property
    def track_ids(self) -> list[int]:
        return list(self._rings)

    def clear(self) -> None:
        self._rings.clear()
        self.latest_time = 0.0
