"""The `[daemon]` table of the configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class DaemonConfig(BaseModel):
    """How `burst daemon` runs. Every key is optional.

    [daemon]
    tick_seconds = 1.0             # one pass: calendar, reconcile, notifications
    metrics_address = "127.0.0.1"  # /metrics and /healthz listen here
    metrics_port = 9464            # 0: no HTTP server
    webhook_url = "https://chat.internal/hooks/burst"
    webhook_timeout_seconds = 5.0  # deadline of one notification, all attempts included
    lead_margin_seconds = 60.0     # added to the measured p95 time-to-ready
    late_after_seconds = 30.0      # an action this long after it was due is journaled "late"
    missed_lookback_hours = 168.0  # how far back a restarted daemon looks for missed occurrences
    sla_risk_fraction = 0.25       # a burst not ready in the last quarter of its time to
                                   # the deadline is "at risk"
    leak_check_seconds = 300.0     # how often leak detection runs
    leader_lock_file = ""          # SQLite only; default: <database file>.leader.lock
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tick_seconds: float = Field(1.0, gt=0, le=60)
    metrics_address: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535)
    webhook_url: HttpUrl | None = None
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    lead_margin_seconds: float = Field(60.0, ge=0)
    late_after_seconds: float = Field(30.0, ge=0)
    missed_lookback_hours: float = Field(168.0, gt=0)
    sla_risk_fraction: float = Field(0.25, gt=0, lt=1)
    leak_check_seconds: float = Field(300.0, gt=0)
    leader_lock_file: str = ""
