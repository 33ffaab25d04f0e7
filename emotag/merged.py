"""The merged training set a retrain uses: corpora + hand-tagged stories + the human labels in the store.

    >>> from emotag.merged import Sources, build_merged
    >>> merged = build_merged(Sources.from_env())
    >>> merged.frame          # text, label, label_id, source, split (train / valid / story_valid)
    >>> merged.counts         # source, split, label, n (after dedupe)
    >>> merged.fingerprint    # 16 hex digits over (text, label, split) of every row
    >>> merged.write_csv("merged.csv")

Sources (each optional; a missing one is skipped with a note in ``merged.notes``):

* ``aihub``: the AI Hub 「감정 분류를 위한 대화 음성 데이터셋」 scripts (``emotag.aihub.read_aihub``: majority of five
  annotators, four classes). Folder: $EMOTAG_AIHUB_DIR, else ``../shared/data/aihub``.
* ``file:<name>``: extra labelled files (.csv / .xlsx / .jsonl with a text and an emotion column, read by the
  store's importer, ``emotag.store.imports.parse_file``; several annotators' labels → their majority).
  $EMOTAG_EXTRA_DATA: paths separated by ``os.pathsep``.
* ``stories``: the hand-tagged story sentences (``training/data/story_labels.csv`` joined with the story
  collection, ``../shared/data/stories``; $EMOTAG_STORY_LABELS, $EMOTAG_STORIES_DIR).
* ``own stories``: short stories written for this project with a label per sentence
  (``training/data/own_stories.csv``, the store's CSV import format; $EMOTAG_OWN_STORIES). Hand-tagged story
  sentences like ``stories``, with the same precedence; their text is in the repository.
* ``annotations``: the final human label of every annotated sentence in the annotation store ($EMOTAG_DB_URL,
  else annotations.db): adjudicated, else the annotators' majority, else the latest label. Model
  predictions are never training data.

Set an $EMOTAG_* path to ``none`` (or empty) to leave that source out.

Rules, applied per *normalised* text (``emotag.dataset.normalize_text``), so each sentence is one row:

1. Precedence: a human label from the store beats a hand-tagged story label, which beats a corpus label
   (AI Hub, extra files). Within the store, adjudicated > majority > latest.
2. Among rows of the same precedence the most common label wins; a tie goes to the row read first.
3. Split: a sentence of a story-validation story (``emotag.stories.STORY_VALIDATION``: whole stories; store
   stories whose source or title names one of those files count too) is ``story_valid`` wherever else it
   appears, so it is never trained on; every other sentence is ``valid`` or ``train`` by a hash of its
   text (``emotag.dataset.split_by_text``), so the split is stable as data is added and every run is
   compared on the same ground.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from .dataset import normalize_text, split_by_text
from .labels import LABEL2ID, LABELS
from .stories import DEFAULT_STORIES, STORY_VALIDATION
from .textio import InputError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AIHUB = ROOT.parent / "shared" / "data" / "aihub"
DEFAULT_STORY_LABELS = ROOT / "training" / "data" / "story_labels.csv"
DEFAULT_OWN_STORIES = ROOT / "training" / "data" / "own_stories.csv"
SPLITS = ("train", "valid", "story_valid")
COLUMNS = ("text", "label", "label_id", "source", "split")
SOURCE_AIHUB, SOURCE_STORIES, SOURCE_OWN, SOURCE_STORE = "aihub", "stories", "own stories", "annotations"
STORY_SOURCES = (SOURCE_STORIES, SOURCE_OWN)  # hand-tagged story sentences (not the store's labels)
# precedence of a source kind: higher wins
RANK_CORPUS, RANK_STORIES, RANK_STORE = 1, 2, 3
STORE_RANK = {"adjudicated": 3, "majority": 2, "latest": 1}
_OFF = ("", "none", "off", "-")

ENV_AIHUB = "EMOTAG_AIHUB_DIR"
ENV_EXTRA = "EMOTAG_EXTRA_DATA"
ENV_STORIES = "EMOTAG_STORIES_DIR"
ENV_STORY_LABELS = "EMOTAG_STORY_LABELS"
ENV_OWN_STORIES = "EMOTAG_OWN_STORIES"
ENV_DB = "EMOTAG_DB_URL"


def _env_path(environ, key: str, default: Path) -> str | None:
    if key not in environ:
        return str(default)
    value = environ[key].strip()
    return None if value.lower() in _OFF else value


@dataclass
class Sources:
    """Where the merged data comes from. ``None`` leaves a source out."""

    aihub_dir: str | None = None
    extra_files: list[str] = field(default_factory=list)
    stories_dir: str | None = None
    story_labels: str | None = None
    own_stories: str | None = None  # labelled CSV of the project's own stories
    db_url: str | None = None  # SQLAlchemy URL or SQLite file of the annotation store
    valid_fraction: float = 0.1
    seed: int = 13

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Sources":
        """The app's sources: $EMOTAG_AIHUB_DIR, $EMOTAG_EXTRA_DATA, $EMOTAG_STORIES_DIR, $EMOTAG_STORY_LABELS,
        $EMOTAG_OWN_STORIES, $EMOTAG_DB_URL (defaults: ../shared/data/aihub, none, ../shared/data/stories, the
        committed label file, the committed own stories, annotations.db)."""
        environ = os.environ if environ is None else environ
        extra = [p for p in (environ.get(ENV_EXTRA) or "").split(os.pathsep) if p.strip()]
        db = environ.get(ENV_DB)
        if db is not None and db.strip().lower() in _OFF:
            db_url = None
        else:
            from .store import resolve_url

            db_url = resolve_url(db or None)
        values = dict(aihub_dir=_env_path(environ, ENV_AIHUB, DEFAULT_AIHUB), extra_files=extra,
                      stories_dir=_env_path(environ, ENV_STORIES, DEFAULT_STORIES),
                      story_labels=_env_path(environ, ENV_STORY_LABELS, DEFAULT_STORY_LABELS),
                      own_stories=_env_path(environ, ENV_OWN_STORIES, DEFAULT_OWN_STORIES), db_url=db_url)
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Sources":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class MergedData:
    frame: pd.DataFrame  # COLUMNS, one row per normalised text
    fingerprint: str
    read: dict[str, int]  # labelled rows read per source (before dedupe)
    notes: list[str]  # what was read or skipped, for people
    overridden: int = 0  # sentences whose lower-precedence label was replaced by a different one
    duplicates: int = 0  # rows merged into another row of the same text
    sources: Sources | None = None

    def part(self, split: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == split].reset_index(drop=True)

    def held_out(self) -> dict[str, pd.DataFrame]:
        """The named held-out sets training scripts report: ``validation`` (the valid split), its AI Hub part,
        its story sentences (of training stories), and ``story_validation`` (the whole held-out stories)."""
        valid = self.part("valid")
        return {"validation": valid,
                "aihub_validation": valid[valid["source"] == SOURCE_AIHUB],
                "story_sentences_validation": valid[valid["source"].isin(STORY_SOURCES)],
                "story_validation": self.part("story_valid")}

    @property
    def counts(self) -> pd.DataFrame:
        """Rows per (source, split, label), long form, every label present for every (source, split)."""
        if self.frame.empty:
            return pd.DataFrame({"source": [], "split": [], "label": [], "n": []}).astype({"n": "int64"})
        grouped = self.frame.groupby(["source", "split", "label"]).size()
        index = pd.MultiIndex.from_tuples(
            [(s, p, lab) for s, p in sorted(set(zip(self.frame["source"], self.frame["split"]))) for lab in LABELS],
            names=["source", "split", "label"])
        return grouped.reindex(index, fill_value=0).rename("n").reset_index()

    def table(self) -> pd.DataFrame:
        """One row per source and split with a column per label and the total (for people)."""
        counts = self.counts
        if counts.empty:
            return pd.DataFrame(columns=["source", "split", *LABELS, "total"])
        wide = counts.pivot_table(index=["source", "split"], columns="label", values="n", fill_value=0,
                                  aggfunc="sum").reindex(columns=list(LABELS), fill_value=0)
        wide["total"] = wide.sum(axis=1)
        order = {s: i for i, s in enumerate(SPLITS)}
        wide = wide.reset_index()
        wide = wide.sort_values(["split", "source"], key=lambda c: c.map(order) if c.name == "split" else c)
        total = {"source": "all", "split": "all", **{k: int(wide[k].sum()) for k in (*LABELS, "total")}}
        wide = pd.concat([wide, pd.DataFrame([total])], ignore_index=True)
        wide.columns.name = None
        return wide.astype({k: "int64" for k in (*LABELS, "total")})

    def summary(self) -> dict:
        """A JSON-able description (recorded with every run)."""
        return {
            "fingerprint": self.fingerprint,
            "rows": len(self.frame),
            "splits": {s: int((self.frame["split"] == s).sum()) for s in SPLITS},
            "labels": {s: {lab: int(((self.frame["split"] == s) & (self.frame["label"] == lab)).sum())
                           for lab in LABELS} for s in SPLITS},
            "by_source": {src: int(n) for src, n in self.frame["source"].value_counts().sort_index().items()},
            "read": dict(self.read),
            "overridden": self.overridden,
            "duplicates": self.duplicates,
            "notes": list(self.notes),
        }

    def write_csv(self, path: str | Path) -> Path:
        """The merged rows as CSV (UTF-8 with BOM, so spreadsheet programs show Hangul), written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.frame.to_csv(tmp, index=False, encoding="utf-8-sig", columns=list(COLUMNS))
        os.replace(tmp, path)
        return path


