"""The benchmark's suites beside its per-stage table (app/tools/bench.py is the command line):

    long_bench     the whole headless replay command, start-up included, against decode + face mesh on the same
                   long clip, and each speed lever turned off or on by itself: interleaved rounds, rows compared
    faces_bench    many faces: 1, 4 and 9 faces tiled into 1920x1080, faces found per frame, ids, fps
    gpu_suite      what a lent GPU machine runs as it is: the embedder alone at batch 1/4/16 and end to end on
                   1/4/16 faces on the asked device (and the CPU beside it), a replay of a shared clip on both, and
                   whether their rows agree within tolerance; one JSON file

Every clip is made at run time in a temp folder (app/tools/clips.py, ffmpeg); nothing here is asserted on speed. Each
lever's replay runs in a fresh process (`python -m app.tools.bench --replay-child`, the path main.py --no-window takes),
so start-up is in every number.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from app.durable import write_json
from app.paths import ROOT

# Each lever alone, as a change to the replay as shipped ({} is the replay as shipped). "overlap" is replay()'s
# argument; every other key is a PipelineConfig field.
LEVERS: dict[str, dict] = {
    "as shipped": {},
    "still images read again (skip_still off)": {"skip_still": False},
    "no stage overlap": {"overlap": False},
    "embedder on 2 threads": {"threads": 2},  # shipped: min(2, cores - 1), app.runs.overlap
    "gate detector": {"gate": "detector"},
    "gate stride:2": {"gate": "stride:2"},
    "gate stride:4": {"gate": "stride:4"},
}
# What the rows are compared with: the mesh on every frame (no gate, no still images skipped), the replay before
# these levers.
REFERENCE = "still images read again (skip_still off)"


def load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _quiet_env() -> dict:
    return {**os.environ, "GLOG_minloglevel": "2", "PYTHONPATH": str(ROOT)}


def replay_child(argv: list[str]) -> int:
    """`python -m app.tools.bench --replay-child JSON VIDEO CSV`: one replay of VIDEO into CSV with the PipelineConfig
    fields in JSON (and "overlap"), the path of main.py --no-window; for long_bench's levers."""
    from app.pipeline import PipelineConfig
    from app.runs.replay import replay

    options, video, out = json.loads(argv[0]), Path(argv[1]), Path(argv[2])
    overlap = options.pop("overlap", True)
    replay(video, [out], PipelineConfig(**options), progress=False, overlap=overlap)
    return 0


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=_quiet_env(), cwd=str(ROOT), timeout=3600)
    wall = time.perf_counter() - t0
    if run.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    return wall


def decode_mesh(video: Path, config=None) -> tuple[int, float]:
    """Decode + the face mesh of a pipeline of `config` (default: as shipped; its close-up retry, iris refinement)
    on every frame and every view (no image skipped as unchanged), nothing else: (frames, seconds of the loop; the
    mesh's start-up left out)."""
    import numpy as np

    from app.capture.sources import open_source
    from app.faces.detect import FaceMeshDetector
    from app.pipeline import Pipeline, PipelineConfig

    config = replace(config or PipelineConfig(), skip_still=False)
    with FaceMeshDetector(Pipeline.detector_config(config)) as detector, open_source(video) as src:
        w, h = src.size
        detector.detect(np.zeros((h, w, 3), np.uint8))  # the graph's first call (its start-up) is not the loop's
        n = 0
        t0 = time.perf_counter()
        while (frame := src.read()) is not None:
            detector.detect(frame.image)
            n += 1
        return n, time.perf_counter() - t0


