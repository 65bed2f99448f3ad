"""Readers for the dataset layouts real users have: image/label lists and clips, labels as indices into EMOTIONS.

Pure python + numpy (no torch, no image decoding): each reader returns `Sample`s (one image each) or `Clip`s (an
ordered frame list or a video file), with labels mapped through app.emotions; images of classes outside the seven
(contempt, FER+ unknown/not-a-face/ambiguous) keep `label=None` and their dataset's own name in `source_label`.
Layouts: FER+ (`read_ferplus`), `<label>/<image>` folders (`read_image_folder`), a `path,label[,subject,...]` CSV
(`read_index_csv`), CK+48 (`read_ckplus`, `ckplus_clips`), `<label>/<clip>/<frames>` or `<label>/<clip>.mp4`
(`read_clip_folders`). `subject_folds` makes subject-independent folds. Missing or malformed files raise
`DatasetError` with a one-line message.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.emotions import EMOTIONS, canonical_emotion, emotion_index

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})

# FER+ label.csv vote columns, in file order.
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
FERPLUS_SPLITS: tuple[str, ...] = ("FER2013Train", "FER2013Valid", "FER2013Test")
_FERPLUS_SHORT = {"train": "FER2013Train", "valid": "FER2013Valid", "val": "FER2013Valid", "test": "FER2013Test"}
# Column in the FER+ vote vector for each of EMOTIONS: votes10[_FERPLUS_TO_EMOTIONS] is in EMOTIONS order.
_FERPLUS_TO_EMOTIONS = np.array([FERPLUS_CLASSES.index(e) for e in EMOTIONS])


class DatasetError(ValueError):
    """A dataset file or folder is missing or malformed (the message is one line naming the file)."""


@dataclass
class Sample:
    """One image. label: index into EMOTIONS, or None (unlabeled or outside the seven classes); votes: (7,) float
    vote distribution in EMOTIONS order (FER+ only) or None; source_label: the dataset's own class name."""

    path: Path
    label: int | None = None
    votes: np.ndarray | None = None
    subject: str | None = None
    sequence: str | None = None
    frame: int | None = None
    source_label: str = ""

    def __post_init__(self):
        self.path = Path(self.path)
        if self.label is not None and not 0 <= self.label < len(EMOTIONS):
            raise ValueError(f"label {self.label} is not an index into EMOTIONS")
        if self.votes is not None:
            self.votes = np.asarray(self.votes, np.float32).reshape(len(EMOTIONS))


@dataclass
class Clip:
    """One labelled clip: an ordered list of frame images, or a video file (frames empty)."""

    label: int | None
    frames: list[Path]
    video: Path | None = None
    subject: str | None = None
    name: str = ""

    def __post_init__(self):
        self.frames = [Path(f) for f in self.frames]
        self.video = None if self.video is None else Path(self.video)
        if not self.frames and self.video is None:
            raise ValueError(f"clip {self.name!r} has neither frames nor a video")


# ---------------------------------------------------------------------------------------------------- FER+

def ferplus_majority(votes10) -> tuple[int | None, str, np.ndarray | None]:
    """The FER+ paper's majority rule on one row of 10 vote counts (label.csv order).

    Single votes are dropped; the top class must hold more than half of the remaining votes, else 'ambiguous'.
    Returns (EMOTIONS index or None, category name: one of EMOTIONS or contempt/unknown/NF/ambiguous,
    (7,) float32 soft target over the seven classes after dropping single votes, normalised; None if empty).
    """
    v = np.asarray(votes10, np.float64).reshape(len(FERPLUS_CLASSES))
    v = np.where(v <= 1, 0.0, v)  # outlier removal: a class with a single vote gets none
    total = v.sum()
    seven = v[_FERPLUS_TO_EMOTIONS]
    soft = (seven / seven.sum()).astype(np.float32) if seven.sum() > 0 else None
    if total <= 0 or v.max() <= 0.5 * total:
        return None, "ambiguous", soft
    top = FERPLUS_CLASSES[int(np.argmax(v))]
    return emotion_index(top) if top in EMOTIONS else None, top, soft