# ------------------------------------------------------------------------------------------------ the rules


def merge_rows(rows: Iterable[dict], valid_fraction: float = 0.1, seed: int = 13) -> tuple[pd.DataFrame, int, int]:
    """Apply the precedence, dedupe and split rules to labelled rows.

    Each row: ``text``, ``label`` (one of LABELS), ``source`` (a name), ``rank`` (RANK_*), optional ``sub_rank``
    (within a rank: higher wins) and ``story_valid`` (True for a sentence of a story-validation story).
    Returns (frame with COLUMNS, how many rows were merged into another, how many sentences had a lower
    precedence label replaced by a different one).
    """
    groups: dict[str, list[tuple[int, dict]]] = {}
    count = 0
    for order, row in enumerate(rows):
        key = normalize_text(row["text"])
        if not key:
            continue
        count += 1
        groups.setdefault(key, []).append((order, row))
    out, overridden = [], 0
    for key, items in groups.items():
        best = max((r.get("rank", 0), r.get("sub_rank", 0)) for _, r in items)
        top = [(o, r) for o, r in items if (r.get("rank", 0), r.get("sub_rank", 0)) == best]
        votes = Counter(r["label"] for _, r in top)
        most = max(votes.values())
        order, winner = min(((o, r) for o, r in top if votes[r["label"]] == most), key=lambda item: item[0])
        if any(r.get("rank", 0) < best[0] and r["label"] != winner["label"] for _, r in items):
            overridden += 1
        out.append({"text": key, "label": winner["label"], "label_id": LABEL2ID[winner["label"]],
                    "source": winner["source"], "story_valid": any(r.get("story_valid") for _, r in items),
                    "order": min(o for o, _ in items)})
    if not out:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "label_id" else "str") for c in COLUMNS}), 0, 0
    frame = pd.DataFrame(out).sort_values("order", kind="stable")
    story = frame[frame["story_valid"]].assign(split="story_valid")
    rest = frame[~frame["story_valid"]]
    train, valid = split_by_text(rest, valid_fraction, seed=seed)
    merged = pd.concat([train.assign(split="train"), valid.assign(split="valid"), story], ignore_index=True)
    merged = merged.sort_values("order", kind="stable").reset_index(drop=True)
    return merged[list(COLUMNS)].astype({"label_id": "int64"}), count - len(out), overridden


