"""Benchmark: `burst up` / `burst down` on the local lab for several host counts.

    sudo python tests/bench/bench_lab_burst.py [--hosts 1 4 8 16]

Each size gets a fresh lab (one on-prem worker), then one burst of N new hosts through
the real core: lab provider, ansible-runner initialisation (dnf + puppet apply), swarm
join, spillover pulled from the lab registry. Prints, from the journal, each phase's
p50 / p95 seconds per host, the time to all ready, and the time to give it all back.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from burst.cli.demo import LAB_CONFIG
from burst.config import load_config
from burst.lab import Lab
from burst.service import BurstService
from burst.timings import sla_report

PHASES = ("launch", "initialise", "join", "schedule")


def one(hosts: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="burst-bench-") as tmp:
        work = Path(tmp)
        lab = Lab("burstbench", work / "lab")
        lab.up(workers=1)
        try:
            config = work / "burst.toml"
            config.write_text(LAB_CONFIG.format(dir=work, lab=lab.name, lab_dir=lab.dir,
                                                docker_url=lab.manager_docker_url))
            svc = BurstService(load_config(config))
            try:
                b = svc.up("bench", {"web": hosts}, svc.clock.now() + timedelta(minutes=20))
                while not svc.is_done(b.id):
                    svc.reconcile_once()
                    time.sleep(0.25)
                report = sla_report(svc.store, svc.store.get_burst(b.id), 300)
                started = time.perf_counter()
                svc.down("bench")
                while not svc.is_done(b.id):
                    svc.reconcile_once()
                    time.sleep(0.25)
                report["down_seconds"] = time.perf_counter() - started
            finally:
                svc.close()
        finally:
            lab.down()
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 4, 8, 16])
    args = parser.parse_args()
    head = "".join(f"{p + ' p50/p95':>20}" for p in PHASES)
    print(f"{'hosts':>5}{head}{'all ready s':>13}{'down s':>8}")
    for n in args.hosts:
        r = one(n)
        cells = "".join(f"{r['phases'][p]['p50']:>10.1f}/{r['phases'][p]['p95']:<9.1f}" for p in PHASES)
        print(f"{n:>5}{cells}{r['seconds_to_ready']:>13.1f}{r['down_seconds']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
