"""FAER (Xu, Zhong, Wang, Zhang, Yang, J. Computer Applications 2024): contextual channel attention (CC) and centre
loss, as options of the ResNet18 frame embedder; a squeeze-and-excitation (SE) block at the same place for
comparison.

    python -m models.networks.faer [--input-size 64]      # feature-map size after each stage -> where the block goes
    python -m models.train frames --cc-attention --center-loss ...   # the full trainer, any budget
    python -m models.experiments.faer_ablation --seeds 0 1 2 --out runs/faer/ablation   # the 2x2 + SE measurement

The CC block gives a weight for every position and channel (X: (B, C, H, W)):
    V = Conv1x1(X);  K = MLP(X) * GAP(X)  (per-position MLP C -> C/8 -> C with GELU, times the pooled context)
    Q = LayerNorm_C(GELU(grouped kxk conv(X)));  R = softmax over the H*W positions of (Q + K);  Y = R * V + X
V's projection starts at zero, so an inserted block starts as the identity and fine-tuning begins exactly at the
warm-start embedder (the same reason ResNet zero-initialises each block's last BN).

Centre loss (Wen et al., ECCV 2016) on the pooled 512-d feature: L_c = 1/2 mean_i ||f_i - c_{y_i}||^2, total loss
CE + lambda L_c (lambda = 0.01, FAER's value). The centres are buffers moved by Wen's rule (c_j -= alpha * delta_j),
not by the optimiser; a class's centre starts at the mean of the first batch that holds it (a zero start would
first pull every warm-started feature towards the origin).

Where the block goes: after layer3, or after layer4 when layer4's map is bigger than 2x2 at the input size
(`insertion_point`, measured by running the network, not assumed). At the app's 64 px: layer3 4x4, layer4 2x2.
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.networks.fan import ResNet18Embedder

BLOCKS = ("none", "cc", "se")
CENTER_LOSS_WEIGHT = 0.01  # FAER's lambda


# ----------------------------------------------------------------------------------------------- blocks
class ContextualChannelAttention(nn.Module):
    """FAER's CC block: Y = softmax_positions(Q + K) * V + X, shapes kept (B, C, H, W)."""

    def __init__(self, channels: int, kernel_size: int = 3, groups: int = 4, reduction: int = 8):
        super().__init__()
        if channels % groups or channels % reduction:
            raise ValueError(f"channels {channels} must divide by groups {groups} and reduction {reduction}")
        self.value = nn.Conv2d(channels, channels, 1)
        self.key = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1), nn.GELU(),
                                 nn.Conv2d(channels // reduction, channels, 1))
        self.query = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=groups)
        self.norm = nn.LayerNorm(channels)
        nn.init.zeros_(self.value.weight)  # identity at the start (see the module docstring)
        nn.init.zeros_(self.value.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        v = self.value(x)
        k = self.key(x) * x.mean((2, 3), keepdim=True)                       # (B, C, H, W) * (B, C, 1, 1)
        q = self.norm(F.gelu(self.query(x)).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # LayerNorm over C
        r = torch.softmax((q + k).reshape(b, c, h * w), dim=-1).reshape(b, c, h, w)   # each channel over positions
        return r * v + x


class SqueezeExcitation(nn.Module):
    """SE (Hu et al. 2018) at the CC block's place: Y = X * 2 sigmoid(W2 ReLU(W1 GAP(X))). The factor 2 and the
    zero-initialised W2 make it start as the identity, like the CC block, so both fine-tune from the same start."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * (2.0 * torch.sigmoid(s))


def make_block(kind: str, channels: int) -> nn.Module:
    if kind == "cc":
        return ContextualChannelAttention(channels)
    if kind == "se":
        return SqueezeExcitation(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"attention block must be one of {', '.join(BLOCKS)}; got {kind!r}")


class CenterLoss(nn.Module):
    """1/2 mean ||f_i - c_{y_i}||^2 over the labelled samples (label >= 0). In training mode each call then moves
    the centres of the batch's classes by Wen's rule with rate alpha (no gradient reaches the centres)."""

    def __init__(self, num_classes: int, dim: int, alpha: float = 0.5):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, dim))
        self.register_buffer("initialised", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        keep = labels >= 0
        f, y = features[keep].float(), labels[keep]
        if len(y) == 0:
            return features.sum() * 0.0
        if self.training:
            self._first_seen(f.detach(), y)
        loss = 0.5 * (f - self.centers[y]).pow(2).sum(1).mean()
        if self.training:
            self._update(f.detach(), y)
        return loss

    @torch.no_grad()
    def _first_seen(self, f: torch.Tensor, y: torch.Tensor) -> None:
        for j in torch.unique(y).tolist():
            if not bool(self.initialised[j]):
                self.centers[j] = f[y == j].mean(0)
                self.initialised[j] = True

    @torch.no_grad()
    def _update(self, f: torch.Tensor, y: torch.Tensor) -> None:
        # delta_j = sum_{i: y_i = j} (c_j - f_i) / (1 + n_j)
        k = self.centers.shape[0]
        counts = torch.bincount(y, minlength=k).to(f.dtype)
        sums = torch.zeros_like(self.centers).index_add_(0, y, f)
        delta = (counts[:, None] * self.centers - sums) / (1.0 + counts[:, None])
        self.centers -= self.alpha * delta


# ----------------------------------------------------------------------------------------------- embedder
def feature_map_sizes(input_size: int, in_chans: int = 3) -> dict[str, tuple[int, int, int]]:
    """(C, H, W) after each ResNet18 stage for a square input of this size, measured by a forward pass."""
    model = ResNet18Embedder(in_chans=in_chans).eval()
    sizes = {}
    with torch.no_grad():
        x = model.maxpool(F.relu(model.bn1(model.conv1(torch.zeros(1, in_chans, input_size, input_size)))))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(model, name)(x)
            sizes[name] = tuple(x.shape[1:])
    return sizes


def insertion_point(input_size: int, in_chans: int = 3) -> str:
    """After layer4 if its map is bigger than 2x2 at this input size, else after layer3 (still spatial)."""
    _, h, w = feature_map_sizes(input_size, in_chans)["layer4"]
    return "layer4" if h > 2 and w > 2 else "layer3"


STAGE_CHANNELS = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}


class AttentiveEmbedder(ResNet18Embedder):
    """ResNet18Embedder with an attention block (CC, SE or none) after one stage. Same API (forward_features,
    forward_head) and same state-dict names plus `attn.*`, so the warm-start weights load with load_backbone."""

    def __init__(self, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.0, flip_average: bool = True,
                 block: str = "cc", after: str = "layer3"):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate, flip_average=flip_average)
        if after not in STAGE_CHANNELS:
            raise ValueError(f"the block goes after one of {', '.join(STAGE_CHANNELS)}; got {after!r}")
        self.block, self.after = block, after
        self.attn = make_block(block, STAGE_CHANNELS[after])

    def stem_to(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """Input -> the map after `stage` (no block): the frozen part of an ablation run."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            if name == stage:
                return x
        raise ValueError(stage)

    def from_stage(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """The map after `stage` -> pooled (B, 512) feature, the block applied where it sits."""
        names = ("layer1", "layer2", "layer3", "layer4")
        if stage == self.after:
            x = self.attn(x)
        for name in names[names.index(stage) + 1:]:
            x = getattr(self, name)(x)
            if name == self.after:
                x = self.attn(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_stage(self.stem_to(x, self.after), self.after)


def load_backbone(model: ResNet18Embedder, state: dict) -> None:
    """Warm-start weights into an embedder: a plain ResNet18Embedder's weights also fit an AttentiveEmbedder,
    whose block's own weights (missing there) keep their identity start. Anything else missing is an error."""
    if not isinstance(model, AttentiveEmbedder):
        model.load_state_dict(state)
        return
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("attn.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"weights do not fit the embedder (missing {missing[:3]}, unexpected "
                         f"{list(result.unexpected_keys)[:3]})")


def build_embedder(in_chans: int, num_classes: int, block: str = "none", after: str = "", input_size: int = 64,
                   drop_rate: float = 0.0) -> ResNet18Embedder:
    """The stage-1 embedder for an option: the plain ResNet18 (block "none"), or with a CC/SE block after `after`
    (default: insertion_point(input_size), measured)."""
    if block == "none":
        return ResNet18Embedder(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
    return AttentiveEmbedder(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate, block=block,
                             after=after or insertion_point(input_size, in_chans))


def embedder_arch(model: ResNet18Embedder) -> dict:
    """What build_embedder needs besides the sizes, saved with a checkpoint: {} for the plain ResNet18."""
    return {"block": model.block, "after": model.after} if isinstance(model, AttentiveEmbedder) else {}


class FeaturesAndLogits(nn.Module):
    """model -> (logits, pooled features) in one call, so a centre loss also works under DistributedDataParallel
    (which only synchronises gradients of what goes through its own forward)."""

    def __init__(self, model: ResNet18Embedder):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.model.forward_features(x)
        return self.model.forward_head(f), f


# ----------------------------------------------------------------------------------------------- comparison rows
ABLATION_RUNS = "runs/faer/ablation/runs.jsonl"  # written by python -m models.experiments.faer_ablation (relative to the repo)
VARIANT_NAMES = {"none-ce": "ResNet18, CE (fine-tuned alike, FAER baseline)", "none-center": "FAER centre loss only",
                 "cc-ce": "FAER CC block only", "cc-center": "FAER CC block + centre loss", "se-ce": "SE block (same place)"}


def compare_rows(cfg) -> list[dict]:
    """Rows for models.experiments.compare: the FAER ablation's measured runs (one row per variant, accuracy % per seed on FER+
    Valid and RAF-DB val), read from ABLATION_RUNS; nothing is trained here. No runs file: one row saying so."""
    import json
    from pathlib import Path

    from app.paths import ROOT

    path = ROOT / ABLATION_RUNS
    if not path.is_file():
        return [{"option": "faer", "name": "FAER options", "paper": f"not measured yet: python -m models.experiments.faer_ablation"
                 f" (writes {ABLATION_RUNS})"}]
    runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows = []
    for variant, name in VARIANT_NAMES.items():
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        block = mine[0]["block"]
        model = build_embedder(3, 7, block, input_size=64)
        rows.append({"option": f"faer-{variant}", "name": name,
                     "ferplus_valid": [100 * r["ferplus_valid"]["accuracy"] for r in mine],
                     "rafdb_val": [100 * r["rafdb_val"]["accuracy"] for r in mine],
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "paper": "FAER (JCA 2024): most of its gain from the centre loss; here: see docs/results.md, "
                              "frame level, embedder fine-tuned from the shipped one at a reduced budget"})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.networks.faer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--in-chans", type=int, default=3)
    args = p.parse_args(argv)
    if args.input_size < 32:
        print("error: --input-size must be at least 32 (ResNet18 downsamples 32x)", file=sys.stderr)
        return 1
    for name, shape in feature_map_sizes(args.input_size, args.in_chans).items():
        print(f"{name}: {shape[0]} x {shape[1]} x {shape[2]}")
    print(f"block after: {insertion_point(args.input_size, args.in_chans)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
