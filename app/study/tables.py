"""The study's tables from a session's rows in one pass: epochs around each marker and summaries over intervals,
per face, with coverage and dominant emotion (raw per-(epoch, face) sums only: O(markers x faces + intervals x
faces) memory). Written atomically as `<session>_events.csv`, `_epochs.csv`, `_summary.csv`. Stdlib only."""
from __future__ import annotations

import bisect
import csv
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from app.durable import atomic_write
from app.emotions import EMOTIONS
from app.study.baseline import Baseline, face_id_of
from app.study.options import Marker, StudyConfig
from app.timeline.rows import TimelineRow


PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{e}" for e in EMOTIONS)
CORRECTED_COLUMNS: tuple[str, ...] = tuple(f"p_{e}_corrected" for e in EMOTIONS)
EVENTS_COLUMNS: tuple[str, ...] = ("marker_id", "time_s", "label")
EPOCHS_COLUMNS: tuple[str, ...] = ("marker_id", "marker_time_s", "label", "face_id", "start_s", "end_s", "n_frames",
                                   "coverage", "dominant", *PROB_COLUMNS)


SUMMARY_COLUMNS: tuple[str, ...] = ("start_s", "end_s", "face_id", "n_frames", "coverage", "dominant", *PROB_COLUMNS)
SIDECAR_KINDS = ("events", "epochs", "summary")
_STEP_RESOLUTION_S = 1e-4  # frame steps are counted at 0.1 ms: a camera's jittery times fall into a few bins


class _Acc:
    """Running sums for one (epoch or interval, face)."""
    __slots__ = ("n", "sums")

    def __init__(self) -> None:
        self.n = 0
        self.sums = [0.0] * len(EMOTIONS)

    def add(self, probs) -> None:
        self.n += 1
        for i, p in enumerate(probs):
            self.sums[i] += p

    def means(self) -> list[float]:
        return [s / self.n for s in self.sums]


def _dominant(means: list[float]) -> str:
    """The emotion with the highest mean probability (ties: EMOTIONS order)."""
    return EMOTIONS[max(range(len(means)), key=lambda i: (means[i], -i))]


