"""The Annotate and Review tabs of the real app (``python app.py`` on a temporary SQLite database), driven
over HTTP with gradio_client; what they save is checked by opening the same database with emotag.store.Store."""
from __future__ import annotations

import csv
import io
import json
import urllib.request

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from emotag.labels import LABEL2ID, LABELS  # noqa: E402
from emotag.plots import DISPLAY  # noqa: E402
from emotag.samples import SAMPLES  # noqa: E402
from emotag.store.exports import sheet_names  # noqa: E402
from tests.ui_server_db import _no_proxy, db_server, start_db_server  # noqa: E402,F401

STORIES = list(SAMPLES.items())


def client_for(server, **kwargs) -> Client:
    return Client(server.url, verbose=False, download_files=False, **kwargs)


@pytest.fixture(scope="module")
def client(db_server):  # noqa: F811
    return client_for(db_server)


@pytest.fixture(scope="module")
def store(db_server):  # noqa: F811
    s = db_server.store()
    yield s
    s.close()


def import_story(client, index=0, title=None) -> int:
    title = title or f"{STORIES[index][0]} #{index}"
    status, story, text, _ = client.predict(STORIES[index][1], title, True, api_name="/import_text")
    assert text == ""
    assert status.startswith("✔ Imported **1** story"), status
    assert "Model suggestions added" in status
    return int(story["value"])


def load(client, story, who, mode="story"):
    card, table, status, current = client.predict(str(story), mode, who, api_name="/annotate_load")
    assert status.startswith("✔"), status
    return card, table, status, current


def set_label(client, label, who):
    card, table, status, current = client.predict(label, who, api_name="/annotate_set")
    assert status.startswith("✔ Saved"), status
    return card, table, status, current


def download(file: dict) -> bytes:
    with urllib.request.urlopen(file["url"], timeout=10) as response:
        return response.read()


# ---------------------------------------------------------------------------------------------------- annotate


def test_endpoints_are_named(client):
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/annotate_load", "/annotate_set", "/annotate_undo", "/annotate_next", "/annotate_prev",
            "/annotate_accept", "/annotate_progress", "/import_text", "/import_file", "/import_columns",
            "/agreement", "/disagreements", "/adjudicate", "/export", "/tag_text"} <= endpoints


def test_database_created_at_start(db_server):  # noqa: F811
    from pathlib import Path
    assert Path(db_server.db_url.removeprefix("sqlite:///")).is_file()


def test_set_and_undo_are_saved(client, store):
    story_id = import_story(client, 0)
    sentences = store.sentences(story_id)
    predictions = store.predictions(story_id)
    assert len(sentences) >= 5 and set(predictions) == {s.id for s in sentences}

    card, table, status, current = load(client, story_id, "ann1")
    first = sentences[0]
    assert current["sentence_id"] == first.id and current["label"] is None and current["total"] == len(sentences)
    assert current["predicted"] == predictions[first.id]["label"]
    assert current["confidence"] == pytest.approx(predictions[first.id]["confidence"])
    # the card: the sentence, escaped, and the model's suggestion
    assert "emo-current" in card and DISPLAY[current["predicted"]] in card
    assert [row[2] for row in table["data"]] == [s.text for s in sentences]
    assert table["data"][0][0] == "▶ 1"
    assert [row[3] for row in table["data"]] == [DISPLAY[predictions[s.id]["label"]] for s in sentences]

    # one click = one saved entry, then the next sentence
    card, table, status, current = set_label(client, "sad", "ann1")
    assert store.current_labels("ann1", story_id) == {first.id: "sad"}
    assert current["sentence_id"] == sentences[1].id and current["last"]["sentence_id"] == first.id
    assert table["data"][0][5] == DISPLAY["sad"]
    # Korean names and ids work too
    set_label(client, "기쁨", "ann1")
    assert store.current_label(sentences[1].id, "ann1") == "happy"
    card, table, status, current = client.predict("ann1", api_name="/annotate_undo")
    assert status.startswith("↶ Undone"), status
    assert store.current_label(sentences[1].id, "ann1") is None
    assert current["sentence_id"] == sentences[1].id  # undo goes back to the sentence it changed

    # go back to the first sentence, relabel it, undo: the log has every entry, the label is restored
    client.predict("ann1", api_name="/annotate_prev")
    set_label(client, "3", "ann1")  # 3 = angry (ids 0-3)
    assert store.current_label(first.id, "ann1") == "angry"
    card, table, status, current = client.predict("ann1", api_name="/annotate_undo")
    assert store.current_label(first.id, "ann1") == "sad"
    assert current["sentence_id"] == first.id and current["label"] == "sad"
    log = store.history(sentence_id=first.id, annotator="ann1")
    assert [(e.action, e.label, e.previous) for e in log] == [("set", "sad", None), ("set", "angry", "sad"),
                                                              ("undo", "sad", "angry")]
    assert log[-1].undoes == log[1].id

    # accept the model's suggestion
    client.predict("ann1", api_name="/annotate_next")
    card, table, status, current = client.predict("ann1", api_name="/annotate_accept")
    assert status.startswith("✔ Saved"), status
    assert store.current_label(sentences[1].id, "ann1") == predictions[sentences[1].id]["label"]

    # progress and counts
    plot, progress = client.predict(api_name="/annotate_progress")  # of the loaded story
    figure = json.loads(plot["plot"])
    ann1 = {t["name"]: t["y"][t["x"].index("ann1")] for t in figure["data"]}
    counts = store.label_counts(story_id, "ann1")
    assert ann1 == {DISPLAY[n]: counts[n] for n in LABELS}
    rows = {(row[0].split(" · ")[0], row[1]): row[2:4] for row in progress["data"]}
    assert rows[(str(story_id), "ann1")] == [2, len(sentences)]


