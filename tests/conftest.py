import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
AIHUB = SHARED / "data" / "aihub"
STORIES = SHARED / "data" / "stories"


@pytest.fixture
def aihub_dir() -> Path:
    if not any(AIHUB.glob("*.csv")):
        pytest.skip("../shared/data/aihub is not here")
    return AIHUB


@pytest.fixture
def stories_dir() -> Path:
    if not any(STORIES.glob("*.txt")):
        pytest.skip("../shared/data/stories is not here")
    return STORIES


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch):
    # Nothing in the tests may reach a model hub.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
