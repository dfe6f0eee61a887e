"""The lab for tests (integration, contract, e2e) and benches.

Every lab a test makes goes down in fixture teardown, which runs when the test body
fails too, so a failed test leaves no lab host, namespace, process or swarm node for
the next one:

- `make_lab` (a fixture): a factory of fresh labs, each taken down after the test;
- `lab_fixtures(...)`: a lab shared by a module's tests (`shared_lab`) and the `lab`
  each test gets, put back as `up` left it after every test (`reset_lab`);
- `running_lab`: the same as a `with` block, for session fixtures and benches.

Skips (pytest) when the machine cannot run a lab; in CI that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from burst.lab.lab import BASE_SERVICE, Lab, preflight
from burst.lab.system import LabError


def skip_unless_lab_can_run() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    try:
        preflight()
    except LabError as exc:
        if os.environ.get("CI"):  # CI installs the lab's packages: missing ones are a failure, not a skip
            pytest.fail(f"the lab cannot run in CI: {exc}")
        pytest.skip(f"the lab cannot run here: {exc}")


def unique_lab_name(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def running_lab(root_dir: Path, workers: int = 1, name: str | None = None, servers: int = 0) -> Iterator[Lab]:
    lab = Lab(name or unique_lab_name(), root_dir)
    try:
        lab.up(workers=workers, servers=servers)
        yield lab
    finally:
        lab.down()


@pytest.fixture
def make_lab(tmp_path_factory) -> Iterator[Callable[..., Lab]]:
    """`make_lab(workers=1, up=True)`: a lab of its own for this test (`up=False`: made
    but not started, for tests of `up` itself). All of them go down at teardown."""
    skip_unless_lab_can_run()
    made: list[Lab] = []

    def make(workers: int = 1, up: bool = True) -> Lab:
        lab = Lab(unique_lab_name(), tmp_path_factory.mktemp("lab"))
        made.append(lab)
        if up:
            lab.up(workers=workers)
        return lab

    try:
        yield make
    finally:
        for lab in made:
            lab.down()


def lab_fixtures(workers: int = 1, servers: int = 0) -> tuple[Callable, Callable]:
    """Two fixtures for a test module, used as `shared_lab, lab = lab_fixtures(...)`:
    `shared_lab`, one running lab for the module (down at its end), and `lab`, the same
    lab for one test, reset after it (`reset_lab`) however the test ended."""

    @pytest.fixture(scope="module", name="shared_lab")
    def shared_lab(tmp_path_factory) -> Iterator[Lab]:
        skip_unless_lab_can_run()
        with running_lab(tmp_path_factory.mktemp("lab"), workers=workers, servers=servers) as running:
            yield running

    @pytest.fixture(name="lab")
    def lab(shared_lab: Lab) -> Iterator[Lab]:
        try:
            yield shared_lab
        finally:
            reset_lab(shared_lab)

    return shared_lab, lab


def reset_lab(lab: Lab) -> None:
    """Put a shared lab back as `up` left it: no service but the base one, no swarm node
    but the manager and the on-prem workers (a business-unit server leaves the swarm
    and stays), no launched host, no provider records."""
    base_nodes = {h.name for h in lab.hosts() if h.role in ("manager", "worker")}
    mgr = lab.docker("manager")
    try:
        for service in mgr.services.list():
            if service.name != BASE_SERVICE:
                service.remove()
        for node in mgr.nodes.list():
            hostname = node.attrs["Description"]["Hostname"]
            if hostname in base_nodes:
                continue
            record = lab.host_record(hostname)
            if record is not None and record["role"] != "launched":
                _leave_swarm(lab, hostname)
            node.remove(force=True)
    finally:
        mgr.close()
    reset_launched(lab)


def _leave_swarm(lab: Lab, host: str) -> None:
    import docker.errors

    client = lab.docker(host)
    try:
        client.swarm.leave(force=True)
    except docker.errors.APIError as exc:
        if "not part of a swarm" not in str(exc):
            raise
    finally:
        client.close()


def lab_provider(lab: Lab, state_dir: Path, cluster: str = "c1", **options):
    """A LabProvider on a running lab (the contract suite's "lab" parameter uses this)."""
    from burst.provider import ProviderContext
    from burst_providers.lab import LabProvider

    return LabProvider(ProviderContext(cluster=cluster, state_dir=state_dir),
                       {"lab": lab.name, "lab_dir": str(lab.dir), **options})  # fmt: skip


def set_zone_room(lab: Lab, zone: str, more: int) -> None:
    """Drill knob: from now on only `more` further launched hosts fit in `zone`."""
    with lab.state.edit() as st:
        held = sum(1 for r in st["hosts"].values() if r["role"] == "launched" and r["tags"].get("lab:zone") == zone)
        st.setdefault("zone_capacity", {})[zone] = held + more


def make_foreign_host(lab: Lab, cluster: str | None) -> str:
    """A host made outside burst: tagged with another cluster, or not tagged at all."""
    tags = {"burst:cluster": cluster} if cluster else {}
    return lab.add_host(tags=tags, wait=False).name


def reset_launched(lab: Lab) -> None:
    """Remove every launched host and the provider records: a clean cloud for the next test."""
    for host in lab.hosts():
        if host.role == "launched":
            lab.remove_host(host.name)
    with lab.state.edit() as st:
        st["requests"] = {}
        st.pop("zone_capacity", None)
        st.pop("broken_sshd_used", None)
        st.pop("broken_puppet_used", None)
