"""FAER options: the CC block's shape and residual, SE at the same place, centre loss, one real training step per
option that lowers the loss, and torch-vs-ONNX Runtime parity of an exported CC embedder."""
import pytest
import torch
import torch.nn.functional as F

from app.faces.align import Preprocess
from models.networks.faer import (AttentiveEmbedder, CenterLoss, ContextualChannelAttention, SqueezeExcitation,
    feature_map_sizes, insertion_point, load_backbone)
from models.networks.fan import FanHead, ResNet18Embedder


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def test_cc_block_keeps_the_shape_and_is_a_residual():
    torch.manual_seed(0)
    x = torch.randn(3, 32, 4, 5)
    block = ContextualChannelAttention(32, groups=4)
    _randomise(block)
    y = block(x)
    assert y.shape == x.shape
    assert not torch.allclose(y, x, atol=1e-3)  # with a non-zero V the block changes X
    with torch.no_grad():  # zero V projection -> R * 0 + X: exactly the input
        block.value.weight.zero_()
        block.value.bias.zero_()
    assert torch.equal(block(x), x)
    assert torch.equal(ContextualChannelAttention(32)(x), x)  # and that is how a fresh block starts


def test_cc_weights_are_a_softmax_over_positions_for_each_channel():
    torch.manual_seed(0)
    block = ContextualChannelAttention(16, groups=4)
    _randomise(block, seed=1)
    with torch.no_grad():  # V = the identity map: Y - X is then R * X, so R = (Y - X) / X
        block.value.weight.copy_(torch.eye(16).view(16, 16, 1, 1))
        block.value.bias.zero_()
    x = torch.rand(2, 16, 3, 3) + 0.5
    r = (block(x) - x) / x
    assert torch.allclose(r.sum((2, 3)), torch.ones(2, 16), atol=1e-5)
    assert (r > 0).all()


def test_se_block_starts_as_identity_and_scales_channels_only():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 4, 4)
    se = SqueezeExcitation(32)
    assert torch.allclose(se(x), x)
    _randomise(se)
    ratio = se(x) / x  # one factor per (sample, channel), in (0, 2)
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-4)
    assert (ratio > 0).all() and (ratio < 2).all()


def test_insertion_point_is_measured_from_the_map_sizes():
    assert feature_map_sizes(64)["layer3"][1:] == (4, 4)
    assert feature_map_sizes(64)["layer4"][1:] == (2, 2)
    assert insertion_point(64) == "layer3"   # layer4 is 2x2 at the app's input: not bigger than 2x2
    assert insertion_point(112) == "layer4"  # 4x4 there


def test_center_loss_is_half_the_squared_distance_and_moves_centres():
    loss = CenterLoss(3, 2, alpha=0.5)
    f = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    y = torch.tensor([0, 0, 1, -1])  # -1: unlabelled, ignored
    first = loss(f, y)  # centres start at the first batch's class means: (2, 0) and (0, 2)
    assert torch.allclose(loss.centers[:2], torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    assert first.item() == pytest.approx(0.5 * (1 + 1 + 0) / 3)
    g = torch.tensor([[4.0, 0.0]])
    loss(g, torch.tensor([0]))  # Wen's rule: c0 -= 0.5 * (c0 - 4) / 2 -> (2.5, 0)
    assert torch.allclose(loss.centers[0], torch.tensor([2.5, 0.0]))
    loss.eval()
    before = loss.centers.clone()
    assert loss(g, torch.tensor([0])).item() == pytest.approx(0.5 * 1.5 ** 2)
    assert torch.equal(loss.centers, before)  # eval: no update
    feats = g.clone().requires_grad_(True)
    loss(feats, torch.tensor([0])).backward()
    assert torch.allclose(feats.grad, torch.tensor([[1.5, 0.0]]))  # d/df 1/2 ||f - c||^2 = f - c


@pytest.mark.parametrize("block,center", [("cc", False), ("none", True), ("se", False)])
def test_a_real_training_step_lowers_the_loss(block, center):
    torch.manual_seed(0)
    model = AttentiveEmbedder(in_chans=3, block=block, after="layer3")
    load_backbone(model, ResNet18Embedder(in_chans=3).state_dict())
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 7
    closs = CenterLoss(7, 512)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()

    def loss_now():
        f = model.forward_features(x)
        ce = F.cross_entropy(model.forward_head(f), y)
        return ce + 0.01 * closs(f, y) if center else ce

    losses = []
    for _ in range(4):
        loss = loss_now()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    if block != "none":
        assert model.attn.state_dict()  # the block's own weights exist and were trained
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.attn.parameters())


