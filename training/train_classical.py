"""Train the bundled classical model (TF-IDF char n-grams + logistic regression) on the AI Hub scripts
and, when ../shared/data/stories is present, the hand-tagged story sentences (training/data/story_labels.csv).

    python training/train_classical.py --aihub ../shared/data/aihub --out emotag/bundled/classical

AI Hub gold labels: majority (>=3 of 5) vote, 4 classes; validation = 10 % of *unique sentences* (split by text).
Stories: the whole stories in emotag.stories.STORY_VALIDATION are the story validation set, never trained on.
Writes the model folder and its MODEL_CARD.md; deterministic for the same data and seed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotag.aihub import read_aihub  # noqa: E402
from emotag.dataset import split_by_text  # noqa: E402
from emotag.labels import LABELS  # noqa: E402
from emotag.metrics import evaluate  # noqa: E402
from emotag.models.classical import DEFAULTS, ClassicalModel  # noqa: E402
from emotag.stories import DEFAULT_STORIES, final_story_labels, join_labels, read_label_file  # noqa: E402

STORY_LABELS = Path(__file__).resolve().parent / "data" / "story_labels.csv"


def fingerprint(df) -> str:
    h = hashlib.sha256()
    for text, label in zip(df["text"], df["label"]):
        h.update(f"{text}\t{label}\n".encode("utf-8"))
    return h.hexdigest()[:16]


def story_section(meta: dict) -> str:
    story = meta["metrics"].get("story_validation")
    if not story:
        return "No story sentences were used (../shared/data/stories was absent).\n"
    counts = meta["data"]["stories"]
    per_class = ", ".join(f"{k} {v:.3f}" for k, v in story["per_class_f1"].items())
    return (f"Hand-tagged story sentences ({STORY_LABELS.name}): {counts['train']:,} training sentences from "
            f"{counts['train_stories']} stories (sample weight {meta['hyperparameters']['story_weight']}), "
            f"{counts['valid']:,} validation sentences from {counts['valid_stories']} whole held-out stories.\n\n"
            f"**Story validation: accuracy {story['accuracy']:.3f}, macro-F1 {story['macro_f1']:.3f}** "
            f"(per class: {per_class}).\n")


def model_card(meta: dict, command: str) -> str:
    v, counts = meta["metrics"]["validation"], meta["data"]
    rows = "\n".join(f"| {name} | {counts['train_counts'][name]} | {counts['valid_counts'][name]} | {v['per_class_f1'][name]:.3f} |"
                     for name in LABELS)
    cm = "\n".join("| " + name + " | " + " | ".join(str(x) for x in row) + " |" for name, row in zip(LABELS, v["confusion"]))
    return f"""# {meta['name']}

TF-IDF character n-grams ({meta['hyperparameters']['ngram_min']}-{meta['hyperparameters']['ngram_max']}, word-bounded,
{meta['hyperparameters']['max_features']:,} features) + logistic regression (C={meta['hyperparameters']['C']},
class_weight={meta['hyperparameters']['class_weight']}). Trained {meta['date']}.

## Data
AI Hub 「감정 분류를 위한 대화 음성 데이터셋」 scripts ({', '.join(counts['files'])}), read as published (cp949).
Gold = majority (>=3 of 5 annotators); neutral/happiness/sadness/angry kept, other emotions and no-majority rows dropped:
{counts['rows']:,} rows, {counts['unique_texts']:,} unique sentences. Validation = {counts['valid_fraction']:.0%} of the
unique sentences (split by text, seed {meta['hyperparameters']['seed']}). Data fingerprint `{meta['data_fingerprint']}`.

| label | train rows | validation rows | validation F1 |
|---|---|---|---|
{rows}

**Validation: accuracy {v['accuracy']:.3f}, macro-F1 {v['macro_f1']:.3f}** (n={v['n']:,}).

Confusion matrix (rows gold, columns predicted, order {', '.join(LABELS)}):

| gold \\ predicted | {' | '.join(LABELS)} |
|---|---|---|---|---|
{cm}

