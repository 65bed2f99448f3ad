"""Training: stage 1 (frame embedder on FER+) and stage 2 (heads on clips: FAN, score fusion, GRU, transformer).

    python -m models.train frames --data ../shared/data --epochs 30 --out runs/frames
    python -m models.train clips  --embedder runs/frames/best.pt --out runs/clips
    python -m models.train clips  --embedder runs/frames/best.pt --heads relation self fusion gru gru-causal transformer
    torchrun --nproc_per_node 2 -m models.train frames ...      # data-parallel (gloo on CPU, NCCL on GPUs)

Every image goes through the app's own alignment (models.data.facecache -> app.faces.align), cached once. Checkpoints are
plain dicts of tensors and numbers that load with torch.load(weights_only=True); `--resume` continues from last.pt.
The resolved config is saved as config.json beside the run, and metrics.jsonl gets one line per epoch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from app.emotions import EMOTIONS
from app.faces.align import Preprocess
from models.data.augment import degrade, random_affine, train_augment
from models.engine.checkpoints import load_checkpoint, load_embedder, save_checkpoint, write_json
from models.engine.cli import DataOptions, TrainingOptions, add_dataclass_args, config_from_args
from models.networks.faer import CenterLoss, FeaturesAndLogits, build_embedder, embedder_arch, load_backbone
from models.networks.heads import HEADS, head_spec, new_head, train_head
from models.data.datasets import DOMAINS
from models.data.loading import (FrameData, ckplus_clip_tensors, load_ferplus_split,
    load_frame_data, normalise, to_input)
from models.engine.metrics import classification_report
from models.networks.fan import ResNet18Embedder
from models.engine.training import (class_weights, convert_first_conv, epoch_order,
    evaluate_valid_sets, mix_batch, recompute_batchnorm, running_mean, score_averaged_weights, soft_cross_entropy)
from models.engine.runtime import DistInfo, hardware_string, lr_at, resolve_device, set_threads

K = len(EMOTIONS)


# ----------------------------------------------------------------------------------------------- configs
@dataclass
class FramesConfig(TrainingOptions):
    out: str = "runs/frames"
    soft_labels: bool = True           # FER+ vote distribution as the target (FER+ paper's best scheme)
    class_weight_power: float = 0.5    # loss weight per class = (median freq / freq) ** power; 0 = unweighted
    limit_train: int = 0               # >0: a deterministic subset (tests, smoke runs)
    limit_valid: int = 0
    amp: bool = True                   # mixed precision (bf16) when on CUDA; ignored on the CPU
    init: str = ""                     # warm start: an embedder checkpoint's weights, with a fresh optimiser and schedule
    swa_epochs: int = 0                # >0: average the weights of the last N epochs (SWA) into swa.pt
    swa_lr: float = 0.005              # the cosine decays to this LR, then holds it through the SWA epochs
    # training data: FER+ Train and the train part of each other domain's fixed split (models.data.loading.DOMAINS)
    datasets: list[str] = field(default_factory=lambda: list(DOMAINS))
    # the domains whose held-out part selects the checkpoint (mean macro-F1); CK+48 frames are only reported
    valid_datasets: list[str] = field(default_factory=lambda: list(DOMAINS))
    # images drawn per epoch from a dataset, as a multiple of its train part: NAME=R (default 1; the mix)
    repeat: list[str] = field(default_factory=list)
    gray_prob: float = 0.2             # RGB only: share of crops turned gray (FER+ is gray; keeps both domains close)
    label_smoothing: float = 0.0       # target = (1 - e) * target + e / K
    mixup: float = 0.0                 # > 0: mixup with lambda ~ Beta(a, a) on images and targets (0 = off)
    wild_augment: bool = True          # colour jitter, JPEG artefacts, downscale-then-upscale (far-away faces)
    # FAER options (models.networks.faer): a contextual channel attention block (or an SE block, for comparison) where the
    # map is still spatial at input_size, and a centre loss on the pooled feature weighted by center_loss_weight
    cc_attention: bool = False
    se_attention: bool = False
    center_loss: bool = False
    center_loss_weight: float = 0.01


@dataclass
class ClipsConfig(DataOptions):
    embedder: str = "runs/frames/best.pt"
    out: str = "runs/clips"
    # stage-2 heads to train, by name (models.networks.heads.HEADS: relation self fusion gru gru-causal transformer)
    heads: list[str] = field(default_factory=lambda: ["relation", "self"])
    sources: list[str] = field(default_factory=lambda: ["ferplus-synth", "ckplus"])
    datasets: list[str] = field(default_factory=lambda: list(DOMAINS))  # images for synthetic clips
    clip_length: int = 8               # frames per synthetic clip
    variants: int = 8                  # degraded copies per FER+ image whose features are precomputed
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # learning-rate multipliers tried for a FAN head's classifier (0 = keep the frame classifier it starts from and
    # learn only the attention); each is trained and the best on FER+ Valid (single frame + synthetic clip
    # accuracy) is kept. The stage-1 features of FER+ Train are near-memorised, so a classifier re-fitted on them
    # can generalise worse than the frame classifier did. Heads with a fresh classifier (GRU, transformer) use 1.
    classifier_lr: list[float] = field(default_factory=lambda: [0.0, 1.0])
    limit_train: int = 0
    limit_valid: int = 0
    seed: int = 0
    threads: int = 0
    device: str = "auto"


# ----------------------------------------------------------------------------------------------- stage 1
def train_frames(cfg: FramesConfig) -> Path:
    if not 0 <= cfg.swa_epochs < cfg.epochs:
        raise SystemExit(f"error: --swa-epochs must lie in [0, --epochs), got {cfg.swa_epochs}")
    if cfg.cc_attention and cfg.se_attention:
        raise ValueError("--cc-attention and --se-attention are alternatives at one place; choose one")
    device = resolve_device(cfg.device)
    set_threads(cfg.threads)
    dd = DistInfo(device)
    device = dd.device
    torch.manual_seed(cfg.seed)
    pre = Preprocess(input_size=cfg.input_size, color=cfg.color)
    out = Path(cfg.out)
    if dd.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", {"stage": "frames", **asdict(cfg), "world_size": dd.world,
                                         "preprocess": pre.to_dict(), "command": " ".join(sys.argv)})
    # rank 0 builds the alignment cache first; the others then read it
    if not dd.main:
        dd.barrier()
    data = load_frame_data(cfg, pre, progress=dd.main)
    if dd.main:
        dd.barrier()

    crops, target = data.crops, data.target
    weight = class_weights(data.labels, cfg.class_weight_power) if cfg.class_weight_power else None

    block = "cc" if cfg.cc_attention else "se" if cfg.se_attention else "none"
    model = build_embedder(pre.channels, K, block, input_size=pre.input_size, drop_rate=0.2).to(device)
    core = FeaturesAndLogits(model)  # (logits, pooled features): the centre loss needs both
    net = torch.nn.parallel.DistributedDataParallel(core) if dd.enabled else core
    center = CenterLoss(K, model.embed_dim).to(device) if cfg.center_loss else None
    labels_t = torch.from_numpy(data.labels)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, momentum=0.9, nesterov=True)
    per_rank = len(epoch_order(data, cfg, torch.Generator().manual_seed(0))) // dd.world
    steps_per_epoch = max(1, per_rank // cfg.batch_size)
    total, warmup = steps_per_epoch * (cfg.epochs - cfg.swa_epochs), int(steps_per_epoch * cfg.warmup_epochs)
    floor = cfg.swa_lr if cfg.swa_epochs else 0.0
    swa_start = cfg.epochs - cfg.swa_epochs
    swa_state, swa_count = None, 0  # running mean of the weights after each SWA epoch
    start_epoch, best, step = 0, -1.0, 0
    if cfg.init and not (cfg.resume and (out / "last.pt").is_file()):
        init = load_checkpoint(cfg.init)
        init_pre = json.loads(init["preprocess"])
        # convolutions are size-agnostic (global pooling), and a gray first convolution converts exactly to RGB
        load_backbone(model, convert_first_conv(init["embedder"], pre.channels))  # a new block starts as identity
        if dd.main:
            print(f"initialised from {cfg.init} (epoch {int(init['epoch']) + 1}, trained on "
                  f"{init_pre['input_size']} px {init_pre['color']})", file=sys.stderr)
    if cfg.resume and (out / "last.pt").is_file():
        ck = load_checkpoint(out / "last.pt")
        model.load_state_dict(ck["embedder"])
        opt.load_state_dict(ck["optimizer"])
        if center is not None and "center" in ck:
            center.load_state_dict(ck["center"])
        start_epoch, best, step = int(ck["epoch"]) + 1, float(ck["best"]), int(ck["step"])
        if "swa" in ck:
            swa_state, swa_count = ck["swa"], int(ck["swa_count"])
        if dd.main:
            print(f"resumed from {out / 'last.pt'} at epoch {start_epoch}", file=sys.stderr)
    use_amp = cfg.amp and device.type == "cuda"
    hardware = hardware_string(device)
    meta = {"config": json.dumps(asdict(cfg)), "preprocess": json.dumps(pre.to_dict()),
            "embedder_arch": json.dumps(embedder_arch(model)), "hardware": hardware,
            "detection_rates": json.dumps(data.detection),
            "detection_rate_train": float(np.mean([v for k, v in data.detection.items() if k.endswith("_train")])),
            "detection_rate_valid": float(np.mean([v for k, v in data.detection.items()
                                                    if not k.endswith("_train")]))}

    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        perm = epoch_order(data, cfg, g)[dd.rank::dd.world][:steps_per_epoch * cfg.batch_size]
        aug_g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch * 7 + dd.rank)
        t0, run_loss = time.time(), 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not dd.main,
                   leave=False)
        for i in bar:
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x = train_augment(to_input(crops[idx], pre), aug_g, wild=cfg.wild_augment,
                              gray_prob=cfg.gray_prob if pre.color == "rgb" else 0.0)
            x = normalise(x, pre).to(device, non_blocking=True)
            y = target[idx].to(device)
            if cfg.label_smoothing:
                y = (1 - cfg.label_smoothing) * y + cfg.label_smoothing / K
            if cfg.mixup:
                x, y = mix_batch(x, y, cfg.mixup, aug_g)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr, floor)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits, feats = net(x)
            loss = soft_cross_entropy(logits, y, weight)
            if center is not None:  # each rank moves its own copy of the centres (close: they see similar batches)
                loss = loss + cfg.center_loss_weight * center(feats.float(), labels_t[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            run_loss += loss.item()
            bar.set_postfix(loss=f"{run_loss / (i + 1):.3f}")
        if dd.main:
            report = evaluate_valid_sets(model, data, pre, device)
            score = report["selection_score"]
            line = {"epoch": epoch + 1, "train_loss": run_loss / steps_per_epoch, "seconds": time.time() - t0,
                    **report_line(report)}
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")
            print(f"epoch {epoch + 1}: loss {line['train_loss']:.3f}  {format_valid(report)}  "
                  f"({line['seconds']:.0f} s)", file=sys.stderr)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            if score > best:
                best = score
                save_checkpoint(out / "best.pt", {"embedder": state, "epoch": epoch, **meta,
                                                  "metrics": json.dumps(report)})
            last = {"embedder": state, "optimizer": opt.state_dict(), "epoch": epoch, "best": best, "step": step,
                    **meta}
            if center is not None:
                last["center"] = {k: v.detach().cpu() for k, v in center.state_dict().items()}
            if epoch >= swa_start and cfg.swa_epochs:
                swa_count += 1
                swa_state = running_mean(swa_state, state, swa_count)
                last.update(swa=swa_state, swa_count=swa_count)
            save_checkpoint(out / "last.pt", last)
        dd.barrier()
    if dd.main and swa_state is not None:
        finish_swa(swa_state, swa_count, data, pre, device, out, meta, cfg.epochs)
    dd.close()
    return out


def report_line(report: dict) -> dict:
    """metrics.jsonl fields: the mean over validation sets at the top, each set's numbers under its name."""
    keep = ("accuracy", "macro_f1", "uar", "per_class_recall")
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "uar": report["uar"],
            "selection_score": report["selection_score"],
            **{name: {k: r[k] for k in keep} for name, r in report["by_dataset"].items()}}


