"""What an embedder input size and colour mode cost per face on this machine: the accuracy-vs-cost table's cost side.

    python -m models.release.cost [--sizes 64 80 96 112] [--colors gray rgb] [--runs 200] [--threads 1] [--json out.json]

For each (size, colour, mirror averaging on/off) a ResNet18 embedder is exported to ONNX exactly as a release
exports it (models.release.export.export_model; seeded random weights: the cost of a graph does not depend on its weight
values), loaded through the app's own Embedder (ONNX Runtime, CPU provider, the app's session options), and timed
on one aligned face per call, as the live path runs it for one face: median milliseconds over --runs calls after
warm-up, input conversion included. Speed is only ever measured here and in app.tools.bench, never asserted in a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def embed_cost(size: int, color: str, flip_average: bool, runs: int, threads: int, tmp: Path) -> float:
    """Median ms to embed one aligned face with an exported embedder of this size/colour/mirror setting."""
    from app.recognition.card import load_card
    from app.recognition.recognizer import Embedder
    from models.networks.fan import WINDOW_LENGTH
    from models.release.export import export_model, random_model

    embedder, heads, pre = random_model(size, color)
    embedder.flip_average = flip_average
    name = f"cost_{size}_{color}_{'flip' if flip_average else 'noflip'}"
    card_path = export_model(embedder, heads, tmp, name, pre, window_length=WINDOW_LENGTH,
                             extra={"random_init": True, "training": "none: random weights, cost only"})
    return median_embed_ms(Embedder(load_card(card_path), "cpu", threads=threads or None), runs)


def median_embed_ms(runner, runs: int) -> float:
    """Median ms of runner.embed([one seeded random face]) over `runs` calls after 10 warm-up calls (`runner`: an
    app.recognition.recognizer.Embedder; the crop's size and colour follow its card)."""
    pre = runner.preprocess
    shape = (pre.input_size, pre.input_size, 3) if pre.channels == 3 else (pre.input_size, pre.input_size)
    crop = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for _ in range(10):
        runner.embed([crop])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        runner.embed([crop])
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def format_table(rows: list[dict]) -> str:
    out = ["| input | embed ms/face, mirror averaged | embed ms/face, single pass |", "| --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['size']} px {r['color']} | {r['ms_flip']:.2f} | {r['ms_noflip']:.2f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.release.cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 80, 96, 112])
    p.add_argument("--colors", nargs="+", choices=["gray", "rgb"], default=["gray", "rgb"])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: the app's default)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for size in args.sizes:
            for color in args.colors:
                row = {"size": size, "color": color}
                for flip in (True, False):
                    row["ms_flip" if flip else "ms_noflip"] = embed_cost(size, color, flip, args.runs,
                                                                         args.threads, Path(d))
                rows.append(row)
                print(f"{size} px {color}: {row['ms_flip']:.2f} ms mirror-averaged, {row['ms_noflip']:.2f} ms single",
                      file=sys.stderr)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
