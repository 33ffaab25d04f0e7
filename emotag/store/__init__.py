"""The annotation store: stories, sentences, model predictions, annotators and an append-only annotation log.

    >>> from emotag.store import Store
    >>> store = Store()                      # $EMOTAG_DB_URL, else the SQLite file annotations.db here
    >>> story = store.add_story("토끼", sentences=["토끼가 웃었어요.", "토끼가 울었어요."])
    >>> first = store.sentences(story.id)[0]
    >>> store.annotate(first.id, "mina", "happy")        # returns the stored entry once it is committed
    >>> store.undo(first.id, "mina")                      # a new entry restoring the label before
    >>> store.final_labels(story.id)

Every label a person sets is a new row in ``annotations`` (who, which sentence, label, when, the label it
replaced); nothing is updated or deleted. A sentence's current label for an annotator is the label of their
latest entry; undo writes an entry that restores the label the latest not-yet-undone entry replaced.

The final label of a sentence is, in order: the reviewer's adjudicated label, else the annotators' majority
(two or more annotators and one most common label), else the latest annotation, else the model prediction;
``FinalLabel.source`` says which ("adjudicated", "majority", "latest", "model", or None without any).

The same code runs on SQLite (WAL mode, 30 s busy timeout, writes in ``BEGIN IMMEDIATE`` transactions) and on
PostgreSQL (writes lock the sentence row), given a SQLAlchemy URL.
"""
from __future__ import annotations

import os
import threading
import time
import unicodedata
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from ..dataset import text_hash
from ..labels import LABEL2ID, LABELS, UnknownLabel, normalize_label
from ..textio import InputError, check_story_text
from . import schema
from .agreement import AgreementReport, agreement_report
from .schema import SchemaError, adjudications, annotations, annotators, predictions, sentences, stories, utcnow

ENV_URL = "EMOTAG_DB_URL"
DEFAULT_DB = "annotations.db"
BUSY_TIMEOUT_S = 30.0
QUEUE_MODES = ("story", "uncertain")
SOURCES = ("adjudicated", "majority", "latest", "model")
IMPORT_ANNOTATOR = "import"


class StoreError(RuntimeError):
    """The database cannot be opened or used; str(err) says why, without a traceback."""


class NotFound(StoreError, LookupError):
    """No story/sentence with that id."""


# ---------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Story:
    id: int
    title: str
    source: str | None
    created_at: datetime
    sentences: int = 0  # how many
    text: str | None = None


@dataclass(frozen=True)
class Sentence:
    id: int
    story_id: int
    position: int
    text: str
    start: int | None = None
    end: int | None = None
    paragraph: int | None = None


@dataclass(frozen=True)
class Annotation:
    """One entry of the annotation log."""

    id: int
    sentence_id: int
    annotator: str
    label: str | None  # None: no label (cleared, or undone back to nothing)
    previous: str | None  # the label this entry replaced
    action: str  # "set", "undo" or "import"
    created_at: datetime
    undoes: int | None = None  # for "undo": the id of the entry taken back
    key: str | None = None

    @property
    def label_id(self) -> int | None:
        return None if self.label is None else LABEL2ID[self.label]


@dataclass(frozen=True)
class Adjudication:
    id: int
    sentence_id: int
    reviewer: str
    label: str | None
    previous: str | None
    created_at: datetime
    note: str | None = None


@dataclass(frozen=True)
class QueueItem:
    sentence_id: int
    story_id: int
    story_title: str
    position: int
    text: str
    predicted: str | None  # the latest model prediction, if any
    confidence: float | None


@dataclass(frozen=True)
class Progress:
    story_id: int
    title: str
    annotator: str
    done: int  # sentences this annotator has a label for
    total: int

    @property
    def remaining(self) -> int:
        return self.total - self.done

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class FinalLabel:
    sentence_id: int
    story_id: int
    position: int
    text: str
    label: str | None
    source: str | None  # "adjudicated", "majority", "latest", "model" or None
    labels: dict[str, str] = field(default_factory=dict)  # annotator -> current label
    adjudicated: str | None = None
    predicted: str | None = None
    confidence: float | None = None

    @property
    def label_id(self) -> int | None:
        return None if self.label is None else LABEL2ID[self.label]

    @property
    def annotators(self) -> int:
        return len(self.labels)

    @property
    def agreement(self) -> float | None:
        """Share of the annotators who chose the most common label (None with fewer than two annotators)."""
        if len(self.labels) < 2:
            return None
        return Counter(self.labels.values()).most_common(1)[0][1] / len(self.labels)

    @property
    def disagreement(self) -> bool:
        return len(set(self.labels.values())) > 1


