"""The stage-2 head registry (models/networks/heads.py) and the ABAW2021 temporal heads (models/networks/temporal.py): positional
encoding along time, causality, masks, a real training step per head on real CK+ features, torch vs ONNX parity."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.recognition.card import HEAD_TYPES
from models.networks.heads import HEADS, HeadExportWrapper, build_head, new_head, parameter_count, train_head
from models.networks.temporal import GruHead, TransformerHead, sinusoidal_encoding


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_registry_names_match_the_card_head_types():
    assert set(HEADS) == set(HEAD_TYPES)
    with pytest.raises(ValueError, match="unknown head"):
        build_head("lstm")


def test_positional_encoding_varies_along_time_and_not_along_the_batch():
    head = TransformerHead(dim=8, d=16, heads=2)
    pe = head.positional_encoding(torch.randn(3, 5, 8))
    assert pe.shape == (3, 5, 16)
    assert torch.equal(pe[0], pe[1]) and torch.equal(pe[0], pe[2])  # every clip of the batch: the same encoding
    for t in range(1, 5):
        assert not torch.allclose(pe[0, t], pe[0, t - 1])  # every frame of a clip: its own encoding
    assert torch.allclose(pe[0, :, 0], torch.sin(torch.arange(5.0)))  # channel 0 is sin(position)
    assert torch.allclose(sinusoidal_encoding(torch.zeros(1, 1), 4), torch.tensor([[[0.0, 1.0, 0.0, 1.0]]]))


def test_causal_gru_output_at_t_ignores_later_frames_and_the_bidirectional_one_does_not():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 32)
    later = x.clone()
    later[:, 4:] = torch.randn(2, 2, 32) * 3
    causal = GruHead(dim=32, d=16, causal=True).eval()
    a, b = causal.forward_steps(x), causal.forward_steps(later)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6) and not torch.allclose(a[:, 4:], b[:, 4:])
    bidir = GruHead(dim=32, d=16, causal=False).eval()
    assert not torch.allclose(bidir.forward_steps(x)[:, :4], bidir.forward_steps(later)[:, :4])
    # the window's outputs: causal reads the newest frame, bidirectional the centre one
    logits, alpha, weight = causal(x)
    assert torch.allclose(logits, a[:, -1]) and torch.allclose(weight, torch.full((2, 6), 1 / 6))
    assert torch.allclose(bidir(x)[0], bidir.forward_steps(x)[:, 3])


@pytest.mark.parametrize("name", ["gru", "gru-causal", "transformer", "relation", "fusion"])
def test_a_clip_padded_at_the_end_predicts_like_the_clip_alone(name):
    torch.manual_seed(1)
    head = build_head(name, 32, 7).eval()
    x = torch.randn(1, 3, 32).abs()
    padded = torch.cat([x, torch.zeros(1, 4, 32)], 1)
    mask = torch.tensor([[1.0, 1, 1, 0, 0, 0, 0]])
    with torch.no_grad():
        want, got = head(x), head(padded, mask)
    assert torch.allclose(got[2][:, :3], want[2], atol=1e-5) and float(got[2][:, 3:].abs().max()) < 1e-5
    if name != "gru":  # the bidirectional GRU's backward pass sees the edge padding (the last frame held still)
        assert torch.allclose(torch.softmax(want[0], -1), torch.softmax(got[0], -1), atol=1e-5)


def test_transformer_attention_is_the_newest_frames_row_averaged_over_heads():
    torch.manual_seed(2)
    head = TransformerHead(dim=32, d=16, heads=4).eval()
    x = torch.randn(2, 5, 32)
    _, att = head.forward_steps(x)
    _, alpha, weight = head(x)
    assert torch.allclose(weight, att[:, :, -1].mean(1)) and torch.allclose(weight.sum(1), torch.ones(2))
    assert torch.equal(alpha, weight)


@pytest.fixture(scope="module")
def ckplus_features(shared_data):
    """Real features: the shipped embedder on 40 CK+48 clips (3 frames each, resized to its input; no alignment)."""
    import cv2

    from app.recognition.card import load_card
    from app.recognition.recognizer import Embedder, find_default_model
    from models.data.datasets import ckplus_clips, read_ckplus

    card = load_card(find_default_model())
    emb = Embedder(card, device="cpu", threads=1)
    clips = [c for c in ckplus_clips(read_ckplus(shared_data / "ckplus48")) if c.label is not None][::7][:40]
    s = card.preprocess.input_size
    crops = [cv2.cvtColor(cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (s, s)), cv2.COLOR_GRAY2BGR)
             for c in clips for f in c.frames]
    feats = torch.from_numpy(emb.embed(crops)).view(len(clips), 3, -1)
    return feats, torch.tensor([int(c.label) for c in clips]), card


def _frame_classifier(card) -> torch.nn.Linear:
    """A frame classifier for the heads that start from one: a least-squares fit is not needed, a seeded one is."""
    torch.manual_seed(3)
    return torch.nn.Linear(card.embed_dim, len(card.labels))


@pytest.mark.data
@pytest.mark.parametrize("name", [n for n, s in HEADS.items() if s.trained])
def test_a_real_training_step_per_head_lowers_the_loss(name, ckplus_features):
    feats, labels, card = ckplus_features
    torch.manual_seed(0)
    head = new_head(name, _frame_classifier(card))

    def batch(g):
        pick = torch.randint(0, len(feats), (32,), generator=g)
        return feats[pick], None, labels[pick]

    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(head.eval()(feats)[0], labels).item()
    train_head(head, batch, 40, 3e-3, 1e-4, 0, name, progress=False)
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(head.eval()(feats)[0], labels).item()
    assert after < 0.8 * before, (before, after)


@pytest.mark.data
def test_score_fusion_is_the_mean_of_the_frame_classifiers_softmax(ckplus_features):
    feats, _, card = ckplus_features
    fc = _frame_classifier(card)
    head = new_head("fusion", fc)
    with torch.no_grad():
        want = torch.softmax(fc(feats), -1).mean(1)
        assert torch.allclose(torch.softmax(head(feats)[0], -1), want, atol=1e-6)


def test_parameter_counts_of_the_temporal_heads_stay_small():
    counts = {n: parameter_count(build_head(n)) for n in HEADS}
    assert counts["fusion"] == 512 * 7 + 7 and counts["relation"] == 512 + 1 + 1024 + 1 + 1024 * 7 + 7
    assert 50_000 < counts["gru"] < counts["gru-causal"] < counts["transformer"] < 1_000_000  # vs ABAW's ~14M


@pytest.mark.parametrize("name", ["fusion", "gru", "gru-causal", "transformer"])
def test_torch_and_onnx_runtime_agree(name, tmp_path):
    from models.release.export import export_head

    torch.manual_seed(4)
    head = build_head(name).eval()
    path = tmp_path / f"{name}.onnx"
    export_head(name, head, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for t in (1, 5, 16):
        x = rng.uniform(0, 2, (2, t, 512)).astype(np.float32)
        got = sess.run(["probs", "alpha", "weight"], {"features": x})
        with torch.no_grad():
            want = [w.numpy() for w in HeadExportWrapper(head)(torch.from_numpy(x))]
        assert [g.shape for g in got] == [(2, 7), (2, t), (2, t)]
        assert max(float(np.abs(g - w).max()) for g, w in zip(got, want)) < 1e-4
