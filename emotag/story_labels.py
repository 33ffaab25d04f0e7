"""The story label file ↔ the annotation store: tag the shared stories with the app, keep the labels text-free.

``load_stories`` puts the shared stories (``../shared/data/stories``) into the annotation store, in order, one
store story per file (source ``stories/<file>``), with the label file's labels as each annotator's annotations.
Annotators then tag or correct them in the Annotate tab (story order, one sentence at a time, in context).
``label_rows`` reads every annotator's current label on those stories back out in the label file's shape
(story file, sentence index, hash of the sentence, label, annotator: no story text), and ``write_label_file``
writes it for the repository. Round trip: load → annotate in the app → export → commit.

    python -m emotag stories load                    # every shared story, with training/data/story_labels.csv
    python -m emotag stories export -o training/data/story_labels.csv
"""
from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .dataset import text_hash
from .labels import normalize_label
from .stories import DEFAULT_STORIES, LABEL_FIELDS, read_story, story_sentences
from .textio import InputError

SOURCE_PREFIX = "stories/"
DEFAULT_LABEL_FILE = Path(__file__).resolve().parent.parent / "training" / "data" / "story_labels.csv"


@dataclass
class LoadResult:
    added: list[str] = field(default_factory=list)  # story files added to the store
    skipped: list[str] = field(default_factory=list)  # already in the store (loading again adds nothing)
    labels: int = 0  # annotations imported
    stale: int = 0  # label rows whose sentence no longer matches the story text (left out)
    story_ids: list[int] = field(default_factory=list)


def story_file(source: str | None) -> str | None:
    """The shared story file a store story came from (``stories/<file>``), else None."""
    if source and source.startswith(SOURCE_PREFIX):
        return source[len(SOURCE_PREFIX):]
    return None


def load_stories(store, stories_dir: str | Path = DEFAULT_STORIES, label_rows: Iterable[dict] = (),
                 names: Sequence[str] | None = None) -> LoadResult:
    """Add the shared stories (all, or the files in ``names``) to ``store`` with ``label_rows`` (the label file's
    rows) as annotations, in one transaction. Stories the store already holds are skipped."""
    from .store import SentenceInput, StoryInput

    stories_dir = Path(stories_dir)
    if not stories_dir.is_dir():
        raise InputError(f"no story collection at {stories_dir}")
    paths = sorted(stories_dir.glob("*.txt"))
    if names:
        wanted = {Path(n).name if n.endswith(".txt") else f"{Path(n).name}.txt" for n in names}
        unknown = sorted(wanted - {p.name for p in paths})
        if unknown:
            raise InputError(f"not in {stories_dir}: {', '.join(unknown)}")
        paths = [p for p in paths if p.name in wanted]
    labels: dict[str, dict[tuple[int, str], dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for number, row in enumerate(label_rows, 2):  # line numbers of a CSV with a header
        missing = [f for f in LABEL_FIELDS if not row.get(f)]
        if missing:
            raise InputError(f"not a story label file (line {number} has no {', '.join(missing)}; expected the "
                             f"columns {','.join(LABEL_FIELDS)})")
        try:
            index, label = int(row["index"]), normalize_label(row["label"])
        except ValueError as exc:
            raise InputError(f"label file line {number}: {exc}") from None
        labels[row["story"]][(index, row["hash"])][row["annotator"]] = label
    held = {story_file(s.source) for s in store.stories()}
    result, items = LoadResult(), []
    for path in paths:
        if path.name in held:
            result.skipped.append(path.name)
            continue
        story = read_story(path)
        sentences = story_sentences(story)
        mine = labels.get(path.name, {})
        keys = {(s["index"], s["hash"]) for s in sentences}
        result.stale += sum(len(v) for k, v in mine.items() if k not in keys)
        inputs = [SentenceInput(s["text"], paragraph=s["paragraph"], labels=dict(mine.get((s["index"], s["hash"]), {})))
                  for s in sentences]
        result.labels += sum(len(i.labels) for i in inputs)
        items.append(StoryInput(story.title, inputs, None, SOURCE_PREFIX + path.name))
        result.added.append(path.name)
    if items:
        result.story_ids = [s.id for s in store.add_stories(items)]
    return result


def label_rows(store) -> list[dict]:
    """Every annotator's current label on the shared stories in the store, as label file rows (no text)."""
    ratings = store.ratings()
    rows = []
    for story in store.stories():
        name = story_file(story.source)
        if name is None:
            continue
        for sentence in store.sentences(story.id):
            for annotator, label in sorted(ratings.get(sentence.id, {}).items()):
                rows.append({"story": name, "index": sentence.position, "hash": text_hash(sentence.text)[:12],
                             "label": label, "annotator": annotator})
    rows.sort(key=lambda r: (r["annotator"], r["story"], r["index"]))
    return rows


def label_csv(rows: Iterable[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(LABEL_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: r[k] for k in LABEL_FIELDS} for r in rows)
    return out.getvalue()


def write_label_file(rows: Iterable[dict], path: str | Path) -> Path:
    """Write the label file atomically (a half-written file never replaces a good one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(label_csv(rows), encoding="utf-8")
    os.replace(tmp, path)
    return path
