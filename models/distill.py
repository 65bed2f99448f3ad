"""Identity distillation: pretrain the app's ResNet18 embedder to reproduce a face-identity teacher's embedding.

    python -m models.distill pretrain --teacher dlib --datasets ferplus,rafdb,ckplus --input-size 64 --color gray \
        --epochs 30 --threads 1 --out runs/distill
    python -m models.distill features --teacher hse --datasets ferplus,rafdb,ckplus     # only fill the feature cache
    python -m models.train frames --init runs/distill/last.pt ...                        # then learn expressions

Contract:
- Every image goes through the app's own alignment (models.data.facecache, cached). The student sees its crop through
  the app's Preprocess (input size, colour, mean/std: what the live app feeds it). The teacher sees the SAME
  alignment (same landmarks, same template) re-warped from the original image at its own input size in RGB, with its
  own normalisation (models.networks.teachers); student and teacher crops of one image are rows of the same index.
- `teacher_features(teacher, aligned)` embeds a crop set once: (N, D) float32, unit rows, cached as
  `<cache_dir>/teacher_<teacher>_<set>_<key>.npz`, the key a sha256 over the teacher's weights and input
  convention, the template, and the set's paths and landmarks (or its crops when it has no paths). A killed run
  resumes from a `.partial.npz` written every few thousand images.
- `DistillHead`: a learnable linear map from the student's 512-d feature to the teacher's D; loss = mean(1 - cos).
  `distill_step` is one optimiser step of student + head on a normalised batch.
- Targets are centred by default: t' = normalise(t - mean of the training targets). Identity codes share a large
  common direction (any two faces' codes are nearly as close as one person's), so raw targets let a student that
  outputs the mean face score high and leave little gradient for what tells people apart; centred, that student
  scores 0 (the measurements are in docs/training.md).
- The student's input is augmented (models.data.augment.train_augment, or flips only); the target stays the teacher's
  embedding of the clean crop, so the student learns an identity code that survives jitter, blur and occlusion.
- Which images: FER+ (the splits in --ferplus-splits, Train only by default: Valid selects models and Test scores
  them), RAF-DB train less the project's held-out val split (models.data.datasets.rafdb_split), and all of CK+ (note: CK+
  is scored by subject-independent CV, and its images are then no longer unseen by the student, though no expression
  label is used here); `sfew` and `taiwanese` add the train parts of their fixed splits (models.data.loading.DOMAINS). --holdout keeps a seeded share of the crops out of training to score the
  student's cosine to the teacher's (centred) code each epoch; the mean face scores 0 there.
- Checkpoints are models.train frames checkpoints (`embedder` state dict of a ResNet18Embedder with a 7-way fc that
  was never trained, `epoch`, `preprocess` and `config` as JSON strings, `hardware`), plus `distill_head`, `teacher`,
  `teacher_mean` (the centring vector) and, in last.pt, `optimizer`/`step`/`best` for --resume. They load with models.train.load_checkpoint, and
  `python -m models.train frames --init runs/distill/last.pt` warm starts from them (same input size and colour).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from app.durable import atomic_write
from app.emotions import EMOTIONS
from app.faces.align import Preprocess
from models.data.facecache import AlignedSet, align_from_landmarks, cached_aligned_set, default_cache_dir
from models.networks.fan import ResNet18Embedder
from models.networks.teachers import TEACHERS, Teacher, load_teacher
from models.engine.checkpoints import load_checkpoint, save_checkpoint, write_json
from models.engine.cli import TrainingOptions, add_dataclass_args, config_from_args
from models.data.loading import normalise, subset_landmarks_from_full, to_input
from models.engine.runtime import hardware_string, lr_at, resolve_device

log = logging.getLogger(__name__)

FEATURES_VERSION = 1       # bump when teacher_features' crops or maths change: old feature caches are then ignored
WARP_CHUNK = 512           # images re-warped and embedded at a time (a 224 px RGB chunk is ~77 MB)
PARTIAL_EVERY = 4096       # images between saves of a resumable partial feature file
DATASETS = ("ferplus", "rafdb", "ckplus")  # the default set; sfew and taiwanese (train parts) are accepted too
KNOWN_DATASETS = ("ferplus", "ckplus", "rafdb", "sfew", "taiwanese")


# ------------------------------------------------------------------------------------------- teacher features

def teacher_preprocess(teacher: Teacher, aligned: AlignedSet) -> Preprocess:
    """The teacher's crop of this set: the set's own template, at the teacher's size, RGB."""
    return Preprocess(input_size=teacher.input_size, color="rgb", mean=(0.5,) * 3, std=(0.5,) * 3,
                      template=aligned.pre.template)


