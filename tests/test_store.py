"""The annotation store on SQLite and PostgreSQL: round trips, the append-only log and undo, queues, progress,
final labels, adjudication, migrations."""
from __future__ import annotations

import sqlite3
from datetime import timezone

import pytest
from sqlalchemy import func, select, text

from emotag.store import (
    Annotation, NotFound, SentenceInput, Store, StoreError, StoryInput, display_url, resolve_url, schema,
)
from emotag.textio import InputError
from tests.pg import db_url  # noqa: F401  (fixture: each test runs on SQLite and PostgreSQL)

STORY = ["토끼는 숲속에 살았어요.", "토끼는 너무 기뻤어요!", "친구가 떠나서 슬펐어요.", "왜 내 당근을 먹었어!"]


@pytest.fixture
def store(db_url):  # noqa: F811
    s = Store(db_url)
    yield s
    s.close()


def _count(store: Store, table) -> int:
    with store.transaction(write=False) as conn:
        return conn.scalar(select(func.count()).select_from(table))


def test_round_trip(db_url):  # noqa: F811
    body = "토끼는 숲속에 살았어요. 토끼는 너무 기뻤어요!"
    with Store(db_url) as s:
        story = s.add_story("토끼 이야기", text=body, source="paste",
                            sentences=[SentenceInput("토끼는 숲속에 살았어요.", 0, 13, 0),
                                       SentenceInput("토끼는 너무 기뻤어요!", 14, 26, 0)])
        ids = [x.id for x in s.sentences(story.id)]
        s.save_predictions("tiny", [(ids[0], {"label": "neutral", "confidence": 0.7,
                                               "scores": {"neutral": 0.7, "happy": 0.1, "sad": 0.1, "angry": 0.1}})])
        saved = s.annotate(ids[1], "민아", "기쁨")
    with Store(db_url) as s:  # a new connection sees everything
        (got,) = s.stories()
        assert (got.id, got.title, got.source, got.text, got.sentences) == (story.id, "토끼 이야기", "paste", body, 2)
        assert got.created_at.tzinfo == timezone.utc
        sents = s.sentences(story.id)
        assert [(x.position, x.text, x.start, x.end, x.paragraph) for x in sents] == [
            (0, "토끼는 숲속에 살았어요.", 0, 13, 0), (1, "토끼는 너무 기뻤어요!", 14, 26, 0)]
        assert all(body[x.start:x.end] == x.text for x in sents)
        assert s.sentence(ids[1]) == sents[1]
        assert s.predictions(story.id) == {ids[0]: {"model": "tiny", "label": "neutral", "confidence": 0.7}}
        assert s.history(ids[1]) == [saved]
        assert saved.label == "happy" and saved.label_id == 1 and saved.annotator == "민아"
        assert s.current_labels("민아") == {ids[1]: "happy"}
        assert s.annotators() == ["민아"]
        assert s.entry(saved.id) == saved
        with pytest.raises(NotFound):
            s.story(story.id + 100)
        with pytest.raises(NotFound):
            s.sentence(ids[1] + 100)


def test_history_and_undo(store):
    story = store.add_story("s", sentences=STORY)
    sid = store.sentences(story.id)[0].id
    a = store.annotate(sid, "mina", "happy")
    b = store.annotate(sid, "mina", "sad")
    other = store.annotate(sid, "jun", "angry")  # another annotator's labels are independent
    assert (a.previous, b.previous) == (None, "happy")
    u1 = store.undo(sid, "mina")
    assert (u1.action, u1.label, u1.previous, u1.undoes) == ("undo", "happy", "sad", b.id)
    assert store.current_label(sid, "mina") == "happy"
    c = store.annotate(sid, "mina", 3)  # ids work too
    assert (c.label, c.previous) == ("angry", "happy")
    u2 = store.undo(sid, "mina")  # takes back c
    assert (u2.label, u2.undoes) == ("happy", c.id)
    u3 = store.undo(sid, "mina")  # then a (b is already undone)
    assert (u3.label, u3.previous, u3.undoes) == (None, "happy", a.id)
    assert store.current_label(sid, "mina") is None
    assert store.undo(sid, "mina") is None  # nothing left to undo: nothing written
    assert store.undo(sid, "nobody") is None
    assert store.current_label(sid, "jun") == "angry"
    history = store.history(sid, "mina")
    assert [(e.action, e.label, e.previous) for e in history] == [
        ("set", "happy", None), ("set", "sad", "happy"), ("undo", "happy", "sad"), ("set", "angry", "happy"),
        ("undo", "happy", "angry"), ("undo", None, "happy")]
    assert [e.id for e in history] == sorted(e.id for e in history)
    assert _count(store, schema.annotations) == 7  # every save and undo is a row; nothing deleted
    assert store.history(sid) == sorted(history + [other], key=lambda e: e.id)
    assert store.history(story_id=story.id, annotator="jun") == [other]
    # clearing is a save too, and undoable
    store.annotate(sid, "jun", None)
    assert store.current_label(sid, "jun") is None
    store.undo(sid, "jun")
    assert store.current_label(sid, "jun") == "angry"