@dataclass
class SentenceInput:
    text: str
    start: int | None = None
    end: int | None = None
    paragraph: int | None = None
    labels: dict[str, str] = field(default_factory=dict)  # annotator -> label, imported as annotations


@dataclass
class StoryInput:
    title: str
    sentences: list[SentenceInput]
    text: str | None = None
    source: str | None = None


# ---------------------------------------------------------------------------------------------------- engine


def resolve_url(url: str | os.PathLike | None = None) -> str:
    """The database to use: ``url`` (a SQLAlchemy URL or a file path), else $EMOTAG_DB_URL, else annotations.db."""
    url = str(url) if url else (os.environ.get(ENV_URL) or DEFAULT_DB)
    if "://" not in url:  # a file path
        return "sqlite:///" + str(Path(url).expanduser().resolve())
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{url!r} is not a database URL (e.g. sqlite:///annotations.db or "
                         "postgresql://user@host/db)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, the driver emotag installs
    return parsed.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _is_memory(url) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            memory = _is_memory(parsed)
            if not memory:
                try:
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot open the annotation database {display_url(url)}: cannot create "
                                     f"its folder ({exc.strerror or exc})") from None
            engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
                                   **({"poolclass": StaticPool} if memory else {}))
            _sqlite_events(engine, wal=not memory)
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
            if parsed.get_backend_name() == "postgresql":
                _postgres_events(engine)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no database driver for {display_url(url)} ({exc}); for PostgreSQL: "
                         "pip install 'psycopg[binary]'") from None
    return engine


def _use_wal(cursor, attempts: int = 100) -> None:
    """Switch a SQLite file to WAL (a lasting setting). Switching needs a moment alone with the file and SQLite
    answers "locked" at once, without its busy handler, while another process opens the same new file: retry."""
    import sqlite3

    for attempt in range(attempts):
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 + 0.002 * attempt)


def _sqlite_events(engine: Engine, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _begin)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if wal:
            _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")  # an acknowledged save survives a crash or power cut
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Writers take the write lock up front, so they queue on the busy timeout instead of failing when a
        # read transaction would have to be upgraded.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("emotag_write") else "BEGIN")


def _postgres_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{int(BUSY_TIMEOUT_S)}s'")
        dbapi_connection.commit()


def _describe(exc: DBAPIError) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if "locked" in message or "lock timeout" in message:
        return (f"the annotation database is busy: another program held it locked for over {BUSY_TIMEOUT_S:.0f} s "
                f"({message})")
    return f"annotation database error: {message}"


def _name(value: str, what: str = "annotator") -> str:
    name = unicodedata.normalize("NFC", str(value or "")).strip()
    if not name:
        raise InputError(f"the {what} name is empty")
    if len(name) > 200:
        raise InputError(f"the {what} name is longer than 200 characters")
    return name


def _label(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return normalize_label(value)
    except UnknownLabel as exc:
        raise InputError(str(exc)) from None


def _insert_ignore(conn: Connection, table, **values):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - other backends: plain insert, a race surfaces as an IntegrityError
        return conn.execute(insert(table).values(**values))
    return conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())


def _sentence_input(item: Any) -> SentenceInput:
    if isinstance(item, SentenceInput):
        return item
    if isinstance(item, str):
        return SentenceInput(item)
    if isinstance(item, Mapping):
        return SentenceInput(str(item.get("text", "")), item.get("start"), item.get("end"), item.get("paragraph"),
                             dict(item.get("labels") or {}))
    text = getattr(item, "text", None)  # splitter.Span, predictor.TaggedSentence, ...
    if text is None:
        raise InputError(f"not a sentence: {item!r}")
    return SentenceInput(text, getattr(item, "start", None), getattr(item, "end", None),
                         getattr(item, "paragraph", None))


