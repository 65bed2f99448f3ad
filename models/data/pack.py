"""Training data as a few compact files, for a machine that has neither ../shared/data nor MediaPipe (the GPU box:
at most 64 MiB of working tree and carried files travel per call: README.md, "Training on a GPU", carries the parts
over successive calls).

    python -m models.data.pack create --out cache/pack --chunk-mb 16       # here: pixels + landmarks, lzma, in parts
    python -m models.data.pack restore cache/pack --data /tmp/data --cache-dir /tmp/cache    # there

A pack holds every image of FER+ (the splits present) and CK+48 as raw pixels; the JPEG files of RAF-DB and the
posed Taiwanese set byte for byte (re-encoding would change their pixels), and SFEW's PNG files byte for byte (smaller
that way); their label files byte for byte (the posed set's observer ratings too), and the face landmarks this
machine's MediaPipe found (`<name>_landmarks.npz` beside the crop caches). Restoring
writes the same folder layout (PNG, pixel-identical) and the landmark files, so `models.train`/`models.cv` warp
the crops from them without a detector: the crops are the ones this machine trains on. Each part carries a
sha256 in manifest.json; a missing or damaged part is named in one error line. Packs hold research data: keep them
in git-ignored folders (cache/ is) and never commit them.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from app.durable import write_text
from app.paths import data_root
from app.faces.align import Preprocess
from models.data.datasets import DatasetError
from models.data.facecache import (cached_aligned_set, dataset_splits, default_cache_dir, landmarks_key,
    landmarks_path, load_landmarks, read_image, save_landmarks)

FORMAT = "fan-live-data-pack/1"
DATASETS = ("ferplus", "ckplus", "rafdb", "sfew", "taiwanese")
# what the FER+, CK+, RAF-DB and posed-set readers read, and the posed set's observer ratings (soft labels, ambiguity)
LABEL_NAMES = ("label.csv", "index.csv", "train_labels.csv", "labels.csv", "Image_info.xls")
VERBATIM = frozenset({".jpg", ".jpeg"})  # files kept byte for byte: decoding and re-encoding JPEG is lossy
# datasets whose (lossless) files also travel byte for byte because that is smaller: SFEW's large PNGs are smaller
# as files than as lzma-compressed raw pixels; FER+/CK+48's 48 px PNGs pack smaller as raw pixels
VERBATIM_DATASETS = frozenset({"sfew"})


class PackError(ValueError):
    pass


def _relative(path, root: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def build_payload(data: Path, cache_dir: Path, datasets=DATASETS, progress: bool = True) -> tuple[bytes, list]:
    """The uncompressed pack: one .npz (no pickles) of every split's pixels, landmarks and label files."""
    arrays, splits = {}, []
    # the label files the readers read (FER+ label.csv per split, CK+ index.csv when it has one), by construction
    found = [(d, name, samples) for d in datasets for name, samples in dataset_splits(data, d).items()]
    label_files = set()
    for _, _, samples in found:
        folder = Path(samples[0].path).parent
        while folder.resolve() != data.resolve() and not any((folder / n).is_file() for n in LABEL_NAMES):
            folder = folder.parent
        label_files |= {_relative(folder / n, data) for n in LABEL_NAMES if (folder / n).is_file()}
    label_files = sorted(label_files)
    for i, rel in enumerate(label_files):
        arrays[f"label{i}"] = np.frombuffer((data / rel).read_bytes(), np.uint8)
    for dataset, name, samples in found:
        # this machine's landmarks: the small landmark file; detected (and cached) first when absent
        lm_path, lm_key = landmarks_path(cache_dir, name), landmarks_key(samples)
        stored = load_landmarks(lm_path, lm_key, len(samples))
        if stored is None:
            cached_aligned_set(samples, Preprocess(), cache_dir, name, progress=progress)
            stored = load_landmarks(lm_path, lm_key, len(samples))
        landmarks, detected, fallback = stored
        k = len(splits)
        arrays[f"{k}/files"] = np.array([_relative(s.path, data) for s in samples])
        if dataset in VERBATIM_DATASETS or all(Path(s.path).suffix.lower() in VERBATIM for s in samples):
            blobs = [Path(s.path).read_bytes() for s in tqdm(samples, desc=f"read {name}", disable=not progress)]
            arrays[f"{k}/sizes"] = np.array([len(b) for b in blobs], np.int64)
            arrays[f"{k}/bytes"] = np.frombuffer(b"".join(blobs), np.uint8)
        else:
            images = [read_image(s.path) for s in tqdm(samples, desc=f"read {name}", disable=not progress)]
            arrays[f"{k}/shapes"] = np.array([(*im.shape[:2], im.shape[2] if im.ndim == 3 else 0) for im in images])
            arrays[f"{k}/pixels"] = np.concatenate([im.reshape(-1) for im in images])
        arrays[f"{k}/landmarks"], arrays[f"{k}/detected"], arrays[f"{k}/fallback"] = landmarks, detected, fallback
        splits.append({"dataset": dataset, "name": name, "images": len(samples),
                       "detection_rate": round(float(detected.mean()), 4)})
    arrays["meta"] = np.array(json.dumps({"splits": splits, "label_files": label_files}))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue(), splits


