"""The training worker: ``python -m emotag.worker RUN_FOLDER`` (started by ``emotag.jobs.start_job``).

Reads ``settings.json`` from the run folder, then: builds the merged data (``emotag.merged``), trains the
backbone (classical: ``ClassicalModel.train``, progress per stage; kobert and e5-small: ``emotag.training.train`` with a
progress report every step and the cancel hook), evaluates the new model and the active model on the same
validation sets (the text-split validation set and the whole-story validation set), saves the new model into
the registry (``Registry.add``: registered, not activated) and writes ``status.json`` throughout.

A ``CANCEL`` file in the run folder stops the run: training checks it every step; a stage that cannot be
interrupted (reading data, fitting the classical model) is abandoned within a few seconds. Once saving has
begun the run completes. Nothing reaches the registry unless the run finishes, so a failed or cancelled run
leaves the active model as it was.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path

from .jobs import (CACHE_DIR, CANCEL_FILE, ENV_FAIL, ENV_THREADS, SETTINGS_FILE, STATUS_FILE, now, read_json,
                   release_lock, write_json)
from .labels import LABELS

WRITE_EVERY_S = 0.5  # progress writes at most this often (stage changes are written at once)
CANCEL_POLL_S = 0.2
CANCEL_GRACE_S = 5.0  # after a cancel, how long training may take to notice before the worker just exits
MAX_LOSS_POINTS = 600
_EPOCH_LINE = re.compile(r"epoch (\d+): train loss ([\d.]+), validation accuracy ([\d.]+), macro-F1 ([\d.]+)")


class Cancelled(Exception):
    pass


class Failure(Exception):
    """A problem with the run's data or settings: the message is shown as it is."""


class SimulatedCrash(RuntimeError):
    pass


def _fail_hook(stage: str) -> None:
    wanted = os.environ.get(ENV_FAIL, "").strip().lower()
    if wanted in ("1", "true", "yes"):
        wanted = "train"
    if wanted == stage:
        raise SimulatedCrash(f"simulated crash in the worker during {stage} ({ENV_FAIL}={os.environ[ENV_FAIL]})")
    if wanted == "exit" and stage == "train":
        print(f"{ENV_FAIL}=exit: the worker dies now", flush=True)
        os._exit(17)


