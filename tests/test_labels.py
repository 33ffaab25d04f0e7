import pytest

from emotag.labels import COLORS, EMOTIONS, ID2LABEL, KOREAN, LABELS, UnknownLabel, normalize_label


def test_ids_names_and_korean_are_fixed():
    assert [(e.id, e.name, e.korean) for e in EMOTIONS] == [
        (0, "neutral", "중립"), (1, "happy", "기쁨"), (2, "sad", "슬픔"), (3, "angry", "분노")]
    assert LABELS == ("neutral", "happy", "sad", "angry")
    assert ID2LABEL == {0: "neutral", 1: "happy", 2: "sad", 3: "angry"}
    assert KOREAN["sad"] == "슬픔"
    assert len(set(COLORS.values())) == 4


@pytest.mark.parametrize("value,expected", [
    ("Neutral", "neutral"), ("happiness", "happy"), ("Sadness", "sad"), ("ANGRY", "angry"), ("분노", "angry"),
    ("기쁨", "happy"), (2, "sad"), ("3", "angry"), (0.0, "neutral"), (" sad ", "sad"),
])
def test_normalize_label(value, expected):
    assert normalize_label(value) == expected


@pytest.mark.parametrize("value", ["fear", "Disgust", 4, "-1", "", True, None])
def test_unknown_labels_are_refused_with_the_value(value):
    with pytest.raises(UnknownLabel, match="unknown emotion"):
        normalize_label(value)
