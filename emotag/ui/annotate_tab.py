"""The Annotate tab: label a story's sentences quickly, one focused sentence at a time, saved to the store.

Pick a story (or all stories) and a queue mode — story order, or least confident model prediction first —
and your annotator name (with ``app.py --auth`` it is the logged-in user). The current sentence is shown
large, between its neighbours, coloured by your label, with the model's suggestion and confidence. Four big
buttons (keys 1-4) save a label and move on; j/k or the arrow keys move; u or Ctrl+Z undoes; a or Enter
accepts the model's suggestion. Every click is one ``Store.annotate`` call, committed before the page moves.

Events (callable with gradio_client; the session — story, queue, position — lives in a gr.State):
  /annotate_load     (story, mode, annotator)  -> card, table, status, current, (session)
  /annotate_set      (label, annotator)        -> card, table, status, current   label: name, Korean name or 0-3
  /annotate_accept   (annotator)               -> same (takes the model's suggestion)
  /annotate_undo     (annotator)               -> same
  /annotate_next, /annotate_prev (annotator)   -> same
  /annotate_progress ()                        -> counts plot, progress table (of the loaded story, or all)
  /import_text       (text, title, run_model)  -> status, story, text, title (emptied after an import)
  /import_columns    (file)                    -> text column, emotion column, status
  /import_file       (file, text_column, emotion_column, label_annotator, run_model) -> status, story

``current`` is a JSON object: the sentence on screen (sentence_id, story_id, story, position, text,
predicted, confidence, label, index, total, done) and ``last``, the entry the action saved (or None).
Bad input never raises into Gradio: the status Markdown says what is wrong.
"""
import html
import logging
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from ..labels import COLORS, KOREAN, LABELS, UnknownLabel, normalize_label
from ..models import ModelLoadError
from ..plots import DISPLAY, FONT
from ..splitter import SplitterError
from ..store import NotFound, Store, StoreError
from ..store.imports import NO_LABELS, xlsx_columns
from ..textio import InputError
from .tag_tab import md_escape

log = logging.getLogger(__name__)

TITLE = "Annotate"
MODES = [("Story order", "story"), ("Least confident first", "uncertain")]
ALL = "all"
BATCH = 200  # sentences per session when working across all stories
CONTEXT = 2  # neighbours shown before and after the current sentence
COLUMNS = ["#", "story", "sentence", "model", "conf.", "my label"]
KEYS = {name: str(i + 1) for i, name in enumerate(LABELS)}
ERROR_MARK = "⚠"
IMPORT_FAILED = "⚠ **Nothing was imported.**"
READY = ("Pick a story (or **All stories**), a queue mode and your name, then press **Load**. "
         "Keys: **1-4** label · **j/k** or arrows move · **u** undo · **a** accept the model's suggestion.")
AUTO, NONE = "(detect)", "(none)"
IMPORT_TYPES = [".txt", ".xlsx", ".csv", ".tsv", ".jsonl", ".json"]

_STORE: Store | None = None
_STORE_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------------- the store


def get_store() -> Store:
    """The app's one Store ($EMOTAG_DB_URL, else annotations.db in the working folder), opened on first use."""
    global _STORE
    with _STORE_LOCK:
        if _STORE is None:
            _STORE = Store()
        return _STORE


def set_store(store: Store | None) -> None:
    global _STORE
    with _STORE_LOCK:
        _STORE = store


# ---------------------------------------------------------------------------------------------------- helpers


def esc(text: Any) -> str:
    """Text made safe for a gr.Markdown: Markdown punctuation escaped, then HTML."""
    return html.escape(md_escape(str(text)), quote=False)


def error_status(message: str) -> str:
    return f"{ERROR_MARK} {esc(message)}"


def who(annotator: str | None, request: gr.Request | None = None, what: str = "annotator") -> str:
    """The annotator: the logged-in user when the app runs with --auth, else the name typed in."""
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return str(user)
    name = (annotator or "").strip()
    if not name:
        raise InputError(f"Enter your {what} name first.")
    if len(name) > 200:
        raise InputError(f"The {what} name is longer than 200 characters.")
    return name


