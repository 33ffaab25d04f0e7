"""The Tag tab of the real app (``python app.py``), driven over HTTP with gradio_client."""
from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from emotag.labels import COLORS, LABELS  # noqa: E402
from emotag.models import BUNDLED_MODEL  # noqa: E402
from emotag.models.serving import load_for_serving  # noqa: E402
from emotag.plots import DISPLAY  # noqa: E402
from emotag.predictor import Predictor  # noqa: E402
from emotag.samples import SAMPLES  # noqa: E402
from emotag.textio import MAX_CHARS  # noqa: E402
from tests.ui_server import app_server  # noqa: E402,F401  (module-scoped fixture: the running app)

STORY = next(iter(SAMPLES.values()))
HTML_STORY = ('토끼가 말했어요. "<script>window.__pwned=1</script> 정말 화가 나!"\n'
              '<b>bold</b> 글씨로 쓴 편지를 받았어요. <img src=x onerror="alert(1)"> 너무 기뻐요!')


@pytest.fixture(scope="module")
def client(app_server):  # noqa: F811
    return Client(app_server.url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def reference():
    return Predictor(load_for_serving(BUNDLED_MODEL))  # the app is started with --model <bundled>


def _tag(client, text):
    return client.predict(text, api_name="/tag_text")


def _labelled(highlighted):
    return [(t["token"], t["class_or_confidence"]) for t in highlighted if t["class_or_confidence"] is not None]


def _check_result(result, text, reference):
    highlighted, table, arc, dist, status = result
    expected = reference.tag(text)
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    # one highlighted entry per sentence, with the same label as emotag.tag() in-process
    assert _labelled(highlighted) == [(s.text, DISPLAY[s.label]) for s in expected]
    # the pieces between sentences are unlabelled, and all pieces together are the text
    assert "".join(t["token"] for t in highlighted) == normalised
    # table: #, sentence, emotion, confidence
    assert table["headers"] == ["#", "sentence", "emotion", "confidence"]
    assert [row[:3] for row in table["data"]] == [[i, s.text, DISPLAY[s.label]]
                                                  for i, s in enumerate(expected, start=1)]
    assert [row[3] for row in table["data"]] == pytest.approx([s.confidence for s in expected], abs=1e-3)
    # plots
    assert arc["type"] == "plotly" and dist["type"] == "plotly"
    arc_fig, dist_fig = json.loads(arc["plot"]), json.loads(dist["plot"])
    marker_traces = [t for t in arc_fig["data"] if t.get("mode") == "markers"]
    assert sorted(x for t in marker_traces for x in t["x"]) == list(range(1, len(expected) + 1))
    (bar,) = dist_fig["data"]
    assert bar["x"] == [DISPLAY[n] for n in LABELS]
    assert bar["y"] == [sum(s.label == n for s in expected) for n in LABELS]
    assert f"Tagged **{len(expected)}**" in status and "Cannot" not in status
    return expected


def test_endpoints_are_named(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/tag_text", "/tag_file"} <= set(endpoints)


@pytest.mark.parametrize("title", list(SAMPLES))
def test_tag_sample_story(client, reference, title):
    expected = _check_result(_tag(client, SAMPLES[title]), SAMPLES[title], reference)
    assert len(expected) >= 5


def test_sample_story_shows_several_emotions(client, reference):
    highlighted = _tag(client, STORY)[0]
    assert len({label for _, label in _labelled(highlighted)}) >= 3


def test_crlf_text_and_paragraphs(client, reference):
    text = "  " + STORY.replace("\n", "\r\n", 3).replace("\n", "\n\n", 2) + "\n\n"
    result = _tag(client, text)
    _check_result(result, text, reference)
    assert any("\n\n" in t["token"] and t["class_or_confidence"] is None for t in result[0])


BAD = [
    pytest.param("", "The text is empty", id="empty"),
    pytest.param(" \n\t  \r\n ", "The text is empty", id="whitespace"),
    pytest.param("가나다라마바사. " * (1_000_000 // 9 + 1), "too long", id="1MB"),
    pytest.param("Once upon a time there was a rabbit. It was happy!", "no Korean", id="no-hangul"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_text_gives_clear_message(client, text, message):
    highlighted, table, arc, dist, status = _tag(client, text)
    assert status.startswith("⚠ **Cannot tag this text.**")
    assert message in status
    assert "Traceback" not in status
    assert highlighted is None and arc is None and dist is None and table["data"] == []


def test_too_long_message_names_the_limit(client):
    status = _tag(client, "가" * (MAX_CHARS + 1))[4]
    assert f"{MAX_CHARS:,}" in status and f"{MAX_CHARS + 1:,}" in status


def test_tag_text_never_replaces_the_text_box(client):
    # /tag_text has no text box among its outputs, so whatever the user typed stays there (bad input included)
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/tag_text"]
    assert [r["label"] for r in info["returns"]][:4] == ["Story by emotion", "Sentences", "Emotion arc",
                                                          "Emotion distribution"]
    assert len(info["returns"]) == 5
    assert all(r["component"] != "Textbox" for r in info["returns"])


def test_html_comes_back_as_literal_text(client, reference):
    highlighted, table, arc, dist, status = _tag(client, HTML_STORY)
    _check_result((highlighted, table, arc, dist, status), HTML_STORY, reference)
    joined = "".join(t["token"] for t in highlighted)
    assert "<script>window.__pwned=1</script>" in joined and "<b>bold</b>" in joined
    cells = " ".join(row[1] for row in table["data"])
    assert "<b>bold</b>" in cells and "&lt;" not in cells
    assert "<" not in status
    hover = json.dumps(json.loads(arc["plot"]))
    assert "<b>bold" not in hover and "&lt;b&gt;bold&lt;/b&gt;" in hover


def test_long_story_reports_progress(client, reference):
    text = "\n".join(SAMPLES.values())
    text = text * (150_000 // len(text))
    total = len(reference.tag(text))
    job = client.submit(text, api_name="/tag_text")
    seen = []
    while not job.done():
        status = job.status()
        if status.progress_data:
            seen += [(p.index, p.length, p.desc) for p in status.progress_data]
        time.sleep(0.02)
    result = job.result()
    assert f"Tagged **{total}**" in result[4]
    tagging = [(i, n) for i, n, desc in seen if desc == "Tagging sentences"]
    assert tagging, f"no progress seen: {seen[:5]}"
    assert all(n == total and 0 < i <= total for i, n in tagging)


def _upload(client, tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return client.predict(handle_file(str(path)), api_name="/tag_file")


@pytest.mark.parametrize("encoding,prefix", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp949", b"")],
                         ids=["utf-8", "utf-8-bom", "cp949"])
def test_upload_txt(client, reference, tmp_path, encoding, prefix):
    story = SAMPLES["할머니의 빨간 목도리"]
    text, *result = _upload(client, tmp_path, "동화.txt", prefix + story.replace("\n", "\r\n").encode(encoding))
    assert text == story  # the decoded story lands in the text box
    _check_result(result, story, reference)


@pytest.mark.parametrize("data,message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "looks like a binary file"),
    (b"\x80abc\x80\xc9\xff" * 10, "neither UTF-8 nor CP949"),
    (b"", "The text is empty"),
    ("just English text".encode(), "no Korean"),
], ids=["binary", "undecodable", "empty", "no-hangul"])
def test_bad_upload_gives_clear_message(client, tmp_path, data, message):
    text, highlighted, table, arc, dist, status = _upload(client, tmp_path, "story_<i>x_*y*.txt", data)
    assert status.startswith("⚠ **Cannot tag this text.**") and message in status
    assert "<i>" not in status and "Traceback" not in status
    assert highlighted is None and table["data"] == [] and arc is None and dist is None
    assert text == {"__type__": "update"}  # gr.skip(): the text box keeps what the user had
    if message in ("looks like a binary file", "neither UTF-8 nor CP949"):  # the file name, shown as text
        assert "story\\_" in status  # Markdown-escaped (Gradio itself drops < and > from upload names)


# --- without the server -------------------------------------------------------------------------------------------

def _app_module():
    import importlib.util
    from tests.ui_server import ROOT
    spec = importlib.util.spec_from_file_location("emotag_app_entry", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_app_address_flags_env_and_defaults():
    app = _app_module()
    parse = app.build_parser().parse_args
    assert app.resolve_address(parse([]), {}) == ("127.0.0.1", 7860)
    assert not parse([]).share and parse(["--share"]).share
    assert app.resolve_address(parse([]), {"GRADIO_SERVER_PORT": "9001"}) == ("127.0.0.1", 9001)
    assert app.resolve_address(parse(["--port", "9002", "--host", "0.0.0.0"]),
                               {"GRADIO_SERVER_PORT": "9001", "GRADIO_SERVER_NAME": "x"}) == ("0.0.0.0", 9002)
    with pytest.raises(ValueError, match="not a port"):
        app.resolve_address(parse([]), {"GRADIO_SERVER_PORT": "abc"})


def test_app_refuses_a_bad_model_folder(tmp_path):
    import subprocess
    import sys
    from tests.ui_server import ROOT
    run = subprocess.run([sys.executable, str(ROOT / "app.py"), "--model", str(tmp_path / "missing")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("app.py: ") and "Traceback" not in run.stderr


def test_build_app_has_a_tag_tab(tmp_path, monkeypatch):
    import gradio as gr
    monkeypatch.setenv("EMOTAG_DB_URL", f"sqlite:///{tmp_path / 'annotations.db'}")
    from emotag.ui import build_app
    app = build_app()
    assert isinstance(app, gr.Blocks)
    tabs = [b for b in app.blocks.values() if isinstance(b, gr.Tab)]
    assert [t.label for t in tabs][0] == "Tag"
    assert any(isinstance(b, gr.Tabs) for b in app.blocks.values())
    names = {fn.api_name for fn in app.fns.values()}
    assert {"tag_text", "tag_file"} <= names
    story = next(b for b in app.blocks.values() if isinstance(b, gr.HighlightedText))
    assert story.color_map == {DISPLAY[n]: c for n, c in COLORS.items()}
    assert story.show_legend