def _can_rewarp(aligned: AlignedSet) -> bool:
    return len(aligned) > 0 and all(aligned.paths) and bool(np.isfinite(aligned.landmarks).all())


def features_key(teacher: Teacher, aligned: AlignedSet) -> str:
    """sha256 over the teacher (weights, input convention, its crop) and the set (paths + landmarks, else crops)."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": FEATURES_VERSION, "teacher": teacher.name, "weights": teacher.weights_sha256,
                         "input_norm": teacher.input_norm, "pre": teacher_preprocess(teacher, aligned).to_dict(),
                         "n": len(aligned)}).encode())
    if _can_rewarp(aligned):
        for p in aligned.paths:
            h.update(str(Path(p).resolve()).encode())
            h.update(b"\0")
        h.update(np.ascontiguousarray(aligned.landmarks, np.float32).tobytes())
    else:
        h.update(json.dumps(aligned.preprocess).encode())
        h.update(np.ascontiguousarray(aligned.crops).tobytes())
    return h.hexdigest()


def features_path(cache_dir, teacher: Teacher, name: str, key: str) -> Path:
    return Path(cache_dir) / f"teacher_{teacher.name}_{name or 'set'}_{key[:16]}.npz"


def _teacher_crops(teacher: Teacher, aligned: AlignedSet, pre: Preprocess, lo: int, hi: int) -> np.ndarray:
    """Rows lo:hi as the teacher's uint8 crops: the set's own crops when they already are RGB at its size, else
    re-warped from the original images with the stored landmarks (no detection), else the set's crops resized."""
    if aligned.crops.shape[1] == teacher.input_size and aligned.crops.shape[3] == 3:  # same template by construction
        return aligned.crops[lo:hi]
    if _can_rewarp(aligned):
        part = align_from_landmarks(list(aligned.paths[lo:hi]), aligned.landmarks[lo:hi], aligned.detected[lo:hi],
                                    aligned.fallback, pre, progress=False)
        return part.crops
    return aligned.crops[lo:hi]  # Teacher.embed resizes (and replicates gray); only for sets without image files


def _save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, **arrays), binary=True)


def teacher_features(teacher: Teacher, aligned: AlignedSet, cache_dir=None, name: str = "", batch_size: int = 64,
                     progress: bool = True, use_cache: bool = True) -> np.ndarray:
    """(N, D) float32 unit-norm teacher embeddings of an aligned crop set, computed once and cached (see module
    docstring). cache_dir None: $FANLIVE_CACHE or cache/; use_cache False computes without reading or writing."""
    key = features_key(teacher, aligned)
    path = features_path(cache_dir if cache_dir is not None else default_cache_dir(), teacher, name, key)
    partial = path.with_name(path.stem + ".partial.npz")
    n, done = len(aligned), 0
    feats = np.zeros((n, teacher.embed_dim), np.float32)
    if use_cache:
        for candidate in (path, partial):
            if not candidate.is_file():
                continue
            try:
                with np.load(candidate, allow_pickle=False) as z:
                    if str(z["key"]) == key:
                        done = int(z["done"])
                        feats[:done] = z["features"][:done]
            except (OSError, ValueError, KeyError) as e:
                log.warning("%s: unreadable teacher features (%s), computing again", candidate, e)
                done = 0
            if done:
                break
        if done == n:
            log.info("%s: teacher features cache hit (%d x %d)", path, n, teacher.embed_dim)
            return feats
        if done:
            log.info("%s: resuming teacher features at %d of %d", partial, done, n)
    pre = teacher_preprocess(teacher, aligned)
    last_save = done
    bar = tqdm(total=n, initial=done, desc=f"{teacher.name} features {name}", unit="img", disable=not progress,
               smoothing=0.05)
    for lo in range(done, n, WARP_CHUNK):
        hi = min(n, lo + WARP_CHUNK)
        feats[lo:hi] = teacher.embed(_teacher_crops(teacher, aligned, pre, lo, hi), batch_size=batch_size)
        bar.update(hi - lo)
        if use_cache and hi < n and hi - last_save >= PARTIAL_EVERY:
            _save_npz(partial, key=np.array(key), done=np.array(hi), features=feats[:hi])
            last_save = hi
    bar.close()
    if use_cache:
        _save_npz(path, key=np.array(key), done=np.array(n), features=feats)
        partial.unlink(missing_ok=True)
    return feats


