"""The CSV and JSON export formats: streamed writers (constant memory over hours of rows) and readers of version 1,
2 and 3 files and of journals (a row cut by a crash is dropped). Documented in docs/export-format.md. Stdlib only.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from app.durable import os_reason
from app.emotions import EMOTIONS
from app.signals.names import BLENDSHAPE_NAMES
from app.timeline.files import JOURNAL_RE, ExportError
from app.timeline.rows import CSV_COLUMNS, V1_COLUMNS, TimelineRow
from app.timeline.summary import FaceStats, summarise

log = logging.getLogger(__name__)

SCHEMA = "fan-live-session"
# 2: face_found, reliability, yaw/pitch/roll, bs_*; 3: latency_ms, live sessions (time_s from the session's start,
# source_gap events). Version 1 and 2 files and journals still read.
SCHEMA_VERSION = 3


class RecorderExtension(Protocol):
    """What a recorder writes beside its rows (app/study/extension.py's Study: markers, baseline, epochs, summaries).
    It journals its own state beside the rows journal from open_journal() on; at close() the recorder calls
    prepare() (a pass over the rows, e.g. for a baseline), writes csv_columns()/csv_values(row) after the row's own
    columns and json_fields() into the JSON, then write_sidecars(first export, rows) for its own files."""

    def open_journal(self, rows_journal: Path) -> Path: ...
    def close_journal(self, delete: bool) -> None: ...
    def prepare(self, rows: Callable[[], Iterable[TimelineRow]]) -> str | None: ...  # a note for the user, or None
    def csv_columns(self) -> tuple[str, ...]: ...
    def csv_values(self, row: TimelineRow) -> list: ...
    def json_fields(self) -> dict: ...
    def write_sidecars(self, session_file: Path, rows: Callable[[], Iterable[TimelineRow]]) -> list[Path]: ...


def write_csv(f: IO, rows: Iterable[TimelineRow], extension: RecorderExtension | None = None) -> None:
    w = csv.writer(f, lineterminator="\n")
    extra = extension.csv_columns() if extension is not None else ()
    w.writerow((*CSV_COLUMNS, *extra))
    for r in rows:  # streamed: rows may come straight from a journal of hours
        w.writerow([*r.csv_values(), *extension.csv_values(r)] if extra else r.csv_values())


def write_json(f: IO, metadata: dict, rows: Iterable[TimelineRow], n_frames: int,
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
    stats: dict[int, FaceStats] = {}
    sep = ""
    for r in rows:
        f.write(f"{sep}\n    {dump(r.to_json())}")
        sep = ","
        if r.face_found:
            stats.setdefault(r.face_id, FaceStats()).add(r)
    f.write("\n  ],\n")
    # JSON object keys are strings: face ids become "1", "2", ...
    extra = extension.json_fields() if extension is not None else {}  # the study's "events" and "study"
    f.writelines(f"  {dump(key)}: {dump(value)},\n" for key, value in extra.items())
    f.write(f'  "summary": {dump(_json_summary(summarise(stats, n_frames)))}\n}}\n')


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


def iter_csv_rows(path: Path, tolerate_torn_tail: bool, size: int | None = None,
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
        raise ExportError(f"cannot read {path}: {os_reason(e)}") from None
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


def read_csv_rows(path: Path, tolerate_torn_tail: bool) -> list[TimelineRow]:
    return list(iter_csv_rows(path, tolerate_torn_tail))


def read_session(path: Path | str) -> tuple[dict, list[TimelineRow]]:
    """(metadata, rows) from a CSV or JSON export (or a journal). A CSV carries no metadata: it comes back as {}."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return {}, read_csv_rows(path, tolerate_torn_tail=bool(JOURNAL_RE.search(path.name)))
    if suffix != ".json":
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}, use .csv or .json")
    doc = _read_session_doc(path)
    try:
        rows = [TimelineRow.from_json(r) for r in doc.get("rows", [])]
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{path}: bad row ({type(e).__name__}: {e})") from None
    meta = dict(doc.get("metadata", {}))
    if "attention" in meta:  # the field's earlier name, kept beside `head` for older readers (or alone, in old files)
        meta.setdefault("head", meta["attention"])
        del meta["attention"]
    return meta, rows


def _read_session_doc(path: Path) -> dict:
    """A JSON export's document, its schema, version and labels checked (ExportError otherwise)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ExportError(f"cannot read {path}: {os_reason(e)}") from None
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
        raise ExportError(f"cannot read {path}: {os_reason(e)}") from None
    except (UnicodeDecodeError, csv.Error):
        header = []
    error = _missing_columns_error(path, header)
    if error is not None:
        raise error
    return path
