"""Benchmark of the recognition path on a video file: per-stage milliseconds, end-to-end fps, and what it ran on.

    python -m app.bench --video ../shared/data/videos/single_face.mp4 [--device cpu|cuda|auto] [--repeat 3]

Stages (median ms per frame): decode, detect+align (MediaPipe face mesh, tracker, similarity warp), embed (ResNet18,
all faces of a frame in one batch), head (FAN over the window), signals (per face: the blendshape network on the
mesh landmarks, head pose by PnP, sharpness and the reliability score; 'signals per face' divides by the faces),
export (recorder append). End-to-end fps is frames
divided by the wall time of the sequential loop (decode + process + export), the same loop the headless replay
runs except that the replay also decodes ahead on a second thread ('whole replay fps' times main.py --no-window's
path from start, model loading included, so it is lower on short clips). Decode-only fps on
the same file is the ceiling for reference. Speed is shown here, never asserted in a timed test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def hardware() -> dict:
    import onnxruntime as ort

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "os": platform.platform()}
    try:
        import subprocess
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        if gpu:
            info["gpu"] = gpu
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def decode_only(video: Path) -> tuple[int, float]:
    from app.capture import open_source

    t0 = time.perf_counter()
    n = 0
    with open_source(video) as src:
        while src.read() is not None:
            n += 1
    return n, time.perf_counter() - t0


def run_once(video: Path, pipeline, export_dir: Path) -> dict:
    from app.capture import open_source
    from app.replay import session_metadata
    from app.session import SessionRecorder

    pipeline.reset()
    stages = {k: [] for k in ("decode", "detect_align", "embed", "head", "signals", "export")}
    per_face = []  # signals ms / faces, frames with a face
    faces = []
    with open_source(video) as src, SessionRecorder([export_dir / "bench.csv"],
                                                    session_metadata(str(video), pipeline)) as rec:
        t_start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            frame = src.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            result = pipeline.process(frame)
            t2 = time.perf_counter()
            rec.add_result(result)
            t3 = time.perf_counter()
            stages["decode"].append((t1 - t0) * 1e3)
            stages["export"].append((t3 - t2) * 1e3)
            for k in ("detect_align", "embed", "head", "signals"):
                stages[k].append(result.timings.get(k, 0.0))
            if result.signals:
                per_face.append(result.timings.get("signals", 0.0) / len(result.signals))
            faces.append(len(result.faces))
        wall = time.perf_counter() - t_start
    n = len(faces)
    return {"frames": n, "wall_s": wall, "fps": n / wall if wall else 0.0,
            "median_ms": {k: statistics.median(v) if v else 0.0 for k, v in stages.items()},
            "faces_per_frame": sum(faces) / n if n else 0.0,
            "signals_per_face_ms": statistics.median(per_face) if per_face else 0.0}


def replay_fps(video: Path, config) -> float:
    from app.replay import replay

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        r = replay(video, [Path(d) / "replay.csv"], config, progress=False)
        return r[0].frames / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--repeat", type=int, default=3, help="full passes over the file; the best pass is reported")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")

    from app.capture import CaptureError
    from app.card import ModelError
    from app.pipeline import Pipeline, PipelineConfig

    config = PipelineConfig(weights=args.weights, device=args.device)
    try:
        n_dec, t_dec = decode_only(args.video)
        with Pipeline(config) as pipeline, tempfile.TemporaryDirectory() as d:
            run_once(args.video, pipeline, Path(d))  # warm-up: sessions, MediaPipe graph, caches
            runs = [run_once(args.video, pipeline, Path(d)) for _ in range(max(1, args.repeat))]
            providers, card = pipeline.providers, pipeline.card
        replay = replay_fps(args.video, config)
    except (CaptureError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    best = max(runs, key=lambda r: r["fps"])
    result = {"video": str(args.video), "frames": best["frames"], "model": card.name,
              "input": f"{card.preprocess.input_size}x{card.preprocess.input_size} {card.preprocess.color}",
              "window": card.window_length, "providers": providers, "hardware": hardware(),
              "median_ms": {k: round(v, 3) for k, v in best["median_ms"].items()},
              "end_to_end_fps": round(best["fps"], 1), "replay_fps": round(replay, 1),
              "decode_only_fps": round(n_dec / t_dec, 1), "faces_per_frame": round(best["faces_per_frame"], 2),
              "signals_per_face_ms": round(best["signals_per_face_ms"], 3),
              "passes_fps": [round(r["fps"], 1) for r in runs]}
    hw = result["hardware"]
    print(f"FAN Live benchmark: {args.video.name}, {result['frames']} frames, model {card.name} ({result['input']}, "
          f"window {card.window_length})")
    print(f"hardware: {hw['cpu']} x{hw['cores']}" + (f", GPU {hw['gpu']}" if "gpu" in hw else "") +
          f"; onnxruntime {hw['onnxruntime']}; providers {', '.join(providers)}")
    print(f"{'stage':<16}{'median ms':>10}")
    for k, v in result["median_ms"].items():
        print(f"{k.replace('_', '+'):<16}{v:>10.2f}")
    print(f"signals per face: {result['signals_per_face_ms']:.2f} ms (blendshapes + pose + reliability)")
    print(f"end-to-end fps (sequential): {result['end_to_end_fps']:.1f}   replay fps (decode ahead): "
          f"{result['replay_fps']:.1f}   decode-only fps: {result['decode_only_fps']:.1f}   "
          f"faces/frame: {result['faces_per_frame']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
