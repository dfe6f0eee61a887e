"""The local lab: hosts as network namespaces, each with its own sshd and dockerd.

Layout of one lab named NAME (every name carries NAME or its hash TAG, so two labs, or
a test and a demo, never collide):

- namespaces `NAME.hub` (a bridge `br0`, address .1 of the lab subnet) and one
  `NAME.HOST` per host, joined by a veth pair `vTAGn` (hub end) / `eth0` (host end);
- the lab subnet 10.A.B.0/24, chosen from NAME's hash and different from every other
  lab's; its addresses exist only inside the lab's namespaces, the root namespace has
  none (burst reaches hosts over SSH through the hub: see `ssh_options`);
- files under the lab directory (default /var/lib/burst-lab/NAME): the state file,
  the SSH key pair and known_hosts, per host a directory with sshd's config and host
  key, dockerd's data root and the host's root directory for dnf and puppet;
- short-path runtime files (docker sockets, exec roots) under /run/burst-lab/NAME/HOST:
  the manager's socket is always /run/burst-lab/NAME/manager/docker.sock.

Hosts: `registry` (Debian's docker-registry), `manager` (swarm manager, drained: it
runs no workload), `onprem-N` (swarm workers running the base service `web`), and the
hosts the lab provider launches (`vm-N`).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from burst.lab import image, system
from burst.lab.probe import tcp_banner
from burst.lab.state import LabState
from burst.lab.system import LabError, LabNotUpError, ProcessRef
from burst.provision.rpmrepo import ensure_lab_repo, lab_repo_vars
from burst.wait import DeadlineExceeded, wait_until

DEFAULT_NAME = "burstlab"
DEFAULT_ROOT = Path("/var/lib/burst-lab")
RUN_ROOT = Path("/run/burst-lab")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
BASE_SERVICE = "web"
WEB_PORT = 8080
REGISTRY_PORT = 5000
IMAGE_NAME = "burst/web"
IMAGE_TAG = "1"

#: program -> Debian package, checked before anything is created.
REQUIRED = {
    "/usr/sbin/dockerd": "docker.io",
    "/usr/bin/docker-registry": "docker-registry",
    "/usr/sbin/sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "unshare": "util-linux",
}


#: tag of a launched host that a failure drill breaks on purpose
DRILL_TAG = "lab:drill"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    role: str  # registry | manager | worker | launched
    netns: str
    ssh_port: int
    docker_socket: str
    host_root: str
    tags: Mapping[str, str] = field(default_factory=dict)
    #: inventory variables for Ansible (HostTarget.vars): how to reach this host.
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def docker_url(self) -> str:
        return f"unix://{self.docker_socket}"


def preflight() -> None:
    """One clear message when the lab cannot run here."""
    missing = sorted({pkg for prog, pkg in REQUIRED.items() if not (Path(prog).exists() or shutil.which(prog))})
    if not _static_busybox():
        missing.append("busybox-static")
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root (network namespaces): run it as root")
    if missing:
        problems.append(f"missing packages: apt-get install {' '.join(missing)}")
    if problems:
        raise LabError("; ".join(problems))


def _static_busybox() -> bool:
    """The image needs a static busybox (a dynamic one has no libc in the image)."""
    try:
        head = image.BUSYBOX.read_bytes()[:8192]
    except OSError:
        return False
    return head.startswith(b"\x7fELF") and b"ld-linux" not in head


class Lab:
    """One lab on this machine. The Python API used by the CLI, the lab provider and
    the tests. Safe to use from several processes at once (state under a file lock)."""

    def __init__(self, name: str = DEFAULT_NAME, root_dir: str | Path | None = None):
        if not NAME_RE.match(name):
            raise LabError(f"lab name {name!r}: use 1-20 of a-z, 0-9 and '-', starting with a letter")
        self.name = name
        self.dir = Path(root_dir) if root_dir else DEFAULT_ROOT / name
        self.tag = hashlib.sha1(name.encode()).hexdigest()[:6]
        self.hub = f"{name}.hub"
        self.run_dir = RUN_ROOT / name
        self.state = LabState(self.dir)

    # -- paths and addresses -----------------------------------------------------------

    @property
    def ssh_key_path(self) -> Path:
        return self.dir / "ssh" / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.dir / "ssh" / "known_hosts"

    @property
    def registry(self) -> str:
        """host:port of the lab registry."""
        return self._read()["registry"]

    @property
    def image(self) -> str:
        """The base service's image, in the lab registry."""
        return self._read()["image"]

    @property
    def manager_docker_url(self) -> str:
        return self.host(self._read()["manager"]).docker_url

    def is_up(self) -> bool:
        return self.state.exists() and system.netns_exists(self.hub)

    def _read(self) -> dict[str, Any]:
        if not self.state.exists():
            raise LabNotUpError(f"lab {self.name!r} is not up (no state in {self.dir}): run `burst lab up`")
        return self.state.read()

    def ssh_options(self) -> list[str]:
        """ssh options that reach this lab's hosts: through the hub namespace, with the
        lab's key and the lab's known_hosts (host keys are checked)."""
        proxy = f"nsenter --net={system.NETNS_DIR / self.hub} {image.BUSYBOX} nc %h %p"
        return [
            "-i", str(self.ssh_key_path),
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts_path}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5",
            "-o", f"ProxyCommand={proxy}",
        ]  # fmt: skip

    def ssh_command(self, host: str, *command: str) -> list[str]:
        return ["ssh", *self.ssh_options(), "-l", "root", self.host(host).address, *command]

    # -- up / down ---------------------------------------------------------------------

    def up(self, workers: int = 2, timeout: float = 120, servers: int = 0) -> None:
        """Hub, registry, swarm manager, `workers` on-prem workers running `web`, and
        `servers` business-unit servers outside the swarm (see `add_servers`).
        On failure everything created so far is removed again."""
        preflight()
        if self.is_up() or system.netns_exists(self.hub):
            raise LabError(f"lab {self.name!r} is already up: `burst lab down --name {self.name}` first")
        deadline = time.monotonic() + timeout
        try:
            self._up(workers, deadline)
            if servers:
                self.add_servers(servers)
        except BaseException:
            self.down()
            raise

    def add_servers(self, count: int, cpu: float = 0.5, memory_gib: float = 1.0) -> Path:
        """`count` hosts that model a business unit's own servers: up, with sshd and
        dockerd, not in the swarm; and their Ansible inventory (`servers.yml` in the
        lab directory), for `burst pool import`. Sizes are what the pool will lend."""
        with self.state.edit() as st:
            first = 1 + sum(1 for r in st["hosts"].values() if r["role"] == "server")
        names = [f"server-{i}" for i in range(first, first + count)]
        for name in names:
            self.add_host(name, role="server", wait=False)
        self.wait_ready(names, time.monotonic() + 60)
        servers = {h.name: {**h.vars, "cpu": cpu, "memory_gib": memory_gib, "burst_zone": "lab"}
                   for h in self.hosts() if h.role == "server"}
        import yaml

        path = self.dir / "servers.yml"
        path.write_text(yaml.safe_dump({"all": {"hosts": servers}}, sort_keys=True))
        return path

    def _up(self, workers: int, deadline: float) -> None:
        subnet = self._choose_subnet()
        with self.state.edit() as st:
            st.clear()
            st.update(
                name=self.name, tag=self.tag, subnet=str(subnet), hub=self.hub, run_dir=str(self.run_dir),
                hosts={}, requests={}, registry=f"{subnet[2]}:{REGISTRY_PORT}", image="", manager="",
                created_at=time.time(),
            )  # fmt: skip
        self._make_ssh_key()
        # the internal RPM repository new hosts install from (a createrepo_c repo here)
        repo = ensure_lab_repo(self.dir / "rpm-repo")
        with self.state.edit() as st:
            st["rpm_repo"] = str(repo)
        system.netns_add(self.hub)
        system.make_bridge(self.hub, "br0", f"{subnet[1]}/{subnet.prefixlen}")

        self._add_registry()
        manager = self.add_host("manager", role="manager", wait=False)
        self.wait_ready([manager.name], deadline)
        mgr = self.docker(manager.name)
        mgr.swarm.init(
            advertise_addr=manager.address, listen_addr=f"{manager.address}:2377",
            default_addr_pool=["10.0.0.0/16"], subnet_size=24,
        )  # fmt: skip
        # the manager runs no workload: capacity is the workers'
        self._update_node(mgr, mgr.info()["Swarm"]["NodeID"], availability="drain", labels={"burst.role": "manager"})
        self.wait_ready(["registry"], deadline)
        ref = image.build_and_push(mgr, f"{self.registry}/{IMAGE_NAME}", IMAGE_TAG)
        with self.state.edit() as st:
            st["image"], st["manager"] = ref, manager.name

        names = [f"onprem-{i}" for i in range(1, workers + 1)]
        for name in names:
            self.add_host(name, role="worker", wait=False)
        self.wait_ready(names, deadline)
        token = mgr.swarm.attrs["JoinTokens"]["Worker"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: self._join_worker(n, manager.address, token), names))
        self._create_base_service(mgr, ref, workers)
        self._wait_base_service(mgr, workers, deadline)

    def down(self) -> None:
        """Remove every process (by PID), namespace, veth and directory of this lab.
        Also sweeps namespaces named after this lab that the state lost track of."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces): run it as root")
        st = self.state.read() if self.state.exists() else {"hosts": {}}
        hosts = st.get("hosts", {})
        refs = [ref for rec in hosts.values() for ref in _process_refs(rec)]
        namespaces = {rec["netns"] for rec in hosts.values()}
        namespaces |= {ns for ns in system.netns_list() if ns.startswith(self.name + ".")}
        system.stop(refs, netns=sorted(namespaces))
        for ns in sorted(namespaces):
            system.netns_delete(ns)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            RUN_ROOT.rmdir()  # only when no other lab uses it
        for sub in ("hosts", "ssh", "rpm-repo"):
            shutil.rmtree(self.dir / sub, ignore_errors=True)
        (self.dir / "servers.yml").unlink(missing_ok=True)
        self.state.remove()
        try:
            self.dir.rmdir()
        except OSError:
            pass  # not empty: files that are not the lab's stay

    # -- hosts -------------------------------------------------------------------------

    def hosts(self) -> list[LabHost]:
        st = self._read()
        return [self._host(st, rec) for rec in sorted(st["hosts"].values(), key=lambda r: r["index"])]

    def host(self, name: str) -> LabHost:
        st = self._read()
        if name not in st["hosts"]:
            raise LabError(f"lab {self.name!r} has no host {name!r}")
        return self._host(st, st["hosts"][name])

    def host_record(self, name: str) -> dict[str, Any] | None:
        return self._read()["hosts"].get(name)

    def add_host(
        self,
        name: str | None = None,
        *,
        role: str = "launched",
        boot_delay: float = 0.0,
        sshd: bool = True,
        tags: Mapping[str, str] | None = None,
        wait: bool = True,
        timeout: float = 60,
    ) -> LabHost:
        """Create a host: namespace, veth into the hub, its own sshd and dockerd (both
        start only after `boot_delay`, as a cloud VM boots). `sshd=False` models a host
        whose sshd never starts. With `wait`, returns once both answer."""
        with self.state.edit() as st:
            if not st:
                raise LabNotUpError(f"lab {self.name!r} is not up: run `burst lab up`")
            rec = self._allocate(st, name, role, boot_delay, sshd, tags or {})
        self._create_host(rec)
        if wait:
            self.wait_ready([rec["name"]], time.monotonic() + boot_delay + timeout)
        return self.host(rec["name"])

    def add_hosts(
        self,
        request_id: str,
        count: int,
        *,
        boot_delay: float = 0.0,
        tags: Mapping[str, str] | None = None,
        broken_sshd_budget: int = 0,
        broken_puppet_budget: int = 0,
    ) -> list[str]:
        """Create `count` launched hosts for `request_id`, idempotently: the request and
        its host records are written (in one locked step) before anything is created,
        so a repeated call returns the same hosts and creates only what a crash left
        uncreated. The first `broken_sshd_budget` hosts this lab ever launches get no
        sshd (a host that never answers SSH), the next `broken_puppet_budget` a value
        their Puppet run refuses: failure drills."""
        with self.state.edit() as st:
            if not st:
                raise LabNotUpError(f"lab {self.name!r} is not up: run `burst lab up`")
            names = st["requests"].get(request_id)
            if names is None:
                names = []
                for _ in range(count):
                    broken = st.get("broken_sshd_used", 0) < broken_sshd_budget
                    st["broken_sshd_used"] = st.get("broken_sshd_used", 0) + int(broken)
                    bad_puppet = not broken and st.get("broken_puppet_used", 0) < broken_puppet_budget
                    st["broken_puppet_used"] = st.get("broken_puppet_used", 0) + int(bad_puppet)
                    host_tags = {**(tags or {}), **({DRILL_TAG: "broken-puppet"} if bad_puppet else {})}
                    rec = self._allocate(st, None, "launched", boot_delay, not broken, host_tags)
                    names.append(rec["name"])
                st["requests"][request_id] = names
            records = [st["hosts"][n] for n in names if n in st["hosts"]]
        for rec in records:
            if not system.netns_exists(rec["netns"]):
                self._create_host(rec)
        return names

    def remove_host(self, name: str) -> None:
        """Stop the host's processes, delete its namespace (its veth goes with it) and
        its directories. A host already gone is fine."""
        st = self._read()
        rec = st["hosts"].get(name)
        if rec is None:
            return
        system.stop(_process_refs(rec), netns=[rec["netns"]], grace=1.0)
        system.link_delete(self.hub, rec["hub_end"])
        system.netns_delete(rec["netns"])
        shutil.rmtree(rec["dir"], ignore_errors=True)
        shutil.rmtree(rec["run_dir"], ignore_errors=True)
        with self.state.edit() as st:
            st["hosts"].pop(name, None)
            self._write_known_hosts(st)

    def host_ready(self, name: str) -> bool:
        """Its boot delay passed, its dockerd answers and its sshd (if it has one)
        sends its banner."""
        rec = self._read()["hosts"].get(name)
        if rec is None or time.time() < rec["boot_at"]:
            return False
        if rec["role"] == "registry":
            return tcp_banner(self.hub, rec["address"], REGISTRY_PORT, read=False) is not None
        if rec["sshd_enabled"] and not (tcp_banner(self.hub, rec["address"], 22) or b"").startswith(b"SSH-"):
            return False
        return _docker_answers(rec["docker_socket"])

    def wait_ready(self, names: Sequence[str], deadline: float) -> None:
        waiting = list(names)

        def all_ready() -> bool:
            waiting[:] = [n for n in waiting if not self.host_ready(n)]
            return not waiting

        try:
            wait_until(all_ready, deadline=deadline, interval=0.1, what="lab hosts")
        except DeadlineExceeded:
            raise LabError(f"lab hosts not ready in time: {', '.join(waiting)} (logs in {self.dir}/hosts)") from None

    def processes_alive(self, name: str) -> dict[str, bool]:
        rec = self._read()["hosts"][name]
        return {proc: system.alive(_ref(rec, proc)) for proc in ("sshd", "dockerd", "registry") if proc in rec["procs"]}

    def docker(self, name: str, timeout: int = 30):
        import docker

        return docker.DockerClient(base_url=self.host(name).docker_url, timeout=timeout)

    # -- internals ---------------------------------------------------------------------

    def _choose_subnet(self) -> ipaddress.IPv4Network:
        """10.A.B.0/24 (A in 64..191, clear of swarm's 10.0.0.0/16 pool) from the name's
        hash, skipping subnets other labs' hubs already use."""
        used = set()
        for ns in system.netns_list():
            if ns.endswith(".hub") and ns != self.hub:
                used |= {ipaddress.ip_interface(a).network for a in system.netns_addresses(ns)}
        start = int(hashlib.sha1(self.name.encode()).hexdigest(), 16)
        for i in range(128 * 256):
            k = (start + i) % (128 * 256)
            net = ipaddress.ip_network(f"10.{64 + k // 256}.{k % 256}.0/24")
            if net not in used:
                return net
        raise LabError("no free lab subnet left in 10.64.0.0/10")

    def _make_ssh_key(self) -> None:
        self.ssh_key_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.ssh_key_path.exists():
            system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"burst-lab-{self.name}",
                        "-f", str(self.ssh_key_path)])  # fmt: skip
        shutil.copy(f"{self.ssh_key_path}.pub", self.dir / "ssh" / "authorized_keys")
        self.known_hosts_path.touch()

    def _allocate(self, st, name, role, boot_delay, sshd, tags) -> dict[str, Any]:
        # never reused: the kernel destroys a deleted namespace (and its veth) lazily
        index = st["next_index"] = st.get("next_index", 0) + 1
        name = name or f"vm-{index}"
        if name in st["hosts"]:
            raise LabError(f"lab {self.name!r} already has a host {name!r}")
        subnet = ipaddress.ip_network(st["subnet"])
        taken = {r["address"] for r in st["hosts"].values()} | {str(subnet[1])}
        address = next((str(a) for a in subnet.hosts() if str(a) not in taken), None)
        if address is None:
            raise LabError(f"lab {self.name!r} subnet {subnet} is full")
        host_dir = self.dir / "hosts" / name
        run_dir = self.run_dir / name  # host names are never reused within a lab
        rec = {
            "name": name, "index": index, "role": role, "address": address, "prefix": subnet.prefixlen,
            "netns": f"{self.name}.{name}", "hub_end": f"v{self.tag}{index}", "dir": str(host_dir),
            "run_dir": str(run_dir), "docker_socket": str(run_dir / "docker.sock"),
            "host_root": str(host_dir / "root"), "tags": dict(tags), "created_at": time.time(),
            "boot_at": time.time() + boot_delay, "sshd_enabled": sshd, "procs": {},
        }  # fmt: skip
        st["hosts"][name] = rec
        return rec

    def _create_host(self, rec: dict[str, Any]) -> None:
        host_dir, run_dir = Path(rec["dir"]), Path(rec["run_dir"])
        for d in (host_dir, Path(rec["host_root"]), run_dir):
            d.mkdir(parents=True, exist_ok=True)
        system.netns_add(rec["netns"])
        system.plug_host(self.hub, "br0", rec["hub_end"], rec["netns"], f"{rec['address']}/{rec['prefix']}")
        if rec["role"] == "registry":
            return
        system.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_dir / "ssh_host_ed25519_key")])
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir (the system's)
        (host_dir / "sshd_config").write_text(self._sshd_config(rec))
        with self.state.edit() as st:
            self._write_known_hosts(st)
        delay = max(0.0, rec["boot_at"] - time.time())
        procs = {}
        if rec["sshd_enabled"]:
            procs["sshd"] = self._spawn_in(rec, f"/usr/sbin/sshd -D -e -f {host_dir / 'sshd_config'}", delay, "sshd")
        procs["dockerd"] = self._spawn_in(rec, self._dockerd_command(rec), delay, "dockerd", own_mounts=True)
        with self.state.edit() as st:
            st["hosts"][rec["name"]]["procs"] = {k: v.to_json() for k, v in procs.items()}

    def _spawn_in(self, rec, command: str, delay: float, log: str, own_mounts: bool = False) -> ProcessRef:
        """Start `command` in the host's network namespace with its own hostname, after
        `delay` seconds (the PID stays the daemon's: `exec`). dockerd also gets its own
        mount namespace, so its overlay mounts never show in the machine's."""
        script = f"hostname {shlex.quote(rec['name'])}; " + (f"sleep {delay:.2f}; " if delay > 0 else "")
        unshare = ["unshare", "--uts"] + (["--mount", "--propagation", "private"] if own_mounts else [])
        argv = ["nsenter", f"--net={system.NETNS_DIR / rec['netns']}", *unshare, "sh", "-c", script + "exec " + command]
        return system.spawn(argv, Path(rec["dir"]) / f"{log}.log")

    def _dockerd_command(self, rec) -> str:
        host_dir, run_dir = Path(rec["dir"]), Path(rec["run_dir"])
        registry = self._read()["registry"]
        return (
            f"dockerd --data-root {host_dir / 'docker'} --exec-root {run_dir / 'exec'}"
            f" -H unix://{rec['docker_socket']} --pidfile {run_dir / 'docker.pid'}"
            f" --insecure-registry {registry} --shutdown-timeout 2 --log-level warn"
        )

    def _sshd_config(self, rec) -> str:
        host_dir = Path(rec["dir"])
        return "\n".join([
            "Port 22",
            f"ListenAddress {rec['address']}",
            f"HostKey {host_dir / 'ssh_host_ed25519_key'}",
            f"PidFile {host_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'ssh' / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "MaxStartups 100:30:200",
            "MaxSessions 100",
            # the host's own dockerd for `docker` run over SSH (join.yml, leave.yml)
            f"SetEnv DOCKER_HOST=unix://{rec['docker_socket']}",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "LogLevel ERROR",
            "",
        ])  # fmt: skip

    def _write_known_hosts(self, st) -> None:
        lines = []
        for rec in st["hosts"].values():
            pub = Path(rec["dir"]) / "ssh_host_ed25519_key.pub"
            if pub.exists():
                kind, key = pub.read_text().split()[:2]
                lines.append(f"{rec['address']} {kind} {key}\n")
        tmp = self.known_hosts_path.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        os.replace(tmp, self.known_hosts_path)

    def _host(self, st, rec) -> LabHost:
        # Ansible's own settings decide host key checking; the lab adds only the route
        proxy = next(o for o in self.ssh_options() if o.startswith("ProxyCommand="))
        inventory = {
            "ansible_host": rec["address"],
            "ansible_port": 22,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.ssh_key_path),
            "ansible_ssh_common_args": f"-o IdentitiesOnly=yes -o {shlex.quote(proxy)}",
            # the system's python: discovery may pick a shim on PATH that does not run
            "ansible_python_interpreter": "/usr/bin/python3",
            # lab hosts share the machine's filesystem: per-host state lives here
            "burst_host_root": rec["host_root"],
            "burst_docker_host": f"unix://{rec['docker_socket']}",
            "burst_docker_insecure_registry": st["registry"],
            "burst_docker_manage_config": False,  # the lab starts dockerd with --insecure-registry
            **(lab_repo_vars(Path(st["rpm_repo"])) if st.get("rpm_repo") else {}),
            # the broken-puppet drill: a value the manifest's parameter types refuse
            **({"burst_node_agent_port": "not-a-port"} if rec["tags"].get(DRILL_TAG) == "broken-puppet" else {}),
            # facter cannot read /proc/1/environ here and says so on every run
            "burst_puppet_command_prefix": "unshare --pid --fork --mount-proc",
        }
        return LabHost(
            name=rec["name"], address=rec["address"], role=rec["role"], netns=rec["netns"], ssh_port=22,
            docker_socket=rec["docker_socket"], host_root=rec["host_root"], tags=dict(rec["tags"]), vars=inventory,
        )  # fmt: skip

    def _add_registry(self) -> None:
        with self.state.edit() as st:
            rec = self._allocate(st, "registry", "registry", 0.0, False, {})
        self._create_host(rec)
        data = Path(rec["dir"]) / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = Path(rec["dir"]) / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {data}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {rec['address']}:{REGISTRY_PORT}\n"
        )
        argv = ["nsenter", f"--net={system.NETNS_DIR / rec['netns']}", "/usr/bin/docker-registry", "serve", str(config)]
        ref = system.spawn(argv, Path(rec["dir"]) / "registry.log")
        with self.state.edit() as st:
            st["hosts"]["registry"]["procs"] = {"registry": ref.to_json()}

    def _join_worker(self, name: str, manager_address: str, token: str) -> None:
        worker = self.docker(name)
        address = self.host(name).address
        worker.swarm.join(
            remote_addrs=[f"{manager_address}:2377"], join_token=token,
            listen_addr=f"{address}:2377", advertise_addr=address,
        )  # fmt: skip
        node_id = worker.info()["Swarm"]["NodeID"]
        labels = {"burst.role": "base", "burst.tier": "onprem", "burst.provider": "onprem"}
        self._update_node(self.docker(self._read()["manager"]), node_id, labels=labels)

    @staticmethod
    def _update_node(client, node_id: str, *, availability: str | None = None, labels: Mapping[str, str] = ()) -> None:
        node = client.nodes.get(node_id)
        spec = dict(node.attrs["Spec"])
        if availability:
            spec["Availability"] = availability
        spec["Labels"] = {**spec.get("Labels", {}), **dict(labels)}
        node.update(spec)

    def _create_base_service(self, mgr, image_ref: str, workers: int) -> None:
        from docker.types import EndpointSpec, ServiceMode

        mgr.services.create(
            image_ref,
            command=["httpd", "-f", "-p", "80", "-h", "/www"],
            name=BASE_SERVICE,
            mode=ServiceMode("replicated", replicas=workers),
            constraints=["node.labels.burst.role==base"],
            maxreplicas=1,
            endpoint_spec=EndpointSpec(mode="dnsrr", ports={WEB_PORT: (80, "tcp", "host")}),
            stop_grace_period=1_000_000_000,
            labels={"burst.lab": self.name},
        )

    def _wait_base_service(self, mgr, workers: int, deadline: float) -> None:
        tasks: list[dict[str, Any]] = []

        def enough_running() -> bool:
            tasks[:] = mgr.services.get(BASE_SERVICE).tasks(filters={"desired-state": "running"})
            return _running(tasks) >= workers

        try:
            wait_until(enough_running, deadline=deadline, interval=0.2, what=f"the base service {BASE_SERVICE!r}")
        except DeadlineExceeded:
            states = sorted(t["Status"]["State"] + ": " + t["Status"].get("Err", "") for t in tasks)
            raise LabError(f"base service {BASE_SERVICE!r}: {_running(tasks)}/{workers} tasks running ({states})") from None


def _running(tasks: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for t in tasks if t["Status"]["State"] == "running")


def _ref(rec: Mapping[str, Any], proc: str) -> ProcessRef | None:
    data = rec.get("procs", {}).get(proc)
    return ProcessRef.from_json(data) if data else None


def _process_refs(rec: Mapping[str, Any]) -> list[ProcessRef]:
    return [ProcessRef.from_json(d) for d in rec.get("procs", {}).values()]


def _docker_answers(socket_path: str) -> bool:
    """GET /_ping on the daemon's unix socket, without building a Docker client."""
    import socket

    if not Path(socket_path).exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(socket_path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except OSError:
        return False


def ssh_run(lab: Lab, host: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a command on a lab host over real SSH (for people and tests)."""
    return subprocess.run(lab.ssh_command(host, *command), capture_output=True, text=True, timeout=timeout)