def _ferplus_split(folder: Path) -> list[Sample]:
    csv_path = folder / "label.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: FER+ label file not found")
    samples, missing = [], []
    with open(csv_path, newline="") as fh:
        for line_no, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2 + len(FERPLUS_CLASSES):
                raise DatasetError(f"{csv_path}:{line_no}: expected 12 columns (name, box, 10 votes), got {len(row)}")
            try:
                votes = [float(x) for x in row[2:]]
            except ValueError:
                raise DatasetError(f"{csv_path}:{line_no}: vote counts are not numbers: {row[2:]}") from None
            label, category, soft = ferplus_majority(votes)
            path = folder / row[0].strip()
            if not path.is_file():
                missing.append(path.name)
            samples.append(Sample(path, label, soft, source_label=category))
    if missing:
        raise DatasetError(f"{csv_path}: {len(missing)} listed images are missing, first {missing[0]}")
    cats = Counter(s.source_label for s in samples)
    log.info("%s: %d images, %s", folder.name, len(samples), dict(cats.most_common()))
    return samples


def read_ferplus(folder, split_names=None) -> dict[str, list[Sample]]:
    """FER+ folders -> {split folder name: samples}. `folder` holds FER2013Train/Valid/Test (those present are
    read, or `split_names`: folder names or train/valid/test) or is itself one split folder with a label.csv."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: FER+ folder not found")
    if (folder / "label.csv").is_file() and split_names is None:
        return {folder.name: _ferplus_split(folder)}
    if split_names is None:
        names = [s for s in FERPLUS_SPLITS if (folder / s / "label.csv").is_file()]
        if not names:
            raise DatasetError(f"{folder}: no FER+ split folder ({', '.join(FERPLUS_SPLITS)}) with a label.csv")
    else:
        names = [_FERPLUS_SHORT.get(str(s).lower(), str(s)) for s in split_names]
    return {name: _ferplus_split(folder / name) for name in names}


# ------------------------------------------------------------------------------------------- image folders

def _natural_key(path: Path):
    """frame2 before frame10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _images_in(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)


def _label_dirs(root: Path, what: str) -> list[tuple[Path, int]]:
    """Class folders of root with their EMOTIONS index; folders of other classes are skipped and reported."""
    if not root.is_dir():
        raise DatasetError(f"{root}: {what} folder not found")
    found, skipped = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        idx = emotion_index(d.name)
        if idx is None:
            skipped.append(d.name)
        else:
            found.append((d, idx))
    if skipped:
        log.warning("%s: skipped folders outside the 7 classes: %s", root, ", ".join(skipped))
    if not found:
        raise DatasetError(f"{root}: no class folders named after the 7 emotions ({', '.join(EMOTIONS)})")
    return found


def read_image_folder(root) -> list[Sample]:
    """`<label>/<image>` (label names through app.emotions aliases: angry, happy, sad, surprised, fearful, ...)."""
    root = Path(root)
    samples = [Sample(p, idx, source_label=d.name) for d, idx in _label_dirs(root, "image") for p in _images_in(d)]
    if not samples:
        raise DatasetError(f"{root}: class folders hold no images")
    log.info("%s: %d images, %s", root, len(samples), class_counts(samples))
    return samples


# ------------------------------------------------------------------------------------------------- CSV index

