"""Headless live recording: a camera or a stream through the pipeline into exports, until a duration has passed, a
signal came or the source ended for good.

    python main.py --camera SOURCE --no-window --export out.csv [--duration S] [--reconnect S] [--lsl] [--markers F]

A live source is never queued: a reader thread keeps only the newest frame (app.capture.threads.LatestFrameGrabber, the one
slot between the source and the models), so when the models are slower than the source, frames are dropped and
counted, and the latency from capture to result cannot build up. Each processed frame's rows go to the recorder's
journal at once (a killed run keeps them) and the exports are written atomically at the end, however it ends.
`time_s` is seconds since the session started (the source opened), on the monotonic clock; a reconnect keeps the
clock and the frame count, so a gap shows as missing time. Each gap is a `source_gap` event (a marker of the session's
study: the events file and the JSON's `events`), and the JSON metadata's `live` block gives the frames received,
processed and dropped, the latency percentiles and each gap (docs/export-format.md). Qt-free.

    check_live_inputs(spec, exports)                  what can be checked before the model loads
    record(spec, exports, config, live, ...)          load the model, open the source, record (LiveResult)
    record_source(source, exports, pipeline, ...)     the loop, on a source already open
"""
from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.capture.frame import CaptureError
from app.capture.threads import LatestFrameGrabber
from app.capture.camera import (ReconnectingSource, SourceEvent, SourceGap, camera_index, describe_source,
    is_device_path, is_live_spec, is_masked, mask_url)
from app.capture.sources import open_live
from app.pipeline import Pipeline, PipelineConfig
from app.timeline.files import ExportError, check_export_targets
from app.timeline.recorder import SessionRecorder
from app.study.options import SOURCE_GAP_LABEL

STATUS_INTERVAL_S = 0.5          # how often on_status is called
_POLL_S = 0.1                    # the loop wakes at least this often (duration, status, signals)


@dataclass(frozen=True)
class LiveConfig:
    """How a live session runs. None means 'not given': the defaults live in app.capture (DEFAULT_RECONNECT_S)."""

    duration_s: float | None = None    # stop after this many seconds of session time; None: until a signal or the end
    reconnect_s: float | None = None   # retry a stalled or vanished source this long (0: never); None: the default

    def __post_init__(self):
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration must be > 0 seconds, got {self.duration_s!r}")
        if self.reconnect_s is not None and not (math.isfinite(self.reconnect_s) and self.reconnect_s >= 0):
            raise ValueError(f"reconnect must be >= 0 seconds, got {self.reconnect_s!r}")


