"""One frame through the whole recognition path: detect -> track -> align -> embed -> FAN head -> signals.

`Pipeline.process(frame)` is the synchronous core that the headless CLI, the benchmark and the Qt workers all call:
a frame goes in, its result comes out. Timings of each stage travel with the result so every front end can show them.
Each face with a prediction also gets its signals (app.signals: 52 blendshapes, head pose, reliability). Turning a
result into export rows is the recorder's job (app.timeline.recorder.SessionRecorder.add_result), not the result's.

The face-only part of the signals (blendshape network, pose, sharpness) needs only the mesh and the crop, so it
runs on one helper thread while the embedder runs on the caller's (both in ONNX Runtime / OpenCV, which release
Python's lock); only the reliability, which needs the prediction, is computed after. The results are the same
either way (`recognize(detection, beside=False)` computes them inline). `close()` stops the thread.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.capture.frame import Frame
from app.recognition.card import ModelCard
from app.faces.detect import DetectorConfig, Face, FaceMeshDetector
from app.faces.gate import FaceGate, GateConfig
from app.recognition.recognizer import Prediction, Recognizer, find_default_model
from app.faces.align import align_face
from app.signals.extract import FaceSignals, SignalExtractor
from app.signals.reliability import ReliabilityModel
from app.faces.track import FaceTracker


@dataclass(frozen=True)
class PipelineConfig:
    weights: Path | None = None          # any of the model's .onnx/.json files; None = the shipped default
    device: str = "auto"                 # auto | cuda | cpu
    precision: str = "auto"              # the embedder graph: auto (int8 on the CPU when the card has one) | fp32 | int8
    head: str | None = None              # app.recognition.heads: a --head name or a card key; None = the card's default
    window_length: int | None = None     # None = the card's
    stride: int | None = None            # run the head every `stride` frames; None = the card's
    max_faces: int = DetectorConfig.max_faces
    min_detection_confidence: float = DetectorConfig.min_detection_confidence
    min_face_px: float = 12.0            # inter-ocular pixels below which a face is too small to read
    max_missed: int = 5                  # frames a track survives without a detection
    # Exports (not the engine): a row for each frame without a face too (--all-frames). It rides in the config so
    # every front end that builds a recorder for a run (replay, parallel workers) sees the run's choice.
    all_frames: bool = False
    # The blendshape network reads MediaPipe's iris points, whose refinement costs ~30% of the face mesh's time
    # (docs/results.md); False skips both (bs_* columns empty; pose and reliability stay).
    blendshapes: bool = True
    # False: no signals at all (no blendshapes, pose or reliability; signal columns empty), the emotion path only.
    # The benchmark's A/B of what the signals add per face; rows without reliability weigh 1 in summaries.
    signals: bool = True
    threads: int | None = None           # ONNX Runtime intra-op threads of the embedder; None = min(2, cores)
    gate: str = "off"                    # app.faces.gate: off | detector | stride:K (the mesh on frames with no track)
    # The face mesh skips an image identical to one it has just found no face in (app.faces.detect.DetectorConfig
    # .skip_still: the same rows); False only for the benchmark's A/B.
    skip_still: bool = True
    # Small faces in large frames (app.faces: tiled search, the mesh on a crop around each): auto | on | off
    small_faces: str = DetectorConfig.small_faces
    calibrated: bool = True              # probabilities with the card's fitted temperature; False: the head's raw output


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    faces: list[Face]                                   # this frame's faces, with track ids and aligned crops
    predictions: dict[int, Prediction]                  # track id -> prediction for this frame
    ended: list[int] = field(default_factory=list)      # tracks that ended on this frame
    # ms: detect_align, embed, head, signals (their CPU time: blendshapes, pose, sharpness, + reliability), signals_wait
    # (waiting for the helper thread after the models, + reliability; with beside=False, 0 + reliability), total
    timings: dict[str, float] = field(default_factory=dict)
    signals: dict[int, FaceSignals] = field(default_factory=dict)  # track id -> blendshapes, pose, reliability
    latency_ms: float | None = None  # from the frame's capture (Frame.captured_at) to this result; None for files


@dataclass(frozen=True)
class PipelineInfo:
    """What ran: the loaded model and how it runs. Frozen, so it crosses threads (the window reads it on the GUI
    thread) and one description serves the session metadata of every front end."""

    model: str
    card_path: str
    providers: tuple[str, ...]   # the providers the embedder session actually runs on
    precision: str               # the embedder graph that runs: fp32 | int8
    head: str                    # the card key of the head that runs
    head_types: tuple[str, ...]
    default_head: str
    window_length: int
    temperature: float           # the head's calibration temperature (1.0: raw)
    random_init: bool            # a test card of untrained weights
    fallback_reason: str | None  # why CUDA is not used although it was asked for (None otherwise)
    blendshapes: bool            # the face mesh refines the iris points the blendshape network reads
    reliability_note: str | None = None  # the reliability fit was made for another model (one line), or None


@dataclass(frozen=True)
class Detection:
    """Stage 1's output for one frame: its faces (track ids, aligned crops), the tracks that ended, and its ms."""
    frame: Frame
    faces: list[Face]
    ended: list[int]
    ms: float


def _done(value) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


# frames in a row without a face after which the face mesh also looks at a padded copy (close-ups; app.faces)
CLOSEUP_EVERY = 5


