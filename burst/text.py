"""Small helpers every input edge uses to say what it was given."""

from __future__ import annotations


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