class LatencyStats:
    """Percentiles of the latencies pushed (ms), in constant memory over any session length: a histogram of 0.1 ms
    bins up to 10 s (exact to 0.05 ms there), the rest counted in one overflow bin; the max is kept exactly."""

    BIN_MS = 0.1
    MAX_MS = 10_000.0

    def __init__(self):
        self._counts = np.zeros(int(self.MAX_MS / self.BIN_MS) + 1, np.int64)
        self.n = 0
        self.max_ms = 0.0

    def push(self, ms: float | None) -> None:
        if ms is None or not math.isfinite(ms):
            return
        ms = max(0.0, float(ms))
        self._counts[min(int(ms / self.BIN_MS), len(self._counts) - 1)] += 1
        self.n += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100): the centre of the bin holding it; None before any value."""
        if self.n == 0:
            return None
        k = int(np.searchsorted(np.cumsum(self._counts), math.ceil(q / 100.0 * self.n)))
        if k >= len(self._counts) - 1:
            return self.max_ms
        return min((k + 0.5) * self.BIN_MS, self.max_ms)

    def to_json(self) -> dict:
        def r(v):
            return None if v is None else round(v, 2)
        return {"n": self.n, "p50": r(self.percentile(50)), "p95": r(self.percentile(95)),
                "p99": r(self.percentile(99)), "max": r(self.max_ms) if self.n else None}


@dataclass(frozen=True)
class LiveStatus:
    """What the status line shows, every STATUS_INTERVAL_S."""

    elapsed_s: float          # session time
    fps_in: float             # frames received per second, since the last status
    fps_processed: float      # frames through the models per second, since the last status
    received: int
    processed: int
    dropped: int              # replaced in the slot before the models took them
    faces: int                # faces on the newest processed frame
    reconnecting: bool        # the source is lost and being retried

    def line(self) -> str:
        share = f" ({self.dropped / self.received:.0%})" if self.received else ""
        m, s = divmod(self.elapsed_s, 60)
        return (f"live {int(m):02d}:{s:04.1f}  in {self.fps_in:4.1f} fps  processed {self.fps_processed:4.1f} fps  "
                f"dropped {self.dropped}{share}  faces {self.faces}" + ("  [reconnecting]" if self.reconnecting
                                                                      else ""))


@dataclass
class LiveResult:
    source: str                                    # as shown (password masked)
    exports: list[Path]
    received: int                                  # frames read from the source during the session
    processed: int                                 # frames through the models (each has its rows)
    dropped: int                                   # received - processed: replaced before the models took them
    latency: dict                                  # LatencyStats.to_json(): capture to result, ms
    gaps: list[SourceGap]
    stop: str                                      # duration | source_ended | interrupted | failed
    ended: str | None = None                       # why the source ended on its own (stop == source_ended)
    elapsed_s: float = 0.0                         # session time at the end
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # warnings about the study files

    def live_metadata(self, reconnect_s: float, duration_s: float | None) -> dict:
        """The JSON metadata's `live` block."""
        return {"frames_received": self.received, "frames_processed": self.processed,
                "frames_dropped": self.dropped,
                "dropped_share": round(self.dropped / self.received, 4) if self.received else None,
                "latency_ms": self.latency, "session_s": round(self.elapsed_s, 3), "duration_s": duration_s,
                "reconnect_s": reconnect_s, "stop": self.stop, "source_ended": self.ended,
                "gaps": [g.to_json() for g in self.gaps]}


def check_live_inputs(spec, exports: Iterable[Path]) -> None:
    """What can be checked before the model loads: the source is a camera index, an existing device path or a
    stream URL whose password is there; each export can be written. Raises CaptureError, ExportError, ValueError."""
    if not is_live_spec(spec):
        raise CaptureError(f"not a camera or a stream: {mask_url(str(spec))} (a camera index, a device path such "
                           "as /dev/video2, or a stream URL such as rtsp://, http://, udp://, srt://)")
    if is_masked(str(spec)):
        raise CaptureError(f"{spec} has a masked password (***): give the full URL")
    if camera_index(spec) is None and is_device_path(spec) and not Path(str(spec).strip()).exists():
        raise CaptureError(f"camera device {str(spec).strip()} does not exist (unplugged, or another number?)")
    check_export_targets(exports)


def record(spec, exports: list[Path], config: PipelineConfig, live: LiveConfig = LiveConfig(), study=None,
           markers=(), lsl=None, on_status: Callable[[LiveStatus], None] | None = None,
           on_event: Callable[[SourceEvent], None] | None = None,
           on_open: Callable[[str], None] | None = None) -> LiveResult:
    """Load the model, open the source, record until the end (see record_source). `on_open(name)` is called just
    before the source is opened (a stream may take up to STREAM_OPEN_TIMEOUT_S to answer). Raises CaptureError
    (the source does not open), ModelError, ExportError (one line); KeyboardInterrupt after exporting."""
    check_live_inputs(spec, exports)
    events: queue.SimpleQueue[SourceEvent] = queue.SimpleQueue()
    with Pipeline(config) as pipeline:
        if on_open is not None:
            on_open(describe_source(spec))
        source = open_live(spec, live.reconnect_s, on_event=events.put)
        return record_source(source, exports, pipeline, live, study=study, markers=markers, lsl=lsl,
                             on_status=on_status, on_event=on_event, events=events)