def parse_story(value: Any) -> int | None:
    """A story choice: None for all stories, else the story id."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", ALL)):
        return None
    try:
        return int(str(value).split("·")[0].strip())
    except ValueError:
        raise InputError(f"{value!r} is not a story: pick one from the list.") from None


def story_choices(store: Store, all_label: str | None = "All stories") -> list[tuple[str, str]]:
    choices = [(all_label, ALL)] if all_label else []
    return choices + [(f"{s.id} · {s.title} ({s.sentences})", str(s.id)) for s in store.stories()]


def chip(label: str | None, suffix: str = "") -> str:
    if label is None:
        return '<span class="emo-chip emo-none">—</span>'
    return (f'<span class="emo-chip" style="background:{COLORS[label]}">{html.escape(DISPLAY[label])}'
            f'{html.escape(suffix)}</span>')


def tint(label: str | None, alpha: str = "33") -> str:
    return "transparent" if label is None else COLORS[label] + alpha


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, (InputError, StoreError, SplitterError, ModelLoadError, UnknownLabel)):
        return str(exc)
    log.exception("annotate tab action failed")
    return "Something went wrong; the server log has the details."


# ---------------------------------------------------------------------------------------------------- session


def new_session(store: Store, name: str, story_id: int | None, mode: str) -> dict:
    """The work list for one annotator: cached sentence facts (text, story, prediction), and a position."""
    if mode not in ("story", "uncertain"):
        raise InputError(f"unknown queue mode {mode!r}: choose story order or least confident first")
    title = store.story(story_id).title if story_id is not None else None
    if story_id is not None and mode == "story":  # the whole story, labelled or not, in order
        mine = store.current_labels(name, story_id)
        items = [{"id": f.sentence_id, "story_id": f.story_id, "title": title, "position": f.position,
                  "text": f.text, "predicted": f.predicted, "confidence": f.confidence}
                 for f in store.final_labels(story_id)]
        pos = next((i for i, item in enumerate(items) if item["id"] not in mine), 0)
    else:  # the sentences still to label: in story order, or least confident first
        queue = store.queue(name, mode, story_id, limit=BATCH if story_id is None else None)
        items = [{"id": q.sentence_id, "story_id": q.story_id, "title": q.story_title, "position": q.position,
                  "text": q.text, "predicted": q.predicted, "confidence": q.confidence} for q in queue]
        pos = 0
    return {"annotator": name, "story": story_id, "story_title": title, "mode": mode, "items": items, "pos": pos,
            "undo": [], "last": None}


def _check_session(session: dict | None) -> dict:
    if not session or not session.get("items"):
        raise InputError("No sentences loaded: pick a story and press Load.")
    return session


def render(store: Store, session: dict | None, name: str | None, message: str):
    """(card html, table, status, current) for the session."""
    if not session or not session.get("items"):
        return empty_card(), empty_table(), message, None
    items, pos = session["items"], min(max(session["pos"], 0), len(session["items"]) - 1)
    session["pos"] = pos
    item = items[pos]
    mine = store.current_labels(name, session["story"]) if name else {}
    story_sentences = store.sentences(item["story_id"])
    done = sum(1 for it in items if it["id"] in mine)
    current = {
        "sentence_id": item["id"], "story_id": item["story_id"], "story": item["title"],
        "position": item["position"], "text": item["text"], "predicted": item["predicted"],
        "confidence": item["confidence"], "label": mine.get(item["id"]), "index": pos, "total": len(items),
        "done": done, "annotator": name, "mode": session["mode"], "last": session.get("last"),
    }
    return card_html(current, story_sentences, mine), table(items, mine, pos), message, current


def empty_card() -> str:
    return ('<div id="annotate-card-inner" class="emo-card emo-empty">'
            '<div class="emo-current">Load a story to start labelling · 이야기를 불러오세요</div></div>')


def card_html(current: dict, story_sentences, mine: dict[int, str]) -> str:
    position = current["position"]
    before = [s for s in story_sentences if position - CONTEXT <= s.position < position]
    after = [s for s in story_sentences if position < s.position <= position + CONTEXT]

    def context(s) -> str:
        label = mine.get(s.id)
        return (f'<div class="emo-ctx" style="border-left-color:{COLORS[label] if label else "#d0d4da"};'
                f'background:{tint(label, "1a")}"><span class="emo-num">{s.position + 1}</span>'
                f'{html.escape(s.text)}</div>')

    label, predicted, confidence = current["label"], current["predicted"], current["confidence"]
    shown = label or predicted
    style = (f"background:{tint(label, '40')};border-color:{COLORS[label]};border-style:solid" if label else
             f"background:#ffffff;border-color:{COLORS[shown] if shown else '#9aa1ab'};border-style:dashed")
    model = (f'Model {chip(predicted)} <b>{confidence:.0%}</b>' if predicted is not None and confidence is not None
             else "Model: no prediction")
    yours = f'Your label {chip(label)}' if label else 'Your label <span class="emo-todo">not yet</span>'
    meta = (f'<span class="emo-story">{html.escape(current["story"] or "")}</span> · sentence '
            f'<b>{position + 1}</b> of its story · item <b>{current["index"] + 1}</b> / {current["total"]} · '
            f'labelled <b>{current["done"]}</b> / {current["total"]}'
            + (" · least confident first" if current["mode"] == "uncertain" else ""))
    return (f'<div id="annotate-card-inner" class="emo-card" data-sentence="{current["sentence_id"]}" '
            f'data-label="{label or ""}">'
            f'<div class="emo-meta">{meta}</div>'
            f'{"".join(context(s) for s in before)}'
            f'<div class="emo-current" style="{style}">{html.escape(current["text"])}</div>'
            f'<div class="emo-suggest">{model} <span class="emo-sep">·</span> {yours}</div>'
            f'{"".join(context(s) for s in after)}</div>')


def empty_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="str") for c in COLUMNS})


def table(items: list[dict], mine: dict[int, str], pos: int):
    rows = []
    for i, it in enumerate(items):
        conf = it["confidence"]
        rows.append([("▶ " if i == pos else "") + str(it["position"] + 1), it["title"] or "", it["text"],
                     DISPLAY[it["predicted"]] if it["predicted"] else "",
                     "" if conf is None else f"{conf:.2f}", DISPLAY.get(mine.get(it["id"]), "")])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    by_display = {DISPLAY[name]: name for name in LABELS}

    def colour(value: str) -> str:
        name = by_display.get(value)
        return f"background-color: {COLORS[name]}; color: #111111" if name else ""

    def highlight_row(row):
        return ["font-weight: bold" if row.name == pos else ""] * len(row)

    return frame.style.apply(highlight_row, axis=1).map(colour, subset=["model", "my label"])


# ---------------------------------------------------------------------------------------------------- actions


def _act(action, session, annotator, request, *args):
    """Run ``action(store, session, name, *args) -> message`` and render; errors become the status."""
    store = get_store()
    name = None
    try:
        name = who(annotator, request)
        message = action(store, session, name, *args)
    except Exception as exc:  # noqa: BLE001 - shown as a status
        try:
            card, frame, _status, current = render(store, session, name, "")
        except Exception:
            log.exception("rendering the annotate card failed")
            card, frame, current = empty_card(), empty_table(), None
        return card, frame, error_status(_failure_message(exc)), current, session
    return (*render(store, session, name, message), session)


def load_message(session: dict, name: str) -> str:
    where = f"「{esc(session['story_title'])}」" if session["story"] is not None else "all stories"
    if not session["items"]:
        return f"✔ Nothing left to label in {where} for **{esc(name)}**."
    kind = "in story order" if session["mode"] == "story" else "least confident first"
    return (f"✔ Loaded **{len(session['items'])}** sentences of {where} {kind} for **{esc(name)}**. "
            "Keys: **1-4** label · **j/k** move · **u** undo · **a** accept.")


def annotate_load(story, mode, annotator, request: gr.Request):
    """Load a story (or all stories) for the annotator in the chosen queue mode."""
    store = get_store()
    try:
        name = who(annotator, request)
        story_id = parse_story(story)
        try:
            session = new_session(store, name, story_id, mode or "story")
        except NotFound:
            raise InputError(f"There is no story {story!r} (any more): pick one from the list.") from None
        return (*render(store, session, name, load_message(session, name)), session)
    except Exception as exc:  # noqa: BLE001 - shown as a status
        return empty_card(), empty_table(), error_status(_failure_message(exc)), None, None


def load_after_import(import_status, story, mode, annotator, request: gr.Request):
    """After a successful import: load the (first) imported story."""
    if not str(import_status or "").startswith("✔"):
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return annotate_load(story, mode, annotator, request)


def _move(store, session, name, step):
    session = _check_session(session)
    target = session["pos"] + step
    session["last"] = None
    if target < 0:
        session["pos"] = 0
        return "This is the first sentence."
    if target >= len(session["items"]):
        session["pos"] = len(session["items"]) - 1
        return _end_message(store, session, name)
    session["pos"] = target
    item = session["items"][target]
    return f"Sentence {item['position'] + 1} of 「{esc(item['title'])}」 ({target + 1} / {len(session['items'])})."


def _end_message(store, session, name) -> str:
    mine = store.current_labels(name, session["story"])
    left = sum(1 for it in session["items"] if it["id"] not in mine)
    if left:
        return f"This is the last sentence of the list; **{left}** still without your label."
    return "✔ This is the last sentence: every sentence of the list has your label."


def _set(store, session, name, label):
    session = _check_session(session)
    if label is None or (isinstance(label, str) and not label.strip()):
        raise InputError("No label given: choose 중립 neutral, 기쁨 happy, 슬픔 sad or 분노 angry.")
    label = normalize_label(label.split()[0] if isinstance(label, str) else label)
    item = session["items"][session["pos"]]
    entry = store.annotate(item["id"], name, label)  # committed when it returns
    session["undo"].append(item["id"])
    session["last"] = {"entry_id": entry.id, "sentence_id": item["id"], "label": entry.label,
                       "previous": entry.previous, "action": entry.action}
    saved = (f"✔ Saved {esc(DISPLAY[label])} for sentence {item['position'] + 1} of "
             f"「{esc(item['title'])}」" + (f" (was {esc(DISPLAY[entry.previous])})" if entry.previous else "") + ".")
    if session["pos"] + 1 < len(session["items"]):
        session["pos"] += 1
        return saved
    return saved + " " + _end_message(store, session, name)


def _accept(store, session, name):
    session = _check_session(session)
    predicted = session["items"][session["pos"]]["predicted"]
    if predicted is None:
        raise InputError("The model has no suggestion for this sentence: choose a label.")
    return _set(store, session, name, predicted)


def _undo(store, session, name):
    session = _check_session(session)
    ids = [it["id"] for it in session["items"]]
    sentence_id = session["undo"].pop() if session["undo"] else ids[session["pos"]]
    entry = store.undo(sentence_id, name)
    if sentence_id in ids:
        session["pos"] = ids.index(sentence_id)
    if entry is None:
        session["last"] = None
        return "Nothing to undo for this sentence."
    session["last"] = {"entry_id": entry.id, "sentence_id": sentence_id, "label": entry.label,
                       "previous": entry.previous, "action": entry.action}
    item = session["items"][session["pos"]] if sentence_id in ids else None
    where = f"sentence {item['position'] + 1}" if item else f"sentence id {sentence_id}"
    now = esc(DISPLAY[entry.label]) if entry.label else "no label"
    return f"↶ Undone: {where} is back to {now}."


def _goto(store, session, name, index):
    session = _check_session(session)
    session["pos"] = min(max(int(index), 0), len(session["items"]) - 1)
    session["last"] = None
    item = session["items"][session["pos"]]
    return f"Sentence {item['position'] + 1} of 「{esc(item['title'])}」 ({session['pos'] + 1} / {len(session['items'])})."


def annotate_set(label, annotator, session, request: gr.Request):
    """Save ``label`` for the current sentence (then move to the next one)."""
    return _act(_set, session, annotator, request, label)


def _label_button(name: str):
    def set_label(annotator, session, request: gr.Request):
        return _act(_set, session, annotator, request, name)
    set_label.__name__ = f"annotate_set_{name}"
    return set_label


def annotate_accept(annotator, session, request: gr.Request):
    """Save the model's suggestion for the current sentence."""
    return _act(_accept, session, annotator, request)


