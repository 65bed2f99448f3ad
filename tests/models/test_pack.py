"""models/pack.py: a tiny real slice of FER+, CK+48 and RAF-DB packed in parts, restored elsewhere, and aligned there from
the packed landmarks with MediaPipe unavailable: the crops must equal the ones made here."""
import csv
import shutil
import subprocess
import sys

import numpy as np
import pytest

import models.facecache as facecache
from app.paths import ROOT
from app.preprocess import Preprocess
from models.facecache import cached_aligned_set, dataset_splits, read_image
from models.pack import PackError, create, main, read_pack, restore
from models.train import load_ferplus_split

pytestmark = pytest.mark.data


@pytest.fixture()
def tiny_data(shared_data, tmp_path):
    """12 FER+ Train and 6 Valid images with their label.csv rows, and two CK+48 sequences with their index rows."""
    root = tmp_path / "data"
    for split, n in (("FER2013Train", 12), ("FER2013Valid", 6)):
        src, dst = shared_data / "ferplus" / split, root / "ferplus" / split
        dst.mkdir(parents=True)
        rows = (src / "label.csv").read_text().splitlines()[:n]
        (dst / "label.csv").write_text("\n".join(rows) + "\n")
        for row in rows:
            shutil.copy(src / row.split(",")[0], dst)
    src, dst = shared_data / "ckplus48", root / "ckplus48"
    with open(src / "index.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [rows[0]] + [r for r in rows[1:] if r[3] in {"S010_004", "S148_002"}]
    dst.mkdir(parents=True)
    with open(dst / "index.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(keep)
    for r in keep[1:]:
        (dst / r[0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / r[0], dst / r[0])
    src, dst = shared_data / "rafdb", root / "rafdb"  # 5 RAF-DB JPEGs with their train_labels.csv rows
    rows = (src / "train_labels.csv").read_text().splitlines()
    picked = [rows[0]] + rows[1::2500][:5]
    dst.mkdir(parents=True)
    (dst / "train_labels.csv").write_text("\n".join(picked) + "\n")
    for row in picked[1:]:
        (dst / row.split(",")[0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row.split(",")[0], dst / row.split(",")[0])
    return root


def test_pack_round_trip_without_mediapipe(tiny_data, tmp_path, monkeypatch):
    manifest = create(tiny_data, tmp_path / "pack", tmp_path / "cache_here", chunk_mb=0.004, progress=False)
    assert len(manifest["parts"]) > 1  # split into parts of at most 4 kB
    assert all(p["bytes"] <= 4000 for p in manifest["parts"])
    assert [s["images"] for s in manifest["splits"]] == [12, 6, 6, 5]

    def no_detector(*args, **kwargs):
        raise AssertionError("the restored data must not need MediaPipe")

    monkeypatch.setattr(facecache, "_make_detector", no_detector)
    there = tmp_path / "there"
    restore(tmp_path / "pack", there / "data", there / "cache", progress=False)
    for dataset in ("ferplus", "ckplus", "rafdb"):
        here_splits, there_splits = dataset_splits(tiny_data, dataset), dataset_splits(there / "data", dataset)
        assert list(here_splits) == list(there_splits)
        for name, samples in there_splits.items():
            ref = here_splits[name]
            assert [s.label for s in samples] == [s.label for s in ref]  # label files restored byte for byte
            for a, b in zip(samples, ref):
                assert np.array_equal(read_image(a.path), read_image(b.path))  # pixel-identical images
                if a.path.suffix == ".jpg":  # JPEG travels byte for byte
                    assert a.path.read_bytes() == b.path.read_bytes()
            for pre in (Preprocess(), Preprocess(input_size=48)):  # any crop size, from the landmarks alone
                mine = cached_aligned_set(ref, pre, tmp_path / "cache_here", name, progress=False)
                theirs = cached_aligned_set(samples, pre, there / "cache", name, progress=False)
                assert np.array_equal(mine.crops, theirs.crops)
                assert np.array_equal(mine.detected, theirs.detected)
    # the training loader's deterministic subsets take their rows of the restored landmarks too
    subset = load_ferplus_split(there / "data", "FER2013Train", Preprocess(), there / "cache", limit=4, progress=False)
    assert len(subset) == 4 and subset.crops.any()


def test_training_modules_import_without_mediapipe_or_qt():
    """The GPU box has torch and OpenCV but no MediaPipe, PySide6 or onnxruntime-gpu: training must not need them."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('mediapipe', 'PySide6', 'onnxruntime'):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import models.train, models.cv, models.pack, models.evaluate\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-800:]


def test_damaged_or_missing_part_is_one_error_line(tiny_data, tmp_path, capsys):
    create(tiny_data, tmp_path / "pack", tmp_path / "cache", chunk_mb=0.004, progress=False)
    part = tmp_path / "pack" / "part-001.xz"
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(PackError, match="part-001.xz: damaged"):
        read_pack(tmp_path / "pack")
    part.unlink()
    assert main(["restore", str(tmp_path / "pack"), "--data", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "part-001.xz: part missing" in err and "\n" not in err
    assert main(["restore", str(tmp_path / "nowhere"), "--data", str(tmp_path / "out")]) == 1
    assert "no readable manifest.json" in capsys.readouterr().err
