"""Turn per-story tagging sheets (``<story>.tsv`` with ``index<TAB>label``) into the committed label file.

    python training/import_story_labels.py --sheets DIR --annotator NAME [--labels training/data/story_labels.csv]

The sentence indices refer to ``emotag.stories.story_sentences`` of ``../shared/data/stories/<story>.txt``.
The label file holds no story text: story file, sentence index, a hash of the normalised sentence, label, annotator.
Rows of the same annotator and story are replaced; other rows are kept.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotag.labels import normalize_label  # noqa: E402
from emotag.stories import DEFAULT_STORIES, LABEL_FIELDS, read_label_file, read_story, story_sentences  # noqa: E402

DEFAULT_LABELS = Path(__file__).resolve().parent / "data" / "story_labels.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sheets", required=True)
    ap.add_argument("--annotator", required=True)
    ap.add_argument("--stories", default=str(DEFAULT_STORIES))
    ap.add_argument("--labels", default=str(DEFAULT_LABELS))
    args = ap.parse_args(argv)

    new_rows, stories = [], set()
    for sheet in sorted(Path(args.sheets).glob("*.tsv")):
        story = read_story(Path(args.stories) / f"{sheet.stem}.txt")
        sentences = story_sentences(story)
        with open(sheet, encoding="utf-8", newline="") as f:
            labels = {int(r["index"]): normalize_label(r["label"]) for r in csv.DictReader(f, delimiter="\t")}
        if sorted(labels) != list(range(len(sentences))):
            raise SystemExit(f"{sheet}: labels for {len(labels)} indices, story has {len(sentences)} sentences")
        stories.add(story.file)
        new_rows += [{"story": s["story"], "index": s["index"], "hash": s["hash"], "label": labels[s["index"]],
                      "annotator": args.annotator} for s in sentences]

    path = Path(args.labels)
    old = read_label_file(path) if path.exists() else []
    kept = [r for r in old if not (r["annotator"] == args.annotator and r["story"] in stories)]
    rows = sorted(kept + new_rows, key=lambda r: (r["annotator"], r["story"], int(r["index"])))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LABEL_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(new_rows)} labels from {len(stories)} stories by {args.annotator} -> {path} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