class StudyTables:
    """Epochs and interval summaries of one session, accumulated from its rows in one streaming pass.

    Coverage is the share of the window's frames in which that face had a row: its row count over the number of
    frames expected in the window (the slots of the session's frame grid in the window clipped to the recorded span;
    the grid's period is the most common step between consecutive frame times), capped at 1."""

    def __init__(self, markers: Iterable[Marker], config: StudyConfig):
        self.markers = sorted(markers, key=lambda m: (m.time_s, m.marker_id))
        self._times = [m.time_s for m in self.markers]
        self.config = config
        self._epochs: list[dict[int, _Acc]] = [{} for _ in self.markers]
        self._intervals: dict[int, dict[int, _Acc]] = {}
        self._steps: Counter = Counter()              # frame steps, binned at 0.1 ms -> how many
        self._step_sums: dict[int, float] = {}        # bin -> the sum of its steps (the period is their mean)
        self._last_t: float | None = None
        self.first_t = math.inf
        self.last_t = -math.inf

    def add(self, row: TimelineRow) -> None:
        t = row.time_s
        if self._last_t is not None and t > self._last_t:
            step = t - self._last_t
            k = round(step / _STEP_RESOLUTION_S)
            self._steps[k] += 1
            self._step_sums[k] = self._step_sums.get(k, 0.0) + step
        if self._last_t is None or t != self._last_t:
            self._last_t = t
        self.first_t = min(self.first_t, t)
        self.last_t = max(self.last_t, t)
        fid = face_id_of(row)
        if fid is None:
            return
        ep = self.config.epoch
        # marker times m with m - pre <= t < m + post, i.e. t - post < m <= t + pre
        lo, hi = bisect.bisect_right(self._times, t - ep.post_s), bisect.bisect_right(self._times, t + ep.pre_s)
        for k in range(lo, hi):
            self._epochs[k].setdefault(fid, _Acc()).add(row.probs)
        if self.config.summary_every_s is not None:
            k = math.floor(t / self.config.summary_every_s)
            self._intervals.setdefault(k, {}).setdefault(fid, _Acc()).add(row.probs)

    @property
    def frame_period_s(self) -> float | None:
        if not self._steps:
            return None
        k = max(self._steps.items(), key=lambda kv: (kv[1], -kv[0]))[0]  # the most common step (ties: shorter)
        return self._step_sums[k] / self._steps[k]

    def _coverage(self, n: int, start: float, end: float) -> float:
        period = self.frame_period_s
        if not math.isfinite(self.first_t):
            return 0.0
        if period is None:  # a single frame time in the whole session
            return 1.0 if n and start <= self.first_t < end else 0.0
        # frames expected: the slots last_t - k * period (the frame grid, anchored at the newest frame: a first
        # frame off the grid does not shift it) in [start, end) within the recorded span
        lo, hi = max(start, self.first_t), min(end, self.last_t + period)
        if hi <= lo:
            return 0.0
        eps = 1e-6
        expected = math.ceil((hi - self.last_t) / period - eps) - math.ceil((lo - self.last_t) / period - eps)
        return 0.0 if expected <= 0 else min(1.0, n / expected)

    @staticmethod
    def _prob_cells(acc: _Acc | None, fid, baseline: Baseline | None) -> list:
        if acc is None or acc.n == 0:
            return [""] + [""] * len(EMOTIONS) + ([""] * len(EMOTIONS) if baseline is not None else [])
        means = acc.means()
        cells: list = [_dominant(means), *means]
        if baseline is not None:
            b = baseline.mean_for(fid)
            cells += [m - bm for m, bm in zip(means, b)] if b is not None else [""] * len(EMOTIONS)
        return cells

    def epoch_rows(self, baseline: Baseline | None = None) -> Iterator[list]:
        """One row per (marker, face with frames in its epoch); a marker whose epoch has no face gets one row with
        an empty face_id and n_frames 0, so every marker is in the table."""
        ep = self.config.epoch
        for m, faces in zip(self.markers, self._epochs):
            start, end = m.time_s - ep.pre_s, m.time_s + ep.post_s
            head = [m.marker_id, m.time_s, m.label]
            if not faces:
                yield [*head, "", start, end, 0, 0.0, *self._prob_cells(None, None, baseline)]
            for fid in sorted(faces):
                acc = faces[fid]
                yield [*head, fid, start, end, acc.n, self._coverage(acc.n, start, end),
                       *self._prob_cells(acc, fid, baseline)]

    def summary_rows(self, baseline: Baseline | None = None) -> Iterator[list]:
        """One row per (interval, face) from the session's first to its last interval; an interval without any
        face gets one row with an empty face_id and n_frames 0 (a uniform time base)."""
        every = self.config.summary_every_s
        if every is None or not math.isfinite(self.first_t):
            return
        for k in range(math.floor(self.first_t / every), math.floor(self.last_t / every) + 1):
            start, end = k * every, (k + 1) * every
            faces = self._intervals.get(k, {})
            if not faces:
                yield [start, end, "", 0, 0.0, *self._prob_cells(None, None, baseline)]
            for fid in sorted(faces):
                acc = faces[fid]
                yield [start, end, fid, acc.n, self._coverage(acc.n, start, end), *self._prob_cells(acc, fid, baseline)]


def write_table(path: Path, columns: Iterable[str], rows: Iterable[list]) -> Path:
    def write(f: IO) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(columns))
        w.writerows(rows)
    atomic_write(path, write)
    return path


def sidecar_path(session_file: Path | str, kind: str) -> Path:
    """`out.csv` -> `out_events.csv` (kind: events, epochs, summary)."""
    p = Path(session_file)
    stem = p.stem if p.suffix.lower() in (".csv", ".json") else p.name
    return p.with_name(f"{stem}_{kind}.csv")
