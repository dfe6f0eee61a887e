"""`burst plan`, `burst up`, `burst down`: the event-day commands."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rich.text import Text

from burst.cli.common import (
    ConfigOption,
    JsonOption,
    console,
    esc,
    guard_size,
    parse_deadline,
    parse_replicas,
    print_json,
    service_for,
    size_note,
)
from burst.names import check_event
from burst.errors import BurstError, Interrupted
from burst.lifecycle import FINAL, BurstStatus, HostState
from burst.reconciler import MAX_ATTEMPTS
from burst.reconciler.driver import Progress as BurstProgress
from burst.timings import sla_report

ReplicasOption = Annotated[
    list[str], typer.Option("--replicas", "-r", help="SERVICE=N extra replicas; repeat for more services.")
]
DeadlineOption = Annotated[str, typer.Option("--deadline", "-d", help="When the capacity must be ready: 5m, 300s, "
                                                                         "or an ISO time.")]


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("up")(up)
    app.command("down")(down)


def plan(event: str, replicas: ReplicasOption, deadline: DeadlineOption = "5m", json_out: JsonOption = False,
         config: ConfigOption = None) -> None:
    """Dry run: the hosts per tier, zone and type that `burst up` would add, their cost and ready time."""
    check_event(event)
    with service_for(config) as svc:
        the_plan = svc.plan(event, parse_replicas(replicas), parse_deadline(deadline, svc.clock.now()))
        limits = size_note(the_plan, svc.config)
    if json_out:
        print_json({"event": event, **the_plan.to_dict()})
        return
    table = Table(title=Text(f"plan for {event}"))
    for col in ("tier", "provider", "zone", "instance type", "hosts", "replicas", "$/h", "ready in"):
        table.add_column(col, justify="right" if col in ("hosts", "$/h", "ready in") else "left")
    for g in the_plan.groups:
        table.add_row(g.tier, g.provider, g.zone, g.instance_type, str(g.count),
                      ", ".join(f"{k}={v}" for k, v in g.replicas.items()), f"{g.cost_per_hour:.2f}",
                      f"{g.ready_seconds:.0f}s")
    console.print(table)
    console.print(f"{the_plan.hosts} hosts, {the_plan.cost_per_hour:.2f}/h, expected ready in "
                  f"{the_plan.ready_seconds:.0f}s" + (f"; fits in free room: {the_plan.absorbed}"
                                                      if the_plan.absorbed else ""))
    console.print(Text(limits))
    for tier, why in the_plan.skipped:
        console.print(f"[yellow]skipped tier {esc(tier)}: {esc(why)}[/yellow]")
    if the_plan.unplaced:
        raise BurstError(f"no tier can take {the_plan.unplaced} before the deadline")


@contextmanager
def _interruptible(svc, burst, resume: str, give_back: str | None) -> Iterator[None]:
    """Ctrl-C while driving: the steps in flight finish and are written (the store stays
    consistent), then one line says what is left and the commands that go on."""
    try:
        yield
    except KeyboardInterrupt:
        svc.reconciler.close()  # waits for the steps in flight and applies what they found
        counts = svc.store.state_counts(burst.id)
        live = {s: n for s, n in sorted(counts.items()) if HostState(s) not in FINAL}
        what = ", ".join(f"{s}={n}" for s, n in live.items()) or "none"
        raise Interrupted(f"interrupted: burst {burst.id} has {sum(live.values())} live hosts ({what}); "
                          f"`{resume}` goes on" + (f", `{give_back}` returns them" if give_back else "")) from None


def _render(progress_events: Iterable[BurstProgress], json_out: bool) -> BurstProgress | None:
    """Show the driver's progress as a bar per phase (done of total, in flight, failed,
    time left to the deadline); returns the last progress."""
    bars = Progress(TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console, disable=json_out)
    tasks: dict[str, int] = {}
    last = None
    with bars:
        for last in progress_events:
            for phase in last.phases:
                detail = f"{phase.in_flight} in flight" if phase.in_flight else ""
                if phase is last.phases[-1]:
                    detail += (", " if detail else "") + (f"{last.failed} failed, " if last.failed else "") + (
                        f"{last.seconds_left:.0f}s to deadline" if last.direction == "up" and last.seconds_left > 0
                        else "")
                if phase.name not in tasks:
                    tasks[phase.name] = bars.add_task(phase.name, total=phase.total, detail=detail)
                bars.update(tasks[phase.name], completed=phase.done, total=phase.total, detail=detail)
    return last


def up(event: str, replicas: ReplicasOption, deadline: DeadlineOption = "5m", json_out: JsonOption = False,
       wait: Annotated[bool, typer.Option(help="Work until the capacity is ready (--no-wait: record the intent "
                                               "and leave it to `burst daemon`).")] = True,
       yes: Annotated[bool, typer.Option("--yes", "-y", help="Go ahead above the [limits] size guard (on a terminal "
                                                             "only).")] = False,
       config: ConfigOption = None) -> None:
    """Add capacity for EVENT. Run again to resume an interrupted burst: it never launches twice."""
    with service_for(config) as svc:
        demand = parse_replicas(replicas)
        check_event(event)
        deadline_at = parse_deadline(deadline, svc.clock.now())
        if svc.store.live_burst(event) is None:  # a burst being resumed was sized when it was made
            guard_size(svc.plan(event, demand, deadline_at), svc.config, yes=yes)  # refuses, or says it goes on
        burst = svc.up(event, demand, deadline_at, oversize_ok=True)
        last = None
        if wait:
            limit = (burst.deadline_at - svc.clock.now()).total_seconds() + svc.config.cluster.phase_timeout_seconds
            resume = f"burst up {event} " + " ".join(f"-r {r}" for r in replicas) + f" --deadline {deadline}"
            with _interruptible(svc, burst, resume, f"burst down {event}"):
                last = _render(svc.drive(burst, seconds=max(limit, 1)), json_out)
        burst = svc.store.get_burst(burst.id)
        report = sla_report(svc.store, burst, svc.config.cluster.sla_seconds)
    if json_out:
        print_json(report)
    else:
        _print_sla(report)
    if last is None:
        return
    if last.outcome == "halted":
        raise BurstError(f"burst {burst.id} halted, nothing more is launched: {last.halted}; fix it, then "
                         f"`burst up` again resumes, or `burst down {event}` returns what is left")
    if last.outcome == "given_up":
        raise BurstError(f"burst {burst.id}: every slot was given up ({report['hosts_failed']} hosts failed, at most "
                         f"{MAX_ATTEMPTS} a slot); `burst events {event}` says why, `burst down {event}` returns "
                         f"what is left")
    if last.direction == "down":
        raise BurstError(f"burst {burst.id}: `burst down {event}` was asked meanwhile; it is being scaled in")
    if not last.done:
        raise BurstError(f"burst {burst.id}: {report['ready_hosts']} of {report['planned_hosts']} hosts ready when "
                         f"the deadline passed; the same `burst up` again resumes it")


def _print_sla(report: dict) -> None:
    took = report["seconds_to_ready"]
    verdict = ("[green]SLA met[/green]" if report["sla_met"] else "[red]SLA missed[/red]") if took is not None \
        else "[yellow]not ready yet[/yellow]"
    console.print(f"{esc(report['event'])} ({report['burst']}): {report['ready_hosts']}/{report['planned_hosts']} hosts "
                  f"ready" + (f" in {took:.1f}s" if took is not None else "") +
                  f" (SLA {report['sla_seconds']:.0f}s): {verdict}; {report['hosts_failed']} hosts failed"
                  + (" and were replaced" if report["hosts_failed"] and report["ready_hosts"] == report["planned_hosts"]
                     else ""))
    table = Table(title="phase seconds per host")
    for col in ("phase", "hosts", "p50", "p95", "max"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for name, s in list(report["phases"].items()) + [("to ready", report["to_ready"])]:
        if s["n"]:
            table.add_row(name, str(s["n"]), f"{s['p50']:.2f}", f"{s['p95']:.2f}", f"{s['max']:.2f}")
    console.print(table)


def down(event: str, json_out: JsonOption = False,
         wait: Annotated[bool, typer.Option(help="Work until every host is returned.")] = True,
         timeout: Annotated[float, typer.Option(help="Seconds to wait for the scale-in.")] = 900,
         config: ConfigOption = None) -> None:
    """Scale EVENT's capacity back in: spillover off, drain, leave, terminate; AWS first, then Aliyun, then the pool."""
    with service_for(config) as svc:
        burst = svc.down(event)
        already_down = burst.status is BurstStatus.DOWN
        done = already_down
        if wait and not already_down:
            with _interruptible(svc, burst, f"burst down {event}", None):
                last = _render(svc.drive(burst, seconds=timeout), json_out)
            done = last is not None and last.done
        burst = svc.store.get_burst(burst.id)
        counts_now = svc.store.state_counts(burst.id)
    result = {"event": event, "burst": burst.id, "status": burst.status.value, "hosts": counts_now,
              "already_down": already_down}
    if json_out:
        print_json(result)
    else:
        console.print(f"{esc(event)} ({burst.id}): " + ("already down" if already_down else burst.status.value)
                      + "; hosts: " + ", ".join(f"{k}={v}" for k, v in sorted(counts_now.items())))
    if wait and not done:
        raise BurstError(f"burst {burst.id} not fully returned after {timeout:.0f}s: {counts_now}; "
                         f"`burst down {event}` resumes")