def annotate_undo(annotator, session, request: gr.Request):
    """Undo this session's latest label (or the current sentence's latest entry)."""
    return _act(_undo, session, annotator, request)


def annotate_next(annotator, session, request: gr.Request):
    return _act(_move, session, annotator, request, 1)


def annotate_prev(annotator, session, request: gr.Request):
    return _act(_move, session, annotator, request, -1)


def annotate_select(annotator, session, evt: gr.SelectData, request: gr.Request):
    """Jump to the sentence clicked in the table."""
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return _act(_goto, session, annotator, request, index)


# ---------------------------------------------------------------------------------------------------- progress


def counts_figure(store: Store, story_id: int | None, title: str) -> go.Figure:
    """Stacked bars: one per annotator (and the model), segments = labels in their colours."""
    ratings = store.ratings(story_id)
    names = sorted({n for labels in ratings.values() for n in labels})
    counts = {n: {label: 0 for label in LABELS} for n in names}
    for labels in ratings.values():
        for n, label in labels.items():
            counts[n][label] += 1
    predicted = [p["label"] for p in store.predictions(story_id).values()]
    bars = names + (["model"] if predicted else [])
    if predicted:
        counts["model"] = {label: predicted.count(label) for label in LABELS}
    fig = go.Figure()
    for label in LABELS:
        fig.add_trace(go.Bar(x=bars, y=[counts[b][label] for b in bars], name=DISPLAY[label],
                             marker={"color": COLORS[label]},
                             hovertemplate=f"%{{x}}: {DISPLAY[label]} %{{y}}<extra></extra>"))
    fig.update_layout(barmode="stack", template="plotly_white", height=320, font={"family": FONT, "size": 13},
                      title={"text": html.escape(title, quote=False), "x": 0.01},
                      margin={"l": 45, "r": 15, "t": 45, "b": 30},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "center", "x": 0.5,
                              "traceorder": "normal"})
    fig.update_yaxes(title_text="sentences", rangemode="tozero")
    if not bars:
        fig.add_annotation(text="no labels yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return fig


PROGRESS_COLUMNS = ["story", "annotator", "done", "total", "%"]


def progress_table(store: Store, story_id: int | None) -> pd.DataFrame:
    rows = [[f"{p.story_id} · {p.title}", p.annotator, p.done, p.total, round(100 * p.fraction, 1)]
            for p in store.progress(story_id) if p.done or story_id is not None]
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS) if rows else pd.DataFrame(
        {c: pd.Series(dtype="str") for c in PROGRESS_COLUMNS})