def test_load_backbone_rejects_foreign_weights():
    model = AttentiveEmbedder(in_chans=3, block="cc")
    with pytest.raises(ValueError, match="do not fit"):
        load_backbone(model, {"fc.weight": torch.zeros(7, 512)})


def test_cc_embedder_exports_with_onnxruntime_parity(tmp_path):
    from models.release.export import export_model, verify_parity

    torch.manual_seed(0)
    pre = Preprocess(input_size=64, color="rgb")
    model = AttentiveEmbedder(in_chans=3, block="cc", after=insertion_point(64)).eval()
    _randomise(model.attn, seed=2)  # a trained-looking block, not the identity it starts as
    head = FanHead("self", dim=512).eval()
    card = export_model(model, {"self": head}, tmp_path, "cc", pre, window_length=4, default_head="self")
    diffs = verify_parity(model, {"self": head}, card, atol=1e-4)
    assert max(diffs.values()) <= 1e-4
    other = AttentiveEmbedder(in_chans=3, block="cc").eval()  # the check can fail
    _randomise(other.attn, seed=3)
    from app.recognition.card import ModelError
    with pytest.raises(ModelError):
        verify_parity(other, {"self": head}, card)


@pytest.mark.data
def test_stage1_trainer_takes_cc_attention_and_center_loss(shared_data, cache_dir, tmp_path):
    """`python -m models.train frames --cc-attention --center-loss` on a tiny real FER+ subset: the checkpoint
    records the architecture, load_embedder rebuilds it, the block was trained and the centres are kept."""
    from models.engine.checkpoints import load_embedder
    from models.train import FramesConfig, main, train_frames

    cfg = FramesConfig(data=str(shared_data), cache_dir=str(cache_dir), out=str(tmp_path), epochs=1, batch_size=64,
                       limit_train=192, limit_valid=64, lr=0.05, seed=0, datasets=["ferplus"], cc_attention=True,
                       center_loss=True)
    train_frames(cfg)
    model, pre, ck = load_embedder(tmp_path / "best.pt")
    assert isinstance(model, AttentiveEmbedder) and model.block == "cc" and model.after == insertion_point(64, 1)
    assert model.attn.value.weight.abs().sum() > 0  # moved away from its identity start
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert bool(last["center"]["initialised"].any()) and last["center"]["centers"].abs().sum() > 0
    assert main(["frames", "--cc-attention", "--se-attention", "--out", str(tmp_path / "x")]) == 1  # one block


def _run(variant, seed, fer, raf):
    return {"variant": variant, "seed": seed, "block": variant.split("-")[0],
            "ferplus_valid": {"accuracy": fer, "macro_f1": fer - 0.1},
            "rafdb_val": {"accuracy": raf, "macro_f1": raf - 0.1}}


def test_ablation_tables_pair_each_variant_with_the_baseline_of_its_seed(tmp_path, monkeypatch):
    import json

    import models.networks.faer as faer
    from models.experiments.faer_ablation import format_ablation

    rows = [_run("none-ce", 0, 0.80, 0.70), _run("none-ce", 1, 0.82, 0.72),
            _run("cc-center", 0, 0.81, 0.70), _run("cc-center", 1, 0.85, 0.72)]
    table = format_ablation(rows, ["ferplus_valid", "rafdb_val"])
    assert "| none-ce | 2 | 81.00 ± 1.00 |" in table
    assert "| cc-center | 2 | +2.00 ± 1.00 | +2.00 ± 1.00 | +0.00 ± 0.00 |" in table  # paired: +1 and +3 points
    runs = tmp_path / "runs.jsonl"
    runs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    monkeypatch.setattr(faer, "ABLATION_RUNS", str(runs))
    got = {r["option"]: r for r in faer.compare_rows(None)}
    assert set(got) == {"faer-none-ce", "faer-cc-center"}
    assert got["faer-cc-center"]["ferplus_valid"] == pytest.approx([81.0, 85.0])
    assert got["faer-cc-center"]["parameters"] > got["faer-none-ce"]["parameters"]
    monkeypatch.setattr(faer, "ABLATION_RUNS", str(tmp_path / "missing.jsonl"))
    assert "not measured" in faer.compare_rows(None)[0]["paper"]