class Pipeline:
    """Detector + tracker + recogniser for one stream. Not thread-safe: one per worker thread."""

    def __init__(self, config: PipelineConfig = PipelineConfig(), video: bool = True,
                 signals: SignalExtractor | None = None):
        self.config = config
        weights = Path(config.weights) if config.weights else find_default_model()
        self.recognizer = Recognizer(weights, device=config.device, head=config.head,
                                     window_length=config.window_length, stride=config.stride,
                                     threads=config.threads, precision=config.precision,
                                     calibrated=config.calibrated)
        self._video = video
        self.detector = self._make_detector()
        self.tracker = FaceTracker(max_missed=config.max_missed)
        self.gate = FaceGate(GateConfig.parse(config.gate))
        self._reliability_note = None
        if config.signals and signals is None:
            card = self.recognizer.card
            fit, self._reliability_note = ReliabilityModel.for_model(card.path, card.name)
            signals = SignalExtractor(reliability=fit)
        self.signals = signals if config.signals else None
        self._beside: ThreadPoolExecutor | None = None  # the signals' helper thread, started on first use

    def _make_detector(self) -> FaceMeshDetector:
        return FaceMeshDetector(self.detector_config(self.config, self._video))

    @staticmethod
    def detector_config(c: PipelineConfig, video: bool = True) -> DetectorConfig:
        """The face mesh's settings for a pipeline of config `c` (also the benchmark's decode + mesh bar)."""
        return DetectorConfig(max_faces=c.max_faces, min_detection_confidence=c.min_detection_confidence,
                              min_face_px=c.min_face_px, video=video, refine_landmarks=c.blendshapes and c.signals,
                              closeup_every=CLOSEUP_EVERY, skip_still=c.skip_still, small_faces=c.small_faces)

    @property
    def card(self) -> ModelCard:
        return self.recognizer.card

    @property
    def providers(self) -> list[str]:
        return self.recognizer.providers

    def info(self) -> PipelineInfo:
        rec, card = self.recognizer, self.card
        return PipelineInfo(model=card.name, card_path=str(card.path), providers=tuple(rec.providers),
                            precision=rec.embedder.precision, head=rec.head_key, head_types=tuple(card.head_types),
                            default_head=card.default_head, window_length=rec.window_length,
                            temperature=rec.temperature, random_init=bool(card.extra.get("random_init")),
                            fallback_reason=rec.fallback_reason,
                            blendshapes=self.detector_config(self.config, self._video).refine_landmarks,
                            reliability_note=self._reliability_note)

    def process(self, frame: Frame) -> FrameResult:
        return self.recognize(self.detect(frame))

    def detect(self, frame: Frame) -> Detection:
        """Stage 1 (face gate, face mesh, tracker, alignment). Its state (detector, tracker) is not stage 2's, so a
        replay may run stage 1 of the next frame on another thread while stage 2 runs (app/runs/overlap.py)."""
        t0 = time.perf_counter()
        gated = not self.gate.allows(frame.image, tracking=bool(self.tracker.active_ids))
        tracked = self.tracker.update([] if gated else self.detector.detect(frame.image))
        pre = self.card.preprocess
        faces = [replace(face, crop=align_face(frame.image, face.landmarks5, pre)) for face in tracked.faces]
        return Detection(frame, faces, tracked.ended, (time.perf_counter() - t0) * 1e3)

    def recognize(self, detection: Detection, beside: bool = True) -> FrameResult:
        """Stage 2 (embedder, head, signals) of a frame whose stage 1 is done, frames in order. `beside`: the
        signals' face-only part on the helper thread while the embedder runs (else on the caller's, before it)."""
        frame, faces, ended = detection.frame, detection.faces, detection.ended
        t1 = time.perf_counter()
        if ended:
            self.recognizer.drop(ended)
        pending = None
        with_mesh = [f for f in faces if f.mesh is not None and f.crop is not None]
        if self.signals is not None and with_mesh:
            if not beside:
                pending = _done(self._measure(with_mesh, frame.image.shape[:2]))
            else:
                if self._beside is None:
                    self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signals")
                pending = self._beside.submit(self._measure, with_mesh, frame.image.shape[:2])
        if faces:
            step = self.recognizer.step(frame.index, faces)
            preds = {p.track_id: p for p in step.predictions}
            model_ms = step.timings  # {"embed": ms, "head": ms}
        else:  # nothing to embed
            preds, model_ms = {}, {"embed": 0.0, "head": 0.0}
        t2 = time.perf_counter()
        measured, measure_ms = pending.result() if pending is not None else ({}, 0.0)
        t_ready = time.perf_counter()
        signals = {tid: self.signals.finish(m, preds[tid]) for tid, m in measured.items() if tid in preds}
        t3 = time.perf_counter()
        ran = pending is not None
        timings = {"detect_align": detection.ms, **model_ms,
                   "signals": measure_ms + (t3 - t_ready) * 1e3 if ran else 0.0,
                   "signals_wait": (t3 - t2) * 1e3 if ran else 0.0, "total": detection.ms + (t3 - t1) * 1e3}
        latency = None if frame.captured_at is None else (time.monotonic() - frame.captured_at) * 1e3
        return FrameResult(frame=frame, faces=faces, predictions=preds, ended=ended, timings=timings,
                           signals=signals, latency_ms=latency)

    def _measure(self, faces: list[Face], shape: tuple[int, int]) -> tuple[dict, float]:
        """The signals' face-only part for each face -> ({track id: Measured}, ms of CPU time of the thread that ran
        it: its own cost, which wall time on a shared core would overstate)."""
        t0 = time.thread_time()
        out = {face.track_id: self.signals.measure(face, shape) for face in faces}
        return out, (time.thread_time() - t0) * 1e3

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
        if self._beside is not None:
            self._beside.shutdown(wait=True)
            self._beside = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
