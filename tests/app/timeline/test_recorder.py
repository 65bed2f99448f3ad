"""The timeline recorder: exports round-trip, the journal survives a kill, bad export paths fail before recording."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.timeline import recorder as session
from app.emotions import EMOTIONS
from app.paths import ROOT
from app.timeline.rows import CSV_COLUMNS, TimelineRow
from app.timeline.files import ExportError, journal_path_for
from app.timeline.metadata import SessionMetadata
from app.timeline.recorder import SessionRecorder
from app.timeline.formats import read_session
from app.runs.recover import recover_journal


def make_metadata(**extra) -> SessionMetadata:
    return SessionMetadata(source="camera 0", model="fan-test", providers=["CPUExecutionProvider"],
                           head="relation", window_length=16, started_at="2024-05-01T12:00:00+00:00",
                           app_version="0.1.0", extra=extra)


def make_rows(n_frames: int = 40, faces: tuple[int, ...] = (1, 2), seed: int = 0) -> list[TimelineRow]:
    """Seeded, realistic rows: softmax probabilities drifting over time, label = argmax, 25 fps."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_frames):
        for fid in faces:
            logits = rng.normal(size=len(EMOTIONS)).astype(np.float32)
            logits[(i // 10 + fid) % len(EMOTIONS)] += 3.0
            p = np.exp(logits) / np.exp(logits).sum()
            k = int(p.argmax())
            rows.append(TimelineRow(time_s=i / 25, frame_index=i, face_id=fid,
                                    box=(10.5 * fid, 20.0, 110.5 * fid, 140.0), label=EMOTIONS[k],
                                    confidence=p[k], probs=tuple(p), alpha=float(rng.uniform(0.2, 0.9)),
                                    weight=float(rng.uniform(0.0, 0.2))))
    return rows


def row(fid: int, t: float, label: str) -> TimelineRow:
    probs = [0.0] * len(EMOTIONS)
    probs[EMOTIONS.index(label)] = 0.7
    probs[EMOTIONS.index(label) - 1] = 0.3
    return TimelineRow(time_s=t, frame_index=int(t * 10), face_id=fid, box=(0, 0, 10, 10), label=label,
                       confidence=0.7, probs=tuple(probs), alpha=0.5, weight=0.1)


# ------------------------------------------------------------------------------------------------ exports

def test_csv_round_trip_with_pandas(tmp_path):
    rows = make_rows()
    out = tmp_path / "out.csv"
    with SessionRecorder([out], make_metadata()) as rec:
        rec.add(rows[0])
        rec.add_many(rows[1:])
    df = pd.read_csv(out)
    assert list(df.columns) == list(CSV_COLUMNS)
    assert [c for c in df.columns if c.startswith("p_")] == [f"p_{e}" for e in EMOTIONS]
    assert len(df) == len(rows)
    assert df["frame_index"].dtype.kind == "i" and df["face_id"].dtype.kind == "i"
    assert df["label"].tolist() == [r.label for r in rows]
    probs = df[[f"p_{e}" for e in EMOTIONS]].to_numpy()
    # pandas' default fast float parser is within a few ULP of the shortest-repr text; Python's float() is exact.
    np.testing.assert_allclose(probs, np.array([r.probs for r in rows]), rtol=1e-12, atol=0)
    exact = pd.read_csv(out, float_precision="round_trip")
    np.testing.assert_array_equal(exact[[f"p_{e}" for e in EMOTIONS]].to_numpy(), np.array([r.probs for r in rows]))
    np.testing.assert_array_equal(df[["x0", "y0", "x1", "y1"]].to_numpy(), np.array([r.box for r in rows]))
    np.testing.assert_array_equal(exact["weight"].to_numpy(), [r.weight for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)

    meta, back = read_session(out)
    assert meta == {} and back == rows


def test_json_round_trip(tmp_path):
    rows = make_rows()
    out = tmp_path / "out.json"
    meta = make_metadata(camera_fps=30.0)
    with SessionRecorder([out], meta) as rec:
        rec.add_many(rows)
    doc = json.loads(out.read_text())
    assert list(doc) == ["schema", "version", "metadata", "labels", "blendshapes", "rows", "summary"]
    assert doc["schema"] == "fan-live-session" and doc["version"] == 3
    assert doc["labels"] == list(EMOTIONS)
    assert doc["metadata"] == meta.to_dict() and doc["metadata"]["extra"] == {"camera_fps": 30.0}
    assert set(doc["summary"]["faces"]) == {"1", "2"} and doc["summary"]["n_rows"] == len(rows)
    assert doc["rows"][0]["box"] == list(rows[0].box) and len(doc["rows"][0]["probs"]) == len(EMOTIONS)

    assert doc["metadata"]["attention"] == doc["metadata"]["head"]  # the field's earlier name, for older readers

    back_meta, back = read_session(out)
    assert back_meta == {k: v for k, v in meta.to_dict().items() if k != "attention"} and back == rows


def test_json_from_a_newer_app_is_refused(tmp_path):
    out = tmp_path / "s.json"
    with SessionRecorder([out], make_metadata()) as rec:
        rec.add_many(make_rows(3))
    doc = json.loads(out.read_text())
    doc["version"] = 4
    out.write_text(json.dumps(doc))
    with pytest.raises(ExportError, match="version 4"):
        read_session(out)


def test_both_exports_are_atomic_and_leave_nothing_behind(tmp_path):
    targets = [tmp_path / "s.csv", tmp_path / "s.json"]
    with SessionRecorder(targets, make_metadata()) as rec:
        rec.add_many(make_rows(5))
        assert rec.journal_path == tmp_path / "s.csv.partial.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.json"]  # no *.tmp, probe or journal
    assert not list(tmp_path.glob("*.tmp"))


def test_failed_write_keeps_previous_file_intact(tmp_path, monkeypatch):
    out = tmp_path / "s.csv"
    out.write_text("old content\n")
    rec = SessionRecorder([out], make_metadata())
    rec.add_many(make_rows(3))

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("app.timeline.recorder.os.fsync", boom)
    with pytest.raises(ExportError, match="No space left"):
        rec.close()
    assert out.read_text() == "old content\n"   # never half a file
    assert not list(tmp_path.glob("*.tmp"))
    assert rec.journal_path.exists()


# ------------------------------------------------------------------------------------------------ journal

def test_journal_holds_flushed_rows_while_recording(tmp_path):
    rows = make_rows(10)
    out = tmp_path / "live.csv"
    rec = SessionRecorder([out], make_metadata())
    journal = journal_path_for(out)
    assert journal.exists() and journal.read_text().strip() == ",".join(CSV_COLUMNS)
    rec.add_many(rows[:7])
    with open(journal) as f:  # another reader, while the recorder still holds it open
        seen = pd.read_csv(f)
    assert len(seen) == 7 and list(seen.columns) == list(CSV_COLUMNS)
    rec.add(rows[7])
    assert len(pd.read_csv(journal)) == 8
    assert not out.exists() and not rec.closed
    rec.close()
    assert rec.closed and not journal.exists() and len(pd.read_csv(out)) == 8
    assert rec.close().exports == (out,)  # idempotent: the same files
    with pytest.raises(RuntimeError, match="closed"):
        rec.add(rows[8])


def test_journal_is_fsynced_at_most_once_a_second(tmp_path, monkeypatch):
    clock = [100.0]
    synced = []
    monkeypatch.setattr("app.timeline.recorder.time.monotonic", lambda: clock[0])
    rec = SessionRecorder([tmp_path / "s.csv"], make_metadata())
    real_fsync = os.fsync
    monkeypatch.setattr("app.timeline.recorder.os.fsync", lambda fd: (synced.append(clock[0]), real_fsync(fd)))
    rows = make_rows(30, faces=(1,))
    for i, r in enumerate(rows):  # 30 frames over 2.9 s
        clock[0] = 100.0 + i * 0.1
        rec.add(r)
    assert synced == [pytest.approx(101.0), pytest.approx(102.0)]
    assert len(pd.read_csv(rec.journal_path)) == 30  # yet every row was flushed to the OS on its add
    rec.close()
    with pytest.raises(TypeError, match="TimelineRow"):
        SessionRecorder([], make_metadata()).add_many([{"label": EMOTIONS[0]}])


def test_killed_process_keeps_its_rows_and_recover_journal_makes_a_csv(tmp_path):
    """A real SIGKILL: no close(), no atexit, no finally. What add_many returned from must be in the journal."""
    out = tmp_path / "cam.json"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_recorder import make_metadata, make_rows
        from app.timeline.recorder import SessionRecorder
        rec = SessionRecorder([{str(out)!r}], make_metadata())
        rec.add_many(make_rows(25))
        print("added", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "added"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    journal = tmp_path / "cam.json.partial.csv"
    assert journal.exists() and not out.exists()
    assert len(pd.read_csv(journal)) == 50  # the journal is itself a plain CSV

    with open(journal, "a") as f:  # a crash mid-row (power cut) leaves a line without its newline
        f.write("3.14,99,1,0.0,0.0,1")
    final = recover_journal(journal)
    assert final == tmp_path / "cam.csv"
    assert not journal.exists() and not list(tmp_path.glob("*.tmp"))
    df = pd.read_csv(final)
    assert list(df.columns) == list(CSV_COLUMNS) and len(df) == 50
    assert read_session(final)[1] == make_rows(25)


def test_a_session_killed_with_sigkill_is_recovered_as_csv_and_json_like_a_closed_one(tmp_path):
    """A SIGTERM writes both exports; a session recovered after SIGKILL got a CSV only. Recovery now writes the JSON
    too, from the session info beside the journal, and its summary counts every frame processed (here 5 of the 30
    had no face)."""
    out = tmp_path / "cam.csv"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_recorder import make_metadata, make_rows
        from app.timeline.recorder import SessionRecorder, TimelineRow
        rec = SessionRecorder([{str(out)!r}, {str(out.with_suffix(".json"))!r}], make_metadata(user="p01"))
        rec.add_many(make_rows(25))
        rec.add_many([TimelineRow.no_face(i / 25, i) for i in range(25, 30)])
        print(rec.n_frames, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "30"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert recover_journal(journal_path_for(out)) == out
    assert read_session(out)[1] == make_rows(25)
    meta, rows = read_session(out.with_suffix(".json"))
    assert rows == make_rows(25) and meta["source"] == "camera 0"
    assert meta["extra"] == {"user": "p01", "recovered_from": "cam.csv.partial.csv"}
    summary = json.loads(out.with_suffix(".json").read_text())["summary"]
    assert summary["n_frames"] == 30 and summary["n_rows"] == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.csv", "cam.json"]


def test_recover_never_overwrites_an_existing_export(tmp_path):
    out = tmp_path / "a.csv"
    rec = SessionRecorder([out], make_metadata())
    rec.add_many(make_rows(2))
    del rec  # dropped without close(): the journal stays
    out.write_text("someone else's file\n")
    final = recover_journal(journal_path_for(out))
    assert final == tmp_path / "a.recovered.csv" and len(pd.read_csv(final)) == 4
    assert out.read_text() == "someone else's file\n"


def test_leftover_journal_of_a_crashed_session_is_moved_aside_not_overwritten(tmp_path):
    out = tmp_path / "a.csv"
    old = SessionRecorder([out], make_metadata())
    old.add_many(make_rows(3))
    before = journal_path_for(out).read_text()
    del old  # the old session never closed, and its process is gone (the kernel drops its lock)
    with SessionRecorder([out], make_metadata()) as rec:   # same export
        rec.add_many(make_rows(1))
    assert (tmp_path / "a.csv.partial-2.csv").read_text() == before
    assert len(pd.read_csv(out)) == 2
    assert recover_journal(tmp_path / "a.csv.partial-2.csv") == tmp_path / "a.recovered.csv"


def test_an_export_a_live_session_records_into_is_refused_and_that_session_goes_on(tmp_path):
    """A second recorder (another run) on the export of a session still recording: it used to move the live,
    locked journal aside, so the first session failed at its end and the file held the second one's rows."""
    from app.timeline.files import check_export_targets

    out = tmp_path / "c.csv"
    rows = make_rows(6, faces=(1,))
    first = SessionRecorder([out], make_metadata())
    first.add_many(rows[:3])
    for second in (lambda: check_export_targets([out]), lambda: SessionRecorder([tmp_path / "d.json", out],
                                                                                 make_metadata())):
        with pytest.raises(ExportError) as info:
            second()
        assert str(info.value) == f"{out} is being written by another run, pid {os.getpid()}"
    first.add_many(rows[3:])
    first.close()
    assert read_session(out)[1] == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv"]


def test_export_failure_at_close_keeps_the_journal_and_names_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    rows = make_rows(6)
    rec = SessionRecorder([a / "s.csv", b / "s.json"], make_metadata())
    rec.add_many(rows)
    b.rmdir()
    b.write_text("the folder was replaced by a file")  # writing b/s.json now fails (ENOTDIR)
    with pytest.raises(ExportError) as info:
        rec.close()
    msg = str(info.value)
    assert "\n" not in msg and str(b / "s.json") in msg and str(rec.journal_path) in msg
    assert len(pd.read_csv(rec.journal_path)) == len(rows)   # nothing recorded is lost
    b.unlink()
    b.mkdir()
    rec.close()  # retry once the problem is fixed
    assert read_session(b / "s.json")[1] == rows and not rec.journal_path.exists()
    rec.close()


def test_rows_and_summary_stay_readable_while_close_writes(tmp_path, monkeypatch):
    """The UI closes a recorder off the GUI thread and keeps reading it meanwhile: close() must not hold the lock."""
    rec = SessionRecorder([tmp_path / "s.csv"], make_metadata())
    rec.add_many(make_rows(5))
    seen = {}
    real = session.write_csv

    def slow_write(f, rows):
        reader = threading.Thread(target=lambda: seen.update(n=len(rec.rows), s=rec.summary()["n_rows"]))
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "summary()/rows blocked while close() was writing"
        real(f, rows)

    monkeypatch.setattr(session, "write_csv", slow_write)
    rec.close()
    assert seen == {"n": 10, "s": 10}


def test_rows_read_while_close_deletes_the_journal_are_all_there(tmp_path):
    """A reader that starts on the journal while close() finishes and deletes it holds the journal open, or reads
    the export: it never fails with 'No such file'."""
    out = tmp_path / "s.csv"
    rec = SessionRecorder([out], make_metadata())
    rows = make_rows(30)
    rec.add_many(rows)
    reading = rec.iter_rows()
    first = next(reading)  # the journal is open for this reader now
    rec.close()
    assert not journal_path_for(out).exists()
    assert [first, *reading] == rows
    assert rec.rows == rows  # after close: from the export


def test_rows_stay_readable_from_another_thread_across_close(tmp_path):
    rows = make_rows(100)
    for k in range(10):  # the race window is narrow: a few rounds made the old code fail most runs
        rec = SessionRecorder([tmp_path / f"s{k}.csv"], make_metadata())
        rec.add_many(rows)
        errors, counts, stop = [], [], threading.Event()

        def reader(rec=rec, errors=errors, counts=counts, stop=stop):
            while not stop.is_set():
                try:
                    counts.append(len(rec.rows))
                except Exception as e:  # noqa: BLE001 (the test reports whatever a reader hit)
                    errors.append(e)
                    return

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        rec.close()
        stop.set()
        for t in threads:
            t.join(10)
        assert not errors and counts and set(counts) == {len(rows)}


def test_context_exit_on_exception_still_exports(tmp_path):
    out = tmp_path / "s.csv"
    with pytest.raises(KeyboardInterrupt), SessionRecorder([out], make_metadata()) as rec:
        rec.add_many(make_rows(4))
        raise KeyboardInterrupt
    assert len(pd.read_csv(out)) == 8 and not journal_path_for(out).exists()


# ------------------------------------------------------------------------------------------------ fail fast

@pytest.mark.parametrize("make_target", [
    lambda tmp: (tmp / "plain_file").write_text("x") and tmp / "plain_file" / "out.csv",   # parent is a file
    lambda tmp: tmp / "missing_dir" / "out.csv",
    lambda tmp: Path("/proc/fanlive_test_export.json"),                                     # unwritable even as root
    lambda tmp: tmp,                                                                         # a folder, no file name
], ids=["parent-is-file", "missing-dir", "proc", "is-a-folder"])
def test_unwritable_export_fails_at_construction(tmp_path, make_target):
    target = make_target(tmp_path)
    if target == tmp_path:
        target = tmp_path / "dir.csv"
        target.mkdir()
    good = tmp_path / "good.csv"
    with pytest.raises(ExportError) as info:
        SessionRecorder([good, target], make_metadata())
    msg = str(info.value)
    assert str(target) in msg and "\n" not in msg
    assert not journal_path_for(good).exists()  # nothing was started


def test_bad_suffix_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"\.txt.*\.csv or \.json") as info:
        SessionRecorder([tmp_path / "out.txt"], make_metadata())
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="twice"):
        SessionRecorder([tmp_path / "x.csv", tmp_path / "x.csv"], make_metadata())


def test_no_exports_records_in_memory_only(tmp_path):
    with SessionRecorder([], make_metadata()) as rec:
        rec.add_many(make_rows(2))
        assert rec.journal_path is None and len(rec) == 4
    assert rec.summary()["n_rows"] == 4


# ------------------------------------------------------------------------------------------------ imports

def test_import_is_light_and_qt_free():
    code = ("import app.timeline.recorder, sys; heavy = {'matplotlib', 'PySide6', 'torch', 'pandas', 'numpy'} & set(sys.modules);"
            " assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


# ------------------------------------------------------------------------------------------------ journal ownership

def test_a_live_recorder_holds_its_journal_and_a_killed_one_does_not(tmp_path):
    """Recovery asks whether the owning process is alive (its lock), not how old the journal is."""
    from app.timeline.files import journal_in_use

    out = tmp_path / "live.csv"
    rec = SessionRecorder([out], make_metadata())
    rec.add_many(make_rows(2))
    assert journal_in_use(rec.journal_path)          # this process records into it, however fresh or old
    os.utime(rec.journal_path, (0, 0))
    assert journal_in_use(rec.journal_path)
    rec.close()
    assert not journal_in_use(rec.journal_path)      # gone

    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_recorder import make_metadata, make_rows
        from app.timeline.recorder import SessionRecorder
        rec = SessionRecorder([{str(tmp_path / 'killed.csv')!r}], make_metadata())
        rec.add_many(make_rows(3))
        print("added", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    journal = journal_path_for(tmp_path / "killed.csv")
    try:
        assert proc.stdout.readline().strip() == "added"
        assert journal_in_use(journal)               # another live process
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not journal_in_use(journal)               # dead a moment ago: recoverable at once


def test_disk_full_mid_run_writes_every_writable_target_and_keeps_the_journal(tmp_path, monkeypatch):
    """The journal's disk fills up part-way: one error line, the export on the healthy disk is written from what the
    journal holds, the one on the full disk is not, and the journal is kept."""
    full, healthy = tmp_path / "full", tmp_path / "healthy"
    full.mkdir()
    healthy.mkdir()
    rows = make_rows(10, faces=(1,))
    rec = SessionRecorder([full / "s.csv", healthy / "s.json"], make_metadata())
    rec.add_many(rows[:6])

    class FullDisk:
        """The journal's file object once the disk is full: every write and flush fails with ENOSPC."""
        def __init__(self, f):
            self._f = f

        def write(self, *a):
            raise OSError(28, "No space left on device")

        flush = write

        def __getattr__(self, name):
            return getattr(self._f, name)

    rec._journal = FullDisk(rec._journal)
    rec._writer = __import__("csv").writer(rec._journal, lineterminator="\n")
    with pytest.raises(ExportError, match="No space left"):
        rec.add_many(rows[6:])
    real_atomic_write = session.atomic_write

    def atomic_write(path, write, binary=False):
        if Path(path).parent == full:
            raise OSError(28, "No space left on device")
        return real_atomic_write(path, write, binary)

    monkeypatch.setattr(session, "atomic_write", atomic_write)
    with pytest.raises(ExportError) as info:
        rec.close()
    msg = str(info.value)
    assert "\n" not in msg and "journal" in msg and str(full / "s.csv") in msg and str(rec.journal_path) in msg
    assert read_session(healthy / "s.json")[1] == rows[:6]      # the healthy target has every journalled row
    assert not (full / "s.csv").exists()
    assert rec.journal_path.exists() and len(pd.read_csv(rec.journal_path)) == 6
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_full_disk_is_one_message_not_a_killed_writer_warning_per_export(tmp_path, caplog):
    """The disk fills up in the middle of a row: the journal ends with half a row. close() said so once per export
    ("dropped an incomplete last line (the writer was killed mid-row)", twice), though nothing was killed and the
    journal error already says what happened."""
    rows = make_rows(8, faces=(1,))
    rec = SessionRecorder([tmp_path / "s.csv", tmp_path / "s.json"], make_metadata())
    rec.add_many(rows[:5])

    class FillsUp:
        """The journal's file: the next write gets half its bytes onto the disk, then ENOSPC."""
        def __init__(self, f):
            self._f = f

        def write(self, text):
            self._f.write(text[: len(text) // 2])
            self._f.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

    rec._journal = FillsUp(rec._journal)
    rec._writer = __import__("csv").writer(rec._journal, lineterminator="\n")
    with pytest.raises(ExportError, match="No space left"):
        rec.add_many(rows[5:])
    rec._journal = rec._journal._f
    with caplog.at_level("WARNING"), pytest.raises(ExportError) as info:
        rec.close()
    assert "No space left" in str(info.value) and "\n" not in str(info.value)
    assert not [r for r in caplog.records if "incomplete last line" in r.getMessage()]
    assert read_session(tmp_path / "s.json")[1] == rows[:5] and read_session(tmp_path / "s.csv")[1] == rows[:5]


def test_close_survives_a_journal_that_fails_to_close(tmp_path):
    """Disk full at the very end: the journal's last flush/close raises; every export is still written."""
    rec = SessionRecorder([tmp_path / "s.csv", tmp_path / "s.json"], make_metadata())
    rec.add_many(make_rows(3))
    real = rec._journal

    class FailsOnClose:
        def __getattr__(self, name):
            return getattr(real, name)

        def close(self):
            real.close()
            raise OSError(28, "No space left on device")

    rec._journal = FailsOnClose()
    rec.close()
    assert len(read_session(tmp_path / "s.csv")[1]) == 6 and len(read_session(tmp_path / "s.json")[1]) == 6


def test_orphan_temp_files_of_a_killed_run_are_removed_at_the_next_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has just ended
    orphan = tmp_path / f"s.csv.{dead}.0badf00d.tmp"
    orphan.write_text("half a file")
    probe = tmp_path / f".s.csv.{dead}.12345678.probe"
    probe.write_text("")
    ours = tmp_path / f"s.csv.{os.getpid()}.deadbeef.tmp"   # a live process's write in progress: not touched
    ours.write_text("being written")
    other = tmp_path / f"other.csv.{dead}.0badf00d.tmp"       # another export's: left to its own next run
    other.write_text("x")
    with SessionRecorder([tmp_path / "s.csv"], make_metadata()) as rec:
        rec.add_many(make_rows(1))
    assert not orphan.exists() and not probe.exists() and ours.exists() and other.exists()
    assert session.clean_orphan_temp_files(tmp_path) == [other]


def test_memory_stays_flat_however_many_rows(tmp_path):
    """The recorder streams the exports from its journal instead of keeping every row (~1 KB each) for the JSON."""
    import tracemalloc

    rec = SessionRecorder([tmp_path / "s.csv", tmp_path / "s.json"], make_metadata())
    rec.add_many(make_rows(500, faces=(1, 2), seed=0))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(1, 5):  # rows made and handed over, as a replay does frame by frame, then dropped
            rec.add_many(make_rows(500, faces=(1, 2), seed=k))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 200_000, f"{grown} bytes held for 4000 rows"
    assert len(rec) == 5000 and rec.summary()["n_rows"] == 5000
    rec.close()
    every = [r for k in range(5) for r in make_rows(500, faces=(1, 2), seed=k)]
    assert read_session(tmp_path / "s.json")[1] == every == read_session(tmp_path / "s.csv")[1]
    assert json.loads((tmp_path / "s.json").read_text())["summary"]["n_rows"] == 5000
