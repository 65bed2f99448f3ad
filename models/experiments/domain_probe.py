"""Why a model reads one domain worse than another: each candidate cause measured on frozen checkpoints.

    python -m models.experiments.domain_probe --checkpoint gray_ferplus=runs/warm/embedder.pt rgb_ferraf=runs/warm_ferraf/embedder.pt

For every checkpoint and every held-out domain (models.evaluate.suite_sets: FER+ Valid, RAF-DB val, SFEW val, the
held-out posed performers, CK+48 frames), in torch with mirror-averaged features:
- `acc`: accuracy as the model stands (the frame classifier);
- `acc gray`: the same crops turned 3-channel gray (colour domains of an RGB model): the colour path's share;
- `acc prior-free`: logits minus the log of the model's training label prior (logit adjustment; each class
  equally likely a priori): the label-prior share;
- `probe`: a class-balanced logistic regression fitted on the frozen features of the posed set's training
  performers, scored on the held-out performers and CK+48: what the features still hold, whatever the classifier
  learnt (the warm start's features lost, or only the classifier moved).
Prints one markdown table per measure and writes every number as JSON (--json).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.emotions import EMOTIONS
from models.engine.cli import add_data_args
from models.engine.metrics import classification_report

K = len(EMOTIONS)


def training_prior(datasets: list[str], data: Path, repeat: dict[str, float] | None = None) -> np.ndarray:
    """(K,) label shares of the training part of `datasets` (images drawn `repeat` times), from the label files
    alone (no images read)."""
    from models.data.datasets import read_ferplus
    from models.data.datasets import DOMAINS

    counts = np.zeros(K)
    for name in datasets:
        if DOMAINS[name].split is None:
            folder = data / "ferplus" if (data / "ferplus").is_dir() else data
            labels = [s.label for s in read_ferplus(folder, ["FER2013Train"])["FER2013Train"]]
        else:
            samples = DOMAINS[name].read(data)
            labels = [samples[i].label for i in DOMAINS[name].split(samples)[0]]
        c = np.bincount([x for x in labels if x is not None], minlength=K).astype(float)
        counts += c * (repeat or {}).get(name, 1.0)
    return counts / counts.sum()


def to_gray3(crops: np.ndarray) -> np.ndarray:
    """RGB uint8 (N, S, S, 3) -> the same luma in all three channels (what a gray camera or FER+ gives)."""
    y = (crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().clip(0, 255)
    return np.repeat(y.astype(np.uint8)[..., None], 3, axis=-1)


def fit_probe(x: torch.Tensor, y: np.ndarray, steps: int = 300, weight_decay: float = 1e-3) -> torch.nn.Linear:
    """Class-balanced multinomial logistic regression on standardised features (full-batch L-BFGS)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], K)
    yt = torch.from_numpy(y).long()
    counts = torch.bincount(yt, minlength=K).float().clamp(min=1)
    w = (counts.sum() / counts / K) * (torch.bincount(yt, minlength=K) > 0)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(x), yt, weight=w) + weight_decay * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lin


