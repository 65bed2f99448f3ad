"""FMPN (Chen, Wang, Chen, Shi, Cai, VCIP 2019): a facial-motion prior in front of the app's ResNet18 classifier.

The runs on CK+ and FER+/RAF-DB and the cost table are models.experiments.fmpn_runs.

The network (FmpnEmbedder, a ResNet18Embedder with two parts in front; x: the normalised crop (B, C, S, S)):
- mask generator on the crop's luma: conv 7x7 -> two stride-2 convs (4x4) -> residual blocks -> two transposed
  convs -> conv 7x7 -> sigmoid: mask M (B, 1, S, S) in (0, 1);
- prior fusion of the crop with the focus image M * luma: each through a 3x3 conv + BN + ReLU to 3 maps, summed,
  one residual block, a 3x3 conv to C channels;
- the classifier: the ResNet18 trunk and its linear layer, as the app runs it.
Loss: CE + lambda * MSE(M, the pseudo mask of the sample's class) (lambda 0.1, FMPN's default); two stages: the
generator alone on the MSE, then everything jointly (FMPN's learning rates: Adam 1e-4, the generator 1e-5).

Deviations from FMPN, all for the app's budget and warm start (documented in docs/results.md):
- the fusion adds its output to the crop (fused = x + F(x, M*luma)) with the last conv zero-initialised, instead of a
  sigmoid image: the warm-started classifier then starts exactly where the shipped embedder stands;
- generator width ngf 16 and 2 residual blocks by default (FMPN: 64 and 4 at 299 px), because at 64 px the
  original generator costs about 4x the ResNet18 itself (see `cost`); both are options;
- CK+ uses FMPN's own per-fold masks (MTCNN-aligned 70x70, resized to the app's crop; approximate for the app's
  alignment). FER+/RAF-DB have no neutral-to-peak pairs, so their proxy mask of class c is |mean aligned face of c -
  mean aligned neutral face| (luma), min-max normalised to [0, 1], computed on the training images only; neutral's
  own mask is all zero (no motion against itself).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from models.networks.fan import WINDOW_LENGTH, ResNet18Embedder

LUMA = (0.299, 0.587, 0.114)
MASK_WEIGHT = 0.1  # FMPN's lambda_resface
# FMPN's mask files are numbered in CK+'s alphabetical label order; the project's CK+ order is models.data.loading.CK_LABELS
FMPN_MASK_ORDER = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
# Where the eyes sit in FMPN's 70x70 MTCNN crops, as fractions (x, y): the centres of the two eye blobs of the mean of
# all 70 mask files (10 folds x 7 classes), read off its row/column profiles; the mouth blob sits at (0.50, 0.77),
# which the eye-based similarity below maps to within 1 px (64 px) of the app template's mouth.
FMPN_EYES = ((0.28, 0.27), (0.73, 0.27))


# ----------------------------------------------------------------------------------------------- network
class ResBlock(nn.Module):
    """FMPN's residual block: x + [conv3x3 BN PReLU conv3x3 BN PReLU](x)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.PReLU(),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.PReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MaskGenerator(nn.Module):
    """Luma (B, 1, S, S) -> facial-motion mask (B, 1, S, S) in (0, 1). S must divide by 4."""

    def __init__(self, ngf: int = 16, n_blocks: int = 2):
        super().__init__()

        def cbr(conv, ch):
            return [conv, nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]

        layers = cbr(nn.Conv2d(1, ngf, 7, 1, 3, bias=False), ngf)
        layers += cbr(nn.Conv2d(ngf, 2 * ngf, 4, 2, 1, bias=False), 2 * ngf)
        layers += cbr(nn.Conv2d(2 * ngf, 4 * ngf, 4, 2, 1, bias=False), 4 * ngf)
        layers += [ResBlock(4 * ngf) for _ in range(n_blocks)]
        layers += cbr(nn.ConvTranspose2d(4 * ngf, 2 * ngf, 4, 2, 1, bias=False), 2 * ngf)
        layers += cbr(nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1, bias=False), ngf)
        layers += [nn.Conv2d(ngf, 1, 7, 1, 3, bias=False), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, luma: torch.Tensor) -> torch.Tensor:
        return self.net(luma)


