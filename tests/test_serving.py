"""Serving a model folder: transformer models through a cached int8 ONNX export, falling back to PyTorch."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from emotag.models import CLASSICAL_MODEL, ModelLoadError, load_model
from emotag.models.classical import ClassicalModel
from emotag.models.onnx_export import OnnxModel
from emotag.models.serving import EXPORT_VERSION, folder_digest, load_for_serving
from emotag.models.transformer import TransformerModel

from .tiny_bert import EXTRA, _few_threads, base, labelled, train_tiny  # noqa: F401  (module fixtures)


@pytest.fixture(scope="module")
def saved(base, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("serving") / "kobert"
    result = train_tiny(base, out=out)
    assert result.metrics["accuracy"] == 1.0
    return out


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EMOTAG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EMOTAG_ONNX", raising=False)
    return tmp_path / "cache" / "onnx"


def test_transformer_is_served_by_int8_onnx_and_agrees_with_pytorch(saved, cache):
    served = load_for_serving(saved)
    assert isinstance(served, OnnxModel) and served.served_file.name == "model.int8.onnx"
    assert served.served_file.parent.parent == cache
    assert served.served_file.parent.name.endswith(f"-v{EXPORT_VERSION}")  # a changed export gets a new entry
    assert not (served.served_file.parent / "model.onnx").exists()  # only the served graph is kept
    texts, ids = labelled()
    assert (served.predict_proba(texts).argmax(axis=1) == np.array(ids)).mean() >= 0.9
    torch_model = load_model(saved)
    agree = served.predict_proba(texts + EXTRA).argmax(1) == torch_model.predict_proba(texts + EXTRA).argmax(1)
    assert agree.mean() >= 0.9


def test_second_load_reuses_the_cache(saved, cache, monkeypatch):
    first = load_for_serving(saved)
    import emotag.models.onnx_export as onnx_export

    def no_export(*_a, **_k):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "export_onnx", no_export)
    second = load_for_serving(saved)
    assert second.served_file == first.served_file
    texts, _ = labelled()
    np.testing.assert_array_equal(second.logits(texts), first.logits(texts))


def test_a_changed_model_gets_a_new_export(saved, tmp_path):
    copy = shutil.copytree(saved, tmp_path / "copy")
    assert folder_digest(copy) == folder_digest(saved)
    meta = (copy / "emotag_model.json").read_text(encoding="utf-8")
    (copy / "emotag_model.json").write_text(meta.replace('"date"', '"note": "changed", "date"', 1), encoding="utf-8")
    assert folder_digest(copy) != folder_digest(saved)
    assert load_for_serving(copy).served_file != load_for_serving(saved).served_file


def test_damaged_cache_entry_is_exported_again(saved):
    first = load_for_serving(saved)
    first.served_file.write_bytes(b"not onnx")
    again = load_for_serving(saved)
    assert isinstance(again, OnnxModel) and again.served_file.stat().st_size > 1000


def test_switched_off_or_failing_export_serves_pytorch(saved, monkeypatch, caplog):
    monkeypatch.setenv("EMOTAG_ONNX", "0")
    assert isinstance(load_for_serving(saved), TransformerModel)
    monkeypatch.delenv("EMOTAG_ONNX")
    import emotag.models.onnx_export as onnx_export

    def broken(*_a, **_k):
        raise RuntimeError("the exported graph's logits differ")

    monkeypatch.setattr(onnx_export, "export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="emotag.models.serving"):
        model = load_for_serving(saved)
    assert isinstance(model, TransformerModel)
    assert "serving" in caplog.text and "logits differ" in caplog.text


def test_classical_and_broken_folders_load_as_before(tmp_path, cache):
    assert isinstance(load_for_serving(CLASSICAL_MODEL), ClassicalModel)
    assert not cache.exists()
    with pytest.raises(ModelLoadError):
        load_for_serving(tmp_path / "missing")
