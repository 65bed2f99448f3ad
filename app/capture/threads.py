"""The threads that hand frames on, Qt-free (the CLI, the benchmark and the window share them):

    with ReadAhead(items, maxsize=8, name="prefetch") as ahead:   # any producer, run ahead into a bounded queue
        for item in ahead:
            ...
    PrefetchReader(source)        # a file: decoded ahead, every frame, in order (a ReadAhead of source.read)
    LatestFrameGrabber(source)    # a live source: a one-slot hand-off that drops stale frames, never a backlog

Iterating a ReadAhead yields every item in order, then stops; an exception raised while producing an item re-raises
in the consumer after the items before it. `close()` (or leaving the `with`) stops the thread, also when the
consumer stopped early. The replay's stage overlap (app.runs.overlap.DetectAhead) is a ReadAhead too.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from app.capture.camera import STALL_S
from app.capture.frame import Frame, FrameSource

T = TypeVar("T")

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class ReadAhead(Generic[T]):
    close_timeout = 2.0

    def __init__(self, items: Iterable[T], maxsize: int, name: str):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        # put with a timeout, so close() is noticed even while the queue is full and the consumer has gone
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            items = iter(self._items)
            while not self._stop.is_set():  # checked before producing each item: no work after close()
                try:
                    item = next(items)
                except StopIteration:
                    break
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread
            self._put(_Failure(e))

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():  # closed underneath us
                    self._done = True
                    raise StopIteration from None
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item

    def close(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._done = True
        # Drain so a producer blocked in put() wakes up; it then sees the stop flag.
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        if self._thread is not threading.current_thread():
            self._thread.join(self.close_timeout if timeout is None else timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LatestFrameGrabber:
    """Reads a live source on its own thread and keeps only the newest frame (a one-slot hand-off): a slow consumer
    gets the latest frame, never a backlog; frames overwritten before anyone took them are counted in `dropped`.

    `get(timeout)` returns the newest frame not yet handed out, or None on timeout or once the source has ended
    (`finished`). A read error ends the thread; `error` holds it and every `get` after the last frame raises it.
    """

    def __init__(self, source: FrameSource):
        if not source.is_live:
            raise ValueError(f"{source.name} is a file: use PrefetchReader, which keeps every frame")
        self.source = source
        self.received = 0   # frames read from the source
        self.dropped = 0    # received but replaced in the slot before anyone took them
        self.delivered = 0  # taken by get()
        self.error: BaseException | None = None
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None

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
                with self._cond:
                    self.received += 1
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = frame
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - handed to the consumer: a dead thread must not fail silently
            self.error = e
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    @property
    def finished(self) -> bool:
        """The thread has ended (source ended, error, or stopped) and no frame is left in the slot."""
        with self._cond:
            return self._finished and self._slot is None

    def get(self, timeout: float | None = None) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None or self._finished, timeout)
            frame, self._slot = self._slot, None
            if frame is not None:
                self.delivered += 1
                return frame
            if self.error is not None:
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
