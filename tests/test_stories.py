from emotag.dataset import text_hash
from emotag.stories import join_labels, read_story, story_sentences

STORY = "# source: written for the tests; license: CC0\n작은 별\n작은 별이 하늘에서 반짝였어요. \"와, 예쁘다!\" 아이가 웃었어요.\n별은 곧 사라졌어요.\n"


def test_read_story_and_key_sentences(tmp_path):
    (tmp_path / "star.txt").write_text(STORY, encoding="utf-8")
    story = read_story(tmp_path / "star.txt")
    assert story.title == "작은 별" and story.source.startswith("# source")
    rows = story_sentences(story)
    assert rows[0]["text"] == "작은 별" and rows[0]["index"] == 0
    assert all(r["hash"] == text_hash(r["text"])[:12] for r in rows)


def test_join_matches_by_file_index_and_hash(tmp_path):
    (tmp_path / "star.txt").write_text(STORY, encoding="utf-8")
    rows = story_sentences(read_story(tmp_path / "star.txt"))
    labels = [{"story": "star.txt", "index": str(r["index"]), "hash": r["hash"], "label": "neutral", "annotator": "a"}
              for r in rows]
    labels[1]["hash"] = "000000000000"  # the text changed since labelling: dropped, not mislabelled
    labels.append({"story": "missing.txt", "index": "0", "hash": "x", "label": "sad", "annotator": "a"})
    joined = join_labels(labels, tmp_path)
    assert [j["text"] for j in joined] == [r["text"] for r in rows if r["index"] != 1]
    assert join_labels(labels, tmp_path / "absent") == []


def test_labels_carry_no_story_text(stories_dir):
    story = read_story(stories_dir / "geumdokki.txt")
    rows = story_sentences(story)
    assert len(rows) > 10 and rows[0]["text"] == story.title


def test_final_labels_take_the_majority_and_mark_the_validation_stories():
    from emotag.stories import STORY_VALIDATION, final_story_labels
    rows = [
        {"story": "a.txt", "index": 0, "text": "가", "label": "sad", "annotator": "b"},
        {"story": "a.txt", "index": 0, "text": "가", "label": "happy", "annotator": "a"},
        {"story": "a.txt", "index": 1, "text": "나", "label": "sad", "annotator": "a"},
        {"story": "a.txt", "index": 1, "text": "나", "label": "angry", "annotator": "b"},
        {"story": "a.txt", "index": 1, "text": "나", "label": "angry", "annotator": "c"},
        {"story": "geumdokki.txt", "index": 0, "text": "다", "label": "neutral", "annotator": "a"},
    ]
    final = final_story_labels(rows)
    assert [(f["index"], f["label"], f["annotators"]) for f in final[:2]] == [(0, "happy", 2), (1, "angry", 3)]
    assert final[2]["split"] == "valid" and final[0]["split"] == "train"
    assert len(STORY_VALIDATION) >= 6


def test_committed_label_file_is_complete_and_textless(stories_dir):
    from pathlib import Path

    from emotag.stories import final_story_labels, join_labels, read_label_file
    path = Path(__file__).resolve().parent.parent / "training" / "data" / "story_labels.csv"
    rows = read_label_file(path)
    assert set(rows[0]) == {"story", "index", "hash", "label", "annotator"}
    joined = join_labels(rows, stories_dir)
    assert len(joined) == len(rows)  # every label still matches its sentence
    final = final_story_labels(joined)
    assert len(final) >= 2500
    assert sum(f["split"] == "valid" for f in final) >= 250


def test_our_own_sample_stories_carry_one_label_per_sentence():
    from emotag.labels import LABELS
    from emotag.samples import SAMPLE_LABELS, SAMPLES
    from emotag.splitter import split_sentences
    assert set(SAMPLE_LABELS) == set(SAMPLES)
    for title, text in SAMPLES.items():
        labels = SAMPLE_LABELS[title]
        assert len(split_sentences(text)) == len(labels) and set(labels) <= set(LABELS)
    assert {label for labels in SAMPLE_LABELS.values() for label in labels} == set(LABELS)