class Job:
    def __init__(self, folder: Path):
        self.folder = folder
        self.settings = read_json(folder / SETTINGS_FILE)
        if self.settings is None:
            raise SystemExit(f"{folder / SETTINGS_FILE} is missing or unreadable")
        self.run_id = self.settings["run_id"]
        self.runs_root = Path(self.settings["runs_dir"])
        self.status = read_json(folder / STATUS_FILE) or {"run_id": self.run_id}
        self.lock = threading.RLock()
        self.cancel = threading.Event()
        self.committing = False
        self.done = False
        self.last_write = 0.0
        self.loss_stride = 1
        self.started = time.monotonic()

    # -- status
    def write(self, force: bool = True, **changes) -> None:
        with self.lock:
            if self.done:
                return
            self.status.update(changes)
            self.status["updated"] = now()
            self.status["elapsed"] = round(time.monotonic() - self.started, 1)
            if force or time.monotonic() - self.last_write >= WRITE_EVERY_S:
                write_json(self.folder / STATUS_FILE, self.status)
                self.last_write = time.monotonic()

    def stage(self, name: str, message: str) -> None:
        self.check_cancel()
        print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)
        self.write(stage=name, message=message)

    def finish(self, **changes) -> None:
        with self.lock:
            if self.done:
                return
            self.write(finished=now(), **changes)
            self.done = True
        release_lock(self.runs_root, self.run_id)

    # -- cancel
    def check_cancel(self) -> None:
        if self.cancel.is_set() and not self.committing:
            raise Cancelled("cancelled by request")

    def watch(self) -> None:
        flag = self.folder / CANCEL_FILE
        while not self.done:
            if flag.exists() and not self.cancel.is_set():
                self.cancel.set()
                self.write(message="cancelling…")
                # training checks the flag every step; other stages cannot be interrupted
                steps = (self.settings["backbone"] in ("kobert", "e5-small")
                         and self.status.get("stage") in ("train", "evaluate"))
                deadline = time.monotonic() + (CANCEL_GRACE_S if steps else 0.5)
                while not self.done and time.monotonic() < deadline:
                    time.sleep(CANCEL_POLL_S)
                with self.lock:
                    if self.done or self.committing:
                        continue
                    self.finish(status="cancelled", message=f"cancelled during {self.status.get('stage')}; "
                                                            "the active model is unchanged")
                print("cancelled: leaving without waiting for the current stage", flush=True)
                for name in ("model", "model.partial"):
                    shutil.rmtree(self.folder / name, ignore_errors=True)
                os._exit(0)
            time.sleep(CANCEL_POLL_S)

    # -- progress
    def progress(self, step: int, total: int, loss: float | None = None, eta: float | None = None,
                 epoch: int | None = None, force: bool = False) -> None:
        with self.lock:
            progress = dict(self.status.get("progress") or {})
            progress.update(step=step, total=total, eta=None if eta is None else round(float(eta), 1))
            if epoch is not None:
                progress["epoch"] = epoch
            if loss is not None:
                progress["loss"] = round(float(loss), 5)
                history = self.status.setdefault("history", {"loss": [], "valid_f1": []})
                if step % self.loss_stride == 0:
                    history["loss"].append([step, round(float(loss), 5)])
                if len(history["loss"]) > MAX_LOSS_POINTS:
                    self.loss_stride *= 2
                    history["loss"] = [p for p in history["loss"] if p[0] % self.loss_stride == 0]
            self.write(force=force, progress=progress)

    def on_log(self, message: str) -> None:
        print(message, flush=True)
        m = _EPOCH_LINE.search(message)
        if m:
            with self.lock:
                history = self.status.setdefault("history", {"loss": [], "valid_f1": []})
                history["valid_f1"].append([int(m.group(1)), float(m.group(4))])
                history.setdefault("valid_accuracy", []).append([int(m.group(1)), float(m.group(3))])
                self.write(force=True)

    # -- the run
    def run(self) -> int:
        self.write(status="running", pid=os.getpid(), started=now(), stage="starting",
                   message="the worker started", history={"loss": [], "valid_f1": []})
        threading.Thread(target=self.watch, name="cancel-watch", daemon=True).start()
        try:
            self._run()
        except Cancelled:
            self.finish(status="cancelled", message=f"cancelled during {self.status.get('stage')}; the active model "
                                                    "is unchanged")
        except Failure as exc:
            self.finish(status="failed", error=str(exc), message="failed: " + str(exc))
        except Exception as exc:
            if self.cancel.is_set() and type(exc).__name__ == "Cancelled":  # emotag.training.Cancelled
                self.finish(status="cancelled", message=f"cancelled during {self.status.get('stage')}; the active "
                                                        "model is unchanged")
            else:
                traceback.print_exc()
                error = f"{type(exc).__name__}: {exc}".strip()
                self.finish(status="failed", error=error + " (the active model is unchanged)",
                            message="failed during " + str(self.status.get("stage")))
        finally:
            shutil.rmtree(self.folder / "model", ignore_errors=True)
            shutil.rmtree(self.folder / "model.partial", ignore_errors=True)
            self.done = True
            release_lock(self.runs_root, self.run_id)
        return 0 if self.status.get("status") == "finished" else 1

    def _run(self) -> None:
        from .merged import Sources, build_merged
        from .textio import InputError

        s = self.settings
        backbone, hp = s["backbone"], s["hyperparameters"]
        steps = 4
        self.stage("data", "reading and merging the data")
        if backbone == "classical":  # the classical model reports stages; KoBERT reports training steps
            self.progress(0, steps, force=True)
        _fail_hook("data")
        try:
            merged = build_merged(Sources.from_dict(s["sources"]), cache_dir=self.runs_root / CACHE_DIR)
        except InputError as exc:
            raise Failure(str(exc)) from None
        merged.write_csv(self.folder / "merged.csv")
        self.write(data=merged.summary())
        train, valid, story = (merged.part(p) for p in ("train", "valid", "story_valid"))
        missing = [LABELS[i] for i in range(len(LABELS)) if i not in set(train["label_id"])]
        if missing:
            raise Failure(f"the training split has no {', '.join(missing)} sentences ({len(train)} rows): "
                          "add data for every emotion")
        if backbone in ("kobert", "e5-small") and valid.empty:
            name = "KoBERT" if backbone == "kobert" else backbone
            raise Failure(f"the validation split is empty: {name} needs validation sentences (raise the "
                          "validation share or add data)")
        if valid.empty and story.empty:
            raise Failure("there is nothing to validate on (no validation and no story-validation sentences)")
        self.check_cancel()
        if backbone == "classical":
            self.progress(1, steps, force=True)
            self.stage("train", f"fitting the classical model on {len(train):,} sentences")
            model = self._train_classical(train, hp)
            self.progress(2, steps, force=True)
        else:
            self.stage("train", f"fine-tuning {s['base_model']} on {len(train):,} sentences")
            model = self._train_kobert(train, valid, hp, s["base_model"], backbone)
        if backbone == "classical":
            _fail_hook("train")
        self.stage("evaluate", "evaluating the new and the active model on the same validation sets")
        new = self._evaluate(model, valid, story)
        active, note = self._evaluate_baseline(valid, story)
        metrics = {"new": new, "active": active, "active_id": s["baseline"]["id"]}
        if note:
            metrics["active_note"] = note
        self.write(metrics=metrics)
        if backbone == "classical":
            self.progress(3, steps, force=True)
        self.check_cancel()
        with self.lock:
            self.check_cancel()
            self.committing = True
        self.stage("save", "saving the new model into the registry")
        _fail_hook("save")
        model_id = self._save(model, merged, new)
        if backbone == "classical":
            self.progress(4, steps, force=True)
        self.finish(status="finished", model_id=model_id, stage="done",
                    message=f"finished: model {model_id} is ready to promote")

    def _train_classical(self, train, hp):
        from .merged import SOURCE_STORE, STORY_SOURCES
        from .models.classical import ClassicalModel

        weights = [float(hp["story_weight"]) if src in (*STORY_SOURCES, SOURCE_STORE) else 1.0
                   for src in train["source"]]
        params = {k: v for k, v in hp.items() if k != "story_weight"}
        model = ClassicalModel.train(train["text"].tolist(), train["label_id"].tolist(), sample_weight=weights,
                                     **params)
        model.metadata["hyperparameters"] = dict(hp)
        self.write(history={**self.status.get("history", {})})
        return model

    def _train_kobert(self, train, valid, hp, base_model, backbone="kobert"):
        """KoBERT or e5-small (TrainConfig routes an e5 base model to the e5 backbone)."""
        import torch

        from .training import Progress, TrainConfig, train as fine_tune

        threads = os.environ.get(ENV_THREADS)
        if threads:
            torch.set_num_threads(max(1, int(threads)))
        config = TrainConfig(base_model=base_model, name=f"{backbone}-emotag-retrain",
                             **{k: v for k, v in hp.items() if k in TrainConfig.__dataclass_fields__})
        self.write(progress={"step": 0, "total": None, "epoch": 0, "epochs": config.epochs})
        crash_at = 2 if os.environ.get(ENV_FAIL, "").strip().lower() in ("1", "true", "yes", "train", "exit") else None

        def report(p: Progress) -> None:
            if crash_at is not None and p.step >= crash_at:
                _fail_hook("train")
            with self.lock:
                self.status.setdefault("progress", {})["epochs"] = config.epochs
            self.progress(p.step, p.total, p.loss, p.eta, p.epoch)

        result = fine_tune(train[["text", "label_id"]], valid=valid[["text", "label_id"]], config=config,
                           progress=report, cancel=self.cancel, log=self.on_log)
        self.write(progress={**self.status.get("progress", {}), "best_epoch": result.best_epoch,
                             "seconds": result.seconds})
        return result.model

    @staticmethod
    def _predict(model, texts: list[str]) -> list[int]:
        out: list[int] = []
        for start in range(0, len(texts), 256):
            out += model.predict_proba(texts[start:start + 256]).argmax(axis=1).tolist()
        return out

    def _evaluate(self, model, valid, story) -> dict:
        from .metrics import evaluate

        result = {}
        for name, frame in (("validation", valid), ("story_validation", story)):
            self.check_cancel()
            result[name] = (evaluate(frame["label_id"].tolist(), self._predict(model, frame["text"].tolist()))
                            if len(frame) else None)
        return result

    def _evaluate_baseline(self, valid, story) -> tuple[dict | None, str | None]:
        from .models import ModelLoadError, load_model

        where = self.settings["baseline"]
        try:
            model = load_model(where["path"])
        except ModelLoadError as exc:
            return None, f"the active model could not be loaded for comparison ({exc})"
        return self._evaluate(model, valid, story), None

    def _save(self, model, merged, metrics: dict) -> str:
        from .registry import Registry

        s = self.settings
        registry = Registry(s["models_dir"])
        model_id = registry.new_id(s["backbone"])
        model.metadata.update(
            name=f"retrain-{model_id}", date=dt.date.today().isoformat(), run_id=self.run_id,
            started_by=s["started_by"], data_fingerprint=merged.fingerprint,
            metrics={k: v for k, v in metrics.items() if v is not None},
            data={**model.metadata.get("data", {}), **{k: v for k, v in merged.summary().items() if k != "notes"}},
        )
        if s["backbone"] in ("kobert", "e5-small"):
            model.metadata["base_model"] = s["base_model"]
            from .training import save_atomically

            folder = save_atomically(model, self.folder / "model")
        else:
            partial = self.folder / "model.partial"
            shutil.rmtree(partial, ignore_errors=True)
            model.save(partial)
            (partial / "MODEL_CARD.md").write_text(model_card(model.metadata, "classical"), encoding="utf-8")
            folder = self.folder / "model"
            partial.rename(folder)
        return registry.add(folder, model_id)


def model_card(meta: dict, backbone: str) -> str:
    lines = [f"# {meta.get('name', backbone)}", "",
             f"emotag backbone \"{backbone}\", retrained {meta.get('date', '')} by {meta.get('started_by', '?')} "
             f"(run {meta.get('run_id', '?')}), data fingerprint `{meta.get('data_fingerprint', '?')}`.", "",
             "Hyperparameters: " + ", ".join(f"{k}={v}" for k, v in sorted(meta.get("hyperparameters", {}).items())),
             ""]
    for name, title in (("validation", "Validation (text split)"), ("story_validation", "Story validation")):
        v = meta.get("metrics", {}).get(name)
        if v:
            lines += [f"**{title}: accuracy {v['accuracy']:.3f}, macro-F1 {v['macro_f1']:.3f}** (n={v['n']:,}); "
                      "per class: " + ", ".join(f"{k} {x:.3f}" for k, x in v["per_class_f1"].items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m emotag.worker RUN_FOLDER", file=sys.stderr)
        return 2
    return Job(Path(argv[0])).run()


if __name__ == "__main__":
    sys.exit(main())