# ------------------------------------------------------------------------------------------------ head, step

class DistillHead(nn.Module):
    """Student feature (B, 512) -> teacher space (B, D), a learnable linear map; loss = mean(1 - cos)."""

    def __init__(self, teacher_dim: int, student_dim: int = ResNet18Embedder.embed_dim):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)

    def loss(self, features: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
        return (1.0 - F.cosine_similarity(self(features).float(), teacher_emb.float(), dim=1)).mean()


def distill_step(student: ResNet18Embedder, proj: DistillHead, x: torch.Tensor, teacher_emb: torch.Tensor,
                 opt: torch.optim.Optimizer) -> float:
    """One optimiser step on a normalised batch x (B, C, S, S) and its teacher embeddings (B, D); returns the loss
    before the step."""
    student.train()
    proj.train()
    loss = proj.loss(student.forward_features(x), teacher_emb)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


@torch.no_grad()
def student_cosine(student: ResNet18Embedder, proj: DistillHead, crops_u8: torch.Tensor, teacher_emb: torch.Tensor,
                   pre: Preprocess, device: torch.device, batch: int = 256) -> float:
    """Mean cosine between the projected student feature (eval mode, as the app runs it) and the teacher's."""
    student.eval()
    proj.eval()
    total = 0.0
    for i in range(0, len(crops_u8), batch):
        x = normalise(to_input(crops_u8[i:i + batch], pre), pre).to(device)
        out = proj(student.forward_features(x))
        total += float(F.cosine_similarity(out, teacher_emb[i:i + batch].to(device), dim=1).sum())
    return total / max(1, len(crops_u8))


# ------------------------------------------------------------------------------------------------- datasets

@dataclass
class DistillConfig(TrainingOptions):
    teacher: str = "dlib"
    datasets: str = ",".join(DATASETS)        # comma-separated, from KNOWN_DATASETS
    ferplus_splits: str = "train"             # comma-separated FER+ splits (train, valid, test)
    models_dir: str = ""                      # "" = $FANLIVE_MODELS, else ../shared/models
    out: str = "runs/distill"
    center: bool = True                       # distil normalise(t - mean t) (see the module docstring)
    augment: bool = True                      # models.data.augment.train_augment on the student's input
    flip: bool = True                         # without augment: random horizontal flips only
    holdout: float = 0.02                     # seeded share of crops scored, never trained on
    limit: int = 0                            # >0: at most this many images per dataset split (tests, smoke runs)
    teacher_batch: int = 64
    workers: int = 1                          # detector processes when a dataset's landmarks are not cached yet


def dataset_samples(data: Path, dataset: str, ferplus_splits: list[str]) -> list[tuple[str, list, np.ndarray | None]]:
    """[(cache name, samples, indices to distil on or None for all)], with models.data.facecache's CLI cache names so
    its crop and landmark caches are shared. The one-folder domains of models.data.loading.DOMAINS (RAF-DB, SFEW, the
    posed set) give their train part only: their fixed held-out parts select and score expression models."""
    from models.data import datasets
    from models.data.datasets import DOMAINS

    if dataset == "ferplus":
        folder = data / "ferplus" if (data / "ferplus").is_dir() else data
        short = {"FER2013Train": "train", "FER2013Valid": "valid", "FER2013Test": "test"}
        splits = datasets.read_ferplus(folder, ferplus_splits)
        return [(f"ferplus_{short.get(k, k.lower())}", v, None) for k, v in splits.items()]
    if dataset == "ckplus":
        folder = data / "ckplus48" if (data / "ckplus48").is_dir() else data
        return [("ckplus", datasets.read_ckplus(folder), None)]
    if dataset in DOMAINS and DOMAINS[dataset].split is not None:
        domain = DOMAINS[dataset]
        samples = domain.read(data)
        return [(domain.cache_name, samples, np.asarray(domain.split(samples)[0], np.int64))]
    raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(KNOWN_DATASETS)}")


