"""Facial blendshapes: 52 ARKit-style scores in [0, 1] per face, from MediaPipe's blendshape network run on the face
mesh landmarks the detector already has (no second landmark model).

    model = BlendshapeModel()                    # weights/face_blendshapes.onnx (converted by models.release.blendshapes)
    scores = model.run(mesh_points_px)           # (478, 2) pixels -> (52,) float32, in BLENDSHAPE_NAMES order

The network reads 146 of the 478 refined-mesh landmarks (LANDMARK_SUBSET, taken from MediaPipe's
face_blendshapes_graph.cc), among them the 10 iris points 468-477, which the legacy face mesh only gives with
`refine_landmarks=True` (app.faces turns it on). It normalises position and scale itself, so pixels of any frame size
go in as they are.

The scores are approximate proxies of FACS action units, not AUs: common correspondences (approximate, from ARKit and
FACS descriptions) are listed in FACS_PROXIES and in docs/export-format.md. `_neutral` (index 0) is MediaPipe's own
catch-all and is kept for completeness.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app import paths
from app.signals.names import BLENDSHAPE_NAMES

# Indices into the 478-point refined mesh, in the order the network takes them (MediaPipe face_blendshapes_graph.cc).
LANDMARK_SUBSET = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251,
    263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386,
    387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477)

# Approximate FACS correspondences (documentation only; columns keep the blendshape names).
FACS_PROXIES = {
    "browInnerUp": "AU1 (inner brow raiser)", "browOuterUpLeft": "AU2 (outer brow raiser)",
    "browOuterUpRight": "AU2 (outer brow raiser)", "browDownLeft": "AU4 (brow lowerer)",
    "browDownRight": "AU4 (brow lowerer)", "eyeWideLeft": "AU5 (upper lid raiser)",
    "eyeWideRight": "AU5 (upper lid raiser)", "cheekSquintLeft": "AU6 (cheek raiser)",
    "cheekSquintRight": "AU6 (cheek raiser)", "eyeSquintLeft": "AU7 (lid tightener)",
    "eyeSquintRight": "AU7 (lid tightener)", "noseSneerLeft": "AU9 (nose wrinkler)",
    "noseSneerRight": "AU9 (nose wrinkler)", "mouthUpperUpLeft": "AU10 (upper lip raiser)",
    "mouthUpperUpRight": "AU10 (upper lip raiser)", "mouthSmileLeft": "AU12 (lip corner puller)",
    "mouthSmileRight": "AU12 (lip corner puller)", "mouthDimpleLeft": "AU14 (dimpler)",
    "mouthDimpleRight": "AU14 (dimpler)", "mouthFrownLeft": "AU15 (lip corner depressor)",
    "mouthFrownRight": "AU15 (lip corner depressor)", "mouthShrugLower": "AU17 (chin raiser)",
    "mouthPucker": "AU18 (lip pucker)", "mouthStretchLeft": "AU20 (lip stretcher)",
    "mouthStretchRight": "AU20 (lip stretcher)", "mouthFunnel": "AU22 (lip funneler)",
    "mouthPressLeft": "AU24 (lip pressor)", "mouthPressRight": "AU24 (lip pressor)",
    "jawOpen": "AU26/AU27 (jaw drop / mouth stretch)", "eyeBlinkLeft": "AU45 (blink)",
    "eyeBlinkRight": "AU45 (blink)",
}

DEFAULT_FILE = "face_blendshapes.onnx"
N_MESH_POINTS = 478   # the refined mesh: 468 face points + 10 iris points


class BlendshapeError(RuntimeError):
    """The blendshape network is missing or does not match its card (one line)."""


def default_path() -> Path:
    return paths.WEIGHTS_DIR / DEFAULT_FILE


class BlendshapeModel:
    """The converted network on ONNX Runtime (CPU, one thread: ~0.1-0.3 ms a face). Not thread-safe."""

    def __init__(self, path: str | Path | None = None, verify: bool = True):
        import onnxruntime as ort

        self.path = Path(path) if path is not None else default_path()
        card_path = self.path.with_suffix(".json")
        try:
            data = self.path.read_bytes()
            card = json.loads(card_path.read_text())
        except (OSError, ValueError) as e:
            raise BlendshapeError(f"cannot read the blendshape network {self.path.name} or its card: {e}") from None
        if verify:
            import hashlib

            if hashlib.sha256(data).hexdigest() != card.get("sha256"):
                raise BlendshapeError(f"{self.path.name} does not match the sha256 in {card_path.name}")
        if tuple(card.get("names", ())) != BLENDSHAPE_NAMES or tuple(card.get("landmark_subset", ())) != \
                LANDMARK_SUBSET:
            raise BlendshapeError(f"{card_path.name}: names or landmark subset differ from app.signals.blendshapes")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        self._subset = np.array(LANDMARK_SUBSET, np.int64)

    def run(self, mesh_points: np.ndarray) -> np.ndarray:
        """(478, 2) refined-mesh landmarks in pixels -> (52,) float32 scores in [0, 1]."""
        pts = np.asarray(mesh_points, np.float32)
        if pts.ndim != 2 or pts.shape[0] != N_MESH_POINTS or pts.shape[1] < 2:
            raise ValueError(f"blendshapes need the {N_MESH_POINTS}-point refined mesh (refine_landmarks=True), "
                             f"got {pts.shape}")
        x = np.ascontiguousarray(pts[self._subset, :2])[None]  # (1, 146, 2)
        return self.session.run(["scores"], {"points": x})[0].reshape(-1).astype(np.float32)