def fingerprint(frame: pd.DataFrame) -> str:
    """16 hex digits over every (text, label, split), independent of row order."""
    h = hashlib.sha256()
    for text, label, split in sorted(zip(frame["text"], frame["label"], frame["split"])):
        h.update(f"{text}\t{label}\t{split}\n".encode("utf-8"))
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ readers


def _validation_names() -> set[str]:
    return {n.lower() for n in STORY_VALIDATION} | {Path(n).stem.lower() for n in STORY_VALIDATION}


def _is_story_validation(*names: str | None) -> bool:
    wanted = _validation_names()
    for name in names:
        if not name:
            continue
        base = Path(str(name).split("#", 1)[0]).name.lower()
        if base in wanted or Path(base).stem in wanted or str(name).strip().lower() in wanted:
            return True
    return False


def read_aihub_rows(folder: str | Path) -> list[dict]:
    from .aihub import read_aihub

    df = read_aihub(folder)
    return [{"text": t, "label": lab, "source": SOURCE_AIHUB, "rank": RANK_CORPUS}
            for t, lab in zip(df["text"], df["label"])]


def read_labelled_file(path: str | Path) -> list[dict]:
    """A labelled .csv / .xlsx / .jsonl (the store importer's formats); unlabelled sentences are skipped."""
    from .store.imports import parse_file

    path = Path(path)
    rows = []
    for story in parse_file(path):
        story_valid = _is_story_validation(story.title, story.source)
        for s in story.sentences:
            if not s.labels:
                continue
            votes = Counter(s.labels.values())
            most = max(votes.values())
            label = next(lab for lab in s.labels.values() if votes[lab] == most)
            rows.append({"text": s.text, "label": label, "source": f"file:{path.name}", "rank": RANK_CORPUS,
                         "story_valid": story_valid})
    return rows


_STORY_CACHE: dict[tuple, list[dict]] = {}


def _stamp(path: Path) -> tuple:
    try:
        st = path.stat()
        return (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(path), None, None)


