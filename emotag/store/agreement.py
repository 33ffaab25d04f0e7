"""Inter-annotator agreement: Cohen's kappa per pair (scikit-learn), Fleiss' kappa (statsmodels) and
Krippendorff's alpha (krippendorff), all over the four emotion labels.

Input everywhere is ``ratings``: item (sentence id) -> {annotator: label}. Items an annotator skipped are simply
missing. Each measure uses the items it can:

* Cohen's kappa for a pair: the items both annotators labelled.
* Fleiss' kappa needs the same raters on every item: the items labelled by *every* annotator in the report.
* Krippendorff's alpha handles missing labels: every item with two or more labels.

A measure that is undefined (no items, or every label the same so chance agreement is 1) is None.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Hashable, Mapping, Sequence

import numpy as np

from ..labels import LABEL2ID, LABELS

Ratings = Mapping[Hashable, Mapping[str, str]]


def _defined(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two annotators' labels for the same items, in the same order."""
    if len(a) != len(b):
        raise ValueError("both annotators need a label for the same items")
    if not a:
        return None
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _defined(cohen_kappa_score(list(a), list(b), labels=list(LABELS), replace_undefined_by=np.nan))


def category_table(rows: Sequence[Sequence[str]]) -> np.ndarray:
    """items x labels count table (the input of Fleiss' kappa)."""
    table = np.zeros((len(rows), len(LABELS)), dtype=int)
    for i, labels in enumerate(rows):
        for label in labels:
            table[i, LABEL2ID[label]] += 1
    return table


def fleiss_kappa(rows: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa; ``rows`` holds each item's labels, the same number (two or more) for every item."""
    if not rows:
        return None
    sizes = {len(r) for r in rows}
    if len(sizes) != 1 or sizes.pop() < 2:
        raise ValueError("Fleiss' kappa needs the same number (two or more) of labels on every item")
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _defined(_fleiss(category_table(rows), method="fleiss"))


def krippendorff_alpha(ratings: Ratings) -> float | None:
    """Krippendorff's alpha (nominal) over items with two or more labels; missing labels are allowed."""
    import krippendorff

    names = sorted({name for labels in ratings.values() for name in labels})
    items = [labels for labels in ratings.values() if len(labels) >= 2]
    if len(names) < 2 or not items:
        return None
    data = np.full((len(names), len(items)), np.nan)
    index = {name: i for i, name in enumerate(names)}
    for j, labels in enumerate(items):
        for name, label in labels.items():
            data[index[name], j] = LABEL2ID[label]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            value = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal",
                                       value_domain=list(range(len(LABELS))))
        except (ValueError, ZeroDivisionError):
            return None
    return _defined(value)


@dataclass(frozen=True)
class PairAgreement:
    a: str
    b: str
    items: int  # labelled by both
    observed: float | None  # share of those items with the same label
    kappa: float | None  # Cohen's kappa


@dataclass(frozen=True)
class AgreementReport:
    annotators: list[str]
    items: int  # items with at least one label
    pairable: int  # items with two or more labels
    disagreements: int  # items whose labels differ
    pairs: list[PairAgreement] = field(default_factory=list)
    fleiss_kappa: float | None = None
    fleiss_items: int = 0  # items labelled by every annotator (what Fleiss' kappa is computed on)
    krippendorff_alpha: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def agreement_report(ratings: Ratings) -> AgreementReport:
    ratings = {item: dict(labels) for item, labels in ratings.items() if labels}
    names = sorted({name for labels in ratings.values() for name in labels})
    pairs = []
    for a, b in combinations(names, 2):
        both = [(labels[a], labels[b]) for labels in ratings.values() if a in labels and b in labels]
        left, right = [x for x, _ in both], [y for _, y in both]
        pairs.append(PairAgreement(a, b, len(both),
                                   sum(x == y for x, y in both) / len(both) if both else None,
                                   cohen_kappa(left, right)))
    complete = [[labels[n] for n in names] for labels in ratings.values() if len(labels) == len(names)]
    fleiss = fleiss_kappa(complete) if len(names) >= 2 and complete else None
    return AgreementReport(
        annotators=names,
        items=len(ratings),
        pairable=sum(len(labels) >= 2 for labels in ratings.values()),
        disagreements=sum(len(set(labels.values())) > 1 for labels in ratings.values()),
        pairs=pairs,
        fleiss_kappa=fleiss,
        fleiss_items=len(complete) if len(names) >= 2 else 0,
        krippendorff_alpha=krippendorff_alpha(ratings),
    )
