"""Phase timings, derived from the journal (the only record of when things happened)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import datetime

from burst.store import Burst, Store

#: phase name -> (state it starts in, state it ends in)
PHASES = {
    "launch": ("launching", "running"),
    "wait": ("running", "initialising"),
    "initialise": ("initialising", "initialised"),
    "join": ("joining", "ready"),
    "drain": ("draining", "leaving"),
    "leave": ("leaving", "terminating"),
    "terminate": ("terminating", None),  # ends in terminated or released
}
#: reported beside the lifecycle phases: from ready to the host's extra tasks running
SCHEDULE = "schedule"


def state_times(store: Store, burst_id: str) -> dict[str, dict[str, datetime]]:
    """host id -> state -> when the host (last) entered it."""
    times: dict[str, dict[str, datetime]] = defaultdict(dict)
    for e in store.journal_entries(burst_id=burst_id):
        if e.kind == "host.transition" and e.host_id and e.to_state:
            times[e.host_id][e.to_state] = e.at
    return times


def host_timings(store: Store, burst: Burst) -> list[dict]:
    """Per host: seconds in each phase, and from the burst's start to ready."""
    times = state_times(store, burst.id)
    scheduled = {e.host_id: e.at for e in store.journal_entries(burst_id=burst.id) if e.kind == "schedule.done"}
    out = []
    for host in store.hosts(burst.id):
        t = times.get(host.id, {})
        phases = {}
        for name, (start, end) in PHASES.items():
            end_at = t.get(end) if end else (t.get("terminated") or t.get("released"))
            if start in t and end_at and end_at >= t[start]:
                phases[name] = round((end_at - t[start]).total_seconds(), 3)
        if "ready" in t and host.id in scheduled and scheduled[host.id] >= t["ready"]:
            phases["schedule"] = round((scheduled[host.id] - t["ready"]).total_seconds(), 3)
        to_ready = round((t["ready"] - host.created_at).total_seconds(), 3) if "ready" in t else None
        out.append({"host": host.id, "slot": host.slot, "attempt": host.attempt, "tier": host.tier,
                    "provider": host.provider, "zone": host.zone, "instance_type": host.instance_type,
                    "state": host.state, "error": host.error, "phases": phases, "to_ready": to_ready})
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 3)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": _pct(values, 0.5), "p95": _pct(values, 0.95),
            "max": round(max(values), 3) if values else None,
            "mean": round(statistics.fmean(values), 3) if values else None}


def sla_report(store: Store, burst: Burst, sla_seconds: float) -> dict:
    rows = host_timings(store, burst)
    plan = json.loads(burst.plan_json)
    phases = {name: summary([r["phases"][name] for r in rows if name in r["phases"]])
              for name in [*PHASES, SCHEDULE]}
    took = (burst.ready_at - burst.created_at).total_seconds() if burst.ready_at else None
    failed = [r for r in rows if r["state"] in ("launch_failed", "init_failed", "join_failed")
              or (r["error"] and r["state"] not in ("ready",))]
    return {
        "burst": burst.id, "event": burst.event, "status": burst.status,
        "planned_hosts": plan["hosts"], "ready_hosts": sum(1 for r in rows if r["state"] == "ready"),
        "hosts_tried": len(rows), "hosts_failed": len(failed),
        "sla_seconds": sla_seconds, "seconds_to_ready": round(took, 3) if took is not None else None,
        "sla_met": took is not None and took <= sla_seconds,
        "to_ready": summary([r["to_ready"] for r in rows if r["to_ready"] is not None]),
        "phases": phases,
    }


def ready_seconds_history(store: Store, tier: str, last_bursts: int = 50) -> list[float]:
    """Launch-to-ready seconds of every host of `tier` that became ready in the last
    `last_bursts` bursts, oldest first (a window: recent history is what predicts the
    next burst, and the journal only grows)."""
    values = []
    for burst in store.bursts()[-last_bursts:]:
        for row in host_timings(store, burst):
            if row["tier"] == tier and row["to_ready"] is not None:
                values.append(row["to_ready"])
    return values
