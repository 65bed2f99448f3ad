"""The headless replay CLI end to end on the shared real videos, and every bad input it must survive."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app.paths import ROOT

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A seeded random-init model in a temp folder: the CLI path is under test here, not accuracy."""
    from models.release.export import export_random_model

    return export_random_model(tmp_path_factory.mktemp("weights"), window_length=8)


def run_cli(*args, weights: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "main.py", "--no-window", "--quiet", *map(str, args)]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def wolfgang(videos, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("wolfgang")
    markers = out / "stimuli.csv"  # a stimulus log: the study files come from the same run
    markers.write_text("time_s,label\n2.0,stimulus A\n9.5,stimulus B\n19.0,stimulus C\n")
    proc = run_cli("--video", videos / "WolfgangLanger_Pexels.mp4", "--export", out / "w.csv",
                   "--export", out / "w.json", "--markers", markers, "--summary-every", "1", weights=model)
    assert proc.returncode == 0, proc.stderr
    return proc, pd.read_csv(out / "w.csv"), json.loads((out / "w.json").read_text())


def test_wolfgang_study_files_load_and_epochs_are_the_rows_means(wolfgang):
    """The replay with --markers and --summary-every 1 wrote events, epochs and summary files."""
    proc, df, doc = wolfgang
    wrote = {Path(line.split("wrote ", 1)[1]).name: Path(line.split("wrote ", 1)[1])
             for line in proc.stdout.splitlines() if "wrote " in line}
    events, epochs, summary = (pd.read_csv(wrote[f"w_{k}.csv"]) for k in ("events", "epochs", "summary"))
    assert list(events.label) == ["stimulus A", "stimulus B", "stimulus C"]
    assert [e["label"] for e in doc["events"]] == list(events.label)
    probs = [f"p_{e}" for e in doc["labels"]]
    for _, e in epochs.iterrows():  # default epoch: -1 s to +3 s around each marker
        w = df[(df.face_id == e.face_id) & (df.time_s >= e.marker_time_s - 1) & (df.time_s < e.marker_time_s + 3)]
        assert e.n_frames == len(w) > 0
        assert e[probs].to_numpy(float) == pytest.approx(w[probs].mean().to_numpy(), abs=1e-12)
    assert epochs.n_frames.tolist()[:2] == [96, 96] and epochs.coverage.tolist()[:2] == [1.0, 1.0]
    assert len(summary) == 20 and summary.n_frames.sum() == len(df)  # 19.64 s in 1 s intervals, one face


def test_wolfgang_one_face_id_and_a_row_per_frame(wolfgang):
    proc, df, doc = wolfgang
    assert df["face_id"].nunique() == 1
    assert df["frame_index"].is_unique
    # 472 frames, the face is visible in all of them; allow a few missed detections
    assert len(df) >= 0.95 * 472
    assert df["time_s"].is_monotonic_increasing
    probs = df[[c for c in df.columns if c.startswith("p_")]]
    assert probs.shape[1] == 7 and (probs.sum(1) - 1).abs().max() < 1e-3
    assert doc["schema"] == "fan-live-session" and doc["version"] == 3
    # every row has its signals, all finite, in range
    signals = df[["reliability", "yaw", "pitch", "roll", *[c for c in df.columns if c.startswith("bs_")]]]
    assert signals.shape[1] == 4 + 52 and signals.notna().all().all() and (df["face_found"] == 1).all()
    assert df["reliability"].between(0, 1).all() and df[[c for c in df.columns if c.startswith("bs_")]].stack(
    ).between(0, 1).all() and df[["yaw", "pitch", "roll"]].abs().max().max() < 90
    assert doc["metadata"]["providers"] == ["CPUExecutionProvider"]
    assert len(doc["rows"]) == len(df)
    assert "wrote" in proc.stdout


def test_face_leaves_and_enters(videos, model, tmp_path):
    leaves = run_cli("--video", videos / "face_noface.mov", "--export", tmp_path / "l.csv", "--all-frames",
                     weights=model)
    enters = run_cli("--video", videos / "noface_face.mov", "--export", tmp_path / "e.csv", weights=model)
    assert leaves.returncode == 0 and enters.returncode == 0, leaves.stderr + enters.stderr
    n_leave = _frame_count(videos / "face_noface.mov")
    n_enter = _frame_count(videos / "noface_face.mov")
    every = pd.read_csv(tmp_path / "l.csv")
    assert every["frame_index"].tolist() == list(range(n_leave))  # --all-frames: one row per frame, face or not
    empty = every[every["face_found"] == 0]
    assert len(empty) > 20 and empty["face_id"].isna().all() and empty[["label", "p_happiness", "reliability",
                                                                        "bs_jawOpen"]].isna().all().all()
    assert every.loc[every["face_found"] == 1, ["reliability", "yaw", "bs_jawOpen"]].notna().all().all()
    left = every.loc[every["face_found"] == 1, "frame_index"]
    entered = pd.read_csv(tmp_path / "e.csv")["frame_index"]
    assert left.min() < 5 and left.max() < n_leave - 20      # rows stop when the face leaves
    assert entered.min() > 20 and entered.max() >= n_enter - 3  # rows start when it enters


def test_frames_and_coverage_mean_the_same_in_the_console_the_json_and_the_api(videos, model, tmp_path):
    """face_noface.mov (169 frames, a face on the first 72): the JSON said n_frames 72 and coverage 1.0 while the
    console said 43% and the API 169 frames. One definition now: every processed frame, face or not."""
    from app.api import analyze_video
    from app.pipeline import PipelineConfig

    video = videos / "face_noface.mov"
    proc = run_cli("--video", video, "--export", tmp_path / "f.csv", "--export", tmp_path / "f.json", weights=model)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "f.json").read_text())["summary"]
    n = _frame_count(video)
    assert f"face_noface.mov: {n} frames" in proc.stdout.splitlines()
    assert summary["n_frames"] == n and summary["n_rows"] == len(pd.read_csv(tmp_path / "f.csv")) < n
    coverage = summary["faces"]["1"]["coverage"]
    assert coverage < summary["n_rows"] / n + 1e-9 and f"reliable on {coverage:.0%} of the frames" in proc.stdout
    df = analyze_video(video, PipelineConfig(weights=model))
    assert df.attrs["frames"] == n and df.attrs["summary"]["n_frames"] == n
    assert df.attrs["summary"]["faces"][1] == summary["faces"]["1"]


