"""Writing predictions out: plain text, JSON Lines, CSV and TTS filelists (``wav|text|speaker|id|id``)."""
from __future__ import annotations

import csv
import io
import json
import re
from typing import Iterable, Sequence

from .labels import KOREAN, LABELS
from .predictor import Prediction, TaggedSentence

FORMATS = ("text", "jsonl", "csv", "tts")
DEFAULT_WAV = "reference.wav"
DEFAULT_SPEAKER = "0"
_FIELD_BREAKS = re.compile(r"[|\s]+")


def prediction_record(p: Prediction) -> dict:
    """The stable JSON shape of one prediction (used by `predict --format jsonl` and outside evaluation)."""
    record = {"text": p.text, "label": p.label, "label_id": p.label_id, "confidence": p.confidence, "scores": p.scores}
    if isinstance(p, TaggedSentence):
        record = {"text": p.text, "start": p.start, "end": p.end, **{k: v for k, v in record.items() if k != "text"}}
    return record


def to_jsonl(predictions: Iterable[Prediction]) -> str:
    return "".join(json.dumps(prediction_record(p), ensure_ascii=False) + "\n" for p in predictions)


def to_csv(predictions: Sequence[Prediction]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    tagged = bool(predictions) and isinstance(predictions[0], TaggedSentence)
    writer.writerow(["index", *(["start", "end"] if tagged else []), "text", "label", "label_id", "confidence",
                     *(f"score_{name}" for name in LABELS)])
    for i, p in enumerate(predictions):
        writer.writerow([i, *([p.start, p.end] if tagged else []), p.text, p.label, p.label_id, p.confidence,
                         *(p.scores[name] for name in LABELS)])
    return out.getvalue()


def to_text(predictions: Iterable[Prediction]) -> str:
    return "".join(f"[{KOREAN[p.label]} {p.label:<7} {p.confidence:.2f}] {p.text}\n" for p in predictions)


def tts_field(text: str) -> str:
    """Make text safe for one field of a pipe-separated filelist line."""
    return _FIELD_BREAKS.sub(" ", text).strip()


def tts_line(wav: str, text: str, speaker: str, label_id: int) -> str:
    return f"{wav}|{tts_field(text)}|{speaker}|{label_id}|{label_id}"


def to_tts(predictions: Sequence[Prediction], wav: str = DEFAULT_WAV, speaker: str = DEFAULT_SPEAKER) -> str:
    """One filelist line per sentence. ``wav`` may hold ``{index}`` (e.g. ``wavs/story_{index:04d}.wav``)."""
    return "".join(tts_line(wav.format(index=i), p.text, speaker, p.label_id) + "\n" for i, p in enumerate(predictions))


def render(predictions: Sequence[Prediction], fmt: str, wav: str = DEFAULT_WAV, speaker: str = DEFAULT_SPEAKER) -> str:
    if fmt == "jsonl":
        return to_jsonl(predictions)
    if fmt == "csv":
        return to_csv(predictions)
    if fmt == "tts":
        return to_tts(predictions, wav=wav, speaker=speaker)
    if fmt == "text":
        return to_text(predictions)
    raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
