"""KoBERT's tokenizer, on sentencepiece alone (no kobert_tokenizer / kobert-transformers / AutoTokenizer).

SKT's ``skt/kobert-base-v1`` folder ships ``spiece.model``, a sentencepiece unigram model whose piece table *is*
the BERT vocabulary: ``[UNK]``=0, ``[PAD]``=1, ``[CLS]``=2, ``[SEP]``=3, ``[MASK]``=4, then the pieces (8002 in
all). SKT's own tokenizer is an XLNet-style sentencepiece tokenizer that

* collapses runs of whitespace, turns ````` and ``''`` into ``"``, strips accents (``keep_accents=False``),
* encodes with sentencepiece, splitting a piece like ``▁1,`` (digits then a comma) into ``▁1`` + ``,``,
* maps each piece to its id in the vocabulary, ``[UNK]`` for a piece that is not there,
* wraps one sentence as ``[CLS] pieces [SEP]``, token types all 0, pads on the right with ``[PAD]``.

This module does the same. Folders of the older ``monologg/kobert`` kind carry a ``vocab.txt`` (one token a
line, the id is the line number) next to the sentencepiece model; when there is one, ids come from it.

Accents are stripped by canonical decomposition (NFD), dropping combining marks and recomposing (NFC): Hangul
syllables come back whole, so Korean text never turns into loose jamo that a vocabulary without a
normalisation rule would miss. Jamo and other characters become ``[UNK]`` only when they are truly absent from
the vocabulary.
"""
from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

from .base import ModelLoadError

SPIECE_FILE = "spiece.model"
VOCAB_TXT = "vocab.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
TOKENIZER_FILES = (SPIECE_FILE, VOCAB_TXT, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP)
# Older folders name the sentencepiece model differently.
_SPIECE_ALTERNATIVES = (SPIECE_FILE, "tokenizer_78b3253a26.model", "sentencepiece.model")

UNK, PAD, CLS, SEP, MASK = "[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"
SPIECE_UNDERLINE = "\u2581"
DEFAULT_MAX_LEN = 512


class TokenizerLoadError(ModelLoadError):
    """A tokenizer folder or file that is missing or unreadable; the message names the file."""


