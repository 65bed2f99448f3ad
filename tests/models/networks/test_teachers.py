"""Teachers: the TF.js weights rebuilt in torch (dequantisation, shapes, TF padding, parity with the TF.js reference
outputs), the sha256 checks, the crop contract, and identity on real CK+ faces aligned by the app's alignment."""
from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from app.paths import models_root
from app.faces.align import Preprocess
from models.networks import teachers
from models.data.datasets import read_ckplus
from models.data.facecache import align_from_landmarks, align_images
from models.networks.teachers import TEACHERS, TeacherError, load_teacher, same_padding

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_torch_thread")]

PARITY = Path(__file__).parent / "teacher_parity.json"
CK_SUBJECTS = 8  # x 3 sequences each (their apex frames): different expressions of one person


@pytest.fixture(scope="module")
def loaded() -> dict[str, teachers.Teacher]:
    return {name: load_teacher(name) for name in TEACHERS}


def astronaut_crop(size: int) -> np.ndarray:
    """The parity input: astronaut (RGB) rows 30:330, cols 100:400, INTER_AREA to size."""
    from skimage import data
    return cv2.resize(data.astronaut()[30:330, 100:400], (size, size), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------------ weights, shapes

def test_dlib_weights_dequantise_as_min_plus_scale_q():
    folder = models_root() / TEACHERS["dlib"].folder
    manifest = json.loads((folder / TEACHERS["dlib"].files[0]).read_text())
    weights = teachers.read_weights(manifest, folder)
    specs = manifest[0]["weights"]
    assert len(weights) == len(specs) == 117
    first = specs[0]  # conv32_down/conv/filters, uint8 at offset 0 of the .bin
    q = np.frombuffer((folder / TEACHERS["dlib"].files[1]).read_bytes(), np.uint8, 7 * 7 * 3 * 32)
    expected = first["quantization"]["min"] + first["quantization"]["scale"] * q.astype(np.float64)
    np.testing.assert_allclose(weights[first["name"]].ravel(), expected, rtol=1e-6, atol=1e-8)
    assert weights[first["name"]].shape == (7, 7, 3, 32)
    unquantised = [s for s in specs if "quantization" not in s]
    assert unquantised and all(weights[s["name"]].dtype == np.float32 for s in unquantised)
    for s in specs:  # every value within its quantisation range
        if "quantization" in s:
            lo, scale = s["quantization"]["min"], s["quantization"]["scale"]
            w = weights[s["name"]]
            assert w.shape == tuple(s["shape"])
            assert w.min() >= lo - 1e-6 and w.max() <= lo + 255 * scale + 1e-6


def test_dlib_network_shapes(loaded):
    net = loaded["dlib"].net
    state = net.state_dict()
    assert state["conv32_down.conv.weight"].shape == (32, 3, 7, 7)
    assert state["conv64_down.conv1.conv.weight"].shape == (64, 32, 3, 3)
    assert state["conv256_down_out.conv2.scale_weight"].shape == (256,)
    assert state["fc.weight"].shape == (128, 256)
    convs = [m for m in net.modules() if isinstance(m, teachers.ConvScale)]
    assert len(convs) == 29  # ResNet-29: 1 + 14 blocks x 2
    x = torch.zeros(2, 3, 150, 150)
    sizes = []
    net.conv32_down.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    for name in ("conv32_3", "conv64_down", "conv128_down", "conv256_down", "conv256_down_out"):
        getattr(net, name).register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    with torch.no_grad():
        assert net(x).shape == (2, 128)
    assert sizes == [72, 35, 17, 8, 4, 2]  # the odd sizes take the zero row/column padding of face-api.js


def test_hse_graph_becomes_mobilenet_v1(loaded):
    net = loaded["hse"].net
    convs = [m for m in net if isinstance(m, teachers.TFConv)]
    assert len(convs) == 27 and sum(m.groups > 1 for m in convs) == 13  # conv1 + 13 x (depthwise, pointwise)
    assert [m.stride for m in convs].count(2) == 5
    assert all((m.lo, m.hi) == (0.0, 6.0) for m in net if isinstance(m, teachers.Clamp))  # Relu + Minimum(6)
    assert convs[-1].weight.shape == (1024, 1024, 1, 1)
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1024)
    # TF "SAME": the odd padding pixel goes after, so stride 2 on an even size pads (0, 1), not (1, 1)
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(112, 3, 1) == (1, 1)
    assert same_padding(7, 1, 1) == (0, 0)
    assert same_padding(7, 3, 2) == (1, 1)


