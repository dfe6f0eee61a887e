"""`burst pool`: business units lend a share of their servers to the shared pool.

  burst pool import BU INVENTORY        the unit's hosts, from an Ansible inventory
  burst pool lend BU [--share 10%]      lend a share of them (rounded down), or
  burst pool lend BU HOST...            lend these hosts
  burst pool list [--json]              units: hosts, lent, leased
  burst pool show [BU] [--json]         hosts: size, address, who holds them
  burst pool recall BU [HOST...]        take lent hosts back (--force in a freeze window)
  burst pool report [--since DATE]      host-hours lent and borrowed per unit

Every refusal is one line on stderr and exit code 1, and changes nothing.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from burst.cli.common import ConfigOption, JsonOption, cells, error_line, print_json
from burst.cli.common import console as _out
from burst.cli.common import err_console as _err
from burst.config import Config, load_config
from burst.errors import BurstError, InputError
from burst.pool import ledger
from burst.pool.report import pool_report
from burst.store import Store

app = typer.Typer(name="pool", help="The shared on-prem pool: lend, lease, recall, account.",
                  no_args_is_help=True, add_completion=False)


def _one_line_errors(command):
    """A BurstError is one line on stderr and exit 1, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BurstError as exc:
            _err.print(error_line(str(exc)), highlight=False, soft_wrap=True)
            # SystemExit, not typer.Exit: `burst` runs Typer with standalone_mode=False,
            # where an Exit becomes a return value and the process would exit 0
            raise SystemExit(1) from None
    return wrapper


def _say(message: str) -> None:
    """One line for the operator, printed as it is (names are never read as markup)."""
    _out.print(Text(message), highlight=False, soft_wrap=True)


def pool_store_url(config: Config) -> str:
    """The pool ledger's store: an onprem tier's `store` option when the pool is
    shared by clusters with stores of their own, else the cluster's store."""
    for tier in config.tiers:
        if tier.provider == "onprem" and tier.options.get("store"):
            return str(tier.options["store"])
    return config.store_url


def _open(config_path: Path | None) -> tuple[Config, Store]:
    config = load_config(config_path)
    return config, Store(pool_store_url(config))


@app.command("import")
@_one_line_errors
def import_(unit: Annotated[str, typer.Argument(help="business unit")],
            inventory: Annotated[Path, typer.Argument(help="Ansible inventory, INI or YAML")],
            config: ConfigOption = None) -> None:
    """Record a unit's hosts from its Ansible inventory (cpu and memory per host)."""
    _, store = _open(config)
    try:
        result = ledger.import_inventory(store, unit, inventory)
    finally:
        store.close()
    _say(f"unit {unit}: {len(result.added)} hosts added, {len(result.updated)} updated, "
               f"{len(result.removed)} removed")


@app.command()
@_one_line_errors
def lend(unit: Annotated[str, typer.Argument(help="business unit")],
         hosts: Annotated[Optional[list[str]], typer.Argument(help="these hosts (instead of a share)")] = None,
         share: Annotated[Optional[str], typer.Option("--share", help="share of the unit's hosts, e.g. 10% "
                                                       "(rounded down; default 10%)")] = None,
         config: ConfigOption = None) -> None:
    """Lend hosts of a unit to the pool: a share of them, or the hosts named."""
    fraction = ledger.parse_share(share) if share is not None else None
    if hosts and fraction is not None:
        raise InputError("give --share or a host list, not both")
    _, store = _open(config)
    try:
        lent = ledger.lend(store, unit, share=fraction, hosts=hosts or ())
        view = next(u for u in ledger.unit_views(store) if u.name == unit)
    finally:
        store.close()
    _say(f"unit {unit}: {len(lent)} more hosts lent{': ' + ', '.join(lent) if lent else ''}; "
               f"{view.lent} of {view.hosts} in the pool")


