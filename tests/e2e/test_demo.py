"""The README's main job: `burst demo` on the embedded defaults."""

import os
import subprocess
import sys
import time

import pytest

from burst.cli.demo import LAB_NAME
from burst.wait import wait_until


def demo(*args):
    return subprocess.run([sys.executable, "-m", "burst", "demo", *args], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"})


def test_the_fake_demo_goes_up_and_down():
    proc = demo("--fake", "--replicas", "1")
    assert proc.returncode == 0, proc.stderr
    assert "3/3 hosts ready" in proc.stdout and "down; hosts: terminated=3" in proc.stdout  # 10 replicas, 4 a host


def demo_namespaces() -> list[str]:
    from burst.lab.system import netns_list

    return [ns for ns in netns_list() if ns.startswith(LAB_NAME + ".")]


@pytest.fixture
def demo_lab_swept(tmp_path):
    """The demo makes and removes its own lab; should it be killed half way (a timeout),
    the lab it left is taken down here so the next test finds none."""
    from burst.lab import Lab
    from stands.lab import skip_unless_lab_can_run

    skip_unless_lab_can_run()
    # another run's demo owns a lab of that name: not ours to take down; wait for it to end
    wait_until(lambda: not demo_namespaces(), deadline=time.monotonic() + 300, interval=1.0,
               what=f"the {LAB_NAME} lab of another run's demo to go away")
    try:
        yield
    finally:
        if demo_namespaces():
            Lab(LAB_NAME, tmp_path / "swept").down()  # sweeps the namespaces named after it, and their processes


def test_the_lab_demo_goes_up_and_down_and_leaves_no_namespace(demo_lab_swept):
    proc = demo("--replicas", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2/2 hosts ready" in proc.stdout and "down; hosts: terminated=2" in proc.stdout
    assert demo_namespaces() == []
