"""The "ensemble" backbone: a weighted average of member models' probabilities.

A folder holds ``emotag_model.json`` (``backbone: "ensemble"``, ``members``: ``[{"folder": "e5", "weight":
0.7}, ...]``) and each member as a complete model folder under ``members/`` (so the folder moves and copies as
one). Members load the way the app serves them (``emotag.models.serving.load_for_serving``: a transformer
member runs on its int8 ONNX export). Useful when two models are good at different things: the character
n-gram model remembers the near-duplicate lines of the dialogue corpus, a fine-tuned encoder generalises to
story narration.

    model = EnsembleModel.build({"classical": (classical, 0.3), "e5": (e5, 0.7)})
    model.save("models/e5-classical")
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from ..labels import NUM_LABELS
from .base import EmotionModel, ModelLoadError

BACKBONE = "ensemble"
MEMBERS_DIR = "members"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class EnsembleModel(EmotionModel):
    backbone = BACKBONE

    def __init__(self, members: dict[str, EmotionModel], weights: dict[str, float], metadata: dict | None = None):
        super().__init__(metadata)
        if not members or set(members) != set(weights):
            raise ValueError("an ensemble needs members, each with a weight")
        bad = [n for n in members if not _NAME.match(n)]
        if bad:
            raise ValueError(f"member names must be plain folder names: {bad}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"member weights must be >= 0 and not all 0: {weights}")
        total = float(sum(weights.values()))
        self.members = dict(members)
        self.weights = {n: float(w) / total for n, w in weights.items()}

    @classmethod
    def build(cls, members: dict[str, tuple[EmotionModel, float]], metadata: dict | None = None) -> "EnsembleModel":
        return cls({n: m for n, (m, _) in members.items()}, {n: w for n, (_, w) in members.items()}, metadata)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), NUM_LABELS), dtype=np.float32)
        if not texts:
            return out
        for name, model in self.members.items():
            if self.weights[name] > 0:
                out += self.weights[name] * np.asarray(model.predict_proba(texts), dtype=np.float32)
        return out

    # -- saving and loading ---------------------------------------------------------------------------------
    def _save_weights(self, folder: Path) -> None:
        self.metadata["members"] = [{"folder": n, "weight": round(self.weights[n], 6),
                                     "backbone": self.members[n].backbone} for n in self.members]
        for name, model in self.members.items():
            served_from = model.metadata.get("served_from")
            target = folder / MEMBERS_DIR / name
            if served_from and Path(served_from).is_dir() and read_backbone(Path(served_from)):
                # loaded from a folder (maybe served through the int8 ONNX cache): copy that folder as it is
                shutil.copytree(served_from, target)
            else:
                model.save(target)

    @classmethod
    def _load_weights(cls, folder: Path, metadata: dict) -> "EnsembleModel":
        from .serving import load_for_serving

        entries = metadata.get("members")
        if not isinstance(entries, list) or not entries:
            raise ModelLoadError(f"{folder / 'emotag_model.json'} lists no ensemble members")
        members, weights = {}, {}
        for entry in entries:
            name = entry.get("folder") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not _NAME.match(name):
                raise ModelLoadError(f"{folder / 'emotag_model.json'} has a bad member entry: {entry!r}")
            members[name] = load_for_serving(folder / MEMBERS_DIR / name)  # ModelLoadError names the file
            weights[name] = float(entry.get("weight", 1.0))
        try:
            return cls(members, weights, metadata)
        except ValueError as exc:
            raise ModelLoadError(f"{folder / 'emotag_model.json'}: {exc}") from None


def read_backbone(folder: Path) -> str | None:
    from .base import read_metadata

    try:
        return read_metadata(folder).get("backbone")
    except ModelLoadError:
        return None


def weight_curve(first: np.ndarray, second: np.ndarray, gold: Sequence[int], steps: int = 21
                 ) -> list[tuple[float, float]]:
    """(w, macro-F1 on ``gold``) of ``w * first + (1 - w) * second`` for w = 0 … 1 in ``steps`` steps."""
    from sklearn.metrics import f1_score

    curve = []
    for w in np.linspace(0.0, 1.0, steps):
        predicted = (w * first + (1 - w) * second).argmax(axis=1)
        f1 = f1_score(gold, predicted, labels=list(range(NUM_LABELS)), average="macro", zero_division=0)
        curve.append((round(float(w), 4), float(f1)))
    return curve


def tune_weight(first: np.ndarray, second: np.ndarray, gold: Sequence[int], steps: int = 21) -> tuple[float, float]:
    """The weight w of ``first`` (``second`` gets 1 - w) that gives the best macro-F1 on ``gold``; (w, F1).
    Ties go to the smaller weight."""
    best = (0.0, -1.0)
    for w, f1 in weight_curve(first, second, gold, steps):
        if f1 > best[1] + 1e-9:
            best = (w, f1)
    return best


__all__ = ["BACKBONE", "EnsembleModel", "tune_weight", "weight_curve"]
