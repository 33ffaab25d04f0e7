"""Start the real web app (``python app.py --port N``) in a subprocess for the UI tests.

Import the fixture into a test module (``from tests.ui_server import app_server  # noqa: F401``); it is
module-scoped: one server per test module, killed when the module's tests are done.
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "emotag" / "bundled" / "default"  # the model the app serves by default
STARTUP_TIMEOUT = 180.0  # the first start on a fresh machine builds the e5-small cache (about a minute)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # its own process group: only what we started
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _answers(url: str, login_ok: bool = False) -> bool:
    """The server answers (with ``login_ok``, a 401/403 from a login-protected app counts)."""
    try:
        with urllib.request.urlopen(url + "/gradio_api/info", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        return login_ok and exc.code in (401, 403)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def start_server(tmp: Path, model: Path = BUNDLED, *, args: Sequence[str] = (),
                 env: Mapping[str, str | None] | None = None, cwd: Path = ROOT, login_ok: bool = False,
                 make: Callable[[str, subprocess.Popen, Path], Server] = Server) -> Server:
    """Launch app.py on a free port and wait until it answers.

    ``env`` is applied last over the defaults (a ``None`` value removes the variable), ``args`` are appended to the
    command line, ``login_ok`` counts a 401/403 as answering, ``make(url, process, log)`` builds the result.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = dict(os.environ)
    environ.update({
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_TEMP_DIR": str(tmp / "gradio-tmp"), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1", "EMOTAG_DB_URL": f"sqlite:///{tmp / 'annotations.db'}",
        "EMOTAG_MODELS_DIR": str(tmp / "models"),
    })
    environ.pop("GRADIO_SERVER_PORT", None)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    log = tmp / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--model", str(model), *args],
            cwd=cwd, env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = make(url, process, log)
    atexit.register(server.stop)  # also when pytest is interrupted before the fixture's teardown
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{server.log_text()}")
        if _answers(url, login_ok):
            return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"app.py did not answer on {url} within {STARTUP_TIMEOUT:.0f}s:\n{server.log_text()}")


def client_no_proxy() -> None:
    """Let this process (the test client) reach 127.0.0.1 directly."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    for key in ("NO_PROXY", "no_proxy"):  # the client must reach 127.0.0.1 directly
        os.environ[key] = ",".join(filter(None, [os.environ.get(key, ""), "127.0.0.1", "localhost"]))


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    client_no_proxy()
    server = start_server(tmp_path_factory.mktemp("ui_server"))
    try:
        yield server
    finally:
        server.stop()
