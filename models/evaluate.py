"""Evaluate a shipped ONNX model on labelled images or clips, through the app's own preprocessing.

    python -m models.evaluate --weights weights/<name>.onnx --index labels.csv        (CSV: path,label)
    python -m models.evaluate --weights weights/<name>.onnx --data DIR --format ferplus [--split FER2013Valid]
    python -m models.evaluate --weights weights/<name>.onnx --data DIR --format folder   (<label>/<image>)
    python -m models.evaluate --weights weights/<name>.onnx --data DIR --format clips    (<label>/<clip>/frames)
    python -m models.evaluate suite --weights weights/<name>.onnx [--json out.json] [--plot DIR]

`suite` scores the five labelled domains the project has, each through the same path: FER+ Valid (48 px gray,
web images), the project's fixed held-out splits of RAF-DB (in-the-wild colour), SFEW (film stills) and the posed
Taiwanese set (6 performers never trained on; models.data.datasets), and CK+48 single frames (posed, lab; contempt left
out; never trained on), and prints one table: accuracy, macro-F1, UAR, recall per class and the
face-detection rate. Landmarks come from the training crop cache when it holds them (the same MediaPipe detector
and settings), so a re-run costs only the network.

Images of any size go through MediaPipe + the 5-point alignment from the model card (small crops such as FER+ 48x48
are padded and upscaled for detection; where no face is found the mean transform is used and counted). Each image
is scored by the card's default head (or the one --head names) as a window of one frame; a clip by that head over its
frames. Prints one JSON object: n, accuracy, macro_f1, uar, per_class_recall, confusion_matrix, detection_rate
(+ labels, model, head).
`--plot cm.png` saves the confusion matrix as an image.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.durable import atomic_write, write_json
from app.recognition.card import ATTENTION_TYPES, DEVICES, HEAD_TYPES, PRECISIONS, ModelError, load_card
from app.emotions import EMOTIONS
from models.engine.cli import add_card_args, add_head_args, parse_head_args
from models.engine.metrics import classification_report

HEAD_HELP = "the head that scores, by its card key (default: the card's)"


def as_warped(crops: np.ndarray) -> list[np.ndarray]:
    """Cached crops are stored in the card's colour mode (gray (S, S, 1) or RGB); the embedder takes what
    warp_face produces (gray (S, S) or BGR), so undo only the channel layout."""
    return [c[:, :, 0] if c.shape[-1] == 1 else np.ascontiguousarray(c[:, :, ::-1]) for c in crops]


def predict_images(paths_or_arrays, card, device: str, head: str | None, progress: bool = True,
                   precision: str = "auto"):
    """Aligned through the card's preprocessing -> (probs (N, 7), detected (N,))."""
    from app.recognition.recognizer import Embedder, FanHeadRunner
    from models.data.facecache import align_images

    aligned = align_images(paths_or_arrays, card.preprocess, progress=progress)
    embedder = Embedder(card, device, precision=precision)
    runner = FanHeadRunner(card, head, device)
    crops = as_warped(aligned.crops)
    probs = []
    for i in range(0, len(crops), 64):
        feats = embedder.embed(crops[i:i + 64])
        probs.extend(runner.run(f[None])[0] for f in feats)  # each image is a window of one frame
    return np.array(probs), aligned.detected


def predict_clips(clips, card, device: str, head: str | None, progress: bool = True,
                  precision: str = "auto"):
    """Each clip's frames (a frame folder or a video) through the same path -> (probs (N, 7), detected frames)."""
    from tqdm import tqdm

    from app.capture.sources import open_source
    from app.recognition.recognizer import Embedder, FanHeadRunner
    from models.data.facecache import align_images

    embedder = Embedder(card, device, precision=precision)
    runner = FanHeadRunner(card, head, device)
    probs, detected = [], []
    for clip in tqdm(clips, desc="clips", disable=not progress):
        if clip.video is not None:
            frames = []
            with open_source(clip.video) as src:
                while (f := src.read()) is not None:
                    frames.append(f.image)
            items = frames
        else:
            items = clip.frames
        aligned = align_images(items, card.preprocess, progress=False)
        crops = as_warped(aligned.crops)
        feats = embedder.embed(crops)[-card.window_length:]  # the newest window, as the app would see it
        probs.append(runner.run(feats)[0])
        detected.extend(aligned.detected.tolist())
    return np.array(probs), np.array(detected, bool)


