"""models.release.warmstart: a trainer checkpoint rebuilt from an exported embedder reproduces the graph's features."""
import numpy as np
import pytest
import torch

from app.recognition.card import load_card
from app.recognition.recognizer import Embedder
from app.faces.align import to_network_input
from models.release.warmstart import WarmStartError, embedder_from_onnx


@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_rebuilt_embedder_equals_the_onnx_graph(request, color):
    card = load_card(request.getfixturevalue(f"random_{color}_model"))
    rng = np.random.default_rng(0)
    shape = (64, 64, 3) if color == "rgb" else (64, 64)
    calib = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(64)]
    crops = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(6)]
    pre = card.preprocess
    model = embedder_from_onnx(card.embedder_file, card.head_files["self"], pre,
                               torch.from_numpy(to_network_input(calib, pre)))
    with torch.no_grad():
        ours = model.forward_features(torch.from_numpy(to_network_input(crops, pre))).numpy()
    theirs = Embedder(card, "cpu").embed(crops)
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())
    # train mode (batch statistics) starts near the eval output: the BN layers were re-created from real statistics
    model.train()
    with torch.no_grad():
        x = torch.from_numpy(to_network_input(calib, pre))
        train_out = model._features(x)
        model.eval()
        eval_out = model._features(x)
    assert ((train_out - eval_out).abs().mean() / eval_out.abs().mean()) < 0.05


def test_a_head_graph_is_not_an_embedder(random_gray_model):
    card = load_card(random_gray_model)
    with pytest.raises(WarmStartError, match="no fused weights"):
        embedder_from_onnx(card.head_files["self"], None, card.preprocess, torch.zeros(2, 1, 64, 64))
