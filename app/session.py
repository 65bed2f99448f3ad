"""The emotion timeline of one session: rows in, a crash-safe journal while recording, CSV/JSON exports at the end.

Contract (the file formats are documented in docs/export-format.md):

* `TimelineRow` is one (frame, face) prediction; `SessionRecorder(export_paths, metadata)` collects them.
* Export folders are checked when the recorder is built, so a bad `--export` fails before any frame is processed.
* Every `add`/`add_many` appends the rows to a journal CSV (`<first target>.partial.csv`) and hands them to the OS
  (one flush per call: ~40 us on the dev VM, so a killed process loses nothing already added); the journal is fsynced
  at most once a second (~1 ms each), so an OS crash or power cut loses about a second.
* `close()` (also on leaving a `with` block, exception or not) writes each export atomically (temp file in the same
  folder, fsync, `os.replace`) and then deletes the journal. If an export cannot be written the journal is kept and
  the `ExportError` names it. `recover_journal` turns a journal left by a crash into a final CSV.

Pure Python + stdlib at import time: no Qt, no torch, no matplotlib (`plot_timeline` imports matplotlib lazily).
"""
from __future__ import annotations

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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Self

from app.emotions import EMOTION_COLORS, EMOTIONS

log = logging.getLogger(__name__)

SCHEMA = "fan-live-session"
SCHEMA_VERSION = 1
EXPORT_SUFFIXES = (".csv", ".json")
JOURNAL_SUFFIX = ".partial.csv"
NO_FACE_MESSAGE = "no face found"
FSYNC_INTERVAL_S = 1.0

CSV_COLUMNS: tuple[str, ...] = (
    "time_s", "frame_index", "face_id", "x0", "y0", "x1", "y1", "label", "confidence",
    *(f"p_{name}" for name in EMOTIONS), "alpha", "weight",
)

# Leftover journals: out.csv.partial.csv, and out.csv.partial-2.csv once an older one had to be moved aside.
_JOURNAL_RE = re.compile(r"\.partial(?:-\d+)?\.csv$")
_PROB_SUM_TOL = 1e-2  # softmax output in float16/32 sums to 1 within ~1e-3; logits or scores would be far off


class ExportError(Exception):
    """An export or journal cannot be written or read. The message is one line that names the path."""


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"TimelineRow.{name} must be finite, got {value!r}")
    return v


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One face on one processed frame: the head's output for the window ending at this frame."""
    time_s: float                                   # seconds from the start of the source (video position / capture)
    frame_index: int                                # index of the frame in the source, from 0
    face_id: int                                    # tracker id, stable while the face stays tracked
    box: tuple[float, float, float, float]          # x0, y0, x1, y1 in pixels of the source frame
    label: str                                      # one of EMOTIONS (the model's decision for this window)
    confidence: float                               # probability of `label`
    probs: tuple[float, ...]                        # (7,) in EMOTIONS order, sums to 1
    alpha: float                                    # self-attention alpha of the newest frame in the window, (0, 1)
    weight: float                                   # normalised final weight (alpha, or alpha*beta) of the newest frame

    def __post_init__(self) -> None:
        # Coerce numpy scalars/lists to plain Python so the exports and == comparisons are exact and JSON-able.
        set_ = object.__setattr__
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
        return [self.time_s, self.frame_index, self.face_id, *self.box, self.label, self.confidence, *self.probs,
                self.alpha, self.weight]

    def to_json(self) -> dict:
        return {"time_s": self.time_s, "frame_index": self.frame_index, "face_id": self.face_id, "box": list(self.box),
                "label": self.label, "confidence": self.confidence, "probs": list(self.probs), "alpha": self.alpha,
                "weight": self.weight}

    @classmethod
    def from_csv(cls, rec: dict[str, str]) -> TimelineRow:
        return cls(time_s=float(rec["time_s"]), frame_index=int(rec["frame_index"]), face_id=int(rec["face_id"]),
                   box=tuple(float(rec[k]) for k in ("x0", "y0", "x1", "y1")), label=rec["label"],
                   confidence=float(rec["confidence"]), probs=tuple(float(rec[f"p_{n}"]) for n in EMOTIONS),
                   alpha=float(rec["alpha"]), weight=float(rec["weight"]))

    @classmethod
    def from_json(cls, rec: dict) -> TimelineRow:
        return cls(time_s=rec["time_s"], frame_index=rec["frame_index"], face_id=rec["face_id"], box=tuple(rec["box"]),
                   label=rec["label"], confidence=rec["confidence"], probs=tuple(rec["probs"]), alpha=rec["alpha"],
                   weight=rec["weight"])


