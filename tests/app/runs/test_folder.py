"""Folder replay on worker processes and on Ray: the same rows as one process, resumable, a bad video one line."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from app.runs.folder import MANIFEST_NAME, complete_result, run_folder, threads_per_worker
from app.pipeline import PipelineConfig
from app.timeline.files import journal_path_for

pytestmark = pytest.mark.data

SHORT = ("no_face.mp4", "single_face.mp4")  # 95 + 72 frames: the shortest shared videos


@pytest.fixture(scope="module")
def folder(videos, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("in")
    for name in SHORT:
        shutil.copy(videos / name, d / name)
    data = (videos / "single_face.mp4").read_bytes()
    (d / "corrupt.mp4").write_bytes(data[:20000])  # the header without its frames: does not decode
    return d


@pytest.fixture(scope="module")
def sequential(folder, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("out1")
    return out, run_folder(folder, [out], PipelineConfig(), workers=1, progress=False)


def csv_texts(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(out.glob("*.csv"))}


def test_one_worker_exports_every_good_video_and_reports_the_corrupt_one(sequential):
    out, run = sequential
    assert {r.source.name: r.status for r in run.results} == {
        "corrupt.mp4": "failed", "no_face.mp4": "done", "single_face.mp4": "done"}
    failed = next(r for r in run.results if r.status == "failed")
    assert "corrupt.mp4" in failed.error and "\n" not in failed.error
    assert set(csv_texts(out)) == {"no_face.csv", "single_face.csv"}
    assert len(csv_texts(out)["single_face.csv"].splitlines()) == 1 + 72
    assert (out / MANIFEST_NAME).is_file()


def test_two_workers_give_the_same_rows_and_a_rerun_skips_everything(folder, sequential, tmp_path):
    out1, _ = sequential
    run = run_folder(folder, [tmp_path], PipelineConfig(), workers=2, progress=False)
    assert sorted(r.source.name for r in run.results if r.status == "done") == list(SHORT)
    assert [r.source.name for r in run.results if r.status == "failed"] == ["corrupt.mp4"]
    assert csv_texts(tmp_path) == csv_texts(out1)  # byte for byte
    again = run_folder(folder, [tmp_path], PipelineConfig(), workers=2, progress=False)
    assert sorted(r.source.name for r in again.skipped) == list(SHORT)
    assert [r.source.name for r in again.results] == ["corrupt.mp4"]  # failures are retried, and fail again
    assert {r.source.name: r.summary["n_rows"] for r in again.skipped} == {"no_face.mp4": 0, "single_face.mp4": 72}


def test_a_partial_export_is_redone_and_other_settings_are_not_complete(folder, sequential, tmp_path):
    out1, _ = sequential
    for p in out1.iterdir():
        shutil.copy(p, tmp_path / p.name)
    journal = journal_path_for(tmp_path / "single_face.csv")
    journal.write_text("time_s,frame_index\n0.0,0\n")  # what a killed run leaves (nobody holds its lock)
    (tmp_path / "single_face.csv").write_text("cut\n")
    run = run_folder(folder, [tmp_path], PipelineConfig(), workers=1, progress=False)
    assert [r.source.name for r in run.skipped] == ["no_face.mp4"]
    assert [r.source.name for r in run.results if r.status == "done"] == ["single_face.mp4"]
    assert not journal.exists()
    assert csv_texts(tmp_path) == csv_texts(out1)
    video, targets = folder / "no_face.mp4", [tmp_path / "no_face.csv"]
    assert complete_result(video, targets, PipelineConfig()) is not None
    assert complete_result(video, targets, PipelineConfig(max_faces=1)) is None  # other settings: redone
    assert complete_result(video, targets, PipelineConfig(threads=1)) is not None  # threads do not change rows


def test_threads_per_worker_never_oversubscribes():
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(4, cores=2) == 1


def test_ray_local_gives_the_same_rows(folder, sequential, tmp_path):
    ray = pytest.importorskip("ray")
    out1, _ = sequential
    one = tmp_path / "in"
    one.mkdir()
    shutil.copy(folder / "single_face.mp4", one / "single_face.mp4")
    (one / "corrupt.mp4").write_bytes((folder / "corrupt.mp4").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    try:
        run = run_folder(one, [out], PipelineConfig(), workers=2, ray="local", progress=False)
    finally:
        ray.shutdown()
    assert {r.source.name: r.status for r in run.results} == {"corrupt.mp4": "failed", "single_face.mp4": "done"}
    assert csv_texts(out) == {"single_face.csv": csv_texts(out1)["single_face.csv"]}
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_the_cli_rerun_skips_the_complete_videos_and_says_so(folder, sequential):
    """main.py on a folder whose exports are complete: nothing is recomputed (no model is loaded for it), the
    summary says which videos were skipped, and the corrupt file is one failed line again."""
    import subprocess
    import sys

    from app.paths import ROOT

    out1, _ = sequential
    before = {p.name: p.stat().st_mtime_ns for p in out1.glob("*.csv")}
    proc = subprocess.run([sys.executable, "main.py", "--no-window", "--quiet", "--video", str(folder), "--export",
                           str(out1), "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # the corrupt file still fails
    lines = proc.stdout.splitlines()
    assert "skipped (2, exports already complete): no_face.mp4, single_face.mp4" in lines
    assert "done (0): -" in lines
    assert [x for x in lines if x.startswith("failed (1): corrupt.mp4 (")]
    assert {p.name: p.stat().st_mtime_ns for p in out1.glob("*.csv")} == before  # not rewritten


@pytest.mark.parametrize("how", ["SIGTERM to the driver", "SIGHUP to the driver", "Ctrl+C to the process group"])
def test_a_stop_signal_stops_every_worker_and_leaves_the_cut_videos_for_a_rerun(videos, tmp_path, how):
    """A --workers 2 run that is signalled stops the videos in progress at their next frame (their rows so far
    exported) and starts no other; the manifest lists only complete videos, so a rerun redoes the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import pandas as pd

    from app.paths import ROOT

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):  # 472 frames each: the two workers are on these when the signal comes
        shutil.copy(videos / "WolfgangLanger_Pexels.mp4", src / name)
    for name in ("c.mp4", "d.mp4"):
        shutil.copy(videos / "single_face.mp4", src / name)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "main.py", "--no-window", "--quiet", "--video", str(src), "--export",
                             str(out), "--workers", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    journals = [journal_path_for(out / f"{k}.csv") for k in "ab"]

    def rows(journal: Path) -> int:
        try:
            return len(journal.read_text().splitlines()) - 1
        except OSError:
            return 0

    signum = {"SIGTERM to the driver": signal.SIGTERM, "SIGHUP to the driver": signal.SIGHUP}.get(how, signal.SIGINT)
    try:
        deadline = time.monotonic() + 300
        while not all(rows(j) > 10 for j in journals):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        if how.startswith("Ctrl+C"):
            os.killpg(proc.pid, signum)  # a terminal sends it to every process of the foreground group
        else:
            os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "interrupted" in err
    for k in "ab":  # stopped part-way, the rows so far exported, no journal left
        assert 10 <= len(pd.read_csv(out / f"{k}.csv")) < 472
    assert not (out / "c.csv").exists() and not (out / "d.csv").exists()  # never started
    assert not [p.name for p in out.iterdir() if ".partial" in p.name or p.name.endswith(".tmp")]
    for k in "abcd":  # nothing counts as complete: a rerun redoes all four
        assert complete_result(src / f"{k}.mp4", [out / f"{k}.csv"], PipelineConfig()) is None


