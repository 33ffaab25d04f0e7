"""The merged dataset builder (emotag.merged): precedence, dedupe, the fixed story validation set, counts, CSV."""
from __future__ import annotations

import csv
import re
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest

from emotag import merged as M
from emotag.dataset import split_by_text
from emotag.merged import Sources, build_merged, fingerprint, merge_rows
from emotag.stories import STORY_VALIDATION
from emotag.textio import InputError

from .tiny_bert import LABELLED

AIHUB_NAMES = {"neutral": "Neutral", "happy": "Happiness", "sad": "Sadness", "angry": "Angry"}
VALIDATION_STORY = sorted(STORY_VALIDATION)[0]  # a whole story that is never trained on


def write_aihub_csv(path: Path, rows: list[tuple[str, str]] | None = None) -> Path:
    """A tiny AI Hub script file as published (cp949, five annotators' emotions per row)."""
    rows = rows if rows is not None else [(t, label) for label, texts in LABELLED.items() for t in texts]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="cp949", newline="") as f:
        w = csv.writer(f)
        w.writerow(["wav_id", "발화문", "상황", *[x for i in range(1, 6) for x in (f"{i}번 감정", f"{i}번 감정세기")],
                    "나이", "성별"])
        for i, (text, label) in enumerate(rows):
            w.writerow([f"w{i}", text, "x", *[x for _ in range(5) for x in (AIHUB_NAMES[label], 1)], 30, "male"])
    return path


def row(text, label, source="aihub", rank=M.RANK_CORPUS, **extra):
    return {"text": text, "label": label, "source": source, "rank": rank, **extra}


# ---------------------------------------------------------------------------------------------------- rules


def test_human_label_beats_story_label_beats_corpus_label():
    rows = [row("토끼가 웃었어요.", "happy"),
            row("토끼가  웃었어요. ", "sad", "stories", M.RANK_STORIES),  # same text once normalised
            row("토끼가 웃었어요.", "angry", "annotations", M.RANK_STORE, sub_rank=1),
            row("거북이가 울었어요.", "sad"),
            row("거북이가 울었어요.", "neutral", "stories", M.RANK_STORIES)]
    frame, duplicates, overridden = merge_rows(rows)
    by_text = frame.set_index("text")
    assert by_text.loc["토끼가 웃었어요.", "label"] == "angry"
    assert by_text.loc["토끼가 웃었어요.", "source"] == "annotations"
    assert by_text.loc["거북이가 울었어요.", "label"] == "neutral"
    assert by_text.loc["거북이가 울었어요.", "source"] == "stories"
    assert len(frame) == 2 and duplicates == 3 and overridden == 2
    assert list(frame.columns) == ["text", "label", "label_id", "source", "split"]
    assert frame.set_index("text").loc["토끼가 웃었어요.", "label_id"] == 3


def test_store_adjudicated_beats_majority_beats_latest():
    text = "곰이 화를 냈어요."
    rows = [row(text, "sad", "annotations", M.RANK_STORE, sub_rank=M.STORE_RANK["latest"]),
            row(text, "happy", "annotations", M.RANK_STORE, sub_rank=M.STORE_RANK["majority"]),
            row(text, "happy", "annotations", M.RANK_STORE, sub_rank=M.STORE_RANK["majority"])]
    assert merge_rows(rows)[0]["label"].tolist() == ["happy"]
    rows.append(row(text, "angry", "annotations", M.RANK_STORE, sub_rank=M.STORE_RANK["adjudicated"]))
    assert merge_rows(rows)[0]["label"].tolist() == ["angry"]


def test_same_precedence_majority_then_first_read():
    rows = [row("a 문장", "sad"), row("a 문장", "happy"), row("a 문장", "happy"),
            row("b 문장", "angry", "file:x.csv"), row("b 문장", "neutral")]
    frame = merge_rows(rows)[0].set_index("text")
    assert frame.loc["a 문장", "label"] == "happy"  # 2 votes to 1
    assert frame.loc["b 문장", "label"] == "angry" and frame.loc["b 문장", "source"] == "file:x.csv"  # tie: first


def test_dedupe_uses_normalised_text():
    composed, decomposed = "한글 문장이에요.", "\u1112\u1161\u11ab\u1100\u1173\u11af 문장이에요."  # NFC vs NFD
    frame, duplicates, _ = merge_rows([row(composed, "happy"), row(decomposed, "happy"),
                                       row("  한글   문장이에요.\n", "happy")])
    assert len(frame) == 1 and duplicates == 2 and frame["text"][0] == composed


