"""What every command shares: the --config and --json options, the consoles, the one
JSON printer, the parsers of the arguments every command takes, and the size guard.

Rendering never interprets user text: a name, title or error message goes to Rich as
a `Text` (or through `esc`), never as markup, and the consoles replace no `:emoji:`
codes. JSON output never holds a non-finite number (`print_json` writes null).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from burst import durations
from burst.config import Config, load_config
from burst.errors import InputError
from burst.names import SERVICE
from burst.planner import Plan, SizeLimits, size_breaches
from burst.text import shorten

console = Console(stderr=False, emoji=False)
err_console = Console(stderr=True, emoji=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default ./burst.toml, or $BURST_CONFIG).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

#: extra replicas one command may ask of one service
MAX_REPLICAS = 1_000_000
#: how far ahead a --deadline may be
MAX_DEADLINE = timedelta(days=7)


def esc(value: Any) -> str:
    """User text made safe to embed in a markup string: `[/x]` stays `[/x]`."""
    return escape(str(value))


def cells(*values: Any) -> list[Text]:
    """Table cells that are shown as they are (never read as markup)."""
    return [v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in values]


def error_line(message: str) -> Text:
    """`error: <message>` with the message as plain text, on one line."""
    return Text.assemble(("error: ", "red"), " ".join(str(message).split("\n")))


def finite(data: Any) -> Any:
    """`data` with every non-finite float (inf, -inf, nan) replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def print_json(data: Any) -> None:
    """The one JSON printer: strict JSON (no NaN or Infinity: they become null)."""
    sys.stdout.write(json.dumps(finite(data), indent=2, default=str, sort_keys=False, allow_nan=False) + "\n")


def parse_replicas(items: list[str] | None) -> dict[str, int]:
    """SERVICE=N pairs; any other shape is an InputError naming the bad one."""
    out: dict[str, int] = {}
    for item in items or []:
        m = re.fullmatch(r"\s*([^=\s]*)\s*=\s*(-?\d+)\s*", item)
        if not m:
            raise InputError(f"--replicas {item!r}: expected SERVICE=N, e.g. web=40")
        name = SERVICE.check(m.group(1), where=f"--replicas {item!r}")
        digits = m.group(2)
        if digits.startswith("-"):
            raise InputError(f"--replicas {item!r}: a replica count cannot be negative")
        if len(digits.lstrip("0")) > len(str(MAX_REPLICAS)) or int(digits) > MAX_REPLICAS:
            raise InputError(f"--replicas {item!r}: at most {MAX_REPLICAS} replicas of one service")
        if name in out:
            raise InputError(f"--replicas: service {name!r} given twice")
        out[name] = int(digits)
    return out


def parse_deadline(text: str, now: datetime) -> datetime:
    """A duration from now in burst's one grammar ('5m', '300s', '1h30m', 'PT5M',
    '+5m'), or an ISO 8601 time (with a zone, or UTC); at most MAX_DEADLINE ahead."""
    if durations.is_duration(text):
        return now + durations.parse_duration(text, flag="--deadline", maximum=MAX_DEADLINE)
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--deadline {shorten(text)!r}: expected a duration ({durations.GRAMMAR}) "
                         "or an ISO time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=now.tzinfo)
    if at <= now:
        raise InputError(f"--deadline {text!r} is in the past")
    if at - now > MAX_DEADLINE:
        raise InputError(f"--deadline {text!r}: at most {durations.describe(MAX_DEADLINE)} ahead")
    return at


def size_note(plan: Plan, config: Config) -> str:
    """What `burst plan` says about the size guard: the limits, and whether `up` would
    ask for --yes."""
    limits = SizeLimits.of(config.limits)
    breaches = size_breaches(plan, limits)
    head = f"size limits: {limits.hosts_per_burst} hosts per burst, {limits.hosts_per_tier} per tier"
    if limits.tiers:
        head += " (" + ", ".join(f"{t}: {n}" for t, n in sorted(limits.tiers.items())) + ")"
    if not breaches:
        return head
    return f"{head}; above them: {'; '.join(breaches)}: `burst up` needs --yes on a terminal, or raise [limits]"


def guard_size(plan: Plan, config: Config, *, yes: bool, interactive: bool | None = None) -> None:
    """Refuse a plan above the config's [limits] unless `yes` was given on a terminal.
    `interactive` defaults to whether stdin is a terminal."""
    breaches = size_breaches(plan, SizeLimits.of(config.limits))
    if not breaches:
        return
    if interactive is None:
        interactive = sys.stdin.isatty()
    if yes and interactive:
        err_console.print(Text(f"warning: above the size limits ({'; '.join(breaches)}), going ahead (--yes)",
                               style="yellow"))
        return
    how = ("--yes is only taken on a terminal" if yes else "pass --yes on a terminal to go ahead anyway")
    raise InputError(f"the plan is above the size limits: {'; '.join(breaches)}; nothing was started "
                     f"(raise [limits] in the config, or {how})")


@contextmanager
def service_for(config_path: Path | None) -> Iterator["BurstService"]:  # noqa: F821
    from burst.service import BurstService

    service = BurstService(load_config(config_path))
    try:
        yield service
    finally:
        service.close()


def config_for(config_path: Path | None) -> Config:
    return load_config(config_path)
