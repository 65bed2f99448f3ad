"""The emotion timeline of one session: rows in, a crash-safe journal while recording, CSV/JSON exports at the end.

Contract (the file formats are documented in docs/export-format.md):

* `TimelineRow` is one (frame, face) prediction; `SessionRecorder(export_paths, metadata)` collects them.
* Export folders are checked when the recorder is built, so a bad `--export` fails before any frame is processed.
* Every `add`/`add_many` appends the rows to a journal CSV (`<first target>.partial.csv`) and hands them to the OS
  (one flush per call: ~40 us on the dev VM, so a killed process loses nothing already added); the journal is fsynced
  at most once a second (~1 ms each), so an OS crash or power cut loses about a second.
* The recorder keeps no rows in memory (only per-face running totals for the summary): `close()` (also on leaving a
  `with` block, exception or not) streams the journal into each export, written atomically (temp file in the same
  folder, fsync, `os.replace`), and then deletes the journal, so memory stays flat over hours. Every target that
  can be written is written; if one cannot (or the journal itself failed, e.g. disk full) the journal is kept and
  one `ExportError` line names what failed. `recover_journal` turns a journal left by a crash into a final CSV.
* The journal has a row for every frame processed (a face_found=0 row for a frame without a face, exported only
  with all_frames), so the session's frame count (the summary's n_frames, coverage's denominator) survives a crash;
  beside it, `<journal>.session.json` keeps the metadata and the exports asked for. `recover_journal` turns what a
  crash left into the CSV and (when one was asked for) the JSON the session's close would have written.
* While recording, the journal is locked (POSIX `flock`) by the recording process, so `journal_in_use` tells a
  journal of a live session from one a dead process left, whatever its age; `check_export_targets` refuses an
  export a live session is writing (`... is being written by another run, pid N`). `clean_orphan_temp_files`
  removes the `*.tmp` files of a process killed while it wrote the final files.

Pure Python + stdlib at import time: no Qt, no torch, no matplotlib (`plot_timeline` imports matplotlib lazily).
"""
from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol, Self

try:  # POSIX: the recording process holds an advisory lock on its journal; the kernel drops it when the process dies
    import fcntl
except ImportError:  # Windows: journals fall back to the age rule (see journal_in_use)
    fcntl = None

from app.signals.names import BLENDSHAPE_NAMES
from app.emotions import EMOTION_COLORS, EMOTIONS

log = logging.getLogger(__name__)

SCHEMA = "fan-live-session"
# 2: face_found, reliability, yaw/pitch/roll, bs_*; 3: latency_ms, live sessions (time_s from the session's start,
# source_gap events). Version 1 and 2 files and journals still read.
SCHEMA_VERSION = 3
EXPORT_SUFFIXES = (".csv", ".json")
JOURNAL_SUFFIX = ".partial.csv"
EXTENSION_JOURNAL_SUFFIX = ".study.jsonl"  # beside a rows journal: markers and baseline choice (app/study/extension.py)
SESSION_INFO_SUFFIX = ".session.json"      # beside a rows journal: metadata, exports, all_frames (for recovery)
NO_FACE_MESSAGE = "no face found"
FSYNC_INTERVAL_S = 1.0

V1_COLUMNS: tuple[str, ...] = (
    "time_s", "frame_index", "face_id", "x0", "y0", "x1", "y1", "label", "confidence",
    *(f"p_{name}" for name in EMOTIONS), "alpha", "weight",
)
BLENDSHAPE_COLUMNS: tuple[str, ...] = tuple(f"bs_{name}" for name in BLENDSHAPE_NAMES)
SIGNAL_COLUMNS: tuple[str, ...] = ("face_found", "reliability", "yaw", "pitch", "roll", *BLENDSHAPE_COLUMNS)
LIVE_COLUMNS: tuple[str, ...] = ("latency_ms",)
# a version 1 file has V1_COLUMNS only, a version 2 file V1_COLUMNS + SIGNAL_COLUMNS
CSV_COLUMNS: tuple[str, ...] = (*V1_COLUMNS, *SIGNAL_COLUMNS, *LIVE_COLUMNS)
RELIABLE = 0.5  # a row counts towards a face's coverage when its reliability is at least this

# Leftover journals: out.csv.partial.csv, and out.csv.partial-2.csv once an older one had to be moved aside.
_JOURNAL_RE = re.compile(r"\.partial(?:-\d+)?\.csv$")
# Temp files of _atomic_write (<name>.<pid>.<8 hex>.tmp) and probes of _check_export_target (.<name>.<pid>.<8 hex>.probe)
_TEMP_RE = re.compile(r"^(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.(?:tmp|probe)$")
# Without journal locks (Windows), a journal untouched this long is taken for a dead session's.
JOURNAL_IDLE_S = 120.0
_PROB_SUM_TOL = 1e-2  # softmax output in float16/32 sums to 1 within ~1e-3; logits or scores would be far off


class ExportError(Exception):
    """An export or journal cannot be written or read. The message is one line that names the path."""


class RecorderExtension(Protocol):
    """What a recorder writes beside its rows (app/study/extension.py's Study: markers, baseline, epochs, summaries).
    It journals its own state beside the rows journal from open_journal() on; at close() the recorder calls
    prepare() (a pass over the rows, e.g. for a baseline), writes csv_columns()/csv_values(row) after the row's own
    columns and json_fields() into the JSON, then write_sidecars(first export, rows) for its own files."""

    def open_journal(self, rows_journal: Path) -> Path: ...
    def close_journal(self, delete: bool) -> None: ...
    def prepare(self, rows: Callable[[], Iterable[TimelineRow]]) -> None: ...
    def csv_columns(self) -> tuple[str, ...]: ...
    def csv_values(self, row: TimelineRow) -> list: ...
    def json_fields(self) -> dict: ...
    def write_sidecars(self, session_file: Path, rows: Callable[[], Iterable[TimelineRow]]) -> list[Path]: ...


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"TimelineRow.{name} must be finite, got {value!r}")
    return v


