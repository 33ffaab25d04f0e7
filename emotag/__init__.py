"""emotag: tag each sentence of a Korean story as neutral / happy / sad / angry."""
from .labels import COLORS, EMOTIONS, ID2LABEL, KOREAN, LABEL2ID, LABELS
from .predictor import Prediction, Predictor, TaggedSentence, get_predictor, predict, set_predictor, tag
from .textio import InputError

__all__ = ["COLORS", "EMOTIONS", "ID2LABEL", "InputError", "KOREAN", "LABEL2ID", "LABELS", "Prediction",
           "Predictor", "TaggedSentence", "get_predictor", "predict", "set_predictor", "tag"]
