"""Video files through OpenCV's FFmpeg backend: exact seeking (also in variable-frame-rate phone videos), rotation
metadata applied, damaged stretches skipped and reported; a file repeated as one session; the videos of a folder."""
from __future__ import annotations

import bisect
import contextlib
import math
from pathlib import Path

import cv2
import numpy as np

from app.capture.frame import CaptureError, Frame, FrameSource, check_file, quiet_ffmpeg, quiet_opencv, valid_fps


VIDEO_SUFFIXES: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".gif")

# A forward seek of at most this many frames decodes forward (grab without colour conversion) instead of asking the
# demuxer to jump: exact by construction and cheaper than a keyframe seek for single steps and short scrubs.
_MAX_STEP_FORWARD = 48
# Frames decoded before a far forward seek, to learn whether the file has a constant frame rate: only then can the
# index of a frame beyond the part decoded so far follow from its timestamp.
_MIN_FRAMES_FOR_RATE = 8
# A file counts as damaged when it decodes fewer frames than its container declares by more than this: container
# figures are estimates (duration x rate): no_face.mp4 declares 98 frames and has 95, a healthy file.
_DAMAGE_MIN_FRAMES, _DAMAGE_FRACTION = 5, 0.02
# A run of frames that do not decode in the middle of a file (a damaged stretch, e.g. a broken keyframe) is skipped by
# seeking ahead, to the next frame + step * k (step = a quarter second of frames) for each k here in turn, until one
# decodes; at most _SKIP_ATTEMPTS seeks in a file, so a truncated one (nothing after the cut) ends quickly.
_SKIP_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_SKIP_ATTEMPTS = 48


class VideoFileSource(FrameSource):
    """A video file through cv2.VideoCapture (FFmpeg backend): mp4/mov/avi/mkv/webm/...

    Timestamps come from each frame's presentation time, so variable-frame-rate phone videos get true media times.
    Seeking is exact: the presentation times seen so far map timestamps back to indices, which tells where OpenCV's
    approximate seek really landed; from there it decodes forward to the requested frame.
    """

    seekable = True

    def __init__(self, path: str | Path):
        self.path = check_file(Path(path).expanduser())
        self._name = self.path.name
        quiet_ffmpeg()
        self._cap = self._open_capture()
        self._fps = valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
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
        with quiet_opencv():
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


