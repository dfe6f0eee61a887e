"""`burst status`, `burst events`, `burst report`: reading what burst did and is doing."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from burst.lifecycle import LIVE
from burst.cli.common import ConfigOption, JsonOption, cells, console, esc, print_json
from burst.config import load_config
from burst.errors import BurstError
from burst.store import Store
from burst.timings import host_timings, sla_report


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("events")(events)
    app.command("report")(report)


def _store(config) -> tuple:
    cfg = load_config(config)
    return cfg, Store(cfg.store_url)


def status(event: Annotated[str | None, typer.Argument(help="Only this event.")] = None,
           all_: Annotated[bool, typer.Option("--all", help="Include bursts that are down.")] = False,
           json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Live bursts and their hosts by state and tier."""
    cfg, store = _store(config)
    try:
        bursts = store.bursts(None if all_ else LIVE)
        if event:
            bursts = [b for b in bursts if b.event == event]
        rows = []
        for b in bursts:
            hosts = store.hosts(b.id)
            plan = json.loads(b.plan_json)
            rows.append({
                "event": b.event, "burst": b.id, "status": b.status,
                "created_at": b.created_at.isoformat(), "deadline_at": b.deadline_at.isoformat(),
                "ready_at": b.ready_at.isoformat() if b.ready_at else None,
                "planned_hosts": plan["hosts"], "cost_per_hour": plan["cost_per_hour"],
                "demand": json.loads(b.demand_json),
                "hosts_by_state": dict(Counter(h.state for h in hosts)),
                "hosts_by_tier": {t: dict(Counter(h.state for h in hosts if h.tier == t))
                                  for t in dict.fromkeys(h.tier for h in hosts)},
            })
    finally:
        store.close()
    if json_out:
        print_json({"cluster": cfg.cluster.name, "bursts": rows})
        return
    if not rows:
        console.print(f"cluster {esc(cfg.cluster.name)}: no live burst")
        return
    table = Table(title=Text(f"cluster {cfg.cluster.name}"))
    for col in ("event", "burst", "status", "hosts", "by state", "by tier", "$/h"):
        table.add_column(col)
    for r in rows:
        table.add_row(*cells(r["event"], r["burst"], r["status"], r["planned_hosts"],
                             " ".join(f"{k}={v}" for k, v in sorted(r["hosts_by_state"].items())),
                             " ".join(f"{t}:{sum(c.values())}" for t, c in r["hosts_by_tier"].items()),
                             f"{r['cost_per_hour']:.2f}"))
    console.print(table)


def _burst_for(store: Store, event: str):
    burst = store.live_burst(event) or store.latest_burst(event)
    if burst is None:
        raise BurstError(f"no burst for event {event!r}")
    return burst


def events(event: Annotated[str | None, typer.Argument(help="Only this event's journal.")] = None,
           host: Annotated[str | None, typer.Option(help="Only this host.")] = None,
           limit: Annotated[int, typer.Option(help="The last N entries.", min=0, max=100_000)] = 50,
           json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """The journal: every intent, transition and error, oldest first."""
    _, store = _store(config)
    try:
        burst_id = _burst_for(store, event).id if event else None
        entries = store.journal_entries(burst_id=burst_id, host_id=host, last=limit) if limit > 0 else []
    finally:
        store.close()
    rows = [{"id": e.id, "at": e.at.isoformat(), "burst": e.burst_id, "host": e.host_id, "kind": e.kind,
             "from": e.from_state, "to": e.to_state, "message": e.message, "detail": json.loads(e.detail_json)}
            for e in entries]
    if json_out:
        print_json(rows)
        return
    table = Table()
    for col in ("at", "host", "kind", "message"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(*cells(r["at"][11:23], r["host"] or "", r["kind"], r["message"]))
    console.print(table)


_PHASE_STYLE = [("launching", "running", "blue", "L"), ("running", "initialising", "grey50", "."),
                ("initialising", "initialised", "yellow", "I"), ("initialised", "ready", "magenta", "J")]


_BLOCKS = " ▁▂▃▄▅▆▇█"


def _capacity_chart(burst, times: dict, width: int) -> None:
    """Ready hosts over the burst's life, one character per time step."""
    start = burst.created_at
    moments = [t for h in times.values() for t in h.values()]
    if not moments:
        return
    end = max(moments)
    span = max((end - start).total_seconds(), 1e-3)
    intervals = []
    for t in times.values():
        if "ready" in t:
            left = [t[s] for s in ("draining", "leaving", "terminating") if s in t and t[s] >= t["ready"]]
            intervals.append((t["ready"], min(left) if left else None))
    counts = []
    for i in range(width):
        at = start + (end - start) * (i / max(width - 1, 1))
        counts.append(sum(1 for a, b in intervals if a <= at and (b is None or at < b)))
    peak = max(counts) or 1
    line = "".join(_BLOCKS[round(c / peak * (len(_BLOCKS) - 1))] for c in counts)
    console.print(f"ready hosts over {span:.0f}s: [green]{line}[/green] peak {max(counts)}")


def report(event: str, json_out: JsonOption = False,
           width: Annotated[int, typer.Option(help="Timeline width in characters (8-400).", min=8, max=400)] = 48,
           hosts: Annotated[int, typer.Option(help="Hosts shown on the timeline.", min=0, max=100_000)] = 30,
           config: ConfigOption = None) -> None:
    """The SLA report of EVENT's burst, with a timeline of every host's phases."""
    from burst.timings import state_times

    cfg, store = _store(config)
    try:
        burst = _burst_for(store, event)
        rep = sla_report(store, burst, cfg.cluster.sla_seconds)
        rep["hosts"] = host_timings(store, burst)
        times = state_times(store, burst.id)
    finally:
        store.close()
    if json_out:
        print_json(rep)
        return
    from burst.cli.bursts import _print_sla

    _print_sla(rep)
    _capacity_chart(burst, times, width)
    start = burst.created_at
    ends = [t for h in times.values() for s, t in h.items() if s in ("ready", "init_failed", "launch_failed",
                                                                       "join_failed")]
    if not ends:
        return
    span = max((max(ends) - start).total_seconds(), 1e-3)
    console.print(f"timeline: 0 .. {span:.1f}s  [blue]L[/blue] launch  [grey50].[/grey50] waiting  "
                  f"[yellow]I[/yellow] initialise  [magenta]J[/magenta] join")
    for row in rep["hosts"][:hosts]:
        t = times.get(row["host"], {})
        cells = [(" ", "")] * width
        for begin, end, style, char in _PHASE_STYLE:
            if begin in t:
                a = max(0, int((t[begin] - start).total_seconds() / span * (width - 1)))
                b = int(((t.get(end) or t[begin]) - start).total_seconds() / span * (width - 1))
                for i in range(a, min(max(b, a + 1), width)):
                    cells[i] = (char, style)
        line = Text(f"{str(row['host'])[-12:]:>12} ")
        for char, style in cells:
            line.append(char, style)
        line.append(f" {row['state']}")
        console.print(line)