def test_story_validation_sentences_are_never_trained_on():
    texts = [f"문장 {i}번이에요." for i in range(200)]
    rows = [row(t, "neutral") for t in texts]
    rows.append(row(texts[0], "sad", "stories", M.RANK_STORIES, story_valid=True))  # also in a held-out story
    frame = merge_rows(rows, valid_fraction=0.2)[0].set_index("text")
    assert frame.loc[texts[0], "split"] == "story_valid" and frame.loc[texts[0], "label"] == "sad"
    # a story-validation text stays there even when a corpus row of it outranks nothing: it is held out
    rows2 = [row(texts[1], "happy", "annotations", M.RANK_STORE, sub_rank=3),
             row(texts[1], "happy", "stories", M.RANK_STORIES, story_valid=True)]
    assert merge_rows(rows2)[0]["split"].tolist() == ["story_valid"]
    # the others follow split_by_text with the same seed: stable as rows are added
    rest = frame[frame["split"] != "story_valid"]
    train, valid = split_by_text(pd.DataFrame({"text": texts[1:]}), 0.2, seed=13)
    assert set(rest.index[rest["split"] == "valid"]) == set(valid["text"])
    assert set(rest.index[rest["split"] == "train"]) == set(train["text"])
    more = merge_rows(rows + [row(f"새 문장 {i}", "happy") for i in range(50)], valid_fraction=0.2)[0].set_index("text")
    assert (more.loc[frame.index, "split"] == frame["split"]).all()


def test_fingerprint_ignores_order_and_sees_labels():
    frame = merge_rows([row(f"문장 {i}", "neutral") for i in range(20)])[0]
    assert fingerprint(frame) == fingerprint(frame.iloc[::-1])
    changed = frame.copy()
    changed.loc[0, "label"] = "happy"
    assert fingerprint(changed) != fingerprint(frame)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(frame))


# ---------------------------------------------------------------------------------------------------- sources


Span = namedtuple("Span", "text paragraph")


@pytest.fixture
def quick_splitter(monkeypatch):
    """The story join splits stories with kss (seconds to load); a plain split on '. ' is enough here."""
    def split(text):
        parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
        return [Span(p, 0) for p in parts]
    monkeypatch.setattr("emotag.stories.split_sentences", split)
    M._STORY_CACHE.clear()
    yield split
    M._STORY_CACHE.clear()


@pytest.fixture
def world(tmp_path, quick_splitter):
    """Every kind of source, small: AI Hub CSV, an extra labelled CSV, two stories + labels, a store."""
    from emotag.store import Store
    from emotag.stories import read_story, story_sentences

    aihub = write_aihub_csv(tmp_path / "aihub" / "tiny.csv", [
        ("토끼가 깡충깡충 뛰었어요.", "happy"), ("토끼가 깡충깡충 뛰었어요.", "happy"),
        ("비가 와서 슬펐어요.", "sad"), ("왜 내 당근을 먹었어!", "angry"), ("아침이 밝았어요.", "neutral"),
        ("숲속은 조용했어요.", "neutral")]).parent
    extra = tmp_path / "extra.csv"
    extra.write_text("text,label\n비가 와서 슬펐어요.,neutral\n친구를 만나 기뻤어요.,happy\n", encoding="utf-8")
    stories = tmp_path / "stories"
    stories.mkdir()
    (stories / VALIDATION_STORY).write_text("출처: test\n금도끼\n나무꾼이 울었어요. 산신령이 나타났어요.\n", encoding="utf-8")
    (stories / "other.txt").write_text("출처: test\n다른 이야기\n숲속은 조용했어요. 모두 웃었어요!\n", encoding="utf-8")
    label_rows = []
    for name, labels in ((VALIDATION_STORY, ["neutral", "sad", "neutral"]), ("other.txt", ["neutral", "sad", "happy"])):
        for s, label in zip(story_sentences(read_story(stories / name)), labels):
            label_rows.append({"story": s["story"], "index": s["index"], "hash": s["hash"], "label": label,
                               "annotator": "a"})
    labels_file = tmp_path / "story_labels.csv"
    with open(labels_file, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["story", "index", "hash", "label", "annotator"])
        w.writeheader()
        w.writerows(label_rows)
    db = tmp_path / "annotations.db"
    store = Store(db)
    a = store.add_story("숲 이야기", sentences=["아침이 밝았어요.", "왜 내 당근을 먹었어!", "모두 웃었어요!", "모델만 본 문장이에요."],
                        source="forest.txt")
    s = store.sentences(a.id)
    store.annotate(s[0].id, "mina", "happy")  # latest (one annotator) beats the AI Hub "neutral"
    store.annotate(s[1].id, "mina", "sad")
    store.annotate(s[1].id, "joon", "sad")
    store.annotate(s[1].id, "hana", "angry")  # majority sad beats the AI Hub "angry"
    store.annotate(s[2].id, "mina", "sad")
    store.adjudicate(s[2].id, "lead", "neutral")  # adjudicated beats the story label "happy"
    store.save_predictions("m", [(s[3].id, {"label": "angry", "confidence": 0.9,
                                            "scores": {"neutral": 0, "happy": 0, "sad": 0.1, "angry": 0.9}})])
    held = store.add_story("금도끼 (가져옴)", sentences=["산신령이 나타났어요."], source=VALIDATION_STORY)
    store.annotate(store.sentences(held.id)[0].id, "mina", "happy")
    store.close()
    return Sources(aihub_dir=str(aihub), extra_files=[str(extra)], stories_dir=str(stories),
                   story_labels=str(labels_file), db_url=f"sqlite:///{db}", valid_fraction=0.3)


