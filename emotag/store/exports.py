"""Writing the store out: TTS filelists, KAIST-style .xlsx (a sheet per story), CSV and JSONL.

Every export carries each sentence's final label (see emotag.store: adjudicated, else majority, else latest
annotation, else model prediction) and where it came from; CSV/JSONL/xlsx also the annotator count and the
agreement (share of annotators who chose the most common label). The .xlsx and CSV read back in through
emotag.store.imports with the same sentences and labels.
"""
from __future__ import annotations

import csv
import io
import json
import re
from typing import Iterable, Sequence

from ..formats import DEFAULT_SPEAKER, DEFAULT_WAV, tts_line
from ..textio import InputError
from . import FinalLabel, Store

FORMATS = ("tts", "xlsx", "csv", "jsonl")
COLUMNS = ("story_id", "story", "index", "text", "label", "label_id", "source", "annotators", "agreement",
           "predicted", "confidence")
XLSX_COLUMNS = ("index", "text", "emotion", "emotion_id", "source", "annotators", "agreement")
MISSING = ("error", "skip")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _rows(store: Store, story_ids: Sequence[int] | None) -> list[tuple[object, list[FinalLabel]]]:
    """(story, its final labels) for the chosen stories (all when None), in id order."""
    stories = store.stories()
    if story_ids:
        known = {s.id: s for s in stories}
        missing = [i for i in story_ids if i not in known]
        if missing:
            raise InputError(f"no story with id {missing[0]} (stories: "
                             f"{', '.join(str(s.id) for s in stories) or 'none'})")
        stories = [known[i] for i in dict.fromkeys(story_ids)]
    by_story: dict[int, list[FinalLabel]] = {s.id: [] for s in stories}
    for f in store.final_labels() if not story_ids or len(story_ids) > 1 else store.final_labels(story_ids[0]):
        if f.story_id in by_story:
            by_story[f.story_id].append(f)
    return [(s, by_story[s.id]) for s in stories]


def record(story, f: FinalLabel) -> dict:
    """The stable shape of one exported sentence (CSV columns, JSONL keys)."""
    return {"story_id": story.id, "story": story.title, "index": f.position, "text": f.text, "label": f.label,
            "label_id": f.label_id, "source": f.source, "annotators": f.annotators,
            "agreement": None if f.agreement is None else round(f.agreement, 4), "predicted": f.predicted,
            "confidence": f.confidence}


def to_csv(store: Store, story_ids: Sequence[int] | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for story, finals in _rows(store, story_ids):
        for f in finals:
            writer.writerow(["" if v is None else v for v in record(story, f).values()])
    return out.getvalue()


def to_jsonl(store: Store, story_ids: Sequence[int] | None = None) -> str:
    lines = []
    for story, finals in _rows(store, story_ids):
        for f in finals:
            lines.append(json.dumps({**record(story, f), "labels": f.labels, "adjudicated": f.adjudicated},
                                    ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def to_tts(store: Store, story_ids: Sequence[int] | None = None, wav: str = DEFAULT_WAV,
           speaker: str = DEFAULT_SPEAKER, missing: str = "error") -> str:
    """``wav|text|speaker|id|id``, one line per sentence. ``wav`` may hold ``{index}`` (running number of the
    line), ``{story}`` (story id) and ``{position}`` (sentence number in its story). Sentences without any label
    (no annotation, no prediction) are an error, or left out with ``missing="skip"``."""
    if missing not in MISSING:
        raise InputError(f"unknown missing-label policy {missing!r} (choose from {', '.join(MISSING)})")
    lines = []
    for story, finals in _rows(store, story_ids):
        for f in finals:
            if f.label_id is None:
                if missing == "skip":
                    continue
                raise InputError(f"story {story.id} ({story.title}), sentence {f.position + 1} has no label "
                                 "(no annotation and no model prediction): run the model on it, label it, or "
                                 "leave such sentences out (missing='skip' / --missing skip)")
            try:
                path = wav.format(index=len(lines), story=story.id, position=f.position)
            except (KeyError, IndexError, ValueError) as exc:
                raise InputError(f"bad wav pattern {wav!r}: use {{index}}, {{story}} or {{position}} ({exc})") from None
            lines.append(tts_line(path, f.text, speaker, f.label_id))
    return "".join(line + "\n" for line in lines)


def sheet_names(titles: Iterable[str]) -> list[str]:
    """Excel-safe, unique sheet names (at most 31 characters, none of []:*?/\\)."""
    used: set[str] = set()
    out = []
    for title in titles:
        base = _SHEET_BAD.sub("_", title).strip().strip("'")[:31] or "story"
        name, n = base, 2
        while name.lower() in used or name.lower() == "history":
            suffix = f" ({n})"
            name, n = base[:31 - len(suffix)] + suffix, n + 1
        used.add(name.lower())
        out.append(name)
    return out


def to_xlsx(store: Store, story_ids: Sequence[int] | None = None) -> bytes:
    """A workbook with one sheet per story: index, text, emotion (name), emotion_id, source, annotators,
    agreement. Reads back through the importer (text and emotion columns)."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    rows = _rows(store, story_ids)
    wb = Workbook()
    wb.remove(wb.active)
    for (_story, finals), name in zip(rows, sheet_names(s.title for s, _ in rows)):
        ws = wb.create_sheet(name)
        ws.append(list(XLSX_COLUMNS))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for f in finals:
            ws.append([f.position, None, f.label, f.label_id, f.source, f.annotators,
                       None if f.agreement is None else round(f.agreement, 4)])
            cell = ws.cell(row=ws.max_row, column=2)
            cell.value = ILLEGAL_CHARACTERS_RE.sub(" ", f.text)
            cell.data_type = "s"  # never a formula, even if the sentence starts with "="
        ws.column_dimensions["B"].width = 80
        ws.freeze_panes = "A2"
    if not rows:
        wb.create_sheet("stories")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export(store: Store, fmt: str, story_ids: Sequence[int] | None = None, **options) -> str | bytes:
    """Render ``fmt`` (tts, xlsx, csv, jsonl); xlsx is bytes, the others text."""
    if fmt == "tts":
        return to_tts(store, story_ids, **options)
    if options:
        raise InputError(f"options {', '.join(sorted(options))} apply to the tts format only")
    if fmt == "xlsx":
        return to_xlsx(store, story_ids)
    if fmt == "csv":
        return to_csv(store, story_ids)
    if fmt == "jsonl":
        return to_jsonl(store, story_ids)
    raise InputError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
