"""One table, one row per stage-2 option, and the corruption probe (models.experiments.probe).

    python -m models.experiments.compare --embedder runs/main_rgb64/swa.pt --threads 1 --out runs/compare

Rows: every head of models.networks.heads (relation = FAN, self, fusion = score fusion, gru, gru-causal, transformer), the
ensemble (mean softmax of fusion, FAN, causal GRU and transformer: app.recognition.heads.ENSEMBLE_MEMBERS), and the rows other
modules register (EXTRA_MODULES: a module with `compare_rows(cfg) -> list[dict]`, e.g. models.networks.faer / models.experiments.fmpn_runs).
Columns:
- CK+ clip accuracy on the Emotion-FAN paper's 10 folds (../shared/data/ckplus48/folds/emotionfan_10fold.txt),
  mean fold accuracy, mean +- half the range over --seeds. Per fold: a 7-class CK+ frame classifier is fitted on the
  training frames' features, the FAN heads start from it, GRU/transformer start fresh; all train on the training
  clips (3 frames) with augmented feature copies. The embedder is FROZEN here (models.cv fine-tunes it per fold, as
  the FAN paper does; this table compares heads on equal features, so its numbers are lower than models.cv's).
- FER+ Valid and RAF-DB val (the project's split), frame level: each head on a single clean frame.
- synthetic degraded clips, clip level: 8 frames drawn from 4 copies of each FER+ Valid / RAF-DB val image (copy 0
  clean, the rest jittered and ~60 % heavily degraded: models.train.synthetic_clip_features); mean of the two sets.
- parameters, and CPU ms per 16-frame window (torch, 1 thread, median; inflated on a shared machine).
Stage-2 heads for FER+/RAF-DB train as `models.train clips` does (synthetic clips of --limit-train FER+ Train and
RAF-DB train images, --train-variants copies each, same steps and learning rate), one run per seed.

The probe (models.experiments.probe) reports each head's accuracy when one CK+ frame of 3, or 3 synthetic-clip frames of 8
(clean-copy clips), is blurred, occluded, darkened or replaced by another person's face.

Features are cached in --cache-dir as compare_<key>.pt, the key a SHA-256 of the embedder file and the feature
settings: a rerun with the same embedder only retrains heads (seconds to minutes); a new embedder recomputes them.
Writes compare.json and compare.md to --out and prints the tables.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from app.durable import replacing
from app.emotions import EMOTIONS
from app.recognition.heads import ENSEMBLE, ENSEMBLE_MEMBERS
from models.data.augment import train_augment
from models.engine.checkpoints import load_embedder, save_checkpoint, write_json
from models.engine.cli import DataOptions, add_dataclass_args, command_line, config_from_args
from models.networks.heads import HEADS, build_head, head_spec, new_head, parameter_count, train_head
from models.data.loading import CK_LABELS, clip_index, embed_all, load_ckplus, load_frame_data, normalise, to_input
from models.experiments.probe import CORRUPTIONS, PIXEL_CORRUPTIONS, corrupt, other_face_rows, replace_frames
from models.engine.runtime import set_threads

FEATURES_VERSION = 1
EXTRA_MODULES = ("models.networks.faer", "models.experiments.fmpn_runs")  # <module>.compare_rows(cfg) -> rows, when it defines it
PAPERS = {  # each paper's own numbers, for the results page (not comparable protocols; see docs/results.md)
    "fusion": "FAN paper, CK+ score fusion 94.80",
    "self": "FAN paper, CK+ 99.08",
    "relation": "FAN paper, CK+ 99.69",
    "gru": "ABAW2021 (Mao et al.): Aff-Wild2 expression, GRU+transformer ensemble; no CK+ number",
    "gru-causal": "live variant, not in the paper",
    "transformer": "ABAW2021: Aff-Wild2 only",
    ENSEMBLE: "ABAW2021 ensemble of CNN, GRU, transformer: Aff-Wild2 only",
}
NAMES = {"relation": "FAN (relation)", "self": "FAN self-attention", "fusion": "score fusion", "gru": "GRU (centre)",
         "gru-causal": "GRU causal (newest)", "transformer": "transformer (newest)", ENSEMBLE: "ensemble"}


@dataclass
class CompareConfig(DataOptions):
    embedder: str = "runs/main_rgb64/swa.pt"
    out: str = "runs/compare"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    heads: list[str] = field(default_factory=lambda: list(HEADS))
    folds: str = "ckplus48/folds/emotionfan_10fold.txt"  # relative to --data
    limit_train: int = 6000            # FER+ Train / RAF-DB train images for stage 2 (the shipped recipe's)
    train_variants: int = 2            # copies per training image (the shipped recipe's --variants)
    valid_variants: int = 4            # copies per validation image for synthetic clips
    clip_length: int = 8
    epochs: int = 20                   # stage 2: epochs of synthetic clips (as models.train clips)
    batch_size: int = 256
    lr: float = 1e-3
    fan_classifier_lr: float = 0.0     # stage 2 FAN heads' classifier multiplier (the shipped heads selected 0)
    ck_aug: int = 4                    # augmented feature copies per CK+ frame for the CK+ heads
    ck_steps: int = 300                # head steps per CK+ fold (as models.cv)
    ck_fan_classifier_lr: float = 0.1  # as models.cv's --head-classifier-lr
    probe_frames: int = 3              # frames of 8 corrupted in the synthetic probe clips (1 of 3 on CK+)
    limit_folds: int = 0               # >0: only the first N folds (tests)
    limit_valid: int = 0               # >0: only N validation images per set (tests)
    extras: bool = True                # add the rows of EXTRA_MODULES that define compare_rows
    save_heads: str = ""               # a .pt file: keep the first seed's stage-2 heads (state dicts) for export
    threads: int = 1


# --------------------------------------------------------------------------------------------------- features
def feature_key(cfg: CompareConfig) -> str:
    h = hashlib.sha256()
    with open(cfg.embedder, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    settings = {k: getattr(cfg, k) for k in ("limit_train", "train_variants", "valid_variants", "ck_aug",
                                             "limit_valid")}
    h.update(json.dumps({"version": FEATURES_VERSION, **settings}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def read_folds(path: Path, clips) -> np.ndarray:
    """The Emotion-FAN fold file ('N-fold ...' headers, then 'S130/007 Angry' lines) -> fold index per clip."""
    fold, where = -1, {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0].endswith("-fold"):
            fold = int(parts[0].split("-")[0]) - 1
        else:
            where[parts[0].replace("/", "_")] = fold
    missing = [c.name for c in clips if c.name not in where]
    if missing:
        raise ValueError(f"{path}: no fold for {len(missing)} CK+ sequences (e.g. {missing[:3]})")
    return np.array([where[c.name] for c in clips])


@torch.no_grad()
def _corrupted_features(model, crops_u8: torch.Tensor, pre, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for kind in PIXEL_CORRUPTIONS:
        parts = []
        for i in range(0, len(crops_u8), 512):
            x = corrupt(to_input(crops_u8[i:i + 512], pre), kind, g)
            parts.append(model.forward_features(normalise(x, pre)).float())
        out[kind] = torch.cat(parts)
    return out


def compute_features(cfg: CompareConfig) -> dict:
    from models.train import FramesConfig, synthetic_clip_features

    model, pre, _ = load_embedder(cfg.embedder)
    cpu = torch.device("cpu")
    data = load_frame_data(FramesConfig(data=cfg.data, cache_dir=cfg.cache_dir, datasets=["ferplus", "rafdb"],
                                        valid_datasets=["ferplus", "rafdb"],
                                        limit_train=cfg.limit_train, limit_valid=cfg.limit_valid), pre)
    tr_feats, _ = synthetic_clip_features(model, data.crops, pre, cpu, cfg.train_variants, 0)
    valid = {}
    for j, (name, (crops, labels)) in enumerate(data.valid.items()):
        vf, vs = synthetic_clip_features(model, crops, pre, cpu, cfg.valid_variants, 1 + j)
        valid[name] = {"feats": vf, "strength": vs, "labels": torch.from_numpy(labels),
                       "corrupt": _corrupted_features(model, crops, pre, 10 + j)}
    aligned, ck_clips = load_ckplus(pre, cfg.data, cfg.cache_dir)
    crops = torch.from_numpy(aligned.crops)
    ck_feats, _ = embed_all(model, crops, pre, cpu)
    g = torch.Generator().manual_seed(100)
    with torch.no_grad():
        aug = torch.stack([model.forward_features(normalise(train_augment(to_input(crops, pre), g), pre))
                           for _ in range(cfg.ck_aug)], 1)
    index, labels = clip_index(aligned, ck_clips)
    return {"train": {"feats": tr_feats, "labels": torch.from_numpy(data.labels)}, "valid": valid,
            "ckplus": {"feats": ck_feats, "aug": aug, "corrupt": _corrupted_features(model, crops, pre, 20),
                       "index": torch.from_numpy(np.stack(index)), "labels": torch.from_numpy(labels),
                       "names": [c.name for c in ck_clips], "subjects": [c.subject for c in ck_clips]},
            "frame_fc": {"weight": model.fc.weight.detach().clone(), "bias": model.fc.bias.detach().clone()}}


def load_features(cfg: CompareConfig) -> dict:
    path = Path(cfg.cache_dir) / f"compare_{feature_key(cfg)}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a cut-short cache: compute again
            print(f"warning: {path} unreadable ({type(e).__name__}), computing the features again", file=sys.stderr)
    t0 = time.time()
    feats = compute_features(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        torch.save(feats, tmp)
    print(f"features cached in {path} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return feats


# --------------------------------------------------------------------------------------------------- training
def _fc(weight: torch.Tensor, bias: torch.Tensor) -> torch.nn.Linear:
    fc = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        fc.weight.copy_(weight)
        fc.bias.copy_(bias)
    return fc


def _fit_head(name: str, fc: torch.nn.Linear, sample_batch, steps: int, lr: float, seed: int, fan_cls_lr: float,
              class_weight=None) -> torch.nn.Module:
    spec = head_spec(name)
    torch.manual_seed(seed)
    head = new_head(name, fc)
    if spec.trained:
        cls_lr = fan_cls_lr if spec.from_frame_classifier else 1.0
        train_head(head, sample_batch, steps, lr, 1e-4, seed, name, progress=False, classifier_lr=cls_lr,
                   class_weight=class_weight)
    return head.eval()


@torch.no_grad()
def _probs(head: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.softmax(head(x[i:i + 2048])[0], -1) for i in range(0, len(x), 2048)])


def _with_ensemble(probs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if all(m in probs for m in ENSEMBLE_MEMBERS):
        probs[ENSEMBLE] = torch.stack([probs[m] for m in ENSEMBLE_MEMBERS]).mean(0)
    return probs


def _acc(probs: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * float((probs.argmax(1) == labels).float().mean())


def synthetic_eval_clips(v: dict, t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(degraded clips (N, t, D): any copies; clean clips (N, t, D): copies with strength 0 only), seeded."""
    g = torch.Generator().manual_seed(seed)
    feats, strength = v["feats"], v["strength"]
    n, copies, _ = feats.shape
    pick = torch.randint(0, copies, (n, t), generator=g)
    degraded = feats[torch.arange(n)[:, None], pick]
    clean_w = (strength == 0).float()  # copy 0 is always clean
    pick_clean = torch.multinomial(clean_w, t, replacement=True, generator=g)
    return degraded, feats[torch.arange(n)[:, None], pick_clean]