def _resolve_folder(name_or_path: str | Path, revision: str | None = None, cache_dir: str | Path | None = None,
                    allow_patterns: Sequence[str] | None = None, what: str = "tokenizer") -> Path:
    """A local folder as it is; anything else is a hub id, fetched by huggingface_hub (by default only the
    tokenizer files; ``allow_patterns`` widens that)."""
    path = Path(name_or_path)
    if path.exists():
        if not path.is_dir():
            raise TokenizerLoadError(f"{path} is not a folder (expected a KoBERT {what} folder)")
        return path
    if str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1:
        raise TokenizerLoadError(f"{what} folder {path} does not exist")
    from huggingface_hub import snapshot_download  # only for hub ids: never reached in the tests

    try:
        patterns = list(allow_patterns or []) + [*_SPIECE_ALTERNATIVES, VOCAB_TXT, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP]
        return Path(snapshot_download(str(name_or_path), revision=revision, cache_dir=cache_dir,
                                      allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, ...: say which id could not be fetched
        raise TokenizerLoadError(f"could not fetch the {what} {name_or_path!r} from the hub "
                                 f"({type(exc).__name__}: {exc})") from None


class KoBertTokenizer:
    """Sentences → ``input_ids``, ``token_type_ids``, ``attention_mask`` exactly as KoBERT was trained on."""

    def __init__(self, spiece_file: str | Path, vocab_file: str | Path | None = None, *, do_lower_case: bool = False,
                 remove_space: bool = True, keep_accents: bool = False, model_max_length: int = DEFAULT_MAX_LEN):
        import sentencepiece as spm

        self.spiece_file = Path(spiece_file)
        self.vocab_file = Path(vocab_file) if vocab_file else None
        self.do_lower_case, self.remove_space, self.keep_accents = do_lower_case, remove_space, keep_accents
        self.model_max_length = model_max_length
        if not self.spiece_file.is_file():
            raise TokenizerLoadError(f"{self.spiece_file} is missing")
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(self.spiece_file))
        except (RuntimeError, OSError) as exc:
            raise TokenizerLoadError(f"{self.spiece_file} is not a sentencepiece model ({exc})") from None

        if self.vocab_file is not None:
            try:
                tokens = self.vocab_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise TokenizerLoadError(f"{self.vocab_file} is unreadable ({exc})") from None
            tokens = [t.rstrip("\r") for t in tokens]
        else:
            tokens = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        self.id_to_token: list[str] = tokens
        self.vocab: dict[str, int] = {}
        for i, token in enumerate(tokens):
            self.vocab.setdefault(token, i)  # the first id wins if a token repeats
        source = self.vocab_file or self.spiece_file
        missing = [t for t in (UNK, PAD, CLS, SEP, MASK) if t not in self.vocab]
        if missing:
            raise TokenizerLoadError(f"{source} lacks KoBERT's special token(s) {', '.join(missing)}")
        self.unk_token_id, self.pad_token_id = self.vocab[UNK], self.vocab[PAD]
        self.cls_token_id, self.sep_token_id, self.mask_token_id = self.vocab[CLS], self.vocab[SEP], self.vocab[MASK]
        self.special_ids = frozenset((self.unk_token_id, self.pad_token_id, self.cls_token_id, self.sep_token_id,
                                      self.mask_token_id))

    # -- loading and saving -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, revision: str | None = None,
                        cache_dir: str | Path | None = None) -> "KoBertTokenizer":
        """From a local folder in the skt/kobert-base-v1 layout, or a hub id (downloaded by huggingface_hub)."""
        folder = _resolve_folder(name_or_path, revision, cache_dir)
        spiece = next((folder / n for n in _SPIECE_ALTERNATIVES if (folder / n).is_file()), None)
        if spiece is None:
            raise TokenizerLoadError(f"{folder / SPIECE_FILE} is missing: {folder} is not a KoBERT folder")
        options = {}
        config_path = folder / TOKENIZER_CONFIG
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise TokenizerLoadError(f"{config_path} is corrupt ({exc})") from None
            for key in ("do_lower_case", "remove_space", "keep_accents"):
                if isinstance(config.get(key), bool):
                    options[key] = config[key]
            if isinstance(config.get("model_max_length"), int) and 0 < config["model_max_length"] <= 1_000_000:
                options["model_max_length"] = config["model_max_length"]
        vocab = folder / VOCAB_TXT
        return cls(spiece, vocab if vocab.is_file() else None, **options)

    def save_pretrained(self, folder: str | Path) -> list[Path]:
        """Write the tokenizer files (same layout as the hub folder) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / SPIECE_FILE]
        shutil.copyfile(self.spiece_file, written[0])
        if self.vocab_file is not None:
            written.append(folder / VOCAB_TXT)
            shutil.copyfile(self.vocab_file, written[-1])
        specials = {"unk_token": UNK, "pad_token": PAD, "cls_token": CLS, "sep_token": SEP, "mask_token": MASK,
                    "bos_token": CLS, "eos_token": SEP}
        config = {"do_lower_case": self.do_lower_case, "remove_space": self.remove_space,
                  "keep_accents": self.keep_accents, "model_max_length": self.model_max_length,
                  "padding_side": "right", "tokenizer_class": "KoBERTTokenizer", **specials}
        for name, content in ((TOKENIZER_CONFIG, config), (SPECIAL_TOKENS_MAP, specials)):
            written.append(folder / name)
            written[-1].write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return written

    # -- text → pieces → ids ------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.id_to_token)

    def __len__(self) -> int:
        return self.vocab_size

    def preprocess(self, text: str) -> str:
        text = str(text)
        if self.remove_space:
            text = " ".join(text.split())
        text = text.replace("``", '"').replace("''", '"')
        if not self.keep_accents:
            text = unicodedata.normalize("NFD", text)
            text = unicodedata.normalize("NFC", "".join(c for c in text if not unicodedata.combining(c)))
        if self.do_lower_case:
            text = text.lower()
        return text

    def tokenize(self, text: str) -> list[str]:
        """Sentencepiece pieces of one text (no special tokens)."""
        pieces: list[str] = []
        for piece in self.sp.encode(self.preprocess(text), out_type=str):
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                pieces.extend(self._split_number_comma(piece))
            else:
                pieces.append(piece)
        return pieces

    def _split_number_comma(self, piece: str) -> list[str]:
        """``▁12,`` → ``▁12`` + ``,``: a number never swallows the comma after it."""
        number = self.sp.encode(piece[:-1].replace(SPIECE_UNDERLINE, ""), out_type=str)
        # sentencepiece puts a word-start mark on the re-encoded number; keep it only if the piece had one.
        if number and not piece.startswith(SPIECE_UNDERLINE) and number[0].startswith(SPIECE_UNDERLINE):
            number = number[1:] if number[0] == SPIECE_UNDERLINE else [number[0][1:], *number[1:]]
        return [*number, ","]

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.id_to_token[int(i)] if 0 <= int(i) < len(self.id_to_token) else UNK for i in ids]

    def encode(self, text: str, max_len: int | None = None, add_special_tokens: bool = True) -> list[int]:
        """Ids of one text: ``[CLS] … [SEP]``, cut to ``max_len`` ids in all (the [SEP] is kept)."""
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        if not add_special_tokens:
            return ids[:max_len] if max_len else ids
        limit = max_len or self.model_max_length
        if limit < 2:
            raise ValueError(f"max_len must leave room for [CLS] and [SEP] (got {limit})")
        return [self.cls_token_id, *ids[: limit - 2], self.sep_token_id]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids]
        pieces = [t for i, t in zip(ids, self.convert_ids_to_tokens(ids))
                  if not (skip_special_tokens and i in self.special_ids and i != self.unk_token_id)]
        return "".join(pieces).replace(SPIECE_UNDERLINE, " ").strip()

    def pad(self, encoded: Sequence[Sequence[int]], pad_to: int | None = None, return_tensors: str | None = "pt"):
        """Right-pad id lists (already with [CLS]/[SEP]) into a batch with token types and attention mask."""
        width = max([len(ids) for ids in encoded] + [pad_to or 0])
        input_ids = [list(ids) + [self.pad_token_id] * (width - len(ids)) for ids in encoded]
        attention = [[1] * len(ids) + [0] * (width - len(ids)) for ids in encoded]
        token_types = [[0] * width for _ in encoded]
        batch = {"input_ids": input_ids, "token_type_ids": token_types, "attention_mask": attention}
        if return_tensors == "pt":
            import torch
            return {k: torch.tensor(v, dtype=torch.long).reshape(len(encoded), width) for k, v in batch.items()}
        if return_tensors == "np":
            import numpy as np
            return {k: np.asarray(v, dtype=np.int64).reshape(len(encoded), width) for k, v in batch.items()}
        if return_tensors is None:
            return batch
        raise ValueError(f"return_tensors must be 'pt', 'np' or None, not {return_tensors!r}")

    def __call__(self, texts: str | Sequence[str], max_len: int | None = None, padding: str | bool = "longest",
                 return_tensors: str | None = "pt"):
        """Encode a text or a batch. ``padding``: "longest" (to the longest in the batch) or "max_length"."""
        if isinstance(texts, str):
            texts = [texts]
        encoded = [self.encode(t, max_len=max_len) for t in texts]
        if padding == "max_length":
            return self.pad(encoded, pad_to=max_len or self.model_max_length, return_tensors=return_tensors)
        if padding in ("longest", True):
            return self.pad(encoded, return_tensors=return_tensors)
        raise ValueError(f"padding must be 'longest' or 'max_length', not {padding!r}")

    def token_lengths(self, texts: Iterable[str]) -> list[int]:
        """Length of each text in ids, with [CLS] and [SEP], before any truncation."""
        return [len(self.tokenize(t)) + 2 for t in texts]


def batches_by_length(tokenizer: KoBertTokenizer, texts: Sequence[str], max_len: int, batch_size: int,
                      return_tensors: str = "pt"):
    """Yield ``(positions, batch)`` over ``texts`` sorted by token length, so each batch pads little.

    ``positions`` are the indices in ``texts`` of the batch's rows: callers write results back there to
    restore the input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    encoded = [tokenizer.encode(t, max_len=max_len) for t in texts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), batch_size):
        positions = order[start: start + batch_size]
        yield positions, tokenizer.pad([encoded[i] for i in positions], return_tensors=return_tensors)
