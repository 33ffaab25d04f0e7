"""Backbones and loading. ``load_model(folder)`` picks the backbone named in the folder's metadata."""
from __future__ import annotations

from pathlib import Path

from .base import METADATA_FILE, EmotionModel, ModelLoadError, read_metadata
from .classical import ClassicalModel

BACKBONES: dict[str, type[EmotionModel]] = {ClassicalModel.backbone: ClassicalModel}

BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "bundled" / "classical"


def load_model(folder: str | Path) -> EmotionModel:
    folder = Path(folder)
    meta = read_metadata(folder)
    backbone = BACKBONES.get(meta["backbone"])
    if backbone is None:
        raise ModelLoadError(f"{folder / METADATA_FILE} names unknown backbone {meta['backbone']!r} "
                             f"(known: {', '.join(sorted(BACKBONES))})")
    return backbone._load_weights(folder, meta)


__all__ = ["BACKBONES", "BUNDLED_MODEL", "ClassicalModel", "EmotionModel", "ModelLoadError", "load_model"]
