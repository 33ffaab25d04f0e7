"""Start the emotag web UI: ``python app.py [--host 127.0.0.1] [--port 7860] [--model FOLDER] [--share]
[--db URL] [--auth USER:PASS ...]``.

Port: --port, else $GRADIO_SERVER_PORT, else 7860. Host: --host, else $GRADIO_SERVER_NAME, else 127.0.0.1.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve the emotag web UI (Gradio).")
    parser.add_argument("--host", default=None,
                        help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--model", default=None,
                        help="model folder to serve (default: $EMOTAG_MODEL or the bundled offline model)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("--db", default=None, metavar="URL",
                        help="annotation database: SQLAlchemy URL or SQLite file (default: $EMOTAG_DB_URL or "
                             "annotations.db here; created on first run)")
    parser.add_argument("--auth", action="append", default=None, metavar="USER:PASS",
                        help="require a login (repeat for several users); the annotator is then the logged-in user")
    return parser


def parse_auth(values: list[str] | None) -> list[tuple[str, str]] | None:
    """``["mina:pw", ...]`` -> ``[("mina", "pw"), ...]`` (None without --auth)."""
    if not values:
        return None
    pairs = []
    for value in values:
        user, sep, password = value.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"--auth {value!r}: expected USER:PASSWORD")
        pairs.append((user.strip(), password))
    return pairs


def resolve_address(args: argparse.Namespace, environ=os.environ) -> tuple[str, int]:
    """(host, port): the flags win, then $GRADIO_SERVER_NAME / $GRADIO_SERVER_PORT, then 127.0.0.1:7860."""
    host = args.host or environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    if args.port is not None:
        return host, args.port
    try:
        return host, int(environ.get("GRADIO_SERVER_PORT") or 7860)
    except ValueError:
        raise ValueError(f"GRADIO_SERVER_PORT={environ['GRADIO_SERVER_PORT']!r} is not a port number") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        host, port = resolve_address(args)
        auth = parse_auth(args.auth)
    except ValueError as exc:
        print(f"app.py: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.db:
        os.environ["EMOTAG_DB_URL"] = args.db

    from emotag import predictor
    from emotag.models import ModelLoadError
    from emotag.models.serving import load_for_serving
    from emotag.splitter import SplitterError, split_sentences

    started = time.perf_counter()
    try:
        if args.model:
            predictor.set_predictor(predictor.Predictor(load_for_serving(args.model)))
        predictor.get_predictor()
    except ModelLoadError as exc:
        print(f"app.py: {exc}", file=sys.stderr)
        return 2
    warm_error: list[Exception] = []

    def warm_up() -> None:  # the splitter's first call takes seconds (kss/mecab): pay it now, not on a request
        try:
            split_sentences("토끼가 깡충깡충 뛰었어요. \"와, 정말 신난다!\"")
        except SplitterError as exc:
            warm_error.append(exc)

    warming = threading.Thread(target=warm_up, name="splitter-warm-up", daemon=True)
    warming.start()  # overlaps with importing gradio and building the UI

    from emotag.store import StoreError, display_url
    from emotag.ui import build_app, launch
    from emotag.ui.annotate_tab import get_store

    try:
        store = get_store()  # the annotation database, created on first run
    except StoreError as exc:
        print(f"app.py: {exc}", file=sys.stderr)
        return 2
    print(f"app.py: annotations in {display_url(store.url)}", file=sys.stderr)
    app = build_app()
    warming.join()
    if warm_error:
        print(f"app.py: warning: {warm_error[0]}", file=sys.stderr)
    print(f"app.py: model, sentence splitter and UI ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    launch(app, host=host, port=port, share=args.share, **({"auth": auth} if auth else {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
