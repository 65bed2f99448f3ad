"""Batched, torch-only augmentations that mimic webcam reality on aligned face crops.

All functions take and return float tensors (B, C, S, S) in [0, 1] (before mean/std normalisation), so one batch is
augmented in a few vectorised ops on the CPU instead of per-image Python loops. `degrade` is also what stage 2 uses
to synthesise the bad frames (blur, darkness, noise, occlusion) that the attention should learn to down-weight.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, g: torch.Generator, max_rot_deg=10.0, scale=(0.9, 1.1), max_shift=0.05,
                  flip=True) -> torch.Tensor:
    """Small rotation/scale/shift (alignment jitter) and horizontal flip; borders replicated like warp_face."""
    b = x.shape[0]
    ang = (torch.rand(b, generator=g) * 2 - 1) * math.radians(max_rot_deg)
    s = torch.empty(b).uniform_(scale[0], scale[1], generator=g)
    tx, ty = ((torch.rand(2, b, generator=g) * 2 - 1) * max_shift * 2)
    sign = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample separable Gaussian blur; sigma (B,) in pixels (0 leaves the sample unchanged)."""
    radius = 4
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t[None] ** 2) / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))  # (B, K)
    k = k / k.sum(1, keepdim=True)
    b, c, h, w = x.shape
    xx = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="replicate")
    kx = k.repeat_interleave(c, 0)  # (B*C, K)
    xx = F.conv2d(xx, kx[:, None, None, :], groups=b * c)
    xx = F.conv2d(xx, kx[:, None, :, None], groups=b * c)
    return xx.reshape(b, c, h, w)


def photometric(x: torch.Tensor, g: torch.Generator, p_blur=0.2, p_noise=0.2, p_dark=0.3) -> torch.Tensor:
    """Brightness/contrast/gamma for low light and exposure, occasional blur and sensor noise."""
    b = x.shape[0]
    contrast = torch.empty(b, 1, 1, 1).uniform_(0.7, 1.3, generator=g)
    bright = torch.empty(b, 1, 1, 1).uniform_(-0.12, 0.12, generator=g)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + bright
    dark = torch.rand(b, 1, 1, 1, generator=g) < p_dark
    gamma = torch.where(dark, torch.empty(b, 1, 1, 1).uniform_(1.2, 2.2, generator=g), torch.ones(b, 1, 1, 1))
    x = x.clamp(0, 1) ** gamma
    blur = torch.rand(b, generator=g) < p_blur
    if blur.any():
        sigma = torch.where(blur, torch.empty(b).uniform_(0.5, 1.6, generator=g), torch.zeros(b))
        x = torch.where(blur[:, None, None, None], _gaussian_blur(x, sigma), x)
    noisy = torch.rand(b, 1, 1, 1, generator=g) < p_noise
    std = torch.empty(b, 1, 1, 1).uniform_(0.01, 0.05, generator=g)
    x = x + noisy * std * torch.randn(x.shape, generator=g)
    return x.clamp(0, 1)


def random_erase(x: torch.Tensor, g: torch.Generator, p=0.25, area=(0.04, 0.2)) -> torch.Tensor:
    """Occlusion: a rectangle of flat grey per selected sample (a hand, a cup, glasses glare)."""
    b, _, h, w = x.shape
    sel = torch.rand(b, generator=g) < p
    frac = torch.empty(b).uniform_(area[0], area[1], generator=g)
    aspect = torch.exp(torch.empty(b).uniform_(-0.7, 0.7, generator=g))
    eh = (torch.sqrt(frac * aspect) * h).clamp(2, h - 1)
    ew = (torch.sqrt(frac / aspect) * w).clamp(2, w - 1)
    y0 = torch.rand(b, generator=g) * (h - eh)
    x0 = torch.rand(b, generator=g) * (w - ew)
    ys = torch.arange(h)[None, :, None]
    xs = torch.arange(w)[None, None, :]
    box = (ys >= y0[:, None, None]) & (ys < (y0 + eh)[:, None, None]) & \
          (xs >= x0[:, None, None]) & (xs < (x0 + ew)[:, None, None]) & sel[:, None, None]
    fill = torch.rand(b, 1, 1, generator=g)
    return torch.where(box[:, None], fill[:, None], x)


def train_augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return random_erase(photometric(random_affine(x, g), g), g)


def degrade(x: torch.Tensor, g: torch.Generator, strength: torch.Tensor) -> torch.Tensor:
    """Heavy degradation of selected samples, for synthetic clips: strength (B,) in [0, 1], 0 = untouched.

    Combines strong blur, darkness, noise, a large occluder and pose jitter, each scaled by strength.
    """
    b = x.shape[0]
    s = strength.to(x.dtype)
    kind = torch.randint(0, 4, (b,), generator=g)
    out = x
    blur_sigma = torch.where(kind == 0, 1.0 + 2.5 * s, torch.zeros(b))
    out = torch.where((blur_sigma > 0)[:, None, None, None], _gaussian_blur(out, blur_sigma), out)
    dark = (kind == 1)[:, None, None, None]
    out = torch.where(dark, out * (1 - 0.85 * s[:, None, None, None]) + 0.2 * s[:, None, None, None] *
                      torch.randn(out.shape, generator=g) * 0.1, out)
    occl = random_erase(out, g, p=1.0, area=(0.25, 0.5))
    out = torch.where(((kind == 2) & (s > 0))[:, None, None, None], occl, out)
    noisy = ((kind == 3) & (s > 0))[:, None, None, None]
    jittered = random_affine(out, g, max_rot_deg=25.0, scale=(0.75, 1.25), max_shift=0.12, flip=False)
    out = torch.where(noisy, jittered + 0.15 * s[:, None, None, None] * torch.randn(out.shape, generator=g), out)
    return out.clamp(0, 1)
