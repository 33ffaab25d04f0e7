"""A tiny KoBERT made on the fly for the transformer tests (no download, built in about a second).

``make_tiny_kobert(folder)`` writes a folder in the layout of SKT's ``skt/kobert-base-v1`` on the hub:
``config.json`` + ``model.safetensors`` (a randomly initialised 2-layer ``BertModel``), ``spiece.model`` (a
sentencepiece model trained here on the sentences below, with [UNK]=0, [PAD]=1, [CLS]=2, [SEP]=3, [MASK]=4 as
in KoBERT), ``tokenizer_config.json`` and ``special_tokens_map.json``. All sentences are our own.

Module-scoped fixtures for the test modules that use it (import them by name,
``from .tiny_bert import _few_threads, base  # noqa: F401``): ``_few_threads`` (autouse: torch on one thread while
the module runs) and ``base`` (the tiny KoBERT folder).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emotag.labels import LABEL2ID

# 40 labelled sentences, 10 per emotion.
LABELLED = {
    "neutral": ["토끼는 숲속 작은 집에 살았어요.", "아침이 되자 해가 떴어요.", "길은 강을 따라 이어졌어요.",
                "할머니는 시장에 갔어요.", "마을에는 우물이 하나 있었어요.", "다람쥐는 나무 위로 올라갔어요.",
                "곰은 겨울잠을 자러 동굴로 들어갔어요.", "오후에는 비가 조금 내렸어요.", "아이들은 학교에 갔어요.",
                "배는 천천히 바다를 건넜어요."],
    "happy": ["와, 정말 신난다!", "오늘은 너무 행복해요.", "선물을 받아서 정말 기뻐요!", "우리 함께 노래하자, 즐거워!",
              "친구가 와서 너무 좋아요.", "고마워, 정말 최고야!", "드디어 해냈어, 만세!", "엄마가 꼭 안아 주어서 행복했어요.",
              "생일 축하해, 정말 기쁜 날이야!", "하하, 너무 재미있다!"],
    "sad": ["엄마가 보고 싶어서 눈물이 났어요.", "친구가 떠나서 너무 슬퍼요.", "혼자 남아서 외로워요.",
            "강아지를 잃어버려서 울었어요.", "너무 슬퍼서 아무것도 못 하겠어.", "이제 다시는 못 만나겠지.",
            "꽃이 시들어서 마음이 아팠어요.", "아무도 내 이야기를 들어 주지 않아요.", "비 오는 밤에 혼자 울었어요.",
            "할아버지가 멀리 떠나셔서 슬펐어요."],
    "angry": ["왜 내 당근을 먹었어!", "당장 나가! 화가 나!", "거짓말하지 마, 정말 화났어!", "너 때문에 다 망쳤잖아!",
              "그만해! 짜증 나!", "어떻게 이럴 수가 있어, 용서 못 해!", "내 장난감을 왜 부쉈어!", "소리 지르지 마, 화난다고!",
              "또 약속을 어겼잖아, 정말 싫어!", "누가 내 그림에 낙서했어!"],
}

# More plain sentences, only for training the sentencepiece vocabulary (about 100 sentences in all).
EXTRA = [
    "옛날 옛적에 작은 마을이 있었어요.", "호랑이가 산에서 내려왔어요.", "여우는 꾀가 많았어요.", "거북이는 느리지만 꾸준했어요.",
    "달님이 하늘 높이 떠올랐어요.", "별들이 반짝반짝 빛났어요.", "바람이 솔솔 불어왔어요.", "강물은 졸졸 흘렀어요.",
    "농부는 밭에서 일했어요.", "어부는 그물을 던졌어요.", "공주는 성에서 살았어요.", "왕자는 말을 타고 떠났어요.",
    "마녀는 숲속 깊은 곳에 살았어요.", "요정이 날개를 펄럭였어요.", "아기 새가 둥지에서 짹짹 울었어요.", "고양이가 담장 위를 걸었어요.",
    "강아지가 꼬리를 흔들었어요.", "소년은 연을 날렸어요.", "소녀는 꽃을 꺾었어요.", "나무꾼은 도끼를 잃어버렸어요.",
    "흥부는 제비의 다리를 고쳐 주었어요.", "놀부는 욕심이 많았어요.", "해와 달이 된 오누이 이야기예요.", "콩쥐는 물을 길어 왔어요.",
    "팥쥐는 심술을 부렸어요.", "토끼와 거북이가 달리기를 했어요.", "개미는 여름 내내 일했어요.", "베짱이는 노래만 불렀어요.",
    "눈이 펑펑 내려서 온 세상이 하얘졌어요.", "봄이 오자 새싹이 돋았어요.", "가을에는 낙엽이 떨어졌어요.", "여름에는 매미가 울었어요.",
    "할머니는 떡을 만들었어요.", "할아버지는 옛날이야기를 들려주었어요.", "엄마는 저녁을 준비했어요.", "아빠는 책을 읽었어요.",
    "우리는 공원에서 놀았어요.", "친구와 함께 숙제를 했어요.", "선생님이 칭찬해 주셨어요.", "도서관에는 책이 많았어요.",
    "기차가 칙칙폭폭 달려갔어요.", "비행기가 구름 위로 날아갔어요.", "배가 항구에 도착했어요.", "자동차가 빵빵 경적을 울렸어요.",
    "사과나무에 빨간 사과가 열렸어요.", "포도밭에는 포도가 주렁주렁 달렸어요.", "시냇물에 물고기가 헤엄쳤어요.",
    "개구리가 개굴개굴 울었어요.", "오리가 연못에서 헤엄쳤어요.", "돼지 삼 형제가 집을 지었어요.", "늑대가 문을 두드렸어요.",
    "빨간 모자는 할머니 댁에 갔어요.", "신데렐라는 유리 구두를 신었어요.", "피노키오의 코가 길어졌어요.", "인어 공주는 목소리를 잃었어요.",
    "시계가 열두 시를 알렸어요.", "1,000원을 주고 빵을 샀어요.", "사탕 3개와 과자 2개가 있었어요.", "2024년 봄에 소풍을 갔어요.",
    "ㅋㅋㅋ 정말 웃기다.",
]

TINY_CONFIG = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=2, intermediate_size=96,
                   max_position_embeddings=128, type_vocab_size=1, hidden_dropout_prob=0.0,
                   attention_probs_dropout_prob=0.0)

SPECIAL = ("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]")


def labelled() -> tuple[list[str], list[int]]:
    texts, ids = [], []
    for name, rows in LABELLED.items():
        texts += rows
        ids += [LABEL2ID[name]] * len(rows)
    return texts, ids


def corpus() -> list[str]:
    return [s for rows in LABELLED.values() for s in rows] + EXTRA


def train_spiece(model_prefix: Path, vocab_size: int = 600, normalization: str = "nmt_nfkc") -> Path:
    """Train a sentencepiece unigram model with KoBERT's special pieces at ids 0-4; returns the .model path."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_prefix=str(model_prefix), vocab_size=vocab_size,
        model_type="unigram", character_coverage=0.9995, hard_vocab_limit=False,
        unk_id=0, unk_piece="[UNK]", pad_id=1, pad_piece="[PAD]", bos_id=2, bos_piece="[CLS]",
        eos_id=3, eos_piece="[SEP]", user_defined_symbols=["[MASK]"], normalization_rule_name=normalization,
        num_threads=1, minloglevel=2, seed_sentencepiece_size=100_000,
    )
    return model_prefix.with_suffix(".model")


