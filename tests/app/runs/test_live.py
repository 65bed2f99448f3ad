"""Headless live recording (app/runs/live.py through `python main.py --camera SOURCE --no-window`) on real streams: ffmpeg
sends a shared clip in real time to a loopback UDP port (app/tools/loopback.py) and the shipped model reads it. Timing is
never asserted: the policy is (newest frame wins, drops counted, monotonic time, gaps recorded, exports intact)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from app.runs.live import LatencyStats, LiveConfig
from app.paths import ROOT
from app.timeline.formats import read_session

START_TIMEOUT_S = 180  # model loading on a busy 2-core machine


def test_latency_percentiles_match_numpy_within_a_bin():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.gamma(4.0, 5.0, 5000), [12_345.0]])  # one past the histogram's range
    stats = LatencyStats()
    for v in values:
        stats.push(v)
    stats.push(None)  # a file's frame: no latency
    assert stats.n == len(values) and stats.max_ms == pytest.approx(12_345.0)
    for q in (50, 95, 99):
        assert stats.percentile(q) == pytest.approx(np.percentile(values, q, method="higher"), abs=LatencyStats.BIN_MS)
    assert stats.percentile(100) == pytest.approx(12_345.0)
    assert LatencyStats().to_json() == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}


def test_live_config_checks_its_values():
    assert LiveConfig().reconnect_s is None  # not given: app.capture's default applies
    with pytest.raises(ValueError, match="duration"):
        LiveConfig(duration_s=0)
    with pytest.raises(ValueError, match="reconnect"):
        LiveConfig(reconnect_s=-1)


class LiveRun:
    """`python main.py --camera URL --no-window ...` in a child process, its stderr read line by line as it comes."""

    def __init__(self, url: str, export, *args: str):
        self.lines: list[str] = []
        self.out: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "main.py", "--camera", url, "--no-window", "--export",
                                      str(export), *args], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        # one reader per pipe, the only ones (communicate() would race them for the same bytes)
        self._readers = [threading.Thread(target=self._read, args=(pipe, into), daemon=True)
                         for pipe, into in ((self.proc.stderr, self.lines), (self.proc.stdout, self.out))]
        for r in self._readers:
            r.start()

    @staticmethod
    def _read(pipe, into: list[str]) -> None:
        for line in pipe:
            into.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None or any(text in line for line in self.lines), self.stderr()
            assert time.monotonic() < deadline, f"no {text!r} in {timeout} s: {self.stderr()}"
            time.sleep(0.05)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Wait for the exit; (exit code, stdout). Every line either pipe had is read by then."""
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for r in self._readers:
            r.join(10)
        return self.proc.returncode, "\n".join(self.out)

    def stderr(self) -> str:
        return "\n".join(self.lines[-30:])


@pytest.fixture
def live_run():
    runs = []

    def start(*args, **kwargs) -> LiveRun:
        runs.append(LiveRun(*args, **kwargs))
        return runs[-1]

    yield start
    for r in runs:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def _live_block(path) -> dict:
    return json.loads(path.read_text())["metadata"]["extra"]["live"]


def _check_live_policy(df: pd.DataFrame, live: dict) -> None:
    """Rows of a live session (exported with --all-frames): monotonic time, one row per processed frame, the frames
    not processed are the ones counted as dropped."""
    frames = df.drop_duplicates("frame_index")
    assert frames["frame_index"].is_monotonic_increasing and frames["frame_index"].is_unique
    assert frames["time_s"].is_monotonic_increasing and frames["time_s"].diff().dropna().gt(0).all()
    assert live["frames_received"] == live["frames_processed"] + live["frames_dropped"]
    assert live["frames_processed"] == len(frames) == live["latency_ms"]["n"]
    skipped = int(frames["frame_index"].max()) + 1 - len(frames)  # indices never processed before the last one
    assert 0 <= skipped <= live["frames_dropped"]
    assert df["latency_ms"].notna().all() and (df["latency_ms"] >= 0).all()


