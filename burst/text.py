"""Small helpers every input edge uses to say what it was given."""

from __future__ import annotations

from pathlib import Path


def shorten(text: str, limit: int = 40) -> str:
    """`text`, cut to `limit` characters with '...' when longer: an error line quotes
    what it was given without becoming a page."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def utf8(raw: bytes, what: str) -> str:
    """`raw` as UTF-8, or `ValueError` with one line: the line number, the bad byte and
    its offset, and what the file should be (`what`)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ValueError(f"{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                         f"{what}") from None


def read_utf8(path: Path, error: type[Exception], kind: str, expected: str, *, missing_hint: str = "") -> str:
    """The text of the `kind` file at `path` (a config, an inventory, a profile), or
    `error` with one line naming the file: missing, a directory, unreadable, or not
    UTF-8 (then what it should be: `expected`)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such {kind} file{missing_hint}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {kind} file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return utf8(raw, expected)
    except ValueError as exc:
        raise error(f"{path}:{exc}") from None
