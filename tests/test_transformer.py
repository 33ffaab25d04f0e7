"""The "kobert" backbone on a tiny random KoBERT in the skt/kobert-base-v1 layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emotag.labels import NUM_LABELS
from emotag.models import BACKBONES, ModelLoadError, load_model
from emotag.models.transformer import HEAD_FILE, KoBertClassifier, TransformerModel
from emotag.predictor import Predictor

from .tiny_bert import _few_threads, base, corpus, labelled  # noqa: F401  (module fixtures)


@pytest.fixture(scope="module")
def model(base) -> TransformerModel:
    return TransformerModel.from_pretrained(base, seed=3, device="cpu")


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("saved") / "kobert")


def test_loads_through_the_kobert_path(base, model):
    assert {p.name for p in base.iterdir()} >= {"config.json", "model.safetensors", "spiece.model", "tokenizer_config.json"}
    assert isinstance(model.net, KoBertClassifier) and model.backbone == "kobert"
    assert model.tokenizer.cls_token_id == 2 and model.tokenizer.pad_token_id == 1
    assert model.net.bert.config.vocab_size == model.tokenizer.vocab_size
    assert model.net.classifier.out_features == NUM_LABELS
    assert model.max_len == model.net.bert.config.max_position_embeddings  # until training sets it
    assert BACKBONES["kobert"] is TransformerModel


def test_predict_proba_shape_and_order(model):
    texts = corpus()[:30]
    probs = model.predict_proba(texts)
    assert probs.shape == (30, NUM_LABELS) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.predict_proba([]).shape == (0, NUM_LABELS)
    # batching by length must give each sentence its own scores, in input order
    one_by_one = np.concatenate([model.logits([t]) for t in texts])
    np.testing.assert_allclose(model.logits(texts, batch_size=4), one_by_one, atol=1e-5)
    reversed_ = model.logits(texts[::-1], batch_size=7)[::-1]
    np.testing.assert_allclose(reversed_, one_by_one, atol=1e-5)


def test_long_sentences_are_cut_to_max_len(model):
    long_text = " ".join(corpus()[:40])
    assert len(model.tokenizer.encode(long_text, max_len=10_000)) > model.max_len
    assert model.predict_proba([long_text]).shape == (1, NUM_LABELS)


def test_save_layout_and_identical_logits(model, saved):
    names = {p.name for p in saved.iterdir()}
    assert names >= {"emotag_model.json", "config.json", "model.safetensors", HEAD_FILE, "spiece.model",
                     "tokenizer_config.json", "special_tokens_map.json"}
    meta = json.loads((saved / "emotag_model.json").read_text())
    assert meta["backbone"] == "kobert" and meta["max_len"] == model.max_len and meta["num_labels"] == 4
    loaded = load_model(saved)
    assert isinstance(loaded, TransformerModel)
    texts = corpus()
    np.testing.assert_array_equal(loaded.logits(texts), model.logits(texts))
    # the encoder is a plain transformers checkpoint
    from transformers import BertModel
    assert BertModel.from_pretrained(saved).config.hidden_size == model.net.bert.config.hidden_size


def test_from_pretrained_on_an_emotag_folder_keeps_the_head(model, saved):
    again = TransformerModel.from_pretrained(saved, device="cpu")
    np.testing.assert_array_equal(again.logits(corpus()[:5]), model.logits(corpus()[:5]))


def test_predictor_serves_it(saved):
    predictions = Predictor(load_model(saved), batch_size=16).predict(labelled()[0])
    assert len(predictions) == 40 and all(p.label in ("neutral", "happy", "sad", "angry") for p in predictions)


def _copy(saved, dest):
    import shutil
    return shutil.copytree(saved, dest)


def test_missing_folder_and_files_are_named(saved, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope")
    for name in (HEAD_FILE, "model.safetensors", "config.json", "spiece.model"):
        folder = _copy(saved, tmp_path / f"without-{name}")
        (folder / name).unlink()
        with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
            load_model(folder)


@pytest.mark.parametrize("name", [HEAD_FILE, "model.safetensors", "config.json", "spiece.model"])
def test_corrupt_files_are_named(saved, tmp_path, name):
    folder = _copy(saved, tmp_path / "m")
    (folder / name).write_bytes(b"\x00garbage{")
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
        load_model(folder)


def test_head_that_does_not_fit(saved, tmp_path):
    from safetensors.torch import save_file
    folder = _copy(saved, tmp_path / "m")
    save_file({"classifier.weight": torch.zeros(7, 3), "classifier.bias": torch.zeros(7)}, str(folder / HEAD_FILE))
    with pytest.raises(ModelLoadError, match="does not fit"):
        load_model(folder)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match=r"spiece\.model is missing"):
        TransformerModel.from_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        TransformerModel.from_pretrained(tmp_path / "missing" / "kobert")


def test_hub_ids_go_through_snapshot_download(base, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, revision=None, cache_dir=None, allow_patterns=None):
        calls.append((repo_id, revision, list(allow_patterns)))
        return str(base)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = TransformerModel.from_pretrained("skt/kobert-base-v1", revision="main", device="cpu")
    assert model.metadata["base_model"] == "skt/kobert-base-v1"
    assert calls[0][:2] == ("skt/kobert-base-v1", "main")
    assert {"spiece.model", "config.json", "model.safetensors"} <= set(calls[0][2])


def test_hub_id_offline_is_a_clear_error(tmp_path, monkeypatch):
    # offline (huggingface_hub reads HF_HUB_OFFLINE once, at import): nothing is fetched, the error says what
    import huggingface_hub.constants

    from emotag.models.kobert_tokenizer import KoBertTokenizer
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="could not fetch the tokenizer 'skt/kobert-base-v1'"):
        KoBertTokenizer.from_pretrained("skt/kobert-base-v1", cache_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="could not fetch the model 'skt/kobert-base-v1'"):
        TransformerModel.from_pretrained("skt/kobert-base-v1", cache_dir=tmp_path)
