"""The KoBERT tokenizer on a sentencepiece model trained here with KoBERT's special pieces at ids 0-4."""
from __future__ import annotations

import json
import unicodedata

import pytest
import sentencepiece as spm
import torch

from emotag.models.base import ModelLoadError
from emotag.models.kobert_tokenizer import KoBertTokenizer, TokenizerLoadError, batches_by_length

from .tiny_bert import LABELLED, corpus, train_spiece

UNK, PAD, CLS, SEP, MASK = 0, 1, 2, 3, 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kobert_tok")
    train_spiece(folder / "spiece")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "keep_accents": False}))
    return folder


@pytest.fixture(scope="module")
def tok(folder) -> KoBertTokenizer:
    return KoBertTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def sp(folder):
    return spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))


def test_special_ids_are_kobert_s(tok, sp):
    assert (tok.unk_token_id, tok.pad_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
    assert tok.convert_ids_to_tokens(range(5)) == ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]
    assert tok.vocab_size == sp.get_piece_size()


def test_ids_are_cls_pieces_sep(tok, sp):
    for text in corpus():
        pieces = sp.encode(unicodedata.normalize("NFC", text), out_type=str)
        assert tok.tokenize(text) == pieces or "," in text  # numbers with commas are split further
        ids = tok.encode(text)
        assert ids[0] == CLS and ids[-1] == SEP
        assert ids[1:-1] == [sp.piece_to_id(p) for p in tok.tokenize(text)]
    # every piece of a sentence the vocabulary was trained on is known
    assert UNK not in tok.encode(LABELLED["happy"][0])


def test_exact_ids_of_a_sentence(tok, sp):
    text = "토끼는 숲속 작은 집에 살았어요."
    expected = [CLS, *sp.encode(text), SEP]
    assert tok.encode(text) == expected
    assert tok.decode(expected) == text


def test_batch_right_padding_mask_and_token_types(tok):
    texts = ["와, 정말 신난다!", "강아지를 잃어버려서 울었어요.", "아"]
    batch = tok(texts)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    for key, value in batch.items():
        assert isinstance(value, torch.Tensor) and value.dtype == torch.long, key
    lengths = [len(tok.encode(t)) for t in texts]
    assert batch["input_ids"].shape == (3, max(lengths))
    for row, n in enumerate(lengths):
        ids, mask = batch["input_ids"][row].tolist(), batch["attention_mask"][row].tolist()
        assert ids[:n] == tok.encode(texts[row])
        assert ids[n:] == [PAD] * (max(lengths) - n)
        assert mask == [1] * n + [0] * (max(lengths) - n)
    assert batch["token_type_ids"].eq(0).all()


def test_max_length_padding_and_numpy(tok):
    batch = tok(["아침이 되자 해가 떴어요."], max_len=32, padding="max_length", return_tensors="np")
    assert batch["input_ids"].shape == (1, 32) and batch["input_ids"].dtype.name == "int64"
    assert batch["input_ids"][0, -1] == PAD and batch["attention_mask"][0, -1] == 0
    plain = tok("아침", return_tensors=None)
    assert plain["input_ids"] == [tok.encode("아침")] and plain["attention_mask"] == [[1] * len(plain["input_ids"][0])]


def test_truncation_keeps_sep(tok):
    text = "할아버지가 멀리 떠나셔서 슬펐어요. 꽃이 시들어서 마음이 아팠어요."
    full = tok.encode(text)
    assert len(full) > 8
    cut = tok.encode(text, max_len=8)
    assert len(cut) == 8 and cut[0] == CLS and cut[-1] == SEP and cut[1:7] == full[1:7]
    batch = tok([text, "아"], max_len=8)
    assert batch["input_ids"].shape == (2, 8) and batch["input_ids"][0, -1] == SEP
    with pytest.raises(ValueError):
        tok.encode(text, max_len=1)


def test_unknown_only_when_absent(tok, sp):
    assert tok.encode("뷁")[1:-1].count(UNK) == 1  # a syllable the vocabulary never saw
    # compatibility jamo that the vocabulary has ("ㅋㅋㅋ" is in the training text) are not [UNK]
    assert UNK not in tok.encode("ㅋㅋㅋ")
    assert tok.convert_tokens_to_ids(["no-such-piece", "[MASK]"]) == [UNK, MASK]


