"""Start the real web app (``python app.py``) on a temporary annotation database, for the Annotate/Review tests.

Like tests/ui_server.py, but the subprocess gets ``EMOTAG_DB_URL=sqlite:///<tmp>/annotations.db`` (or any
environment and extra command-line arguments, e.g. ``--auth``), so tests never touch ./annotations.db.

    from tests.ui_server_db import db_server  # noqa: F401  (module-scoped fixture)

    def test_something(db_server):
        store = db_server.store()      # emotag.store.Store on the same database
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pytest

from tests.ui_server import BUNDLED, Server, client_no_proxy, start_server


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
    # EMOTAG_MODELS_DIR as this process has it (start_server would point it into tmp), then the caller's env
    environ = {"EMOTAG_DB_URL": db_url, "EMOTAG_MODELS_DIR": os.environ.get("EMOTAG_MODELS_DIR"), **(env or {})}
    return start_server(tmp, model, args=args, env=environ, cwd=tmp, login_ok=True,
                        make=lambda url, process, log: DbServer(url, process, log, db_url))


_no_proxy = client_no_proxy  # the name test modules import


@pytest.fixture(scope="module")
def db_server(tmp_path_factory):
    """The app on a fresh temporary SQLite database (one per test module)."""
    _no_proxy()
    server = start_db_server(tmp_path_factory.mktemp("ui_db_server"))
    try:
        yield server
    finally:
        server.stop()