def read_index_csv(csv_path) -> list[Sample]:
    """CSV with a header: `path,label` and optional `subject` (or `performer`), `sequence`, `frame`; paths relative
    to the CSV.
    Labels outside the 7 classes (e.g. contempt) or empty are kept with label None and reported."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: index CSV not found")
    base = csv_path.parent
    samples, missing = [], []
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip().lower() for c in reader.fieldnames or ()]
        if "path" not in cols or "label" not in cols:
            raise DatasetError(f"{csv_path}: needs a header with 'path' and 'label' columns, got {cols}")
        reader.fieldnames = cols
        for line_no, row in enumerate(reader, 2):
            rel = (row.get("path") or "").strip()
            if not rel:
                raise DatasetError(f"{csv_path}:{line_no}: empty path")
            name = (row.get("label") or "").strip()
            frame = (row.get("frame") or "").strip()
            try:
                frame_no = int(frame) if frame else None
            except ValueError:
                raise DatasetError(f"{csv_path}:{line_no}: frame {frame!r} is not an integer") from None
            path = base / rel
            if not path.is_file():
                missing.append(rel)
            samples.append(Sample(path, emotion_index(name) if name else None,
                                  subject=(row.get("subject") or row.get("performer") or "").strip() or None,
                                  sequence=(row.get("sequence") or "").strip() or None,
                                  frame=frame_no, source_label=name))
    if missing:
        raise DatasetError(f"{csv_path}: {len(missing)} listed images are missing, first {missing[0]}")
    if not samples:
        raise DatasetError(f"{csv_path}: no rows")
    outside = Counter(s.source_label or "(empty)" for s in samples if s.label is None)
    if outside:
        log.warning("%s: %d images outside the 7 classes kept with label None: %s",
                    csv_path, sum(outside.values()), dict(outside))
    return samples


# ---------------------------------------------------------------------------------------------------- CK+

_CK_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)$")


def read_ckplus(root) -> list[Sample]:
    """CK+48: `index.csv` (path, label, subject, sequence, frame) or, without it, `<emotion>/S###_###_########.png`
    parsed by name. Contempt stays outside the 7 classes (label None, source_label 'contempt') and is reported."""
    root = Path(root)
    if (root / "index.csv").is_file():
        samples = read_index_csv(root / "index.csv")
    else:
        if not root.is_dir():
            raise DatasetError(f"{root}: CK+ folder not found")
        samples = []
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for p in _images_in(d):
                m = _CK_NAME.match(p.stem)
                if m is None:
                    raise DatasetError(f"{p}: not a CK+ name (S###_###_########)")
                samples.append(Sample(p, emotion_index(d.name), subject=m[1], sequence=f"{m[1]}_{m[2]}",
                                      frame=int(m[3]), source_label=d.name))
        if not samples:
            raise DatasetError(f"{root}: no index.csv and no CK+ images in class folders")
    for s in samples:
        if s.subject is None or s.sequence is None:
            raise DatasetError(f"{s.path}: CK+ image without subject/sequence")
    n_out = sum(s.label is None for s in samples)
    log.info("%s: %d images, %d subjects, %d sequences, %d outside the 7 classes (contempt)", root, len(samples),
             len({s.subject for s in samples}), len({s.sequence for s in samples}), n_out)
    return samples


def ckplus_clips(samples: list[Sample], keep_unlabeled: bool = False) -> list[Clip]:
    """Group CK+ samples by sequence into clips (frames in frame order). Sequences outside the 7 classes
    (contempt) are dropped unless keep_unlabeled."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.sequence is None:
            raise DatasetError(f"{s.path}: sample has no sequence")
        groups[s.sequence].append(s)
    clips = []
    for seq, group in sorted(groups.items()):
        labels = {s.label for s in group}
        if len(labels) != 1:
            raise DatasetError(f"sequence {seq}: frames carry different labels {sorted(map(str, labels))}")
        label = labels.pop()
        if label is None and not keep_unlabeled:
            continue
        group.sort(key=lambda s: (s.frame if s.frame is not None else -1, _natural_key(s.path)))
        clips.append(Clip(label, [s.path for s in group], subject=group[0].subject, name=seq))
    return clips


# ---------------------------------------------------------------------------------------------- clip folders

def read_clip_folders(root) -> list[Clip]:
    """`<label>/<clip>/<frames>` and/or `<label>/<clip>.mp4` (AFEW/DFEW style); frames in natural name order."""
    root = Path(root)
    clips = []
    for d, idx in _label_dirs(root, "clip"):
        for entry in sorted(d.iterdir(), key=_natural_key):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                frames = _images_in(entry)
                if frames:
                    clips.append(Clip(idx, frames, subject=None, name=f"{d.name}/{entry.name}"))
                else:
                    log.warning("%s: clip folder holds no images, skipped", entry)
            elif entry.suffix.lower() in VIDEO_EXTENSIONS:
                clips.append(Clip(idx, [], video=entry, subject=None, name=f"{d.name}/{entry.stem}"))
    if not clips:
        raise DatasetError(f"{root}: class folders hold no clip folders or videos")
    return clips


