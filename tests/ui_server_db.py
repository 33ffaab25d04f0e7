"""Start the real web app (``python app.py``) on a temporary annotation database, for the Annotate/Review tests.

Like tests/ui_server.py, but the subprocess gets ``EMOTAG_DB_URL=sqlite:///<tmp>/annotations.db`` (or any
environment and extra command-line arguments, e.g. ``--auth``), so tests never touch ./annotations.db.

    from tests.ui_server_db import db_server  # noqa: F401  (module-scoped fixture)

    def test_something(db_server):
        store = db_server.store()      # emotag.store.Store on the same database
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pytest

from tests.ui_server import BUNDLED, ROOT, STARTUP_TIMEOUT, Server, free_port


def _answers(url: str) -> bool:
    """The server answers (a 401/403 from a login-protected app counts)."""
    try:
        with urllib.request.urlopen(url + "/gradio_api/info", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@dataclass
class DbServer(Server):
    db_url: str = ""

    def store(self):
        from emotag.store import Store
        return Store(self.db_url)


def start_db_server(tmp: Path, db_url: str | None = None, args: Sequence[str] = (),
                    env: Mapping[str, str] | None = None, model: Path = BUNDLED) -> DbServer:
    """Launch app.py on a free port with its annotation database at ``db_url`` (default: a file in ``tmp``)."""
    db_url = db_url or f"sqlite:///{tmp / 'annotations.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = dict(os.environ)
    environ.update({
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_TEMP_DIR": str(tmp / "gradio-tmp"), "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1", "EMOTAG_DB_URL": db_url,
    })
    environ.pop("GRADIO_SERVER_PORT", None)
    environ.update(env or {})
    log = tmp / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--model", str(model), *args],
            cwd=tmp, env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = DbServer(url, process, log, db_url)
    atexit.register(server.stop)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{server.log_text()}")
        if _answers(url):
            return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"app.py did not answer on {url} within {STARTUP_TIMEOUT:.0f}s:\n{server.log_text()}")


def _no_proxy() -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    for key in ("NO_PROXY", "no_proxy"):  # the client must reach 127.0.0.1 directly
        os.environ[key] = ",".join(filter(None, [os.environ.get(key, ""), "127.0.0.1", "localhost"]))


@pytest.fixture(scope="module")
def db_server(tmp_path_factory):
    """The app on a fresh temporary SQLite database (one per test module)."""
    _no_proxy()
    server = start_db_server(tmp_path_factory.mktemp("ui_db_server"))
    try:
        yield server
    finally:
        server.stop()
