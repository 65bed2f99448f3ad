"""The GPU recipe: one command from identity pretraining to an exported, quantized and measured model, with one
results file; the same chain at a tiny budget runs on a CPU (the test).

    python -m models.recipe gpu --out runs/gpu                               # a lent GPU: the budgets below
    python -m models.recipe gpu --tiny --threads 1 --out /tmp/recipe         # the whole chain on a CPU in ~1 min
    python -m models.recipe compare --weights runs/gpu/export/fan_r18_recipe_embedder.json \\
        --baseline weights/fan_r18_multi_embedder.json                      # ship only a model that beats it

Steps (library calls, never a CLI's main), in order:
  distill   models.distill.pretrain: a ResNet18 from scratch at input_size px learns the identity teacher's (hse or
            dlib) centred embedding on the train parts of FER+, RAF-DB, SFEW and the posed set (no labels; CK+48 and
            every held-out part stay unseen).
  frames    models.train.train_frames: expressions on every domain of models.data.loading.DOMAINS, initialised from
            distill, the small domains drawn `repeat` times an epoch, selection on the mean macro-F1 over the
            domains' held-out parts, SWA over the last swa_epochs.
  clips     models.train.train_clips: the FAN heads on synthetic clips of the same training images. No CK+ clips:
            CK+48 frames stay evaluation-only.
  export    models.release.export: the ONNX graphs and cards (mirror-averaged embedder), torch vs ONNX Runtime parity.
  quantize  models.release.quantize: the int8 embedder, calibrated on training crops.
  evaluate  models.evaluate.run_suite: the five domains through the exported graphs, each precision in
            `precisions`, ONNX Runtime on the CPU; the mean over the domains.

<out>/recipe.json is the one results file: the recipe's settings, the torch device, and per step its wall time,
its resolved config (with the equivalent command line where the step has one), its output and a summary; "table"
holds the same as a short markdown table (also printed). It is rewritten atomically after every step, so a run
stopped by a time limit leaves the steps it finished. Rerunning skips every step recorded as done whose output
exists; distill and frames resume from their last.pt; once a step runs, every later step runs again.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from models.engine.checkpoints import write_json
from models.engine.cli import DataOptions, add_data_args, add_dataclass_args, command_line, config_from_args
from models.distill import DistillConfig
from models.networks.fan import WINDOW_LENGTH
from models.data.datasets import DOMAINS
from models.train import ClipsConfig, FramesConfig

RESULTS = "recipe.json"
STEPS = ("distill", "frames", "clips", "export", "quantize", "evaluate")
PRECISIONS = ("fp32", "int8")
# Who may use a model trained on these sets (each set's terms: ../shared/data/README.md).
LICENCE = ("research use only: trained on RAF-DB (non-commercial research use, no redistribution), SFEW 2.0 "
           "(academic research use under its authors' licence), the posed Taiwanese database (supplied for research) "
           "and FER2013/FER+ (research use). The weights are the project's own; do not use them commercially.")
TRAINING_DATA = ("identity pretraining (no labels) and expressions on the train parts of FER+ (FER2013 Training, "
                 "vote targets), RAF-DB basic train less its fixed 10% val split, SFEW 2.0 train less its fixed 20% "
                 "split, and the posed Taiwanese set less 6 held-out performers (models.data.loading.DOMAINS); selection "
                 "on the mean macro-F1 over those four held-out parts; CK+48 never trained on. Research-use data, "
                 "not shipped.")


@dataclass
class RecipeConfig(DataOptions):
    out: str = "runs/gpu"
    models_dir: str = ""                 # the teachers: "" = $FANLIVE_MODELS, else ../shared/models
    device: str = "auto"                 # auto, cpu or cuda (cuda is refused when torch sees none)
    threads: int = 0                     # torch threads (0: torch's default) and ONNX Runtime's (0: every core)
    workers: int = 1                     # MediaPipe processes for images without stored landmarks (none after a
    #                                      restored pack: it brings every landmark)
    teacher: str = "hse"                 # models.networks.teachers: hse or dlib
    input_size: int = 112
    color: str = "rgb"
    batch_size: int = 256                # distill and frames
    warmup_epochs: float = FramesConfig.warmup_epochs
    distill_datasets: list[str] = field(default_factory=lambda: list(DOMAINS))
    # Budgets meant to fit one 10-minute device call (restore and caches included), estimated rather than timed:
    # recipe.json records each step's wall time to set them from. The batches are augmented on the CPU.
    distill_epochs: int = 3
    distill_lr: float = DistillConfig.lr
    frames_epochs: int = 8               # including the SWA epochs
    swa_epochs: int = 2
    frames_lr: float = FramesConfig.lr
    # SFEW's and the posed set's train parts (~690 and ~970 images) drawn three times an epoch: once, they would be
    # 4% of the ~37,600 draws
    repeat: list[str] = field(default_factory=lambda: ["sfew=3", "taiwanese=3"])
    heads: list[str] = field(default_factory=lambda: ClipsConfig().heads)
    clip_sources: list[str] = field(default_factory=lambda: ["ferplus-synth"])  # no "ckplus": see the docstring
    clip_epochs: int = ClipsConfig.epochs
    clip_variants: int = 4               # precomputed degraded copies per image (the CPU augments them)
    calibration: int = 512               # int8 calibration crops (models.release.quantize)
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    name: str = "fan_r18_recipe"         # file stem of the exported graphs
    window_length: int = WINDOW_LENGTH   # the card's FAN window
    limit: int = 0                       # >0: at most this many images per dataset split, in every step
    seed: int = 0
    tiny: bool = False                   # TINY's budgets for every option left at its default


# The budgets of --tiny: the whole chain on a CPU in about a minute (the test); options given explicitly win.
TINY = {"limit": 16, "input_size": 32, "batch_size": 8, "distill_epochs": 1, "frames_epochs": 2, "swa_epochs": 1,
        "warmup_epochs": 0.0, "clip_epochs": 1, "clip_variants": 2, "calibration": 8}


def apply_tiny(cfg: RecipeConfig) -> RecipeConfig:
    """cfg with TINY's values for the fields still at their defaults (when cfg.tiny)."""
    if not cfg.tiny:
        return cfg
    defaults = RecipeConfig()
    return dataclasses.replace(cfg, **{k: v for k, v in TINY.items() if getattr(cfg, k) == getattr(defaults, k)})


