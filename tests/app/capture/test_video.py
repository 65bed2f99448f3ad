"""app.capture.video and .sources on the shared videos and damaged files made from them."""
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.capture.video import VIDEO_SUFFIXES, VideoFileSource, iter_video_files
from app.capture.frame import CaptureError, Frame
from app.capture.sources import open_source

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
        # the file ended early, and says so against what its container declares
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


# ------------------------------------------------------------------------------------------------- PrefetchReader


# --------------------------------------------------------------------------------------------- LatestFrameGrabber


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
    """A phone video with a 90-degree display matrix is read (and analysed) upright."""
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


