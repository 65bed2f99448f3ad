"""app.signals.reliability: the shipped fit, its monotone score, refusals, and the fit chosen for a model."""
import json

import numpy as np
import pytest

from app import paths
from app.signals.reliability import DEFAULT_FILE, FEATURES, ReliabilityModel, feature_vector, sharpness

SHIPPED = paths.WEIGHTS_DIR / DEFAULT_FILE


def test_the_shipped_fit_scores_in_0_1_and_rises_and_falls_with_its_features():
    model = ReliabilityModel.load()
    base = dict(alpha=0.5, face_px=40.0, yaw=10.0, pitch=5.0, sharpness=4.0, confidence=0.6)
    r = model.score(**base)
    assert 0.0 < r < 1.0
    assert model.score(**{**base, "face_px": 120.0}) >= r
    assert model.score(**{**base, "sharpness": 6.0}) >= r
    assert model.score(**{**base, "confidence": 0.95}) >= r
    assert model.score(**{**base, "yaw": 60.0}) <= r
    assert model.score(**{**base, "pitch": 60.0}) <= r
    # the fit is not flat: a clear, large, frontal, confident face outscores a small, blurred, turned, unsure one
    assert model.score(0.9, 150, 0, 0, 6.5, 0.98) - model.score(0.1, 6, 70, 40, 1.0, 0.3) > 0.2


def test_feature_vector_clips_and_treats_an_unsolved_pose_as_frontal():
    v = feature_vector(0.5, 10_000.0, float("nan"), -200.0, 3.0, 0.7)
    assert v.shape == (len(FEATURES),)
    assert v[FEATURES.index("log_px")] == pytest.approx(9.0)       # 512 px at most
    assert v[FEATURES.index("abs_yaw")] == 0.0
    assert v[FEATURES.index("abs_pitch")] == pytest.approx(1.0)


def test_sharpness_is_lower_for_a_blurred_crop():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (64, 64), np.uint8)
    blurred = np.full_like(crop, int(crop.mean()))
    assert sharpness(crop) > sharpness(blurred) == 0.0


def test_a_fit_with_a_wrong_sign_or_other_features_is_refused_with_one_line(tmp_path):
    doc = json.loads(SHIPPED.read_text())
    bad = dict(doc, weights=[-abs(w) - 0.1 if f == "alpha" else w for f, w in zip(FEATURES, doc["weights"])])
    (tmp_path / "a.json").write_text(json.dumps(bad))
    with pytest.raises(RuntimeError, match="weight of alpha has the wrong sign"):
        ReliabilityModel.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps(dict(doc, features=["alpha"])))
    with pytest.raises(RuntimeError, match="cannot read the reliability model b.json: features"):
        ReliabilityModel.load(tmp_path / "b.json")


def test_the_fit_beside_a_card_is_used_and_a_fit_for_another_model_is_named(tmp_path):
    card = tmp_path / "other_embedder.json"
    shipped, note = ReliabilityModel.for_model(card, "other")  # no fit beside it: the shipped one, for another model
    assert shipped.record["model"] != "other"
    assert f"made for {shipped.record['model']}, not other" in note and "\n" not in note

    doc = json.loads(SHIPPED.read_text())
    (tmp_path / DEFAULT_FILE).write_text(json.dumps(dict(doc, model="other", bias=doc["bias"] - 1.0)))
    own, note = ReliabilityModel.for_model(card, "other")
    assert note is None
    assert own.bias == pytest.approx(shipped.bias - 1.0)


def test_the_shipped_model_and_its_fit_agree():
    name = json.loads(SHIPPED.read_text())["model"]
    card = paths.WEIGHTS_DIR / f"{name}_embedder.json"
    assert card.is_file() and ReliabilityModel.for_model(card, name)[1] is None
