"""The four emotions emotag tags, in id order. Everything else imports them from here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Emotion:
    id: int
    name: str  # English name used in files and APIs
    korean: str  # name shown to annotators
    color: str  # colour used in every view


EMOTIONS: tuple[Emotion, ...] = (
    Emotion(0, "neutral", "중립", "#b0b7c3"),
    Emotion(1, "happy", "기쁨", "#f6c445"),
    Emotion(2, "sad", "슬픔", "#5b8def"),
    Emotion(3, "angry", "분노", "#e5534b"),
)

LABELS: tuple[str, ...] = tuple(e.name for e in EMOTIONS)
NUM_LABELS = len(EMOTIONS)
ID2LABEL = {e.id: e.name for e in EMOTIONS}
LABEL2ID = {e.name: e.id for e in EMOTIONS}
COLORS = {e.name: e.color for e in EMOTIONS}
KOREAN = {e.name: e.korean for e in EMOTIONS}

# Spellings seen in corpora and spreadsheets, mapped to our names.
_ALIASES = {
    "neutral": "neutral", "중립": "neutral", "평온": "neutral",
    "happy": "happy", "happiness": "happy", "joy": "happy", "기쁨": "happy", "행복": "happy",
    "sad": "sad", "sadness": "sad", "슬픔": "sad",
    "angry": "angry", "anger": "angry", "분노": "angry", "화남": "angry",
}


class UnknownLabel(ValueError):
    """A label that is none of the four emotions (by name, Korean name or id)."""


def normalize_label(value: object) -> str:
    """Map a label given as a name, a Korean name, an alias or an id (0-3) to its English name.

    Raises UnknownLabel with the offending value for anything else.
    """
    if value is None or isinstance(value, bool):
        raise UnknownLabel(f"unknown emotion label {value!r}")
    if isinstance(value, int) or (isinstance(value, float) and value == int(value)):
        if int(value) in ID2LABEL:
            return ID2LABEL[int(value)]
        raise UnknownLabel(f"unknown emotion id {value!r} (expected 0-{NUM_LABELS - 1})")
    key = str(value).strip().lower()
    if key.isdigit() and int(key) in ID2LABEL:
        return ID2LABEL[int(key)]
    if key in _ALIASES:
        return _ALIASES[key]
    allowed = ", ".join(f"{e.id}/{e.name}/{e.korean}" for e in EMOTIONS)
    raise UnknownLabel(f"unknown emotion label {value!r} (expected one of {allowed})")