class PriorFusion(nn.Module):
    """(crop (B, C, S, S), focus M * luma (B, 1, S, S)) -> fused crop (B, C, S, S) = crop + F(crop, focus)."""

    def __init__(self, in_chans: int):
        super().__init__()
        self.process_a = nn.Sequential(nn.Conv2d(in_chans, 3, 3, 1, 1, bias=False), nn.BatchNorm2d(3), nn.ReLU())
        self.process_b = nn.Sequential(nn.Conv2d(1, 3, 3, 1, 1, bias=False), nn.BatchNorm2d(3), nn.ReLU())
        self.mix = nn.Sequential(ResBlock(3), nn.Conv2d(3, in_chans, 3, 1, 1, bias=False))
        nn.init.zeros_(self.mix[-1].weight)  # fused == crop at the start (see the module docstring)

    def forward(self, crop: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
        return crop + self.mix(self.process_a(crop) + self.process_b(focus))


class FmpnEmbedder(ResNet18Embedder):
    """ResNet18Embedder whose trunk sees the prior-fused crop. Same API (forward_features (B, 512), forward_head),
    so it exports as the app's embedder graph; forward_with_mask also returns the mask for the loss."""

    def __init__(self, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.0, flip_average: bool = True,
                 ngf: int = 16, n_blocks: int = 2):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate, flip_average=flip_average)
        self.generator = MaskGenerator(ngf, n_blocks)
        self.fusion = PriorFusion(in_chans)
        self.register_buffer("luma", torch.tensor(LUMA if in_chans == 3 else (1.0,)).view(1, -1, 1, 1),
                             persistent=False)
        self.use_prior = True  # False: the classifier alone (the baseline of the same budget); never exported so

    def mask_and_fused(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.use_prior:
            return x.new_zeros(x.shape[0], 1, *x.shape[2:]), x
        luma = (x * self.luma).sum(1, keepdim=True)  # (B, 1, S, S), the normalised crop's luma
        mask = self.generator(luma)
        return mask, self.fusion(x, mask * luma)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return super()._features(self.mask_and_fused(x)[1])

    def forward_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: (logits (B, K), mask (B, 1, S, S)), one pass, no mirror averaging."""
        mask, fused = self.mask_and_fused(x)
        return self.forward_head(super()._features(fused)), mask


def fmpn_from_embedder(state: dict, in_chans: int, num_classes: int = 7, ngf: int = 16, n_blocks: int = 2,
                       drop_rate: float = 0.0) -> FmpnEmbedder:
    """An FMPN whose classifier is a trained ResNet18Embedder's weights; generator and fusion fresh."""
    model = FmpnEmbedder(in_chans=in_chans, num_classes=num_classes, ngf=ngf, n_blocks=n_blocks, drop_rate=drop_rate)
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(("generator.", "fusion."))]
    if missing or result.unexpected_keys:
        raise ValueError(f"weights do not fit the classifier (missing {missing[:3]}, unexpected "
                         f"{list(result.unexpected_keys)[:3]})")
    return model


# ----------------------------------------------------------------------------------------------- masks
def warp_to_template(masks: torch.Tensor, src_eyes, dst_eyes, size: int) -> torch.Tensor:
    """(K, H, W) masks in a crop whose eyes sit at src_eyes -> (K, size, size) in a crop whose eyes sit at dst_eyes
    (fractions (x, y) of the width/height), by the similarity (scale, rotation, shift) that maps one eye pair onto the
    other; outside the source crop is 0 (no motion)."""
    (sx0, sy0), (sx1, sy1) = src_eyes
    (dx0, dy0), (dx1, dy1) = dst_eyes
    src = complex(sx1 - sx0, sy1 - sy0)
    dst = complex(dx1 - dx0, dy1 - dy0)
    a = src / dst  # destination offset -> source offset (complex number: scale and rotation)
    # grid_sample works in [-1, 1] coordinates: u = 2x - 1; source = a * (dest - dst_eye0) + src_eye0
    theta = torch.tensor([[a.real, -a.imag, 0.0], [a.imag, a.real, 0.0]], dtype=torch.float32)
    shift = complex(sx0, sy0) - a * complex(dx0, dy0)  # in fractions
    theta[0, 2] = 2 * shift.real + a.real + (-a.imag) - 1   # u_s = 2 x_s - 1 with x_s = a x_d + shift, x_d = (u_d+1)/2
    theta[1, 2] = 2 * shift.imag + a.imag + a.real - 1
    grid = F.affine_grid(theta[None].expand(len(masks), 2, 3), [len(masks), 1, size, size], align_corners=False)
    return F.grid_sample(masks[:, None].float(), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0]


