"""A session's summary: shares, dominant emotion and mean probabilities per face, and the empty case."""
import json

import pandas as pd
import pytest

from app.emotions import EMOTIONS
from app.timeline.formats import read_session
from app.timeline.recorder import SessionRecorder
from app.timeline.rows import CSV_COLUMNS
from app.timeline.summary import format_summary
from tests.app.timeline.test_recorder import make_metadata, row


def test_summary_shares_dominant_and_means(tmp_path):
    happy, sad, angry = "happiness", "sadness", "anger"
    assert {happy, sad, angry} <= set(EMOTIONS)
    rows = [row(1, 0.0, happy), row(1, 0.1, happy), row(1, 0.2, sad), row(1, 0.3, happy),
            row(2, 1.0, angry), row(2, 1.5, sad), row(2, 2.0, sad)]
    with SessionRecorder([tmp_path / "s.json"], make_metadata()) as rec:
        rec.add_many(rows)
        s = rec.summary()
    assert s["n_rows"] == 7 and s["n_faces"] == 2 and "message" not in s
    f1, f2 = s["faces"][1], s["faces"][2]
    assert f1["dominant"] == happy and f2["dominant"] == sad
    assert f1["shares"][happy] == pytest.approx(0.75) and f1["shares"][sad] == pytest.approx(0.25)
    for f in (f1, f2):
        assert list(f["shares"]) == list(EMOTIONS) and list(f["mean_probs"]) == list(EMOTIONS)
        assert sum(f["shares"].values()) == pytest.approx(1.0)
        assert sum(f["mean_probs"].values()) == pytest.approx(1.0)
    assert f1["mean_probs"][happy] == pytest.approx((0.7 * 3 + 0.3) / 4)  # row() gives 0.3 to the previous class
    assert (f2["first_time_s"], f2["last_time_s"], f2["duration_s"], f2["n_rows"]) == (1.0, 2.0, 1.0, 3)
    text = format_summary(s)
    assert "face 1" in text and "face 2" in text and f"mostly {happy}" in text and "2 faces" in text
    assert json.loads((tmp_path / "s.json").read_text())["summary"]["faces"]["2"]["dominant"] == sad


def test_zero_rows_says_no_face_found(tmp_path):
    with SessionRecorder([tmp_path / "e.csv", tmp_path / "e.json"], make_metadata()) as rec:
        rec.add_many([])
    s = rec.summary()
    assert s == {"n_rows": 0, "n_faces": 0, "n_frames": 0, "faces": {}, "message": "no face found"}
    assert format_summary(s) == "no face found"
    df = pd.read_csv(tmp_path / "e.csv")
    assert len(df) == 0 and list(df.columns) == list(CSV_COLUMNS)
    assert json.loads((tmp_path / "e.json").read_text())["summary"]["message"] == "no face found"
    assert read_session(tmp_path / "e.json")[1] == []
