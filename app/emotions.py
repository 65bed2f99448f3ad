"""The seven emotion classes: the one place their names and order are defined.

Model cards carry this tuple too; the runtime always takes the labels from the card it loaded, and the card
loader checks that they are exactly these.
"""
from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")

# One colour per class, shared by the window and the exported timeline plot so a class reads the same everywhere;
# chosen apart from the attention strip's blue (alpha) and orange (alpha*beta).
EMOTION_COLORS: dict[str, str] = {
    "anger": "#e5484d",
    "disgust": "#46a758",
    "fear": "#b65fc4",
    "happiness": "#f5c518",
    "sadness": "#5a7fb5",
    "surprise": "#12a594",
    "neutral": "#9ba1a6",
}
assert tuple(EMOTION_COLORS) == EMOTIONS

# Names other datasets use for the same classes (AFEW, DFEW, RAF-DB, CK+, FER2013 folder dumps, ...).
_ALIASES = {
    "angry": "anger", "anger": "anger", "an": "anger",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "scared": "fear", "afraid": "fear", "fe": "fear",
    "happy": "happiness", "happiness": "happiness", "joy": "happiness", "ha": "happiness",
    "sad": "sadness", "sadness": "sadness", "sa": "sadness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "neutral": "neutral", "ne": "neutral", "calm": "neutral",
}


def canonical_emotion(name: str) -> str | None:
    """Map a dataset's label name to one of EMOTIONS, or None when it is outside them (e.g. contempt)."""
    return _ALIASES.get(name.strip().lower())


def emotion_index(name: str) -> int | None:
    canon = canonical_emotion(name)
    return None if canon is None else EMOTIONS.index(canon)
