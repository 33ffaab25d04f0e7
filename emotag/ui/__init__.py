"""The Gradio web UI. Only this subpackage imports gradio; the core ``emotag`` package never does.

    from emotag.ui import build_app, launch
    launch(build_app(), host="127.0.0.1", port=7860)
"""
from .app import TABS, build_app, launch

__all__ = ["TABS", "build_app", "launch"]
