"""The Review tab: agreement between annotators, disagreements and adjudication, downloadable exports.

Events (callable with gradio_client):
  /agreement      (story)                                   -> summary, pairs, per story, report (JSON)
  /disagreements  (story, unresolved)                       -> table
  /adjudicate     (sentence_id, label, reviewer, note, story, unresolved) -> status, table   label: neutral/happy/sad/angry
  /export         (stories, fmt, wav, speaker, missing)     -> file, status

``story`` is a story id (as text) or "all". ``report`` is ``Store.agreement(story).to_dict()``: Cohen's kappa
per annotator pair, Fleiss' kappa and Krippendorff's alpha. With ``app.py --auth`` the reviewer is the
logged-in user.
"""
import logging
import re
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from ..formats import DEFAULT_SPEAKER, DEFAULT_WAV
from ..labels import LABELS
from ..plots import DISPLAY
from ..store import NotFound
from ..store.exports import FORMATS
from ..textio import InputError
from .annotate_tab import (ALL, _failure_message, error_status, esc, get_store, parse_story, story_choices,
                           who)

log = logging.getLogger(__name__)

TITLE = "Review"
PAIR_COLUMNS = ["annotator A", "annotator B", "sentences", "agreement", "Cohen's κ"]
STORY_COLUMNS = ["story", "annotators", "labelled", "by 2+", "disagreements", "Fleiss' κ", "Krippendorff's α"]
DISAGREEMENT_COLUMNS = ["sentence id", "story", "#", "sentence", "labels", "final", "source"]
EXPORT_FORMATS = [("TTS filelist (wav|text|speaker|id|id)", "tts"), ("KAIST-style .xlsx (a sheet per story)", "xlsx"),
                  ("CSV", "csv"), ("JSONL", "jsonl")]
