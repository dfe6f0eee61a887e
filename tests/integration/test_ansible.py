"""Host initialisation with the real parts: sshd, ansible-runner, dnf, puppet, dockerd.

Each "host" here is a real sshd on 127.0.0.1 with its own port and its own root
directory (burst_host_root); one real dockerd runs in a network namespace the test
creates, and every host points its docker variables at it. The playbooks are the ones
production runs: only inventory variables differ.

Needs root (sshd on the loopback, a network namespace, dockerd) and the Debian packages
openssh-server rpm dnf createrepo-c puppet-agent docker.io.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from burst.provision import HostTarget
from burst.provision.ansible import AnsibleInitialiser, AnsibleOptions, run_playbook
from burst.provision.rpmrepo import AGENT_PACKAGE, ensure_lab_repo, lab_repo_vars

pytestmark = pytest.mark.lab

_TOOLS = ("sshd", "ssh-keygen", "rpmbuild", "createrepo_c", "dnf", "puppet", "dockerd", "docker", "unshare", "ip")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root: sshd, a network namespace and dockerd"
    missing = [t for t in _TOOLS if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]
    if missing:
        return f"missing {', '.join(missing)}: install openssh-server rpm dnf createrepo-c puppet-agent docker.io"
    return None


if (_reason := _skip_reason()) is not None:
    if os.environ.get("CI"):  # CI is root and installs these: missing is a failure, not a skip
        pytest.fail(_reason, pytrace=False)
    pytest.skip(_reason, allow_module_level=True)


# --- real daemons on the loopback ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready within {timeout}s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class LoopbackSshd:
    """sshd -D on 127.0.0.1:port, accepting the test's client key, stopped by its PID."""

    directory: Path
    client_key: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> LoopbackSshd:
        host_key = self.directory / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
        config = self.directory / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1:{self.port}\n"
            f"HostKey {host_key}\n"
            f"AuthorizedKeysFile {self.client_key}.pub\n"
            f"PidFile {self.directory / 'sshd.pid'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nMaxStartups 100:30:200\nLogLevel ERROR\n"
            "Subsystem sftp internal-sftp\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(self.directory / "sshd.log")]
        )
        _wait(f"sshd on port {self.port}", lambda: _ssh_banner(self.port))
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def sessions(self) -> list[int]:
        """PIDs of the SSH sessions in progress (the listener's children)."""
        if self.proc is None:
            return []
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@dataclass
class NamespacedDockerd:
    """One dockerd in a network namespace the test made (never in the root one: it
    rewrites iptables there), reached through its unix socket."""

    directory: Path
    netns: str = field(default_factory=lambda: f"burst-t-{secrets.token_hex(3)}")
    registry: str = "10.250.0.1:5000"
    proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.directory / 'docker.sock'}"

    def start(self) -> NamespacedDockerd:
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        d = self.directory
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
             "--data-root", str(d / "data"), "--exec-root", str(d / "exec"), "-H", self.host,
             "--pidfile", str(d / "docker.pid"), "--bridge", "none", "--iptables=false",
             "--config-file", str(d / "daemon.json"), "--insecure-registry", self.registry],
            stdout=open(d / "dockerd.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        (d / "daemon.json").write_text("{}")
        _wait("dockerd", lambda: subprocess.run(
            ["docker", "-H", self.host, "version"], capture_output=True).returncode == 0, timeout=30)  # fmt: skip
        return self

    def stop(self) -> None:
        try:
            if self.proc is not None:
                _stop(self.proc)
        finally:
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)