def check_config(cfg: RecipeConfig) -> None:
    from models.networks.heads import HEADS
    from models.networks.teachers import TEACHERS

    problems = []
    if cfg.teacher not in TEACHERS:
        problems.append(f"--teacher takes {', '.join(TEACHERS)}")
    if cfg.color not in ("gray", "rgb"):
        problems.append("--color takes gray or rgb")
    if not 0 <= cfg.swa_epochs < cfg.frames_epochs:
        problems.append("--swa-epochs must lie in [0, --frames-epochs)")
    if min(cfg.distill_epochs, cfg.clip_epochs, cfg.clip_variants, cfg.calibration, cfg.batch_size) < 1:
        problems.append("epochs, variants, calibration and batch size must be >= 1")
    if set(cfg.precisions) - set(PRECISIONS) or not cfg.precisions:
        problems.append(f"--precisions takes {' '.join(PRECISIONS)}")
    if set(cfg.heads) - set(HEADS) or not cfg.heads:
        problems.append(f"--heads takes {' '.join(HEADS)}")
    if problems:
        raise ValueError("; ".join(problems))


# ---------------------------------------------------------------------------------------------------- steps

@dataclass(frozen=True)
class Paths:
    distill: Path
    frames: Path
    clips: Path
    export: Path
    card: Path

    @classmethod
    def of(cls, cfg: RecipeConfig) -> Paths:
        out = Path(cfg.out)
        return cls(out / "distill", out / "frames", out / "clips", out / "export",
                   out / "export" / f"{cfg.name}_embedder.json")

    def embedder(self, cfg: RecipeConfig) -> Path:
        """The stage-1 checkpoint the heads are trained on: the SWA average, else the best epoch."""
        return self.frames / ("swa.pt" if cfg.swa_epochs else "best.pt")

    def output(self, step: str, cfg: RecipeConfig) -> Path | None:
        """What a finished step leaves (None: the results file alone records it)."""
        return {"distill": self.distill / "last.pt", "frames": self.embedder(cfg), "clips": self.clips / "model.pt",
                "export": self.card, "quantize": self.card.with_name(f"{cfg.name}_embedder_int8.onnx"),
                "evaluate": None}[step]

    def intact(self, step: str, cfg: RecipeConfig) -> bool:
        """Whether a finished step's output is still there; the exported model must also load (its card checks
        every file it lists, the int8 graph included)."""
        output = self.output(step, cfg)
        if step == "export":
            from app.recognition.card import ModelError, load_card

            try:
                load_card(output)
            except ModelError:
                return False
        return output is None or output.exists()


