"""The shared story collection (``../shared/data/stories``): line 1 source/licence, line 2 title, then the story.

Story text never enters the repository: labels are kept keyed by (story file, sentence index, text hash) and
joined back to the text here when the collection is present.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .dataset import text_hash
from .splitter import split_sentences

DEFAULT_STORIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "stories"
LABEL_FIELDS = ("story", "index", "hash", "label", "annotator")


@dataclass(frozen=True)
class Story:
    file: str
    source: str
    title: str
    body: str  # everything after the source line (title included: it is read aloud too)


def read_story(path: str | Path) -> Story:
    path = Path(path)
    source, _, body = path.read_text(encoding="utf-8").partition("\n")
    title = body.split("\n", 1)[0].strip()
    return Story(path.name, source.strip(), title, body)


def story_sentences(story: Story) -> list[dict]:
    """Sentences of a story in order, with the key fields used by label files."""
    return [{"story": story.file, "index": i, "hash": text_hash(s.text)[:12], "text": s.text, "paragraph": s.paragraph}
            for i, s in enumerate(split_sentences(story.body))]


def read_label_file(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def join_labels(label_rows: list[dict], stories_dir: str | Path = DEFAULT_STORIES) -> list[dict]:
    """Attach story text to label rows (matching file and text hash; the index disambiguates repeats).

    Returns [] when the story collection is absent; rows whose sentence no longer matches are dropped.
    """
    stories_dir = Path(stories_dir)
    if not stories_dir.is_dir():
        return []
    by_story: dict[str, dict[tuple[int, str], dict]] = {}
    joined = []
    for row in label_rows:
        name = row["story"]
        if name not in by_story:
            path = stories_dir / name
            by_story[name] = ({(s["index"], s["hash"]): s for s in story_sentences(read_story(path))}
                              if path.is_file() else {})
        sentence = by_story[name].get((int(row["index"]), row["hash"]))
        if sentence is not None:
            joined.append({**row, "index": int(row["index"]), "text": sentence["text"]})
    return joined


# Whole stories kept apart for validation: never trained on, so every run is compared on the same ground.
STORY_VALIDATION = frozenset({
    "byeongari_byeol.txt", "geumdokki.txt", "harabeojiui_jeongwon.txt", "jageun_himdo_hapchimyeon.txt",
    "junuui_toyoil.txt", "kkachiui_ot.txt", "nae_moseup_geudaero.txt", "saedeurui_wang.txt",
})


def final_story_labels(joined: list[dict]) -> list[dict]:
    """One label per sentence from several annotators: the majority, ties going to the first annotator by name."""
    from collections import Counter, defaultdict

    votes: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in sorted(joined, key=lambda r: r["annotator"]):
        votes[(row["story"], row["index"])].append(row)
    final = []
    for (story, index), rows in sorted(votes.items()):
        counts = Counter(r["label"] for r in rows)
        top = max(counts.values())
        label = next(r["label"] for r in rows if counts[r["label"]] == top)
        final.append({"story": story, "index": index, "text": rows[0]["text"], "label": label,
                      "annotators": len(rows), "split": "valid" if story in STORY_VALIDATION else "train"})
    return final
