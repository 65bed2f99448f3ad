"""ONNX Runtime inference on a real exported (seeded random-init) model: windows, outputs, providers, failures."""
import json
import shutil
import subprocess
import sys

from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest

from app.recognition import recognizer as inference
from app.recognition.card import ModelError, file_sha256, load_card
from app.emotions import EMOTIONS
from app.faces.detect import Face
from app.recognition.recognizer import (Embedder, FanHeadRunner, FeatureWindow, Prediction, Recognizer,
    find_default_model, select_providers)
from app.paths import ROOT

CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def card_path(random_gray_model):
    return random_gray_model


@pytest.fixture
def model_copy(card_path, tmp_path):
    """A private copy of the model to damage."""
    return shutil.copytree(card_path.parent, tmp_path / "model") / card_path.name


def cuda_really_works(onnx_file) -> bool:
    """Ground truth from onnxruntime itself: does a session asked for CUDA come up with it?"""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    s = ort.InferenceSession(str(onnx_file), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    return "CUDAExecutionProvider" in s.get_providers()


def faces_for(rng, track_ids, size=64):
    return [Face(box=[10, 10, 50, 50], landmarks5=np.zeros((5, 2)), track_id=t,
                 crop=rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for t in track_ids]


def check_prediction(p: Prediction, window_len: int):
    assert p.probs.shape == (7,) and p.probs.dtype == np.float32
    assert abs(p.probs.sum() - 1) < 1e-5
    assert p.label == EMOTIONS[int(np.argmax(p.probs))] and p.confidence == pytest.approx(p.probs.max())
    assert p.alpha.shape == p.weight.shape == p.frame_indices.shape == (window_len,)
    assert np.all((p.alpha > 0) & (p.alpha < 1))
    assert abs(p.weight.sum() - 1) < 1e-5 and np.all(p.weight > 0)
    assert len(p.crops) == window_len


def test_recognizer_windows_grow_then_slide(card_path):
    rec = Recognizer(card_path, device="cpu", window_length=8)
    rng = np.random.default_rng(0)
    for frame in range(20):
        tracks = [1, 2] if frame >= 5 else [1]  # track 2 appears at frame 5
        step = rec.step(frame, faces_for(rng, tracks))
        preds = step.predictions
        assert [p.track_id for p in preds] == tracks
        for p in preds:
            start = 0 if p.track_id == 1 else 5
            n = min(frame - start + 1, 8)
            check_prediction(p, n)
            assert len(rec.windows[p.track_id]) == n
            assert p.frame_indices.tolist() == list(range(frame - n + 1, frame + 1))
        assert set(step.timings) == {"embed", "head"} and step.timings["embed"] > 0
    rec.drop([1])
    assert set(rec.windows) == {2}
    rec.reset()
    assert rec.windows == {}


def test_stride_reuses_the_last_prediction(card_path):
    rec = Recognizer(card_path, device="cpu", stride=3)
    rng = np.random.default_rng(1)
    preds = [rec.step(f, faces_for(rng, [4])).predictions[0] for f in range(7)]
    ran = [f for f in range(7) if f == 0 or preds[f] is not preds[f - 1]]
    assert ran == [0, 3, 6]
    assert preds[2].frame_indices.tolist() == [0]
    assert preds[3].frame_indices.tolist() == [0, 1, 2, 3]


def test_step_rejects_faces_without_crop_or_track(card_path):
    rec = Recognizer(card_path, device="cpu")
    rng = np.random.default_rng(2)
    untracked = faces_for(rng, [-1])
    with pytest.raises(ValueError, match="track id"):
        rec.step(0, untracked)
    with pytest.raises(ValueError, match="track id"):
        rec.step(0, faces_for(rng, [3, 3]))
    no_crop = [replace(faces_for(rng, [1])[0], crop=None)]
    with pytest.raises(ValueError, match="crop"):
        rec.step(0, no_crop)
    with pytest.raises(ValueError, match="112x112"):
        rec.step(0, faces_for(rng, [1], size=112))


def test_embedder_and_head_equal_torch(card_path):
    import torch

    from app.faces.align import to_network_input
    from models.release.export import random_model
    from models.networks.fan import FanExportWrapper

    embedder_t, heads_t, pre = random_model()  # the weights export_random_model wrote
    card = load_card(card_path)
    rng = np.random.default_rng(3)
    crops = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(5)]  # gray crops, as warp_face gives
    feats = Embedder(card, "cpu").embed(crops)
    with torch.no_grad():
        want = embedder_t.forward_features(torch.from_numpy(to_network_input(crops, pre))).numpy()
    assert feats.shape == (5, 512) and feats.dtype == np.float32
    assert np.abs(feats - want).max() <= 1e-4

    for att in ("relation", "self"):
        probs, alpha, weight = FanHeadRunner(card, att, "cpu").run(feats)
        with torch.no_grad():
            tp, ta, tw = (v[0].numpy() for v in FanExportWrapper(heads_t[att])(torch.from_numpy(feats)[None]))
        for got, ref in ((probs, tp), (alpha, ta), (weight, tw)):
            assert np.abs(got - ref).max() <= 1e-4


def test_providers_report_what_actually_runs(card_path, monkeypatch, capfd):
    head_file = load_card(card_path).head_file("self")
    cuda = cuda_really_works(head_file)
    inference.cuda_failure.cache_clear()  # make this test try CUDA itself
    capfd.readouterr()
    rec = Recognizer(card_path, device="auto")
    if not cuda:  # this machine: CUDA may be listed, but the session falls back to the CPU and says so
        assert rec.providers == CPU
        if "CUDAExecutionProvider" in ort.get_available_providers():
            assert rec.fallback_reason  # one line, e.g. "libcublasLt.so.13: cannot open shared object file ..."
            assert "\n" not in rec.fallback_reason
            assert "CUDA" not in capfd.readouterr().err  # onnxruntime's multi-line log is replaced by that line
        with pytest.raises(ModelError, match="CUDA requested but"):
            Recognizer(card_path, device="cuda")
    else:
        assert rec.providers[0] == "CUDAExecutionProvider"
        assert Recognizer(card_path, device="cuda").providers[0] == "CUDAExecutionProvider"
    assert Recognizer(card_path, device="cpu").providers == CPU


def test_select_providers(monkeypatch):
    assert select_providers("cpu") == CPU
    auto = select_providers("auto")
    assert auto[-1] == "CPUExecutionProvider"
    assert (auto[0][0] == "CUDAExecutionProvider") == ("CUDAExecutionProvider" in ort.get_available_providers())
    with pytest.raises(ValueError):
        select_providers("gpu")
    monkeypatch.setattr(ort, "get_available_providers", lambda: CPU)
    assert select_providers("auto") == CPU
    with pytest.raises(ModelError, match="CUDA requested but"):
        select_providers("cuda")


def test_card_graph_mismatch_is_a_model_error(model_copy):
    d = json.loads(model_copy.read_text())
    d["preprocess"]["input_size"] = 112
    model_copy.write_text(json.dumps(d))
    with pytest.raises(ModelError, match="card says 112x112 gray but graph expects 64x64 gray"):
        Recognizer(model_copy, device="cpu")


@pytest.mark.parametrize("victim", ["random_test_embedder.onnx", "random_test_head_relation.onnx"])
def test_corrupt_onnx_is_a_model_error(model_copy, victim):
    bad = model_copy.parent / victim
    bad.write_text("this is not an ONNX model\n")
    d = json.loads(model_copy.read_text())
    d["sha256"][victim] = file_sha256(bad)  # the card agrees, so only onnxruntime can notice
    model_copy.write_text(json.dumps(d))
    with pytest.raises(ModelError, match=f"cannot load {victim}") as info:
        Recognizer(model_copy, device="cpu")
    assert "\n" not in str(info.value)


def test_missing_head_is_a_model_error(card_path):
    d = json.loads(card_path.read_text())
    assert set(d["files"]["heads"]) == {"relation", "self"}
    with pytest.raises(ModelError, match="no 'bogus' attention head"):
        Recognizer(card_path, device="cpu", head="bogus")


def test_find_default_model_never_returns_random_weights(card_path, tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(card_path.parent, weights)
    with pytest.raises(ModelError, match="no trained weights in weights/"):
        find_default_model(weights)
    with pytest.raises(ModelError, match="no trained weights"):
        find_default_model(tmp_path / "nowhere")
    d = json.loads(card_path.read_text())
    for name, created in (("old", "2026-01-01T00:00:00+00:00"), ("new", "2026-06-01T00:00:00+00:00")):
        trained = {k: v for k, v in d.items() if k != "random_init"} | {"name": name, "created": created}
        (weights / f"{name}_embedder.json").write_text(json.dumps(trained))
        head = trained | {"role": "head"}
        (weights / f"{name}_head_relation.json").write_text(json.dumps(head))
    newest = weights / "random_test_z_embedder.json"  # newer, but random weights: never the default
    newest.write_text(json.dumps(d | {"created": "2027-01-01T00:00:00+00:00"}))
    assert find_default_model(weights) == weights / "new_embedder.json"


def test_feature_window_and_prediction_checks():
    w = FeatureWindow(3)
    for i in range(5):
        w.push(i, np.full(512, i, np.float32), crop=np.zeros((2, 2), np.uint8))
    assert len(w) == 3 and w.maxlen == 3
    assert w.frames.tolist() == [2, 3, 4] and w.features()[:, 0].tolist() == [2, 3, 4] and len(w.crops) == 3
    ok = {"track_id": 1, "probs": np.full(7, 1 / 7), "label": "neutral", "confidence": 1 / 7, "alpha": [0.5, 0.5],
          "weight": [0.5, 0.5], "frame_indices": [0, 1]}
    Prediction(**ok)
    for bad in ({"probs": np.full(7, 0.2)}, {"probs": np.full(6, 1 / 6)}, {"label": "contempt"}, {"alpha": [0.5]},
                {"crops": [None]}):
        with pytest.raises(ValueError):
            Prediction(**(ok | bad))


def test_importing_inference_pulls_in_neither_torch_nor_qt():
    code = "import app.recognition.recognizer, sys; assert 'torch' not in sys.modules and 'PySide6' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr


def _with_temperatures(card_file, temperatures, applied=True):
    for f in card_file.parent.glob("*.json"):
        d = json.loads(f.read_text())
        d["calibration"] = {"applied": applied, "temperatures": temperatures}
        f.write_text(json.dumps(d))


def test_calibrated_probabilities_use_the_cards_temperature(model_copy):
    from app.recognition.card import temperature_scale

    _with_temperatures(model_copy, {"relation": 0.5, "self": 2.0})
    rng = np.random.default_rng(3)
    faces = faces_for(rng, [1])
    raw = Recognizer(model_copy, device="cpu", calibrated=False)
    cal = Recognizer(model_copy, device="cpu")
    assert (raw.temperature, cal.temperature) == (1.0, 0.5)
    p_raw = raw.step(0, faces).predictions[0]
    p_cal = cal.step(0, faces).predictions[0]
    check_prediction(p_cal, 1)
    assert p_cal.label == p_raw.label and p_cal.confidence > p_raw.confidence  # T < 1 sharpens, same label
    np.testing.assert_allclose(p_cal.probs, temperature_scale(p_raw.probs, 0.5), atol=1e-6)
    assert Recognizer(model_copy, device="cpu", head="self").temperature == 2.0


def test_a_reported_but_unapplied_or_bad_temperature(model_copy):
    _with_temperatures(model_copy, {"relation": 0.5}, applied=False)
    assert load_card(model_copy).temperatures == {}
    for bad in ({"relation": 0.0}, {"relation": float("nan")}, {"lstm": 1.2}, {}):
        _with_temperatures(model_copy, bad)
        with pytest.raises(ModelError, match="calibration"):
            load_card(model_copy)
