"""Evaluation figures every training path reports (scikit-learn underneath)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
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


def _macro_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_score(gold, predicted, labels=list(range(NUM_LABELS)), average="macro", zero_division=0))


def bootstrap_interval(gold: Sequence[int], predicted: Sequence[int], baseline: Sequence[int] | None = None,
                       rounds: int = 1000, level: float = 0.95, seed: int = 13) -> tuple[float, float]:
    """Percentile bootstrap interval of macro-F1 (sentences resampled with replacement), or with ``baseline``
    (another model's predictions on the same sentences) of the paired difference macro-F1(predicted) -
    macro-F1(baseline). Small held-out sets are noisy: a gain whose interval holds 0 is not a gain."""
    gold, predicted = np.asarray(gold), np.asarray(predicted)
    other = None if baseline is None else np.asarray(baseline)
    if len(gold) == 0 or len(gold) != len(predicted) or (other is not None and len(other) != len(gold)):
        raise ValueError("gold and predictions must be non-empty and of the same length")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        i = rng.integers(0, len(gold), len(gold))
        value = _macro_f1(gold[i], predicted[i])
        values.append(value - _macro_f1(gold[i], other[i]) if other is not None else value)
    low, high = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return round(float(low), 4), round(float(high), 4)
