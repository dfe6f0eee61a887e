"""The few operating-system operations the lab needs: network namespaces, veth pairs,
and daemons started inside a namespace and later stopped by their PID.

Every name passed in here was made by the lab (see `burst.lab.lab`); nothing in this
module touches the root network namespace: links are created directly inside the
lab's own namespaces.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from burst.errors import BurstError
from burst.wait import DeadlineExceeded, wait_until

NETNS_DIR = Path("/run/netns")


class LabError(BurstError):
    """The lab cannot do what was asked (missing root or packages, a lab already up...)."""


class LabNotUpError(LabError):
    """The lab named is not up on this machine."""


def run(argv: Sequence[str], *, timeout: float = 30) -> str:
    """Run a short command; its failure becomes a `LabError` with its stderr."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{argv[0]} did not finish within {timeout:.0f}s: {' '.join(argv)}") from exc
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


# -- network namespaces ----------------------------------------------------------------


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def netns_list() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def netns_add(name: str) -> None:
    if not netns_exists(name):
        run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def netns_delete(name: str) -> None:
    """Delete a namespace; its veth ends go with it (the peer in the hub too)."""
    if netns_exists(name):
        run(["ip", "netns", "delete", name])


def netns_pids(name: str) -> list[int]:
    if not netns_exists(name):
        return []
    return [int(p) for p in run(["ip", "netns", "pids", name]).split()]


def make_bridge(netns: str, bridge: str, address_cidr: str) -> None:
    run(["ip", "-n", netns, "link", "add", bridge, "type", "bridge"])
    run(["ip", "-n", netns, "addr", "add", address_cidr, "dev", bridge])
    run(["ip", "-n", netns, "link", "set", bridge, "up"])


def plug_host(hub: str, bridge: str, hub_end: str, host_ns: str, address_cidr: str) -> None:
    """A veth pair from the hub's bridge to `eth0` of the host namespace, both ends
    created directly inside their namespaces (nothing appears in the root one)."""
    run(["ip", "link", "add", hub_end, "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", host_ns])
    run(["ip", "-n", hub, "link", "set", hub_end, "master", bridge])
    run(["ip", "-n", hub, "link", "set", hub_end, "up"])
    run(["ip", "-n", host_ns, "addr", "add", address_cidr, "dev", "eth0"])
    run(["ip", "-n", host_ns, "link", "set", "eth0", "up"])


def link_delete(netns: str, link: str) -> None:
    """Delete a link now (deleting its namespace would do it too, but lazily)."""
    if netns_exists(netns):
        subprocess.run(["ip", "-n", netns, "link", "del", link], capture_output=True)


def netns_addresses(name: str) -> list[str]:
    """IPv4 addresses (with prefix) configured inside a namespace."""
    out = run(["ip", "-n", name, "-4", "-o", "addr", "show"])
    return [line.split()[3] for line in out.splitlines() if len(line.split()) > 3]


# -- processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessRef:
    """A process the lab started, identified by PID and kernel start time, so a PID the
    kernel reused for someone else's process is never signalled."""

    pid: int
    start: int

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ProcessRef":
        return cls(pid=int(data["pid"]), start=int(data["start"]))


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(ref: ProcessRef | None) -> bool:
    if ref is None:
        return False
    fields = _stat(ref.pid)
    return bool(fields) and fields[0] != "Z" and int(fields[19]) == ref.start


def spawn(argv: Sequence[str], log_path: Path) -> ProcessRef:
    """Start a daemon in its own session, output to `log_path`. The PID is the daemon's
    own: nsenter, unshare (no --fork) and `sh -c 'exec ...'` all exec in place."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _children[proc.pid] = proc
    start = start_time(proc.pid)
    if start is None:  # already gone: report it as a process that is not alive
        return ProcessRef(proc.pid, -1)
    return ProcessRef(proc.pid, start)


#: Popen objects of daemons this Python process started, polled so they never linger
#: as zombies while a long-lived process (a test run, the daemon) goes on.
_children: dict[int, subprocess.Popen] = {}


def _reap() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)  # another thread may have reaped it too


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                parents[int(entry.name)] = int(fields[1])
    return parents


def with_descendants(pids: Iterable[int]) -> list[int]:
    """These PIDs and every process below them (container processes live in their
    own namespaces below containerd's shims)."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = [p for p in pids if p in parents]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def stop(refs: Iterable[ProcessRef], netns: Sequence[str] = (), grace: float = 3.0) -> None:
    """Stop the lab's processes: SIGTERM to the recorded ones, then after `grace`
    SIGKILL to whatever still runs among them, the processes inside the lab's own
    namespaces `netns` (shims, docker-proxy, ssh sessions), and all their descendants."""
    refs = [r for r in refs if alive(r)]
    for ref in refs:
        _signal(ref.pid, signal.SIGTERM)
    _wait_reaping(lambda: not any(alive(r) for r in refs), seconds=grace, interval=0.05)
    for _ in range(3):  # a dying process may still fork once: sweep a few times
        pids = [r.pid for r in refs if alive(r)]
        for name in netns:
            pids.extend(netns_pids(name))
        victims = with_descendants(pids)
        if not victims:
            break
        for pid in victims:
            _signal(pid, signal.SIGKILL)
        _wait_reaping(lambda: not any(_stat(p) and _stat(p)[0] != "Z" for p in victims), seconds=5, interval=0.02)
    _reap()


def _wait_reaping(gone: Callable[[], bool], *, seconds: float, interval: float) -> None:
    """Reap our children until `gone()` holds or `seconds` pass (then the caller's next
    step, a SIGKILL sweep, deals with what is left)."""

    def reaped_and_gone() -> bool:
        _reap()
        return gone()

    with contextlib.suppress(DeadlineExceeded):
        wait_until(reaped_and_gone, deadline=time.monotonic() + seconds, interval=interval, what="processes to exit")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
