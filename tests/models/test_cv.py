"""The CK+ 10-fold CV (models/cv.py) on the real CK+48 data with a tiny real stage-1 embedder (conftest.py)."""
import cv2
import numpy as np
import pytest
import torch

import json

from models.cv import (CK_LABELS, CVConfig, clip_errors, clip_index, cv_command, finetune_joint, load_ckplus, main,
                       parse_args, parse_seeds, run_cv)
from models.networks.fan import AttentionType
from models.engine.checkpoints import load_embedder

pytestmark = pytest.mark.data


def test_ckplus_cv_one_fold(tiny_run, shared_data, cache_dir, tmp_path):
    cfg = CVConfig(embedder=str(tiny_run / "best.pt"), data=str(shared_data), cache_dir=str(cache_dir),
                   out=str(tmp_path / "cv"), folds=10, finetune_epochs=0, head_steps=20, limit_folds=1)
    result = run_cv(cfg)
    assert set(result["results"]) == {"score_fusion", "fan_self", "fan_relation"}
    assert "contempt" in CK_LABELS and len(CK_LABELS) == 7
    assert result["detection_rate"] > 0.9
    for r in result["results"].values():
        assert 0 <= r["accuracy"] <= 100 and len(r["per_fold"]) == 1
    figure = cv2.imread(str(tmp_path / "cv" / "cv_ckplus.png"))  # the table as a picture, beside the JSON
    assert figure is not None and figure.shape[1] > 2 * figure.shape[0]

    # compare: the same run twice counts every error twice, over the held-out clips of the one fold run
    errors = clip_errors([result, result])
    held_out = sum(p is not None for p in result["results"]["fan_relation"]["predictions"])
    assert errors["clips"] == held_out and errors["method_runs"] == 6
    misses = sum(p is not None and p != CK_LABELS[y] for r in result["results"].values()
                 for p, y in zip(r["predictions"], [CK_LABELS.index(s.split("/")[0].replace("happy", "happiness"))
                                                    for s in result["sequences"]]))
    assert sum(c["wrong"] for c in errors["per_clip"]) == 2 * misses
    assert all(c["wrong"] % 2 == 0 and c["of"] == 6 for c in errors["per_clip"])
    assert errors["wrong_in_most"] == sum(2 * c["wrong"] > c["of"] for c in errors["per_clip"])
    other = {**result, "sequences": result["sequences"][::-1]}
    with pytest.raises(ValueError):  # runs over different clip lists are not comparable
        clip_errors([result, other])


@pytest.mark.slow  # ~100-200 s each on 2 cores: whole-CK+ embedding passes; CI runs test_ckplus_cv_one_fold
def test_ckplus_cv_feature_cache_is_reused_and_keyed(tiny_run, shared_data, cache_dir, tmp_path):
    cfg = CVConfig(embedder=str(tiny_run / "best.pt"), data=str(shared_data), cache_dir=str(cache_dir),
                   out=str(tmp_path / "cv"), folds=10, finetune_epochs=0, head_steps=10, head_seeds=2,
                   aug_copies=2, limit_folds=1, feature_cache=str(tmp_path / "feats"))
    first = run_cv(cfg)
    cached = torch.load(tmp_path / "feats" / "fold0_ft0.pt", weights_only=True)
    assert cached["aug"].shape[1:] == (2, 512)
    second = run_cv(cfg)  # served from the cache: the same features, so the same table
    assert second["results"] == first["results"]
    # a different fine-tuning setting must not reuse the cached fold
    run_cv(CVConfig(**{**cfg.__dict__, "aug_copies": 3}))
    assert torch.load(tmp_path / "feats" / "fold0_ft0.pt", weights_only=True)["aug"].shape[1] == 3
    # a cache file cut short (a killed run) is recomputed, not a crash
    (tmp_path / "feats" / "fold0_ft0.pt").write_bytes(b"PK\x03\x04 truncated")
    third = run_cv(CVConfig(**{**cfg.__dict__, "aug_copies": 3}))
    assert third["results"]["score_fusion"]["per_fold"]


