"""Split a story into sentences with their character offsets into the original text.

Paragraphs (lines) are split first, then each paragraph goes through kss with the **mecab** backend
(python-mecab-ko). kss's pure-Python pecab backend is far too slow for whole stories, so we never fall
back to it: a missing mecab raises SplitterError with the fix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


class SplitterError(RuntimeError):
    pass


@dataclass(frozen=True)
class Span:
    """A sentence: ``text == original[start:end]``; ``paragraph`` counts non-empty lines from 0."""

    text: str
    start: int
    end: int
    paragraph: int


_PARAGRAPH = re.compile(r"[^\n]+")


@lru_cache(maxsize=1)
def _kss_split():
    try:
        import mecab  # noqa: F401  (python-mecab-ko)
        import kss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SplitterError(
            "Sentence splitting needs kss with the mecab backend: pip install kss python-mecab-ko "
            f"({exc})"
        ) from None

    def split(paragraphs: list[str]) -> list[list[str]]:
        if not paragraphs:
            return []
        result = kss.split_sentences(paragraphs, backend="mecab", num_workers=1)
        # kss unwraps a one-element list into a flat list of sentences
        return [result] if len(paragraphs) == 1 else result

    return split


def _locate(paragraph: str, sentence: str, cursor: int) -> tuple[int, int] | None:
    """Find ``sentence`` in ``paragraph`` at or after ``cursor``, tolerating whitespace differences."""
    exact = paragraph.find(sentence, cursor)
    if exact >= 0:
        return exact, exact + len(sentence)
    wanted = [c for c in sentence if not c.isspace()]
    if not wanted:
        return None
    i = cursor
    while i < len(paragraph) and paragraph[i].isspace():
        i += 1
    start, k = i, 0
    while i < len(paragraph) and k < len(wanted):
        c = paragraph[i]
        if c.isspace():
            i += 1
            continue
        if c != wanted[k]:
            return None
        i += 1
        k += 1
    return (start, i) if k == len(wanted) else None


def _spans_in_paragraph(paragraph: str, pieces: list[str]) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for piece in pieces:
        if not piece.strip():
            continue
        found = _locate(paragraph, piece.strip(), cursor)
        if found is None:
            break  # kss changed the text in a way we cannot align: keep the rest whole below
        spans.append(found)
        cursor = found[1]
    rest = paragraph[cursor:]
    if rest.strip():
        lead = len(rest) - len(rest.lstrip())
        spans.append((cursor + lead, cursor + len(rest.rstrip())))
    return spans


def split_sentences(text: str) -> list[Span]:
    """Split ``text`` into sentences. Offsets always index the text exactly as given."""
    matches = [m for m in _PARAGRAPH.finditer(text) if m.group().strip()]
    pieces = _kss_split()([m.group() for m in matches])
    spans: list[Span] = []
    for number, (match, paragraph_pieces) in enumerate(zip(matches, pieces)):
        base = match.start()
        for start, end in _spans_in_paragraph(match.group(), paragraph_pieces):
            spans.append(Span(text[base + start: base + end], base + start, base + end, number))
    return spans
