"""emotag.plots (pure plotly figures) and emotag.samples; the core package must not need gradio."""
import json
import subprocess
import sys

import pytest

from emotag.labels import COLORS, EMOTIONS, KOREAN, LABELS
from emotag.plots import (DISPLAY, count_labels, display_label, emotion_arc, emotion_distribution, hover_text,
                          story_figures)
from emotag.samples import SAMPLES
from tests.ui_server import ROOT

TEXTS = ["토끼가 살았어요.", "와, 신난다!", "너무 슬퍼요.", "왜 그랬어! 화가 나!", "<b>bold</b> 이야기예요."]
LABELS_ = ["neutral", "happy", "sad", "angry", "neutral"]
SCORES = [{"neutral": 0.7, "happy": 0.1, "sad": 0.1, "angry": 0.1},
          {"neutral": 0.1, "happy": 0.8, "sad": 0.05, "angry": 0.05},
          {"neutral": 0.2, "happy": 0.0, "sad": 0.6, "angry": 0.2},
          {"neutral": 0.0, "happy": 0.0, "sad": 0.1, "angry": 0.9},
          {"neutral": 0.5, "happy": 0.2, "sad": 0.2, "angry": 0.1}]


def _markers(fig):
    return {t.name: t for t in fig.data if t.mode == "markers"}


def test_display_label():
    assert display_label("happy") == "기쁨 happy"
    assert display_label(3) == "분노 angry"
    assert DISPLAY == {name: f"{KOREAN[name]} {name}" for name in LABELS}


def test_arc_with_scores_has_a_line_and_markers_per_emotion():
    fig = emotion_arc(TEXTS, LABELS_, SCORES)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.line.color for t in lines] == [e.color for e in EMOTIONS]
    assert list(lines[1].y) == [row["happy"] for row in SCORES]
    assert list(lines[0].x) == [1, 2, 3, 4, 5]
    markers = _markers(fig)
    assert set(markers) == set(DISPLAY.values())
    neutral = markers[DISPLAY["neutral"]]
    assert list(neutral.x) == [1, 5] and list(neutral.y) == [0.7, 0.5]
    assert neutral.marker.color == COLORS["neutral"]
    assert list(markers[DISPLAY["angry"]].x) == [4]
    # hover shows the sentence, markup escaped
    hovers = [c[0] for c in neutral.customdata]
    assert hovers[0] == "토끼가 살았어요."
    assert "&lt;b&gt;bold&lt;/b&gt;" in hovers[1] and "<b>" not in hovers[1]
    assert "%{customdata[0]}" in neutral.hovertemplate
    json.loads(fig.to_json())


def test_arc_without_scores_uses_label_rows():
    fig = emotion_arc(TEXTS, LABELS_)
    assert all(t.mode == "markers" for t in fig.data)
    sad = _markers(fig)[DISPLAY["sad"]]
    assert list(sad.x) == [3] and list(sad.y) == [DISPLAY["sad"]]
    assert list(fig.layout.yaxis.categoryarray) == [DISPLAY[n] for n in LABELS]


def test_arc_checks_lengths_and_labels():
    with pytest.raises(ValueError):
        emotion_arc(TEXTS, LABELS_[:-1])
    with pytest.raises(ValueError):
        emotion_arc(TEXTS, LABELS_, SCORES[:2])
    with pytest.raises(ValueError):
        emotion_arc(["a"], ["bored"])


def test_arc_empty_story():
    fig = emotion_arc([], [], [])
    assert all(len(t.x) == 0 for t in fig.data)


def test_distribution_counts_and_colours():
    fig = emotion_distribution(["happy", "sad", "sad", "기쁨", 3])
    (bar,) = fig.data
    assert list(bar.x) == [DISPLAY[n] for n in LABELS]
    assert list(bar.y) == [0, 2, 2, 1]
    assert list(bar.marker.color) == [e.color for e in EMOTIONS]
    assert bar.text[1] == "2 (40%)"
    assert count_labels([]) == {n: 0 for n in LABELS}
    empty = emotion_distribution([])
    assert list(empty.data[0].y) == [0, 0, 0, 0]


def test_hover_text_wraps_cuts_and_escapes():
    text = "가" * 100
    wrapped = hover_text(text, width=40)
    assert wrapped.split("<br>") == ["가" * 40, "가" * 40, "가" * 20]
    assert hover_text("나" * 500, limit=50).endswith("…")
    assert hover_text("a & <i>b</i>\n c") == "a &amp; &lt;i&gt;b&lt;/i&gt; c"


def test_story_figures_from_dicts_and_objects():
    from emotag.predictor import TaggedSentence
    rows = [{"text": t, "label": lab, "scores": sc} for t, lab, sc in zip(TEXTS, LABELS_, SCORES)]
    arc, dist = story_figures(rows)
    assert list(dist.data[0].y) == [2, 1, 1, 1]
    objs = [TaggedSentence(text=t, label=lab, label_id=LABELS.index(lab), confidence=max(sc.values()), scores=sc)
            for t, lab, sc in zip(TEXTS, LABELS_, SCORES)]
    arc2, dist2 = story_figures(objs)
    assert arc2.to_json() == arc.to_json() and dist2.to_json() == dist.to_json()


def test_samples_are_short_korean_stories():
    assert len(SAMPLES) == 3
    for title, text in SAMPLES.items():
        assert title and text.strip()
        lines = [line for line in text.splitlines() if line.strip()]
        assert 5 <= len(lines) <= 10
        assert any('"' in line for line in lines) and any('"' not in line for line in lines)


def test_core_package_does_not_import_gradio():
    code = ("import sys, emotag, emotag.plots, emotag.samples, emotag.cli, emotag.predictor, emotag.textio; "
            "bad = sorted(m for m in sys.modules if m == 'gradio' or m.startswith('gradio.')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