def test_bad_saves_write_nothing(store):
    story = store.add_story("s", sentences=STORY)
    sid = store.sentences(story.id)[0].id
    with pytest.raises(InputError, match="unknown emotion label 'joyful'"):
        store.annotate(sid, "mina", "joyful")
    with pytest.raises(InputError, match="annotator name is empty"):
        store.annotate(sid, "  ", "happy")
    with pytest.raises(NotFound, match="no sentence with id"):
        store.annotate(sid + 1000, "mina", "happy")
    with pytest.raises(NotFound):
        store.adjudicate(sid + 1000, "boss", "happy")
    assert _count(store, schema.annotations) == 0
    assert _count(store, schema.annotators) == 0


def test_save_key_makes_retries_idempotent(store):
    story = store.add_story("s", sentences=STORY)
    s0, s1 = [x.id for x in store.sentences(story.id)][:2]
    first = store.annotate(s0, "mina", "happy", key="click-1")
    again = store.annotate(s0, "mina", "happy", key="click-1")
    assert again.id == first.id and again.key == "click-1"
    assert len(store.history(s0)) == 1
    with pytest.raises(InputError, match="already used"):
        store.annotate(s1, "mina", "sad", key="click-1")
    u = store.undo(s0, "mina", key="undo-1")
    assert store.undo(s0, "mina", key="undo-1").id == u.id
    assert store.current_label(s0, "mina") is None


def test_queue_modes(store):
    a = store.add_story("a", sentences=STORY)
    b = store.add_story("b", sentences=["곰이 잤어요.", "곰이 울었어요."])
    sa, sb = store.sentences(a.id), store.sentences(b.id)
    conf = {sa[0].id: 0.9, sa[1].id: 0.4, sa[2].id: 0.6, sb[0].id: 0.3}  # sa[3], sb[1]: no prediction
    store.save_predictions("m", [(i, {"label": "neutral", "confidence": c, "scores": {"neutral": c}})
                                 for i, c in conf.items()])
    story_order = [x.sentence_id for x in store.queue("mina")]
    assert story_order == [x.id for x in sa + sb]
    uncertain = [x.sentence_id for x in store.queue("mina", mode="uncertain")]
    assert uncertain == [sb[0].id, sa[1].id, sa[2].id, sa[0].id, sa[3].id, sb[1].id]
    store.annotate(sb[0].id, "mina", "sad")
    store.annotate(sa[0].id, "mina", "sad")
    store.annotate(sa[0].id, "mina", None)  # cleared: back in the queue
    head = store.queue("mina", mode="uncertain", limit=2)
    assert [x.sentence_id for x in head] == [sa[1].id, sa[2].id]
    assert (head[0].story_title, head[0].predicted, head[0].confidence, head[0].text) == ("a", "neutral", 0.4,
                                                                                          STORY[1])
    assert [x.sentence_id for x in store.queue("mina", story_id=b.id)] == [sb[1].id]
    assert store.next_sentence("jun", "uncertain").sentence_id == sb[0].id  # others' labels don't count
    assert store.next_sentence("mina", story_id=b.id).sentence_id == sb[1].id
    store.annotate(sb[1].id, "mina", "sad")
    assert store.next_sentence("mina", story_id=b.id) is None
    with pytest.raises(InputError, match="queue mode"):
        store.queue("mina", mode="random")


