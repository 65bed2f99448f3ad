"""Training/eval images -> aligned network crops through the live app's own alignment, cached as .npz.

Usage:
    from models.data.datasets import read_ferplus; from models.data.facecache import cached_aligned_set
    from app.faces.align import Preprocess
    train = cached_aligned_set(read_ferplus(data / "ferplus")["FER2013Train"], Preprocess(64, "gray"), "cache",
                               "ferplus_train")   # -> cache/ferplus_train_64_gray.npz; built once (minutes), then loaded
    train.crops (N, 64, 64, 1) uint8, train.labels (N,) int64 (-1 none), train.votes (N, 7), train.detected (N,) bool
    CLI: python -m models.data.facecache --data ../shared/data --dataset ferplus|ckplus --input-size 64 --color gray

Contract: each image goes through MediaPipe face mesh (still mode, one face) -> 5 landmarks -> app.faces.align.align_face
-> app.faces.align.convert_color, exactly the live path. Small images (FER+/CK+48 48x48 crops) are only *detected* on a
padded (edge-replicated, a quarter of the size per side) and upscaled (~192 px) copy, where face mesh finds far more
of them; landmarks are mapped back and the crop is warped from the ORIGINAL image. Where no face is
found the crop uses a fallback: the mean landmarks (as fractions of image width/height) of the images of the same set
where detection worked, and `detected` is False. The cache is keyed by the sample paths and Preprocess.to_dict();
labels/votes/subjects are refreshed from the samples on every load, so only crops are cached.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from app.durable import atomic_write
from app.emotions import EMOTIONS
from app.faces.detect import DetectorConfig
from models.engine.cli import CACHE_DIR
from app.faces.align import Preprocess, align_face, alignment_transform, convert_color, warp_face

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the crop-making code changes: old caches then rebuild
# Still mode, one face. 0.3 instead of the live default 0.5: on padded, upscaled FER+ crops it finds more faces, and a
# lower threshold finds no more (docs/training.md).
# refine_landmarks off: the training crops and their caches are made without the iris refinement that the live path
# runs for the blendshapes; it is left out of repr, so the cache keys do not depend on it.
DETECTOR_CONFIG = DetectorConfig(max_faces=1, min_detection_confidence=0.3, video=False, refine_landmarks=False)
SMALL_IMAGE_PX = 160   # images whose larger side is below this are detected on a padded, upscaled copy
DETECT_PX = 192        # the larger side of that copy
PAD_FRACTION = 0.25    # edge-replicated padding per side, as a fraction of the larger side
MIN_FOR_MEAN = 10      # detections needed before a set's own mean landmarks serve as its fallback
# Fallback when a set has too few detections of its own: mean landmarks measured on FER+ Train (27,728 of 28,558
# crops detected), as (x / width, y / height) in the template's order. FER+ crops are loose face-detector boxes.
DEFAULT_FALLBACK = np.array([[0.3203, 0.3857], [0.6734, 0.3796], [0.4988, 0.6181], [0.3594, 0.7615],
                             [0.6468, 0.7563]], np.float32)


def default_cache_dir() -> Path:
    """$FANLIVE_CACHE, else cache/ in the checkout (git-ignored)."""
    env = os.environ.get("FANLIVE_CACHE")
    return Path(env).expanduser() if env else CACHE_DIR


def read_image(path) -> np.ndarray:
    """8-bit gray (H, W) or BGR (H, W, 3), as the file stores it; raises FileNotFoundError naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_ANYCOLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read image")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _detection_view(image: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The image face mesh sees, with (scale, pad): original x = view x / scale - pad."""
    h, w = image.shape[:2]
    if max(h, w) >= SMALL_IMAGE_PX:
        return image, 1.0, 0
    pad = round(max(h, w) * PAD_FRACTION)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    scale = DETECT_PX / max(padded.shape[:2])
    return cv2.resize(padded, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR), scale, pad


def detect_landmarks(detector, image: np.ndarray) -> np.ndarray | None:
    """(5, 2) float32 landmarks in original-image pixels (the detector's convention: normalised x * width), or
    None when no face is found."""
    view, scale, pad = _detection_view(image)
    faces = detector.detect(view)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.size)
    return (face.landmarks5 / scale - pad).astype(np.float32)