def test_uncertainty_queue_is_least_confident_first(db_server, store):  # noqa: F811
    client = client_for(db_server)
    import_story(client, 1)
    import_story(client, 2)
    card, table, status, current = load(client, "all", "unc", mode="uncertain")
    queue = store.queue("unc", "uncertain")
    assert "least confident first" in status
    confidences = [float(row[4]) for row in table["data"]]
    assert confidences == sorted(confidences) and len(confidences) == len(queue)
    assert [row[2] for row in table["data"]] == [q.text for q in queue]
    assert len({row[1] for row in table["data"]}) >= 3  # across stories
    assert current["sentence_id"] == queue[0].sentence_id
    assert current["confidence"] == pytest.approx(min(q.confidence for q in queue))
    set_label(client, "neutral", "unc")
    assert store.current_labels("unc") == {queue[0].sentence_id: "neutral"}
    # within one story, too
    story_id = queue[0].story_id
    card, table, status, current = load(client, story_id, "unc", mode="uncertain")
    expected = [q.text for q in store.queue("unc", "uncertain", story_id)]
    assert [row[2] for row in table["data"]] == expected and queue[0].text not in expected


def test_bad_requests_give_messages(db_server):  # noqa: F811
    client = client_for(db_server)
    *_, status, current = client.predict("sad", "ann1", api_name="/annotate_set")
    assert status.startswith("⚠") and "pick a story" in status and current is None
    *_, status, current = client.predict("1", "story", "  ", api_name="/annotate_load")
    assert status.startswith("⚠") and "annotator name" in status
    *_, status, current = client.predict("9999", "story", "ann1", api_name="/annotate_load")
    assert status.startswith("⚠") and "no story" in status
    load(client, 1, "ann9")
    *_, status, current = client.predict("surprised", "ann9", api_name="/annotate_set")
    assert status.startswith("⚠") and "unknown emotion label" in status and "Traceback" not in status
    status, story, text, _ = client.predict("English only", "", True, api_name="/import_text")
    assert status.startswith("⚠ **Nothing was imported.**") and "Hangul" in status


# ---------------------------------------------------------------------------------------------------- review