def test_progress_and_label_counts(store):
    a = store.add_story("a", sentences=STORY)
    b = store.add_story("b", sentences=["곰이 잤어요.", "곰이 울었어요."])
    sa, sb = store.sentences(a.id), store.sentences(b.id)
    store.annotate(sa[0].id, "mina", "happy")
    store.annotate(sa[1].id, "mina", "happy")
    store.annotate(sa[2].id, "mina", "sad")
    store.annotate(sa[2].id, "mina", None)
    store.annotate(sb[0].id, "jun", "angry")
    store.annotate(sa[0].id, "jun", "neutral")
    rows = {(p.story_id, p.annotator): (p.done, p.total) for p in store.progress()}
    assert rows == {(a.id, "mina"): (2, 4), (b.id, "mina"): (0, 2), (a.id, "jun"): (1, 4), (b.id, "jun"): (1, 2)}
    (p,) = store.progress(story_id=b.id, annotator="jun")
    assert (p.title, p.done, p.remaining, p.fraction) == ("b", 1, 1, 0.5)
    assert store.label_counts() == {"neutral": 1, "happy": 2, "sad": 0, "angry": 1}
    assert store.label_counts(annotator="mina") == {"neutral": 0, "happy": 2, "sad": 0, "angry": 0}
    assert store.label_counts(story_id=b.id) == {"neutral": 0, "happy": 0, "sad": 0, "angry": 1}
    # final: sa[0] is a tie between happy (mina) and neutral (jun, later) -> latest = neutral
    assert store.label_counts(final=True) == {"neutral": 1, "happy": 1, "sad": 0, "angry": 1}


def test_final_label_sources(store):
    story = store.add_story("s", sentences=STORY + ["마지막 문장이에요."])
    s = [x.id for x in store.sentences(story.id)]
    store.save_predictions("m", [(i, {"label": "neutral", "confidence": 0.5, "scores": {"neutral": 0.5}})
                                 for i in s[:4]])
    for who, label in (("a", "happy"), ("b", "happy"), ("c", "sad")):  # s0: 2 of 3 -> majority
        store.annotate(s[0], who, label)
    store.annotate(s[1], "a", "happy")  # s1: tie -> the latest annotation (b's sad)
    store.annotate(s[1], "b", "sad")
    store.annotate(s[2], "c", "angry")  # s2: one annotator -> latest
    store.annotate(s[3], "a", "sad")  # s3: adjudicated over a 2-0 majority
    store.annotate(s[3], "b", "sad")
    adj = store.adjudicate(s[3], "boss", "분노", note="the next line shouts")
    finals = store.final_labels(story.id)
    assert [(f.label, f.source) for f in finals] == [
        ("happy", "majority"), ("sad", "latest"), ("angry", "latest"), ("angry", "adjudicated"), (None, None)]
    f0 = finals[0]
    assert (f0.annotators, round(f0.agreement, 4), f0.labels, f0.predicted, f0.confidence, f0.label_id) == (
        3, 0.6667, {"a": "happy", "b": "happy", "c": "sad"}, "neutral", 0.5, 1)
    assert finals[2].agreement is None  # one annotator
    assert finals[3].adjudicated == "angry" and finals[3].agreement == 1.0
    assert (adj.reviewer, adj.label, adj.previous, adj.note) == ("boss", "angry", None, "the next line shouts")
    # the model fills in where nobody labelled
    store.annotate(s[2], "c", None)
    assert [(f.label, f.source) for f in store.final_labels(story.id)][2] == ("neutral", "model")
    # withdrawing the adjudication falls back to the majority; both adjudications stay in the log
    store.adjudicate(s[3], "boss", None)
    assert store.final_labels(story.id)[3].source == "majority"
    assert [(x.label, x.previous) for x in store.adjudications(s[3])] == [("angry", None), (None, "angry")]


def test_disagreements_and_adjudication(store):
    story = store.add_story("s", sentences=STORY)
    s = [x.id for x in store.sentences(story.id)]
    store.annotate(s[0], "a", "happy")
    store.annotate(s[0], "b", "sad")
    store.annotate(s[1], "a", "sad")
    store.annotate(s[1], "b", "sad")
    store.annotate(s[2], "a", "angry")
    store.annotate(s[2], "b", "neutral")
    assert [d.sentence_id for d in store.disagreements()] == [s[0], s[2]]
    store.adjudicate(s[0], "reviewer", "happy")
    assert [d.sentence_id for d in store.disagreements(unresolved=True)] == [s[2]]
    assert [d.sentence_id for d in store.disagreements(story.id)] == [s[0], s[2]]
    d0 = store.disagreements()[0]
    assert (d0.labels, d0.label, d0.source) == ({"a": "happy", "b": "sad"}, "happy", "adjudicated")