def annotate_progress(session):
    """Counts per label (per annotator and the model) and progress per story and annotator."""
    store = get_store()
    story_id = (session or {}).get("story")
    try:
        title = (f"Labels in 「{store.story(story_id).title}」" if story_id is not None
                 else "Labels in all stories")
        return counts_figure(store, story_id, title), progress_table(store, story_id)
    except Exception:  # noqa: BLE001 - progress is secondary: never break the page
        log.exception("progress view failed")
        return None, gr.skip()


# ---------------------------------------------------------------------------------------------------- imports


def _run_model(store: Store, stories) -> str:
    try:
        for story in stories:
            store.add_predictions(story.id)
    except (ModelLoadError, StoreError, InputError) as exc:
        return f" ⚠ The model could not pre-annotate them: {esc(exc)}"
    except Exception:  # noqa: BLE001
        log.exception("pre-annotation failed")
        return " ⚠ The model could not pre-annotate them (see the server log)."
    return " Model suggestions added."


def _imported(store: Store, stories, run_model: bool):
    labels = sum(len(h) for s in stories for h in [store.history(story_id=s.id)])
    names = ", ".join(f"「{esc(s.title)}」 ({s.sentences})" for s in stories[:8]) + (" …" if len(stories) > 8 else "")
    message = (f"✔ Imported **{len(stories)}** {'story' if len(stories) == 1 else 'stories'}, "
               f"**{sum(s.sentences for s in stories)}** sentences"
               + (f", {labels} imported labels" if labels else "") + f": {names}.")
    if run_model:
        message += _run_model(store, stories)
    choices = story_choices(store)
    return message, gr.update(choices=choices, value=str(stories[0].id))


