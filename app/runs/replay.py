"""Headless replay: a video file (or a folder of them) through the pipeline as fast as possible, into exports.

    python main.py --video FILE --export out.csv --no-window       (--export out.json for JSON; both may be given)
    python main.py --video FOLDER --export results/ --no-window     (one export per video, named after it)

Every frame is processed (a prefetch thread decodes ahead); rows stream into the recorder's journal as they come, so
a killed run keeps what it did; the final files are written atomically at the end, even when the video is damaged
part-way (what was decoded before the damage is exported, and the result says the file was damaged).

Inputs and export paths are checked before the model loads, so a typo fails in a moment, not after it. A folder
replay goes on after a video that fails (each result says done, damaged or failed); a single file's failure
raises. Qt-free.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from app import __version__
from app.capture.frame import CaptureError
from app.capture.threads import PrefetchReader
from app.capture.video import RepeatedSource, iter_video_files
from app.capture.sources import open_source
from app.runs.interrupt import StopFlag, finishing
from app.runs.overlap import EMBEDDER_THREADS, DetectAhead
from app.pipeline import Pipeline, PipelineConfig, PipelineInfo
from app.timeline.files import ExportError, check_export_targets
from app.timeline.metadata import SessionMetadata
from app.timeline.recorder import SessionRecorder
from app.study.options import Marker, StudyConfig
from app.study.extension import Study


_FRAMES_PER_TICK = 16  # frames between on_frames() calls of replay_file


@dataclass(frozen=True)
class ReplayResult:
    source: Path
    exports: list[Path]
    frames: int                                     # frames decoded and processed
    summary: dict = field(default_factory=dict)
    declared_frames: int | None = None              # what the container declares (an estimate)
    damage: str | None = None                       # the input ended early: decoded fewer frames than declared
    error: str | None = None                        # the replay failed (one line); nothing or part was exported
    notes: list[str] = field(default_factory=list)  # warnings about the study files (e.g. a baseline with no face)

    @property
    def status(self) -> str:
        """done | damaged (completed, the export holds what was decoded) | failed."""
        return "failed" if self.error else "damaged" if self.damage else "done"


def export_targets(video: Path, export: list[Path], many: bool) -> list[Path]:
    """Where one video's exports go. A folder replay writes <dir>/<video stem>.<ext> (or <stem>_<video stem>.<ext>
    beside an export file name), so videos never overwrite each other."""
    if not many:
        return export
    out = []
    for e in export:
        if e.suffix.lower() in (".csv", ".json"):
            out.append(e.with_name(f"{e.stem}_{video.stem}{e.suffix}"))
        else:  # a directory: one CSV per video
            out.append(e / f"{video.stem}.csv")
    return out


def session_metadata(source: str, info: PipelineInfo) -> SessionMetadata:
    """A new session's metadata: its source and what ran on it (`Pipeline.info()`), started now."""
    return SessionMetadata(source=source, model=info.model, providers=list(info.providers), precision=info.precision,
                           temperature=info.temperature, head=info.head, window_length=info.window_length,
                           started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                           app_version=__version__)


