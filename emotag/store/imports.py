"""Reading stories into the store: pasted text or .txt, KAIST-style .xlsx, CSV and JSONL of sentences.

Parsing is separate from storing: ``parse_*`` check the whole input and return StoryInputs (or raise InputError
naming the row and column), then ``Store.add_stories`` writes them in one transaction. A bad file therefore
leaves nothing behind.

* text / .txt: split into sentences with the project's splitter (kss + mecab); UTF-8 or CP949.
* .xlsx: one story per sheet, titled by the sheet name. The text column is the one headed text/sentence/문장/...
  or else the column with the most Hangul; or pick it (header name, letter like ``B``, or number from 1). An
  emotion column (emotion/label/감정/..., names, Korean names or ids 0-3) is imported as annotations.
* .csv (UTF-8 or CP949; comma, tab or semicolon): a header row with a ``text`` column, optional ``story`` /
  ``story_id`` (rows grouped into stories in order), ``label`` / ``emotion`` and ``annotator`` columns.
* .jsonl: one object per line with ``text`` and the same optional keys.
"""
from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..labels import UnknownLabel, normalize_label
from ..textio import InputError, check_story_text, decode_bytes, has_hangul, read_file_bytes
from . import IMPORT_ANNOTATOR, SentenceInput, Story, StoryInput

FORMATS = ("txt", "xlsx", "csv", "jsonl")
TEXT_HEADERS = ("text", "sentence", "sentences", "문장", "텍스트", "내용", "발화", "발화문", "대사", "utterance",
                "content")
LABEL_HEADERS = ("emotion", "label", "감정", "final_label", "감정라벨", "감정 라벨", "라벨", "레이블", "emotion_label",
                 "emotion_id", "label_id", "감정번호")
STORY_HEADERS = ("story_id", "story", "title", "동화", "제목")
ANNOTATOR_HEADERS = ("annotator", "작업자", "annotator_id")
_SUFFIXES = {".txt": "txt", ".text": "txt", ".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv", ".tsv": "csv",
             ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_LETTERS = re.compile(r"^[A-Za-z]{1,3}$")
_SENTENCE_END = re.compile(r"[.!?…~。\"'”’」』)\]]\s*$")
NO_LABELS = False  # pass as label_column to ignore any emotion column


def _key(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value)).strip().lower() if value is not None else ""


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def detect_format(name: str, data: bytes | None = None) -> str:
    fmt = _SUFFIXES.get(Path(name).suffix.lower())
    if fmt:
        return fmt
    if data is not None:
        if data[:4] == b"PK\x03\x04":
            return "xlsx"
        if data.lstrip()[:1] == b"{":
            return "jsonl"
    return "txt"


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter
    return get_column_letter(index + 1)


def _label_or_error(value: Any, where: str) -> str:
    try:
        return normalize_label(value.strip() if isinstance(value, str) else value)
    except UnknownLabel as exc:
        raise InputError(f"{where}: {exc}") from None


# ------------------------------------------------------------------------------------------------ columns


def _label_column(label_column: Any, header, width: int, where: str) -> int | None:
    """The emotion column: none when told so, the one chosen, else one whose header names emotions."""
    if label_column is NO_LABELS:
        return None
    if label_column is not None:
        return _pick_column(label_column, header, width, where, "emotion")
    return _find_header(header, LABEL_HEADERS)


def _find_header(headers: Sequence[Any], names: Sequence[str]) -> int | None:
    keys = [_key(h) for h in headers]
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def _describe_columns(headers: Sequence[Any], width: int) -> str:
    return ", ".join(f"{_letter(i)}" + (f" {str(headers[i]).strip()!r}" if i < len(headers) and not _blank(headers[i])
                                        else "") for i in range(width))


def _pick_column(choice: Any, headers: Sequence[Any], width: int, where: str, what: str) -> int:
    """A column chosen by header name, letter (A, B, ...) or number (1-based)."""
    wanted = _key(choice)
    keys = [_key(h) for h in headers]
    if wanted in keys:
        return keys.index(wanted)
    if isinstance(choice, int) or wanted.isdigit():
        index = int(wanted) - 1
    elif _LETTERS.match(wanted):
        from openpyxl.utils import column_index_from_string
        index = column_index_from_string(wanted.upper()) - 1
    else:
        index = -1
    if not 0 <= index < width:
        raise InputError(f"{where}: no {what} column {choice!r} (columns: {_describe_columns(headers, width)})")
    return index


# ------------------------------------------------------------------------------------------------ text