def load_crop_sets(cfg: DistillConfig, pre: Preprocess, progress: bool = True) -> list[tuple[str, AlignedSet]]:
    """The student's aligned crop sets, one per dataset split, through the shared crop caches."""
    out = []
    cache_dir = Path(cfg.cache_dir)
    for dataset in [d.strip() for d in cfg.datasets.split(",") if d.strip()]:
        splits = [s.strip() for s in cfg.ferplus_splits.split(",") if s.strip()]
        for name, samples, keep in dataset_samples(Path(cfg.data), dataset, splits):
            if cfg.limit:  # a deterministic spread subset under its own cache name; landmarks from the full split
                idx = keep if keep is not None else np.arange(len(samples))
                idx = idx[::max(1, len(idx) // cfg.limit)][:cfg.limit]
                subset = [samples[i] for i in idx]
                sub_name = f"{name}_distill{cfg.limit}"
                subset_landmarks_from_full(samples, subset, cache_dir, name, sub_name)
                aligned = cached_aligned_set(subset, pre, cache_dir, sub_name, progress=progress)
                name = sub_name
            else:
                aligned = cached_aligned_set(samples, pre, cache_dir, name, progress=progress, workers=cfg.workers)
                if keep is not None:
                    aligned = aligned.select(keep)
            out.append((name, aligned))
    if not out:
        raise ValueError("no datasets given (--datasets ferplus,rafdb,ckplus)")
    return out


def student_preprocess(cfg: DistillConfig) -> Preprocess:
    ch = 1 if cfg.color == "gray" else 3
    return Preprocess(input_size=cfg.input_size, color=cfg.color, mean=(0.5,) * ch, std=(0.5,) * ch)


def distill_data(cfg: DistillConfig, teacher: Teacher, progress: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, Preprocess, float]:
    """Student crops (N, S, S, C) uint8, teacher embeddings (N, D), the student's Preprocess, detection rate."""
    pre = student_preprocess(cfg)
    sets = load_crop_sets(cfg, pre, progress)
    crops, feats, detected = [], [], []
    for name, aligned in sets:
        feats.append(teacher_features(teacher, aligned, cfg.cache_dir, name, cfg.teacher_batch, progress))
        crops.append(aligned.crops)
        detected.append(aligned.detected)
        log.info("%s: %d crops, detection rate %.3f", name, len(aligned), aligned.detection_rate)
    return np.concatenate(crops), np.concatenate(feats), pre, float(np.concatenate(detected).mean())


# --------------------------------------------------------------------------------------------------- training

def pretrain(cfg: DistillConfig) -> Path:
    """Train a ResNet18 student from scratch on every crop of cfg.datasets; writes last.pt and best.pt."""
    if cfg.teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {cfg.teacher!r}; choose from {', '.join(TEACHERS)}")
    if cfg.color not in ("gray", "rgb"):
        raise ValueError(f"--color must be gray or rgb, not {cfg.color!r}")
    if not 0 <= cfg.holdout < 1:
        raise ValueError(f"--holdout must lie in [0, 1), got {cfg.holdout}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
        cv2.setNumThreads(cfg.threads)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = load_teacher(cfg.teacher, cfg.models_dir or None).to(device)
    crops_np, feats_np, pre, detection_rate = distill_data(cfg, teacher)
    write_json(out / "config.json", {"stage": "distill", **asdict(cfg), "preprocess": pre.to_dict(),
                                     "teacher_input_norm": teacher.input_norm, "command": " ".join(sys.argv)})

    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(crops_np))
    n_hold = int(round(len(order) * cfg.holdout))
    hold, train_idx = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    teacher_mean = feats_np[train_idx].mean(0) if cfg.center else np.zeros(feats_np.shape[1], np.float32)
    feats_np = feats_np - teacher_mean
    feats_np /= np.maximum(np.linalg.norm(feats_np, axis=1, keepdims=True), 1e-12)
    crops, targets = torch.from_numpy(crops_np[train_idx]), torch.from_numpy(feats_np[train_idx])
    hcrops, htargets = torch.from_numpy(crops_np[hold]), torch.from_numpy(feats_np[hold])
    if len(crops) < cfg.batch_size:
        raise ValueError(f"{len(crops)} training crops are fewer than one batch of {cfg.batch_size}")

    student = ResNet18Embedder(in_chans=pre.channels, num_classes=len(EMOTIONS)).to(device)
    head = DistillHead(teacher.embed_dim).to(device)
    params = [*student.parameters(), *head.parameters()]
    opt = torch.optim.SGD([{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
                           {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=0.9, nesterov=True)
    steps_per_epoch = len(crops) // cfg.batch_size
    total, warmup = steps_per_epoch * cfg.epochs, int(steps_per_epoch * cfg.warmup_epochs)
    start_epoch, step, best = 0, 0, -2.0
    if cfg.resume and (out / "last.pt").is_file():
        ck = load_checkpoint(out / "last.pt")
        if json.loads(ck["preprocess"]) != pre.to_dict() or json.loads(ck["teacher"])["name"] != teacher.name:
            raise ValueError(f"{out / 'last.pt'} was made with another teacher or preprocessing; use a new --out")
        student.load_state_dict(ck["embedder"])
        head.load_state_dict(ck["distill_head"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, step, best = int(ck["epoch"]) + 1, int(ck["step"]), float(ck["best"])
        print(f"resumed from {out / 'last.pt'} at epoch {start_epoch + 1}", file=sys.stderr)
    meta = {"preprocess": json.dumps(pre.to_dict()), "config": json.dumps(asdict(cfg)),
            "hardware": hardware_string(device), "detection_rate_train": detection_rate,
            "teacher_mean": torch.from_numpy(teacher_mean.astype(np.float32)),
            "teacher": json.dumps({"name": teacher.name, "embed_dim": teacher.embed_dim,
                                   "input_norm": teacher.input_norm, "weights_sha256": teacher.weights_sha256})}

    from models.data.augment import train_augment
    for epoch in range(start_epoch, cfg.epochs):
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        perm = torch.randperm(len(crops), generator=g)
        t0, run_loss = time.time(), 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"distill epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for i in bar:
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            x = to_input(crops[idx], pre)
            if cfg.augment:
                x = train_augment(x, g)
            elif cfg.flip:
                flip = torch.rand(len(x), generator=g) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
            loss = distill_step(student, head, normalise(x, pre).to(device), targets[idx].to(device), opt)
            step += 1
            run_loss += loss
            bar.set_postfix(loss=f"{run_loss / (i + 1):.4f}")
        cos = student_cosine(student, head, hcrops, htargets, pre, device) if len(hcrops) else float("nan")
        line = {"epoch": epoch + 1, "train_loss": run_loss / steps_per_epoch, "holdout_cosine": cos,
                "seconds": time.time() - t0}
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"epoch {epoch + 1}: loss {line['train_loss']:.4f}  held-out cosine to the teacher's code {cos:.4f}  "
              f"({line['seconds']:.0f} s)", file=sys.stderr)
        state = {k: v.detach().cpu() for k, v in student.state_dict().items()}
        head_state = {k: v.detach().cpu() for k, v in head.state_dict().items()}
        score = cos if len(hcrops) else -line["train_loss"]
        record = {"embedder": state, "distill_head": head_state, "epoch": epoch, **meta, "metrics": json.dumps(line)}
        if score > best:
            best = score
            save_checkpoint(out / "best.pt", record)
        save_checkpoint(out / "last.pt", {**record, "optimizer": opt.state_dict(), "step": step, "best": best})
    return out


def build_features(cfg: DistillConfig) -> Path:
    """Only align and embed (fill the caches), e.g. on a CPU box before training elsewhere."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    teacher = load_teacher(cfg.teacher, cfg.models_dir or None).to(resolve_device(cfg.device))
    crops, feats, _, rate = distill_data(cfg, teacher)
    print(f"{len(crops)} crops embedded by {teacher.name} ({feats.shape[1]}-d), detection rate {rate:.3f}",
          file=sys.stderr)
    return Path(cfg.cache_dir)


# ------------------------------------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    choices = {"teacher": tuple(TEACHERS), "color": ("gray", "rgb")}
    add_dataclass_args(sub.add_parser("pretrain", help="train a ResNet18 student on a teacher's embeddings"),
                       DistillConfig, choices=choices)
    add_dataclass_args(sub.add_parser("features", help="only align and embed every crop (fill the caches)"),
                       DistillConfig, choices=choices)
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = config_from_args(DistillConfig, args)
        out = pretrain(cfg) if command == "pretrain" else build_features(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"done: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
