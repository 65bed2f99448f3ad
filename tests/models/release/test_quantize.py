"""models.release.quantize: the int8 embedder is listed in the card, chosen on the CPU, and reads like the float graph."""
import json
import shutil

import cv2
import numpy as np
import pytest

from app.recognition.card import ModelError, file_sha256, load_card
from app.faces.detect import DetectorConfig, FaceMeshDetector
from app.recognition.recognizer import Embedder, FanHeadRunner, find_default_model
from app.faces.align import align_face
from models.release.export import update_cards
from models.release.quantize import add_int8, main as quantize_main


def _cosine(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def exported(random_rgb_model):
    """The run's random-init RGB model; tests that change it take a copy (random_model)."""
    return random_rgb_model


@pytest.fixture
def random_model(exported, tmp_path):
    folder = shutil.copytree(exported.parent, tmp_path / "model")
    return folder / exported.name


@pytest.fixture(scope="module")
def video_crops(videos):
    """Aligned crops of real faces: every 4th frame of the WolfgangLanger clip, through the app's own path."""
    card = load_card(find_default_model())
    crops = []
    cap = cv2.VideoCapture(str(videos / "WolfgangLanger_Pexels.mp4"))
    with FaceMeshDetector(DetectorConfig(video=False)) as det:
        i = 0
        while len(crops) < 40:
            ok, frame = cap.read()
            if not ok:
                break
            if i % 4 == 0:
                crops += [align_face(frame, f.landmarks5, card.preprocess) for f in det.detect(frame)]
            i += 1
    cap.release()
    assert len(crops) >= 20
    return crops


def test_shipped_int8_embedder_reads_like_fp32(video_crops):
    card = load_card(find_default_model())
    assert card.embedder_int8_file is not None and card.embedder_int8_file.is_file()
    assert card.sha256[card.embedder_int8_file.name] == file_sha256(card.embedder_int8_file)
    record = card.extra["quantization"]
    assert record["calibration"]["n"] >= 256 and "FER+ Train" in record["calibration"]["sets"]
    assert record["agreement"]["same_label"] >= 0.95
    fp32, int8 = Embedder(card, "cpu", precision="fp32"), Embedder(card, "cpu")
    assert (fp32.precision, int8.precision) == ("fp32", "int8")  # auto on the CPU runs the int8 graph
    a, b = fp32.embed(video_crops), int8.embed(video_crops)
    cos = _cosine(a, b)
    assert cos.min() > 0.98, cos.min()
    head = FanHeadRunner(card, card.default_head)
    pa = np.stack([head.run(x[None])[0] for x in a])
    pb = np.stack([head.run(x[None])[0] for x in b])
    assert np.mean(pa.argmax(1) == pb.argmax(1)) >= 0.9
    assert np.abs(pa - pb).max() < 0.25


def test_int8_is_refused_where_it_cannot_run(exported):
    card = load_card(exported)
    with pytest.raises(ModelError, match="no int8 embedder"):
        Embedder(card, "cpu", precision="int8")
    assert Embedder(card, "cpu").precision == "fp32"  # auto without an int8 graph: the float one
    with pytest.raises(ValueError, match="precision"):
        Embedder(card, "cpu", precision="fp16")


def test_add_int8_lists_the_graph_in_every_card(random_model, video_crops):
    card_path = random_model
    out = add_int8(card_path, video_crops[:16], video_crops[16:24])
    card = load_card(card_path)
    assert card.embedder_int8_file == out and out.name.endswith("_embedder_int8.onnx")
    for onnx_path in (card.embedder_file, out, *card.head_files.values()):  # every card names the same files
        doc = json.loads(onnx_path.with_suffix(".json").read_text())
        assert doc["files"]["embedder_int8"] == out.name and doc["sha256"][out.name] == file_sha256(out)
    assert json.loads(out.with_suffix(".json").read_text())["role"] == "embedder_int8"
    agreement = card.extra["quantization"]["agreement"]
    assert agreement["n"] == 8 and agreement["feature_cosine_mean"] > 0.9
    emb = Embedder(card, "cpu")
    assert emb.precision == "int8" and emb.file == out
    assert _cosine(emb.embed(video_crops[:8]), Embedder(card, "cpu", precision="fp32").embed(video_crops[:8])).min() > 0.9
    # a later card update keeps the int8 graph and its hash
    update_cards(card_path, {"metrics": {"note": "x"}})
    assert load_card(out).embedder_int8_file == out
    # a replaced int8 file is caught by its hash
    out.write_bytes(out.read_bytes()[:-10])
    with pytest.raises(ModelError, match="corrupt"):
        load_card(card_path)


def test_cli_quantizes_from_training_crops(random_model, tmp_path, shared_data, capsys):
    card_path = random_model
    rc = quantize_main(["--weights", str(card_path), "--data", str(shared_data), "--cache-dir", str(tmp_path / "cache"),
                        "--calibration", "8", "--limit", "12", "--quiet"])
    assert rc == 0
    card = load_card(card_path)
    calib = card.extra["quantization"]["calibration"]
    assert calib["n"] == 8 and calib["limit"] == 12
    assert "wrote" in capsys.readouterr().out
    assert quantize_main(["--weights", str(tmp_path / "missing.json")]) == 1
