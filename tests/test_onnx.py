"""ONNX export (float32 + int8) of a fine-tuned tiny KoBERT and the "kobert-onnx" backbone."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotag.models import ModelLoadError, load_model
from emotag.models.onnx_export import ONNX_FILE, QUANTIZED_FILE, OnnxModel, export_onnx
from emotag.predictor import Predictor

from .tiny_bert import EXTRA, _few_threads, base, labelled, train_tiny  # noqa: F401  (module fixtures)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(base):  # noqa: F811
    result = train_tiny(base)
    assert result.metrics["accuracy"] == 1.0
    return result.model


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    return export_onnx(trained, tmp_path_factory.mktemp("onnx") / "kobert-onnx")


def sample_texts() -> list[str]:
    return labelled()[0] + EXTRA


def test_folder_layout(exported, trained):
    assert {p.name for p in exported.iterdir()} >= {ONNX_FILE, QUANTIZED_FILE, "spiece.model", "emotag_model.json"}
    meta = json.loads((exported / "emotag_model.json").read_text())
    assert meta["backbone"] == "kobert-onnx" and meta["onnx"]["file"] == QUANTIZED_FILE
    assert meta["max_len"] == trained.max_len and meta["onnx"]["export_max_abs_error"] < 1e-3
    assert (exported / QUANTIZED_FILE).stat().st_size < (exported / ONNX_FILE).stat().st_size
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]


def test_float32_parity(exported, trained):
    texts = sample_texts()
    onnx = OnnxModel.load(exported, quantized=False)
    expected = trained.logits(texts)
    got = onnx.logits(texts)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    np.testing.assert_allclose(onnx.predict_proba(texts), trained.predict_proba(texts), atol=1e-5)


def test_int8_parity(exported, trained):
    texts, ids = labelled()
    onnx = load_model(exported)
    assert isinstance(onnx, OnnxModel) and onnx.served_file.name == QUANTIZED_FILE
    expected, got = trained.logits(sample_texts()), onnx.logits(sample_texts())
    np.testing.assert_allclose(got, expected, atol=0.25)
    error = np.abs(got - expected).max()
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * error  # where int8 rounding cannot swap the top two
    assert clear.mean() > 0.5
    assert (got.argmax(axis=1)[clear] == expected.argmax(axis=1)[clear]).all()
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.9
    assert (onnx.predict_proba(texts).argmax(axis=1) == np.array(ids)).mean() >= 0.9


def test_predictor_and_resave(exported, trained, tmp_path):
    texts = sample_texts()
    predictions = Predictor(OnnxModel.load(exported, quantized=False), batch_size=16).predict(texts)
    assert [p.label_id for p in predictions] == trained.predict_proba(texts).argmax(axis=1).tolist()
    onnx = load_model(exported)
    copy = onnx.save(tmp_path / "copy")
    assert {p.name for p in copy.iterdir()} >= {ONNX_FILE, QUANTIZED_FILE, "spiece.model"}
    np.testing.assert_array_equal(load_model(copy).logits(sample_texts()), onnx.logits(sample_texts()))
    assert onnx.predict_proba([]).shape == (0, 4)


def test_float32_only_export(trained, tmp_path):
    out = export_onnx(trained, tmp_path / "fp32", quantize=False)
    assert not (out / QUANTIZED_FILE).exists()
    assert load_model(out).served_file.name == ONNX_FILE
    with pytest.raises(ModelLoadError, match=QUANTIZED_FILE.replace(".", r"\.")):
        OnnxModel.load(out, quantized=True)


def test_serving_needs_no_torch(exported):
    code = ("import sys; from emotag.models import load_model; "
            f"m = load_model({str(exported)!r}); print(m.predict_proba(['와, 정말 신난다!']).argmax()); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(load_model(exported).predict_proba(["와, 정말 신난다!"]).argmax())


@pytest.mark.parametrize("name", [QUANTIZED_FILE, "spiece.model"])
def test_missing_or_corrupt_files_are_named(exported, tmp_path, name):
    folder = Path(shutil.copytree(exported, tmp_path / "m"))
    (folder / name).write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
        load_model(folder)
    (folder / name).unlink()
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
        load_model(folder)


def test_cli_export(trained, tmp_path):
    from emotag.models.onnx_export import main

    trained.save(tmp_path / "kobert")
    assert main([str(tmp_path / "kobert"), str(tmp_path / "out"), "--no-quantize"]) == 0
    assert load_model(tmp_path / "out").backbone == "kobert-onnx"
    with pytest.raises(SystemExit):
        main([str(ROOT / "emotag" / "bundled" / "classical"), str(tmp_path / "nope")])