def format_valid(report: dict) -> str:
    return "  ".join(f"{name} acc {r['accuracy']:.4f} F1 {r['macro_f1']:.4f}"
                     for name, r in report["by_dataset"].items())


def finish_swa(swa_state: dict, count: int, data: FrameData, pre: Preprocess, device, out: Path,
               meta: dict, epochs: int) -> None:
    """Averaged weights -> fresh BN statistics -> validation scores -> swa.pt (use it as --embedder like best.pt)."""
    model = build_embedder(pre.channels, K, **json.loads(meta.get("embedder_arch", "{}"))).to(device)
    model.load_state_dict(swa_state)
    recompute_batchnorm(model, data.crops, pre, device)
    report = evaluate_valid_sets(model, data, pre, device)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    line = {"epoch": epochs, "swa_epochs": count, **report_line(report)}
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    print(f"SWA over {count} epochs: {format_valid(report)}", file=sys.stderr)
    save_checkpoint(out / "swa.pt", {"embedder": state, "epoch": epochs - 1, **meta, "swa_epochs": count,
                                     "metrics": json.dumps(report)})


@dataclass
class AverageConfig(DataOptions):
    checkpoints: list[str] = field(default_factory=list)  # embedder checkpoints of one architecture/preprocessing
    out: str = "runs/average/average.pt"
    bn_update: bool = False            # recompute BN statistics on FER+ Train instead of averaging them
    limit_train: int = 0               # >0: deterministic subsets (tests)
    limit_valid: int = 0
    threads: int = 0
    device: str = "auto"


