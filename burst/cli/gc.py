"""`burst gc`: list the instances the clouds hold for this cluster that no live host
holds, and terminate them after confirmation."""

from __future__ import annotations

import sys
import uuid
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from burst.cli.common import ConfigOption, JsonOption, cells, config_for, console, err_console, esc, print_json
from burst.errors import BurstError
from burst.gc import GcResult, Leak, collect, find_leaks
from burst.provider.providers import ProviderSet
from burst.store import Store


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)


def gc(dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the leaks; change nothing.")] = False,
       yes: Annotated[bool, typer.Option("--yes", "-y", help="Terminate without asking.")] = False,
       json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Leaked instances: owned by this cluster in a cloud, held by no live host in the store.

    Instances not tagged as this cluster's are never listed and never touched."""
    cfg = config_for(config)
    store = Store(cfg.store_url)
    providers = ProviderSet(cfg)
    try:
        leaks = find_leaks(cfg, store, providers)
        if not json_out:
            _print_leaks(cfg.cluster.name, leaks)
        if dry_run or not leaks:
            if json_out:
                print_json({"cluster": cfg.cluster.name, "dry_run": dry_run, "leaks": [x.to_dict() for x in leaks],
                            "terminated": []})
            return
        if not yes:
            if not sys.stdin.isatty():
                raise BurstError(f"{len(leaks)} leaked instance(s) found; not terminating without --yes "
                                 "(no terminal to confirm on); --dry-run only lists them")
            if not typer.confirm(f"Terminate these {len(leaks)} instance(s)?", err=True):
                err_console.print("nothing terminated")
                raise typer.Exit(1)
        result = collect(cfg, store, leaks, f"gc-{uuid.uuid4().hex[:12]}", providers)
    finally:
        providers.close()
        store.close()
    if json_out:
        print_json({"cluster": cfg.cluster.name, "dry_run": False, "leaks": [x.to_dict() for x in leaks],
                    "terminated": [x.instance_id for x in result.terminated],
                    "skipped": [x.instance_id for x in result.skipped],
                    "failed": [{"instance_id": x.instance_id, "error": e} for x, e in result.failed]})
    else:
        _print_result(result)
    if result.failed:
        raise typer.Exit(1)


def _print_leaks(cluster: str, leaks: list[Leak]) -> None:
    if not leaks:
        console.print(f"cluster {esc(cluster)}: no leaked instances")
        return
    table = Table(title=Text(f"leaked instances of cluster {cluster}"))
    widest = max(len(x.instance_id) for x in leaks)
    for col in ("tier", "provider", "instance", "zone", "type", "state", "burst", "why"):
        # an instance id is what the operator copies: never shortened
        table.add_column(col, no_wrap=col == "instance", min_width=widest if col == "instance" else None)
    for x in leaks:
        table.add_row(*cells(x.tier, x.provider, x.instance_id, x.zone, x.instance_type, x.state,
                             x.tags.get("burst:burst-id", "-"), x.why))
    console.print(table)


def _print_result(result: GcResult) -> None:
    if result.terminated:
        console.print(f"terminated {len(result.terminated)} leaked instance(s)")
    if result.skipped:
        console.print(Text(f"left {len(result.skipped)} alone: no longer leaked when looked at again "
                           f"({', '.join(x.instance_id for x in result.skipped)})"))
    for leak, error in result.failed:
        err_console.print(Text.assemble(("not terminated", "red"), f" {leak.instance_id}: {error}"),
                          highlight=False, soft_wrap=True)
