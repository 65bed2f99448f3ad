"""Per-face research signals beside the emotion reading: 52 blendshapes, head pose and a reliability score.

    extractor = SignalExtractor()
    measured = extractor.measure(face, frame_shape)          # blendshapes, pose, sharpness (needs face.mesh, crop)
    signals = extractor.finish(measured, prediction)         # + reliability, from the prediction's alpha and confidence

Pure per-frame code (the pipeline calls it after recognition); ~0.3 ms a face on one CPU thread, shown as its own
`signals` stage in `python -m app.tools.bench`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.signals.blendshapes import BLENDSHAPE_NAMES, BlendshapeModel
from app.signals.pose import HeadPose, PoseEstimator
from app.signals.reliability import ReliabilityModel, feature_vector, sharpness

N_BLENDSHAPES = len(BLENDSHAPE_NAMES)


@dataclass(frozen=True)
class Measured:
    """What the face alone says (before recognition)."""

    blendshapes: np.ndarray   # (52,) float32 in [0, 1], BLENDSHAPE_NAMES order
    pose: HeadPose
    sharpness: float          # log1p(var(Laplacian)) of the aligned crop
    face_px: float            # inter-ocular distance, frame pixels


@dataclass(frozen=True)
class FaceSignals:
    """One face's signals on one frame (what the export's reliability, yaw/pitch/roll and bs_* columns hold)."""

    blendshapes: np.ndarray   # (52,) in [0, 1]; NaN when the mesh has no iris points (refine_landmarks off)
    yaw: float
    pitch: float
    roll: float
    sharpness: float
    face_px: float
    reliability: float        # in [0, 1]

    def __post_init__(self):
        b = np.asarray(self.blendshapes, np.float32).reshape(-1)
        if b.shape != (N_BLENDSHAPES,):
            raise ValueError(f"blendshapes must be {N_BLENDSHAPES} values, got {b.shape}")
        object.__setattr__(self, "blendshapes", b)
        if not 0.0 <= self.reliability <= 1.0:
            raise ValueError(f"reliability must be in [0, 1], got {self.reliability}")

    def top_blendshapes(self, k: int = 5, skip_neutral: bool = True) -> list[tuple[str, float]]:
        """The k largest scores as (name, score), largest first (MediaPipe's `_neutral` left out by default)."""
        order = np.argsort(-self.blendshapes, kind="stable")
        out = [(BLENDSHAPE_NAMES[i], float(self.blendshapes[i])) for i in order
               if not (skip_neutral and BLENDSHAPE_NAMES[i] == "_neutral")]
        return out[:k]


class SignalExtractor:
    """Blendshape network + pose solver + reliability model. Not thread-safe: one per pipeline."""

    def __init__(self, blendshapes: BlendshapeModel | None = None, pose: PoseEstimator | None = None,
                 reliability: ReliabilityModel | None = None):
        self.blendshapes = blendshapes or BlendshapeModel()
        self.pose = pose or PoseEstimator()
        self.reliability = reliability or ReliabilityModel.load()

    def measure(self, face, frame_shape: tuple[int, int]) -> Measured:
        if face.mesh is None or face.crop is None:
            raise ValueError("signals need the face's mesh and aligned crop")
        mesh = face.mesh
        if len(mesh) >= 478:
            bs = self.blendshapes.run(mesh)
        else:  # a mesh without iris points (refine_landmarks off): no blendshapes
            bs = np.full(N_BLENDSHAPES, np.nan, np.float32)
        return Measured(bs, self.pose.estimate(mesh, frame_shape), sharpness(face.crop), float(face.size))

    def finish(self, m: Measured, prediction) -> FaceSignals:
        alpha = float(prediction.alpha[-1])
        x = feature_vector(alpha, m.face_px, m.pose.yaw, m.pose.pitch, m.sharpness, float(prediction.confidence))
        r = float(self.reliability.score_features(x))
        return FaceSignals(m.blendshapes, m.pose.yaw, m.pose.pitch, m.pose.roll, m.sharpness, m.face_px,
                           min(max(r, 0.0), 1.0) if math.isfinite(r) else 0.0)