@pytest.mark.slow  # ~100-200 s each on 2 cores: whole-CK+ embedding passes; CI runs test_ckplus_cv_one_fold
def test_ckplus_cv_ensemble_of_finetunes(tiny_run, shared_data, cache_dir, tmp_path):
    """--finetune-seeds 0,1: one fine-tuned network per seed and fold; the members are cached separately and the
    ensemble differs from either member alone in its probabilities, not in its shape."""
    base = dict(embedder=str(tiny_run / "best.pt"), data=str(shared_data), cache_dir=str(cache_dir),
                folds=10, finetune_epochs=1, batch_size=64, head_steps=10, head_seeds=1, aug_copies=1,
                limit_folds=1, feature_cache=str(tmp_path / "feats"))
    one = run_cv(CVConfig(**base, out=str(tmp_path / "a"), finetune_seeds="1"))
    both = run_cv(CVConfig(**base, out=str(tmp_path / "b"), finetune_seeds="0,1"))
    assert sorted(p.name for p in (tmp_path / "feats").iterdir()) == ["fold0_ft0.pt", "fold0_ft1.pt"]
    a = torch.load(tmp_path / "feats" / "fold0_ft0.pt", weights_only=True)["feats"]
    b = torch.load(tmp_path / "feats" / "fold0_ft1.pt", weights_only=True)["feats"]
    assert not np.allclose(a.numpy(), b.numpy())  # different seeds really fine-tuned different networks
    assert "2 fine-tuned networks per fold" in both["protocol"]
    n = len(one["results"]["fan_relation"]["predictions"])
    assert n == len(both["sequences"]) == 327
    assert parse_seeds("0, 2") == [0, 2]
    for bad in ("", "1,1", "-1", "x"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


@pytest.mark.slow  # ~100-200 s each on 2 cores: whole-CK+ embedding passes; CI runs test_ckplus_cv_one_fold
def test_ckplus_cv_joint_finetuning(tiny_run, shared_data, cache_dir, tmp_path):
    """--joint: each FAN head is fine-tuned end to end with its own copy of the embedder on clips, so its features
    differ from the frame fine-tuning's (which score fusion keeps using)."""
    cfg = CVConfig(embedder=str(tiny_run / "best.pt"), data=str(shared_data), cache_dir=str(cache_dir),
                   out=str(tmp_path / "cv"), folds=10, finetune_epochs=1, head_seeds=1, aug_copies=1,
                   limit_folds=1, joint=True, feature_cache=str(tmp_path / "feats"))
    result = run_cv(cfg)
    names = sorted(p.name for p in (tmp_path / "feats").iterdir())
    assert names == ["fold0_ft0.pt", "fold0_ft0_joint_relation.pt", "fold0_ft0_joint_self.pt"]
    frame = torch.load(tmp_path / "feats" / "fold0_ft0.pt", weights_only=True)["feats"]
    joint = torch.load(tmp_path / "feats" / "fold0_ft0_joint_self.pt", weights_only=True)
    assert joint["feats"].shape == frame.shape and not np.allclose(joint["feats"].numpy(), frame.numpy())
    assert "alpha.weight" in joint["head"]
    for r in result["results"].values():
        assert len(r["per_fold"]) == 1 and 0 <= r["per_fold"][0] <= 100
    assert run_cv(cfg)["results"] == result["results"]  # served from the cache


def test_joint_finetuning_does_not_depend_on_what_ran_before(tiny_run, shared_data, cache_dir):
    """A joint member's head (initialisation, dropout) is seeded by its own seed, not by the process's global RNG:
    the same member is bit-identical whether it runs first or after other work in a multi-seed process."""
    base, pre, _ = load_embedder(tiny_run / "best.pt")
    aligned, ck_clips = load_ckplus(pre, shared_data, cache_dir, progress=False)
    clips, labels = clip_index(aligned, ck_clips)
    rows = np.concatenate(clips[:8])  # 8 real clips x 3 frames
    crops = torch.from_numpy(aligned.crops[rows])
    sub_clips = [np.arange(3 * i, 3 * i + 3) for i in range(8)]
    y = torch.from_numpy(labels[:8])
    cfg = CVConfig(finetune_epochs=1, batch_size=12)
    heads = []
    for before in (1, 2):
        torch.manual_seed(before)  # stands in for whatever an earlier member consumed
        _, head = finetune_joint(base, crops, sub_clips, y, AttentionType.RELATION, pre, cfg, seed=5)
        heads.append(head.state_dict())
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])
    _, other = finetune_joint(base, crops, sub_clips, y, AttentionType.RELATION, pre, cfg, seed=6)
    assert not torch.equal(other.state_dict()["alpha.weight"], heads[0]["alpha.weight"])


def test_compare_cli(tmp_path, capsys):
    """`python -m models.cv compare` on two small cv_ckplus.json files: a JSON summary on stdout, one error line
    for a file that is not a CV result."""
    seqs = ["anger/S010_004_00000017.png", "contempt/S148_002_00000013.png", "happy/S010_006_00000013.png"]

    def run(preds):
        return {"sequences": seqs, "results": {m: {"predictions": preds} for m in ("score_fusion", "fan_relation")}}

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cv_ckplus.json").write_text(json.dumps(run(["anger", "fear", "happiness"])))
    (tmp_path / "b.json").write_text(json.dumps(run(["sadness", "fear", "happiness"])))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["method_runs"], out["always_wrong"], out["wrong_in_most"]) == (4, 1, 1)
    assert out["per_clip"][0] == {"sequence": seqs[1], "label": "contempt", "wrong": 4, "of": 4, "as": {"fear": 4}}
    assert out["per_clip"][1]["as"] == {"sadness": 2} and len(out["per_clip"]) == 2
    assert out["accuracy_if_only_those_wrong"] == round(100 * 2 / 3, 2)
    (tmp_path / "bad.json").write_text("{}")
    assert main(["compare", str(tmp_path / "bad.json")]) == 1
    assert capsys.readouterr().err.startswith("error:")


def test_cv_command_reproduces_the_config():
    """The JSON and the model card record the command of each table; it must parse back to the same settings."""
    cfg = CVConfig(embedder="runs/x/swa.pt", finetune_seeds="0,1,2", joint=True, head_class_balance=False,
                   threads=1, out="runs/cv_x")
    cmd = cv_command(cfg)
    assert cmd.startswith("python -m models.cv ckplus ") and "--joint" in cmd and "--no-head-class-balance" in cmd
    assert "--data" not in cmd  # machine paths stay out
    assert parse_args(cmd.split()[3:]) == cfg
    assert cv_command(CVConfig()) == "python -m models.cv ckplus"