def average_checkpoints(cfg: AverageConfig) -> Path:
    """Uniform average of several embedders' weights (e.g. two epochs of one run), scored on FER+ Valid."""
    if len(cfg.checkpoints) < 2:
        raise ValueError("give at least two checkpoints to average")
    device = resolve_device(cfg.device)
    set_threads(cfg.threads)
    cks = [load_checkpoint(p) for p in cfg.checkpoints]
    pres = {ck["preprocess"] for ck in cks}
    if len(pres) != 1:
        raise ValueError("the checkpoints were trained with different preprocessing; they cannot be averaged")
    pre = Preprocess.from_dict(json.loads(pres.pop()))
    avg = None
    for n, ck in enumerate(cks, 1):
        avg = running_mean(avg, ck["embedder"], n)
    valid = load_ferplus_split(cfg.data, "FER2013Valid", pre, cfg.cache_dir, cfg.limit_valid, progress=True)
    bn_crops = None
    if cfg.bn_update:
        train = load_ferplus_split(cfg.data, "FER2013Train", pre, cfg.cache_dir, cfg.limit_train, progress=True)
        bn_crops = torch.from_numpy(train.crops[train.labels >= 0])
    state, report = score_averaged_weights(avg, pre, device, torch.from_numpy(valid.crops), valid.labels, bn_crops)
    print(f"average of {len(cks)}: valid acc {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}",
          file=sys.stderr)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, {**{k: cks[-1][k] for k in ("config", "hardware", "detection_rate_train",
                                                      "detection_rate_valid") if k in cks[-1]},
                          "embedder": state, "epoch": max(int(ck["epoch"]) for ck in cks),
                          "preprocess": json.dumps(pre.to_dict()), "metrics": json.dumps(report),
                          "averaged_from": json.dumps([str(p) for p in cfg.checkpoints]),
                          "bn_update": cfg.bn_update})
    return out


