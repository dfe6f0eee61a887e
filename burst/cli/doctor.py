"""`burst doctor`: what the on-call engineer checks first, in one command.

Each check is one row: ok, warn or fail, and what to do. Exit 1 when any check fails.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from burst.cli.common import ConfigOption, JsonOption, cells, console, print_json
from burst.config import Config, load_config
from burst.errors import BurstError
from burst.lifecycle import FINAL, LIVE, HostState
from burst.store import Store, utcnow

#: a host past its phase deadline by this much is reported as stuck
STUCK_AFTER = timedelta(seconds=30)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def _checks(cfg: Config, store: Store, providers) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    from burst.service import CHECK_SECONDS, make_cluster

    def tier(name: str) -> Callable[[], tuple[str, str]]:
        def check() -> tuple[str, str]:
            provider = providers.get(name)
            provider.check(time.monotonic() + CHECK_SECONDS)  # seconds, not the retry deadline, when it is down
            held = provider.list()
            return "ok", f"{len(held)} instances held for cluster {cfg.cluster.name}"
        return check

    def cluster() -> tuple[str, str]:
        free = make_cluster(cfg).free_capacity()
        return "ok", f"{cfg.swarm.kind}: {len(free)} nodes with room"

    def ansible() -> tuple[str, str]:
        if cfg.initialise.kind != "ansible":
            return "ok", "stand-in initialiser (recording)"
        from burst.provision.ansible import playbooks_dir

        found = shutil.which("ansible-playbook") or (Path(__import__("sys").executable).parent / "ansible-playbook")
        if not Path(found).exists():
            return "fail", "ansible-playbook not found: pip install ansible-core"
        return "ok", f"playbooks in {playbooks_dir()}"

    def hosts() -> tuple[str, str]:
        now, stuck, failed = utcnow(), [], []
        for burst in store.bursts(LIVE):
            for h in store.hosts(burst.id):
                if HostState(h.state) in FINAL:
                    continue
                if h.state == HostState.TERMINATE_FAILED.value:
                    failed.append(h.id)
                elif h.phase_deadline and now - h.phase_deadline > STUCK_AFTER:
                    stuck.append(h.id)
        if failed:
            return "fail", f"terminate_failed: {', '.join(failed[:5])} (docs/runbooks/event-day.md)"
        if stuck:
            return "warn", f"past their phase deadline: {', '.join(stuck[:5])} (is a `burst up` or the daemon running?)"
        return "ok", "no host stuck"

    def leaks() -> tuple[str, str]:
        from burst.gc import find_leaks

        found = find_leaks(cfg, store, providers)
        if found:
            return "warn", f"{len(found)} instances the store does not hold: `burst gc --dry-run`"
        return "ok", "no leaked instance"

    return ([(f"tier {t.name} ({t.provider})", tier(t.name)) for t in cfg.tiers]
            + [("cluster", cluster), ("initialiser", ansible), ("hosts", hosts), ("leaks", leaks)])


def doctor(json_out: JsonOption = False, config: ConfigOption = None) -> None:
    """Check the config, the store, every provider, the cluster and the hosts."""
    from burst.provider.providers import ProviderSet

    cfg = load_config(config)
    store = Store(cfg.store_url)
    providers = ProviderSet(cfg)
    rows = [{"check": "config", "status": "ok", "detail": f"cluster {cfg.cluster.name}, {len(cfg.tiers)} tiers"},
            {"check": "store", "status": "ok", "detail": cfg.store_url.split("@")[-1]}]
    try:
        for name, check in _checks(cfg, store, providers):
            try:
                status, detail = check()
            except BurstError as exc:
                status, detail = "fail", str(exc)
            except Exception as exc:  # noqa: BLE001  doctor reports, it does not crash
                status, detail = "fail", f"{type(exc).__name__}: {exc}"
            rows.append({"check": name, "status": status, "detail": detail})
    finally:
        providers.close()
        store.close()
    if json_out:
        print_json(rows)
    else:
        table = Table(title="burst doctor")
        for col in ("check", "status", "detail"):
            table.add_column(col, overflow="fold")
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}
        for r in rows:
            table.add_row(*cells(r["check"], Text(r["status"], style=colour[r["status"]]), r["detail"]))
        console.print(table)
    if any(r["status"] == "fail" for r in rows):
        raise typer.Exit(1)
