"""Networks of the Frame Attention Network (Meng et al., ICIP 2019, arXiv 1907.00193).

- ResNet18Embedder: BasicBlock [2, 2, 2, 2] ResNet18 split into forward_features (B, C, H, W) -> (B, 512) and
  forward_head (B, 512) -> (B, 7) logits, as timm splits its models. The app runs forward_features once per new crop.
- FanHead: self-attention (at_type 0) and relation-attention (at_type 1) aggregation of a window of frame features.
- ScoreFusion: the paper's baseline, the mean of per-frame softmax scores.
"""
from __future__ import annotations

from enum import Enum

import torch
import torch.nn as nn
import torch.nn.functional as F

WINDOW_LENGTH = 16  # frames in the live FAN window a model is exported with, unless its run asks for another


class AttentionType(str, Enum):
    SELF = "self"          # the paper's at_type 0: alpha only, classifier on 512-d
    RELATION = "relation"  # the paper's at_type 1: alpha and beta, classifier on 1024-d [f_i : f'_v]

    @property
    def at_type(self) -> int:
        return 0 if self is AttentionType.SELF else 1


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity, inplace=True)


class ResNet18Embedder(nn.Module):
    """ResNet18 with a 512-d pooled feature and a linear frame classifier."""

    embed_dim = 512

    def __init__(self, in_chans: int = 1, num_classes: int = 7, drop_rate: float = 0.0, flip_average: bool = True):
        super().__init__()
        # In eval mode (and so in the exported graph) the feature is the mean of the crop's and its mirror image's:
        # one batch of 2B crops, more accurate for more embedding time (docs/training.md has the measurements).
        self.flip_average = flip_average
        self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, blocks = (64, 128, 256, 512), (2, 2, 2, 2)
        layers, in_ch = [], 64
        for i, (w, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(*[BasicBlock(in_ch if j == 0 else w, w, stride if j == 0 else 1)
                                          for j in range(n)]))
            in_ch = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: each block starts as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, 512)
        if self.flip_average and not self.training:
            both = self._features(torch.cat([x, torch.flip(x, dims=[3])], 0))  # (2B, 512)
            return 0.5 * (both[:x.shape[0]] + both[x.shape[0]:])
        return self._features(x)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x)), inplace=True))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        # (B, 512) -> (B, num_classes) logits
        return self.fc(self.drop(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(x)) written so that it stays finite in fp32 for any x, in torch and in the exported ONNX graph
    (the exporter lowers F.logsigmoid to Log(Sigmoid(x)), which is -inf below x of about -88)."""
    return torch.clamp(x, max=0.0) - torch.log1p(torch.exp(-x.abs()))


class FanHead(nn.Module):
    """Frame attention over a window of T frame features.

    alpha_i = sigmoid(q0 . f_i);  f'_v = sum(alpha_i f_i) / sum(alpha_i)
    relation: beta_i = sigmoid(q1 . [f_i : f'_v]);
              f_v = sum(alpha_i beta_i [f_i : f'_v]) / sum(alpha_i beta_i)   (numerator and denominator both
              weighted by alpha*beta; the official code's evaluation path weights the numerator by alpha only)
    The classifier sees f'_v (512-d, self) or f_v (1024-d, relation).
    """

    def __init__(self, attention: AttentionType | str = AttentionType.RELATION, dim: int = 512,
                 num_classes: int = 7, drop_rate: float = 0.5):
        super().__init__()
        self.attention = AttentionType(attention)
        self.dim = dim
        self.alpha = nn.Linear(dim, 1)
        self.beta = nn.Linear(2 * dim, 1) if self.attention is AttentionType.RELATION else None
        self.drop = nn.Dropout(drop_rate)
        out_dim = dim if self.attention is AttentionType.SELF else 2 * dim
        self.classifier = nn.Linear(out_dim, num_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """features (B, T, D), optional mask (B, T) of valid frames -> logits (B, K), alpha (B, T), weight (B, T).

        weight is the normalised final weight of each frame: alpha (self) or alpha*beta (relation), summing to 1.
        """
        # alpha_i / sum_j alpha_j is computed as a softmax over log(alpha): the same value, but stable when every
        # alpha in a window is tiny (a saturated sigmoid), where dividing by a clamped sum would shrink f'_v to 0.
        score_a = self.alpha(self.drop(features)).squeeze(-1)  # (B, T)
        alpha = torch.sigmoid(score_a)
        log_w = _log_sigmoid(score_a)
        if mask is not None:
            log_w = log_w.masked_fill(mask <= 0, -1e4)
            alpha = alpha * mask.to(alpha.dtype)
        w_alpha = torch.softmax(log_w, dim=1)  # (B, T) = alpha_i / sum(alpha)
        pooled = (w_alpha.unsqueeze(-1) * features).sum(1)  # f'_v (B, D)
        if self.beta is None:
            weight, video = w_alpha, pooled
        else:
            pair = torch.cat([features, pooled.unsqueeze(1).expand_as(features)], dim=-1)  # (B, T, 2D)
            log_wb = log_w + _log_sigmoid(self.beta(self.drop(pair)).squeeze(-1))  # log(alpha_i * beta_i)
            weight = torch.softmax(log_wb, dim=1)  # alpha_i beta_i / sum(alpha beta)
            video = (weight.unsqueeze(-1) * pair).sum(1)  # f_v (B, 2D)
        logits = self.classifier(self.drop(video))
        return logits, alpha, weight


class ScoreFusion(nn.Module):
    """Baseline: classify each frame with the embedder's own classifier and average the softmax scores."""

    def __init__(self, frame_classifier: nn.Linear):
        super().__init__()
        self.classifier = frame_classifier

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # (B, T, D) -> (B, K) mean probabilities
        return F.softmax(self.classifier(features), dim=-1).mean(1)


class FanExportWrapper(nn.Module):
    """What the head ONNX graph computes: features (B, T, 512) -> probs (B, 7), alpha (B, T), weight (B, T)."""

    def __init__(self, head: FanHead):
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor):
        logits, alpha, weight = self.head(features)
        return F.softmax(logits, dim=-1), alpha, weight


class EmbedderExportWrapper(nn.Module):
    """What the embedder ONNX graph computes: crops (B, C, H, W) normalised -> features (B, 512)."""

    def __init__(self, embedder: ResNet18Embedder):
        super().__init__()
        self.embedder = embedder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedder.forward_features(x)
