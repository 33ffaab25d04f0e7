"""Story-model experiments behind docs/benchmarks.md: a second fine-tuning stage on story sentences, with or
without neighbour-sentence context, the project's own stories, or AI Hub rehearsal.

    python training/story_experiments.py --base /tmp/e5 [--context both] [--own] [--aihub 5000] [--epochs 3]

``--base``: an emotag e5/KoBERT model folder (the stage-1 model of train_transformer.py). Training stories are the
hand-tagged shared stories outside the story validation set; every sixth of them (by name) is held out as the
dev set that picks the epoch, so neither the dev set nor the held-out stories are trained on. Per epoch it
prints the dev figures and, for information only, the held-out stories (``story_validation``, 282 sentences with
repeats) and AI Hub validation. ``--context both`` feeds ``sentence </s> previous </s> next`` (stories only; AI
Hub lines have no neighbours). It uses the same training path (``emotag.training.train``) as everything else;
the kept story model is trained with ``train_transformer.py --valid-on stories`` (see the benchmarks).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emotag.labels import LABEL2ID  # noqa: E402
from emotag.merged import DEFAULT_OWN_STORIES, SOURCE_AIHUB, Sources, build_merged  # noqa: E402
from emotag.stories import final_story_labels, join_labels, read_label_file  # noqa: E402
from emotag.store.imports import parse_file  # noqa: E402
from emotag.training import TrainConfig, train  # noqa: E402


def with_context(story: list[dict], context: str) -> list[dict]:
    """The rows of one story in order, each text followed by its neighbours when ``context`` is "both"."""
    out = []
    for i, row in enumerate(story):
        text = row["text"]
        if context == "both":
            prev = story[i - 1]["text"] if i > 0 else ""
            nxt = story[i + 1]["text"] if i + 1 < len(story) else ""
            text = f"{text} </s> {prev} </s> {nxt}"
        out.append({**row, "text": text, "label_id": LABEL2ID[row["label"]]})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the stage-1 model folder")
    ap.add_argument("--context", choices=("none", "both"), default="none")
    ap.add_argument("--own", action="store_true", help="also train on training/data/own_stories.csv")
    ap.add_argument("--aihub", type=int, default=0, help="also train on N AI Hub rows (seeded rehearsal)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--class-weights", action="store_true")
    args = ap.parse_args(argv)

    labelled = final_story_labels(join_labels(read_label_file(ROOT / "training" / "data" / "story_labels.csv")))
    stories: dict[str, list[dict]] = {}
    for row in labelled:
        stories.setdefault(row["story"], []).append(row)
    rows = [r for name in sorted(stories) for r in with_context(sorted(stories[name], key=lambda r: r["index"]),
                                                                 args.context)]
    frame = pd.DataFrame(rows)
    names = sorted(frame.loc[frame["split"] == "train", "story"].unique())
    dev_names = set(names[::6])
    train_rows = frame[(frame["split"] == "train") & ~frame["story"].isin(dev_names)]
    dev = frame[frame["story"].isin(dev_names)]
    held_out = frame[frame["split"] == "valid"]
    parts = [train_rows]
    if args.own:
        own = [{"text": s.text, "label": label, "story": story.title}
               for story in parse_file(DEFAULT_OWN_STORIES) for s in story.sentences for label in s.labels.values()]
        by_story: dict[str, list[dict]] = {}
        for row in own:
            by_story.setdefault(row["story"], []).append(row)
        parts.append(pd.DataFrame([r for seq in by_story.values() for r in with_context(seq, args.context)]))
    merged = build_merged(Sources.from_env(db_url=None))
    if args.aihub:
        train_part = merged.part("train")
        parts.append(train_part[train_part["source"] == SOURCE_AIHUB].sample(n=args.aihub, random_state=13))
    data = pd.concat(parts, ignore_index=True)[["text", "label", "label_id"]]
    print(f"dev stories: {', '.join(sorted(dev_names))}; training rows {len(data):,}", flush=True)
    config = TrainConfig(base_model=args.base, epochs=args.epochs, patience=args.epochs, lr=args.lr,
                         class_weights=args.class_weights, name="story-experiment")
    result = train(data, valid=dev[["text", "label", "label_id"]], config=config,
                   extra_valid={"story_validation": held_out[["text", "label", "label_id"]],
                                "aihub_validation": merged.held_out()["aihub_validation"]},
                   log=lambda msg: print(msg, flush=True))
    print(json.dumps({"best_epoch": result.best_epoch, "history": result.history}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
