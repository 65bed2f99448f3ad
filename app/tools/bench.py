"""Benchmark of the recognition path on a video file: per-stage milliseconds, end-to-end fps, and what it ran on.

    python -m app.tools.bench --video ../shared/data/videos/single_face.mp4 [--device cpu|cuda|auto] [--repeat 3]

Stages (median ms per frame): decode, detect+align (MediaPipe face mesh, tracker, similarity warp), embed (ResNet18,
all faces of a frame in one batch; the card's int8 graph on the CPU, `--precision fp32` for the float one), head
(FAN over the window), signals (their compute per frame: the blendshape network, head pose and sharpness, which run
on a helper thread beside the embedder, + the reliability score; 'signals per face' divides by the faces),
signals+wait (what the frame waited for them after the models), export (recorder append).

End-to-end fps, two loops over the same frames (model warm, best of --repeat passes): 'sequential' decodes,
processes and exports one frame after the other; 'overlapped' is the headless replay's own loop, with decoding and
the face mesh of the next frames on their own threads beside the models (app/runs/overlap.py). What the signals add per
face is measured, not summed from the stages: an A/B of the same loops with and without the signals (and without
the iris refinement of the face mesh they need), passes interleaved. 'Replay fps' times main.py --no-window's path
from start, model loading included, so it is lower on short clips; decode-only fps is the ceiling for reference.
Speed is shown here, never asserted in a timed test.

    python -m app.tools.bench --live [--live-video ../shared/data/videos/single_face.mp4] [--seconds 20]

`--live` measures the live path instead (main.py --camera SOURCE --no-window, app/runs/live.py): ffmpeg streams the video
looped at 30 fps over UDP on loopback (app/tools/loopback.py; already MPEG-2, so the sender only copies packets), once with
its one face and once tiled 2x2 (four faces, 1280x720; both made at run time in a temp folder), and the app records
each stream as it arrives: latency p50/p95 from capture to result, processed fps and the share of frames dropped
(newest frame wins). The machine's load average is printed with it: the numbers are only as idle as the machine.

Beside them, from the same run: decode + face mesh fps (the pipeline's own MediaPipe face mesh on every frame, no
model: the rate a whole replay should reach), the start-up (model and MediaPipe graph loading), and the
embedder's cost per face at batch 1/2/4/8 on the video's own crops (the batching lever). `--gate MODE` (app/faces/gate.py:
detector | stride:K) runs every stage and the whole replay twice, gate off (before) and on (after), and says whether
the rows are identical (mean ms per frame is shown too: on a clip with long empty stretches the median hides them).

    python -m app.tools.bench --long [--video CLIP] [--rounds 3]
    python -m app.tools.bench --faces [--video CLIP] [--seconds 8]
    python -m app.tools.bench --suite --device cuda --out DIR [--seconds 6] [--frames 0]

`--long`: the whole command `python main.py --video CLIP --export X.csv --no-window` (start-up included) against
decode + face mesh on the same clip, and each speed lever turned off or on by itself, each replay a fresh process,
interleaved rounds, rows compared with the face mesh on every frame (default clip: the shared videos between title
cards, ~2,650 frames at 640x360, made at run time with ffmpeg; app/tools/clips.py). `--faces`: 1, 4 and 9 faces tiled
into 1920x1080 (default: WolfgangLanger_Pexels.mp4), faces found per frame, the share of frames with all of them,
ids, duplicates and fps, and the 9 faces without the small-face pass. `--suite`: the GPU machine's run (app/tools/suite.py):
the embedder alone at batch 1/4/16 and end to end on 1/4/16 faces, on --device and on the CPU, a replay of a shared
clip on both and whether the rows agree within tolerance; writes DIR/bench_suite.json (exit 1 when the rows
disagree). app/tools/suite.py says what each measures.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from app.recognition.card import DEVICES
from app.tools.suite import hardware


def decode_only(video: Path) -> tuple[int, float]:
    from app.capture.sources import open_source

    t0 = time.perf_counter()
    n = 0
    with open_source(video) as src:
        while src.read() is not None:
            n += 1
    return n, time.perf_counter() - t0


LIVE_SECONDS = 20.0  # --live: each stream's length

STAGES = ("decode", "detect_align", "embed", "head", "signals", "signals_wait", "export")


def run_once(video: Path, pipeline, export_dir: Path, overlap: bool = False) -> dict:
    """One timed pass over the file: decode, process, export each frame. `overlap`: the replay's loop instead, with
    the decoding and the face mesh of the next frames on their own threads (app/runs/overlap.py); its decode stage is
    then the wait for the next frame's stage 1 (detect_align is still stage 1's own time, on its thread)."""
    from app.capture.threads import PrefetchReader
    from app.capture.sources import open_source
    from app.runs.overlap import DetectAhead
    from app.runs.replay import session_metadata
    from app.timeline.recorder import SessionRecorder

    pipeline.reset()
    stages = {k: [] for k in STAGES}
    per_face = []  # signals ms / faces, frames with a face
    faces = []
    with open_source(video) as src, SessionRecorder([export_dir / "bench.csv"],
                                                    session_metadata(str(video), pipeline.info())) as rec, \
            contextlib.ExitStack() as stack:
        if overlap:
            items = iter(stack.enter_context(DetectAhead(pipeline, stack.enter_context(PrefetchReader(src)))))
            step = pipeline.recognize
        else:
            items, step = iter(src.read, None), pipeline.process
        t_start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            item = next(items, None)
            t1 = time.perf_counter()
            if item is None:
                break
            result = step(item)
            t2 = time.perf_counter()
            rec.add_result(result)
            t3 = time.perf_counter()
            stages["decode"].append((t1 - t0) * 1e3)
            stages["export"].append((t3 - t2) * 1e3)
            for k in ("detect_align", "embed", "head", "signals", "signals_wait"):
                stages[k].append(result.timings.get(k, 0.0))
            if result.signals:
                per_face.append(result.timings.get("signals", 0.0) / len(result.signals))
            faces.append(len(result.faces))
        wall = time.perf_counter() - t_start
    n = len(faces)
    return {"frames": n, "wall_s": wall, "fps": n / wall if wall else 0.0,
            "median_ms": {k: statistics.median(v) if v else 0.0 for k, v in stages.items()},
            "mean_ms": {k: statistics.fmean(v) if v else 0.0 for k, v in stages.items()},
            "faces_per_frame": sum(faces) / n if n else 0.0,
            "signals_per_face_ms": statistics.median(per_face) if per_face else 0.0}


def signals_cost(video: Path, config, repeat: int, export_dir: Path) -> dict:
    """What the signals add, A/B on the same file: the pipeline with its signals (blendshapes, pose, reliability and
    the iris refinement of the face mesh they need) against the same pipeline without any (PipelineConfig.signals
    False), both loops, passes interleaved: at least `repeat`, and enough to cover ~600 frames (the difference is
    a few percent of a pass: short clips need more passes). Added ms per face = the difference of the median wall
    time per pass, divided by the faces."""
    from dataclasses import replace

    from app.capture.sources import open_source
    from app.pipeline import Pipeline

    with open_source(video) as src:
        frames = src.frame_count or 0
    out = {}
    with Pipeline(config) as on, Pipeline(replace(config, signals=False)) as off:
        for overlap in (False, True):
            key = "overlapped" if overlap else "sequential"
            walls = {"on": [], "off": []}
            cpu = {"on": [], "off": []}
            faces = 0
            passes = max(1, repeat, math.ceil(600 / max(1, frames)))
            for _ in range(passes):
                for name, pipe in (("off", off), ("on", on)):
                    c0 = time.process_time()
                    r = run_once(video, pipe, export_dir, overlap=overlap)
                    cpu[name].append(time.process_time() - c0)
                    walls[name].append(r["wall_s"])
                    faces = r["faces_per_frame"] * r["frames"]
            on_s, off_s = statistics.median(walls["on"]), statistics.median(walls["off"])
            cpu_added = statistics.median(cpu["on"]) - statistics.median(cpu["off"])
            out[key] = {"passes": passes, "wall_s_on": round(on_s, 3), "wall_s_off": round(off_s, 3),
                        "added_ms_per_face": round((on_s - off_s) * 1e3 / faces, 3) if faces else None,
                        "added_cpu_ms_per_face": round(cpu_added * 1e3 / faces, 3) if faces else None,
                        "fps_on": round(r["frames"] / on_s, 1), "fps_off": round(r["frames"] / off_s, 1)}
    return out


def replay_fps(video: Path, config, keep: Path | None = None, overlap: bool = True) -> float:
    """The whole headless replay path (main.py --no-window), model loading included. `keep`: the CSV goes there.
    `overlap` False: the face mesh and the models one after the other (the replay before app/runs/overlap.py)."""
    from app.runs.replay import replay

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        r = replay(video, [keep or Path(d) / "replay.csv"], config, progress=False, overlap=overlap)
        return r.frames / (time.perf_counter() - t0)


def decode_mesh(video: Path, pipeline) -> tuple[int, float]:
    """Decode + the pipeline's own face mesh on every frame (nothing else): the bar for the whole replay."""
    from app.tools.suite import decode_mesh as bar

    return bar(video, pipeline.config)


