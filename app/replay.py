"""Headless replay: a video file (or a folder of them) through the pipeline as fast as possible, into exports.

    python main.py --video FILE --export out.csv --no-window       (--export out.json for JSON; both may be given)
    python main.py --video FOLDER --export results/ --no-window     (one export per video, named after it)

Every frame is processed (a prefetch thread decodes ahead); rows stream into the recorder's journal as they come, so
a killed run keeps what it did; the final files are written atomically at the end, even when the video is damaged
part-way (what was decoded before the damage is exported).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from app import __version__
from app.capture import PrefetchReader, iter_video_files, open_source
from app.pipeline import Pipeline, PipelineConfig
from app.session import SessionMetadata, SessionRecorder


@dataclass
class ReplayResult:
    source: Path
    exports: list[Path]
    frames: int
    summary: dict


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


def session_metadata(source: str, pipeline: Pipeline) -> SessionMetadata:
    card = pipeline.card
    return SessionMetadata(source=source, model=card.name, providers=list(pipeline.providers),
                           attention=pipeline.recognizer.attention, window_length=pipeline.recognizer.window_length,
                           started_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                           app_version=__version__)


def replay_file(video: Path, exports: list[Path], pipeline: Pipeline, progress: bool = True) -> ReplayResult:
    source = open_source(video)  # CaptureError here: missing, empty, not a video
    pipeline.reset()
    with source, SessionRecorder(exports, session_metadata(str(video), pipeline)) as recorder:
        frames = 0
        bar = tqdm(total=source.frame_count or None, unit="frame", desc=video.name, disable=not progress,
                   leave=False, dynamic_ncols=True)
        with PrefetchReader(source) as reader, bar:
            for frame in reader:
                recorder.add_many(pipeline.process(frame).rows())
                frames += 1
                bar.update(1)
        summary = recorder.summary()
    return ReplayResult(source=video, exports=list(exports), frames=frames, summary=summary)


def replay(video: Path, export: list[Path], config: PipelineConfig, progress: bool = True) -> list[ReplayResult]:
    """Replay one file or every video in a folder. Raises CaptureError / ModelError / ExportError (one line)."""
    from app.capture import CaptureError

    video = Path(video)
    many = video.is_dir()
    files = iter_video_files(video) if many else [video]
    if many and not files:
        raise CaptureError(f"no video files in folder {video}")
    if many:
        for e in export:
            if e.suffix.lower() not in (".csv", ".json"):
                e.mkdir(parents=True, exist_ok=True)
    results = []
    with Pipeline(config) as pipeline:
        for f in files:
            results.append(replay_file(f, export_targets(f, export, many), pipeline, progress))
    return results