def _frame_count(path: Path) -> int:
    from app.capture.sources import open_source

    with open_source(path) as src:
        return sum(1 for _ in src)


def test_no_face_gives_zero_rows_and_says_so(videos, model, tmp_path):
    proc = run_cli("--video", videos / "no_face.mp4", "--export", tmp_path / "n.csv", weights=model)
    assert proc.returncode == 0, proc.stderr
    assert "no face found" in proc.stdout
    assert len(pd.read_csv(tmp_path / "n.csv")) == 0


def test_folder_of_videos(videos, model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("single_face.mp4", "no_face.mp4"):
        shutil.copy(videos / name, folder / name)
    (folder / "more").mkdir()  # a subfolder is not searched, and that is said
    shutil.copy(videos / "single_face.mp4", folder / "more" / "inner.mp4")
    proc = run_cli("--video", folder, "--export", tmp_path / "out", weights=model)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "out" / "single_face.csv")) > 50
    assert len(pd.read_csv(tmp_path / "out" / "no_face.csv")) == 0
    assert "done (2): no_face.mp4, single_face.mp4" in proc.stdout.splitlines()
    assert f"warning: 1 subfolder of {folder} not searched (only the videos directly in it are replayed): more" in \
        proc.stderr.splitlines()


def test_folder_replay_goes_on_after_a_bad_file_and_ends_with_a_summary(videos, model, tmp_path):
    """A bad file does not stop a folder replay: the later videos are processed."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_broken.mp4").write_text("this is not a video\n" * 50)
    data = (videos / "WolfgangLanger_Pexels.mp4").read_bytes()
    (folder / "b_cut.mp4").write_bytes(data[: len(data) // 10])  # index first: ~41 of 472 frames decode
    shutil.copy(videos / "single_face.mp4", folder / "c_good.mp4")
    proc = run_cli("--video", folder, "--export", tmp_path / "out", weights=model)
    assert proc.returncode == 1, proc.stderr  # a video failed
    assert "Traceback" not in proc.stderr
    good = pd.read_csv(tmp_path / "out" / "c_good.csv")
    assert len(good) == 72 and set(good["face_id"]) == {1}  # processed after the failure; ids from 1 per file
    assert 0 < len(pd.read_csv(tmp_path / "out" / "b_cut.csv")) < 100
    assert not (tmp_path / "out" / "a_broken.csv").exists()
    summary = proc.stdout.splitlines()[-3:]
    assert summary[0] == "done (1): c_good.mp4"
    assert summary[1].startswith("damaged (1): b_cut.mp4 (decoded ")
    assert summary[2].startswith("failed (1): a_broken.mp4 (") and "a_broken.mp4" in summary[2][20:]


def test_a_folder_with_only_a_damaged_file_exits_3(videos, model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    data = (videos / "WolfgangLanger_Pexels.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 10])
    proc = run_cli("--video", folder, "--export", tmp_path / "out", weights=model)
    assert proc.returncode == 3, proc.stderr


def test_missing_zero_byte_and_text_files(model, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    for path, word in ((tmp_path / "missing.mp4", "not found"), (empty, "empty"), (text, "")):
        err = one_line_error(run_cli("--video", path, "--export", tmp_path / "x.csv", weights=model))
        assert str(path.name) in err and word in err
        assert not (tmp_path / "x.csv").exists()


def test_truncated_mp4_exports_what_was_decoded_and_says_it_is_damaged(videos, model, tmp_path):
    """A truncated file is not a success: a warning and exit code 3."""
    data = (videos / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])  # its index sits at the start: the first ~180 frames decode
    proc = run_cli("--video", cut, "--export", tmp_path / "cut.csv", weights=model)
    assert proc.returncode == 3, proc.stderr  # completed, input damaged (docs/export-format.md)
    df = pd.read_csv(tmp_path / "cut.csv")
    assert 100 < len(df) < 472
    damaged = [line for line in proc.stderr.splitlines() if "cut.mp4" in line]
    assert len(damaged) == 1 and damaged[0].startswith("warning:") and "of the 472 frames" in damaged[0]
    decoded = int(damaged[0].split("decoded ")[1].split()[0])
    assert decoded == df["frame_index"].max() + 1
    # MediaPipe's and TensorFlow Lite's own log lines (absl "W0000 ...", "INFO: Created TensorFlow Lite ...") are
    # not printed around ours
    assert all(line.startswith("warning:") for line in proc.stderr.splitlines()), proc.stderr


def test_unwritable_export_path(videos, model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = one_line_error(run_cli("--video", videos / "single_face.mp4", "--export", blocker / "out.csv",
                                 weights=model))
    assert "out.csv" in err or str(blocker) in err


@pytest.mark.parametrize("option, value", [
    ("--max-faces", "0"), ("--max-faces", "17"), ("--window", "0"), ("--window", "-3"), ("--camera", "-1"),
    ("--repeat", "0"), ("--window", "eight"),
])
def test_numeric_options_are_checked_before_anything_loads(videos, tmp_path, option, value):
    """An out-of-range number (--max-faces 0 would crash MediaPipe after the model load; --window 0 would silently
    mean the card's) is one error line at parse time, and nothing is written."""
    out = tmp_path / "x.csv"
    proc = run_cli("--video", videos / "single_face.mp4", "--export", out, option, value,
                   weights=tmp_path / "no_model_here.onnx")  # the model is never looked at
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [one_line_error(proc)]  # that one line and nothing else
    assert option in proc.stderr and value in proc.stderr
    assert not list(tmp_path.iterdir())  # no export, no journal


def test_paths_are_checked_before_the_model_loads(videos, tmp_path):
    """A wrong video or export path is reported, not the (here missing) model it would have loaded next."""
    missing_model = tmp_path / "no_model_here.onnx"
    err = one_line_error(run_cli("--video", tmp_path / "typo.mp4", "--export", tmp_path / "x.csv",
                                 weights=missing_model))
    assert "typo.mp4" in err and "no_model_here" not in err
    err = one_line_error(run_cli("--video", videos / "single_face.mp4", "--export", tmp_path / "no_dir" / "x.csv",
                                 weights=missing_model))
    assert "no_dir" in err and "no_model_here" not in err
    err = one_line_error(run_cli("--video", videos / "single_face.mp4", "--export", tmp_path / "x.txt",
                                 weights=missing_model))
    assert "x.txt" in err


def test_an_existing_folder_as_the_export_of_one_video_says_it_is_a_folder(videos, tmp_path):
    """It said "unsupported file type '(none)'"."""
    err = one_line_error(run_cli("--video", videos / "single_face.mp4", "--export", tmp_path,
                                 weights=tmp_path / "no_model_here.onnx"))
    assert err == (f"error: cannot export to {tmp_path}: it is a folder (give a .csv or .json file name; a folder is "
                   "for a folder of videos)")


def test_markers_after_the_end_of_the_video_are_a_warning(videos, model, tmp_path):
    markers = tmp_path / "stimuli.csv"
    markers.write_text("time_s,label\n1.0,early\n5.0,late\n")  # single_face.mp4 ends at 2.37 s
    proc = run_cli("--video", videos / "single_face.mp4", "--export", tmp_path / "s.csv", "--markers", markers,
                   weights=model)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "marker" in line] == [
        "warning: single_face.mp4: 1 marker after the end of the video (its last frame is at 2.37 s): 'late' at 5 s; "
        "their epochs have no rows"]
    assert pd.read_csv(tmp_path / "s_epochs.csv").label.tolist() == ["early", "late"]


