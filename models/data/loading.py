"""Dataset loading shared by stage 1, stage 2, CK+ CV, the comparison and the evaluation (a leaf: of models.* it
imports only models.data.datasets and models.data.facecache).

- to_input / normalise: uint8 crops -> the network's float input (augment between the two).
- embed_all: features and frame logits of a crop set, eval mode.
- DOMAINS, load_domain, load_frame_data: the aligned FER+, RAF-DB, SFEW and posed sets with their fixed
  validation splits (cached by facecache).
- load_ckplus / clip_index / ckplus_clip_tensors: CK+48 crops and its 327 three-frame clips (CK+'s 7 classes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from tqdm import tqdm

from app.emotions import EMOTIONS, canonical_emotion
from app.faces.align import Preprocess
from models.data.datasets import DOMAINS

if TYPE_CHECKING:
    from models.networks.fan import ResNet18Embedder

K = len(EMOTIONS)
# CK+'s classes: the app's six basic emotions (no neutral in CK+ apex frames) plus contempt.
CK_LABELS = tuple(e for e in EMOTIONS if e != "neutral") + ("contempt",)


def to_input(crops_u8: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """uint8 (B, S, S, C) -> float (B, C, S, S) in [0, 1] (augment first, then normalise())."""
    return crops_u8.permute(0, 3, 1, 2).float().div_(255.0)


def normalise(x: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    mean = torch.tensor(pre.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(pre.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def embed_all(model: ResNet18Embedder, crops_u8: torch.Tensor, pre: Preprocess, device: torch.device,
              batch: int = 512, progress: bool = False, desc: str = "embed") -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, 512) and frame logits (N, K) of uint8 crops (N, S, S, C), eval mode."""
    model.eval()
    feats, logits = [], []
    for i in tqdm(range(0, len(crops_u8), batch), desc=desc, disable=not progress, leave=False):
        x = normalise(to_input(crops_u8[i:i + batch], pre), pre).to(device)
        f = model.forward_features(x)
        feats.append(f.float().cpu())
        logits.append(model.forward_head(f).float().cpu())
    return torch.cat(feats), torch.cat(logits)


