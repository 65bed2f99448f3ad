"""The session recorder: rows in, a crash-safe journal while recording, CSV/JSON exports at the end.

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
  one `ExportError` line names what failed. `app.runs.recover.recover_journal` turns a journal left by a crash into a final CSV.
* The journal has a row for every frame processed (a face_found=0 row for a frame without a face, exported only
  with all_frames), so the session's frame count (the summary's n_frames, coverage's denominator) survives a crash;
  beside it, `<journal>.session.json` keeps the metadata and the exports asked for. `recover_journal` turns what a
  crash left into the CSV and (when one was asked for) the JSON the session's close would have written.
* While recording, the journal is locked (POSIX `flock`) by the recording process, so `journal_in_use` tells a
  journal of a live session from one a dead process left, whatever its age; `check_export_targets` refuses an
  export a live session is writing (`... is being written by another run, pid N`). `clean_orphan_temp_files`
  removes the `*.tmp` files of a process killed while it wrote the final files.

Stdlib only at import time: no Qt, no torch, no matplotlib.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

from app.durable import atomic_write, clean_orphan_temp_files, os_reason
from app.timeline.files import (ExportError, check_export_targets, journal_path_for, lock_journal, move_aside,
                                remove_journal, session_info_for)
from app.timeline.formats import RecorderExtension, iter_csv_rows, read_session, write_csv, write_json
from app.timeline.metadata import SessionMetadata
from app.timeline.rows import CSV_COLUMNS, TimelineRow, rows_from_result
from app.timeline.summary import FaceStats, FrameCounter, summarise

log = logging.getLogger(__name__)

FSYNC_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Exported:
    """What `SessionRecorder.close()` wrote: the exports asked for, the extension's own files beside them (study
    events, epochs, summaries) and notes for the user (e.g. a baseline that could not be computed)."""

    exports: tuple[Path, ...] = ()
    study_files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()


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
        self._stats: dict[int, FaceStats] = {}
        self._frames = FrameCounter()         # frames processed, with or without a face (the summary's n_frames)
        self._given_frames = None if n_frames is None else int(n_frames)
        self.all_frames = bool(all_frames)     # the exports keep the face_found=0 rows of frames without a face
        self._lock = threading.Lock()          # stats, counters, journal handle
        self._close_lock = threading.Lock()    # one close() at a time; held while the exports are written
        self._accepting = True
        self._done = False
        self._result = Exported()  # what the successful close() wrote
        self._journal: IO | None = None
        self._journal_error: str | None = None  # why the journal stopped taking rows (disk full...), if it did
        self._writer = None
        self.journal_path: Path | None = journal_path_for(targets[0]) if targets else None
        if self.journal_path is not None:
            try:
                if self.journal_path.exists():
                    move_aside(self.journal_path)
                self._journal = open(self.journal_path, "x", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close())
                lock_journal(self._journal)
                self._writer = csv.writer(self._journal, lineterminator="\n")
                self._writer.writerow(CSV_COLUMNS)
                self._journal.flush()
            except OSError as e:
                raise ExportError(f"cannot create the journal {self.journal_path}: {os_reason(e)}") from None
            info = {"metadata": metadata.to_dict(), "exports": [str(p) for p in targets], "all_frames": self.all_frames}
            try:
                atomic_write(session_info_for(self.journal_path), lambda f: json.dump(info, f, indent=1))
            except OSError as e:  # only a recovery after a crash needs it (for its JSON): record without it
                log.warning("cannot write %s (%s): a crash would be recovered as a CSV only",
                            session_info_for(self.journal_path), os_reason(e))
        self.extension = extension  # markers and baseline (app/study/extension.py), journalled beside the rows
        if extension is not None and self.journal_path is not None:
            try:
                extension.open_journal(self.journal_path)
            except OSError as e:
                raise ExportError(f"cannot create the study journal beside {self.journal_path}: "
                                  f"{os_reason(e)}") from None
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
                    self._journal_error = (f"cannot write the journal {self.journal_path}: {os_reason(e)} "
                                           f"(after {self._n_rows} rows)")
                    raise ExportError(self._journal_error) from None
            else:
                self._rows.extend(rows)
            self._n_rows += sum(map(self._exported, rows))
            for r in rows:
                self._frames.add(r.frame_index)
                if r.face_found:
                    self._stats.setdefault(r.face_id, FaceStats()).add(r)

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
                    opened = open(self.journal_path, "rb")  # noqa: SIM115 (iter_csv_rows closes it)
                except FileNotFoundError:
                    opened = None
                except OSError as e:
                    raise ExportError(f"cannot read {self.journal_path}: {os_reason(e)}") from None
        if done:
            yield from read_session(self.export_paths[0])[1]
        elif opened is not None:
            yield from filter(self._exported, iter_csv_rows(self.journal_path, tolerate_torn_tail=True, size=size,
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
            return summarise(self._stats, n_frames)

    # -- finishing

    def _release_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            with contextlib.suppress(OSError):  # a full disk fails the last flush too: the rows are in it or lost
                journal.close()

    @property
    def closed(self) -> bool:
        """close() has written the exports (its journal is gone); later calls return what it wrote."""
        return self._done

    def close(self) -> Exported:
        """Write every export atomically (streamed from the journal), then delete the journal; returns what was
        written. Once it succeeded, a no-op that returns the same. Every target that can be written is written; if
        any cannot, or the journal itself had failed, the journal is kept, one ExportError line says what was written
        and what was not, and calling close() again retries the exports."""
        with self._close_lock:
            if self._done:
                return self._result
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
                        self._journal_error = f"cannot write the journal {self.journal_path}: {os_reason(e)}"
                with contextlib.suppress(OSError):  # durability of a file about to be replaced by the exports
                    os.fsync(journal.fileno())
            # The journal's cut last line, if any, is the failed write the journal error already reports: no warning.
            if self._rows is not None:
                def source() -> Iterable[TimelineRow]:
                    return filter(self._exported, self._rows)
            else:
                def source() -> Iterable[TimelineRow]:
                    return filter(self._exported, iter_csv_rows(self.journal_path, tolerate_torn_tail=True,
                                                                 warn_torn=False))
            n_frames = self.n_frames
            written, failed, sidecars, notes = [], [], [], []
            ext = self.extension
            if ext is not None and self.export_paths:
                with contextlib.suppress(OSError, ExportError):  # an unreadable journal fails each target below
                    note = ext.prepare(source)
                    if note:
                        notes.append(note)
            ext_args = (ext,) if ext is not None else ()  # the writers' plain signature when there is none
            for target in self.export_paths:
                try:
                    if target.suffix.lower() == ".csv":
                        atomic_write(target, lambda f: write_csv(f, source(), *ext_args))
                    else:
                        atomic_write(target, lambda f: write_json(f, self.metadata.to_dict(), source(), n_frames,
                                                                     *ext_args))
                    written.append(str(target))
                except OSError as e:
                    failed.append(f"{target} ({os_reason(e)})")
            if ext is not None and self.export_paths and not failed:
                try:  # <session>_events.csv, _epochs.csv, _summary.csv
                    sidecars = [Path(p) for p in ext.write_sidecars(self.export_paths[0], source)]
                    written += [str(p) for p in sidecars]
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
            self._result = Exported(tuple(self.export_paths), tuple(sidecars), tuple(notes))
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
            return self._result

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