def embed_batches(video: Path, pipeline, sizes=(1, 2, 4, 8), max_crops: int = 64) -> dict:
    """The embedder's ms per face at each batch size, on this video's aligned crops; and whether a batch gives
    bit-identical features to one face at a time (the batching lever must not change the rows)."""
    import numpy as np

    from app.capture.sources import open_source

    crops = []
    pipeline.reset()
    with open_source(video) as src:
        while len(crops) < max_crops and (frame := src.read()) is not None:
            crops += [f.crop for f in pipeline.process(frame).faces]
    if not crops:
        return {}
    emb = pipeline.recognizer.embedder
    single = np.concatenate([emb.embed([c]) for c in crops])
    out = {"faces": len(crops), "ms_per_face": {}, "identical": {}}
    for b in sizes:
        batches = [crops[i:i + b] for i in range(0, len(crops) - b + 1, b)]
        emb.embed(batches[0])
        t0 = time.perf_counter()
        feats = np.concatenate([emb.embed(x) for x in batches])
        out["ms_per_face"][b] = round((time.perf_counter() - t0) * 1e3 / (len(batches) * b), 3)
        out["identical"][b] = bool(np.array_equal(feats, single[: len(feats)]))
        out.setdefault("max_abs_diff", {})[b] = float(np.abs(feats - single[: len(feats)]).max())
    return out


