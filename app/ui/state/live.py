"""What the window shows, as plain state: per-face smoothed probabilities, history, newest predictions and signals,
the face the user picked, and the status meters. Qt-free (a view model): the window feeds it each `FrameResult`
with `push()` and reads it when it draws, so every rule here is tested without a window.

    state = LiveState(n_classes=7)
    state.push(result, generation, latency_ms)   # every processed frame (cheap)
    shown = state.follow()                       # at draw time: the picked face while in view, else the largest
    state.displayed(shown)                       # (label, confidence, probs) as shown (smoothed when on)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.emotions import EMOTIONS
from app.ui.state.display import LabelSmoother, follow_face
from app.ui.state.history import ProbabilityHistory
from app.ui.state.meters import RollingMedian


@dataclass(frozen=True)
class Displayed:
    """One face's reading as the panels show it (smoothed when smoothing is on; exports stay raw)."""

    label: str
    confidence: float
    probs: np.ndarray


class LiveState:
    """Display state of one window. GUI-thread only; nothing here draws.

    `generation` is the pipeline worker's run counter: a new source, a seek or a loop starts a new one, and the
    tracks (and so every per-face buffer here) start over with it."""

    def __init__(self, n_classes: int = len(EMOTIONS), smoothing: bool = True, labels=EMOTIONS):
        self.labels = tuple(labels)
        self.smoothing = bool(smoothing)
        self.smoother = LabelSmoother()
        self.history = ProbabilityHistory(n_classes=n_classes)
        self.reliability = ProbabilityHistory(n_classes=1)   # per face: (time, reliability) for the timeline
        self.last_predictions: dict = {}   # track id -> newest Prediction (kept when a frame has none for it)
        self.last_signals: dict = {}       # track id -> newest app.signals.extract.FaceSignals
        self.latency = RollingMedian()     # capture to result, ms
        self.model_ms = RollingMedian()    # the pipeline's own time per frame, ms
        self.selected_face: int | None = None   # the user's pick (kept while it is out of view)
        self.shown_face: int | None = None      # the face the panels showed last
        self.timeline_face: int | None = None   # whose history the timeline plots
        self.generation: int | None = None
        self.latest = None                 # the newest FrameResult

    # ---------------------------------------------------------------------------------------------- updates
    def push(self, result, generation: int, latency_ms: float) -> bool:
        """Take one processed frame. Returns True when it started a new generation (the display was reset)."""
        reset = generation != self.generation
        if reset:
            self.generation = generation
            self.reset()
        if result.ended:
            self.smoother.drop(result.ended)
            for t in result.ended:
                self.last_predictions.pop(t, None)
                self.last_signals.pop(t, None)
        signals = getattr(result, "signals", None) or {}
        for track_id, pred in result.predictions.items():
            self.last_predictions[track_id] = pred
            smoothed = self.smoother.update(track_id, pred.probs)
            self.history.append(track_id, result.frame.time_s, smoothed if self.smoothing else pred.probs)
            sig = signals.get(track_id)
            if sig is not None:
                self.reliability.append(track_id, result.frame.time_s, np.array([sig.reliability], np.float32))
        for track_id, sig in signals.items():
            self.last_signals[track_id] = sig
        self.latency.push(latency_ms)
        self.model_ms.push(result.timings.get("total", 0.0))
        self.latest = result
        return reset

    def reset(self) -> None:
        """Forget every face (a new source, a seek, a loop); the user's pick is the caller's to clear."""
        self.timeline_face = None
        self.smoother.reset()
        self.history.clear()
        self.reliability.clear()
        self.last_predictions.clear()
        self.last_signals.clear()
        self.latency.reset()
        self.model_ms.reset()

    def clear_source(self) -> None:
        """A new source: no frame, no pick, no faces."""
        self.latest = None
        self.selected_face = None
        self.reset()

    def select(self, track_id: int | None) -> None:
        self.selected_face = None if track_id is None else int(track_id)

    # ---------------------------------------------------------------------------------------------- reads
    def boxes(self) -> list[tuple[int, tuple[float, ...]]]:
        """(track id, box) of the newest frame's faces."""
        if self.latest is None:
            return []
        return [(int(f.track_id), tuple(float(v) for v in f.box)) for f in self.latest.faces]

    def follow(self) -> int | None:
        """The face the panels show now (the pick while in view, else the largest); remembered as `shown_face`."""
        self.shown_face = follow_face(self.selected_face, self.boxes())
        return self.shown_face

    def displayed(self, track_id: int) -> Displayed | None:
        """A track's reading as shown: smoothed when smoothing is on; None before its window's first prediction."""
        pred = self.last_predictions.get(track_id)
        if pred is None:
            return None
        probs = self.smoother.get(track_id) if self.smoothing else None
        if probs is None:
            probs = np.asarray(pred.probs, np.float32)
        k = int(np.argmax(probs))
        return Displayed(self.labels[k], float(probs[k]), probs)

    def series(self, track_id: int, span_s: float):
        """(times, probs, reliability times, reliability) of one face over the last span_s seconds, for the plot."""
        t, p = self.history.series(track_id, span_s)
        rt, r = self.reliability.series(track_id, span_s)
        return t, p, rt, r[:, 0] if len(r) else np.zeros(0, np.float32)
