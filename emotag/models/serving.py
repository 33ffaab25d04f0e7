"""Load a model folder for serving: transformer models run on ONNX Runtime int8 when they can.

    model = load_for_serving(folder)   # what the predictor, the CLI and the app serve

A "kobert" or "e5-small" folder is exported once to ONNX with int8 weights (``emotag.models.onnx_export``,
with its parity check) into ``$EMOTAG_CACHE/onnx/<digest>-v<EXPORT_VERSION>`` (default ``~/.cache/emotag/onnx``),
keyed by a digest of the folder's files, so a changed model or export gets a new export and a second start
reuses the first one.
That is 3-6x faster on CPUs than PyTorch. Any failure (no onnxruntime, an export that does not match PyTorch,
a full disk) falls back to the PyTorch model with a warning: serving never fails because of the speed-up.
``EMOTAG_ONNX=0`` turns it off; other backbones load as they are.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from . import load_model
from .base import METADATA_FILE, EmotionModel, ModelLoadError, cache_root, read_metadata
from .onnx_export import EXPORT_VERSION

log = logging.getLogger(__name__)

ENV_ONNX = "EMOTAG_ONNX"
ACCELERATED = ("kobert", "e5-small")


def onnx_cache_root() -> Path:
    return cache_root() / "onnx"


def folder_digest(folder: Path) -> str:
    """sha256 over every file's name and bytes (sorted), so any change to the model gives a new digest."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode("utf-8") + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def onnx_enabled() -> bool:
    return os.environ.get(ENV_ONNX, "1").strip().lower() not in ("0", "false", "no", "off")


def load_for_serving(folder: str | Path) -> EmotionModel:
    """``load_model(folder)``, served through a cached int8 ONNX export for KoBERT and e5-small models."""
    folder = Path(folder)
    accelerate = onnx_enabled() and read_metadata(folder).get("backbone") in ACCELERATED
    target = onnx_cache_root() / f"{folder_digest(folder)[:32]}-v{EXPORT_VERSION}" if accelerate else None
    if target is not None and (target / METADATA_FILE).is_file():
        from .onnx_export import OnnxModel

        try:  # exported before from exactly these files: no need to load PyTorch at all
            return _served(OnnxModel.load(target, quantized=True), folder)
        except ModelLoadError as exc:  # a damaged cache entry: export again
            log.warning("re-exporting %s: %s", target, exc)
            shutil.rmtree(target, ignore_errors=True)
    model = _served(load_model(folder), folder)  # raises ModelLoadError for a broken folder, as always
    if target is None:
        return model
    try:
        return _export(model, folder, target)
    except Exception as exc:  # the speed-up is optional: serve the PyTorch model
        log.warning("serving %s with PyTorch: the ONNX export failed (%s: %s)", folder, type(exc).__name__, exc)
        return model


def _served(model: EmotionModel, folder: Path) -> EmotionModel:
    model.metadata["served_from"] = str(folder)
    return model


def _export(model, folder: Path, target: Path) -> EmotionModel:
    from .onnx_export import ONNX_FILE, OnnxModel, export_onnx

    log.warning("preparing fast inference for %s (once; cached in %s)", folder, target)
    exported = export_onnx(model, target, quantize=True)
    (exported / ONNX_FILE).unlink(missing_ok=True)  # the int8 graph is the one served; float32 is 4x the disk
    return _served(OnnxModel.load(exported, quantized=True), folder)


__all__ = ["ENV_ONNX", "EXPORT_VERSION", "folder_digest", "load_for_serving", "onnx_cache_root", "onnx_enabled"]