# ----------------------------------------------------------------------------------------------- stage 2
def synthetic_clip_features(model, crops_u8: torch.Tensor, pre: Preprocess, device, variants: int, seed: int,
                            progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of `variants` copies of each image: copy 0 clean, the rest degraded with random strength.

    Returns features (N, V, 512) and strength (N, V) in [0, 1] (0 = clean). Computed once; clips are then sampled
    from these per epoch, so stage 2 costs one embedder pass per copy, not per epoch.
    """
    g = torch.Generator().manual_seed(seed)
    n = len(crops_u8)
    feats = torch.empty(n, variants, ResNet18Embedder.embed_dim)
    strength = torch.zeros(n, variants)
    model.eval()
    with torch.no_grad():
        for v in tqdm(range(variants), desc="synthetic clip frames", disable=not progress):
            for i in range(0, n, 512):
                x = to_input(crops_u8[i:i + 512], pre)
                if v > 0:
                    # light jitter on every copy (a face never sits still), heavy degradation on about half
                    x = random_affine(x, g, max_rot_deg=6.0, scale=(0.95, 1.05), max_shift=0.03, flip=False)
                    s = torch.rand(len(x), generator=g) * (torch.rand(len(x), generator=g) < 0.6)
                    x = degrade(x, g, s)
                    strength[i:i + 512, v] = s
                feats[i:i + 512, v] = model.forward_features(normalise(x, pre).to(device)).float().cpu()
    return feats, strength


def attention_on_degraded(head: torch.nn.Module, feats: torch.Tensor, strength: torch.Tensor) -> dict:
    """Mean alpha (and final weight) of clean vs heavily degraded frames over whole synthetic clips."""
    with torch.no_grad():
        _, alpha, weight = head(feats)
    clean, bad = strength == 0, strength > 0.5
    return {"alpha_clean": float(alpha[clean].mean()), "alpha_degraded": float(alpha[bad].mean()),
            "weight_clean": float(weight[clean].mean()), "weight_degraded": float(weight[bad].mean())}


def train_clips(cfg: ClipsConfig) -> Path:
    unknown = [h for h in cfg.heads if h not in HEADS]
    if unknown or not cfg.heads:
        raise ValueError(f"--heads takes {' '.join(HEADS)}; got {' '.join(unknown or cfg.heads) or 'none'}")
    device = resolve_device(cfg.device)
    set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model, pre, ck = load_embedder(cfg.embedder)
    model.to(device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"stage": "clips", **asdict(cfg), "command": " ".join(sys.argv)})

    data = load_frame_data(FramesConfig(data=cfg.data, cache_dir=cfg.cache_dir, datasets=cfg.datasets,
                                        limit_train=cfg.limit_train, limit_valid=cfg.limit_valid), pre)
    tr_feats, tr_strength = synthetic_clip_features(model, data.crops, pre, device, cfg.variants, cfg.seed)
    tr_labels = torch.from_numpy(data.labels)
    valid = {}  # per validation set: (features (N, V, D), strength (N, V), labels (N,))
    for j, (vname, (vcrops, vlabels)) in enumerate(data.valid.items()):
        vf, vs = synthetic_clip_features(model, vcrops, pre, device, cfg.variants, cfg.seed + 1 + j)
        valid[vname] = (vf, vs, torch.from_numpy(vlabels))

    ck_clips = []
    if "ckplus" in cfg.sources:
        ck_clips = ckplus_clip_tensors(model, pre, cfg.data, cfg.cache_dir, device)  # [(feats (3, D), label)]
        ck_clips = [(f, y) for f, y in ck_clips if y >= 0]

    counts = torch.bincount(tr_labels, minlength=K).float()
    sample_w = (1.0 / counts.clamp_min(1)) ** 0.5  # soften imbalance when drawing clips
    draw_p = sample_w[tr_labels]
    draw_p /= draw_p.sum()
    T = cfg.clip_length

    def sample_batch(g):
        b_ck = min(len(ck_clips), cfg.batch_size // 8) if ck_clips else 0
        b = cfg.batch_size - b_ck
        idx = torch.multinomial(draw_p, b, replacement=True, generator=g)
        pick = torch.randint(0, cfg.variants, (b, T), generator=g)
        x = tr_feats[idx[:, None], pick]  # (b, T, D)
        mask = torch.ones(b, T)
        y = tr_labels[idx]
        if b_ck:  # real 3-frame CK+ clips, padded to T and masked
            ci = torch.randint(0, len(ck_clips), (b_ck,), generator=g)
            cx = torch.zeros(b_ck, T, x.shape[-1])
            cm = torch.zeros(b_ck, T)
            for j, c in enumerate(ci.tolist()):
                f, lab = ck_clips[c]
                cx[j, :len(f)] = f
                cm[j, :len(f)] = 1
            x, mask = torch.cat([x, cx]), torch.cat([mask, cm])
            y = torch.cat([y, torch.tensor([ck_clips[c][1] for c in ci.tolist()])])
        return x, mask, y

    steps = cfg.epochs * max(1, len(tr_labels) // cfg.batch_size)
    results = {}
    heads = {}
    for att in cfg.heads:
        spec = head_spec(att)
        candidates = {}
        # FAN heads start at the frame classifier and try each multiplier; fresh classifiers (GRU, transformer) learn
        # at the full rate; score fusion has nothing to learn (its one candidate is the frame classifier itself)
        lrs = [float(c) for c in cfg.classifier_lr] if spec.from_frame_classifier and spec.trained else \
            [1.0 if spec.trained else 0.0]
        for cls_lr in lrs:
            head = new_head(att, model.fc)
            losses = train_head(head, sample_batch, steps, cfg.lr, cfg.weight_decay, cfg.seed,
                                f"head {att} (classifier lr x{cls_lr:g})", classifier_lr=cls_lr)
            by_set = {}
            for vname, (va_feats, va_strength, va_labels) in valid.items():
                with torch.no_grad():
                    single = head(va_feats[:, :1])[0].argmax(1).numpy()  # a single clean frame: the still-image score
                    clip = head(va_feats)[0].argmax(1).numpy()           # the whole synthetic clip
                by_set[vname] = {
                    "single_frame": classification_report(va_labels.numpy(), single, EMOTIONS),
                    "synthetic_clip": classification_report(va_labels.numpy(), clip, EMOTIONS),
                    "attention": attention_on_degraded(head, va_feats, va_strength)}
            first = by_set[next(iter(by_set))]
            r = {
                "classifier_lr": cls_lr,
                # the first validation set's numbers keep their old names (FER+ Valid when it is trained on)
                "valid_single_frame": first["single_frame"],
                "valid_synthetic_clip": first["synthetic_clip"],
                "attention": first["attention"],
                "by_dataset": by_set,
                "final_loss": float(np.mean(losses[-50:])) if losses else None,
                "parameters": int(sum(p.numel() for p in head.parameters())),
            }
            # select on every validation set alike: the mean macro-F1 of single frames and of synthetic clips
            r["selection_score"] = float(np.mean([(v["single_frame"]["macro_f1"] + v["synthetic_clip"]["macro_f1"])
                                                  / 2 for v in by_set.values()]))
            candidates[cls_lr] = (r, {k: v.detach().cpu() for k, v in head.state_dict().items()})
            print(f"[{att}, classifier lr x{cls_lr:g}] " + "; ".join(
                f"{vname} single frame acc {v['single_frame']['accuracy']:.4f} F1 {v['single_frame']['macro_f1']:.4f}"
                f", synthetic clips acc {v['synthetic_clip']['accuracy']:.4f}" for vname, v in by_set.items()) +
                f"; alpha clean {r['attention']['alpha_clean']:.3f} vs degraded "
                f"{r['attention']['alpha_degraded']:.3f}", file=sys.stderr)
        best_lr = max(candidates, key=lambda c: candidates[c][0]["selection_score"])
        results[att] = {**candidates[best_lr][0],
                        "candidates": {f"{c:g}": {k: v for k, v in r.items() if k in
                                                  ("selection_score", "final_loss", "attention")} |
                                       {"single_frame_accuracy": r["valid_single_frame"]["accuracy"],
                                        "synthetic_clip_accuracy": r["valid_synthetic_clip"]["accuracy"]}
                                       for c, (r, _) in candidates.items()}}
        heads[att] = candidates[best_lr][1]
        print(f"[{att}] kept classifier lr x{best_lr:g}", file=sys.stderr)
    for vname, (va_feats, _, va_labels) in valid.items():  # score fusion on the same synthetic clips, for reference
        with torch.no_grad():
            fused = torch.softmax(model.fc(va_feats), -1).mean(1).argmax(1).numpy()
        key = "score_fusion_synthetic_clip" + ("" if vname == next(iter(valid)) else f"_{vname}")
        results[key] = classification_report(va_labels.numpy(), fused, EMOTIONS)
    write_json(out / "results.json", results)
    save_checkpoint(out / "model.pt", {"embedder": {k: v.cpu() for k, v in model.state_dict().items()},
                                       "heads": heads, "preprocess": ck["preprocess"],
                                       "embedder_arch": ck.get("embedder_arch", "{}"),
                                       "config": json.dumps(asdict(cfg)), "results": json.dumps(results),
                                       "embedder_checkpoint": str(cfg.embedder), "hardware": ck.get("hardware", ""),
                                       "frames_config": ck.get("config", "{}"),
                                       "frames_metrics": ck.get("metrics", "{}")})
    return out


STAGES = {"frames": (FramesConfig, train_frames, "stage 1: ResNet18 frame embedder on FER+ (and RAF-DB)"),
          "clips": (ClipsConfig, train_clips, "stage 2: heads (models.networks.heads) on clips of frozen features"),
          "average": (AverageConfig, average_checkpoints, "average embedder checkpoints' weights")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    for name, (cls, _, text) in STAGES.items():
        add_dataclass_args(sub.add_parser(name, help=text), cls,
                           choices={"heads": tuple(HEADS)} if cls is ClipsConfig else None)
    args = vars(parser.parse_args(argv))
    stage = args.pop("stage")
    cls, run, _ = STAGES[stage]
    try:
        out = run(config_from_args(cls, args))
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"done: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
