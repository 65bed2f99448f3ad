"""Run an iterator ahead of its consumer on a thread, into a bounded queue.

    with ReadAhead(items, maxsize=8, name="prefetch") as ahead:
        for item in ahead:
            ...

Iterating yields every item in order, then stops; an exception raised while producing an item re-raises in the
consumer after the items before it. `close()` (or leaving the `with`) stops the thread, also when the consumer
stopped early. The file prefetch (app.capture.video.PrefetchReader) and the replay's stage overlap (app.runs.overlap.DetectAhead)
are both this with a different producer.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

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
