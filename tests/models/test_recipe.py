"""models/recipe.py: the whole GPU recipe at its tiny budget on the CPU, as a GPU box runs it: conftest's real data
slice packed here, restored elsewhere, and every step (distill, frames, clips, export, quantize, evaluate) run there
with MediaPipe unavailable; then the reruns (skip, resume what follows), the comparison and the one-line refusals."""
import json
import subprocess
import sys
import time

import pytest
import torch

import models.data.facecache as facecache
from app.recognition.card import load_card
from app.paths import ROOT
from models.engine.checkpoints import load_checkpoint
from models.data.pack import create, restore
from models.recipe import RESULTS, STEPS, TINY, RecipeConfig, apply_tiny, main, run_recipe

pytestmark = [pytest.mark.data, pytest.mark.usefixtures("one_torch_thread")]


def _no_detector(*args, **kwargs):
    raise AssertionError("the recipe on restored data must not need MediaPipe")


@pytest.fixture(scope="module")
def gpu_box(tiny_data, tmp_path_factory):
    """The data slice packed here and restored into another folder with its landmarks (what a GPU box gets)."""
    root = tmp_path_factory.mktemp("gpu_box")
    create(tiny_data, root / "pack", root / "cache_here", progress=False)
    restore(root / "pack", root / "data", root / "cache", progress=False)
    return root


def _config(box) -> RecipeConfig:
    return RecipeConfig(out=str(box / "run"), data=str(box / "data"), cache_dir=str(box / "cache"), device="cpu",
                        threads=1, tiny=True)


@pytest.fixture(scope="module")
def recipe_run(gpu_box):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(facecache, "_make_detector", _no_detector)
        t0 = time.perf_counter()
        results = run_recipe(_config(gpu_box))
    return gpu_box, results, time.perf_counter() - t0


def test_tiny_recipe_runs_every_step_from_a_restored_pack(recipe_run):
    box, results, seconds = recipe_run
    run = box / "run"
    assert json.loads((run / RESULTS).read_text()) == results  # the one results file
    assert list(results["steps"]) == list(STEPS)
    for name, step in results["steps"].items():
        assert step["status"] == "done" and step["seconds"] > 0, name
        assert step["config"] and step["result"], name
    assert results["recipe"]["input_size"] == TINY["input_size"] and results["recipe"]["limit"] == TINY["limit"]
    assert "CPU" in results["device"]
    # stage 1 started from the identity pretraining, with the teacher the recipe names
    assert json.loads((run / "frames" / "config.json").read_text())["init"] == str(run / "distill" / "last.pt")
    assert json.loads(load_checkpoint(run / "distill" / "last.pt")["teacher"])["name"] == "hse"
    assert results["steps"]["frames"]["config"]["equivalent"].startswith("python -m models.train frames ")
    # the exported model: the recipe's input, both FAN heads, the int8 graph listed, the data's terms in the card
    card = load_card(run / "export" / "fan_r18_recipe_embedder.json")
    assert (card.preprocess.input_size, card.preprocess.color) == (TINY["input_size"], "rgb")
    assert set(card.head_types) == {"relation", "self"}
    assert card.embedder_int8_file is not None and card.embedder_int8_file.is_file()
    assert "SFEW" in card.extra["licence"] and "Taiwanese" in card.extra["licence"]
    assert results["steps"]["export"]["result"]["parity_max_abs_diff"] <= 1e-4
    # the five domains through each precision, and their mean
    for precision in ("fp32", "int8"):
        s = results["steps"]["evaluate"]["result"][precision]
        assert list(s["domains"]) == ["ferplus_valid", "rafdb_val", "sfew_val", "taiwanese_val", "ckplus_frames"]
        assert all(0 < r["n"] <= TINY["limit"] for r in s["domains"].values())
        assert s["mean"]["macro_f1"] == pytest.approx(sum(r["macro_f1"] for r in s["domains"].values()) / 5)
    suite = card.extra["metrics"]["suite"]  # the measured numbers are in the card too
    assert suite["int8"]["mean"] == results["steps"]["evaluate"]["result"]["int8"]["mean"]
    table = "\n".join(results["table"])
    assert all(f"| {name} |" in table for name in STEPS) and "| mean over 5 domains |" in table
    assert seconds < 240  # the tiny budget (about a minute on a free 2-core machine)


def test_rerun_skips_finished_steps_and_reruns_from_a_missing_output(recipe_run):
    box, first, _ = recipe_run
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(facecache, "_make_detector", _no_detector)
        again = run_recipe(_config(box))
        assert {n: s["finished"] for n, s in again["steps"].items()} == \
            {n: s["finished"] for n, s in first["steps"].items()}  # nothing ran
        (box / "run" / "export" / "fan_r18_recipe_embedder_int8.onnx").unlink()
        time.sleep(1.1)  # the records' timestamps are in seconds
        third = run_recipe(_config(box))
    changed = [n for n in STEPS if third["steps"][n]["finished"] != first["steps"][n]["finished"]]
    assert changed == ["export", "quantize", "evaluate"]  # a model whose card lists a missing graph is exported again
    assert load_card(box / "run" / "export" / "fan_r18_recipe_embedder.json").embedder_int8_file.is_file()


def test_compare_runs_both_models_through_the_same_suite(recipe_run, capsys, tmp_path):
    box, _, _ = recipe_run
    card = str(box / "run" / "export" / "fan_r18_recipe_embedder.json")
    rc = main(["compare", "--weights", card, "--baseline", card, "--data", str(box / "data"), "--cache-dir",
               str(box / "cache"), "--limit", str(TINY["limit"]), "--json", str(tmp_path / "cmp.json")])
    assert rc == 0
    assert "does not beat the baseline" in capsys.readouterr().out  # a model never beats itself
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    assert cmp["beats_baseline"] is False and cmp["model"]["mean"] == cmp["baseline"]["mean"]


def test_tiny_sets_only_the_options_left_at_their_defaults():
    cfg = apply_tiny(RecipeConfig(tiny=True, input_size=48))
    assert cfg.input_size == 48 and cfg.limit == TINY["limit"] and cfg.frames_epochs == TINY["frames_epochs"]
    assert apply_tiny(RecipeConfig()) == RecipeConfig()


def test_bad_budgets_are_one_line_errors(capsys, tmp_path):
    assert main(["gpu", "--out", str(tmp_path), "--frames-epochs", "4", "--swa-epochs", "4"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--swa-epochs" in err and "\n" not in err
    assert not (tmp_path / RESULTS).exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_cuda_is_one_line():
    r = subprocess.run([sys.executable, "-m", "models.recipe", "gpu", "--device", "cuda", "--out", "/nonexistent/x"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["error: --device cuda asked for, but torch sees no CUDA device"]
