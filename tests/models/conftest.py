"""Fixtures shared by the training and CK+ CV tests: one tiny real stage-1 run per test session (it takes
seconds on FER+ Train, but every module that needs an embedder would otherwise train its own), and a small real
slice of every shared dataset (the data pack and the recipe tests)."""
import csv
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from models.train import FramesConfig, train_frames


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """Aligned-crop cache shared by the session (detection runs once per image)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_run(shared_data, cache_dir, tmp_path_factory) -> Path:
    """A 2-epoch stage-1 run on 192 FER+ Train images. Read-only: tests that resume it copy it first."""
    out = tmp_path_factory.mktemp("frames")
    cfg = FramesConfig(data=str(shared_data), cache_dir=str(cache_dir), out=str(out), epochs=2, batch_size=32,
                       limit_train=192, limit_valid=64, lr=0.05, seed=0)
    train_frames(cfg)
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Modules that run the identity teachers use one torch thread (the CPU is shared), then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _copy_rows(src: Path, dst: Path, header: list[str] | None, rows: list[list[str]]) -> None:
    """An index CSV with the given rows, and the files its first column names (paths relative to the CSV)."""
    dst.mkdir(parents=True, exist_ok=True)
    with open(dst / src.name, "w", newline="") as fh:
        csv.writer(fh).writerows(([header] if header else []) + rows)
    for r in rows:
        (dst / r[0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src.parent / r[0], dst / r[0])


@pytest.fixture(scope="module")
def tiny_data(shared_data, tmp_path_factory) -> Path:
    """A real slice of ../shared/data in its own layout, enough for every reader and fixed split. READ-ONLY.
    FER+: 24 Train and 12 Valid images with their label.csv rows; CK+48: two sequences with their index rows; RAF-DB
    and SFEW: 3 images of each class; the posed set: 3 images of each of 8 performers (6 are held out) with its
    labels.csv rows and the observer ratings file."""
    root = tmp_path_factory.mktemp("data")
    for split, n in (("FER2013Train", 24), ("FER2013Valid", 12)):
        src = shared_data / "ferplus" / split / "label.csv"
        _copy_rows(src, root / "ferplus" / split, None, list(csv.reader(open(src, newline="")))[:n])
    src = shared_data / "ckplus48" / "index.csv"
    rows = list(csv.reader(open(src, newline="")))
    _copy_rows(src, root / "ckplus48", rows[0], [r for r in rows[1:] if r[3] in {"S010_004", "S148_002"}])
    src = shared_data / "rafdb" / "train_labels.csv"
    rows = list(csv.reader(open(src, newline="")))
    per_class = defaultdict(list)
    for r in rows[1:]:
        per_class[r[1]].append(r)
    _copy_rows(src, root / "rafdb", rows[0], [r for c in sorted(per_class) for r in per_class[c][:3]])
    for folder in sorted((shared_data / "sfew" / "train").iterdir()):  # SFEW: class folders, no label file
        (root / "sfew" / "train" / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:3]:
            shutil.copy(image, root / "sfew" / "train" / folder.name)
    src = shared_data / "taiwanese" / "labels.csv"
    rows = list(csv.reader(open(src, newline="")))
    by_performer = defaultdict(list)
    for r in rows[1:]:
        by_performer[r[2]].append(r)
    _copy_rows(src, root / "taiwanese", rows[0], [r for p in sorted(by_performer)[:8] for r in by_performer[p][:3]])
    shutil.copy(shared_data / "taiwanese" / "Image_info.xls", root / "taiwanese")
    return root
