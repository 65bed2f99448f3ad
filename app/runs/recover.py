"""Crash recovery: a journal left by a killed or crashed session becomes the files its close() would have written
(the CSV, the JSON when one was asked for, and the study files when it had a study)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from app.durable import atomic_write, os_reason
from app.study.extension import Study, StudyError
from app.timeline.files import (EXPORT_SUFFIXES, JOURNAL_RE, ExportError, extension_journal_for, remove_journal,
                                session_info_for)
from app.timeline.formats import read_csv_rows, write_csv, write_json
from app.timeline.summary import FrameCounter

log = logging.getLogger(__name__)


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
    journal_rows = read_csv_rows(path, tolerate_torn_tail=True)
    info = _read_session_info(path)
    # The journal has a row for every frame processed; without session info (an older journal) it is taken as is.
    all_frames = info is None or bool(info.get("all_frames"))
    rows = [r for r in journal_rows if r.face_found or all_frames]
    frames = FrameCounter()
    for r in journal_rows:
        frames.add(r.frame_index)
    m = JOURNAL_RE.search(path.name)
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
        try:
            study = Study.from_journal(study_journal)
            study.prepare(lambda: rows)
        except StudyError as e:
            log.warning("%s (the rows are recovered without it)", e)
            study = None
    try:
        atomic_write(dest, lambda f: write_csv(f, rows, study))
        if json_dest is not None:
            metadata = dict(info["metadata"])
            metadata["extra"] = {**(metadata.get("extra") or {}), "recovered_from": path.name}
            atomic_write(json_dest, lambda f: write_json(f, metadata, rows, frames.n, study))
        if study is not None:
            study.write_sidecars(dest, lambda: rows)
    except OSError as e:
        raise ExportError(f"cannot write {dest}: {os_reason(e)} (the journal {path} is kept)") from None
    remove_journal(path)
    return dest
