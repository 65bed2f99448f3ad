"""facecache: the live alignment on real faces, the fallback, the small-image detection path, the .npz cache."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.faces.align import Preprocess, align_face, alignment_transform, convert_color
from models.data import facecache
from models.data.datasets import Sample, read_ferplus
from models.data.facecache import AlignedSet, align_images, cached_aligned_set, detect_landmarks

PRE = Preprocess(input_size=64, color="gray")


@pytest.fixture(scope="module")
def detector():
    with facecache._make_detector() as det:
        yield det


@pytest.fixture()
def astronaut_png(tmp_path, astronaut_bgr) -> Path:
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut_bgr)
    return path


def test_astronaut_is_aligned_like_the_live_path(astronaut_png, astronaut_bgr):
    blank = np.full((120, 90, 3), 200, np.uint8)
    aligned = align_images([astronaut_png, blank], PRE, progress=False)
    assert aligned.crops.shape == (2, 64, 64, 1) and aligned.crops.dtype == np.uint8
    assert aligned.detected.tolist() == [True, False]
    assert aligned.detection_rate == 0.5
    # the crop is exactly what app.faces.align makes of the original image with these landmarks
    expected = convert_color(align_face(astronaut_bgr, aligned.landmarks[0], PRE), PRE)
    np.testing.assert_array_equal(aligned.crops[0], expected)
    # the landmarks land on the template
    m = alignment_transform(aligned.landmarks[0], PRE)
    moved = aligned.landmarks[0] @ m[:, :2].T + m[:, 2]
    assert np.abs(moved - np.asarray(PRE.template) * 64).max() < 6  # a similarity fit: small residual
    assert aligned.crops[1].std() == 0  # a blank image stays blank, through the fallback transform
    assert aligned.labels.tolist() == [-1, -1] and not aligned.votes.any()
    assert aligned.paths.tolist() == [str(astronaut_png), ""]


def test_worker_processes_give_the_same_crops(astronaut_png, astronaut_bgr):
    items = [astronaut_png, cv2.resize(astronaut_bgr, (64, 64)), np.zeros((48, 48), np.uint8)] * 2
    one = align_images(items, PRE, progress=False, workers=1)
    two = align_images(items, PRE, progress=False, workers=2)
    np.testing.assert_array_equal(one.crops, two.crops)
    np.testing.assert_array_equal(one.detected, two.detected)


def test_rgb_mode_shape(astronaut_bgr):
    pre = Preprocess(input_size=48, color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3)
    aligned = align_images([astronaut_bgr], pre, progress=False)
    assert aligned.crops.shape == (1, 48, 48, 3) and aligned.detected.all()


def test_small_images_map_landmarks_back_to_the_original(detector, astronaut_bgr):
    full = detect_landmarks(detector, astronaut_bgr)
    assert full is not None
    x0, y0, x1, y1 = 130, 20, 330, 220  # a loose face box, like a FER crop
    face = astronaut_bgr[y0:y1, x0:x1]
    small = cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA)
    lm_small = detect_landmarks(detector, small)  # detected on a padded, upscaled copy
    assert lm_small is not None
    expected = (full - [x0, y0]) * (48 / 200)
    eye_dist = np.linalg.norm(expected[1] - expected[0])
    assert np.abs(lm_small - expected).max() < 0.15 * eye_dist


def test_blank_image_uses_the_fallback_and_is_marked(tmp_path):
    blank = np.zeros((48, 48), np.uint8)
    aligned = align_images([blank], PRE, progress=False)
    assert aligned.detected.tolist() == [False]
    np.testing.assert_allclose(aligned.fallback, facecache.DEFAULT_FALLBACK)
    np.testing.assert_allclose(aligned.landmarks[0], facecache.DEFAULT_FALLBACK * 48, rtol=1e-6)
    assert aligned.crops.shape == (1, 64, 64, 1)


def test_save_load_round_trip_without_pickle(tmp_path, astronaut_png):
    aligned = align_images([astronaut_png, np.zeros((48, 48), np.uint8)], PRE, progress=False)
    aligned.labels[:] = [3, -1]
    aligned.votes[0, 3] = 1.0
    aligned.subjects[:] = ["S005", ""]
    path = aligned.save(tmp_path / "x" / "set.npz")
    with np.load(path, allow_pickle=False) as z:  # every field loads without pickle
        assert all(z[k].dtype != object for k in z.files)
        assert z["paths"].dtype.kind == "U"
    back = AlignedSet.load(path)
    for name in ("crops", "detected", "labels", "votes", "subjects", "sequences", "paths", "landmarks", "fallback"):
        np.testing.assert_array_equal(getattr(back, name), getattr(aligned, name))
    assert back.preprocess == PRE.to_dict() and back.pre == PRE
    assert back.select(back.labels >= 0).labels.tolist() == [3]
    assert back.indices_of([str(astronaut_png)]).tolist() == [0]


def test_cache_hit_skips_detection_and_input_size_rebuilds(tmp_path, astronaut_png, monkeypatch):
    samples = [Sample(astronaut_png, 3, subject="S1"), Sample(astronaut_png, 0, subject="S1")]
    first = cached_aligned_set(samples, PRE, tmp_path, "toy", progress=False)
    assert (tmp_path / "toy_64_gray.npz").is_file()
    assert first.labels.tolist() == [3, 0] and first.subjects.tolist() == ["S1", "S1"]

    calls = []
    real_align = facecache.align_images

    def counting_align(*args, **kwargs):
        calls.append(1)
        return real_align(*args, **kwargs)

    monkeypatch.setattr(facecache, "align_images", counting_align)
    samples[1] = Sample(astronaut_png, 5, subject="S2")  # labels change: refreshed, crops reused
    second = cached_aligned_set(samples, PRE, tmp_path, "toy", progress=False)
    assert calls == []
    np.testing.assert_array_equal(second.crops, first.crops)
    assert second.labels.tolist() == [3, 5] and second.subjects.tolist() == ["S1", "S2"]

    # another crop size: warped from the stored landmarks (toy_landmarks.npz), no second detection, same crops
    bigger = Preprocess(input_size=96, color="gray")
    third = cached_aligned_set(samples, bigger, tmp_path, "toy", progress=False)
    assert calls == [] and third.crops.shape == (2, 96, 96, 1)
    np.testing.assert_array_equal(third.crops, real_align([astronaut_png] * 2, bigger, progress=False).crops)

    cached_aligned_set(samples[:1], PRE, tmp_path, "toy", progress=False)  # other paths, same name: detect again
    assert calls == [1]

    # a crop cache made before landmark files existed gets one on its next hit
    (tmp_path / "toy_landmarks.npz").unlink()
    cached_aligned_set(samples[:1], PRE, tmp_path, "toy", progress=False)
    assert calls == [1] and (tmp_path / "toy_landmarks.npz").is_file()


@pytest.mark.data
def test_real_ferplus_valid_images(shared_data, tmp_path):
    samples = read_ferplus(shared_data / "ferplus", ["valid"])["FER2013Valid"][:40]
    aligned = cached_aligned_set(samples, PRE, tmp_path, "ferplus40", progress=False)
    assert aligned.crops.shape == (40, 64, 64, 1) and aligned.crops.dtype == np.uint8
    assert aligned.detection_rate >= 0.85
    assert aligned.labels.tolist() == [-1 if s.label is None else s.label for s in samples]
    labelled = np.array([s.votes is not None for s in samples])
    np.testing.assert_allclose(aligned.votes[labelled].sum(1), 1.0, rtol=1e-5)
    # crops are not blank and carry the face (contrast), and each is the live path's crop of the original file
    assert (aligned.crops.reshape(40, -1).std(1) > 10).all()
    i = int(np.flatnonzero(aligned.detected)[0])
    original = cv2.imread(str(samples[i].path), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(aligned.crops[i], convert_color(align_face(original, aligned.landmarks[i], PRE), PRE))
