"""`burst demo`: burst's main job end to end on an embedded default, no cloud account.

On the local lab (root): a lab comes up, `burst up` adds hosts that are initialised
with the real playbooks and joined to the lab's real swarm, the spillover runs on
them, the report shows each host's phases, `burst down` gives everything back and the
lab goes away. `--fake`: the same flow on the fake provider, as any user.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from burst.cli import bursts, status
from burst.cli.common import console, err_console
from burst.config import EXAMPLE
from burst.errors import BurstError

LAB_NAME = "burstdemo"

LAB_CONFIG = """\
[cluster]
name = "demo"
store = "sqlite:///{dir}/burst.db"
state_dir = "{dir}"
phase_timeout_seconds = 150

[[services]]
name = "web"
cpu = 0.5
memory_gib = 0.5
max_per_host = 1            # it publishes port 8080 in host mode: one task per node

[[tiers]]
name = "lab-cloud"
provider = "lab"
ready_seconds = 60
[tiers.options]
lab = "{lab}"
lab_dir = "{lab_dir}"
boot_delay_seconds = 2
[[tiers.instance_types]]
name = "lab.small"
cpu = 0.5
memory_gib = 1
price_per_hour = 0.05
zones = ["lab"]

[initialise]
kind = "ansible"

[swarm]
kind = "swarm"
[swarm.options]
docker_url = "{docker_url}"
"""


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    fake: Annotated[bool, typer.Option("--fake", help="Use the fake provider (no root, no lab).")] = False,
    replicas: Annotated[int, typer.Option(help="Extra web replicas: one new host each on the lab; ten times as many "
                                                    "on the fake, four to a host.")] = 4,
    keep: Annotated[bool, typer.Option(help="Leave the lab and the burst up at the end.")] = False,
) -> None:
    """Run burst's main job on an embedded default: up, report, down."""
    if not fake and os.geteuid() != 0:
        raise BurstError("the lab needs root (network namespaces): run `sudo burst demo`, or `burst demo --fake`")
    work = Path(tempfile.mkdtemp(prefix="burst-demo-"))
    config = work / "burst.toml"
    try:
        if fake:
            config.write_text(EXAMPLE.replace('"sqlite:///.burst/burst.db"', f'"sqlite:///{work}/burst.db"'))
            _run(config, replicas * 10, keep)
        else:
            _on_the_lab(work, config, replicas, keep)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _on_the_lab(work: Path, config: Path, replicas: int, keep: bool) -> None:
    from burst.lab import Lab

    lab = Lab(LAB_NAME, work / "lab")
    err_console.print(f"starting lab {LAB_NAME} (hub, registry, swarm manager, an on-prem worker running web)...")
    lab.up(workers=1)
    try:
        config.write_text(LAB_CONFIG.format(dir=work, lab=lab.name, lab_dir=lab.dir,
                                            docker_url=lab.manager_docker_url))
        _run(config, replicas, keep)
    finally:
        if not keep:
            lab.down()
            err_console.print(f"lab {LAB_NAME} is down: nothing left behind")


def _run(config: Path, replicas: int, keep: bool) -> None:
    console.rule(f"burst up demo --replicas web={replicas}")
    bursts.up("demo", [f"web={replicas}"], "10m", config=config)
    console.rule("burst report demo")
    status.report("demo", config=config)
    if keep:
        err_console.print(f"kept: use --config {config}")
        return
    console.rule("burst down demo")
    bursts.down("demo", config=config)