def create(data: Path, out: Path, cache_dir: Path, chunk_mb: float = 16.0, datasets=DATASETS,
           progress: bool = True) -> dict:
    """Write out/part-NNN.xz (each <= chunk_mb MB) and out/manifest.json; returns the manifest."""
    payload, splits = build_payload(data, cache_dir, datasets, progress)
    if progress:
        print(f"compressing {len(payload) / 1e6:.1f} MB (lzma; ~40 s per 60 MB)", file=sys.stderr)
    blob = lzma.compress(payload, preset=6)
    size = max(1, int(chunk_mb * 1e6))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.xz"):
        old.unlink()
    parts = []
    for j, start in enumerate(range(0, len(blob), size)):
        chunk = blob[start:start + size]
        name = f"part-{j:03d}.xz"
        (out / name).write_bytes(chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    manifest = {"format": FORMAT, "splits": splits, "parts": parts, "bytes": len(blob),
                "sha256": hashlib.sha256(blob).hexdigest()}
    write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


def read_pack(pack: Path) -> np.lib.npyio.NpzFile:
    """Join and check the parts (present, sizes, sha256 each and whole) and open the payload."""
    try:
        manifest = json.loads((pack / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise PackError(f"{pack}: no readable manifest.json ({type(e).__name__})") from None
    if manifest.get("format") != FORMAT:
        raise PackError(f"{pack}: not a {FORMAT} pack (format {manifest.get('format')!r})")
    chunks = []
    for part in manifest["parts"]:
        path = pack / part["name"]
        if not path.is_file():
            raise PackError(f"{path}: part missing ({len(manifest['parts'])} parts in the manifest)")
        chunk = path.read_bytes()
        if len(chunk) != part["bytes"] or hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise PackError(f"{path}: damaged or from another pack (size or sha256 differs from the manifest)")
        chunks.append(chunk)
    blob = b"".join(chunks)
    if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        raise PackError(f"{pack}: the joined parts do not match the manifest's sha256")
    return np.load(io.BytesIO(lzma.decompress(blob)), allow_pickle=False)


def restore(pack: Path, data: Path, cache_dir: Path, progress: bool = True) -> list[dict]:
    """Write the images and label files under data, and each split's landmarks into cache_dir."""
    z = read_pack(pack)
    meta = json.loads(str(z["meta"]))
    for i, rel in enumerate(meta["label_files"]):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(z[f"label{i}"].tobytes())
    for k, split in enumerate(meta["splits"]):
        files = z[f"{k}/files"]
        if f"{k}/bytes" in z.files:  # files kept byte for byte (JPEG, SFEW's PNG)
            blob, offset = z[f"{k}/bytes"], 0
            for rel, size in tqdm(zip(files, z[f"{k}/sizes"]), total=len(files), desc=f"write {split['name']}",
                                  disable=not progress):
                (data / rel).parent.mkdir(parents=True, exist_ok=True)
                (data / rel).write_bytes(blob[offset:offset + int(size)].tobytes())
                offset += int(size)
            continue
        shapes, pixels = z[f"{k}/shapes"], z[f"{k}/pixels"]
        offset = 0
        for rel, (h, w, c) in tqdm(zip(files, shapes), total=len(files), desc=f"write {split['name']}",
                                   disable=not progress):
            n = int(h * w * max(c, 1))
            image = pixels[offset:offset + n].reshape((h, w, c) if c else (h, w))
            offset += n
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(data / rel), image):
                raise PackError(f"{data / rel}: cannot write")
    read = {d: dataset_splits(data, d) for d in {split["dataset"] for split in meta["splits"]}}  # each once
    for k, split in enumerate(meta["splits"]):
        samples = read[split["dataset"]][split["name"]]
        index = {str(rel): i for i, rel in enumerate(z[f"{k}/files"])}
        try:
            order = np.array([index[_relative(s.path, data)] for s in samples])
        except KeyError as e:
            raise PackError(f"{split['name']}: the restored label files list {e}, which the pack lacks") from None
        save_landmarks(landmarks_path(cache_dir, split["name"]), landmarks_key(samples),
                       z[f"{k}/landmarks"][order], z[f"{k}/detected"][order], z[f"{k}/fallback"])
    return meta["splits"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.data.pack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="pack ../shared/data (pixels + landmarks) into parts")
    c.add_argument("--data", type=Path, default=None, help="data root (default: $FANLIVE_DATA or ../shared/data)")
    c.add_argument("--out", type=Path, default=default_cache_dir() / "pack")
    c.add_argument("--cache-dir", type=Path, default=None, help="crop/landmark caches (default: cache/)")
    c.add_argument("--chunk-mb", type=float, default=16.0, help="largest part in MB (default 16)")
    c.add_argument("--datasets", default=",".join(DATASETS), help="comma list of " + ", ".join(DATASETS))
    r = sub.add_parser("restore", help="write the data folder and landmark files from a pack")
    r.add_argument("pack", type=Path)
    r.add_argument("--data", type=Path, required=True, help="where the data folder is written")
    r.add_argument("--cache-dir", type=Path, default=None, help="where the landmark files go (default: cache/)")
    args = p.parse_args(argv)
    cache_dir = args.cache_dir or default_cache_dir()
    try:
        if args.command == "create":
            datasets = tuple(d for d in args.datasets.split(",") if d)
            if not datasets or set(datasets) - set(DATASETS):
                raise PackError(f"--datasets takes {', '.join(DATASETS)}, got {args.datasets!r}")
            m = create(args.data or data_root(), args.out, cache_dir, args.chunk_mb, datasets)
            print(f"{args.out}: {len(m['parts'])} parts, {m['bytes'] / 1e6:.1f} MB, "
                  + ", ".join(f"{s['name']} {s['images']}" for s in m["splits"]), file=sys.stderr)
        else:
            splits = restore(args.pack, args.data, cache_dir)
            print(f"{args.data}: " + ", ".join(f"{s['name']} {s['images']}" for s in splits)
                  + f"; landmarks in {cache_dir}", file=sys.stderr)
    except (PackError, DatasetError, OSError, lzma.LZMAError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