def _distill(cfg: RecipeConfig, paths: Paths, command: str) -> tuple[dict, dict]:
    from models.distill import pretrain

    dcfg = DistillConfig(teacher=cfg.teacher, datasets=",".join(cfg.distill_datasets), data=cfg.data,
                         cache_dir=cfg.cache_dir, models_dir=cfg.models_dir, out=str(paths.distill),
                         input_size=cfg.input_size, color=cfg.color, epochs=cfg.distill_epochs,
                         batch_size=cfg.batch_size, lr=cfg.distill_lr, warmup_epochs=cfg.warmup_epochs,
                         limit=cfg.limit, teacher_batch=cfg.batch_size, workers=cfg.workers, seed=cfg.seed,
                         threads=cfg.threads, resume=True, device=cfg.device)
    pretrain(dcfg)
    last = (paths.distill / "metrics.jsonl").read_text().splitlines()[-1]
    return _config(dcfg, "python -m models.distill pretrain"), json.loads(last)


def _frames(cfg: RecipeConfig, paths: Paths, command: str) -> tuple[dict, dict]:
    from models.engine.checkpoints import load_checkpoint
    from models.train import train_frames

    fcfg = FramesConfig(data=cfg.data, cache_dir=cfg.cache_dir, out=str(paths.frames), input_size=cfg.input_size,
                        color=cfg.color, epochs=cfg.frames_epochs, batch_size=cfg.batch_size, lr=cfg.frames_lr,
                        warmup_epochs=cfg.warmup_epochs, limit_train=cfg.limit, limit_valid=cfg.limit,
                        seed=cfg.seed, threads=cfg.threads, resume=True, init=str(paths.distill / "last.pt"),
                        swa_epochs=cfg.swa_epochs, repeat=list(cfg.repeat), device=cfg.device)
    train_frames(fcfg)
    ck = load_checkpoint(paths.embedder(cfg))
    report = json.loads(ck["metrics"])
    summary = {"checkpoint": str(paths.embedder(cfg)), "epoch": int(ck["epoch"]) + 1,
               **{k: report[k] for k in ("selection_score", "accuracy", "macro_f1", "uar")},
               "by_dataset": {name: {k: r[k] for k in ("n", "accuracy", "macro_f1")}
                              for name, r in report["by_dataset"].items()}}
    return _config(fcfg, "python -m models.train frames"), summary


def _clips(cfg: RecipeConfig, paths: Paths, command: str) -> tuple[dict, dict]:
    from models.train import train_clips

    ccfg = ClipsConfig(embedder=str(paths.embedder(cfg)), data=cfg.data, cache_dir=cfg.cache_dir,
                       out=str(paths.clips), heads=list(cfg.heads), sources=list(cfg.clip_sources),
                       variants=cfg.clip_variants, epochs=cfg.clip_epochs, limit_train=cfg.limit,
                       limit_valid=cfg.limit, seed=cfg.seed, threads=cfg.threads, device=cfg.device)
    train_clips(ccfg)
    results = json.loads((paths.clips / "results.json").read_text())
    summary = {h: {"selection_score": results[h]["selection_score"], "classifier_lr": results[h]["classifier_lr"],
                   "single_frame_accuracy": {name: r["single_frame"]["accuracy"]
                                             for name, r in results[h]["by_dataset"].items()}}
               for h in cfg.heads}
    return _config(ccfg, "python -m models.train clips"), summary


