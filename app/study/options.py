"""A study's inputs, checked before a model loads: event markers (a stimulus log), the epoch window, the interval
summaries and the baseline choice (`StudyConfig`). Bad input raises `StudyError`, one line. Stdlib only."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.timeline.files import ExportError
from app.timeline.formats import check_session_file


# The label of a marker the app adds itself where a live source had a gap: an event of the session (events file,
# JSON events), never an epoch (nothing was shown there; the rows stop).
SOURCE_GAP_LABEL = "source_gap"
DEFAULT_EPOCH = (1.0, 3.0)
# Interval summaries: the shortest interval (below it the summary file grows by a row per interval and face, ~20 MB
# a second of video at 1e-9 s), and the most intervals one video may be cut into.
SUMMARY_MIN_S = 0.01
MAX_SUMMARY_INTERVALS = 1_000_000

BaselineKind = Literal["first", "between", "file"]


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
    """A baseline recording's path, once it is known to be a session export (app.timeline.formats.check_session_file):
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