def read_fmpn_masks(folds_dir: str | Path, fold: int, size: int, labels: tuple[str, ...],
                    template=None) -> torch.Tensor:
    """FMPN's pseudo masks of one fold in [0, 1]: (len(labels), S, S) in `labels` order. With `template` (the app's
    alignment template, eyes first) they are moved from FMPN's crop into the app's (warp_to_template); without it
    only resized. A class without a mask file in that fold gets the mean of the fold's other masks."""
    from PIL import Image

    folder = Path(folds_dir) / "masks" / str(fold)
    if not folder.is_dir():
        raise FileNotFoundError(f"no FMPN masks for fold {fold} in {folder}")
    found = {}
    for c, name in enumerate(FMPN_MASK_ORDER):
        path = folder / f"{c}.png"
        if path.is_file():
            img = Image.open(path).convert("L").resize((size, size), Image.BILINEAR)
            found[name] = torch.from_numpy(np.asarray(img, np.float32) / 255.0)
    if not found:
        raise FileNotFoundError(f"{folder}: no mask files 0.png..6.png")
    mean = torch.stack(list(found.values())).mean(0)
    masks = torch.stack([found.get(name, mean) for name in labels])
    return masks if template is None else warp_to_template(masks, FMPN_EYES, template[:2], size)


def proxy_masks(crops_u8: torch.Tensor, labels: np.ndarray, num_classes: int, neutral: int) -> torch.Tensor:
    """(K, S, S) in [0, 1]: |mean luma of class c - mean luma of neutral|, min-max normalised per class;
    neutral's own mask (and a class without images) is zero. crops (N, S, S, C) uint8 of training images only."""
    x = crops_u8.float().div(255.0)
    luma = (x * torch.tensor(LUMA if x.shape[-1] == 3 else (1.0,))).sum(-1)  # (N, S, S)
    lab = torch.as_tensor(labels)
    if not (lab == neutral).any():
        raise ValueError("proxy masks need neutral training images")
    base = luma[lab == neutral].mean(0)
    masks = torch.zeros(num_classes, *luma.shape[1:])
    for c in range(num_classes):
        if c == neutral or not (lab == c).any():
            continue
        d = (luma[lab == c].mean(0) - base).abs()
        masks[c] = (d - d.min()) / (d.max() - d.min()).clamp_min(1e-8)
    return masks


# ----------------------------------------------------------------------------------------------- training
@dataclass
class FmpnTrainConfig:
    gen_epochs: float = 2.0        # stage 1: the generator alone on the mask MSE
    epochs: float = 4.0            # stage 2: everything jointly, CE + mask_weight * MSE
    batch_size: int = 32
    lr: float = 1e-4               # FMPN: Adam(beta1 0.5) 1e-4 for fusion + classifier
    gen_lr: float = 1e-5           # and 1e-5 for the generator in the joint stage
    gen_pretrain_lr: float = 1e-3  # stage 1 (FMPN pre-trains the generator separately; ours is far shorter)
    mask_weight: float = MASK_WEIGHT
    ngf: int = 16
    n_blocks: int = 2
    seed: int = 0


def _batches(n: int, epochs: float, batch: int, g: torch.Generator):
    if epochs <= 0:
        return []
    steps = max(1, int(epochs * n) // batch)
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(int(np.ceil(epochs)) or 1)])
    return [order[i * batch:(i + 1) * batch] for i in range(steps)]


