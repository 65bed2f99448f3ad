"""Face alignment and network-input conversion shared by the live app and the training module.

Both sides call the same functions with the same `Preprocess` (read from the model card), so the network sees in
training exactly the crops it sees live: a 5-point similarity alignment to a fixed template, then colour and
mean/std conversion.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# 5-point template in crop fractions (x, y): image-left eye centre, image-right eye centre, nose tip,
# image-left mouth corner, image-right mouth corner. It is the widely used 112x112 face template
# (ArcFace/InsightFace layout) divided by 112: brows to chin, the region expressions live in.
DEFAULT_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.3419, 0.4616), (0.6565, 0.4598), (0.5002, 0.6405), (0.3710, 0.8247), (0.6315, 0.8232))

# The one source of the default normalisation per colour mode, used by training, the crop cache and export alike:
# [0, 1] pixels mapped to [-1, 1] in every channel. Gray and RGB share the value, so a gray network's first
# convolution converts exactly into an RGB one (weights times the luma coefficients, see models.networks).
DEFAULT_MEAN_STD: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "gray": ((0.5,), (0.5,)),
    "rgb": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass(frozen=True)
class Preprocess:
    """How a face becomes a network input. Lives in the model card; never hard-coded elsewhere."""

    input_size: int = 64
    color: str = "gray"  # "gray" (1 channel) or "rgb" (3 channels)
    mean: tuple[float, ...] | None = None  # None: the colour mode's default (DEFAULT_MEAN_STD), one value a channel
    std: tuple[float, ...] | None = None
    template: tuple[tuple[float, float], ...] = field(default=DEFAULT_TEMPLATE)

    def __post_init__(self):
        if self.color not in ("gray", "rgb"):
            raise ValueError(f"colour mode must be 'gray' or 'rgb', not {self.color!r}")
        default_mean, default_std = DEFAULT_MEAN_STD[self.color]
        # frozen dataclass: fill the per-colour defaults once, here, so every caller gets the same numbers
        object.__setattr__(self, "mean", tuple(map(float, default_mean if self.mean is None else self.mean)))
        object.__setattr__(self, "std", tuple(map(float, default_std if self.std is None else self.std)))
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std need {self.channels} values for colour mode {self.color!r}")
        if np.asarray(self.template).shape != (5, 2):
            raise ValueError("the alignment template needs 5 (x, y) points")
        if not 16 <= self.input_size <= 512:
            raise ValueError(f"input size {self.input_size} is outside 16..512")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "color": self.color, "mean": list(self.mean),
                "std": list(self.std), "template": [list(p) for p in self.template]}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(input_size=int(d["input_size"]), color=str(d["color"]), mean=tuple(map(float, d["mean"])),
                   std=tuple(map(float, d["std"])), template=tuple(tuple(map(float, p)) for p in d["template"]))


def alignment_transform(landmarks5: np.ndarray, pre: Preprocess) -> np.ndarray:
    """2x3 similarity transform (rotation, uniform scale, translation) mapping image landmarks onto the template."""
    dst = np.asarray(pre.template, np.float32) * pre.input_size
    src = np.asarray(landmarks5, np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if matrix is None:  # degenerate points (all equal): fall back to least squares, which always answers
        matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=0)
    if matrix is None:
        raise ValueError("cannot align: degenerate landmarks")
    return matrix.astype(np.float32)


def warp_face(image: np.ndarray, matrix: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Aligned crop (S, S, 3) uint8 BGR, or (S, S) for a grayscale input; borders replicated, not black."""
    s = pre.input_size
    return cv2.warpAffine(image, matrix, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_face(image: np.ndarray, landmarks5: np.ndarray, pre: Preprocess) -> np.ndarray:
    return warp_face(image, alignment_transform(landmarks5, pre), pre)


def convert_color(crop: np.ndarray, pre: Preprocess) -> np.ndarray:
    """BGR or gray uint8 crop -> (S, S, C) uint8 in the card's colour mode."""
    if pre.color == "gray":
        gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        return gray[:, :, None]
    rgb = cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB) if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    return rgb


def to_network_input(crops: list[np.ndarray] | np.ndarray, pre: Preprocess) -> np.ndarray:
    """Aligned uint8 crops -> float32 (B, C, S, S), scaled to [0, 1] then normalised by the card's mean/std."""
    batch = np.stack([convert_color(c, pre) for c in crops]).astype(np.float32) / 255.0  # (B, S, S, C)
    batch = (batch - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