class SilentPort:
    """A TCP port that accepts connections in the kernel and never says a word: an
    sshd that never answers (the SSH handshake hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # short paths: unix socket paths are limited to 108 bytes
    directory = Path(tempfile.mkdtemp(prefix="bt-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def client_key(workdir: Path) -> Path:
    key = workdir / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture(scope="module")
def repo(workdir: Path) -> Path:
    return ensure_lab_repo(workdir / "repo")


@pytest.fixture(scope="module")
def dockerd(workdir: Path) -> Iterator[NamespacedDockerd]:
    (workdir / "docker").mkdir()
    daemon = NamespacedDockerd(workdir / "docker")
    try:
        yield daemon.start()
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def sshds(workdir: Path, client_key: Path) -> Iterator[list[LoopbackSshd]]:
    started: list[LoopbackSshd] = []
    try:
        for i in range(4):
            directory = workdir / f"sshd{i}"
            directory.mkdir()
            started.append(LoopbackSshd(directory, client_key).start())
        yield started
    finally:
        for sshd in started:
            sshd.stop()


def lab_vars(root: Path, port: int, client_key: Path, repo: Path, dockerd: NamespacedDockerd) -> dict[str, Any]:
    """The inventory variables of a lab host (the production defaults are in
    playbooks/group_vars/all.yml)."""
    return {
        "ansible_user": "root",
        "ansible_port": port,
        "ansible_ssh_private_key_file": str(client_key),
        "ansible_python_interpreter": "/usr/bin/python3",
        "burst_host_root": str(root),
        **lab_repo_vars(repo),
        "burst_puppet_command_prefix": "unshare --pid --fork --mount-proc",
        "burst_docker_host": dockerd.host,
        "burst_docker_insecure_registry": dockerd.registry,
        "burst_docker_manage_config": False,  # the daemon starts with --insecure-registry
    }


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []
        self.results: dict[str, tuple[bool, str, dict]] = {}
        self.done_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def event(self, host_id: str, kind: str, detail) -> None:
        with self._lock:
            self.events.append((host_id, kind, dict(detail)))

    def done(self, host_id: str, ok: bool, error: str = "", data=None) -> None:
        with self._lock:
            assert host_id not in self.results, f"{host_id} reported done twice"
            self.results[host_id] = (ok, error, dict(data or {}))
            self.done_at[host_id] = time.monotonic()

    def tasks(self, host_id: str) -> list[str]:
        return [d["task"] for h, _, d in self.events if h == host_id]


def _private_dirs(artifacts: Path) -> set[Path]:
    """The private directories of the runs whose artifacts are kept here (ansible-runner
    records the command line, which names the run's extra-vars file)."""
    found = set()
    for command in artifacts.rglob("command"):
        for arg in json.loads(command.read_text())["command"]:
            if arg.startswith("@") and "burst-ansible-" in arg:
                found.add(Path(arg[1:]).parent)
    return found


def _host(host_id: str, variables: dict[str, Any]) -> HostTarget:
    return HostTarget(host_id=host_id, address="127.0.0.1", provider="lab", tier="lab", vars=variables)


# --- tests -----------------------------------------------------------------------------


def test_initialise_four_hosts_then_skip_unchanged(workdir, client_key, repo, dockerd, sshds):
    hosts = []
    for i, sshd in enumerate(sshds):
        root = workdir / f"root-a{i}"
        root.mkdir()
        hosts.append(_host(f"a{i}", lab_vars(root, sshd.port, client_key, repo, dockerd)))
    sink = RecordingSink()
    AnsibleInitialiser(AnsibleOptions(forks=8)).initialise(hosts, sink, time.monotonic() + 240)

    assert set(sink.results) == {h.host_id for h in hosts}
    for host in hosts:
        ok, error, data = sink.results[host.host_id]
        assert ok, error
        assert len(data["config_hash"]) == 16
        assert data["docker_version"]
        root = Path(host.vars["burst_host_root"])
        rpm = subprocess.run(["rpm", "--root", str(root), "-q", AGENT_PACKAGE], capture_output=True, text=True)
        assert rpm.returncode == 0 and rpm.stdout.startswith(f"{AGENT_PACKAGE}-1.0.0-1"), rpm.stdout + rpm.stderr
        conf = (root / "etc/burst/node-agent.conf").read_text()
        assert f"node_name = {host.host_id}" in conf and "listen_port = 7070" in conf
        assert (root / "etc/motd").read_text().startswith("This host was lent to burst")
        # puppet kept its state under the host's root, not in /opt/puppetlabs or /etc
        assert (root / "var/lib/burst/puppet/var").is_dir()
        # events streamed per host, each task with its status and duration
        tasks = sink.tasks(host.host_id)
        for task in ("wait for ssh", "install the packages", "puppet apply", "wait for the docker daemon"):
            assert task in tasks, (host.host_id, tasks)
        puppet = [d for h, _, d in sink.events if h == host.host_id and d["task"] == "puppet apply"]
        assert puppet[0]["status"] == "changed" and puppet[0]["duration"] > 0

    # the same configuration: nothing runs, every host is reported at once
    again = [
        HostTarget(h.host_id, h.address, h.provider, h.tier,
                   vars={**h.vars, "burst_config_hash": sink.results[h.host_id][2]["config_hash"]})
        for h in hosts
    ]  # fmt: skip
    second = RecordingSink()
    started = time.monotonic()
    AnsibleInitialiser(AnsibleOptions(forks=8)).initialise(again, second, time.monotonic() + 60)
    assert time.monotonic() - started < 5  # no ansible run at all (a run takes far longer)
    assert second.events == []
    assert {h: v[0] for h, v in second.results.items()} == {h.host_id: True for h in hosts}

    # a changed variable changes the hash: that host runs again (and puppet changes the file)
    changed = [HostTarget(again[0].host_id, "127.0.0.1", "lab", "lab", vars={**again[0].vars, "burst_node_agent_port": 7171})]
    third = RecordingSink()
    AnsibleInitialiser(AnsibleOptions(forks=8)).initialise(changed, third, time.monotonic() + 120)
    ok, error, data = third.results["a0"]
    assert ok, error
    assert data["config_hash"] != sink.results["a0"][2]["config_hash"]
    assert "listen_port = 7171" in (Path(hosts[0].vars["burst_host_root"]) / "etc/burst/node-agent.conf").read_text()


def test_failing_hosts_fail_on_their_own(workdir, client_key, repo, dockerd, sshds):
    silent = SilentPort()
    try:
        variables = {}
        for name, port in (("ok0", sshds[0].port), ("ok1", sshds[1].port), ("badpuppet", sshds[2].port), ("silent", silent.port)):
            root = workdir / f"root-{name}"
            root.mkdir()
            variables[name] = lab_vars(root, port, client_key, repo, dockerd)
        # ok1 takes the production path of the docker role: burst merges the registry
        # into daemon.json (under the host's root) and, the root not being "/", leaves
        # the machine's docker service alone (its daemon trusts the registry already)
        daemon_json = Path(variables["ok1"]["burst_host_root"]) / "etc/docker/daemon.json"
        daemon_json.parent.mkdir(parents=True)
        daemon_json.write_text('{"log-level": "warn"}')
        variables["ok1"].update(burst_docker_manage_config=True)
        # Puppet's parameter type (Integer[1, 65535]) refuses this value: the run fails
        variables["badpuppet"]["burst_node_agent_port"] = "not-a-port"
        hosts = [_host(name, v) for name, v in variables.items()]
        sink = RecordingSink()
        started = time.monotonic()
        deadline = started + 40
        AnsibleInitialiser(AnsibleOptions(forks=8)).initialise(hosts, sink, deadline)
        finished = time.monotonic()
    finally:
        silent.close()

    assert finished <= deadline + 2
    assert sink.results["ok0"][0] and sink.results["ok1"][0], sink.results
    ok, error, _ = sink.results["badpuppet"]
    assert not ok
    assert error.startswith("puppet apply: Error:"), error
    assert "agent_port" in error and "\n" not in error
    ok, error, _ = sink.results["silent"]
    assert not ok
    assert error.startswith("wait for ssh:"), error
    # the silent host was given up at half the deadline (the time it has to answer
    # SSH), on its own: the run went on for the others
    assert sink.done_at["silent"] - started < (deadline - started) / 2 + 5
    assert (Path(variables["ok0"]["burst_host_root"]) / "etc/motd").exists()
    assert json.loads(daemon_json.read_text()) == {"log-level": "warn", "insecure-registries": [dockerd.registry]}
    restart = [d["status"] for h, _, d in sink.events if h == "ok1" and d["task"] == "restart docker"]
    assert restart == ["skipped"], restart


def test_join_token_never_reaches_events_or_artifacts(workdir, client_key, repo, dockerd, sshds):
    """join.yml against a real dockerd with a made-up token: the join fails (there is
    no manager at that address) and the token must appear nowhere."""
    token = "SWMTKN-1-" + secrets.token_hex(24) + "-" + secrets.token_hex(12)
    artifacts = workdir / "artifacts"
    variables = lab_vars(workdir, sshds[3].port, client_key, repo, dockerd)
    variables["burst_swarm_manager_addr"] = "127.0.0.1:9"  # discard port: refused at once
    sink = RecordingSink()
    results = run_playbook(
        "join.yml",
        [_host("j0", variables)],
        sink,
        time.monotonic() + 60,
        secret_vars={"burst_swarm_join_token": token},
        artifact_dir=artifacts,
    )
    result = results["j0"]
    assert not result.ok
    assert result.error.startswith("check the join:"), result.error
    assert token not in result.error
    assert "join the swarm" in sink.tasks("j0")
    assert token not in json.dumps(sink.events)
    # ansible-runner's artifacts (job events, stdout, the command and its environment)
    found = subprocess.run(["grep", "-rl", token[10:40], str(artifacts)], capture_output=True, text=True)
    assert found.returncode == 1 and found.stdout == "", f"token found in {found.stdout}"
    assert any(artifacts.rglob("*.json")), "the artifacts were kept, so the grep saw them"
    # and no private extra-vars file is left behind
    private = _private_dirs(artifacts)
    assert len(private) == 1 and not any(p.exists() for p in private), private


def test_leave_is_idempotent(workdir, client_key, repo, dockerd, sshds):
    variables = lab_vars(workdir, sshds[3].port, client_key, repo, dockerd)
    host = _host("l0", variables)
    for _ in range(2):  # not in a swarm: ok both times
        sink = RecordingSink()
        results = run_playbook("leave.yml", [host], sink, time.monotonic() + 60)
        assert results["l0"].ok, results["l0"].error
        assert sink.results["l0"][0]


# --- on real lab hosts (network namespaces, each with its own sshd and dockerd) ----------


def test_lab_hosts_initialise_join_and_leave(workdir, repo, make_lab):
    """The whole Ansible side on namespaced lab hosts: initialise.yml, then join.yml
    with the manager's real join token, then leave.yml; the token never reaches the
    events or the kept artifacts."""
    lab = make_lab(workers=0)
    launched = [lab.add_host(role="launched") for _ in range(2)]
    # a third host still booting (its sshd starts 5 s from now): initialisation
    # waits for its SSH instead of failing it
    launched.append(lab.add_host(role="launched", boot_delay=5, wait=False))
    hosts = [
        HostTarget(h.name, h.address, "lab", "lab", vars={**h.vars, **lab_repo_vars(repo)})
        for h in launched
    ]  # fmt: skip
    sink = RecordingSink()
    AnsibleInitialiser().initialise(hosts, sink, time.monotonic() + 180)
    waited = [d["duration"] for h, _, d in sink.events if h == hosts[2].host_id and d["task"] == "wait for ssh"]
    assert waited and waited[0] > 3, waited  # it waited for the host to boot
    for host in hosts:
        ok, error, data = sink.results[host.host_id]
        assert ok, error
        rpm = subprocess.run(["rpm", "--root", host.vars["burst_host_root"], "-q", AGENT_PACKAGE], capture_output=True)
        assert rpm.returncode == 0
        assert (Path(host.vars["burst_host_root"]) / "etc/motd").exists()

    manager = lab.host(lab._read()["manager"])
    mgr = lab.docker(manager.name)
    token = mgr.swarm.attrs["JoinTokens"]["Worker"]
    artifacts = workdir / "lab-artifacts"
    join = RecordingSink()
    results = run_playbook(
        "join.yml", hosts, join, time.monotonic() + 120,
        extravars={"burst_swarm_manager_addr": f"{manager.address}:2377"},
        secret_vars={"burst_swarm_join_token": token},
        artifact_dir=artifacts,
    )  # fmt: skip
    node_ids = {h: r.data.get("node_id") for h, r in results.items() if r.ok}
    assert set(node_ids) == {h.host_id for h in hosts}, {h: r.error for h, r in results.items()}
    assert set(node_ids.values()) <= {n.id for n in mgr.nodes.list()}
    assert token not in json.dumps(join.events)
    found = subprocess.run(["grep", "-rlF", token, str(artifacts)], capture_output=True, text=True)
    assert found.returncode == 1, f"token found in {found.stdout}"

    # join again: already in the swarm, still ok (idempotent)
    again = run_playbook(
        "join.yml", hosts[:1], RecordingSink(), time.monotonic() + 60,
        extravars={"burst_swarm_manager_addr": f"{manager.address}:2377"},
        secret_vars={"burst_swarm_join_token": token},
    )  # fmt: skip
    assert again[hosts[0].host_id].ok and again[hosts[0].host_id].data["node_id"] == node_ids[hosts[0].host_id]

    left = run_playbook("leave.yml", hosts, RecordingSink(), time.monotonic() + 60)
    assert all(r.ok for r in left.values()), {h: r.error for h, r in left.items()}
    for host in hosts:
        state = lab.docker(host.host_id).info()["Swarm"]["LocalNodeState"]
        assert state == "inactive"


def test_deadline_ends_the_run(workdir, client_key, repo, dockerd, sshds):
    """A deadline too short for the playbook: the run is stopped at the deadline and
    every host is reported failed with the task it was on."""
    hosts = []
    for i, sshd in enumerate(sshds[:2]):
        root = workdir / f"root-d{i}"
        root.mkdir()
        hosts.append(_host(f"d{i}", lab_vars(root, sshd.port, client_key, repo, dockerd)))
    sink = RecordingSink()
    artifacts = workdir / "deadline-artifacts"
    started = time.monotonic()
    AnsibleInitialiser(AnsibleOptions(artifact_dir=artifacts)).initialise(hosts, sink, started + 4)
    assert time.monotonic() - started < 4 + 5  # killed at the deadline, then cleaned up
    for host in hosts:
        ok, error, _ = sink.results[host.host_id]
        assert not ok
        assert error.startswith("deadline exceeded"), error
    # Nothing of the run goes on after it returned: no ansible worker, no ssh master,
    # so nothing recreates its private directory. (Ansible's workers run in sessions of
    # their own and outlive a killed ansible-playbook; whether one is mid-task at the
    # deadline is a matter of timing, so this catches a regression only sometimes.)
    (private,) = _private_dirs(artifacts)
    time.sleep(2)
    assert not private.exists(), private
    leftovers = subprocess.run(["pgrep", "-f", str(private)], capture_output=True, text=True).stdout
    assert leftovers == "", leftovers
    # Killing ansible-playbook does not stop a module already running on a host (it
    # finishes, as on a real host that then gets replaced): let the sessions end before
    # the test's directories are removed.
    _wait("the killed run's SSH sessions to end", lambda: not any(s.sessions() for s in sshds[:2]), timeout=60)


def test_options_from_config_and_config_hash():
    from burst.errors import ConfigError
    from burst.provision.ansible import config_hash, playbook_digest

    assert AnsibleInitialiser({"forks": 8, "extravars": {"burst_rpm_repo_url": "https://m"}}).options.forks == 8
    for bad in ({"fork": 8}, {"forks": 0}, {"extravars": ["x"]}):
        with pytest.raises(ConfigError):
            AnsibleInitialiser(bad)
    digest = playbook_digest()
    base = HostTarget("h", "10.0.0.1", "lab", "lab", vars={"ansible_port": 22, "burst_node_agent_port": 7070})
    moved = HostTarget("h", "10.0.0.2", "lab", "lab", vars={"ansible_port": 2222, "burst_node_agent_port": 7070})
    changed = HostTarget("h", "10.0.0.1", "lab", "lab", vars={"ansible_port": 22, "burst_node_agent_port": 7071})
    assert config_hash(base, digest, {}) == config_hash(moved, digest, {})  # connection details do not count
    assert config_hash(base, digest, {}) != config_hash(changed, digest, {})
    assert config_hash(base, digest, {}) != config_hash(base, "other playbook files", {})