def live_bench(video: Path, config, seconds: float, fps: float = 30.0, tiles=(1, 2)) -> list[dict]:
    """The live path on a real loopback stream of `video` looped to `seconds` at `fps`, for each tiling (1: the
    video, 2: 2x2 copies of it): one row of measurements per tiling. The pipeline is warmed on the file first."""
    from app.capture.sources import open_live, open_source
    from app.runs.live import LiveConfig, record_source
    from app.tools.loopback import LoopbackStream, encode_clip
    from app.pipeline import Pipeline

    rows = []
    with tempfile.TemporaryDirectory() as d, Pipeline(config) as pipeline:
        for tile in tiles:
            clip = encode_clip(video, Path(d) / f"tile{tile}.ts", seconds=seconds, tile=tile, fps=fps)
            with open_source(clip) as src:  # warm-up: sessions, MediaPipe graph, caches at this frame size
                for _ in range(30):
                    if (frame := src.read()) is None:
                        break
                    pipeline.process(frame)
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            with LoopbackStream(clip) as stream:
                source = open_live(stream.url, reconnect_s=0)
                r = record_source(source, [Path(d) / f"live{tile}.csv"], pipeline,
                                  LiveConfig(duration_s=max(1.0, seconds - 2.0)))
            rows.append({"faces": tile * tile, "size": source.size, "stream_fps": fps, "seconds": round(r.elapsed_s, 1),
                         "received": r.received, "processed": r.processed, "dropped": r.dropped,
                         "fps_in": round(r.received / r.elapsed_s, 1), "fps_processed": round(r.processed / r.elapsed_s, 1),
                         "dropped_share": round(r.dropped / r.received, 4) if r.received else None,
                         "latency_ms": r.latency, "faces_per_frame": round(
                             sum(f["n_rows"] for f in r.summary["faces"].values()) / max(1, r.processed), 2),
                         "load_before": load,
                         "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None})
    return rows


def main_live(args) -> int:
    from app.capture.frame import CaptureError
    from app.recognition.card import ModelError
    from app.tools.loopback import FFmpegMissing
    from app.paths import data_root
    from app.pipeline import PipelineConfig

    video = args.live_video or data_root() / "videos" / "single_face.mp4"
    config = PipelineConfig(weights=args.weights, device=args.device, precision=args.precision)
    try:
        rows = live_bench(video, config, args.seconds)
    except (CaptureError, ModelError, FFmpegMissing, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    hw = hardware()
    print(f"FAN Live live benchmark: {video.name} looped, streamed at {rows[0]['stream_fps']:g} fps over UDP on "
          f"loopback (MPEG-2/MPEG-TS), {args.seconds:g} s per stream")
    print(f"hardware: {hw['cpu']} x{hw['cores']}" + (f", GPU {hw['gpu']}" if "gpu" in hw else "") +
          f"; onnxruntime {hw['onnxruntime']}")
    print(f"{'faces':>5} {'found':>5} {'frame':>9} {'in fps':>7} {'processed fps':>14} {'dropped':>8} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'load 1 min':>11}")
    for r in rows:
        lat = r["latency_ms"]
        print(f"{r['faces']:>5} {r['faces_per_frame']:>5.2f} {r['size'][0]:>4}x{r['size'][1]:<4} {r['fps_in']:>7.1f} {r['fps_processed']:>14.1f} "
              f"{r['dropped_share']:>8.1%} {lat['p50']:>7.1f} {lat['p95']:>7.1f} {lat['p99']:>7.1f} "
              f"{r['load_before']:>5.2f}-{r['load_after']:<5.2f}")
    print("found: faces per processed frame; latency: from the frame's read off the stream to its result; dropped: "
          "frames replaced by a newer one before the models took them (the ~1 s the stream took to open arrives at "
          "once and is among them)")
    if args.json:
        args.json.write_text(json.dumps({"video": str(video), "hardware": hw, "rows": rows}, indent=2) + "\n")
    return 0


def main_suites(args, parser) -> int:
    """--long, --faces, --suite (app/tools/suite.py)."""
    from app.tools import suite
    from app.capture.frame import CaptureError
    from app.recognition.card import ModelError
    from app.tools.loopback import FFmpegMissing
    from app.paths import data_root

    videos = data_root() / "videos"
    if args.suite and args.out is None:
        parser.error("--suite needs --out DIR (where bench_suite.json goes)")
    try:
        if args.suite:
            seconds = {"seconds": args.seconds} if args.seconds else {}
            _, passed = suite.gpu_suite(args.out, device=args.device, frames=args.frames, repeat=args.repeat,
                                        video=args.video, **seconds)
            return 0 if passed else 1
        if args.faces:
            seconds = {"seconds": args.seconds} if args.seconds else {}
            result = suite.faces_bench(args.video or videos / "WolfgangLanger_Pexels.mp4", repeat=args.repeat,
                                       device=args.device, **seconds)
            suite.print_faces(result)
        else:
            with tempfile.TemporaryDirectory() as d:
                if args.video is None:
                    from app.tools.clips import long_clip

                    print("making the long clip (title cards between the shared videos) with ffmpeg ...")
                    video = long_clip(videos, Path(d) / "long.mp4")
                else:
                    video = args.video
                result = suite.long_bench(video, max(1, args.rounds))
            suite.print_long(result)
    except (CaptureError, ModelError, FFmpegMissing, RuntimeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        if args.suite:  # the one file still comes back, and says why it holds no numbers
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / suite.SUITE_FILE).write_text(json.dumps(
                {"suite": 1, "device_asked": args.device, "error": str(e), "hardware": hardware()}, indent=2) + "\n")
        return 1
    result["hardware"] = hardware()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    from app.recognition.card import PRECISIONS

    p = argparse.ArgumentParser(prog="python -m app.tools.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=None, help="the file to measure (required without --live)")
    p.add_argument("--live", action="store_true",
                   help="measure the live path on a 30 fps loopback stream, 1 and 4 faces (needs ffmpeg)")
    p.add_argument("--live-video", type=Path, default=None,
                   help="--live: the video to stream (default: the shared single_face.mp4)")
    p.add_argument("--seconds", type=float, default=None,
                   help=f"--live: seconds of each stream ({LIVE_SECONDS:g}); --faces and --suite: of each grid clip "
                        "(app/tools/suite.py's defaults)")
    p.add_argument("--long", action="store_true",
                   help="the whole replay command against decode + face mesh on a long clip, each lever A/B")
    p.add_argument("--rounds", type=int, default=3, help="--long: interleaved rounds")
    p.add_argument("--faces", action="store_true", help="1, 4 and 9 faces tiled into 1920x1080")
    p.add_argument("--suite", action="store_true",
                   help="the GPU machine's run: writes one JSON file into --out (needs ffmpeg)")
    p.add_argument("--out", type=Path, default=None, help="--suite: the folder for bench_suite.json")
    p.add_argument("--frames", type=int, default=0,
                   help="--suite: replay only the shared clip's first N frames (0: all)")
    p.add_argument("--replay-child", nargs=3, default=None, help=argparse.SUPPRESS)
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the embedder graph (auto: int8 on the CPU when the card has it, as the app runs)")
    p.add_argument("--repeat", type=int, default=3, help="full passes over the file; the best pass is reported")
    p.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    p.add_argument("--gate", default=None, metavar="detector|stride:K",
                   help="also measure with this face gate (app/faces/gate.py) and compare the rows with the gate off")
    args = p.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    if args.replay_child:
        from app.tools.suite import replay_child

        return replay_child(args.replay_child)
    if args.live:
        args.seconds = LIVE_SECONDS if args.seconds is None else args.seconds
        return main_live(args)
    if args.long or args.faces or args.suite:
        return main_suites(args, p)
    if args.video is None:
        p.error("--video is required (or --live, --long, --faces, --suite)")

    from app.capture.frame import CaptureError
    from app.recognition.card import ModelError
    from app.pipeline import Pipeline, PipelineConfig

    from dataclasses import replace

    from app.faces.gate import GateConfig

    if args.gate is not None:
        try:
            gate = GateConfig.parse(args.gate)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    config = PipelineConfig(weights=args.weights, device=args.device, precision=args.precision)
    variants = {"off": config}
    if args.gate is not None and gate.mode != "off":
        variants[args.gate] = replace(config, gate=args.gate)
    per: dict[str, dict] = {}
    try:
        n_dec, t_dec = decode_only(args.video)
        with tempfile.TemporaryDirectory() as d:
            for name, cfg in variants.items():
                t0 = time.perf_counter()
                with Pipeline(cfg) as pipeline:
                    startup = time.perf_counter() - t0
                    run_once(args.video, pipeline, Path(d))  # warm-up: sessions, MediaPipe graph, caches
                    runs = [run_once(args.video, pipeline, Path(d)) for _ in range(max(1, args.repeat))]
                    providers, card = pipeline.providers, pipeline.card
                    precision = pipeline.recognizer.embedder.precision
                    extra = {}
                    if name == "off":
                        overlapped = [run_once(args.video, pipeline, Path(d), overlap=True)
                                      for _ in range(max(1, args.repeat))]
                        n_mesh, t_mesh = decode_mesh(args.video, pipeline)
                        extra = {"decode_mesh_fps": round(n_mesh / t_mesh, 1), "overlapped_runs": overlapped,
                                 "embed_batches": embed_batches(args.video, pipeline)}
                if name == "off":
                    extra["signals_cost"] = signals_cost(args.video, cfg, args.repeat, Path(d))
                    seq_csv = Path(d) / "replay_sequential.csv"
                    extra["replay_sequential_fps"] = replay_fps(args.video, cfg, seq_csv, overlap=False)
                    extra["sequential_csv"] = seq_csv.read_text()
                csv = Path(d) / f"replay_{len(per)}.csv"
                per[name] = {"startup_s": round(startup, 2), "runs": runs, "replay_fps": replay_fps(args.video, cfg, csv),
                             "csv": csv.read_text(), **extra}
    except (CaptureError, ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    base = per["off"]
    best = max(base["runs"], key=lambda r: r["fps"])
    best_ov = max(base["overlapped_runs"], key=lambda r: r["fps"])
    result = {"video": str(args.video), "frames": best["frames"], "model": card.name,
              "input": f"{card.preprocess.input_size}x{card.preprocess.input_size} {card.preprocess.color}",
              "window": card.window_length, "providers": providers, "embedder_precision": precision,
              "hardware": hardware(),
              "median_ms": {k: round(v, 3) for k, v in best["median_ms"].items()},
              "mean_ms": {k: round(v, 3) for k, v in best["mean_ms"].items()},
              "end_to_end_fps": round(best["fps"], 1), "end_to_end_fps_overlapped": round(best_ov["fps"], 1),
              "median_ms_overlapped": {k: round(v, 3) for k, v in best_ov["median_ms"].items()},
              "signals_cost": base["signals_cost"], "replay_fps": round(base["replay_fps"], 1),
              "decode_only_fps": round(n_dec / t_dec, 1), "decode_mesh_fps": base["decode_mesh_fps"],
              "replay_sequential_fps": round(base["replay_sequential_fps"], 1),
              "overlap_rows_identical": base["sequential_csv"] == base["csv"],
              "startup_s": base["startup_s"], "faces_per_frame": round(best["faces_per_frame"], 2),
              "signals_per_face_ms": round(best["signals_per_face_ms"], 3),
              "passes_fps": [round(r["fps"], 1) for r in base["runs"]], "embed_batches": base["embed_batches"]}
    hw = result["hardware"]
    print(f"FAN Live benchmark: {args.video.name}, {result['frames']} frames, model {card.name} ({result['input']}, "
          f"window {card.window_length})")
    print(f"hardware: {hw['cpu']} x{hw['cores']}" + (f", GPU {hw['gpu']}" if "gpu" in hw else "") +
          f"; onnxruntime {hw['onnxruntime']}; providers {', '.join(providers)}; {precision} embedder")
    names = list(per)
    head = "".join(f"{'median ms' + ('' if n == 'off' else ' ' + n):>{max(12, len(n) + 11)}}" for n in names)
    head += "".join(f"{'mean ms' + ('' if n == 'off' else ' ' + n):>{max(10, len(n) + 9)}}" for n in names)
    print(f"{'stage':<16}{head}")
    for k in result["median_ms"]:
        best_of = {n: max(per[n]["runs"], key=lambda r: r["fps"]) for n in names}
        line = "".join(f"{best_of[n]['median_ms'][k]:>{max(12, len(n) + 11)}.2f}" for n in names)
        line += "".join(f"{best_of[n]['mean_ms'][k]:>{max(10, len(n) + 9)}.2f}" for n in names)
        print(f"{k.replace('_', '+'):<16}{line}")
    print(f"signals per face: {result['signals_per_face_ms']:.2f} ms of compute (blendshapes + pose + sharpness on a "
          f"helper thread beside the embedder, + reliability); signals+wait is what the frame waited for them")
    sc = result["signals_cost"]
    print("signals added per face, A/B against no signals and no iris refinement (median of passes): " +
          ", ".join(f"{k} {v['added_ms_per_face']:+.2f} ms wall ({v['fps_off']:.1f} -> {v['fps_on']:.1f} fps), "
                    f"{v['added_cpu_ms_per_face']:+.2f} ms CPU" for k, v in sc.items()))
    print(f"end-to-end fps: sequential {result['end_to_end_fps']:.1f}, overlapped (the replay's loop: decode and "
          f"face mesh ahead on their own threads) {result['end_to_end_fps_overlapped']:.1f}   faces/frame: "
          f"{result['faces_per_frame']:.2f}   start-up (model + MediaPipe graph): {result['startup_s']:.2f} s")
    print(f"replay fps (whole path, start-up included): {result['replay_fps']:.1f}   decode + mesh fps: "
          f"{result['decode_mesh_fps']:.1f}   decode-only fps: {result['decode_only_fps']:.1f}")
    print(f"replay fps without the overlap of mesh and models (before app/runs/overlap.py): "
          f"{result['replay_sequential_fps']:.1f}; rows "
          f"{'identical' if result['overlap_rows_identical'] else 'DIFFER'} to the overlapped replay's")
    eb = result["embed_batches"]
    if eb:
        print("embedder ms per face by batch: " + ", ".join(
            f"{b}: {ms:.2f}{'' if eb['identical'][b] else ' (max diff %.1e)' % eb['max_abs_diff'][b]}"
            for b, ms in eb["ms_per_face"].items()) + f"  ({eb['faces']} crops of this video)")
    for n in names[1:]:
        g = per[n]
        gbest = max(g["runs"], key=lambda r: r["fps"])
        same = g["csv"] == base["csv"]
        rows_off, rows_on = base["csv"].count("\n") - 1, g["csv"].count("\n") - 1
        result.setdefault("gates", {})[n] = {
            "end_to_end_fps": round(gbest["fps"], 1), "replay_fps": round(g["replay_fps"], 1),
            "median_ms": {k: round(v, 3) for k, v in gbest["median_ms"].items()},
            "mean_ms": {k: round(v, 3) for k, v in gbest["mean_ms"].items()},
            "rows_identical": same, "rows": rows_on, "rows_gate_off": rows_off}
        print(f"gate {n}: end-to-end fps {gbest['fps']:.1f} (off {best['fps']:.1f}), replay fps {g['replay_fps']:.1f} "
              f"(off {base['replay_fps']:.1f}); rows {'identical' if same else f'DIFFER: {rows_on} vs {rows_off}'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