def test_build_merged_from_every_source(world, tmp_path):
    merged = build_merged(world)
    frame = merged.frame.set_index("text")
    assert frame.index.is_unique
    expect = {
        "토끼가 깡충깡충 뛰었어요.": ("happy", "aihub"),
        "비가 와서 슬펐어요.": ("sad", "aihub"),  # corpus tie with the extra file: the AI Hub row was read first
        "친구를 만나 기뻤어요.": ("happy", "file:extra.csv"),
        "아침이 밝았어요.": ("happy", "annotations"),  # latest human label over the corpus
        "왜 내 당근을 먹었어!": ("sad", "annotations"),  # majority over the corpus
        "모두 웃었어요!": ("neutral", "annotations"),  # adjudicated over the story label and the annotators
        "숲속은 조용했어요.": ("sad", "stories"),  # the story label over the AI Hub "neutral"
        "나무꾼이 울었어요.": ("sad", "stories"),
        "산신령이 나타났어요.": ("happy", "annotations"),
    }
    for text, (label, source) in expect.items():
        assert (frame.loc[text, "label"], frame.loc[text, "source"]) == (label, source), text
    assert "모델만 본 문장이에요." not in frame.index  # model predictions are never training data
    held_out = set(frame.index[frame["split"] == "story_valid"])
    assert held_out == {"금도끼", "나무꾼이 울었어요.", "산신령이 나타났어요."}
    assert merged.read == {"aihub": 6, "file:extra.csv": 2, "stories": 6, "annotations": 4}
    assert merged.duplicates == sum(merged.read.values()) - len(merged.frame)
    # counts: long and wide forms agree with the frame
    counts = merged.counts
    assert counts["n"].sum() == len(merged.frame)
    assert set(counts.columns) == {"source", "split", "label", "n"}
    table = merged.table()
    assert table.iloc[-1]["total"] == len(merged.frame)
    assert list(table.columns) == ["source", "split", "neutral", "happy", "sad", "angry", "total"]
    summary = merged.summary()
    assert summary["fingerprint"] == merged.fingerprint and sum(summary["splits"].values()) == len(merged.frame)
    # the CSV people download is the frame
    path = merged.write_csv(tmp_path / "out" / "merged.csv")
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back.to_dict("records") == merged.frame.to_dict("records")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    # same sources, same data, same fingerprint
    assert build_merged(world).fingerprint == merged.fingerprint


def test_missing_sources_are_skipped_with_a_note(tmp_path):
    aihub = write_aihub_csv(tmp_path / "aihub" / "a.csv").parent
    sources = Sources(aihub_dir=str(aihub), extra_files=[str(tmp_path / "nope.xlsx")],
                      stories_dir=str(tmp_path / "no-stories"), story_labels=str(tmp_path / "none.csv"),
                      db_url=f"sqlite:///{tmp_path / 'missing.db'}")
    merged = build_merged(sources)
    assert merged.read == {"aihub": 40} and len(merged.frame) == 40
    notes = " | ".join(merged.notes)
    assert "file:nope.xlsx: skipped" in notes and "stories: no label file" in notes and "annotations: skipped" in notes
    with pytest.raises(InputError, match="No labelled data"):
        build_merged(Sources(aihub_dir=str(tmp_path / "empty")))


def test_sources_from_env(tmp_path):
    env = {"EMOTAG_AIHUB_DIR": str(tmp_path), "EMOTAG_STORIES_DIR": "none", "EMOTAG_STORY_LABELS": "",
           "EMOTAG_DB_URL": str(tmp_path / "x.db"), "EMOTAG_EXTRA_DATA": f"{tmp_path}/a.csv:{tmp_path}/b.xlsx"}
    s = Sources.from_env(env, valid_fraction=0.2)
    assert s.aihub_dir == str(tmp_path) and s.stories_dir is None and s.story_labels is None
    assert s.db_url == f"sqlite:///{(tmp_path / 'x.db').resolve()}"
    assert s.extra_files == [f"{tmp_path}/a.csv", f"{tmp_path}/b.xlsx"] and s.valid_fraction == 0.2
    assert Sources.from_dict(s.to_dict()) == s
    defaults = Sources.from_env({})
    assert defaults.aihub_dir == str(M.DEFAULT_AIHUB) and defaults.story_labels == str(M.DEFAULT_STORY_LABELS)
    assert Sources.from_env({"EMOTAG_DB_URL": "none"}).db_url is None
    assert defaults.own_stories == str(M.DEFAULT_OWN_STORIES)
    assert Sources.from_env({"EMOTAG_OWN_STORIES": "off"}).own_stories is None


