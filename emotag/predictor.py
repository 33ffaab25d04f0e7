"""text → sentences → predictions. The one API the CLI, the UI and other code call.

    >>> from emotag import tag
    >>> for s in tag("옛날에 착한 토끼가 살았어요. 토끼는 너무 기뻤어요!"):
    ...     print(s.label, s.text)
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .labels import LABELS
from .models import EmotionModel
from .models.serving import load_for_serving
from .splitter import split_sentences
from .textio import check_story_text

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (sentences done, total)
DEFAULT_BATCH_SIZE = 256  # sentences per progress step; transformer backbones sort each chunk by length


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    label_id: int
    confidence: float
    scores: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TaggedSentence(Prediction):
    start: int = 0
    end: int = 0
    paragraph: int = 0


class Predictor:
    """Serves any EmotionModel: batches sentences and turns probabilities into Predictions."""

    def __init__(self, model: EmotionModel, batch_size: int = DEFAULT_BATCH_SIZE):
        self.model = model
        self.batch_size = batch_size

    def predict(self, sentences: Sequence[str], progress: Progress | None = None) -> list[Prediction]:
        sentences = list(sentences)
        probs = np.zeros((len(sentences), len(LABELS)), dtype=np.float32)
        for start in range(0, len(sentences), self.batch_size):
            batch = sentences[start: start + self.batch_size]
            probs[start: start + len(batch)] = self.model.predict_proba(batch)
            if progress:
                progress(start + len(batch), len(sentences))
        return [_prediction(text, row) for text, row in zip(sentences, probs)]

    def tag(self, text: str, progress: Progress | None = None) -> list[TaggedSentence]:
        text = check_story_text(text)
        spans = split_sentences(text)
        predictions = self.predict([s.text for s in spans], progress=progress)
        return [TaggedSentence(**asdict(p), start=s.start, end=s.end, paragraph=s.paragraph)
                for p, s in zip(predictions, spans)]


def _prediction(text: str, row: np.ndarray) -> Prediction:
    best = int(np.argmax(row))
    return Prediction(text=text, label=LABELS[best], label_id=best, confidence=round(float(row[best]), 4),
                      scores={name: round(float(p), 4) for name, p in zip(LABELS, row)})


_default: Predictor | None = None


def default_model_path() -> Path:
    """The model served by default: $EMOTAG_MODEL if set, else the registry's active model (else the bundled one)."""
    if os.environ.get("EMOTAG_MODEL"):
        return Path(os.environ["EMOTAG_MODEL"])
    from .registry import Registry

    return Registry().active_path()


def get_predictor() -> Predictor:
    global _default
    if _default is None:
        _default = Predictor(load_default_model())
    return _default


def load_default_model() -> EmotionModel:
    """The default model as served; if the bundled default cannot load here (its pretrained encoder is
    missing, say), the bundled classical model serves instead, with a warning, rather than nothing at all."""
    from .models import BUNDLED_MODEL, CLASSICAL_MODEL, ModelLoadError

    path = default_model_path()
    try:
        return load_for_serving(path)
    except ModelLoadError as exc:
        if path.resolve() != BUNDLED_MODEL.resolve():
            raise
        log.warning("the bundled default model cannot load (%s); serving the bundled classical model", exc)
        model = load_for_serving(CLASSICAL_MODEL)
        model.metadata["fallback_reason"] = str(exc)
        return model


def set_predictor(predictor: Predictor | None) -> None:
    """Swap the model every caller of tag()/predict() uses (None: reload the default on next use)."""
    global _default
    _default = predictor


def predict(sentences: Sequence[str], progress: Progress | None = None) -> list[Prediction]:
    """Tag each given sentence as it is (no splitting), in order, batched."""
    return get_predictor().predict(sentences, progress=progress)


def tag(text: str, progress: Progress | None = None) -> list[TaggedSentence]:
    """Split a story into sentences and tag each; raises InputError for text that cannot be tagged."""
    return get_predictor().tag(text, progress=progress)
