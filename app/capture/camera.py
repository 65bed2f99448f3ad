"""Live sources: cameras (an index or a device path) and network streams, their names with any password masked, and
`ReconnectingSource`, which retries a stalled or vanished source for a while and records the gap."""
from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.capture.frame import CaptureError, Frame, FrameSource, quiet_ffmpeg, quiet_opencv, valid_fps


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
        self._fps = valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
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
            with quiet_opencv():
                cap = cv2.VideoCapture(self.spec, api)
        else:
            with quiet_opencv():
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
        quiet_ffmpeg()
        super().__init__(url.strip())

    def _open_capture(self) -> cv2.VideoCapture:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self._open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self._stall_s * 1000)]
        with quiet_opencv():
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


def list_cameras(max_index: int = 5) -> list[int]:
    """Camera indices 0..max_index that open and deliver a frame. On Linux, indices without a /dev/videoN node are
    skipped without touching OpenCV (no probing delay, no log noise). A camera already in use may be missing."""
    found = []
    for i in range(max_index + 1):
        if sys.platform.startswith("linux") and not os.path.exists(f"/dev/video{i}"):
            continue
        with quiet_opencv():
            cap = cv2.VideoCapture(i)
            try:
                if cap.isOpened():
                    ok, img = cap.read()
                    if ok and img is not None:
                        found.append(i)
            finally:
                cap.release()
    return found
