"""app.capture on the shared videos, GIFs and damaged files made from them, and fake live sources for the threads."""
import hashlib
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.capture.video import (VIDEO_SUFFIXES, CaptureError, Frame, FrameSource, GifSource, LatestFrameGrabber,
    PrefetchReader, VideoFileSource, iter_video_files, list_cameras, open_source)

SHARED_VIDEOS = ["single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4"]


def _digest(image: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest()


def _sequential(path: Path) -> list[tuple[int, float, str]]:
    with open_source(path) as src:
        return [(f.index, f.time_s, _digest(f.image)) for f in src]


def _first_frames(path: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = [cap.read()[1] for _ in range(n)]
    cap.release()
    return out


# ------------------------------------------------------------------------------------------------------------- Frame

def test_frame_validates_its_fields():
    img = np.zeros((4, 6, 3), np.uint8)
    f = Frame(np.int64(3), np.float32(0.5), img)
    assert (f.index, f.time_s) == (3, 0.5) and type(f.index) is int
    for bad in (np.zeros((4, 6), np.uint8), np.zeros((4, 6, 3), np.float32), np.zeros((4, 6, 4), np.uint8),
                np.zeros((0, 6, 3), np.uint8), [[0, 0, 0]]):
        with pytest.raises(ValueError, match="uint8 BGR"):
            Frame(0, 0.0, bad)
    with pytest.raises(ValueError):
        Frame(-1, 0.0, img)
    with pytest.raises(ValueError):
        Frame(0, float("nan"), img)


# ------------------------------------------------------------------------------------------------------- video files

@pytest.mark.data
def test_reads_single_face_fully(videos):
    with open_source(videos / "single_face.mp4") as src:
        assert isinstance(src, VideoFileSource) and not src.is_live and src.seekable
        assert src.name == "single_face.mp4" and src.size == (640, 360)
        assert src.fps == pytest.approx(30.0, rel=0.01)
        frames = list(src)
        assert src.read() is None and src.read() is None  # stays at the end
        assert src.position == len(frames) == src.frame_count
    assert 70 <= len(frames) <= 74
    assert [f.index for f in frames] == list(range(len(frames)))
    times = np.array([f.time_s for f in frames])
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)
    np.testing.assert_allclose(times, np.arange(len(frames)) / 30.0, atol=0.5 / 30)
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    # not the same frame over and over: the person moves
    assert len({_digest(f.image) for f in frames}) == len(frames)


@pytest.mark.data
@pytest.mark.parametrize("name", SHARED_VIDEOS)
def test_shared_videos_open(videos, name):
    with open_source(videos / name) as src:
        frame = src.read()
        assert frame.index == 0 and frame.time_s == 0.0
        w, h = src.size
        assert frame.image.shape == (h, w, 3)
        assert src.frame_count > 10 and src.fps > 5
        assert src.position == 1


@pytest.mark.data
@pytest.mark.parametrize("name", ["single_face.mp4", "face_noface.mov"])
def test_seek_lands_on_the_exact_frame(videos, name):
    """face_noface.mov is a variable-frame-rate HEVC phone video, where OpenCV's own frame seek lands frames off."""
    path = videos / name
    ref = _sequential(path)
    n = len(ref)
    targets = [n // 2, 3, n - 1, 0, n // 2 - 1, n // 2 + 1, n // 2 + 30, 1, n - 5, 10]
    with open_source(path) as src:
        for k in targets:
            src.seek(k)
            assert src.position == k
            frame = src.read()
            assert (frame.index, frame.time_s, _digest(frame.image)) == ref[k], f"seek({k})"
            assert src.position == k + 1
        src.seek(n + 100)  # past the end: clamped, then end of stream
        assert src.position == n and src.read() is None
        src.seek(-5)
        assert src.read().index == 0
    with open_source(path) as src:  # a far seek straight after opening, before any timestamps were seen
        src.seek(n - 2)
        assert _digest(src.read().image) == ref[n - 2][2]


@pytest.mark.data
def test_wrong_metadata_frame_count_is_corrected_at_the_end(videos):
    with open_source(videos / "no_face.mp4") as src:
        declared = src.frame_count
        n = sum(1 for _ in src)
        assert src.frame_count == n
    assert declared >= n  # the container claims 98; 95 decode
    assert src.damage is None  # within what container estimates are off by: not damage


@pytest.mark.data
@pytest.mark.parametrize("name", SHARED_VIDEOS)
def test_healthy_videos_are_not_reported_damaged(videos, name):
    with open_source(videos / name) as src:
        assert src.damage is None  # not known before the end
        for _ in src:
            pass
        assert src.damage is None


# ---------------------------------------------------------------------------------------------------------------- GIF

@pytest.mark.data
def test_gif_from_real_frames(videos, tmp_path):
    frames = _first_frames(videos / "single_face.mp4", 6)
    images = [Image.fromarray(cv2.cvtColor(cv2.resize(f, (160, 90)), cv2.COLOR_BGR2RGB)) for f in frames]
    durations = [40, 80, 40, 120, 60, 100]
    path = tmp_path / "clip.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)

    with open_source(path) as src:
        assert isinstance(src, GifSource)
        assert src.frame_count == 6 and src.size == (160, 90)
        assert src.fps == pytest.approx(6 / 0.44)
        got = list(src)
        src.seek(3)
        again = src.read()
    assert [f.index for f in got] == list(range(6))
    np.testing.assert_allclose([f.time_s for f in got], np.cumsum([0] + durations[:-1]) / 1000.0)
    for f, orig in zip(got, frames):  # the right pictures, up to GIF's 256-colour palette
        diff = np.abs(f.image.astype(int) - cv2.resize(orig, (160, 90)).astype(int)).mean()
        assert diff < 10
    assert again.index == 3 and again.time_s == pytest.approx(0.16) and np.array_equal(again.image, got[3].image)

    cut = tmp_path / "cut.gif"  # a damaged tail: the whole frames before it, then the end
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    with open_source(cut) as src:
        partial = list(src)
        assert src.read() is None
    assert 1 <= len(partial) < 6
    assert all(np.array_equal(a.image, b.image) and a.time_s == b.time_s for a, b in zip(partial, got))


# --------------------------------------------------------------------------------------------------------- bad input

def _missing(d: Path) -> Path:
    return d / "missing.mp4"


def _zero_bytes(d: Path) -> Path:
    (p := d / "empty.mp4").write_bytes(b"")
    return p


def _text_as_mp4(d: Path) -> Path:
    (p := d / "notes.mp4").write_text("this is not a video\n" * 50)
    return p


def _text_as_gif(d: Path) -> Path:
    (p := d / "notes.gif").write_text("this is not a GIF\n" * 50)
    return p


def _folder(d: Path) -> Path:
    (p := d / "clips.mp4").mkdir()
    return p


@pytest.mark.parametrize("make, expect", [
    (_missing, "not found"), (_zero_bytes, "empty"), (_text_as_mp4, "cannot open"), (_text_as_gif, "GIF"),
    (_folder, "folder")], ids=["missing", "zero-byte", "text-as-mp4", "text-as-gif", "directory"])
def test_bad_inputs_fail_at_open_with_one_line(tmp_path, make, expect):
    path = make(tmp_path)
    with pytest.raises(CaptureError) as err:
        open_source(path)
    msg = str(err.value)
    assert expect in msg and str(path) in msg and "\n" not in msg


@pytest.mark.data
def test_truncated_file_without_its_index_fails_at_open(videos, tmp_path):
    data = (videos / "single_face.mp4").read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # the index (moov) is at the end, so truncation loses it
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 4 // 10])
    with pytest.raises(CaptureError, match="cut.mp4"):
        open_source(path)


def _truncated_mp4(videos: Path, tmp_path: Path) -> tuple[Path, Path, int]:
    src = videos / "WolfgangLanger_Pexels.mp4"
    data = src.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # index first: the truncated file still opens
    out = tmp_path / "cut.mp4"
    out.write_bytes(data[: len(data) * 4 // 10])
    return src, out, 472


def _truncated_avi(videos: Path, tmp_path: Path) -> tuple[Path, Path, int]:
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 360))
    for f in _first_frames(videos / "single_face.mp4", 40):
        writer.write(f)
    writer.release()
    data = full.read_bytes()
    out = tmp_path / "cut.avi"
    out.write_bytes(data[: len(data) // 2])
    return full, out, 40


@pytest.mark.data
@pytest.mark.parametrize("make", [_truncated_mp4, _truncated_avi], ids=["mp4-40%", "mjpg-avi-50%"])
def test_truncated_file_yields_frames_before_the_damage_then_ends(videos, tmp_path, make):
    original, cut, n_full = make(videos, tmp_path)
    with open_source(cut) as src:
        frames = []
        while (f := src.read()) is not None:  # must not raise part-way
            frames.append(f)
        assert src.read() is None
        assert src.frame_count == len(frames)
        # issue 13, defect 5: the file ended early, and says so against what its container declares
        if src.declared_frame_count is not None:
            assert src.damage == (f"decoded {len(frames)} of the {src.declared_frame_count} frames its container "
                                  "declares (damaged or truncated file)")
    assert n_full * 0.2 < len(frames) < n_full * 0.8
    assert [f.index for f in frames] == list(range(len(frames)))
    assert np.all(np.diff([f.time_s for f in frames]) > 0)
    ref = _first_frames(original, len(frames) // 2 + 1)
    for k in (0, len(frames) // 2):  # what was decoded is the original picture
        assert np.array_equal(frames[k].image, ref[k])


# ------------------------------------------------------------------------------------------------------ folders

def test_iter_video_files(tmp_path):
    for name in ["b.mp4", "A.MOV", "c.webm", "anim.gif", "notes.txt", "._b.mp4", "z.mkv"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.mp4").mkdir()
    assert [p.name for p in iter_video_files(tmp_path)] == ["A.MOV", "anim.gif", "b.mp4", "c.webm", "z.mkv"]
    assert ".mp4" in VIDEO_SUFFIXES and ".gif" in VIDEO_SUFFIXES
    with pytest.raises(CaptureError):
        iter_video_files(tmp_path / "nope")


@pytest.mark.data
def test_a_damaged_middle_is_skipped_and_the_gap_reported(videos, tmp_path):
    """Decoding stopped at the first undecodable frame in the middle of a file (frame 213 of 472 here; ffmpeg goes on
    and decodes 466, concealing the damage). The source now seeks past the run of undecodable frames and names it;
    the frames after it are the file's own, at their own index and time."""
    data = bytearray((videos / "WolfgangLanger_Pexels.mp4").read_bytes())
    start = int(len(data) * 0.45)
    data[start:start + 20000] = bytes(20000)  # zeros over the keyframe of 9.0 s and the frames around it
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with open_source(videos / "WolfgangLanger_Pexels.mp4") as src:
        pristine = {f.index: (f.time_s, _digest(f.image)) for f in src}
    with open_source(damaged) as src:
        got = {f.index: (f.time_s, _digest(f.image)) for f in src}
        ((first, last),) = src.gaps
        damage = src.damage
        src.seek(first + 10)  # a seek into the gap lands on the first frame after it
        assert src.read().index == last + 1
    assert 150 < first <= last < 400 and len(pristine) == 472
    assert sorted(got) == [*range(first), *range(last + 1, 472)]
    assert all(got[i] == pristine[i] for i in got)
    assert damage == (f"decoded {len(got)} of the 472 frames its container declares (damaged or truncated file; "
                      f"frames {first}-{last} could not be decoded and were skipped)")


# ------------------------------------------------------------------------------------------------------- cameras

def test_list_cameras_opens_only_indices_that_have_a_device(monkeypatch):
    """Listing is quick because, on Linux, an index without a /dev/videoN node is never handed to OpenCV (whose
    probe of a missing camera is what takes seconds): asserted as such, not as a wall-clock bound."""
    opened = []
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda index, *a: (opened.append(index), real(index, *a))[1])
    cams = list_cameras(max_index=5)
    assert isinstance(cams, list) and all(isinstance(i, int) for i in cams) and set(cams) <= set(opened)
    if sys.platform.startswith("linux"):
        assert opened == [i for i in range(6) if os.path.exists(f"/dev/video{i}")]


@pytest.mark.parametrize("spec", [99, "99", " 99 "])
def test_missing_camera_raises_capture_error(spec):
    with pytest.raises(CaptureError, match=r"^camera 99 could not be opened \(unplugged or in use\?\)$"):
        open_source(spec)


# ------------------------------------------------------------------------------------------------- PrefetchReader

@pytest.mark.data
def test_prefetch_yields_the_same_frames_as_direct_reading(videos):
    path = videos / "single_face.mp4"
    direct = _sequential(path)
    with open_source(path) as src, PrefetchReader(src, maxsize=4) as reader:
        got = [(f.index, f.time_s, _digest(f.image)) for f in reader]
        assert list(reader) == []  # exhausted stays exhausted
        reader._thread.join(2)
        assert not reader._thread.is_alive()
    assert got == direct


@pytest.mark.data
def test_prefetch_close_early_stops_the_thread(videos):
    with open_source(videos / "WolfgangLanger_Pexels.mp4") as src:
        reader = PrefetchReader(src, maxsize=4)
        first = [next(reader) for _ in range(5)]
        time.sleep(0.2)  # let it fill the queue and block on put()
        assert src.position <= 5 + 4 + 1  # bounded: it decodes ahead by the queue size, not the whole file
        reader.close()
        assert not reader._thread.is_alive()
        assert list(reader) == []
    assert [f.index for f in first] == [0, 1, 2, 3, 4]


class _FakeSource(FrameSource):
    """Small frames, as fast as asked; `fail_after` raises like a dying device; `n=None` never ends."""

    def __init__(self, n: int | None, live: bool, fail_after: int | None = None, delay_s: float = 0.0):
        self.is_live = live
        self._name = "fake"
        self._size = (8, 6)
        self.n, self.fail_after, self.delay_s = n, fail_after, delay_s
        self.produced = 0
        self._t0 = time.monotonic()

    @property
    def position(self) -> int:
        return self.produced

    def read(self):
        if self.fail_after is not None and self.produced >= self.fail_after:
            raise CaptureError("camera 7 stopped delivering frames (unplugged?)")
        if self._closed or (self.n is not None and self.produced >= self.n):
            return None
        if self.delay_s:
            time.sleep(self.delay_s)
        img = np.full((6, 8, 3), self.produced % 256, np.uint8)
        frame = Frame(self.produced, time.monotonic() - self._t0, img)
        self.produced += 1
        return frame


def test_prefetch_reraises_errors_from_its_thread():
    reader = PrefetchReader(_FakeSource(n=10, live=False, fail_after=3))
    got = []
    with pytest.raises(CaptureError, match="stopped delivering"):
        for f in reader:
            got.append(f.index)
    assert got == [0, 1, 2]
    reader.close()


def test_threads_refuse_the_wrong_kind_of_source():
    with pytest.raises(ValueError, match="LatestFrameGrabber"):
        PrefetchReader(_FakeSource(n=3, live=True))
    with pytest.raises(ValueError, match="PrefetchReader"):
        LatestFrameGrabber(_FakeSource(n=3, live=False))


# --------------------------------------------------------------------------------------------- LatestFrameGrabber

def test_grabber_hands_over_only_the_newest_frame():
    src = _FakeSource(n=200, live=True)
    grabber = LatestFrameGrabber(src).start()
    grabber._thread.join(5)  # the source has ended; nobody took anything
    frame = grabber.get(timeout=1)
    assert frame.index == 199 and frame.image[0, 0, 0] == 199
    assert grabber.dropped == 199
    assert grabber.get(timeout=0.1) is None and grabber.finished


def test_grabber_with_a_slow_consumer_skips_stale_frames():
    """The camera's pace against the consumer's is set by the test, not by sleeps: the frames that arrive while the
    consumer is busy replace each other (each one counted), and it gets the newest."""
    ticks = threading.Semaphore(0)

    class PacedSource(_FakeSource):
        def read(self):
            if not ticks.acquire(timeout=30):
                return None
            return super().read()

    src = PacedSource(n=None, live=True)
    seen = []
    with LatestFrameGrabber(src) as grabber:
        produced = 0
        for burst in (1, 4, 1, 3):  # frames the camera delivers while the consumer works on the last one
            produced += burst
            for _ in range(burst):
                ticks.release()
            deadline = time.monotonic() + 30  # liveness only: wait until the burst's newest frame is in the slot
            while not (src.produced == produced and grabber.dropped + grabber.delivered + 1 == produced):
                assert time.monotonic() < deadline
                time.sleep(0.001)
            seen.append(grabber.get(timeout=30).index)
        src.n = src.produced  # the camera ends: the grabber's thread returns
        ticks.release()
    assert seen == [0, 4, 5, 8]
    assert grabber.dropped == 5 and grabber.delivered + grabber.dropped == src.produced == 9


def test_grabber_surfaces_a_read_error():
    grabber = LatestFrameGrabber(_FakeSource(n=None, live=True, fail_after=5)).start()
    with pytest.raises(CaptureError, match="camera 7"):
        for _ in range(10):
            grabber.get(timeout=2)
    assert isinstance(grabber.error, CaptureError)
    grabber.stop()


def test_grabber_stop_ends_the_thread():
    src = _FakeSource(n=None, live=True, delay_s=0.001)
    grabber = LatestFrameGrabber(src).start()
    assert grabber.get(timeout=2) is not None
    grabber.stop()
    assert not grabber.running
    n = src.produced
    time.sleep(0.05)
    assert src.produced == n
    assert threading.active_count() < 50


@pytest.mark.data
def test_open_source_accepts_str_and_path(videos, tmp_path):
    copy = tmp_path / "clip 1.MP4"  # a space and an upper-case suffix
    shutil.copy(videos / "single_face.mp4", copy)
    for spec in (copy, str(copy)):
        with open_source(spec) as src:
            assert src.read().index == 0 and src.name == "clip 1.MP4"


@pytest.mark.data
def test_repeated_source_plays_a_file_n_times_as_one_stream(videos):
    from app.capture.video import RepeatedSource

    with open_source(videos / "single_face.mp4") as once:
        first = [f.image for f in once]
    with RepeatedSource(open_source(videos / "single_face.mp4"), 3) as src:
        frames = list(src)
        assert src.passes_done == 3 and src.pass_starts == [0, 72, 144] and src.read() is None
    assert [f.index for f in frames] == list(range(216))
    assert np.all(np.diff([f.time_s for f in frames]) > 0)
    assert np.array_equal(frames[72 + 5].image, first[5]) and np.array_equal(frames[215].image, first[71])


def _rotated_phone_video(videos: Path, tmp_path: Path, n: int = 20) -> Path:
    """What a phone writes for a landscape scene held in portrait: frames stored sideways (turned 90 degrees
    counter-clockwise) and a display matrix (tkhd) saying to turn them 90 degrees clockwise to show them."""
    import struct

    stored = tmp_path / "stored.mp4"
    writer = cv2.VideoWriter(str(stored), cv2.VideoWriter_fourcc(*"mp4v"), 30, (360, 640))
    for img in _first_frames(videos / "single_face.mp4", n):
        writer.write(cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE))
    writer.release()
    data = bytearray(stored.read_bytes())
    p = data.find(b"tkhd")
    assert p > 0 and data[p + 4] == 0  # version 0: the 3x3 matrix sits 44 bytes after the box type
    data[p + 44:p + 80] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)  # rotate 90 clockwise
    out = tmp_path / "phone.mp4"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.data
def test_rotation_metadata_is_honoured(videos, tmp_path):
    """Issue 13, defect 8: a phone video with a 90-degree display matrix was read (and analysed) sideways."""
    path = _rotated_phone_video(videos, tmp_path)
    original = _first_frames(videos / "single_face.mp4", 20)
    with open_source(path) as src:
        assert src.rotation == 90 and src.size == (640, 360)
        frames = list(src)
        assert len(frames) == 20 and all(f.image.shape == (360, 640, 3) for f in frames)
        for k in (0, 19):  # upright again: the original picture, up to the re-encoding
            assert np.abs(frames[k].image.astype(int) - original[k]).mean() < 8
        src.seek(5)  # seeking reopens the file: still upright
        assert src.read().image.shape == (360, 640, 3)
        src.seek(0)
        assert src.read().image.shape == (360, 640, 3)


# ------------------------------------------------------------------------------------------ live sources: streams

@pytest.mark.parametrize("text, masked", [
    ("rtsp://admin:s3cret@10.1.2.3:554/stream1", "rtsp://admin:***@10.1.2.3:554/stream1"),
    ("rtsp://:s3cret@cam/x", "rtsp://:***@cam/x"),
    ("srt://127.0.0.1:9000?mode=caller&passphrase=s3cret", "srt://127.0.0.1:9000?mode=caller&passphrase=***"),
    ("http://cam/video.mjpg?user=a&pwd=s3cret&fps=30", "http://cam/video.mjpg?user=a&pwd=***&fps=30"),
    ("rtsp://viewer@cam/x", "rtsp://viewer@cam/x"),  # a user name alone is not a secret
    ("udp://127.0.0.1:5000", "udp://127.0.0.1:5000"),
    ("cannot open rtsp://u:s3cret@h/x: refused", "cannot open rtsp://u:***@h/x: refused"),
])
def test_mask_url_hides_passwords_and_secret_query_values(text, masked):
    from app.capture.video import is_masked, mask_url

    assert mask_url(text) == masked and "s3cret" not in mask_url(text)
    assert mask_url(mask_url(text)) == mask_url(text)
    assert is_masked(mask_url(text)) == ("***" in masked)


def test_live_specs_are_told_apart_from_files():
    from app.capture.video import describe_source, is_live_spec

    for spec in (0, "3", "/dev/video2", "rtsp://h/x", "HTTP://h/s.mjpg", "udp://127.0.0.1:5000", "srt://h:9000"):
        assert is_live_spec(spec), spec
    for spec in ("clip.mp4", "/data/rtsp.mp4", "ftp://h/x", True, "file:///tmp/a.mp4"):
        assert not is_live_spec(spec), spec
    assert describe_source(2) == "camera 2" and describe_source("rtsp://u:p@h/x") == "rtsp://u:***@h/x"


def test_a_stream_that_refuses_or_sends_nothing_is_one_line_without_its_password():
    from app.tools.loopback import free_udp_port

    t0 = time.monotonic()
    with pytest.raises(CaptureError) as refused:
        open_source(f"rtsp://admin:s3cret@127.0.0.1:{free_udp_port()}/live")  # nothing listens on that TCP port
    assert "s3cret" not in str(refused.value) and "rtsp://admin:***@127.0.0.1" in str(refused.value)
    with pytest.raises(CaptureError, match=r"^cannot open the stream udp://127\.0\.0\.1:\d+: no video within 1 s"):
        open_source(f"udp://127.0.0.1:{free_udp_port()}", timeout_s=1)  # nothing sends
    assert "\n" not in str(refused.value) and time.monotonic() - t0 < 30


@pytest.mark.data
def test_a_udp_stream_reads_like_a_camera(videos, loopback):
    from app.capture.video import StreamSource

    stream = loopback(videos / "single_face.mp4", loops=1)  # 144 frames at 30 fps, sent in real time
    with open_source(stream.url) as src:
        assert isinstance(src, StreamSource) and src.is_live and src.size == (640, 360)
        frames = list(src.read() for _ in range(60))
    assert [f.index for f in frames] == list(range(60))
    times = [f.time_s for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert all(f.captured_at is not None and f.time_s == pytest.approx(f.captured_at - frames[0].captured_at
                                                                       + frames[0].time_s) for f in frames)


@pytest.mark.data
def test_a_stream_restarted_within_the_reconnect_window_goes_on_with_a_gap(videos, loopback):
    from app.capture.video import open_live

    stream = loopback(videos / "single_face.mp4")  # 2.4 s
    events = []

    def on_event(event):  # told on the reading thread, which then retries: the sender comes back 1 s later
        events.append(event)
        if event.kind == "lost":
            threading.Timer(1.0, stream.start).start()

    src = open_live(stream.url, reconnect_s=8, on_event=on_event)
    frames = []
    while len(frames) < 200 and (frame := src.read()) is not None:
        frames.append(frame)
        if len(events) == 2 and frames[-1].time_s > events[1].gap.end_s + 0.5:
            break
    src.close()
    assert [e.kind for e in events] == ["lost", "back"] and "reconnecting for up to 8 s" in events[0].message
    (gap,) = src.gaps
    before = [f for f in frames if f.time_s <= gap.start_s]
    after = [f for f in frames if f.time_s >= gap.end_s]
    assert len(before) > 20 and len(after) > 5 and len(before) + len(after) == len(frames)
    assert gap.start_s == before[-1].time_s and gap.end_s == after[0].time_s and gap.duration_s > 2.0
    assert [f.index for f in frames] == list(range(len(frames)))  # one frame count, one clock
    assert src.ended is None and events[1].gap == gap


@pytest.mark.data
@pytest.mark.parametrize("reconnect_s", [0.0, 2.0])
def test_a_stream_gone_for_good_ends_after_the_reconnect_window(videos, loopback, reconnect_s):
    from app.capture.video import open_live

    stream = loopback(videos / "single_face.mp4")
    events = []
    src = open_live(stream.url, reconnect_s=reconnect_s, on_event=events.append)
    frames = list(iter(src.read, None))
    assert len(frames) > 20 and src.read() is None
    assert [e.kind for e in events] == (["ended"] if reconnect_s == 0 else ["lost", "ended"])
    (gap,) = src.gaps
    assert gap.end_s is None and gap.start_s == frames[-1].time_s
    assert "stopped delivering frames" in src.ended and events[-1].message.startswith("the source ended: ")
    src.close()


def _v4l2loopback_device() -> str | None:
    """A v4l2loopback output device (/sys/class/video4linux/videoN/name says 'Dummy video device' or 'loopback')."""
    root = Path("/sys/class/video4linux")
    for dev in sorted(root.glob("video*")) if root.is_dir() else []:
        name = (dev / "name").read_text().lower() if (dev / "name").is_file() else ""
        if "loopback" in name or "dummy" in name:
            return f"/dev/{dev.name}"
    return None


@pytest.mark.data
def test_a_v4l2loopback_device_path_reads_like_a_camera(videos, loopback, ffmpeg):
    import subprocess

    device = _v4l2loopback_device()
    if device is None:
        pytest.skip("no v4l2loopback device: the kernel module is not loaded (modprobe v4l2loopback needs the host's "
                    "kernel; a container cannot load it)")
    sender = subprocess.Popen([ffmpeg, "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i",
                               str(videos / "single_face.mp4"), "-pix_fmt", "yuyv422", "-f", "v4l2", device])
    try:
        time.sleep(1.0)
        with open_source(device) as src:
            frames = [src.read() for _ in range(10)]
        assert src.name == device and all(f.image.shape == (360, 640, 3) for f in frames)
    finally:
        sender.kill()
        sender.wait(10)