def test_agreement_adjudication_and_exports(db_server, store, tmp_path):  # noqa: F811
    one, two = client_for(db_server), client_for(db_server)
    story_id = import_story(one, 0, title="두 사람")
    sentences = store.sentences(story_id)
    first = [LABELS[i % 4] for i in range(len(sentences))]
    second = list(first)
    second[0], second[2] = LABELS[(LABEL2ID[first[0]] + 1) % 4], LABELS[(LABEL2ID[first[2]] + 2) % 4]
    load(one, story_id, "rater1")
    load(two, story_id, "rater2")
    for a, b in zip(first, second):  # two sessions labelling side by side
        set_label(one, a, "rater1")
        set_label(two, b, "rater2")
    assert store.current_labels("rater1", story_id) == {s.id: label for s, label in zip(sentences, first)}
    assert store.current_labels("rater2", story_id) == {s.id: label for s, label in zip(sentences, second)}

    summary, pairs, per_story, report = one.predict(str(story_id), api_name="/agreement")
    expected = store.agreement(story_id)
    assert report == json.loads(json.dumps(expected.to_dict()))  # the same numbers, through JSON
    assert report["annotators"] == ["rater1", "rater2"] and report["disagreements"] == 2
    (pair,) = pairs["data"]
    assert pair[:3] == ["rater1", "rater2", len(sentences)]
    assert float(pair[4].split()[0]) == pytest.approx(expected.pairs[0].kappa, abs=1e-3)
    assert f"{expected.fleiss_kappa:.3f}" in summary and f"{expected.krippendorff_alpha:.3f}" in summary
    assert "Fleiss" in summary and "Krippendorff" in summary
    story_row = next(r for r in per_story["data"] if r[0].startswith(f"{story_id} · "))
    assert story_row[4] == 2
    _, _, _, overall = one.predict("all", api_name="/agreement")
    assert overall["annotators"] == store.agreement().annotators
    assert overall["krippendorff_alpha"] == pytest.approx(store.agreement().krippendorff_alpha)

    table = one.predict(str(story_id), True, api_name="/disagreements")
    assert [row[0] for row in table["data"]] == [sentences[0].id, sentences[2].id]
    status, table = one.predict(sentences[2].id, "sad", "boss", "", str(story_id), True, api_name="/adjudicate")
    assert status.startswith("✔ Final label"), status
    assert [row[0] for row in table["data"]] == [sentences[0].id]  # resolved ones leave the unresolved list
    status, _ = one.predict(12345678, "sad", "boss", "", str(story_id), True, api_name="/adjudicate")
    assert status.startswith("⚠") and "no sentence" in status

    # exports: the adjudicated label is the final label
    file, status = one.predict([str(story_id)], "csv", "", "", "error", api_name="/export")
    assert status.startswith("✔ Exported"), status
    rows = list(csv.DictReader(io.StringIO(download(file).decode("utf-8"))))
    assert [r["text"] for r in rows] == [s.text for s in sentences]
    assert rows[2]["label"] == "sad" and rows[2]["source"] == "adjudicated"
    assert rows[1]["label"] == first[1] and rows[1]["source"] == "majority"

    wav = "wavs/{story}_{position}.wav"
    file, status = one.predict([str(story_id)], "tts", wav, "7", "error", api_name="/export")
    assert file["orig_name"].endswith("_filelist.txt")
    text = download(file).decode("utf-8")
    assert text == store.export("tts", [story_id], wav=wav, speaker="7")
    lines = text.splitlines()
    assert len(lines) == len(sentences)
    assert lines[2] == f"wavs/{story_id}_2.wav|{sentences[2].text}|7|2|2"

    file, status = one.predict([str(story_id)], "xlsx", "", "", "error", api_name="/export")
    assert file["orig_name"].endswith(".xlsx")
    from openpyxl import load_workbook
    path = tmp_path / "export.xlsx"
    path.write_bytes(download(file))
    wb = load_workbook(path)
    (title,) = sheet_names([store.story(story_id).title])
    assert wb.sheetnames == [title]
    values = list(wb[title].iter_rows(values_only=True))
    assert values[0][:4] == ("index", "text", "emotion", "emotion_id")
    assert [v[1] for v in values[1:]] == [s.text for s in sentences]
    assert values[3][2:4] == ("sad", 2)

    file, status = one.predict([], "jsonl", "", "", "error", api_name="/export")
    records = [json.loads(line) for line in download(file).decode("utf-8").splitlines()]
    assert len(records) == len(store.sentences())
    mine = next(r for r in records if r["story_id"] == story_id and r["index"] == 2)
    assert mine["adjudicated"] == "sad" and mine["labels"] == {"rater1": first[2], "rater2": second[2]}

    file, status = one.predict([str(story_id)], "tts", "x|y.wav", "0", "error", api_name="/export")
    assert file is None and status.startswith("⚠")


# ---------------------------------------------------------------------------------------------------- imports


