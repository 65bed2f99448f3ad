"""The row schema and the run metadata: what a row and a session's metadata accept."""
import pytest

from app.emotions import EMOTIONS
from app.timeline.metadata import SessionMetadata
from app.timeline.rows import TimelineRow
from tests.app.timeline.test_recorder import make_rows


def test_row_validates_and_coerces_numpy():
    r = make_rows(1, faces=(3,))[0]
    assert type(r.confidence) is float and all(type(p) is float for p in r.probs) and type(r.face_id) is int
    good = {"time_s": 0.0, "frame_index": 0, "face_id": 1, "box": (0, 0, 1, 1), "label": EMOTIONS[0],
            "confidence": 1.0, "probs": (1.0,) + (0.0,) * (len(EMOTIONS) - 1), "alpha": 0.5, "weight": 1.0}
    TimelineRow(**good)
    with pytest.raises(ValueError, match="7 values"):
        TimelineRow(**{**good, "probs": (0.5, 0.5)})
    with pytest.raises(ValueError, match="not one of"):
        TimelineRow(**{**good, "label": "contempt"})
    with pytest.raises(ValueError, match="summing to 1"):
        TimelineRow(**{**good, "probs": (3.0, -1.0) + (0.0,) * 5})  # logits, not probabilities
    with pytest.raises(ValueError, match="finite"):
        TimelineRow(**{**good, "alpha": float("nan")})
    with pytest.raises(ValueError, match="x0, y0, x1, y1"):
        TimelineRow(**{**good, "box": (0, 0, 1)})


def test_metadata_needs_utc_iso_time():
    with pytest.raises(ValueError, match="UTC"):
        SessionMetadata("camera 0", "m", [], "self", 16, "2024-05-01T12:00:00+02:00", "0.1.0")
    with pytest.raises(ValueError, match="ISO 8601"):
        SessionMetadata("camera 0", "m", [], "self", 16, "yesterday", "0.1.0")