def _iou(a, b) -> np.ndarray:
    x0, y0 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x1, y1 = np.minimum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@pytest.mark.data
def test_a_1x_stream_is_recorded_live_and_reads_like_the_file_replay(videos, loopback, live_run, tmp_path):
    """Three passes of single_face.mp4 streamed at 1x; the live session's faces and labels against the headless
    replay of the same three passes (--repeat 3), on the frames both saw."""
    clip = videos / "single_face.mp4"
    stream = loopback(clip, start=False, loops=2)
    out = tmp_path / "live.csv"
    run = live_run(stream.url, out, "--export", str(tmp_path / "live.json"), "--all-frames", "--reconnect", "0",
                   "--duration", "60")
    run.wait_for("opening udp://127.0.0.1")
    stream.start()  # the app listens first, so it sees the stream from its first frame
    code, stdout = run.finish()
    assert code == 0, run.stderr()
    assert "the source ended" in run.stderr()  # the stream's end ends the session (--reconnect 0)
    df = pd.read_csv(out)
    live = _live_block(tmp_path / "live.json")
    assert live["stop"] == "source_ended" and len(df) > 60
    _check_live_policy(df, live)

    replay = tmp_path / "replay.csv"
    proc = subprocess.run([sys.executable, "main.py", "--video", str(clip), "--repeat", "3", "--export", str(replay),
                           "--no-window", "--quiet", "--all-frames"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    ref = pd.read_csv(replay)
    # The live frame k is the clip's frame k + d (d: frames the stream's opening took, usually 1): the offset whose
    # face boxes agree best, among the first few
    boxes = ["x0", "y0", "x1", "y1"]

    def agreement(d: int):
        both = df.merge(ref.assign(frame_index=ref.frame_index - d), on="frame_index", suffixes=("", "_ref"))
        both = both[both.face_found.eq(1) & both.face_found_ref.eq(1)]
        iou = _iou(both[boxes].to_numpy(float), both[[b + "_ref" for b in boxes]].to_numpy(float))
        return float(np.mean(iou)) if len(both) else 0.0, both

    d = max(range(0, 6), key=lambda k: agreement(k)[0])
    mean_iou, both = agreement(d)
    assert mean_iou > 0.8 and len(both) > 60
    seen = df[df.frame_index.isin(ref.frame_index - d)]
    faces_live = seen.groupby("frame_index").face_found.sum()
    faces_ref = ref.assign(frame_index=ref.frame_index - d).groupby("frame_index").face_found.sum()
    assert (faces_live == faces_ref.reindex(faces_live.index)).all()  # the same face count on every frame both saw
    assert (both["label"] == both["label_ref"]).mean() >= 0.9


@pytest.mark.data
def test_a_stream_restarted_within_the_reconnect_window_is_one_session_with_a_gap(videos, loopback, live_run,
                                                                                  tmp_path):
    stream = loopback(videos / "single_face.mp4", start=False, loops=1)  # 4.8 s
    out = tmp_path / "s.csv"
    run = live_run(stream.url, out, "--export", str(tmp_path / "s.json"), "--all-frames", "--reconnect", "6",
                   "--duration", "60")
    run.wait_for("opening udp://127.0.0.1")
    stream.start()
    stream.wait(30)
    run.wait_for("reconnecting for up to 6 s", timeout=30)
    stream.start()  # back within the window: the same session goes on; its end then ends the session (6 s later)
    run.wait_for("is back after a gap", timeout=30)
    code, stdout = run.finish()
    assert code == 0, run.stderr()
    # round_trip: the gap's times are rows' own time_s, compared exactly (pandas' fast parser may be 1 ulp off)
    df = pd.read_csv(out, float_precision="round_trip")
    live = _live_block(tmp_path / "s.json")
    _check_live_policy(df, live)
    first, last = live["gaps"]
    assert first["end_s"] is not None and first["duration_s"] > 2.0 and last["end_s"] is None
    assert (df.time_s <= first["start_s"]).sum() > 20 and (df.time_s >= first["end_s"]).sum() > 20
    assert not ((df.time_s > first["start_s"]) & (df.time_s < first["end_s"])).any()  # no rows in the gap
    events = pd.read_csv(tmp_path / "s_events.csv", float_precision="round_trip")
    assert events.label.tolist() == ["source_gap", "source_gap"]
    assert not (tmp_path / "s_epochs.csv").exists()  # a gap is an event, not a stimulus
    assert events.time_s.tolist() == pytest.approx([first["start_s"], last["start_s"]])
    doc = json.loads((tmp_path / "s.json").read_text())
    assert [e["label"] for e in doc["events"]] == ["source_gap", "source_gap"]
    assert read_session(tmp_path / "s.json")[1] == read_session(out)[1]
    assert "gap at" in stdout and not list(tmp_path.glob("*.partial*"))


@pytest.mark.data
def test_a_stream_gone_for_good_ends_the_session_by_itself_with_its_exports(videos, loopback, live_run, tmp_path):
    stream = loopback(videos / "single_face.mp4", start=False)  # 2.4 s, then nothing
    out = tmp_path / "s.csv"
    run = live_run(stream.url, out, "--export", str(tmp_path / "s.json"), "--reconnect", "2")  # no duration
    run.wait_for("opening udp://127.0.0.1")
    stream.start()
    code, stdout = run.finish()
    assert code == 0, run.stderr()
    assert "the source ended: udp://127.0.0.1" in run.stderr() and "did not come back within 2 s" in run.stderr()
    rows = read_session(out)[1]
    assert len(rows) > 20 and read_session(tmp_path / "s.json")[1] == rows
    live = _live_block(tmp_path / "s.json")
    assert live["stop"] == "source_ended" and live["gaps"][0]["end_s"] is None
    assert not list(tmp_path.glob("*.partial*")) and not list(tmp_path.glob("*.tmp"))


@pytest.mark.data
def test_sigterm_stops_a_live_recording_with_exit_143_and_its_rows_exported(videos, loopback, live_run, tmp_path):
    stream = loopback(videos / "single_face.mp4", start=False, loops=-1)  # forever
    out = tmp_path / "s.csv"
    run = live_run(stream.url, out, "--export", str(tmp_path / "s.json"))
    run.wait_for("opening udp://127.0.0.1")
    stream.start()
    journal = tmp_path / "s.csv.partial.csv"
    deadline = time.monotonic() + 60
    while not (journal.is_file() and len(journal.read_text().splitlines()) > 21):
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stderr()
        time.sleep(0.1)
    run.proc.send_signal(signal.SIGTERM)
    code, _ = run.finish()
    assert code == 128 + signal.SIGTERM, run.stderr()
    rows = read_session(out)[1]
    assert len(rows) >= 20 and read_session(tmp_path / "s.json")[1] == rows
    assert _live_block(tmp_path / "s.json")["stop"] == "interrupted"
    assert not list(tmp_path.glob("*.partial*"))


def test_an_unreachable_stream_is_one_error_line_and_writes_nothing(tmp_path):
    from app.tools.loopback import free_udp_port

    out = tmp_path / "s.csv"
    proc = subprocess.run([sys.executable, "main.py", "--camera", f"rtsp://admin:s3cret@127.0.0.1:{free_udp_port()}/x",
                           "--no-window", "--export", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=START_TIMEOUT_S)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert "rtsp://admin:***@127.0.0.1" in errors[0] and "s3cret" not in proc.stderr + proc.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--camera", "0", "--no-window"], "needs --export"),
    (["--camera", "udp://127.0.0.1:5000", "--video", "x.mp4", "--no-window", "--export", "o.csv"], "--video"),
    (["--video", "x.mp4", "--no-window", "--duration", "5"], "--duration is for a live source"),
    (["--camera", "webcam", "--no-window"], "must be a camera index"),
    (["--camera", "0", "--no-window", "--export", "o.csv", "--reconnect", "-1"], "must be >= 0 seconds"),
])
def test_live_command_lines_that_cannot_work_are_refused(args, message):
    proc = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