def test_lsl_streams_every_video_of_a_folder_and_refuses_workers(folder, sequential, tmp_path):
    from app.study.lsl import LslStreams, LslUnavailable, load_pylsl

    try:
        pylsl = load_pylsl()
    except LslUnavailable as e:
        pytest.skip(str(e))
    with pytest.raises(ValueError, match="cannot go with workers"):
        run_folder(folder, [tmp_path], PipelineConfig(), workers=2, progress=False, lsl=object())
    with LslStreams(source_id=f"fanlive-folder-{uuid.uuid4().hex[:8]}") as streams:
        found = pylsl.resolve_byprop("source_id", f"{streams.source_id}-expressions", timeout=10)
        inlet = pylsl.StreamInlet(found[0], max_buflen=60)
        inlet.open_stream(timeout=10)
        run = run_folder(folder, [tmp_path], PipelineConfig(), workers=1, progress=False, lsl=streams, resume=False)
        samples = []
        while (chunk := inlet.pull_chunk(timeout=2.0)[0]):
            samples += chunk
    assert {r.source.name: r.status for r in run.results}["single_face.mp4"] == "done"
    assert csv_texts(tmp_path) == csv_texts(sequential[0])  # the same rows as without a stream
    assert len(samples) == 72  # single_face's rows (no_face has none)