def import_text(text, title, run_model=True):
    """Import a pasted story (split into sentences); with run_model, pre-annotate it with the model."""
    store = get_store()
    try:
        story = store.import_text(text or "", title=(title or "").strip() or None)
    except Exception as exc:  # noqa: BLE001 - shown as a status
        return f"{IMPORT_FAILED} {esc(_failure_message(exc))}", gr.skip(), gr.skip(), gr.skip()
    return (*_imported(store, [story], bool(run_model)), "", "")  # an imported story leaves the boxes


def _column_choice(value: Any, auto: Any = None) -> Any:
    if value is None or str(value).strip() in ("", AUTO):
        return auto
    value = str(value).strip()
    if value == NONE:
        return NO_LABELS
    return value.split("·")[0].strip()  # "B · 문장" -> "B"


def import_columns(file):
    """After an upload: an .xlsx's columns to choose the text and emotion columns from."""
    text_default = gr.update(choices=[AUTO], value=AUTO)
    label_default = gr.update(choices=[AUTO, NONE], value=AUTO)
    if not file:
        return text_default, label_default, ""
    path = Path(file)
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return text_default, label_default, (f"{esc(path.name)}: press **Import file**. The text column is found "
                                             "by its header (text, sentence, 문장, …); type another name if needed.")
    try:
        sheets = xlsx_columns(path.read_bytes(), name=path.name)
    except Exception as exc:  # noqa: BLE001
        return text_default, label_default, error_status(_failure_message(exc))
    seen: dict[str, str] = {}
    for columns in sheets.values():
        for letter, header in columns:
            if header and letter not in seen:
                seen[letter] = f"{letter} · {header}"
            seen.setdefault(letter, letter)
    columns = list(seen.values())
    summary = "; ".join(f"sheet {esc(name)}: " + ", ".join(esc(f"{letter} {header}".strip()) for letter, header in cols)
                        for name, cols in list(sheets.items())[:6])
    return (gr.update(choices=[AUTO, *columns], value=AUTO), gr.update(choices=[AUTO, NONE, *columns], value=AUTO),
            f"{esc(path.name)}: {len(sheets)} sheet(s) — {summary}. Choose the columns or leave **(detect)**.")


