"""app.tools.loopback: the clips and the ffmpeg sender the live tests and the live benchmark stream."""
import pytest

from app.capture.sources import open_source


@pytest.mark.data
def test_encode_clip_loops_and_tiles_a_video(videos, ffmpeg, tmp_path):
    from app.tools.loopback import encode_clip

    clip = encode_clip(videos / "single_face.mp4", tmp_path / "tile.ts", seconds=3, tile=2, fps=30)
    with open_source(clip) as src:
        frames = list(src)
    assert src.size == (1280, 720) and 85 <= len(frames) <= 95  # 3 s at 30 fps: the 2.4 s clip looped
    with open_source(videos / "single_face.mp4") as one:
        first = one.read().image
    tl = frames[0].image[:360, :640].astype(float)
    br = frames[0].image[360:, 640:].astype(float)
    assert abs(tl - first).mean() < 8 and abs(br - first).mean() < 8  # each cell is the video (MPEG-2 quality)


def test_find_ffmpeg_says_what_is_wrong(monkeypatch, tmp_path):
    from app.tools.loopback import FFMPEG_ENV, FFmpegMissing, find_ffmpeg

    monkeypatch.setenv(FFMPEG_ENV, str(tmp_path / "nope"))
    with pytest.raises(FFmpegMissing, match="not an executable file"):
        find_ffmpeg()
    monkeypatch.delenv(FFMPEG_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FFmpegMissing, match="apt-get install ffmpeg"):
        find_ffmpeg()


@pytest.mark.data
def test_a_stream_can_be_stopped_and_sent_again_on_its_port(videos, loopback):
    stream = loopback(videos / "single_face.mp4", loops=-1)
    port = stream.port
    assert stream.running and stream.url == f"udp://127.0.0.1:{port}"
    stream.stop()
    assert not stream.running
    stream.start()
    with open_source(stream.url) as src:
        assert src.read() is not None and stream.port == port
