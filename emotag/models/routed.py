"""The "routed" backbone: a story model and a dialogue model, mixed per sentence by a domain router.

Story narration and scripted dialogue want different models: one fine-tuned on hand-tagged story sentences
reads narration far better, one trained on the dialogue corpus knows the scripts. A small router (TF-IDF
character n-grams + logistic regression, trained on which source a sentence came from) gives each sentence
its probability r of being story text, and the routed model returns ``r * story + (1 - r) * dialogue``.
A member is only run on the sentences that need it (r above or below ``SKIP``), so a story costs about
one model.

A folder holds ``emotag_model.json`` (``backbone: "routed"``), ``router.npz`` (vocabulary, idf, coefficients;
no pickled code) and the two members as complete model folders under ``members/story`` and
``members/dialogue`` (the ensemble layout).

    router = DomainRouter.train(texts, is_story)
    model = RoutedModel(story_model, dialogue_model, router, {"name": "story+dialogue"})
    model.save("models/routed")
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from ..labels import NUM_LABELS
from .base import EmotionModel, ModelLoadError
from .ensemble import EnsembleModel

BACKBONE = "routed"
ROUTER_FILE = "router.npz"
STORY, DIALOGUE = "story", "dialogue"
SKIP = 0.005  # a member whose share of a sentence is below this is not run on it
ROUTER_DEFAULTS = {"ngram_min": 1, "ngram_max": 3, "max_features": 100_000, "C": 4.0}


def _vectorizer(hp: dict, vocabulary=None) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(hp["ngram_min"], hp["ngram_max"]),
                           max_features=hp["max_features"], sublinear_tf=True, dtype=np.float32,
                           vocabulary=vocabulary)


class DomainRouter:
    """P(story text) of a sentence, from character n-grams."""

    def __init__(self, vectorizer: TfidfVectorizer, coef: np.ndarray, intercept: float, params: dict | None = None):
        self.vectorizer, self.coef, self.intercept = vectorizer, np.asarray(coef, np.float32).ravel(), float(intercept)
        self.params = {**ROUTER_DEFAULTS, **(params or {})}

    @classmethod
    def train(cls, texts: Sequence[str], is_story: Sequence[bool], **params) -> "DomainRouter":
        hp = {**ROUTER_DEFAULTS, **params}
        y = np.asarray(is_story, dtype=int)
        if len(set(y.tolist())) < 2:
            raise ValueError("the router needs both story and dialogue sentences")
        vectorizer = _vectorizer(hp)
        features = vectorizer.fit_transform(list(texts))
        clf = LogisticRegression(C=hp["C"], max_iter=2000, class_weight="balanced", random_state=13)
        clf.fit(features, y)
        return cls(vectorizer, clf.coef_, clf.intercept_[0], hp)

    def story_probability(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        logits = np.asarray(self.vectorizer.transform(list(texts)) @ self.coef).ravel() + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))).astype(np.float32)

    def save(self, path: Path) -> None:
        vocab = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        np.savez_compressed(path, vocabulary=np.array(vocab, dtype=str), idf=self.vectorizer.idf_, coef=self.coef,
                            intercept=np.array([self.intercept], np.float32))

    @classmethod
    def load(cls, path: Path, params: dict | None = None) -> "DomainRouter":
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing")
        try:
            with np.load(path, allow_pickle=False) as data:
                vocab, idf, coef, intercept = (data[k] for k in ("vocabulary", "idf", "coef", "intercept"))
            if idf.shape != (len(vocab),) or coef.shape != (len(vocab),) or intercept.shape != (1,):
                raise ValueError(f"array shapes do not fit: coef {coef.shape}, idf {idf.shape}, vocabulary {len(vocab)}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelLoadError(f"{path} is corrupt or not a domain router ({type(exc).__name__}: {exc})") from None
        hp = {**ROUTER_DEFAULTS, **(params or {})}
        vectorizer = _vectorizer(hp, vocabulary={term: i for i, term in enumerate(vocab.tolist())})
        vectorizer.idf_ = idf
        return cls(vectorizer, coef, float(intercept[0]), hp)


class RoutedModel(EnsembleModel):
    backbone = BACKBONE

    def __init__(self, story: EmotionModel, dialogue: EmotionModel, router: DomainRouter,
                 metadata: dict | None = None):
        super().__init__({STORY: story, DIALOGUE: dialogue}, {STORY: 0.5, DIALOGUE: 0.5}, metadata)
        self.router = router

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), NUM_LABELS), dtype=np.float32)
        if not texts:
            return out
        r = self.router.story_probability(texts)
        for name, share in ((STORY, r), (DIALOGUE, 1.0 - r)):
            rows = np.flatnonzero(share >= SKIP)
            if len(rows):
                probs = np.asarray(self.members[name].predict_proba([texts[i] for i in rows]), dtype=np.float32)
                out[rows] += share[rows, None] * probs
        return out / out.sum(axis=1, keepdims=True)

    def _save_weights(self, folder: Path) -> None:
        super()._save_weights(folder)
        self.metadata["router"] = {"file": ROUTER_FILE, **self.router.params}
        self.router.save(folder / ROUTER_FILE)

    @classmethod
    def _load_weights(cls, folder: Path, metadata: dict) -> "RoutedModel":
        ensemble = EnsembleModel._load_weights(folder, metadata)
        if set(ensemble.members) != {STORY, DIALOGUE}:
            raise ModelLoadError(f"{folder / 'emotag_model.json'}: a routed model has members 'story' and "
                                 f"'dialogue' (found {', '.join(sorted(ensemble.members))})")
        router = DomainRouter.load(folder / ROUTER_FILE, metadata.get("router"))
        return cls(ensemble.members[STORY], ensemble.members[DIALOGUE], router, metadata)


__all__ = ["BACKBONE", "DomainRouter", "RoutedModel"]
