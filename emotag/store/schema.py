"""Tables of the annotation store and the versioned path that creates and migrates them.

The database records its version in ``schema_version`` (one row per applied step). ``migrate(engine)`` applies
the steps in ``MIGRATIONS`` that are newer than that, each in its own transaction and under a lock (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level advisory lock), so several processes starting at once on a
fresh database create it exactly once. A database newer than this code is refused rather than touched.

To change the schema later: append a ``(version, description, function)`` step; never edit an applied one.

The annotation tables are logs: rows are only ever inserted. A sentence's current label for an annotator is
the label of that annotator's latest entry for it; an undo is a new entry that restores the earlier label.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import (
    JSON, CheckConstraint, Column, DateTime, Engine, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    TypeDecorator, UniqueConstraint, insert, select, text,
)
from sqlalchemy.engine import Connection

from ..labels import LABELS

SCHEMA_VERSION = 1
ACTIONS = ("set", "undo", "import")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (stored as naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - defensive, SQLite returns datetime via the impl
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _label_check(column: str, nullable: bool = True) -> CheckConstraint:
    allowed = ", ".join(f"'{name}'" for name in LABELS)
    expr = f"{column} IN ({allowed})"
    return CheckConstraint(f"{column} IS NULL OR {expr}" if nullable else expr, name=column)


metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
})

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

stories = Table(
    "stories", metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(500), nullable=False),
    Column("source", String(1000)),  # where it came from: "paste", "tokki.txt", "book.xlsx#Sheet1", ...
    Column("text", Text),  # the original text when known; sentence offsets point into it
    Column("created_at", UTCDateTime, nullable=False),
)

sentences = Table(
    "sentences", metadata,
    Column("id", Integer, primary_key=True),
    Column("story_id", Integer, ForeignKey("stories.id"), nullable=False),
    Column("position", Integer, nullable=False),  # 0-based order in the story
    Column("text", Text, nullable=False),
    Column("start", Integer),  # character offsets into stories.text (None when imported without a text)
    Column("end", Integer),
    Column("paragraph", Integer),
    Column("hash", String(40), nullable=False),  # emotag.dataset.text_hash of the text
    UniqueConstraint("story_id", "position"),
)

predictions = Table(
    "predictions", metadata,
    Column("id", Integer, primary_key=True),
    Column("sentence_id", Integer, ForeignKey("sentences.id"), nullable=False),
    Column("model", String(200), nullable=False),
    Column("label", String(16), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    _label_check("label", nullable=False),
    Index(None, "sentence_id", "id"),
    Index(None, "confidence"),
)

annotators = Table(
    "annotators", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# Append-only: who set which label on which sentence, when, and the label it replaced.
annotations = Table(
    "annotations", metadata,
    Column("id", Integer, primary_key=True),
    Column("sentence_id", Integer, ForeignKey("sentences.id"), nullable=False),
    Column("annotator_id", Integer, ForeignKey("annotators.id"), nullable=False),
    Column("label", String(16)),  # None: the annotator's label was cleared (or an undo back to no label)
    Column("previous", String(16)),  # the annotator's label for the sentence just before this entry
    Column("action", String(8), nullable=False),
    Column("undoes", Integer, ForeignKey("annotations.id")),  # for action 'undo': the entry it takes back
    Column("key", String(100), unique=True),  # optional client key: a save retried with the same key is stored once
    Column("created_at", UTCDateTime, nullable=False),
    _label_check("label"),
    _label_check("previous"),
    CheckConstraint("action IN ('set', 'undo', 'import')", name="action"),
    Index(None, "sentence_id", "annotator_id", "id"),
    Index(None, "annotator_id", "id"),
    Index(None, "undoes"),
)

# Append-only too: a reviewer's final (adjudicated) label for a sentence; the latest entry wins.
adjudications = Table(
    "adjudications", metadata,
    Column("id", Integer, primary_key=True),
    Column("sentence_id", Integer, ForeignKey("sentences.id"), nullable=False),
    Column("reviewer_id", Integer, ForeignKey("annotators.id"), nullable=False),
    Column("label", String(16)),  # None: the adjudication was withdrawn
    Column("previous", String(16)),
    Column("note", Text),
    Column("created_at", UTCDateTime, nullable=False),
    _label_check("label"),
    _label_check("previous"),
    Index(None, "sentence_id", "id"),
)

TABLES_V1 = [stories, sentences, predictions, annotators, annotations, adjudications]


def _create_v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=TABLES_V1)


# (version, description, step). Steps run in order, each in a transaction with its version row.
Migration = tuple[int, str, Callable[[Connection], None]]
MIGRATIONS: list[Migration] = [
    (1, "stories, sentences, predictions, annotators, annotation and adjudication logs", _create_v1),
]


class SchemaError(RuntimeError):
    """The database cannot be used by this version of emotag (e.g. it was written by a newer one)."""


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "schema_version"):
        return 0
    return conn.scalar(select(schema_version.c.version).order_by(schema_version.c.version.desc()).limit(1)) or 0


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7263514)"))  # any fixed number: "emotag migrations"


def migrate(engine: Engine, target: int | None = None, migrations: list[Migration] | None = None) -> int:
    """Bring the database up to ``target`` (default: the newest step); returns the version it is at."""
    steps = sorted(MIGRATIONS if migrations is None else migrations, key=lambda m: m[0])
    newest = steps[-1][0] if steps else 0
    target = newest if target is None else target
    with engine.connect().execution_options(emotag_write=True) as conn:
        with conn.begin():
            _lock(conn)
            schema_version.create(conn, checkfirst=True)
            version = current_version(conn)
        if version > newest:
            raise SchemaError(
                f"the database is at schema version {version}, newer than this emotag knows ({newest}): "
                "upgrade emotag to use it")
        for number, description, step in steps:
            if number > target:
                break
            with conn.begin():
                _lock(conn)
                if current_version(conn) >= number:  # another process got here first
                    continue
                step(conn)
                conn.execute(insert(schema_version).values(version=number, description=description,
                                                           applied_at=utcnow()))
        with conn.begin():
            return current_version(conn)
