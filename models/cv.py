"""The FAN paper's CK+ table: subject-independent 10-fold cross-validation of score fusion, FAN without relation
attention (self) and FAN (relation) on CK+48 clips (the last three frames of each of the 327 sequences).

    python -m models.cv ckplus --embedder runs/frames/best.pt [--folds 10 --finetune-epochs 12]

Per fold: the stage-1 embedder is fine-tuned on the fold's training frames (CK+'s own 7 classes: the six basic
emotions plus contempt), then the three aggregations are compared on the same fine-tuned features of the held-out
subjects' clips. Folds are split by subject, never by image. Prints the table beside the paper's numbers, and
writes cv_ckplus.json (per-clip predictions too) and cv_ckplus.png (confusion matrices, accuracy per fold) to --out.

--finetune-seeds 0,1,2 fine-tunes one network per seed and fold and averages each method's softmax over them (one
fine-tune's CK+ accuracy depends on its seed: docs/results.md lists them); --joint instead fine-tunes each FAN head
end to end with its own copy of the embedder on clips, as the paper does. --feature-cache DIR keeps every member,
so members can run in parallel.

    python -m models.cv compare runs/cv_a runs/cv_b ...

lists the clips those runs get wrong, how often and as what (the clips most runs miss are what an ensemble of them
would most likely still miss).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from app.durable import replacing
from app.emotions import EMOTIONS
from app.faces.align import Preprocess
from models.data.augment import train_augment
from models.engine.checkpoints import load_embedder, write_json
from models.engine.cli import DataOptions, add_dataclass_args, command_line, config_from_args
from models.data.datasets import subject_folds
from models.networks.heads import init_from_frame_classifier, train_head
from models.data.loading import CK_LABELS, ckplus_label, clip_index, embed_all, load_ckplus, normalise, to_input
from models.engine.metrics import classification_report
from models.networks.fan import AttentionType, FanHead, ResNet18Embedder
from models.engine.runtime import lr_at

PAPER = {"score_fusion": 94.80, "fan_self": 99.08, "fan_relation": 99.69}


@dataclass
class CVConfig(DataOptions):
    embedder: str = "runs/frames/best.pt"
    out: str = "runs/cv_ckplus"
    folds: int = 10
    finetune_epochs: int = 12      # 0 = frozen stage-1 features
    batch_size: int = 64
    lr: float = 0.01
    head_steps: int = 300
    head_seeds: int = 3            # FAN heads per method and fold, trained from different seeds; their mean softmax
                                   # is the prediction (300 steps on ~290 clips is a noisy fit; the heads are cheap)
    head_classifier_lr: float = 0.1  # classifier learning-rate multiplier (0 = keep the fine-tuned frame classifier)
    aug_copies: int = 8            # augmented feature copies per training frame for head training
    joint: bool = False            # FAN heads fine-tuned end to end with the embedder on clips (the paper's recipe)
                                   # instead of trained on the frame fine-tuning's features; score fusion unchanged
    head_class_balance: bool = True  # weight the heads' loss per class like the fine-tuning (class_balance)
    feature_cache: str = ""        # a folder: keep each fold's fine-tuned features there and reuse them when the
                                   # embedder and fine-tuning settings match (head-only experiments in seconds)
    class_balance: float = 1.0     # loss weight per class = (mean count / count) ** power: contempt has 18 sequences
    init_classifier: bool = True   # start the CK+ classifier from the FER+ one for the six shared classes
    finetune_seeds: str = "0"      # comma list: one fine-tuned network per seed and fold; every method averages its
                                   # members' softmax (an ensemble of fine-tunes; run seeds separately to fill caches)
    seed: int = 0
    head_seed: int = 0             # offset for the heads' seeds only (same folds, same features): head-noise checks
    limit_folds: int = 0           # >0: run only the first N folds (tests)
    threads: int = 0


def class_weights(labels: torch.Tensor, power: float) -> torch.Tensor | None:
    """(mean count / count) ** power per CK+ class; None when power is 0."""
    if not power:
        return None
    counts = torch.bincount(labels, minlength=len(CK_LABELS)).float().clamp_min(1)
    return (counts.mean() / counts) ** power


def ck_classifier(ferplus_fc: torch.nn.Linear, init: bool) -> torch.nn.Linear:
    """A fresh CK+ classifier; with init, the six basic emotions keep their FER+ rows and contempt starts at zero."""
    fc = torch.nn.Linear(ferplus_fc.in_features, len(CK_LABELS))
    if init:
        with torch.no_grad():
            for i, name in enumerate(CK_LABELS):
                if name in EMOTIONS:
                    fc.weight[i] = ferplus_fc.weight[EMOTIONS.index(name)]
                    fc.bias[i] = ferplus_fc.bias[EMOTIONS.index(name)]
                else:
                    fc.weight[i].zero_()
                    fc.bias[i] = ferplus_fc.bias.mean()
    return fc


def sgd_finetune(params: list[torch.nn.Parameter], n_items: int, per_batch: int, batch_loss, cfg: CVConfig,
                 seed: int) -> None:
    """The fine-tuning schedule shared by frames and clips: SGD + Nesterov, one warm-up epoch, cosine decay over
    cfg.finetune_epochs. batch_loss(indices (B,), generator) -> loss of those items (frames or clips)."""
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, n_items // per_batch)
    total = steps_per_epoch * cfg.finetune_epochs
    step = 0
    for _ in range(cfg.finetune_epochs):
        perm = torch.randperm(n_items, generator=g)
        for i in range(steps_per_epoch):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, steps_per_epoch, cfg.lr)
            loss = batch_loss(perm[i * per_batch:(i + 1) * per_batch], g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1


def finetune_joint(model: ResNet18Embedder, crops: torch.Tensor, clips: list[np.ndarray], labels: torch.Tensor,
                   att: AttentionType, pre: Preprocess, cfg: CVConfig, seed: int) -> tuple[ResNet18Embedder, FanHead]:
    """The paper's recipe: fine-tune a copy of the embedder end to end with a FAN head on one fold's training
    clips (clip-level loss through the attention), same schedule and budget of frames as the frame fine-tuning."""
    net = copy.deepcopy(model)
    # the head's initialisation and dropout draw from the global RNG: seed it here, or a member's result would
    # depend on what ran before it in the same process (the augmentation has its own generator)
    torch.manual_seed(seed)
    head = FanHead(att, dim=ResNet18Embedder.embed_dim, num_classes=len(CK_LABELS))
    init_from_frame_classifier(head, ck_classifier(model.fc, cfg.init_classifier))
    weight = class_weights(labels, cfg.class_balance)
    params = [p for n, p in net.named_parameters() if not n.startswith("fc.")] + list(head.parameters())

    def batch_loss(pick: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        frames = torch.from_numpy(np.stack([clips[p] for p in pick.tolist()]))  # (B, T) rows of crops
        x = normalise(train_augment(to_input(crops[frames.flatten()], pre), g), pre)
        logits, _, _ = head(net.forward_features(x).view(*frames.shape, -1))  # features (B, T, D)
        return F.cross_entropy(logits, labels[pick], weight=weight, label_smoothing=0.1)

    net.train()
    head.train()
    # clips per batch: the same frames per step as the frame fine-tuning
    sgd_finetune(params, len(clips), max(1, cfg.batch_size // len(clips[0])), batch_loss, cfg, seed)
    return net.eval(), head.eval()


def cache_key(cfg: CVConfig, fields: tuple[str, ...], **extra) -> str:
    """What a cached fold depends on: the named settings, the embedder file's mtime and the extras."""
    key = {k: v for k, v in asdict(cfg).items() if k in fields}
    key.update(embedder_mtime=Path(cfg.embedder).stat().st_mtime_ns, **extra)
    return json.dumps(key, sort_keys=True)


