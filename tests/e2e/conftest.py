"""Run the real `burst` command against a config on the fake provider, or on a lab
shared by a module's tests and put back after each (whatever a failed test left:
launched hosts, their swarm nodes, spillover services)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from burst.config import load_config
from burst.provider import ProviderContext
from burst_providers.fake import FakeProvider
from stands.lab import lab_fixtures

#: one lab per module that asks for `lab`: a manager, an on-prem worker running `web`,
#: two business-unit servers for the pool; reset after every test, down at the end
shared_lab, lab = lab_fixtures(workers=1, servers=2)

CONFIG = """
[cluster]
name = "e2e"
store = "{store}"
sla_seconds = 120
phase_timeout_seconds = {phase_timeout}

[[services]]
name = "web"
cpu = 1
memory_gib = 2

[[tiers]]
name = "{tier}"
provider = "fake"
ready_seconds = 30
concurrency = 16
[tiers.options]
boot_seconds = {boot}
launch_seconds = 0.05
faults = {faults}
[[tiers.instance_types]]
name = "fake.large"
cpu = 4
memory_gib = 8
price_per_hour = 0.2
zones = ["zone-a", "zone-b"]
[[tiers.instance_types]]
name = "fake.xlarge"
cpu = 8
memory_gib = 16
price_per_hour = 0.5
zones = ["zone-a"]

[initialise]
kind = "recording"
[initialise.options]
seconds = {init}
fail_first = {init_failures}

[swarm]
kind = "recording"
[swarm.options]
seconds = 0.1
"""


@dataclass
class Burst:
    dir: Path
    config: Path

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "burst", *args, "--config", str(self.config)],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              env={**os.environ, "COLUMNS": "120"})
        if check and proc.returncode != 0:
            raise AssertionError(f"burst {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "--json").stdout)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "burst", *args, "--config", str(self.config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True)

    def fake(self) -> FakeProvider:
        cfg = load_config(self.config)
        tier = cfg.tiers[0]
        return FakeProvider(ProviderContext(cfg.cluster.name, cfg.state_dir),
                            {**tier.options, "instance_types": [t.model_dump() for t in tier.instance_types]})


@pytest.fixture
def make_burst(tmp_path, store_url):
    def make(boot=0.5, init=0.2, faults="{}", init_failures=0, phase_timeout=60, tier="cloud") -> Burst:
        path = tmp_path / "burst.toml"
        path.write_text(CONFIG.format(store=store_url, boot=boot, init=init, faults=faults,
                                      init_failures=init_failures, phase_timeout=phase_timeout, tier=tier))
        return Burst(tmp_path, path)

    return make
