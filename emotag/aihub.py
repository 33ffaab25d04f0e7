"""Reader for the AI Hub 「감정 분류를 위한 대화 음성 데이터셋」 scripts, as published (cp949 CSV).

Each row is one recorded utterance with five annotators' emotions (``1번 감정`` .. ``5번 감정``) in mixed
case and spelling. The gold label is the majority (at least 3 of 5) emotion, mapped to our four classes;
rows whose majority is another emotion (disgust, fear, surprise) or that have no majority are left out.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from .labels import LABEL2ID
from .textio import InputError

TEXT_COLUMN = "발화문"
EMOTION_COLUMNS = tuple(f"{i}번 감정" for i in range(1, 6))
MAJORITY = 3
_FOUR_CLASS = {"neutral": "neutral", "happiness": "happy", "sadness": "sad", "angry": "angry"}


def majority_vote(votes: list[object]) -> tuple[str | None, int]:
    """The 4-class label of a row's five votes and how many voted for it; (None, 0) without a usable majority."""
    names = [str(v).strip().lower() for v in votes if isinstance(v, str) and v.strip()]
    if not names:
        return None, 0
    name, count = Counter(names).most_common(1)[0]
    if count < MAJORITY or name not in _FOUR_CLASS:
        return None, 0
    return _FOUR_CLASS[name], count


def read_aihub_csv(path: str | Path) -> pd.DataFrame:
    """One published CSV → rows with ``text, label, label_id, votes, source, wav_id`` (usable rows only)."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, encoding="cp949", dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        raise InputError(f"{path} is not cp949 text as AI Hub publishes it") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path} is not a readable CSV: {exc}") from None
    missing = [c for c in (TEXT_COLUMN, *EMOTION_COLUMNS) if c not in raw.columns]
    if missing:
        raise InputError(f"{path} lacks the AI Hub column(s) {', '.join(missing)}")
    votes = raw[list(EMOTION_COLUMNS)].values.tolist()
    labels, counts = zip(*(majority_vote(v) for v in votes)) if votes else ((), ())
    out = pd.DataFrame(
        {
            "text": raw[TEXT_COLUMN].str.strip(),
            "label": list(labels),
            "votes": list(counts),
            "source": path.name,
            "wav_id": raw.get("wav_id", pd.Series([""] * len(raw))),
        }
    )
    out = out[out["label"].notna() & (out["text"] != "")].reset_index(drop=True)
    out["label_id"] = out["label"].map(LABEL2ID).astype(int)
    return out


def read_aihub(folder: str | Path) -> pd.DataFrame:
    """All ``*.csv`` files in ``folder``, concatenated in name order."""
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        raise InputError(f"no AI Hub *.csv files in {folder}")
    return pd.concat([read_aihub_csv(f) for f in files], ignore_index=True)
