"""Train the bundled classical model (TF-IDF char n-grams + logistic regression) on the AI Hub scripts.

    python training/train_classical.py --aihub ../shared/data/aihub --out emotag/bundled/classical

Gold labels: majority (>=3 of 5) vote, 4 classes. Validation: 10 % of *unique sentences* (split by text).
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


def fingerprint(df) -> str:
    h = hashlib.sha256()
    for text, label in zip(df["text"], df["label"]):
        h.update(f"{text}\t{label}\n".encode("utf-8"))
    return h.hexdigest()[:16]


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

## Limits
Trained on scripted dialogue only: story narration (mostly neutral) is a different domain, and this model
over-predicts sad/angry there. Use it as an instant offline baseline.

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
    for key, value in DEFAULTS.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value) if value is not None else str, default=value)
    args = ap.parse_args(argv)

    df = read_aihub(args.aihub)
    train, valid = split_by_text(df, args.valid_fraction, seed=args.seed)
    hp = {k: getattr(args, k) for k in DEFAULTS}
    if hp["class_weight"] in ("none", "None", ""):
        hp["class_weight"] = None
    print(f"training on {len(train):,} rows, validating on {len(valid):,} rows", flush=True)
    model = ClassicalModel.train(train["text"], train["label_id"], **hp)
    predicted = model.predict_proba(list(valid["text"])).argmax(axis=1)
    metrics = evaluate(valid["label_id"].tolist(), predicted.tolist())
    model.metadata.update(
        name="classical-aihub",
        date=dt.date.today().isoformat(),
        data_fingerprint=fingerprint(df),
        data={
            "files": sorted(df["source"].unique().tolist()),
            "rows": len(df),
            "unique_texts": int(df["text"].nunique()),
            "valid_fraction": args.valid_fraction,
            "train_counts": {k: int(train["label"].eq(k).sum()) for k in LABELS},
            "valid_counts": {k: int(valid["label"].eq(k).sum()) for k in LABELS},
        },
        metrics={"validation": metrics},
    )
    out = model.save(args.out)
    command = "python training/train_classical.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "MODEL_CARD.md").write_text(model_card(model.metadata, command.strip()), encoding="utf-8")
    print(json.dumps(metrics, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