def _export(cfg: RecipeConfig, paths: Paths, command: str) -> tuple[dict, dict]:
    from models.release.export import ExportOptions, export_checkpoint

    opts = ExportOptions(name=cfg.name, checkpoint=paths.clips / "model.pt", out=paths.export,
                         window_length=cfg.window_length, flip_average=True)  # mirror averaging as shipped
    result = export_checkpoint(opts, command, {"training": {"data": TRAINING_DATA, "recipe": command},
                                               "licence": LICENCE})
    config = {"checkpoint": str(opts.checkpoint), "name": cfg.name, "window_length": cfg.window_length,
              "flip_average": opts.flip_average, "heads": list(result.heads)}
    return config, {"card": str(result.card), "parity_max_abs_diff": max(result.parity.values())}


def _quantize(cfg: RecipeConfig, paths: Paths, command: str) -> tuple[dict, dict]:
    from app.recognition.card import load_card
    from models.release.quantize import add_int8, calibration_crops

    card = load_card(paths.card)
    crops, check, source = calibration_crops(Path(cfg.data), card.preprocess, Path(cfg.cache_dir), cfg.calibration,
                                             cfg.seed, progress=True, limit=cfg.limit)
    out = add_int8(card.path, crops, check, source=source, command=command)
    record = load_card(paths.card).extra["quantization"]
    config = {"card": str(paths.card), "calibration": cfg.calibration, "seed": cfg.seed, "limit": cfg.limit,
              "method": "minmax", "weight_type": "s8"}
    return config, {"int8": str(out), "agreement": record.get("agreement", {})}


def _evaluate(cfg: RecipeConfig, paths: Paths, command: str) -> tuple[dict, dict]:
    import torch

    from app.recognition.card import load_card
    from models.evaluate import run_suite
    from models.release.export import update_cards
    from models.engine.runtime import hardware_string

    card = load_card(paths.card)
    threads = cfg.threads or os.cpu_count()
    summary = {}
    for precision in cfg.precisions:
        reports = run_suite(card, Path(cfg.data), Path(cfg.cache_dir), "cpu", None, progress=True, limit=cfg.limit,
                            precision=precision, threads=threads)
        summary[precision] = {"mean": suite_mean(reports), "domains": trim_reports(reports)}
    # the measured numbers travel with the graphs (update_cards leaves the ONNX files and their hashes untouched)
    card_suite = {p: {"mean": v["mean"], **{d: {k: v for k, v in r.items() if k != "confusion_matrix"}
                                            for d, r in v["domains"].items()}} for p, v in summary.items()}
    card_suite["note"] = ("models.evaluate suite through the exported graphs, ONNX Runtime on the CPU, relation head, "
                          "each image a window of one frame" + (f", at most {cfg.limit} images a domain"
                                                                 if cfg.limit else ""))
    card_suite["host"] = hardware_string(torch.device("cpu"))
    update_cards(paths.card, {"metrics": {"suite": card_suite}})
    config = {"card": str(paths.card), "precisions": list(cfg.precisions), "device": "cpu (ONNX Runtime)",
              "onnxruntime_threads": threads, "limit": cfg.limit,
              "equivalent": [f"python -m models.evaluate suite --weights {paths.card} --precision {p}"
                             + (f" --limit {cfg.limit}" if cfg.limit else "") for p in cfg.precisions]}
    return config, summary


STEP_FUNCTIONS: dict[str, Callable[[RecipeConfig, Paths, str], tuple[dict, dict]]] = {
    "distill": _distill, "frames": _frames, "clips": _clips, "export": _export, "quantize": _quantize,
    "evaluate": _evaluate}


def _config(cfg, prog: str) -> dict:
    return {**asdict(cfg), "equivalent": command_line(prog, cfg)}


# ---------------------------------------------------------------------------------------------------- means

def suite_mean(reports: dict) -> dict:
    """Mean accuracy, macro-F1 and UAR over the suite's domains (each domain counts once, whatever its size)."""
    return {k: sum(r[k] for r in reports.values()) / len(reports) for k in ("accuracy", "macro_f1", "uar")}


def trim_reports(reports: dict) -> dict:
    keep = ("n", "accuracy", "macro_f1", "uar", "per_class_recall", "detection_rate", "confusion_matrix")
    return {name: {k: r[k] for k in keep if k in r} for name, r in reports.items()}


