"""Folder replay at scale: every video of a folder on N worker processes or on a Ray cluster, resumable.

    run_folder(folder, [export_dir], PipelineConfig(), workers=4)        # a process pool on this machine
    run_folder(folder, [export_dir], PipelineConfig(), ray="auto")       # the same per-video task on Ray

One task = one video, start to end, through its own Pipeline (each worker process keeps one and reuses it for every
video it gets). The rows are the sequential replay's, frame for frame: a video is never split across workers,
because the tracker and the FAN window carry state from frame to frame.

Cores: N workers share the machine's cores. Each worker runs ONNX Runtime with cores // N intra-op threads (at least
1), OpenCV with as many, and is pinned (Linux) to its own share of the cores, which also holds MediaPipe's and
TensorFlow Lite's thread pools (they have no thread setting in the legacy face-mesh API) to that share.

Resume: the driver keeps a manifest (`.fanlive-manifest.json`) in each video's export folder, rewritten atomically
after each video. A rerun skips a video when the manifest says it completed (done or damaged) with the same
settings, the video's size and modification time are unchanged, every export exists, and no journal of it is
left. A video whose run was cut off (a `<export>.partial.csv` journal left by a killed run, or exports without a
manifest entry) is redone from its start; failed videos are retried.

Failures: a video that fails is one line in the run's summary and the others go on. A model that cannot load
fails the whole run (nothing could be done).

Ray: the task runs on any node; the video must be readable there at the same path (shared storage). The task
writes the exports in a temporary folder on its node and returns their bytes; the driver writes them into the
export folder atomically. A worker that dies mid-task leaves no file behind, and Ray retries the task
(`RAY_MAX_RETRIES`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import queue
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.capture.frame import CaptureError
from app.recognition.card import ModelError
from app.runs.interrupt import STOP_SIGNALS, StopFlag, install_stop_handlers, signal_number
from app.paths import ROOT
from app.pipeline import Pipeline, PipelineConfig
from app.runs.replay import ReplayResult, check_inputs, export_targets, replay_file
from app.timeline.files import ExportError, check_not_being_written, journal_path_for, remove_journal
from app.durable import atomic_write

MANIFEST_NAME = ".fanlive-manifest.json"
MANIFEST_VERSION = 1
RAY_MAX_RETRIES = 3            # a task whose worker process died is run again this many times
STOP_WAIT_S = 10.0             # after a stop signal, how long the workers get to export their partial videos


@dataclass
class FolderRun:
    """What a folder replay did: `results` for the videos processed in this run (in file-name order), `skipped`
    for those whose exports were already complete (rebuilt from the manifest, status done or damaged)."""
    results: list[ReplayResult] = field(default_factory=list)
    skipped: list[ReplayResult] = field(default_factory=list)

    @property
    def completed(self) -> list[ReplayResult]:
        """Every video with exports from this run or an earlier one (done or damaged), in file-name order."""
        return sorted((r for r in [*self.results, *self.skipped] if r.status != "failed"), key=lambda r: r.source.name)


# ----------------------------------------------------------------------------------------------------- manifest

def _settings(config: PipelineConfig, options: dict | None = None) -> dict:
    """The settings that decide a video's files (threads do not): the pipeline's, and a digest of the other
    replay options (a study's markers, epochs, baseline)."""
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}
    out.pop("threads", None)
    if options:
        out["options_sha256"] = hashlib.sha256(repr(sorted(options.items())).encode()).hexdigest()
    return out


def _video_key(video: Path) -> dict:
    st = video.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_manifest(folder: Path) -> dict:
    try:
        doc = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION or not isinstance(doc.get("videos"), dict):
        return {}
    return doc["videos"]


def _write_manifest(folder: Path, videos: dict) -> None:
    """Atomic (session.atomic_write): a killed driver leaves the old manifest or the new one."""
    atomic_write(folder / MANIFEST_NAME,
                  lambda f: json.dump({"version": MANIFEST_VERSION, "videos": videos}, f, indent=1, sort_keys=True))


def _entry_key(targets: list[Path]) -> str:
    return targets[0].name


