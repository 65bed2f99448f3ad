"""models/data/pack.py: a tiny real slice of FER+, CK+48, RAF-DB, SFEW and the posed set (conftest's tiny_data) packed in
parts, restored elsewhere, and aligned there from the packed landmarks with MediaPipe unavailable: the crops must
equal the ones made here."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

import models.data.facecache as facecache
from app.paths import ROOT
from app.faces.align import Preprocess
from models.data.facecache import cached_aligned_set, dataset_splits, read_image
from models.data.pack import DATASETS, PackError, create, main, read_pack, restore
from models.train import load_ferplus_split

pytestmark = pytest.mark.data


def test_pack_round_trip_without_mediapipe(tiny_data, tmp_path, monkeypatch):
    manifest = create(tiny_data, tmp_path / "pack", tmp_path / "cache_here", chunk_mb=0.1, progress=False)
    assert len(manifest["parts"]) > 1  # split into parts of at most 100 kB, each with its sha256
    assert all(p["bytes"] <= 100_000 for p in manifest["parts"])
    for part in manifest["parts"]:
        assert hashlib.sha256((tmp_path / "pack" / part["name"]).read_bytes()).hexdigest() == part["sha256"]
    assert json.loads((tmp_path / "pack" / "manifest.json").read_text()) == manifest
    assert [(s["dataset"], s["images"]) for s in manifest["splits"]] == [
        ("ferplus", 24), ("ferplus", 12), ("ckplus", 6), ("rafdb", 21), ("sfew", 21), ("taiwanese", 24)]

    def no_detector(*args, **kwargs):
        raise AssertionError("the restored data must not need MediaPipe")

    monkeypatch.setattr(facecache, "_make_detector", no_detector)
    there = tmp_path / "there"
    restore(tmp_path / "pack", there / "data", there / "cache", progress=False)
    assert (there / "data/taiwanese/Image_info.xls").read_bytes() == (tiny_data / "taiwanese/Image_info.xls").read_bytes()
    for dataset in DATASETS:
        here_splits, there_splits = dataset_splits(tiny_data, dataset), dataset_splits(there / "data", dataset)
        assert list(here_splits) == list(there_splits)
        for name, samples in there_splits.items():
            ref = here_splits[name]
            assert [s.label for s in samples] == [s.label for s in ref]  # label files restored byte for byte
            for a, b in zip(samples, ref):
                assert np.array_equal(read_image(a.path), read_image(b.path))  # pixel-identical images
                if dataset in ("rafdb", "sfew", "taiwanese"):  # JPEG, and SFEW's PNG, travel byte for byte
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
            "import models.train, models.cv, models.data.pack, models.evaluate, models.recipe\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-800:]


def test_damaged_or_missing_part_is_one_error_line(tiny_data, tmp_path, capsys):
    create(tiny_data, tmp_path / "pack", tmp_path / "cache", chunk_mb=0.1, progress=False)
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
