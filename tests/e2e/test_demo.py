"""The README's main job: `burst demo` on the embedded defaults."""

import os
import subprocess
import sys



def demo(*args):
    return subprocess.run([sys.executable, "-m", "burst", "demo", *args], capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"})


def test_the_fake_demo_goes_up_and_down():
    proc = demo("--fake", "--replicas", "1")
    assert proc.returncode == 0, proc.stderr
    assert "3/3 hosts ready" in proc.stdout and "down; hosts: terminated=3" in proc.stdout  # 10 replicas, 4 a host


def test_the_lab_demo_goes_up_and_down_and_leaves_no_namespace():
    from burst.lab.fixtures import skip_unless_lab_can_run

    skip_unless_lab_can_run()
    proc = demo("--replicas", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2/2 hosts ready" in proc.stdout and "down; hosts: terminated=2" in proc.stdout
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "burstdemo." not in left
