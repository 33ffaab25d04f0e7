"""The Tag tab: paste or upload a story, see every sentence colour-coded by emotion, a table and two plots.

Events (callable with gradio_client):
  /tag_text  (text)             -> highlighted, table, arc, distribution, status
  /tag_file  (file)             -> text, highlighted, table, arc, distribution, status

Bad input never raises into Gradio: the status Markdown says what is wrong and the text box keeps its text.
"""
from __future__ import annotations

import html
import logging
import re
from pathlib import Path

import gradio as gr
import pandas as pd

from .. import predictor
from ..labels import COLORS
from ..models import ModelLoadError
from ..plots import DISPLAY, count_labels, story_figures
from ..samples import SAMPLES
from ..splitter import SplitterError
from ..textio import InputError, check_story_text, decode_bytes

log = logging.getLogger(__name__)

TITLE = "Tag"
COLUMNS = ["#", "sentence", "emotion", "confidence"]
COLOR_MAP = {DISPLAY[name]: color for name, color in COLORS.items()}
READY = "Paste a Korean story (or upload a .txt file, UTF-8 or CP949) and press **Tag**."
ERROR_MARK = "⚠ **Cannot tag this text.**"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def md_escape(text: str) -> str:
    """Backslash-escape Markdown punctuation (error_status then HTML-escapes the whole message)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def error_status(message: str) -> str:
    return f"{ERROR_MARK} {html.escape(message, quote=False)}"


def empty_table() -> pd.DataFrame:
    return pd.DataFrame({"#": pd.Series(dtype="int64"), "sentence": pd.Series(dtype="str"),
                         "emotion": pd.Series(dtype="str"), "confidence": pd.Series(dtype="float64")})


def highlight(text: str, tagged) -> list[tuple[str, str | None]]:
    """(piece, display label) for each sentence, with the text between sentences as (gap, None).

    Joining the pieces gives back the whole (line-ending normalised) text, so paragraphs keep their breaks.
    """
    pieces: list[tuple[str, str | None]] = []
    cursor = 0
    for s in tagged:
        if s.start > cursor:
            pieces.append((text[cursor:s.start], None))
        pieces.append((text[s.start:s.end], DISPLAY[s.label]))
        cursor = max(cursor, s.end)
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces


def table(tagged) -> pd.DataFrame:
    if not tagged:
        return empty_table()
    return pd.DataFrame([[i, s.text, DISPLAY[s.label], round(float(s.confidence), 3)]
                         for i, s in enumerate(tagged, start=1)], columns=COLUMNS)


def summary(tagged) -> str:
    counts = count_labels(s.label for s in tagged)
    parts = " · ".join(f"{DISPLAY[name]} {n}" for name, n in counts.items())
    return f"✔ Tagged **{len(tagged)}** sentence{'s' if len(tagged) != 1 else ''}: {parts}"


def _failure(message: str):
    return None, empty_table(), None, None, error_status(message)


def run_tag(text: str | None, progress=None):
    """Tag ``text`` and return the five outputs (highlighted, table, arc, distribution, status).

    Never raises: a problem becomes a status message starting with ERROR_MARK and empty outputs.
    """
    try:
        text = check_story_text(text)
        if progress is not None:
            progress(0, desc="Splitting the story into sentences…")

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress((done, total), desc="Tagging sentences", unit="sentences")

        tagged = predictor.tag(text, progress=report)
    except (InputError, SplitterError, ModelLoadError) as exc:
        return _failure(str(exc))
    except Exception:  # never show a traceback in the page
        log.exception("tagging failed")
        return _failure("Something went wrong while tagging; the server log has the details.")
    if not tagged:
        return _failure("No sentences were found in the text.")
    arc, dist = story_figures(tagged)
    return highlight(text, tagged), table(tagged), arc, dist, summary(tagged)


def tag_text(text: str | None, progress=gr.Progress(track_tqdm=False)):
    return run_tag(text, progress)


def tag_file(file: str | None, progress=gr.Progress(track_tqdm=False)):
    """Decode an uploaded .txt (UTF-8, UTF-8 with BOM, CP949), put it in the text box and tag it."""
    if not file:
        return (gr.skip(), *_failure("No file was uploaded: choose a .txt file with a Korean story."))
    path = Path(file)
    try:
        data = path.read_bytes()
        text = decode_bytes(data, name=md_escape(path.name))
    except InputError as exc:
        return (gr.skip(), *_failure(str(exc)))
    except OSError as exc:
        return (gr.skip(), *_failure(f"Cannot read the uploaded file ({exc.strerror or exc})."))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    outputs = run_tag(text, progress)
    failed = outputs[-1].startswith(ERROR_MARK)
    return (gr.skip() if failed else text, *outputs)  # a file that cannot be tagged leaves the text box alone


def build_tab() -> None:
    """Build the Tag tab's components and events inside the current gr.Tab."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            text = gr.Textbox(
                label="Story (Korean)", lines=12, max_lines=24, elem_id="tag-text",
                placeholder="옛날 옛적, 숲속 작은 굴에 토끼 토토가 살았어요. \"와, 정말 신난다!\"",
            )
            tag_button = gr.Button("Tag", variant="primary", elem_id="tag-button")
            upload = gr.File(label="…or upload a .txt file (UTF-8 or CP949)", file_types=[".txt"],
                             file_count="single", type="filepath", height=170, elem_id="tag-upload")
            gr.Examples(examples=[[story] for story in SAMPLES.values()], inputs=[text],
                        example_labels=list(SAMPLES), label="Example stories", examples_per_page=5,
                        api_name="load_tag_example")
        with gr.Column(scale=6, min_width=320):
            status = gr.Markdown(READY, elem_id="tag-status")
            story = gr.HighlightedText(
                label="Story by emotion", color_map=COLOR_MAP, show_legend=True, combine_adjacent=False,
                show_inline_category=False, elem_id="tag-story",
            )
    with gr.Row(equal_height=True):
        # the figures carry their own titles; the labels name the outputs for the API
        arc = gr.Plot(label="Emotion arc", show_label=False, elem_id="tag-arc", scale=3)
        dist = gr.Plot(label="Emotion distribution", show_label=False, elem_id="tag-dist", scale=2)
    sentences = gr.Dataframe(
        value=empty_table(), headers=COLUMNS, datatype=["number", "str", "str", "number"], label="Sentences",
        interactive=False, wrap=True, max_height=480, column_widths=["6%", "64%", "16%", "14%"],
        elem_id="tag-table",
    )
    outputs = [story, sentences, arc, dist, status]
    tag_button.click(tag_text, inputs=[text], outputs=outputs, api_name="tag_text",
                     show_progress="full", show_progress_on=[story])
    upload.upload(tag_file, inputs=[upload], outputs=[text, *outputs], api_name="tag_file",
                  show_progress="full", show_progress_on=[story])


__all__ = ["COLOR_MAP", "TITLE", "build_tab", "highlight", "run_tag", "table", "tag_file", "tag_text"]