def compare_models(weights: Path, baseline: Path, data: Path, cache_dir: Path, precision: str = "int8",
                   limit: int = 0, threads: int | None = None, progress: bool = True) -> dict:
    """Both models through the same suite on this machine (validation data only): their means over the domains, and
    whether `weights` beats `baseline` on the mean macro-F1."""
    from app.recognition.card import load_card
    from models.evaluate import run_suite

    out = {"precision": precision, "criterion": "mean macro-F1 over the suite's domains (validation data only)"}
    for role, path in (("model", weights), ("baseline", baseline)):
        card = load_card(path)
        reports = run_suite(card, data, cache_dir, "cpu", None, progress, limit, precision, threads)
        out[role] = {"card": str(card.path), "name": card.name, "mean": suite_mean(reports),
                     "domains": trim_reports(reports)}
    out["beats_baseline"] = out["model"]["mean"]["macro_f1"] > out["baseline"]["mean"]["macro_f1"]
    return out


# ---------------------------------------------------------------------------------------------------- table

def _step_line(name: str, record: dict) -> str:
    from models.evaluate import suite_titles

    r = record.get("result", {})
    if name == "distill":
        text = f"held-out cosine to the teacher's code {r.get('holdout_cosine', float('nan')):.3f}"
    elif name == "frames":
        titles = suite_titles()
        text = (f"mean macro-F1 over the held-out parts {r['macro_f1']:.3f}; accuracy " +
                ", ".join(f"{titles.get(k, k)} {100 * v['accuracy']:.1f}%" for k, v in r["by_dataset"].items()))
    elif name == "clips":
        text = "; ".join(f"{h} selection score {v['selection_score']:.3f}" for h, v in r.items())
    elif name == "export":
        text = f"parity max abs diff {r['parity_max_abs_diff']:.1e}"
    elif name == "quantize":
        a = r.get("agreement", {})
        text = f"same label as fp32 on {a.get('n', 0)} other training crops: {100 * a.get('same_label', 0):.1f}%"
    else:
        text = "; ".join(f"{p} mean accuracy {100 * v['mean']['accuracy']:.2f}% macro-F1 {v['mean']['macro_f1']:.3f}"
                         for p, v in r.items())
    return f"| {name} | {record.get('seconds', 0):.0f} | {text} |"


def results_table(results: dict) -> list[str]:
    """The results file's markdown: a row per finished step, then each precision's suite table with its mean."""
    from models.evaluate import format_suite

    r = results["recipe"]
    lines = [f"{r['teacher']} teacher, {r['input_size']} px {r['color']}, {results['device']}", "",
             "| step | seconds | result |", "| --- | --- | --- |"]
    steps = results["steps"]
    lines += [_step_line(name, steps[name]) for name in STEPS if steps.get(name, {}).get("status") == "done"]
    for precision, s in steps.get("evaluate", {}).get("result", {}).items():
        mean = s["mean"]
        lines += ["", f"Suite, {precision} embedder (ONNX Runtime, CPU), each image a window of one frame:", "",
                  *format_suite(s["domains"]).splitlines(),
                  f"| mean over {len(s['domains'])} domains | | {100 * mean['accuracy']:.2f}% | "
                  f"{mean['macro_f1']:.3f} | {mean['uar']:.3f} |"]
    return lines


