"""Where the window's sessions go, and the thread-safe switch between "recording" and "not recording".

Every recording is an engine `SessionRecorder` whose exports are CSV + JSON in the sessions folder, so its journal is
there too from the first row: nothing is lost on a crash, and `recover_pending` turns journals left by a crash into
CSVs at the next start. "Export..." writes the same rows again through a fresh recorder (and `plot_timeline`) to the
files the user picked. Qt-free.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from app.timeline.files import ExportError, journal_in_use
from app.timeline.metadata import SessionMetadata
from app.timeline.recorder import SessionRecorder
from app.timeline.rows import TimelineRow
from app.durable import clean_orphan_temp_files, os_reason
from app.timeline.plot import plot_timeline
from app.runs.recover import recover_journal

SESSIONS_ENV = "FANLIVE_SESSIONS_DIR"


def sessions_dir() -> Path:
    """$FANLIVE_SESSIONS_DIR, else ~/FANLive/sessions: a visible folder a researcher finds without the docs."""
    env = os.environ.get(SESSIONS_ENV)
    return Path(env).expanduser() if env else Path.home() / "FANLive" / "sessions"


def session_stem(source: str, now: _dt.datetime | None = None) -> str:
    """'2024-05-01_12-00-00_clip' for a source 'path/to/clip.mp4' (or 'camera-0'): sorts by time, says what."""
    now = now or _dt.datetime.now()
    name = Path(source).stem if ("/" in source or "\\" in source or "." in source) else source
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "session"
    return f"{now:%Y-%m-%d_%H-%M-%S}_{name}"


def unique_stem(folder: Path, stem: str) -> str:
    """`stem`, or stem-2, stem-3... when a session of the same second already wrote files there."""
    k, out = 1, stem
    while any(folder.glob(f"{out}.*")):
        k += 1
        out = f"{stem}-{k}"
    return out


def recover_pending(folder: Path) -> list[Path]:
    """Turn every journal a dead session left in `folder` into a CSV; the CSVs written. A journal is a dead session's
    when no live process holds it (`journal_in_use`: the recording process's lock, released by the kernel however
    the process ended), so a restart right after a crash or a kill recovers it at once, while a session another
    FAN Live window is still recording is left alone. Unreadable journals are kept as they are. Temp files of a run
    killed while it wrote its final files are removed."""
    out = []
    if not folder.is_dir():
        return out
    clean_orphan_temp_files(folder)
    # out.csv.partial.csv, and out.csv.partial-2.csv when an older journal had been moved aside
    for journal in sorted(folder.glob("*.partial*.csv")):
        try:
            if journal_in_use(journal):
                continue
            out.append(recover_journal(journal))
        except (ExportError, OSError):  # unreadable, or gone meanwhile: leave it
            continue
    return out


class SessionLog:
    """The current recording, shared by the GUI (start/stop) and the pipeline thread (add).

    Rows of the last recording stay readable after stop() so they can still be exported."""

    def __init__(self):
        self._lock = threading.Lock()
        self._recorder: SessionRecorder | None = None
        self._last: SessionRecorder | None = None
        self.tally = None  # the current (or last) recording's app.ui.state.live_session.LiveTally; None for a file

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def start(self, folder: Path, source: str, metadata: SessionMetadata, extension=None,
              tally=None) -> SessionRecorder:
        """Begin a new recording into folder/<time>_<source>.csv + .json (the journal is written from now on);
        `extension` (an app.study.extension.Study) records the markers with it; `tally` (a live source's LiveTally)
        gets each processed frame's latency. Raises ExportError when the folder cannot be written. The caller stops
        any previous recording first."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"cannot create the sessions folder {folder}: {os_reason(e)} (set {SESSIONS_ENV} to "
                              f"another folder)") from None
        stem = unique_stem(folder, session_stem(source))
        recorder = SessionRecorder([folder / f"{stem}.csv", folder / f"{stem}.json"], metadata, extension=extension)
        with self._lock:
            self._recorder = self._last = recorder
            self.tally = tally
        return recorder

    def add(self, rows: Iterable[TimelineRow]) -> None:
        """Record rows (tests, tools). A journal write failure stops the recording (the rows so far stay in memory
        and in the journal) and re-raises the ExportError once."""
        rows = list(rows)
        if rows:
            self._record(lambda recorder: recorder.add_many(rows))

    def add_result(self, result) -> None:
        """Called for every processed frame (pipeline thread) with its app.pipeline.FrameResult; failures as add()."""
        def add(recorder: SessionRecorder) -> None:
            recorder.add_result(result)
            if self.tally is not None:  # set with the recorder, under the same lock
                self.tally.push_latency(result.latency_ms)

        self._record(add)

    def _record(self, add) -> None:
        with self._lock:
            recorder = self._recorder
            if recorder is None:
                return
            try:
                add(recorder)
            except ExportError:
                self._recorder = None
                raise

    def stop(self) -> SessionRecorder | None:
        """Stop adding rows and return the recorder for the caller to close() (it writes the final files, which may
        take a moment: the window does it off the GUI thread)."""
        with self._lock:
            recorder, self._recorder = self._recorder, None
        return recorder

    @property
    def last(self) -> SessionRecorder | None:
        """The current recording, or the last one after stop()."""
        return self._last

    def rows(self) -> list[TimelineRow]:
        return [] if self._last is None else self._last.rows


EXPORT_KINDS = ("csv", "json", "png")


def export_rows(rows: list[TimelineRow], metadata: SessionMetadata, target: Path, kinds: Iterable[str] = EXPORT_KINDS,
                face_id: int | None = None, extension=None, n_frames: int | None = None) -> list[Path]:
    """Write rows to target's stem with each suffix in `kinds` (.csv/.json through a SessionRecorder, .png through
    plot_timeline of `face_id`, or the face with most rows); `extension` (an app.study.extension.Study, not attached to
    another recorder) adds the study files beside them; `n_frames` is the session's frame count (its recorder's
    n_frames: the rows leave out frames without a face). Return the paths written. Raises ExportError, or
    ValueError when there are no rows."""
    if not rows:
        raise ValueError("nothing to export yet: no face has been recorded in this session")
    kinds = [k for k in EXPORT_KINDS if k in set(kinds)]
    base = target.with_suffix("") if target.suffix.lower() in (".csv", ".json", ".png") else target
    tables = [base.with_name(f"{base.name}.{k}") for k in kinds if k in ("csv", "json")]
    written, study_files = [], []
    if tables:
        with SessionRecorder(tables, metadata, extension=extension, n_frames=n_frames) as rec:
            rec.add_many(rows)
        exported = rec.close()
        written += exported.exports
        study_files = exported.study_files  # <stem>_events.csv, _epochs.csv, _summary.csv
    if "png" in kinds:
        counts = Counter(r.face_id for r in rows)
        fid = face_id if face_id in counts else max(counts, key=lambda k: (counts[k], -k))
        written.append(plot_timeline(rows, base.with_name(f"{base.name}.png"), face_id=fid,
                                     title=f"{Path(metadata.source).name}: face {fid}"))
    return written + list(study_files)
