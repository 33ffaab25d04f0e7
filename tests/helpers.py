"""Small labelled data written for the tests (our own sentences), and a tiny classical model built from it."""
from __future__ import annotations

from emotag.models.classical import ClassicalModel

SENTENCES = {
    "neutral": ["토끼는 숲속 작은 집에 살았어요.", "아침이 되자 해가 떴어요.", "길은 강을 따라 이어졌어요.",
                "할머니는 시장에 갔어요.", "마을에는 우물이 하나 있었어요.", "다람쥐는 나무 위로 올라갔어요."],
    "happy": ["와, 정말 신난다!", "오늘은 너무 행복해요.", "선물을 받아서 정말 기뻐요!", "우리 함께 노래하자, 즐거워!",
              "친구가 와서 너무 좋아요.", "고마워, 정말 최고야!"],
    "sad": ["엄마가 보고 싶어서 눈물이 났어요.", "친구가 떠나서 너무 슬퍼요.", "혼자 남아서 외로워요.",
            "강아지를 잃어버려서 울었어요.", "너무 슬퍼서 아무것도 못 하겠어.", "이제 다시는 못 만나겠지."],
    "angry": ["왜 내 당근을 먹었어!", "당장 나가! 화가 나!", "거짓말하지 마, 정말 화났어!", "너 때문에 다 망쳤잖아!",
              "그만해! 짜증 나!", "어떻게 이럴 수가 있어, 용서 못 해!"],
}


def labelled():
    from emotag.labels import LABEL2ID
    texts, ids = [], []
    for name, rows in SENTENCES.items():
        texts += rows
        ids += [LABEL2ID[name]] * len(rows)
    return texts, ids


def tiny_classical(folder=None) -> ClassicalModel:
    texts, ids = labelled()
    model = ClassicalModel.train(texts, ids, max_features=5000, C=50.0)
    model.metadata["name"] = "tiny-classical"
    if folder is not None:
        model.save(folder)
    return model


def contrasting_classical_pair() -> tuple[ClassicalModel, ClassicalModel]:
    """Two tiny classical models that disagree on purpose (the second learns every label shifted by one): members
    for the ensemble and routed backbones' tests."""
    texts, ids = labelled()
    return ClassicalModel.train(texts, ids), ClassicalModel.train(texts, [(i + 1) % 4 for i in ids])