def probe_checkpoint(path: Path, data: Path, cache_dir: Path, limit: int = 0,
                     datasets: list[str] | None = None) -> dict:
    from models.engine.checkpoints import load_embedder
    from models.evaluate import suite_sets
    from models.data.loading import embed_all, load_split_domain

    model, pre, ck = load_embedder(path)
    cfg = json.loads(ck.get("config", "{}"))
    datasets = datasets or cfg.get("datasets")
    if not datasets:
        raise ValueError(f"{path}: the checkpoint does not say what it was trained on; give NAME=PATH@DATASETS")
    datasets = datasets.split(",") if isinstance(datasets, str) else list(datasets)
    repeat = {k: float(v) for k, _, v in (r.partition("=") for r in cfg.get("repeat", []))}
    if "rafdb_repeat" in cfg:
        repeat["rafdb"] = float(cfg["rafdb_repeat"])
    prior = training_prior(datasets, data, repeat)
    cpu = torch.device("cpu")
    sets = suite_sets(data, pre, cache_dir, progress=False, limit=limit)
    posed_train = load_split_domain("taiwanese", data, pre, cache_dir, limit, progress=False)[0]

    def logits_and_feats(crops: np.ndarray):
        f, lg = embed_all(model, torch.from_numpy(np.ascontiguousarray(crops)), pre, cpu)
        return f, lg

    out = {"datasets": datasets, "prior": dict(zip(EMOTIONS, prior.round(4).tolist())), "by_domain": {}}
    ftr, _ = logits_and_feats(posed_train.crops)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    probe = fit_probe((ftr - mu) / sd, posed_train.labels)
    log_prior = torch.from_numpy(np.log(np.maximum(prior, 1e-6))).float()
    for name, aligned in sets.items():
        y = aligned.labels
        f, lg = logits_and_feats(aligned.crops)
        rep = classification_report(y, lg.argmax(1).numpy(), EMOTIONS)
        row = {"n": int(len(y)), "acc": rep["accuracy"], "macro_f1": rep["macro_f1"],
               "recall": rep["per_class_recall"],
               "predicted_share": dict(zip(EMOTIONS, (np.bincount(lg.argmax(1).numpy(), minlength=K) / len(y))
                                           .round(3).tolist())),
               "acc_prior_free": float(((lg - log_prior).argmax(1).numpy() == y).mean())}
        if pre.color == "rgb" and name != "ckplus_frames" and name != "ferplus_valid":  # already gray sets
            _, lg_gray = logits_and_feats(to_gray3(aligned.crops))
            row["acc_gray"] = float((lg_gray.argmax(1).numpy() == y).mean())
        if name in ("taiwanese_val", "ckplus_frames"):
            with torch.no_grad():
                row["probe_acc"] = float((probe((f - mu) / sd).argmax(1).numpy() == y).mean())
        out["by_domain"][name] = row
    return out


def format_tables(results: dict) -> str:
    from models.evaluate import suite_titles

    titles = suite_titles()
    names = list(results)
    domains = list(next(iter(results.values()))["by_domain"])
    lines = []
    for key, what in (("acc", "accuracy as trained"), ("acc_gray", "accuracy on 3-channel gray copies"),
                      ("acc_prior_free", "accuracy without the training label prior (logit adjustment)"),
                      ("probe_acc", "linear probe fitted on the posed training performers' frozen features")):
        rows = [d for d in domains if any(key in results[n]["by_domain"][d] for n in names)]
        if not rows:
            continue
        lines += [f"\n{what}:\n", "| domain | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
        for d in rows:
            cells = [f"{100 * results[n]['by_domain'][d][key]:.2f}%" if key in results[n]["by_domain"][d] else "-"
                     for n in names]
            lines.append(f"| {titles.get(d, d)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from models.engine.checkpoints import CheckpointError
    from models.data.datasets import DatasetError

    p = argparse.ArgumentParser(prog="python -m models.experiments.domain_probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="NAME=PATH[@DATASETS]",
                   help="trainer checkpoints to probe; @ferplus,rafdb names the training data of a checkpoint "
                        "rebuilt from an export (models.release.warmstart), whose config does not")
    add_data_args(p)
    p.add_argument("--limit", type=int, default=0, help="every k-th image, at most N per domain (quick checks)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = [c.partition("=") for c in args.checkpoint]
    if any(not sep or not name for name, sep, _ in pairs):
        p.error("--checkpoint takes NAME=PATH[@DATASETS] items")
    try:
        results = {}
        for name, _, spec in pairs:
            path, _, datasets = spec.partition("@")
            results[name] = probe_checkpoint(Path(path), args.data, args.cache_dir, args.limit,
                                             datasets or None)
    except (CheckpointError, DatasetError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_tables(results))
    if args.json:
        from models.engine.checkpoints import write_json
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
