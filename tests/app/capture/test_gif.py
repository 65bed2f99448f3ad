"""app.capture.gif: an animated GIF made from real frames."""

import cv2
import numpy as np
import pytest
from PIL import Image

from app.capture.gif import GifSource
from app.capture.sources import open_source
from tests.app.capture.test_video import _first_frames


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