## Stories
{story_section(meta)}
## Limits
A bag of character n-grams sees one sentence at a time: it cannot use context, and story narration is a
different domain from the scripted dialogue that makes up most of its data. An instant offline baseline.

## Reproduce
```
{command}
```
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aihub", default="../shared/data/aihub", help="folder with the AI Hub *.csv files")
    ap.add_argument("--out", default="emotag/bundled/classical", help="model folder to write")
    ap.add_argument("--valid-fraction", type=float, default=0.1)
    ap.add_argument("--stories", default=str(DEFAULT_STORIES), help="the shared story collection (skipped if absent)")
    ap.add_argument("--story-labels", default=str(STORY_LABELS))
    ap.add_argument("--story-weight", type=float, default=5.0, help="sample weight of story sentences")
    ap.add_argument("--own-stories", help="also train on this labelled story CSV (e.g. training/data/own_stories.csv"
                    ", the project's own stories), at the story weight; default: none (it lowered story F1)")
    for key, value in DEFAULTS.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value) if value is not None else str, default=value)
    args = ap.parse_args(argv)

    df = read_aihub(args.aihub)
    train, valid = split_by_text(df, args.valid_fraction, seed=args.seed)
    hp = {k: getattr(args, k) for k in DEFAULTS}
    if hp["class_weight"] in ("none", "None", ""):
        hp["class_weight"] = None
    stories = final_story_labels(join_labels(read_label_file(args.story_labels), args.stories)) \
        if Path(args.story_labels).is_file() else []
    story_train = [s for s in stories if s["split"] == "train"]
    story_valid = [s for s in stories if s["split"] == "valid"]
    own = []
    if args.own_stories:
        from emotag.store.imports import parse_file

        own = [{"text": sent.text, "label": label, "story": story.title}
               for story in parse_file(args.own_stories) for sent in story.sentences for label in sent.labels.values()]
        story_train = story_train + own
    texts = list(train["text"]) + [s["text"] for s in story_train]
    label_ids = list(train["label_id"]) + [LABELS.index(s["label"]) for s in story_train]
    weights = [1.0] * len(train) + [args.story_weight] * len(story_train)
    hp["story_weight"] = args.story_weight
    print(f"training on {len(train):,} AI Hub rows + {len(story_train):,} story sentences; validating on "
          f"{len(valid):,} AI Hub rows + {len(story_valid):,} story sentences", flush=True)
    model = ClassicalModel.train(texts, label_ids, sample_weight=weights, **hp)
    predicted = model.predict_proba(list(valid["text"])).argmax(axis=1)
    metrics = {"validation": evaluate(valid["label_id"].tolist(), predicted.tolist())}
    if story_valid:
        predicted = model.predict_proba([s["text"] for s in story_valid]).argmax(axis=1)
        metrics["story_validation"] = evaluate([LABELS.index(s["label"]) for s in story_valid], predicted.tolist())
    model.metadata.update(
        name="classical-aihub-stories" if story_train else "classical-aihub",
        date=dt.date.today().isoformat(),
        data_fingerprint=fingerprint(df),
        data={
            "files": sorted(df["source"].unique().tolist()),
            "rows": len(df),
            "unique_texts": int(df["text"].nunique()),
            "valid_fraction": args.valid_fraction,
            "train_counts": {k: int(train["label"].eq(k).sum()) for k in LABELS},
            "valid_counts": {k: int(valid["label"].eq(k).sum()) for k in LABELS},
            "stories": {"train": len(story_train), "valid": len(story_valid), "own": len(own),
                        "train_stories": len({s["story"] for s in story_train}),
                        "valid_stories": len({s["story"] for s in story_valid})},
        },
        metrics=metrics,
    )
    out = model.save(args.out)
    command = "python training/train_classical.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "MODEL_CARD.md").write_text(model_card(model.metadata, command.strip()), encoding="utf-8")
    print(json.dumps({k: {m: v[m] for m in ("accuracy", "macro_f1", "per_class_f1")} for k, v in metrics.items()},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
