"""How far to trust one row's expression reading: a score in [0, 1] from what the frame and the network say about
the face, fitted on labelled data (models.fit_reliability) and shipped as a few numbers in weights/reliability.json.

    model = ReliabilityModel()                                        # weights/reliability.json
    r = model.score(alpha=0.7, face_px=60, yaw=10, pitch=-5, sharpness=4.1, confidence=0.9)

The score is a logistic regression, P(the label is right | features), over these features (FEATURES):
    alpha       the newest frame's FAN self-attention (the network's own estimate of how readable the frame is)
    log_px      log2 of the inter-ocular distance in frame pixels (face size; clipped to [2, 9], 4-512 px)
    abs_yaw     |yaw| / 90 (head turned away)
    abs_pitch   |pitch| / 90 (head tilted up or down)
    sharpness   log1p of the variance of the Laplacian of the aligned gray crop (blur, low light)
    confidence  the top probability (what the model itself says; see the fit's record for whether it is used)
MediaPipe's legacy face mesh gives no detection score per face, so none is used. The fit keeps the combination
monotone: each weight must have its expected sign (alpha, size, sharpness, confidence up; |yaw|, |pitch| down); a
weight fitted with the wrong sign is fixed at 0 and the rest refitted. The fit's data, splits, AUROC and calibration
are recorded in the JSON file (and docs/results.md).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app import paths

FEATURES = ("alpha", "log_px", "abs_yaw", "abs_pitch", "sharpness", "confidence")
SIGNS = {"alpha": 1, "log_px": 1, "abs_yaw": -1, "abs_pitch": -1, "sharpness": 1, "confidence": 1}
DEFAULT_FILE = "reliability.json"


def sharpness(crop: np.ndarray) -> float:
    """log1p(variance of the Laplacian) of an aligned crop (gray or BGR uint8): low for blurred or dark faces."""
    gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(math.log1p(cv2.Laplacian(gray, cv2.CV_32F).var()))


def feature_vector(alpha: float, face_px: float, yaw: float, pitch: float, sharp: float,
                   confidence: float) -> np.ndarray:
    """(len(FEATURES),) float64 in FEATURES order. A pose that could not be solved (NaN) counts as frontal."""
    yaw = 0.0 if not math.isfinite(yaw) else yaw
    pitch = 0.0 if not math.isfinite(pitch) else pitch
    log_px = math.log2(min(max(float(face_px), 4.0), 512.0))
    return np.array([float(alpha), log_px, min(abs(yaw), 90.0) / 90.0, min(abs(pitch), 90.0) / 90.0, float(sharp),
                     float(confidence)], np.float64)


@dataclass(frozen=True)
class ReliabilityModel:
    """score = sigmoid(bias + sum(weight_f * (x_f - mean_f) / std_f)); features not used have weight 0."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    record: dict | None = None     # the fit: data, splits, AUROC, ECE, temperature (from the JSON file)

    @classmethod
    def load(cls, path: str | Path | None = None) -> ReliabilityModel:
        path = Path(path) if path is not None else paths.WEIGHTS_DIR / DEFAULT_FILE
        try:
            doc = json.loads(path.read_text())
            if tuple(doc["features"]) != FEATURES:
                raise ValueError(f"features {doc['features']} differ from app.signals.reliability's {FEATURES}")
            model = cls(tuple(map(float, doc["mean"])), tuple(map(float, doc["std"])),
                        tuple(map(float, doc["weights"])), float(doc["bias"]), doc)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RuntimeError(f"cannot read the reliability model {path.name}: {e}") from None
        for f, w in zip(FEATURES, model.weights):
            if w * SIGNS[f] < 0:
                raise RuntimeError(f"{path.name}: the weight of {f} has the wrong sign (the score must be monotone)")
        return model

    @classmethod
    def for_model(cls, card_path: str | Path, model: str) -> tuple[ReliabilityModel, str | None]:
        """The fit for the model of the card at `card_path` -> (fit, a one-line note or None): the reliability.json
        beside the card, else the shipped one. The score reads the model's own attention and confidence, so a fit
        made for another model is still used, and the note says its scores are only a rough guide."""
        beside = Path(card_path).parent / DEFAULT_FILE
        path = beside if beside.is_file() else paths.WEIGHTS_DIR / DEFAULT_FILE
        fit = cls.load(path)
        fitted_for = (fit.record or {}).get("model")
        if fitted_for is None or fitted_for == model:
            return fit, None
        return fit, (f"the reliability fit {path.name} was made for {fitted_for}, not {model}: its scores are only a "
                     f"rough guide for this model (fit one with python -m models.fit_reliability)")

    def logit(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return z @ np.asarray(self.weights) + self.bias

    def score_features(self, x: np.ndarray) -> np.ndarray:
        """(N, F) or (F,) feature vectors -> reliability in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def score(self, alpha: float, face_px: float, yaw: float, pitch: float, sharpness: float,
              confidence: float) -> float:
        return float(self.score_features(feature_vector(alpha, face_px, yaw, pitch, sharpness, confidence)))