def test_outputs_match_the_tfjs_reference(loaded):
    """Parity with the original implementations run by TF.js 4.22 (see teacher_parity.json beside this file)."""
    ref = json.loads(PARITY.read_text())
    dlib = loaded["dlib"]
    x = torch.from_numpy(astronaut_crop(150)).permute(2, 0, 1)[None].float()
    with torch.no_grad():  # that face-api.js build divides by 255; dlib (and Teacher.normalise) by 256
        out = dlib.net((x - x.new_tensor(teachers.DLIB_MEAN_RGB).view(1, 3, 1, 1)) / 255.0)[0].numpy()
    np.testing.assert_allclose(out, ref["dlib_output"], atol=2e-5)
    hse = loaded["hse"]
    assert hse.input_norm == "caffe_bgr"
    x = torch.from_numpy(astronaut_crop(224)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        out = hse(x)[0].numpy()
    np.testing.assert_allclose(out, ref["hse_output"], atol=2e-5)


# ---------------------------------------------------------------------------------------------- files

def _copy_models(tmp_path: Path) -> Path:
    """A models folder of links to the real teacher files plus SHA256SUMS, to break one file at a time."""
    root = tmp_path / "models"
    for spec in TEACHERS.values():
        (root / spec.folder).mkdir(parents=True)
        for name in spec.files:
            os.symlink(models_root() / spec.folder / name, root / spec.folder / name)
    shutil.copy(models_root() / "SHA256SUMS", root / "SHA256SUMS")
    return root


def test_missing_or_altered_files_raise_one_line(tmp_path):
    root = _copy_models(tmp_path)
    assert load_teacher("dlib", root).name == "dlib"  # the copy itself is fine
    weights = root / TEACHERS["dlib"].folder / TEACHERS["dlib"].files[1]
    weights.unlink()
    with pytest.raises(TeacherError, match="teacher file missing") as e:
        load_teacher("dlib", root)
    assert "\n" not in str(e.value) and str(weights) in str(e.value)
    weights.write_bytes(b"\0" * 64)
    with pytest.raises(TeacherError, match="sha256 differs"):
        load_teacher("dlib", root)
    (root / "SHA256SUMS").unlink()
    with pytest.raises(TeacherError, match="checksum list not found"):
        load_teacher("hse", root)
    with pytest.raises(TeacherError, match="unknown teacher"):
        load_teacher("arcface", root)
    assert issubclass(TeacherError, ValueError)


def test_models_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FANLIVE_MODELS", str(tmp_path))
    assert models_root() == tmp_path
    with pytest.raises(TeacherError, match="checksum list not found"):
        load_teacher("dlib")


# ----------------------------------------------------------------------------------------- crop contract

def test_embed_contract(loaded):
    t = loaded["dlib"]
    rgb = np.stack([astronaut_crop(150), astronaut_crop(150)[:, ::-1]])
    e = t.embed(rgb)
    assert e.shape == (2, 128) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(t.embed(rgb[..., ::-1].copy(), color="bgr"), e, atol=1e-6)  # BGR in, same result
    gray = cv2.cvtColor(rgb[0], cv2.COLOR_RGB2GRAY)
    np.testing.assert_allclose(t.embed(gray[None]), t.embed(gray[None, :, :, None]), atol=1e-6)
    np.testing.assert_allclose(t.embed(gray[None]), t.embed(np.repeat(gray[None, :, :, None], 3, -1)), atol=1e-6)
    bigger = t.embed(astronaut_crop(224)[None])  # resized to 150 inside: nearly the same face code
    assert float(bigger[0] @ e[0]) > 0.98
    assert float(e[0] @ e[1]) > 0.9  # a mirrored face is the same person
    with pytest.raises(ValueError, match="uint8"):
        t.embed(rgb.astype(np.float32))


# ------------------------------------------------------------------------------------------ CK+ identity

@pytest.fixture(scope="module")
def ck_identity(shared_data):
    """CK_SUBJECTS subjects spread over CK+48, 3 sequences each (apex frames), aligned by the app's alignment
    (MediaPipe) at each teacher's size in RGB."""
    samples = read_ckplus(shared_data / "ckplus48")
    by_subject = defaultdict(lambda: defaultdict(list))
    for s in samples:
        by_subject[s.subject][s.sequence].append(s)
    eligible = sorted(k for k, v in by_subject.items() if len(v) >= 3)
    chosen = eligible[::len(eligible) // CK_SUBJECTS][:CK_SUBJECTS]
    picks = [max(by_subject[subj][seq], key=lambda s: s.frame) for subj in chosen for seq in sorted(by_subject[subj])[:3]]
    paths = [p.path for p in picks]
    subjects = np.array([p.subject for p in picks])
    rgb = {}
    first = None
    for name, spec in TEACHERS.items():
        pre = Preprocess(input_size=spec.input_size, color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3)
        if first is None:
            first = align_images(paths, pre, progress=False)
            rgb[name] = first.crops
        else:  # the same landmarks, warped at this size (what facecache does for another input size)
            rgb[name] = align_from_landmarks(paths, first.landmarks, first.detected, first.fallback, pre,
                                             progress=False).crops
    assert first.detection_rate > 0.9
    return rgb, subjects


# measured on this set (8 x 3): dlib same 0.955 / different 0.915, NN 0.79; hse same 0.712 / different 0.481, NN 0.83
MIN_GAP = {"dlib": 0.02, "hse": 0.12}


@pytest.mark.parametrize("name", list(TEACHERS))
def test_same_subject_is_closer_than_different_subjects_on_ckplus(loaded, ck_identity, name):
    crops, subjects = ck_identity[0][name], ck_identity[1]
    teacher = loaded[name]
    teacher.embed(crops[:2])  # warm-up
    t0 = time.perf_counter()
    emb = teacher.embed(crops)
    ms = (time.perf_counter() - t0) / len(crops) * 1000
    sim = emb @ emb.T
    same = subjects[:, None] == subjects[None]
    off = ~np.eye(len(subjects), dtype=bool)
    s_same, s_diff = sim[same & off].mean(), sim[~same].mean()
    nn = np.where(off, sim, -np.inf).argmax(1)
    acc = float((subjects[nn] == subjects).mean())
    chance = 2 / (len(subjects) - 1)
    print(f"\n{name}: CK+ {len(set(subjects))} subjects x 3: cosine same {s_same:.3f} vs different {s_diff:.3f} "
          f"(gap {s_same - s_diff:.3f}, different-subject sd {sim[~same].std():.3f}); nearest-neighbour identity "
          f"{acc:.3f} (chance {chance:.3f}); {ms:.1f} ms/face on {torch.get_num_threads()} thread(s)")
    assert s_same - s_diff > MIN_GAP[name]
    assert acc >= 0.5  # chance is 2/23 = 0.087