def _optional(name: str, value) -> float | None:
    """None for a missing value (a version 1 file, an empty CSV cell, a pose that could not be solved)."""
    if value is None or value == "":
        return None
    v = float(value)
    return v if math.isfinite(v) else None


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One face on one processed frame: the head's output for the window ending at this frame, and the face's
    signals. With --all-frames a frame without a face is a row too: face_found False, face_id None, and every
    face field empty (box (), label "", probs (), confidence/alpha/weight NaN); `TimelineRow.no_face` makes one."""
    time_s: float                                   # seconds from the start of the source (video position / capture)
    frame_index: int                                # index of the frame in the source, from 0
    face_id: int                                    # tracker id, stable while the face stays tracked
    box: tuple[float, float, float, float]          # x0, y0, x1, y1 in pixels of the source frame
    label: str                                      # one of EMOTIONS (the model's decision for this window)
    confidence: float                               # probability of `label`
    probs: tuple[float, ...]                        # (7,) in EMOTIONS order, sums to 1
    alpha: float                                    # self-attention alpha of the newest frame in the window, (0, 1)
    weight: float                                   # normalised final weight (alpha, or alpha*beta) of the newest frame
    face_found: bool = True                         # False: a frame without a face (--all-frames)
    reliability: float | None = None                # [0, 1], app.signals.reliability; None in version 1 files
    yaw: float | None = None                        # degrees, app.signals.pose's signs; None: unknown
    pitch: float | None = None
    roll: float | None = None
    blendshapes: tuple[float, ...] | None = None    # (52,) in BLENDSHAPE_NAMES order, [0, 1]; None: unknown
    latency_ms: float | None = None                 # live sources: capture to result, ms; None for a file's frame

    @classmethod
    def no_face(cls, time_s: float, frame_index: int, latency_ms: float | None = None) -> TimelineRow:
        nan = float("nan")
        return cls(time_s=time_s, frame_index=frame_index, face_id=None, box=(), label="", confidence=nan, probs=(),
                   alpha=nan, weight=nan, face_found=False, latency_ms=latency_ms)

    def __post_init__(self) -> None:
        # Coerce numpy scalars/lists to plain Python so the exports and == comparisons are exact and JSON-able.
        set_ = object.__setattr__
        set_(self, "face_found", bool(self.face_found))
        rel = _optional("reliability", self.reliability)
        if rel is not None and not 0.0 <= rel <= 1.0:
            raise ValueError(f"TimelineRow.reliability must be in [0, 1], got {rel}")
        set_(self, "reliability", rel)
        for k in ("yaw", "pitch", "roll", "latency_ms"):
            set_(self, k, _optional(k, getattr(self, k)))
        if self.blendshapes is not None:
            bs = tuple(_finite("blendshapes", v) for v in self.blendshapes)
            if len(bs) != len(BLENDSHAPE_NAMES):
                raise ValueError(f"TimelineRow.blendshapes must have {len(BLENDSHAPE_NAMES)} values, got {len(bs)}")
            set_(self, "blendshapes", bs)
        if not self.face_found:
            nan = float("nan")
            set_(self, "time_s", _finite("time_s", self.time_s))
            set_(self, "frame_index", int(self.frame_index))
            for k, v in (("face_id", None), ("box", ()), ("label", ""), ("confidence", nan), ("probs", ()),
                         ("alpha", nan), ("weight", nan), ("reliability", None), ("yaw", None), ("pitch", None),
                         ("roll", None), ("blendshapes", None)):
                set_(self, k, v)
            return
        box = tuple(_finite("box", v) for v in self.box)
        if len(box) != 4:
            raise ValueError(f"TimelineRow.box must be (x0, y0, x1, y1), got {len(box)} values")
        probs = tuple(_finite("probs", v) for v in self.probs)
        if len(probs) != len(EMOTIONS):
            raise ValueError(f"TimelineRow.probs must have {len(EMOTIONS)} values (EMOTIONS order), got {len(probs)}")
        if min(probs) < 0.0 or abs(sum(probs) - 1.0) > _PROB_SUM_TOL:
            raise ValueError(f"TimelineRow.probs must be probabilities summing to 1, got sum {sum(probs):.4f}")
        if self.label not in EMOTIONS:
            raise ValueError(f"TimelineRow.label {self.label!r} is not one of {', '.join(EMOTIONS)}")
        set_(self, "box", box)
        set_(self, "probs", probs)
        set_(self, "time_s", _finite("time_s", self.time_s))
        set_(self, "frame_index", int(self.frame_index))
        set_(self, "face_id", int(self.face_id))
        set_(self, "confidence", _finite("confidence", self.confidence))
        set_(self, "alpha", _finite("alpha", self.alpha))
        set_(self, "weight", _finite("weight", self.weight))

    def csv_values(self) -> list:
        """The row under CSV_COLUMNS; unknown and face-less values are empty cells."""
        def cell(v):
            return "" if v is None else v
        if not self.face_found:
            return [self.time_s, self.frame_index, *[""] * (len(V1_COLUMNS) - 2), 0,
                    *[""] * (len(SIGNAL_COLUMNS) - 1), cell(self.latency_ms)]
        bs = self.blendshapes if self.blendshapes is not None else ("",) * len(BLENDSHAPE_NAMES)
        return [self.time_s, self.frame_index, self.face_id, *self.box, self.label, self.confidence, *self.probs,
                self.alpha, self.weight, 1, cell(self.reliability), cell(self.yaw), cell(self.pitch), cell(self.roll),
                *bs, cell(self.latency_ms)]

    def to_json(self) -> dict:
        live = {} if self.latency_ms is None else {"latency_ms": self.latency_ms}  # only live sessions have it
        if not self.face_found:
            return {"time_s": self.time_s, "frame_index": self.frame_index, "face_found": False, **live}
        return {"time_s": self.time_s, "frame_index": self.frame_index, "face_id": self.face_id, "box": list(self.box),
                "label": self.label, "confidence": self.confidence, "probs": list(self.probs), "alpha": self.alpha,
                "weight": self.weight, "face_found": True, "reliability": self.reliability, "yaw": self.yaw,
                "pitch": self.pitch, "roll": self.roll,
                "blendshapes": list(self.blendshapes) if self.blendshapes is not None else None, **live}

    @classmethod
    def from_csv(cls, rec: dict[str, str]) -> TimelineRow:
        """A row of a version 3, 2 or 1 CSV (whose later columns are absent: None)."""
        if rec.get("face_found", "1") in ("0", "False", "false"):
            return cls.no_face(float(rec["time_s"]), int(rec["frame_index"]), rec.get("latency_ms"))
        bs = None
        if rec.get(BLENDSHAPE_COLUMNS[0], "") != "":
            bs = tuple(float(rec[c]) for c in BLENDSHAPE_COLUMNS)
        return cls(time_s=float(rec["time_s"]), frame_index=int(rec["frame_index"]), face_id=int(rec["face_id"]),
                   box=tuple(float(rec[k]) for k in ("x0", "y0", "x1", "y1")), label=rec["label"],
                   confidence=float(rec["confidence"]), probs=tuple(float(rec[f"p_{n}"]) for n in EMOTIONS),
                   alpha=float(rec["alpha"]), weight=float(rec["weight"]), reliability=rec.get("reliability"),
                   yaw=rec.get("yaw"), pitch=rec.get("pitch"), roll=rec.get("roll"), blendshapes=bs,
                   latency_ms=rec.get("latency_ms"))

    @classmethod
    def from_json(cls, rec: dict) -> TimelineRow:
        """A row of a version 3, 2 or 1 JSON export."""
        if rec.get("face_found", True) is False:
            return cls.no_face(rec["time_s"], rec["frame_index"], rec.get("latency_ms"))
        bs = rec.get("blendshapes")
        return cls(time_s=rec["time_s"], frame_index=rec["frame_index"], face_id=rec["face_id"], box=tuple(rec["box"]),
                   label=rec["label"], confidence=rec["confidence"], probs=tuple(rec["probs"]), alpha=rec["alpha"],
                   weight=rec["weight"], reliability=rec.get("reliability"), yaw=rec.get("yaw"),
                   pitch=rec.get("pitch"), roll=rec.get("roll"), blendshapes=tuple(bs) if bs is not None else None,
                   latency_ms=rec.get("latency_ms"))


def rows_from_result(result, all_frames: bool = False) -> list[TimelineRow]:
    """One row per face with a prediction on an app.pipeline.FrameResult (raw outputs, the newest frame's attention,
    the face's signals); with all_frames, a frame without one gives a face_found=False row (a uniform time base)."""
    out = []
    signals = getattr(result, "signals", None) or {}
    latency = getattr(result, "latency_ms", None)
    latency = None if latency is None else round(float(latency), 2)
    for face in result.faces:
        p = result.predictions.get(face.track_id)
        if p is None:
            continue
        s = signals.get(face.track_id)
        out.append(TimelineRow(
            time_s=float(result.frame.time_s), frame_index=int(result.frame.index), face_id=int(face.track_id),
            box=tuple(round(float(v), 1) for v in face.box), label=p.label, confidence=float(p.confidence),
            probs=tuple(float(v) for v in p.probs), alpha=float(p.alpha[-1]), weight=float(p.weight[-1]),
            reliability=None if s is None else round(float(s.reliability), 4),
            yaw=None if s is None else round(float(s.yaw), 2), pitch=None if s is None else round(float(s.pitch), 2),
            roll=None if s is None else round(float(s.roll), 2),
            blendshapes=None if s is None or not all(math.isfinite(float(v)) for v in s.blendshapes)
            else tuple(round(float(v), 4) for v in s.blendshapes), latency_ms=latency))
    if not out and all_frames:
        out.append(TimelineRow.no_face(float(result.frame.time_s), int(result.frame.index), latency))
    return out


@dataclass
class SessionMetadata:
    """Where a session's rows came from; saved in the JSON export (the CSV is the bare table)."""
    source: str                     # video path, "camera 0", a device path or a stream URL (password masked)
    model: str                      # model card name
    providers: list[str]            # ONNX Runtime execution providers actually used, e.g. ["CPUExecutionProvider"]
    attention: str                  # relation | self
    window_length: int              # frames in the FAN window
    started_at: str                 # ISO 8601, UTC, e.g. 2024-05-01T12:00:00+00:00
    app_version: str
    extra: dict = field(default_factory=dict)  # free-form: anything a front end wants to keep with the session
    precision: str = ""             # the embedder graph that ran: fp32 | int8 ("" in sessions before it was recorded)
    temperature: float | None = None  # T of the calibrated probabilities (1.0: raw); None in sessions before it

    def __post_init__(self) -> None:
        self.providers = [str(p) for p in self.providers]
        self.window_length = int(self.window_length)
        try:
            ts = datetime.fromisoformat(self.started_at)
        except (TypeError, ValueError):
            raise ValueError(f"SessionMetadata.started_at must be ISO 8601, got {self.started_at!r}") from None
        if ts.utcoffset() != timedelta(0):
            raise ValueError(f"SessionMetadata.started_at must be UTC (+00:00 or Z), got {self.started_at!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------- files

def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """write(f) into `<path>.<random>.tmp` beside path, fsync, then os.replace: readers see the old file or the new
    one, never half of one. The temp file is removed on any failure."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 (not mkstemp's 0o600) so the export gets the usual umask permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _os_reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _check_export_target(path: Path) -> None:
    """Fail now, with one line naming the path, if `path` cannot be written later."""
    folder = path.parent
    if path.is_dir():
        raise ExportError(f"cannot export to {path}: it is a folder (give a .csv or .json file name)")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ExportError(f"cannot export to {path}: {folder} {what}")
    # os.access is wrong for root and for read-only mounts; creating a file is the only real test.
    probe = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ExportError(f"cannot export to {path}: folder {folder} is not writable ({_os_reason(e)})") from None


def check_export_targets(paths: Iterable[Path | str]) -> list[Path]:
    """The export paths, checked as a recorder checks them (type, duplicates, folder writable), without starting
    anything: a front end calls this before it loads a model. Raises ValueError (type, duplicate) or ExportError."""
    targets = [Path(p) for p in paths]
    for p in targets:
        if p.suffix.lower() not in EXPORT_SUFFIXES:
            if p.is_dir():
                raise ValueError(f"cannot export to {p}: it is a folder (give a .csv or .json file name; a folder "
                                 f"is for a folder of videos)")
            raise ValueError(f"export {p}: unsupported file type {p.suffix or '(none)'!r}, use .csv or .json")
    if len({p.resolve() for p in targets}) != len(targets):
        raise ValueError(f"the same export file is given twice: {', '.join(map(str, targets))}")
    for p in targets:
        check_not_being_written(p)
        _check_export_target(p)
    return targets


def check_not_being_written(target: Path | str) -> None:
    """Raise ExportError when a live process records into `target` (its journal is locked, journal_in_use): a
    second run to the same export would otherwise take the first run's journal away from it."""
    journal = journal_path_for(target)
    if journal.exists() and journal_in_use(journal):
        pid = journal_owner(journal)
        raise ExportError(f"{target} is being written by another run"
                          + (f", pid {pid}" if pid is not None else f" (its journal {journal} is in use)"))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # os.kill(pid, 0) is not a probe on Windows (it sends CTRL_C_EVENT); callers use the age there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def clean_orphan_temp_files(folder: Path | str, name: str | None = None, min_age_s: float = 3600.0) -> list[Path]:
    """Delete the temp files (`<name>.<pid>.<hex>.tmp`) and probes a killed process left in `folder` while it wrote
    final files; only `name`'s when given. A file is an orphan when its process is gone (POSIX), or, where that
    cannot be asked (Windows), when it is older than `min_age_s`. Returns the files removed."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        m = _TEMP_RE.match(p.name)
        if m is None:
            continue
        base = m["name"].lstrip(".") if p.name.endswith(".probe") else m["name"]
        if name is not None and base != name:
            continue
        try:
            if _pid_alive(int(m["pid"])) and (os.name == "posix" or now - p.stat().st_mtime < min_age_s):
                continue
            p.unlink()
            removed.append(p)
        except OSError:
            continue
    if removed:
        log.info("removed %d temp file(s) a killed run left in %s", len(removed), folder)
    return removed


def _lock_journal(f: IO) -> None:
    """Hold an exclusive advisory lock on the journal for as long as this process has it open."""
    if fcntl is not None:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a filesystem without locks: journal_in_use then falls back to the journal's age
            pass


def journal_in_use(path: Path | str, idle_s: float = JOURNAL_IDLE_S) -> bool:
    """Whether a live process is recording into this journal. POSIX: the recorder holds a lock on it, which the
    kernel releases when the process ends (however it ends), so a dead session is recognised at once. Without
    locks (Windows, or a filesystem that refuses them): a journal written to in the last `idle_s` seconds."""
    path = Path(path)

    def recently_written() -> bool:
        try:
            return time.time() - path.stat().st_mtime < idle_s
        except OSError:
            return False

    if fcntl is None:
        return recently_written()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return recently_written()
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False


def journal_owner(path: Path | str) -> int | None:
    """The process that holds the journal's lock (Linux: read from /proc/locks), or None when it cannot be told."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" ("1: -> FLOCK ..." is a waiter)
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5] == device:
            with contextlib.suppress(ValueError):
                return int(fields[4])
    return None


def _write_csv(f: IO, rows: Iterable[TimelineRow], extension: RecorderExtension | None = None) -> None:
    w = csv.writer(f, lineterminator="\n")
    extra = extension.csv_columns() if extension is not None else ()
    w.writerow((*CSV_COLUMNS, *extra))
    for r in rows:  # streamed: rows may come straight from a journal of hours
        w.writerow([*r.csv_values(), *extension.csv_values(r)] if extra else r.csv_values())


def _write_json(f: IO, metadata: dict, rows: Iterable[TimelineRow], n_frames: int,
                extension: RecorderExtension | None = None) -> None:
    """Plain json, laid out one row per line so the file diffs and greps well. Streamed row by row; the summary is
    computed from the very rows written, so the two always agree, over the session's `n_frames` (every frame
    processed, face or not: the recorder's count, which the rows alone do not give without --all-frames)."""
    def dump(v: Any) -> str:
        return json.dumps(v, allow_nan=False, ensure_ascii=False)

    head = {"schema": SCHEMA, "version": SCHEMA_VERSION, "metadata": metadata, "labels": list(EMOTIONS),
            "blendshapes": list(BLENDSHAPE_NAMES)}
    f.write("{\n")
    f.writelines(f"  {dump(key)}: {dump(value)},\n" for key, value in head.items())
    f.write('  "rows": [')
    stats: dict[int, _FaceStats] = {}
    sep = ""
    for r in rows:
        f.write(f"{sep}\n    {dump(r.to_json())}")
        sep = ","
        if r.face_found:
            stats.setdefault(r.face_id, _FaceStats()).add(r)
    f.write("\n  ],\n")
    # JSON object keys are strings: face ids become "1", "2", ...
    extra = extension.json_fields() if extension is not None else {}  # the study's "events" and "study"
    f.writelines(f"  {dump(key)}: {dump(value)},\n" for key, value in extra.items())
    f.write(f'  "summary": {dump(_json_summary(_summarise(stats, n_frames)))}\n}}\n')


def _json_summary(summary: dict) -> dict:
    out = dict(summary)
    out["faces"] = {str(k): v for k, v in summary["faces"].items()}
    return out


def _complete_end(f: IO[bytes], size: int) -> int:
    """The byte offset after the last newline within the first `size` bytes of f: rows are written whole and
    newline-terminated, so anything after it is a row cut by a crash (or a failed write). Leaves f at offset 0."""
    pos = size
    try:
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            chunk = f.read(pos - start)
            k = chunk.rfind(b"\n")
            if k >= 0:
                return start + k + 1
            pos = start
        return 0
    finally:
        f.seek(0)


def _iter_csv_rows(path: Path, tolerate_torn_tail: bool, size: int | None = None,
                   opened: IO[bytes] | None = None, warn_torn: bool = True) -> Iterator[TimelineRow]:
    """The rows of a timeline CSV (or a journal), streamed: constant memory however long the file. `size` reads
    only the first `size` bytes (a journal another thread is still appending to). `opened` is the file already open
    for reading (binary), which this closes: a journal opened while it still existed reads on after its recorder
    deletes it."""
    path = Path(path)
    f = opened
    try:
        if f is None:
            f = open(path, "rb")  # noqa: SIM115 (closed below; a generator's with-block would hold it until exhausted)
        total = os.fstat(f.fileno()).st_size if size is None else size
        end = total
        if tolerate_torn_tail:
            end = _complete_end(f, total)
            if end < total and warn_torn:
                log.warning("%s: dropped an incomplete last line (the writer was killed mid-row)", path)
    except OSError as e:
        if f is not None:
            f.close()
        raise ExportError(f"cannot read {path}: {_os_reason(e)}") from None
    with f:
        def lines() -> Iterator[str]:
            pos = 0
            for raw in f:  # CSV fields here never contain newlines: a physical line is a record
                pos += len(raw)
                if pos > end:
                    return
                yield raw.decode("utf-8")

        reader = csv.reader(lines())
        header = next(reader, None)
        if header is None:
            if tolerate_torn_tail:
                return
            raise ExportError(f"{path} is empty (expected a FAN Live timeline CSV)")
        error = _missing_columns_error(path, header)  # version 1 files lack the signal columns: fine
        if error is not None:
            raise error
        for lineno, values in enumerate(reader, start=2):
            try:
                yield TimelineRow.from_csv(dict(zip(header, values)))
            except (KeyError, TypeError, ValueError) as e:
                raise ExportError(f"{path}:{lineno}: bad row ({e})") from None


def _read_csv_rows(path: Path, tolerate_torn_tail: bool) -> list[TimelineRow]:
    return list(_iter_csv_rows(path, tolerate_torn_tail))


# ----------------------------------------------------------------------------------------------------------- summary

class _FaceStats:
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


class _FrameCounter:
    """Counts a session's frames from its rows in order (a frame's rows are consecutive), in constant memory."""
    __slots__ = ("last", "n")

    def __init__(self) -> None:
        self.n = 0
        self.last: int | None = None

    def add(self, frame_index: int) -> None:
        if frame_index != self.last:
            self.n += 1
            self.last = frame_index


def _summarise(stats: dict[int, _FaceStats], n_frames: int = 0) -> dict:
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
    stats: dict[int, _FaceStats] = {}
    frames = _FrameCounter()
    for r in rows:
        frames.add(r.frame_index)
        if r.face_found:
            stats.setdefault(r.face_id, _FaceStats()).add(r)
    return _summarise(stats, frames.n if n_frames is None else n_frames)


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


# ----------------------------------------------------------------------------------------------------------- recorder

def journal_path_for(target: Path) -> Path:
    """The journal a recorder whose first export is `target` writes while recording."""
    target = Path(target)
    return target.with_name(target.name + JOURNAL_SUFFIX)


def extension_journal_for(rows_journal: Path | str) -> Path:
    """Where a recorder extension (app/study/extension.py) journals beside the rows: out.csv.partial.csv ->
    out.csv.partial.study.jsonl (out.csv.partial-2.csv -> out.csv.partial-2.study.jsonl)."""
    j = Path(rows_journal)
    return j.with_name(j.stem + EXTENSION_JOURNAL_SUFFIX)


def session_info_for(rows_journal: Path | str) -> Path:
    """Where a recorder keeps what recovery needs besides the rows (metadata, its exports, all_frames):
    out.csv.partial.csv -> out.csv.partial.session.json."""
    j = Path(rows_journal)
    return j.with_name(j.stem + SESSION_INFO_SUFFIX)


def _companions(rows_journal: Path) -> tuple[Path, Path]:
    """The files that live and go with a rows journal: the study journal and the session info."""
    return extension_journal_for(rows_journal), session_info_for(rows_journal)


def remove_journal(rows_journal: Path | str) -> None:
    """Delete a rows journal and the files beside it (study journal, session info). Raises OSError."""
    rows_journal = Path(rows_journal)
    rows_journal.unlink(missing_ok=True)
    for p in _companions(rows_journal):
        p.unlink(missing_ok=True)


def _move_aside(journal: Path) -> Path:
    """A journal left by a crashed session with the same export: keep it under the next free -N name."""
    base = journal.name[: -len(JOURNAL_SUFFIX)]
    k = 2
    while (dest := journal.with_name(f"{base}.partial-{k}.csv")).exists():
        k += 1
    os.replace(journal, dest)
    for old, new in zip(_companions(journal), _companions(dest)):  # its markers and session info go with it
        if old.exists():
            os.replace(old, new)
    log.warning("a journal from an earlier, unfinished session was at %s; moved it to %s (recover_journal turns it "
                "into a CSV)", journal, dest)
    return dest


class SessionRecorder:
    """Collects TimelineRows of one session; see the module docstring for the durability contract.

    With no export paths it only keeps rows in memory (summary, plots) and writes nothing. With exports, rows live
    in the journal (then in the exports), never in memory: `rows`/`iter_rows()` read them back from there.
    Thread-safe: a worker may add() while the UI thread reads summary() or rows.
    """

    def __init__(self, export_paths: Iterable[Path | str], metadata: SessionMetadata,
                 extension: RecorderExtension | None = None, all_frames: bool = False, n_frames: int | None = None):
        """`all_frames`: the exports also get a face_found=0 row for each frame without a face (the journal always
        has one, so the session's frames are known after a crash). `n_frames`: the frames of the session these
        rows come from, for a recorder that exports a finished session's rows again (its frames without a face
        are not among them); by default the frames added are counted."""
        targets = check_export_targets(export_paths)
        for p in targets:
            clean_orphan_temp_files(p.parent, p.name)  # a run killed while it wrote this export's final file
        self.export_paths: list[Path] = targets
        self.metadata = metadata
        self._rows: list[TimelineRow] | None = [] if not targets else None  # memory-only recorders keep them here
        self._n_rows = 0
        self._stats: dict[int, _FaceStats] = {}
        self._frames = _FrameCounter()         # frames processed, with or without a face (the summary's n_frames)
        self._given_frames = None if n_frames is None else int(n_frames)
        self.all_frames = bool(all_frames)     # the exports keep the face_found=0 rows of frames without a face
        self._lock = threading.Lock()          # stats, counters, journal handle
        self._close_lock = threading.Lock()    # one close() at a time; held while the exports are written
        self._accepting = True
        self._done = False
        self._journal: IO | None = None
        self._journal_error: str | None = None  # why the journal stopped taking rows (disk full...), if it did
        self._writer = None
        self.journal_path: Path | None = journal_path_for(targets[0]) if targets else None
        if self.journal_path is not None:
            try:
                if self.journal_path.exists():
                    _move_aside(self.journal_path)
                self._journal = open(self.journal_path, "x", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close())
                _lock_journal(self._journal)
                self._writer = csv.writer(self._journal, lineterminator="\n")
                self._writer.writerow(CSV_COLUMNS)
                self._journal.flush()
            except OSError as e:
                raise ExportError(f"cannot create the journal {self.journal_path}: {_os_reason(e)}") from None
            info = {"metadata": metadata.to_dict(), "exports": [str(p) for p in targets], "all_frames": self.all_frames}
            try:
                _atomic_write(session_info_for(self.journal_path), lambda f: json.dump(info, f, indent=1))
            except OSError as e:  # only a recovery after a crash needs it (for its JSON): record without it
                log.warning("cannot write %s (%s): a crash would be recovered as a CSV only",
                            session_info_for(self.journal_path), _os_reason(e))
        self.extension = extension  # markers and baseline (app/study/extension.py), journalled beside the rows
        if extension is not None and self.journal_path is not None:
            try:
                extension.open_journal(self.journal_path)
            except OSError as e:
                raise ExportError(f"cannot create the study journal beside {self.journal_path}: "
                                  f"{_os_reason(e)}") from None
        self._last_fsync = time.monotonic()

    # -- recording

    def add(self, row: TimelineRow) -> None:
        self.add_many((row,))

    def add_result(self, result) -> list[TimelineRow]:
        """Record one processed frame (an app.pipeline.FrameResult): one row per face, or a face_found=0 row when it
        has none (journalled, so the frame counts towards the session's frames; exported with all_frames). Returns
        the rows the exports get."""
        rows = rows_from_result(result, all_frames=True)
        self.add_many(rows)
        return [r for r in rows if self._exported(r)]

    def _exported(self, row: TimelineRow) -> bool:
        return row.face_found or self.all_frames

    def add_many(self, rows: Iterable[TimelineRow]) -> None:
        """Record rows (typically one frame's faces; a face_found=0 row for a frame without a face: exported only
        with all_frames, counted as a frame of the session either way). They are in the journal, handed to the OS,
        when this returns.
        A journal that cannot be written (disk full) raises ExportError; the recorder then takes no more rows, and
        close() still writes every export it can from what the journal holds."""
        rows = list(rows)
        for r in rows:
            if not isinstance(r, TimelineRow):
                raise TypeError(f"SessionRecorder.add_many takes TimelineRow, got {type(r).__name__}")
        values = [r.csv_values() for r in rows]
        with self._lock:
            if not self._accepting:
                raise RuntimeError("this SessionRecorder is closed")
            if self._journal_error is not None:
                raise ExportError(self._journal_error)
            if not rows:
                return
            if self._journal is not None:
                try:
                    self._writer.writerows(values)
                    self._journal.flush()  # process kill safe: the kernel has the bytes
                    now = time.monotonic()
                    if now - self._last_fsync >= FSYNC_INTERVAL_S:  # power-cut safe to ~1 s, ~1 ms once a second
                        os.fsync(self._journal.fileno())
                        self._last_fsync = now
                except OSError as e:
                    self._journal_error = (f"cannot write the journal {self.journal_path}: {_os_reason(e)} "
                                           f"(after {self._n_rows} rows)")
                    raise ExportError(self._journal_error) from None
            else:
                self._rows.extend(rows)
            self._n_rows += sum(map(self._exported, rows))
            for r in rows:
                self._frames.add(r.frame_index)
                if r.face_found:
                    self._stats.setdefault(r.face_id, _FaceStats()).add(r)

    def iter_rows(self) -> Iterator[TimelineRow]:
        """Every row recorded so far, streamed from the journal while recording (from the first export once the
        session is closed): constant memory, however long the session."""
        if self._rows is not None:
            with self._lock:
                rows = list(self._rows)
            yield from filter(self._exported, rows)
            return
        size, opened = None, None
        with self._lock:  # close() deletes the journal under this lock: open it here, or read the finished export
            done = self._done
            journal = self._journal
            if not done and journal is not None and not journal.closed:
                with contextlib.suppress(OSError):
                    journal.flush()
                size = os.fstat(journal.fileno()).st_size  # rows appended after this are not ours to read
            if not done and self.journal_path is not None:
                try:
                    opened = open(self.journal_path, "rb")  # noqa: SIM115 (_iter_csv_rows closes it)
                except FileNotFoundError:
                    opened = None
                except OSError as e:
                    raise ExportError(f"cannot read {self.journal_path}: {_os_reason(e)}") from None
        if done:
            yield from read_session(self.export_paths[0])[1]
        elif opened is not None:
            yield from filter(self._exported, _iter_csv_rows(self.journal_path, tolerate_torn_tail=True, size=size,
                                                             opened=opened, warn_torn=False))

    @property
    def rows(self) -> list[TimelineRow]:
        """All rows as a list (reads them back: use iter_rows() to stream a long session)."""
        return list(self.iter_rows())

    def __len__(self) -> int:
        return self._n_rows

    @property
    def n_frames(self) -> int:
        """The session's frames: every frame processed, with a face or not (coverage's denominator)."""
        with self._lock:
            return self._frames.n if self._given_frames is None else self._given_frames

    def summary(self) -> dict:
        n_frames = self.n_frames
        with self._lock:
            return _summarise(self._stats, n_frames)

    # -- finishing

    def _release_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            with contextlib.suppress(OSError):  # a full disk fails the last flush too: the rows are in it or lost
                journal.close()

    def close(self) -> None:
        """Write every export atomically (streamed from the journal), then delete the journal. A no-op once it
        succeeded. Every target that can be written is written; if any cannot, or the journal itself had failed,
        the journal is kept, one ExportError line says what was written and what was not, and calling close()
        again retries the exports."""
        with self._close_lock:
            if self._done:
                return
            # Stop intake under the state lock, then write outside it: the final files of a long session take seconds
            # and the UI thread must still be able to read rows/summary meanwhile. The journal stays open (and
            # locked) until it is deleted, so no other process takes it for a dead session's meanwhile.
            with self._lock:
                self._accepting = False
                journal = self._journal
            if journal is not None:
                try:
                    journal.flush()
                except OSError as e:  # the rows still buffered are lost: say so
                    if self._journal_error is None:
                        self._journal_error = f"cannot write the journal {self.journal_path}: {_os_reason(e)}"
                with contextlib.suppress(OSError):  # durability of a file about to be replaced by the exports
                    os.fsync(journal.fileno())
            # The journal's cut last line, if any, is the failed write the journal error already reports: no warning.
            if self._rows is not None:
                def source() -> Iterable[TimelineRow]:
                    return filter(self._exported, self._rows)
            else:
                def source() -> Iterable[TimelineRow]:
                    return filter(self._exported, _iter_csv_rows(self.journal_path, tolerate_torn_tail=True,
                                                                 warn_torn=False))
            n_frames = self.n_frames
            written, failed = [], []
            ext = self.extension
            if ext is not None and self.export_paths:
                with contextlib.suppress(OSError, ExportError):  # an unreadable journal fails each target below
                    ext.prepare(source)
            ext_args = (ext,) if ext is not None else ()  # the writers' plain signature when there is none
            for target in self.export_paths:
                try:
                    if target.suffix.lower() == ".csv":
                        _atomic_write(target, lambda f: _write_csv(f, source(), *ext_args))
                    else:
                        _atomic_write(target, lambda f: _write_json(f, self.metadata.to_dict(), source(), n_frames,
                                                                     *ext_args))
                    written.append(str(target))
                except OSError as e:
                    failed.append(f"{target} ({_os_reason(e)})")
            if ext is not None and self.export_paths and not failed:
                try:  # <session>_events.csv, _epochs.csv, _summary.csv
                    written += [str(p) for p in ext.write_sidecars(self.export_paths[0], source)]
                except (OSError, ExportError) as e:
                    failed.append(f"the study files of {self.export_paths[0]} ({getattr(e, 'strerror', None) or e})")
            journal_error, self._journal_error = self._journal_error, None  # reported once, by this close()
            if failed:
                self._release_journal()  # unlocked: a later run may recover it if this process goes away
                if ext is not None:
                    ext.close_journal(delete=False)
                parts = [journal_error] if journal_error else []
                parts.append(f"could not write {'; '.join(failed)}")
                if written:
                    parts.append(f"wrote {', '.join(written)}")
                parts.append(f"the rows are kept in {self.journal_path}")
                raise ExportError("; ".join(parts))
            if ext is not None:
                ext.close_journal(delete=True)
            with self._lock:  # iter_rows() decides between journal and export under this lock
                self._done = True
                if self.journal_path is not None:
                    try:
                        remove_journal(self.journal_path)
                    except OSError as e:
                        log.warning("exports written, but the journal %s could not be removed: %s",
                                    self.journal_path, e)
            self._release_journal()
            if journal_error:  # every export holds what the journal kept; rows after its failure are lost
                raise ExportError(f"{journal_error}; wrote {', '.join(written)} with the rows recorded before that")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------------------- reading

def read_session(path: Path | str) -> tuple[dict, list[TimelineRow]]:
    """(metadata, rows) from a CSV or JSON export (or a journal). A CSV carries no metadata: it comes back as {}."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return {}, _read_csv_rows(path, tolerate_torn_tail=bool(_JOURNAL_RE.search(path.name)))
    if suffix != ".json":
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}, use .csv or .json")
    doc = _read_session_doc(path)
    try:
        rows = [TimelineRow.from_json(r) for r in doc.get("rows", [])]
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{path}: bad row ({type(e).__name__}: {e})") from None
    return doc.get("metadata", {}), rows


def _read_session_doc(path: Path) -> dict:
    """A JSON export's document, its schema, version and labels checked (ExportError otherwise)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ExportError(f"cannot read {path}: {_os_reason(e)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ExportError(f"{path} is not a FAN Live session export (schema is not {SCHEMA!r})")
    version = doc.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ExportError(f"{path} has session schema version {version!r}; this FAN Live reads up to {SCHEMA_VERSION}")
    labels = doc.get("labels")
    if labels != list(EMOTIONS):
        raise ExportError(f"{path}: labels {labels} differ from this app's {list(EMOTIONS)}")
    return doc


def _missing_columns_error(path: Path, header: list[str]) -> ExportError | None:
    """The error for a CSV whose header lacks a session's columns (a version 1 file has V1_COLUMNS only)."""
    missing = [c for c in V1_COLUMNS if c not in header]
    if not missing:
        return None
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return ExportError(f"{path} is not a FAN Live session export (missing columns {shown})")


def check_session_file(path: Path | str) -> Path:
    """`path`, when it is a session export that read_session reads (a CSV with the session's columns, or a JSON of
    this schema), checked without reading its rows (a CSV's header only): for an input such as a baseline recording,
    before a model loads. Raises ExportError, one line."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"{path} is a folder, not a FAN Live session export (a .csv or .json file)")
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".json":
        _read_session_doc(path)
        return path
    if suffix != ".csv":
        raise ExportError(f"{path} is not a FAN Live session export (a .csv or .json file, not {suffix or 'a file without a suffix'})")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
    except OSError as e:
        raise ExportError(f"cannot read {path}: {_os_reason(e)}") from None
    except (UnicodeDecodeError, csv.Error):
        header = []
    error = _missing_columns_error(path, header)
    if error is not None:
        raise error
    return path


def _free_name(folder: Path, stem: str, suffix: str) -> Path:
    """folder/stem+suffix, or stem.recovered+suffix (-2, -3...) when that exists: recovery never overwrites."""
    dest, k = folder / f"{stem}{suffix}", 1
    while dest.exists():
        dest = folder / f"{stem}.recovered{'' if k == 1 else f'-{k}'}{suffix}"
        k += 1
    return dest


def _read_session_info(rows_journal: Path) -> dict | None:
    """A journal's session info (SessionRecorder writes it beside the journal), or None: none (a journal written
    before there was one) or unreadable (said in the log)."""
    path = session_info_for(rows_journal)
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(info, dict) and isinstance(info.get("metadata"), dict):
            return info
    except (OSError, ValueError) as e:
        log.warning("%s cannot be read (%s): the rows are recovered as a CSV only", path, e)
    return None


def recover_journal(path: Path | str, dest: Path | str | None = None) -> Path:
    """Turn a journal left by a crashed or killed session into its final files, written atomically, as its own
    close() would have: the CSV, the JSON when the session exported one (metadata and summary from the session info
    beside the journal: n_frames counts every frame it processed), and the study files when it had a study. Deletes
    the journal; returns the CSV's path (a JSON goes beside it, same stem). A last line cut by the crash is dropped.
    By default `out.csv.partial.csv` becomes `out.csv` (`out.json.partial.csv` becomes `out.csv` + `out.json`), or
    `out.recovered.csv` when that file already exists."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no journal at {path}")
    journal_rows = _read_csv_rows(path, tolerate_torn_tail=True)
    info = _read_session_info(path)
    # The journal has a row for every frame processed; without session info (an older journal) it is taken as is.
    all_frames = info is None or bool(info.get("all_frames"))
    rows = [r for r in journal_rows if r.face_found or all_frames]
    frames = _FrameCounter()
    for r in journal_rows:
        frames.add(r.frame_index)
    m = _JOURNAL_RE.search(path.name)
    base = Path(path.name[: m.start()]) if m else Path(path.stem + ".recovered")
    stem = base.stem if base.suffix.lower() in EXPORT_SUFFIXES else base.name
    dest = _free_name(path.parent, stem, ".csv") if dest is None else Path(dest)
    json_dest = None
    if info is not None and any(Path(e).suffix.lower() == ".json" for e in info.get("exports", [])):
        json_dest = dest.with_suffix(".json")
        if json_dest.exists():
            json_dest = _free_name(dest.parent, dest.stem, ".json")
    study_journal, study = extension_journal_for(path), None
    if study_journal.is_file():  # the session's markers and baseline choice: recovered with its rows
        from app.study.extension import Study, StudyError  # lazy: app.study builds on this module
        try:
            study = Study.from_journal(study_journal)
            study.prepare(lambda: rows)
        except StudyError as e:
            log.warning("%s (the rows are recovered without it)", e)
            study = None
    try:
        _atomic_write(dest, lambda f: _write_csv(f, rows, study))
        if json_dest is not None:
            metadata = dict(info["metadata"])
            metadata["extra"] = {**(metadata.get("extra") or {}), "recovered_from": path.name}
            _atomic_write(json_dest, lambda f: _write_json(f, metadata, rows, frames.n, study))
        if study is not None:
            study.write_sidecars(dest, lambda: rows)
    except OSError as e:
        raise ExportError(f"cannot write {dest}: {_os_reason(e)} (the journal {path} is kept)") from None
    remove_journal(path)
    return dest


