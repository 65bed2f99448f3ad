import re

from app.emotions import EMOTION_COLORS, EMOTIONS, canonical_emotion, emotion_index
from app.timeline import plot


def test_aliases_map_to_the_seven_classes():
    assert canonical_emotion(" Angry ") == "anger"
    assert canonical_emotion("fearful") == "fear"
    assert canonical_emotion("contempt") is None
    assert emotion_index("happy") == EMOTIONS.index("happiness")


def test_one_distinct_colour_per_class_shared_by_the_exported_plot():
    assert tuple(EMOTION_COLORS) == EMOTIONS
    assert len(set(EMOTION_COLORS.values())) == len(EMOTIONS)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in EMOTION_COLORS.values())
    assert plot._COLOURS == tuple(EMOTION_COLORS[e] for e in EMOTIONS)
