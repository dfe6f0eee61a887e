"""`burst daemon`: runs the calendar, the reconcile loop and leak detection under a
leader lock, serving /metrics and /healthz. Registered on the root app as one
command (see `register`)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from pydantic import ValidationError

from burst.cli.common import ConfigOption, config_for, err_console
from burst.daemon.config import DaemonConfig
from burst.errors import ConfigError


def daemon_settings(config, **overrides) -> DaemonConfig:
    """The config's [daemon] table (when the config has one), with the command line's
    overrides; a bad value is one ConfigError line."""
    base = getattr(config, "daemon", None) or DaemonConfig()
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return DaemonConfig.model_validate({**base.model_dump(exclude_none=True), **given})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"daemon.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def daemon(
    config: ConfigOption = None,
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics and /healthz (0: none).")] = None,
    metrics_address: Annotated[str | None, typer.Option(help="Address /metrics and /healthz listen on.")] = None,
    tick_seconds: Annotated[float | None, typer.Option(help="Seconds between passes.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="POST notifications as JSON to this URL.")] = None,
    lead_margin_seconds: Annotated[float | None, typer.Option(help="Added to the measured p95 time-to-ready.")] = None,
    late_after_seconds: Annotated[float | None, typer.Option(help="An action this late is journaled late.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every pass's decisions.")] = False,
) -> None:
    """Run the pre-scaling calendar, the reconcile loop and leak detection.

    Start two for availability: one leads (a PostgreSQL advisory lock, or a file lock
    next to the SQLite file), the other takes over within seconds if it dies."""
    from burst.daemon.loop import Daemon

    cfg = config_for(config)
    settings = daemon_settings(cfg, metrics_port=metrics_port, metrics_address=metrics_address,
                               tick_seconds=tick_seconds, webhook_url=webhook_url,
                               lead_margin_seconds=lead_margin_seconds, late_after_seconds=late_after_seconds)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner = Daemon(cfg, settings)
    err_console.print(f"burst daemon {runner.identity}: cluster {cfg.cluster.name}, tick {settings.tick_seconds:g} s"
                      + (f", metrics on {settings.metrics_address}:{settings.metrics_port}"
                         if settings.metrics_port else ""), highlight=False)
    runner.run(stop)
    err_console.print("burst daemon stopped")


def register(app: typer.Typer) -> None:
    app.command("daemon")(daemon)


#: for running it on its own: `python -c "from burst.cli.daemon import app; app()"`
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(daemon)