def draw_confusion(ax, confusion, labels, title: str) -> None:
    """Row-normalised confusion matrix on a matplotlib axis: each cell shows the recall share and the count."""
    cm = np.array(confusion, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed: CLIs and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure atomically (a half-written PNG never replaces a good one) and close it."""
    import matplotlib.pyplot as plt

    atomic_write(Path(path), lambda f: fig.savefig(f, format="png"), binary=True)
    plt.close(fig)


def save_confusion_plot(report: dict, path: Path, title: str) -> None:
    fig, ax = pyplot().subplots(figsize=(6.4, 5.6), dpi=120)
    draw_confusion(ax, report["confusion_matrix"], report["labels"],
                   f"{title}\nacc {report['accuracy']:.3f}  macro-F1 {report['macro_f1']:.3f}  UAR {report['uar']:.3f}")
    fig.tight_layout()
    save_figure(fig, path)


def load_items(args):
    """(kind, items, labels) for the chosen input."""
    from models.data import datasets

    if args.index:
        samples = datasets.read_index_csv(args.index)
    elif args.format == "ferplus":
        splits = datasets.read_ferplus(args.data, [args.split] if args.split else None)
        if len(splits) > 1:  # a folder with several splits: evaluate on Valid unless told otherwise
            splits = {k: v for k, v in splits.items() if k == "FER2013Valid"} or splits
        samples = [s for v in splits.values() for s in v]
    elif args.format == "folder":
        samples = datasets.read_image_folder(args.data)
    else:
        clips = [c for c in datasets.read_clip_folders(args.data) if c.label is not None]
        return "clips", clips, np.array([c.label for c in clips])
    samples = [s for s in samples if s.label is not None]
    return "images", [s.path for s in samples], np.array([s.label for s in samples])


def suite_titles() -> dict[str, str]:
    """Report key -> table name of every suite domain: each training domain's held-out part, then CK+48 frames."""
    from models.data.datasets import DOMAINS

    return {**{d.valid_name: d.title for d in DOMAINS.values()}, "ckplus_frames": "CK+48 frames"}


def suite_sets(data: Path, pre, cache_dir: Path, progress: bool = True, limit: int = 0) -> dict:
    """Each domain's aligned, labelled held-out crops in the given preprocessing, from the training crop caches (the
    same names, so a training run's cache serves here and back): FER+ Valid, the fixed RAF-DB, SFEW and posed
    (held-out performers) splits, and CK+48 frames (never trained on). limit > 0 keeps every k-th image of each
    (quick checks and tests; the caches of such subsets are separate)."""
    from models.data.loading import DOMAINS, load_ckplus_frames, load_valid

    sets = {d.valid_name: load_valid(name, data, pre, cache_dir, limit, progress) for name, d in DOMAINS.items()}
    sets["ckplus_frames"] = load_ckplus_frames(data, pre, cache_dir, limit, progress)
    return {k: v.select(v.labels >= 0) for k, v in sets.items()}  # contempt, FER+ ambiguous: outside the 7


def run_suite(card, data: Path, cache_dir: Path, device: str, head: str | None, progress: bool = True,
              limit: int = 0, precision: str = "auto", threads: int | None = None) -> dict:
    """Each domain's report (+ detection_rate) through the card's embedder and FAN head, each image a window of
    one frame, exactly as predict_images scores images. threads: the embedder's ONNX Runtime threads (None: the
    app's default)."""
    from app.recognition.recognizer import Embedder, FanHeadRunner

    embedder = Embedder(card, device, threads, precision=precision)
    runner = FanHeadRunner(card, head, device)
    reports = {}
    for name, aligned in suite_sets(data, card.preprocess, cache_dir, progress, limit).items():
        crops = as_warped(aligned.crops)
        probs = []
        for i in range(0, len(crops), 64):
            feats = embedder.embed(crops[i:i + 64])
            probs.extend(runner.run(f[None])[0] for f in feats)
        rep = classification_report(aligned.labels, np.array(probs).argmax(1), EMOTIONS)
        rep["detection_rate"] = float(aligned.detected.mean())
        rep["embedder_precision"] = embedder.precision
        reports[name] = rep
    return reports


def format_suite(reports: dict) -> str:
    """One markdown table: a row per domain."""
    short = {"anger": "ang", "disgust": "dis", "fear": "fea", "happiness": "hap", "sadness": "sad",
             "surprise": "sur", "neutral": "neu"}
    head = ("| domain | n | accuracy | macro-F1 | UAR | " + " | ".join(f"{short[e]} rec" for e in EMOTIONS) +
            " | face found |")
    rows = [head, "|" + " --- |" * (6 + len(EMOTIONS))]
    titles = suite_titles()
    for name, r in reports.items():
        rec = [f"{r['per_class_recall'][e]:.2f}" if e in r["per_class_recall"] else "-" for e in EMOTIONS]
        rows.append(f"| {titles.get(name, name)} | {r['n']} | {100 * r['accuracy']:.2f}% | {r['macro_f1']:.3f} | {r['uar']:.3f} | " +
                    " | ".join(rec) + f" | {100 * r['detection_rate']:.1f}% |")
    return "\n".join(rows)


def suite_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m models.evaluate suite",
                                description="every domain's held-out images (FER+ Valid, RAF-DB val, SFEW val, held-out posed "
                                            "performers) and CK+48 frames through the app's path")
    add_card_args(p)
    p.add_argument("--device", choices=DEVICES, default="auto")
    add_head_args(p, HEAD_TYPES, HEAD_HELP, ATTENTION_TYPES)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the embedder graph: auto = what the app runs (int8 on the CPU when the card has it)")
    p.add_argument("--json", type=Path, default=None, help="also write every report (confusion matrices too)")
    p.add_argument("--plot", type=Path, default=None, help="a folder for one confusion-matrix PNG per domain")
    p.add_argument("--limit", type=int, default=0, help="every k-th image, at most N per domain (quick checks)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parse_head_args(p, argv)
    if args.limit < 0:
        p.error("--limit must be >= 0")
    try:
        from models.data.datasets import DatasetError

        card = load_card(args.weights)
        reports = run_suite(card, args.data, args.cache_dir, args.device, args.head,
                            not args.quiet, args.limit, args.precision)
    except (ModelError, DatasetError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    precision = next(iter(reports.values()), {}).get("embedder_precision", args.precision)
    print(f"{card.name} ({args.head or card.default_head} head, {card.preprocess.input_size} px "
          f"{card.preprocess.color}, {precision} embedder), each image a "
          f"window of one frame:")
    print(format_suite(reports))
    if args.json:
        write_json(args.json, {"model": card.name, "head": args.head or card.default_head,
                               "reports": reports}, indent=1)
    if args.plot:
        args.plot.mkdir(parents=True, exist_ok=True)
        for name, r in reports.items():
            save_confusion_plot(r, args.plot / f"{name}.png", f"{card.name} on {name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "suite" in argv[:2]:  # `suite` as the subcommand (an option such as --quiet may stand before it)
        i = argv.index("suite")
        return suite_main(argv[:i] + argv[i + 1:])
    p = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, required=True, help="any .onnx or .json card of the model")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--index", type=Path, help="CSV with path,label columns (paths relative to the CSV)")
    src.add_argument("--data", type=Path, help="a dataset folder (see --format)")
    p.add_argument("--format", choices=["ferplus", "folder", "clips"], default="folder")
    p.add_argument("--split", default=None, help="FER+ split folder (default: FER2013Valid when present)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    add_head_args(p, HEAD_TYPES, HEAD_HELP, ATTENTION_TYPES)
    p.add_argument("--plot", type=Path, default=None, help="save the confusion matrix as a PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parse_head_args(p, argv)
    try:
        from models.data.datasets import DatasetError

        card = load_card(args.weights)
        kind, items, labels = load_items(args)
        if len(items) == 0:
            raise DatasetError("no labelled items to evaluate")
        if kind == "clips":
            probs, detected = predict_clips(items, card, args.device, args.head, not args.quiet)
        else:
            probs, detected = predict_images(items, card, args.device, args.head, not args.quiet)
    except (ModelError, DatasetError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    report = classification_report(labels, probs.argmax(1), EMOTIONS)
    report.update(detection_rate=float(np.mean(detected)) if len(detected) else 0.0, model=card.name,
                  head=args.head or card.default_head, kind=kind)
    if args.plot:
        save_confusion_plot(report, args.plot, f"{card.name} on {args.index or args.data}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
