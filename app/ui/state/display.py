"""Qt-free display logic: where the frame goes in the view, which face a click hits, which face the panels follow,
the smoothed probabilities shown (display only: exports stay raw) and the attention strip's bars.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


def fit_rect(src_w: int, src_h: int, dst_w: float, dst_h: float) -> tuple[float, float, float, float, float]:
    """The largest rectangle of the source's aspect ratio centred in the destination (letterbox or pillarbox).

    Returns (x, y, w, h, scale) with scale = view pixels per source pixel; all zeros for an empty source or view.
    """
    if src_w <= 0 or src_h <= 0 or dst_w <= 0 or dst_h <= 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    scale = min(dst_w / src_w, dst_h / src_h)
    w, h = src_w * scale, src_h * scale
    return (dst_w - w) / 2.0, (dst_h - h) / 2.0, w, h, scale


def view_to_frame(px: float, py: float, src_w: int, src_h: int, dst_w: float, dst_h: float) -> tuple[float, float] | None:
    """A point in view pixels -> the same point in frame pixels, or None when it falls outside the shown frame."""
    x, y, w, h, scale = fit_rect(src_w, src_h, dst_w, dst_h)
    if scale == 0 or not (x <= px <= x + w and y <= py <= y + h):
        return None
    return (px - x) / scale, (py - y) / scale


def face_at(boxes: Iterable[tuple[int, Sequence[float]]], fx: float, fy: float) -> int | None:
    """The track id of the face whose box (x0, y0, x1, y1) contains the frame point; the smallest box wins when boxes
    overlap (a face in front of a larger one is the one a user aims at). None when no box contains it."""
    best, best_area = None, float("inf")
    for track_id, (x0, y0, x1, y1) in boxes:
        if x0 <= fx <= x1 and y0 <= fy <= y1:
            area = (x1 - x0) * (y1 - y0)
            if area < best_area:
                best, best_area = int(track_id), area
    return best


def follow_face(selected: int | None, boxes: Sequence[tuple[int, Sequence[float]]]) -> int | None:
    """Which track the panels show: the user's pick while it is in view, else the largest face (None without faces).

    A pick that leaves the frame is not forgotten by the caller; this only decides what to show on this frame."""
    if not boxes:
        return None
    ids = [int(t) for t, _ in boxes]
    if selected is not None and selected in ids:
        return selected
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for _, b in boxes]
    return ids[int(np.argmax(areas))]


class LabelSmoother:
    """Exponential moving average of each track's probabilities, for the display only (exports stay raw).

    `factor` is the weight of the newest frame (1.0 = no smoothing). Tracks the engine reports as ended are dropped so
    a reused id starts fresh."""

    def __init__(self, factor: float = 0.35):
        if not 0.0 < factor <= 1.0:
            raise ValueError(f"smoothing factor must be in (0, 1], not {factor}")
        self.factor = factor
        self._state: dict[int, np.ndarray] = {}

    def update(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        p = np.asarray(probs, np.float32)
        prev = self._state.get(track_id)
        out = p.copy() if prev is None else (self.factor * p + (1.0 - self.factor) * prev).astype(np.float32)
        self._state[track_id] = out
        return out

    def get(self, track_id: int) -> np.ndarray | None:
        return self._state.get(track_id)

    def drop(self, track_ids: Iterable[int]) -> None:
        for t in track_ids:
            self._state.pop(int(t), None)

    def reset(self) -> None:
        self._state.clear()


@dataclass(frozen=True)
class AttentionCell:
    """One frame of the FAN window as the strip draws it: the aligned crop and two bar heights in [0, 1]."""

    frame_index: int
    crop: np.ndarray | None
    alpha: float          # self-attention alpha, already in [0, 1] (a sigmoid)
    weight: float         # final weight (alpha*beta, normalised to sum 1 over the window)
    weight_height: float  # weight / max weight: the frame the decision rests on most reaches full height
    peak: bool = False    # the frame with the largest weight, when the weights are not (nearly) uniform


def attention_cells(alpha: Sequence[float], weight: Sequence[float], frame_indices: Sequence[int],
                    crops: Sequence[np.ndarray] | None) -> list[AttentionCell]:
    """The strip's cells for one prediction, oldest frame first.

    The final weights sum to 1 over the window, so with 16 frames each is ~0.06; drawn at that scale they are
    invisible. They are drawn relative to the window's largest weight instead, and alpha (an absolute sigmoid) as is.
    """
    a = np.clip(np.asarray(alpha, np.float32).reshape(-1), 0.0, 1.0)
    w = np.clip(np.asarray(weight, np.float32).reshape(-1), 0.0, None)
    n = min(len(a), len(w), len(frame_indices))
    if crops is not None:
        n = min(n, len(crops))
    top = float(w[:n].max()) if n else 0.0
    # a peak is only worth pointing at when one frame stands out: within 5% of each other, no frame does
    peak = int(np.argmax(w[:n])) if n > 1 and top > 0 and float(w[:n].min()) < 0.95 * top else -1
    return [AttentionCell(frame_index=int(frame_indices[i]), crop=None if crops is None else crops[i],
                          alpha=float(a[i]), weight=float(w[i]),
                          weight_height=float(w[i] / top) if top > 0 else 0.0, peak=i == peak) for i in range(n)]


def format_clock(seconds: float) -> str:
    """Media time as m:ss.s (h:mm:ss past an hour), for the transport bar."""
    seconds = max(0.0, float(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{int(s):02d}" if h >= 1 else f"{int(m)}:{s:04.1f}"