def default_title(text: str, fallback: str = "story") -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 60 else line[:59] + "…"
    return fallback


def parse_text(text: str, title: str | None = None, source: str | None = "paste") -> StoryInput:
    """A pasted story or .txt file, split into sentences (offsets into the text)."""
    text = check_story_text(text)
    from ..splitter import split_sentences

    spans = split_sentences(text)
    if not spans:
        raise InputError("no sentences found in the text")
    return StoryInput(title or default_title(text), [SentenceInput(s.text, s.start, s.end, s.paragraph) for s in spans],
                      text=text, source=source)


# ------------------------------------------------------------------------------------------------ xlsx


def _load_workbook(data: bytes, name: str):
    from openpyxl import load_workbook

    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise InputError(f"{name} is an old Excel .xls file: open it in Excel and save it as .xlsx")
    try:
        return load_workbook(io.BytesIO(data), data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise InputError(f"{name} is not a readable Excel .xlsx workbook ({exc.__class__.__name__}: {exc})") from None
    except Exception as exc:  # openpyxl raises a variety of errors for damaged files
        raise InputError(f"{name} is not a readable Excel .xlsx workbook ({exc.__class__.__name__}: {exc})") from None


def _sheet_rows(ws) -> list[tuple[int, list[Any]]]:
    rows = []
    for number, row in enumerate(ws.iter_rows(min_row=1, max_row=ws.max_row, values_only=True), 1):
        values = list(row)
        while values and _blank(values[-1]):
            values.pop()
        if values:
            rows.append((number, values))
    return rows


def xlsx_columns(data: bytes, name: str = "the workbook") -> dict[str, list[tuple[str, str]]]:
    """For each sheet, its columns as (letter, header) pairs, so a person can pick the text/emotion column."""
    wb = _load_workbook(data, name)
    out = {}
    for ws in wb.worksheets:
        rows = _sheet_rows(ws)
        header = rows[0][1] if rows else []
        width = max((len(r) for _, r in rows), default=0)
        out[ws.title] = [(_letter(i), "" if i >= len(header) or _blank(header[i]) else str(header[i]).strip())
                         for i in range(width)]
    return out


def _is_label(value: Any) -> bool:
    try:
        normalize_label(value)
    except UnknownLabel:
        return False
    return True


def _is_header(row: Sequence[Any], *choices: Any) -> bool:
    """Does the first row name the columns? Yes if it holds a known column name (or a chosen column's name);
    else if every cell is a short string that neither ends like a sentence nor is an emotion label."""
    known = set(TEXT_HEADERS) | set(LABEL_HEADERS) | set(STORY_HEADERS) | set(ANNOTATOR_HEADERS) | {
        "index", "번호", "no", "no.", "id", "순번", "source", "annotators", "agreement", "position"}
    known |= {_key(c) for c in choices if isinstance(c, str) and c.strip() and not c.strip().isdigit()}
    if any(_key(v) in known for v in row if isinstance(v, str)):
        return True
    cells = [v for v in row if not _blank(v)]
    return bool(cells) and all(isinstance(v, str) and len(v.strip()) <= 30 and not _SENTENCE_END.search(v)
                               and not _is_label(v) for v in cells)


def parse_xlsx(data: bytes, name: str = "the workbook", *, text_column: Any = None, label_column: Any = None,
               annotator: str = IMPORT_ANNOTATOR, sheets: Sequence[str] | None = None,
               header: bool | None = None) -> list[StoryInput]:
    """One StoryInput per non-empty sheet (see the module docstring). ``header``: whether each sheet's first
    row names the columns (None: detect)."""
    wb = _load_workbook(data, name)
    titles = [ws.title for ws in wb.worksheets]
    if sheets:
        missing = [s for s in sheets if s not in titles]
        if missing:
            raise InputError(f"{name} has no sheet {missing[0]!r} (sheets: {', '.join(map(repr, titles))})")
    out = []
    for ws in wb.worksheets:
        if sheets and ws.title not in sheets:
            continue
        story = _parse_sheet(ws, f"{name}, sheet {ws.title!r}", name, text_column, label_column, annotator, header)
        if story is not None:
            out.append(story)
    if not out:
        raise InputError(f"{name} has no sentences in any sheet")
    return out


def _parse_sheet(ws, where: str, name: str, text_column: Any, label_column: Any, annotator: str,
                 has_header: bool | None = None) -> StoryInput | None:
    rows = _sheet_rows(ws)
    if not rows:
        return None
    width = max(len(r) for _, r in rows)
    header: list[Any] = []
    if has_header if has_header is not None else _is_header(rows[0][1], text_column, label_column):
        header = rows[0][1]
        rows = rows[1:]
    if text_column is not None:
        text_at = _pick_column(text_column, header, width, where, "text")
    else:
        text_at = _find_header(header, TEXT_HEADERS)
        if text_at is None:
            hangul = [sum(isinstance(r[i], str) and has_hangul(r[i]) for _, r in rows if i < len(r))
                      for i in range(width)]
            if not hangul or max(hangul) == 0:
                raise InputError(f"{where}: cannot tell which column holds the sentences; choose the text column "
                                 f"(columns: {_describe_columns(header, width)})")
            text_at = hangul.index(max(hangul))
    label_at = _label_column(label_column, header, width, where)
    if label_at is None and label_column is None and not header:
        label_at = _guess_label_column(rows, width, text_at)
    if label_at == text_at:
        raise InputError(f"{where}: the text and emotion columns are the same column {_letter(text_at)}")
    label_name = None if label_at is None else f"column {_letter(label_at)}" + (
        f" ({str(header[label_at]).strip()!r})" if label_at < len(header) and not _blank(header[label_at]) else "")
    items = []
    for number, row in rows:
        text = row[text_at] if text_at < len(row) else None
        label = row[label_at] if label_at is not None and label_at < len(row) else None
        if _blank(text):
            if not _blank(label):
                raise InputError(f"{where}, row {number}: an emotion in {label_name} but no text in column "
                                 f"{_letter(text_at)}")
            continue
        labels = {}
        if not _blank(label):
            labels[annotator] = _label_or_error(label, f"{where}, row {number}, {label_name}")
        items.append(SentenceInput(str(text).strip(), labels=labels))
    if not items:
        return None
    return StoryInput(ws.title, items, source=f"{name}#{ws.title}")


def _guess_label_column(rows, width: int, text_at: int) -> int | None:
    """Without a header: a column (not the text) whose every value is an emotion *name* (never numbers)."""
    for i in range(width):
        if i == text_at:
            continue
        values = [r[i] for _, r in rows if i < len(r) and not _blank(r[i])]
        if values and all(isinstance(v, str) and not v.strip().isdigit() for v in values):
            try:
                [normalize_label(v) for v in values]
            except UnknownLabel:
                continue
            return i
    return None


# ------------------------------------------------------------------------------------------------ CSV / JSONL


def _records(title: str, source: str, rows: Iterable[tuple[str, dict]]) -> list[StoryInput]:
    """Group (where, {text, story, label, annotator}) rows into stories in order of first appearance."""
    stories: dict[str, StoryInput] = {}
    for _, row in rows:
        key = row["story"] if row["story"] is not None else ""
        if key not in stories:
            stories[key] = StoryInput(row["title"] or (key if key else title), [], source=source)
        stories[key].sentences.append(SentenceInput(row["text"], labels=row["labels"]))
    return list(stories.values())


def _delimiter(first_line: str, text_column: Any) -> str:
    """The delimiter (comma, tab or semicolon) that makes the header hold a text column, else the commonest."""
    wanted = set(TEXT_HEADERS) | ({_key(text_column)} if text_column is not None else set())
    for delimiter in (",", "\t", ";"):
        if any(_key(h) in wanted for h in next(csv.reader([first_line], delimiter=delimiter), [])):
            return delimiter
    return max((",", "\t", ";"), key=first_line.count)


def parse_csv(text: str, name: str = "the CSV file", *, title: str | None = None, text_column: Any = None,
              label_column: Any = None, annotator: str = IMPORT_ANNOTATOR) -> list[StoryInput]:
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(f"{name} is empty")
    delimiter = _delimiter(text.split("\n", 1)[0], text_column)
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise InputError(f"{name} is not a readable CSV file ({exc})") from None
    header = table[0]
    width = max(len(r) for r in table)
    where = name
    text_at = (_pick_column(text_column, header, width, where, "text") if text_column is not None
               else _find_header(header, TEXT_HEADERS))
    if text_at is None:
        raise InputError(f"{name}, line 1: no text column in the header (name one 'text', or choose it; "
                         f"columns: {_describe_columns(header, width)})")
    label_at = _label_column(label_column, header, width, where)
    story_at = _find_header(header, STORY_HEADERS)
    title_at = _find_header(header, ("story", "title", "동화", "제목"))
    annotator_at = _find_header(header, ANNOTATOR_HEADERS)
    label_name = None if label_at is None else f"column {_letter(label_at)} ({header[label_at].strip()!r})"

    def rows():
        for number, row in enumerate(table[1:], 2):
            def cell(i: int | None, row: list[str] = row) -> str:
                return row[i].strip() if i is not None and i < len(row) else ""

            if not any(v.strip() for v in row):
                continue
            where_row = f"{name}, line {number}"
            sentence, label = cell(text_at), cell(label_at)
            if not sentence:
                if label:
                    raise InputError(f"{where_row}: an emotion in {label_name} but no text in column "
                                     f"{_letter(text_at)}")
                continue
            who = cell(annotator_at) or annotator
            labels = {who: _label_or_error(label, f"{where_row}, {label_name}")} if label else {}
            yield where_row, {"text": sentence, "story": cell(story_at) if story_at is not None else None,
                              "title": cell(title_at) if title_at is not None else None, "labels": labels}

    stories = _records(title or Path(name).stem or "story", name, rows())
    if not stories:
        raise InputError(f"{name} has no sentences")
    return stories


def parse_jsonl(text: str, name: str = "the JSONL file", *, title: str | None = None,
                annotator: str = IMPORT_ANNOTATOR) -> list[StoryInput]:
    def rows():
        for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{name}, line {number}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{where}: expected a JSON object with a \"text\" field")
            sentence = obj.get("text")
            if not isinstance(sentence, str) or not sentence.strip():
                raise InputError(f"{where}: missing or empty \"text\" field")
            key = next((k for k in ("label", "emotion", "감정", "label_id", "emotion_id") if obj.get(k) not in
                        (None, "")), None)
            who = str(obj.get("annotator") or annotator)
            labels = {who: _label_or_error(obj[key], f"{where}, field {key!r}")} if key else {}
            story = obj.get("story_id", obj.get("story"))
            story_title = obj.get("story") if isinstance(obj.get("story"), str) else obj.get("title")
            yield where, {"text": sentence.strip(), "story": None if story is None else str(story),
                          "title": story_title, "labels": labels}

    stories = _records(title or Path(name).stem or "story", name, rows())
    if not stories:
        raise InputError(f"{name} has no sentences")
    return stories