def test_add_stories_is_one_transaction(store, monkeypatch):
    import emotag.store as store_module

    real = store_module.text_hash

    def exploding(value):
        if value == "BOOM":
            raise RuntimeError("disk on fire")
        return real(value)

    monkeypatch.setattr(store_module, "text_hash", exploding)
    good = StoryInput("good", [SentenceInput("좋은 문장이에요.", labels={"kaist": "happy"})])
    bad = StoryInput("bad", [SentenceInput("괜찮아요."), SentenceInput("BOOM")])
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.add_stories([good, bad])
    assert store.stories() == [] and _count(store, schema.sentences) == 0 and _count(store, schema.annotations) == 0
    with pytest.raises(InputError, match="unknown emotion label"):
        store.add_stories([good, StoryInput("x", [SentenceInput("문장", labels={"kaist": "scared"})])])
    with pytest.raises(InputError, match="sentence 2 is empty"):
        store.add_story("x", sentences=["문장", "  "])
    with pytest.raises(InputError, match="3 labels for 2 sentences"):
        store.add_story("x", sentences=["문장", "문장"], labels=[1, 2, 3])
    assert store.stories() == []
    created = store.add_stories([good])
    assert created[0].sentences == 1 and store.history()[0].action == "import"


def test_add_predictions_with_a_model(store):
    from emotag.predictor import Predictor
    from tests.helpers import tiny_classical

    story = store.add_story("s", sentences=STORY)
    predictor = Predictor(tiny_classical())
    assert store.add_predictions(story.id, predictor=predictor) == 4
    assert store.add_predictions(story.id, predictor=predictor) == 4  # replaces, not duplicates
    assert _count(store, schema.predictions) == 4
    preds = store.predictions(story.id)
    assert {p["model"] for p in preds.values()} == {"tiny-classical"}
    assert all(0 < p["confidence"] <= 1 for p in preds.values())
    with pytest.raises(NotFound):
        store.add_predictions(story.id + 100, predictor=predictor)


def test_schema_versioning(db_url):  # noqa: F811
    with Store(db_url) as s:
        assert s.version == schema.SCHEMA_VERSION
        with s.transaction(write=False) as conn:
            rows = conn.execute(select(schema.schema_version.c.version)).scalars().all()
        assert rows == [1]
        story = s.add_story("s", sentences=STORY)
    # an added step runs once, keeps the data, and is recorded
    ran = []

    def v2(conn):
        ran.append(1)
        conn.execute(text("CREATE TABLE extra (id INTEGER PRIMARY KEY)"))

    steps = schema.MIGRATIONS + [(2, "extra table", v2)]
    with Store(db_url, migrate=False) as s:
        assert schema.migrate(s.engine, migrations=steps) == 2
        assert schema.migrate(s.engine, migrations=steps) == 2
        assert ran == [1] and s.story(story.id).sentences == 4
    # a database newer than this code is refused, untouched
    with pytest.raises(StoreError, match="schema version 2, newer than this emotag knows"):
        Store(db_url)


def test_sqlite_settings_and_default_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMOTAG_DB_URL", raising=False)
    with Store() as s:
        assert s.url == f"sqlite:///{tmp_path / 'annotations.db'}"
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (tmp_path / "annotations.db").exists()
    with sqlite3.connect(tmp_path / "annotations.db") as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    monkeypatch.setenv("EMOTAG_DB_URL", f"sqlite:///{tmp_path / 'other.db'}")
    with Store() as s:
        assert s.url.endswith("other.db")
    assert Store(str(tmp_path / "sub" / "x.db")).url == f"sqlite:///{tmp_path / 'sub' / 'x.db'}"


def test_urls():
    assert resolve_url("postgresql://me:secret@db/emotag") == "postgresql+psycopg://me:secret@db/emotag"
    assert resolve_url("postgresql+psycopg://me@db/x") == "postgresql+psycopg://me@db/x"
    assert display_url("postgresql+psycopg://me:secret@db/emotag") == "postgresql+psycopg://me:***@db/emotag"
    with pytest.raises(StoreError, match="no database driver"):
        Store("nonsense://somewhere/x")
    with pytest.raises(StoreError, match="cannot open"):
        Store("sqlite:////proc/no/such/folder/x.db")
    with Store("sqlite://") as s:  # in memory, for quick experiments
        story = s.add_story("s", sentences=["문장이에요."])
        assert isinstance(s.annotate(s.sentences(story.id)[0].id, "a", 0), Annotation)
