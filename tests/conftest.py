import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("GLOG_minloglevel", "2")

from app.paths import data_root  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.fail(f"shared datasets not found at {root}; set FANLIVE_DATA")
    return root


@pytest.fixture(scope="session")
def videos(shared_data) -> Path:
    return shared_data / "videos"


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """A real, public-domain face photo shipped inside scikit-image (512x512)."""
    from skimage import data
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def random_gray_model(tmp_path_factory) -> Path:
    """One seeded random-init model (64 px gray, relation and self heads, window 16) exported once for the whole run
    (an export takes ~10 s). FOR TESTS ONLY, and READ-ONLY: a test that changes a file copies the folder first."""
    from models.release.export import export_random_model

    return export_random_model(tmp_path_factory.mktemp("random_gray"))


@pytest.fixture(scope="session")
def random_rgb_model(tmp_path_factory) -> Path:
    """The same for 64 px RGB (the shipped model's input). READ-ONLY, as above."""
    from models.release.export import export_random_model

    return export_random_model(tmp_path_factory.mktemp("random_rgb"), color="rgb")


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """The ffmpeg binary that sends loopback streams (.ci/run installs it). Skipped where it is missing, except in CI,
    where a missing ffmpeg must not pass as a green run."""
    from app.tools.loopback import FFmpegMissing, find_ffmpeg

    try:
        return find_ffmpeg()
    except FFmpegMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e} (.ci/run installs it)")
        pytest.skip(str(e))


@pytest.fixture
def loopback(ffmpeg):
    """make(clip, start=True, **LoopbackStream options) -> a real ffmpeg stream on udp://127.0.0.1:<free port>; every
    stream made is stopped at teardown, whatever the test did."""
    from app.tools.loopback import LoopbackStream

    streams = []

    def make(clip, start: bool = True, **options) -> LoopbackStream:
        stream = LoopbackStream(clip, **options)
        streams.append(stream)
        return stream.start() if start else stream

    yield make
    for s in streams:
        s.stop()
