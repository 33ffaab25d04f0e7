"""PostgreSQL for the store tests.

``pg_server_url()`` gives a superuser URL of a PostgreSQL server: $EMOTAG_TEST_PG_URL when set (CI sets it with
.ci/postgres.sh), else a throwaway cluster started once per test session from Debian's binaries
(/usr/lib/postgresql/*/bin) in a temporary folder on 127.0.0.1 and a free port, as the ``postgres`` user when
we are root (PostgreSQL refuses to run as root). Without binaries or the psycopg driver the PostgreSQL tests
skip, saying why. Each test gets its own database (``fresh_database``), dropped afterwards.

The ``db_url`` fixture runs a test on SQLite and on PostgreSQL; import it into a test module to use it.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest

ENV = "EMOTAG_TEST_PG_URL"
_state: dict[str, str] = {}


class Unavailable(Exception):
    pass


def _bindir() -> str | None:
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    newest = max(found, key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/")[3])] or [0])
    return os.path.dirname(newest)


def _as(user: str | None, cmd: list[str]) -> list[str]:
    if user is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *cmd]
    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(cmd)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cluster() -> str:
    bindir = _bindir()
    if bindir is None:
        raise Unavailable("no PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            user = name
            break
        if user is None:
            raise Unavailable("running as root and there is no 'postgres' user to run PostgreSQL as")
    root = tempfile.mkdtemp(prefix="emotag-pg-")
    data, sock, log = os.path.join(root, "data"), os.path.join(root, "sock"), os.path.join(root, "log")
    os.mkdir(sock)
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()

    def run(cmd: list[str]) -> None:
        result = subprocess.run(_as(user, cmd), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise Unavailable(f"{os.path.basename(cmd[0])} failed: {' / '.join(tail)}")

    try:
        run([f"{bindir}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
             "--no-sync"])
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        run([f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"])
    except (Unavailable, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise Unavailable(f"could not start a throwaway PostgreSQL: {exc}") from None

    def stop() -> None:
        subprocess.run(_as(user, [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def _check(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                         dbname=u.database or "postgres", connect_timeout=10):
        pass


def pg_server_url() -> str:
    """The server's URL, or skip the calling test with the reason there is none."""
    if "url" in _state:
        return _state["url"]
    if "skip" in _state:
        pytest.skip(_state["skip"])
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _state["skip"] = "PostgreSQL tests skipped: the psycopg driver is not installed (pip install 'psycopg[binary]')"
        pytest.skip(_state["skip"])
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            _check(env)
        except Exception as exc:  # noqa: BLE001 - any failure: say which URL and why
            pytest.fail(f"${ENV} is set but the server does not answer: {exc}")
        _state["url"] = env
        return env
    try:
        _state["url"] = _start_cluster()
    except Unavailable as exc:
        _state["skip"] = f"PostgreSQL tests skipped: {exc}"
        pytest.skip(_state["skip"])
    return _state["url"]


def _admin(url: str, sql: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                         dbname=u.database or "postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def fresh_database(server_url: str) -> str:
    """Create an empty database; returns its URL (driver psycopg)."""
    from sqlalchemy.engine import make_url

    name = f"emotag_test_{uuid.uuid4().hex[:12]}"
    try:  # FILE_COPY (PostgreSQL 15+) is much faster for an empty template
        _admin(server_url, f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
    except Exception:  # noqa: BLE001 - older servers
        _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    try:
        _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - cleanup only
        pass


@pytest.fixture
def pg_url():
    server = pg_server_url()
    url = fresh_database(server)
    yield url
    drop_database(server, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'annotations.db'}"
        return
    server = pg_server_url()
    url = fresh_database(server)
    yield url
    drop_database(server, url)
