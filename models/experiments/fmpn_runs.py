"""FMPN's experiment runs on the app's data (the network, its masks and its trainer are models.networks.fmpn):

    python -m models.experiments.fmpn_runs ckplus --init runs/faer/warm/embedder.pt --folds 0 1 2 3 4 5 6 7 8 9 --out runs/fmpn/ck
    python -m models.experiments.fmpn_runs frames --init runs/faer/warm/embedder.pt --limit-train 3000 --out runs/fmpn/frames
    python -m models.experiments.fmpn_runs cost [--runs 100]      # CPU ms per face of the exported graph vs the plain embedder

ckplus: FMPN's 10 CK+ folds with its own per-fold masks; frames: FER+/RAF-DB with the proxy masks, exported to ONNX
with its card; cost: the exported graph's CPU time per face against the plain embedder; compare_rows: the rows
models.experiments.compare adds for FMPN.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.networks.fan import WINDOW_LENGTH, ResNet18Embedder
from models.networks.fmpn import (FmpnEmbedder, FmpnTrainConfig, export_fmpn, fmpn_from_embedder, fusion_share,
                                  predict, proxy_masks, read_fmpn_masks, train_fmpn)

# ----------------------------------------------------------------------------------------------- CK+ folds
@dataclass
class CkConfig(FmpnTrainConfig):
    init: str = "runs/faer/warm/embedder.pt"
    out: str = "runs/fmpn/ckplus"
    folds: list[int] = field(default_factory=lambda: list(range(10)))
    folds_dir: str = ""            # default: <data>/ckplus48/folds/fmpn
    prior: bool = True             # --no-prior: the same budget without generator/fusion/mask loss (the baseline)
    zero_fusion: bool = True       # False: the fusion's last conv starts at torch's default init, so the prior
                                   # changes the classifier's input from the first step (closer to FMPN's own fusion)
    data: str = ""
    cache_dir: str = ""
    threads: int = 1


def read_fold_ids(folds_dir: Path, split: str, fold: int) -> list[str]:
    path = Path(folds_dir) / f"{split}_ids_{fold}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no FMPN fold file {path}")
    return [line.strip().split(",")[0] for line in path.read_text().splitlines() if line.strip().endswith(".png")]


def run_ckplus(cfg: CkConfig) -> dict:
    """FMPN's 10 folds, its per-image metric: accuracy over each fold's test images (CK+'s 7 classes)."""
    from app.paths import data_root
    from models.engine.cli import CACHE_DIR
    from app.faces.align import Preprocess
    from models.engine.checkpoints import load_checkpoint
    from models.data.loading import CK_LABELS, ckplus_label, load_ckplus

    torch.set_num_threads(cfg.threads)
    data = Path(cfg.data or data_root())
    folds_dir = Path(cfg.folds_dir or data / "ckplus48" / "folds" / "fmpn")
    ck = load_checkpoint(cfg.init)
    pre = Preprocess.from_dict(json.loads(ck["preprocess"]))
    aligned, _ = load_ckplus(pre, data, cfg.cache_dir or CACHE_DIR, progress=False)
    row = {Path(p).name: i for i, p in enumerate(aligned.paths)}
    labels_all = torch.tensor([ckplus_label(p) for p in aligned.paths])
    crops = torch.from_numpy(aligned.crops)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for fold in cfg.folds:
        tr = np.array([row[n] for n in read_fold_ids(folds_dir, "train", fold)])
        te = np.array([row[n] for n in read_fold_ids(folds_dir, "test", fold)])
        model = fmpn_from_embedder(_ck_state(ck["embedder"]), pre.channels, len(CK_LABELS), cfg.ngf, cfg.n_blocks)
        masks = read_fmpn_masks(folds_dir, fold, pre.input_size, CK_LABELS, template=pre.template)
        if not cfg.zero_fusion:
            model.fusion.mix[-1].reset_parameters()
        if not cfg.prior:  # the classifier alone, same steps and optimiser: the baseline FMPN is measured against
            model.use_prior = False
            model.generator.requires_grad_(False)
            model.fusion.requires_grad_(False)
            train_cfg = FmpnTrainConfig(**{**_train_fields(cfg), "gen_epochs": 0.0, "mask_weight": 0.0})
        else:
            train_cfg = FmpnTrainConfig(**_train_fields(cfg))
        t0 = time.time()
        curves = train_fmpn(model, crops[tr], labels_all[tr], masks, pre, train_cfg)
        pred = predict(model, crops[te], pre)
        acc = float((pred == labels_all[te].numpy()).mean())
        prior_share = fusion_share(model, crops[te], pre)
        r = {"fold": fold, "n_train": len(tr), "n_test": len(te), "accuracy": acc, "seconds": time.time() - t0,
             "correct": int((pred == labels_all[te].numpy()).sum()),
             "final_ce": float(np.mean(curves["joint_ce"][-5:])),
             "final_mse": float(np.mean(curves["joint_mse"][-5:])), "prior_share": prior_share,
             "generator_mse": [curves["generator_mse"][0], curves["generator_mse"][-1]]
             if curves["generator_mse"] else None}
        results.append(r)
        with open(out / "folds.jsonl", "a") as f:
            f.write(json.dumps({**r, "prior": cfg.prior, "zero_fusion": cfg.zero_fusion}) + "\n")
        print(f"[fold {fold}] {r['correct']}/{len(te)} = {acc:.4f} ({r['seconds']:.0f} s)", file=sys.stderr)
    summary = {"config": asdict(cfg), "folds": results,
               "mean_fold_accuracy": float(np.mean([r["accuracy"] for r in results])),
               "pooled_accuracy": sum(r["correct"] for r in results) / sum(r["n_test"] for r in results)}
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"mean per-fold accuracy {summary['mean_fold_accuracy']:.4f}, pooled {summary['pooled_accuracy']:.4f} "
          f"over folds {cfg.folds}")
    return summary


