"""Backbones and loading. ``load_model(folder)`` picks the backbone named in the folder's metadata."""
from __future__ import annotations

import importlib
from pathlib import Path

from .base import METADATA_FILE, EmotionModel, ModelLoadError, read_metadata
from .classical import ClassicalModel


class _Backbones(dict):
    """Backbone name → class. Backbones that need torch or onnxruntime are registered as "module:Class" and
    imported on first lookup, so serving the classical model never pays for importing them."""

    def __getitem__(self, name: str) -> type[EmotionModel]:
        value = super().__getitem__(name)
        if isinstance(value, str):
            module, _, attr = value.partition(":")
            value = getattr(importlib.import_module(module), attr)
            self[name] = value
        return value

    def get(self, name, default=None):
        return self[name] if name in self else default


BACKBONES: dict[str, type[EmotionModel]] = _Backbones({
    ClassicalModel.backbone: ClassicalModel,
    "kobert": "emotag.models.transformer:TransformerModel",
    "kobert-onnx": "emotag.models.onnx_export:OnnxModel",
    "e5-small": "emotag.models.e5_classifier:E5Model",
    "ensemble": "emotag.models.ensemble:EnsembleModel",
    "routed": "emotag.models.routed:RoutedModel",
})

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled"
BUNDLED_MODEL = BUNDLED_DIR / "default"  # the offline default the app serves (see its MODEL_CARD.md)
CLASSICAL_MODEL = BUNDLED_DIR / "classical"  # the instant character n-gram baseline, also bundled


def load_model(folder: str | Path) -> EmotionModel:
    folder = Path(folder)
    meta = read_metadata(folder)
    backbone = BACKBONES.get(meta["backbone"])
    if backbone is None:
        raise ModelLoadError(f"{folder / METADATA_FILE} names unknown backbone {meta['backbone']!r} "
                             f"(known: {', '.join(sorted(BACKBONES))})")
    return backbone._load_weights(folder, meta)


__all__ = ["BACKBONES", "BUNDLED_MODEL", "CLASSICAL_MODEL", "ClassicalModel", "EmotionModel", "ModelLoadError", "load_model"]
