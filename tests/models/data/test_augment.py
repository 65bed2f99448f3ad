"""The stage-1 augmentations on a real aligned face: shapes, ranges, determinism, and what each one changes."""
import numpy as np
import pytest
import torch

from app.faces.detect import DetectorConfig, FaceMeshDetector
from app.faces.align import Preprocess, align_face, convert_color
from models.data.augment import color_jitter, down_up, jpeg, random_grayscale, to_gray, train_augment
from models.train import to_input


@pytest.fixture(scope="module")
def faces_rgb(astronaut_bgr) -> torch.Tensor:
    """(8, 3, 64, 64) in [0, 1]: the astronaut's aligned face, eight copies."""
    with FaceMeshDetector(DetectorConfig(max_faces=1, video=False)) as det:
        lm = det.detect(astronaut_bgr)[0].landmarks5
    pre = Preprocess(input_size=64, color="rgb")
    crop = convert_color(align_face(astronaut_bgr, lm, pre), pre)
    return to_input(torch.from_numpy(np.stack([crop] * 8)), pre)


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_train_augment_keeps_shape_range_and_is_seeded(faces_rgb):
    a = train_augment(faces_rgb, g(1), gray_prob=0.5)
    b = train_augment(faces_rgb, g(1), gray_prob=0.5)
    assert a.shape == faces_rgb.shape and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b)
    gray = to_gray(faces_rgb)[:, :1].contiguous()
    assert train_augment(gray, g(1)).shape == gray.shape  # one-channel crops too


def test_grayscale_and_colour_jitter(faces_rgb):
    all_gray = random_grayscale(faces_rgb, g(), p=1.0)
    assert torch.allclose(all_gray[:, 0], all_gray[:, 1]) and torch.allclose(all_gray[:, 1], all_gray[:, 2])
    assert torch.equal(random_grayscale(faces_rgb, g(), p=0.0), faces_rgb)
    jittered = color_jitter(faces_rgb, g(), p=1.0)
    assert (jittered - faces_rgb).abs().mean() > 0.003
    assert torch.allclose(to_gray(faces_rgb)[:, 0], to_gray(to_gray(faces_rgb))[:, 0], atol=1e-6)
    one = faces_rgb[:, :1]
    assert torch.equal(color_jitter(one, g(), p=1.0), one)  # gray input: nothing to jitter


def test_down_up_blurs_and_jpeg_adds_artefacts(faces_rgb):
    def detail(x):  # mean absolute horizontal gradient: fine detail
        return (x[..., 1:] - x[..., :-1]).abs().mean().item()

    small = down_up(faces_rgb, g(), p=1.0, min_scale=0.3)
    assert small.shape == faces_rgb.shape and detail(small) < 0.8 * detail(faces_rgb)
    compressed = jpeg(faces_rgb, g(), p=1.0, quality=(10, 10))
    diff = (compressed - faces_rgb).abs().mean().item()
    assert 0.005 < diff < 0.1 and compressed.min() >= 0 and compressed.max() <= 1