def _make_detector(config: DetectorConfig = DETECTOR_CONFIG):
    from app.faces.detect import FaceMeshDetector
    return FaceMeshDetector(config)


# -------------------------------------------------------------------------------------------------- AlignedSet

_STRING_FIELDS = ("subjects", "sequences", "paths")


@dataclass
class AlignedSet:
    """Aligned crops with their labels. crops (N, S, S, C) uint8 from convert_color; detected (N,) bool; labels
    (N,) int64, -1 = none; votes (N, 7) float32 in EMOTIONS order, zeros = none; landmarks (N, 5, 2) float32 in
    original-image pixels (the fallback's where not detected); subjects/sequences/paths (N,) str, '' = none."""

    crops: np.ndarray
    detected: np.ndarray
    labels: np.ndarray
    votes: np.ndarray
    subjects: np.ndarray
    sequences: np.ndarray
    paths: np.ndarray
    preprocess: dict
    landmarks: np.ndarray | None = None
    fallback: np.ndarray = field(default_factory=lambda: DEFAULT_FALLBACK.copy())  # (5, 2) fractions of w, h
    cache_key: str = ""

    def __post_init__(self):
        self.crops = np.asarray(self.crops, np.uint8)
        n = len(self.crops)
        if self.crops.ndim != 4:
            raise ValueError(f"crops must be (N, S, S, C), got {self.crops.shape}")
        self.detected = np.asarray(self.detected, bool).reshape(n)
        self.labels = np.asarray(self.labels, np.int64).reshape(n)
        self.votes = np.asarray(self.votes, np.float32).reshape(n, len(EMOTIONS))
        for name in _STRING_FIELDS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=str).reshape(n))
        if self.landmarks is None:
            self.landmarks = np.full((n, 5, 2), np.nan, np.float32)
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(n, 5, 2)
        self.fallback = np.asarray(self.fallback, np.float32).reshape(5, 2)
        if self.labels.size and (self.labels.min() < -1 or self.labels.max() >= len(EMOTIONS)):
            raise ValueError("labels must be -1 or an index into EMOTIONS")

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def detection_rate(self) -> float:
        return float(self.detected.mean()) if len(self) else 0.0

    @property
    def pre(self) -> Preprocess:
        return Preprocess.from_dict(self.preprocess)

    def select(self, index) -> AlignedSet:
        """A subset by integer indices or a boolean mask (e.g. a fold, or labels >= 0)."""
        index = np.asarray(index)
        return replace(self, crops=self.crops[index], detected=self.detected[index], labels=self.labels[index],
                       votes=self.votes[index], subjects=self.subjects[index], sequences=self.sequences[index],
                       paths=self.paths[index], landmarks=self.landmarks[index])

    def indices_of(self, paths) -> np.ndarray:
        """Row index of each path (e.g. a Clip's frames); KeyError for a path not in the set."""
        where = {p: i for i, p in enumerate(self.paths)}
        return np.array([where[str(p)] for p in paths], np.int64)

    def save(self, path) -> Path:
        """Compressed .npz without pickled objects (strings as fixed-width unicode); written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"crops": self.crops, "detected": self.detected, "labels": self.labels, "votes": self.votes,
                  "landmarks": self.landmarks, "fallback": self.fallback,
                  "preprocess": np.array(json.dumps(self.preprocess)), "cache_key": np.array(self.cache_key),
                  "version": np.array(CACHE_VERSION)}
        arrays.update({name: getattr(self, name) for name in _STRING_FIELDS})
        atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays), binary=True)
        return path

    @classmethod
    def load(cls, path) -> AlignedSet:
        with np.load(Path(path), allow_pickle=False) as z:
            return cls(crops=z["crops"], detected=z["detected"], labels=z["labels"], votes=z["votes"],
                       subjects=z["subjects"], sequences=z["sequences"], paths=z["paths"],
                       preprocess=json.loads(str(z["preprocess"])), landmarks=z["landmarks"], fallback=z["fallback"],
                       cache_key=str(z["cache_key"]))


# ------------------------------------------------------------------------------------------------- alignment

_worker_detector = None


def _worker_init(config: DetectorConfig) -> None:
    global _worker_detector
    cv2.setNumThreads(1)
    _worker_detector = _make_detector(config)


def _worker_detect(item) -> tuple[np.ndarray | None, tuple[int, int]]:
    image = read_image(item) if not isinstance(item, np.ndarray) else item
    return detect_landmarks(_worker_detector, image), image.shape[:2]


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit="img", smoothing=0.05)


def _unlabelled_set(crops, detected, landmarks, fallback, paths, pre: Preprocess) -> AlignedSet:
    """Crops with their alignment; labels -1 and votes zero (cached_aligned_set fills them from samples)."""
    n = len(crops)
    empty = np.array([""] * n, dtype=str)
    return AlignedSet(crops=crops, detected=detected, labels=np.full(n, -1), votes=np.zeros((n, len(EMOTIONS))),
                      subjects=empty, sequences=empty, paths=np.array(paths, dtype=str), preprocess=pre.to_dict(),
                      landmarks=np.asarray(landmarks, np.float32), fallback=np.asarray(fallback, np.float32))


def align_images(paths_or_arrays, pre: Preprocess, progress: bool = True, workers: int = 1,
                 detector_config: DetectorConfig = DETECTOR_CONFIG, desc: str = "align") -> AlignedSet:
    """Images (paths, or uint8 gray/BGR arrays) -> AlignedSet with crops and detection flags; labels are -1 and
    votes zero here (cached_aligned_set fills them from samples). workers > 1 detects in that many processes, one
    detector each."""
    items = list(paths_or_arrays)
    n = len(items)
    s, c = pre.input_size, pre.channels
    crops = np.zeros((n, s, s, c), np.uint8)
    detected = np.zeros(n, bool)
    landmarks = np.full((n, 5, 2), np.nan, np.float32)
    sizes = np.zeros((n, 2), np.int64)  # (h, w)
    paths = [str(it) if not isinstance(it, np.ndarray) else "" for it in items]

    def take(i, image, lm):
        sizes[i] = image.shape[:2]
        if lm is not None:
            detected[i] = True
            landmarks[i] = lm
            crops[i] = convert_color(align_face(image, lm, pre), pre)

    if workers > 1 and n > 1:
        # Workers only detect (landmarks are small to send back); the parent re-reads and warps (~0.1 ms).
        ctx = mp.get_context("spawn")  # never fork a process that may hold MediaPipe threads
        with ctx.Pool(workers, initializer=_worker_init, initargs=(detector_config,)) as pool:
            results = pool.imap(_worker_detect, items, chunksize=64)
            for i, (lm, _) in enumerate(_progress(results, n, progress, desc)):
                image = items[i] if isinstance(items[i], np.ndarray) else read_image(items[i])
                take(i, image, lm)
    else:
        with _make_detector(detector_config) as detector:
            for i in _progress(range(n), n, progress, desc):
                image = items[i] if isinstance(items[i], np.ndarray) else read_image(items[i])
                take(i, image, detect_landmarks(detector, image))

    # Fallback for misses: the set's own mean landmark fractions (its framing), else the FER+-measured default.
    fallback = DEFAULT_FALLBACK
    if detected.sum() >= MIN_FOR_MEAN:
        wh = sizes[detected][:, ::-1].astype(np.float32)[:, None, :]  # (D, 1, 2) as (w, h)
        fallback = (landmarks[detected] / wh).mean(0).astype(np.float32)
    for i in np.flatnonzero(~detected):
        image = items[i] if isinstance(items[i], np.ndarray) else read_image(items[i])
        h, w = image.shape[:2]
        lm = fallback * np.array([w, h], np.float32)
        landmarks[i] = lm
        crops[i] = convert_color(warp_face(image, alignment_transform(lm, pre), pre), pre)

    out = _unlabelled_set(crops, detected, landmarks, fallback, paths, pre)
    log.info("%s: %d images, face found in %d (%.1f%%)", desc, n, detected.sum(), 100 * out.detection_rate)
    return out


# ----------------------------------------------------------------------------------------------------- cache

def _paths_key(settings: dict, samples) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(settings).encode())
    for s in samples:
        h.update(str(Path(s.path).resolve()).encode())
        h.update(b"\0")
    return h.hexdigest()


def cache_key(samples, pre: Preprocess, detector_config: DetectorConfig = DETECTOR_CONFIG) -> str:
    """sha256 over the resolved sample paths, the preprocess, the detector settings and CACHE_VERSION."""
    return _paths_key({"version": CACHE_VERSION, "pre": pre.to_dict(), "detector": repr(detector_config),
                       "small_px": SMALL_IMAGE_PX, "detect_px": DETECT_PX, "pad": PAD_FRACTION}, samples)


def landmarks_key(samples, detector_config: DetectorConfig = DETECTOR_CONFIG) -> str:
    """cache_key without the preprocess: landmarks are in original-image pixels, whatever the crop size/colour."""
    return _paths_key({"version": CACHE_VERSION, "detector": repr(detector_config), "small_px": SMALL_IMAGE_PX,
                       "detect_px": DETECT_PX, "pad": PAD_FRACTION}, samples)


def landmarks_path(cache_dir, name: str) -> Path:
    return Path(cache_dir) / f"{name}_landmarks.npz"


def save_landmarks(path: Path, key: str, landmarks: np.ndarray, detected: np.ndarray, fallback: np.ndarray) -> None:
    """The detector's output for a dataset (N, 5, 2 + flags + fallback): a new crop size or colour, or a machine
    without MediaPipe (a data pack restored on a GPU box), re-warps from it instead of detecting again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, key=np.array(key), landmarks=np.asarray(landmarks, np.float32),
                                           detected=np.asarray(detected, bool),
                                           fallback=np.asarray(fallback, np.float32)), binary=True)


