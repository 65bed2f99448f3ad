"""A session's summary from its rows, in constant memory: per face its time span, reliability-weighted shares and
mean probabilities, dominant emotion and coverage (the share of the session's frames on which it was reliably
read); `format_summary` prints it in a few lines. Stdlib only."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.emotions import EMOTIONS

if TYPE_CHECKING:
    from app.timeline.rows import TimelineRow


NO_FACE_MESSAGE = "no face found"
RELIABLE = 0.5  # a row counts towards a face's coverage when its reliability is at least this


class FaceStats:
    """Running totals for one face, so summary() costs O(faces), not O(rows), during a long live session.

    Each row weighs its reliability (1 for a row without one, as in version 1 files): shares and mean probabilities
    are reliability-weighted, so a blurred, turned or tiny face counts less than a clear one. `reliable` counts the
    rows with reliability >= RELIABLE, for the face's coverage of the session."""
    __slots__ = ("counts", "first", "last", "n", "prob_raw", "prob_sums", "reliable", "rel_sum", "weights")

    def __init__(self) -> None:
        self.n = 0
        self.first = math.inf
        self.last = -math.inf
        self.counts = [0] * len(EMOTIONS)
        self.weights = [0.0] * len(EMOTIONS)    # reliability-weighted counts
        self.prob_sums = [0.0] * len(EMOTIONS)  # reliability-weighted
        self.prob_raw = [0.0] * len(EMOTIONS)
        self.reliable = 0
        self.rel_sum = 0.0

    def add(self, row: TimelineRow) -> None:
        w = 1.0 if row.reliability is None else row.reliability
        self.n += 1
        self.first = min(self.first, row.time_s)
        self.last = max(self.last, row.time_s)
        k = EMOTIONS.index(row.label)
        self.counts[k] += 1
        self.weights[k] += w
        for i, p in enumerate(row.probs):
            self.prob_sums[i] += w * p
            self.prob_raw[i] += p
        self.rel_sum += w
        self.reliable += w >= RELIABLE

    def to_dict(self, n_frames: int = 0) -> dict:
        total = sum(self.weights)
        if total > 0:
            weights, probs = self.weights, self.prob_sums
        else:  # every row has reliability 0: plain counts rather than a division by zero
            weights, probs, total = [float(c) for c in self.counts], self.prob_raw, float(self.n)
        # Ties on the weighted count go to the class with the higher mean probability, then to EMOTIONS order.
        dominant = max(range(len(EMOTIONS)), key=lambda i: (weights[i], probs[i], -i))
        return {
            "n_rows": self.n, "first_time_s": self.first, "last_time_s": self.last,
            "duration_s": self.last - self.first, "dominant": EMOTIONS[dominant],
            "shares": {name: c / total for name, c in zip(EMOTIONS, weights)},
            "mean_probs": {name: s / total for name, s in zip(EMOTIONS, probs)},
            "mean_reliability": self.rel_sum / self.n,
            "coverage": self.reliable / n_frames if n_frames else None,
        }


class FrameCounter:
    """Counts a session's frames from its rows in order (a frame's rows are consecutive), in constant memory."""
    __slots__ = ("last", "n")

    def __init__(self) -> None:
        self.n = 0
        self.last: int | None = None

    def add(self, frame_index: int) -> None:
        if frame_index != self.last:
            self.n += 1
            self.last = frame_index


def summarise(stats: dict[int, FaceStats], n_frames: int = 0) -> dict:
    n_rows = sum(s.n for s in stats.values())
    out: dict[str, Any] = {"n_rows": n_rows, "n_faces": len(stats), "n_frames": n_frames,
                           "faces": {fid: stats[fid].to_dict(n_frames) for fid in sorted(stats)}}
    if n_rows == 0:
        out["message"] = NO_FACE_MESSAGE
    return out


def summarize_rows(rows: Iterable[TimelineRow], n_frames: int | None = None) -> dict:
    """The same summary SessionRecorder.summary() gives, for rows read back from a file. n_frames (coverage's
    denominator) is the session's frames processed; a file's rows tell it only with --all-frames (a JSON export's
    summary has it), so by default it counts the frames the rows are on."""
    stats: dict[int, FaceStats] = {}
    frames = FrameCounter()
    for r in rows:
        frames.add(r.frame_index)
        if r.face_found:
            stats.setdefault(r.face_id, FaceStats()).add(r)
    return summarise(stats, frames.n if n_frames is None else n_frames)


def format_summary(summary: dict) -> str:
    """A few human lines: one per face with its time span and its two most frequent emotions."""
    if not summary.get("faces"):
        return summary.get("message", NO_FACE_MESSAGE)
    n_faces = summary["n_faces"]
    lines = [f"{n_faces} face{'s' if n_faces != 1 else ''}, {summary['n_rows']} rows"]
    for fid, face in summary["faces"].items():
        top = sorted(face["shares"].items(), key=lambda kv: -kv[1])
        mix = ", ".join(f"{name} {share:.0%}" for name, share in top[:3] if share > 0)
        cov = face.get("coverage")
        cov = f", reliable on {cov:.0%} of the frames" if cov is not None else ""
        lines.append(f"  face {fid}: {face['first_time_s']:.2f}-{face['last_time_s']:.2f} s "
                     f"({face['n_rows']} rows{cov}), mostly {face['dominant']} [{mix}]")
    return "\n".join(lines)