def train_stage2_heads(cfg: CompareConfig, feats: dict, seed: int) -> dict[str, torch.nn.Module]:
    """Every head of cfg.heads trained on synthetic clips of the cached FER+/RAF-DB training features, as `models.train
    clips` trains them (without its CK+ sequences)."""
    tr, fc = feats["train"], _fc(feats["frame_fc"]["weight"], feats["frame_fc"]["bias"])
    labels = tr["labels"]
    counts = torch.bincount(labels, minlength=len(EMOTIONS)).float()
    draw = ((1.0 / counts.clamp_min(1)) ** 0.5)[labels]
    t = cfg.clip_length

    def sample_batch(g):
        idx = torch.multinomial(draw, cfg.batch_size, replacement=True, generator=g)
        pick = torch.randint(0, tr["feats"].shape[1], (cfg.batch_size, t), generator=g)
        return tr["feats"][idx[:, None], pick], None, labels[idx]

    steps = cfg.epochs * max(1, len(labels) // cfg.batch_size)
    return {n: _fit_head(n, fc, sample_batch, steps, cfg.lr, seed, cfg.fan_classifier_lr) for n in cfg.heads}


def stage2_rows(cfg: CompareConfig, feats: dict, seed: int) -> tuple[dict, dict, dict]:
    """Heads trained on synthetic FER+/RAF-DB clips -> per option: frame accuracy per set, synthetic clip accuracy,
    and the synthetic probe (accuracy per corruption); and the heads."""
    heads = train_stage2_heads(cfg, feats, seed)
    t = cfg.clip_length
    metrics: dict[str, dict] = {}
    probe: dict[str, dict] = {}
    for j, (vname, v) in enumerate(feats["valid"].items()):
        y = v["labels"]
        degraded, clean = synthetic_eval_clips(v, t, 1000 + j)
        inputs = {"frame": v["feats"][:, :1], "synthetic": degraded, "probe_clean": clean}
        other = other_face_rows(y.numpy(), np.arange(len(y)), 2000 + j)
        for kind in CORRUPTIONS:
            repl = v["feats"][other, :1] if kind == "other_face" else v["corrupt"][kind][:, None]
            inputs[f"probe_{kind}"] = replace_frames(clean, repl.expand(-1, t, -1), cfg.probe_frames, 3000 + j)
        for key, x in inputs.items():
            probs = _with_ensemble({n: _probs(h, x) for n, h in heads.items()})
            for n, p in probs.items():
                target = probe if key.startswith("probe") else metrics
                target.setdefault(n, {}).setdefault(key, {})[vname] = _acc(p, y)
    return metrics, probe, heads


def ckplus_rows(cfg: CompareConfig, feats: dict, seed: int) -> tuple[dict, dict]:
    """Per option: mean fold accuracy on the Emotion-FAN folds, and the CK+ probe (1 frame of 3 corrupted)."""
    ck = feats["ckplus"]
    index, labels = ck["index"], ck["labels"]

    class _Clip:  # read_folds needs .name
        def __init__(self, name):
            self.name = name

    folds = read_folds(Path(cfg.data) / cfg.folds, [_Clip(n) for n in ck["names"]])
    n_folds = cfg.limit_folds or int(folds.max()) + 1
    k = len(CK_LABELS)
    kinds = ("clean",) + CORRUPTIONS
    correct = {kind: {} for kind in kinds}  # kind -> option -> per-fold accuracies
    subjects = np.array(ck["subjects"])
    clip_subject_of_frame = np.empty(len(ck["feats"]), object)
    frame_label = np.empty(len(ck["feats"]), np.int64)
    for c, row in enumerate(index.numpy()):
        clip_subject_of_frame[row] = subjects[c]
        frame_label[row] = int(labels[c])
    other = other_face_rows(frame_label, np.unique(clip_subject_of_frame, return_inverse=True)[1], 4000 + seed)
    for f in range(n_folds):
        tr = np.flatnonzero(folds != f)
        te = np.flatnonzero(folds == f)
        tr_frames = index[tr].reshape(-1)
        x_fr = ck["aug"][tr_frames].reshape(-1, ck["aug"].shape[-1])
        y_fr = labels[tr].repeat_interleave(index.shape[1]).repeat_interleave(ck["aug"].shape[1])
        cnt = torch.bincount(labels[tr], minlength=k).float().clamp_min(1)
        weight = cnt.mean() / cnt
        torch.manual_seed(seed * 100 + f)
        fc = torch.nn.Linear(x_fr.shape[1], k)
        opt = torch.optim.AdamW(fc.parameters(), lr=1e-2, weight_decay=1e-4)
        for _ in range(300):
            loss = F.cross_entropy(fc(x_fr), y_fr, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def sample_batch(g, tr=tr):
            pick = torch.from_numpy(tr)[torch.randint(0, len(tr), (64,), generator=g)]
            rows = index[pick]
            copy = torch.randint(0, ck["aug"].shape[1], rows.shape, generator=g)
            return ck["aug"][rows, copy], None, labels[pick]

        heads = {n: _fit_head(n, fc, sample_batch, cfg.ck_steps, 1e-3, seed * 1000 + f, cfg.ck_fan_classifier_lr,
                              weight) for n in cfg.heads}
        clean = ck["feats"][index[te]]  # (n, 3, D)
        y = labels[te]
        for kind in kinds:
            if kind == "clean":
                x = clean
            else:
                src = ck["feats"][other] if kind == "other_face" else ck["corrupt"][kind]
                x = replace_frames(clean, src[index[te]], 1, 5000 + 10 * seed + f)
            probs = _with_ensemble({n: _probs(h, x) for n, h in heads.items()})
            for n, p in probs.items():
                correct[kind].setdefault(n, []).append(_acc(p, y))
    mean = {kind: {n: float(np.mean(v)) for n, v in per.items()} for kind, per in correct.items()}
    return mean["clean"], {n: {kind: mean[kind][n] for kind in kinds} for n in mean["clean"]}


def cost(names) -> dict[str, dict]:
    """Parameters and torch CPU ms per 16-frame window (B=1, median of 100 after 10 warm-up runs)."""
    out = {}
    x = torch.rand(1, 16, 512)
    for n in names:
        head = build_head(n).eval()
        times = []
        with torch.no_grad():
            for i in range(110):
                t0 = time.perf_counter()
                head(x)
                if i >= 10:
                    times.append((time.perf_counter() - t0) * 1e3)
        out[n] = {"parameters": parameter_count(head), "ms": statistics.median(times)}
    if all(m in out for m in ENSEMBLE_MEMBERS):
        out[ENSEMBLE] = {"parameters": sum(out[m]["parameters"] for m in ENSEMBLE_MEMBERS),
                         "ms": sum(out[m]["ms"] for m in ENSEMBLE_MEMBERS)}
    return out


def _pm(values: list[float]) -> str:
    if not values:
        return "-"
    spread = (max(values) - min(values)) / 2
    return f"{np.mean(values):.2f} +- {spread:.2f}"


def run_compare(cfg: CompareConfig) -> dict:
    unknown = [h for h in cfg.heads if h not in HEADS]
    if unknown or not cfg.heads or not cfg.seeds:
        raise ValueError(f"--heads takes {' '.join(HEADS)} and --seeds at least one seed; got heads "
                         f"{' '.join(cfg.heads) or 'none'}")
    if not Path(cfg.embedder).is_file():
        raise ValueError(f"no embedder checkpoint at {cfg.embedder} (python -m models.train frames, or "
                         f"python -m models.release.warmstart from a released ONNX graph)")
    set_threads(cfg.threads)
    t0 = time.time()
    feats = load_features(cfg)
    per_seed = []
    for s in cfg.seeds:
        ck, ck_probe = ckplus_rows(cfg, feats, s)
        st, st_probe, heads = stage2_rows(cfg, feats, s)
        if cfg.save_heads and s == cfg.seeds[0]:
            Path(cfg.save_heads).parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(Path(cfg.save_heads), {
                "heads": {n: h.state_dict() for n, h in heads.items()}, "seed": s, "config": json.dumps(asdict(cfg)),
                "embedder_checkpoint": cfg.embedder, "feature_key": feature_key(cfg),
                "results": json.dumps({n: {"frame": st[n]["frame"], "synthetic": st[n]["synthetic"]} for n in st})})
        per_seed.append({"seed": s, "ckplus": ck, "ckplus_probe": ck_probe, "stage2": st, "stage2_probe": st_probe})
        print(f"seed {s} done ({time.time() - t0:.0f} s)", file=sys.stderr)
    extra_rows = []
    if cfg.extras:
        for mod_name in EXTRA_MODULES:
            try:
                mod = importlib.import_module(mod_name)
            except ImportError:
                continue
            fn = getattr(mod, "compare_rows", None)
            if fn is None:
                continue
            try:
                extra_rows += list(fn(cfg))
            except Exception as e:  # noqa: BLE001 - another option's failure is a row, not a lost table
                extra_rows.append({"option": mod_name.rpartition(".")[2], "name": mod_name.rpartition(".")[2], "error": f"{type(e).__name__}: {e}"})
    result = build_result(cfg, per_seed, extra_rows, time.time() - t0)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", result)
    (out / "compare.md").write_text(format_tables(result) + "\n")
    return result


def build_result(cfg: CompareConfig, per_seed: list[dict], extra_rows: list[dict], seconds: float) -> dict:
    """The table's rows (one per option, each column a list over seeds) from the per-seed measurements."""
    costs = cost(cfg.heads)
    options = list(cfg.heads) + ([ENSEMBLE] if ENSEMBLE in per_seed[0]["ckplus"] else [])
    rows = []
    for n in options:
        def seeds_of(fn):
            return [fn(p) for p in per_seed]
        synth = seeds_of(lambda p: float(np.mean(list(p["stage2"][n]["synthetic"].values()))))
        rows.append({
            "option": n, "name": NAMES.get(n, n),
            "ckplus": seeds_of(lambda p: p["ckplus"][n]),
            "ferplus_valid": seeds_of(lambda p: p["stage2"][n]["frame"]["ferplus_valid"]),
            "rafdb_val": seeds_of(lambda p: p["stage2"][n]["frame"]["rafdb_val"]),
            "synthetic": synth, **costs[n], "paper": PAPERS.get(n, ""),
            "ckplus_probe": {kind: seeds_of(lambda p, kind=kind: p["ckplus_probe"][n][kind])
                             for kind in ("clean",) + CORRUPTIONS},
            "synthetic_probe": {kind.removeprefix("probe_"): seeds_of(
                lambda p, kind=kind: float(np.mean(list(p["stage2_probe"][n][kind].values()))))
                for kind in ("probe_clean",) + tuple(f"probe_{c}" for c in CORRUPTIONS)}})
    return {"config": asdict(cfg), "command": command_line("python -m models.experiments.compare", cfg, skip=("data", "cache_dir")),
            "feature_key": feature_key(cfg), "seconds": round(seconds, 1), "rows": rows, "extra_rows": extra_rows,
            "per_seed": per_seed}


def merge_main(argv: list[str]) -> int:
    """`python -m models.experiments.compare merge DIR... --out DIR`: one table from runs of the same settings that each ran
    some seeds (seeds run in parallel processes), e.g. --seeds 0, --seeds 1, --seeds 2."""
    p = argparse.ArgumentParser(prog="python -m models.experiments.compare merge", description=merge_main.__doc__)
    p.add_argument("runs", nargs="+", type=Path, help="folders holding compare.json")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        runs = [json.loads((r / "compare.json").read_text()) for r in args.runs]
        base = {k: v for k, v in runs[0]["config"].items() if k not in ("seeds", "out", "save_heads")}
        for r in runs[1:]:
            if {k: v for k, v in r["config"].items() if k not in ("seeds", "out", "save_heads")} != base or \
                    r["feature_key"] != runs[0]["feature_key"]:
                raise ValueError("the runs differ in settings or features; only --seeds may differ")
        per_seed = [s for r in runs for s in r["per_seed"]]
        if len({s["seed"] for s in per_seed}) != len(per_seed):
            raise ValueError("a seed appears in two runs")
        cfg = CompareConfig(**{**runs[0]["config"], "seeds": [s["seed"] for s in per_seed], "out": str(args.out)})
        set_threads(cfg.threads)
        result = build_result(cfg, per_seed, runs[0].get("extra_rows", []), sum(r["seconds"] for r in runs))
        result["feature_key"] = runs[0]["feature_key"]
        result["merged_from"] = [str(r) for r in args.runs]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "compare.json", result)
    (args.out / "compare.md").write_text(format_tables(result) + "\n")
    print(format_tables(result))
    return 0


def format_tables(result: dict) -> str:
    n_seeds = len(result["config"]["seeds"])
    head = (f"| option | CK+ clip % (Emotion-FAN folds, {n_seeds} seeds) | FER+ Valid frame % | RAF-DB val frame % "
            f"| synthetic clips % | parameters | CPU ms / 16-frame window | paper |")
    lines = [head, "|" + "---|" * 8]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | {_pm(r['ckplus'])} | {_pm(r['ferplus_valid'])} | {_pm(r['rafdb_val'])} | "
                     f"{_pm(r['synthetic'])} | {r['parameters']:,} | {r['ms']:.3f} | {r['paper']} |")
    for r in result.get("extra_rows", []):
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error']} | | | | | | |")
            continue
        cells = [r.get(k, "-") for k in ("ckplus", "ferplus_valid", "rafdb_val", "synthetic", "parameters", "ms",
                                          "paper")]
        lines.append(f"| {r.get('name', r['option'])} | " + " | ".join(
            _pm(c) if isinstance(c, list) else str(c) for c in cells) + " |")
    lines += ["", "Corruption probe: accuracy % (mean over seeds) with frames replaced; in brackets the change from "
              "the clean clips, in points.", "",
              "| option | CK+ clean | CK+ blur | CK+ occlusion | CK+ dark | CK+ other face | synthetic clean | "
              "synthetic blur | synthetic occlusion | synthetic dark | synthetic other face |", "|" + "---|" * 11]
    for r in result["rows"]:
        cells = []
        for probe in ("ckplus_probe", "synthetic_probe"):
            clean = float(np.mean(r[probe]["clean"]))
            cells.append(f"{clean:.2f}")
            for kind in CORRUPTIONS:
                v = float(np.mean(r[probe][kind]))
                cells.append(f"{v:.2f} ({v - clean:+.2f})")
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m models.experiments.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_args(p, CompareConfig, choices={"heads": tuple(HEADS)})
    cfg = config_from_args(CompareConfig, p.parse_args(argv))
    try:
        result = run_compare(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_tables(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
