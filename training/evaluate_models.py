"""Score model folders on the merged data's held-out sets, as the app serves them, and tune an ensemble.

    python training/evaluate_models.py /tmp/e5 emotag/bundled/classical [--ensemble OUT --names e5 classical]

For each model: macro-F1 / accuracy on the merged ``valid`` split (AI Hub + story sentences of training
stories, hash-split by text), its AI Hub part, and the held-out whole stories (``story_valid``). With two
models the weight of the first is chosen without looking at the held-out stories: with ``--min-aihub X``, the
largest weight (steps of 0.1) that keeps AI Hub validation macro-F1 >= X (the first model being the one
that is better on stories); otherwise the best macro-F1 on ``valid``. ``--ensemble OUT`` writes the
weighted average to OUT as an "ensemble" model folder with both models inside, and its MODEL_CARD.md.

``--routed OUT`` (two models: a story model, then a dialogue model) instead trains the domain router
(``emotag.models.routed``: story sentences vs AI Hub lines of the merged training split, never the held-out
stories), scores the routed model, and writes it to OUT with its MODEL_CARD.md:

    python training/evaluate_models.py /tmp/e5-story emotag/bundled/default --routed OUT --name NAME
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotag.labels import LABELS  # noqa: E402
from emotag.merged import Sources, build_merged  # noqa: E402
from emotag.metrics import bootstrap_interval, evaluate  # noqa: E402
from emotag.models.serving import load_for_serving  # noqa: E402


def merged_data():
    return build_merged(Sources.from_env(db_url=None))


def held_out_sets(merged=None):
    sets = (merged or merged_data()).held_out()
    del sets["story_sentences_validation"]  # the classical model trains on those: not held out for it
    return sets


def train_router(merged):
    """The domain router, trained on the merged training split: story sentences (1) vs AI Hub lines (0)."""
    from emotag.merged import SOURCE_AIHUB, STORY_SOURCES
    from emotag.models.routed import DomainRouter

    train = merged.part("train")
    train = train[train["source"].isin([SOURCE_AIHUB, *STORY_SOURCES])]
    return DomainRouter.train(train["text"].tolist(), train["source"].isin(STORY_SOURCES).tolist())


def score(probs: dict, sets: dict) -> dict:
    """Figures per held-out set; the story set (a few hundred sentences) also gets its 95 % bootstrap interval."""
    out = {}
    for name, frame in sets.items():
        gold, predicted = frame["label_id"].tolist(), probs[name].argmax(axis=1).tolist()
        out[name] = evaluate(gold, predicted)
        if name == "story_validation":
            out[name]["macro_f1_ci95"] = list(bootstrap_interval(gold, predicted))
    return out


def row(name: str, metrics: dict) -> str:
    def interval(m: dict) -> str:
        return f" [95 % {m['macro_f1_ci95'][0]:.3f}-{m['macro_f1_ci95'][1]:.3f}]" if "macro_f1_ci95" in m else ""

    return f"{name}: " + ", ".join(f"{k} macro-F1 {m['macro_f1']:.4f}{interval(m)} (acc {m['accuracy']:.4f})"
                                   for k, m in metrics.items())


def largest_weight(first, second, gold, minimum: float, fallback: float) -> float:
    """The largest weight of ``first`` (0, 0.1, ..., 1) whose mix keeps macro-F1 on ``gold`` >= ``minimum``
    (macro-F1 rounded to 4 places, as ``emotag.metrics.evaluate`` reports it)."""
    from emotag.models.ensemble import weight_curve

    passing = [w for w, f1 in weight_curve(first, second, gold, steps=11) if round(f1, 4) >= minimum]
    return max(passing) if passing else fallback


CARD_SETS = ("aihub_validation", "story_validation", "validation")  # the columns of a model card's figures


def figures_section(model, key: str, report: dict, member_rows: list[str], validation_note: str) -> str:
    """The figures table, the held-out sets, the story confusion matrix and the command: the part of a model
    card that ensemble and routed models share. ``key``: the model's entry in ``report``."""
    head = "| model | " + " | ".join(f"{s.replace('_', ' ')} macro-F1" for s in CARD_SETS) + " |"
    rows = [f"| **{model.name}** (this model) | " + " | ".join(f"**{report[key][s]['macro_f1']:.3f}**"
                                                              for s in CARD_SETS) + " |"] + member_rows
    story = report[key]["story_validation"]
    return f"""## Figures (as served: transformer members run on their int8 ONNX export)

{head}
|---|---|---|---|
{chr(10).join(rows)}

* AI Hub validation: 10 % of the unique AI Hub sentences (hash split by text, seed 13), n=
  {report[key]['aihub_validation']['n']:,}.
* Story validation: the whole held-out stories of `emotag.stories.STORY_VALIDATION` (hand-tagged,
  `training/data/story_labels.csv`), never trained on, n={story['n']:,}; 95 % bootstrap interval of its
  macro-F1 {story['macro_f1_ci95'][0]:.3f}-{story['macro_f1_ci95'][1]:.3f}; per class:
  {', '.join(f'{k} {v:.3f}' for k, v in story['per_class_f1'].items())}.
* validation: {validation_note}

Confusion matrix on the story validation set (rows gold, columns predicted, order {', '.join(LABELS)}):
{chr(10).join('    ' + ' '.join(f'{x:4d}' for x in r) for r in story['confusion'])}

## Reproduce

```
{model.metadata.get('command', '')}
```
(after training the members: see their model cards.)
"""