def _validate_story(story: StoryInput) -> StoryInput:
    title = unicodedata.normalize("NFC", str(story.title or "")).strip()
    if not title:
        raise InputError("the story has no title")
    if not story.sentences:
        raise InputError(f"story {title!r} has no sentences")
    items = []
    for i, s in enumerate(map(_sentence_input, story.sentences), 1):
        if not isinstance(s.text, str) or not s.text.strip():
            raise InputError(f"story {title!r}: sentence {i} is empty")
        labels = {_name(who): _label(label) for who, label in s.labels.items() if label is not None and label != ""}
        items.append(SentenceInput(s.text, s.start, s.end, s.paragraph, labels))
    return StoryInput(title[:500], items, story.text, story.source)


# ---------------------------------------------------------------------------------------------------- store

_ENTRY = (annotations.c.id, annotations.c.sentence_id, annotators.c.name, annotations.c.label,
          annotations.c.previous, annotations.c.action, annotations.c.created_at, annotations.c.undoes,
          annotations.c.key)


class Store:
    """One annotation database. Thread-safe; open one per process (or share it between threads)."""

    def __init__(self, url: str | os.PathLike | None = None, *, migrate: bool = True, create: bool = True):
        """Open (``create``: or create) the database at ``url`` (see resolve_url) and bring its schema up to
        date (``migrate``)."""
        self.url = resolve_url(url)
        parsed = make_url(self.url)
        if not create and parsed.get_backend_name() == "sqlite" and not _is_memory(parsed) \
                and not Path(parsed.database).is_file():
            raise StoreError(f"no annotation database at {parsed.database}")
        self.engine = make_engine(self.url)
        # SQLite allows one writer at a time: this process's threads queue here rather than in SQLite's busy
        # handler, which sleeps in steps of up to 100 ms. Other processes still meet the busy timeout.
        self._write_lock = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        self.version = 0
        if migrate:
            try:
                self.version = schema.migrate(self.engine)
            except SchemaError as exc:
                self.engine.dispose()
                raise StoreError(f"{display_url(self.url)}: {exc}") from None
            except DBAPIError as exc:
                self.engine.dispose()
                raise StoreError(f"cannot open the annotation database {display_url(self.url)}: "
                                 f"{_describe(exc)}") from None

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- transactions

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Connection]:
        """A connection inside one transaction (committed on success, rolled back on any error)."""
        lock = self._write_lock if write else None
        if lock is not None and not lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise StoreError(f"the annotation database is busy: other saves in this program took over "
                             f"{BUSY_TIMEOUT_S:.0f} s")
        try:
            conn = self.engine.connect()
            if write:
                conn = conn.execution_options(emotag_write=True)
            try:
                with conn.begin():
                    yield conn
            except OperationalError as exc:
                raise StoreError(_describe(exc)) from exc
            finally:
                conn.close()
        finally:
            if lock is not None:
                lock.release()

    def _read(self):
        return self.transaction(write=False)

    # -- annotators

    def _annotator_id(self, conn: Connection, name: str, create: bool = True) -> int | None:
        query = select(annotators.c.id).where(annotators.c.name == name)
        found = conn.scalar(query)
        if found is None and create:
            _insert_ignore(conn, annotators, name=name, created_at=utcnow())
            found = conn.scalar(query)
        return found

    def add_annotator(self, name: str) -> str:
        name = _name(name)
        with self.transaction() as conn:
            self._annotator_id(conn, name)
        return name

    def annotators(self) -> list[str]:
        with self._read() as conn:
            return list(conn.scalars(select(annotators.c.name).order_by(annotators.c.id)))

    # -- stories and sentences

    def add_story(self, title: str, text: str | None = None, sentences: Sequence[Any] | None = None,
                  source: str | None = None, labels: Sequence[Any] | None = None,
                  annotator: str = IMPORT_ANNOTATOR) -> Story:
        """Store a story. Give ``text`` (split with the project's splitter) or ``sentences`` (strings, Spans or
        SentenceInputs; with ``text`` their offsets point into it). ``labels`` (one per sentence, None for
        none) are imported as annotations by ``annotator``."""
        if sentences is None:
            if text is None:
                raise InputError("give the story's text or its sentences")
            text = check_story_text(text)
            from ..splitter import split_sentences  # kss + mecab: loaded only when a story is split
            sentences = split_sentences(text)
        items = [_sentence_input(s) for s in sentences]
        if labels is not None:
            if len(labels) != len(items):
                raise InputError(f"{len(labels)} labels for {len(items)} sentences")
            who = _name(annotator)
            for item, label in zip(items, labels):
                if label is not None and label != "":
                    item.labels = {**item.labels, who: label}
        return self.add_stories([StoryInput(title, items, text, source)])[0]

    def add_stories(self, items: Sequence[StoryInput]) -> list[Story]:
        """Store several stories (with their imported labels) in one transaction: all or nothing."""
        items = [_validate_story(s) for s in items]
        created: list[int] = []
        with self.transaction() as conn:
            now = utcnow()
            names = {who for s in items for sent in s.sentences for who in sent.labels}
            ids = {who: self._annotator_id(conn, who) for who in sorted(names)}
            for story in items:
                story_id = conn.execute(insert(stories).values(
                    title=story.title, source=story.source, text=story.text, created_at=now)).inserted_primary_key[0]
                created.append(story_id)
                conn.execute(insert(sentences), [
                    {"story_id": story_id, "position": i, "text": s.text, "start": s.start, "end": s.end,
                     "paragraph": s.paragraph, "hash": text_hash(s.text)} for i, s in enumerate(story.sentences)])
                rows = [s for s in story.sentences if s.labels]
                if rows:
                    by_position = dict(conn.execute(select(sentences.c.position, sentences.c.id)
                                                    .where(sentences.c.story_id == story_id)).all())
                    conn.execute(insert(annotations), [
                        {"sentence_id": by_position[i], "annotator_id": ids[who], "label": label, "previous": None,
                         "action": "import", "undoes": None, "key": None, "created_at": now}
                        for i, s in enumerate(story.sentences) for who, label in s.labels.items()])
        return [self.story(i) for i in created]

    def _story_query(self):
        count = (select(func.count()).where(sentences.c.story_id == stories.c.id)
                 .correlate(stories).scalar_subquery())
        return select(stories.c.id, stories.c.title, stories.c.source, stories.c.created_at, count.label("n"),
                      stories.c.text)

    def stories(self) -> list[Story]:
        with self._read() as conn:
            return [Story(*row) for row in conn.execute(self._story_query().order_by(stories.c.id))]

    def story(self, story_id: int) -> Story:
        with self._read() as conn:
            row = conn.execute(self._story_query().where(stories.c.id == story_id)).first()
        if row is None:
            raise NotFound(f"no story with id {story_id}")
        return Story(*row)

    def sentences(self, story_id: int | None = None) -> list[Sentence]:
        query = select(sentences.c.id, sentences.c.story_id, sentences.c.position, sentences.c.text,
                       sentences.c.start, sentences.c.end, sentences.c.paragraph)
        if story_id is not None:
            query = query.where(sentences.c.story_id == story_id)
        with self._read() as conn:
            return [Sentence(*row) for row in conn.execute(query.order_by(sentences.c.story_id,
                                                                           sentences.c.position))]

    def sentence(self, sentence_id: int) -> Sentence:
        with self._read() as conn:
            row = conn.execute(select(sentences.c.id, sentences.c.story_id, sentences.c.position, sentences.c.text,
                                      sentences.c.start, sentences.c.end, sentences.c.paragraph)
                               .where(sentences.c.id == sentence_id)).first()
        if row is None:
            raise NotFound(f"no sentence with id {sentence_id}")
        return Sentence(*row)

    # -- predictions

    def add_predictions(self, story_id: int | None = None, predictor=None, progress=None) -> int:
        """Run the model (default: emotag's default predictor) over a story's sentences (all stories when None)
        and store its predictions under the model's name. Returns how many sentences were predicted."""
        if predictor is None:
            from ..predictor import get_predictor
            predictor = get_predictor()
        items = self.sentences(story_id)
        if story_id is not None and not items:
            self.story(story_id)  # raises NotFound for a wrong id
        results = predictor.predict([s.text for s in items], progress=progress) if items else []
        return self.save_predictions(predictor.model.name, [(s.id, p) for s, p in zip(items, results)])

    def save_predictions(self, model: str, items: Iterable[tuple[int, Any]]) -> int:
        """Store ``(sentence_id, prediction)`` pairs; a prediction is a Prediction or a dict with label,
        confidence and scores. Replaces this model's earlier predictions for those sentences."""
        model = _name(model, "model")
        rows = []
        for sentence_id, p in items:
            get = p.get if isinstance(p, Mapping) else lambda k, p=p: getattr(p, k)
            rows.append({"sentence_id": sentence_id, "model": model, "label": _label(get("label")),
                         "confidence": float(get("confidence")),
                         "scores": {k: float(v) for k, v in dict(get("scores")).items()}, "created_at": utcnow()})
        if not rows:
            return 0
        with self.transaction() as conn:
            ids = [r["sentence_id"] for r in rows]
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                conn.execute(delete(predictions).where(predictions.c.model == model,
                                                       predictions.c.sentence_id.in_(chunk)))
            conn.execute(insert(predictions), rows)
        return len(rows)

    @staticmethod
    def _latest_predictions():
        latest = select(func.max(predictions.c.id)).group_by(predictions.c.sentence_id)
        return (select(predictions.c.sentence_id, predictions.c.label, predictions.c.confidence,
                       predictions.c.model)
                .where(predictions.c.id.in_(latest)).subquery("prediction"))

    def predictions(self, story_id: int | None = None) -> dict[int, dict]:
        """sentence id -> the latest prediction (model, label, confidence)."""
        pred = self._latest_predictions()
        query = select(pred).join(sentences, sentences.c.id == pred.c.sentence_id)
        if story_id is not None:
            query = query.where(sentences.c.story_id == story_id)
        with self._read() as conn:
            return {row.sentence_id: {"model": row.model, "label": row.label, "confidence": row.confidence}
                    for row in conn.execute(query)}

    # -- the annotation log

    def _lock_sentence(self, conn: Connection, sentence_id: int) -> None:
        # PostgreSQL: FOR UPDATE serialises saves on one sentence; SQLite: BEGIN IMMEDIATE already did.
        found = conn.scalar(select(sentences.c.id).where(sentences.c.id == sentence_id).with_for_update())
        if found is None:
            raise NotFound(f"no sentence with id {sentence_id}")

    @staticmethod
    def _current(conn: Connection, sentence_id: int, annotator_id: int | None) -> str | None:
        if annotator_id is None:
            return None
        return conn.scalar(select(annotations.c.label)
                           .where(annotations.c.sentence_id == sentence_id,
                                  annotations.c.annotator_id == annotator_id)
                           .order_by(annotations.c.id.desc()).limit(1))

    def _entries(self, conn: Connection, *where) -> list[Annotation]:
        query = (select(*_ENTRY).join(annotators, annotators.c.id == annotations.c.annotator_id)
                 .where(*where).order_by(annotations.c.id))
        return [Annotation(*row) for row in conn.execute(query)]

    def _keyed(self, conn: Connection, key: str | None, sentence_id: int, name: str) -> Annotation | None:
        if key is None:
            return None
        found = self._entries(conn, annotations.c.key == key)
        if found and (found[0].sentence_id != sentence_id or found[0].annotator != name):
            raise InputError(f"save key {key!r} was already used for another sentence or annotator")
        return found[0] if found else None

    def annotate(self, sentence_id: int, annotator: str, label: Any, *, key: str | None = None) -> Annotation:
        """Record ``annotator``'s label (a name, Korean name or id; None clears it) for a sentence.

        Returns the stored entry once it is committed. With ``key`` (any unique string from the client, e.g. a
        UUID per click) a retried save is stored once: the second call returns the first entry."""
        name, label = _name(annotator), _label(label)
        with self.transaction() as conn:
            self._lock_sentence(conn, sentence_id)
            done = self._keyed(conn, key, sentence_id, name)
            if done is not None:
                return done
            annotator_id = self._annotator_id(conn, name)
            previous = self._current(conn, sentence_id, annotator_id)
            now = utcnow()
            entry_id = conn.execute(insert(annotations).values(
                sentence_id=sentence_id, annotator_id=annotator_id, label=label, previous=previous, action="set",
                undoes=None, key=key, created_at=now)).inserted_primary_key[0]
        return Annotation(entry_id, sentence_id, name, label, previous, "set", now, None, key)

    def undo(self, sentence_id: int, annotator: str, *, key: str | None = None) -> Annotation | None:
        """Take back the annotator's latest not-yet-undone entry for the sentence by appending an entry that
        restores the label it replaced. Repeated undos walk further back. None when there is nothing to undo."""
        name = _name(annotator)
        with self.transaction() as conn:
            self._lock_sentence(conn, sentence_id)
            done = self._keyed(conn, key, sentence_id, name)
            if done is not None:
                return done
            annotator_id = self._annotator_id(conn, name, create=False)
            if annotator_id is None:
                return None
            undone = select(annotations.c.undoes).where(annotations.c.sentence_id == sentence_id,
                                                        annotations.c.annotator_id == annotator_id,
                                                        annotations.c.undoes.is_not(None))
            target = conn.execute(
                select(annotations.c.id, annotations.c.previous)
                .where(annotations.c.sentence_id == sentence_id, annotations.c.annotator_id == annotator_id,
                       annotations.c.action != "undo", annotations.c.id.not_in(undone))
                .order_by(annotations.c.id.desc()).limit(1)).first()
            if target is None:
                return None
            previous = self._current(conn, sentence_id, annotator_id)
            now = utcnow()
            entry_id = conn.execute(insert(annotations).values(
                sentence_id=sentence_id, annotator_id=annotator_id, label=target.previous, previous=previous,
                action="undo", undoes=target.id, key=key, created_at=now)).inserted_primary_key[0]
        return Annotation(entry_id, sentence_id, name, target.previous, previous, "undo", now, target.id, key)

    def history(self, sentence_id: int | None = None, annotator: str | None = None,
                story_id: int | None = None) -> list[Annotation]:
        """Log entries, oldest first, filtered by sentence, annotator and/or story."""
        where = []
        if sentence_id is not None:
            where.append(annotations.c.sentence_id == sentence_id)
        if annotator is not None:
            where.append(annotators.c.name == _name(annotator))
        if story_id is not None:
            where.append(annotations.c.sentence_id.in_(select(sentences.c.id).where(sentences.c.story_id == story_id)))
        with self._read() as conn:
            return self._entries(conn, *where)

    def entry(self, entry_id: int) -> Annotation:
        with self._read() as conn:
            found = self._entries(conn, annotations.c.id == entry_id)
        if not found:
            raise NotFound(f"no annotation entry with id {entry_id}")
        return found[0]

    def current_label(self, sentence_id: int, annotator: str) -> str | None:
        with self._read() as conn:
            return self._current(conn, sentence_id, self._annotator_id(conn, _name(annotator), create=False))

    def _ratings(self, conn: Connection, story_id: int | None = None, annotator: str | None = None):
        """Rows (sentence_id, annotator, label, entry id) of every current (non-empty) label."""
        latest = select(func.max(annotations.c.id)).group_by(annotations.c.sentence_id, annotations.c.annotator_id)
        if story_id is not None:
            latest = latest.where(annotations.c.sentence_id.in_(
                select(sentences.c.id).where(sentences.c.story_id == story_id)))
        query = (select(annotations.c.sentence_id, annotators.c.name, annotations.c.label, annotations.c.id)
                 .join(annotators, annotators.c.id == annotations.c.annotator_id)
                 .where(annotations.c.id.in_(latest), annotations.c.label.is_not(None)))
        if annotator is not None:
            query = query.where(annotators.c.name == annotator)
        return conn.execute(query.order_by(annotations.c.id)).all()

    def current_labels(self, annotator: str, story_id: int | None = None) -> dict[int, str]:
        """sentence id -> the annotator's current label (sentences without one are absent)."""
        with self._read() as conn:
            return {row[0]: row[2] for row in self._ratings(conn, story_id, _name(annotator))}

    def ratings(self, story_id: int | None = None) -> dict[int, dict[str, str]]:
        """sentence id -> {annotator: current label}, for sentences with at least one label."""
        out: dict[int, dict[str, str]] = defaultdict(dict)
        with self._read() as conn:
            for sentence_id, name, label, _ in self._ratings(conn, story_id):
                out[sentence_id][name] = label
        return dict(out)

    # -- work queue, progress, counts

    def queue(self, annotator: str, mode: str = "story", story_id: int | None = None,
              limit: int | None = None) -> list[QueueItem]:
        """Sentences the annotator has not labelled yet: in story order ("story"), or least confident model
        prediction first across stories ("uncertain"; sentences without a prediction come last)."""
        if mode not in QUEUE_MODES:
            raise InputError(f"unknown queue mode {mode!r} (choose from {', '.join(QUEUE_MODES)})")
        name = _name(annotator)
        pred = self._latest_predictions()
        query = (select(sentences.c.id, sentences.c.story_id, stories.c.title, sentences.c.position,
                        sentences.c.text, pred.c.label, pred.c.confidence)
                 .join(stories, stories.c.id == sentences.c.story_id)
                 .outerjoin(pred, pred.c.sentence_id == sentences.c.id))
        with self._read() as conn:
            annotator_id = self._annotator_id(conn, name, create=False)
            if annotator_id is not None:
                latest = (select(func.max(annotations.c.id)).where(annotations.c.annotator_id == annotator_id)
                          .group_by(annotations.c.sentence_id))
                labelled = select(annotations.c.sentence_id).where(annotations.c.id.in_(latest),
                                                                   annotations.c.label.is_not(None))
                query = query.where(sentences.c.id.not_in(labelled))
            if story_id is not None:
                query = query.where(sentences.c.story_id == story_id)
            order = [sentences.c.story_id, sentences.c.position]
            if mode == "uncertain":
                order = [pred.c.confidence.is_(None), pred.c.confidence, *order]
            query = query.order_by(*order)
            if limit is not None:
                query = query.limit(limit)
            return [QueueItem(*row) for row in conn.execute(query)]

    def next_sentence(self, annotator: str, mode: str = "story", story_id: int | None = None) -> QueueItem | None:
        found = self.queue(annotator, mode, story_id, limit=1)
        return found[0] if found else None

    def progress(self, story_id: int | None = None, annotator: str | None = None) -> list[Progress]:
        """How many sentences of each story each annotator has labelled (every known annotator, or one)."""
        with self._read() as conn:
            story_rows = conn.execute(self._story_query().where(*(
                [stories.c.id == story_id] if story_id is not None else [])).order_by(stories.c.id)).all()
            names = [_name(annotator)] if annotator is not None else list(
                conn.scalars(select(annotators.c.name).order_by(annotators.c.id)))
            done: Counter = Counter()
            sentence_story = dict(conn.execute(select(sentences.c.id, sentences.c.story_id).where(*(
                [sentences.c.story_id == story_id] if story_id is not None else []))).all())
            for sentence_id, name, _label, _ in self._ratings(conn, story_id):
                done[sentence_story[sentence_id], name] += 1
        return [Progress(row.id, row.title, name, done[row.id, name], row.n) for row in story_rows for name in names]

    def label_counts(self, story_id: int | None = None, annotator: str | None = None,
                     final: bool = False) -> dict[str, int]:
        """Counts per label of current labels (one annotator's, or everyone's), or of final labels."""
        if final:
            counts = Counter(f.label for f in self.final_labels(story_id) if f.label is not None)
        else:
            with self._read() as conn:
                counts = Counter(row[2] for row in self._ratings(conn, story_id,
                                                                 None if annotator is None else _name(annotator)))
        return {name: counts.get(name, 0) for name in LABELS}

    # -- adjudication and final labels

    def adjudicate(self, sentence_id: int, reviewer: str, label: Any, note: str | None = None) -> Adjudication:
        """Set the final label of a sentence (None withdraws the adjudication). Appended, never overwritten."""
        name, label = _name(reviewer, "reviewer"), _label(label)
        with self.transaction() as conn:
            self._lock_sentence(conn, sentence_id)
            reviewer_id = self._annotator_id(conn, name)
            previous = conn.scalar(select(adjudications.c.label).where(adjudications.c.sentence_id == sentence_id)
                                   .order_by(adjudications.c.id.desc()).limit(1))
            now = utcnow()
            entry_id = conn.execute(insert(adjudications).values(
                sentence_id=sentence_id, reviewer_id=reviewer_id, label=label, previous=previous, note=note,
                created_at=now)).inserted_primary_key[0]
        return Adjudication(entry_id, sentence_id, name, label, previous, now, note)

    def adjudications(self, sentence_id: int | None = None) -> list[Adjudication]:
        query = (select(adjudications.c.id, adjudications.c.sentence_id, annotators.c.name, adjudications.c.label,
                        adjudications.c.previous, adjudications.c.created_at, adjudications.c.note)
                 .join(annotators, annotators.c.id == adjudications.c.reviewer_id).order_by(adjudications.c.id))
        if sentence_id is not None:
            query = query.where(adjudications.c.sentence_id == sentence_id)
        with self._read() as conn:
            return [Adjudication(*row) for row in conn.execute(query)]

    def final_labels(self, story_id: int | None = None) -> list[FinalLabel]:
        """One FinalLabel per sentence, in story order (see the module docstring for the rule)."""
        pred = self._latest_predictions()
        latest_adj = select(func.max(adjudications.c.id)).group_by(adjudications.c.sentence_id)
        query = (select(sentences.c.id, sentences.c.story_id, sentences.c.position, sentences.c.text,
                        pred.c.label, pred.c.confidence)
                 .outerjoin(pred, pred.c.sentence_id == sentences.c.id))
        adj_query = (select(adjudications.c.sentence_id, adjudications.c.label)
                     .where(adjudications.c.id.in_(latest_adj)))
        if story_id is not None:
            query = query.where(sentences.c.story_id == story_id)
            adj_query = adj_query.join(sentences, sentences.c.id == adjudications.c.sentence_id).where(
                sentences.c.story_id == story_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(sentences.c.story_id, sentences.c.position)).all()
            adjudicated = dict(conn.execute(adj_query).all())
            ratings: dict[int, dict[str, str]] = defaultdict(dict)
            newest: dict[int, tuple[int, str]] = {}
            for sentence_id, name, label, entry_id in self._ratings(conn, story_id):
                ratings[sentence_id][name] = label
                if sentence_id not in newest or entry_id > newest[sentence_id][0]:
                    newest[sentence_id] = (entry_id, label)
        out = []
        for sentence_id, sid, position, text, predicted, confidence in rows:
            labels = ratings.get(sentence_id, {})
            label, source = _final(adjudicated.get(sentence_id), labels, newest.get(sentence_id), predicted)
            out.append(FinalLabel(sentence_id, sid, position, text, label, source, dict(labels),
                                  adjudicated.get(sentence_id), predicted, confidence))
        return out

    def disagreements(self, story_id: int | None = None, unresolved: bool = False) -> list[FinalLabel]:
        """Sentences whose annotators chose different labels (``unresolved``: only those not adjudicated)."""
        return [f for f in self.final_labels(story_id) if f.disagreement and not (unresolved and f.adjudicated)]

    # -- files

    def import_file(self, source, name: str | None = None, **options) -> list[Story]:
        """Import a .txt/.xlsx/.csv/.jsonl file (a path, or bytes with ``name``) in one transaction; see
        emotag.store.imports.parse_file for the options."""
        from .imports import import_file
        return import_file(self, source, name, **options)

    def import_text(self, text: str, title: str | None = None, source: str | None = "paste") -> Story:
        from .imports import import_text
        return import_text(self, text, title=title, source=source)

    def export(self, fmt: str, story_ids: Sequence[int] | None = None, **options) -> str | bytes:
        """tts / csv / jsonl (text) or xlsx (bytes); see emotag.store.exports."""
        from .exports import export
        return export(self, fmt, story_ids, **options)

    # -- agreement

    def agreement(self, story_id: int | None = None) -> AgreementReport:
        """Cohen's kappa per annotator pair, Fleiss' kappa and Krippendorff's alpha over a story or all."""
        return agreement_report(self.ratings(story_id))

    def agreement_by_story(self) -> dict[int, AgreementReport]:
        by_story: dict[int, dict[int, dict[str, str]]] = defaultdict(dict)
        story_of = {s.id: s.story_id for s in self.sentences()}
        for sentence_id, labels in self.ratings().items():
            by_story[story_of[sentence_id]][sentence_id] = labels
        return {s.id: agreement_report(by_story.get(s.id, {})) for s in self.stories()}


def _final(adjudicated: str | None, labels: dict[str, str], newest: tuple[int, str] | None,
           predicted: str | None) -> tuple[str | None, str | None]:
    if adjudicated is not None:
        return adjudicated, "adjudicated"
    if len(labels) >= 2:
        (top, count), *rest = Counter(labels.values()).most_common()
        if not rest or rest[0][1] < count:
            return top, "majority"
    if newest is not None:
        return newest[1], "latest"
    if predicted is not None:
        return predicted, "model"
    return None, None


__all__ = ["Adjudication", "AgreementReport", "Annotation", "FinalLabel", "NotFound", "Progress", "QueueItem",
           "Sentence", "SentenceInput", "Store", "StoreError", "Story", "StoryInput", "display_url", "resolve_url"]