def _faces_per_frame(text: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("face_id"):
            i = int(row["frame_index"])
            counts[i] = counts.get(i, 0) + 1
    return counts


def compare_rows(text: str, reference: str) -> dict:
    """A replay's CSV against the reference's: identical, and the face recall (faces found per frame, at most the
    reference's, over the reference's faces)."""
    got, want = _faces_per_frame(text), _faces_per_frame(reference)
    total = sum(want.values())
    found = sum(min(got.get(i, 0), n) for i, n in want.items())
    return {"identical": text == reference, "face_rows": sum(got.values()), "face_rows_reference": total,
            "face_recall": round(found / total, 4) if total else 1.0}


def long_bench(video: Path, rounds: int, levers: dict[str, dict] = LEVERS, log=print) -> dict:
    """Interleaved rounds over `video`: decode + face mesh (in this process, before and after the round's replays:
    the round's bar is their mean rate), the whole command `python main.py --video VIDEO --export X.csv
    --no-window` (start-up included), and one fresh replay process per lever; the order of the replays turns by one
    each round. Each replay's rate over its round's bar, medians over the rounds; rows compared with REFERENCE's."""
    walls: dict[str, list[float]] = {"main.py": [], **{k: [] for k in levers}}
    mesh_fps, loads = [], []
    csvs: dict[str, str] = {}
    frames = 0
    names = list(walls)
    with tempfile.TemporaryDirectory() as d:
        for r in range(rounds):
            loads.append(load_average())
            n, t = decode_mesh(video)
            frames = n
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                out = Path(d) / f"{len(csvs)}_{r}.csv"
                if name == "main.py":
                    cmd = [sys.executable, str(ROOT / "main.py"), "--video", str(video), "--export", str(out),
                           "--no-window", "--quiet"]
                else:
                    cmd = [sys.executable, "-m", "app.tools.bench", "--replay-child", json.dumps(levers[name]),
                           str(video), str(out)]
                walls[name].append(_timed(cmd))
                csvs.setdefault(name, out.read_text())
            n, t_after = decode_mesh(video)  # the bar of this round: before and after its replays, averaged
            mesh_fps.append(2 * n / (t + t_after))
            log(f"round {r + 1}/{rounds}: decode + mesh {mesh_fps[-1]:.1f} fps; " +
                ", ".join(f"{k} {frames / v[-1]:.1f}" for k, v in walls.items()) + f" (load {loads[-1]})")
        loads.append(load_average())
    mesh = statistics.median(mesh_fps)
    reference = csvs[REFERENCE]
    rows = {}
    for name, w in walls.items():
        fps = [frames / x for x in w]
        ratios = [f / m for f, m in zip(fps, mesh_fps)]
        rows[name] = {"wall_s": round(statistics.median(w), 2), "fps": round(statistics.median(fps), 1),
                      "vs_decode_mesh": round(statistics.median(ratios), 3),
                      "vs_decode_mesh_each_round": [round(x, 3) for x in ratios],
                      **compare_rows(csvs[name], reference)}
    return {"video": str(video), "frames": frames, "rounds": rounds, "decode_mesh_fps": round(mesh, 1),
            "decode_mesh_fps_each_round": [round(x, 1) for x in mesh_fps], "load_average": loads,
            "levers": {k: v for k, v in levers.items()}, "replays": rows}


def print_long(result: dict) -> None:
    print(f"whole replay against decode + face mesh: {Path(result['video']).name}, {result['frames']} frames, "
          f"{result['rounds']} interleaved rounds, load average {result['load_average']}")
    print(f"decode + face mesh on every frame: {result['decode_mesh_fps']:.1f} fps (each round "
          f"{result['decode_mesh_fps_each_round']})")
    print(f"{'replay (a fresh process, start-up included)':<46}{'wall s':>8}{'fps':>8}{'x decode+mesh':>15}"
          f"{'rows':>11}{'face recall':>13}")
    for name, r in result["replays"].items():
        label = "python main.py ... --no-window" if name == "main.py" else name
        print(f"{label:<46}{r['wall_s']:>8.2f}{r['fps']:>8.1f}{r['vs_decode_mesh']:>15.3f}"
              f"{'identical' if r['identical'] else 'differ':>11}{r['face_recall']:>13.4f}")
    print(f"rows are compared with '{REFERENCE}' (the face mesh on every frame); x decode+mesh is the median of "
          f"each round's ratio")


def _loop(pipeline, video: Path, limit: int | None = None) -> dict:
    """The replay's own loop (decode and stage 1 ahead on their threads), model warm: fps, and per frame the faces
    found, their ids and same-frame duplicates (boxes overlapping > 0.3 IoU)."""
    from app.capture.threads import PrefetchReader
    from app.capture.sources import open_source
    from app.runs.overlap import DetectAhead
    from app.faces.track import box_iou

    pipeline.reset()
    pipeline.tracker.reset(restart_ids=True)
    counts, ids, pairs, stages = [], set(), 0, {}
    with open_source(video) as src, PrefetchReader(src) as reader:
        frames = itertools.islice(reader, limit) if limit else reader
        t0 = time.perf_counter()
        with DetectAhead(pipeline, frames) as ahead:
            for item in ahead:
                result = pipeline.recognize(item)
                counts.append(len(result.faces))
                ids |= {f.track_id for f in result.faces}
                pairs += sum(box_iou(a.box, b.box) > 0.3 for a, b in itertools.combinations(result.faces, 2))
                for k, v in result.timings.items():
                    stages.setdefault(k, []).append(v)
        wall = time.perf_counter() - t0
    n = len(counts)
    return {"frames": n, "fps": round(n / wall, 2) if wall else 0.0, "counts": counts, "ids": len(ids),
            "duplicate_pairs": pairs, "faces_per_frame": round(sum(counts) / n, 3) if n else 0.0,
            "mean_ms": {k: round(statistics.fmean(v), 2) for k, v in stages.items()}}


def faces_bench(video: Path, tiles=(1, 2, 3), seconds: float = 8.0, max_faces: int = 16, repeat: int = 2,
                device: str = "auto", log=print) -> dict:
    """tile x tile copies of `video` in 1920x1080 for each tile: fps of the replay's loop (model warm, best of
    `repeat`), faces found per frame, the share of frames with every face found, ids and duplicates; the largest
    grid also with the small-face pass off."""
    from app.tools.clips import grid_clip
    from app.pipeline import Pipeline, PipelineConfig

    rows = []
    config = PipelineConfig(max_faces=max_faces, device=device)
    with tempfile.TemporaryDirectory() as d:
        clips = {t: grid_clip(video, Path(d) / f"grid{t}.mp4", t, seconds=seconds) for t in tiles}
        variants = [(t, "auto") for t in tiles] + [(max(tiles), "off")]
        for tile, small in variants:
            load = load_average()
            with Pipeline(replace(config, small_faces=small)) as pipeline:
                _loop(pipeline, clips[tile], limit=10)  # warm-up: sessions, graphs, the pass's models
                runs = [_loop(pipeline, clips[tile]) for _ in range(max(1, repeat))]
                calls = dict(pipeline.detector.calls)
            best = max(runs, key=lambda r: r["fps"])
            want = min(tile * tile, max_faces)
            row = {"faces": tile * tile, "small_faces": small, "frames": best["frames"], "fps": best["fps"],
                   "faces_per_frame": best["faces_per_frame"],
                   "all_found_share": round(sum(c >= want for c in best["counts"]) / max(1, best["frames"]), 4),
                   "ids": best["ids"], "duplicate_pairs": best["duplicate_pairs"], "mean_ms": best["mean_ms"],
                   "detector_calls": calls, "load_before": load, "load_after": load_average()}
            rows.append(row)
            log(f"{row['faces']} faces (small faces {small}): {row['fps']:.1f} fps, {row['faces_per_frame']:.2f} "
                f"found a frame, all on {row['all_found_share']:.1%}, {row['ids']} ids")
    one = next(r["fps"] for r in rows if r["faces"] == 1) if 1 in tiles else None
    for r in rows:
        r["fps_vs_1_face"] = round(r["fps"] / one, 3) if one else None
    return {"video": str(video), "size": "1920x1080", "max_faces": max_faces, "seconds": seconds, "rows": rows}


def print_faces(result: dict) -> None:
    print(f"many faces: {Path(result['video']).name} tiled into {result['size']}, --max-faces {result['max_faces']}, "
          f"the replay's loop with the model warm (best of the passes)")
    print(f"{'faces':>5} {'small-face pass':>15} {'found/frame':>11} {'all found':>9} {'ids':>4} {'dupes':>5} "
          f"{'fps':>6} {'x 1 face':>8} {'load':>11}")
    for r in result["rows"]:
        vs = f"{r['fps_vs_1_face']:.2f}" if r["fps_vs_1_face"] is not None else "-"
        print(f"{r['faces']:>5} {r['small_faces']:>15} {r['faces_per_frame']:>11.2f} {r['all_found_share']:>9.1%} "
              f"{r['ids']:>4} {r['duplicate_pairs']:>5} {r['fps']:>6.1f} {vs:>8} "
              f"{r['load_before']}-{r['load_after']}")


# ---- the GPU suite -------------------------------------------------------------------------------------------

SUITE_FILE = "bench_suite.json"
# Rows of the asked device against the CPU's with the same embedder graph (float32): probabilities may differ by
# this much (cuDNN's and the CPU's convolutions sum in different orders), and the labels must agree on this share.
PROB_TOLERANCE = 0.02
LABEL_AGREEMENT = 0.99


def _embedder_batches(card, device: str, precision: str, crops, sizes, reps: int) -> dict:
    import numpy as np

    from app.recognition.recognizer import Embedder

    emb = Embedder(card, device=device, precision=precision)
    out = {"providers": emb.providers, "precision": emb.precision, "batches": {}}
    for b in sizes:
        batch = [crops[i % len(crops)] for i in range(b)]
        for _ in range(3):
            emb.embed(batch)  # warm-up: a new batch size may plan its kernels
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            emb.embed(batch)
            times.append((time.perf_counter() - t0) * 1e3)
        ms = statistics.median(times)
        out["batches"][str(b)] = {"ms_per_batch": round(ms, 3), "ms_per_face": round(ms / b, 3),
                                  "faces_per_s": round(1e3 * b / ms, 1)}
    out["features"] = np.asarray(emb.embed(list(crops[:16])))
    return out


def _crops(video: Path, config, n: int = 16) -> list:
    from app.capture.sources import open_source
    from app.pipeline import Pipeline

    crops = []
    with Pipeline(replace(config, device="cpu")) as pipeline, open_source(video) as src:
        while len(crops) < n and (frame := src.read()) is not None:
            crops += [f.crop for f in pipeline.detect(frame).faces]
    if not crops:
        raise RuntimeError(f"no face found in {video} for the embedder's crops")
    return crops[:n]


def _rows_agree(text: str, reference: str) -> dict:
    """Two replays' CSVs of one clip: same faces on the same frames, labels agreeing, largest probability gap."""
    def keyed(t):
        return {(r["frame_index"], r["face_id"]): r for r in csv.DictReader(io.StringIO(t)) if r.get("face_id")}

    got, want = keyed(text), keyed(reference)
    shared = got.keys() & want.keys()
    probs = [k for k in next(iter(want.values()), {}) if k.startswith("p_")]
    gap = max((abs(float(got[k][p]) - float(want[k][p])) for k in shared for p in probs), default=0.0)
    agree = sum(got[k]["label"] == want[k]["label"] for k in shared)
    return {"rows": len(got), "rows_reference": len(want), "same_faces": got.keys() == want.keys(),
            "label_agreement": round(agree / len(shared), 4) if shared else 1.0, "max_prob_diff": round(gap, 5)}


def hardware() -> dict:
    """The machine a benchmark ran on: CPU, cores, Python, ONNX Runtime, OS and the GPU if nvidia-smi names one."""
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


def gpu_suite(out_dir: Path, device: str = "cuda", seconds: float = 6.0, frames: int = 0, reps: int = 50,
              repeat: int = 2, video: Path | None = None, log=print) -> tuple[Path, bool]:
    """The GPU machine's run, as it is: writes out_dir/SUITE_FILE and returns (its path, whether the rows check
    passed). `device` is what is measured (cuda; cpu tests the suite itself); the CPU runs beside it in the same
    run. `frames` cuts the replayed clip (0: all of WolfgangLanger_Pexels.mp4); `seconds` is each grid's length."""
    from app.recognition.card import load_card
    from app.tools.clips import grid_clip, head_clip
    from app.recognition.recognizer import find_default_model
    from app.paths import data_root
    from app.pipeline import PipelineConfig
    from app.runs.replay import replay

    videos = data_root() / "videos"
    clip = video or videos / "WolfgangLanger_Pexels.mp4"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict = {"suite": 1, "device_asked": device, "hardware": hardware(), "load_before": load_average(),
                    "command": " ".join([os.path.basename(sys.executable), "-m", "app.tools.bench", *sys.argv[1:]])}
    card = load_card(find_default_model())
    base = PipelineConfig(device=device)
    devices = [device] + (["cpu"] if device != "cpu" else [])
    # 1. the embedder alone, batch 1/4/16, on real aligned crops, the shipped graph for each device and the float
    # graph on the CPU too (what CUDA runs)
    crops = _crops(clip, base)
    runs = {}
    for dev, precision in [(device, "auto")] + ([("cpu", "auto"), ("cpu", "fp32")] if device != "cpu" else []):
        r = _embedder_batches(card, dev, precision, crops, (1, 4, 16), reps)
        runs[f"{dev} {r['precision']}"] = r
        log(f"embedder {dev} {r['precision']} ({r['providers'][0]}): " + ", ".join(
            f"batch {b} {v['ms_per_face']:.2f} ms a face" for b, v in r["batches"].items()))
    first = next(iter(runs.values()))
    same = [r for k, r in runs.items() if r is not first and r["precision"] == first["precision"]]
    import numpy as np

    result["embedder"] = {k: {kk: vv for kk, vv in r.items() if kk != "features"} for k, r in runs.items()}
    if same:
        result["embedder_max_feature_diff"] = float(np.abs(first["features"] - same[0]["features"]).max())
    # 2. end to end on 1, 4 and 16 faces (1920x1080 grids of single_face.mp4), each device
    result["end_to_end"] = {}
    from app.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as d:
        grids = {t * t: grid_clip(videos / "single_face.mp4", Path(d) / f"g{t}.mp4", t, seconds=seconds)
                 for t in (1, 2, 4)}
        for dev in devices:
            rows = {}
            with Pipeline(replace(base, device=dev, max_faces=16)) as pipeline:
                for n, g in grids.items():
                    _loop(pipeline, g, limit=5)
                    best = max((_loop(pipeline, g) for _ in range(max(1, repeat))), key=lambda r: r["fps"])
                    rows[str(n)] = {k: v for k, v in best.items() if k != "counts"}
                    log(f"end to end {dev}, {n} faces: {best['fps']:.1f} fps, {best['faces_per_frame']:.2f} found")
                result["end_to_end"][dev] = {"providers": pipeline.providers,
                                             "precision": pipeline.recognizer.embedder.precision, "faces": rows}
        # 3. a replay of a shared clip on each device (start-up included), and its rows against the CPU's
        replayed = head_clip(clip, Path(d) / f"clip{frames}.mp4", frames) if frames else clip
        # the asked device, then what its rows are checked against: on CUDA the CPU with the same (float) embedder
        # graph, and the CPU as it runs by default (int8) for reference; on the CPU the same replay a second time
        runs = [(device, base)] + ([("cpu fp32", replace(base, device="cpu", precision="fp32")),
                                     ("cpu", replace(base, device="cpu"))] if device != "cpu" else
                                    [("cpu again", base)])
        texts, replays = {}, {}
        for name, cfg in runs:
            target = Path(d) / f"replay_{len(texts)}.csv"
            t0 = time.perf_counter()
            r = replay(replayed, [target], cfg, progress=False)
            wall = time.perf_counter() - t0
            texts[name] = target.read_text()
            replays[name] = {"frames": r.frames, "wall_s": round(wall, 2), "fps": round(r.frames / wall, 1)}
            log(f"replay {name}: {r.frames} frames in {wall:.1f} s")
    result["replay"] = {"video": str(clip), "frames_asked": frames or None, "runs": replays}
    reference = runs[1][0]
    check = _rows_agree(texts[device], texts[reference])
    check.update(against=reference, identical=texts[device] == texts[reference],
                 tolerance={"max_prob_diff": PROB_TOLERANCE, "label_agreement": LABEL_AGREEMENT})
    check["passed"] = (check["same_faces"] and check["max_prob_diff"] <= PROB_TOLERANCE
                       and check["label_agreement"] >= LABEL_AGREEMENT)
    result["rows_check"] = check
    if device != "cpu":
        result["rows_vs_cpu_int8"] = _rows_agree(texts[device], texts["cpu"])
    result["load_after"] = load_average()
    result["seconds"] = round(time.perf_counter() - started, 1)
    path = out_dir / SUITE_FILE
    write_json(path, result, default=_plain)
    log(f"rows {device} against {reference}: {'within' if check['passed'] else 'OUTSIDE'} tolerance (max prob diff "
        f"{check['max_prob_diff']}, labels agree {check['label_agreement']:.2%}); wrote {path}")
    return path, check["passed"]


def _plain(value):
    """json.dumps' fallback for numpy scalars and paths."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)

