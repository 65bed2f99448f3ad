"""Post-training int8 quantization of a released embedder, for the CPU: the same network, faster per face.

    python -m models.release.quantize --weights weights/fan_r18_multi_embedder.json [--calibration 512] [--method minmax]

Writes <embedder>_int8.onnx beside the embedder and lists it in every card of the model (files.embedder_int8, its
sha256, and a "quantization" record: method, calibration data, agreement with the float graph, ms per face of both).
The app runs it whenever the embedder runs on the CPU (app.recognition.recognizer.Embedder, precision "auto"; `--precision fp32`
in main.py keeps the float graph); on CUDA it keeps the float graph.

How: ONNX Runtime's static quantization (QDQ format: weights per output channel, uint8 activations) with ranges
calibrated on aligned TRAINING crops (FER+ Train and the project's RAF-DB train split, half each, a seeded random
draw), never on the validation sets the model is judged on. The record's agreement is measured on other training
crops (feature cosine, and whether the single-frame label through the default head is the same); the accuracy on the
validation sets is `python -m models.evaluate suite --precision int8` against `--precision fp32` (docs/results.md).

Weights: "s8" (default) int8 with the 7-bit range (`reduce_range`): on x86 CPUs without VNNI (AVX2 only) ONNX
Runtime's u8 x s8 kernel adds pairs of products in 16 bits, which saturates with full 8-bit weights and changes
single-frame labels; 7-bit weights stay clear of it. "u8" (uint8 weights) avoids the saturation another way, at some
speed. The measurements: docs/results.md, "Speed, second pass".
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from app.durable import replacing
from app.recognition.card import ModelError, content_files, file_sha256, load_card, write_model_cards
from models.engine.cli import add_card_args

METHODS = ("minmax", "percentile", "entropy")
WEIGHT_TYPES = ("s8", "u8")


def calibration_crops(data: Path, pre, cache_dir: Path, n: int, seed: int = 0, progress: bool = True,
                      limit: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """(calibration crops, agreement crops, where they came from): 2n distinct training crops drawn at random, half
    from FER+ Train and half from the RAF-DB train split, in the form the app's embedder takes (app.faces.align).
    limit > 0 draws from every k-th image only, at most `limit` per set (tests; cached under their own names)."""
    from models.evaluate import as_warped
    from models.data.loading import load_ferplus_split, load_split_domain

    rng = np.random.default_rng(seed)
    fer = load_ferplus_split(data, "FER2013Train", pre, cache_dir, limit, progress=progress)
    raf = load_split_domain("rafdb", data, pre, cache_dir, limit, progress=progress)[0]
    calib, check = [], []
    for aligned, k in ((fer, n // 2), (raf, n - n // 2)):
        pick = rng.choice(len(aligned.crops), size=min(2 * k, len(aligned.crops)), replace=False)
        crops = as_warped(aligned.crops[pick])
        calib += crops[:k]
        check += crops[k:]
    return calib, check, {"sets": ["FER+ Train", "RAF-DB train split (models.data.datasets.rafdb_split)"],
                          "n": len(calib), "seed": seed, **({"limit": limit} if limit else {})}


def quantize_graph(source: Path, out: Path, crops: list[np.ndarray], pre, method: str = "minmax",
                   weight_type: str = "s8") -> None:
    """The float embedder graph `source` -> a QDQ int8 graph at `out`, activation ranges from `crops`."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, \
        quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from app.faces.align import to_network_input

    if method not in METHODS or weight_type not in WEIGHT_TYPES:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, weights one of {', '.join(WEIGHT_TYPES)}")
    if not crops:
        raise ValueError("quantization needs at least one calibration crop")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(crops)

        def get_next(self):
            crop = next(self._it, None)
            return None if crop is None else {"crops": to_network_input([crop], pre)}

    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]
    with tempfile.TemporaryDirectory() as d:
        prepared = Path(d) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        with replacing(out) as tmp:
            quantize_static(str(prepared), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=weight_type == "s8", activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8 if weight_type == "s8" else QuantType.QUInt8,
                            calibrate_method=calibrate)


