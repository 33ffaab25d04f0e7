"""The "routed" backbone: a domain router mixes a story model and a dialogue model per sentence."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emotag.models import ModelLoadError, load_model
from emotag.models.base import EmotionModel
from emotag.models.routed import SKIP, DomainRouter, RoutedModel

from .helpers import contrasting_classical_pair

STORY = ["옛날 옛적에 산골 마을에 나무꾼이 살았습니다.", "토끼는 깡충깡충 숲으로 뛰어갔어요.",
         "할머니는 손자를 꼭 안아 주었답니다.", "그날 밤 하늘에는 별이 가득했어요.",
         "여우는 꾀를 내어 까마귀를 속였습니다.", "아이들은 손뼉을 치며 웃었어요."]
DIALOGUE = ["아 진짜 오늘 회사에서 짜증 나는 일 있었거든", "너 요즘 왜 그렇게 연락이 없어", "나 시험 떨어졌어 어떡하지",
            "오늘 점심 뭐 먹을래 나 배고파", "그 사람 때문에 완전 열받았잖아", "주말에 영화 보러 갈래"]


@pytest.fixture(scope="module")
def router():
    return DomainRouter.train(STORY + DIALOGUE, [True] * len(STORY) + [False] * len(DIALOGUE))


@pytest.fixture(scope="module")
def members():
    return contrasting_classical_pair()


class Recording(EmotionModel):
    """A member that answers one label and remembers which sentences it was asked about."""
    backbone = "recording"

    def __init__(self, label: int):
        super().__init__()
        self.label, self.seen = label, []

    def predict_proba(self, texts):
        self.seen.extend(texts)
        out = np.zeros((len(texts), 4), np.float32)
        out[:, self.label] = 1
        return out

    def _save_weights(self, folder):  # pragma: no cover - never saved
        raise NotImplementedError

    @classmethod
    def _load_weights(cls, folder, metadata):  # pragma: no cover
        raise NotImplementedError


def test_the_router_tells_story_text_from_dialogue(router, tmp_path):
    story = router.story_probability(["옛날 옛적에 깊은 숲속에 곰이 살았습니다.", "다람쥐는 도토리를 주워 모았어요."])
    dialogue = router.story_probability(["아 오늘 진짜 짜증 나거든", "너 내일 뭐 할 거야 나랑 놀자"])
    assert story.min() > 0.5 > dialogue.max()
    router.save(tmp_path / "router.npz")
    loaded = DomainRouter.load(tmp_path / "router.npz", router.params)
    np.testing.assert_allclose(loaded.story_probability(STORY + DIALOGUE), router.story_probability(STORY + DIALOGUE),
                               rtol=1e-6)
    assert router.story_probability([]).shape == (0,)
    with pytest.raises(ValueError, match="both"):
        DomainRouter.train(STORY, [True] * len(STORY))


def test_each_sentence_mixes_the_members_by_its_story_probability(router, members):
    story, dialogue = members
    model = RoutedModel(story, dialogue, router)
    texts = STORY[:2] + DIALOGUE[:2] + ["처음 보는 문장이에요."]
    r = router.story_probability(texts)[:, None]
    expected = r * story.predict_proba(texts) + (1 - r) * dialogue.predict_proba(texts)
    np.testing.assert_allclose(model.predict_proba(texts), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.predict_proba(texts).sum(axis=1), 1.0, rtol=1e-5)
    assert model.predict_proba([]).shape == (0, 4)


def test_a_member_is_not_run_where_its_share_is_negligible(router, monkeypatch):
    story, dialogue = Recording(1), Recording(3)
    model = RoutedModel(story, dialogue, router)
    certain_story = "옛날 옛적에 산골 마을에 나무꾼이 살았습니다."
    monkeypatch.setattr(router, "story_probability", lambda texts: np.array(
        [1.0 if t == certain_story else 0.5 for t in texts], np.float32))  # this test's router: one sure sentence
    probs = model.predict_proba([certain_story, "반반인 문장"])
    assert dialogue.seen == ["반반인 문장"] and story.seen == [certain_story, "반반인 문장"]
    np.testing.assert_allclose(probs, [[0, 1, 0, 0], [0, 0.5, 0, 0.5]], atol=1e-6)
    assert SKIP < 0.05


def test_saves_as_one_folder_and_loads_identically(router, members, tmp_path):
    story, dialogue = members
    folder = RoutedModel(story, dialogue, router, {"name": "routed pair"}).save(tmp_path / "routed")
    meta = json.loads((folder / "emotag_model.json").read_text())
    assert meta["backbone"] == "routed" and {m["folder"] for m in meta["members"]} == {"story", "dialogue"}
    assert (folder / "router.npz").is_file() and (folder / "members" / "story" / "emotag_model.json").is_file()
    loaded = load_model(folder.rename(tmp_path / "moved"))
    assert isinstance(loaded, RoutedModel) and loaded.name == "routed pair"
    texts = STORY + DIALOGUE + ["처음 보는 문장이에요."]
    np.testing.assert_allclose(loaded.predict_proba(texts), RoutedModel(story, dialogue, router).predict_proba(texts),
                               rtol=1e-5)


def test_broken_routed_folders_are_refused_by_name(router, members, tmp_path):
    story, dialogue = members
    folder = RoutedModel(story, dialogue, router).save(tmp_path / "routed")
    (folder / "router.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="router.npz"):
        load_model(folder)
    (folder / "router.npz").unlink()
    with pytest.raises(ModelLoadError, match="router.npz is missing"):
        load_model(folder)
    router.save(folder / "router.npz")
    meta = json.loads((folder / "emotag_model.json").read_text())
    meta["members"] = [m for m in meta["members"] if m["folder"] == "story"]
    (folder / "emotag_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="'story' and 'dialogue'"):
        load_model(folder)
