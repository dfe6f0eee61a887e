"""`burst calendar`: events entered ahead of a known peak, run by `burst daemon`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from burst.calendar.ics import parse_ics, to_ics
from burst.calendar.model import (MAX_LEAD, CalendarError, CalendarEvent, format_demand, parse_demand,
                                  parse_duration, parse_local_time)
from burst.calendar.recurrence import next_occurrences
from burst.calendar.repo import CalendarRepo
from burst.calendar.validate import validate
from burst.calendar.repo import UnreadableEvent
from burst.cli.common import ConfigOption, JsonOption, cells, config_for, console, err_console, esc, print_json

app = typer.Typer(help="The pre-scaling calendar: capacity in place before a known peak, returned after it.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

ReplicasOption = Annotated[list[str] | None, typer.Option("--replicas", "-r",
                                                          help="SERVICE=N, repeatable (web=40 or web=40,api=8).")]


def _open(config_path):
    from burst.store import Store

    config = config_for(config_path)
    return config, CalendarRepo(Store(config.store_url))


def _length(event: CalendarEvent) -> str:
    seconds = int(event.length.total_seconds())
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _lead(event: CalendarEvent) -> str:
    return f"{event.lead_seconds:g}s" if event.lead_seconds is not None else "auto"


def _when(t: datetime, tz) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _as_dict(event: CalendarEvent, now: datetime, count: int) -> dict:
    return {
        "name": event.name, "title": event.title, "kind": event.kind, "start": event.start.isoformat(),
        "timezone": event.timezone, "end": event.end.isoformat() if event.end else None,
        "duration_seconds": event.duration.total_seconds() if event.duration is not None else None,
        "demand": dict(event.demand), "lead_seconds": event.lead_seconds, "rrule": event.rrule, "cron": event.cron,
        "description": event.description, "uid": event.uid,
        "next": [{"key": o.key, "start": o.start.isoformat(), "end": o.end.isoformat()}
                 for o in next_occurrences(event, now, count)],
    }


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="Lowercase name, e.g. spring-gala.")],
    start: Annotated[str, typer.Option(help="Wall-clock start in --tz (2026-01-28T20:00), or from now (+2m).")],
    end: Annotated[str | None, typer.Option(help="Wall-clock end in --tz (or +3h from now).")] = None,
    duration: Annotated[str | None, typer.Option(help="How long it lasts: 90m, 2h, PT2H.")] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA timezone of start and end.")] = "UTC",
    replicas: ReplicasOption = None,
    lead: Annotated[str | None, typer.Option(help="Fixed lead time (10m); default: measured p95 time-to-ready "
                                                  "plus the daemon's margin.")] = None,
    rrule: Annotated[str | None, typer.Option(help="RFC 5545 recurrence, e.g. FREQ=WEEKLY;BYDAY=FR;COUNT=4.")] = None,
    cron: Annotated[str | None, typer.Option(help="5-field cron recurrence, e.g. '0 20 * * 5'.")] = None,
    freeze: Annotated[bool, typer.Option("--freeze", help="A freeze window: no scale-in while it runs.")] = False,
    title: Annotated[str, typer.Option(help="Display title (default: the name).")] = "",
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    replace: Annotated[bool, typer.Option("--replace", help="Replace an event of the same name.")] = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add an event (or a freeze window). Checked strictly; nothing is stored on error."""
    cfg, repo = _open(config)
    now = datetime.now(UTC)
    event = CalendarEvent(
        name=name, start=parse_local_time(start, tz, now=now), timezone=tz,
        end=parse_local_time(end, tz, now=now) if end else None,
        duration=parse_duration(duration, flag="--duration") if duration else None,
        demand=parse_demand(replicas or []),
        lead_seconds=parse_duration(lead, flag="--lead", maximum=MAX_LEAD, allow_zero=True).total_seconds()
        if lead else None, rrule=rrule, cron=cron,
        freeze=freeze, title=title, description=description)
    event = validate(event, services=[s.name for s in cfg.services])
    stored = repo.add([event], replace=replace)[0]
    if json_out:
        print_json(_as_dict(stored, now, 3))
        return
    nxt = next_occurrences(stored, now, 1)
    err_console.print(f"added {stored.kind} {esc(stored.name)}"
                      + (f": next {_when(nxt[0].start, stored.tz)}" if nxt else ": no occurrence ahead"),
                      highlight=False)


def _warn_unreadable(unreadable: list[UnreadableEvent]) -> None:
    for bad in unreadable:
        err_console.print(cells(f"warning: {bad.message}")[0], style="yellow", highlight=False, soft_wrap=True)


