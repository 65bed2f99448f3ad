"""Frame sources: video files, animated GIFs, cameras and network streams behind one small interface, plus the two
reader threads.

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
    the only threads here; they hold no Qt, so the CLI, the benchmark and the UI share them.
"""
from __future__ import annotations

import bisect
import contextlib
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.capture.threads import ReadAhead

VIDEO_SUFFIXES: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".gif")

# A forward seek of at most this many frames decodes forward (grab without colour conversion) instead of asking the
# demuxer to jump: exact by construction and cheaper than a keyframe seek for single steps and short scrubs.
_MAX_STEP_FORWARD = 48
# Frames decoded before a far forward seek, to learn whether the file has a constant frame rate: only then can the
# index of a frame beyond the part decoded so far follow from its timestamp.
_MIN_FRAMES_FOR_RATE = 8
# A GIF frame delay of 0-10 ms means "as fast as possible", which browsers show at 100 ms; do the same so GIF
# timelines match what the user saw.
_GIF_MIN_DELAY_MS, _GIF_DEFAULT_DELAY_MS = 20, 100
# Frame rates outside this range are container nonsense (0 for unknown, 1000 for some WebM/MKV time bases).
_FPS_RANGE = (0.5, 500.0)
# A file counts as damaged when it decodes fewer frames than its container declares by more than this: container
# figures are estimates (duration x rate): no_face.mp4 declares 98 frames and has 95, a healthy file.
_DAMAGE_MIN_FRAMES, _DAMAGE_FRACTION = 5, 0.02
# A run of frames that do not decode in the middle of a file (a damaged stretch, e.g. a broken keyframe) is skipped by
# seeking ahead, to the next frame + step * k (step = a quarter second of frames) for each k here in turn, until one
# decodes; at most _SKIP_ATTEMPTS seeks in a file, so a truncated one (nothing after the cut) ends quickly.
_SKIP_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_SKIP_ATTEMPTS = 48
# What Pillow raises for a broken image: UnidentifiedImageError (an OSError), truncated data, bad blocks.
_PIL_ERRORS = (OSError, EOFError, ValueError, SyntaxError, IndexError)

# Live sources. A stream URL is read through OpenCV's FFmpeg backend; these are the schemes sent there.
STREAM_SCHEMES: tuple[str, ...] = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp")
# A stream that sends nothing for this long is taken as opened-and-empty (open) or stalled (read): long enough for an
# RTSP handshake or an mpegts probe on a slow link (~1 s on loopback), short enough that a typo fails quickly.
STREAM_OPEN_TIMEOUT_S = 5.0
# A live source that delivers no frame for this long has stalled: 60 frame periods at 30 fps, so a hiccup of the
# sender or the network is not a stall, and the notice still comes within moments of a pulled cable.
STALL_S = 2.0
# How long a stalled or vanished live source is retried before the session ends (--reconnect; 0: never).
DEFAULT_RECONNECT_S = 10.0
MASK = "***"
# user:password@ in a URL, and the values of query keys that carry a secret (SRT's passphrase, tokens)
_URL_PASSWORD_RE = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s@:]*):[^/\s@]*@")
_URL_SECRET_QUERY_RE = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pass|pwd|passphrase|secret|token|access_token|auth|key|api_key|apikey)=)"
    r"[^&#\s]*", re.IGNORECASE)


class CaptureError(Exception):
    """A source could not be opened or stopped working. The message is one line naming the file or camera."""


@dataclass
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
        self.index = int(self.index)
        self.time_s = float(self.time_s)
        if not math.isfinite(self.time_s):
            raise ValueError(f"Frame.time_s must be finite, got {self.time_s!r}")
        if self.captured_at is not None:
            self.captured_at = float(self.captured_at)
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


# ---------------------------------------------------------------------------------------------------------- helpers