def test_own_stories_are_hand_tagged_story_sentences(tmp_path):
    aihub = write_aihub_csv(tmp_path / "aihub" / "a.csv", [("모두 웃었어요!", "sad"), ("숲속은 조용했어요.", "neutral")]).parent
    own = tmp_path / "own.csv"
    own.write_text("story,text,label,annotator\n"
                   "own-1,모두 웃었어요!,happy,w1\n"  # beats the corpus label: same precedence as story labels
                   "own-1,토끼가 울었어요.,sad,w1\n"
                   "own-1,토끼가 울었어요.,sad,w2\n"
                   "own-1,토끼가 울었어요.,angry,w3\n"  # several writers: their majority
                   "own-2,\"당장 나가!\" 하고 소리쳤어요.,angry,w1\n", encoding="utf-8")
    merged = build_merged(Sources(aihub_dir=str(aihub), own_stories=str(own), valid_fraction=0.3))
    frame = merged.frame.set_index("text")
    assert frame.loc["모두 웃었어요!", "label"] == "happy" and frame.loc["모두 웃었어요!", "source"] == M.SOURCE_OWN
    assert frame.loc["토끼가 울었어요.", "label"] == "sad"
    assert merged.read[M.SOURCE_OWN] == 5 and "own stories: 5 labelled rows" in " | ".join(merged.notes)
    assert not frame["split"].eq("story_valid").any()  # own stories are never the story validation set
    valid = merged.held_out()["story_sentences_validation"]
    assert set(valid["source"]) <= set(M.STORY_SOURCES)
    missing = build_merged(Sources(aihub_dir=str(aihub), own_stories=str(tmp_path / "none.csv")))
    assert "own stories: no file" in " | ".join(missing.notes) and M.SOURCE_OWN not in missing.read


def test_committed_own_stories_are_whole_labelled_stories():
    from collections import Counter

    from emotag.labels import LABELS
    from emotag.store.imports import parse_file
    from emotag.textio import has_hangul

    stories = parse_file(M.DEFAULT_OWN_STORIES)
    assert len(stories) >= 20 and all(len(s.sentences) >= 15 for s in stories)
    labels = Counter(lab for s in stories for sent in s.sentences for lab in sent.labels.values())
    assert sum(labels.values()) >= 500 and set(labels) == set(LABELS)
    assert all(has_hangul(sent.text) and len(sent.labels) == 1 for s in stories for sent in s.sentences)


def test_joined_stories_are_cached_on_disk(world, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = M.read_story_rows(world.story_labels, world.stories_dir, cache)
    assert len(list(cache.glob("stories-*.json"))) == 1
    M._STORY_CACHE.clear()

    def no_splitting(text):
        raise AssertionError("the cached join should have been used")
    monkeypatch.setattr("emotag.stories.split_sentences", no_splitting)
    assert M.read_story_rows(world.story_labels, world.stories_dir, cache) == first


def test_own_stories_second_pass_is_a_blind_check_of_the_writers_labels():
    """training/data/own_stories_second_pass.csv: 24 own stories tagged again, blind, by two checkers."""
    from emotag.store.agreement import cohen_kappa
    from emotag.store.imports import parse_file

    writers = {s.title: s for s in parse_file(M.DEFAULT_OWN_STORIES)}
    second = parse_file(M.DEFAULT_OWN_STORIES.with_name("own_stories_second_pass.csv"))
    assert len(second) >= 20 and {a for s in second for t in s.sentences for a in t.labels} == {"checker-1",
                                                                                             "checker-2"}
    pairs = []
    for story in second:
        first = writers[story.title].sentences
        assert [t.text for t in story.sentences] == [t.text for t in first]  # whole stories, in order
        pairs += [(next(iter(a.labels.values())), next(iter(b.labels.values())))
                  for a, b in zip(first, story.sentences)]
    kappa = cohen_kappa([a for a, _ in pairs], [b for _, b in pairs])
    assert len(pairs) >= 800 and 0.75 <= kappa < 1.0  # measured: 0.830 on 875 sentences
    assert set(b for _, b in pairs) == {"neutral", "happy", "sad", "angry"}