@app.command("list")
@_one_line_errors
def list_(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The business units in the pool."""
    _, store = _open(config)
    try:
        units = ledger.unit_views(store)
    finally:
        store.close()
    if as_json:
        print_json([u.as_dict() for u in units])
        return
    table = Table(title="pool units")
    for col in ("unit", "hosts", "lent", "leased", "recalling", "share", "inventory"):
        table.add_column(col, justify="right" if col in ("hosts", "lent", "leased", "recalling", "share") else "left")
    for u in units:
        table.add_row(*cells(u.name, u.hosts, u.lent, u.leased, u.recalling,
                             f"{u.share:.0%}" if u.share is not None else "-", u.inventory))
    _out.print(table)


@app.command()
@_one_line_errors
def show(unit: Annotated[Optional[str], typer.Argument(help="only this unit's hosts")] = None,
         as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The pool's hosts: size, address, status (owned, lent, leased, recalling) and holder."""
    _, store = _open(config)
    try:
        hosts = ledger.host_views(store, unit)
    finally:
        store.close()
    if as_json:
        print_json([h.as_dict() for h in hosts])
        return
    table = Table(title=Text(f"pool hosts{' of ' + unit if unit else ''}"))
    for col in ("host", "unit", "address", "cpu", "memory", "zone", "status", "cluster", "event", "since"):
        table.add_column(col)
    for h in hosts:
        table.add_row(*cells(h.name, h.unit, f"{h.address}:{h.port}", f"{h.cpu:g}", f"{h.memory_gib:g} GiB", h.zone,
                             h.status, h.cluster or "", h.event or "",
                             h.leased_at.isoformat(timespec="minutes") if h.leased_at else ""))
    _out.print(table)


@app.command()
@_one_line_errors
def recall(unit: Annotated[str, typer.Argument(help="business unit")],
           hosts: Annotated[Optional[list[str]], typer.Argument(help="these hosts (default: all it lent)")] = None,
           force: Annotated[bool, typer.Option("--force", help="recall even during an event's freeze window")] = False,
           config: ConfigOption = None) -> None:
    """Take lent hosts back: free ones at once, leased ones once their burst has replaced and drained them."""
    cfg, store = _open(config)
    # freeze windows live in the cluster's calendar, which may be another store than the pool's
    calendar = store if store.url == cfg.store_url else Store(cfg.store_url)
    try:
        result = ledger.recall(store, unit, hosts or (), force=force,
                               freeze_check=lambda _, at: ledger.calendar_freeze_check(calendar, at))
    finally:
        store.close()
        calendar.close()
    if result.returned:
        _say(f"back with {unit} now: {', '.join(result.returned)}")
    if result.already:
        _say(f"already recalled: {', '.join(result.already)}")
    mine = result.leased.get(cfg.cluster.name, [])
    for cluster, names in sorted(result.leased.items()):
        if cluster != cfg.cluster.name:
            _say(f"held by cluster {cluster}: {', '.join(names)}: its reconciler sees them as recalled "
                 "and must retire them")
    if mine:
        _retire(cfg, mine, unit)
    if not (result.returned or result.already or result.leased):
        _say(f"unit {unit} has no lent host to recall")


def _retire(config: Config, names: list[str], unit: str) -> None:
    """Ask this cluster's bursts to replace, drain and release the recalled hosts."""
    from burst.service import BurstService

    service = BurstService(config)
    try:
        retire = getattr(service, "retire_hosts", None)
        if retire is None:
            _err.print(Text(f"warning: recalled in the ledger (no new lease), but this burst cannot retire leased "
                            f"hosts yet: {', '.join(names)} stay until `burst down` releases them"),
                       highlight=False, soft_wrap=True)
            return
        retire(names, "onprem", f"recalled by {unit}")
    finally:
        service.close()
    _say(f"leased by this cluster, being replaced and drained: {', '.join(names)}")


def parse_since(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since {text!r}: expected a date like 2026-01-31 or 2026-01-31T08:00") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@app.command()
@_one_line_errors
def report(since: Annotated[Optional[str], typer.Option("--since", help="from this date (ISO; UTC unless given)")] = None,
           as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Host-hours each unit lent and bursts borrowed of its hosts, and every lease."""
    start = parse_since(since) if since else None
    _, store = _open(config)
    try:
        figures = pool_report(store, since=start)
    finally:
        store.close()
    if as_json:
        print_json(figures.as_dict())
        return
    title = f"pool host-hours {'since ' + start.isoformat(timespec='minutes') if start else 'all time'}"
    table = Table(title=title)
    for col in ("unit", "lent h", "borrowed h", "leases", "used"):
        table.add_column(col, justify="left" if col == "unit" else "right")
    for u in figures.units:
        used = f"{u.host_hours_borrowed / u.host_hours_lent:.0%}" if u.host_hours_lent else "-"
        table.add_row(*cells(u.unit, f"{u.host_hours_lent:.2f}", f"{u.host_hours_borrowed:.2f}", u.leases, used))
    table.add_row("total", f"{figures.total_lent:.2f}", f"{figures.total_borrowed:.2f}",
                  str(sum(u.leases for u in figures.units)), "", style="bold")
    _out.print(table)
    if figures.leases:
        leases = Table(title="leases")
        for col in ("host", "unit", "cluster", "event", "leased", "released", "hours"):
            leases.add_column(col)
        for x in figures.leases:
            leases.add_row(*cells(x.host, x.unit, x.cluster, x.event or "", x.leased_at.isoformat(timespec="minutes"),
                                  x.released_at.isoformat(timespec="minutes") if x.released_at else "(held)",
                                  f"{x.host_hours:.2f}"))
        _out.print(leases)
