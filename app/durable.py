"""The one durable writer: every export, card, cache, manifest and checkpoint of the project is written through here.

    atomic_write(path, lambda f: f.write(text))          # a writer callback on an open file (text or binary)
    write_text(path, text); write_bytes(path, data); write_json(path, obj)
    with replacing(path) as tmp:                         # a library that writes to a path itself
        torch.save(obj, tmp)

Each writes a temp file beside the target (`<name>.<pid>.<8 hex>.tmp`, same folder so the rename stays on one file
system), fsyncs it, renames it over the target with `os.replace` and fsyncs the folder: a reader sees the old file
or the new one, never half of one, and a power cut after the call keeps the new one. On any failure the temp file
is removed. `clean_orphan_temp_files` removes the temp files of a process killed mid-write. Stdlib only.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

# Temp files of this module (<name>.<pid>.<8 hex>.tmp) and export probes (.<name>.<pid>.<8 hex>.probe, app.timeline)
_TEMP_RE = re.compile(r"^(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.(?:tmp|probe)$")


def temp_name(path: Path, suffix: str = ".tmp") -> Path:
    """A fresh name beside `path` that clean_orphan_temp_files recognises: <name>.<pid>.<8 hex><suffix>."""
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def fsync_dir(folder: Path) -> None:
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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """Yield a temp path beside `path` for a writer that takes a path (torch.save, onnx.save); when the block ends
    without an exception the temp file is fsynced and renamed over `path`, otherwise it is removed."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path | str, write: Callable[[IO], None], binary: bool = False) -> None:
    """write(f) on the temp file (text: UTF-8, newlines untranslated), then fsync and rename over `path`."""
    with replacing(path) as tmp:
        # os.open with 0o666 (not mkstemp's 0o600) so the file gets the usual umask permissions.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            write(f)


def write_text(path: Path | str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data), binary=True)


def write_json(path: Path | str, obj: Any, indent: int | None = 2, **dumps) -> None:
    """`obj` as JSON (a trailing newline), atomically."""
    write_text(path, json.dumps(obj, indent=indent, **dumps) + "\n")


def os_reason(e: OSError) -> str:
    """The one-line reason of an OSError ("No space left on device")."""
    return e.strerror or type(e).__name__


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
