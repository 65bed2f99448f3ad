"""The study workflow on top of a session's rows: event markers, epochs around them, interval summaries and a
neutral baseline. Qt-free, pure Python + stdlib (pandas only in the tests).

Contract (file formats in docs/export-format.md, "Study files"):

* `Marker(marker_id, time_s, label)`: an event at a media time (a stimulus onset, a key press in the window).
  `read_markers(path)` reads a stimulus log (`time_s,label` CSV); bad input raises `StudyError`, one line.
* `StudyConfig`: the epoch window (`EpochWindow(pre_s, post_s)`: [t - pre, t + post) around each marker), the
  summary interval (`summary_every_s`) and the baseline choice (`BaselineSpec`: the first N seconds, the stretch
  between two markers, or a separate recording of the same person).
* `Study` holds a session's markers and config. Attached to a `SessionRecorder` (its `extension`), it journals every
  marker change and the baseline choice beside the rows journal (`<journal>.study.jsonl`, one JSON line per change,
  fsynced), so a killed session recovers them (`recover_journal` calls `Study.from_journal`). At close it adds
  `p_<class>_corrected` columns to the CSV when a baseline is chosen (raw minus that face's baseline mean), an
  `events` list and a `study` object to the JSON, and writes the sidecars `<session>_events.csv`,
  `<session>_epochs.csv` (when there are markers) and `<session>_summary.csv` (when summary_every_s is set),
  streamed from the rows in one pass and written atomically.

Means are linear, so an epoch's corrected mean is its raw mean minus the face's baseline mean: the sidecars need
only raw per-(epoch, face) sums, O(markers x faces + intervals x faces) memory, never the rows themselves.
"""
from __future__ import annotations

import bisect
import contextlib
import csv
import json
import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from app.emotions import EMOTIONS
from app.timeline.recorder import (ExportError, TimelineRow, _atomic_write, check_session_file,
    extension_journal_for, read_session)

log = logging.getLogger(__name__)

PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{e}" for e in EMOTIONS)
CORRECTED_COLUMNS: tuple[str, ...] = tuple(f"p_{e}_corrected" for e in EMOTIONS)
EVENTS_COLUMNS: tuple[str, ...] = ("marker_id", "time_s", "label")
EPOCHS_COLUMNS: tuple[str, ...] = ("marker_id", "marker_time_s", "label", "face_id", "start_s", "end_s", "n_frames",
                                   "coverage", "dominant", *PROB_COLUMNS)
SUMMARY_COLUMNS: tuple[str, ...] = ("start_s", "end_s", "face_id", "n_frames", "coverage", "dominant", *PROB_COLUMNS)
SIDECAR_KINDS = ("events", "epochs", "summary")
# The label of a marker the app adds itself where a live source had a gap: an event of the session (events file,
# JSON events), never an epoch (nothing was shown there; the rows stop).
SOURCE_GAP_LABEL = "source_gap"
DEFAULT_EPOCH = (1.0, 3.0)
# Interval summaries: the shortest interval (below it the summary file grows by a row per interval and face, ~20 MB
# a second of video at 1e-9 s), and the most intervals one video may be cut into.
SUMMARY_MIN_S = 0.01
MAX_SUMMARY_INTERVALS = 1_000_000
_STEP_RESOLUTION_S = 1e-4  # frame steps are counted at 0.1 ms: a camera's jittery times fall into a few bins


class StudyError(ValueError):
    """Bad study input (a markers file, an epoch or baseline option): the message is one line."""


def _finite(what: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise StudyError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise StudyError(f"{what} must be finite, got {value!r}")
    return v


def _clean_label(label) -> str:
    text = " ".join(str(label).split())  # one line: no tabs or newlines in a CSV cell or an LSL marker
    if not text:
        raise StudyError("a marker needs a non-empty label")
    return text


# ------------------------------------------------------------------------------------------------------ markers

@dataclass(frozen=True, slots=True)
class Marker:
    """One event at a media time (seconds from the start of the source, the rows' `time_s`)."""
    marker_id: int
    time_s: float
    label: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "marker_id", int(self.marker_id))
        object.__setattr__(self, "time_s", _finite("a marker's time_s", self.time_s))
        object.__setattr__(self, "label", _clean_label(self.label))

    def to_json(self) -> dict:
        return {"marker_id": self.marker_id, "time_s": self.time_s, "label": self.label}


