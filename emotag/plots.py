"""Plotly figures of a tagged story: the emotion arc and the emotion distribution.

Pure plotly (no gradio), fed plain lists and dicts so anything can draw them:

    >>> from emotag import tag
    >>> from emotag.plots import emotion_arc, emotion_distribution
    >>> tagged = tag(story)
    >>> emotion_arc([s.text for s in tagged], [s.label for s in tagged], [s.scores for s in tagged]).show()
    >>> emotion_distribution([s.label for s in tagged]).show()

Sentence text goes into hover labels only after html.escape, so a story holding markup shows it as text.
"""
from __future__ import annotations

import html
from collections import Counter
from typing import Iterable, Mapping, Sequence

import plotly.graph_objects as go

from .labels import EMOTIONS, KOREAN, LABELS, normalize_label

FONT = "Noto Sans CJK KR, Noto Sans KR, Apple SD Gothic Neo, Malgun Gothic, sans-serif"
HOVER_WIDTH = 36  # characters per hover line
HOVER_MAX = 240  # characters of a sentence shown on hover


def display_label(name: str) -> str:
    """The label people see for an emotion: Korean then English, e.g. ``"기쁨 happy"``."""
    name = normalize_label(name)
    return f"{KOREAN[name]} {name}"


DISPLAY: dict[str, str] = {e.name: display_label(e.name) for e in EMOTIONS}


def hover_text(text: str, width: int = HOVER_WIDTH, limit: int = HOVER_MAX) -> str:
    """A sentence made safe for a plotly hover label: cut to ``limit``, wrapped with <br>, markup escaped."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    lines = [text[i: i + width] for i in range(0, len(text), width)] or [""]
    return "<br>".join(html.escape(line, quote=False) for line in lines)


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": html.escape(title, quote=False), "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        font={"family": FONT, "size": 13},
        height=height,
        margin={"l": 50, "r": 20, "t": 60, "b": 45},
        hoverlabel={"font": {"family": FONT}, "align": "left"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
    )
    return fig


def emotion_arc(
    texts: Sequence[str],
    labels: Sequence[str],
    scores: Sequence[Mapping[str, float]] | None = None,
    title: str = "Emotion arc",
    height: int = 360,
) -> go.Figure:
    """How the story's emotion moves, sentence by sentence (x: sentence number from 1).

    With ``scores`` (one dict of emotion -> probability per sentence): a thin line per emotion's score, and a
    marker in the predicted emotion's colour at its score. Without: one marker row per emotion.
    Hovering a point shows the sentence.
    """
    texts, labels = list(texts), [normalize_label(label) for label in labels]
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} sentences but {len(labels)} labels")
    if scores is not None:
        scores = list(scores)
        if len(scores) != len(texts):
            raise ValueError(f"{len(texts)} sentences but {len(scores)} score rows")
    x = list(range(1, len(texts) + 1))
    hovers = [hover_text(t) for t in texts]
    fig = go.Figure()

    if scores is not None:
        for emotion in EMOTIONS:
            fig.add_trace(go.Scatter(
                x=x, y=[float(row.get(emotion.name, 0.0)) for row in scores], mode="lines",
                name=f"{DISPLAY[emotion.name]} score", legendgroup=emotion.name, showlegend=False,
                line={"color": emotion.color, "width": 1.5},
                opacity=0.55, hoverinfo="skip",
            ))

    for emotion in EMOTIONS:
        idx = [i for i, label in enumerate(labels) if label == emotion.name]
        if scores is not None:
            y = [float(scores[i].get(emotion.name, 0.0)) for i in idx]
        else:
            y = [DISPLAY[emotion.name]] * len(idx)
        fig.add_trace(go.Scatter(
            x=[x[i] for i in idx], y=y, mode="markers", name=DISPLAY[emotion.name], legendgroup=emotion.name,
            marker={"color": emotion.color, "size": 10, "line": {"color": "#333333", "width": 0.6}},
            customdata=[[hovers[i]] for i in idx],
            hovertemplate=f"#%{{x}} {DISPLAY[emotion.name]}"
                          + (" %{y:.0%}" if scores is not None else "") + "<br>%{customdata[0]}<extra></extra>",
        ))

    _layout(fig, title, height)
    fig.update_xaxes(title_text="sentence", range=[0.5, max(len(x), 1) + 0.5], dtick=1 if len(x) <= 30 else None)
    if scores is not None:
        fig.update_yaxes(title_text="score", range=[0, 1.05], tickformat=".0%")
    else:
        fig.update_yaxes(title_text="emotion", type="category",
                         categoryorder="array", categoryarray=[DISPLAY[name] for name in LABELS])
    return fig


def count_labels(labels: Iterable[str]) -> dict[str, int]:
    """Sentences per emotion, every emotion present (zero when absent), in label-id order."""
    counts = Counter(normalize_label(label) for label in labels)
    return {name: counts.get(name, 0) for name in LABELS}


def emotion_distribution(labels: Iterable[str], title: str = "Emotion distribution", height: int = 360) -> go.Figure:
    """A bar per emotion (in its colour): how many sentences got it, with the share of the story."""
    counts = count_labels(labels)
    total = sum(counts.values())
    names = list(counts)
    shares = [counts[n] / total if total else 0.0 for n in names]
    fig = go.Figure(go.Bar(
        x=[DISPLAY[n] for n in names], y=[counts[n] for n in names],
        marker={"color": [e.color for e in EMOTIONS]},
        text=[f"{counts[n]} ({s:.0%})" for n, s in zip(names, shares)], textposition="outside",
        customdata=shares, hovertemplate="%{x}: %{y} sentences (%{customdata:.0%})<extra></extra>",
        showlegend=False,
    ))
    _layout(fig, title, height)
    fig.update_xaxes(title_text=None)
    fig.update_yaxes(title_text="sentences", rangemode="tozero", range=[0, max(counts.values(), default=0) * 1.2 + 1])
    return fig


def story_figures(tagged: Sequence[object]) -> tuple[go.Figure, go.Figure]:
    """Both figures for the output of ``emotag.tag()`` (TaggedSentence objects or their dicts)."""
    def get(item, key):
        return item[key] if isinstance(item, Mapping) else getattr(item, key)

    texts = [get(s, "text") for s in tagged]
    labels = [get(s, "label") for s in tagged]
    scores = [get(s, "scores") for s in tagged]
    return emotion_arc(texts, labels, scores), emotion_distribution(labels)


__all__ = ["DISPLAY", "count_labels", "display_label", "emotion_arc", "emotion_distribution", "hover_text",
           "story_figures"]
