"""Imports (text, KAIST-style xlsx, CSV, JSONL; cp949/utf-8) and exports (TTS, xlsx, CSV, JSONL, CLI).

Bad files must be refused whole, with the row/line and column in the message."""
from __future__ import annotations

import argparse
import csv
import io
import json

import pytest
from openpyxl import Workbook, load_workbook

from emotag.store import Store
from emotag.store import cli as store_cli
from emotag.store.exports import sheet_names, to_csv, to_jsonl, to_tts, to_xlsx
from emotag.store.imports import NO_LABELS, import_file, parse_file, xlsx_columns
from emotag.textio import InputError

STORY_TEXT = "옛날에 착한 토끼가 살았어요. 토끼는 너무 기뻤어요!\n그런데 친구가 떠났어요. 토끼는 슬펐어요."


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'annotations.db'}")
    yield s
    s.close()


def _xlsx(sheets: dict[str, list[list]]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


KAIST = {
    "토끼": [["번호", "문장", "감정"], [1, "토끼가 깡충깡충 뛰었어요.", "기쁨"], [2, "친구가 떠나서 슬펐어요.", 2],
           [3, "그날 밤은 조용했어요.", None], [None, None, None], [4, "왜 내 당근을 먹었어!", "angry"]],
    "거북이": [["번호", "문장", "감정"], [1, "거북이는 천천히 걸었어요.", "중립"], [2, "거북이가 이겼어요!", "1"]],
}


def test_paste_and_txt_import_split_with_the_splitter(store, tmp_path):
    story = store.import_text(STORY_TEXT, title="토끼")
    sents = store.sentences(story.id)
    assert story.title == "토끼" and story.source == "paste" and len(sents) == 4
    assert [s.text for s in sents][:2] == ["옛날에 착한 토끼가 살았어요.", "토끼는 너무 기뻤어요!"]
    assert all(STORY_TEXT[s.start:s.end] == s.text for s in sents)
    assert [s.paragraph for s in sents] == [0, 0, 1, 1]
    assert store.story(story.id).text == STORY_TEXT
    path = tmp_path / "거북이.txt"
    path.write_bytes("거북이가 걸었어요. 거북이가 웃었어요.".encode("cp949"))
    (turtle,) = import_file(store, path)
    assert turtle.title == "거북이" and turtle.source == "거북이.txt" and turtle.sentences == 2
    with pytest.raises(InputError, match="no Korean"):
        store.import_text("just english")
    assert len(store.stories()) == 2


def test_kaist_xlsx_import(store):
    stories = store.import_file(_xlsx(KAIST), "kaist.xlsx", annotator="kaist")
    assert [(s.title, s.sentences, s.source) for s in stories] == [("토끼", 4, "kaist.xlsx#토끼"),
                                                                    ("거북이", 2, "kaist.xlsx#거북이")]
    finals = store.final_labels(stories[0].id)
    assert [f.text for f in finals] == ["토끼가 깡충깡충 뛰었어요.", "친구가 떠나서 슬펐어요.", "그날 밤은 조용했어요.",
                                        "왜 내 당근을 먹었어!"]
    assert [f.label for f in finals] == ["happy", "sad", None, "angry"]
    assert [f.label for f in store.final_labels(stories[1].id)] == ["neutral", "happy"]
    assert {e.action for e in store.history()} == {"import"} and store.annotators() == ["kaist"]
    assert xlsx_columns(_xlsx(KAIST))["토끼"] == [("A", "번호"), ("B", "문장"), ("C", "감정")]


def test_xlsx_column_detection_and_choice():
    # no header: the column with the most Hangul is the text; a column of emotion names is the label
    plain = _xlsx({"s": [[1, "토끼가 웃었어요.", "happy"], [2, "토끼가 울었어요.", "sad"]]})
    (story,) = parse_file(plain, "plain.xlsx")
    assert [(s.text, s.labels) for s in story.sentences] == [("토끼가 웃었어요.", {"import": "happy"}),
                                                             ("토끼가 울었어요.", {"import": "sad"})]
    # two text-like columns: pick one by header, letter or number; pick or drop the emotion column
    two = _xlsx({"s": [["원문", "번역", "tag"], ["토끼가 웃었어요.", "The rabbit laughed.", "0"]]})
    for choice in ("원문", "A", 1, "1"):
        (story,) = parse_file(two, "two.xlsx", text_column=choice, label_column="tag")
        assert story.sentences[0].text == "토끼가 웃었어요." and story.sentences[0].labels == {"import": "neutral"}
    (story,) = parse_file(two, "two.xlsx", text_column="B", label_column=NO_LABELS)
    assert story.sentences[0].text == "The rabbit laughed." and story.sentences[0].labels == {}
    with pytest.raises(InputError, match=r"sheet 's': no text column 'Z9' \(columns: A '원문', B '번역', C 'tag'\)"):
        parse_file(two, "two.xlsx", text_column="Z9")
    # headers are detected without known names too; say so when the guess would be wrong
    (story,) = parse_file(two, "two.xlsx")
    assert [s.text for s in story.sentences] == ["토끼가 웃었어요."]
    bare = _xlsx({"s": [["토끼가 웃었어요"], ["토끼가 울었어요"]]})  # no punctuation: looks like a header
    assert [s.text for s in parse_file(bare, "bare.xlsx")[0].sentences] == ["토끼가 울었어요"]
    assert [s.text for s in parse_file(bare, "bare.xlsx", header=False)[0].sentences] == ["토끼가 웃었어요",
                                                                                         "토끼가 울었어요"]
    english = _xlsx({"s": [["a", "b"], ["x", "y"]]})
    with pytest.raises(InputError, match="cannot tell which column holds the sentences"):
        parse_file(english, "english.xlsx")
    with pytest.raises(InputError, match="no sheet 'nope'"):
        parse_file(plain, "plain.xlsx", sheets=["nope"])


def test_bad_xlsx_is_rejected_whole_with_row_and_column(store):
    bad = {**KAIST, "세번째": [["문장", "감정"], ["좋은 문장이에요.", "happy"], ["나쁜 라벨이에요.", "무서움"]]}
    with pytest.raises(InputError) as err:
        store.import_file(_xlsx(bad), "bad.xlsx")
    message = str(err.value)
    assert "bad.xlsx, sheet '세번째', row 3, column B ('감정')" in message and "'무서움'" in message
    assert store.stories() == [] and store.history() == []  # the good sheets before it were not imported
    no_text = {"s": [["문장", "감정"], ["좋아요.", "happy"], [None, "sad"]]}
    with pytest.raises(InputError, match=r"row 3: an emotion in column B \('감정'\) but no text in column A"):
        store.import_file(_xlsx(no_text), "gap.xlsx")
    with pytest.raises(InputError, match="not a readable Excel .xlsx workbook"):
        store.import_file(b"PK\x03\x04 broken zip", "broken.xlsx")
    with pytest.raises(InputError, match="old Excel .xls"):
        store.import_file(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old.xlsx")
    with pytest.raises(InputError, match="no sentences in any sheet"):
        store.import_file(_xlsx({"empty": []}), "empty.xlsx")
    assert store.stories() == []


def _labelled_store(store: Store) -> list:
    """Two stories with every kind of final label: adjudicated, majority, latest, model, none."""
    a = store.add_story("토끼와 거북이", sentences=["토끼가 뛰었어요.", "거북이가 걸었어요.", "토끼가 잤어요|쿨쿨.",
                                                  "거북이가 이겼어요!", "끝."])
    b = store.add_story("해님 달님", sentences=["호랑이가 나타났어요.", "오누이는 무서웠어요."])
    sa, sb = [x.id for x in store.sentences(a.id)], [x.id for x in store.sentences(b.id)]
    store.save_predictions("m", [(i, {"label": "neutral", "confidence": 0.4, "scores": {"neutral": 0.4}})
                                 for i in sa[:4] + sb])
    store.annotate(sa[0], "mina", "happy")
    store.annotate(sa[0], "jun", "happy")
    store.annotate(sa[0], "sora", "sad")  # majority happy, agreement 2/3
    store.annotate(sa[1], "mina", "sad")
    store.annotate(sa[1], "jun", "angry")
    store.adjudicate(sa[1], "boss", "neutral")  # adjudicated
    store.annotate(sa[3], "mina", "happy")  # latest; sa[2] and sb: model; sa[4]: nothing
    store.annotate(sb[1], "mina", "sad")
    return [a, b]


def test_xlsx_round_trip(store, tmp_path):
    stories = _labelled_store(store)
    finals = store.final_labels()
    data = to_xlsx(store, [s.id for s in stories])
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["토끼와 거북이", "해님 달님"]
    ws = wb["토끼와 거북이"]
    assert [c.value for c in ws[1]] == ["index", "text", "emotion", "emotion_id", "source", "annotators",
                                        "agreement"]
    assert [c.value for c in ws[2]] == [0, "토끼가 뛰었어요.", "happy", 1, "majority", 3, 0.6667]
    assert [c.value for c in ws[6]] == [4, "끝.", None, None, None, 0, None]
    with Store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        again = copy.import_file(data, "export.xlsx", annotator="kaist")
        assert [s.title for s in again] == ["토끼와 거북이", "해님 달님"]
        copied = copy.final_labels()
        assert [(f.text, f.label) for f in copied] == [(f.text, f.label) for f in finals]
        assert {f.source for f in copied} == {"latest", None}  # labels are now the importer's annotations
    assert sheet_names(["a/b:c", "x" * 40, "x" * 40, "History", ""]) == [
        "a_b_c", "x" * 31, "x" * 27 + " (2)", "History (2)", "story"]


def test_tts_export(store):
    a, b = _labelled_store(store)
    with pytest.raises(InputError, match="sentence 5 has no label"):
        to_tts(store)
    lines = to_tts(store, missing="skip").splitlines()
    assert lines[:3] == ["reference.wav|토끼가 뛰었어요.|0|1|1", "reference.wav|거북이가 걸었어요.|0|0|0",
                         "reference.wav|토끼가 잤어요 쿨쿨.|0|0|0"]
    assert len(lines) == 6
    custom = to_tts(store, [b.id], wav="wavs/{story}_{position:03d}_{index}.wav", speaker="7").splitlines()
    assert custom == [f"wavs/{b.id}_000_0.wav|호랑이가 나타났어요.|7|0|0",
                      f"wavs/{b.id}_001_1.wav|오누이는 무서웠어요.|7|2|2"]
    with pytest.raises(InputError, match="bad wav pattern"):
        to_tts(store, [b.id], wav="{name}.wav")
    with pytest.raises(InputError, match="no story with id 999"):
        to_tts(store, [999])


def test_csv_and_jsonl_exports_and_round_trip(store, tmp_path):
    a, b = _labelled_store(store)
    rows = list(csv.DictReader(io.StringIO(to_csv(store))))
    assert rows[0] == {"story_id": str(a.id), "story": "토끼와 거북이", "index": "0", "text": "토끼가 뛰었어요.",
                       "label": "happy", "label_id": "1", "source": "majority", "annotators": "3",
                       "agreement": "0.6667", "predicted": "neutral", "confidence": "0.4"}
    assert rows[1]["source"] == "adjudicated" and rows[4]["label"] == ""
    records = [json.loads(line) for line in to_jsonl(store, [a.id]).splitlines()]
    assert records[1] == {"story_id": a.id, "story": "토끼와 거북이", "index": 1, "text": "거북이가 걸었어요.",
                          "label": "neutral", "label_id": 0, "source": "adjudicated", "annotators": 2,
                          "agreement": 0.5, "predicted": "neutral", "confidence": 0.4,
                          "labels": {"mina": "sad", "jun": "angry"}, "adjudicated": "neutral"}
    with Store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        copy.import_file(to_csv(store).encode("cp949"), "labels.csv")  # CP949 reads too
        copy.import_file(to_jsonl(store).encode("utf-8"), "labels.jsonl")
        titles = [s.title for s in copy.stories()]
        assert titles == ["토끼와 거북이", "해님 달님"] * 2
        expected = [(f.text, f.label) for f in store.final_labels()]
        assert [(f.text, f.label) for f in copy.final_labels()] == expected * 2


def test_csv_and_jsonl_imports(store):
    tsv = "story\ttext\temotion\tannotator\n토끼\t토끼가 웃었어요.\t기쁨\tmina\n토끼\t토끼가 울었어요.\t\t\n" \
          "곰\t곰이 화났어요!\t3\t\n"
    stories = store.import_file(tsv.encode("utf-8-sig"), "s.tsv")
    assert [(s.title, s.sentences) for s in stories] == [("토끼", 2), ("곰", 1)]
    assert [(e.annotator, e.label) for e in store.history()] == [("mina", "happy"), ("import", "angry")]
    semicolon = "text;label\n하나예요.;0\n"
    (one,) = store.import_file(semicolon.encode(), "one.csv", title="하나")
    assert one.title == "하나" and store.final_labels(one.id)[0].label == "neutral"
    jsonl = '{"text": "첫 문장.", "label": "sad"}\n\n{"text": "둘째 문장.", "emotion_id": 1, "annotator": "jun"}\n'
    (j,) = store.import_file(jsonl.encode(), "book.jsonl")
    assert j.title == "book" and [f.label for f in store.final_labels(j.id)] == ["sad", "happy"]


@pytest.mark.parametrize("name, content, message", [
    ("bad.csv", "text,label\n좋아요.,happy\n싫어요.,disgust\n",
     r"bad.csv, line 3, column B \('label'\): unknown emotion label 'disgust'"),
    ("nocol.csv", "sentence_text,label\n좋아요.,happy\n", r"nocol.csv, line 1: no text column"),
    ("gap.csv", "text,label\n,sad\n", r"gap.csv, line 2: an emotion in column B \('label'\) but no text"),
    ("bad.jsonl", '{"text": "좋아요."}\n{"text": "싫어요", "label": 7}\n',
     r"bad.jsonl, line 2, field 'label': unknown emotion id 7"),
    ("broken.jsonl", '{"text": "좋아요."}\n{"text": \n', r"broken.jsonl, line 2: not valid JSON"),
    ("notext.jsonl", '{"label": "sad"}\n', r"notext.jsonl, line 1: missing or empty \"text\" field"),
    ("binary.csv", "text\n\0\0\0", r"binary.csv looks like a binary file"),
    ("empty.csv", "", r"empty.csv is empty"),
])
def test_bad_csv_and_jsonl_are_rejected_whole(store, name, content, message):
    with pytest.raises(InputError, match=message):
        store.import_file(content.encode(), name)
    assert store.stories() == [] and store.history() == []


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="emotag")
    store_cli.add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_import_and_export(tmp_path, capsys, monkeypatch):
    db = tmp_path / "cli.db"
    book = tmp_path / "kaist.xlsx"
    book.write_bytes(_xlsx(KAIST))
    sentences = tmp_path / "more.csv"
    sentences.write_text("text,label\n또 하나의 문장이에요.,sad\n", encoding="utf-8")
    assert _cli(["import", str(book), str(sentences), "--db", str(db), "--annotator", "kaist"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["story 1: 토끼 (4 sentences)", "story 2: 거북이 (2 sentences)",
                                "story 3: more (1 sentences)"]
    assert "imported 3 stories, 7 sentences, 6 labels" in err
    # a bad file among good ones: nothing imported, one line on stderr, exit 2
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n좋아요.,happy\n나빠요.,공포\n", encoding="utf-8")
    assert _cli(["import", str(sentences), str(bad), "--db", str(db)]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("emotag: bad.csv, line 3, column B ('label')")
    monkeypatch.setenv("EMOTAG_DB_URL", f"sqlite:///{db}")
    assert _cli(["export", "--format", "tts", "--story", "2", "--speaker", "5"]) == 0
    assert capsys.readouterr().out == ("reference.wav|거북이는 천천히 걸었어요.|5|0|0\n"
                                       "reference.wav|거북이가 이겼어요!|5|1|1\n")
    assert _cli(["export", "--format", "tts"]) == 2  # story 1 has an unlabelled sentence, no model ran
    assert "has no label" in capsys.readouterr().err
    assert _cli(["export", "--format", "tts", "--missing", "skip", "-o", str(tmp_path / "list.txt")]) == 0
    assert len((tmp_path / "list.txt").read_text(encoding="utf-8").splitlines()) == 6
    assert _cli(["export", "-o", str(tmp_path / "out.xlsx")]) == 0
    assert load_workbook(tmp_path / "out.xlsx").sheetnames == ["토끼", "거북이", "more"]
    assert _cli(["export", "-o", str(tmp_path / "out.jsonl")]) == 0
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 7
    assert _cli(["export"]) == 2 and "choose the format" in capsys.readouterr().err
    assert _cli(["export", "--format", "csv", "--story", "42"]) == 2
    assert capsys.readouterr().err == "emotag: no story with id 42 (stories: 1, 2, 3)\n"
    assert _cli(["import", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert _cli(["export", "--format", "csv", "--db", str(tmp_path / "nothing.db")]) == 2
    assert capsys.readouterr().err == f"emotag: no annotation database at {tmp_path / 'nothing.db'}\n"
    assert not (tmp_path / "nothing.db").exists()
    with Store(db) as s:
        assert len(s.stories()) == 3


def test_cli_import_predicts(tmp_path, capsys):
    from tests.helpers import tiny_classical

    tiny_classical(tmp_path / "model")
    sentences = tmp_path / "s.jsonl"
    sentences.write_text('{"text": "와, 정말 신난다!"}\n{"text": "너무 슬퍼요."}\n', encoding="utf-8")
    db = tmp_path / "p.db"
    assert _cli(["import", str(sentences), "--db", str(db), "--predict", "--model", str(tmp_path / "model")]) == 0
    capsys.readouterr()
    assert _cli(["export", "--db", str(db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["source"] for r in rows] == ["model", "model"] and rows[0]["predicted"] == rows[0]["label"]
