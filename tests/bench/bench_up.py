"""Benchmark: one burst up and down on the fake provider, end to end through the core.

    python tests/bench/bench_up.py [--hosts 1000 10000] [--store sqlite|URL] [--boot 2.0]

Per size: seconds to all ready and back, against the floor computed from the fake's
configured latencies (what a perfect orchestrator would take: launch call + boot +
initialise + join up; drain + leave down), the passes, journal rows per host, the
CPU seconds of the process per host (burst and the in-process fake provider and
stand-ins together), and the peak resident memory. The last line per size is:

    N hosts: up U s (floor F s, ratio R), down D s (floor G s, ratio Q), burst CPU C ms per host
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from burst.config import EXAMPLE, load_config
from burst.service import BurstService


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one(hosts: int, store: str, boot: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/burst.db" if store == "sqlite" else store
        text = (EXAMPLE.replace('store = "sqlite:///.burst/burst.db"', f'store = "{url}"')
                .replace("boot_seconds = 2.0", f"boot_seconds = {boot}\nlaunch_seconds = 0.05")
                .replace("concurrency = 50", "concurrency = 50\nmax_hosts = 100000"))
        path = Path(tmp) / "burst.toml"
        path.write_text(text)
        config = load_config(path)
        tier = config.tiers[0].options
        floor_up = (float(tier["launch_seconds"]) + float(tier["boot_seconds"])
                    + float(config.initialise.options["seconds"]) + float(config.swarm.options["seconds"]))
        floor_down = 2 * float(config.swarm.options["seconds"])  # drain, then leave
        svc = BurstService(config)
        event = f"bench-{hosts}"

        def drive(burst) -> tuple[float, int]:
            start = time.perf_counter()
            passes = sum(1 for _ in svc.drive(burst, seconds=600))
            return time.perf_counter() - start, passes

        cpu0 = _cpu()
        start = time.perf_counter()
        burst = svc.up(event, {"web": hosts * 4}, svc.clock.now() + timedelta(minutes=30), oversize_ok=True)
        _, up_passes = drive(burst)
        up_total = time.perf_counter() - start
        burst = svc.down(event)
        down, down_passes = drive(burst)
        cpu = _cpu() - cpu0
        ready = svc.store.get_burst(burst.id).ready_at is not None
        writes = len(svc.store.journal_entries(burst_id=burst.id))
        svc.close()
    if not ready:
        raise SystemExit(f"{hosts} hosts: the burst never became ready")
    return {"hosts": hosts, "up_s": up_total, "down_s": down, "floor_up": floor_up, "floor_down": floor_down,
            "passes": up_passes + down_passes, "journal_per_host": writes / hosts, "cpu_ms_per_host": cpu / hosts * 1000,
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000])
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("--boot", type=float, default=2.0)
    args = parser.parse_args()
    print(f"store: {'sqlite (a file in a temporary directory)' if args.store == 'sqlite' else args.store}")
    for n in args.hosts:
        r = one(n, args.store, args.boot)
        print(f"  passes {r['passes']}, journal rows per host {r['journal_per_host']:.1f}, "
              f"peak RSS {r['maxrss_mib']:.0f} MiB")
        print(f"{r['hosts']} hosts: up {r['up_s']:.2f} s (floor {r['floor_up']:.2f} s, ratio "
              f"{r['up_s'] / r['floor_up']:.2f}), down {r['down_s']:.2f} s (floor {r['floor_down']:.2f} s, ratio "
              f"{r['down_s'] / r['floor_down']:.2f}), burst CPU {r['cpu_ms_per_host']:.1f} ms per host", flush=True)


if __name__ == "__main__":
    main()