# -------------------------------------------------------------------------------------------------- RAF-DB

RAFDB_VAL_FRACTION = 0.1  # the held-out share of RAF-DB train used for model selection (RAF-DB's test is elsewhere)
RAFDB_SPLIT_SEED = 0


def read_rafdb(root) -> list[Sample]:
    """RAF-DB basic: `train_labels.csv` (path,label, relative to the CSV) under `root` (or `root/rafdb`), else
    `train/<emotion>/` folders. One list of samples, the official train split; `rafdb_split` holds out val."""
    root = Path(root)
    if (root / "rafdb").is_dir():
        root = root / "rafdb"
    if (root / "train_labels.csv").is_file():
        samples = read_index_csv(root / "train_labels.csv")
    elif (root / "train").is_dir():
        samples = read_image_folder(root / "train")
    else:
        raise DatasetError(f"{root}: no RAF-DB train_labels.csv or train/ class folders")
    log.info("%s: %d RAF-DB images, %s", root, len(samples), class_counts(samples))
    return samples


def stratified_split(labels, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train index, held-out index): `fraction` of every class held out (rounded, at least one per class with
    two or more items), chosen by a seeded permutation; both index arrays sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            n = min(max(n, 1), len(idx) - 1)
        held.append(rng.permutation(idx)[:n])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    return train_idx, held_idx


def rafdb_split(samples: list[Sample], fraction: float = RAFDB_VAL_FRACTION, seed: int = RAFDB_SPLIT_SEED
                ) -> tuple[np.ndarray, np.ndarray]:
    """The project's fixed RAF-DB train/val split: indices into read_rafdb's list (stratified by class)."""
    labels = np.array([-1 if s.label is None else s.label for s in samples])
    return stratified_split(labels, fraction, seed)


# ------------------------------------------------------------------------------------- SFEW and the posed set

SFEW_VAL_FRACTION = 0.2  # SFEW's own validation split is kept outside the project: hold out 20% of its train split
SFEW_SPLIT_SEED = 0
TAIWANESE_VAL_PERFORMERS = 6  # posed set: these many performers (of 29) held out whole, never trained on
TAIWANESE_SPLIT_SEED = 0


def _dataset_root(root, name: str) -> Path:
    root = Path(root)
    return root / name if (root / name).is_dir() else root


def read_sfew(root) -> list[Sample]:
    """SFEW 2.0 train: `train/<emotion>/*.png` under `root` (or `root/sfew`); `sfew_split` holds out val."""
    root = _dataset_root(root, "sfew")
    if not (root / "train").is_dir():
        raise DatasetError(f"{root}: no SFEW train/ class folders")
    samples = read_image_folder(root / "train")
    log.info("%s: %d SFEW images, %s", root, len(samples), class_counts(samples))
    return samples


def sfew_split(samples: list[Sample], fraction: float = SFEW_VAL_FRACTION, seed: int = SFEW_SPLIT_SEED
               ) -> tuple[np.ndarray, np.ndarray]:
    """The project's fixed SFEW train/val split (stratified by class): indices into read_sfew's list."""
    labels = np.array([-1 if s.label is None else s.label for s in samples])
    return stratified_split(labels, fraction, seed)


def read_taiwanese(root) -> list[Sample]:
    """The posed Taiwanese database: `labels.csv` (path,label,performer,...) under `root` (or `root/taiwanese`);
    the performer is each sample's subject."""
    root = _dataset_root(root, "taiwanese")
    samples = read_index_csv(root / "labels.csv")
    if any(s.subject is None for s in samples):
        raise DatasetError(f"{root / 'labels.csv'}: every row needs a performer")
    log.info("%s: %d posed images of %d performers, %s", root, len(samples),
             len({s.subject for s in samples}), class_counts(samples))
    return samples