def read_markers(path: Path | str) -> list[Marker]:
    """A stimulus log: a CSV with columns `time_s,label` (others ignored), one marker per line, in any order.
    Returns markers numbered 1.. in file order. Raises StudyError (one line naming the file and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise StudyError(f"markers file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StudyError(f"cannot read markers file {path}: {getattr(e, 'strerror', None) or e}") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if "time_s" not in header or "label" not in header:
        raise StudyError(f"markers file {path} needs a header with columns time_s,label (got {','.join(header) or 'an empty file'})")
    it, il = header.index("time_s"), header.index("label")
    markers = []
    for lineno, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) <= max(it, il):
            raise StudyError(f"{path}:{lineno}: expected time_s,label, got {','.join(values)!r}")
        try:
            t = _finite("time_s", values[it])
            if t < 0:
                raise StudyError(f"time_s must be >= 0, got {values[it]!r}")
            markers.append(Marker(len(markers) + 1, t, values[il]))
        except StudyError as e:
            raise StudyError(f"{path}:{lineno}: {e}") from None
    if not markers:
        raise StudyError(f"markers file {path} has no markers (expected lines of time_s,label)")
    return markers


# ------------------------------------------------------------------------------------------------------ options

@dataclass(frozen=True, slots=True)
class EpochWindow:
    """An epoch is [t - pre_s, t + post_s) around a marker at t."""
    pre_s: float = DEFAULT_EPOCH[0]
    post_s: float = DEFAULT_EPOCH[1]

    def __post_init__(self) -> None:
        pre, post = _finite("the epoch's pre", self.pre_s), _finite("the epoch's post", self.post_s)
        if pre < 0 or post < 0 or pre + post <= 0:
            raise StudyError(f"an epoch needs pre >= 0, post >= 0 and a positive length, got {pre:g},{post:g}")
        object.__setattr__(self, "pre_s", pre)
        object.__setattr__(self, "post_s", post)


def parse_epoch(text: str) -> EpochWindow:
    """'PRE,POST' in seconds before and after each marker: '1,3' (or '-1,3', the same window: -1 s to +3 s)."""
    parts = str(text).split(",")
    if len(parts) != 2:
        raise StudyError(f"an epoch is PRE,POST in seconds, e.g. 1,3 (1 s before to 3 s after), got {text!r}")
    pre, post = (_finite("the epoch's PRE and POST", p.strip()) for p in parts)
    try:
        return EpochWindow(abs(pre), post)
    except StudyError:  # say what was given, not the window it became (-1,-1 is pre 1, post -1)
        raise StudyError(f"an epoch needs a positive length, POST >= 0 (PRE may be written -PRE), got {text!r}") from None


BaselineKind = Literal["first", "between", "file"]


@dataclass(frozen=True, slots=True)
class BaselineSpec:
    """Which rows are a face's neutral baseline: the first `seconds` of the session, the stretch from the first
    marker labelled `start_label` to the next one labelled `end_label`, or every row of a separate recording
    (`path`, a session CSV/JSON of the same person), whose mean then applies to every face."""
    kind: BaselineKind
    seconds: float | None = None
    start_label: str | None = None
    end_label: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "first":
            if self.seconds is None or not _finite("the baseline's seconds", self.seconds) > 0:
                raise StudyError(f"a first-N-seconds baseline needs N > 0, got {self.seconds!r}")
        elif self.kind == "between":
            if not self.start_label or not self.end_label:
                raise StudyError("a between-markers baseline needs two marker labels")
        elif self.kind == "file":
            if not self.path:
                raise StudyError("a baseline recording needs a file")
        else:
            raise StudyError(f"unknown baseline kind {self.kind!r} (first, between or file)")

    def describe(self) -> str:
        if self.kind == "first":
            return f"first {self.seconds:g} s"
        if self.kind == "between":
            return f"between markers {self.start_label!r} and {self.end_label!r}"
        return f"recording {self.path}"

    def to_json(self) -> dict:
        return {k: v for k, v in (("kind", self.kind), ("seconds", self.seconds), ("start_label", self.start_label),
                                  ("end_label", self.end_label), ("path", self.path)) if v is not None}

    @classmethod
    def from_json(cls, d: dict) -> BaselineSpec:
        return cls(kind=d["kind"], seconds=d.get("seconds"), start_label=d.get("start_label"),
                   end_label=d.get("end_label"), path=d.get("path"))


def parse_baseline(text: str) -> BaselineSpec:
    """'first:N' (the first N seconds), 'between:START,END' (two marker labels), 'file:PATH' (a session CSV/JSON)."""
    kind, sep, arg = str(text).partition(":")
    kind = kind.strip().lower()
    if not sep or not arg.strip():
        raise StudyError(f"a baseline is first:SECONDS, between:START_LABEL,END_LABEL or file:SESSION.csv, got {text!r}")
    if kind == "first":
        return BaselineSpec("first", seconds=_finite("the baseline's seconds", arg))
    if kind == "between":
        labels = [s.strip() for s in arg.split(",")]
        if len(labels) != 2 or not all(labels):
            raise StudyError(f"between: needs two marker labels, START,END, got {arg!r}")
        return BaselineSpec("between", start_label=labels[0], end_label=labels[1])
    if kind == "file":
        return BaselineSpec("file", path=str(check_baseline_recording(arg.strip())))
    raise StudyError(f"unknown baseline {kind!r}: use first:SECONDS, between:START,END or file:SESSION.csv")


def parse_summary_every(text: str) -> float:
    """--summary-every SECONDS: at least SUMMARY_MIN_S."""
    seconds = _finite("the summary interval", str(text).strip())
    if not seconds >= SUMMARY_MIN_S:
        raise StudyError(f"the summary interval must be at least {SUMMARY_MIN_S:g} s, got {text!r}")
    return seconds


def check_summary_intervals(every_s: float, duration_s: float, source: str) -> None:
    """Raise StudyError when a source of `duration_s` seconds would have more than MAX_SUMMARY_INTERVALS intervals
    (checked before the model loads, from the duration its container declares)."""
    n = math.ceil(duration_s / every_s) if every_s > 0 and math.isfinite(duration_s) else 0
    if n > MAX_SUMMARY_INTERVALS:
        raise StudyError(f"--summary-every {every_s:g} cuts {source} ({duration_s:.0f} s) into {n:,} intervals, more "
                         f"than {MAX_SUMMARY_INTERVALS:,}: give at least {duration_s / MAX_SUMMARY_INTERVALS:.2g} s")


def check_baseline_recording(path: Path | str) -> Path:
    """A baseline recording's path, once it is known to be a session export (app.timeline.recorder.check_session_file):
    every front end asks this when the baseline is chosen, before any frame is processed. Raises StudyError."""
    try:
        return check_session_file(Path(path).expanduser())
    except ExportError as e:
        raise StudyError(f"baseline recording {e}") from None


@dataclass(frozen=True, slots=True)
class StudyConfig:
    epoch: EpochWindow = field(default_factory=EpochWindow)
    summary_every_s: float | None = None      # None: no interval summary
    baseline: BaselineSpec | None = None      # None: no corrected columns

    def __post_init__(self) -> None:
        if self.summary_every_s is not None and not _finite("--summary-every", self.summary_every_s) >= SUMMARY_MIN_S:
            raise StudyError(f"the summary interval must be at least {SUMMARY_MIN_S:g} s, got {self.summary_every_s!r}")

    def to_json(self) -> dict:
        return {"epoch": [self.epoch.pre_s, self.epoch.post_s], "summary_every_s": self.summary_every_s,
                "baseline": None if self.baseline is None else self.baseline.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> StudyConfig:
        b = d.get("baseline")
        return cls(epoch=EpochWindow(*d.get("epoch", DEFAULT_EPOCH)), summary_every_s=d.get("summary_every_s"),
                   baseline=None if b is None else BaselineSpec.from_json(b))


# ------------------------------------------------------------------------------------------------------ baseline

@dataclass(frozen=True)
class Baseline:
    """Per-face mean probabilities over the baseline span. `means[None]`, when present, applies to every face
    (a separate recording); otherwise a face without rows in the span has no baseline (its corrected cells are
    empty): a face the tracker lost and found again comes back under a new id, without one."""
    spec: BaselineSpec
    means: dict[int | None, tuple[float, ...]]
    n_rows: dict[int | None, int]
    span: tuple[float, float] | None            # media times of the span (None for a separate recording)

    def mean_for(self, face_id) -> tuple[float, ...] | None:
        return self.means.get(face_id, self.means.get(None))

    def to_json(self) -> dict:
        return {**self.spec.to_json(), "span_s": None if self.span is None else list(self.span),
                "faces": {("all" if k is None else str(k)): {"n_rows": self.n_rows[k], "mean_probs": dict(zip(EMOTIONS, v))}
                          for k, v in self.means.items()}}


def _face_id(row) -> int | None:
    """The row's face id, or None for a row of a frame without a face (--all-frames): nothing to average."""
    fid = getattr(row, "face_id", None)
    return fid if fid is not None and getattr(row, "face_found", True) and row.probs else None


