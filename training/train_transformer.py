"""Fine-tune KoBERT (the "kobert" backbone) on the AI Hub scripts or any labelled CSV.

    python training/train_transformer.py --data ../shared/data/aihub --out models/kobert-aihub
    torchrun --standalone --nproc_per_node 2 training/train_transformer.py --data ../shared/data/aihub --out models/kobert-aihub

``--data``: a folder of AI Hub *.csv files (read as published, majority-vote gold), or one UTF-8 CSV with
``text`` and ``label`` columns (names, Korean names or ids). Validation: ``--valid-fraction`` of the unique
sentences (split by text), or ``--valid`` (same kinds). Defaults: see ``emotag.training.TrainConfig``. Under
torchrun each process trains on its share (``--batch-size`` is per process) and only rank 0 prints and saves.
``--onnx`` also writes ``<out>-onnx`` (ONNX float32 + int8, backbone "kobert-onnx").

``--data merged``: the retrain tab's merged data (``emotag.merged``: AI Hub + the hand-tagged story sentences
joined with ../shared/data/stories; ``--db`` adds the annotation store): its train split is trained on (story
sentences ``--story-repeat`` times), its valid split chooses the epoch, and the AI Hub part of valid and the
whole held-out stories (``emotag.stories.STORY_VALIDATION``) are reported after every epoch. The e5-small
default (``emotag/bundled/e5``)::

    python training/train_transformer.py --data merged --base-model e5-small --epochs 3 --lr 5e-5 \
        --story-repeat 2 --half --shared-tokenizer --name e5-small-aihub-stories --out emotag/bundled/e5
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


def read_merged(db: str | None, story_repeat: int, aihub_sample: int | None = None, seed: int = 13,
                valid_fraction: float = 0.1, valid_on: str = "all"):
    """(train, valid, extra held-out sets) from the merged data builder; ``aihub_sample``: keep that many
    AI Hub training rows (seeded), e.g. to adapt an AI Hub model to stories while rehearsing the dialogue (0:
    none, a story model). ``valid_on="stories"``: choose the best epoch on the story sentences of the valid
    split only (the held-out whole stories stay untouched either way), and also report its hand-tagged
    published-story part."""
    from emotag.merged import SOURCE_AIHUB, SOURCE_STORIES, Sources, build_merged

    from emotag.store import resolve_url

    merged = build_merged(Sources.from_env(db_url=resolve_url(db) if db else None, valid_fraction=valid_fraction))
    for note in merged.notes:
        print(note, flush=True)
    train = merged.part("train")
    if aihub_sample is not None:
        aihub = train[train["source"] == SOURCE_AIHUB]
        keep = aihub.sample(n=min(aihub_sample, len(aihub)), random_state=seed).index
        train = train[(train["source"] != SOURCE_AIHUB) | train.index.isin(keep)]
    tagged = train[train["source"] == SOURCE_STORIES]  # the hand-tagged published stories (own stories count once)
    train = pd.concat([train] + [tagged] * max(0, story_repeat - 1), ignore_index=True)
    extra = merged.held_out()
    valid = extra.pop("validation")
    if valid_on == "stories":
        extra["merged_validation"] = valid
        valid = extra.pop("story_sentences_validation")
        published = valid[valid["source"] == SOURCE_STORIES]
        if len(published):  # the published stories' sentences alone: the own stories are easier
            extra["tagged_story_sentences_validation"] = published
    return train, valid, extra, merged


def parse_args(argv: list[str] | None):
    from emotag.training import TrainConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="AI Hub folder, a text,label CSV, or 'merged'")
    ap.add_argument("--db", help="with --data merged: also the annotation store (SQLAlchemy URL or SQLite file)")
    ap.add_argument("--story-repeat", type=int, default=1,
                    help="with --data merged: the hand-tagged shared-story sentences count N times (own stories once)")
    ap.add_argument("--aihub-sample", type=int, help="with --data merged: train on only N AI Hub rows (seeded)")
    ap.add_argument("--valid-on", choices=("all", "stories"), default="all",
                    help="with --data merged: the validation rows that choose the best epoch (stories: only the "
                    "story sentences of the valid split, for a story model)")
    ap.add_argument("--half", action="store_true", help="save the encoder in float16 (e5-small)")
    ap.add_argument("--shared-tokenizer", action="store_true",
                    help="e5-small: do not write the 17 MB tokenizer; read it from the e5 source at load")
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
    extra, merged = None, None
    if args.data == "merged":
        data, valid, extra, merged = read_merged(args.db, args.story_repeat, args.aihub_sample, config.seed,
                                                 config.valid_fraction, args.valid_on)
    else:
        data = read_data(args.data)
        valid = read_data(args.valid) if args.valid else None
    result = train(data, valid, config, progress=print_progress(args.log_every),
                   log=lambda msg: print(msg, flush=True), extra_valid=extra)
    result.model.metadata["command"] = "python training/train_transformer.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    if merged is not None:
        result.model.metadata["data_fingerprint"] = merged.fingerprint
        result.model.metadata.setdefault("data", {})["sources"] = dict(merged.read)
    if main_rank:
        from emotag.training import save_atomically

        if args.half:
            result.model.metadata["weights_dtype"] = "float16"
        if args.shared_tokenizer:
            result.model.metadata["shared_tokenizer"] = True
        print(f"saved {save_atomically(result.model, args.out)}", flush=True)
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
