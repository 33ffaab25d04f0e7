"""The "ensemble" backbone: weighted average of members' probabilities, saved as one folder."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emotag.models import ModelLoadError, load_model
from emotag.models.ensemble import EnsembleModel, tune_weight

from .helpers import contrasting_classical_pair

TEXTS = ["정말 기뻐요!", "너무 슬퍼서 울었어요.", "화가 나서 소리쳤어요.", "학교에 갔어요.",
         "행복하게 웃었어요.", "눈물이 났어요.", "왜 그랬어! 화나!", "밥을 먹었어요."]


@pytest.fixture(scope="module")
def members():
    return contrasting_classical_pair()


def test_probabilities_are_the_weighted_average(members):
    a, b = members
    model = EnsembleModel.build({"a": (a, 3.0), "b": (b, 1.0)})  # weights are normalised
    expected = 0.75 * a.predict_proba(TEXTS) + 0.25 * b.predict_proba(TEXTS)
    np.testing.assert_allclose(model.predict_proba(TEXTS), expected, rtol=1e-5)
    np.testing.assert_allclose(model.predict_proba(TEXTS).sum(axis=1), 1.0, rtol=1e-5)
    assert model.predict_proba([]).shape == (0, 4)


def test_saves_members_inside_and_loads_identically(members, tmp_path):
    a, b = members
    folder = EnsembleModel.build({"a": (a, 0.4), "b": (b, 0.6)}, {"name": "pair"}).save(tmp_path / "ens")
    assert (folder / "members" / "a" / "emotag_model.json").is_file()
    meta = json.loads((folder / "emotag_model.json").read_text())
    assert meta["backbone"] == "ensemble" and [m["folder"] for m in meta["members"]] == ["a", "b"]
    moved = folder.rename(tmp_path / "moved")  # the folder is self-contained
    loaded = load_model(moved)
    assert isinstance(loaded, EnsembleModel) and loaded.name == "pair"
    texts = TEXTS + ["처음 보는 문장이에요."]
    np.testing.assert_allclose(loaded.predict_proba(texts),
                               0.4 * a.predict_proba(texts) + 0.6 * b.predict_proba(texts), rtol=1e-5)


def test_broken_ensembles_are_refused_by_name(members, tmp_path):
    a, b = members
    folder = EnsembleModel.build({"a": (a, 1.0), "b": (b, 1.0)}).save(tmp_path / "ens")
    meta = json.loads((folder / "emotag_model.json").read_text())
    (folder / "members" / "b" / "emotag_model.json").unlink()
    with pytest.raises(ModelLoadError, match="members/b"):
        load_model(folder)
    for bad in ([], [{"folder": "../x", "weight": 1}], [{"folder": "a", "weight": -1}]):
        (folder / "emotag_model.json").write_text(json.dumps({**meta, "members": bad}))
        with pytest.raises(ModelLoadError):
            load_model(folder)
    with pytest.raises(ValueError):
        EnsembleModel({"a": a}, {"a": 0.0})


def test_tune_weight_finds_the_better_mix():
    gold = [0, 1, 2, 3] * 5
    good = np.eye(4)[gold]
    noise = np.random.default_rng(0).random((20, 4))
    w, f1 = tune_weight(good, noise, gold)
    assert w >= 0.5 and f1 == 1.0
    w, _ = tune_weight(noise, good, gold)
    assert w <= 0.5
