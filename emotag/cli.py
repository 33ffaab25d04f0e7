"""Command line: ``python -m emotag tag|predict ...``. Errors are one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import sys

from . import predictor
from .formats import DEFAULT_SPEAKER, DEFAULT_WAV, FORMATS, render
from .models import ModelLoadError
from .models.serving import load_for_serving
from .splitter import SplitterError
from .textio import InputError, decode_bytes, read_text_file


def _read(source: str) -> str:
    if source == "-":
        return decode_bytes(sys.stdin.buffer.read(), name="standard input")
    return read_text_file(source)


def _use_model(path: str | None) -> None:
    if path:
        predictor.set_predictor(predictor.Predictor(load_for_serving(path)))


def cmd_tag(args: argparse.Namespace) -> int:
    _use_model(args.model)
    text = _read(args.file)
    show = sys.stderr.isatty() and not args.quiet
    progress = (lambda done, total: print(f"\rtagging {done}/{total}", end="", file=sys.stderr)) if show else None
    tagged = predictor.tag(text, progress=progress)
    if show:
        print(file=sys.stderr)
    sys.stdout.write(render(tagged, args.format, wav=args.wav, speaker=args.speaker))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    _use_model(args.model)
    text = _read(args.input)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    lines = [line.rstrip("\r") for line in lines]
    sys.stdout.write(render(predictor.predict(lines), args.format, wav=args.wav, speaker=args.speaker))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .registry import Registry

    registry = Registry(args.models_dir)
    if args.action == "list":
        for entry in registry.list():
            meta = entry.metadata
            metrics = meta.get("metrics", {})
            figures = " ".join(f"{k}={v.get('macro_f1')}" for k, v in metrics.items() if isinstance(v, dict))
            print(f"{'*' if entry.active else ' '} {entry.id:<40} {meta.get('backbone', '?'):<12} "
                  f"{meta.get('name', '')} {figures or meta.get('error', '')}")
    elif args.action == "add":
        print(registry.add(args.target))
    elif args.action == "activate":
        registry.activate(args.target)
        print(f"active model: {args.target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emotag", description="Tag Korean story sentences with emotions "
                                     "(neutral/happy/sad/angry).")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, default_format: str) -> None:
        p.add_argument("--format", choices=FORMATS, default=default_format)
        p.add_argument("--model", help="model folder (default: $EMOTAG_MODEL or the bundled offline model)")
        p.add_argument("--wav", default=DEFAULT_WAV, help="tts format: wav path, may hold {index} (default %(default)s)")
        p.add_argument("--speaker", default=DEFAULT_SPEAKER, help="tts format: speaker id (default %(default)s)")

    tag = sub.add_parser("tag", help="split a story into sentences and tag each")
    tag.add_argument("file", help="a UTF-8 or CP949 text file, or - for standard input")
    tag.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    common(tag, "text")
    tag.set_defaults(func=cmd_tag)

    pred = sub.add_parser("predict", help="tag one sentence per input line (no splitting), one output row per line")
    pred.add_argument("--input", required=True, help="a text file with one sentence per line, or - for stdin")
    common(pred, "jsonl")
    pred.set_defaults(func=cmd_predict)

    models = sub.add_parser("models", help="list registered models, add a model folder, activate (promote/roll back)")
    models.add_argument("action", choices=("list", "add", "activate"))
    models.add_argument("target", nargs="?", help="add: a model folder; activate: a model id ('bundled' included)")
    models.add_argument("--models-dir", help="registry folder (default: $EMOTAG_MODELS_DIR or ./models)")
    models.set_defaults(func=cmd_models)

    from .store.cli import add_subcommands  # import / export (the annotation store)

    add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, ModelLoadError, SplitterError, FileExistsError) as exc:
        print(f"emotag: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("emotag: interrupted", file=sys.stderr)
        return 130