def complete_result(video: Path, targets: list[Path], config: PipelineConfig,
                    options: dict | None = None) -> ReplayResult | None:
    """The earlier result of `video` when its exports are complete (see the module docstring), else None."""
    if not targets:
        return None
    entry = _read_manifest(targets[0].parent).get(_entry_key(targets))
    if not isinstance(entry, dict):
        return None
    try:
        same = (entry.get("video") == str(video.resolve()) and entry.get("source") == _video_key(video)
                and entry.get("settings") == _settings(config, options) and entry.get("status") in ("done", "damaged")
                and entry.get("exports") == [t.name for t in targets])
    except OSError:
        return None
    if not same or not all(t.is_file() for t in targets) or journal_path_for(targets[0]).exists():
        return None
    return ReplayResult(source=video, exports=list(targets), frames=int(entry.get("frames", 0)),
                        summary=entry.get("summary", {}), declared_frames=entry.get("declared_frames"),
                        damage=entry.get("damage"))


def _record(result: ReplayResult, targets: list[Path], config: PipelineConfig, options: dict | None) -> None:
    """Note a completed video in its export folder's manifest (only the driver writes manifests)."""
    if result.status == "failed" or not targets:
        return
    folder = targets[0].parent
    videos = _read_manifest(folder)
    videos[_entry_key(targets)] = {
        "video": str(result.source.resolve()), "source": _video_key(result.source),
        "settings": _settings(config, options),
        "status": result.status, "frames": result.frames, "declared_frames": result.declared_frames,
        "damage": result.damage, "exports": [t.name for t in targets], "summary": result.summary}
    _write_manifest(folder, videos)


def _clear_partial(targets: list[Path]) -> None:
    """A journal a killed run left: the video is redone from its start, so its journal goes (the recorder would
    otherwise keep it as .partial-2.csv). One that a live process is still writing is another run's: fail."""
    if not targets:
        return
    check_not_being_written(targets[0])
    remove_journal(journal_path_for(targets[0]))


# ----------------------------------------------------------------------------------------------------- workers