def replay_file(video: Path, exports: list[Path], pipeline: Pipeline, progress: bool = True, repeat: int = 1,
                on_pass: Callable[[int, int], None] | None = None, study: StudyConfig | None = None,
                markers: tuple[Marker, ...] = (), lsl=None,
                on_frames: Callable[[int], None] | None = None, overlap: bool = True,
                stop: StopFlag | None = None) -> ReplayResult:
    """One file into its exports. `on_frames(n)` is told every few frames how many more were processed (an
    overall progress bar of a parallel folder replay). `overlap` (default) runs the face mesh of the next frames on
    a thread of its own beside the models (app/runs/overlap.py: the same rows, sooner wherever there are 2+ cores).
    `repeat` plays it that many times as one session (a soak test), calling on_pass(passes done, frames so far)
    after each. `study` (with `markers`) adds the study files (app/study/extension.py);
    `lsl` (an app.study.lsl.LslStreams) streams each frame's rows, and each marker when the replay reaches its time.
    `stop` (a worker process of a folder replay) is checked once a frame: a requested stop ends the replay there
    as a stop signal does. Raises CaptureError (cannot open), ExportError (one line: what was written and what was
    not) or Interrupted (a stop signal; the rows so far are exported)."""
    source = open_source(video)  # CaptureError here: missing, empty, not a video
    declared = getattr(source, "declared_frame_count", source.frame_count)
    if repeat > 1:
        source = RepeatedSource(source, repeat)
    pipeline.reset()
    pipeline.tracker.reset(restart_ids=True)  # each file is its own timeline: face ids from 1, as in the window
    with source:
        study_session = Study(study, markers) if study is not None else None
        recorder = SessionRecorder(exports, session_metadata(str(video), pipeline.info()), extension=study_session,
                                   all_frames=pipeline.config.all_frames)
        to_stream = sorted(markers, key=lambda m: m.time_s) if lsl is not None else []
        frames = 0
        passes = 0
        last_time_s = None
        try:
            bar = tqdm(total=source.frame_count or None, unit="frame", desc=video.name, disable=not progress,
                       leave=False, dynamic_ncols=True)
            with PrefetchReader(source) as reader, bar, \
                    (DetectAhead(pipeline, reader) if overlap else contextlib.nullcontext(reader)) as stream:
                for item in stream:
                    if stop is not None:
                        stop.check()
                    result = pipeline.recognize(item) if overlap else pipeline.process(item)
                    frame = result.frame
                    try:
                        rows = recorder.add_result(result)
                    except ExportError:
                        break  # the journal failed (disk full): close() below writes what it can and says so
                    if lsl is not None:
                        lsl.push_rows(rows)
                        while to_stream and to_stream[0].time_s <= frame.time_s:
                            lsl.push_marker(to_stream.pop(0).label)
                    frames += 1
                    last_time_s = frame.time_s
                    bar.update(1)
                    if on_frames is not None and frames % _FRAMES_PER_TICK == 0:
                        on_frames(_FRAMES_PER_TICK)
                    starts = getattr(source, "pass_starts", ())
                    if on_pass is not None and passes + 1 < len(starts) and frame.index + 1 >= starts[passes + 1]:
                        passes += 1  # a pass has ended (this frame is its last, or the next one's first)
                        on_pass(passes, frames)
        finally:
            with finishing():  # also on Ctrl+C/SIGTERM: the rows so far are exported, and no signal cuts that short
                exported = recorder.close()
        if on_frames is not None and frames % _FRAMES_PER_TICK:
            on_frames(frames % _FRAMES_PER_TICK)
        if on_pass is not None and repeat > 1 and passes < repeat and frames:
            on_pass(passes + 1, frames)
        damage = source.damage
    notes = []
    late = [m for m in markers if last_time_s is not None and m.time_s > last_time_s]
    if late:
        shown = ", ".join(f"{m.label!r} at {m.time_s:g} s" for m in late[:3]) + (
            f" and {len(late) - 3} more" if len(late) > 3 else "")
        notes.append(f"{len(late)} marker{'s' if len(late) != 1 else ''} after the end of the video (its last frame "
                     f"is at {last_time_s:.2f} s): {shown}; their epochs have no rows")
    notes += exported.notes
    return ReplayResult(source=video, exports=list(exports) + list(exported.study_files), frames=frames,
                        summary=recorder.summary(), declared_frames=declared, damage=damage, notes=notes)


def check_inputs(video: Path, export: list[Path]) -> list[Path]:
    """Everything that can be checked before the model loads (~2 s): the video opens (a folder: has videos), each
    export can be written. Returns the video files. Raises CaptureError, ExportError or ValueError (one line)."""
    video = Path(video)
    many = video.is_dir()
    files = iter_video_files(video) if many else [video]
    if many and not files:
        raise CaptureError(f"no video files in folder {video}")
    if many:
        for e in export:
            if e.suffix.lower() not in (".csv", ".json"):
                try:
                    e.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise ExportError(f"cannot create the export folder {e}: {err.strerror or err}") from None
    else:
        open_source(video).close()  # missing, empty, not a video: CaptureError now
    for f in files:
        check_export_targets(export_targets(f, export, many))
    return files


def replay(video: Path, export: list[Path], config: PipelineConfig, progress: bool = True, repeat: int = 1,
           on_pass: Callable[[int, int], None] | None = None, study: StudyConfig | None = None,
           markers: tuple[Marker, ...] = (), lsl=None, overlap: bool = True) -> ReplayResult:
    """Replay one video file into its exports with a pipeline of its own (a folder goes through
    app.runs.folder.run_folder). Raises CaptureError / ModelError / ExportError (one line) or ValueError for a
    folder."""
    video = Path(video)
    if video.is_dir():
        raise ValueError(f"{video} is a folder: app.runs.folder.run_folder replays folders")
    check_inputs(video, export)
    if overlap and config.threads is None:
        config = replace(config, threads=EMBEDDER_THREADS)
    with Pipeline(config) as pipeline:
        return replay_file(video, export_targets(video, export, many=False), pipeline, progress, repeat=repeat,
                           on_pass=on_pass, study=study, markers=markers, lsl=lsl, overlap=overlap)
