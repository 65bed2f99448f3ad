"""The hand-off between threads, and the threads that read ahead. Qt-free: the CLI, the benchmark and the window
share them.

    Handoff(latest=True)            one slot: a new item replaces one not yet taken (counted in `dropped`), so a live
                                    source never queues stale frames
    Handoff(latest=False, maxsize)  a bounded queue: the producer waits for room, so every item of a file arrives,
                                    in order, and decoding never runs far ahead of its consumer
    ReadAhead(items, maxsize, name) any producer run ahead on its own thread into an every-item Handoff
    PrefetchReader(source)          a file: decoded ahead, every frame, in order (a ReadAhead of source.read)
    LatestFrameGrabber(source)      a live source read on its own thread into a one-slot Handoff

Iterating a ReadAhead yields every item in order, then stops; an exception raised while producing an item re-raises
in the consumer after the items before it. `close()` (or leaving the `with`) stops the thread, also when the
consumer stopped early. The replay's stage overlap (app.runs.overlap.DetectAhead) is a ReadAhead too; the window's
capture thread hands `Captured` frames to its pipeline thread through one Handoff whose mode follows the source.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.capture.camera import STALL_S
from app.capture.frame import Frame, FrameSource

T = TypeVar("T")


@dataclass(frozen=True)
class Captured:
    """A frame on its way from the window's capture thread to its pipeline thread."""

    frame: Any            # app.capture.frame.Frame; None marks the end of a file's pass (every frame before it was sent)
    generation: int       # changes on a new source, a seek or a loop: the pipeline forgets its tracks
    captured_at: float    # time.monotonic() when it was read, for the end-to-end latency
    new_source: bool = False  # the first frame of a newly opened source: a new timeline, face ids from 1


class Handoff(Generic[T]):
    """Items from one producer thread to one consumer thread, in one of two modes (see the module docstring); the
    mode may change while it runs (the window's source turns from a file into a camera). Items are never None.

    `finish()` is the producer's last word: the consumer still gets what is there, then None. `close()` is the
    consumer's or owner's: it drops what is there and wakes both sides; after it `put` refuses and `get` returns
    None."""

    def __init__(self, latest: bool = True, maxsize: int = 4):
        self._items: deque[T] = deque()
        self._maxsize = max(1, maxsize)
        self._latest = latest
        self._closed = False
        self._finished = False
        self._cond = threading.Condition()
        self.dropped = 0  # items replaced in the slot before anyone took them

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

    def put(self, item: T, timeout: float | None = None, keep: bool = False) -> bool:
        """Hand an item over; False when closed (or when `timeout` passed with no room). In 'every' mode it waits
        for room; `keep` makes it wait in 'latest' mode too, until the slot is free, so this item is taken (the
        frames that refill the FAN window before a frame the user stepped to)."""
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

    def get(self, timeout: float | None = None) -> T | None:
        """The next item (the only one, in 'latest' mode); None on timeout, once closed, or once finished and
        empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self._closed and not self._finished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if self._closed or not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def finish(self) -> None:
        """The producer has no more items: `get` hands out what is there, then returns None."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        """finish() was called (or close()) and nothing is left to take."""
        with self._cond:
            return (self._finished or self._closed) and not self._items

    def clear(self) -> None:
        """Forget items not yet taken (after a seek they belong to the old position)."""
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


class ReadAhead(Generic[T]):
    close_timeout = 2.0

    def __init__(self, items: Iterable[T], maxsize: int, name: str):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._items = items
        self._handoff: Handoff[T] = Handoff(latest=False, maxsize=maxsize)
        self._error: BaseException | None = None
        self._done = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            items = iter(self._items)
            while not self._handoff.closed:  # checked before producing each item: no work after close()
                try:
                    item = next(items)
                except StopIteration:
                    break
                if not self._handoff.put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread
            self._error = e
        finally:
            self._handoff.finish()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._handoff.get()
        if item is None:  # finished (after the items before it) or closed
            self._done = True
            if self._error is not None and not self._handoff.closed:
                raise self._error
            raise StopIteration
        return item

    def close(self, timeout: float | None = None) -> None:
        self._done = True
        self._handoff.close()  # wakes a producer waiting for room; it then sees the hand-off closed
        if self._thread is not threading.current_thread():
            self._thread.join(self.close_timeout if timeout is None else timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LatestFrameGrabber:
    """Reads a live source on its own thread into a one-slot Handoff: a slow consumer gets the latest frame, never a
    backlog; frames overwritten before anyone took them are counted in `dropped`.

    `get(timeout)` returns the newest frame not yet handed out, or None on timeout or once the source has ended
    (`finished`). A read error ends the thread; `error` holds it and every `get` after the last frame raises it.
    """

    def __init__(self, source: FrameSource):
        if not source.is_live:
            raise ValueError(f"{source.name} is a file: use PrefetchReader, which keeps every frame")
        self.source = source
        self.received = 0   # frames read from the source
        self.delivered = 0  # taken by get()
        self.error: BaseException | None = None
        self._slot: Handoff[Frame] = Handoff(latest=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Frames received but replaced in the slot before anyone took them."""
        return self._slot.dropped

    def start(self) -> LatestFrameGrabber:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"grab {self.source.name}", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.received += 1
                self._slot.put(frame)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer: a dead thread must not fail silently
            self.error = e
        finally:
            self._slot.finish()

    @property
    def finished(self) -> bool:
        """The thread has ended (source ended, error, or stopped) and no frame is left in the slot."""
        return self._slot.finished

    def get(self, timeout: float | None = None) -> Frame | None:
        frame = self._slot.get(timeout)
        if frame is not None:
            self.delivered += 1
            return frame
        if self.error is not None and self._slot.finished:
            raise self.error
        return None

    def stop(self, timeout: float = STALL_S + 1.0) -> None:
        """Ask the thread to end and wait for it (at most one read more; a reconnecting source stops retrying). Does
        not close the source."""
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:
            interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PrefetchReader(ReadAhead[Frame]):
    """Decodes a file source ahead on its own thread into a bounded queue (`maxsize` frames), so decoding overlaps
    processing. Iterating yields every frame in order, then stops; an exception in the thread re-raises in the
    consumer. `close()` (or leaving the `with`) stops the thread even when the consumer stopped early. The source
    stays open (its owner closes it) and must not be read by anyone else while the reader runs."""

    def __init__(self, source: FrameSource, maxsize: int = 8):
        if source.is_live:
            raise ValueError(f"{source.name} is live: use LatestFrameGrabber, which never queues stale frames")
        self.source = source
        super().__init__(iter(source.read, None), maxsize, name=f"prefetch {source.name}")