def _train_fields(cfg) -> dict:
    names = FmpnTrainConfig.__dataclass_fields__
    return {k: v for k, v in asdict(cfg).items() if k in names}


def _ck_state(state: dict) -> dict:
    """The FER+/RAF-DB embedder's weights with its classifier re-ordered to CK+'s labels (models.data.loading.CK_LABELS):
    the six basic emotions keep their rows, contempt (no counterpart) starts at zero weight and the mean bias."""
    from app.emotions import EMOTIONS
    from models.data.loading import CK_LABELS

    w, b = state["fc.weight"].clone(), state["fc.bias"].clone()
    for i, name in enumerate(CK_LABELS):
        if name in EMOTIONS:
            w[i], b[i] = state["fc.weight"][EMOTIONS.index(name)], state["fc.bias"][EMOTIONS.index(name)]
        else:
            w[i], b[i] = 0.0, state["fc.bias"].mean()
    return {**state, "fc.weight": w, "fc.bias": b}


# ----------------------------------------------------------------------------------------------- FER+ / RAF-DB
@dataclass
class FramesFmpnConfig(FmpnTrainConfig):
    init: str = "runs/faer/warm/embedder.pt"
    out: str = "runs/fmpn/frames"
    limit_train: int = 3000        # training images per dataset (every k-th), 0 = all
    limit_valid: int = 0
    epochs: float = 1.0
    gen_epochs: float = 1.0
    batch_size: int = 64
    export: bool = True            # ONNX graphs + cards (python -m models.release.export's format) into <out>/export
    data: str = ""
    cache_dir: str = ""
    threads: int = 1


def run_frames(cfg: FramesFmpnConfig) -> dict:
    """FMPN on FER+ Train + the RAF-DB train split with proxy masks; FER+ Valid and RAF-DB val scores; export."""
    from app.emotions import EMOTIONS
    from app.paths import data_root
    from models.engine.cli import CACHE_DIR
    from app.faces.align import Preprocess
    from models.engine.checkpoints import load_checkpoint, save_checkpoint
    from models.data.loading import load_frame_data
    from models.engine.metrics import classification_report
    from models.engine.training import class_weights
    from models.train import FramesConfig

    torch.set_num_threads(cfg.threads)
    ck = load_checkpoint(cfg.init)
    pre = Preprocess.from_dict(json.loads(ck["preprocess"]))
    fc = FramesConfig(data=cfg.data or str(data_root()), cache_dir=cfg.cache_dir or str(CACHE_DIR),
                      input_size=pre.input_size, color=pre.color, limit_train=cfg.limit_train,
                      limit_valid=cfg.limit_valid, datasets=["ferplus", "rafdb"], valid_datasets=["ferplus", "rafdb"])
    data = load_frame_data(fc, pre, progress=False)
    labels = torch.from_numpy(data.labels)
    masks = proxy_masks(data.crops, data.labels, len(EMOTIONS), EMOTIONS.index("neutral"))
    model = fmpn_from_embedder(ck["embedder"], pre.channels, len(EMOTIONS), cfg.ngf, cfg.n_blocks, drop_rate=0.2)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    curves = train_fmpn(model, data.crops, labels, masks, pre, FmpnTrainConfig(**_train_fields(cfg)),
                        target=data.target, class_weight=class_weights(data.labels, 0.5))
    reports = {name: classification_report(y, predict(model, c, pre), EMOTIONS) for name, (c, y) in data.valid.items()}
    summary = {"config": asdict(cfg), "train_images": len(labels), "seconds": time.time() - t0,
               "curves": {k: [v[0], v[-1]] if v else None for k, v in curves.items()}, "valid": reports}
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(out / "fmpn.pt", {"fmpn": state, "preprocess": json.dumps(pre.to_dict()),
                                      "arch": json.dumps({"ngf": cfg.ngf, "n_blocks": cfg.n_blocks}),
                                      "metrics": json.dumps(reports)})
    if cfg.export:
        card = export_fmpn(model, pre, out / "export", "fmpn_r18", extra={
            "training": {"data": "FER+ Train + RAF-DB train split (research use)", "init": cfg.init,
                         "command": " ".join(sys.argv), "config": asdict(cfg)},
            "metrics": {k: {m: r[m] for m in ("accuracy", "macro_f1", "uar")} for k, r in reports.items()},
            "licence": "research use only (RAF-DB terms)"})
        summary["card"] = str(card)
    print("  ".join(f"{k} acc {r['accuracy']:.4f} F1 {r['macro_f1']:.4f}" for k, r in reports.items()))
    return summary


