"""Evaluation figures every training path reports (scikit-learn underneath)."""
from __future__ import annotations

from typing import Sequence

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from .labels import LABELS, NUM_LABELS


def evaluate(gold: Sequence[int], predicted: Sequence[int]) -> dict:
    ids = list(range(NUM_LABELS))
    per_class = f1_score(gold, predicted, labels=ids, average=None, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(float(f1_score(gold, predicted, labels=ids, average="macro", zero_division=0)), 4),
        "per_class_f1": {name: round(float(v), 4) for name, v in zip(LABELS, per_class)},
        "confusion": confusion_matrix(gold, predicted, labels=ids).tolist(),  # rows gold, columns predicted
    }
