"""The headless replay CLI end to end on the shared real videos, and every bad input it must survive."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app.paths import ROOT

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A seeded random-init model in a temp folder: the CLI path is under test here, not accuracy."""
    from models.export import export_random_model

    return export_random_model(tmp_path_factory.mktemp("weights"), window_length=8)


def run_cli(*args, weights: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "main.py", "--no-window", "--quiet", *map(str, args)]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def wolfgang(videos, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("wolfgang")
    proc = run_cli("--video", videos / "WolfgangLanger_Pexels.mp4", "--export", out / "w.csv",
                   "--export", out / "w.json", weights=model)
    assert proc.returncode == 0, proc.stderr
    return proc, pd.read_csv(out / "w.csv"), json.loads((out / "w.json").read_text())


def test_wolfgang_one_face_id_and_a_row_per_frame(wolfgang):
    proc, df, doc = wolfgang
    assert df["face_id"].nunique() == 1
    assert df["frame_index"].is_unique
    # 472 frames, the face is visible in all of them; allow a few missed detections
    assert len(df) >= 0.95 * 472
    assert df["time_s"].is_monotonic_increasing
    probs = df[[c for c in df.columns if c.startswith("p_")]]
    assert probs.shape[1] == 7 and (probs.sum(1) - 1).abs().max() < 1e-3
    assert doc["schema"] == "fan-live-session" and doc["version"] == 1
    assert doc["metadata"]["providers"] == ["CPUExecutionProvider"]
    assert len(doc["rows"]) == len(df)
    assert "wrote" in proc.stdout


def test_face_leaves_and_enters(videos, model, tmp_path):
    leaves = run_cli("--video", videos / "face_noface.mov", "--export", tmp_path / "l.csv", weights=model)
    enters = run_cli("--video", videos / "noface_face.mov", "--export", tmp_path / "e.csv", weights=model)
    assert leaves.returncode == 0 and enters.returncode == 0, leaves.stderr + enters.stderr
    n_leave = _frame_count(videos / "face_noface.mov")
    n_enter = _frame_count(videos / "noface_face.mov")
    left = pd.read_csv(tmp_path / "l.csv")["frame_index"]
    entered = pd.read_csv(tmp_path / "e.csv")["frame_index"]
    assert left.min() < 5 and left.max() < n_leave - 20      # rows stop when the face leaves
    assert entered.min() > 20 and entered.max() >= n_enter - 3  # rows start when it enters


def _frame_count(path: Path) -> int:
    from app.capture import open_source

    with open_source(path) as src:
        return sum(1 for _ in src)


def test_no_face_gives_zero_rows_and_says_so(videos, model, tmp_path):
    proc = run_cli("--video", videos / "no_face.mp4", "--export", tmp_path / "n.csv", weights=model)
    assert proc.returncode == 0, proc.stderr
    assert "no face found" in proc.stdout
    assert len(pd.read_csv(tmp_path / "n.csv")) == 0


def test_folder_of_videos(videos, model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("single_face.mp4", "no_face.mp4"):
        shutil.copy(videos / name, folder / name)
    proc = run_cli("--video", folder, "--export", tmp_path / "out", weights=model)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "out" / "single_face.csv")) > 50
    assert len(pd.read_csv(tmp_path / "out" / "no_face.csv")) == 0


def test_missing_zero_byte_and_text_files(model, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    for path, word in ((tmp_path / "missing.mp4", "not found"), (empty, "empty"), (text, "")):
        err = one_line_error(run_cli("--video", path, "--export", tmp_path / "x.csv", weights=model))
        assert str(path.name) in err and word in err
        assert not (tmp_path / "x.csv").exists()


def test_truncated_mp4_exports_what_was_decoded(videos, model, tmp_path):
    data = (videos / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])  # its index sits at the start: the first ~180 frames decode
    proc = run_cli("--video", cut, "--export", tmp_path / "cut.csv", weights=model)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(tmp_path / "cut.csv")
    assert 100 < len(df) < 472


def test_unwritable_export_path(videos, model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = one_line_error(run_cli("--video", videos / "single_face.mp4", "--export", blocker / "out.csv",
                                 weights=model))
    assert "out.csv" in err or str(blocker) in err


def test_bad_weights(videos, model, tmp_path):
    video = videos / "single_face.mp4"
    # missing
    err = one_line_error(run_cli("--video", video, weights=tmp_path / "nope.onnx"))
    assert "nope" in err
    # corrupt graph (hash mismatch)
    bad = tmp_path / "bad"
    shutil.copytree(model.parent, bad)
    onnx_file = next(bad.glob("*_embedder.onnx"))
    raw = bytearray(onnx_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(raw))
    assert "corrupt" in one_line_error(run_cli("--video", video, weights=bad / model.name))
    # a card that does not match its graph
    mism = tmp_path / "mism"
    shutil.copytree(model.parent, mism)
    for card in mism.glob("*.json"):
        d = json.loads(card.read_text())
        d["preprocess"]["input_size"] = 112
        card.write_text(json.dumps(d))
    err = one_line_error(run_cli("--video", video, weights=mism / model.name))
    assert "112" in err


def test_random_weights_are_flagged(videos, model, tmp_path):
    proc = run_cli("--video", videos / "single_face.mp4", "--export", tmp_path / "s.csv", weights=model)
    assert proc.returncode == 0
    assert "random" in proc.stderr.lower()


def test_engine_import_does_not_import_qt():
    code = ("import sys, app.capture, app.faces, app.tracking, app.inference, app.pipeline, app.replay, "
            "app.session, app.bench, models.train, models.evaluate, models.export, models.cv; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
