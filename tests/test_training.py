"""Fine-tuning (emotag.training) on the tiny KoBERT: overfitting, early stopping, progress, cancel, torchrun."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotag.models import load_model
from emotag.training import Cancelled, Progress, TrainConfig, save_atomically, train

from .tiny_bert import LABELLED, _few_threads, base, labelled, labelled_frame, train_tiny  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def quick(base, **overrides) -> TrainConfig:
    return TrainConfig(base_model=str(base), **{"lr": 2e-3, "batch_size": 8, "epochs": 1, "dropout": 0.0, **overrides})


def test_overfits_40_sentences_and_saves_the_best_epoch(base, tmp_path):
    out = tmp_path / "kobert"
    texts, ids = labelled()
    result = train_tiny(base, out)
    assert result.output == out and result.metrics["accuracy"] == 1.0
    assert (result.model.predict_proba(texts).argmax(axis=1) == np.array(ids)).all()
    # the best epoch's weights are the ones kept and saved
    best = result.history[result.best_epoch - 1]
    assert best["macro_f1"] == max(h["macro_f1"] for h in result.history) == result.metrics["macro_f1"]
    loaded = load_model(out)
    np.testing.assert_array_equal(loaded.logits(texts), result.model.logits(texts))
    meta = json.loads((out / "emotag_model.json").read_text())
    assert meta["backbone"] == "kobert" and meta["best_epoch"] == result.best_epoch
    assert meta["metrics"]["validation"]["confusion"] == [[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]]
    assert set(meta["metrics"]["validation"]["per_class_f1"]) == {"neutral", "happy", "sad", "angry"}
    assert meta["hyperparameters"]["lr"] == 2e-3 and meta["hyperparameters"]["seed"] == 1
    assert (out / "MODEL_CARD.md").read_text().startswith("# kobert-emotag")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_defaults_follow_the_issue():
    c = TrainConfig()
    assert (c.batch_size, c.lr, c.epochs, c.patience, c.warmup_ratio, c.weight_decay, c.max_grad_norm) == \
        (32, 3e-5, 20, 3, 0.1, 0.01, 1.0)
    assert c.max_len is None and c.max_len_percentile == 85.0 and c.base_model == "skt/kobert-base-v1"


def test_max_len_is_the_85th_percentile(base):
    df = labelled_frame()
    result = train(df, valid=df, config=quick(base, lr=0.0))
    lengths = result.model.tokenizer.token_lengths(df["text"])
    assert result.model.max_len == math.ceil(np.percentile(lengths, 85))
    fixed = train(df, valid=df, config=quick(base, lr=0.0, max_len=9))
    assert fixed.model.max_len == 9


def test_early_stopping_and_progress(base):
    df = labelled_frame()
    seen: list[Progress] = []
    result = train(df, valid=df, config=quick(base, lr=0.0, epochs=10, patience=2), progress=seen.append)
    assert len(result.history) == 3 and result.best_epoch == 1  # nothing changes with lr 0: stop after 1 + 2
    assert [p.step for p in seen] == list(range(1, 16))
    assert all(p.total == 50 and p.loss > 0 and p.eta >= 0 for p in seen)
    assert seen[-1].epoch == 3
    step, total, loss, eta, epoch = seen[0]  # a plain tuple too
    assert (step, total, epoch) == (1, 50, 1)


def test_validation_split_by_text_and_class_weights(base):
    df = pd.concat([labelled_frame()] * 3, ignore_index=True)  # every sentence three times
    result = train(df, config=quick(base, class_weights=True, valid_fraction=0.3))
    data = result.model.metadata["data"]
    assert data["train_rows"] + data["valid_rows"] == 120 and data["valid_rows"] % 3 == 0
    assert result.model.metadata["hyperparameters"]["class_weights"] is True


def test_bad_data_is_refused(base):
    df = labelled_frame()
    with pytest.raises(ValueError, match="no examples of label id"):
        train(df[df["label_id"] != 3], valid=df, config=quick(base))
    with pytest.raises(ValueError, match="label_id"):
        train(df[["text"]], config=quick(base))


@pytest.mark.parametrize("kind", ["event", "callable"])
def test_cancel_leaves_no_output(base, tmp_path, kind):
    df = labelled_frame()
    event = threading.Event()
    cancel = event if kind == "event" else event.is_set

    def progress(p: Progress):
        if p.step == 3:
            event.set()

    with pytest.raises(Cancelled):
        train(df, valid=df, config=quick(base, epochs=5), out=tmp_path / "out", progress=progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_save_atomically_replaces_a_folder_whole(base, tmp_path):
    from emotag.models.transformer import TransformerModel

    model = TransformerModel.from_pretrained(base, device="cpu")
    out = tmp_path / "m"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    save_atomically(model, out)
    assert not (out / "stale.txt").exists() and (out / "emotag_model.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]

    class Broken(TransformerModel):
        def _save_weights(self, folder):
            (folder / "half.bin").write_bytes(b"x")
            raise OSError("disk full")

    model.__class__ = Broken
    with pytest.raises(OSError, match="disk full"):
        save_atomically(model, out)
    assert (out / "emotag_model.json").is_file() and not (out / "half.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_torchrun_two_processes_gloo(base, tmp_path):
    """The training script, unchanged, under torchrun with 2 CPU processes (DDP over gloo)."""
    csv = tmp_path / "data.csv"
    pd.DataFrame([(t, name) for name, rows in LABELLED.items() for t in rows], columns=["text", "label"]).to_csv(csv, index=False)
    out = tmp_path / "kobert-ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "training" / "train_transformer.py"), "--data", str(csv), "--valid", str(csv),
           "--base-model", str(base), "--out", str(out), "--epochs", "4", "--batch-size", "4", "--lr", "2e-3",
           "--dropout", "0", "--log-every", "5", "--threads", "1", "--onnx"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.monotonic()
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert sum("2 processes" in line for line in lines) == 1  # only rank 0 prints
    assert sum(line.startswith("epoch 1 step 5/20") for line in lines) == 1  # 40 rows / 2 ranks / batch 4
    meta = json.loads((out / "emotag_model.json").read_text())
    assert meta["hyperparameters"]["world_size"] == 2 and meta["metrics"]["validation"]["n"] == 40
    assert load_model(out).predict_proba(["토끼는 숲속 작은 집에 살았어요."]).shape == (1, 4)
    assert load_model(tmp_path / "kobert-ddp-onnx").backbone == "kobert-onnx"
    assert elapsed < 90, f"torchrun run took {elapsed:.0f} s"


def test_training_script_on_the_merged_data(base, tmp_path, monkeypatch, capsys):
    """--data merged: the retrain tab's merged data, epoch-by-epoch held-out figures, card with the command."""
    sys.path.insert(0, str(ROOT / "training"))
    import train_transformer

    from .test_merged import write_aihub_csv

    corpus = write_aihub_csv(tmp_path / "aihub" / "tiny.csv",
                             [(t, name) for name, rows in LABELLED.items() for t in rows]).parent
    for key, value in {"EMOTAG_AIHUB_DIR": str(corpus), "EMOTAG_STORIES_DIR": "none",
                       "EMOTAG_STORY_LABELS": "none", "EMOTAG_OWN_STORIES": "none", "EMOTAG_EXTRA_DATA": ""}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "merged-model"
    code = train_transformer.main(["--data", "merged", "--base-model", str(base), "--out", str(out), "--epochs", "2",
                                   "--batch-size", "8", "--lr", "2e-3", "--log-every", "100", "--valid-fraction", "0.25"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "aihub: 40 labelled rows" in printed and "aihub_validation macro-F1" in printed
    meta = json.loads((out / "emotag_model.json").read_text())
    assert meta["metrics"]["aihub_validation"]["n"] == meta["metrics"]["validation"]["n"] > 0
    assert [set(row) >= {"epoch", "macro_f1", "aihub_validation_macro_f1"} for row in meta["history"]] == [True, True]
    assert len(meta["data_fingerprint"]) == 16 and meta["command"].startswith("python training/train_transformer.py")
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Aihub validation" in card and "--data merged" in card
    assert load_model(out).predict_proba(["토끼는 숲속 작은 집에 살았어요."]).shape == (1, 4)


def test_merged_data_for_a_story_model(tmp_path, monkeypatch):
    """--aihub-sample 0 --valid-on stories: train on the story sentences only, choose the epoch on story ones."""
    sys.path.insert(0, str(ROOT / "training"))
    import train_transformer

    from .test_merged import write_aihub_csv

    corpus = write_aihub_csv(tmp_path / "aihub" / "tiny.csv",
                             [(t, name) for name, rows in LABELLED.items() for t in rows]).parent
    import csv

    own = tmp_path / "own.csv"
    with open(own, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["story", "text", "label", "annotator"])
        writer.writerows([f"own-{i % 3}", f"{t} 그리고 {i}번째 이야기였어요.", name, "w"]
                         for i, (name, rows) in enumerate(LABELLED.items()) for t in rows)
    for key, value in {"EMOTAG_AIHUB_DIR": str(corpus), "EMOTAG_STORIES_DIR": "none", "EMOTAG_STORY_LABELS": "none",
                       "EMOTAG_OWN_STORIES": str(own), "EMOTAG_EXTRA_DATA": ""}.items():
        monkeypatch.setenv(key, value)
    train, valid, extra, merged = train_transformer.read_merged(None, 2, aihub_sample=0, valid_fraction=0.25,
                                                                valid_on="stories")
    assert set(train["source"]) == {"own stories"} and set(valid["source"]) == {"own stories"}
    # --story-repeat counts the hand-tagged shared stories again, never the own stories
    assert len(train) == len(merged.part("train")[merged.part("train")["source"] == "own stories"])
    assert set(extra) == {"merged_validation", "aihub_validation", "story_validation"}
    assert len(extra["merged_validation"]) > len(valid) > 0


def test_story_repeat_counts_the_hand_tagged_stories_again(monkeypatch):
    sys.path.insert(0, str(ROOT / "training"))
    import train_transformer

    import emotag.merged

    rows = pd.DataFrame({"text": ["대화", "이야기", "우리 이야기", "검증"], "label": ["sad", "happy", "angry", "neutral"],
                         "label_id": [2, 1, 3, 0], "source": ["aihub", "stories", "own stories", "stories"],
                         "split": ["train", "train", "train", "valid"]})

    class Merged:
        notes: list = []

        def part(self, split):
            return rows[rows["split"] == split]

        def held_out(self):
            valid = self.part("valid")
            return {"validation": valid, "aihub_validation": valid[valid["source"] == "aihub"],
                    "story_sentences_validation": valid, "story_validation": valid.iloc[:0]}

    monkeypatch.setattr(emotag.merged, "build_merged", lambda sources: Merged())
    train, *_ = train_transformer.read_merged(None, 3)
    assert sorted(train["text"]) == ["대화", "우리 이야기", "이야기", "이야기", "이야기"]
    train, *_ = train_transformer.read_merged(None, 3, aihub_sample=0)
    assert sorted(train["text"]) == ["우리 이야기", "이야기", "이야기", "이야기"]
    *_, valid, extra, _ = train_transformer.read_merged(None, 1, valid_on="stories")
    assert valid["text"].tolist() == extra["tagged_story_sentences_validation"]["text"].tolist() == ["검증"]


def test_an_extra_held_out_set_cannot_take_the_validation_name():
    from emotag.training import train

    frame = pd.DataFrame({"text": ["가"], "label": ["neutral"], "label_id": [0]})
    with pytest.raises(ValueError, match="'validation'"):
        train(frame, frame, extra_valid={"validation": frame})
