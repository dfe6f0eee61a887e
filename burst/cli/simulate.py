"""`burst simulate`: would this burst make its SLA? The real planner, reconciler and
store on simulated clouds and virtual time, against the floor of the same draws."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape as markup_escape
from rich.table import Table

from burst.charts import sample, sparkline, svg_steps
from burst.cli.common import ConfigOption, JsonOption, console, parse_replicas, print_json
from burst.config import load_config
from burst.errors import InputError
from burst.simulate.profile import load_profile
from burst.simulate.run import CHAIN, SimResult, simulate as run_simulation


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    replicas: Annotated[list[str], typer.Option("--replicas", "-r", help="SERVICE=N extra replicas; repeat.")],
    hosts: Annotated[int | None, typer.Option(help="Size the hosts so the burst is this many hosts (one "
                                                   "instance type per tier holding its share of the replicas).")] = None,
    profile: Annotated[Path | None, typer.Option(help="The simulation profile (TOML); default: published "
                                                      "figures, see docs/simulate.md.")] = None,
    html: Annotated[Path | None, typer.Option(help="Also write a report with a chart to this HTML file.")] = None,
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Simulate `burst up` and `burst down` of the demand on this config's tiers."""
    if hosts is not None and not 1 <= hosts <= 100_000:
        raise InputError(f"--hosts {hosts}: between 1 and 100000")
    cfg = load_config(config)
    demand = parse_replicas(replicas)
    for name in demand:
        cfg.service(name)
    with console.status("simulating...", spinner="dots") if not json_out else _nothing():
        result = run_simulation(cfg, demand, load_profile(profile), hosts=hosts)
    if html:
        html.write_text(_html(result), encoding="utf-8")
    if json_out:
        print_json(result.to_dict())
        return
    _print(result, html)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _verdict(r: SimResult) -> str:
    if r.seconds is None:
        return f"[red]not ready in {r.limit_seconds:.0f}s simulated[/red]"
    return "[green]SLA met[/green]" if r.sla_met else "[red]SLA missed[/red]"


def _print(r: SimResult, html: Path | None) -> None:
    took = f"{r.seconds:.1f}s" if r.seconds is not None else "-"
    console.print(f"{r.hosts} hosts ({', '.join(f'{markup_escape(t)}={n}' for t, n in r.tiers.items())}), "
                  f"{sum(r.replicas.values())} replicas: ready in {took}, floor {r.floor:.1f}s"
                  + (f", ratio {r.ratio:.3f}" if r.ratio else "") + f" (SLA {r.sla_seconds:.0f}s): {_verdict(r)}")
    console.print(f"bottleneck: [bold]{r.bottleneck}[/bold] "
                  + "(" + ", ".join(f"{k} {r.critical_chain.get(k, 0):.1f}s" for k in CHAIN) + " on the slowest host)")
    if r.timeline:
        end = max(r.timeline[-1][0], 1e-3)
        ready = sample([(t, a) for t, a, _ in r.timeline], end, 60)
        running = sample([(t, b) for t, _, b in r.timeline], end, 60)
        console.print(f"hosts ready      [green]{sparkline(ready, r.hosts)}[/green] {r.hosts} at {end:.0f}s")
        console.print(f"tasks running on [cyan]{sparkline(running, r.hosts)}[/cyan]")
    table = Table(title="phase seconds per host")
    for col in ("phase", "hosts", "p50", "p95", "max"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for name, s in r.phases.items():
        if s["n"]:
            table.add_row(name, str(s["n"]), f"{s['p50']:.1f}", f"{s['p95']:.1f}", f"{s['max']:.1f}")
    console.print(table)
    calls = "; ".join(f"{markup_escape(t)}: " + ", ".join(f"{k} {v}" for k, v in c.items())
                      for t, c in r.api_calls.items())
    console.print(f"API calls: {calls}; throttled: {r.throttled}; {r.hosts_failed} hosts failed; down in "
                  + (f"{r.down_seconds:.1f}s" if r.down_seconds is not None else "-")
                  + f"; simulated in {r.real_seconds:.1f}s real time")
    if html:
        console.print(f"report: {html}")


def _html(r: SimResult) -> str:
    end = max(r.timeline[-1][0] if r.timeline else 0, r.sla_seconds)
    chart = svg_steps({"hosts ready": [(t, a) for t, a, _ in r.timeline],
                       "tasks running on": [(t, b) for t, _, b in r.timeline]}, end,
                      marks={"SLA": r.sla_seconds, "floor": r.floor, **({"burst": r.seconds} if r.seconds else {})})
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{r.critical_chain.get(k, 0):.1f}</td></tr>" for k in CHAIN)
    phases = "".join(f"<tr><td>{escape(n)}</td><td>{s['n']}</td><td>{s['p50']}</td><td>{s['p95']}</td>"
                     f"<td>{s['max']}</td></tr>" for n, s in r.phases.items() if s["n"])
    verdict = f"not ready in {r.limit_seconds:.0f} s simulated" if r.seconds is None else ("SLA met" if r.sla_met else "SLA missed")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>burst simulate</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body><h1>burst simulate: {r.hosts} hosts, {sum(r.replicas.values())} replicas</h1>
<p>Ready in {f"{r.seconds:.1f}" if r.seconds is not None else "-"} s; floor {r.floor:.1f} s; ratio {r.ratio or "-"};
SLA {r.sla_seconds:.0f} s: <b>{verdict}</b>. Bottleneck: <b>{escape(r.bottleneck)}</b>.</p>
{chart}
<h2>The slowest host's chain (seconds)</h2><table>{rows}</table>
<h2>Phase seconds per host</h2><table><tr><th>phase</th><th>hosts</th><th>p50</th><th>p95</th><th>max</th></tr>{phases}</table>
</body></html>"""