def test_sigterm_writes_the_final_export_like_ctrl_c(videos, model, tmp_path):
    """SIGTERM writes the exports like SIGINT, not only the journal."""
    import signal
    import time

    out_csv, out_json = tmp_path / "w.csv", tmp_path / "w.json"
    cmd = [sys.executable, "main.py", "--no-window", "--quiet", "--video", str(videos / "WolfgangLanger_Pexels.mp4"),
           "--export", str(out_csv), "--export", str(out_json), "--weights", str(model)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "w.csv.partial.csv"
    try:
        deadline = time.monotonic() + 120
        while not (journal.exists() and len(journal.read_text().splitlines()) > 20):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted" in err and "Traceback" not in err
    rows = pd.read_csv(out_csv)
    assert 20 <= len(rows) < 472 and len(json.loads(out_json.read_text())["rows"]) == len(rows)
    assert not journal.exists() and not list(tmp_path.glob("*.tmp"))


def test_a_second_run_to_the_same_export_is_refused_before_its_model_loads(videos, model, tmp_path):
    """Two headless runs to one c.csv: the second took the first's live journal away (the first then failed with
    "cannot read c.csv.partial.csv" and c.csv held the second's rows). Now the second says so in one line, exit 1,
    before it loads a model (here a missing one), and the first finishes its own export."""
    import signal
    import time

    out = tmp_path / "c.csv"
    first = subprocess.Popen([sys.executable, "main.py", "--no-window", "--quiet", "--video",
                              str(videos / "WolfgangLanger_Pexels.mp4"), "--export", str(out), "--weights", str(model)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "c.csv.partial.csv"
    try:
        deadline = time.monotonic() + 120
        while not (journal.exists() and len(journal.read_text().splitlines()) > 5):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        second = run_cli("--video", videos / "no_face.mp4", "--export", out, weights=tmp_path / "no_model_here.onnx")
        assert second.returncode == 1
        assert one_line_error(second) == f"error: {out} is being written by another run, pid {first.pid}"
        assert second.stderr.splitlines() == [one_line_error(second)]
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGTERM and "error" not in err, err
    assert len(pd.read_csv(out)) > 5  # the first run's rows (no_face.mp4 has none)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv"]


@pytest.fixture
def signal_handlers_restored():
    """main.main() installs its stop handlers in this (the test's) process: put pytest's back afterwards."""
    import signal

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_stop_signal_during_the_final_writes_lets_them_finish(videos, model, tmp_path, monkeypatch,
                                                               signal_handlers_restored):
    """A SIGTERM that came while the study files were being written cut the writes short and left the journal
    and its .study.jsonl behind, though the docs say a SIGTERM removes them. The final writes now finish first."""
    import os
    import signal

    from app.runs import cli
    from app.study.extension import Study

    real = Study.write_sidecars

    def write_sidecars(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, delivered while the final files are written
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Study, "write_sidecars", write_sidecars)
    code = cli.main(["--no-window", "--quiet", "--video", str(videos / "single_face.mp4"), "--export",
                     str(tmp_path / "d.csv"), "--export", str(tmp_path / "d.json"), "--summary-every", "1",
                     "--weights", str(model)])
    assert code == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "d.json", "d_summary.csv"]
    assert len(pd.read_csv(tmp_path / "d.csv")) == 72 and len(pd.read_csv(tmp_path / "d_summary.csv")) == 3


@pytest.mark.parametrize("option, value, message", [
    ("--summary-every", "1e-9", "at least 0.01 s, got '1e-9'"),
    ("--summary-every", "0", "at least 0.01 s, got '0'"),
    ("--epoch", "-1,-1", "got '-1,-1'"),
    ("--baseline", "file:VIDEO", "single_face.mp4 is not a FAN Live session export (a .csv or .json file, not .mp4)"),
    ("--baseline", "file:MARKERS", "markers.csv is not a FAN Live session export (missing columns frame_index, "
                                   "face_id, x0, y0 and 12 more)"),
    ("--baseline", "file:FOLDER", "is a folder, not a FAN Live session export"),
])
def test_study_options_are_checked_before_the_model_loads(videos, tmp_path, option, value, message):
    """--baseline file:VIDEO failed only after the whole video, leaving its journal; a markers file as the baseline
    was silently ignored; --summary-every 1e-9 never finished; --epoch=-1,-1 echoed 'got 1,-1'. Each is now one
    line, exit 2, before the model (here a missing one) is looked at."""
    markers = tmp_path / "markers.csv"
    markers.write_text("time_s,label\n1.0,rest\n")
    value = value.replace("VIDEO", str(videos / "single_face.mp4")).replace("MARKERS", str(markers)).replace(
        "FOLDER", str(videos))
    out = tmp_path / "x.csv"
    proc = run_cli(f"{option}={value}", "--video", videos / "single_face.mp4", "--export", out,
                   weights=tmp_path / "no_model_here.onnx")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [one_line_error(proc)] and message in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["markers.csv"]


def test_summary_every_may_not_cut_a_video_into_too_many_intervals(videos, tmp_path):
    proc = run_cli("--video", videos / "single_face.mp4", "--export", tmp_path / "x.csv", "--summary-every", "0.01",
                   "--repeat", "5000", weights=tmp_path / "no_model_here.onnx")  # 12,000 s of video
    assert proc.returncode == 2
    assert "into 1,200,000 intervals, more than 1,000,000" in one_line_error(proc)
    assert not list(tmp_path.iterdir())


def test_repeat_replays_one_file_as_one_long_session(videos, model, tmp_path):
    """--repeat N: the soak test that measures memory over a long replay (README); indices and times go on."""
    proc = run_cli("--video", videos / "single_face.mp4", "--export", tmp_path / "r.csv", "--repeat", "2",
                   weights=model)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(tmp_path / "r.csv")
    assert df["frame_index"].tolist() == list(range(144)) and df["time_s"].is_monotonic_increasing
    assert [line.split(" frames")[0] for line in proc.stderr.splitlines() if line.startswith("pass")] == \
        ["pass 1/2: 72", "pass 2/2: 144"]


def test_the_soak_passes_are_lines_of_their_own_beside_the_progress_bar(videos, model, tmp_path):
    """--repeat's per-pass memory lines were printed into the progress bar's line."""
    cmd = [sys.executable, "main.py", "--no-window", "--video", str(videos / "single_face.mp4"), "--export",
           str(tmp_path / "r.csv"), "--repeat", "2", "--weights", str(model)]  # with the progress bar
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    passes = [line for line in proc.stderr.splitlines() if "pass " in line]
    assert len(passes) == 2 and ("frame/s" in proc.stderr or "s/frame" in proc.stderr)  # the bar was drawn
    for k, line in enumerate(passes, start=1):
        assert line.split("\r")[-1].startswith(f"pass {k}/2: {72 * k} frames"), repr(line)


def test_disk_full_mid_run_is_one_error_line_and_every_writable_target_is_written(videos, model, tmp_path,
                                                                                 monkeypatch, capsys):
    """The journal's disk fills up part-way: one error line (no traceback), the export on a healthy disk written,
    the journal kept."""
    from app.runs import cli
    from app.timeline import recorder as session

    full, healthy = tmp_path / "full", tmp_path / "healthy"
    full.mkdir()
    healthy.mkdir()

    class FillingDisk:
        """The journal's file: its disk is full after a few frames."""
        def __init__(self, f):
            self._f, self._writes = f, 0

        def write(self, text):
            self._writes += 1
            if self._writes > 30:
                raise OSError(28, "No space left on device")
            return self._f.write(text)

        def flush(self):
            if self._writes > 30:
                raise OSError(28, "No space left on device")
            return self._f.flush()

        def __getattr__(self, name):
            return getattr(self._f, name)

    real_init, real_atomic_write = session.SessionRecorder.__init__, session.atomic_write

    def init(self, *a, **k):
        real_init(self, *a, **k)
        self._journal = FillingDisk(self._journal)
        self._writer = session.csv.writer(self._journal, lineterminator="\n")

    def atomic_write(path, write, binary=False):
        if Path(path).parent == full:
            raise OSError(28, "No space left on device")
        return real_atomic_write(path, write, binary)

    monkeypatch.setattr(session.SessionRecorder, "__init__", init)
    monkeypatch.setattr(session, "atomic_write", atomic_write)
    code = cli.main(["--no-window", "--quiet", "--verbose", "--video", str(videos / "single_face.mp4"),
                     "--export", str(full / "s.csv"), "--export", str(healthy / "s.json"), "--weights", str(model)])
    err = capsys.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "No space left" in errors[0] and str(full / "s.csv") in errors[0] and str(healthy / "s.json") in errors[0]
    rows = json.loads((healthy / "s.json").read_text())["rows"]
    assert 10 < len(rows) < 72
    journal = full / "s.csv.partial.csv"
    assert journal.exists() and len(pd.read_csv(journal)) == len(rows)
    assert not list(tmp_path.rglob("*.tmp"))


def test_bad_weights(videos, model, tmp_path):
    video = videos / "single_face.mp4"
    # missing
    err = one_line_error(run_cli("--video", video, weights=tmp_path / "nope.onnx"))
    assert "nope" in err
    # corrupt graph (hash mismatch)
    bad = tmp_path / "bad"
    shutil.copytree(model.parent, bad)
    onnx_file = next(bad.glob("*_embedder.onnx"))
    raw = bytearray(onnx_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(raw))
    assert "corrupt" in one_line_error(run_cli("--video", video, weights=bad / model.name))
    # a card that does not match its graph
    mism = tmp_path / "mism"
    shutil.copytree(model.parent, mism)
    for card in mism.glob("*.json"):
        d = json.loads(card.read_text())
        d["preprocess"]["input_size"] = 112
        card.write_text(json.dumps(d))
    err = one_line_error(run_cli("--video", video, weights=mism / model.name))
    assert "112" in err


def test_random_weights_are_flagged(videos, model, tmp_path):
    proc = run_cli("--video", videos / "single_face.mp4", "--export", tmp_path / "s.csv", weights=model)
    assert proc.returncode == 0
    assert "random" in proc.stderr.lower()


def test_engine_import_does_not_import_qt():
    code = ("import sys, app.capture, app.faces, app.faces.track, app.recognition.recognizer, app.pipeline, app.runs.replay, "
            "app.timeline.recorder, app.tools.bench, models.train, models.evaluate, models.release.export, models.cv; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("argv, named", [
    (["--all-frames"], "--all-frames"), (["--gate", "detector"], "--gate"), (["--markers", "m.csv"], "--markers"),
    (["--epoch", "1,3"], "--epoch"), (["--summary-every", "1"], "--summary-every"),
    (["--baseline", "first:2"], "--baseline"), (["--workers", "2"], "--workers"), (["--ray", "auto"], "--ray"),
    (["--repeat", "2", "--all-frames"], "--repeat, --all-frames are"), (["--duration", "5"], "--duration")])
def test_the_window_refuses_the_options_it_would_ignore(capsys, argv, named):
    from app.runs.cli import main

    assert main(["--video", "clip.mp4", *argv]) == 2  # before any window or model
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "headless runs (--no-window)" in err


def test_attention_is_an_alias_of_head_that_may_not_disagree_with_it(capsys):
    from app.runs.cli import build_parser, main, resolve_head

    for argv, head in ((["--attention", "relation"], "fan"), (["--attention", "self", "--head", "self"], "self"),
                       (["--head", "gru"], "gru"), ([], None)):
        args = build_parser().parse_args(argv)
        assert resolve_head(args) is None and args.head == head
    assert main(["--attention", "relation", "--head", "self", "--no-window"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --attention relation means --head fan, but --head self was given")


def test_options_not_given_are_none_so_the_pipeline_default_is_written_once():
    from app.pipeline import PipelineConfig
    from app.runs.cli import build_parser
    from app.runs.headless import pipeline_config

    args = build_parser().parse_args(["--no-window"])
    assert (args.max_faces, args.device, args.precision, args.head, args.gate) == (None,) * 5
    assert pipeline_config(args) == PipelineConfig()
    assert pipeline_config(build_parser().parse_args(["--max-faces", "4", "--head", "self"])) == \
        PipelineConfig(max_faces=4, head="self")
