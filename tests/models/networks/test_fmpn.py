"""FMPN: the mask generator and prior fusion, FMPN's own CK+ masks and the proxy masks, one real two-stage training
run that lowers both losses, and torch-vs-ONNX Runtime parity of the exported FMPN embedder."""
import json

import numpy as np
import pytest
import torch

from app.emotions import EMOTIONS
from app.faces.align import Preprocess
from models.networks.fmpn import (FMPN_EYES, FMPN_MASK_ORDER, FmpnEmbedder, FmpnTrainConfig, MaskGenerator,
    export_fmpn, fmpn_from_embedder, proxy_masks, read_fmpn_masks, train_fmpn, warp_to_template)
from models.data.loading import CK_LABELS
from models.experiments.fmpn_runs import read_fold_ids
from models.networks.fan import ResNet18Embedder


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_generator_gives_a_mask_in_0_1_at_the_input_size():
    torch.manual_seed(0)
    mask = MaskGenerator(ngf=4, n_blocks=1)(torch.randn(2, 1, 32, 32))
    assert mask.shape == (2, 1, 32, 32)
    assert (mask > 0).all() and (mask < 1).all()


def test_a_fresh_prior_leaves_the_warm_started_classifier_unchanged():
    torch.manual_seed(0)
    plain = ResNet18Embedder(in_chans=3).eval()
    fmpn = fmpn_from_embedder(plain.state_dict(), in_chans=3, ngf=4, n_blocks=1).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fmpn.forward_features(x), plain.forward_features(x), atol=1e-6)
        torch.nn.init.normal_(fmpn.fusion.mix[-1].weight, std=0.5)  # once the fusion has learnt, the mask matters
        assert not torch.allclose(fmpn.forward_features(x), plain.forward_features(x), atol=1e-3)
    with pytest.raises(ValueError, match="do not fit"):
        fmpn_from_embedder({"fc.weight": torch.zeros(7, 512)}, in_chans=3)


@pytest.mark.data
def test_fmpn_ck_masks_are_read_in_the_project_label_order(shared_data):
    folds = shared_data / "ckplus48" / "folds" / "fmpn"
    masks = read_fmpn_masks(folds, 3, 32, CK_LABELS)
    assert masks.shape == (7, 32, 32) and 0 <= masks.min() and masks.max() <= 1
    from PIL import Image
    contempt = np.asarray(Image.open(folds / "masks" / "3" / f"{FMPN_MASK_ORDER.index('contempt')}.png")
                          .convert("L").resize((32, 32), Image.BILINEAR), np.float32) / 255
    assert np.allclose(masks[CK_LABELS.index("contempt")].numpy(), contempt)
    test_ids = read_fold_ids(folds, "test", 3)
    assert test_ids and all(n.endswith(".png") for n in test_ids)
    assert not set(test_ids) & set(read_fold_ids(folds, "train", 3))


def test_warp_moves_fmpn_eye_points_onto_the_app_template():
    src, size = FMPN_EYES, 64
    dst = Preprocess(input_size=size).template[:2]
    mask = torch.zeros(1, 70, 70)
    for x, y in src:  # a bright 3x3 dot on each of FMPN's eye points
        cx, cy = int(x * 70), int(y * 70)
        mask[0, cy - 1:cy + 2, cx - 1:cx + 2] = 1.0
    out = warp_to_template(mask, src, dst, size)[0]
    for x, y in dst:  # each dot lands within a pixel of the template's eye
        cx, cy = x * size - 0.5, y * size - 0.5
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        near = ((xs - cx) ** 2 + (ys - cy) ** 2) < 4 ** 2
        w = out * near
        assert w.sum() > 0.5
        assert abs(float((w * xs).sum() / w.sum()) - cx) < 1.0 and abs(float((w * ys).sum() / w.sum()) - cy) < 1.0
    assert out[:4].sum() == 0  # above FMPN's crop: no motion


def test_proxy_masks_mark_where_a_class_differs_from_neutral():
    neutral, happy = EMOTIONS.index("neutral"), EMOTIONS.index("happiness")
    crops = np.full((6, 16, 16, 3), 100, np.uint8)
    crops[3:, 10:14, 4:12] = 200  # "happiness" images: a brighter mouth region
    labels = np.array([neutral] * 3 + [happy] * 3)
    masks = proxy_masks(torch.from_numpy(crops), labels, len(EMOTIONS), neutral)
    assert masks.shape == (7, 16, 16)
    assert torch.all(masks[happy, 10:14, 4:12] == 1) and masks[happy].sum() == 32
    assert masks[neutral].abs().sum() == 0 and masks[EMOTIONS.index("fear")].abs().sum() == 0  # none of fear
    with pytest.raises(ValueError, match="neutral"):
        proxy_masks(torch.from_numpy(crops[3:]), labels[3:], len(EMOTIONS), neutral)


def test_two_stage_training_lowers_the_mask_and_class_losses():
    torch.manual_seed(0)
    pre = Preprocess(input_size=32, color="rgb")
    g = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (8, 32, 32, 3), generator=g, dtype=torch.uint8)
    labels = torch.arange(8) % 2
    masks = torch.stack([torch.zeros(32, 32), torch.ones(32, 32)]) * 0.8 + 0.1
    model = FmpnEmbedder(in_chans=3, num_classes=2, ngf=4, n_blocks=1)
    cfg = FmpnTrainConfig(gen_epochs=4, epochs=4, batch_size=8, lr=1e-3, gen_lr=1e-3, gen_pretrain_lr=1e-2)
    curves = train_fmpn(model, crops, labels, masks, pre, cfg)
    assert len(curves["generator_mse"]) == 4 and len(curves["joint_ce"]) == 4
    assert curves["generator_mse"][-1] < curves["generator_mse"][0]
    assert curves["joint_ce"][-1] < curves["joint_ce"][0]
    assert not model.training  # left in eval mode


def test_fmpn_exports_with_onnxruntime_parity(tmp_path):
    from app.recognition.card import load_card
    from models.release.export import verify_parity

    torch.manual_seed(0)
    pre = Preprocess(input_size=32, color="rgb")
    model = FmpnEmbedder(in_chans=3, ngf=4, n_blocks=1).eval()
    with torch.no_grad():  # a fusion that uses the mask (a fresh one adds exactly zero)
        torch.nn.init.normal_(model.fusion.mix[-1].weight, std=0.3)
    card_path = export_fmpn(model, pre, tmp_path, "fmpn_test")
    load_card(card_path)  # a card the app loads
    info = json.loads(card_path.read_text())["fmpn"]  # what the graph holds, for a reader of the card
    assert info["generator_ngf"] == 4 and info["generator_blocks"] == 1
    from models.networks.fan import FanHead
    head = FanHead("self", dim=512)
    with torch.no_grad():
        head.alpha.weight.zero_()
        head.alpha.bias.zero_()
        head.classifier.load_state_dict(model.fc.state_dict())
    diffs = verify_parity(model, {"self": head.eval()}, card_path, atol=1e-4)
    assert max(diffs.values()) <= 1e-4