def record_source(source: ReconnectingSource, exports: list[Path], pipeline: Pipeline,
                  live: LiveConfig = LiveConfig(), study=None, markers=(), lsl=None,
                  on_status: Callable[[LiveStatus], None] | None = None,
                  on_event: Callable[[SourceEvent], None] | None = None,
                  events: queue.SimpleQueue | None = None) -> LiveResult:
    """Record an open live source into `exports` and close it. `study` (app.study.options.StudyConfig, with `markers`)
    adds the study files; a session without one still gets a Study, for its source_gap events. `lsl` (an
    app.study.lsl.LslStreams) streams each frame's rows, each marker when the session reaches its time, and each gap as
    it is noticed. `events`: the queue the source puts its SourceEvents in (they are handled here, on this thread,
    and passed on to on_event). Stops at live.duration_s, when the source ends for good, or on KeyboardInterrupt
    (SIGTERM/SIGHUP arrive as one in main.py), which is re-raised once the rows so far are exported."""
    from app.runs.replay import session_metadata
    from app.study.extension import Study

    study_session = Study(study, markers)
    metadata = session_metadata(source.name, pipeline.info())
    metadata.extra["front_end"] = "headless"
    pipeline.reset()
    pipeline.tracker.reset(restart_ids=True)  # a session is its own timeline: face ids from 1
    to_stream = sorted(markers, key=lambda m: m.time_s) if lsl is not None else []
    latency = LatencyStats()
    processed = faces = 0
    stop = "interrupted"
    last_status = (time.monotonic(), 0, 0)
    grabber = LatestFrameGrabber(source)

    def handle(event: SourceEvent) -> None:
        if event.kind in ("back", "ended") and event.gap is not None:
            study_session.add_marker(event.gap.start_s, SOURCE_GAP_LABEL)
        if event.kind == "lost" and lsl is not None:
            lsl.push_marker(SOURCE_GAP_LABEL)
        if on_event is not None:
            on_event(event)

    recorder = None
    try:
        recorder = SessionRecorder(exports, metadata, extension=study_session, all_frames=pipeline.config.all_frames)
        grabber.start()
        while True:
            while events is not None and not events.empty():
                handle(events.get_nowait())
            now = time.monotonic()
            if on_status is not None and now - last_status[0] >= STATUS_INTERVAL_S:
                dt = now - last_status[0]
                on_status(LiveStatus(source.elapsed(), (grabber.received - last_status[1]) / dt,
                                     (processed - last_status[2]) / dt, grabber.received, processed, grabber.dropped,
                                     faces, source.reconnecting))
                last_status = (now, grabber.received, processed)
            if live.duration_s is not None and source.elapsed() >= live.duration_s:
                stop = "duration"
                break
            frame = grabber.get(timeout=_POLL_S)
            if frame is None:
                if grabber.finished:
                    if grabber.error is not None:
                        raise grabber.error
                    stop = "source_ended"
                    break
                continue
            if live.duration_s is not None and frame.time_s >= live.duration_s:
                stop = "duration"
                break
            result = pipeline.process(frame)
            latency.push(result.latency_ms)
            try:
                rows = recorder.add_result(result)
            except ExportError:
                stop = "failed"
                break  # the journal failed (disk full): close() below writes what it can and says so
            processed += 1
            faces = len(result.faces)
            if lsl is not None:
                lsl.push_rows(rows)
                while to_stream and to_stream[0].time_s <= frame.time_s:
                    lsl.push_marker(to_stream.pop(0).label)
    finally:
        grabber.stop()
        elapsed = source.elapsed()
        source.close()
        while events is not None and not events.empty():  # the last word of a source that ended
            event = events.get_nowait()
            if recorder is not None:
                handle(event)
        result = LiveResult(source=source.name, exports=list(exports), received=grabber.received,
                            processed=processed, dropped=grabber.received - processed, latency=latency.to_json(),
                            gaps=list(source.gaps), stop=stop if source.ended is None or stop == "interrupted"
                            else "source_ended", ended=source.ended, elapsed_s=elapsed)
        metadata.extra["live"] = result.live_metadata(source.reconnect_s, live.duration_s)
        if recorder is not None:
            exported = recorder.close()  # also on Ctrl+C/SIGTERM: the rows so far are exported
    result.summary = recorder.summary()
    result.exports += exported.study_files
    result.notes += exported.notes
    return result