def agreement(card, crops: list[np.ndarray], runs: int = 200) -> dict:
    """The int8 graph against the float one on `crops`: feature cosine (min, mean), the share of crops whose
    single-frame label through the default head is the same, and ms per face of each (models.release.cost's timing)."""
    from app.recognition.recognizer import Embedder, FanHeadRunner
    from models.release.cost import median_embed_ms

    fp32, int8 = Embedder(card, "cpu", precision="fp32"), Embedder(card, "cpu", precision="int8")
    head = FanHeadRunner(card, card.default_head, "cpu")
    a = np.concatenate([fp32.embed(crops[i:i + 64]) for i in range(0, len(crops), 64)])
    b = np.concatenate([int8.embed(crops[i:i + 64]) for i in range(0, len(crops), 64)])
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    same = np.mean([np.argmax(head.run(x[None])[0]) == np.argmax(head.run(y[None])[0]) for x, y in zip(a, b)])
    return {"n": len(crops), "feature_cosine_min": round(float(cos.min()), 5),
            "feature_cosine_mean": round(float(cos.mean()), 5), "same_label": round(float(same), 4),
            "ms_per_face_fp32": round(median_embed_ms(fp32, runs), 3),
            "ms_per_face_int8": round(median_embed_ms(int8, runs), 3), "threads": "app default (min(2, cores))"}


def add_int8(card_path: Path, crops: list[np.ndarray], check: list[np.ndarray], method: str = "minmax",
             source: dict | None = None, weight_type: str = "s8", command: str | None = None) -> Path:
    """Quantize the model's embedder and list it in all its cards (atomically, card by card). Returns the int8 path.
    command: what the card records as the command that made it (default: this process's python -m models.release.quantize
    arguments)."""
    import onnxruntime

    card = load_card(card_path)
    out = card.embedder_file.with_name(card.embedder_file.stem + "_int8.onnx")
    quantize_graph(card.embedder_file, out, crops, card.preprocess, method, weight_type)
    content = json.loads(card.embedder_file.with_suffix(".json").read_text())
    content.pop("format", None)
    content["files"]["embedder_int8"] = out.name
    content["sha256"] = {f: file_sha256(card.path.parent / f) for f in content_files(content)}
    content["quantization"] = {"method": f"onnxruntime {onnxruntime.__version__} quantize_static, QDQ, per-channel "
                                         + ("int8 weights in 7 bits (reduce_range)" if weight_type == "s8" else
                                            "uint8 weights") + f", uint8 activations, {method} calibration",
                               "calibration": source or {"n": len(crops)},
                               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                               "command": command or "python -m models.release.quantize " + " ".join(sys.argv[1:])}
    write_model_cards(card.path.parent, content)  # from here the model loads with its int8 graph
    if check:
        content["quantization"]["agreement"] = agreement(load_card(card_path), check)
        write_model_cards(card.path.parent, content)
    return out


def main(argv: list[str] | None = None) -> int:
    from models.data.datasets import DatasetError

    p = argparse.ArgumentParser(prog="python -m models.release.quantize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_card_args(p)
    p.add_argument("--calibration", type=int, default=512, help="training crops that set the activation ranges")
    p.add_argument("--method", choices=METHODS, default="minmax")
    p.add_argument("--weight-type", choices=WEIGHT_TYPES, default="s8",
                   help="s8: int8 weights in 7 bits (default; see above); u8: uint8 weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="draw from at most N images per set (quick checks, tests)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.calibration < 1 or args.limit < 0:
        p.error("--calibration must be >= 1 and --limit >= 0")
    try:
        card = load_card(args.weights)
        crops, check, source = calibration_crops(args.data, card.preprocess, args.cache_dir, args.calibration,
                                                 args.seed, progress=not args.quiet, limit=args.limit)
        out = add_int8(card.path, crops, check, args.method, source, args.weight_type)
    except (ModelError, DatasetError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    record = load_card(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); agreement with the float graph: "
          f"{json.dumps(record.extra['quantization'].get('agreement', {}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
