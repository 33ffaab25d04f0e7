"""The story label file ↔ the annotation store: load the shared stories to annotate them, export the label file."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from emotag import story_labels as SL
from emotag.stories import read_label_file, read_story, story_sentences
from emotag.store import Store
from emotag.textio import InputError

ROOT = Path(__file__).resolve().parent.parent
STORIES = {
    "star.txt": "출처: 테스트용으로 씀 (CC0)\n작은 별\n작은 별이 하늘에서 반짝였어요. \"와, 예쁘다!\" 아이가 웃었어요.\n별은 곧 사라졌어요.\n",
    "fox.txt": "출처: 테스트용으로 씀 (CC0)\n여우와 까마귀\n여우가 치즈를 빼앗았어요. 까마귀는 화가 나서 소리쳤어요.\n",
}


@pytest.fixture
def collection(tmp_path):
    folder = tmp_path / "stories"
    folder.mkdir()
    for name, text in STORIES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def label_file_rows(folder: Path, annotator: str, labels: dict[str, list[str]]) -> list[dict]:
    rows = []
    for name, story_labels in labels.items():
        for s, label in zip(story_sentences(read_story(folder / name)), story_labels):
            rows.append({"story": name, "index": str(s["index"]), "hash": s["hash"], "label": label,
                         "annotator": annotator})
    return rows


def test_load_then_export_gives_the_label_file_back(collection, tmp_path):
    rows = (label_file_rows(collection, "a", {"star.txt": ["neutral", "neutral", "happy", "happy", "sad"],
                                               "fox.txt": ["neutral", "neutral", "angry"]})
            + label_file_rows(collection, "b", {"fox.txt": ["neutral", "sad", "angry"]}))
    store = Store(tmp_path / "a.db")
    result = SL.load_stories(store, collection, rows)
    assert sorted(result.added) == ["fox.txt", "star.txt"] and result.labels == len(rows) and result.stale == 0
    by_source = {s.source: s for s in store.stories()}
    fox = by_source["stories/fox.txt"]
    assert fox.title == "여우와 까마귀" and fox.sentences == 3
    texts = [s.text for s in store.sentences(fox.id)]
    assert texts == [s["text"] for s in story_sentences(read_story(collection / "fox.txt"))]
    assert store.agreement(fox.id).pairs[0].items == 3  # both annotators' labels are in the store
    exported = SL.label_rows(store)
    key = lambda r: (r["annotator"], r["story"], int(r["index"]))  # noqa: E731
    assert [{**r, "index": int(r["index"])} for r in sorted(rows, key=key)] == exported
    # an annotator's correction in the app is what the next export writes
    store.annotate(store.sentences(fox.id)[1].id, "a", "sad")
    assert {(r["annotator"], r["story"], r["index"]): r["label"] for r in SL.label_rows(store)}[("a", "fox.txt", 1)] == "sad"
    store.close()


def test_loading_again_adds_nothing_and_stale_labels_are_left_out(collection, tmp_path):
    rows = label_file_rows(collection, "a", {"star.txt": ["neutral"] * 5})
    rows[2]["hash"] = "000000000000"  # the sentence changed since it was labelled
    store = Store(tmp_path / "a.db")
    first = SL.load_stories(store, collection, rows, names=["star"])
    assert first.added == ["star.txt"] and first.labels == 4 and first.stale == 1
    again = SL.load_stories(store, collection, rows)
    assert again.skipped == ["star.txt"] and again.added == ["fox.txt"] and again.labels == 0
    assert len(store.stories()) == 2
    with pytest.raises(InputError, match="nope.txt"):
        SL.load_stories(store, collection, rows, names=["nope.txt"])
    with pytest.raises(InputError, match="no story collection"):
        SL.load_stories(store, collection / "absent")
    store.close()


def test_label_rows_leave_out_stories_not_from_the_collection(tmp_path):
    store = Store(tmp_path / "a.db")
    story = store.add_story("붙여 넣은 이야기", sentences=["하나.", "둘."], source="paste")
    store.annotate(store.sentences(story.id)[0].id, "a", "happy")
    assert SL.label_rows(store) == []
    store.close()


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "emotag", "stories", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT)


def test_cli_load_and_export(collection, tmp_path):
    rows = label_file_rows(collection, "a", {"fox.txt": ["neutral", "neutral", "angry"]})
    labels = tmp_path / "labels.csv"
    labels.write_text(SL.label_csv(rows), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    loaded = run("load", "--db", db, "--stories", str(collection), "--labels", str(labels))
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 2 stories (3 labels)" in loaded.stderr
    out = tmp_path / "out.csv"
    exported = run("export", "--db", db, "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_text(encoding="utf-8") == labels.read_text(encoding="utf-8")
    assert "3 labels by 1 annotators on 1 stories" in exported.stderr
    with open(out, encoding="utf-8") as f:
        assert set(next(csv.reader(f))) == {"story", "index", "hash", "label", "annotator"}


def test_cli_errors_are_one_line(collection, tmp_path):
    empty = run("export", "--db", str(tmp_path / "empty.db"))
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    Store(tmp_path / "b.db").close()
    none = run("export", "--db", str(tmp_path / "b.db"))
    assert none.returncode == 2 and "stories load" in none.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("what,ever\n1,2\n", encoding="utf-8")
    broken = run("load", "--db", str(tmp_path / "c.db"), "--stories", str(collection), "--labels", str(bad))
    assert broken.returncode == 2 and "not a story label file" in broken.stderr and "Traceback" not in broken.stderr
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("story,index,hash,label,annotator\nfox.txt,0,abc,furious?,a\n", encoding="utf-8")
    odd = run("load", "--db", str(tmp_path / "c.db"), "--stories", str(collection), "--labels", str(unknown))
    assert odd.returncode == 2 and "line 2" in odd.stderr and "furious?" in odd.stderr
    assert Store(tmp_path / "c.db").stories() == []  # nothing half-loaded
    missing = run("load", "--db", str(tmp_path / "c.db"), "--stories", str(tmp_path / "nowhere"), "--no-labels")
    assert missing.returncode == 2 and "no story collection" in missing.stderr


def test_committed_labels_round_trip_through_the_store(stories_dir, tmp_path):
    """The committed label file, loaded into a store and exported again, is the same rows (three stories)."""
    rows = read_label_file(ROOT / "training" / "data" / "story_labels.csv")
    names = ["geumdokki.txt", "kkachiui_ot.txt", "baekje_onjo.txt"]
    store = Store(tmp_path / "a.db")
    result = SL.load_stories(store, stories_dir, rows, names=names)
    wanted = [r for r in rows if r["story"] in names]
    assert result.stale == 0 and result.labels == len(wanted)
    key = lambda r: (r["annotator"], r["story"], int(r["index"]))  # noqa: E731
    assert SL.label_rows(store) == [{**r, "index": int(r["index"])} for r in sorted(wanted, key=key)]
    store.close()
