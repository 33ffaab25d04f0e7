"""Model registry: versioned model folders and one pointer saying which model is active.

    models/                      ($EMOTAG_MODELS_DIR, default ./models)
      20261128-2315-classical-1a2b3c/   a model folder (emotag_model.json + backbone files + MODEL_CARD.md)
      ACTIVE                     {"id": "...", "previous": [...]}: replaced atomically

The bundled offline models are always available: ``bundled`` (the default) and ``classical`` (the instant
character n-gram baseline). A model is only made active after it
loads; a folder that fails to load raises ModelLoadError and the active model stays as it was.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from .models import BUNDLED_MODEL, CLASSICAL_MODEL, EmotionModel, ModelLoadError, load_model
from .models.base import read_metadata

BUNDLED_ID = "bundled"
CLASSICAL_ID = "classical"
BUILT_IN = {BUNDLED_ID: BUNDLED_MODEL, CLASSICAL_ID: CLASSICAL_MODEL}
POINTER = "ACTIVE"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class ModelEntry:
    id: str
    path: Path
    metadata: dict
    active: bool


class Registry:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root or os.environ.get("EMOTAG_MODELS_DIR") or "models")

    # -- reading -------------------------------------------------------------------------------------------
    def path(self, model_id: str) -> Path:
        if model_id in BUILT_IN:
            return BUILT_IN[model_id]
        if not _SAFE_ID.match(model_id):
            raise ModelLoadError(f"{model_id!r} is not a model id")
        return self.root / model_id

    def _pointer(self) -> dict:
        try:
            data = json.loads((self.root / POINTER).read_text(encoding="utf-8"))
            return data if isinstance(data, dict) and isinstance(data.get("id"), str) else {}
        except (OSError, ValueError):
            return {}

    def active_id(self) -> str:
        model_id = self._pointer().get("id", BUNDLED_ID)
        try:
            return model_id if self.path(model_id).is_dir() else BUNDLED_ID
        except ModelLoadError:
            return BUNDLED_ID

    def active_path(self) -> Path:
        return self.path(self.active_id())

    def history(self) -> list[str]:
        """Earlier active ids, most recent first."""
        return [m for m in self._pointer().get("previous", []) if isinstance(m, str)]

    def list(self) -> list[ModelEntry]:
        active = self.active_id()
        entries = [ModelEntry(i, p, _metadata_or_error(p), active == i) for i, p in BUILT_IN.items()]
        if self.root.is_dir():
            for folder in sorted(self.root.iterdir(), reverse=True):
                if folder.is_dir() and not folder.name.startswith(".") and _SAFE_ID.match(folder.name) \
                        and folder.name not in BUILT_IN:
                    entries.append(ModelEntry(folder.name, folder, _metadata_or_error(folder), folder.name == active))
        return entries

    def load(self, model_id: str | None = None) -> EmotionModel:
        return load_model(self.path(model_id or self.active_id()))

    # -- writing -------------------------------------------------------------------------------------------
    def new_id(self, backbone: str) -> str:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{re.sub(r'[^A-Za-z0-9-]', '-', backbone)}-{secrets.token_hex(3)}"

    def add(self, folder: str | Path, model_id: str | None = None) -> str:
        """Move a finished model folder into the registry (it must load) and return its id; not activated."""
        folder = Path(folder)
        meta = read_metadata(folder)
        load_model(folder)  # refuses a folder that would not serve
        model_id = model_id or self.new_id(meta["backbone"])
        target = self.path(model_id)
        if target.exists():
            raise FileExistsError(f"model {model_id} already exists in {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(target))
        return model_id

    def activate(self, model_id: str, loader=None) -> EmotionModel:
        """Make ``model_id`` active (promote or roll back). It is loaded first (``loader(folder)``, default
        ``load_model``): on failure nothing changes."""
        model = (loader or load_model)(self.path(model_id))
        current = self.active_id()
        previous = [current] + [m for m in self.history() if m not in (current, model_id)] if current != model_id \
            else self.history()
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{POINTER}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"id": model_id, "previous": previous[:50],
                                   "changed": dt.datetime.now().isoformat(timespec="seconds")}) + "\n",
                       encoding="utf-8")
        os.replace(tmp, self.root / POINTER)
        return model


def _metadata_or_error(folder: Path) -> dict:
    try:
        return read_metadata(folder)
    except ModelLoadError as exc:
        return {"error": str(exc)}
