"""Torch -> ONNX export: parity with ONNX Runtime, one self-contained file per graph, cards that load and catch
corruption, the CLI on a trainer-format checkpoint, and export_checkpoint (the same export without an argv)."""
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from app.recognition.card import ModelError, file_sha256, load_card
from app.emotions import EMOTIONS
from models.release.export import (ExportOptions, export_checkpoint, export_model, main, random_model,
    verify_parity)


@pytest.fixture(scope="module")
def exported(random_gray_model):
    card_path = random_gray_model
    embedder, heads, pre = random_model()  # the same seeded weights export_random_model wrote
    return card_path, embedder, heads, pre


def test_parity_torch_vs_onnxruntime(exported):
    card_path, embedder, heads, _ = exported
    diffs = verify_parity(embedder, heads, card_path, atol=1e-4)
    expected = {"embedder_B1", "embedder_B3"} | {f"head_{a}_T{t}" for a in ("relation", "self") for t in (1, 5, 16)}
    assert set(diffs) == expected
    assert all(0 <= v <= 1e-4 for v in diffs.values()), diffs


def test_parity_check_can_fail(exported):
    card_path, *_ = exported
    other_embedder, other_heads, _ = random_model(seed=1)  # different weights than the exported ones
    with pytest.raises(ModelError, match="differs from torch"):
        verify_parity(other_embedder, other_heads, card_path)


def test_graphs_have_dynamic_axes_and_run_at_other_sizes(exported):
    card_path, embedder, _, _ = exported
    card = load_card(card_path)
    emb = ort.InferenceSession(str(card.embedder_file), providers=["CPUExecutionProvider"])
    (inp,), (out,) = emb.get_inputs(), emb.get_outputs()
    assert (inp.name, out.name) == ("crops", "features")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [1, 64, 64] and out.shape[1] == 512
    x = np.random.default_rng(5).standard_normal((7, 1, 64, 64), dtype=np.float32)  # a batch size not exported
    with torch.no_grad():
        want = embedder.forward_features(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(emb.run(None, {"crops": x})[0], want, atol=1e-4)

    head = ort.InferenceSession(str(card.head_file("self")), providers=["CPUExecutionProvider"])
    assert [o.name for o in head.get_outputs()] == ["probs", "alpha", "weight"]
    b, t = head.get_inputs()[0].shape[:2]
    assert isinstance(b, str) and isinstance(t, str)
    probs, alpha, weight = head.run(None, {"features": np.random.default_rng(6).random((4, 23, 512), np.float32)})
    assert probs.shape == (4, 7) and alpha.shape == weight.shape == (4, 23)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(weight.sum(1), 1, atol=1e-5)


def test_each_graph_is_one_self_contained_file(exported):
    card_path, *_ = exported
    folder = card_path.parent
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"random_test_{s}.{e}" for s in ("embedder", "head_relation", "head_self")
                           for e in ("onnx", "json"))  # no .data, no leftover .tmp
    for f in folder.glob("*.onnx"):
        proto = onnx.load(str(f), load_external_data=False)
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert (folder / "random_test_embedder.onnx").stat().st_size > 40e6  # the ResNet18 weights are inside


def test_cards_load_and_describe_the_whole_model(exported):
    card_path, *_ = exported
    folder = card_path.parent
    card = load_card(card_path)
    assert card.labels == EMOTIONS and card.embed_dim == 512
    assert card.preprocess.input_size == 64 and card.preprocess.color == "gray"
    assert card.window_length == 16 and card.window_stride == 1 and card.default_head == "relation"
    assert set(card.head_files) == {"relation", "self"}
    assert card.extra["random_init"] is True
    for f in (card.embedder_file, *card.head_files.values()):
        assert card.sha256[f.name] == file_sha256(f)
    raw = {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}
    roles = {n: d.pop("role") for n, d in raw.items()}
    assert roles == {"random_test_embedder.json": "embedder", "random_test_head_relation.json": "head",
                     "random_test_head_self.json": "head"}
    assert len({json.dumps(d, sort_keys=True) for d in raw.values()}) == 1  # same content except role
    assert load_card(folder / "random_test_head_self.onnx").embedder_file == card.embedder_file  # any file names it