def read_story_rows(label_file: str | Path, stories_dir: str | Path, cache_dir: str | Path | None = None) -> list[dict]:
    """Hand-tagged story sentences joined with the collection. The join splits every story (seconds), so the
    result is cached in-process and, with ``cache_dir``, on disk, keyed by the files' sizes and times."""
    import json

    from . import splitter
    from .stories import final_story_labels, join_labels, read_label_file

    label_file, stories_dir = Path(label_file), Path(stories_dir)
    key = (_stamp(label_file), _stamp(stories_dir), tuple(_stamp(p) for p in sorted(stories_dir.glob("*.txt"))),
           _stamp(Path(splitter.__file__)))
    if key not in _STORY_CACHE:
        digest = hashlib.sha256(repr(key).encode("utf-8")).hexdigest()[:20]
        cached = Path(cache_dir) / f"stories-{digest}.json" if cache_dir else None
        rows = None
        if cached is not None and cached.is_file():
            try:
                rows = json.loads(cached.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                rows = None
        if rows is None:
            final = final_story_labels(join_labels(read_label_file(label_file), stories_dir))
            rows = [{"text": s["text"], "label": s["label"], "source": SOURCE_STORIES, "rank": RANK_STORIES,
                     "story_valid": s["story"] in STORY_VALIDATION} for s in final]
            if cached is not None:
                try:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
                    tmp.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
                    os.replace(tmp, cached)
                except OSError:
                    pass
        _STORY_CACHE.clear()
        _STORY_CACHE[key] = rows
    return [dict(r) for r in _STORY_CACHE[key]]


def read_store_rows(db_url: str) -> list[dict]:
    """The final human label of every annotated sentence in the store (model predictions left out)."""
    from .store import Store

    store = Store(db_url, create=False)
    try:
        titles = {s.id: (s.title, s.source) for s in store.stories()}
        rows = []
        for f in store.final_labels():
            if f.label is None or f.source not in STORE_RANK:
                continue
            title, source = titles.get(f.story_id, (None, None))
            rows.append({"text": f.text, "label": f.label, "source": SOURCE_STORE, "rank": RANK_STORE,
                         "sub_rank": STORE_RANK[f.source], "story_valid": _is_story_validation(source, title)})
        return rows
    finally:
        store.close()


def _describe(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def build_merged(sources: Sources | None = None, cache_dir: str | Path | None = None) -> MergedData:
    """Read every available source and merge them (see the module docstring). Raises InputError when there
    is no labelled row at all. ``cache_dir``: where to keep the joined story sentences between processes."""
    sources = sources or Sources.from_env()
    rows: list[dict] = []
    read: dict[str, int] = {}
    notes: list[str] = []

    def take(name: str, found: list[dict], where: str) -> None:
        rows.extend(found)
        read[name] = read.get(name, 0) + len(found)
        notes.append(f"{name}: {len(found):,} labelled rows from {where}")

    if sources.aihub_dir:
        folder = Path(sources.aihub_dir)
        if folder.is_dir() and any(folder.glob("*.csv")):
            try:
                take(SOURCE_AIHUB, read_aihub_rows(folder), str(folder))
            except InputError as exc:
                notes.append(f"aihub: skipped ({_describe(exc)})")
        else:
            notes.append(f"aihub: no AI Hub *.csv files in {folder}")
    for path in sources.extra_files:
        name = f"file:{Path(path).name}"
        try:
            take(name, read_labelled_file(path), str(path))
        except (InputError, OSError) as exc:
            notes.append(f"{name}: skipped ({_describe(exc)})")
    if sources.story_labels and sources.stories_dir:
        label_file, folder = Path(sources.story_labels), Path(sources.stories_dir)
        if not label_file.is_file():
            notes.append(f"stories: no label file {label_file}")
        elif not folder.is_dir() or not any(folder.glob("*.txt")):
            notes.append(f"stories: the story collection {folder} is not here")
        else:
            take(SOURCE_STORIES, read_story_rows(label_file, folder, cache_dir), f"{label_file.name} + {folder}")
    if sources.own_stories:
        path = Path(sources.own_stories)
        if not path.is_file():
            notes.append(f"{SOURCE_OWN}: no file {path}")
        else:
            try:
                found = [{**r, "source": SOURCE_OWN, "rank": RANK_STORIES} for r in read_labelled_file(path)]
                take(SOURCE_OWN, found, str(path))
            except (InputError, OSError) as exc:
                notes.append(f"{SOURCE_OWN}: skipped ({_describe(exc)})")
    if sources.db_url:
        from .store import StoreError, display_url

        try:
            take(SOURCE_STORE, read_store_rows(sources.db_url), display_url(sources.db_url))
        except StoreError as exc:
            notes.append(f"annotations: skipped ({_describe(exc)})")
    if not rows:
        raise InputError("No labelled data was found: " + "; ".join(notes or ["no source is configured"]))
    frame, duplicates, overridden = merge_rows(rows, sources.valid_fraction, sources.seed)
    return MergedData(frame, fingerprint(frame), read, notes, overridden, duplicates, sources)


__all__ = ["COLUMNS", "MergedData", "SPLITS", "STORY_SOURCES", "Sources", "build_merged", "fingerprint", "merge_rows"]