def import_file(file, text_column=AUTO, label_column=AUTO, label_annotator="import", run_model=True):
    """Import a .txt / .xlsx (a sheet per story) / .csv / .jsonl file: everything or nothing."""
    store = get_store()
    if not file:
        return f"{IMPORT_FAILED} No file was uploaded: choose a .txt, .xlsx, .csv or .jsonl file.", gr.skip()
    path = Path(file)
    try:
        options = {"text_column": _column_choice(text_column), "label_column": _column_choice(label_column)}
        annotator = (label_annotator or "").strip() or "import"
        stories = store.import_file(path, name=path.name, annotator=annotator, **options)
    except Exception as exc:  # noqa: BLE001 - shown as a status
        return f"{IMPORT_FAILED} {esc(_failure_message(exc))}", gr.skip()
    return _imported(store, stories, bool(run_model))


# ---------------------------------------------------------------------------------------------------- page


def page_load(request: gr.Request):
    """On page load: the story list, and the logged-in user as the annotator (read-only) under --auth."""
    store = get_store()
    user = getattr(request, "username", None)
    choices = story_choices(store)
    name = gr.update(value=user, interactive=False, info="signed in") if user else gr.skip()
    return gr.update(choices=choices), name


CSS = """
#annotate-card .emo-card { color: #16181d; background: #fafbfc; border: 1px solid #e3e6ea; border-radius: 12px;
  padding: 14px 18px; }
#annotate-card .emo-meta { color: #5a6270; font-size: 0.9rem; margin-bottom: 8px; }
#annotate-card .emo-story { font-weight: 600; color: #2b3140; }
#annotate-card .emo-ctx { color: #596070; font-size: 1.0rem; line-height: 1.6; padding: 4px 10px; margin: 4px 0;
  border-left: 5px solid #d0d4da; border-radius: 4px; }
#annotate-card .emo-num { display: inline-block; min-width: 2.2em; color: #8a919c; font-size: 0.85em; }
#annotate-card .emo-current { font-size: 1.6rem; line-height: 1.7; font-weight: 500; color: #111318;
  padding: 14px 18px; margin: 10px 0 6px; border-width: 3px; border-radius: 10px; }
#annotate-card .emo-empty .emo-current { color: #8a919c; border: 2px dashed #c8ccd2; font-size: 1.2rem; }
#annotate-card .emo-suggest { font-size: 0.95rem; color: #3b4250; margin: 2px 0 10px; }
#annotate-card .emo-chip { display: inline-block; padding: 1px 9px; border-radius: 999px; color: #111318;
  font-weight: 600; }
#annotate-card .emo-chip.emo-none { background: #e6e8eb; }
#annotate-card .emo-todo { color: #8a919c; font-style: italic; }
#annotate-card .emo-sep { color: #b0b5bd; margin: 0 6px; }
.emo-label-btn { font-size: 1.25rem !important; font-weight: 700 !important; min-height: 64px !important;
  color: #111318 !important; border: 2px solid rgba(0,0,0,0.08) !important; }
#annotate-neutral { background: #b0b7c3 !important; }
#annotate-happy { background: #f6c445 !important; }
#annotate-sad { background: #5b8def !important; color: #ffffff !important; }
#annotate-angry { background: #e5534b !important; color: #ffffff !important; }
.emo-label-btn:hover { filter: brightness(1.07); }
#annotate-status { min-height: 2.2em; }
"""

