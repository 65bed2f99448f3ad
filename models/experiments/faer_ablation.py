"""The FAER measurement: a 2x2 (no block / CC block x cross-entropy / with centre loss) plus an SE block at the
same place, fine-tuned from one warm start at an equal, modest budget, several seeds, scored on FER+ Valid and the
project's RAF-DB val split (models.data.datasets.rafdb_split).

    python -m models.release.warmstart --weights weights/fan_r18_multi_embedder.onnx --out runs/faer/warm/embedder.pt
    python -m models.experiments.faer_ablation --seeds 0 1 2 --limit-train 3000 --epochs 1 --out runs/faer/ablation

The budget fits a shared 2-core CPU: the network up to the block's place (stem to layer3 at 64 px) is frozen, its
maps for the training crops and their mirror images are computed once, and each run trains block + layer4 +
classifier on them (SGD, nesterov, cosine LR, FER+ vote targets, sqrt class weights as in models.train; a random
mirror image is the only augmentation). Every (variant, seed) is one line in <out>/runs.jsonl; the table (mean and
spread over seeds) goes to stdout and <out>/results.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.networks.faer import (BLOCKS, CENTER_LOSS_WEIGHT, AttentiveEmbedder, CenterLoss, feature_map_sizes,
    insertion_point, load_backbone)


@dataclass
class AblationConfig:
    init: str = "runs/faer/warm/embedder.pt"   # warm start (python -m models.release.warmstart on the shipped ONNX)
    out: str = "runs/faer/ablation"
    data: str = ""                               # default: app.paths.data_root()
    cache_dir: str = ""                          # default: <repo>/cache
    variants: list[str] = field(default_factory=lambda: ["none-ce", "none-center", "cc-ce", "cc-center", "se-ce"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    limit_train: int = 3000        # training images per dataset (FER+ Train, RAF-DB train split): every k-th
    epochs: float = 1.0            # passes over those images
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 5e-4
    center_weight: float = CENTER_LOSS_WEIGHT
    class_weight_power: float = 0.5
    mirror_eval: bool = True       # score the mean feature of crop and mirror image, as the app does (2x the cost)
    table_from: str = ""           # only print the tables of an earlier run's runs.jsonl (no training)
    threads: int = 1


def _variant(name: str) -> tuple[str, bool]:
    block, _, loss = name.partition("-")
    if block not in BLOCKS or loss not in ("ce", "center"):
        raise ValueError(f"variant {name!r}: expected <{'|'.join(BLOCKS)}>-<ce|center>")
    return block, loss == "center"


@torch.no_grad()
def _stage_maps(model: AttentiveEmbedder, crops_u8: torch.Tensor, pre, stage: str, batch: int = 256,
                mirror: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Frozen-part outputs of each crop and (mirror) of its mirror image: (N, C, h, w) twice, eval mode."""
    from models.data.loading import normalise, to_input

    model.eval()
    plain, flipped = [], []
    for i in range(0, len(crops_u8), batch):
        x = normalise(to_input(crops_u8[i:i + batch], pre), pre)
        plain.append(model.stem_to(x, stage))
        if mirror:
            flipped.append(model.stem_to(torch.flip(x, dims=[3]), stage))
    return torch.cat(plain), torch.cat(flipped) if mirror else None


@torch.no_grad()
def _evaluate(model: AttentiveEmbedder, maps: tuple[torch.Tensor, torch.Tensor], labels: np.ndarray,
              stage: str, mirror: bool = True) -> dict:
    from app.emotions import EMOTIONS
    from models.engine.metrics import classification_report

    model.eval()
    preds = []
    for i in range(0, len(labels), 512):
        f = model.from_stage(maps[0][i:i + 512], stage)
        if mirror:
            f = 0.5 * (f + model.from_stage(maps[1][i:i + 512], stage))
        preds.append(model.forward_head(f).argmax(1))
    return classification_report(labels, torch.cat(preds).numpy(), EMOTIONS)