def test_corrupt_onnx_byte_fails_the_card(exported, tmp_path):
    card_path, *_ = exported
    folder = shutil.copytree(card_path.parent, tmp_path / "copy")
    onnx_file = folder / "random_test_head_relation.onnx"
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt"):
        load_card(folder / "random_test_embedder.json")


def test_export_rejects_inconsistent_inputs(tmp_path):
    embedder, heads, pre = random_model()
    rgb = random_model(color="rgb")[2]
    with pytest.raises(ValueError, match="channel"):
        export_model(embedder, heads, tmp_path, "x", rgb, 16)
    with pytest.raises(ValueError, match="default head"):
        export_model(embedder, {"self": heads["self"]}, tmp_path, "x", pre, 16)
    with pytest.raises(ValueError, match="override"):
        export_model(embedder, heads, tmp_path, "x", pre, 16, extra={"labels": ["a"]})
    assert not list(tmp_path.iterdir())


def test_cli_exports_a_trainer_checkpoint(tmp_path):
    embedder, heads, pre = random_model(seed=3)
    # The trainer's stage-2 model.pt: state dicts plus JSON strings (weights_only checkpoints hold no dicts of
    # arbitrary objects).
    ck = {"embedder": embedder.state_dict(), "heads": {a: h.state_dict() for a, h in heads.items()},
          "preprocess": json.dumps(pre.to_dict()), "config": json.dumps({"clip_length": 8, "epochs": 1}),
          "results": json.dumps({"relation": {"final_loss": 1.5}}), "hardware": "test cpu"}
    torch.save(ck, tmp_path / "model.pt")
    out = tmp_path / "weights"
    rc = main(["--checkpoint", str(tmp_path / "model.pt"), "--out", str(out), "--name", "fan_test",
               "--window-length", "12", "--stride", "2", "--head", "self"])
    assert rc == 0
    card = load_card(out / "fan_test_embedder.json")
    assert (card.window_length, card.window_stride, card.default_head) == (12, 2, "self")
    assert "random_init" not in card.extra
    assert card.extra["metrics"]["results"]["relation"]["final_loss"] == 1.5
    assert card.extra["training"]["config"]["clip_length"] == 8
    assert card.extra["command"].startswith("python -m models.release.export --checkpoint")
    assert card.extra["created"]

    torch.save({"embedder": embedder.state_dict(), "preprocess": json.dumps(pre.to_dict())}, tmp_path / "best.pt")
    assert main(["--checkpoint", str(tmp_path / "best.pt"), "--out", str(out), "--name", "frames_only"]) == 1
    assert not list(out.glob("frames_only*"))


def test_export_checkpoint_takes_the_options_and_records_their_command(tmp_path):
    embedder, heads, pre = random_model(seed=4)
    torch.save({"embedder": embedder.state_dict(), "heads": {a: h.state_dict() for a, h in heads.items()},
                "preprocess": json.dumps(pre.to_dict())}, tmp_path / "model.pt")
    opts = ExportOptions(name="lib", checkpoint=tmp_path / "model.pt", out=tmp_path / "w", heads=["self"],
                         verify=False, flip_average=False)
    result = export_checkpoint(opts, fields={"training": {"recipe": "test"}})
    assert result.heads == ("self",) and result.parity is None
    assert result.report() == f"wrote {result.card} (+ 1 head(s))"
    card = load_card(result.card)
    assert card.default_head == "self" and list(card.head_files) == ["self"]
    assert card.extra["training"]["recipe"] == "test" and "checkpoint" in card.extra["training"]
    assert card.extra["command"] == opts.command() == (
        f"python -m models.release.export --name lib --checkpoint {tmp_path / 'model.pt'} --out {tmp_path / 'w'} "
        "--heads self --no-verify --no-flip-average")
    with pytest.raises(ValueError, match="name"):
        export_checkpoint(ExportOptions(checkpoint=tmp_path / "model.pt"))


def test_attention_is_an_alias_of_head_and_a_disagreement_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--random-init", "--name", "x", "--out", str(tmp_path), "--head", "relation", "--attention", "self"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --attention self") and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
