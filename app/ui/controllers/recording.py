"""The window's sessions: start and stop a recording, save it, export it, recover what a crash left (no widgets).

`RecordingController` wraps the Qt-free `SessionLog` (which the pipeline thread feeds) and does the slow parts
(closing a recorder writes its final files, an export reads its rows back) on task threads the window gives it. It
tells the window what happened through past-tense signals: `recording_changed(bool)`, `session_saved(paths)`,
`session_exported(paths)`, `notice(html, key)` (a newer notice with the same key replaces the older one) and
`error_occurred(message)`. The window decides *when* to record (files from frame 0, cameras on Ctrl+R); this decides
*how*.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal

from app.capture.camera import DEFAULT_RECONNECT_S
from app.runs.replay import session_metadata
from app.timeline.files import ExportError
from app.timeline.recorder import SessionRecorder
from app.ui.controllers.sessions import SessionLog, export_rows, recover_pending, sessions_dir
from app.ui.state.live_session import LiveTally


def folder_link(folder: Path) -> str:
    """A folder as a link the notice banner opens in the file manager."""
    return f"<a href='{QUrl.fromLocalFile(str(folder)).toString()}'>{folder}</a>"


class RecordingController(QObject):
    recording_changed = Signal(bool)   # a recording started (True) or stopped (False)
    session_saved = Signal(list)       # the final files of a stopped recording were written: their paths
    session_exported = Signal(list)    # an export was written: its paths
    notice = Signal(str, str)          # html text, key
    error_occurred = Signal(str)

    def __init__(self, run_task: Callable, parent: QObject | None = None):
        """run_task(fn, on_done=slot) runs fn off the GUI thread and calls slot(result) (errors: error_occurred)."""
        super().__init__(parent)
        self.log = SessionLog()
        self._run_task = run_task
        self.pass_saved = False  # a file's pass ended and its session was saved: playing it again records a new one
        self.study_factory: Callable[[], object] | None = None  # each recording's app.study.extension.Study (app/ui/controllers/markers.py)
        # a live recording's JSON gets the headless recording's `live` block: the window says how many frames its
        # capture thread has read so far, and how long a lost source is retried
        self.frames_received: Callable[[], int] = lambda: 0
        self.reconnect_s = DEFAULT_RECONNECT_S

    @property
    def recording(self) -> bool:
        return self.log.recording

    @property
    def last(self) -> SessionRecorder | None:
        """The current recording, or the last one."""
        return self.log.last

    def start(self, source, model) -> bool:
        """Record `source` (a SourceInfo) analysed by `model` (a PipelineInfo) into the sessions folder; False (and
        error_occurred) when the folder cannot be written."""
        name = str(source.spec) if not source.is_live else source.name
        metadata = session_metadata(name, model)
        metadata.extra.update(front_end="window", source_name=source.name)
        try:
            recorder = self.log.start(sessions_dir(), source.name, metadata,
                                      extension=self.study_factory() if self.study_factory is not None else None,
                                      tally=LiveTally(self.frames_received()) if source.is_live else None)
        except (ExportError, OSError, ValueError) as e:
            self.error_occurred.emit(f"cannot record: {e}")
            self.recording_changed.emit(False)
            return False
        self.pass_saved = False
        self.recording_changed.emit(True)
        first = recorder.export_paths[0]
        self.notice.emit(f"Recording to {folder_link(first.parent)}/{first.stem}.csv + .json (autosaved as it "
                         "runs). Ctrl+R stops, Ctrl+E exports.", str(first))
        return True

    def note_source_event(self, event) -> None:
        """A live source's gap (it came back, or it ended for good) goes into the recording's `live` block."""
        tally = self.log.tally
        if tally is None or not self.recording:
            return
        if event.gap is not None:
            tally.gaps.append(event.gap)
        if event.kind == "ended":
            tally.source_ended(event.message)

    def _finish_live_block(self, recorder: SessionRecorder, stop: str) -> None:
        tally = self.log.tally
        if tally is not None and recorder is self.log.last:
            recorder.metadata.extra["live"] = tally.block(self.frames_received(), recorder.n_frames, stop,
                                                          self.reconnect_s)

    def stop(self, wait: bool = False) -> None:
        """Stop recording and write the session's CSV and JSON: on a task thread (session_saved when written), or
        here with `wait` (at exit, where errors can only go to stderr)."""
        recorder = self.log.stop()
        if recorder is None:
            return
        self._finish_live_block(recorder, "stopped")
        self.recording_changed.emit(False)

        def close() -> list[Path]:
            return list(recorder.close().exports)

        if wait:
            try:
                close()
            except Exception as e:  # noqa: BLE001 - at exit there is nobody left to tell but stderr
                print(f"fan-live: could not save the session: {e}", file=sys.stderr)
            return
        self._run_task(close, on_done=self._on_saved)

    def finish_pass(self) -> None:
        """Every frame of a file's pass is analysed and recorded: its session is complete, save it."""
        if self.log.recording:
            self.stop()
            self.pass_saved = True

    def on_recording_failed(self, message: str) -> None:
        """The journal could not be written (disk full...): the recording has stopped; write what can be written."""
        self.recording_changed.emit(False)
        self.error_occurred.emit(f"recording stopped: {message}")
        recorder = self.log.last
        if recorder is not None:
            self._finish_live_block(recorder, "failed")

            def save() -> list[Path]:
                try:
                    return list(recorder.close().exports)
                except ExportError:
                    if not recorder.closed:
                        raise  # nothing could be written: the message says where the rows are kept
                    # written, with the rows the journal kept before it failed (the line above said so)
                    return list(recorder.close().exports)

            self._run_task(save, on_done=self._on_saved)

    def _on_saved(self, paths: list) -> None:
        if paths:
            self.notice.emit(f"Session saved: {', '.join(Path(p).name for p in paths)} in "
                             f"{folder_link(Path(paths[0]).parent)}", str(paths[0]))
        self.session_saved.emit(paths)

    def export_to(self, path: Path, kinds=("csv", "json", "png"), face_id: int | None = None):
        """Export the current (or last) recording's rows to path's stem + each kind, off the GUI thread (the rows
        are read back from its journal or files there, never held in memory); session_exported(paths) when
        written. The task, or None when nothing was recorded."""
        last = self.log.last
        if last is None:
            self.error_occurred.emit("Nothing to export yet: nothing has been recorded in this session.")
            return None
        study = last.extension.copy() if last.extension is not None else None  # markers, baseline, summary
        return self._run_task(lambda: export_rows(last.rows, last.metadata, Path(path), kinds, face_id, study,
                                                  n_frames=last.n_frames), on_done=self._on_exported)

    def _on_exported(self, paths: list) -> None:
        self.notice.emit(f"Exported {', '.join(p.name for p in paths)} to {folder_link(Path(paths[0]).parent)}",
                         f"export {paths[0]}")
        self.session_exported.emit(paths)

    def export_on_exit(self, paths) -> None:
        """main.py --export with the window: the last session also goes to each path when the window closes."""
        last = self.log.last
        if last is None or not len(last):
            return
        for path in paths:
            try:
                export_rows(last.rows, last.metadata, Path(path), (Path(path).suffix.lower().lstrip(".") or "csv",),
                            extension=last.extension.copy() if last.extension is not None else None,
                            n_frames=last.n_frames)
            except Exception as e:  # noqa: BLE001
                print(f"fan-live: export to {path} failed: {e}", file=sys.stderr)

    def recover(self) -> list[Path]:
        """Turn the journals of dead sessions in the sessions folder into CSVs, and say so."""
        recovered = recover_pending(sessions_dir())
        if recovered:
            n = len(recovered)
            self.notice.emit(f"Recovered {n} session{'s' if n != 1 else ''} an earlier run did not finish: "
                             f"{', '.join(p.name for p in recovered)} in {folder_link(recovered[0].parent)}",
                             "recovered")
        return recovered
