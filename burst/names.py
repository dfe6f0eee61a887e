"""The one grammar for names an operator types or a file gives (docs/input-validation.md).

    service, tier, cluster   [a-z][a-z0-9-]{0,39}           web, cloud-aws
    calendar event           [a-z0-9][a-z0-9-]{0,62}        spring-gala
    event (burst up/down)    [A-Za-z0-9][A-Za-z0-9._:@-]{0,99}, no '..'
                             spring-gala, a calendar occurrence key such as
                             spring-gala@2027-01-28T20:00:00Z
    business unit            [A-Za-z0-9][A-Za-z0-9_.-]{0,62}, no '..'
    inventory host           [A-Za-z0-9_][A-Za-z0-9_.-]{0,252}, no '..'

None of them admits whitespace, a path separator, a shell metacharacter or
brackets, so a name is safe in a file name, a tag, a table cell and a log line.
Each check raises `InputError` with one line: what was given, and the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from burst.errors import InputError
from burst.text import shorten


@dataclass(frozen=True)
class Grammar:
    what: str
    pattern: re.Pattern[str]
    #: the grammar said in words, for the error
    rule: str
    dots: bool = False  # may contain '.', but never '..'

    def check(self, value: object, *, where: str = "") -> str:
        """`value` if it is a name of this kind, else one-line `InputError`."""
        if isinstance(value, str) and self.pattern.fullmatch(value) and not (self.dots and ".." in value):
            return value
        shown = shorten(value, 80) if isinstance(value, str) else value
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}{self.what} {shown!r} is not a valid name: use {self.rule}")

    def ok(self, value: object) -> bool:
        try:
            self.check(value)
        except InputError:
            return False
        return True


#: services, tiers and the cluster (the config's names)
CONFIG_NAME = Grammar("name", re.compile(r"[a-z][a-z0-9-]{0,39}"),
                      "1-40 lowercase letters, digits and '-', starting with a letter")
SERVICE = Grammar("service", CONFIG_NAME.pattern, CONFIG_NAME.rule)
TIER = Grammar("tier", CONFIG_NAME.pattern, CONFIG_NAME.rule)
CALENDAR_EVENT = Grammar("event name", re.compile(r"[a-z0-9][a-z0-9-]{0,62}"),
                         "1-63 lowercase letters, digits and '-', starting with a letter or digit")
EVENT = Grammar("event", re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}"),
                "1-100 letters, digits and . _ : @ -, starting with a letter or digit (no '..')", dots=True)
UNIT = Grammar("business unit", re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"),
               "1-63 letters, digits and _ . -, starting with a letter or digit (no '..')", dots=True)
HOST = Grammar("host name", re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}"),
               "1-253 letters, digits and _ . -, starting with a letter, digit or _ (no '..')", dots=True)


def check_event(name: object) -> str:
    """The event of `burst up`, `plan`, `down`, `status`, `report`."""
    return EVENT.check(name)
