"""Overlap the two stages of the pipeline in a replay: stage 1 (face mesh, tracker, alignment) of the next frames
runs on its own thread while stage 2 (embedder, head, signals) runs on the caller's.

    with DetectAhead(pipeline, frames) as detections:
        for d in detections:
            result = pipeline.recognize(d)

Both stages keep their own state (the detector and tracker are stage 1's, the recogniser is stage 2's) and each
sees the frames in order, so the results are the sequential `pipeline.process(frame)`'s, frame for frame; the native
libraries of both stages (MediaPipe, ONNX Runtime) release Python's lock while they compute, so on two or more cores
the stages run at the same time. A bounded queue (`maxsize`) holds the detections not yet recognised. An exception
in the thread re-raises in the caller's; leaving the `with` stops the thread, also when the caller stops early.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator

from app.pipeline import Detection, Pipeline

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class DetectAhead:
    def __init__(self, pipeline: Pipeline, frames: Iterable, maxsize: int = 4):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._pipeline = pipeline
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="detect ahead", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if self._stop.is_set() or not self._put(self._pipeline.detect(frame)):
                    return
            self._put(_END)
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread
            self._put(_Failure(e))

    def __iter__(self) -> Iterator[Detection]:
        return self

    def __next__(self) -> Detection:
        if self._done:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._done = True
                    raise StopIteration from None
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._done = True
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> DetectAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
