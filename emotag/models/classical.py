"""The classical backbone: TF-IDF over character n-grams + logistic regression (scikit-learn).

Instant to train and to run; the bundled offline default. Trained with scikit-learn, saved as plain arrays
(``classical.npz``: vocabulary, idf, coefficients), so loading is fast and runs no pickled code.
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

WEIGHTS_FILE = "classical.npz"
DEFAULTS = {"ngram_min": 1, "ngram_max": 4, "max_features": 200_000, "C": 4.0, "class_weight": "balanced", "seed": 13}


def _vectorizer(hp: dict, vocabulary=None) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char_wb", ngram_range=(hp["ngram_min"], hp["ngram_max"]),
                           max_features=hp["max_features"], sublinear_tf=True, dtype=np.float32,
                           vocabulary=vocabulary)


class ClassicalModel(EmotionModel):
    backbone = "classical"

    def __init__(self, vectorizer: TfidfVectorizer, coef: np.ndarray, intercept: np.ndarray, metadata: dict | None = None):
        super().__init__(metadata)
        self.vectorizer, self.coef, self.intercept = vectorizer, coef.astype(np.float32), intercept.astype(np.float32)

    @classmethod
    def train(cls, texts: Sequence[str], label_ids: Sequence[int], sample_weight: Sequence[float] | None = None,
              **params) -> "ClassicalModel":
        hp = {**DEFAULTS, **params}
        labels = np.asarray(label_ids, dtype=int)
        missing = sorted(set(range(NUM_LABELS)) - set(labels.tolist()))
        if missing:
            raise ValueError(f"training data has no examples of label id(s) {missing}")
        vectorizer = _vectorizer(hp)
        features = vectorizer.fit_transform(list(texts))
        clf = LogisticRegression(C=hp["C"], max_iter=2000, class_weight=hp["class_weight"], random_state=hp["seed"])
        clf.fit(features, labels, sample_weight=None if sample_weight is None else np.asarray(sample_weight, float))
        return cls(vectorizer, clf.coef_, clf.intercept_, {"hyperparameters": hp})

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, NUM_LABELS), dtype=np.float32)
        logits = np.asarray(self.vectorizer.transform(list(texts)) @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

    def _save_weights(self, folder: Path) -> None:
        vocab = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        np.savez_compressed(folder / WEIGHTS_FILE, vocabulary=np.array(vocab, dtype=str), idf=self.vectorizer.idf_,
                            coef=self.coef, intercept=self.intercept)

    @classmethod
    def _load_weights(cls, folder: Path, metadata: dict) -> "ClassicalModel":
        path = folder / WEIGHTS_FILE
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing")
        try:
            with np.load(path, allow_pickle=False) as data:
                vocab, idf, coef, intercept = (data[k] for k in ("vocabulary", "idf", "coef", "intercept"))
            if coef.shape != (NUM_LABELS, len(vocab)) or idf.shape != (len(vocab),) or intercept.shape != (NUM_LABELS,):
                raise ValueError(f"array shapes do not fit: coef {coef.shape}, idf {idf.shape}, vocabulary {len(vocab)}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelLoadError(f"{path} is corrupt or not a classical emotag model ({type(exc).__name__}: {exc})") from None
        hp = {**DEFAULTS, **metadata.get("hyperparameters", {})}
        vectorizer = _vectorizer(hp, vocabulary={term: i for i, term in enumerate(vocab.tolist())})
        vectorizer.idf_ = idf
        return cls(vectorizer, coef, intercept, metadata)
