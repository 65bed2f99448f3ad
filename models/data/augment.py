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


LUMA = (0.299, 0.587, 0.114)  # RGB order, as cv2's BGR2GRAY weighs the channels


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) RGB -> the same shape with every channel the luma (a gray image fed as 3 channels)."""
    luma = (x * torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return luma.expand_as(x)


def color_jitter(x: torch.Tensor, g: torch.Generator, p=0.5, saturation=(0.6, 1.4), gain=0.08) -> torch.Tensor:
    """RGB only: saturation and white-balance shifts (webcams, indoor light); a gray batch is returned as is."""
    if x.shape[1] != 3:
        return x
    b = x.shape[0]
    sel = (torch.rand(b, 1, 1, 1, generator=g) < p).to(x.dtype)
    sat = torch.empty(b, 1, 1, 1).uniform_(saturation[0], saturation[1], generator=g)
    gray = to_gray(x)
    jit = gray + (x - gray) * sat
    jit = jit * (1 + (torch.rand(b, 3, 1, 1, generator=g) * 2 - 1) * gain)
    return (sel * jit + (1 - sel) * x).clamp(0, 1)


def random_grayscale(x: torch.Tensor, g: torch.Generator, p=0.2) -> torch.Tensor:
    """RGB only: a share p of the crops turned gray (as FER+ faces and gray cameras look)."""
    if x.shape[1] != 3 or p <= 0:
        return x
    sel = torch.rand(x.shape[0], 1, 1, 1, generator=g) < p
    return torch.where(sel, to_gray(x), x)


def down_up(x: torch.Tensor, g: torch.Generator, p=0.25, min_scale=0.35) -> torch.Tensor:
    """A far-away face: downscaled to a random fraction of the crop (area-averaged) and upscaled back (bilinear).
    One scale per call (one resize of the selected samples), drawn per batch."""
    b, _, h, w = x.shape
    sel = torch.rand(b, generator=g) < p
    if not sel.any():
        return x
    scale = float(torch.empty(1).uniform_(min_scale, 0.8, generator=g))
    small = F.interpolate(x[sel], size=(max(8, round(h * scale)), max(8, round(w * scale))), mode="area")
    out = x.clone()
    out[sel] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def jpeg(x: torch.Tensor, g: torch.Generator, p=0.3, quality=(15, 75)) -> torch.Tensor:
    """JPEG artefacts (compressed streams and uploads): the selected crops encoded and decoded by OpenCV."""
    import cv2  # only here: the augmentations are otherwise torch-only

    b, c = x.shape[:2]
    sel = torch.nonzero(torch.rand(b, generator=g) < p).flatten()
    if len(sel) == 0:
        return x
    q = torch.randint(quality[0], quality[1] + 1, (len(sel),), generator=g)
    out = x.clone()
    for i, qi in zip(sel.tolist(), q.tolist()):
        img = (x[i].permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype("uint8")  # (S, S, C), RGB/gray
        ok, buf = cv2.imencode(".jpg", img if c == 1 else img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(qi)])
        if not ok:
            continue
        dec = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if c == 1 else cv2.IMREAD_COLOR)
        dec = dec[:, :, None] if c == 1 else dec[:, :, ::-1]
        out[i] = torch.from_numpy(dec.copy()).permute(2, 0, 1).to(x.dtype) / 255.0
    return out


def train_augment(x: torch.Tensor, g: torch.Generator, wild: bool = True, gray_prob: float = 0.0) -> torch.Tensor:
    """Stage-1 augmentation. wild adds the in-the-wild set: far-away faces (down/up-scaling), colour jitter and
    JPEG artefacts; gray_prob turns that share of RGB crops gray."""
    x = random_affine(x, g)
    if wild:
        x = down_up(x, g)
    x = photometric(x, g)
    if wild:
        x = color_jitter(x, g)
    x = random_grayscale(x, g, gray_prob)
    if wild:
        x = jpeg(x, g)
    return random_erase(x, g)


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