def _workbook(sheets: dict[str, list[list]]) -> bytes:
    from openpyxl import Workbook
    wb = Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_file_imports(client, store, tmp_path):
    before = len(store.stories())
    good = tmp_path / "kaist_동화.xlsx"
    good.write_bytes(_workbook({
        "해님달님": [["번호", "문장", "감정"], [1, "옛날에 오누이가 살았어요.", "중립"], [2, "호랑이가 나타나 무서웠어요.", "슬픔"],
                 [3, "오누이는 하늘로 올라가 기뻤어요.", "기쁨"]],
        "혹부리영감": [["번호", "문장", "감정"], [1, "혹부리 영감이 노래를 불렀어요.", "1"], [2, "욕심쟁이 영감은 화가 났어요.", "분노"]],
    }))
    text_column, label_column, hint = client.predict(handle_file(str(good)), api_name="/import_columns")
    assert "B · 문장" in [c[0] if isinstance(c, list) else c for c in text_column["choices"]]
    assert "해님달님" in hint
    status, story = client.predict(handle_file(str(good)), "B", "C", "kaist", False, api_name="/import_file")
    assert status.startswith("✔ Imported **2** stories"), status
    assert "5** sentences" in status and "5 imported labels" in status
    stories = store.stories()[before:]
    assert [s.title for s in stories] == ["해님달님", "혹부리영감"]
    assert int(story["value"]) == stories[0].id
    assert store.current_labels("kaist", stories[1].id) == {s.id: label for s, label in zip(
        store.sentences(stories[1].id), ["happy", "angry"])}

    # an unknown emotion on the last sheet: a clear message, and nothing of the file stored
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(_workbook({
        "첫째": [["문장", "감정"], ["토끼가 웃었어요.", "기쁨"]],
        "둘째": [["문장", "감정"], ["곰이 잠을 잤어요.", "중립"], ["여우가 놀랐어요.", "놀람"]],
    }))
    count = len(store.stories())
    status, story = client.predict(handle_file(str(bad)), "(detect)", "(detect)", "import", True,
                                   api_name="/import_file")
    assert status.startswith("⚠ **Nothing was imported.**"), status
    assert "둘째" in status and "row 3" in status and "놀람" in status
    assert len(store.stories()) == count

    # CSV (several stories) and JSONL
    table = tmp_path / "sentences.csv"
    table.write_text("story,text,label\n가,첫 문장이에요.,happy\n가,둘째 문장이에요.,\n나,다른 이야기예요.,sad\n",
                     encoding="utf-8")
    status, _ = client.predict(handle_file(str(table)), "(detect)", "(detect)", "csvimport", False,
                               api_name="/import_file")
    assert status.startswith("✔ Imported **2** stories"), status
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"text": "달님이 웃었어요.", "label": "기쁨"}\n{"text": "별님이 울었어요."}\n', encoding="utf-8")
    status, _ = client.predict(handle_file(str(lines)), "(detect)", "(detect)", "import", True,
                               api_name="/import_file")
    assert status.startswith("✔ Imported **1** story"), status
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "달님이 웃었어요."}\n{"text": \n', encoding="utf-8")
    count = len(store.stories())
    status, _ = client.predict(handle_file(str(broken)), "(detect)", "(detect)", "import", True,
                               api_name="/import_file")
    assert status.startswith("⚠ **Nothing was imported.**") and "line 2" in status
    assert len(store.stories()) == count


# ---------------------------------------------------------------------------------------------------- --auth


def test_auth_annotator_is_the_logged_in_user(tmp_path_factory):
    _no_proxy()
    server = start_db_server(tmp_path_factory.mktemp("ui_auth"), args=["--auth", "mina:pw1", "--auth", "joon:pw2"])
    try:
        with pytest.raises(Exception):
            client_for(server).view_api(print_info=False)
        client = client_for(server, auth=("mina", "pw1"))
        story_id = import_story(client, 0, title="auth")
        card, table, status, current = load(client, story_id, "someone-else")
        assert "for **mina**" in status
        set_label(client, "angry", "someone-else")
        store = server.store()
        first = store.sentences(story_id)[0]
        assert store.current_labels("mina", story_id) == {first.id: "angry"}
        assert "someone-else" not in store.annotators()
        status, _ = client.predict(first.id, "neutral", "boss", "", "all", False, api_name="/adjudicate")
        assert "by mina" in status
        store.close()
    finally:
        server.stop()
