"""The training loop's parts shared by models.train and the experiments: sample order, class weights, the soft
cross-entropy, mixup, averaged weights (SWA) with their BatchNorm statistics, and validation reports."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from app.emotions import EMOTIONS
from app.faces.align import Preprocess
from models.data.loading import FrameData, embed_all, normalise, to_input
from models.engine.metrics import classification_report
from models.networks.fan import ResNet18Embedder

K = len(EMOTIONS)


def parse_repeats(items: list[str], names: list[str]) -> dict[str, float]:
    """`NAME=R` items -> {name: R} over `names` (1.0 where not given); ValueError on a bad item."""
    out = dict.fromkeys(names, 1.0)
    for item in items:
        name, sep, value = item.partition("=")
        try:
            r = float(value)
        except ValueError:
            r = -1.0
        if not sep or name not in out or r < 0:
            raise ValueError(f"--repeat takes NAME=R with NAME among {', '.join(names)} and R >= 0, got {item!r}")
        out[name] = r
    return out


def epoch_order(data: FrameData, cfg, g: torch.Generator) -> torch.Tensor:
    """`cfg.repeat`: NAME=R items (models.train.FramesConfig). One epoch's sample order: every image of each dataset `repeat` times (default once; the fractional part
    drawn at random), shuffled."""
    parts = []
    repeats = parse_repeats(cfg.repeat, data.names)
    for i, name in enumerate(data.names):
        idx = torch.from_numpy(np.flatnonzero(data.source == i))
        repeat = repeats[name]
        whole, frac = int(repeat), repeat - int(repeat)
        parts += [idx] * whole
        if frac > 0:
            parts.append(idx[torch.randperm(len(idx), generator=g)[:int(round(frac * len(idx)))]])
    order = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    return order[torch.randperm(len(order), generator=g)]


def evaluate_valid_sets(model, data: FrameData, pre: Preprocess, device) -> dict:
    """Each validation set's report, and their mean accuracy/macro-F1/UAR: the selection score is the mean
    macro-F1 over the domains, so no single domain chooses the model. The report-only sets (CK+48 frames) are
    scored too, outside the means."""
    reports = {name: evaluate_frames(model, c, y, pre, device) for name, (c, y) in data.valid.items()}
    mean = {k: float(np.mean([r[k] for r in reports.values()])) for k in ("accuracy", "macro_f1", "uar")}
    reports.update({name: evaluate_frames(model, c, y, pre, device) for name, (c, y) in data.report_only.items()})
    return {**mean, "selection_score": mean["macro_f1"], "by_dataset": reports}


def convert_first_conv(state: dict, in_chans: int) -> dict:
    """A gray embedder's weights for an RGB input (or back): RGB conv1 weights are the gray ones times the luma
    coefficients, so an RGB crop of a gray image gives exactly the gray network's output (same [-1, 1] scaling)."""
    w = state["conv1.weight"]
    if w.shape[1] == in_chans:
        return state
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=w.dtype).view(1, 3, 1, 1)  # RGB order (convert_color)
    if w.shape[1] == 1 and in_chans == 3:
        w = w * luma
    elif w.shape[1] == 3 and in_chans == 1:
        w = w.sum(1, keepdim=True)
    else:
        raise ValueError(f"cannot convert a {w.shape[1]}-channel first convolution to {in_chans} channels")
    return {**state, "conv1.weight": w}


def class_weights(labels: np.ndarray, power: float) -> torch.Tensor:
    counts = np.bincount(labels[labels >= 0], minlength=K).astype(float)
    counts = np.maximum(counts, 1.0)
    w = (np.median(counts) / counts) ** power
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """target (B, K) distribution; per-class weights scale each class's term (imbalance)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    w = weight.to(logits.device)[None] if weight is not None else 1.0
    return -(w * target * logp).sum(1).mean()


def mix_batch(x: torch.Tensor, y: torch.Tensor, alpha: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup: each image and its target blended with another of the batch's by one lambda ~ Beta(alpha, alpha)."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(x), generator=g).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


@torch.no_grad()
def recompute_batchnorm(model: torch.nn.Module, crops_u8: torch.Tensor, pre: Preprocess, device: torch.device,
                        batch: int = 256) -> None:
    """Averaged weights need their own BN statistics (SWA): one pass over un-augmented training crops."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    for i in range(0, len(crops_u8), batch):
        model(normalise(to_input(crops_u8[i:i + batch], pre), pre).to(device))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.eval()


def running_mean(mean: dict | None, state: dict, count: int) -> dict:
    """Fold the count-th state dict into the mean of the previous count-1 (one copy held, not N); integer
    buffers such as num_batches_tracked take the newest value."""
    if mean is None:
        return {k: v.clone() for k, v in state.items()}
    return {k: mean[k] + (v - mean[k]) / count if v.is_floating_point() else v.clone() for k, v in state.items()}


def score_averaged_weights(state: dict, pre: Preprocess, device: torch.device, vcrops: torch.Tensor,
                           vlabels: np.ndarray, bn_crops: torch.Tensor | None) -> tuple[dict, dict]:
    """Averaged weights -> (BN statistics recomputed on bn_crops, if given) -> (CPU state, FER+ Valid report)."""
    model = ResNet18Embedder(in_chans=pre.channels, num_classes=K).to(device)
    model.load_state_dict(state)
    if bn_crops is not None:
        recompute_batchnorm(model, bn_crops, pre, device)
    report = evaluate_frames(model, vcrops, vlabels, pre, device)
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}, report


# ----------------------------------------------------------------------------------------------- stage 1
def evaluate_frames(model, crops, labels, pre, device) -> dict:
    _, logits = embed_all(model, crops, pre, device)
    pred = logits.argmax(1).numpy()
    keep = labels >= 0
    return classification_report(labels[keep], pred[keep], EMOTIONS)
