"""The ABAW2021 temporal heads (Mao, Fan, Peng: "Spatial and Temporal Networks for Facial Expression Recognition in
the Wild Videos", ABAW 2021) over the same per-frame 512-d features as the FAN heads.

- GruHead: Linear 512->d + ReLU, a 1-layer GRU, a classifier on every step.
    bidirectional (hidden d/2 per direction) reads the CENTRE frame of the window (the paper's setting; it costs
    half a window of latency live); causal (unidirectional, hidden d) reads the NEWEST frame, so a live prediction
    uses no future frame.
- TransformerHead: Linear 512->d, sinusoidal positional encoding along the TIME axis (the official code adds it
    along the batch axis, a bug not copied here), 2 pre-LayerNorm blocks (multi-head attention, MLP 4d with GELU,
    dropout), a per-frame classifier; the window's prediction is the NEWEST frame's, and its attention over the
    window (last block, mean over heads) is what the app can show.

Every head here has the FAN heads' interface: forward(features (B, T, D), mask (B, T) or None) -> logits (B, K),
alpha (B, T), weight (B, T), so the same trainer, exporter and app runner take them. The GRU has no attention: its
alpha and weight are equal weights 1/T (the app labels them as such). A mask marks valid frames of clips padded at the
END (CK+ clips in a longer batch): padded steps are filled with the last valid frame (the GRU sees a face that holds
still), the transformer masks them out as keys, and the readout frame is chosen among the valid frames. Every index
is computed from tensors, not Python ints, so the exported graphs keep a dynamic window length.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _valid(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T) float mask of valid frames (all ones when mask is None), built from the features' own shape."""
    ones = torch.ones_like(features[..., 0])
    return ones if mask is None else mask.to(features.dtype)


def _positions(valid: torch.Tensor) -> torch.Tensor:
    """(B, T) frame positions 0..T-1 (a cumulative sum, so it stays dynamic in an exported graph)."""
    return torch.cumsum(torch.ones_like(valid), dim=1) - 1


def _one_hot_at(valid: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, T) one-hot of position index (B,)."""
    return (_positions(valid) == index.unsqueeze(1)).to(valid.dtype)


def _fill_padding(features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Padded frames (valid 0, at the end) replaced by the last valid frame."""
    last = _one_hot_at(valid, valid.sum(1) - 1)
    last_feat = (last.unsqueeze(-1) * features).sum(1, keepdim=True)  # (B, 1, D)
    v = valid.unsqueeze(-1)
    return features * v + last_feat * (1 - v)


def _equal_weights(valid: torch.Tensor) -> torch.Tensor:
    return valid / valid.sum(1, keepdim=True)