def make_tiny_kobert(folder: str | Path, seed: int = 0, **config) -> Path:
    """Write a tiny random KoBERT in the skt/kobert-base-v1 layout to ``folder`` and return it."""
    import torch
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spiece = train_spiece(folder / "spiece")
    (folder / "spiece.vocab").unlink(missing_ok=True)
    import sentencepiece as spm
    vocab_size = spm.SentencePieceProcessor(model_file=str(spiece)).get_piece_size()
    torch.manual_seed(seed)
    bert = BertModel(BertConfig(vocab_size=vocab_size, pad_token_id=1, **{**TINY_CONFIG, **config}))
    bert.save_pretrained(folder)
    # What SKT's hub folder carries next to the weights (their tokenizer class is XLNetTokenizer-derived).
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "do_lower_case": False, "remove_space": True, "keep_accents": False, "model_max_length": 512,
        "padding_side": "right", "tokenizer_class": "KoBERTTokenizer",
        **dict(zip(("unk_token", "pad_token", "cls_token", "sep_token", "mask_token"), SPECIAL)),
        "bos_token": "[CLS]", "eos_token": "[SEP]",
    }, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]",
        "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
    }, indent=2), encoding="utf-8")
    return folder


# Settings that fit the 40 labelled sentences with the tiny random model in a few seconds (a random encoder
# needs a far higher learning rate than the 3e-5 used to fine-tune a pretrained KoBERT).
OVERFIT = dict(lr=2e-3, batch_size=8, epochs=60, patience=60, dropout=0.0, seed=1)


def labelled_frame():
    import pandas as pd

    texts, ids = labelled()
    return pd.DataFrame({"text": texts, "label_id": ids})


def train_tiny(base: str | Path, out: str | Path | None = None, **overrides):
    """Fine-tune the tiny KoBERT at ``base`` on the 40 labelled sentences (validated on themselves)."""
    from emotag.training import TrainConfig, train

    df = labelled_frame()
    return train(df, valid=df, config=TrainConfig(base_model=str(base), **{**OVERFIT, **overrides}), out=out)


@pytest.fixture(scope="module", autouse=True)
def _few_threads():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_tiny_kobert(tmp_path_factory.mktemp("tiny_kobert"))
