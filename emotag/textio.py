"""Reading user text: encodings, and the checks every entry point (CLI, UI, API) applies.

Bad input raises InputError with a message meant for a person; nothing here ever prints a traceback.
"""
from __future__ import annotations

import re
from pathlib import Path

MAX_CHARS = 200_000  # about three long picture books; larger pastes are refused with a clear message
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_ENCODINGS = ("utf-8-sig", "cp949")


class InputError(ValueError):
    """Input a person gave that emotag cannot use; str(err) says why and what to do."""


def decode_bytes(data: bytes, name: str = "the file") -> str:
    """Decode a text file's bytes: UTF-8 (with or without BOM) or cp949/EUC-KR. Binary data is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:8192]:
        raise InputError(f"{name} looks like a binary file, not text: save the story as a .txt file (UTF-8 or CP949).")
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(f"{name} is neither UTF-8 nor CP949/EUC-KR text: save it as UTF-8 and try again.")


def read_file_bytes(path: str | Path) -> bytes:
    """A file's bytes, or InputError saying plainly why it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def read_text_file(path: str | Path) -> str:
    return decode_bytes(read_file_bytes(path), name=str(path))


def check_story_text(text: str | None, max_chars: int = MAX_CHARS) -> str:
    """Return the text (line endings normalised to \\n) if it can be tagged, else raise InputError."""
    if text is None or not text.strip():
        raise InputError("The text is empty: paste a Korean story or upload a .txt file.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > max_chars:
        raise InputError(
            f"The text is too long ({len(text):,} characters; the limit is {max_chars:,}). "
            "Split it into parts (for example one chapter at a time) and tag each part."
        )
    if not _HANGUL.search(text):
        raise InputError("The text contains no Korean (Hangul) characters: emotag tags Korean stories.")
    return text


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))