@app.command("list")
def list_(
    count: Annotated[int, typer.Option(help="Next occurrences to show per event.", min=1, max=50)] = 3,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every event with its next occurrences."""
    _, repo = _open(config)
    now = datetime.now(UTC)
    events, unreadable = repo.list_checked()
    _warn_unreadable(unreadable)
    if json_out:
        print_json([_as_dict(e, now, count) for e in events])
        return
    table = Table(title="calendar", show_lines=False)
    for col in ("name", "kind", "demand", "length", "lead", "recurrence", "next occurrences"):
        table.add_column(col)
    for e in events:
        nxt = next_occurrences(e, now, count)
        table.add_row(*cells(e.name, e.kind, format_demand(e.demand) or "-", _length(e), _lead(e),
                             e.recurrence or "once", "\n".join(_when(o.start, e.tz) for o in nxt) or "none ahead"))
    if events:
        console.print(table)
    elif not unreadable:
        err_console.print("the calendar is empty (add one: burst calendar add)")


@app.command()
def show(
    name: Annotated[str, typer.Argument()],
    count: Annotated[int, typer.Option(help="Next occurrences to show.", min=1, max=100)] = 5,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """One event: its rule, next occurrences and what the daemon did for it."""
    cfg, repo = _open(config)
    now = datetime.now(UTC)
    event = repo.get(name)
    actions = repo.actions(name)
    if json_out:
        print_json({**_as_dict(event, now, count),
                    "actions": [{"occurrence": a.occurrence, "action": a.action, "status": a.status,
                                 "outcome": a.outcome, "due_at": a.due_at, "done_at": a.done_at,
                                 "burst_id": a.burst_id, "error": a.error, "daemon": a.daemon} for a in actions]})
        return
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    length = f"until {event.end.isoformat()}" if event.end else f"for {_length(event)}"
    for k, v in (("name", event.name), ("title", event.title), ("kind", event.kind),
                 ("start", f"{event.start.isoformat()} {event.timezone}, {length}"),
                 ("demand", format_demand(event.demand) or "-"), ("lead", _lead(event)),
                 ("recurrence", event.recurrence or "once"), ("uid", event.uid)):
        info.add_row(*cells(k, v))
    console.print(info)
    occ = Table(title="next occurrences")
    for col in ("occurrence", "start", "end"):
        occ.add_column(col)
    for o in next_occurrences(event, now, count):
        occ.add_row(*cells(o.key, _when(o.start, event.tz), _when(o.end, event.tz)))
    console.print(occ)
    if actions:
        done = Table(title="daemon actions")
        for col in ("occurrence", "action", "status", "outcome", "due", "burst"):
            done.add_column(col)
        for a in actions:
            done.add_row(*cells(a.occurrence, a.action, a.status, a.outcome, _when(a.due_at, event.tz),
                                a.burst_id or "-"))
        console.print(done)


@app.command()
def remove(name: Annotated[str, typer.Argument()], config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Forget an event. A burst it already started still ends at its occurrence's end."""
    _, repo = _open(config)
    removed = repo.remove(name)
    if json_out:
        print_json({"removed": removed})
    else:
        err_console.print(f"removed {esc(removed)}", highlight=False)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="An .ics file (RFC 5545).", exists=False)],
    tz: Annotated[str, typer.Option("--tz", help="Timezone of floating (zone-less) times.")] = "UTC",
    replicas: ReplicasOption = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace events of the same name.")] = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Import every VEVENT of an .ics file, all or nothing. Demand comes from
    X-BURST-DEMAND, a `burst: web=10` line in the description, or --replicas."""
    cfg, repo = _open(config)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CalendarError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        events = parse_ics(data, services=[s.name for s in cfg.services], default_timezone=tz,
                           default_demand=parse_demand(replicas or []))
    except CalendarError as exc:
        raise CalendarError(f"{file}: {exc}") from None
    stored = repo.add(events, replace=replace)
    if json_out:
        now = datetime.now(UTC)
        print_json([_as_dict(e, now, 3) for e in stored])
    else:
        err_console.print(cells(f"imported {len(stored)} event(s) from {file}: "
                                f"{', '.join(e.name for e in stored)}")[0], highlight=False)


@app.command()
def export(
    file: Annotated[Path | None, typer.Argument(help="Write here (default: standard output).")] = None,
    config: ConfigOption = None,
) -> None:
    """Every event as one .ics file."""
    _, repo = _open(config)
    events, unreadable = repo.list_checked()
    _warn_unreadable(unreadable)
    data = to_ics(events)
    if file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            file.write_bytes(data)
        except OSError as exc:
            raise CalendarError(f"{file}: cannot write: {exc.strerror}") from None
        err_console.print(f"wrote {esc(file)}", highlight=False)
