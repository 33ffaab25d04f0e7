"""Dataset helpers shared by training and evaluation: text normalisation and the split by unique text."""
from __future__ import annotations

import hashlib
import re
import unicodedata

import pandas as pd

_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFC, collapsed whitespace, stripped: the key for dedupe and for splitting by text."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", str(text))).strip()


def text_hash(text: str) -> str:
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()


def split_by_text(df: pd.DataFrame, valid_fraction: float = 0.1, seed: int = 13) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows so that every copy of a sentence lands on the same side (no leakage between repeats).

    The side of a sentence depends only on its normalised text and the seed, so the split is stable when
    rows are added or reordered.
    """
    def bucket(text: str) -> float:
        digest = hashlib.sha1(f"{seed}:{normalize_text(text)}".encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    is_valid = df["text"].map(bucket) < valid_fraction
    return df[~is_valid].reset_index(drop=True), df[is_valid].reset_index(drop=True)