# ---------------------------------------------------------------------------------------------------- runner

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_recipe(cfg: RecipeConfig, command: str = "") -> dict:
    """Run every step not yet done (see the module docstring); returns the results, also in <out>/recipe.json."""
    import torch

    from models.engine.runtime import hardware_string, resolve_device

    cfg = apply_tiny(cfg)
    check_config(cfg)
    device = resolve_device(cfg.device)  # SystemExit with one line when cuda is asked for and absent
    hardware = hardware_string(device)
    print(f"recipe: torch {torch.__version__} on {device} ({hardware})", file=sys.stderr)
    command = command or command_line("python -m models.recipe gpu", cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    previous = json.loads(path.read_text()) if path.is_file() else {}
    results = {"recipe": asdict(cfg), "command": command, "device": hardware,
               "host": {"python": platform.python_version(), "cpus": os.cpu_count()},
               "started": _now(), "steps": previous.get("steps", {})}
    paths = Paths.of(cfg)
    t_start, rerun = time.perf_counter(), False
    for name in STEPS:
        record, output = results["steps"].get(name, {}), paths.output(name, cfg)
        if not rerun and record.get("status") == "done" and paths.intact(name, cfg):
            print(f"recipe: {name} done before ({output or RESULTS}); skipped", file=sys.stderr)
            continue
        rerun = True  # what follows a step that runs is stale
        results["steps"][name] = {"status": "running", "started": _now(),
                                  "resumed": record.get("status") in ("running", "failed")}
        write_json(path, results)
        print(f"recipe: {name} ...", file=sys.stderr)
        t0 = time.perf_counter()
        try:
            config, summary = STEP_FUNCTIONS[name](cfg, paths, command)
        except BaseException as e:
            results["steps"][name].update(status="failed", seconds=round(time.perf_counter() - t0, 1),
                                          error=f"{type(e).__name__}: {e}".splitlines()[0][:300])
            write_json(path, results)
            raise
        results["steps"][name] = {"status": "done", "seconds": round(time.perf_counter() - t0, 1),
                                  "finished": _now(), "resumed": results["steps"][name]["resumed"],
                                  "output": str(output) if output else RESULTS, "config": config, "result": summary}
        results["table"] = results_table(results)
        results["seconds_this_run"] = round(time.perf_counter() - t_start, 1)
        write_json(path, json.loads(json.dumps(results, default=str)))
    results["table"] = results_table(results)
    results["seconds_this_run"] = round(time.perf_counter() - t_start, 1)
    results["finished"] = _now()
    write_json(path, json.loads(json.dumps(results, default=str)))
    return results


# ---------------------------------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    import logging

    from app.recognition.card import ModelError
    from models.data.datasets import DatasetError
    from models.networks.teachers import TEACHERS

    parser = argparse.ArgumentParser(prog="python -m models.recipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_dataclass_args(sub.add_parser("gpu", help="run the recipe (resumable)"), RecipeConfig,
                       choices={"device": ("auto", "cpu", "cuda"), "color": ("gray", "rgb"), "teacher": tuple(TEACHERS),
                                "precisions": PRECISIONS})
    c = sub.add_parser("compare", help="a recipe model against a baseline through the same suite, on this machine")
    c.add_argument("--weights", type=Path, required=True, help="the new model's card")
    c.add_argument("--baseline", type=Path, required=True, help="the model it must beat (e.g. the shipped card)")
    c.add_argument("--precision", choices=PRECISIONS, default="int8", help="int8: what the app runs on a CPU")
    add_data_args(c)
    c.add_argument("--limit", type=int, default=0, help="every k-th image, at most N per domain (quick checks)")
    c.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: the app's default)")
    c.add_argument("--json", type=Path, default=None, help="also write the comparison here")
    args = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        if args.pop("command") == "gpu":
            results = run_recipe(config_from_args(RecipeConfig, args),
                                 "python -m models.recipe " + " ".join(sys.argv[1:] if argv is None else argv))
            print("\n".join(results["table"]))
            print(f"results: {Path(results['recipe']['out']) / RESULTS}", file=sys.stderr)
            return 0
        cmp = compare_models(args["weights"], args["baseline"], args["data"], args["cache_dir"],
                             args["precision"], args["limit"], args["threads"] or None)
    except (ValueError, FileNotFoundError, ModelError, DatasetError) as e:
        print(f"error: {e}".splitlines()[0], file=sys.stderr)
        return 1
    from models.evaluate import format_suite

    for role in ("model", "baseline"):
        m = cmp[role]
        print(f"{m['name']} ({cmp['precision']}): mean accuracy {100 * m['mean']['accuracy']:.2f}%, "
              f"macro-F1 {m['mean']['macro_f1']:.3f}")
        print(format_suite(m["domains"]))
    print(f"{'beats' if cmp['beats_baseline'] else 'does not beat'} the baseline on the {cmp['criterion']}")
    if args["json"]:
        write_json(args["json"], cmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
