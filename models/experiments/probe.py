"""The corruption probe: degrade or replace frames of a clip and see how each head's accuracy moves.

Corruptions of one frame (on the aligned crop, before the embedder, so the embedder sees what a camera would give):
    blur        Gaussian blur, sigma 3 px at 64 px (a face in motion or out of focus)
    occlusion   a black box over the lower face (x 15-85 %, y 45-95 %: nose and mouth, a hand or a cup)
    dark        intensity x 0.12 plus sensor noise (a face in the dark)
    other_face  the frame is REPLACED by another person's face with another label (a tracker switching faces)

`replace_frames` builds probe clips: in each clip, k frames at seeded random positions are swapped for their
corrupted version (or another face's clean feature). The same positions are used for every head, so the heads are
compared on identical inputs. FAN's claim (Meng et al., ICIP 2019) is that attention weights such frames down where
score fusion averages them in; models.experiments.compare reports whatever happens.
"""
from __future__ import annotations

import numpy as np
import torch

from models.data.augment import _gaussian_blur

CORRUPTIONS = ("blur", "occlusion", "dark", "other_face")
PIXEL_CORRUPTIONS = ("blur", "occlusion", "dark")


def corrupt(x: torch.Tensor, kind: str, g: torch.Generator) -> torch.Tensor:
    """x (B, C, S, S) in [0, 1] -> the corrupted crops (same shape, in [0, 1])."""
    if kind == "blur":
        return _gaussian_blur(x, torch.full((len(x),), 3.0 * x.shape[-1] / 64)).clamp(0, 1)
    if kind == "occlusion":
        s = x.shape[-1]
        out = x.clone()
        out[..., int(0.45 * s):int(0.95 * s), int(0.15 * s):int(0.85 * s)] = 0.0
        return out
    if kind == "dark":
        return (x * 0.12 + 0.02 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    raise ValueError(f"unknown pixel corruption {kind!r} (known: {', '.join(PIXEL_CORRUPTIONS)})")


def other_face_rows(labels: np.ndarray, groups: np.ndarray, seed: int) -> np.ndarray:
    """For each row, a row of another group (person / image) with another label, drawn with a seed."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), np.int64)
    for i in range(len(labels)):
        pool = np.flatnonzero((labels != labels[i]) & (groups != groups[i]))
        out[i] = rng.choice(pool)
    return out


def replace_frames(clips: torch.Tensor, replacement: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """clips (N, T, D) clean features, replacement (N, T, D) what each frame becomes when it is hit -> (N, T, D)
    with k frames per clip (seeded random positions, the same for every call with this seed and shape) replaced."""
    n, t, _ = clips.shape
    if not 0 < k <= t:
        raise ValueError(f"k must be in 1..{t}, got {k}")
    rng = np.random.default_rng(seed)
    hit = np.zeros((n, t), bool)
    for i in range(n):
        hit[i, rng.choice(t, k, replace=False)] = True
    mask = torch.from_numpy(hit)[..., None]
    return torch.where(mask, replacement, clips)
