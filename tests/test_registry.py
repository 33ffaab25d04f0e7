import pytest

import emotag
from emotag.models import ModelLoadError
from emotag.models.classical import WEIGHTS_FILE
from emotag.predictor import default_model_path
from emotag.registry import BUNDLED_ID, CLASSICAL_ID, Registry

from .helpers import tiny_classical


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.delenv("EMOTAG_MODEL", raising=False)
    monkeypatch.setenv("EMOTAG_MODELS_DIR", str(tmp_path / "models"))
    emotag.set_predictor(None)
    yield Registry()
    emotag.set_predictor(None)


def test_bundled_is_active_until_something_is_promoted(registry):
    assert registry.active_id() == BUNDLED_ID
    assert [e.id for e in registry.list()] == [BUNDLED_ID, CLASSICAL_ID]  # the bundled default and baseline
    assert default_model_path() == registry.path(BUNDLED_ID)


def test_add_promote_and_roll_back(registry, tmp_path):
    tiny_classical(tmp_path / "new")
    model_id = registry.add(tmp_path / "new")
    assert not (tmp_path / "new").exists() and registry.path(model_id).is_dir()
    assert registry.active_id() == BUNDLED_ID  # adding does not promote
    registry.activate(model_id)
    assert registry.active_id() == model_id and registry.history() == [BUNDLED_ID]
    assert emotag.get_predictor().model.name == "tiny-classical"  # the default now serves it
    assert [e.id for e in registry.list() if e.active] == [model_id]
    registry.activate(BUNDLED_ID)  # roll back
    assert registry.active_id() == BUNDLED_ID and registry.history()[0] == model_id


def test_a_corrupt_model_is_refused_and_the_active_one_stays(registry, tmp_path):
    tiny_classical(tmp_path / "good")
    good = registry.add(tmp_path / "good")
    registry.activate(good)
    tiny_classical(tmp_path / "bad")
    (tmp_path / "bad" / WEIGHTS_FILE).write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=WEIGHTS_FILE):
        registry.add(tmp_path / "bad")
    # corrupted after it was added: activation loads first and refuses
    tiny_classical(tmp_path / "later")
    later = registry.add(tmp_path / "later")
    (registry.path(later) / WEIGHTS_FILE).write_bytes(b"broken")
    with pytest.raises(ModelLoadError, match="corrupt"):
        registry.activate(later)
    assert registry.active_id() == good
    with pytest.raises(ModelLoadError):
        registry.activate("../../etc")
    (registry.path(later) / "emotag_model.json").write_text("{")
    assert "corrupt" in next(e for e in registry.list() if e.id == later).metadata["error"]  # listed, marked


def test_models_cli(registry, tmp_path, capsys):
    from emotag.cli import main
    tiny_classical(tmp_path / "m")
    assert main(["models", "add", str(tmp_path / "m")]) == 0
    model_id = capsys.readouterr().out.strip()
    assert main(["models", "activate", model_id]) == 0
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert f"* {model_id}" in out and "bundled" in out
    assert main(["models", "activate", "no-such-model"]) == 2
    assert "does not exist" in capsys.readouterr().err