def run_ablation(cfg: AblationConfig) -> list[dict]:
    """Each (variant, seed): block + layers after it + classifier fine-tuned from the warm start on cached frozen
    maps (mirror image drawn at random as the only augmentation); scored on FER+ Valid and the RAF-DB val split."""
    from app.emotions import EMOTIONS
    from app.paths import data_root
    from models.engine.cli import CACHE_DIR
    from app.faces.align import Preprocess
    from models.engine.checkpoints import load_checkpoint
    from models.data.loading import load_frame_data
    from models.engine.training import class_weights, soft_cross_entropy
    from models.train import FramesConfig

    torch.set_num_threads(cfg.threads)
    variants = [(v, *_variant(v)) for v in cfg.variants]
    ck = load_checkpoint(cfg.init)
    pre = Preprocess.from_dict(json.loads(ck["preprocess"]))
    stage = insertion_point(pre.input_size, pre.channels)
    sizes = feature_map_sizes(pre.input_size, pre.channels)
    print(f"map sizes at {pre.input_size} px: {sizes}; block after {stage}", file=sys.stderr)
    frames_cfg = FramesConfig(data=cfg.data or str(data_root()), cache_dir=cfg.cache_dir or str(CACHE_DIR),
                              input_size=pre.input_size, color=pre.color, limit_train=cfg.limit_train,
                              datasets=["ferplus", "rafdb"], valid_datasets=["ferplus", "rafdb"])
    data = load_frame_data(frames_cfg, pre, progress=False)
    base = AttentiveEmbedder(in_chans=pre.channels, num_classes=len(EMOTIONS), block="none", after=stage)
    load_backbone(base, ck["embedder"])
    t0 = time.time()
    train_maps = _stage_maps(base, data.crops, pre, stage)
    valid_maps = {name: (_stage_maps(base, c, pre, stage, mirror=cfg.mirror_eval), y)
                  for name, (c, y) in data.valid.items()}
    print(f"cached {len(data.crops)} training and {sum(len(y) for _, y in valid_maps.values())} validation maps "
          f"in {time.time() - t0:.0f} s", file=sys.stderr)
    weight = class_weights(data.labels, cfg.class_weight_power) if cfg.class_weight_power else None
    labels = torch.from_numpy(data.labels)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**asdict(cfg), "stage": stage, "map_sizes": sizes,
                                                 "train_images": len(labels), "command": " ".join(sys.argv)},
                                                indent=1) + "\n")
    rows = []
    start = {"variant": "warm start", "seed": -1, "block": "none", "center_loss": False,
             **{name: _evaluate(base, m, y, stage, cfg.mirror_eval) for name, (m, y) in valid_maps.items()}}
    rows.append(start)
    steps = max(1, int(cfg.epochs * len(labels)) // cfg.batch_size)
    for seed in cfg.seeds:
        for name, block, use_center in variants:
            torch.manual_seed(seed)
            model = AttentiveEmbedder(in_chans=pre.channels, num_classes=len(EMOTIONS), drop_rate=0.2, block=block,
                                      after=stage)
            load_backbone(model, ck["embedder"])
            center = CenterLoss(len(EMOTIONS), model.embed_dim)
            names = ("layer1", "layer2", "layer3", "layer4")
            trainable = [p for n, p in model.named_parameters()
                         if n.startswith(("attn.", "fc.")) or n.split(".")[0] in names[names.index(stage) + 1:]]
            decay = [p for p in trainable if p.ndim > 1]
            no_decay = [p for p in trainable if p.ndim <= 1]
            opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, momentum=0.9, nesterov=True)
            g = torch.Generator().manual_seed(seed)
            order = torch.cat([torch.randperm(len(labels), generator=g)
                               for _ in range(int(np.ceil(cfg.epochs)) or 1)])
            model.train()
            for m in (model.conv1, model.bn1, *[getattr(model, n) for n in names[:names.index(stage) + 1]]):
                m.eval()  # frozen part: its BN statistics stay (only matters for the record; it is not run)
            t1, ce_sum, c_sum = time.time(), 0.0, 0.0
            for step in range(steps):
                idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                flip = torch.rand(len(idx), generator=g) < 0.5
                x = torch.where(flip[:, None, None, None], train_maps[1][idx], train_maps[0][idx])
                for group in opt.param_groups:
                    group["lr"] = 0.5 * cfg.lr * (1 + np.cos(np.pi * step / steps))
                feats = model.from_stage(x, stage)
                ce = soft_cross_entropy(model.forward_head(feats), data.target[idx], weight)
                loss = ce
                if use_center:
                    c_loss = center(feats, labels[idx])
                    loss = ce + cfg.center_weight * c_loss
                    c_sum += float(c_loss.detach())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ce_sum += float(ce.detach())
            row = {"variant": name, "seed": seed, "block": block, "center_loss": use_center, "steps": steps,
                   "train_ce": ce_sum / steps, "train_center": c_sum / steps if use_center else None,
                   "seconds": time.time() - t1,
                   **{vname: _evaluate(model, m, y, stage, cfg.mirror_eval) for vname, (m, y) in valid_maps.items()}}
            rows.append(row)
            with open(out / "runs.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[{name} seed {seed}] " + "  ".join(
                f"{v} acc {row[v]['accuracy']:.4f} F1 {row[v]['macro_f1']:.4f}" for v in valid_maps) +
                f"  ({row['seconds']:.0f} s, ce {row['train_ce']:.3f})", file=sys.stderr)
    (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(format_ablation(rows, list(valid_maps)))
    return rows


def format_ablation(rows: list[dict], valid_names: list[str]) -> str:
    """Markdown: one row per variant, mean ± std over seeds of accuracy and macro-F1 on each validation set."""
    head = "| variant | seeds | " + " | ".join(f"{v} acc | {v} macro-F1" for v in valid_names) + " |"
    out = [head, "|" + " --- |" * (2 + 2 * len(valid_names))]
    for name in dict.fromkeys(r["variant"] for r in rows):
        group = [r for r in rows if r["variant"] == name]
        cells = []
        for v in valid_names:
            for key in ("accuracy", "macro_f1"):
                vals = np.array([r[v][key] for r in group]) * 100
                cells.append(f"{vals.mean():.2f} ± {vals.std():.2f}" if len(vals) > 1 else f"{vals.mean():.2f}")
        out.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n\n" + format_gains(rows, valid_names)


def format_gains(rows: list[dict], valid_names: list[str], base: str = "none-ce") -> str:
    """Markdown: each variant minus the base variant of the same seed (paired), mean ± std over seeds, in points
    of accuracy and macro-F1: how much of a gain is the block's and how much the centre loss's."""
    by_seed = {r["seed"]: r for r in rows if r["variant"] == base}
    out = [f"| change vs {base} (same seed) | seeds | " +
           " | ".join(f"{v} acc | {v} macro-F1" for v in valid_names) + " |",
           "|" + " --- |" * (2 + 2 * len(valid_names))]
    for name in dict.fromkeys(r["variant"] for r in rows):
        pairs = [(r, by_seed[r["seed"]]) for r in rows if r["variant"] == name and r["seed"] in by_seed]
        if name == base or not pairs:
            continue
        cells = []
        for v in valid_names:
            for key in ("accuracy", "macro_f1"):
                d = np.array([(a[v][key] - b[v][key]) * 100 for a, b in pairs])
                cells.append(f"{d.mean():+.2f} ± {d.std():.2f}")
        out.append(f"| {name} | {len(pairs)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from models.engine.cli import add_dataclass_args, config_from_args

    p = argparse.ArgumentParser(prog="python -m models.experiments.faer_ablation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(p, AblationConfig)
    cfg = config_from_args(AblationConfig, p.parse_args(argv))
    if cfg.table_from:
        path = Path(cfg.table_from)
        if not path.is_file():
            print(f"error: no runs file {path}", file=sys.stderr)
            return 1
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        names = [k for k in rows[0] if isinstance(rows[0][k], dict) and "accuracy" in rows[0][k]] if rows else []
        print(format_ablation(rows, names))
        return 0
    try:
        for v in cfg.variants:
            _variant(v)
        run_ablation(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