JS = r"""
if (!window.__emotagAnnotateKeys) {
  window.__emotagAnnotateKeys = true;
  const TEXT_TYPES = ["text", "search", "email", "number", "password", "url", "tel", ""];
  const typing = (el) => !!el && (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
    (el.tagName === "INPUT" && TEXT_TYPES.includes((el.getAttribute("type") || "").toLowerCase())));
  const KEYS = {"1": "annotate-neutral", "2": "annotate-happy", "3": "annotate-sad", "4": "annotate-angry",
    "j": "annotate-next", "k": "annotate-prev", "ArrowDown": "annotate-next", "ArrowRight": "annotate-next",
    "ArrowUp": "annotate-prev", "ArrowLeft": "annotate-prev", "u": "annotate-undo", "a": "annotate-accept",
    "Enter": "annotate-accept"};
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.metaKey || e.isComposing) return;
    const t = e.target;
    if (typing(t)) return;  // typing in a text box: keys are text
    const card = document.getElementById("annotate-card");
    if (!card || card.offsetParent === null) return;  // the Annotate tab is not showing
    let id = null;
    if (e.ctrlKey) { if (e.key.toLowerCase() === "z") id = "annotate-undo"; }
    else id = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!id) return;
    if (e.key.startsWith("Arrow") && t && t !== document.body && t.tagName !== "BUTTON") return;  // radios, tables
    if (e.key === "Enter" && t && t !== document.body) return;  // Enter on a focused control is its own click
    if (e.repeat && id !== "annotate-next" && id !== "annotate-prev") return;  // a held key labels once
    const button = document.getElementById(id);
    if (!button || button.disabled) return;
    e.preventDefault();
    button.click();
  });
  // a mouse click leaves no focus on the button, so Enter/arrows keep their meaning (Enter = accept)
  document.addEventListener("click", (e) => {
    const button = e.target && e.target.closest ? e.target.closest("button[id^='annotate-']") : null;
    if (button && e.detail > 0 && button.id !== "annotate-load") button.blur();
  }, true);
}
"""