def load_landmarks(path: Path, key: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(landmarks, detected, fallback) when the file matches key and n, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            if str(d["key"]) != key or len(d["landmarks"]) != n:
                return None
            return d["landmarks"], d["detected"], d["fallback"]
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s: unreadable landmarks (%s), detecting again", path, exc)
        return None


def align_from_landmarks(paths, landmarks: np.ndarray, detected: np.ndarray, fallback: np.ndarray, pre: Preprocess,
                         progress: bool = True, desc: str = "warp") -> AlignedSet:
    """AlignedSet from stored landmarks: the same warp as align_images, no detector."""
    n = len(paths)
    crops = np.zeros((n, pre.input_size, pre.input_size, pre.channels), np.uint8)
    for i in _progress(range(n), n, progress, desc):
        crops[i] = convert_color(warp_face(read_image(paths[i]), alignment_transform(landmarks[i], pre), pre), pre)
    return _unlabelled_set(crops, detected, landmarks, fallback, [str(p) for p in paths], pre)


def cache_path(cache_dir, name: str, pre: Preprocess) -> Path:
    return Path(cache_dir) / f"{name}_{pre.input_size}_{pre.color}.npz"


def _with_sample_fields(aligned: AlignedSet, samples) -> AlignedSet:
    n = len(samples)
    votes = np.zeros((n, len(EMOTIONS)), np.float32)
    for i, s in enumerate(samples):
        if s.votes is not None:
            votes[i] = s.votes
    return replace(aligned,
                   labels=np.array([-1 if s.label is None else s.label for s in samples], np.int64),
                   votes=votes,
                   subjects=np.array([s.subject or "" for s in samples], dtype=str),
                   sequences=np.array([s.sequence or "" for s in samples], dtype=str),
                   paths=np.array([str(s.path) for s in samples], dtype=str))


def cached_aligned_set(samples, pre: Preprocess, cache_dir=None, name: str = "aligned", progress: bool = True,
                       workers: int = 1, detector_config: DetectorConfig = DETECTOR_CONFIG,
                       rebuild: bool = False) -> AlignedSet:
    """Aligned crops for datasets.Samples, from `<cache_dir>/<name>_<size>_<color>.npz` when its key matches
    (same paths, preprocess, detector settings), else warped from `<name>_landmarks.npz` when that matches (same
    paths and detector: no MediaPipe needed), else built with align_images and saved (landmarks too). Labels, votes,
    subjects, sequences and paths always come from `samples`."""
    samples = list(samples)
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    path = cache_path(cache_dir, name, pre)
    key = cache_key(samples, pre, detector_config)
    lm_path, lm_key = landmarks_path(cache_dir, name), landmarks_key(samples, detector_config)
    if path.is_file() and not rebuild:
        try:
            cached = AlignedSet.load(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable cache (%s), rebuilding", path, exc)
        else:
            if cached.cache_key == key and len(cached) == len(samples):
                log.info("%s: cache hit, %d crops, detection rate %.3f", path, len(cached), cached.detection_rate)
                if cached.landmarks is not None and not lm_path.is_file():  # caches made before the landmark file
                    save_landmarks(lm_path, lm_key, cached.landmarks, cached.detected, cached.fallback)
                return _with_sample_fields(cached, samples)
            log.info("%s: cache key differs (paths or preprocess changed), rebuilding", path)
    stored = None if rebuild else load_landmarks(lm_path, lm_key, len(samples))
    if stored is not None:  # same images and detector, another crop size/colour: warp only
        aligned = align_from_landmarks([s.path for s in samples], *stored, pre, progress=progress, desc=name)
    else:
        aligned = align_images([s.path for s in samples], pre, progress=progress, workers=workers,
                               detector_config=detector_config, desc=name)
        save_landmarks(lm_path, lm_key, aligned.landmarks, aligned.detected, aligned.fallback)
    aligned = _with_sample_fields(replace(aligned, cache_key=key), samples)
    aligned.save(path)
    return aligned


# ------------------------------------------------------------------------------------------------------- CLI

def dataset_splits(data: Path, dataset: str) -> dict[str, list]:
    from models.data import datasets
    if dataset == "ferplus":
        splits = datasets.read_ferplus(data / "ferplus" if (data / "ferplus").is_dir() else data)
        short = {"FER2013Train": "train", "FER2013Valid": "valid", "FER2013Test": "test"}
        return {f"ferplus_{short.get(k, k.lower())}": v for k, v in splits.items()}
    if dataset == "ckplus":
        return {"ckplus": datasets.read_ckplus(data / "ckplus48" if (data / "ckplus48").is_dir() else data)}
    if dataset in datasets.DOMAINS:  # one cache for the whole folder; the val split is taken from it by index
        return {datasets.DOMAINS[dataset].cache_name: datasets.DOMAINS[dataset].read(data)}
    raise SystemExit(f"unknown dataset {dataset!r}")


def main(argv=None) -> int:
    from app.paths import data_root
    p = argparse.ArgumentParser(description="Build aligned-crop caches for training (the live app's alignment).")
    p.add_argument("--data", type=Path, default=None, help="shared data root (default: $FANLIVE_DATA or ../shared/data)")
    p.add_argument("--dataset", choices=("ferplus", "ckplus", "rafdb", "sfew", "taiwanese"), required=True)
    p.add_argument("--input-size", type=int, default=Preprocess().input_size)
    p.add_argument("--color", choices=("gray", "rgb"), default=Preprocess().color)
    p.add_argument("--cache-dir", type=Path, default=None, help="default: $FANLIVE_CACHE or cache/ in the checkout")
    p.add_argument("--workers", type=int, default=1, help="detector processes (one per free core)")
    p.add_argument("--rebuild", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pre = Preprocess(input_size=args.input_size, color=args.color)
    try:
        splits = dataset_splits(args.data or data_root(), args.dataset)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, samples in splits.items():
        t0 = time.perf_counter()
        aligned = cached_aligned_set(samples, pre, args.cache_dir, name, workers=args.workers, rebuild=args.rebuild)
        dt = time.perf_counter() - t0
        print(f"{cache_path(args.cache_dir or default_cache_dir(), name, pre)}: {len(aligned)} images, "
              f"detection rate {aligned.detection_rate:.4f} ({(~aligned.detected).sum()} fallback), {dt:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