def train_fmpn(model: FmpnEmbedder, crops_u8: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, pre,
               cfg: FmpnTrainConfig, target: torch.Tensor | None = None,
               class_weight: torch.Tensor | None = None) -> dict:
    """Both stages on uint8 crops (N, S, S, C) with labels (N,) indexing masks (K, S, S) and the classifier;
    `target` (N, K) soft targets replace the one-hot labels in the CE (FER+ votes). A random mirror image (crop
    and mask flipped together) is the only augmentation. Returns the loss curves."""
    from models.data.loading import normalise, to_input

    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    def batch(idx):
        x = normalise(to_input(crops_u8[idx], pre), pre)
        m = masks[labels[idx]].unsqueeze(1)
        flip = torch.rand(len(idx), generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        m = torch.where(flip[:, None, None, None], m.flip(3), m)
        return x, m

    curves = {"generator_mse": [], "joint_ce": [], "joint_mse": []}
    model.train()
    opt = torch.optim.Adam(model.generator.parameters(), lr=cfg.gen_pretrain_lr, betas=(0.5, 0.999))
    for idx in _batches(len(labels), cfg.gen_epochs, cfg.batch_size, g):  # stage 1: generator alone
        x, m = batch(idx)
        luma = (x * model.luma).sum(1, keepdim=True)
        loss = F.mse_loss(model.generator(luma), m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curves["generator_mse"].append(loss.item())
    gen = list(model.generator.parameters())
    rest = [p for n, p in model.named_parameters() if not n.startswith("generator.")]
    opt = torch.optim.Adam([{"params": rest, "lr": cfg.lr}, {"params": gen, "lr": cfg.gen_lr}], betas=(0.5, 0.999))
    for idx in _batches(len(labels), cfg.epochs, cfg.batch_size, g):  # stage 2: jointly
        x, m = batch(idx)
        logits, mask = model.forward_with_mask(x)
        if target is not None:
            logp = F.log_softmax(logits, -1)
            w = class_weight[None] if class_weight is not None else 1.0
            ce = -(w * target[idx] * logp).sum(1).mean()
        else:
            ce = F.cross_entropy(logits, labels[idx], weight=class_weight)
        mse = F.mse_loss(mask, m)
        loss = ce + cfg.mask_weight * mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curves["joint_ce"].append(ce.item())
        curves["joint_mse"].append(mse.item())
    model.eval()
    return curves


@torch.no_grad()
def fusion_share(model: FmpnEmbedder, crops_u8: torch.Tensor, pre) -> float:
    """How much the prior changes what the classifier sees: mean |fused - crop| / mean |crop| (0 = no effect)."""
    from models.data.loading import normalise, to_input

    model.eval()
    x = normalise(to_input(crops_u8, pre), pre)
    return float((model.mask_and_fused(x)[1] - x).abs().mean() / x.abs().mean().clamp_min(1e-8))


@torch.no_grad()
def predict(model: FmpnEmbedder, crops_u8: torch.Tensor, pre, batch: int = 256) -> np.ndarray:
    """Argmax class per crop, eval mode (mirror-averaged features, as the exported graph computes them)."""
    from models.data.loading import normalise, to_input

    model.eval()
    out = []
    for i in range(0, len(crops_u8), batch):
        x = normalise(to_input(crops_u8[i:i + batch], pre), pre)
        out.append(model.forward_head(model.forward_features(x)).argmax(1))
    return torch.cat(out).numpy()


def load_fmpn(path: str | Path):
    """(FmpnEmbedder in eval mode, Preprocess) from a `frames` run's fmpn.pt."""
    from app.faces.align import Preprocess
    from models.engine.checkpoints import CheckpointError

    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        pre = Preprocess.from_dict(json.loads(ck["preprocess"]))
        arch = json.loads(ck["arch"])
        model = FmpnEmbedder(in_chans=pre.channels, num_classes=ck["fmpn"]["fc.weight"].shape[0], **arch)
        model.load_state_dict(ck["fmpn"])
    except FileNotFoundError:
        raise CheckpointError(f"no FMPN checkpoint at {path}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path} is not an FMPN checkpoint ({type(e).__name__}: {first})") from None
    return model.eval(), pre


def export_fmpn(model: FmpnEmbedder, pre, out_dir: Path, name: str, extra: dict | None = None) -> Path:
    """The FMPN network as the app's embedder graph (crops -> 512-d features) plus a self-attention head whose
    classifier is FMPN's and whose attention is switched off (alpha scores 0: equal weights over the window, so
    for one frame it is exactly FMPN's classifier). Card fields under "fmpn" say what the graph holds."""
    from models.release.export import export_model
    from models.networks.fan import FanHead

    head = FanHead("self", dim=model.embed_dim, num_classes=model.fc.out_features)
    with torch.no_grad():
        head.alpha.weight.zero_()
        head.alpha.bias.zero_()
        head.classifier.weight.copy_(model.fc.weight)
        head.classifier.bias.copy_(model.fc.bias)
    info = {"fmpn": {"generator_ngf": model.generator.net[0].out_channels,
                     "generator_blocks": sum(isinstance(m, ResBlock) for m in model.generator.net),
                     "head_note": "self head with alpha = 0: equal frame weights (no trained attention)"}}
    return export_model(model.eval(), {"self": head.eval()}, out_dir, name, pre, window_length=WINDOW_LENGTH,
                        default_head="self", extra={**info, **(extra or {})})
