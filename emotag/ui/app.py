"""The Gradio app: one gr.Blocks with a gr.Tabs, one tab per module listed in TABS.

A tab module ``emotag/ui/<tab>.py`` exposes ``TITLE`` (the tab's name) and ``build_tab()``, which creates the
tab's components and events inside the current ``gr.Tab``. Add a tab by adding its module name to TABS.
"""
from __future__ import annotations

import importlib
from typing import Sequence

import gradio as gr

# (module under emotag.ui, tab id). Order = order of the tabs.
TABS: list[tuple[str, str]] = [
    ("tag_tab", "tag"),
    ("annotate_tab", "annotate"),
    ("review_tab", "review"),
    ("retrain_tab", "retrain"),
]

FONT_STACK = ["Noto Sans CJK KR", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic", "sans-serif"]
MONO_STACK = ["Noto Sans Mono CJK KR", "ui-monospace", "monospace"]

CSS = """
#tag-story .textfield { line-height: 2.0; font-size: 1.05rem; }
#tag-status { min-height: 2.2em; }
"""


def theme() -> gr.themes.Base:
    # System fonts only: the default theme would fetch Google fonts, which an offline machine cannot reach.
    return gr.themes.Soft(primary_hue="amber", font=FONT_STACK, font_mono=MONO_STACK)


def build_app(tabs: Sequence[tuple[str, str]] | None = None) -> gr.Blocks:
    """Build the whole UI. ``tabs`` defaults to TABS: (module name under emotag.ui, tab id) pairs."""
    with gr.Blocks(title="emotag · 동화 감정 태거", analytics_enabled=False) as app:
        gr.Markdown("## emotag · 동화 감정 태거\nTag each sentence of a Korean story as "
                    "중립 neutral / 기쁨 happy / 슬픔 sad / 분노 angry.")
        with gr.Tabs():
            for module_name, tab_id in (TABS if tabs is None else tabs):
                module = importlib.import_module(f"{__package__}.{module_name}")
                with gr.Tab(getattr(module, "TITLE", tab_id.title()), id=tab_id, elem_id=f"tab-{tab_id}"):
                    module.build_tab()
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, **kwargs):
    """Serve ``app`` with emotag's theme and CSS (Gradio 6 takes them at launch, not in gr.Blocks)."""
    app.queue(default_concurrency_limit=1)
    return app.launch(server_name=host, server_port=port, share=share, ssr_mode=False, theme=theme(), css=CSS,
                      show_error=False, max_file_size="5mb", footer_links=["api"], **kwargs)
