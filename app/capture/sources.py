"""Opening a source from what a user typed: a camera index, a device path, a stream URL or a file."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.capture.camera import (STREAM_OPEN_TIMEOUT_S, CameraSource, ReconnectingSource, SourceEvent, StreamSource,
                                camera_index, is_device_path, is_live_spec, is_stream_url, mask_url)
from app.capture.frame import CaptureError, FrameSource
from app.capture.gif import GifSource
from app.capture.video import VideoFileSource


def open_source(spec: str | int | Path, timeout_s: float | None = None) -> FrameSource:
    """An int or a digit string is a camera index, a stream URL (STREAM_SCHEMES) a StreamSource, a /dev/ path a
    camera device; anything else a file (.gif -> GifSource, else VideoFileSource). Opening validates the input
    (exists, non-empty, first frame decodes; a stream sends video) and raises CaptureError otherwise. `timeout_s`:
    how long a stream may take to open (None: STREAM_OPEN_TIMEOUT_S; at least 1 s); other sources ignore it."""
    if isinstance(spec, bool):
        raise CaptureError(f"not a video source: {spec!r}")
    index = camera_index(spec)
    if index is not None:
        return CameraSource(index)
    if is_stream_url(spec):
        wait = STREAM_OPEN_TIMEOUT_S if timeout_s is None else min(STREAM_OPEN_TIMEOUT_S, max(1.0, timeout_s))
        return StreamSource(str(spec), open_timeout_s=wait)
    if is_device_path(spec):
        return CameraSource(str(spec))
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gif":
        return GifSource(path)
    return VideoFileSource(path)


def open_live(spec: str | int, reconnect_s: float | None = None,
              on_event: Callable[[SourceEvent], None] | None = None) -> ReconnectingSource:
    """A live source (camera index, device path or stream URL) that reconnects (ReconnectingSource). The first open
    raises CaptureError at once; later losses are retried for reconnect_s (None: DEFAULT_RECONNECT_S)."""
    if not is_live_spec(spec):
        raise CaptureError(f"not a camera or a stream: {mask_url(str(spec))}")
    return ReconnectingSource(open_source(spec), lambda left: open_source(spec, timeout_s=left), reconnect_s,
                              on_event)
