"""What every command shares: the --config and --json options, the console, parsing."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from burst.config import Config, load_config
from burst.errors import InputError

console = Console(stderr=False)
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default ./burst.toml, or $BURST_CONFIG).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")


def parse_replicas(items: list[str] | None) -> dict[str, int]:
    """SERVICE=N pairs; any other shape is an InputError naming the bad one."""
    out: dict[str, int] = {}
    for item in items or []:
        m = re.fullmatch(r"\s*([a-z][a-z0-9-]*)\s*=\s*(-?\d+)\s*", item)
        if not m:
            raise InputError(f"--replicas {item!r}: expected SERVICE=N, e.g. web=40")
        name, n = m.group(1), int(m.group(2))
        if n < 0:
            raise InputError(f"--replicas {item!r}: a replica count cannot be negative")
        if name in out:
            raise InputError(f"--replicas: service {name!r} given twice")
        out[name] = n
    return out


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?$")


def parse_deadline(text: str, now: datetime) -> datetime:
    """'5m', '300s', '1h' from now, or an ISO 8601 time (with a zone, or UTC)."""
    m = _DURATION.match(text.strip())
    if m:
        value, unit = float(m.group(1)), m.group(2) or "s"
        seconds = value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit]
        if seconds <= 0:
            raise InputError(f"--deadline {text!r}: must be in the future")
        return now + timedelta(seconds=seconds)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--deadline {text!r}: expected a duration like 5m or an ISO time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=now.tzinfo)
    if at <= now:
        raise InputError(f"--deadline {text!r} is in the past")
    return at


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
