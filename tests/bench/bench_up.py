"""Benchmark: one burst up and down on the fake provider, end to end through the core.

    python tests/bench/bench_up.py [--hosts 200 1000] [--store sqlite|URL]

Prints, per size: seconds to all ready and back, the reconcile pass time (p50 / p95),
store writes per host, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from burst.config import EXAMPLE, load_config
from burst.service import BurstService


def one(hosts: int, store: str, boot: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/burst.db" if store == "sqlite" else store
        text = (EXAMPLE.replace('store = "sqlite:///.burst/burst.db"', f'store = "{url}"')
                .replace("boot_seconds = 2.0", f"boot_seconds = {boot}\nlaunch_seconds = 0.05")
                .replace("concurrency = 50", "concurrency = 50\nmax_hosts = 100000"))
        path = Path(tmp) / "burst.toml"
        path.write_text(text)
        svc = BurstService(load_config(path))
        passes: list[float] = []

        def drive(burst_id: str) -> float:
            start = time.perf_counter()
            while not svc.is_done(burst_id):
                t = time.perf_counter()
                svc.reconcile_once()
                passes.append(time.perf_counter() - t)
                time.sleep(0.25)
            return time.perf_counter() - start

        b = svc.up("bench", {"web": hosts * 4}, svc.clock.now() + timedelta(minutes=30))
        up = drive(b.id)
        svc.down("bench")
        down = drive(b.id)
        writes = len(svc.store.journal_entries(burst_id=b.id))
        svc.close()
    passes.sort()
    return {"hosts": hosts, "up_s": up, "down_s": down, "pass_p50_ms": statistics.median(passes) * 1000,
            "pass_p95_ms": passes[int(0.95 * (len(passes) - 1))] * 1000, "journal_per_host": writes / hosts,
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("--boot", type=float, default=2.0)
    args = parser.parse_args()
    print(f"{'hosts':>6} {'up s':>7} {'down s':>7} {'pass p50 ms':>12} {'pass p95 ms':>12} {'journal/host':>13} "
          f"{'maxrss MiB':>11}")
    for n in args.hosts:
        r = one(n, args.store, args.boot)
        print(f"{r['hosts']:>6} {r['up_s']:>7.1f} {r['down_s']:>7.1f} {r['pass_p50_ms']:>12.1f} "
              f"{r['pass_p95_ms']:>12.1f} {r['journal_per_host']:>13.1f} {r['maxrss_mib']:>11.0f}")


if __name__ == "__main__":
    main()
