"""The registry of stage-2 heads: every way of turning a window of per-frame 512-d features into one prediction.

A head is a module with forward(features (B, T, D), mask (B, T) or None) -> logits (B, K), alpha (B, T),
weight (B, T). Training (models.train clips, models.cv, models.experiments.compare), export (models.release.export) and the app (via
the model card) find heads by NAME here; adding a head is one `register(HeadSpec(...))`, no if-chains elsewhere.

    relation, self      FAN (Meng et al., ICIP 2019): relation- / self-attention       models.networks.fan.FanHead
    fusion              score fusion: mean of the frame classifier's softmax (no training)
    gru, gru-causal     ABAW2021 GRU head: bidirectional, centre frame / causal, newest frame   models.networks.temporal
    transformer         ABAW2021 transformer head, newest frame                                 models.networks.temporal

The ensemble (app.recognition.heads.ENSEMBLE_MEMBERS) is the mean of its members' softmax and has no weights of its own.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from app.recognition.card import HEAD_TYPES
from models.networks.fan import AttentionType, FanHead
from models.engine.runtime import lr_at
from models.networks.temporal import GruHead, ScoreFusionHead, TransformerHead

TEMPORAL_D = 128  # width d of the GRU and transformer heads (see docs/results.md: 768-d would overfit CK+)


@dataclass(frozen=True)
class HeadSpec:
    name: str
    build: Callable[[int, int], nn.Module]   # (feature dim, classes) -> a fresh head
    from_frame_classifier: bool              # starts at the frame classifier (init_from_frame_classifier)
    trained: bool = True                     # False: nothing to learn beyond the copied frame classifier
    torchscript_export: bool = False         # exported with the TorchScript exporter (see models.release.export)
    source: str = ""


HEADS: dict[str, HeadSpec] = {}


def register(spec: HeadSpec) -> HeadSpec:
    if spec.name in HEADS:
        raise ValueError(f"head {spec.name!r} is registered twice")
    HEADS[spec.name] = spec
    return spec


def head_spec(name: str) -> HeadSpec:
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r} (known: {', '.join(HEADS)})")
    return HEADS[name]


def build_head(name: str, dim: int = 512, num_classes: int = 7) -> nn.Module:
    return head_spec(name).build(dim, num_classes)


def parameter_count(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


register(HeadSpec("relation", lambda dim, k: FanHead(AttentionType.RELATION, dim=dim, num_classes=k), True,
                  source="FAN, relation-attention (Meng et al., ICIP 2019)"))
register(HeadSpec("self", lambda dim, k: FanHead(AttentionType.SELF, dim=dim, num_classes=k), True,
                  source="FAN without relation-attention"))
register(HeadSpec("fusion", lambda dim, k: ScoreFusionHead(dim, k), True, trained=False, torchscript_export=True,
                  source="score fusion: mean of per-frame softmax (FAN paper's baseline)"))
register(HeadSpec("gru", lambda dim, k: GruHead(dim, k, TEMPORAL_D, causal=False), False, torchscript_export=True,
                  source="ABAW2021 GRU head, bidirectional, centre-frame output (Mao et al., 2021)"))
register(HeadSpec("gru-causal", lambda dim, k: GruHead(dim, k, TEMPORAL_D, causal=True), False, torchscript_export=True,
                  source="ABAW2021 GRU head, unidirectional, newest-frame output (live variant)"))
register(HeadSpec("transformer", lambda dim, k: TransformerHead(dim, k, TEMPORAL_D, heads=4, blocks=2), False,
                  torchscript_export=True,
                  source="ABAW2021 transformer head, d=128, 4 heads, 2 pre-LN blocks, newest-frame output"))
assert set(HEADS) == set(HEAD_TYPES), "app.recognition.card.HEAD_TYPES and the registry must name the same heads"


def init_from_frame_classifier(head: nn.Module, fc: nn.Linear) -> None:
    """Start the head's classifier at the frame classifier: for a single frame, self gives f and relation gives
    [f : f], so splitting the weights in half reproduces the frame prediction exactly at step 0; score fusion IS the
    frame classifier."""
    with torch.no_grad():
        if isinstance(head, FanHead) and head.attention is AttentionType.RELATION:
            head.classifier.weight.copy_(torch.cat([fc.weight, fc.weight], 1) / 2)
        else:
            head.classifier.weight.copy_(fc.weight)
        head.classifier.bias.copy_(fc.bias)


def new_head(name: str, fc: nn.Linear) -> nn.Module:
    """A fresh head of the registry, started at the frame classifier fc where the spec says so."""
    spec = head_spec(name)
    head = spec.build(fc.in_features, fc.out_features)
    if spec.from_frame_classifier:
        init_from_frame_classifier(head, fc)
    return head


def train_head(head: nn.Module, sample_batch, steps: int, lr: float, wd: float, seed: int, desc: str,
               progress: bool = True, classifier_lr: float = 1.0,
               class_weight: torch.Tensor | None = None) -> list[float]:
    """Generic head training: sample_batch(g) -> (features (B, T, D), mask (B, T) or None, target (B,)).

    AdamW, 5 % warm-up then cosine. classifier_lr scales the classifier's learning rate; 0 freezes it (only the
    attention layers learn). class_weight (K,) weights the loss per class."""
    cls_params = list(head.classifier.parameters())
    other = [p for p in head.parameters() if all(p is not c for c in cls_params)]
    groups = [{"params": other, "scale": 1.0}] if other else []
    if classifier_lr > 0:
        groups.append({"params": cls_params, "scale": float(classifier_lr)})
    for p in cls_params:
        p.requires_grad_(classifier_lr > 0)
    losses: list[float] = []
    if not groups:
        return losses
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=wd)
    g = torch.Generator().manual_seed(seed)
    head.train()
    for step in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, max(1, steps // 20), lr) * group["scale"]
        x, mask, y = sample_batch(g)
        logits, _, _ = head(x, mask)
        loss = F.cross_entropy(logits, y, weight=class_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    head.eval()
    return losses


@torch.no_grad()
def predict_probs(head: nn.Module, feats: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Softmax (N, K) of a head on windows feats (N, T, D), eval mode."""
    head.eval()
    return torch.cat([torch.softmax(head(feats[i:i + batch])[0], -1) for i in range(0, len(feats), batch)]) \
        if len(feats) else torch.zeros(0)


class HeadExportWrapper(nn.Module):
    """What a head ONNX graph computes: features (B, T, D) -> probs (B, K), alpha (B, T), weight (B, T)."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor):
        logits, alpha, weight = self.head(features)
        return F.softmax(logits, dim=-1), alpha, weight


def seeds_spread(values: list[float]) -> tuple[float, float]:
    """(mean, half the max-min range) of per-seed numbers: the table's mean +- spread."""
    a = np.asarray(values, float)
    return float(a.mean()), float((a.max() - a.min()) / 2) if len(a) > 1 else 0.0
