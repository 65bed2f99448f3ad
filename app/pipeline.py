"""One frame through the whole recognition path: detect -> track -> align -> embed -> FAN head.

`Pipeline.process(frame)` is the plain, synchronous core that the headless CLI, the benchmark and the Qt workers
all call; it owns no thread. Timings of each stage travel with the result so every front end can show them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from app.capture import Frame
from app.card import ModelCard
from app.faces import DetectorConfig, Face, FaceMeshDetector
from app.inference import Prediction, Recognizer, find_default_model
from app.preprocess import align_face
from app.session import TimelineRow
from app.tracking import FaceTracker


@dataclass(frozen=True)
class PipelineConfig:
    weights: Path | None = None          # any of the model's .onnx/.json files; None = the shipped default
    device: str = "auto"                 # auto | cuda | cpu
    attention: str | None = None         # relation | self; None = the card's default
    window_length: int | None = None     # None = the card's
    stride: int | None = None            # run the head every `stride` frames; None = the card's
    max_faces: int = 4
    min_detection_confidence: float = 0.5
    min_face_px: float = 12.0            # inter-ocular pixels below which a face is too small to read
    max_missed: int = 5                  # frames a track survives without a detection
    threads: int | None = None           # ONNX Runtime intra-op threads of the embedder; None = min(2, cores)


@dataclass
class FrameResult:
    frame: Frame
    faces: list[Face]                                   # this frame's faces, with track ids and aligned crops
    predictions: dict[int, Prediction]                  # track id -> prediction for this frame
    ended: list[int] = field(default_factory=list)      # tracks that ended on this frame
    timings: dict[str, float] = field(default_factory=dict)  # ms: detect_align, embed, head, total

    def rows(self) -> list[TimelineRow]:
        """One timeline row per face that has a prediction on this frame (raw outputs, newest frame's attention)."""
        out = []
        for face in self.faces:
            p = self.predictions.get(face.track_id)
            if p is None:
                continue
            out.append(TimelineRow(
                time_s=float(self.frame.time_s), frame_index=int(self.frame.index), face_id=int(face.track_id),
                box=tuple(round(float(v), 1) for v in face.box), label=p.label, confidence=float(p.confidence),
                probs=tuple(float(v) for v in p.probs), alpha=float(p.alpha[-1]), weight=float(p.weight[-1])))
        return out


class Pipeline:
    """Detector + tracker + recogniser for one stream. Not thread-safe: one per worker thread."""

    def __init__(self, config: PipelineConfig = PipelineConfig(), video: bool = True):
        self.config = config
        weights = Path(config.weights) if config.weights else find_default_model()
        self.recognizer = Recognizer(weights, device=config.device, attention=config.attention,
                                     window_length=config.window_length, stride=config.stride,
                                     threads=config.threads)
        self._video = video
        self.detector = self._make_detector()
        self.tracker = FaceTracker(max_missed=config.max_missed)

    def _make_detector(self) -> FaceMeshDetector:
        c = self.config
        return FaceMeshDetector(DetectorConfig(max_faces=c.max_faces, min_detection_confidence=c.min_detection_confidence,
                                               min_face_px=c.min_face_px, video=self._video))

    @property
    def card(self) -> ModelCard:
        return self.recognizer.card

    @property
    def providers(self) -> list[str]:
        return self.recognizer.providers

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        faces = self.tracker.update(self.detector.detect(frame.image))
        pre = self.card.preprocess
        for face in faces:
            face.crop = align_face(frame.image, face.landmarks5, pre)
        t1 = time.perf_counter()
        ended = list(self.tracker.ended_ids)
        if ended:
            self.recognizer.drop(ended)
        if faces:
            preds = {p.track_id: p for p in self.recognizer.step(frame.index, faces)}
            model_ms = self.recognizer.timings  # {"embed": ms, "head": ms} of this step
        else:  # nothing to embed: the recogniser is not called, so its timings would be a previous frame's
            preds, model_ms = {}, {"embed": 0.0, "head": 0.0}
        t2 = time.perf_counter()
        timings = {"detect_align": (t1 - t0) * 1e3, **model_ms, "total": (t2 - t0) * 1e3}
        return FrameResult(frame=frame, faces=faces, predictions=preds, ended=ended, timings=timings)

    def reset(self) -> None:
        """Forget all tracks and windows (after a seek or a new source); MediaPipe's own tracking state too."""
        self.tracker.reset()
        self.recognizer.reset()
        self.detector.close()
        self.detector = self._make_detector()

    def close(self) -> None:
        self.detector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
