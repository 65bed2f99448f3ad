"""app.capture.camera: cameras, device paths and real loopback streams (stalls, reconnects, masked passwords)."""
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from app.capture.frame import CaptureError
from app.capture.camera import list_cameras
from app.capture.sources import open_source


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
    from app.capture.camera import is_masked, mask_url

    assert mask_url(text) == masked and "s3cret" not in mask_url(text)
    assert mask_url(mask_url(text)) == mask_url(text)
    assert is_masked(mask_url(text)) == ("***" in masked)


def test_live_specs_are_told_apart_from_files():
    from app.capture.camera import describe_source, is_live_spec

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
    from app.capture.camera import StreamSource

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
    from app.capture.sources import open_live

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
    from app.capture.sources import open_live

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
