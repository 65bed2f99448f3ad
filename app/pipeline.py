"""One frame through the whole recognition path: detect -> track -> align -> embed -> FAN head -> signals.

`Pipeline.process(frame)` is the plain, synchronous core that the headless CLI, the benchmark and the Qt workers
all call; it owns no thread. Timings of each stage travel with the result so every front end can show them. Each
face with a prediction also gets its signals (app.signals: 52 blendshapes, head pose, reliability). Turning a result
into export rows is the recorder's job (app.session.SessionRecorder.add_result), not the result's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from app.capture import Frame
from app.card import ModelCard
from app.faces import DetectorConfig, Face, FaceMeshDetector
from app.gate import FaceGate, GateConfig
from app.inference import Prediction, Recognizer, find_default_model
from app.preprocess import align_face
from app.signals import FaceSignals, SignalExtractor
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
    # Exports (not the engine): a row for each frame without a face too (--all-frames). It rides in the config so
    # every front end that builds a recorder for a run (replay, parallel workers) sees the run's choice.
    all_frames: bool = False
    # The blendshape network reads MediaPipe's iris points, whose refinement costs ~30% of the face mesh's time
    # (docs/results.md); False skips both (bs_* columns empty; pose and reliability stay).
    blendshapes: bool = True
    threads: int | None = None           # ONNX Runtime intra-op threads of the embedder; None = min(2, cores)
    gate: str = "off"                    # app.gate: off | detector | stride:K (the mesh on frames with no track)


@dataclass
class FrameResult:
    frame: Frame
    faces: list[Face]                                   # this frame's faces, with track ids and aligned crops
    predictions: dict[int, Prediction]                  # track id -> prediction for this frame
    ended: list[int] = field(default_factory=list)      # tracks that ended on this frame
    timings: dict[str, float] = field(default_factory=dict)  # ms: detect_align, embed, head, signals, total
    signals: dict[int, FaceSignals] = field(default_factory=dict)  # track id -> blendshapes, pose, reliability


@dataclass
class Detection:
    """Stage 1's output for one frame: its faces (track ids, aligned crops), the tracks that ended, and its ms."""
    frame: Frame
    faces: list[Face]
    ended: list[int]
    ms: float


class Pipeline:
    """Detector + tracker + recogniser for one stream. Not thread-safe: one per worker thread."""

    def __init__(self, config: PipelineConfig = PipelineConfig(), video: bool = True,
                 signals: SignalExtractor | None = None):
        self.config = config
        weights = Path(config.weights) if config.weights else find_default_model()
        self.recognizer = Recognizer(weights, device=config.device, attention=config.attention,
                                     window_length=config.window_length, stride=config.stride,
                                     threads=config.threads)
        self._video = video
        self.detector = self._make_detector()
        self.tracker = FaceTracker(max_missed=config.max_missed)
        self.gate = FaceGate(GateConfig.parse(config.gate))
        self.signals = signals or SignalExtractor()

    def _make_detector(self) -> FaceMeshDetector:
        c = self.config
        return FaceMeshDetector(DetectorConfig(max_faces=c.max_faces, min_detection_confidence=c.min_detection_confidence,
                                               min_face_px=c.min_face_px, video=self._video,
                                               refine_landmarks=c.blendshapes))

    @property
    def card(self) -> ModelCard:
        return self.recognizer.card

    @property
    def providers(self) -> list[str]:
        return self.recognizer.providers

    def process(self, frame: Frame) -> FrameResult:
        return self.recognize(self.detect(frame))

    def detect(self, frame: Frame) -> Detection:
        """Stage 1 (face gate, face mesh, tracker, alignment). Its state (detector, tracker) is not stage 2's, so a
        replay may run stage 1 of the next frame on another thread while stage 2 runs (app/overlap.py)."""
        t0 = time.perf_counter()
        gated = not self.gate.allows(frame.image, tracking=bool(self.tracker.active_ids))
        tracked = self.tracker.update([] if gated else self.detector.detect(frame.image))
        pre = self.card.preprocess
        for face in tracked.faces:
            face.crop = align_face(frame.image, face.landmarks5, pre)
        return Detection(frame, tracked.faces, tracked.ended, (time.perf_counter() - t0) * 1e3)

    def recognize(self, detection: Detection) -> FrameResult:
        """Stage 2 (embedder, head, signals) of a frame whose stage 1 is done, frames in order."""
        frame, faces, ended = detection.frame, detection.faces, detection.ended
        t1 = time.perf_counter()
        if ended:
            self.recognizer.drop(ended)
        if faces:
            step = self.recognizer.step(frame.index, faces)
            preds = {p.track_id: p for p in step.predictions}
            model_ms = step.timings  # {"embed": ms, "head": ms}
        else:  # nothing to embed
            preds, model_ms = {}, {"embed": 0.0, "head": 0.0}
        t2 = time.perf_counter()
        signals = {}
        shape = frame.image.shape[:2]
        for face in faces:
            pred = preds.get(face.track_id)
            if pred is not None and face.mesh is not None:
                signals[face.track_id] = self.signals.finish(self.signals.measure(face, shape), pred)
        t3 = time.perf_counter()
        timings = {"detect_align": detection.ms, **model_ms, "signals": (t3 - t2) * 1e3,
                   "total": detection.ms + (t3 - t1) * 1e3}
        return FrameResult(frame=frame, faces=faces, predictions=preds, ended=ended, timings=timings,
                           signals=signals)

    def reset(self) -> None:
        """Forget all tracks and windows (after a seek or a new source); MediaPipe's own tracking state too."""
        self.tracker.reset()
        self.gate.reset()
        self.recognizer.reset()
        self.detector.close()
        self.detector = self._make_detector()

    def close(self) -> None:
        self.detector.close()
        self.gate.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
