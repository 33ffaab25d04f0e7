import time

import pytest

from emotag.splitter import split_sentences

STORY = (
    "옛날 옛적, 깊은 산속에 작은 토끼가 살았어요.  토끼는 매일 아침 산책을 했지요!\n"
    "\n"
    "\"어디 가니? 나랑 같이 가자.\" 다람쥐가 물었어요.\r\n"
    "   \n"
    "토끼는 웃으며 대답했어요. \"좋아! 같이 가자.\"\n"
)


def test_offsets_map_back_to_the_original_text():
    spans = split_sentences(STORY)
    assert len(spans) >= 5
    for s in spans:
        assert STORY[s.start:s.end] == s.text
    starts = [s.start for s in spans]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_no_empty_or_padded_sentences():
    for s in split_sentences(STORY):
        assert s.text.strip() == s.text and s.text


def test_dialogue_in_quotes_stays_whole():
    texts = [s.text for s in split_sentences(STORY)]
    assert any(t.startswith('"어디 가니? 나랑 같이 가자."') for t in texts)
    assert not any(t in ('"어디 가니?', "나랑 같이 가자.\"") for t in texts)
    assert any(t.endswith('"좋아! 같이 가자."') for t in texts)


def test_paragraphs_are_split_first_and_numbered():
    spans = split_sentences(STORY)
    assert [s.paragraph for s in spans][0] == 0
    assert max(s.paragraph for s in spans) == 2
    assert all("\n" not in s.text for s in spans)


def test_one_paragraph_and_nothing():
    assert [s.text for s in split_sentences("토끼가 웃었다. 여우는 울었다.")] == ["토끼가 웃었다.", "여우는 울었다."]
    assert split_sentences("") == []
    assert split_sentences(" \n\n \t") == []


def test_uses_mecab_not_pecab(monkeypatch):
    import kss
    import mecab  # python-mecab-ko must be installed: the splitter never falls back to pecab
    assert mecab.MeCab().morphs("토끼가 뛰었다")
    calls = []
    real = kss.split_sentences
    monkeypatch.setattr(kss, "split_sentences", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    assert [s.text for s in split_sentences("토끼가 웃었다. 여우는 울었다.")] == ["토끼가 웃었다.", "여우는 울었다."]
    assert calls and all(kw.get("backend") == "mecab" for kw in calls)


def test_a_real_story_splits_fast_and_exactly(stories_dir):
    path = stories_dir / "nunui_yeowang__snow_queen.txt"
    text = path.read_text(encoding="utf-8")
    split_sentences("준비. 운동.")  # warm-up
    t0 = time.perf_counter()
    spans = split_sentences(text)
    elapsed = time.perf_counter() - t0
    assert 700 < len(spans) < 1100
    assert all(text[s.start:s.end] == s.text for s in spans)
    assert elapsed < 30  # generous: the real target (< 2 s) is tracked in bench/bench_split.py
