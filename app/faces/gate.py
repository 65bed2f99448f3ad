"""A face gate for the headless replay: on frames with no tracked face, decide cheaply whether the face mesh runs.

While no face is tracked, MediaPipe's face mesh runs its own face detector on the whole frame every call (its
cost grows with the frame), and most of a long recording's empty stretches find nothing. A gate skips
the mesh on such frames:

    off        the mesh runs on every frame (the default: rows exactly as before)
    detector   MediaPipe's short-range face detector (BlazeFace) looks first; the mesh runs only when it finds a
               face, or while a face is tracked
    stride:K   with no tracked face the mesh runs on every K-th frame only, so a face that enters is found up to
               K-1 frames late (its first rows are missing)

A gated frame is one the mesh never saw: it yields no faces, exactly as a mesh call that finds none. The gate never
acts while a face is tracked, so tracking, alignment and everything after it are untouched there. Whether the rows
stay identical, and what each mode saves, is measured by `python -m app.tools.bench --gate MODE` (docs/results.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

GATE_MODES = ("off", "detector", "stride")


@dataclass(frozen=True)
class GateConfig:
    mode: str = "off"
    stride: int = 4                   # stride mode: the mesh on every K-th frame without a tracked face
    min_detection_confidence: float = 0.5

    def __post_init__(self) -> None:
        if self.mode not in GATE_MODES:
            raise ValueError(f"gate mode must be one of {', '.join(GATE_MODES)}, got {self.mode!r}")
        if self.stride < 1:
            raise ValueError(f"gate stride must be >= 1, got {self.stride}")

    @classmethod
    def parse(cls, text: str) -> GateConfig:
        """'off', 'detector' or 'stride:K' (a command-line value)."""
        mode, _, k = text.partition(":")
        if mode == "stride":
            try:
                return cls(mode="stride", stride=int(k or 4))
            except ValueError:
                raise ValueError(f"gate stride:K needs a whole number K >= 1, got {text!r}") from None
        if k:
            raise ValueError(f"gate {mode!r} takes no value, got {text!r}")
        return cls(mode=mode)


class FaceGate:
    """Per stream: `allows(image, tracking)` says whether the mesh should run on this frame. Not thread-safe."""

    def __init__(self, config: GateConfig = GateConfig()):
        self.config = config
        self._idle = 0            # frames since the last mesh call while no face was tracked
        self._detector = None
        self.calls = {"mesh": 0, "gated": 0}
        if config.mode == "detector":
            from app.faces.detect import mediapipe_solutions

            self._detector = mediapipe_solutions().face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=config.min_detection_confidence)

    def allows(self, image_bgr: np.ndarray, tracking: bool) -> bool:
        ok = self._decide(image_bgr, tracking)
        self.calls["mesh" if ok else "gated"] += 1
        return ok

    def _decide(self, image_bgr: np.ndarray, tracking: bool) -> bool:
        mode = self.config.mode
        if mode == "off" or tracking:
            self._idle = 0
            return True
        if mode == "stride":
            run = self._idle % self.config.stride == 0
            self._idle += 1
            return run
        result = self._detector.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        return bool(result.detections)

    def reset(self) -> None:
        self._idle = 0

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
