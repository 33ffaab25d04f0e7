"""``python -m emotag import|export|stories``: fill the annotation store from files, write it out.

    python -m emotag import story.txt book.xlsx --annotator kaist --predict
    python -m emotag import sentences.csv --db postgresql://me@localhost/emotag
    python -m emotag export --format tts --wav 'wavs/{story}_{position:03d}.wav' --speaker 3 -o filelist.txt
    python -m emotag export -o labels.xlsx            # format from the suffix: .xlsx .csv .jsonl .txt (tts)
    python -m emotag stories load --predict           # the shared stories, with the story label file's labels
    python -m emotag stories export -o training/data/story_labels.csv

The database is --db, else $EMOTAG_DB_URL, else annotations.db in the current folder. Errors are one line on
stderr and exit status 2. ``add_subcommands(subparsers)`` registers both on the main parser.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..formats import DEFAULT_SPEAKER, DEFAULT_WAV

IMPORT_FORMATS = ("txt", "xlsx", "csv", "jsonl")
EXPORT_FORMATS = ("tts", "xlsx", "csv", "jsonl")
_EXPORT_SUFFIXES = {".xlsx": "xlsx", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "tts",
                    ".list": "tts", ".tts": "tts"}


def _fail(message: str) -> int:
    print(f"emotag: {message}", file=sys.stderr)
    return 2


def _guarded(func):
    """Human errors (bad input, database trouble) → one line on stderr, exit 2."""
    def run(args: argparse.Namespace) -> int:
        from ..models import ModelLoadError
        from ..splitter import SplitterError
        from ..textio import InputError
        from . import StoreError

        try:
            return func(args)
        except (InputError, StoreError, ModelLoadError, SplitterError) as exc:
            return _fail(str(exc))
    run.__name__ = func.__name__
    return run


def _column(value: str | None):
    return value if value is None or not value.isdigit() else int(value)


@_guarded
def cmd_import(args: argparse.Namespace) -> int:
    from ..textio import InputError
    from . import Store, display_url
    from .imports import NO_LABELS, parse_file

    options = dict(fmt=args.format, title=args.title, text_column=_column(args.text_column),
                   label_column=NO_LABELS if args.no_labels else _column(args.label_column),
                   annotator=args.annotator, sheets=args.sheet or None, header=args.header)
    if args.title and len(args.files) > 1:
        raise InputError("--title names one story: give one file with it")
    items = []
    for source in args.files:
        if source == "-":
            data = sys.stdin.buffer.read()
            if not args.format:  # text by default; xlsx and JSONL are recognised by their first bytes
                from .imports import detect_format
                options["fmt"] = detect_format("standard input", data)
            items += parse_file(data, "standard input", **options)
            options["fmt"] = args.format
        else:
            items += parse_file(source, **options)
    predictor = None
    if args.predict:  # load the model first: a bad model stops the import before anything is stored
        from ..predictor import Predictor, get_predictor
        if args.model:
            from ..models.serving import load_for_serving
            predictor = Predictor(load_for_serving(args.model))
        else:
            predictor = get_predictor()
    elif args.model:
        raise InputError("--model is for --predict")
    store = Store(args.db)
    try:
        created = store.add_stories(items)
        labels = sum(len(s.labels) for item in items for s in item.sentences)
        for story in created if predictor else []:
            store.add_predictions(story.id, predictor=predictor)
        for story in created:
            print(f"story {story.id}: {story.title} ({story.sentences} sentences)")
        print(f"imported {len(created)} stor{'y' if len(created) == 1 else 'ies'}, "
              f"{sum(s.sentences for s in created)} sentences, {labels} labels into {display_url(store.url)}"
              + (" (with model predictions)" if args.predict else ""), file=sys.stderr)
    finally:
        store.close()
    return 0


@_guarded
def cmd_export(args: argparse.Namespace) -> int:
    from ..textio import InputError
    from . import Store
    from .exports import export

    fmt = args.format or (_EXPORT_SUFFIXES.get(Path(args.output).suffix.lower()) if args.output else None)
    if fmt is None:
        raise InputError("choose the format with --format (tts, xlsx, csv or jsonl), or an -o file ending in "
                         ".txt, .xlsx, .csv or .jsonl")
    if fmt == "xlsx" and not args.output and sys.stdout.isatty():
        raise InputError("an .xlsx workbook is binary: write it to a file with -o labels.xlsx")
    options = {"wav": args.wav, "speaker": args.speaker, "missing": args.missing} if fmt == "tts" else {}
    store = Store(args.db, create=False)
    try:
        result = export(store, fmt, args.story or None, **options)
    finally:
        store.close()
    data = result if isinstance(result, bytes) else result.encode("utf-8")
    if args.output and args.output != "-":
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write it ({exc.strerror or exc})") from None
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


@_guarded
def cmd_stories(args: argparse.Namespace) -> int:
    """Shared stories in and out of the store: ``load`` (with the label file's labels), ``export`` (the label file)."""
    from .. import story_labels as SL
    from ..stories import read_label_file
    from ..textio import InputError
    from . import Store, display_url

    if args.action == "load":
        rows = []
        if not args.no_labels:
            try:
                rows = read_label_file(args.labels)
            except OSError as exc:
                raise InputError(f"{args.labels}: cannot read it ({exc.strerror or exc})") from None
            except (UnicodeDecodeError, csv.Error) as exc:
                raise InputError(f"{args.labels}: not a story label file ({exc})") from None
        store = Store(args.db)
        try:
            result = SL.load_stories(store, args.stories, rows, args.story or None)
            if args.predict:
                from ..predictor import get_predictor
                predictor = get_predictor()
                for story_id in result.story_ids:
                    store.add_predictions(story_id, predictor=predictor)
            print(f"loaded {len(result.added)} stories ({result.labels} labels) into {display_url(store.url)}; "
                  f"{len(result.skipped)} already there" + (f"; {result.stale} labels no longer match their "
                                                             "sentence and were left out" if result.stale else ""),
                  file=sys.stderr)
        finally:
            store.close()
        return 0
    store = Store(args.db, create=False)
    try:
        rows = SL.label_rows(store)
        report = store.agreement() if rows else None
    finally:
        store.close()
    if not rows:
        raise InputError("the store holds no labels on shared stories (load them first: python -m emotag stories load)")
    if args.output and args.output != "-":
        try:
            SL.write_label_file(rows, args.output)
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write it ({exc.strerror or exc})") from None
    else:
        sys.stdout.write(SL.label_csv(rows))
    pairs = "; ".join(f"{p.a} vs {p.b}: {p.items} sentences, Cohen's kappa {p.kappa:.3f}"
                      for p in report.pairs if p.kappa is not None and p.items)
    print(f"{len(rows)} labels by {len({r['annotator'] for r in rows})} annotators on "
          f"{len({r['story'] for r in rows})} stories" + (f"; {pairs}" if pairs else ""), file=sys.stderr)
    return 0


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="SQLAlchemy URL or SQLite file (default: $EMOTAG_DB_URL, else "
                   "annotations.db in the current folder)")


