"""The evaluation CLI on a tiny real set: JSON keys and values, index CSV and FER+ layouts, the plot, errors."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from app.paths import ROOT

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def model(random_gray_model):
    return random_gray_model


@pytest.fixture(scope="module")
def tiny_ferplus(shared_data, tmp_path_factory):
    """A 24-image FER+ Valid folder (label.csv rows copied for those files) in the FER+ layout."""
    src = shared_data / "ferplus" / "FER2013Valid"
    dst = tmp_path_factory.mktemp("ferplus") / "FER2013Valid"
    dst.mkdir()
    rows = (src / "label.csv").read_text().splitlines()[:24]
    (dst / "label.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        shutil.copy(src / row.split(",")[0], dst / row.split(",")[0])
    return dst


def run_eval(*args):
    return subprocess.run([sys.executable, "-m", "models.evaluate", "--quiet", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_ferplus_layout_json_and_plot(model, tiny_ferplus, tmp_path):
    proc = run_eval("--weights", model, "--data", tiny_ferplus, "--format", "ferplus", "--plot", tmp_path / "cm.png")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("n", "accuracy", "macro_f1", "uar", "per_class_recall", "confusion_matrix", "detection_rate"):
        assert key in out
    cm = np.array(out["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == out["n"] > 10
    assert np.isclose(out["accuracy"], np.trace(cm) / cm.sum())
    assert out["detection_rate"] > 0.8  # padded + upscaled 48x48 crops: ~97% on the full set
    assert (tmp_path / "cm.png").stat().st_size > 5000


def test_index_csv_with_full_size_photo(model, astronaut_bgr, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut_bgr)  # 512x512 photo, not a crop
    (tmp_path / "labels.csv").write_text("path,label\nastronaut.png,happy\n")
    out = json.loads(run_eval("--weights", model, "--index", tmp_path / "labels.csv").stdout)
    assert out["n"] == 1 and out["detection_rate"] == 1.0
    assert list(out["per_class_recall"]) == ["happiness"]


def test_errors_are_one_line(model, tmp_path):
    proc = run_eval("--weights", tmp_path / "missing.onnx", "--index", tmp_path / "x.csv")
    assert proc.returncode == 1 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_suite_scores_five_domains_in_one_table(model, tmp_path):
    out = tmp_path / "suite.json"
    r = run_eval("suite", "--weights", model, "--limit", 24, "--cache-dir", tmp_path / "cache", "--json", out,
                 "--plot", tmp_path / "plots")
    assert r.returncode == 0, r.stderr
    table = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in table[2:]] == [
        "FER+ Valid", "RAF-DB val", "SFEW val (20% of train)", "posed, 6 held-out performers", "CK+48 frames"]
    reports = json.loads(out.read_text())["reports"]
    for name, rep in reports.items():
        assert 0 < rep["n"] <= 24 and 0 <= rep["accuracy"] <= 1 and 0 <= rep["detection_rate"] <= 1
        assert sum(map(sum, rep["confusion_matrix"])) == rep["n"]
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 1000
    assert "contempt" not in str(reports["ckplus_frames"]["per_class_recall"])  # outside the seven classes


def test_suite_errors_are_one_line(tmp_path):
    r = run_eval("suite", "--weights", tmp_path / "missing.onnx")
    assert r.returncode == 1 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_head_and_its_alias_attention_must_agree(tmp_path):
    r = run_eval("--weights", tmp_path / "m.onnx", "--index", tmp_path / "x.csv", "--head", "relation",
                 "--attention", "self")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --attention self names another head than --head relation: give one of them"]
