"""A session's study, attached to its recorder: event markers, epochs around them, interval summaries and a neutral
baseline (inputs in app.study.options, the baseline in app.study.baseline, the tables in app.study.tables).
Qt-free, stdlib only.

Contract (file formats in docs/export-format.md, "Study files"):

* `Marker(marker_id, time_s, label)`: an event at a media time (a stimulus onset, a key press in the window).
  `read_markers(path)` reads a stimulus log (`time_s,label` CSV); bad input raises `StudyError`, one line.
* `StudyConfig`: the epoch window (`EpochWindow(pre_s, post_s)`: [t - pre, t + post) around each marker), the
  summary interval (`summary_every_s`) and the baseline choice (`BaselineSpec`: the first N seconds, the stretch
  between two markers, or a separate recording of the same person).
* `Study` holds a session's markers and config. Attached to a `SessionRecorder` (its `extension`), it journals every
  marker change and the baseline choice beside the rows journal (`<journal>.study.jsonl`, one JSON line per change,
  fsynced), so a killed session recovers them (`app.runs.recover.recover_journal` calls `Study.from_journal`). At close it adds
  `p_<class>_corrected` columns to the CSV when a baseline is chosen (raw minus that face's baseline mean), an
  `events` list and a `study` object to the JSON, and writes the sidecars `<session>_events.csv`,
  `<session>_epochs.csv` (when there are markers) and `<session>_summary.csv` (when summary_every_s is set),
  streamed from the rows in one pass and written atomically.

Means are linear, so an epoch's corrected mean is its raw mean minus the face's baseline mean: the sidecars need
only raw per-(epoch, face) sums, O(markers x faces + intervals x faces) memory, never the rows themselves.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from app.emotions import EMOTIONS
from app.study.baseline import Baseline, compute_baseline, face_id_of
from app.study.options import SOURCE_GAP_LABEL, BaselineSpec, Marker, StudyConfig, StudyError
from app.study.tables import (CORRECTED_COLUMNS, EPOCHS_COLUMNS, EVENTS_COLUMNS, SUMMARY_COLUMNS, StudyTables,
                              sidecar_path, write_table)
from app.timeline.files import extension_journal_for
from app.timeline.rows import TimelineRow

log = logging.getLogger(__name__)


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
        self._baseline_error: str | None = None  # why the chosen baseline could not be computed, for the JSON
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

    def prepare(self, rows: Callable[[], Iterable[TimelineRow]]) -> str | None:
        """Before the exports are written: compute the baseline (one pass over the rows) when one is chosen. Returns
        a note for the user when the chosen baseline cannot be computed (the exports go on without its columns)."""
        spec = self.config.baseline
        self._baseline, self._baseline_error = None, None
        if spec is not None:
            try:
                self._baseline = compute_baseline(spec, self.markers, rows())
            except StudyError as e:  # e.g. no face in the span: the exports go on without corrected columns
                self._baseline_error = str(e)
                log.warning("%s: exported without baseline-corrected columns", e)
                return f"{e}: the study files have no baseline-corrected columns"
        return None

    @property
    def baseline(self) -> Baseline | None:
        """The baseline of the last prepare() (None before, or when none is chosen)."""
        return self._baseline

    def csv_columns(self) -> tuple[str, ...]:
        return CORRECTED_COLUMNS if self._baseline is not None else ()

    def csv_values(self, row: TimelineRow) -> list:
        if self._baseline is None:
            return []
        b = self._baseline.mean_for(face_id_of(row))
        return [p - m for p, m in zip(row.probs, b)] if b is not None else [""] * len(EMOTIONS)

    def json_fields(self) -> dict:
        return {"events": [m.to_json() for m in self.markers],
                "study": {**self.config.to_json(),
                          "baseline": None if self._baseline is None else self._baseline.to_json(),
                          **({"baseline_error": self._baseline_error} if self._baseline_error else {})}}

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
            written.append(write_table(sidecar_path(session_file, "events"), EVENTS_COLUMNS,
                                        ([m.marker_id, m.time_s, m.label] for m in markers)))
        if stimuli:
            written.append(write_table(sidecar_path(session_file, "epochs"), EPOCHS_COLUMNS + extra,
                                        tables.epoch_rows(self._baseline)))
        if self.config.summary_every_s is not None:
            written.append(write_table(sidecar_path(session_file, "summary"), SUMMARY_COLUMNS + extra,
                                        tables.summary_rows(self._baseline)))
        return written

    def copy(self) -> Study:
        """The same markers and settings, without the journal (for an export to other files)."""
        return Study(self.config, self.markers)