# ----------------------------------------------------------------------------------------------- cost
def embed_ms(model: ResNet18Embedder, pre, runs: int, threads: int, tmp: Path, name: str) -> float:
    """Median ms per aligned face through the app's own Embedder (ONNX Runtime, CPU), as models.release.cost measures."""
    from app.recognition.card import load_card
    from app.recognition.recognizer import Embedder
    from models.release.cost import median_embed_ms
    from models.release.export import export_model
    from models.networks.fan import FanHead

    card = export_model(model.eval(), {"self": FanHead("self").eval()}, tmp, name, pre, window_length=WINDOW_LENGTH,
                        default_head="self", extra={"random_init": True, "training": "none: cost only"})
    return median_embed_ms(Embedder(load_card(card), "cpu", threads=threads or None), runs)


def cost_table(runs: int, threads: int, size: int = 64, color: str = "rgb") -> list[dict]:
    from app.faces.align import Preprocess

    pre = Preprocess(input_size=size, color=color)
    variants = [("ResNet18 (the shipped embedder)", ResNet18Embedder(in_chans=pre.channels)),
                ("FMPN, ngf 16, 2 blocks (default)", FmpnEmbedder(in_chans=pre.channels)),
                ("FMPN, ngf 64, 4 blocks (paper)", FmpnEmbedder(in_chans=pre.channels, ngf=64, n_blocks=4))]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for i, (label, model) in enumerate(variants):
            params = sum(p.numel() for p in model.parameters())
            ms = embed_ms(model, pre, runs, threads, Path(d) / str(i), f"cost{i}")
            rows.append({"model": label, "params": params, "ms_per_face": ms})
            print(f"{label}: {params / 1e6:.2f} M params, {ms:.2f} ms/face", file=sys.stderr)
    return rows


# ----------------------------------------------------------------------------------------------- comparison rows
CK_RUNS = {"fmpn": "runs/fmpn/ck_fmpn/folds.jsonl", "base": "runs/fmpn/ck_base/folds.jsonl"}  # ckplus --out dirs
COST_JSON = "runs/fmpn/cost.json"  # python -m models.experiments.fmpn_runs cost --json


def compare_rows(cfg) -> list[dict]:
    """A row for models.experiments.compare from the measured runs (nothing is trained here): FMPN's own CK+ folds, per-image
    accuracy (a different protocol from the table's Emotion-FAN clip column, so it goes in the paper column), with
    the same-budget classifier without the prior beside it, parameters, and the cost relative to the embedder."""
    from app.paths import ROOT

    def folds(path):
        p = ROOT / path
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []

    ck, base = folds(CK_RUNS["fmpn"]), folds(CK_RUNS["base"])
    model = FmpnEmbedder(in_chans=3)
    row = {"option": "fmpn", "name": "FMPN prior + ResNet18 (ngf 16, 2 blocks)",
           "parameters": sum(p.numel() for p in model.parameters())}
    text = []
    if ck:
        acc = 100 * sum(r["correct"] for r in ck) / sum(r["n_test"] for r in ck)
        text.append(f"FMPN folds {sorted(r['fold'] for r in ck)}, per image: {acc:.2f}%")
    if base:
        acc = 100 * sum(r["correct"] for r in base) / sum(r["n_test"] for r in base)
        text.append(f"same budget without the prior: {acc:.2f}%")
    cost = ROOT / COST_JSON
    if cost.is_file():
        rows = json.loads(cost.read_text())
        row["ms"] = f"{rows[1]['ms_per_face'] / rows[0]['ms_per_face']:.2f}x the embedder per face"
    text.append("paper: 98.06% on its 10 folds" + ("" if ck else "; not measured yet: python -m models.experiments.fmpn_runs ckplus"))
    row["paper"] = "; ".join(text)
    return [row]


# ----------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    from models.engine.cli import add_dataclass_args, config_from_args

    p = argparse.ArgumentParser(prog="python -m models.experiments.fmpn_runs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    add_dataclass_args(sub.add_parser("ckplus", help="FMPN's 10 CK+ folds, per-image accuracy"), CkConfig)
    add_dataclass_args(sub.add_parser("frames", help="FER+ + RAF-DB with proxy masks; FER+ Valid; ONNX export"),
                       FramesFmpnConfig)
    c = sub.add_parser("cost", help="CPU ms per face of FMPN's graph vs the plain embedder")
    c.add_argument("--runs", type=int, default=100)
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        if args.cmd == "ckplus":
            run_ckplus(config_from_args(CkConfig, args))
        elif args.cmd == "frames":
            run_frames(config_from_args(FramesFmpnConfig, args))
        else:
            torch.set_num_threads(1)
            rows = cost_table(args.runs, args.threads)
            print("| model | parameters | ms per face |\n| --- | --- | --- |")
            for r in rows:
                print(f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['ms_per_face']:.2f} |")
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1) + "\n")
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