def compute_baseline(spec: BaselineSpec, markers: Iterable[Marker], rows: Iterable[TimelineRow]) -> Baseline:
    """The baseline means, in one pass over the session's rows (a separate recording reads its own file).
    Raises StudyError when the span cannot be found or holds no face."""
    sums: dict[int | None, list[float]] = {}
    counts: Counter = Counter()

    def add(key, probs) -> None:
        s = sums.setdefault(key, [0.0] * len(EMOTIONS))
        for i, p in enumerate(probs):
            s[i] += p
        counts[key] += 1

    span = None
    if spec.kind == "file":
        try:
            _, file_rows = read_session(check_baseline_recording(spec.path))
        except ExportError as e:  # changed or gone since it was chosen
            raise StudyError(f"baseline recording {e}") from None
        for r in file_rows:
            if _face_id(r) is not None:
                add(None, r.probs)
    elif spec.kind == "between":
        ordered = sorted(markers, key=lambda m: m.time_s)
        start = next((m for m in ordered if m.label == spec.start_label), None)
        if start is None:
            raise StudyError(f"baseline: no marker labelled {spec.start_label!r}")
        end = next((m for m in ordered if m.label == spec.end_label and m.time_s > start.time_s), None)
        if end is None:
            raise StudyError(f"baseline: no marker labelled {spec.end_label!r} after {spec.start_label!r} "
                             f"at {start.time_s:g} s")
        span = (start.time_s, end.time_s)
        for r in rows:
            if _face_id(r) is not None and span[0] <= r.time_s <= span[1]:
                add(r.face_id, r.probs)
    else:
        t0 = None
        for r in rows:
            if _face_id(r) is None:
                continue
            if t0 is None:
                t0 = r.time_s
            if r.time_s < t0 + spec.seconds:
                add(r.face_id, r.probs)
        span = None if t0 is None else (t0, t0 + spec.seconds)
    if not counts:
        raise StudyError(f"baseline ({spec.describe()}): no face in that span")
    return Baseline(spec, {k: tuple(s / counts[k] for s in v) for k, v in sums.items()}, dict(counts), span)