@dataclass
class SessionMetadata:
    """Where a session's rows came from; saved in the JSON export (the CSV is the bare table)."""
    source: str                     # video path, or "camera 0"
    model: str                      # model card name
    providers: list[str]            # ONNX Runtime execution providers actually used, e.g. ["CPUExecutionProvider"]
    attention: str                  # relation | self
    window_length: int              # frames in the FAN window
    started_at: str                 # ISO 8601, UTC, e.g. 2024-05-01T12:00:00+00:00
    app_version: str
    extra: dict = field(default_factory=dict)  # free-form: anything a front end wants to keep with the session

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


def _write_csv(f: IO, rows: Iterable[TimelineRow]) -> None:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    w.writerows(r.csv_values() for r in rows)


def _write_json(f: IO, metadata: dict, rows: list[TimelineRow], summary: dict) -> None:
    """Plain json, laid out one row per line so the file diffs and greps well."""
    def dump(v: Any) -> str:
        return json.dumps(v, allow_nan=False, ensure_ascii=False)

    head = {"schema": SCHEMA, "version": SCHEMA_VERSION, "metadata": metadata, "labels": list(EMOTIONS)}
    f.write("{\n")
    f.writelines(f"  {dump(key)}: {dump(value)},\n" for key, value in head.items())
    f.write('  "rows": [')
    f.write(",".join(f"\n    {dump(r.to_json())}" for r in rows))
    f.write("\n  ],\n")
    # JSON object keys are strings: face ids become "1", "2", ...
    f.write(f'  "summary": {dump(_json_summary(summary))}\n}}\n')


def _json_summary(summary: dict) -> dict:
    out = dict(summary)
    out["faces"] = {str(k): v for k, v in summary["faces"].items()}
    return out


