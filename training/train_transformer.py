"""Fine-tune KoBERT (the "kobert" backbone) on the AI Hub scripts or any labelled CSV.

    python training/train_transformer.py --data ../shared/data/aihub --out models/kobert-aihub
    torchrun --standalone --nproc_per_node 2 training/train_transformer.py --data ../shared/data/aihub --out models/kobert-aihub

``--data``: a folder of AI Hub *.csv files (read as published, majority-vote gold), or one UTF-8 CSV with
``text`` and ``label`` columns (names, Korean names or ids). Validation: ``--valid-fraction`` of the unique
sentences (split by text), or ``--valid`` (same kinds). Defaults: see ``emotag.training.TrainConfig``. Under
torchrun each process trains on its share (``--batch-size`` is per process) and only rank 0 prints and saves.
``--onnx`` also writes ``<out>-onnx`` (ONNX float32 + int8, backbone "kobert-onnx").
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from emotag.aihub import read_aihub  # noqa: E402
from emotag.labels import LABEL2ID, normalize_label  # noqa: E402


def read_data(path: str | Path) -> pd.DataFrame:
    """AI Hub folder → ``read_aihub``; a CSV file → its ``text`` and ``label`` columns."""
    path = Path(path)
    if path.is_dir():
        return read_aihub(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("text", "label") if c not in df.columns]
    if missing:
        raise SystemExit(f"{path} lacks column(s) {', '.join(missing)} (expected text,label)")
    df = df[df["text"].str.strip() != ""].reset_index(drop=True)
    df["label"] = df["label"].map(normalize_label)
    df["label_id"] = df["label"].map(LABEL2ID).astype(int)
    return df


def parse_args(argv: list[str] | None):
    from emotag.training import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="AI Hub folder or a text,label CSV")
    ap.add_argument("--valid", help="validation data (default: split --data by unique text)")
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--onnx", action="store_true", help="also export <out>-onnx (float32 + int8)")
    ap.add_argument("--log-every", type=int, default=50, help="print progress every N steps")
    ap.add_argument("--threads", type=int, help="torch CPU threads per process")
    for f in dataclasses.fields(TrainConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if f.type in (bool, "bool"):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "int | None": int}.get(str(f.type), str)
            ap.add_argument(flag, type=kind, default=f.default)
    args = ap.parse_args(argv)
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    import torch

    from emotag.training import print_progress, train

    if args.threads:
        torch.set_num_threads(args.threads)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    data = read_data(args.data)
    valid = read_data(args.valid) if args.valid else None
    result = train(data, valid, config, out=args.out, progress=print_progress(args.log_every),
                   log=lambda msg: print(msg, flush=True))
    if main_rank:
        print(json.dumps({"best_epoch": result.best_epoch, "seconds": result.seconds, **result.metrics},
                         ensure_ascii=False), flush=True)
        if args.onnx:
            from emotag.models.onnx_export import export_onnx

            out = export_onnx(result.model, Path(f"{args.out.rstrip('/')}-onnx"))
            print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun the work is done and saved; skip interpreter teardown, where gloo's background threads
        # can abort a process ("terminate called without an active exception") and fail the whole launch.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