class GruHead(nn.Module):
    """Linear + ReLU -> GRU -> per-step classifier; the window's output is the centre (bidirectional) or the newest
    (causal) frame's."""

    def __init__(self, dim: int = 512, num_classes: int = 7, d: int = 128, causal: bool = False,
                 drop_rate: float = 0.3):
        super().__init__()
        if d % 2:
            raise ValueError(f"d must be even (two GRU directions of d/2), got {d}")
        self.dim, self.d, self.causal = dim, d, causal
        self.proj = nn.Linear(dim, d)
        self.drop = nn.Dropout(drop_rate)
        self.gru = nn.GRU(d, d if causal else d // 2, num_layers=1, batch_first=True, bidirectional=not causal)
        self.classifier = nn.Linear(d, num_classes)

    def forward_steps(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> per-step logits (B, T, K)."""
        valid = _valid(features, mask)
        x = _fill_padding(features, valid) if mask is not None else features
        h, _ = self.gru(self.drop(F.relu(self.proj(self.drop(x)))))
        return self.classifier(self.drop(h))

    def readout_index(self, valid: torch.Tensor) -> torch.Tensor:
        n = valid.sum(1)
        return n - 1 if self.causal else torch.div(n, 2, rounding_mode="floor")

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None):
        valid = _valid(features, mask)
        steps = self.forward_steps(features, mask)
        pick = _one_hot_at(valid, self.readout_index(valid))
        logits = (pick.unsqueeze(-1) * steps).sum(1)
        weight = _equal_weights(valid)
        return logits, weight, weight


def sinusoidal_encoding(positions: torch.Tensor, d: int) -> torch.Tensor:
    """positions (B, T) -> (B, T, d): sin on even channels, cos on odd ones, wavelengths 2pi..10000*2pi (Vaswani et
    al.). It depends on the position along TIME only, so every clip of a batch gets the same encoding."""
    half = torch.arange(0, d, 2, dtype=positions.dtype, device=positions.device)
    freq = torch.exp(half * (-math.log(10000.0) / d))  # (d/2,)
    angle = positions.unsqueeze(-1) * freq  # (B, T, d/2)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).flatten(-2)


class PreLNBlock(nn.Module):
    """x + MHA(LN(x)); x + MLP(LN(x)) with MLP d -> 4d -> d, GELU. Attention is written out so that its weights
    can be returned (and so that it exports to plain MatMul/Softmax ONNX ops)."""

    def __init__(self, d: int, heads: int, drop_rate: float):
        super().__init__()
        if d % heads:
            raise ValueError(f"d ({d}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Dropout(drop_rate), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, d), key_valid (B, T) -> x, attention (B, heads, T, T)."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        split = lambda z: z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        scores = scores + (key_valid[:, None, None, :] - 1) * 1e4  # padded keys get ~0 weight
        att = torch.softmax(scores, dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.out(y))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, att


class TransformerHead(nn.Module):
    """Linear 512->d, + sinusoidal PE over time, 2 pre-LN blocks, LayerNorm, per-frame classifier; the window's
    output is the newest valid frame's. alpha = weight = that frame's attention over the window in the last block,
    averaged over heads (sums to 1)."""

    def __init__(self, dim: int = 512, num_classes: int = 7, d: int = 128, heads: int = 4, blocks: int = 2,
                 drop_rate: float = 0.1):
        super().__init__()
        self.dim, self.d = dim, d
        self.proj = nn.Linear(dim, d)
        self.drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(PreLNBlock(d, heads, drop_rate) for _ in range(blocks))
        self.norm = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, num_classes)

    def positional_encoding(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The (B, T, d) encoding added to the projected features."""
        return sinusoidal_encoding(_positions(_valid(features, mask)), self.d)

    def forward_steps(self, features: torch.Tensor, mask: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) -> per-frame logits (B, T, K), last block's attention (B, heads, T, T)."""
        valid = _valid(features, mask)
        x = self.drop(self.proj(features) + self.positional_encoding(features, mask))
        att = None
        for block in self.blocks:
            x, att = block(x, valid)
        return self.classifier(self.drop(self.norm(x))), att

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None):
        valid = _valid(features, mask)
        steps, att = self.forward_steps(features, mask)
        pick = _one_hot_at(valid, valid.sum(1) - 1)  # the newest valid frame
        logits = (pick.unsqueeze(-1) * steps).sum(1)
        newest = (pick[:, None, :, None] * att).sum(2).mean(1)  # its attention row, mean over heads: (B, T)
        return logits, newest, newest


class ScoreFusionHead(nn.Module):
    """The paper's baseline as a head: the mean of per-frame softmax scores of a frame classifier (normally the
    embedder's own, copied). forward returns LOG of the mean probabilities as logits, so softmax(logits) is exactly
    the mean of the frame softmaxes; alpha = weight = equal weights."""

    def __init__(self, dim: int = 512, num_classes: int = 7):
        super().__init__()
        self.dim = dim
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None):
        valid = _valid(features, mask)
        weight = _equal_weights(valid)
        probs = (weight.unsqueeze(-1) * torch.softmax(self.classifier(features), -1)).sum(1)
        return torch.log(probs.clamp_min(1e-12)), weight, weight