def build_tab() -> None:
    """Build the Annotate tab inside the current gr.Tab. Opens the store (creates annotations.db) now."""
    store = get_store()
    choices = story_choices(store)
    session = gr.State(None)
    with gr.Row(equal_height=False):
        story = gr.Dropdown(choices=choices, value=None, label="Story", allow_custom_value=True, scale=4,
                            min_width=240, elem_id="annotate-story")
        mode = gr.Radio(MODES, value="story", label="Queue", scale=3, min_width=220, elem_id="annotate-mode")
        annotator = gr.Textbox(label="Annotator", placeholder="your name", scale=2, min_width=160, max_lines=1,
                               elem_id="annotate-annotator")
        load = gr.Button("Load", variant="primary", scale=1, min_width=90, elem_id="annotate-load")
    with gr.Row(equal_height=False):
        with gr.Column(scale=7, min_width=420):
            card = gr.HTML(empty_card(), elem_id="annotate-card", head=f"<style>{CSS}</style>", js_on_load=JS,
                           apply_default_css=False)
            with gr.Row(equal_height=True):
                label_buttons = {
                    name: gr.Button(f"{KOREAN[name]} {KEYS[name]}", elem_id=f"annotate-{name}",
                                    elem_classes=["emo-label-btn"], min_width=100)
                    for name in LABELS}
            with gr.Row(equal_height=True):
                prev = gr.Button("◀ Prev (k)", elem_id="annotate-prev", min_width=90)
                undo = gr.Button("↶ Undo (u)", elem_id="annotate-undo", min_width=90)
                accept = gr.Button("✓ Model (a)", elem_id="annotate-accept", min_width=90)
                nxt = gr.Button("Next (j) ▶", elem_id="annotate-next", min_width=90)
            status = gr.Markdown(READY, elem_id="annotate-status")
            current = gr.JSON(label="Current sentence", visible=False, elem_id="annotate-current")
            # API only: /annotate_set (label, annotator)
            api_label = gr.Textbox(visible=False, label="label")
            api_set = gr.Button(visible=False)
        with gr.Column(scale=5, min_width=320):
            with gr.Accordion("Add stories", open=not store.stories(), elem_id="annotate-import"):
                paste = gr.Textbox(label="Paste a story (Korean)", lines=6, max_lines=14,
                                   elem_id="import-text-box", placeholder="옛날 옛적, 숲속에 토끼가 살았어요. …")
                with gr.Row(equal_height=True):
                    paste_title = gr.Textbox(label="Title (optional: the first line)", max_lines=1, scale=3,
                                             elem_id="import-title")
                    paste_button = gr.Button("Import text", scale=1, elem_id="import-text-button")
                with gr.Accordion("…or import a file: .txt, KAIST-style .xlsx, .csv, .jsonl", open=False,
                                  elem_id="import-file-section"):
                    upload = gr.File(label=".txt · .xlsx (a sheet per story) · .csv · .jsonl", file_types=IMPORT_TYPES,
                                     type="filepath", height=110, elem_id="import-file")
                    with gr.Row():
                        text_column = gr.Dropdown([AUTO], value=AUTO, label="Text column", allow_custom_value=True,
                                                  elem_id="import-text-column")
                        label_column = gr.Dropdown([AUTO, NONE], value=AUTO, label="Emotion column",
                                                   allow_custom_value=True, elem_id="import-label-column")
                    label_annotator = gr.Textbox("import", label="Imported labels are by", max_lines=1)
                    file_button = gr.Button("Import file", elem_id="import-file-button")
                run_model = gr.Checkbox(True, label="Pre-annotate with the model")
                import_status = gr.Markdown("", elem_id="import-status")
            with gr.Accordion("Progress and label counts", open=True, elem_id="annotate-progress"):
                counts = gr.Plot(label="Label counts", show_label=False, elem_id="annotate-counts")
                progress = gr.Dataframe(value=progress_table(store, None), label="Progress per story and annotator",
                                        interactive=False, max_height=220, elem_id="annotate-progress-table")
                refresh = gr.Button("Refresh", size="sm")
    sentences = gr.Dataframe(value=empty_table(), headers=COLUMNS, label="Sentences (click one to jump to it)",
                             interactive=False, wrap=True, max_height=460,
                             column_widths=["7%", "14%", "49%", "11%", "7%", "12%"], elem_id="annotate-table")

    view = [card, sentences, status, current, session]
    fast = {"show_progress": "hidden", "trigger_mode": "multiple", "concurrency_id": "annotate",
            "concurrency_limit": 1}
    prog = {"fn": annotate_progress, "inputs": [session], "outputs": [counts, progress], "show_progress": "hidden",
            "api_name": "annotate_progress_auto", "api_visibility": "private", "concurrency_id": "annotate_progress",
            "trigger_mode": "always_last"}

    load.click(annotate_load, [story, mode, annotator], view, api_name="annotate_load", **fast).then(**prog)
    for trigger in (story.input, mode.input, annotator.submit):
        trigger(annotate_load, [story, mode, annotator], view, api_visibility="private", **fast).then(**prog)
    api_set.click(annotate_set, [api_label, annotator, session], view, api_name="annotate_set", **fast).then(**prog)
    for name, button in label_buttons.items():
        button.click(_label_button(name), [annotator, session], view, api_name=f"annotate_set_{name}",
                     api_visibility="private", **fast).then(**prog)
    accept.click(annotate_accept, [annotator, session], view, api_name="annotate_accept", **fast).then(**prog)
    undo.click(annotate_undo, [annotator, session], view, api_name="annotate_undo", **fast).then(**prog)
    nxt.click(annotate_next, [annotator, session], view, api_name="annotate_next", **fast)
    prev.click(annotate_prev, [annotator, session], view, api_name="annotate_prev", **fast)
    sentences.select(annotate_select, [annotator, session], view, api_name="annotate_select",
                     api_visibility="private", **fast)
    refresh.click(annotate_progress, [session], [counts, progress], api_name="annotate_progress")

    paste_button.click(import_text, [paste, paste_title, run_model], [import_status, story, paste, paste_title],
                       api_name="import_text",
                       show_progress_on=[import_status]).then(
        load_after_import, [import_status, story, mode, annotator], view, api_visibility="private",
        **fast).then(**prog)
    upload.upload(import_columns, [upload], [text_column, label_column, import_status], api_name="import_columns")
    file_button.click(import_file, [upload, text_column, label_column, label_annotator, run_model],
                      [import_status, story], api_name="import_file", show_progress_on=[import_status]).then(
        load_after_import, [import_status, story, mode, annotator], view, api_visibility="private",
        **fast).then(**prog)

    root = gr.context.Context.root_block
    if root is not None:
        root.load(page_load, None, [story, annotator], api_name="annotate_page_load",
                  api_visibility="private").then(**prog)


__all__ = ["TITLE", "annotate_load", "annotate_set", "build_tab", "get_store", "import_file", "import_text",
           "set_store"]