def add_subcommands(subparsers) -> None:
    """Register ``import``, ``export`` and ``stories`` on the main parser's subparsers."""
    imp = subparsers.add_parser("import", help="add stories to the annotation store (.txt, .xlsx, .csv, .jsonl)",
                                description="Add stories to the annotation store. All files are imported in "
                                "one transaction: any error and nothing is added.")
    imp.add_argument("files", nargs="+", metavar="FILE", help="story files; - for standard input")
    _db(imp)
    imp.add_argument("--format", choices=IMPORT_FORMATS, help="default: from the file name")
    imp.add_argument("--title", help="title of the story (txt; default: the file name)")
    imp.add_argument("--text-column", metavar="COL", help="xlsx/csv: the sentence column by header, letter or "
                     "number (default: detected)")
    labels = imp.add_mutually_exclusive_group()
    labels.add_argument("--label-column", metavar="COL", help="xlsx/csv: the emotion column (default: detected)")
    labels.add_argument("--no-labels", action="store_true", help="ignore any emotion column")
    header = imp.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_const", const=True,
                        help="xlsx: the first row of each sheet names the columns (default: detected)")
    header.add_argument("--no-header", dest="header", action="store_const", const=False,
                        help="xlsx: the first row is already a sentence")
    imp.add_argument("--sheet", action="append", metavar="NAME", help="xlsx: import only this sheet (repeatable)")
    imp.add_argument("--annotator", default="import", help="who imported labels are recorded as "
                     "(default: %(default)s)")
    imp.add_argument("--predict", action="store_true", help="also store model predictions for the new sentences")
    imp.add_argument("--model", help="with --predict: model folder (default: $EMOTAG_MODEL or the bundled model)")
    imp.set_defaults(func=cmd_import)

    exp = subparsers.add_parser("export", help="write final labels out (tts filelist, xlsx, csv, jsonl)")
    _db(exp)
    exp.add_argument("--format", choices=EXPORT_FORMATS, help="default: from the -o file name")
    exp.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    exp.add_argument("--story", type=int, action="append", metavar="ID", help="only this story (repeatable)")
    exp.add_argument("--wav", default=DEFAULT_WAV, help="tts: wav path; may hold {index}, {story}, {position} "
                     "(default %(default)s)")
    exp.add_argument("--speaker", default=DEFAULT_SPEAKER, help="tts: speaker id (default %(default)s)")
    exp.add_argument("--missing", choices=("error", "skip"), default="error",
                     help="tts: sentences with no label at all (default: %(default)s)")
    exp.set_defaults(func=cmd_export)

    from ..stories import DEFAULT_STORIES
    from ..story_labels import DEFAULT_LABEL_FILE

    st = subparsers.add_parser("stories", help="the shared stories in the store: load them (with the label file) "
                               "to annotate in the app, export the label file", description="load: add the shared "
                               "stories to the store, in order, with the label file's labels as each annotator's "
                               "annotations (stories already there are skipped). export: write every annotator's "
                               "current label on them as the label file (no story text).")
    st.add_argument("action", choices=("load", "export"))
    _db(st)
    st.add_argument("--stories", default=str(DEFAULT_STORIES), help="the story collection (default: %(default)s)")
    st.add_argument("--labels", default=str(DEFAULT_LABEL_FILE), help="load: the label file (default: %(default)s)")
    st.add_argument("--no-labels", action="store_true", help="load: the stories only, untagged")
    st.add_argument("--story", action="append", metavar="FILE", help="load: only this story file (repeatable)")
    st.add_argument("--predict", action="store_true", help="load: also store the default model's predictions")
    st.add_argument("-o", "--output", metavar="FILE", help="export: the label file to write (default: stdout)")
    st.set_defaults(func=cmd_stories)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m emotag.store.cli``) until the main CLI carries these commands."""
    parser = argparse.ArgumentParser(prog="python -m emotag.store.cli")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
