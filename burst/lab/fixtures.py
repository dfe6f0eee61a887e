"""A running lab for tests (integration, contract, e2e): up on entry, down on exit
even when the test fails. Skips (pytest) when the machine cannot run a lab."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from burst.lab.lab import Lab, preflight
from burst.lab.system import LabError


def skip_unless_lab_can_run() -> None:
    import pytest

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
def running_lab(root_dir: Path, workers: int = 1, name: str | None = None) -> Iterator[Lab]:
    lab = Lab(name or unique_lab_name(), root_dir)
    try:
        lab.up(workers=workers)
        yield lab
    finally:
        lab.down()


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
