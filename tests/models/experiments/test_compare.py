"""models/experiments/compare.py (the one-table comparison) and models/experiments/probe.py (the corruption probe): the real fold file, the
corruptions, and the table built end to end from a small feature set (features are what the cache holds)."""
import json

import numpy as np
import pytest
import torch

from models.experiments.compare import CompareConfig, format_tables, read_folds
from models.experiments.probe import CORRUPTIONS, corrupt, other_face_rows, replace_frames


@pytest.mark.data
def test_the_emotion_fan_folds_cover_every_ckplus_sequence(shared_data):
    from models.data.datasets import ckplus_clips, read_ckplus

    clips = ckplus_clips(read_ckplus(shared_data / "ckplus48"), keep_unlabeled=True)
    folds = read_folds(shared_data / "ckplus48/folds/emotionfan_10fold.txt", clips)
    assert len(folds) == 327 and set(folds) == set(range(10))
    for f in range(10):  # subject-independent: no subject in two folds
        inside = {c.subject for c, fo in zip(clips, folds) if fo == f}
        outside = {c.subject for c, fo in zip(clips, folds) if fo != f}
        assert not inside & outside


def test_corruptions_change_the_crop_where_they_should():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    blur = corrupt(x, "blur", g)
    assert blur.std() < 0.5 * x.std()
    occ = corrupt(x, "occlusion", g)
    assert torch.equal(occ[..., :20, :], x[..., :20, :]) and float(occ[..., 40:60, 20:50].abs().max()) == 0
    assert corrupt(x, "dark", g).mean() < 0.2 * x.mean()
    with pytest.raises(ValueError):
        corrupt(x, "rain", g)


def test_replace_frames_hits_k_frames_per_clip_at_the_same_places_every_time():
    clips, repl = torch.zeros(5, 8, 4), torch.ones(5, 8, 4)
    a = replace_frames(clips, repl, 3, seed=1)
    assert (a[..., 0].sum(1) == 3).all() and torch.equal(a, replace_frames(clips, repl, 3, seed=1))
    other = other_face_rows(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 2, 3, 4]), 0)
    assert all(np.array([0, 0, 1, 1, 2])[other] != np.array([0, 0, 1, 1, 2]))


@pytest.fixture
def small_features():
    """Features with class structure (a class mean plus noise), shaped as the cache stores them."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(7, 512, generator=g) * 2

    def feats(labels, copies):
        return centres[labels][:, None] + torch.randn(len(labels), copies, 512, generator=g)

    tr_y = torch.arange(140) % 7
    valid = {}
    for name in ("ferplus_valid", "rafdb_val"):
        y = torch.arange(35) % 7
        f = feats(y, 3)
        valid[name] = {"feats": f, "strength": torch.tensor([[0.0, 0.0, 0.8]]).repeat(35, 1), "labels": y,
                       "corrupt": {k: f[:, 0] * 0.1 for k in ("blur", "occlusion", "dark")}}
    # CK+: 40 clips of 3 frames, 2 clips per subject, the real fold file's layout replaced by 2 folds
    ck_y = torch.arange(40) % 7
    ck_frames = feats(ck_y, 3).reshape(120, 512)
    return {"train": {"feats": feats(tr_y, 2), "labels": tr_y}, "valid": valid,
            "ckplus": {"feats": ck_frames, "aug": ck_frames[:, None] + 0.1 * torch.randn(120, 2, 512, generator=g),
                       "corrupt": {k: ck_frames * 0.1 for k in ("blur", "occlusion", "dark")},
                       "index": torch.arange(120).reshape(40, 3), "labels": ck_y,
                       "names": [f"S{i // 2:03d}_{i % 2:03d}" for i in range(40)],
                       "subjects": [f"S{i // 2:03d}" for i in range(40)]},
            "frame_fc": {"weight": centres / 50, "bias": torch.zeros(7)}}


def test_the_table_is_built_from_cached_features(small_features, tmp_path, monkeypatch):
    import models.experiments.compare as compare

    folds = tmp_path / "folds.txt"
    folds.write_text("1-fold\n" + "".join(f"S{i:03d}/00{j} x\n" for i in range(10) for j in range(2)) +
                     "2-fold\n" + "".join(f"S{i:03d}/00{j} x\n" for i in range(10, 20) for j in range(2)))
    torch.set_num_threads(1)
    monkeypatch.setattr(compare, "load_features", lambda cfg: small_features)
    monkeypatch.setattr(compare, "feature_key", lambda cfg: "test")
    (tmp_path / "emb.pt").write_bytes(b"x")
    cfg = CompareConfig(embedder=str(tmp_path / "emb.pt"), data=str(tmp_path), folds="folds.txt", seeds=[0],
                        epochs=2, batch_size=32, ck_steps=30, clip_length=4, probe_frames=2, limit_folds=1,
                        out=str(tmp_path / "out"), extras=False)
    result = compare.run_compare(cfg)
    seed = result["per_seed"][0]
    ck, st = seed["ckplus"], seed["stage2"]
    assert set(ck) == set(st) == set(cfg.heads) | {"ensemble"}
    assert ck["relation"] > 50 and st["fusion"]["frame"]["ferplus_valid"] > 50  # class structure is learnable
    assert set(seed["ckplus_probe"]["gru"]) == {"clean", *CORRUPTIONS}
    table = format_tables(result)
    assert table.count("\n| ") >= 2 * 7 and "ensemble" in table and (tmp_path / "out" / "compare.md").is_file()
    # seeds run in separate processes merge into one table (here: the same run relabelled as seed 1)
    other = json.loads((tmp_path / "out" / "compare.json").read_text())
    other["per_seed"][0]["seed"], other["config"]["seeds"] = 1, [1]
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "compare.json").write_text(json.dumps(other))
    assert compare.main(["merge", str(tmp_path / "out"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    merged = json.loads((tmp_path / "m" / "compare.json").read_text())
    assert merged["config"]["seeds"] == [0, 1] and all(len(r["ckplus"]) == 2 for r in merged["rows"])
    assert compare.main(["merge", str(tmp_path / "out"), str(tmp_path / "out"), "--out", str(tmp_path / "x")]) == 1
