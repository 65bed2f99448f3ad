"""Session schema versions 2 and 3: the signal columns (reliability, pose, 52 blendshapes), rows for frames without a face,
version 1 files and journals still read, reliability-weighted summaries with coverage; version 3's latency_ms."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from app.signals.names import BLENDSHAPE_NAMES
from app.emotions import EMOTIONS
from app.timeline.rows import BLENDSHAPE_COLUMNS, CSV_COLUMNS, V1_COLUMNS, TimelineRow
from app.timeline.formats import SCHEMA_VERSION, read_session
from app.timeline.metadata import SessionMetadata
from app.timeline.recorder import SessionRecorder
from app.runs.recover import recover_journal
from app.timeline.summary import summarize_rows


def _meta() -> SessionMetadata:
    return SessionMetadata(source="clip.mp4", model="fan-test", providers=["CPUExecutionProvider"],
                           head="relation", window_length=16, started_at="2024-05-01T12:00:00+00:00",
                           app_version="0.1.0")


def _row(i: int, label: str = "happiness", reliability: float | None = 0.9, signals: bool = True) -> TimelineRow:
    probs = [0.05] * len(EMOTIONS)
    probs[EMOTIONS.index(label)] = 0.7
    rng = np.random.default_rng(i)
    return TimelineRow(time_s=i / 25, frame_index=i, face_id=1, box=(1.5, 2, 30, 40), label=label, confidence=0.7,
                       probs=tuple(probs), alpha=0.6, weight=0.1,
                       reliability=reliability if signals else None, yaw=12.5 if signals else None,
                       pitch=-3.25 if signals else None, roll=1.0 if signals else None,
                       blendshapes=tuple(rng.uniform(0, 1, 52).round(4)) if signals else None)


def test_version_2_round_trip_with_face_less_rows(tmp_path):
    rows = [_row(0), _row(1), TimelineRow.no_face(2 / 25, 2), _row(3, "neutral", 0.2)]
    with SessionRecorder([tmp_path / "s.csv", tmp_path / "s.json"], _meta(), all_frames=True) as rec:
        rec.add_many(rows)
    for name in ("s.csv", "s.json"):
        _, back = read_session(tmp_path / name)
        assert len(back) == 4 and back[2].face_found is False and back[2].face_id is None
        for a, b in zip(rows, back):
            assert (a == b) if a.face_found else (a.csv_values() == b.csv_values())  # NaN != NaN in ==
        assert back[0].blendshapes == rows[0].blendshapes and back[0].yaw == 12.5
    header = next(csv.reader(open(tmp_path / "s.csv")))
    assert tuple(header) == CSV_COLUMNS and header[-53:-1] == [f"bs_{n}" for n in BLENDSHAPE_NAMES]
    table = pd.read_csv(tmp_path / "s.csv")
    assert table["face_found"].tolist() == [1, 1, 0, 1] and math.isnan(table["face_id"][2])
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["version"] == SCHEMA_VERSION == 3 and doc["blendshapes"] == list(BLENDSHAPE_NAMES)
    assert doc["rows"][2] == {"time_s": 0.08, "frame_index": 2, "face_found": False}


def test_version_1_files_and_journals_still_read(tmp_path):
    v1 = _row(0, signals=False)
    values = v1.csv_values()[: len(V1_COLUMNS)]
    (tmp_path / "old.csv").write_text(",".join(V1_COLUMNS) + "\n" + ",".join(map(str, values)) + "\n")
    _, (back,) = read_session(tmp_path / "old.csv")
    assert back == v1 and back.reliability is None and back.blendshapes is None and back.face_found
    row_json = {k: v for k, v in v1.to_json().items() if k in ("time_s", "frame_index", "face_id", "box", "label",
                                                                 "confidence", "probs", "alpha", "weight")}
    (tmp_path / "old.json").write_text(json.dumps({"schema": "fan-live-session", "version": 1, "metadata": {},
                                                   "labels": list(EMOTIONS), "rows": [row_json]}))
    assert read_session(tmp_path / "old.json")[1] == [v1]
    # a version 1 journal left by a crash (its last line cut): recovered into a CSV of the current schema
    journal = tmp_path / "crashed.csv.partial.csv"
    journal.write_text(",".join(V1_COLUMNS) + "\n" + ",".join(map(str, values)) + "\n" + "0.5,12,1,0,0")
    out = recover_journal(journal)
    assert out.name == "crashed.csv" and not journal.exists()
    _, rows = read_session(out)
    assert rows == [v1]
    assert next(csv.reader(open(out))) == list(CSV_COLUMNS)


def test_rows_validate_the_signals():
    with pytest.raises(ValueError, match="reliability"):
        _row(0, reliability=1.5)
    with pytest.raises(ValueError, match="52"):
        TimelineRow(**{**{k: getattr(_row(0), k) for k in TimelineRow.__slots__}, "blendshapes": (0.1,) * 3})
    assert _row(0).csv_values()[len(V1_COLUMNS):len(V1_COLUMNS) + 2] == [1, 0.9]
    assert len(BLENDSHAPE_COLUMNS) == 52


def test_summary_weighs_rows_by_reliability_and_reports_coverage():
    # 10 frames: 4 clear happy rows, 4 unreliable sad rows, 2 frames without a face
    rows = [_row(i, "happiness", 0.9) for i in range(4)] + [_row(i, "sadness", 0.1) for i in range(4, 8)]
    rows += [TimelineRow.no_face(i / 25, i) for i in (8, 9)]
    s = summarize_rows(rows)
    face = s["faces"][1]
    assert s["n_frames"] == 10 and face["n_rows"] == 8
    assert face["dominant"] == "happiness" and face["shares"]["happiness"] == pytest.approx(0.9 / (0.9 + 0.1))
    assert face["coverage"] == pytest.approx(0.4) and face["mean_reliability"] == pytest.approx(0.5)
    # rows without a reliability (version 1) weigh 1: the old unweighted summary
    old = summarize_rows([_row(0, "happiness", signals=False), _row(1, "sadness", signals=False)])
    assert old["faces"][1]["shares"]["happiness"] == 0.5 and old["faces"][1]["coverage"] == 1.0


def test_rows_from_a_frame_result_carry_the_signals_and_an_empty_frame_with_all_frames():
    from app.capture.frame import Frame
    from app.faces.detect import Face
    from app.recognition.recognizer import Prediction
    from app.pipeline import FrameResult
    from app.timeline.rows import rows_from_result
    from app.signals.extract import FaceSignals

    frame = Frame(index=7, time_s=0.28, image=np.zeros((40, 40, 3), np.uint8))
    face = Face(box=(1, 2, 30, 40), landmarks5=np.zeros((5, 2)), track_id=3)
    probs = np.full(7, 0.05, np.float32)
    probs[3] = 0.7
    pred = Prediction(track_id=3, probs=probs, label="happiness", confidence=0.7, alpha=[0.4, 0.6], weight=[.5, .5],
                      frame_indices=[6, 7])
    bs = np.linspace(0, 1, 52, dtype=np.float32)
    sig = FaceSignals(bs, yaw=3.14159, pitch=-1.0, roll=0.5, sharpness=4.0, face_px=50.0, reliability=0.87654)
    (row,) = rows_from_result(FrameResult(frame=frame, faces=[face], predictions={3: pred}, signals={3: sig}))
    assert row.face_id == 3 and row.alpha == pytest.approx(0.6) and row.reliability == 0.8765 and row.yaw == 3.14
    assert row.blendshapes == pytest.approx(tuple(bs), abs=1e-4)
    # no iris points (--no-blendshapes): the blendshapes are unknown, the rest stays
    nan = FaceSignals(np.full(52, np.nan, np.float32), 3.0, -1.0, 0.5, 4.0, 50.0, 0.5)
    (row,) = rows_from_result(FrameResult(frame=frame, faces=[face], predictions={3: pred}, signals={3: nan}))
    assert row.blendshapes is None and row.csv_values()[-52:] == [""] * 52 and row.yaw == 3.0
    empty = FrameResult(frame=frame, faces=[], predictions={})
    assert rows_from_result(empty) == []
    (none,) = rows_from_result(empty, all_frames=True)
    assert not none.face_found and none.frame_index == 7 and none.face_id is None


def test_version_3_latency_round_trip_and_version_2_files_still_read(tmp_path):
    rows = [replace(_row(0), latency_ms=21.5), TimelineRow.no_face(1 / 25, 1, latency_ms=18.25), _row(2)]
    with SessionRecorder([tmp_path / "s.csv", tmp_path / "s.json"], _meta(), all_frames=True) as rec:
        rec.add_many(rows)
    header = next(csv.reader(open(tmp_path / "s.csv")))
    assert header[-1] == "latency_ms" and tuple(header) == CSV_COLUMNS
    for name in ("s.csv", "s.json"):
        _, back = read_session(tmp_path / name)
        assert [r.latency_ms for r in back] == [21.5, 18.25, None]
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["rows"][1] == {"time_s": 0.04, "frame_index": 1, "face_found": False, "latency_ms": 18.25}
    assert "latency_ms" not in doc["rows"][2]  # a file's frame: no key, as in version 2
    # a version 2 CSV (no latency_ms column) and a version 2 JSON read back with latency None
    v2_columns = CSV_COLUMNS[:-1]
    v2 = _row(0)
    (tmp_path / "v2.csv").write_text(",".join(v2_columns) + "\n" + ",".join(map(str, v2.csv_values()[:-1])) + "\n")
    assert read_session(tmp_path / "v2.csv")[1] == [v2]
    (tmp_path / "v2.json").write_text(json.dumps({**{k: doc[k] for k in ("schema", "metadata", "labels")},
                                                  "version": 2, "rows": [v2.to_json()]}))
    assert read_session(tmp_path / "v2.json")[1] == [v2]
    assert replace(_row(0), latency_ms=float("nan")).latency_ms is None  # unknown, like an unsolved pose


def _frame_results(n_frames: int, with_face: range):
    """Real FrameResults of `n_frames` frames at 25 fps; the frames in `with_face` have one face (reliability 0.9)."""
    from app.capture.frame import Frame
    from app.faces.detect import Face
    from app.recognition.recognizer import Prediction
    from app.pipeline import FrameResult
    from app.signals.extract import FaceSignals

    probs = np.full(7, 0.05, np.float32)
    probs[3] = 0.7
    out = []
    for i in range(n_frames):
        frame = Frame(index=i, time_s=i / 25, image=np.zeros((8, 8, 3), np.uint8))
        if i not in with_face:
            out.append(FrameResult(frame=frame, faces=[], predictions={}))
            continue
        face = Face(box=(1, 2, 30, 40), landmarks5=np.zeros((5, 2)), track_id=1)
        pred = Prediction(track_id=1, probs=probs, label="happiness", confidence=0.7, alpha=[0.6], weight=[1.0],
                          frame_indices=[i])
        sig = FaceSignals(np.full(52, 0.5, np.float32), 1.0, 2.0, 3.0, 4.0, 50.0, 0.9)
        out.append(FrameResult(frame=frame, faces=[face], predictions={1: pred}, signals={1: sig}))
    return out


@pytest.mark.parametrize("all_frames", [False, True])
def test_the_json_summary_counts_every_processed_frame_as_the_recorder_does(tmp_path, all_frames):
    """n_frames and coverage have one definition: the frames processed, with or without a face. The JSON summary
    counted the frames that had rows (face rows only, without --all-frames): 72 against 169 on face_noface.mov."""
    with SessionRecorder([tmp_path / "s.csv", tmp_path / "s.json"], _meta(), all_frames=all_frames) as rec:
        for result in _frame_results(10, with_face=range(4)):
            rec.add_result(result)
    summary = json.loads((tmp_path / "s.json").read_text())["summary"]
    assert summary["n_frames"] == rec.summary()["n_frames"] == rec.n_frames == 10
    assert summary["faces"]["1"]["coverage"] == rec.summary()["faces"][1]["coverage"] == pytest.approx(0.4)
    assert len(pd.read_csv(tmp_path / "s.csv")) == (10 if all_frames else 4)
    # an export of the finished session's rows (the window's Export...) keeps the session's frame count
    with SessionRecorder([tmp_path / "e.json"], _meta(), n_frames=rec.n_frames) as again:
        again.add_many(rec.rows)
    assert json.loads((tmp_path / "e.json").read_text())["summary"] == summary
