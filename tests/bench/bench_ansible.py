"""Initialisation time per host against the number of hosts (1, 4, 8, 16).

Runs the real initialise.yml (dnf from the lab's createrepo_c repository, masterless
puppet apply, a docker daemon check) with the real ansible-runner over SSH to hosts on
the loopback: one real sshd per host, each host with its own root directory, one real
dockerd in a network namespace. Needs root and the lab's Debian packages.

    python3 tests/bench/bench_ansible.py [--sizes 1,4,8,16] [--forks 50] [--tasks]

Prints one row per batch size: the wall time of the whole run, the time to the first
and the last host done, the mean per host, and the wall time divided by the hosts.
`--tasks` adds the mean duration of each task (from the streamed events).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from burst.provision import HostTarget
from burst.provision.ansible import AnsibleInitialiser, AnsibleOptions
from burst.provision.rpmrepo import ensure_lab_repo

_TESTS = Path(__file__).resolve().parents[1] / "integration" / "test_ansible.py"


def _loopback_helpers():
    """The loopback sshd and namespaced dockerd helpers live with the integration
    tests; load them from there rather than keep a second copy."""
    spec = importlib.util.spec_from_file_location("burst_test_ansible", _TESTS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # pytest.skip raises a BaseException subclass
        sys.exit(f"cannot run the benchmark: {exc}")
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,8,16")
    parser.add_argument("--forks", type=int, default=50)
    parser.add_argument("--tasks", action="store_true", help="print the mean duration of each task")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    helpers = _loopback_helpers()

    import shutil
    import subprocess
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="bb-"))
    daemons = []
    try:
        key = work / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        repo = ensure_lab_repo(work / "repo")
        (work / "docker").mkdir()
        dockerd = helpers.NamespacedDockerd(work / "docker")
        daemons.append(dockerd)
        dockerd.start()
        sshds = []
        for i in range(max(sizes)):
            (work / f"sshd{i}").mkdir()
            sshd = helpers.LoopbackSshd(work / f"sshd{i}", key)
            daemons.append(sshd)
            sshds.append(sshd.start())

        print(f"{'hosts':>5} {'wall s':>7} {'first s':>7} {'last s':>7} {'mean/host s':>11} {'wall/host s':>11}  failed")
        task_rows = {}
        for run, size in enumerate(sizes):
            hosts = []
            for i in range(size):
                root = work / f"root-{run}-{i}"
                root.mkdir()
                variables = helpers.lab_vars(root, sshds[i].port, key, repo, dockerd)
                hosts.append(HostTarget(f"h{i}", "127.0.0.1", "lab", "lab", vars=variables))
            sink = helpers.RecordingSink()
            started = time.monotonic()
            AnsibleInitialiser(AnsibleOptions(forks=args.forks)).initialise(hosts, sink, started + 600)
            wall = time.monotonic() - started
            per_host = [t - started for t in sink.done_at.values()]
            failed = [h for h, (ok, _, _) in sink.results.items() if not ok]
            print(
                f"{size:>5} {wall:>7.1f} {min(per_host):>7.1f} {max(per_host):>7.1f} "
                f"{statistics.mean(per_host):>11.1f} {wall / size:>11.2f}  {len(failed)}"
                + (f" ({sink.results[failed[0]][1]})" if failed else ""),
                flush=True,
            )
            durations = defaultdict(list)
            for _, _, detail in sink.events:
                if detail.get("duration") is not None:
                    durations[detail["task"]].append(detail["duration"])
            task_rows[size] = {task: statistics.mean(d) for task, d in durations.items()}
        if args.tasks:
            print(f"\nmean task duration, seconds\n{'task':<40}" + "".join(f"{n:>7}" for n in sizes))
            for task in task_rows[sizes[0]]:
                print(f"{task:<40}" + "".join(f"{task_rows[n].get(task, float('nan')):>7.2f}" for n in sizes))
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
