"""`burst lab up|down|status`: the local lab (hosts as network namespaces)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from burst.cli.common import JsonOption, console, err_console, print_json
from burst.lab import DEFAULT_NAME, Lab

app = typer.Typer(help="The local lab: a swarm of namespaced hosts with their own sshd and dockerd.",
                  no_args_is_help=True)  # fmt: skip

NameOption = Annotated[str, typer.Option("--name", "-n", help="The lab's name (prefix of all it creates).")]
DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="The lab's directory (default /var/lib/burst-lab/NAME).", show_default=False),
]


@app.command()
def up(
    name: NameOption = DEFAULT_NAME,
    lab_dir: DirOption = None,
    workers: Annotated[int, typer.Option(min=0, max=32, help="On-prem worker hosts running the base service.")] = 2,
    servers: Annotated[int, typer.Option(min=0, max=32, help="A business unit's servers outside the swarm, with "
                                                            "their inventory for `burst pool import`.")] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds the whole setup may take.")] = 120,
) -> None:
    """Hub, image registry, swarm manager and on-prem workers running `web`."""
    lab = Lab(name, lab_dir)
    started = time.monotonic()
    with err_console.status(f"starting lab {name}..."):
        lab.up(workers=workers, timeout=timeout, servers=servers)
    err_console.print(f"lab {name} up in {time.monotonic() - started:.1f}s: manager at {lab.manager_docker_url}, "
                      f"registry {lab.registry}, image {lab.image}"
                      + (f"; servers' inventory: {lab.dir / 'servers.yml'}" if servers else ""))  # fmt: skip
    _table(lab)


@app.command()
def down(name: NameOption = DEFAULT_NAME, lab_dir: DirOption = None) -> None:
    """Stop every process of the lab (by PID) and remove its namespaces and files."""
    Lab(name, lab_dir).down()
    err_console.print(f"lab {name} is down")


@app.command()
def status(name: NameOption = DEFAULT_NAME, lab_dir: DirOption = None, json_: JsonOption = False) -> None:
    """The lab's hosts: address, role, and whether their daemons are alive."""
    lab = Lab(name, lab_dir)
    if json_:
        print_json(_rows(lab))
    else:
        _table(lab)


def _rows(lab: Lab) -> list[dict]:
    return [
        {"name": h.name, "address": h.address, "role": h.role, "netns": h.netns,
         "docker": h.docker_url if h.role != "registry" else "", "alive": lab.processes_alive(h.name)}
        for h in lab.hosts()
    ]  # fmt: skip


def _table(lab: Lab) -> None:
    table = Table(title=f"lab {lab.name}")
    for column in ("host", "address", "role", "sshd", "dockerd", "registry"):
        table.add_column(column)
    for row in _rows(lab):
        cells = [_alive(row["alive"].get(p)) for p in ("sshd", "dockerd", "registry")]
        table.add_row(row["name"], row["address"], row["role"], *cells)
    console.print(table)


def _alive(flag: bool | None) -> str:
    return "" if flag is None else ("[green]alive[/green]" if flag else "[red]dead[/red]")
