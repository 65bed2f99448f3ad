"""The study workflow: markers in, epochs / interval summaries / baseline-corrected columns out, recomputed here from
the per-frame rows with pandas; the markers journal survives a kill; a real replay writes the study files."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.emotions import EMOTIONS
from app.paths import ROOT
from app.timeline.rows import CSV_COLUMNS
from app.timeline.recorder import SessionRecorder
from app.timeline.files import extension_journal_for, journal_path_for
from app.runs.recover import recover_journal
from app.study.tables import CORRECTED_COLUMNS, PROB_COLUMNS, sidecar_path
from app.study.options import (BaselineSpec, EpochWindow, Marker, StudyConfig, SOURCE_GAP_LABEL, StudyError,
    parse_baseline, parse_epoch, read_markers)
from app.study.extension import Study
from tests.app.timeline.test_recorder import make_metadata, make_rows

P = list(PROB_COLUMNS)


def record(tmp_path: Path, study: Study, rows=None, name: str = "s") -> Path:
    out = tmp_path / f"{name}.csv"
    with SessionRecorder([out, tmp_path / f"{name}.json"], make_metadata(), extension=study) as rec:
        rec.add_many(make_rows(100) if rows is None else rows)  # 2 faces, 25 fps, 4 s
    return out


def epoch_means(df: pd.DataFrame, face: int, t: float, pre: float, post: float) -> pd.Series:
    w = df[(df.face_id == face) & (df.time_s >= t - pre) & (df.time_s < t + post)]
    return w[P].mean(), len(w)


# ------------------------------------------------------------------------------------------------------ inputs

def test_markers_file_reads_in_any_order_and_bad_files_fail_with_one_line(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("onset,time_s,label\nx,2.5,happy face\n\ny,0.25, neutral \n")
    assert read_markers(f) == [Marker(1, 2.5, "happy face"), Marker(2, 0.25, "neutral")]
    cases = {
        "time,label\n1,a\n": "needs a header with columns time_s,label",
        "time_s,label\n1,a\nsoon,b\n": "m.csv:3: time_s must be a number",
        "time_s,label\n-1,a\n": "m.csv:2: time_s must be >= 0",
        "time_s,label\n1,\n": "m.csv:2: a marker needs a non-empty label",
        "time_s,label\n": "has no markers",
        "": "an empty file",
    }
    for text, expected in cases.items():
        f.write_text(text)
        with pytest.raises(StudyError, match=expected) as e:
            read_markers(f)
        assert "\n" not in str(e.value)
    with pytest.raises(StudyError, match="does not exist"):
        read_markers(tmp_path / "nope.csv")


def test_epoch_and_baseline_options(tmp_path):
    assert parse_epoch("1,3") == parse_epoch("-1,3") == EpochWindow(1.0, 3.0)
    assert parse_epoch("0.5, 2") == EpochWindow(0.5, 2.0)
    for bad in ("1", "a,b", "0,0", "1,-2"):
        with pytest.raises(StudyError):
            parse_epoch(bad)
    assert parse_baseline("first:10") == BaselineSpec("first", seconds=10.0)
    assert parse_baseline("between:rest start,rest end") == BaselineSpec("between", start_label="rest start",
                                                                          end_label="rest end")
    rec = tmp_path / "rest.csv"
    rec.write_text(",".join(CSV_COLUMNS) + "\n")  # a session export (here without rows)
    assert parse_baseline(f"file:{rec}").path == str(rec)
    for bad in ("first:0", "first", "between:a", "file:/no/such.csv", "middle:3", f"file:{tmp_path}"):
        with pytest.raises(StudyError):
            parse_baseline(bad)
    for every in (0, 1e-9, 0.009):
        with pytest.raises(StudyError, match="at least 0.01 s"):
            StudyConfig(summary_every_s=every)
    assert StudyConfig(summary_every_s=0.01).summary_every_s == 0.01


def test_a_baseline_file_that_is_not_a_session_is_refused_and_never_silently_dropped(tmp_path):
    """A markers file given as the baseline recording: parse_baseline refuses it (naming the missing columns); one
    that is chosen and later is no session (a window's choice, a journal's) is a baseline_error, not a silent
    export without corrected columns."""
    markers = tmp_path / "stimuli.csv"
    markers.write_text("time_s,label\n1.0,rest\n")
    with pytest.raises(StudyError) as info:
        parse_baseline(f"file:{markers}")
    assert str(info.value) == (f"baseline recording {markers} is not a FAN Live session export (missing columns "
                               "frame_index, face_id, x0, y0 and 12 more)")
    out = record(tmp_path, Study(StudyConfig(baseline=BaselineSpec("file", path=str(markers)))))
    study = json.loads(out.with_suffix(".json").read_text())["study"]
    assert study["baseline"] is None and "not a FAN Live session export" in study["baseline_error"]
    assert not set(CORRECTED_COLUMNS) & set(pd.read_csv(out).columns)


# ------------------------------------------------------------------------------------------------------ tables

def test_epoch_means_recomputed_from_the_per_frame_rows(tmp_path):
    markers = [Marker(1, 1.0, "A"), Marker(2, 2.5, "B"), Marker(3, 30.0, "after the end")]
    out = record(tmp_path, Study(StudyConfig(epoch=EpochWindow(0.5, 1.0)), markers))
    df = pd.read_csv(out)
    ep = pd.read_csv(sidecar_path(out, "epochs"))
    assert list(pd.read_csv(sidecar_path(out, "events")).label) == ["A", "B", "after the end"]
    assert not sidecar_path(out, "summary").exists()  # no --summary-every
    assert not any(c.endswith("_corrected") for c in list(df.columns) + list(ep.columns))  # no baseline
    for _, e in ep[ep.n_frames > 0].iterrows():
        means, n = epoch_means(df, int(e.face_id), e.marker_time_s, 0.5, 1.0)
        assert e.n_frames == n and n in (37, 38)  # [t - 0.5, t + 1.0) at 25 fps
        np.testing.assert_allclose(e[P].to_numpy(float), means.to_numpy(), rtol=1e-12, atol=1e-15)
        assert e.dominant == EMOTIONS[int(np.argmax(means.to_numpy()))]
        assert e.coverage == pytest.approx(1.0, abs=0.03)
    # a marker past the end: one row, no face, 0 frames; every face of an epoch has its own row
    assert ep.groupby("marker_id").size().to_dict() == {1: 2, 2: 2, 3: 1}
    last = ep[ep.marker_id == 3].iloc[0]
    assert last.n_frames == 0 and pd.isna(last.face_id) and pd.isna(last.p_anger)
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["events"] == [m.to_json() for m in markers]
    assert doc["study"]["epoch"] == [0.5, 1.0] and doc["study"]["baseline"] is None


def test_a_source_gap_is_an_event_and_never_an_epoch(tmp_path):
    gap_only = record(tmp_path, Study(StudyConfig(), [Marker(1, 1.0, SOURCE_GAP_LABEL)]), name="gap")
    assert list(pd.read_csv(sidecar_path(gap_only, "events")).label) == [SOURCE_GAP_LABEL]
    assert not sidecar_path(gap_only, "epochs").exists()
    both = record(tmp_path, Study(StudyConfig(), [Marker(1, 1.0, SOURCE_GAP_LABEL), Marker(2, 2.0, "stimulus")]),
                  name="both")
    assert list(pd.read_csv(sidecar_path(both, "events")).label) == [SOURCE_GAP_LABEL, "stimulus"]
    assert set(pd.read_csv(sidecar_path(both, "epochs")).marker_id) == {2}


def test_interval_summary_and_coverage(tmp_path):
    # face 2 gone for 2-3 s, and for 10 of the 25 frames of [3, 4)
    rows = [r for r in make_rows(100) if not (r.face_id == 2 and (50 <= r.frame_index < 75 or r.frame_index >= 90))]
    out = record(tmp_path, Study(StudyConfig(summary_every_s=1.0)), rows)
    df = pd.read_csv(out)
    sm = pd.read_csv(sidecar_path(out, "summary"))
    assert not sidecar_path(out, "events").exists()  # no markers, no events/epochs files
    assert sorted(sm.start_s.unique()) == [0.0, 1.0, 2.0, 3.0]
    assert set(sm[sm.start_s == 2.0].face_id) == {1}  # face 2 absent in [2, 3): no row for it
    for _, s in sm.iterrows():
        w = df[(df.face_id == s.face_id) & (df.time_s >= s.start_s) & (df.time_s < s.end_s)]
        partial = s.face_id == 2 and s.start_s == 3.0
        assert s.n_frames == len(w) == (15 if partial else 25)
        assert s.coverage == (0.6 if partial else 1.0)
        np.testing.assert_allclose(s[P].to_numpy(float), w[P].mean().to_numpy(), rtol=1e-12, atol=1e-15)


def test_baseline_corrected_columns_are_raw_minus_the_faces_baseline_mean(tmp_path):
    markers = [Marker(1, 0.4, "rest"), Marker(2, 1.6, "go"), Marker(3, 2.0, "stim")]
    for spec, mask in ((BaselineSpec("first", seconds=1.0), lambda d: d.time_s < 1.0),
                       (BaselineSpec("between", start_label="rest", end_label="go"),
                        lambda d: (d.time_s >= 0.4) & (d.time_s <= 1.6))):
        out = record(tmp_path, Study(StudyConfig(summary_every_s=2.0, baseline=spec), markers), name=spec.kind)
        df = pd.read_csv(out, float_precision="round_trip")
        base = df[mask(df)].groupby("face_id")[P].mean()
        for fid, g in df.groupby("face_id"):
            np.testing.assert_allclose(g[list(CORRECTED_COLUMNS)].to_numpy(), g[P].to_numpy() - base.loc[fid].to_numpy(),
                                       atol=1e-12)
        ep = pd.read_csv(sidecar_path(out, "epochs"))
        for _, e in ep.iterrows():
            np.testing.assert_allclose(e[list(CORRECTED_COLUMNS)].to_numpy(float),
                                       e[P].to_numpy(float) - base.loc[e.face_id].to_numpy(), atol=1e-12)
        sm = pd.read_csv(sidecar_path(out, "summary"))
        assert set(CORRECTED_COLUMNS) <= set(sm.columns)
        doc = json.loads(out.with_suffix(".json").read_text())
        assert doc["study"]["baseline"]["faces"]["1"]["n_rows"] == int(mask(df[df.face_id == 1]).sum())


def test_a_separate_recording_is_one_baseline_for_every_face(tmp_path):
    rest = tmp_path / "rest.csv"
    with SessionRecorder([rest], make_metadata()) as rec:
        rec.add_many(make_rows(30, faces=(7,), seed=3))
    out = record(tmp_path, Study(StudyConfig(baseline=parse_baseline(f"file:{rest}"))))
    df = pd.read_csv(out, float_precision="round_trip")
    base = pd.read_csv(rest, float_precision="round_trip")[P].mean().to_numpy()
    np.testing.assert_allclose(df[list(CORRECTED_COLUMNS)].to_numpy(), df[P].to_numpy() - base, atol=1e-12)


def test_a_baseline_without_a_face_exports_without_corrected_columns(tmp_path):
    study = Study(StudyConfig(baseline=BaselineSpec("between", start_label="a", end_label="b")),
                  [Marker(1, 50.0, "a"), Marker(2, 60.0, "b")])
    out = tmp_path / "s.csv"
    with SessionRecorder([out, out.with_suffix(".json")], make_metadata(), extension=study) as rec:
        rec.add_many(make_rows(100))
    exported = rec.close()  # a second close returns what the first one wrote
    assert len(exported.notes) == 1 and "no face in that span" in exported.notes[0]
    assert exported.exports == (out, out.with_suffix(".json"))
    assert exported.study_files == (tmp_path / "s_events.csv", tmp_path / "s_epochs.csv")
    assert not any(c.endswith("_corrected") for c in pd.read_csv(out).columns)
    assert "no face" in json.loads(out.with_suffix(".json").read_text())["study"]["baseline_error"]


# ------------------------------------------------------------------------------------------------------ journal

def test_marker_edits_are_journalled_and_recovered_after_a_kill(tmp_path):
    """A real SIGKILL of a recording process: its markers (added, renamed, deleted) and baseline come back."""
    out = tmp_path / "cam.csv"
    script = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from tests.app.timeline.test_recorder import make_metadata, make_rows
from app.timeline.recorder import SessionRecorder
from app.study.extension import Study, StudyConfig, BaselineSpec
study = Study(StudyConfig(summary_every_s=1.0))
rec = SessionRecorder([{str(out)!r}], make_metadata(), extension=study)
rec.add_many(make_rows(50))
a = study.add_marker(0.2, "first")
b = study.add_marker(1.0, "oops")
study.rename_marker(a.marker_id, "stimulus 1")
study.delete_marker(b.marker_id)
study.add_marker(1.5, "stimulus 2")
study.set_baseline(BaselineSpec("first", seconds=0.5))
print("ready", flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    journal = journal_path_for(out)
    assert extension_journal_for(journal).exists()
    with open(extension_journal_for(journal), "a") as f:
        f.write('{"op": "add", "time_s": 1')  # a line cut by the kill is dropped
    assert recover_journal(journal) == out
    assert not extension_journal_for(journal).exists()
    events = pd.read_csv(sidecar_path(out, "events"))
    assert list(events.label) == ["stimulus 1", "stimulus 2"] and list(events.marker_id) == [1, 3]
    df = pd.read_csv(out)
    assert set(CORRECTED_COLUMNS) <= set(df.columns)  # the baseline choice came back too
    assert len(pd.read_csv(sidecar_path(out, "summary"))) == 4  # 2 faces x 2 one-second intervals


def test_a_recording_closed_normally_leaves_no_study_journal(tmp_path):
    study = Study()
    out = tmp_path / "a.csv"
    with SessionRecorder([out], make_metadata(), extension=study) as rec:
        rec.add_many(make_rows(5))
        study.add_marker(0.1, "x")
        assert extension_journal_for(rec.journal_path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a_epochs.csv", "a_events.csv"]


# ------------------------------------------------------------------------------------------------------ replay

@pytest.mark.data
def test_a_killed_replay_recovers_its_markers(videos, tmp_path):
    """The headless replay with --markers, SIGKILLed mid-run: recover_journal brings back rows and markers."""
    (tmp_path / "m.csv").write_text("time_s,label\n0.5,A\n1.5,B\n")
    out = tmp_path / "k.csv"
    proc = subprocess.Popen([sys.executable, "main.py", "--no-window", "--quiet", "--video",
                             str(videos / "single_face.mp4"), "--repeat", "1000", "--export", str(out),
                             "--markers", str(tmp_path / "m.csv"), "--summary-every", "1"],  # the shipped model
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    journal = journal_path_for(out)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and journal.read_bytes().count(b"\n") > 30:  # 30 rows in
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not out.exists() and extension_journal_for(journal).exists()
    recover_journal(journal)
    df = pd.read_csv(out)
    assert len(df) > 10
    events = pd.read_csv(sidecar_path(out, "events"))
    assert list(events.label) == ["A", "B"]
    ep = pd.read_csv(sidecar_path(out, "epochs"))
    e = ep[ep.label == "A"].iloc[0]
    w = df[(df.face_id == e.face_id) & (df.time_s >= -0.5) & (df.time_s < 3.5)]
    assert e.n_frames == len(w)
    np.testing.assert_allclose(e[P].to_numpy(float), w[P].mean().to_numpy(), rtol=1e-9)
    assert len(pd.read_csv(sidecar_path(out, "summary"))) >= 1