def test_accent_stripping_never_leaves_loose_jamo(tmp_path):
    # A vocabulary without a normalisation rule: decomposing Hangul into jamo (NFKD) would make every
    # syllable [UNK]; KoBertTokenizer recomposes it.
    train_spiece(tmp_path / "spiece", normalization="identity")
    tok = KoBertTokenizer.from_pretrained(tmp_path)
    assert UNK not in tok.encode("토끼는 숲속 작은 집에 살았어요.")
    assert tok.tokenize("Café")[-1].endswith("e")  # the accent itself is still stripped
    keep = KoBertTokenizer(tmp_path / "spiece.model", keep_accents=True)
    assert "é" in "".join(keep.tokenize("Café"))


def test_whitespace_and_quotes(tok):
    assert tok.encode("  토끼는   숲속 \n 작은  집 ") == tok.encode("토끼는 숲속 작은 집")
    assert tok.tokenize("``만나요''") == tok.tokenize('"만나요"')


def test_number_comma_split(tok):
    assert tok._split_number_comma("\u258112,")[-1] == ","
    assert "".join(tok._split_number_comma("\u258112,")) == "\u258112,"
    head = tok._split_number_comma("12,")
    assert "".join(head) == "12," and not head[0].startswith("\u2581")
    assert "," in tok.tokenize("사과 1,000개, 배 2,")


def test_vocab_txt_maps_ids(folder, sp, tmp_path):
    # Folders of the monologg/kobert kind: ids come from vocab.txt, not from the sentencepiece table.
    pieces = [sp.id_to_piece(i) for i in range(5, sp.get_piece_size())]
    dropped = sp.id_to_piece(sp.piece_to_id("\u2581토끼"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [p for p in reversed(pieces) if p != dropped]
    (tmp_path / "spiece.model").write_bytes((folder / "spiece.model").read_bytes())
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = KoBertTokenizer.from_pretrained(tmp_path)
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id) == (0, 1, 2)
    ids = tok.encode("토끼는 숲속")
    assert ids[0] == 2 and ids[-1] == 3
    assert ids[1:-1] == [vocab.index(p) if p in vocab else 1 for p in tok.tokenize("토끼는 숲속")]
    assert 1 in ids  # "▁토끼" is absent from this vocab.txt → [UNK]
    saved = tok.save_pretrained(tmp_path / "copy")
    assert {p.name for p in saved} >= {"spiece.model", "vocab.txt", "tokenizer_config.json"}
    assert KoBertTokenizer.from_pretrained(tmp_path / "copy").encode("토끼는 숲속") == ids


def test_save_pretrained_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = KoBertTokenizer.from_pretrained(tmp_path)
    for text in corpus()[:20]:
        assert again.encode(text) == tok.encode(text)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["padding_side"] == "right" and config["cls_token"] == "[CLS]"


def test_batches_by_length_cover_every_text_once(tok):
    texts = corpus()[:23]
    seen = []
    for positions, batch in batches_by_length(tok, texts, max_len=64, batch_size=5):
        assert batch["input_ids"].shape[0] == len(positions) <= 5
        for row, i in enumerate(positions):
            n = len(tok.encode(texts[i]))
            assert batch["input_ids"][row, :n].tolist() == tok.encode(texts[i])
        seen += positions
    assert sorted(seen) == list(range(23))


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(ModelLoadError, match="spiece.model"):
        KoBertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "spiece.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(TokenizerLoadError, match="spiece.model"):
        KoBertTokenizer.from_pretrained(tmp_path)
    with pytest.raises(TokenizerLoadError, match="does not exist"):
        KoBertTokenizer.from_pretrained(tmp_path / "nope")


def test_vocabulary_without_kobert_specials_is_refused(tmp_path):
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus()), model_prefix=str(tmp_path / "spiece"),
                                   vocab_size=600, hard_vocab_limit=False, minloglevel=2, num_threads=1)
    with pytest.raises(TokenizerLoadError, match=r"lacks KoBERT's special token\(s\) \[UNK\], \[PAD\]"):
        KoBertTokenizer.from_pretrained(tmp_path)
