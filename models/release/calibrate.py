"""Fit each head's temperature on the validation domains and write it into the model's cards (applied by the app).

    python -m models.release.calibrate --weights weights/<name>_embedder.json [--dry-run]

Every held-out validation set (models.evaluate.suite_sets: FER+ Valid and the RAF-DB, SFEW and posed-performer
splits) goes through the app's own path: the training crop cache's aligned faces, the embedder the app runs here
(precision auto: int8 on the CPU when the card has it) and each head of the card over a window of one frame. Each
set is cut in two fixed halves; one temperature per head is fitted by NLL on the fit halves of all sets together,
and ECE (15 bins) before and after is reported on the test halves of each set and on CK+48 frames (never used for
fitting). The cards get a `calibration` block, `applied: true`: the app then reports softmax(log(p) / T)
(`--raw-probabilities` keeps the head's own output). The label never changes; only the confidence does.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from app.recognition.card import ModelError, card_path_for, load_card, temperature_scale, write_model_cards
from app.emotions import EMOTIONS
from models.engine.cli import add_card_args

HALVES_SEED = 21


def head_probs(card, sets: dict, precision: str = "auto", progress: bool = True) -> tuple[dict, str]:
    """{head key: {set name: probs (N, K)}} for every head graph of the card (each image a window of one frame),
    and the embedder precision that ran. The ensemble is not a graph: its probs are its members' mean."""
    from tqdm import tqdm

    from app.recognition.heads import ENSEMBLE, ENSEMBLE_MEMBERS
    from app.recognition.recognizer import Embedder, FanHeadRunner
    from models.evaluate import as_warped

    embedder = Embedder(card, "cpu", threads=1, precision=precision)
    heads = {key: FanHeadRunner(card, key, "cpu") for key in card.head_files}
    out = {key: {} for key in heads}
    for name, aligned in tqdm(sets.items(), desc="sets", disable=not progress):
        crops = as_warped(aligned.crops)
        feats = np.concatenate([embedder.embed(crops[i:i + 64]) for i in range(0, len(crops), 64)])
        for key, head in heads.items():
            out[key][name] = np.stack([head.run(f[None])[0] for f in feats])
    if all(m in heads for m in ENSEMBLE_MEMBERS):
        out[ENSEMBLE] = {name: np.mean([out[m][name] for m in ENSEMBLE_MEMBERS], 0) for name in sets}
    return out, embedder.precision


def fit_halves(n: int, seed: int = HALVES_SEED) -> np.ndarray:
    """(n,) bool: the fit half of a set (a fixed seeded half of its images); the rest is the test half."""
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
    return mask


def calibrate(probs: dict, labels: dict, fit_sets: list[str]) -> dict:
    """{head: {"temperature": T, "ece": {set: {"n", "accuracy", "before", "after"}}}}: T fitted on the fit halves of
    fit_sets; ECE on their test halves and on every other set whole."""
    from models.fit_reliability import ece, fit_temperature

    out = {}
    for key, by_set in probs.items():
        halves = {s: fit_halves(len(labels[s])) for s in fit_sets}
        t = fit_temperature(np.concatenate([by_set[s][halves[s]] for s in fit_sets]),
                            np.concatenate([labels[s][halves[s]] for s in fit_sets]))
        rows = {}
        for s, p in by_set.items():
            keep = ~halves[s] if s in halves else np.ones(len(p), bool)
            p, y = p[keep], labels[s][keep]
            right = p.argmax(1) == y
            rows[s] = {"n": int(len(y)), "accuracy": float(right.mean()), "before": ece(p.max(1), right),
                       "after": ece(temperature_scale(p, t).max(1), right)}
        out[key] = {"temperature": round(float(t), 4), "ece": rows}
    return out


def format_table(result: dict, default: str) -> str:
    from models.evaluate import suite_titles

    titles = suite_titles()
    r = result[default]
    lines = [f"{default} head, T = {r['temperature']:.3f} (test halves; CK+48 frames whole, never fitted on):",
             "| set | n | accuracy | ECE raw | ECE calibrated |", "| --- | --- | --- | --- | --- |"]
    for s, v in r["ece"].items():
        lines.append(f"| {titles.get(s, s)} | {v['n']} | {100 * v['accuracy']:.2f}% | {v['before']:.4f} | "
                     f"{v['after']:.4f} |")
    lines.append("\nevery head: " + ", ".join(f"{k} T={v['temperature']:.3f}" for k, v in result.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from models.data.datasets import DatasetError
    from models.evaluate import suite_sets
    from models.data.datasets import DOMAINS

    p = argparse.ArgumentParser(prog="python -m models.release.calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_card_args(p)
    p.add_argument("--limit", type=int, default=0, help="every k-th image, at most N per set (quick checks)")
    p.add_argument("--dry-run", action="store_true", help="print the table, leave the cards as they are")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.limit < 0:
        p.error("--limit must be >= 0")
    try:
        card = load_card(args.weights)
        sets = suite_sets(args.data, card.preprocess, args.cache_dir, not args.quiet, args.limit)
        probs, precision = head_probs(card, sets, progress=not args.quiet)
    except (ModelError, DatasetError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    fit_sets = [d.valid_name for d in DOMAINS.values()]
    result = calibrate(probs, {s: a.labels for s, a in sets.items()}, fit_sets)
    print(format_table(result, card.default_head))
    if args.dry_run:
        return 0
    cpath = card_path_for(args.weights)
    content = json.loads(cpath.read_text())
    content["calibration"] = {
        "applied": True,
        "temperatures": {k: v["temperature"] for k, v in result.items()},
        "apply": "calibrated probs = softmax(log(probs) / T[head]), per row (the label does not change)",
        "fitted": f"NLL on the fit halves (seed {HALVES_SEED}) of {', '.join(fit_sets)}, each image a window of "
                  f"one frame, through the app's path with the {precision} embedder",
        "ece": {k: v["ece"] for k, v in result.items()},
        "labels": list(EMOTIONS),
        "command": "python -m models.release.calibrate " + " ".join(argv if argv is not None else sys.argv[1:]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    content.pop("role", None)
    written = write_model_cards(cpath.parent, content)
    print(f"wrote the calibration into every card of {card.name} ({written.name} and the rest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