# ------------------------------------------------------------------------------------------------ entry points


def parse_file(source: str | Path | bytes, name: str | None = None, *, fmt: str | None = None,
               title: str | None = None, text_column: Any = None, label_column: Any = None,
               annotator: str = IMPORT_ANNOTATOR, sheets: Sequence[str] | None = None,
               header: bool | None = None) -> list[StoryInput]:
    """Read a file (a path, or its bytes with ``name``) into StoryInputs; nothing is stored.

    ``fmt``: txt, xlsx, csv or jsonl (default: from the name, else the first bytes). ``title``: of a .txt story,
    or of the single story of a CSV/JSONL without a story column. ``text_column`` / ``label_column`` (xlsx,
    CSV): header name, letter or 1-based number; ``label_column=NO_LABELS`` ignores emotions. ``annotator``:
    who imported labels are recorded as. ``sheets``: xlsx sheets to read (default all). ``header``: xlsx,
    whether first rows name the columns (default: detect)."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "the file"
    else:
        name = name or Path(source).name
        data = read_file_bytes(source)
    fmt = fmt or detect_format(name, data)
    if fmt not in FORMATS:
        raise InputError(f"unknown import format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not data.strip():
        raise InputError(f"{name} is empty")
    if fmt == "xlsx":
        return parse_xlsx(data, name, text_column=text_column, label_column=label_column, annotator=annotator,
                          sheets=sheets, header=header)
    text = decode_bytes(data, name=name)
    if fmt == "csv":
        return parse_csv(text, name, title=title, text_column=text_column, label_column=label_column,
                         annotator=annotator)
    if fmt == "jsonl":
        return parse_jsonl(text, name, title=title, annotator=annotator)
    return [parse_text(text, title=title or Path(name).stem, source=name)]


def import_file(store, source: str | Path | bytes, name: str | None = None, **options) -> list[Story]:
    """Parse a file (see parse_file) and store all its stories in one transaction."""
    return store.add_stories(parse_file(source, name, **options))


def import_files(store, paths: Sequence[str | Path], **options) -> list[Story]:
    """Several files, all or nothing."""
    items = [story for path in paths for story in parse_file(path, **options)]
    return store.add_stories(items)


def import_text(store, text: str, title: str | None = None, source: str | None = "paste") -> Story:
    """A pasted story: split, then stored."""
    return store.add_stories([parse_text(text, title=title, source=source)])[0]