def _read_csv_rows(path: Path, tolerate_torn_tail: bool) -> list[TimelineRow]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ExportError(f"cannot read {path}: {_os_reason(e)}") from None
    if tolerate_torn_tail and text and not text.endswith("\n"):
        # Rows are written whole and newline-terminated; a last line without its newline was cut by a crash.
        text = text[: text.rfind("\n") + 1]
        log.warning("%s: dropped an incomplete last line (the writer was killed mid-row)", path)
    if not text.strip():
        if tolerate_torn_tail:
            return []
        raise ExportError(f"{path} is empty (expected a FAN Live timeline CSV)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ExportError(f"{path} is not a FAN Live timeline CSV (missing columns: {', '.join(missing)})")
    rows = []
    for lineno, rec in enumerate(reader, start=2):
        try:
            rows.append(TimelineRow.from_csv(rec))
        except (TypeError, ValueError) as e:
            raise ExportError(f"{path}:{lineno}: bad row ({e})") from None
    return rows


# ----------------------------------------------------------------------------------------------------------- summary

class _FaceStats:
    """Running totals for one face, so summary() costs O(faces), not O(rows), during a long live session."""
    __slots__ = ("counts", "first", "last", "n", "prob_sums")

    def __init__(self) -> None:
        self.n = 0
        self.first = math.inf
        self.last = -math.inf
        self.counts = [0] * len(EMOTIONS)
        self.prob_sums = [0.0] * len(EMOTIONS)

    def add(self, row: TimelineRow) -> None:
        self.n += 1
        self.first = min(self.first, row.time_s)
        self.last = max(self.last, row.time_s)
        self.counts[EMOTIONS.index(row.label)] += 1
        for i, p in enumerate(row.probs):
            self.prob_sums[i] += p

    def to_dict(self) -> dict:
        # Ties on the count go to the class with the higher mean probability, then to EMOTIONS order.
        dominant = max(range(len(EMOTIONS)), key=lambda i: (self.counts[i], self.prob_sums[i], -i))
        return {
            "n_rows": self.n, "first_time_s": self.first, "last_time_s": self.last,
            "duration_s": self.last - self.first, "dominant": EMOTIONS[dominant],
            "shares": {name: c / self.n for name, c in zip(EMOTIONS, self.counts)},
            "mean_probs": {name: s / self.n for name, s in zip(EMOTIONS, self.prob_sums)},
        }


def _summarise(stats: dict[int, _FaceStats]) -> dict:
    n_rows = sum(s.n for s in stats.values())
    out: dict[str, Any] = {"n_rows": n_rows, "n_faces": len(stats),
                           "faces": {fid: stats[fid].to_dict() for fid in sorted(stats)}}
    if n_rows == 0:
        out["message"] = NO_FACE_MESSAGE
    return out


def summarize_rows(rows: Iterable[TimelineRow]) -> dict:
    """The same summary SessionRecorder.summary() gives, for rows read back from a file."""
    stats: dict[int, _FaceStats] = {}
    for r in rows:
        stats.setdefault(r.face_id, _FaceStats()).add(r)
    return _summarise(stats)


def format_summary(summary: dict) -> str:
    """A few human lines: one per face with its time span and its two most frequent emotions."""
    if not summary.get("faces"):
        return summary.get("message", NO_FACE_MESSAGE)
    n_faces = summary["n_faces"]
    lines = [f"{n_faces} face{'s' if n_faces != 1 else ''}, {summary['n_rows']} rows"]
    for fid, face in summary["faces"].items():
        top = sorted(face["shares"].items(), key=lambda kv: -kv[1])
        mix = ", ".join(f"{name} {share:.0%}" for name, share in top[:3] if share > 0)
        lines.append(f"  face {fid}: {face['first_time_s']:.2f}-{face['last_time_s']:.2f} s "
                     f"({face['n_rows']} rows), mostly {face['dominant']} [{mix}]")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------- recorder

def journal_path_for(target: Path) -> Path:
    """The journal a recorder whose first export is `target` writes while recording."""
    target = Path(target)
    return target.with_name(target.name + JOURNAL_SUFFIX)


def _move_aside(journal: Path) -> Path:
    """A journal left by a crashed session with the same export: keep it under the next free -N name."""
    base = journal.name[: -len(JOURNAL_SUFFIX)]
    k = 2
    while (dest := journal.with_name(f"{base}.partial-{k}.csv")).exists():
        k += 1
    os.replace(journal, dest)
    log.warning("a journal from an earlier, unfinished session was at %s; moved it to %s (recover_journal turns it "
                "into a CSV)", journal, dest)
    return dest


class SessionRecorder:
    """Collects TimelineRows of one session; see the module docstring for the durability contract.

    With no export paths it only keeps rows in memory (summary, plots) and writes nothing.
    Thread-safe: a worker may add() while the UI thread reads summary().
    """

    def __init__(self, export_paths: Iterable[Path | str], metadata: SessionMetadata):
        targets = [Path(p) for p in export_paths]
        for p in targets:
            if p.suffix.lower() not in EXPORT_SUFFIXES:
                raise ValueError(f"export {p}: unsupported file type {p.suffix or '(none)'!r}, use .csv or .json")
        if len({p.resolve() for p in targets}) != len(targets):
            raise ValueError(f"the same export file is given twice: {', '.join(map(str, targets))}")
        for p in targets:
            _check_export_target(p)
        self.export_paths: list[Path] = targets
        self.metadata = metadata
        self._rows: list[TimelineRow] = []
        self._stats: dict[int, _FaceStats] = {}
        self._lock = threading.Lock()          # rows, stats, journal handle
        self._close_lock = threading.Lock()    # one close() at a time; held while the exports are written
        self._accepting = True
        self._done = False
        self._journal: IO | None = None
        self._writer = None
        self.journal_path: Path | None = journal_path_for(targets[0]) if targets else None
        if self.journal_path is not None:
            try:
                if self.journal_path.exists():
                    _move_aside(self.journal_path)
                self._journal = open(self.journal_path, "x", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close())
                self._writer = csv.writer(self._journal, lineterminator="\n")
                self._writer.writerow(CSV_COLUMNS)
                self._journal.flush()
            except OSError as e:
                raise ExportError(f"cannot create the journal {self.journal_path}: {_os_reason(e)}") from None
        self._last_fsync = time.monotonic()

    # -- recording

    def add(self, row: TimelineRow) -> None:
        self.add_many((row,))

    def add_many(self, rows: Iterable[TimelineRow]) -> None:
        """Record rows (typically one frame's faces). They are in the journal, handed to the OS, when this returns."""
        rows = list(rows)
        for r in rows:
            if not isinstance(r, TimelineRow):
                raise TypeError(f"SessionRecorder.add_many takes TimelineRow, got {type(r).__name__}")
        values = [r.csv_values() for r in rows]
        with self._lock:
            if not self._accepting:
                raise RuntimeError("this SessionRecorder is closed")
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
                    raise ExportError(f"cannot write the journal {self.journal_path}: {_os_reason(e)} "
                                      f"({len(self._rows)} earlier rows are in it)") from None
            self._rows.extend(rows)
            for r in rows:
                self._stats.setdefault(r.face_id, _FaceStats()).add(r)

    @property
    def rows(self) -> list[TimelineRow]:
        with self._lock:
            return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def summary(self) -> dict:
        with self._lock:
            return _summarise(self._stats)

    # -- finishing

    def close(self) -> None:
        """Write every export atomically, then delete the journal. A no-op once it succeeded; after an ExportError
        the journal is kept (the message names it) and calling close() again retries the exports."""
        with self._close_lock:
            if self._done:
                return
            # Stop intake under the state lock, then write outside it: the final files of a long session take seconds
            # and the UI thread must still be able to read rows/summary meanwhile. self._rows no longer changes.
            with self._lock:
                self._accepting = False
                journal, self._journal = self._journal, None
                summary = _summarise(self._stats)
            if journal is not None:
                try:
                    journal.flush()
                    os.fsync(journal.fileno())
                except OSError:
                    pass  # the rows are in memory; the exports below are what matters now
                finally:
                    journal.close()
            failed = []
            for target in self.export_paths:
                try:
                    if target.suffix.lower() == ".csv":
                        _atomic_write(target, lambda f: _write_csv(f, self._rows))
                    else:
                        _atomic_write(target, lambda f: _write_json(f, self.metadata.to_dict(), self._rows, summary))
                except OSError as e:
                    failed.append(f"{target} ({_os_reason(e)})")
            if failed:
                raise ExportError(f"could not write {'; '.join(failed)}; all {len(self._rows)} rows are kept in "
                                  f"{self.journal_path}")
            self._done = True
            if self.journal_path is not None:
                try:
                    self.journal_path.unlink(missing_ok=True)
                except OSError as e:
                    log.warning("exports written, but the journal %s could not be removed: %s", self.journal_path, e)

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
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ExportError(f"cannot read {path}: {_os_reason(e)}") from None
    except json.JSONDecodeError as e:
        raise ExportError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ExportError(f"{path} is not a FAN Live session (schema is not {SCHEMA!r})")
    version = doc.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ExportError(f"{path} has session schema version {version!r}; this FAN Live reads up to {SCHEMA_VERSION}")
    labels = doc.get("labels")
    if labels != list(EMOTIONS):
        raise ExportError(f"{path}: labels {labels} differ from this app's {list(EMOTIONS)}")
    try:
        rows = [TimelineRow.from_json(r) for r in doc.get("rows", [])]
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{path}: bad row ({type(e).__name__}: {e})") from None
    return doc.get("metadata", {}), rows


def recover_journal(path: Path | str, dest: Path | str | None = None) -> Path:
    """Turn a journal left by a crashed session into a final CSV (written atomically); delete the journal; return the
    CSV's path. A last line cut by the crash is dropped. By default `out.csv.partial.csv` becomes `out.csv`
    (`out.json.partial.csv` becomes `out.csv`), or `out.recovered.csv` when that file already exists."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no journal at {path}")
    rows = _read_csv_rows(path, tolerate_torn_tail=True)
    if dest is None:
        m = _JOURNAL_RE.search(path.name)
        base = Path(path.name[: m.start()]) if m else Path(path.stem + ".recovered")
        stem = base.stem if base.suffix.lower() in EXPORT_SUFFIXES else base.name
        dest = path.with_name(stem + ".csv")
        k = 1
        while dest.exists():
            dest = path.with_name(f"{stem}.recovered{'' if k == 1 else f'-{k}'}.csv")
            k += 1
    dest = Path(dest)
    try:
        _atomic_write(dest, lambda f: _write_csv(f, rows))
    except OSError as e:
        raise ExportError(f"cannot write {dest}: {_os_reason(e)} (the journal {path} is kept)") from None
    path.unlink()
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

    rows = list(rows)
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