def load_ferplus_split(data: str | Path, split: str, pre: Preprocess, cache_dir: str | Path, limit: int = 0,
                       progress: bool = True):
    """Aligned FER+ crops of one split, with majority labels and vote distributions (cached)."""
    from models.data.datasets import read_ferplus
    from models.data.facecache import cached_aligned_set

    folder = Path(data) / "ferplus" if (Path(data) / "ferplus").is_dir() else Path(data)
    samples = read_ferplus(folder, [split])[split]
    # the same cache names as `python -m models.data.facecache --dataset ferplus`, so a prebuilt cache is reused
    name = "ferplus_" + {"FER2013Train": "train", "FER2013Valid": "valid", "FER2013Test": "test"}.get(split, split)
    if limit:  # a deterministic, class-spread subset: every k-th labelled sample (cached under its own name)
        labelled = [s for s in samples if s.label is not None]
        step = max(1, len(labelled) // limit)
        subset = labelled[::step][:limit]
        subset_landmarks_from_full(samples, subset, Path(cache_dir), name, name + f"_first{limit}")
        samples, name = subset, name + f"_first{limit}"
    return cached_aligned_set(samples, pre, Path(cache_dir), name, progress=progress, workers=2 if not limit else 1)




def load_split_domain(name: str, data: str | Path, pre: Preprocess, cache_dir: str | Path, limit: int = 0,
                      progress: bool = True):
    """Aligned crops of a one-folder domain (RAF-DB, SFEW, the posed set): (train split, val split), its fixed
    split (models.data.datasets). One cache for the whole folder; limit > 0 takes every k-th image of each split
    (tests, smoke runs), cached under its own name."""
    from models.data.facecache import cached_aligned_set

    domain = DOMAINS[name]
    samples = domain.read(Path(data))
    tr_idx, va_idx = domain.split(samples)
    if limit:
        tr_idx = tr_idx[::max(1, len(tr_idx) // limit)][:limit]
        va_idx = va_idx[::max(1, len(va_idx) // limit)][:limit]
        keep = np.concatenate([tr_idx, va_idx])
        subset = [samples[i] for i in keep]
        sub_name = domain.cache_name + f"_first{limit}"
        subset_landmarks_from_full(samples, subset, Path(cache_dir), domain.cache_name, sub_name)
        aligned = cached_aligned_set(subset, pre, Path(cache_dir), sub_name, progress=progress, workers=1)
        return aligned.select(np.arange(len(tr_idx))), aligned.select(np.arange(len(tr_idx), len(keep)))
    aligned = cached_aligned_set(samples, pre, Path(cache_dir), domain.cache_name, progress=progress, workers=2)
    return aligned.select(tr_idx), aligned.select(va_idx)


def load_domain(name: str, data: str | Path, pre: Preprocess, cache_dir: str | Path, limit_train: int = 0,
                limit_valid: int = 0, progress: bool = True):
    """(train, val) aligned sets of any domain in DOMAINS."""
    if name not in DOMAINS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DOMAINS)}")
    if DOMAINS[name].split is None:
        return (load_ferplus_split(data, "FER2013Train", pre, cache_dir, limit_train, progress),
                load_ferplus_split(data, "FER2013Valid", pre, cache_dir, limit_valid, progress))
    train, val = load_split_domain(name, data, pre, cache_dir, limit_train, progress)
    if limit_valid:
        val = val.select(np.arange(min(len(val), limit_valid)))
    return train, val


def load_valid(name: str, data: str | Path, pre: Preprocess, cache_dir: str | Path, limit: int = 0,
               progress: bool = True):
    """The held-out aligned set of any domain in DOMAINS (FER+ Valid without reading FER+ Train)."""
    if name not in DOMAINS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DOMAINS)}")
    if DOMAINS[name].split is None:
        return load_ferplus_split(data, "FER2013Valid", pre, cache_dir, limit, progress)
    return load_split_domain(name, data, pre, cache_dir, limit, progress)[1]


@dataclass
class FrameData:
    """Stage-1 data: training crops of every dataset in one array, and one validation set per dataset."""

    crops: torch.Tensor                # (N, S, S, C) uint8
    target: torch.Tensor               # (N, K) float: FER+ vote distributions (or one-hot), RAF-DB one-hot
    labels: np.ndarray                 # (N,) int64
    source: np.ndarray                 # (N,) index into `names`
    names: list[str]
    valid: dict[str, tuple[torch.Tensor, np.ndarray]]  # Domain.valid_name -> (crops, labels): model selection
    detection: dict[str, float]        # detection rate per split
    report_only: dict[str, tuple[torch.Tensor, np.ndarray]]  # scored every epoch, never selects: CK+48 frames


class FrameSource(Protocol):
    """What load_frame_data reads from a config (models.train.FramesConfig has these fields)."""

    data: str
    cache_dir: str
    datasets: list[str]
    valid_datasets: list[str]
    limit_train: int
    limit_valid: int
    soft_labels: bool


def load_frame_data(cfg: FrameSource, pre: Preprocess, progress: bool = True) -> FrameData:
    """Training crops of cfg.datasets; the held-out part of every domain in cfg.datasets and cfg.valid_datasets
    (selection); CK+48 frames when the data has them (reported, never trained on or selected by)."""
    unknown = (set(cfg.datasets) | set(cfg.valid_datasets)) - set(DOMAINS)
    if unknown or not cfg.datasets:
        raise ValueError(f"--datasets takes {', '.join(DOMAINS)}; got {' '.join(cfg.datasets) or 'none'}"
                         + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
    crops, targets, labels, source, valid, detection = [], [], [], [], {}, {}
    for name in dict.fromkeys([*cfg.datasets, *cfg.valid_datasets]):
        if name in cfg.datasets:
            train, val = load_domain(name, cfg.data, pre, cfg.cache_dir, cfg.limit_train, cfg.limit_valid, progress)
        else:
            train, val = None, load_valid(name, cfg.data, pre, cfg.cache_dir, cfg.limit_valid, progress)
        vkeep = val.labels >= 0
        valid[DOMAINS[name].valid_name] = (torch.from_numpy(val.crops[vkeep]), val.labels[vkeep])
        detection[DOMAINS[name].valid_name] = float(val.detection_rate)
        if train is None:
            continue
        keep = np.flatnonzero(train.labels >= 0)  # images with a label among the 7 classes
        lab = train.labels[keep]
        onehot = np.eye(K, dtype=np.float32)[lab]
        tgt = train.votes[keep] if cfg.soft_labels else onehot
        tgt = np.where(tgt.sum(1, keepdims=True) > 0, tgt, onehot)  # no votes (all but FER+): the one-hot label
        crops.append(train.crops[keep])
        targets.append(tgt)
        labels.append(lab)
        source.append(np.full(len(keep), cfg.datasets.index(name)))
        detection[f"{name}_train"] = float(train.detection_rate)
    return FrameData(torch.from_numpy(np.concatenate(crops)), torch.from_numpy(np.concatenate(targets)).float(),
                     np.concatenate(labels), np.concatenate(source), list(cfg.datasets), valid, detection,
                     ckplus_frames(cfg.data, pre, cfg.cache_dir, cfg.limit_valid, progress))


def load_ckplus_frames(data, pre: Preprocess, cache_dir, limit: int = 0, progress: bool = True):
    """CK+48's frames in the 7 classes (contempt left out), aligned; limit > 0: every k-th, at most limit."""
    from models.data.datasets import read_ckplus
    from models.data.facecache import cached_aligned_set

    samples = read_ckplus(Path(data) / "ckplus48" if (Path(data) / "ckplus48").is_dir() else data)
    name = "ckplus"
    if limit:
        labelled = [s for s in samples if s.label is not None]
        subset = labelled[::max(1, len(labelled) // limit)][:limit]
        subset_landmarks_from_full(samples, subset, Path(cache_dir), name, f"ckplus_first{limit}")
        samples, name = subset, f"ckplus_first{limit}"
    aligned = cached_aligned_set(samples, pre, Path(cache_dir), name, progress=progress)
    return aligned.select(aligned.labels >= 0)


def ckplus_frames(data, pre: Preprocess, cache_dir, limit: int = 0, progress: bool = True
                  ) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """{"ckplus_frames": (crops, labels)} for FrameData.report_only, or {} when the data has no CK+48."""
    from models.data.datasets import DatasetError

    try:
        aligned = load_ckplus_frames(data, pre, cache_dir, limit, progress)
    except DatasetError:
        return {}
    return {"ckplus_frames": (torch.from_numpy(aligned.crops), aligned.labels)}


def subset_landmarks_from_full(full, subset, cache_dir: Path, full_name: str, subset_name: str) -> None:
    """Give a subset the full split's stored landmarks (when they exist), so it needs no detector either (a
    restored data pack on a machine without MediaPipe)."""
    from models.data.facecache import landmarks_key, landmarks_path, load_landmarks, save_landmarks

    target, key = landmarks_path(cache_dir, subset_name), landmarks_key(subset)
    if load_landmarks(target, key, len(subset)) is not None:  # made before: no full-split I/O on every run
        return
    stored = load_landmarks(landmarks_path(cache_dir, full_name), landmarks_key(full), len(full))
    if stored is None:
        return
    row = {str(s.path): i for i, s in enumerate(full)}
    pick = np.array([row[str(s.path)] for s in subset])
    save_landmarks(target, key, stored[0][pick], stored[1][pick], stored[2])


def ckplus_label(path: str) -> int:
    """Index into CK_LABELS from the CK+48 folder name (contempt included)."""
    name = Path(path).parent.name
    canon = canonical_emotion(name)
    return CK_LABELS.index(canon if canon else name.lower())


def load_ckplus(pre: Preprocess, data: str | Path, cache_dir: str | Path, progress: bool = True):
    """Aligned CK+48 crops (cached) and the clips of the 327 sequences (contempt kept)."""
    from models.data.datasets import ckplus_clips, read_ckplus
    from models.data.facecache import cached_aligned_set

    root = Path(data) / "ckplus48" if (Path(data) / "ckplus48").is_dir() else Path(data)
    samples = read_ckplus(root)
    aligned = cached_aligned_set(samples, pre, Path(cache_dir), "ckplus", progress=progress)
    return aligned, ckplus_clips(samples, keep_unlabeled=True)


def clip_index(aligned, clips) -> tuple[list[np.ndarray], np.ndarray]:
    """Row indices into the aligned set of each clip's frames (in frame order), and the CK+ label per clip."""
    row = {p: i for i, p in enumerate(aligned.paths)}
    index = [np.array([row[str(f)] for f in c.frames]) for c in clips]
    labels = np.array([ckplus_label(str(c.frames[0])) for c in clips])
    return index, labels


def ckplus_clip_tensors(model, pre, data, cache_dir, device) -> list[tuple[torch.Tensor, int]]:
    """(features (3, 512), EMOTIONS index or -1 for contempt) per CK+ sequence, for stage-2 training."""
    aligned, clips = load_ckplus(pre, data, cache_dir)
    feats, _ = embed_all(model, torch.from_numpy(aligned.crops), pre, device)
    index, _ = clip_index(aligned, clips)
    return [(feats[i], -1 if c.label is None else int(c.label)) for i, c in zip(index, clips)]


