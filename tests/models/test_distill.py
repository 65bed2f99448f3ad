"""Distillation: teacher features cached once per crop set, a real distillation step lowers the loss, and the
pretrain CLI writes a checkpoint that models.train loads and warm starts from."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.faces.align import Preprocess
from models import distill
from models.data.datasets import read_ckplus
from models.distill import DistillHead, distill_step, teacher_features
from models.data.facecache import cached_aligned_set
from models.networks.fan import ResNet18Embedder
from models.networks.teachers import load_teacher
from models.engine.checkpoints import load_checkpoint, load_embedder
from models.data.loading import normalise, to_input
from models.train import FramesConfig, train_frames

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_torch_thread")]

STUDENT = Preprocess(input_size=64, color="gray", mean=(0.5,), std=(0.5,))


@pytest.fixture(scope="module")
def dlib():
    return load_teacher("dlib")


@pytest.fixture(scope="module")
def ck64(shared_data, cache_dir):
    """64 CK+48 frames spread over the set, aligned for the student (64 px gray) through the crop cache."""
    samples = read_ckplus(shared_data / "ckplus48")
    subset = samples[::len(samples) // 64][:64]
    return cached_aligned_set(subset, STUDENT, cache_dir, "ckplus_distill_test", progress=False)


def test_teacher_features_rewarp_at_the_teachers_size_and_are_cached(dlib, ck64, tmp_path, monkeypatch):
    feats = teacher_features(dlib, ck64, tmp_path, "ck", progress=False)
    assert feats.shape == (64, 128) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    # the teacher saw the same alignment at 150 px RGB, not the student's 64 px gray crop blown up
    pre = distill.teacher_preprocess(dlib, ck64)
    assert (pre.input_size, pre.color, pre.template) == (150, "rgb", ck64.pre.template)
    crops = distill._teacher_crops(dlib, ck64, pre, 0, 4)
    assert crops.shape == (4, 150, 150, 3)
    np.testing.assert_allclose(dlib.embed(crops), feats[:4], atol=1e-5)
    files = list(tmp_path.glob("teacher_dlib_ck_*.npz"))
    assert len(files) == 1

    def no_embedding(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(dlib, "embed", no_embedding)
    np.testing.assert_array_equal(teacher_features(dlib, ck64, tmp_path, "ck", progress=False), feats)
    monkeypatch.undo()
    moved = ck64.select(np.arange(len(ck64)))
    moved.landmarks = moved.landmarks + 1.0  # another alignment is another key
    assert distill.features_key(dlib, moved) != distill.features_key(dlib, ck64)


def test_teacher_features_resume_from_a_partial_file(dlib, ck64, tmp_path, monkeypatch):
    monkeypatch.setattr(distill, "WARP_CHUNK", 16)
    monkeypatch.setattr(distill, "PARTIAL_EVERY", 16)
    full = teacher_features(dlib, ck64, tmp_path, "ck", progress=False, use_cache=False)
    key = distill.features_key(dlib, ck64)
    path = distill.features_path(tmp_path, dlib, "ck", key)
    partial = path.with_name(path.stem + ".partial.npz")
    np.savez(partial, key=np.array(key), done=np.array(32), features=full[:32])
    calls = []
    embed = dlib.embed
    monkeypatch.setattr(dlib, "embed", lambda crops, **kw: calls.append(len(crops)) or embed(crops, **kw))
    np.testing.assert_allclose(teacher_features(dlib, ck64, tmp_path, "ck", progress=False), full, atol=1e-6)
    assert sum(calls) == 32 and path.is_file() and not partial.exists()


def test_distill_step_lowers_the_loss(dlib, ck64, tmp_path):
    torch.manual_seed(0)
    targets = torch.from_numpy(teacher_features(dlib, ck64, tmp_path, "ck", progress=False))
    x = normalise(to_input(torch.from_numpy(ck64.crops[:32]), STUDENT), STUDENT)
    student = ResNet18Embedder(in_chans=1)
    head = DistillHead(dlib.embed_dim)
    opt = torch.optim.Adam([*student.parameters(), *head.parameters()], lr=1e-3)
    losses = [distill_step(student, head, x, targets[:32], opt) for _ in range(12)]
    print(f"\ndistill loss over 12 steps on 32 CK+ crops: {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[0] > 0.5  # a random projection is far from the teacher (cosine near 0)
    assert np.mean(losses[-3:]) < 0.5 * losses[0]
    with torch.no_grad():
        assert head(student.forward_features(x[:2])).shape == (2, 128)


def test_pretrain_cli_writes_a_frames_checkpoint(shared_data, cache_dir, tmp_path):
    out = tmp_path / "distill"
    argv = ["pretrain", "--teacher", "dlib", "--datasets", "ckplus", "--limit", "48", "--epochs", "2",
            "--batch-size", "16", "--holdout", "0.25", "--threads", "1", "--data", str(shared_data),
            "--cache-dir", str(cache_dir), "--out", str(out)]
    assert distill.main(argv) == 0
    ck = load_checkpoint(out / "last.pt")
    assert int(ck["epoch"]) == 1 and json.loads(ck["teacher"])["name"] == "dlib"
    assert json.loads(ck["preprocess"]) == STUDENT.to_dict()
    assert json.loads(ck["config"])["datasets"] == "ckplus"
    model, pre, _ = load_embedder(out / "last.pt")
    assert pre == STUDENT and isinstance(model, ResNet18Embedder)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(-1 <= x["holdout_cosine"] <= 1 for x in lines)
    assert (out / "best.pt").is_file() and json.loads((out / "config.json").read_text())["stage"] == "distill"
    # --resume with nothing left to do keeps the checkpoint; a warm start of stage 1 accepts it
    assert distill.main(argv + ["--resume"]) == 0
    frames = train_frames(FramesConfig(data=str(shared_data), cache_dir=str(cache_dir), out=str(tmp_path / "frames"),
                                       epochs=1, batch_size=16, limit_train=32, limit_valid=32, init=str(out / "last.pt"),
                                       threads=1, seed=0))
    assert (frames / "last.pt").is_file()


def test_bad_arguments_are_one_line_errors(capsys, tmp_path):
    assert distill.main(["pretrain", "--datasets", "affectnet", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: unknown dataset 'affectnet'")
    with pytest.raises(SystemExit):
        distill.main(["pretrain", "--teacher", "arcface"])
