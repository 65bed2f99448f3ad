"""Temperature fitting on the validation domains through the app's path, written into every card of a model."""
import json
import shutil

import numpy as np
import pytest

from app.recognition.card import load_card
from models.release.calibrate import calibrate, fit_halves, main


def test_fit_halves_are_fixed_and_half():
    a = fit_halves(11)
    assert a.sum() == 5 and np.array_equal(a, fit_halves(11)) and not np.array_equal(a, fit_halves(11, seed=1))


def test_calibrate_lowers_the_nll_of_an_overconfident_head():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 4000)
    logits = rng.normal(0, 1, (4000, 7))
    logits[np.arange(4000), y] += 1.0
    p = np.exp(4 * logits) / np.exp(4 * logits).sum(1, keepdims=True)  # right 60%, but very confident
    result = calibrate({"relation": {"a": p}}, {"a": y}, ["a"])["relation"]
    assert result["temperature"] > 2
    assert result["ece"]["a"]["after"] < result["ece"]["a"]["before"] / 3


def test_cli_writes_applied_temperatures_into_every_card(random_rgb_model, shared_data, cache_dir, tmp_path,
                                                           capsys):
    model = shutil.copytree(random_rgb_model.parent, tmp_path / "model") / random_rgb_model.name
    assert main(["--weights", str(model), "--data", str(shared_data), "--cache-dir", str(cache_dir),
                 "--limit", "24", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ECE raw" in out and "CK+48 frames" in out
    cards = sorted(model.parent.glob("*.json"))
    temps = [json.loads(c.read_text())["calibration"]["temperatures"] for c in cards]
    assert all(t == temps[0] for t in temps) and set(temps[0]) == {"relation", "self"}
    assert load_card(model).temperatures == pytest.approx(temps[0])
    assert {json.loads(c.read_text())["role"] for c in cards} == {"embedder", "head"}
