"""The hand-off between the capture thread and the pipeline thread.

Two policies (STYLE 6):
- latest: one slot; a new frame replaces an unprocessed one (counted as dropped), so a slow model never lags behind a
  live camera;
- every: a small bounded queue; the producer blocks when it is full, so a file has every frame processed (and
  recorded) and decoding never runs far ahead of the model: a slow model slows playback down instead.
`close()` wakes both sides; after it `put` refuses and `get` returns None. Qt-free.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Captured:
    """A frame on its way to the pipeline."""

    frame: Any            # app.capture.frame.Frame; None marks the end of a file's pass (every frame before it was sent)
    generation: int       # changes on a new source, a seek or a loop: the pipeline forgets its tracks
    captured_at: float    # time.monotonic() when it was read, for the end-to-end latency
    new_source: bool = False  # the first frame of a newly opened source: a new timeline, face ids from 1


class FrameHandoff:
    def __init__(self, latest: bool = True, maxsize: int = 4):
        self._items: deque[Captured] = deque()
        self._maxsize = max(1, maxsize)
        self._latest = latest
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0

    @property
    def latest(self) -> bool:
        return self._latest

    def set_latest(self, latest: bool) -> None:
        with self._cond:
            self._latest = latest
            if latest:
                self._trim()
            self._cond.notify_all()

    def _trim(self) -> None:
        while len(self._items) > 1:
            self._items.popleft()
            self.dropped += 1

    def put(self, item: Captured, timeout: float | None = None, keep: bool = False) -> bool:
        """Hand a frame over; False when closed (or when `timeout` passed with no room). In 'every' mode it waits
        for room; `keep` makes it wait in 'latest' mode too, until the slot is free, so this frame is processed
        (the frames that refill the FAN window before a frame the user stepped to)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed and (keep or not self._latest) and \
                    len(self._items) >= (1 if self._latest else self._maxsize):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            if self._closed:
                return False
            self._items.append(item)
            if self._latest:
                self._trim()
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> Captured | None:
        """The next frame (the only one, in 'latest' mode); None on timeout or once closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if self._closed:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def clear(self) -> None:
        """Forget frames not yet processed (after a seek they belong to the old position)."""
        with self._cond:
            self._items.clear()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