# ------------------------------------------------------------------------------------------------------ summaries

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
        fid = _face_id(row)
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


def _write_table(path: Path, columns: Iterable[str], rows: Iterable[list]) -> Path:
    def write(f: IO) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(columns))
        w.writerows(rows)
    _atomic_write(path, write)
    return path


def sidecar_path(session_file: Path | str, kind: str) -> Path:
    """`out.csv` -> `out_events.csv` (kind: events, epochs, summary)."""
    p = Path(session_file)
    stem = p.stem if p.suffix.lower() in (".csv", ".json") else p.name
    return p.with_name(f"{stem}_{kind}.csv")


# ------------------------------------------------------------------------------------------------------ the study

class Study:
    """A session's markers and study settings; a SessionRecorder extension (see the module docstring).

    Thread-safe: the window's GUI thread adds markers while the pipeline thread records rows."""

    def __init__(self, config: StudyConfig | None = None, markers: Iterable[Marker] = ()):
        self.config = config or StudyConfig()
        self._lock = threading.Lock()
        self._markers: dict[int, Marker] = {}
        self._next_id = 1
        self._journal: IO | None = None
        self.journal_path: Path | None = None
        self._baseline: Baseline | None = None
        self.baseline_error: str | None = None   # why the chosen baseline could not be computed, if it could not
        self.written: list[Path] = []            # the sidecar files of the last write_sidecars()
        for m in markers:
            self._markers[m.marker_id] = m
            self._next_id = max(self._next_id, m.marker_id + 1)

    # -- markers

    @property
    def markers(self) -> list[Marker]:
        """By time (then id)."""
        with self._lock:
            return sorted(self._markers.values(), key=lambda m: (m.time_s, m.marker_id))

    def add_marker(self, time_s: float, label: str) -> Marker:
        with self._lock:
            m = Marker(self._next_id, time_s, label)
            self._markers[m.marker_id] = m
            self._next_id += 1
            self._log({"op": "add", **m.to_json()})
        return m

    def rename_marker(self, marker_id: int, label: str) -> Marker:
        with self._lock:
            old = self._get(marker_id)
            m = Marker(marker_id, old.time_s, label)
            self._markers[marker_id] = m
            self._log({"op": "rename", "marker_id": marker_id, "label": m.label})
        return m

    def delete_marker(self, marker_id: int) -> Marker:
        with self._lock:
            m = self._get(marker_id)
            del self._markers[marker_id]
            self._log({"op": "delete", "marker_id": marker_id})
        return m

    def set_baseline(self, spec: BaselineSpec | None) -> None:
        self.set_config(StudyConfig(self.config.epoch, self.config.summary_every_s, spec))

    def set_config(self, config: StudyConfig) -> None:
        """New settings (epoch, summary interval, baseline), journalled like the markers."""
        with self._lock:
            self.config = config
            self._log({"op": "config", **config.to_json()})

    def _get(self, marker_id: int) -> Marker:
        try:
            return self._markers[marker_id]
        except KeyError:
            raise StudyError(f"no marker {marker_id}") from None

    # -- journal

    def open_journal(self, rows_journal: Path) -> Path:
        """Start journalling beside the recorder's rows journal: the config and the markers so far, then every
        change, each line flushed and fsynced (markers are rare; a power cut must not lose a stimulus onset)."""
        path = extension_journal_for(rows_journal)
        with self._lock:
            self._journal = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close_journal)
            self.journal_path = path
            self._log({"op": "config", **self.config.to_json()})
            for m in sorted(self._markers.values(), key=lambda m: m.marker_id):
                self._log({"op": "add", **m.to_json()})
        return path

    def _log(self, entry: dict) -> None:
        if self._journal is None:
            return
        try:
            self._journal.write(json.dumps(entry, allow_nan=False) + "\n")
            self._journal.flush()
            os.fsync(self._journal.fileno())
        except OSError as e:  # the rows journal reports a full disk; markers stay in memory and in the exports
            log.warning("cannot journal a marker change in %s: %s", self.journal_path, e)

    def close_journal(self, delete: bool) -> None:
        with self._lock:
            journal, self._journal = self._journal, None
        if journal is not None:
            with contextlib.suppress(OSError):
                journal.close()
        if delete and self.journal_path is not None:
            with contextlib.suppress(OSError):
                self.journal_path.unlink(missing_ok=True)

    @classmethod
    def from_journal(cls, path: Path | str) -> Study:
        """Replay a study journal (a line cut by a crash is dropped). Raises StudyError when it cannot be read."""
        study = cls()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise StudyError(f"cannot read study journal {path}: {e}") from None
        for n, line in enumerate(lines, start=1):
            try:
                e = json.loads(line)
                op = e["op"]
                if op == "config":
                    study.config = StudyConfig.from_json(e)
                elif op == "add":
                    m = Marker(e["marker_id"], e["time_s"], e["label"])
                    study._markers[m.marker_id] = m
                    study._next_id = max(study._next_id, m.marker_id + 1)
                elif op == "rename":
                    study._markers[e["marker_id"]] = Marker(e["marker_id"], study._markers[e["marker_id"]].time_s,
                                                            e["label"])
                elif op == "delete":
                    study._markers.pop(e["marker_id"], None)
            except (ValueError, KeyError, TypeError) as err:
                if n == len(lines):  # torn last line of a killed writer
                    log.warning("%s: dropped an incomplete last line", path)
                    break
                raise StudyError(f"{path}:{n}: bad study journal line ({err})") from None
        return study

    # -- SessionRecorder extension

    def prepare(self, rows: Callable[[], Iterable[TimelineRow]]) -> None:
        """Before the exports are written: compute the baseline (one pass over the rows) when one is chosen."""
        spec = self.config.baseline
        self._baseline, self.baseline_error = None, None
        if spec is not None:
            try:
                self._baseline = compute_baseline(spec, self.markers, rows())
            except StudyError as e:  # e.g. no face in the span: the exports go on without corrected columns
                self.baseline_error = str(e)
                log.warning("%s: exported without baseline-corrected columns", e)

    @property
    def baseline(self) -> Baseline | None:
        """The baseline of the last prepare() (None before, or when none is chosen)."""
        return self._baseline

    def csv_columns(self) -> tuple[str, ...]:
        return CORRECTED_COLUMNS if self._baseline is not None else ()

    def csv_values(self, row: TimelineRow) -> list:
        if self._baseline is None:
            return []
        b = self._baseline.mean_for(_face_id(row))
        return [p - m for p, m in zip(row.probs, b)] if b is not None else [""] * len(EMOTIONS)

    def json_fields(self) -> dict:
        return {"events": [m.to_json() for m in self.markers],
                "study": {**self.config.to_json(),
                          "baseline": None if self._baseline is None else self._baseline.to_json(),
                          **({"baseline_error": self.baseline_error} if self.baseline_error else {})}}

    def write_sidecars(self, session_file: Path, rows: Callable[[], Iterable[TimelineRow]]) -> list[Path]:
        """`<session>_events.csv` (when there are markers), `_epochs.csv` (when there are markers other than
        source gaps), `_summary.csv` (when summary_every_s is set), from one streaming pass over the rows. Atomic; raises OSError."""
        markers = self.markers
        if not markers and self.config.summary_every_s is None:
            return []
        stimuli = [m for m in markers if m.label != SOURCE_GAP_LABEL]
        tables = StudyTables(stimuli, self.config)
        for r in rows():
            tables.add(r)
        extra = CORRECTED_COLUMNS if self._baseline is not None else ()
        written = []
        if markers:
            written.append(_write_table(sidecar_path(session_file, "events"), EVENTS_COLUMNS,
                                        ([m.marker_id, m.time_s, m.label] for m in markers)))
        if stimuli:
            written.append(_write_table(sidecar_path(session_file, "epochs"), EPOCHS_COLUMNS + extra,
                                        tables.epoch_rows(self._baseline)))
        if self.config.summary_every_s is not None:
            written.append(_write_table(sidecar_path(session_file, "summary"), SUMMARY_COLUMNS + extra,
                                        tables.summary_rows(self._baseline)))
        self.written = written
        return written

    def copy(self) -> Study:
        """The same markers and settings, without the journal (for an export to other files)."""
        return Study(self.config, self.markers)