def subject_split(samples, n_held: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train index, held-out index): n_held subjects, chosen by a seeded permutation of the sorted subject ids,
    held out whole (a subject never spans both sides); both index arrays sorted."""
    subjects = sorted({s.subject for s in samples})
    if not 0 < n_held < len(subjects):
        raise DatasetError(f"cannot hold out {n_held} of {len(subjects)} subjects")
    held = set(np.random.default_rng(seed).permutation(subjects)[:n_held].tolist())
    mask = np.array([s.subject in held for s in samples])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def taiwanese_split(samples: list[Sample], n_held: int = TAIWANESE_VAL_PERFORMERS, seed: int = TAIWANESE_SPLIT_SEED
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The project's fixed posed split: 6 performers held out for validation."""
    return subject_split(samples, n_held, seed)


# ------------------------------------------------------------------------------------------------- domains

@dataclass(frozen=True)
class Domain:
    """A training/validation domain: how to read it and how its held-out part is chosen. FER+ has its own Valid
    folder (split None); the others are one folder whose fixed split (by class or by performer) gives val."""

    valid_name: str                    # the held-out set's key in reports and metrics
    title: str                         # its name in tables
    cache_name: str                    # facecache name of the whole set (FER+: its train split)
    read: Callable[[Path], list]       # data root -> datasets.Samples
    split: Callable[[list], tuple[np.ndarray, np.ndarray]] | None


DOMAINS: dict[str, Domain] = {
    "ferplus": Domain("ferplus_valid", "FER+ Valid", "ferplus_train", None, None),
    "rafdb": Domain("rafdb_val", "RAF-DB val", "rafdb_train", read_rafdb, rafdb_split),
    "sfew": Domain("sfew_val", "SFEW val (20% of train)", "sfew_train", read_sfew, sfew_split),
    "taiwanese": Domain("taiwanese_val", "posed, 6 held-out performers", "taiwanese", read_taiwanese, taiwanese_split),
}


# ------------------------------------------------------------------------------------------ folds and counts

def subject_folds(items, k: int = 10, seed: int = 0) -> np.ndarray:
    """(N,) int fold index for samples or clips; a subject never spans two folds. Items without a subject count
    as their own subject. Greedy balance: subjects, shuffled by seed then largest first, go to the fold with the
    fewest items so far."""
    if k < 2:
        raise ValueError("k must be at least 2")
    keys = [it.subject if it.subject is not None else f"__item{i}" for i, it in enumerate(items)]
    sizes = Counter(keys)
    if len(sizes) < k:
        raise DatasetError(f"{len(sizes)} subjects cannot fill {k} subject-independent folds")
    subjects = sorted(sizes)
    np.random.default_rng(seed).shuffle(subjects)
    subjects.sort(key=lambda s: -sizes[s])  # stable: ties keep the seeded order
    load = np.zeros(k, np.int64)
    fold_of = {}
    for s in subjects:
        f = int(np.argmin(load))
        fold_of[s] = f
        load[f] += sizes[s]
    return np.array([fold_of[key] for key in keys], np.int64)


def duplicate_mask(samples, reference) -> np.ndarray:
    """(N,) bool: samples whose file bytes equal a file in reference (e.g. the 279 FER+ Valid images that also sit
    in FER+ Train: drop them from an evaluation to keep it honest). Compares file bytes, not decoded pixels."""
    def digest(path: Path) -> str:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()

    seen = {digest(r.path) for r in reference}
    return np.array([digest(s.path) in seen for s in samples], bool)


def class_counts(items) -> dict[str, int]:
    """Counts per emotion (EMOTIONS order) for samples or clips, plus 'none' for label None."""
    counts = Counter(it.label for it in items)
    out = {name: counts.get(i, 0) for i, name in enumerate(EMOTIONS)}
    out["none"] = counts.get(None, 0)
    return out


__all__ = [
    "DOMAINS",
    "EMOTIONS",
    "Clip",
    "Domain",
    "DatasetError",
    "Sample",
    "canonical_emotion",
    "ckplus_clips",
    "class_counts",
    "duplicate_mask",
    "ferplus_majority",
    "rafdb_split",
    "read_ckplus",
    "read_sfew",
    "read_taiwanese",
    "sfew_split",
    "subject_split",
    "taiwanese_split",
    "read_clip_folders",
    "read_ferplus",
    "read_image_folder",
    "read_index_csv",
    "read_rafdb",
    "stratified_split",
    "subject_folds",
]
