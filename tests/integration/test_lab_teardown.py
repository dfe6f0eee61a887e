"""A failed lab test leaves nothing behind: the lab fixtures' teardown runs when the
test body fails. Shown on a real pytest run, in a subprocess, of tests that fail on
purpose half way through their use of a lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from burst.lab.system import ProcessRef, alive
from stands.lab import skip_unless_lab_can_run

pytestmark = [pytest.mark.lab, pytest.mark.timeout(400)]

TESTS_DIR = Path(__file__).resolve().parents[1]


def ip_netns_list() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]

INNER = '''
import json, os
from pathlib import Path

from docker.types import ServiceMode

from stands.lab import lab_fixtures, make_lab  # noqa: F401  (fixtures)

shared_lab, lab = lab_fixtures(workers=0)
RECORD = Path(os.environ["LAB_RECORD"])


def record(lab):
    """What the lab is made of, for the outer test to check after this run."""
    st = lab.state.read()
    pids = [p for rec in st["hosts"].values() for p in rec["procs"].values()]
    labs = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    labs[lab.name] = sorted(set(labs.get(lab.name, [])) | {json.dumps(p, sort_keys=True) for p in pids})
    RECORD.write_text(json.dumps(labs))


def test_1_a_launched_host_joins_the_swarm_then_the_test_fails(lab):
    host = lab.add_host(role="launched")
    manager = lab.host("manager")
    mgr = lab.docker("manager")
    lab.docker(host.name).swarm.join(remote_addrs=[f"{manager.address}:2377"],
                                     join_token=mgr.swarm.attrs["JoinTokens"]["Worker"],
                                     listen_addr=f"{host.address}:2377", advertise_addr=host.address)
    mgr.services.create(lab.image, command=["sleep", "600"], name="web-burst-drill",
                        mode=ServiceMode("replicated", replicas=0))
    record(lab)
    assert len(mgr.nodes.list()) == 2
    assert False, "fails on purpose, with a host in the swarm"


def test_2_the_next_test_finds_the_shared_lab_as_up_left_it(lab):
    record(lab)
    assert [h.name for h in lab.hosts() if h.role == "launched"] == []
    mgr = lab.docker("manager")
    assert [n.attrs["Description"]["Hostname"] for n in mgr.nodes.list()] == ["manager"]
    assert [s.name for s in mgr.services.list()] == ["web"]


def test_3_a_lab_of_its_own_then_the_test_fails(make_lab):
    own = make_lab(workers=1)
    own.add_host(role="launched")
    record(own)
    assert False, "fails on purpose, inside a lab of its own"
'''


def test_a_failed_test_leaves_no_lab_namespace_process_or_directory(tmp_path):
    skip_unless_lab_can_run()
    (tmp_path / "test_inner.py").write_text(INNER)
    record = tmp_path / "labs.json"
    env = {**os.environ, "LAB_RECORD": str(record),
           "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--basetemp", str(tmp_path / "inner-tmp"), str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=360, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed, 1 passed" in summary, run.stdout + run.stderr
    assert "fails on purpose, with a host in the swarm" in run.stdout
    assert "fails on purpose, inside a lab of its own" in run.stdout

    labs = json.loads(record.read_text())
    assert len(labs) == 2  # the module's shared lab and the test's own
    namespaces = ip_netns_list()
    for name, procs in labs.items():
        assert not [ns for ns in namespaces if ns.startswith(name + ".")], f"lab {name} left {namespaces}"
        refs = [ProcessRef.from_json(json.loads(p)) for p in procs]
        assert refs and not [r for r in refs if alive(r)], f"lab {name} left processes running"
    assert not list((tmp_path / "inner-tmp").glob("**/lab.json")), "a lab's state file is left"