def ensemble_card(model, names: list[str], report: dict, folders: list[str]) -> str:
    member_rows = [f"| member `{name}` alone ({model.members[name].backbone} as served, weight "
                   f"{model.weights[name]:.2f}) | "
                   + " | ".join(f"{report[folder][s]['macro_f1']:.3f}" for s in CARD_SETS) + " |"
                   for name, folder in zip(names, folders)]
    members = "\n".join(f"* `members/{n}`: {model.members[n].metadata.get('name', n)} "
                        f"(see `members/{n}/MODEL_CARD.md`)" for n in names)
    return f"""# {model.name}

The weighted average of two models' probabilities (emotag backbone "ensemble"):

{members}

Weights: {', '.join(f'{n} {model.weights[n]:.2f}' for n in names)}, chosen as the largest weight of the first
model that keeps AI Hub validation macro-F1 >= 0.80, without looking at the held-out stories.

""" + figures_section(model, "ensemble", report, member_rows,
                      "the merged data's valid split (AI Hub + story sentences of training stories); the classical\n"
                      "  member was trained on those story sentences, so its figure there is not a held-out one.")


def routed_card(model, report: dict, folders: list[str]) -> str:
    member_rows = [f"| member `{name}` alone ({model.members[name].name}, as served) | "
                   + " | ".join(f"{report[folder][s]['macro_f1']:.3f}" for s in CARD_SETS) + " |"
                   for name, folder in zip(("story", "dialogue"), folders)]
    shares = report["routed_to_story"]
    return f"""# {model.name}

Two models mixed per sentence by a domain router (emotag backbone "routed", `emotag/models/routed.py`):

* `members/story`: {model.members['story'].name}, fine-tuned for story narration (see `members/story/MODEL_CARD.md`);
* `members/dialogue`: {model.members['dialogue'].name}, the dialogue-corpus model (see `members/dialogue/MODEL_CARD.md`);
* `router.npz`: TF-IDF character 1-3-grams + logistic regression giving each sentence its probability r of
  being story text; the answer is r x story + (1 - r) x dialogue. Trained on the merged training split (the
  hand-tagged story sentences and the project's own stories vs the AI Hub lines), never on a held-out set.
  Share of sentences it sends to the story model (r > 0.5): held-out stories {shares['story_validation']:.1%},
  AI Hub validation {shares['aihub_validation']:.1%}.

""" + figures_section(model, "routed", report, member_rows,
                      "the merged data's valid split (AI Hub + story sentences of training stories + own stories).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model folders")
    ap.add_argument("--ensemble", help="write the tuned two-model ensemble here")
    ap.add_argument("--name", default="ensemble", help="the ensemble's name")
    ap.add_argument("--names", nargs=2, help="member folder names inside the ensemble")
    ap.add_argument("--min-aihub", type=float, help="choose the first model's weight as described above")
    ap.add_argument("--routed", help="write the routed model (first: story model, second: dialogue model) here")
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args(argv)
    if args.routed and (len(args.models) != 2 or args.ensemble):
        ap.error("--routed takes two models (the story model, then the dialogue model) and no --ensemble")
    merged = merged_data()
    sets = held_out_sets(merged)
    models, probs, report = {}, {}, {}
    for folder in args.models:
        model = load_for_serving(folder)
        models[folder] = model
        probs[folder] = {k: model.predict_proba(f["text"].tolist()) for k, f in sets.items()}
        report[folder] = score(probs[folder], sets)
        print(row(f"{folder} ({model.backbone})", report[folder]), flush=True)
    if args.routed:
        from emotag.models.routed import RoutedModel
        from emotag.training import save_atomically

        router = train_router(merged)
        story, dialogue = (models[f] for f in args.models)
        routed = RoutedModel(story, dialogue, router, {"name": args.name, "command": "python training/"
                             "evaluate_models.py " + " ".join(argv or sys.argv[1:]),
                             "members_from": {"story": args.models[0], "dialogue": args.models[1]}})
        shares = {k: router.story_probability(f["text"].tolist()) for k, f in sets.items()}
        report["routed"] = score({k: routed.predict_proba(f["text"].tolist()) for k, f in sets.items()}, sets)
        report["routed_to_story"] = {k: round(float((v > 0.5).mean()), 4) for k, v in shares.items()}
        print(row("routed", report["routed"]))
        print("share routed to the story model:", report["routed_to_story"])
        routed.metadata["metrics"] = report["routed"]
        routed.metadata["routed_to_story"] = report["routed_to_story"]
        out = save_atomically(routed, args.routed)
        (out / "MODEL_CARD.md").write_text(routed_card(routed, report, args.models), encoding="utf-8")
        print(f"saved {out}")
    elif len(args.models) == 2:
        from emotag.models.ensemble import EnsembleModel, tune_weight

        first, second = args.models
        gold = sets["validation"]["label_id"].tolist()
        w, _ = tune_weight(probs[first]["validation"], probs[second]["validation"], gold)
        if args.min_aihub is not None:
            w = largest_weight(probs[first]["aihub_validation"], probs[second]["aihub_validation"],
                               sets["aihub_validation"]["label_id"].tolist(), args.min_aihub, fallback=w)
        mixed = {k: w * probs[first][k] + (1 - w) * probs[second][k] for k in sets}
        report["ensemble"] = {"weight_first": w, **score(mixed, sets)}
        print(row(f"ensemble ({w:.2f} x {first} + {1 - w:.2f} x {second})",
                  {k: v for k, v in report["ensemble"].items() if k != "weight_first"}))
        if args.ensemble:
            from emotag.training import save_atomically

            names = args.names or [Path(p).name.replace(" ", "-") or "model" for p in args.models]
            if names[0] == names[1]:
                names = [names[0] + "-1", names[1] + "-2"]
            metrics = {k: v for k, v in report["ensemble"].items() if k != "weight_first"}
            meta = {"name": args.name, "metrics": metrics,
                    "command": "python training/evaluate_models.py " + " ".join(argv or sys.argv[1:]),
                    "members_from": {n: str(p) for n, p in zip(names, args.models)}}
            model = EnsembleModel.build({names[0]: (models[first], w), names[1]: (models[second], 1 - w)}, meta)
            out = save_atomically(model, args.ensemble)
            (out / "MODEL_CARD.md").write_text(ensemble_card(model, names, report, args.models), encoding="utf-8")
            print(f"saved {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print("labels:", ", ".join(LABELS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
