"""The one duration grammar of every flag (--deadline, --duration, --lead, --start +...).

    300, 300s, 45sec     seconds (a bare number is seconds)
    5m, 5min, 90m        minutes
    2h, 1h30m, 1.5h      hours, and any sum of d, h, m, s parts in that order
    1d, 1d12h            days
    PT5M, PT1H30M, P1D   ISO 8601 (days, hours, minutes, seconds; no years or months)
    +5m                  the same, "from now": a leading '+' is allowed everywhere

A duration is finite, at most `maximum` (each flag has its bound) and above zero
unless the flag allows zero. Anything else is one `InputError` line naming the flag.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from burst.errors import InputError
from burst.text import shorten

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
#: the default bound: longer than any peak burst is sized for
MAX_DURATION = timedelta(days=366)

_UNITS = {"d": DAY, "day": DAY, "days": DAY,
          "h": HOUR, "hr": HOUR, "hour": HOUR, "hours": HOUR,
          "m": MINUTE, "min": MINUTE, "mins": MINUTE, "minute": MINUTE, "minutes": MINUTE,
          "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0}
_ORDER = {DAY: 0, HOUR: 1, MINUTE: 2, 1.0: 3}
_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"({_NUMBER})\s*([a-z]+)")
_COMPACT = re.compile(rf"(?:{_NUMBER}\s*[a-z]+\s*)+")
_BARE = re.compile(_NUMBER)
_ISO = re.compile(rf"P(?:({_NUMBER})D)?(?:T(?:({_NUMBER})H)?(?:({_NUMBER})M)?(?:({_NUMBER})S)?)?")

GRAMMAR = "e.g. 300s, 5m, 1h30m, 2d, PT5M or +5m"


def parse_seconds(text: object, *, flag: str = "duration", maximum: timedelta = MAX_DURATION,
                  allow_zero: bool = False) -> float:
    """The seconds `text` says; see the module docstring."""
    if not isinstance(text, str):
        raise InputError(f"{flag} {text!r}: expected a duration ({GRAMMAR})")
    raw = text.strip()
    body = raw[1:].strip() if raw.startswith("+") else raw
    seconds = _seconds(body)
    if seconds is None:
        raise InputError(f"{flag} {shorten(raw)!r}: not a duration ({GRAMMAR})")
    if not math.isfinite(seconds) or seconds > maximum.total_seconds():
        raise InputError(f"{flag} {raw!r}: at most {describe(maximum)}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InputError(f"{flag} {raw!r}: must be {'zero or more' if allow_zero else 'above zero'}")
    return seconds


def parse_duration(text: object, *, flag: str = "duration", maximum: timedelta = MAX_DURATION,
                   allow_zero: bool = False) -> timedelta:
    return timedelta(seconds=parse_seconds(text, flag=flag, maximum=maximum, allow_zero=allow_zero))


def is_duration(text: str) -> bool:
    """Is `text` written in the duration grammar (whatever its value)?"""
    raw = text.strip()
    return _seconds(raw[1:].strip() if raw.startswith("+") else raw) is not None


def _seconds(body: str) -> float | None:
    if not body:
        return None
    if _BARE.fullmatch(body):
        return float(body)
    iso = _ISO.fullmatch(body.upper())
    if iso and body.upper() not in ("P", "PT") and not body.upper().endswith("T"):
        d, h, m, s = (float(x or 0) for x in iso.groups())
        return d * DAY + h * HOUR + m * MINUTE + s
    lowered = body.lower()
    if not _COMPACT.fullmatch(lowered):
        return None
    total, last = 0.0, -1
    for number, unit in _PART.findall(lowered):
        size = _UNITS.get(unit)
        if size is None or _ORDER[size] <= last:  # unknown unit, or out of order / repeated
            return None
        last = _ORDER[size]
        total += float(number) * size
    return total


def describe(span: timedelta) -> str:
    """`1d2h`, `5m`, `30s`: the compact form of a bound, for messages."""
    seconds = int(span.total_seconds())
    out = ""
    for size, unit in ((int(DAY), "d"), (int(HOUR), "h"), (int(MINUTE), "m"), (1, "s")):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out or "0s"