SUFFIX = {"tts": ".txt", "xlsx": ".xlsx", "csv": ".csv", "jsonl": ".jsonl"}
_UNSAFE = re.compile(r"[^\w.-]+")


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _number(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def _strength(kappa) -> str:
    """Landis & Koch's words for a kappa."""
    if kappa is None:
        return ""
    if kappa < 0:
        return "poor"
    for limit, word in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if kappa <= limit:
            return word
    return "almost perfect"


def _frame(rows, columns) -> pd.DataFrame:
    if rows:
        return pd.DataFrame(rows, columns=columns)
    return pd.DataFrame({c: pd.Series(dtype="str") for c in columns})


def _scope(store, story_id) -> str:
    return "all stories" if story_id is None else f"「{esc(store.story(story_id).title)}」"


# ---------------------------------------------------------------------------------------------------- agreement


def agreement(story):
    """Agreement over one story or all: summary, Cohen's kappa per pair, per-story table, the full report."""
    store = get_store()
    try:
        story_id = parse_story(story)
        report = store.agreement(story_id)
        by_story = store.agreement_by_story()
        titles = {s.id: s.title for s in store.stories()}
        if story_id is not None and story_id not in titles:
            raise InputError(f"There is no story {story!r}: pick one from the list.")
    except Exception as exc:  # noqa: BLE001 - shown as a status
        return (error_status(_failure_message(exc)), _frame([], PAIR_COLUMNS), _frame([], STORY_COLUMNS), None)
    if len(report.annotators) < 2:
        summary = (f"**{_scope(store, story_id)}**: {len(report.annotators)} annotator(s) "
                   f"({esc(', '.join(report.annotators)) or 'none'}). Agreement needs two or more annotators "
                   "labelling the same sentences.")
    else:
        summary = (f"**{_scope(store, story_id)}** · annotators {esc(', '.join(report.annotators))} · "
                   f"**{_n(report.items, 'sentence')}** labelled, {report.pairable} by two or more, "
                   f"**{_n(report.disagreements, 'disagreement')}**  \n"
                   f"Fleiss' κ **{_number(report.fleiss_kappa)}** {_strength(report.fleiss_kappa)} "
                   f"(on {_n(report.fleiss_items, 'sentence')} labelled by everyone) · "
                   f"Krippendorff's α **{_number(report.krippendorff_alpha)}**")
    pairs = [[p.a, p.b, p.items, "—" if p.observed is None else f"{p.observed:.0%}",
              _number(p.kappa) + (f" {_strength(p.kappa)}" if p.kappa is not None else "")] for p in report.pairs]
    stories = [[f"{sid} · {titles.get(sid, '')}", len(r.annotators), r.items, r.pairable, r.disagreements,
                _number(r.fleiss_kappa), _number(r.krippendorff_alpha)]
               for sid, r in by_story.items() if r.items]
    return summary, _frame(pairs, PAIR_COLUMNS), _frame(stories, STORY_COLUMNS), report.to_dict()


# ---------------------------------------------------------------------------------------------------- adjudication


def _disagreement_table(store, story_id, unresolved: bool) -> pd.DataFrame:
    titles = {s.id: s.title for s in store.stories()}
    rows = []
    for f in store.disagreements(story_id, unresolved=bool(unresolved)):
        labels = " · ".join(f"{name}: {DISPLAY[label]}" for name, label in sorted(f.labels.items()))
        rows.append([f.sentence_id, titles.get(f.story_id, ""), f.position + 1, f.text, labels,
                     DISPLAY.get(f.label, ""), f.source or ""])
    return _frame(rows, DISAGREEMENT_COLUMNS)


def disagreements(story, unresolved=False):
    """Sentences whose annotators chose different labels (unresolved: not adjudicated yet)."""
    store = get_store()
    try:
        return _disagreement_table(store, parse_story(story), unresolved)
    except Exception:  # noqa: BLE001
        log.exception("listing disagreements failed")
        return _frame([], DISAGREEMENT_COLUMNS)


def pick_disagreement(table: pd.DataFrame, evt: gr.SelectData):
    """A row clicked in the disagreements table: its sentence id and current final label."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    try:
        sentence_id = int(table.iloc[row, 0])
        final = {DISPLAY[name]: name for name in LABELS}.get(table.iloc[row, 5])
    except (IndexError, ValueError, TypeError):
        return gr.skip(), gr.skip()
    return sentence_id, final


def adjudicate(sentence_id, label, reviewer, note, story, unresolved, request: gr.Request):
    """Set the final (adjudicated) label of a sentence; returns a status and the refreshed disagreements."""
    store = get_store()
    try:
        name = who(reviewer, request, "reviewer")
        if sentence_id in (None, ""):
            raise InputError("Choose a sentence: click a row of the disagreements table (or type its id).")
        try:
            sentence = store.sentence(int(sentence_id))
        except (ValueError, TypeError):
            raise InputError(f"{sentence_id!r} is not a sentence id.") from None
        except NotFound:
            raise InputError(f"There is no sentence with id {sentence_id}.") from None
        if not label:
            raise InputError("Choose the final label.")
        entry = store.adjudicate(sentence.id, name, label, note=(note or "").strip() or None)
    except Exception as exc:  # noqa: BLE001 - shown as a status
        return error_status(_failure_message(exc)), gr.skip()
    text = sentence.text if len(sentence.text) <= 60 else sentence.text[:59] + "…"
    status = (f"✔ Final label of sentence {sentence.id} (“{esc(text)}”) set to **{esc(DISPLAY[entry.label])}** "
              f"by {esc(name)}" + (f" (was {esc(DISPLAY[entry.previous])})" if entry.previous else "") + ".")
    return status, disagreements(story, unresolved)


# ---------------------------------------------------------------------------------------------------- exports


def export(stories, fmt="tts", wav=DEFAULT_WAV, speaker=DEFAULT_SPEAKER, missing="error"):
    """Write the final labels of the chosen stories (none chosen: all) as a downloadable file."""
    store = get_store()
    try:
        if fmt not in FORMATS:
            raise InputError(f"Choose an export format ({', '.join(FORMATS)}).")
        ids = [i for i in (parse_story(s) for s in (stories or [])) if i is not None]
        options = {}
        if fmt == "tts":
            options = {"wav": (wav or "").strip() or DEFAULT_WAV, "speaker": (speaker or "").strip() or DEFAULT_SPEAKER,
                       "missing": missing or "error"}
            if "|" in options["wav"] or "|" in options["speaker"]:
                raise InputError("The wav path and the speaker cannot contain '|' (the filelist's separator).")
        data = store.export(fmt, ids or None, **options)
        if not ids and not store.stories():
            raise InputError("There are no stories to export yet: import one first.")
    except Exception as exc:  # noqa: BLE001 - shown as a status
        return None, error_status(_failure_message(exc))
    scope = "all" if not ids else "_".join(map(str, ids[:5])) + ("_etc" if len(ids) > 5 else "")
    if len(ids) == 1:
        scope += "_" + store.story(ids[0]).title[:30]
    name = _UNSAFE.sub("_", f"emotag_{scope}" + ("_filelist" if fmt == "tts" else "")).strip("_") + SUFFIX[fmt]
    path = Path(tempfile.mkdtemp(prefix="emotag-export-")) / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", newline="")
    lines = data.count("\n") if isinstance(data, str) else None
    what = f"{lines} lines" if lines is not None else f"{len(data):,} bytes"
    return str(path), f"✔ Exported {'all stories' if not ids else f'{len(ids)} story(ies)'} as {fmt} ({what}): **{esc(name)}**"


def review_refresh():
    """The story lists (after imports in another tab)."""
    choices = story_choices(get_store())
    return gr.update(choices=choices), gr.update(choices=choices[1:])


# ---------------------------------------------------------------------------------------------------- page


def build_tab() -> None:
    store = get_store()
    choices = story_choices(store)
    with gr.Row(equal_height=False):
        story = gr.Dropdown(choices=choices, value=ALL, label="Story", allow_custom_value=True, scale=3,
                            elem_id="review-story")
        unresolved = gr.Checkbox(False, label="Only disagreements not adjudicated yet", scale=2)
        compute = gr.Button("Agreement & disagreements", variant="primary", scale=1, elem_id="review-agreement")
    summary = gr.Markdown("Pick a story (or all) and press **Agreement & disagreements**.", elem_id="review-summary")
    with gr.Row(equal_height=False):
        pairs = gr.Dataframe(value=_frame([], PAIR_COLUMNS), label="Cohen's κ per annotator pair", interactive=False,
                             max_height=260, elem_id="review-pairs", scale=2)
        per_story = gr.Dataframe(value=_frame([], STORY_COLUMNS), label="Per story", interactive=False,
                                 max_height=260, elem_id="review-per-story", scale=3)
    report = gr.JSON(label="Agreement report", visible=False)
    with gr.Accordion("Disagreements and adjudication", open=True):
        table = gr.Dataframe(value=_frame([], DISAGREEMENT_COLUMNS), label="Disagreements (click a row to adjudicate)",
                             interactive=False, wrap=True, max_height=380, elem_id="review-disagreements",
                             column_widths=["8%", "14%", "5%", "38%", "20%", "9%", "6%"])
        with gr.Row(equal_height=False):
            sentence_id = gr.Number(label="Sentence id", precision=0, minimum=1, scale=1, elem_id="review-sentence")
            label = gr.Radio([(DISPLAY[n], n) for n in LABELS], label="Final label", scale=3, elem_id="review-label")
            reviewer = gr.Textbox(label="Reviewer", placeholder="your name", max_lines=1, scale=1,
                                  elem_id="review-reviewer")
            note = gr.Textbox(label="Note (optional)", max_lines=1, scale=2)
            set_final = gr.Button("Set final label", variant="primary", scale=1, elem_id="review-adjudicate")
        adjudicate_status = gr.Markdown("", elem_id="review-status")
    with gr.Accordion("Export final labels", open=True):
        with gr.Row(equal_height=False):
            export_stories = gr.Dropdown(choices=choices[1:], value=[], multiselect=True, allow_custom_value=True,
                                         label="Stories (none: all)", scale=3, elem_id="export-stories")
            fmt = gr.Radio(EXPORT_FORMATS, value="tts", label="Format", scale=4, elem_id="export-format")
        with gr.Row(equal_height=False):
            wav = gr.Textbox(DEFAULT_WAV, label="TTS: wav path ({index}, {story}, {position} allowed)", max_lines=1,
                             placeholder="wavs/{story}_{position:03d}.wav", scale=3)
            speaker = gr.Textbox(DEFAULT_SPEAKER, label="TTS: speaker", max_lines=1, scale=1)
            missing = gr.Radio([("error", "error"), ("leave out", "skip")], value="error",
                               label="TTS: sentences without any label", scale=2)
            export_button = gr.Button("Export", variant="primary", scale=1, elem_id="export-button")
        download = gr.File(label="Download", interactive=False, elem_id="export-file")
        export_status = gr.Markdown("", elem_id="export-status")

    compute.click(agreement, [story], [summary, pairs, per_story, report], api_name="agreement").then(
        disagreements, [story, unresolved], [table], api_name="disagreements_auto", api_visibility="private")
    unresolved.input(disagreements, [story, unresolved], [table], api_name="disagreements")
    table.select(pick_disagreement, [table], [sentence_id, label], api_visibility="private")
    set_final.click(adjudicate, [sentence_id, label, reviewer, note, story, unresolved], [adjudicate_status, table],
                    api_name="adjudicate")
    export_button.click(export, [export_stories, fmt, wav, speaker, missing], [download, export_status],
                        api_name="export")

    tab = gr.context.Context.block
    if isinstance(tab, gr.Tab):
        tab.select(review_refresh, None, [story, export_stories], api_visibility="private")
    root = gr.context.Context.root_block
    if root is not None:
        root.load(_review_page_load, None, [story, export_stories, reviewer], api_visibility="private")


def _review_page_load(request: gr.Request):
    choices = story_choices(get_store())
    user = getattr(request, "username", None)
    return (gr.update(choices=choices), gr.update(choices=choices[1:]),
            gr.update(value=user, interactive=False, info="signed in") if user else gr.skip())


__all__ = ["TITLE", "adjudicate", "agreement", "build_tab", "disagreements", "export"]
