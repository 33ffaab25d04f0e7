"""The "kobert" backbone: KoBERT (transformers ``BertModel``) + a classification head, fine-tuned for 4 emotions.

The network is ``BertModel`` → pooled [CLS] output → dropout → linear (4 logits), as SKT's KoBERT examples do.
A model folder holds, next to ``emotag_model.json``:

* ``config.json`` + ``model.safetensors``: the fine-tuned encoder, in transformers' ``save_pretrained`` format
  (``BertModel.from_pretrained(folder)`` reads it);
* ``classifier.safetensors``: the head (``classifier.weight`` (4, hidden), ``classifier.bias`` (4,));
* ``spiece.model``, ``tokenizer_config.json``, ``special_tokens_map.json``: the KoBERT tokenizer;
* in ``emotag_model.json``: ``max_len`` (ids per sentence, with [CLS]/[SEP]), ``dropout``, ``base_model``, the
  training hyperparameters and metrics.

``TransformerModel.from_pretrained("skt/kobert-base-v1")`` (a hub id, or a local folder in that layout) gives a
fresh head on the pretrained encoder, ready for ``emotag.training``.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..labels import NUM_LABELS
from .base import METADATA_FILE, EmotionModel, ModelLoadError
from .kobert_tokenizer import TOKENIZER_FILES, KoBertTokenizer, TokenizerLoadError, _resolve_folder, batches_by_length

HEAD_FILE = "classifier.safetensors"
ENCODER_CONFIG = "config.json"
ENCODER_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
DEFAULT_BASE_MODEL = "skt/kobert-base-v1"
DEFAULT_BATCH_SIZE = 32


class KoBertClassifier(nn.Module):
    """``BertModel`` + dropout + linear over the pooled [CLS] vector; ``forward`` returns logits (batch, 4)."""

    def __init__(self, bert, num_labels: int = NUM_LABELS, dropout: float = 0.1):
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(bert.config.hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=bert.config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        outputs = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.classifier(self.dropout(self.pool(outputs, attention_mask)))

    def pool(self, outputs, attention_mask: torch.Tensor) -> torch.Tensor:
        """One vector per sentence: BERT's pooled [CLS] output."""
        return outputs.pooler_output

    def head_state(self) -> dict[str, torch.Tensor]:
        return {"classifier.weight": self.classifier.weight.detach().contiguous().cpu(),
                "classifier.bias": self.classifier.bias.detach().contiguous().cpu()}


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def _quiet_transformers():
    """No "Loading weights" / "Writing model shards" progress bars for local loads and saves."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_encoder(folder: Path):
    """``BertModel.from_pretrained(folder)``, with errors that name the file at fault."""
    from transformers import BertModel

    config = folder / ENCODER_CONFIG
    if not config.is_file():
        raise ModelLoadError(f"{config} is missing: {folder} holds no KoBERT encoder")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config} is corrupt ({exc})") from None
    weights = next((folder / n for n in ENCODER_WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        raise ModelLoadError(f"{folder / ENCODER_WEIGHTS[0]} is missing: {folder} holds no encoder weights")
    try:
        with _quiet_transformers():
            return BertModel.from_pretrained(folder)
    except Exception as exc:  # transformers and safetensors raise many kinds; all mean the same here
        raise ModelLoadError(f"{weights} is corrupt or not a BERT checkpoint ({type(exc).__name__}: {exc})") from None


class TransformerModel(EmotionModel):
    backbone = "kobert"

    def __init__(self, net: KoBertClassifier, tokenizer: KoBertTokenizer, metadata: dict | None = None,
                 device: str | torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__(metadata)
        self.device = torch.device(device) if device is not None else _default_device()
        self.net = net.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        limit = int(net.bert.config.max_position_embeddings)
        self.metadata["max_len"] = min(int(self.metadata.get("max_len") or limit), limit)
        self.metadata.setdefault("dropout", float(net.dropout.p))

    @property
    def max_len(self) -> int:
        return int(self.metadata["max_len"])

    @max_len.setter
    def max_len(self, value: int) -> None:
        limit = int(self.net.bert.config.max_position_embeddings)
        if not 2 < int(value) <= limit:
            raise ValueError(f"max_len must be between 3 and {limit} (got {value})")
        self.metadata["max_len"] = int(value)

    @classmethod
    def _saved_model(cls, path: Path, max_len: int | None, device) -> "TransformerModel | None":
        """``path`` as an emotag model folder of this backbone (None when it is not an emotag model folder)."""
        if not ((path / METADATA_FILE).is_file() and (path / HEAD_FILE).is_file()):
            return None
        from . import load_model

        model = load_model(path)
        if not isinstance(model, cls):
            raise ModelLoadError(f"{path / METADATA_FILE} is a {model.backbone!r} model, not {cls.backbone!r}")
        if max_len:
            model.max_len = max_len
        return model.to(device) if device is not None else model

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_BASE_MODEL, *, dropout: float = 0.1,
                        max_len: int | None = None, seed: int | None = None, device: str | torch.device | None = None,
                        revision: str | None = None, cache_dir: str | Path | None = None) -> "TransformerModel":
        """A pretrained KoBERT (hub id or local folder) with a fresh head; an emotag "kobert" folder as it is."""
        path = Path(name_or_path)
        saved = cls._saved_model(path, max_len, device)
        if saved is not None:
            return saved
        try:
            folder = _resolve_folder(name_or_path, revision, cache_dir, what="model",
                                     allow_patterns=[ENCODER_CONFIG, "model.safetensors", "model-*.safetensors",
                                                     "model.safetensors.index.json"])
            if folder != path and not any((folder / n).is_file() for n in ENCODER_WEIGHTS):
                # a hub repo with only the older PyTorch pickle (fetched separately so we never fetch both)
                folder = _resolve_folder(name_or_path, revision, cache_dir, what="model",
                                         allow_patterns=[ENCODER_CONFIG, "pytorch_model.bin"])
            tokenizer = KoBertTokenizer.from_pretrained(folder)
        except TokenizerLoadError as exc:
            raise ModelLoadError(str(exc)) from None
        if seed is not None:
            torch.manual_seed(seed)
        net = KoBertClassifier(_load_encoder(folder), NUM_LABELS, dropout)
        return cls(net, tokenizer, {"base_model": str(name_or_path), "dropout": dropout, "max_len": max_len},
                   device=device)

    def to(self, device: str | torch.device) -> "TransformerModel":
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    # -- inference ----------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def logits(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Raw logits (n, 4) in input order; sentences are batched by length to avoid padding waste."""
        out = np.zeros((len(texts), NUM_LABELS), dtype=np.float32)
        was_training = self.net.training
        self.net.eval()
        try:
            for positions, batch in batches_by_length(self.tokenizer, list(texts), self.max_len,
                                                      batch_size or self.batch_size):
                batch = {k: v.to(self.device) for k, v in batch.items()}
                out[positions] = self.net(**batch).float().cpu().numpy()
        finally:
            self.net.train(was_training)
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = self.logits(texts)
        if len(logits) == 0:
            return logits
        return softmax(logits)

    # -- saving and loading -------------------------------------------------------------------------------------
    def _save_weights(self, folder: Path) -> None:
        from safetensors.torch import save_file

        with _quiet_transformers():
            self.net.bert.save_pretrained(folder)
        save_file(self.net.head_state(), str(folder / HEAD_FILE), metadata={"format": "pt"})
        self.tokenizer.save_pretrained(folder)
        self.metadata.update(num_labels=NUM_LABELS, hidden_size=int(self.net.bert.config.hidden_size))

    @classmethod
    def _load_weights(cls, folder: Path, metadata: dict,
                      device: str | torch.device | None = None) -> "TransformerModel":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tokenizer = KoBertTokenizer.from_pretrained(folder)
        except TokenizerLoadError as exc:
            raise ModelLoadError(str(exc)) from None
        bert = _load_encoder(folder)
        head_path = folder / HEAD_FILE
        if not head_path.is_file():
            raise ModelLoadError(f"{head_path} is missing: {folder} has an encoder but no emotion head")
        try:
            head = load_file(str(head_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(f"{head_path} is corrupt ({type(exc).__name__}: {exc})") from None
        net = KoBertClassifier(bert, NUM_LABELS, float(metadata.get("dropout", 0.1)))
        expected = {k: tuple(v.shape) for k, v in net.head_state().items()}
        found = {k: tuple(v.shape) for k, v in head.items()}
        if found != expected:
            raise ModelLoadError(f"{head_path} does not fit the encoder: tensors {found}, expected {expected}")
        net.classifier.load_state_dict({k.split(".", 1)[1]: v for k, v in head.items()})
        if tokenizer.vocab_size > bert.config.vocab_size:
            raise ModelLoadError(f"{folder / 'spiece.model'} has {tokenizer.vocab_size} pieces but the encoder in "
                                 f"{folder / ENCODER_CONFIG} only {bert.config.vocab_size}")
        return cls(net, tokenizer, metadata, device=device)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


__all__ = ["DEFAULT_BASE_MODEL", "HEAD_FILE", "KoBertClassifier", "TOKENIZER_FILES", "TransformerModel", "softmax"]
