"""`burst simulate` at scale: 1,000 hosts / 10,000 replicas on the fake example config
and the default profile; prints burst's simulated time against the floor, and the real
time and CPU the simulation took.

    python tests/bench/bench_simulate.py [--hosts 1000] [--replicas 10000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from burst.config import EXAMPLE, load_config
from burst.simulate.profile import load_profile
from burst.simulate.run import simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "burst.toml"
        path.write_text(EXAMPLE)
        r = simulate(load_config(path), {"web": args.replicas}, load_profile(), hosts=args.hosts)
    print(f"{r.hosts} hosts / {args.replicas} replicas: ready in {r.seconds:.1f} s simulated, floor {r.floor:.1f} s, "
          f"ratio {r.ratio:.3f} (reference <= 1.05), SLA met: {r.sla_met}; real {r.real_seconds:.1f} s "
          f"(reference < 60 s), CPU {r.cpu_seconds:.1f} s ({r.cpu_seconds / r.hosts * 1000:.1f} ms per host)")


if __name__ == "__main__":
    main()