@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's own log while probing: a camera index that does not exist or a file that is not a video makes
    every backend print a warning; the caller turns the failure into one CaptureError line instead."""
    level = cv2.getLogLevel()
    cv2.setLogLevel(1)  # fatal only
    try:
        yield
    finally:
        cv2.setLogLevel(level)


def _quiet_ffmpeg() -> None:
    # FFmpeg prints "partial file" for every packet of a truncated video and "moov atom not found" for broken ones;
    # the damage is already handled (frames up to it, then end; or a CaptureError). OpenCV reads this variable once,
    # when its FFmpeg backend first opens a file, so it is set here rather than at import; a user's value wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL


def _check_file(path: Path, what: str = "video file") -> Path:
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


def _valid_fps(fps: float) -> float | None:
    return float(fps) if math.isfinite(fps) and _FPS_RANGE[0] <= fps <= _FPS_RANGE[1] else None


# ------------------------------------------------------------------------------------------------------ video files

class VideoFileSource(FrameSource):
    """A video file through cv2.VideoCapture (FFmpeg backend): mp4/mov/avi/mkv/webm/...

    Timestamps come from each frame's presentation time, so variable-frame-rate phone videos get true media times.
    Seeking is exact: the presentation times seen so far map timestamps back to indices, which tells where OpenCV's
    approximate seek really landed; from there it decodes forward to the requested frame.
    """

    seekable = True

    def __init__(self, path: str | Path):
        self.path = _check_file(Path(path).expanduser())
        self._name = self.path.name
        _quiet_ffmpeg()
        self._cap = self._open_capture()
        self._fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._count_estimate = n if n > 0 else None  # container metadata; can be off (no_face.mp4 says 98, has 95)
        self._next = 0           # index of the frame the next read() returns
        self._grabbed = False    # the decoder's current frame is self._next, grabbed but not yet retrieved
        self._cur_pts = 0.0      # presentation time (ms) of the grabbed frame
        self._pts: list[float] = []  # presentation times (ms) of frames 0..len-1, as decoded in order
        self._pts_monotonic = True
        self._end: int | None = None  # exact frame count, once the end has been reached
        self._gaps: list[tuple[int, int]] = []  # [first, last] index of each run of frames skipped as undecodable
        self._skip_attempts = 0
        # Validate up front: a file that opens but whose first frame does not decode is not a video we can use.
        if not self._grab():
            self._cap.release()
            raise CaptureError(f"no frame could be decoded from {self.path} (damaged or not a video)")
        ok, img = self._cap.retrieve()  # decoded once more by read(); retrieve() on the same grab is repeatable
        if not ok or img is None or img.ndim != 3:
            self._cap.release()
            raise CaptureError(f"no frame could be decoded from {self.path} (damaged or not a video)")
        self._size = (int(img.shape[1]), int(img.shape[0]))

    def _open_capture(self) -> cv2.VideoCapture:
        with _quiet_opencv():
            cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
            if not cap.isOpened():  # an OpenCV build without FFmpeg: let it pick another backend
                cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise CaptureError(f"cannot open {self.path} as a video (not a video, unsupported, or damaged/incomplete)")
        # Phones store portrait video sideways with a display matrix saying how to turn it; OpenCV 4.11 ignores it
        # unless asked, which showed faces sideways (and MediaPipe missed or doubled them). Frames come upright,
        # as every player shows them, and boxes are in those upright pixels.
        with contextlib.suppress(cv2.error):
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        return cap

    @property
    def rotation(self) -> int:
        """Degrees the container says to turn the stored frames to display them (0, 90, 180, 270); frames are read
        already turned."""
        try:
            return int(self._cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
        except cv2.error:
            return 0

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        """Exact once the end has been read; before that the container's figure (an estimate, or None)."""
        return self._end if self._end is not None else self._count_estimate

    @property
    def declared_frame_count(self) -> int | None:
        """What the container says (duration x rate: an estimate), whatever was decoded."""
        return self._count_estimate

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """The runs of frames skipped as undecodable, (first, last) index each; the frames after a gap keep their
        own indices and times."""
        return list(self._gaps)

    @property
    def damage(self) -> str | None:
        declared, end = self._count_estimate, self._end
        if end is None:
            return None
        skipped = sum(b - a + 1 for a, b in self._gaps)
        decoded = end - skipped
        gaps = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in self._gaps)
        gaps = f"frames {gaps} could not be decoded and were skipped" if gaps else ""
        if declared is not None and declared - decoded > max(_DAMAGE_MIN_FRAMES, _DAMAGE_FRACTION * declared):
            return (f"decoded {decoded} of the {declared} frames its container declares (damaged or truncated "
                    f"file{'; ' + gaps if gaps else ''})")
        if gaps:
            return f"{gaps} (damaged file)"
        return None

    @property
    def position(self) -> int:
        return self._next

    # -- decoding ------------------------------------------------------------------------------------------------

    def _grab(self) -> bool:
        """Make frame self._next the decoder's current frame (decoded, not converted). False at the end/damage."""
        if self._grabbed:
            return True
        if self._closed or (self._end is not None and self._next >= self._end):
            return False
        try:
            ok = self._cap.grab()
        except cv2.error:  # a damaged stream: treat like its end, unless frames decode again further on
            ok = False
        if not ok and not self._skip_damage():
            self._end = self._next
            return False
        pts = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if self._next == len(self._pts):
            if self._pts and not pts > self._pts[-1]:
                self._pts_monotonic = False  # no usable timestamps: seeks fall back to decoding from the start
            self._pts.append(pts)
        self._cur_pts = pts
        self._grabbed = True
        return True

    def _skip_damage(self) -> bool:
        """Frame self._next does not decode, though the container declares more frames: seek ahead (reopening the
        decoder, which a failed read leaves at its end) until a frame decodes and can be identified, and make it the
        current one; the frames in between are a gap (self._gaps). Only for a constant-frame-rate file, the one kind
        where a frame's index follows from its time beyond the frames decoded so far. False when nothing decodes
        further on (a truncated file) or the attempts are spent."""
        declared, start = self._count_estimate, self._next
        if declared is None or not self._fps or declared - start <= max(_DAMAGE_MIN_FRAMES, _DAMAGE_FRACTION * declared):
            return False
        step = max(1, round(self._fps / 4))
        for k in _SKIP_STEPS:
            target = start + step * k
            if target >= declared or self._skip_attempts >= _SKIP_ATTEMPTS:
                return False
            self._skip_attempts += 1
            self._cap.release()
            self._cap = self._open_capture()
            try:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, target)
                ok = self._cap.grab()
            except cv2.error:
                ok = False
            if not ok:
                continue
            pts = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
            j = self._identify(pts)
            if j is None:  # where it landed cannot be told: no gap can be named
                return False
            if j <= start:
                continue
            # the gap's frames get the times the constant rate gives them, so later seeks map times to indices
            period, last, known = (self._pts[-1] - self._pts[0]) / (len(self._pts) - 1), self._pts[-1], len(self._pts)
            self._pts.extend(last + period * (i - known + 1) for i in range(known, j))
            self._gaps.append((start, j - 1))
            self._next = j
            return True
        return False

    def _time_s(self, index: int, pts: float) -> float:
        if self._pts_monotonic and self._pts and math.isfinite(pts):
            return max(0.0, (pts - self._pts[0]) / 1000.0)
        return index / (self._fps or 30.0)

    def read(self) -> Frame | None:
        if not self._grab():
            return None
        try:
            ok, img = self._cap.retrieve()
        except cv2.error:
            ok, img = False, None
        self._grabbed = False
        if not ok or img is None:
            self._end = self._next
            return None
        frame = Frame(self._next, self._time_s(self._next, self._cur_pts), img)
        self._next += 1
        return frame

    # -- seeking -------------------------------------------------------------------------------------------------

    def seek(self, index: int) -> None:
        """Position so that the next read() returns frame `index` (clamped to >= 0). Past the end, read() gives
        None and `position` is the frame count."""
        if self._closed:
            return
        index = max(0, int(index))
        if self._end is not None:
            index = min(index, self._end)
        if index == self._next:
            return
        if index > self._next and len(self._pts) < _MIN_FRAMES_FOR_RATE and self._next <= len(self._pts):
            self._step_forward_to(min(index, _MIN_FRAMES_FOR_RATE))  # cheap: a few frames from the start
        if not (self._next <= index <= self._next + _MAX_STEP_FORWARD):
            landed = self._jump(index) if index > 0 else None
            if landed is None:
                # Could not tell where the demuxer landed (timestamps not seen yet in a variable-rate video, or a
                # target past the real end): jump to the furthest frame already seen, else restart from frame 0.
                known = min(index, len(self._pts) - 1)
                if known <= 0 or self._jump(known) is None:
                    self._rewind()
        self._step_forward_to(index)

    def _step_forward_to(self, index: int) -> None:
        while self._next < index:
            if not self._grab():
                return  # the end: position stays at the frame count
            if self._next >= index:
                return  # a gap of undecodable frames was skipped past `index`: the first frame after it is next
            self._grabbed = False
            self._next += 1

    def _identify(self, pts: float) -> int | None:
        """The index of the frame with presentation time `pts` (ms), or None when it cannot be known."""
        if not (self._pts_monotonic and self._pts and math.isfinite(pts)):
            return None
        pts_list = self._pts
        if pts <= pts_list[-1] + 0.5:
            i = bisect.bisect_left(pts_list, pts)
            cands = [j for j in (i - 1, i) if 0 <= j < len(pts_list)]
            j = min(cands, key=lambda c: abs(pts_list[c] - pts))
            return j if abs(pts_list[j] - pts) < 0.5 else None
        # Beyond the part decoded so far: only a constant-frame-rate file lets the index follow from the time. Steady
        # first frames are not proof (noface_face.mov starts at a steady 24 fps, then varies): the steady rate must
        # also match the container's average rate, which a variable-rate file's does not.
        if len(pts_list) >= _MIN_FRAMES_FOR_RATE and self._fps:
            dts = np.diff(pts_list)
            step = float(np.median(dts))
            if step > 0 and np.all(np.abs(dts - step) < 0.01 * step + 0.05) \
                    and abs(1000.0 / step - self._fps) <= 0.005 * self._fps:
                k = (pts - pts_list[-1]) / step
                if abs(k - round(k)) < 0.1:
                    return len(pts_list) - 1 + round(k)
        return None

    def _jump(self, index: int) -> int | None:
        """Let the demuxer seek near `index`, grab, and identify the frame it landed on. On success the decoder's
        current frame is that one (<= index) and its index is returned; None when it cannot be identified."""
        target = index
        for _ in range(4):
            self._grabbed = False
            try:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, target)
                ok = self._cap.grab()
            except cv2.error:
                ok = False
            if not ok:  # OpenCV maps indices to times with the average rate, so near the end it can overshoot
                target -= max(2, int(self._fps or 30) // 2)
                if target <= 0:
                    return None
                continue
            pts = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
            j = self._identify(pts)
            if j is None:
                return None
            if j <= index:
                if j == len(self._pts):
                    self._pts.append(pts)
                self._next, self._cur_pts, self._grabbed = j, pts, True
                return j
            target = max(0, target - (j - index) - 2)  # landed past it: aim earlier by the overshoot
            if target == 0:
                return None
        return None

    def _rewind(self) -> None:
        """Back to frame 0 by reopening: the one position every container reaches exactly."""
        self._cap.release()
        self._cap = self._open_capture()
        self._next, self._grabbed = 0, False

    def _close(self) -> None:
        self._cap.release()


# ----------------------------------------------------------------------------------------------------------- GIFs

class GifSource(FrameSource):
    """An animated GIF through Pillow. Pillow rather than OpenCV because OpenCV builds differ on GIF support
    and Pillow gives each frame's own delay, which makes time_s exact; it also composites frames correctly
    (disposal, transparency, local palettes) when converting to RGB."""

    seekable = True

    def __init__(self, path: str | Path):
        from PIL import Image

        self.path = _check_file(Path(path).expanduser(), "GIF file")
        self._name = self.path.name
        try:
            self._im = Image.open(self.path)
            self._im.load()
        except _PIL_ERRORS:
            raise CaptureError(f"cannot read {self.path} as a GIF (not a GIF image, or damaged)") from None
        # One pass over the frames for their delays; a damaged tail ends the GIF where decoding stops.
        self._starts_ms: list[float] = []
        self._damage: str | None = None
        t = 0.0
        while True:
            try:
                self._im.seek(len(self._starts_ms))
                self._im.load()
            except EOFError:  # past the last frame
                break
            except _PIL_ERRORS as e:  # damage: the GIF ends here
                self._damage = f"frame {len(self._starts_ms)} could not be decoded ({type(e).__name__}): damaged GIF"
                break
            self._starts_ms.append(t)
            delay = self._im.info.get("duration") or 0
            t += delay if delay >= _GIF_MIN_DELAY_MS else _GIF_DEFAULT_DELAY_MS
        self._total_ms = t
        if not self._starts_ms:
            raise CaptureError(f"no frame could be decoded from {self.path} (damaged GIF)")
        self._size = (int(self._im.size[0]), int(self._im.size[1]))
        self._next = 0

    @property
    def fps(self) -> float | None:
        """Average rate over the GIF (GIF delays vary per frame; time_s carries the exact ones)."""
        return len(self._starts_ms) / (self._total_ms / 1000.0) if self._total_ms > 0 else None

    @property
    def frame_count(self) -> int:
        return len(self._starts_ms)

    @property
    def damage(self) -> str | None:
        return self._damage

    @property
    def position(self) -> int:
        return self._next

    def read(self) -> Frame | None:
        if self._closed or self._next >= len(self._starts_ms):
            return None
        try:
            self._im.seek(self._next)
            rgb = np.asarray(self._im.convert("RGB"))
        except _PIL_ERRORS:  # decoded in __init__, so only a file changed underneath gets here: end the stream
            return None
        frame = Frame(self._next, self._starts_ms[self._next] / 1000.0, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self._next += 1
        return frame

    def seek(self, index: int) -> None:
        if not self._closed:
            self._next = min(max(0, int(index)), len(self._starts_ms))

    def _close(self) -> None:
        self._im.close()


# ----------------------------------------------------------------------------------------------- live sources

def mask_url(text: str) -> str:
    """`text` with the password of every URL in it (`scheme://user:PASSWORD@host`) and the values of secret query
    keys (`?passphrase=...`, `&token=...`) replaced by ***; anything else unchanged. Names, messages, exports and
    settings show a source through this."""
    text = _URL_PASSWORD_RE.sub(lambda m: f"{m['head']}:{MASK}@", str(text))
    return _URL_SECRET_QUERY_RE.sub(lambda m: f"{m['head']}{MASK}", text)


def is_masked(text: str) -> bool:
    """A source string that went through mask_url and lost a secret: it cannot be opened as it is."""
    return MASK in str(text) and mask_url(str(text)) == str(text)


def is_stream_url(spec) -> bool:
    """rtsp://, http(s)://, udp://, srt://, ... (STREAM_SCHEMES): read through FFmpeg as a live stream."""
    if not isinstance(spec, str) or "://" not in spec:
        return False
    return spec.strip().split("://", 1)[0].lower() in STREAM_SCHEMES


def is_device_path(spec) -> bool:
    """A camera's device node, such as /dev/video2 (Linux; OBS's virtual camera and v4l2loopback appear there)."""
    return isinstance(spec, (str, Path)) and str(spec).strip().startswith("/dev/")


def camera_index(spec) -> int | None:
    """The camera index an int or a digit string stands for, else None."""
    if isinstance(spec, bool):
        return None
    if isinstance(spec, (int, np.integer)):
        return int(spec)
    if isinstance(spec, str) and spec.strip().isdigit():
        return int(spec.strip())
    return None


def is_live_spec(spec) -> bool:
    """A camera index, a device path or a stream URL (what --camera takes), rather than a file."""
    return camera_index(spec) is not None or is_stream_url(spec) or is_device_path(spec)


def describe_source(spec) -> str:
    """How a source is named to the user: 'camera N', a device path, a masked URL, or a file's name."""
    index = camera_index(spec)
    if index is not None:
        return f"camera {index}"
    if is_stream_url(spec) or is_device_path(spec):
        return mask_url(str(spec).strip())
    return Path(spec).name


class CameraSource(FrameSource):
    """A camera by OpenCV index or device path (/dev/video2). time_s is monotonic seconds since the source opened and
    captured_at the monotonic read time; frames are never queued (the driver buffer is set to one frame where the
    backend allows it), so read() returns a recent frame."""

    is_live = True
    _FAILED_READS = 5  # consecutive failed reads (a few ms each) before the camera counts as gone

    def __init__(self, spec: int | str, width: int | None = None, height: int | None = None):
        index = camera_index(spec)
        self.spec: int | str = index if index is not None else str(spec).strip()
        self.index = index  # None for a device path
        self._name = describe_source(self.spec)
        self._cap = self._open_capture()
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        try:
            ok, img = self._cap.read()
        except cv2.error:
            ok, img = False, None
        if not ok or img is None:
            self._cap.release()
            raise CaptureError(self._no_first_frame())
        self._size = (int(img.shape[1]), int(img.shape[0]))
        self._t0 = time.monotonic()
        self._next = 0

    def _open_capture(self) -> cv2.VideoCapture:
        if self.index is None:
            if not os.path.exists(self.spec):
                raise CaptureError(f"camera device {self.spec} does not exist (unplugged, or another number?)")
            api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            with _quiet_opencv():
                cap = cv2.VideoCapture(self.spec, api)
        else:
            with _quiet_opencv():
                cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise CaptureError(f"{self._name} could not be opened (unplugged or in use?)")
        return cap

    def _no_first_frame(self) -> str:
        return f"{self._name} opened but delivered no frame (in use by another app?)"

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def position(self) -> int:
        return self._next

    def _read_image(self) -> np.ndarray | None:
        try:
            ok, img = self._cap.read()
        except cv2.error:
            return None
        return img if ok and img is not None else None

    def read(self) -> Frame | None:
        """The next frame; None once closed. Raises CaptureError when the camera stops delivering (unplugged)."""
        for attempt in range(self._FAILED_READS):
            if self._closed:
                return None
            img = self._read_image()
            if img is not None:
                return self._frame(img)
            time.sleep(0.02 * (attempt + 1))
        if self._closed:
            return None
        raise CaptureError(f"{self._name} stopped delivering frames (unplugged?)")

    def _frame(self, img: np.ndarray) -> Frame:
        if img.ndim == 2:  # some drivers deliver grey
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        now = time.monotonic()
        frame = Frame(self._next, now - self._t0, img, captured_at=now)
        self._next += 1
        return frame

    def _close(self) -> None:
        self._cap.release()


class StreamSource(CameraSource):
    """A network stream through OpenCV's FFmpeg backend: rtsp://, http(s)://...mjpg, udp://, srt://, rtmp://, ... .
    Opening waits at most `open_timeout_s` for video; a read that gets no frame for `stall_s` (or the stream's end)
    raises CaptureError, as an unplugged camera does. The name (and every message) masks the URL's password."""

    def __init__(self, url: str, open_timeout_s: float = STREAM_OPEN_TIMEOUT_S, stall_s: float = STALL_S):
        if not is_stream_url(url):
            raise CaptureError(f"not a stream URL: {mask_url(url)} (expected {', '.join(STREAM_SCHEMES)}://...)")
        self._open_timeout_s, self._stall_s = float(open_timeout_s), float(stall_s)
        _quiet_ffmpeg()
        super().__init__(url.strip())

    def _open_capture(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self._open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self._stall_s * 1000)]
        with _quiet_opencv():
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise CaptureError(f"cannot open the stream {self._name}: no video within {self._open_timeout_s:g} s "
                               "(wrong address, nothing sending, or refused)")
        return cap

    def _no_first_frame(self) -> str:
        return f"the stream {self._name} opened but delivered no frame within {self._stall_s:g} s"

    def read(self) -> Frame | None:
        """The next frame; None once closed. Raises CaptureError when no frame came for stall_s or the stream ended.
        A failed read is not retried on the same connection: FFmpeg has already waited stall_s, or hit the end."""
        if self._closed:
            return None
        t0 = time.monotonic()
        img = self._read_image()
        # A read that waited out the stall timeout may still return a frame: the decoder's last one, drained when
        # FFmpeg gave up, seconds old. It is not a new frame: the stream has stalled.
        if img is not None and time.monotonic() - t0 < self._stall_s:
            return self._frame(img)
        if self._closed:
            return None
        raise CaptureError(f"{self._name} stopped delivering frames (none for {self._stall_s:g} s, or the stream "
                           "ended)")


@dataclass(frozen=True)
class SourceGap:
    """A stretch without frames from a live source, in the source's own clock (Frame.time_s)."""

    start_s: float           # time of the last frame before it (0 when none had come yet)
    end_s: float | None      # time of the first frame after it; None: the source did not come back
    reason: str              # one line: why (URL masked)

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.start_s

    def to_json(self) -> dict:
        # times exactly as in the rows' time_s (the last row before the gap, the first after it)
        return {"start_s": self.start_s, "end_s": self.end_s, "duration_s": self.duration_s, "reason": self.reason}


@dataclass(frozen=True)
class SourceEvent:
    """What a ReconnectingSource tells its owner: `lost` (stalled or gone: reconnecting), `back` (frames again, after
    `gap`), `ended` (did not come back, or reconnecting is off: no more frames)."""

    kind: str                # lost | back | ended
    time_s: float            # the source's clock when it happened
    message: str             # one line for the user (URL masked)
    gap: SourceGap | None = None

    def __post_init__(self):
        if self.kind not in ("lost", "back", "ended"):
            raise ValueError(f"SourceEvent.kind must be lost, back or ended, got {self.kind!r}")


class ReconnectingSource(FrameSource):
    """A live source that outlives stalls and unplugging. When the inner source raises CaptureError (no frame for
    STALL_S, a pulled cable, a stream that ended) or ends, it is closed and `reopen(seconds_left)` is tried again and
    again for `reconnect_s` seconds (0: not at all; a stream's attempt waits at most the seconds left, >= 1 s). When it opens, frames go on with the same clock (`time_s` since this
    source was made, monotonic) and the same frame count, and the gap is recorded in `gaps`; when it does not,
    read() returns None and `ended` says why. `on_event(SourceEvent)` is told of each step, on the reading thread.

    The first open is the caller's (bad input fails there, at once, with its CaptureError); only later losses are
    retried. `close()` from another thread interrupts the retries and waits for a read in progress (<= STALL_S)."""

    is_live = True
    RETRY_PAUSE_S = 0.5  # between failed reopen attempts

    def __init__(self, source: FrameSource, reopen: Callable[[float], FrameSource], reconnect_s: float | None = None,
                 on_event: Callable[[SourceEvent], None] | None = None):
        if not source.is_live:
            raise ValueError(f"{source.name} is a file: only a live source is reconnected")
        reconnect_s = DEFAULT_RECONNECT_S if reconnect_s is None else float(reconnect_s)
        if not (math.isfinite(reconnect_s) and reconnect_s >= 0):
            raise ValueError(f"reconnect_s must be >= 0 seconds, got {reconnect_s!r}")
        self.reconnect_s = reconnect_s
        self._inner: FrameSource | None = source
        self._reopen = reopen
        self._on_event = on_event
        self._name = source.name
        self._size = source.size
        self._fps = source.fps
        self._t0 = time.monotonic()
        self._next = 0
        self._last_time = 0.0
        self._pending: tuple[float, str] | None = None  # (gap start, reason) until the first frame after a reconnect
        self.gaps: list[SourceGap] = []
        self.ended: str | None = None
        self._reconnecting = False
        self._cancel = threading.Event()
        self._lock = threading.Lock()  # the inner source between read() and close()

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def position(self) -> int:
        return self._next

    @property
    def t0(self) -> float:
        """time.monotonic() at time_s 0."""
        return self._t0

    def elapsed(self) -> float:
        """Seconds on this source's clock now."""
        return time.monotonic() - self._t0

    @property
    def reconnecting(self) -> bool:
        """Lost and not back yet (its first frame after the gap not read yet); False once it has ended."""
        return self._reconnecting

    def read(self) -> Frame | None:
        while True:
            with self._lock:
                inner = self._inner
                if self._closed or inner is None:
                    return None
                try:
                    frame, reason = inner.read(), None
                except CaptureError as e:
                    frame, reason = None, " ".join(str(e).split())
            if frame is not None:
                return self._stamp(frame)
            if self._closed:
                return None
            if not self._recover(reason or f"{self._name} ended"):
                return None

    def _stamp(self, frame: Frame) -> Frame:
        captured = frame.captured_at if frame.captured_at is not None else time.monotonic()
        out = Frame(self._next, captured - self._t0, frame.image, captured_at=captured)
        self._next += 1
        self._last_time = out.time_s
        if self._pending is not None:
            start, reason = self._pending
            self._pending = None
            self._reconnecting = False
            gap = SourceGap(start, out.time_s, reason)
            self.gaps.append(gap)
            self._emit("back", f"{self._name} is back after a gap of {gap.duration_s:.1f} s; recording goes on",
                       gap)
        return out

    def _recover(self, reason: str) -> bool:
        """Reopen for up to reconnect_s; True when a source is back (its first frame is read next)."""
        lost_at = time.monotonic()
        start = self._last_time
        with self._lock:
            if self._inner is not None:
                self._inner.close()  # frees the device or the port for the next attempt
                self._inner = None
        if self.reconnect_s > 0:
            self._reconnecting = True
            self._emit("lost", f"{reason}; reconnecting for up to {self.reconnect_s:g} s")
            deadline = lost_at + self.reconnect_s
            while not self._cancel.is_set() and time.monotonic() < deadline:
                try:
                    source = self._reopen(deadline - time.monotonic())
                except CaptureError:
                    self._cancel.wait(min(self.RETRY_PAUSE_S, max(0.0, deadline - time.monotonic())))
                    continue
                with self._lock:
                    if self._closed:
                        source.close()
                        return False
                    self._inner = source
                    self._size = source.size
                self._pending = (start, reason)
                return True
            if self._cancel.is_set():
                return False
        self._reconnecting = False
        gap = SourceGap(start, None, reason)
        self.gaps.append(gap)
        self.ended = (f"{reason}; it did not come back within {self.reconnect_s:g} s" if self.reconnect_s > 0
                      else reason)
        self._emit("ended", f"the source ended: {self.ended}", gap)
        return False

    def _emit(self, kind: str, message: str, gap: SourceGap | None = None) -> None:
        if self._on_event is not None:
            self._on_event(SourceEvent(kind, self.elapsed(), mask_url(message), gap))

    def interrupt(self) -> None:
        """Stop retrying (any thread); a read in progress returns soon after."""
        self._cancel.set()

    def _close(self) -> None:
        self._cancel.set()
        with self._lock:
            inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


# ---------------------------------------------------------------------------------------------------- repeats

class RepeatedSource(FrameSource):
    """A file played `times` times over as one stream: indices and times go on from pass to pass (a soak test of
    hours from a short clip). `passes_done` counts the passes read to their end. Closes the file it wraps."""

    def __init__(self, source: FrameSource, times: int):
        if source.is_live or not source.seekable:
            raise ValueError(f"{source.name}: only a file can be repeated")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        self.inner = source
        self.times = int(times)
        self._name = source.name
        self._size = source.size
        self.passes_done = 0
        self.pass_starts = [0]  # index of the first frame of each pass begun so far
        self._offset_index = 0
        self._offset_time = 0.0
        self._last: Frame | None = None
        self._next = 0

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    @property
    def frame_count(self) -> int | None:
        n = self.inner.frame_count
        return None if n is None else n * self.times

    @property
    def damage(self) -> str | None:
        return self.inner.damage

    @property
    def position(self) -> int:
        return self._next

    def read(self) -> Frame | None:
        while not self._closed and self.passes_done < self.times:
            frame = self.inner.read()
            if frame is not None:
                out = Frame(self._offset_index + frame.index, self._offset_time + frame.time_s, frame.image)
                self._last = out
                self._next = out.index + 1
                return out
            self.passes_done += 1
            if self._last is None or self.passes_done >= self.times:
                self.passes_done = self.times if self._last is None else self.passes_done
                return None
            step = 1.0 / (self.inner.fps or 30.0)
            self._offset_index = self._last.index + 1
            self._offset_time = self._last.time_s + step
            self.pass_starts.append(self._offset_index)
            self.inner.seek(0)
        return None

    def _close(self) -> None:
        self.inner.close()


# ------------------------------------------------------------------------------------------------- entry points

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


def list_cameras(max_index: int = 5) -> list[int]:
    """Camera indices 0..max_index that open and deliver a frame. On Linux, indices without a /dev/videoN node are
    skipped without touching OpenCV (no probing delay, no log noise). A camera already in use may be missing."""
    found = []
    for i in range(max_index + 1):
        if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{i}"):
            continue
        with _quiet_opencv():
            cap = cv2.VideoCapture(i)
            try:
                if cap.isOpened():
                    ok, img = cap.read()
                    if ok and img is not None:
                        found.append(i)
            finally:
                cap.release()
    return found


def iter_video_files(folder: str | Path) -> list[Path]:
    """The video files (by VIDEO_SUFFIXES, any case) directly in `folder`, sorted by name. Hidden files are skipped:
    macOS leaves '._clip.mp4' metadata files beside copied videos, and they are not videos."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CaptureError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_SUFFIXES)


def subfolders(folder: str | Path) -> list[Path]:
    """The folders directly in `folder` (hidden ones aside), sorted by name: a folder replay does not look inside
    them (iter_video_files), and says so."""
    folder = Path(folder).expanduser()
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


# ------------------------------------------------------------------------------------------------------- threads

class LatestFrameGrabber:
    """Reads a live source on its own thread and keeps only the newest frame (a one-slot hand-off): a slow consumer
    gets the latest frame, never a backlog; frames overwritten before anyone took them are counted in `dropped`.

    `get(timeout)` returns the newest frame not yet handed out, or None on timeout or once the source has ended
    (`finished`). A read error ends the thread; `error` holds it and every `get` after the last frame raises it.
    """

    def __init__(self, source: FrameSource):
        if not source.is_live:
            raise ValueError(f"{source.name} is a file: use PrefetchReader, which keeps every frame")
        self.source = source
        self.received = 0   # frames read from the source
        self.dropped = 0    # received but replaced in the slot before anyone took them
        self.delivered = 0  # taken by get()
        self.error: BaseException | None = None
        self._slot: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None

    def start(self) -> LatestFrameGrabber:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"grab {self.source.name}", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                with self._cond:
                    self.received += 1
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = frame
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - handed to the consumer: a dead thread must not fail silently
            self.error = e
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    @property
    def finished(self) -> bool:
        """The thread has ended (source ended, error, or stopped) and no frame is left in the slot."""
        with self._cond:
            return self._finished and self._slot is None

    def get(self, timeout: float | None = None) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None or self._finished, timeout)
            frame, self._slot = self._slot, None
            if frame is not None:
                self.delivered += 1
                return frame
            if self.error is not None:
                raise self.error
            return None

    def stop(self, timeout: float = STALL_S + 1.0) -> None:
        """Ask the thread to end and wait for it (at most one read more; a reconnecting source stops retrying). Does
        not close the source."""
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:
            interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class PrefetchReader(ReadAhead[Frame]):
    """Decodes a file source ahead on its own thread into a bounded queue (`maxsize` frames), so decoding overlaps
    processing. Iterating yields every frame in order, then stops; an exception in the thread re-raises in the
    consumer. `close()` (or leaving the `with`) stops the thread even when the consumer stopped early. The source
    stays open (its owner closes it) and must not be read by anyone else while the reader runs."""

    def __init__(self, source: FrameSource, maxsize: int = 8):
        if source.is_live:
            raise ValueError(f"{source.name} is live: use LatestFrameGrabber, which never queues stale frames")
        self.source = source
        super().__init__(iter(source.read, None), maxsize, name=f"prefetch {source.name}")
