"""Many writers at once, and a writer killed mid-save: no acknowledged save is lost, none is duplicated, and the
log stays consistent (each entry's ``previous`` is the label of the entry before it for that sentence and
annotator)."""
from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from emotag.labels import LABELS
from emotag.store import Store, schema
from tests.pg import db_url  # noqa: F401  (fixture: SQLite and PostgreSQL)

WORKERS = 8
SAVES = 200
ROOT = Path(__file__).resolve().parent.parent


def _setup(url: str) -> list[int]:
    with Store(url) as s:
        ids = []
        for title in ("하나", "둘"):
            story = s.add_story(title, sentences=[f"{title} 이야기의 문장 {i}이에요." for i in range(6)])
            ids += [x.id for x in s.sentences(story.id)]
    return ids


def _save_loop(url: str, worker: int, sentence_ids: list[int], out: list[int] | None = None,
               path: str | None = None) -> None:
    """SAVES saves by one worker; workers share annotators in pairs, so two writers race on the same
    (sentence, annotator) and every writer races with the rest on the same sentences."""
    rng = random.Random(worker)
    annotator = f"annotator-{worker // 2}"
    store = Store(url)
    try:
        with open(path or os.devnull, "w") as f:
            for i in range(SAVES):
                sid = sentence_ids[rng.randrange(len(sentence_ids))]
                if i % 10 == 9:
                    entry = store.undo(sid, annotator)
                    if entry is None:
                        entry = store.annotate(sid, annotator, LABELS[i % 4])
                else:
                    entry = store.annotate(sid, annotator, LABELS[rng.randrange(4)])
                if out is not None:
                    out.append(entry.id)
                f.write(f"{entry.id}\n")
                f.flush()
    finally:
        store.close()


def _check_log(url: str, acknowledged: list[int]) -> list[int]:
    """Every acknowledged id is stored exactly once, and each (sentence, annotator) chain is consistent."""
    with Store(url) as s:
        with s.transaction(write=False) as conn:
            rows = conn.execute(select(schema.annotations.c.id, schema.annotations.c.sentence_id,
                                       schema.annotations.c.annotator_id, schema.annotations.c.label,
                                       schema.annotations.c.previous, schema.annotations.c.action,
                                       schema.annotations.c.undoes)
                                .order_by(schema.annotations.c.id)).all()
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids))
    missing = set(acknowledged) - set(ids)
    assert not missing, f"acknowledged saves lost: {sorted(missing)[:10]}"
    chains = defaultdict(list)
    for r in rows:
        chains[r.sentence_id, r.annotator_id].append(r)
    for chain in chains.values():
        label = None
        for r in chain:
            assert r.previous == label, f"entry {r.id} replaced {r.previous!r} but the label was {label!r}"
            label = r.label
            if r.action == "undo":
                target = next(x for x in chain if x.id == r.undoes)
                assert r.label == target.previous and target.id < r.id
    undone = [r.undoes for r in rows if r.undoes is not None]
    assert len(undone) == len(set(undone)), "an entry was undone twice"
    return ids


def test_threads_lose_and_duplicate_nothing(db_url):  # noqa: F811
    sentence_ids = _setup(db_url)
    outs = [[] for _ in range(WORKERS)]
    errors = []

    def run(i):
        try:
            _save_loop(db_url, i, sentence_ids, out=outs[i])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    acknowledged = [i for out in outs for i in out]
    assert len(acknowledged) == WORKERS * SAVES == len(set(acknowledged))
    assert sorted(_check_log(db_url, acknowledged)) == sorted(acknowledged)


def test_processes_lose_and_duplicate_nothing(tmp_path):
    # SQLite only: separate processes contend on the file locks. (PostgreSQL sees the threads above as separate
    # connections already, which is all a process would add.)
    url = f"sqlite:///{tmp_path / 'annotations.db'}"
    sentence_ids = _setup(url)
    ctx = multiprocessing.get_context("fork")  # the children inherit the imported modules: fast start
    paths = [str(tmp_path / f"worker{i}.txt") for i in range(WORKERS)]
    procs = [ctx.Process(target=_save_loop, args=(url, i, sentence_ids, None, paths[i])) for i in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    acknowledged = [int(x) for path in paths for x in Path(path).read_text().split()]
    assert len(acknowledged) == WORKERS * SAVES == len(set(acknowledged))
    assert sorted(_check_log(url, acknowledged)) == sorted(acknowledged)


CHILD = textwrap.dedent("""
    import random, sys
    from emotag.labels import LABELS
    from emotag.store import Store

    url, ids = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
    store = Store(url)
    rng = random.Random()
    print("ready", flush=True)
    while True:
        sid = rng.choice(ids)
        if rng.random() < 0.1:
            entry = store.undo(sid, "killed")
        else:
            entry = store.annotate(sid, "killed", rng.choice(LABELS))
        if entry is not None:
            print(entry.id, flush=True)  # printed only once committed: an acknowledged save
""")


def test_sigkill_mid_save_keeps_every_acknowledged_save(db_url):  # noqa: F811
    sentence_ids = _setup(db_url)
    acknowledged: list[int] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for _ in range(2):  # kill it twice: recovery, then more saves, then another kill
        child = subprocess.Popen([sys.executable, "-c", CHILD, db_url, ",".join(map(str, sentence_ids))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            wanted = 60 + random.randrange(60)
            got = 0
            deadline = time.monotonic() + 60
            while got < wanted and time.monotonic() < deadline:
                line = child.stdout.readline()
                assert line, child.stderr.read()
                acknowledged.append(int(line))
                got += 1
            time.sleep(random.random() * 0.02)  # land somewhere inside the next save
            os.kill(child.pid, signal.SIGKILL)
            rest = child.stdout.read()  # what it acknowledged before dying
            acknowledged += [int(x) for x in rest.split()]
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        assert got >= wanted
        ids = _check_log(db_url, acknowledged)
        assert set(acknowledged) <= set(ids)
        if make_url(db_url).get_backend_name() == "sqlite":
            with sqlite3.connect(make_url(db_url).database) as raw:
                assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        with Store(db_url) as s:  # still usable: the next save continues the chain
            s.annotate(sentence_ids[0], "killed", "happy")
    assert len(acknowledged) >= 120


def test_many_opening_a_fresh_database_at_once_migrate_it_once(db_url):  # noqa: F811
    errors, versions = [], []

    def open_it():
        try:
            with Store(db_url) as s:
                versions.append(s.version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert versions == [schema.SCHEMA_VERSION] * 6
    with Store(db_url) as s, s.transaction(write=False) as conn:
        assert conn.execute(select(schema.schema_version.c.version)).scalars().all() == [1]
