"""Figures for the lab and the swarm steps, on this machine (needs root).

    python3 tests/bench/bench_lab.py [--hosts 1,4,8] [--rounds 1]

For each host count N: lab provider launch -> RUNNING (sshd + dockerd answer), the
join through join.yml + Ready + label (SwarmCluster.join), spillover tasks Running
with the image pulled from the lab registry, drain, leave, terminate. Plus lab up and
lab down. Prints one line per figure; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from burst.lab import Lab
from burst.provider import InstanceState, LaunchRequest
from burst.provision import HostTarget
from burst.provision.swarm import SwarmCluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the stands (pytest: pythonpath)
from stands.lab import lab_provider, unique_lab_name  # noqa: E402


class Recorder:
    """A HostSink that keeps the outcome per host and the pull times."""

    def __init__(self) -> None:
        self.outcome: dict[str, bool] = {}
        self.pulls: list[float] = []

    def event(self, host_id, kind, detail) -> None:
        if kind == "image_pull" and "pull_seconds" in detail:
            self.pulls.append(detail["pull_seconds"])

    def done(self, host_id, ok, error="", data=None) -> None:
        self.outcome[host_id] = ok


def timed(label: str, fn, *args, **kw):
    started = time.monotonic()
    result = fn(*args, **kw)
    print(f"{label:<44} {time.monotonic() - started:7.2f} s", flush=True)
    return result


def one_round(lab: Lab, n: int, state_dir: Path) -> None:
    provider = lab_provider(lab, state_dir)
    cluster = SwarmCluster(lab.manager_docker_url)
    event = f"bench{n}"
    started = time.monotonic()
    made = provider.launch(LaunchRequest(request_id=f"bench-{n}-{time.time()}", count=n,
                                         instance_type="lab.host", zone="lab"))  # fmt: skip
    ids = [i.id for i in made]
    print(f"{'launch call (' + str(n) + ' hosts)':<44} {time.monotonic() - started:7.2f} s")
    try:
        while any(i.state is not InstanceState.RUNNING for i in provider.describe(ids)):
            time.sleep(0.05)
        print(f"{'launch -> all RUNNING (' + str(n) + ' hosts)':<44} {time.monotonic() - started:7.2f} s")
        labels = {"burst.event": event, "burst.tier": "bench", "burst.provider": "lab"}
        hosts = [HostTarget(host_id=i, address=lab.host(i).address, provider="lab", tier="bench",
                            vars=lab.host(i).vars, labels=labels) for i in ids]  # fmt: skip
        sink = Recorder()
        timed(f"join.yml + Ready + labels ({n} hosts)", cluster.join, hosts, sink, time.monotonic() + 300)
        assert all(sink.outcome.values()) and len(sink.outcome) == n, sink.outcome
        cluster.ensure_spillover(event, "web", n)
        placed = Recorder()
        timed(f"spillover {n} tasks Running", cluster.wait_spillover, event, hosts, placed, time.monotonic() + 120)
        if placed.pulls:
            print(f"{'  image pull per task (median, max)':<44} {statistics.median(placed.pulls):7.2f} s"
                  f" {max(placed.pulls):.2f} s (seen preparing: {len(placed.pulls)}/{n})")  # fmt: skip
        timed(f"drain ({n} hosts)", cluster.drain, hosts, Recorder(), time.monotonic() + 120)
        cluster.remove_spillover(event)
        timed(f"leave.yml + node rm ({n} hosts)", cluster.leave, hosts, Recorder(), time.monotonic() + 300)
    finally:
        timed(f"terminate ({n} hosts)", provider.terminate, ids, request_id=f"bench-t-{n}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", default="1,4,8")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="burst-bench-") as tmp:
        lab = Lab(unique_lab_name("b"), Path(tmp) / "lab")
        try:
            timed("lab up (registry, manager, 2 workers, web)", lab.up, workers=2)
            for n in [int(x) for x in args.hosts.split(",")]:
                for _ in range(args.rounds):
                    one_round(lab, n, Path(tmp))
        finally:
            timed("lab down", lab.down)


if __name__ == "__main__":
    main()
