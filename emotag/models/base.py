"""The interface every backbone implements, and the on-disk layout they share.

A model folder holds ``emotag_model.json`` (backbone name, label map, metrics, ...) next to the backbone's
own files. ``emotag.models.load_model(folder)`` reads the JSON and hands the folder to the right backbone.
"""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from ..labels import ID2LABEL

METADATA_FILE = "emotag_model.json"


def cache_root() -> Path:
    """Where models keep what they build once (the e5 conversion, ONNX exports): $EMOTAG_CACHE, else
    ``~/.cache/emotag``."""
    root = os.environ.get("EMOTAG_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "emotag"


class ModelLoadError(RuntimeError):
    """A model folder or file that is missing, corrupt, or for another label set; the message names the file."""


class EmotionModel(ABC):
    """Scores sentences for the four emotions. Subclasses add training and their own save format."""

    backbone: str = ""

    def __init__(self, metadata: dict | None = None):
        self.metadata: dict = dict(metadata or {})

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities of shape (len(texts), 4), columns in label-id order."""

    @abstractmethod
    def _save_weights(self, folder: Path) -> None: ...

    @classmethod
    @abstractmethod
    def _load_weights(cls, folder: Path, metadata: dict) -> "EmotionModel": ...

    @property
    def name(self) -> str:
        return self.metadata.get("name") or self.backbone

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_weights(folder)
        meta = {**self.metadata, "backbone": self.backbone, "id2label": {str(k): v for k, v in ID2LABEL.items()}}
        (folder / METADATA_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return folder


def read_metadata(folder: Path) -> dict:
    path = folder / METADATA_FILE
    if not folder.exists():
        raise ModelLoadError(f"model folder {folder} does not exist")
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: {folder} is not an emotag model folder")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is corrupt ({exc})") from None
    if not isinstance(meta, dict) or "backbone" not in meta:
        raise ModelLoadError(f"{path} does not name a backbone")
    labels = {int(k): v for k, v in meta.get("id2label", {}).items()} if isinstance(meta.get("id2label"), dict) else None
    if labels is not None and labels != ID2LABEL:
        raise ModelLoadError(f"{path} was trained for labels {labels}, not {ID2LABEL}")
    return meta
