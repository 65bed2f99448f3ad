"""The frame and the source interface that video files, animated GIFs, cameras and network streams share
(app.capture.video, .gif, .camera; `app.capture.sources.open_source` picks one).

Contract (every `FrameSource`):
  * `read() -> Frame | None`: the next frame, or None at the end of the stream. A truncated file yields the frames
    decoded before the cut and then None; a run of undecodable frames in the middle of a constant-frame-rate file is
    skipped by seeking ahead (a bounded number of times), the frames after it keeping their own indices and times
    (`gaps` names the runs); it never raises part-way through. `Frame.index` is the
    0-based index in the source, `Frame.time_s` the media time (files: the frame's position in the media, from its
    own timestamp, 0 at the first frame; live sources: `time.monotonic()` seconds since the source opened, and
    `Frame.captured_at` the monotonic time it was read, for the latency from capture to result).
  * `damage` says, once the end was reached, when a file ended early or had frames skipped: fewer frames decoded
    than its container declares (a truncated download, a file cut off while copied, a damaged stretch), so a front
    end can warn instead of reporting success.
  * Bad input fails at construction with `CaptureError`, whose message is one line naming the file or camera:
    missing, a folder, empty, not decodable, a camera that does not open, a stream that sends nothing.
    `open_source()` is the usual entry point: a camera index, a device path (/dev/video2), a stream URL (rtsp://,
    http://.../stream.mjpg, udp://, srt://, ...) or a file. A URL's password never appears in a name or a message
    (`mask_url`).
  * Live sources (cameras, streams) never queue: `ReconnectingSource` wraps one so that a stall or an unplugged
    device is retried for a while (`reconnect_s`), the gap recorded, and the same clock and frame count go on.
  * Frames come upright as players show them: a phone video's rotation metadata (display matrix) is applied.
  * File sources seek to an exact frame index (`seek`, `position`), also in variable-frame-rate phone videos where
    OpenCV's own frame seek lands a few frames off.
  * Sources are not thread-safe: one thread reads at a time. `LatestFrameGrabber` (live sources: a one-slot hand-off
    that drops stale frames) and `PrefetchReader` (files: a bounded queue that decodes ahead, every frame, in order) are
    the only threads of app.capture.threads; they hold no Qt, so the CLI, the benchmark and the UI share them.
"""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


# Frame rates outside this range are container nonsense (0 for unknown, 1000 for some WebM/MKV time bases).
_FPS_RANGE = (0.5, 500.0)


class CaptureError(Exception):
    """A source could not be opened or stopped working. The message is one line naming the file or camera."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame. image is (H, W, 3) uint8 BGR. captured_at: `time.monotonic()` when a live source read it
    (the start of its latency from capture to result); None for a file's frame."""

    index: int
    time_s: float
    image: np.ndarray
    captured_at: float | None = None

    def __post_init__(self):
        if isinstance(self.index, bool) or not isinstance(self.index, (int, np.integer)) or self.index < 0:
            raise ValueError(f"Frame.index must be an int >= 0, got {self.index!r}")
        object.__setattr__(self, "index", int(self.index))  # frozen: normalised here, once
        object.__setattr__(self, "time_s", float(self.time_s))
        if not math.isfinite(self.time_s):
            raise ValueError(f"Frame.time_s must be finite, got {self.time_s!r}")
        if self.captured_at is not None:
            object.__setattr__(self, "captured_at", float(self.captured_at))
            if not math.isfinite(self.captured_at):
                raise ValueError(f"Frame.captured_at must be finite, got {self.captured_at!r}")
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 \
                or img.shape[0] == 0 or img.shape[1] == 0:
            desc = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise ValueError(f"Frame.image must be an (H, W, 3) uint8 BGR array, got {desc}")


class FrameSource:
    """Base of all sources; see the module docstring for the contract. Subclasses implement `read` and `_close`
    and set `_name`, `_size`; files also implement `seek` and `position`."""

    is_live: bool = False
    seekable: bool = False
    _name: str = "?"
    _size: tuple[int, int] = (0, 0)
    _closed: bool = False

    def read(self) -> Frame | None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def close(self) -> None:
        """Release the source. Idempotent; `read()` returns None afterwards."""
        if not self._closed:
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def name(self) -> str:
        return self._name

    @property
    def fps(self) -> float | None:
        return None

    @property
    def frame_count(self) -> int | None:
        return None

    @property
    def damage(self) -> str | None:
        """Once read to its end: why the source counts as damaged (it ended early), else None."""
        return None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames, from the first decoded frame (more reliable than container metadata)."""
        return self._size

    @property
    def position(self) -> int:
        """Index of the next frame `read()` returns."""
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise NotImplementedError(f"{self.name} cannot seek (live source)")

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's own log while probing: a camera index that does not exist or a file that is not a video makes
    every backend print a warning; the caller turns the failure into one CaptureError line instead."""
    level = cv2.getLogLevel()
    cv2.setLogLevel(1)  # fatal only
    try:
        yield
    finally:
        cv2.setLogLevel(level)


def quiet_ffmpeg() -> None:
    # FFmpeg prints "partial file" for every packet of a truncated video and "moov atom not found" for broken ones;
    # the damage is already handled (frames up to it, then end; or a CaptureError). OpenCV reads this variable once,
    # when its FFmpeg backend first opens a file, so it is set here rather than at import; a user's value wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL


def check_file(path: Path, what: str = "video file") -> Path:
    """Fail early, with the reason a user can act on, for the cases OpenCV reports only as 'not opened'."""
    if not path.exists():
        raise CaptureError(f"{what} not found: {path}")
    if path.is_dir():
        raise CaptureError(f"expected a {what} but got a folder: {path}")
    if not path.is_file():
        raise CaptureError(f"not a regular file: {path}")
    if path.stat().st_size == 0:
        raise CaptureError(f"{what} is empty (0 bytes): {path}")
    if not os.access(path, os.R_OK):
        raise CaptureError(f"cannot read {what} (permission denied): {path}")
    return path


def valid_fps(fps: float) -> float | None:
    return float(fps) if math.isfinite(fps) and _FPS_RANGE[0] <= fps <= _FPS_RANGE[1] else None