def read_cache(path: Path | None, key: str) -> dict | None:
    """The cached fold at path when it was made with the same key; None when absent, stale or cut short."""
    if path is None or not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a cache file cut short by a killed run: recompute it
        return None
    return d if isinstance(d, dict) and d.get("key") == key else None


def write_cache(path: Path | None, key: str, payload: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:  # a killed run never leaves half a cache file
        torch.save({"key": key, **payload}, tmp)


FINETUNE_FIELDS = ("embedder", "folds", "finetune_epochs", "batch_size", "lr", "seed", "class_balance",
                   "init_classifier")


def joint_features(base: ResNet18Embedder, crops: torch.Tensor, pre: Preprocess, tr_clips: list[np.ndarray],
                   tr_y: torch.Tensor, att: AttentionType, cfg: CVConfig, fold: int, ft_seed: int):
    """Features (N, D) of every frame from the jointly fine-tuned embedder, and its head (cached like fold_features)."""
    # head_rng 1: heads seeded in finetune_joint (joint caches made before that fix are recomputed)
    key = cache_key(cfg, FINETUNE_FIELDS, finetune_seed=ft_seed, joint=att.value, head_rng=1)
    cache = Path(cfg.feature_cache) / f"fold{fold}_ft{ft_seed}_joint_{att.value}.pt" if cfg.feature_cache else None
    d = read_cache(cache, key)
    if d is not None:
        head = FanHead(att, dim=ResNet18Embedder.embed_dim, num_classes=len(CK_LABELS))
        head.load_state_dict(d["head"])
        return d["feats"], head.eval()
    net, head = finetune_joint(base, crops, tr_clips, tr_y, att, pre, cfg, cfg.seed + fold + 1000 * ft_seed + 500)
    feats, _ = embed_all(net, crops, pre, torch.device("cpu"))
    write_cache(cache, key, {"feats": feats, "head": head.state_dict()})
    return feats, head


def finetune(model: ResNet18Embedder, crops: torch.Tensor, labels: torch.Tensor, pre: Preprocess, cfg: CVConfig,
             seed: int) -> ResNet18Embedder:
    """Fine-tune a copy of the embedder with a fresh CK+ classifier on one fold's training frames."""
    net = copy.deepcopy(model)
    net.fc = ck_classifier(model.fc, cfg.init_classifier)
    weight = class_weights(labels, cfg.class_balance)
    if cfg.finetune_epochs == 0:  # frozen features: fit only the classifier
        with torch.no_grad():
            feats = net.forward_features(normalise(to_input(crops, pre), pre))
        opt = torch.optim.AdamW(net.fc.parameters(), lr=1e-2, weight_decay=1e-4)
        for _ in range(300):
            loss = F.cross_entropy(net.fc(feats), labels, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return net.eval()

    def batch_loss(idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        x = normalise(train_augment(to_input(crops[idx], pre), g), pre)
        return F.cross_entropy(net(x), labels[idx], weight=weight, label_smoothing=0.1)

    net.train()
    sgd_finetune(list(net.parameters()), len(crops), cfg.batch_size, batch_loss, cfg, seed)
    return net.eval()


def parse_seeds(text: str) -> list[int]:
    seeds = [int(t) for t in str(text).replace(" ", "").split(",") if t]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--finetune-seeds wants distinct non-negative integers like 0,1,2, got {text!r}")
    return seeds


def fold_features(base: ResNet18Embedder, crops: torch.Tensor, pre: Preprocess, tr_frames: np.ndarray,
                  frame_labels: np.ndarray, cfg: CVConfig, fold: int, ft_seed: int = 0):
    """Fine-tune on one fold's training frames; return features (N, D) and frame logits (N, K) of every frame,
    augmented features (Ntr, aug_copies, D) of the training frames, and the fine-tuned classifier."""
    key = cache_key(cfg, FINETUNE_FIELDS + ("aug_copies",), finetune_seed=ft_seed)
    cache = Path(cfg.feature_cache) / f"fold{fold}_ft{ft_seed}.pt" if cfg.feature_cache else None
    d = read_cache(cache, key)
    if d is not None:
        fc = torch.nn.Linear(d["fc_weight"].shape[1], d["fc_weight"].shape[0])
        fc.load_state_dict({"weight": d["fc_weight"], "bias": d["fc_bias"]})
        return d["feats"], d["logits"], d["aug"], fc
    offset = 1000 * ft_seed  # seed 0 keeps the seeds of single-network runs
    net = finetune(base, crops[tr_frames], torch.from_numpy(frame_labels[tr_frames]), pre, cfg,
                   cfg.seed + fold + offset)
    feats, logits = embed_all(net, crops, pre, torch.device("cpu"))
    # head training features: the training clips' frames under fresh augmentation (the fine-tuned network fits
    # the clean training frames almost perfectly, so clean features would teach the heads nothing)
    g = torch.Generator().manual_seed(cfg.seed + 100 + fold + offset)
    with torch.no_grad():
        aug = torch.stack([net.forward_features(normalise(train_augment(to_input(crops[tr_frames], pre), g), pre))
                           for _ in range(cfg.aug_copies)], 1)  # (Ntr, copies, D)
    write_cache(cache, key, {"feats": feats, "logits": logits, "aug": aug, "fc_weight": net.fc.weight.detach(),
                             "fc_bias": net.fc.bias.detach()})
    return feats, logits, aug, net.fc


@torch.no_grad()
def clip_probs(head: FanHead, feats: torch.Tensor, clips: list[np.ndarray]) -> torch.Tensor:
    """Softmax (n_clips, K) of the head on each clip's frame features, one clip at a time."""
    return torch.cat([torch.softmax(head(feats[c][None])[0], -1) for c in clips])


def run_cv(cfg: CVConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    base, pre, _ = load_embedder(cfg.embedder)
    aligned, ck_clips = load_ckplus(pre, cfg.data, cfg.cache_dir)
    crops = torch.from_numpy(aligned.crops)
    clips, clip_labels = clip_index(aligned, ck_clips)
    subjects = [c.subject for c in ck_clips]
    folds = subject_folds(ck_clips, cfg.folds, cfg.seed)
    frame_labels = np.empty(len(crops), np.int64)
    for c, y in zip(clips, clip_labels):
        frame_labels[c] = y
    methods = ("score_fusion", "fan_self", "fan_relation")
    preds = {m: np.full(len(clips), -1) for m in methods}
    n_folds = cfg.limit_folds or cfg.folds
    ft_seeds = parse_seeds(cfg.finetune_seeds)
    t0 = time.time()
    for f in tqdm(range(n_folds), desc="CK+ folds"):
        tr_clips = [c for c, fo in zip(clips, folds) if fo != f]
        te = np.flatnonzero(folds == f)
        tr_frames = np.concatenate(tr_clips)
        pos = {int(fr): i for i, fr in enumerate(tr_frames)}
        tr_idx = [torch.tensor([pos[int(fr)] for fr in c]) for c in tr_clips]
        tr_y = torch.tensor([int(clip_labels[i]) for i, fo in enumerate(folds) if fo != f])
        head_weight = class_weights(tr_y, cfg.class_balance) if cfg.head_class_balance else None
        te_clips = [clips[i] for i in te]
        probs = {m: torch.zeros(len(te), len(CK_LABELS)) for m in methods}  # summed over members and head seeds
        for s in ft_seeds:
            feats, logits, aug, fc = fold_features(base, crops, pre, tr_frames, frame_labels, cfg, f, s)

            def sample_batch(gen, aug=aug):
                pick = torch.randint(0, len(tr_idx), (64,), generator=gen)
                x = torch.stack([aug[tr_idx[p], torch.randint(0, aug.shape[1], (len(tr_idx[p]),), generator=gen)]
                                 for p in pick.tolist()])  # (64, 3, D)
                return x, None, tr_y[pick]

            for m, att in (("fan_self", AttentionType.SELF), ("fan_relation", AttentionType.RELATION)):
                if cfg.joint:  # embedder and head fine-tuned together on clips; one head per member
                    jfeats, head = joint_features(base, crops, pre, tr_clips, tr_y, att, cfg, f, s)
                    probs[m] += clip_probs(head, jfeats, te_clips)
                else:
                    for k in range(cfg.head_seeds):
                        hs = cfg.seed + cfg.head_seed + 1000 * k + f + 10007 * s
                        torch.manual_seed(hs)
                        head = FanHead(att, dim=ResNet18Embedder.embed_dim, num_classes=len(CK_LABELS))
                        init_from_frame_classifier(head, fc)
                        train_head(head, sample_batch, cfg.head_steps, 1e-3, 1e-4, hs,
                                   f"fold {f} {m}", progress=False, classifier_lr=cfg.head_classifier_lr,
                                   class_weight=head_weight)
                        probs[m] += clip_probs(head, feats, te_clips)
            probs["score_fusion"] += torch.stack([torch.softmax(logits[c], -1).mean(0) for c in te_clips])
        for m in methods:
            preds[m][te] = probs[m].argmax(1).numpy()
    done = folds < n_folds
    table = {}
    for m in methods:
        rep = classification_report(clip_labels[done], preds[m][done], CK_LABELS)
        per_fold = [float((preds[m][folds == f] == clip_labels[folds == f]).mean()) for f in range(n_folds)]
        table[m] = {"accuracy": round(100 * rep["accuracy"], 2), "mean_fold_accuracy":
                    round(100 * float(np.mean(per_fold)), 2), "paper": PAPER[m], "macro_f1": rep["macro_f1"],
                    "per_fold": [round(100 * a, 2) for a in per_fold], "confusion_matrix": rep["confusion_matrix"],
                    "predictions": [CK_LABELS[int(i)] if i >= 0 else None for i in preds[m]]}
    members = f", {len(ft_seeds)} fine-tuned networks per fold" if len(ft_seeds) > 1 else ""
    result = {"protocol": f"CK+48, {len(clips)} sequences x 3 frames, {len(set(subjects))} subjects, "
                          f"subject-independent {cfg.folds}-fold CV ({n_folds} run){members}",
              "sequences": [str(c.frames[0].parent.name) + "/" + c.frames[0].name for c in ck_clips],
              "labels": list(CK_LABELS), "detection_rate": float(aligned.detection_rate),
              "seconds": round(time.time() - t0, 1), "config": asdict(cfg), "command": cv_command(cfg),
              "results": table}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "cv_ckplus.json", result)
    save_cv_plot(result, out / "cv_ckplus.png")
    return result


METHOD_NAMES = {"score_fusion": "score fusion", "fan_self": "FAN w/o relation-attention", "fan_relation": "FAN"}


def save_cv_plot(result: dict, path: Path) -> None:
    """One figure for the table: each method's confusion matrix over all held-out clips, and accuracy per fold."""
    from models.evaluate import draw_confusion, pyplot, save_figure

    res = result["results"]
    fig, axes = pyplot().subplots(1, len(res) + 1, figsize=(5.2 * (len(res) + 1), 5.8), dpi=100)
    for ax, (m, r) in zip(axes, res.items()):
        draw_confusion(ax, r["confusion_matrix"], result["labels"],
                       f"{METHOD_NAMES[m]}\n{r['mean_fold_accuracy']:.2f}% mean fold acc (paper {r['paper']:.2f}%)")
    ax = axes[-1]
    n = len(next(iter(res.values()))["per_fold"])
    width = 0.8 / len(res)
    for k, (m, r) in enumerate(res.items()):
        ax.bar(np.arange(n) + (k - (len(res) - 1) / 2) * width, r["per_fold"], width, label=METHOD_NAMES[m])
    low = min(min(r["per_fold"]) for r in res.values())
    bottom = max(0.0, low - 5)
    ax.set_ylim(bottom, 100 + 0.4 * (100 - bottom))  # headroom for the legend above the bars
    ax.set_yticks(np.arange(np.ceil(bottom / 5) * 5, 100.1, 5))
    ax.set_xticks(range(n), [str(f) for f in range(n)])
    ax.set_xlabel("fold (held-out subjects)")
    ax.set_ylabel("clip accuracy %")
    ax.legend(fontsize=8, loc="upper center")
    ax.set_title("accuracy per fold", fontsize=9)
    fig.suptitle(result["protocol"], fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    save_figure(fig, path)


def format_table(result: dict) -> str:
    rows = [f"{'method':<28}{'ours (mean fold acc %)':>24}{'paper %':>10}"]
    for m, r in result["results"].items():
        rows.append(f"{METHOD_NAMES[m]:<28}{r['mean_fold_accuracy']:>24.2f}{r['paper']:>10.2f}")
    return "\n".join(rows)


def cv_command(cfg: CVConfig) -> str:
    """The command line that reproduces cfg (settings left at their defaults and machine paths omitted)."""
    return command_line("python -m models.cv ckplus", cfg, skip=("data", "cache_dir"))


def clip_errors(results: list[dict]) -> dict:
    """Per clip, in how many (run, method) pairs of several cv_ckplus.json results it was misclassified, and as
    what. Clips that most runs get wrong are what any average of those runs would most likely still get wrong."""
    if not results:
        raise ValueError("no results to compare")
    sequences = results[0]["sequences"]
    if any(r["sequences"] != sequences for r in results):
        raise ValueError("the results cover different clip lists (another dataset or version): not comparable")
    truth = [CK_LABELS[ckplus_label(s)] for s in sequences]
    wrong = [dict() for _ in sequences]  # clip -> {predicted label: count}
    seen = np.zeros(len(sequences), int)
    for r in results:
        for m in r["results"].values():
            for i, p in enumerate(m["predictions"]):
                if p is None:  # a fold the run did not reach (--limit-folds)
                    continue
                seen[i] += 1
                if p != truth[i]:
                    wrong[i][p] = wrong[i].get(p, 0) + 1
    clips = [{"sequence": s, "label": y, "wrong": sum(w.values()), "of": int(n),
              "as": dict(sorted(w.items(), key=lambda kv: -kv[1]))}
             for s, y, w, n in zip(sequences, truth, wrong, seen) if w]
    clips.sort(key=lambda c: (-c["wrong"] / c["of"], c["sequence"]))
    scored = int((seen > 0).sum())
    most = sum(1 for c in clips if 2 * c["wrong"] > c["of"])
    return {"runs": len(results), "method_runs": int(seen.max()), "clips": scored,
            "always_wrong": sum(1 for c in clips if c["wrong"] == c["of"]), "wrong_in_most": most,
            "accuracy_if_only_those_wrong": round(100 * (1 - most / max(1, scored)), 2), "per_clip": clips}


def compare_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m models.cv compare",
                                description="Which CK+ clips several CV runs get wrong, and as what.")
    p.add_argument("results", nargs="+", help="cv_ckplus.json files (or the folders holding them)")
    p.add_argument("--top", type=int, default=20, help="clips to list (default 20)")
    args = p.parse_args(argv)
    try:
        runs = []
        for name in args.results:
            path = Path(name) / "cv_ckplus.json" if Path(name).is_dir() else Path(name)
            run = json.loads(path.read_text())
            if not isinstance(run, dict) or "sequences" not in run or "results" not in run:
                raise ValueError(f"{path} is not a cv_ckplus.json with per-clip predictions")
            runs.append(run)
        summary = clip_errors(runs)
    except (OSError, ValueError, KeyError) as e:  # missing file, bad JSON, not a CV result: one line
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"{summary['runs']} runs, {summary['method_runs']} (run, method) pairs, {summary['clips']} clips: "
          f"{summary['always_wrong']} wrong in every pair, {summary['wrong_in_most']} in most "
          f"(accuracy {summary['accuracy_if_only_those_wrong']:.2f}% if only those were wrong)", file=sys.stderr)
    for c in summary["per_clip"][:args.top]:
        taken = ", ".join(f"{k} {v}" for k, v in c["as"].items())
        print(f"{c['wrong']:>4}/{c['of']:<4}{c['sequence']:<36}taken for: {taken}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def parse_args(argv: list[str] | None) -> CVConfig:
    p = argparse.ArgumentParser(prog="python -m models.cv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=["ckplus"])
    add_dataclass_args(p, CVConfig)
    return config_from_args(CVConfig, p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    cfg = parse_args(argv)
    try:
        parse_seeds(cfg.finetune_seeds)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not Path(cfg.embedder).is_file():
        print(f"error: no stage-1 checkpoint at {cfg.embedder} (train one: python -m models.train frames)",
              file=sys.stderr)
        return 1
    try:
        result = run_cv(cfg)
    except ValueError as e:  # CheckpointError, DatasetError: one line
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(result), file=sys.stderr)
    print(json.dumps({m: {k: r[k] for k in ("accuracy", "mean_fold_accuracy", "paper")}
                      for m, r in result["results"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