def threads_per_worker(workers: int, cores: int | None = None) -> int:
    cores = cores or len(_usable_cores())
    return max(1, cores // max(1, workers))


def _usable_cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def limit_threads(threads: int, cores: list[int] | None = None) -> None:
    """Hold this process to `threads` threads per library (and to `cores`, where the OS allows pinning)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    if cores:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, cores)


@dataclasses.dataclass
class _WorkerState:
    """One worker process's own state, set by the pool's initializer (or a Ray task's first call) and kept for the
    tasks it runs: the model loads once per process, not once per video. Module-level because that is where a
    process pool's task function can find it; every process has its own."""

    threads: int | None = None
    progress: Any = None                 # the driver's queue of frame counts (the overall progress bar)
    stop: StopFlag | None = None
    config: PipelineConfig | None = None
    pipeline: Pipeline | None = None     # built on the first task


_worker = _WorkerState()


def _worker_init(threads: int, core_sets: list[list[int]], counter, progress_queue, flag: StopFlag) -> None:
    with counter.get_lock():
        k = counter.value
        counter.value += 1
    limit_threads(threads, core_sets[k % len(core_sets)] if core_sets else None)
    os.environ.setdefault("GLOG_minloglevel", "2")
    # Ctrl+C reaches every process of the terminal's group, a `kill` only the driver: either way the flag ends the
    # video each worker is on (its rows exported) and every video after it, and the driver waits for that.
    install_stop_handlers(flag)
    _worker.threads, _worker.progress, _worker.stop = threads, progress_queue, flag


def _pipeline(config: PipelineConfig, threads: int) -> Pipeline:
    """This worker's pipeline, built once (the model loads in ~2 s) and reused for every video it gets."""
    config = dataclasses.replace(config, threads=threads)
    if _worker.pipeline is None or _worker.config != config:
        if _worker.pipeline is not None:
            _worker.pipeline.close()
        _worker.pipeline, _worker.config = Pipeline(config), config
    return _worker.pipeline


def _failed(video: Path, targets: list[Path], error: BaseException) -> ReplayResult:
    return ReplayResult(source=video, exports=[t for t in targets if t.exists()], frames=0,
                        error=" ".join(str(error).split()) or type(error).__name__)


def analyze_one(video: Path, targets: list[Path], config: PipelineConfig, threads: int,
                on_frames: Callable[[int], None] | None = None, options: dict | None = None,
                stop: StopFlag | None = None) -> ReplayResult:
    """The per-video task: one video into its exports on this process's pipeline. A bad video or export is a
    failed result; a model that does not load raises ModelError; a requested stop raises Interrupted (before the
    video starts: nothing written; during it: the rows so far exported)."""
    if stop is not None:
        stop.check()
    pipeline = _pipeline(config, threads)
    try:
        # the face mesh beside the models (app/runs/overlap.py) only where the worker has more than one core
        return replay_file(video, targets, pipeline, progress=False, on_frames=on_frames,
                           overlap=threads >= 2, stop=stop, **(options or {}))
    except (CaptureError, ExportError) as e:
        return _failed(video, targets, e)


def _pool_task(video: Path, targets: list[Path], config: PipelineConfig, options: dict | None) -> ReplayResult:
    q = _worker.progress
    return analyze_one(video, targets, config, _worker.threads,
                       on_frames=(lambda n: q.put(n)) if q is not None else None, options=options,
                       stop=_worker.stop)


# ----------------------------------------------------------------------------------------------------- driver

def _plan(video: Path, export: list[Path], config: PipelineConfig, resume: bool, options: dict | None):
    """(files, targets per file, skipped results): check everything, then drop the complete ones."""
    video = Path(video)
    files = check_inputs(video, export)
    many = video.is_dir()
    todo, skipped = [], []
    for f in files:
        targets = export_targets(f, export, many)
        done = complete_result(f, targets, config, options) if resume else None
        if done is not None:
            skipped.append(done)
        else:
            todo.append((f, targets))
    return todo, skipped


def _declared_frames(video: Path) -> int:
    """What the container declares (for the overall progress bar). Raises CaptureError: a video that does not
    open fails here, in the driver, in a moment, and never reaches a worker."""
    from app.capture.sources import open_source

    with open_source(video) as s:
        return int(getattr(s, "declared_frame_count", None) or s.frame_count or 0)


def run_folder(video: Path, export: list[Path], config: PipelineConfig, workers: int = 1, ray: str | None = None,
               progress: bool = True, resume: bool = True,
               on_result: Callable[[ReplayResult], None] | None = None, options: dict | None = None,
               lsl=None) -> FolderRun:
    """Replay every video of a folder (or one file) into its exports; on_result(result) as each one ends, in the
    order they end. `options` are further keyword arguments of replay_file for every video (picklable: a study's
    settings and markers). `lsl` (an app.study.lsl.LslStreams, which lives in this process: workers=1 only) streams
    every video's rows. See the module docstring for workers, resume and Ray. Raises CaptureError / ExportError /
    ValueError before anything runs (bad folder or export; lsl with workers or Ray), ModelError when the model does
    not load."""
    if lsl is not None and (workers > 1 or ray is not None):
        raise ValueError("LSL streams from this process: it cannot go with workers or Ray")
    todo, skipped = _plan(Path(video), [Path(e) for e in export], config, resume, options)
    run = FolderRun(skipped=skipped)
    total, openable = 0, []
    for f, targets in todo:
        try:
            total += _declared_frames(f)
            openable.append((f, targets))
        except CaptureError as e:
            result = _failed(f, targets, e)
            run.results.append(result)
            if on_result is not None:
                on_result(result)
    todo = openable
    if not todo:
        run.results.sort(key=lambda r: r.source.name)
        return run
    bar = tqdm(total=total or None, unit="frame", desc=f"{len(todo)} video{'s' if len(todo) != 1 else ''}",
               disable=not progress, dynamic_ncols=True)

    def finished(result: ReplayResult, targets: list[Path]) -> None:
        if result.status != "failed":
            _record(result, targets, config, options)
        run.results.append(result)
        finished.count += 1
        bar.set_postfix_str(f"{finished.count}/{len(todo)} videos", refresh=True)
        if on_result is not None:
            on_result(result)

    finished.count = 0
    with bar:
        for _, targets in todo:
            _clear_partial(targets)
        if ray is not None:
            _run_ray(todo, config, ray, workers, bar, finished, options)
        elif workers <= 1:
            _run_inline(todo, config, bar, finished, options, lsl)
        else:
            _run_pool(todo, config, workers, bar, finished, options)
    run.results.sort(key=lambda r: r.source.name)
    return run


def _run_inline(todo, config: PipelineConfig, bar, finished, options: dict | None, lsl=None) -> None:
    """workers=1: this process, one pipeline, the same rows as the pool (and as replay())."""
    with Pipeline(config) as pipeline:
        for video, targets in todo:
            try:
                result = replay_file(video, targets, pipeline, progress=False, on_frames=bar.update, lsl=lsl,
                                     **(options or {}))
            except (CaptureError, ExportError) as e:
                result = _failed(video, targets, e)
            finished(result, targets)


def _stop_pool(pool: ProcessPoolExecutor, futures: dict, pending: set, flag: StopFlag, signum: int,
               finished) -> None:
    """Stop every worker at its next frame (each exports the rows of its video so far) and drop the videos not
    started; the videos that completed meanwhile still count (manifest), the cut ones are redone by a rerun. A
    worker that does not stop within STOP_WAIT_S is terminated (its journal is left, and its video redone)."""
    flag.request(signum)
    for fut in pending:
        fut.cancel()
    running = {f for f in pending if not f.cancelled()}
    done, not_done = wait(running, timeout=STOP_WAIT_S)
    for fut in done:
        try:
            result = fut.result()
        except BaseException:  # noqa: BLE001 - stopped part-way (Interrupted) or failed: not complete
            continue
        finished(result, futures[fut][1])
    if not_done:
        for proc in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                proc.terminate()
    pool.shutdown(wait=not not_done, cancel_futures=True)


def _run_pool(todo, config: PipelineConfig, workers: int, bar, finished, options: dict | None) -> None:
    cores = _usable_cores()
    workers = min(workers, len(todo))
    threads = threads_per_worker(workers, len(cores))
    # Each worker gets its own slice of the cores (when there are at least as many cores as workers).
    core_sets = [cores[i::workers] for i in range(workers)] if len(cores) >= workers else []
    ctx = mp.get_context("spawn")  # never fork a process that may hold ONNX Runtime / MediaPipe threads
    progress_q = ctx.Queue()
    counter = ctx.Value("i", 0)
    stop_workers = StopFlag.shared(ctx)
    stop = threading.Event()

    def pump() -> None:  # worker progress messages -> the overall bar
        while not stop.is_set():
            try:
                bar.update(progress_q.get(timeout=0.2))
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return

    def one_pool(batch, last_try: bool) -> list:
        """Run `batch` on a fresh pool; returns the videos a dying worker took down with the pool (every video
        still in flight or queued then fails with BrokenProcessPool: which one killed it is unknown)."""
        broken = []
        with ProcessPoolExecutor(min(workers, len(batch)), mp_context=ctx, initializer=_worker_init,
                                 initargs=(threads, core_sets, counter, progress_q, stop_workers)) as pool:
            futures = {pool.submit(_pool_task, v, t, config, options): (v, t) for v, t in batch}
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        video, targets = futures[fut]
                        try:
                            result = fut.result()
                        except ModelError:
                            raise
                        except BrokenProcessPool:  # a worker died (killed, out of memory)
                            if not last_try:
                                broken.append((video, targets))
                                continue
                            result = _failed(video, targets, RuntimeError("its worker process died twice "
                                                                          "(killed, or out of memory)"))
                        finished(result, targets)
            except BaseException as e:
                _stop_pool(pool, futures, pending, stop_workers, signal_number(e), finished)
                raise
        return broken

    pumper = threading.Thread(target=pump, name="progress", daemon=True)
    pumper.start()
    try:
        broken = one_pool(todo, last_try=False)
        for video, targets in broken:  # once more, each alone, so one bad video cannot take the others down
            _clear_partial(targets)
            one_pool([(video, targets)], last_try=True)
    finally:
        stop.set()
        pumper.join(1.0)
        progress_q.close()


# ----------------------------------------------------------------------------------------------------- Ray

def _ray_task(video: str, names: list[str], config: PipelineConfig,
              options: dict | None) -> tuple[ReplayResult, dict[str, bytes]]:
    """On a Ray worker: the video (a path every node can read) into exports in a temporary folder on this node;
    their bytes go back to the driver, which writes them where they belong."""
    threads = 1  # Ray gives each task one CPU (num_cpus=1)
    if _worker.threads is None:
        limit_threads(threads)
        _worker.threads = threads
    with tempfile.TemporaryDirectory(prefix="fanlive-ray-") as tmp:
        targets = [Path(tmp) / n for n in names]
        result = analyze_one(Path(video), targets, config, threads, options=options)
        # the exports and any files written beside them (a study's sidecars), by name
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file() and p.suffix != ".tmp"}
    return dataclasses.replace(result, exports=[]), files


def ray_init(address: str, num_cpus: int | None = None):
    """Connect to a Ray cluster: "auto" (the one this machine belongs to), "local" (start one here, `num_cpus`
    CPUs), or an address ("ray://head:10001", "head:6379"). Worker processes import this project from the same path
    as the driver (PYTHONPATH), so every node needs the project there (docs/scale.md)."""
    try:
        import ray
    except ImportError:
        raise ValueError("--ray needs the ray package: pip install -r requirements.txt") from None
    if ray.is_initialized():
        return ray
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    # ray.init puts its own SIGTERM handler (a plain exit) in place of the caller's stop handling (app/runs/interrupt.py:
    # the running tasks are cancelled and the finished ones recorded first); the caller's handlers are put back.
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {s: signal.getsignal(s) for s in (getattr(signal, n, None) for n in STOP_SIGNALS) if s is not None}
    try:
        if address == "local":
            # A cluster started here inherits this environment (a runtime_env would cost seconds per worker).
            # Ray runs task workers at niceness 15: on a machine with other work they would get almost no CPU
            # (docs/scale.md), so they run at the driver's.
            os.environ.update(env)
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=num_cpus, **kwargs)
        else:
            ray.init(address=address, runtime_env={"env_vars": env}, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ValueError(f"cannot reach the Ray cluster {address!r}: {' '.join(str(e).split())[:300]}") from None
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    return ray


def _run_ray(todo, config: PipelineConfig, address: str, workers: int, bar, finished, options: dict | None) -> None:
    ray = ray_init(address, num_cpus=max(1, workers))
    task = ray.remote(num_cpus=1, max_retries=RAY_MAX_RETRIES)(_ray_task)
    refs = {task.remote(str(v.resolve()), [t.name for t in targets], config, options): (v, targets)
            for v, targets in todo}
    pending = list(refs)

    def take(ref) -> None:
        video, targets = refs[ref]
        try:
            result, files = ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, ModelError):
                raise e.cause from None
            result, files = _failed(video, targets, e.cause or e), {}
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as e:
            result, files = _failed(video, targets, RuntimeError(f"Ray task failed: {type(e).__name__}")), {}
        written = []
        for name, data in sorted(files.items(), key=lambda kv: kv[0] not in {t.name for t in targets}):
            dest = targets[0].parent / name if name not in {t.name for t in targets} else \
                next(t for t in targets if t.name == name)
            atomic_write(dest, lambda f, data=data: f.write(data), binary=True)
            written.append(dest)
        result = dataclasses.replace(result, source=video, exports=written)
        bar.update(result.frames)
        finished(result, targets)

    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                take(ref)
    except BaseException:
        # Stopped (a signal, or a model that does not load): the videos already done still count (their files and
        # the manifest); the running tasks are cancelled (Ray interrupts them; their files stay in their temporary
        # folders and go with them), so a rerun redoes exactly those.
        with contextlib.suppress(Exception):
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0) if pending else ([], [])
            for ref in done:
                with contextlib.suppress(Exception):
                    take(ref)
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
        raise
