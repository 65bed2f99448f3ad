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

import os
from collections.abc import Iterable

from app.capture.threads import ReadAhead
from app.pipeline import Detection, Pipeline


# The embedder's ONNX Runtime threads while stage 1 runs beside it: one core is left to the face mesh (on 2 cores, 1
# thread, not the window's 2: a second thread would only contend with the mesh; measured in docs/results.md).
EMBEDDER_THREADS = max(1, min(2, (os.cpu_count() or 1) - 1))


class DetectAhead(ReadAhead[Detection]):
    close_timeout = 5.0

    def __init__(self, pipeline: Pipeline, frames: Iterable, maxsize: int = 4):
        super().__init__((pipeline.detect(frame) for frame in frames), maxsize, name="detect ahead")