# ----------------------------------------------------------------------------------------------------------- plot

# One colour per class, in EMOTIONS order (anger red ... neutral grey).
_COLOURS = tuple(EMOTION_COLORS[e] for e in EMOTIONS)


def plot_timeline(rows: Iterable[TimelineRow], path_png: Path | str, face_id: int | None = None,
                  title: str | None = None) -> Path:
    """PNG of one face's 7 probabilities over time (stacked areas) above a band of its per-frame label.

    face_id None picks the face with the most rows. Written atomically. Raises ValueError when there is nothing to plot.
    """
    # The object API with its own Agg canvas, not matplotlib.use("Agg") + pyplot: use() is process-wide and, once the
    # Qt window has imported pyplot, switching backends closes all of its open figures.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.face_found]
    if not rows:
        raise ValueError(f"nothing to plot: {NO_FACE_MESSAGE}")
    if face_id is None:
        counts: dict[int, int] = {}
        for r in rows:
            counts[r.face_id] = counts.get(r.face_id, 0) + 1
        face_id = max(counts, key=lambda k: (counts[k], -k))
    face = sorted((r for r in rows if r.face_id == face_id), key=lambda r: r.time_s)
    if not face:
        raise ValueError(f"nothing to plot: no rows for face {face_id}")

    t = [r.time_s for r in face]
    steps = sorted(b - a for a, b in itertools.pairwise(t) if b > a)
    step = steps[len(steps) // 2] if steps else 1.0 / 30
    # Break the areas where the face was lost for a while instead of drawing a ramp across the gap.
    gap = max(5 * step, 0.5)
    xs, ys = [], [[] for _ in EMOTIONS]
    for i, r in enumerate(face):
        if i and r.time_s - face[i - 1].time_s > gap:
            xs.append(face[i - 1].time_s + step)
            for k in range(len(EMOTIONS)):
                ys[k].append(float("nan"))
        xs.append(r.time_s)
        for k, p in enumerate(r.probs):
            ys[k].append(p)

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax, band = fig.subplots(2, 1, sharex=True, height_ratios=[6, 1])
    ax.stackplot(xs, ys, colors=_COLOURS, labels=EMOTIONS, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(title or f"face {face_id}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize="small")
    for k in range(len(EMOTIONS)):
        spans = [(r.time_s, min(step, (face[i + 1].time_s - r.time_s) if i + 1 < len(face) else step))
                 for i, r in enumerate(face) if r.label == EMOTIONS[k]]
        if spans:
            band.broken_barh(spans, (0, 1), facecolors=_COLOURS[k], edgecolor="none")
    band.set_yticks([])
    band.set_ylabel("label", rotation=0, ha="right", va="center")
    band.set_xlabel("time (s)")
    band.set_xlim(t[0], t[-1] + step)

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path_png = Path(path_png)
    try:
        _atomic_write(path_png, lambda f: f.write(buf.getvalue()), binary=True)
    except OSError as e:
        raise ExportError(f"cannot write {path_png}: {_os_reason(e)}") from None
    return path_png
