"""The model shipped in weights/: a real trained model with an honest card, and plausible labels on real faces."""
import json
import re

import numpy as np
import pytest

from app.recognition.card import load_card
from app.emotions import EMOTIONS
from app.recognition.recognizer import find_default_model


@pytest.fixture(scope="module")
def card():
    return load_card(find_default_model())  # verifies the SHA-256 of every graph against the card


def test_card_is_a_trained_model_with_metrics(card):
    assert not card.extra.get("random_init")
    assert card.labels == EMOTIONS
    assert {"relation", "self"} <= set(card.head_types)
    metrics = card.extra["metrics"]
    # every head has its validation numbers: trained with the release (metrics.results), or added beside it later
    # (models.release add-heads, whose lineage travels in training.added_heads)
    for head in card.head_types:
        if head in metrics.get("added_heads", {}):
            assert "added_heads" in card.extra["training"]
        else:
            assert 0.5 < metrics["results"][head]["valid_single_frame"]["accuracy"] <= 1.0, head
    assert 0.5 < metrics["ferplus_valid"]["accuracy"] <= 1.0
    assert "command" in card.extra and "training" in card.extra
    assert "research use" in card.extra["licence"]  # RAF-DB's terms travel with the weights
    assert {"ferplus_valid", "rafdb_val", "ckplus_frames"} <= set(metrics["suite"])


def test_readme_and_results_state_the_cards_numbers(card):
    """The README's headline and docs/results.md's FER+, CK+ and suite tables quote the shipped model card, so a
    re-release cannot leave stale numbers."""
    from app.paths import ROOT

    readme = (ROOT / "README.md").read_text()
    results = (ROOT / "docs" / "results.md").read_text()
    tables = results[results.index("## The shipped model: the tables the README headlines"):]
    metrics = card.extra["metrics"]
    fer = metrics["ferplus_valid"]
    headline = f"| FAN (relation head), shipped | **{100 * fer['accuracy']:.2f}%** | **{fer['macro_f1']:.3f}** |"
    assert headline in readme and headline in tables
    ck = metrics["ckplus_10fold"]
    rows = {"score_fusion": "score fusion", "fan_self": "FAN without relation-attention", "fan_relation": "FAN"}
    for key, name in rows.items():
        assert re.search(rf"^\| {name} \| \**{ck[key]['mean_fold_accuracy']:.2f}%\** \| {ck[key]['paper']:.2f}% \|$",
                         tables, re.M), name
    # the evaluation suite's table (FER+ Valid, RAF-DB val, CK+48 frames) is quoted row for row
    from models.evaluate import format_suite

    suite = {k: v for k, v in metrics["suite"].items() if isinstance(v, dict)}
    for row in format_suite(suite).splitlines()[2:]:
        assert row in tables, row
    # the card's CV command (flags in any order) is one of the tables' command lines
    flags = re.findall(r"--[\w-]+(?: [^-\s]\S*)?", ck["command"])
    assert any(line.startswith("python -m models.cv ckplus") and all(f in line for f in flags)
               for line in tables.splitlines()), ck["command"]


def test_smiling_astronaut_is_happy(card, astronaut_bgr):
    from app.faces.detect import DetectorConfig, FaceMeshDetector
    from app.recognition.recognizer import Embedder, FanHeadRunner
    from app.faces.align import align_face

    with FaceMeshDetector(DetectorConfig(video=False)) as det:
        face = det.detect(astronaut_bgr)[0]
    crop = align_face(astronaut_bgr, face.landmarks5, card.preprocess)
    feats = Embedder(card, "cpu").embed([crop])
    probs, alpha, weight = FanHeadRunner(card, None, "cpu").run(feats)
    assert EMOTIONS[int(np.argmax(probs))] == "happiness", dict(zip(EMOTIONS, probs.round(3)))


@pytest.mark.data
def test_wolfgang_labels_are_not_constant(card, videos, tmp_path):
    from app.pipeline import PipelineConfig
    from app.runs.replay import replay

    out = tmp_path / "w.json"
    replay(videos / "WolfgangLanger_Pexels.mp4", [out], PipelineConfig(weights=card.path), progress=False)
    rows = json.loads(out.read_text())["rows"]
    labels = [r["label"] for r in rows]
    assert len(set(labels)) >= 2, set(labels)
    p = np.array([r["probs"] if "probs" in r else [r[f"p_{e}"] for e in EMOTIONS] for r in rows])
    assert p.std(0).max() > 0.02  # the distribution moves with the face
