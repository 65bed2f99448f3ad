"""Head choice (app/recognition/heads.py): the heads a card offers, the ensemble, and a headless replay with a head chosen from the
card. The model is the shipped embedder with the ABAW2021 heads added beside it (models.release.export.add_heads)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from app.recognition.card import load_card
from app.recognition.heads import ENSEMBLE_MEMBERS, HeadRunner, available_heads, head_choices
from app.recognition.recognizer import FanHeadRunner, find_default_model
from app.paths import ROOT


def test_choices_follow_the_card_keys():
    assert head_choices(["relation", "self"]) == ("fan", "self")
    assert head_choices(["relation", "fusion", "gru-causal"]) == ("fan", "fusion", "gru-causal")
    assert head_choices(ENSEMBLE_MEMBERS + ("gru",))[-1] == "ensemble"


@pytest.fixture(scope="module")
def all_heads(tmp_path_factory) -> Path:
    """The shipped model copied to a temp folder, plus seeded fusion, GRU and transformer heads."""
    from models.release.export import add_heads
    from models.networks.heads import build_head

    shipped = load_card(find_default_model())
    out = tmp_path_factory.mktemp("weights")
    for f in shipped.path.parent.glob(f"{shipped.name}_*"):
        shutil.copy(f, out / f.name)
    torch.manual_seed(0)
    new = {n: build_head(n).eval() for n in ("fusion", "gru", "gru-causal", "transformer")
           if n not in shipped.head_files}
    if new:
        add_heads(out / shipped.path.name, new, {"training": {"test_heads": "seeded random, tests only"}})
    return out / shipped.path.name


def test_the_card_lists_the_added_heads_and_keeps_the_embedder(all_heads):
    card = load_card(all_heads)  # verifies every SHA-256
    shipped = load_card(find_default_model())
    assert available_heads(card) == ("fan", "self", "fusion", "gru", "gru-causal", "transformer", "ensemble")
    assert card.sha256[card.embedder_file.name] == shipped.sha256[shipped.embedder_file.name]
    assert card.default_head == shipped.default_head


def test_the_ensemble_is_the_mean_of_its_members_with_equal_weights(all_heads):
    card = load_card(all_heads)
    runner = HeadRunner(card, "ensemble", FanHeadRunner)
    x = np.random.default_rng(0).uniform(0, 2, (6, card.embed_dim)).astype(np.float32)
    probs, alpha, weight = runner.run(x)
    want = np.mean([FanHeadRunner(card, m).run(x)[0] for m in ENSEMBLE_MEMBERS], axis=0)
    assert np.allclose(probs, want, atol=1e-6) and np.allclose(weight, 1 / 6) and np.allclose(alpha, 1 / 6)
    assert runner.strip.equal and not runner.strip.alpha
    fan = HeadRunner(card, "fan", FanHeadRunner)
    assert fan.key == "relation" and fan.strip.alpha


def test_a_card_without_the_members_has_no_ensemble(all_heads, tmp_path):
    from app.recognition.card import ModelError

    for f in all_heads.parent.iterdir():  # the model, its card edited to drop the transformer head
        shutil.copy(f, tmp_path / f.name)
    d = json.loads((tmp_path / all_heads.name).read_text())
    del d["files"]["heads"]["transformer"]
    (tmp_path / all_heads.name).write_text(json.dumps(d))
    card = load_card(tmp_path / all_heads.name)
    assert "ensemble" not in available_heads(card) and "transformer" not in available_heads(card)
    with pytest.raises(ModelError, match="no transformer head"):
        HeadRunner(card, "ensemble", FanHeadRunner)


@pytest.mark.data
def test_headless_replay_runs_the_head_chosen_from_the_card(all_heads, videos, tmp_path):
    head = "transformer"
    csv, doc = tmp_path / "r.csv", tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "main.py", "--no-window", "--quiet", "--video",
                           str(videos / "single_face.mp4"), "--weights", str(all_heads), "--head", head,
                           "--window", "6", "--export", str(csv), "--export", str(doc)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(csv)
    assert json.loads(doc.read_text())["metadata"]["head"] == head
    assert len(df) > 30 and (df[[c for c in df.columns if c.startswith("p_")]].sum(1) - 1).abs().max() < 1e-3
    # the newest frame's weight is the transformer's attention to itself: a share of the window, not an equal one
    full = df[df.index >= 10]  # past the first window
    assert (full["weight"] > 0).all() and (full["weight"] < 1).all()
    assert not np.allclose(full["weight"], 1 / 6, atol=1e-3) and np.allclose(full["alpha"], full["weight"])
