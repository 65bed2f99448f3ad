"""A session's files on disk besides its exports: where the journal of an export goes and the files beside it, the
journal's lock (which tells a live session's journal from one a dead process left), and the checks that an export
target can be written before anything is processed.

    journal_path_for(Path("out.csv"))            # out.csv.partial.csv: the rows while recording
    extension_journal_for(journal)               # out.csv.partial.study.jsonl: the study's markers (app.study)
    session_info_for(journal)                    # out.csv.partial.session.json: metadata, exports (for recovery)
    check_export_targets([...])                  # ValueError / ExportError, one line, before a model loads

Stdlib only.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

try:  # POSIX: the recording process holds an advisory lock on its journal; the kernel drops it when the process dies
    import fcntl
except ImportError:  # Windows: journals fall back to the age rule (see journal_in_use)
    fcntl = None

from app.durable import os_reason

log = logging.getLogger(__name__)

EXPORT_SUFFIXES = (".csv", ".json")
JOURNAL_SUFFIX = ".partial.csv"
EXTENSION_JOURNAL_SUFFIX = ".study.jsonl"  # beside a rows journal: markers and baseline choice (app/study/extension.py)
SESSION_INFO_SUFFIX = ".session.json"      # beside a rows journal: metadata, exports, all_frames (for recovery)
# Leftover journals: out.csv.partial.csv, and out.csv.partial-2.csv once an older one had to be moved aside.
JOURNAL_RE = re.compile(r"\.partial(?:-\d+)?\.csv$")
# Without journal locks (Windows), a journal untouched this long is taken for a dead session's.
JOURNAL_IDLE_S = 120.0


class ExportError(Exception):
    """An export or journal cannot be written or read. The message is one line that names the path."""


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
        raise ExportError(f"cannot export to {path}: folder {folder} is not writable ({os_reason(e)})") from None


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


def lock_journal(f: IO) -> None:
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


def move_aside(journal: Path) -> Path:
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
