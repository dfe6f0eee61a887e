"""The ansible-runner wrapper: run one burst playbook on many hosts at once.

One `ansible-runner` run serves a whole batch (forks, pipelining, `strategy: free` in
the playbooks), yet every host is reported on its own: each task result streams to
`HostSink.event` as it happens, and a host is reported `done` as soon as its last task
("burst result") finishes, or as soon as a task of it fails or it is unreachable. A
failed playbook does not raise in ansible-runner, so the per-host outcome comes from
the events; a host the events left unsettled (the run timed out or died) is failed
from the run's status, with the last task it was seen on.

Secrets (the swarm join token) never reach events, logs or artifacts:
- tasks that see a secret have `no_log: true` (ansible-runner censors their events);
- secrets go to ansible-playbook in an extra-vars file (`-e @file`) of mode 0600 in a
  private directory (mode 0700) that is deleted when the run ends. Not through
  ansible-runner's `extravars` (it writes them to env/extravars) nor `envvars`
  (ansible-runner records the whole environment in the artifact `command` file);
  `suppress_env_files` keeps ansible-runner from writing env/ at all.

SSH: host key checking is off and known_hosts is /dev/null. A new cloud host's key is
unknown to us by construction (it was generated at its first boot a minute ago) and a
lab address is reused by hosts with new keys; a production setup that learns keys
from the cloud console output can pin them with `ansible_ssh_common_args`.
SSH connections are shared per host (ControlPersist) with their control sockets in the
run's private directory: every master is told to exit (`ssh -O exit`, by socket) when
the run ends, so none outlives it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import burst
from burst.errors import BurstError, ConfigError
from burst.provision import HostSink, HostTarget

#: The name of the last task of every burst playbook; its `msg` is the host's data.
RESULT_TASK = "burst result"

#: The longest a single SSH connection attempt may take (TCP connect plus the SSH
#: handshake: OpenSSH applies ConnectTimeout to both).
SSH_CONNECT_TIMEOUT = 10

_TASK_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


class PlaybooksMissingError(BurstError):
    """The playbooks directory is not where burst looks for it."""


@dataclass
class HostResult:
    host_id: str
    ok: bool
    error: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def playbooks_dir() -> Path:
    """The playbooks: `burst/_playbooks` inside a wheel (pyproject force-includes the
    repository's playbooks/ there), the repository's playbooks/ in an editable install."""
    packaged = Path(burst.__file__).resolve().parent / "_playbooks"
    if packaged.is_dir():
        return packaged
    repository = Path(__file__).resolve().parents[2] / "playbooks"
    if repository.is_dir():
        return repository
    raise PlaybooksMissingError(f"burst's playbooks are missing: looked in {packaged} and {repository}")


def run_playbook(
    playbook: str,
    hosts: Sequence[HostTarget],
    sink: HostSink,
    deadline: float,
    extravars: Mapping[str, Any] | None = None,
    secret_vars: Mapping[str, Any] | None = None,
    forks: int = 50,
    artifact_dir: Path | None = None,
) -> dict[str, HostResult]:
    """Run `playbook` (a file name in `playbooks_dir()`) on `hosts`; report each host to
    `sink` as soon as it is done and return every host's result.

    `deadline` is a `time.monotonic()` value: the run is killed then, and a host not
    done by then is reported failed. `secret_vars` reach the playbook as extra vars but
    never the disk beyond the run (see the module docstring). `artifact_dir` keeps
    ansible-runner's artifacts (job events, stdout) for inspection; by default they are
    deleted with the rest of the run's private directory."""
    tracker = _HostTracker(hosts, sink)
    if not hosts:
        return tracker.results
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        tracker.finish_rest("deadline passed before initialisation started")
        return tracker.results
    playbook_path = playbooks_dir() / playbook
    if not playbook_path.is_file():
        raise PlaybooksMissingError(f"playbook {playbook} not found in {playbooks_dir()}")

    private = Path(tempfile.mkdtemp(prefix="burst-ansible-"))  # mode 0700
    try:
        run_vars = {
            # no task may outlive the run; a host gets half the time to answer SSH
            "burst_task_timeout": max(1, math.ceil(remaining)),
            "burst_connect_timeout": max(1, int(remaining / 2)),
            **(extravars or {}),
        }
        optional: dict[str, Any] = {}
        cmdline = ["-e", "@" + str(_write_private(private / "vars.json", run_vars))]
        if secret_vars:
            cmdline += ["-e", "@" + str(_write_private(private / "secrets.json", secret_vars))]
        (private / "run").mkdir()
        control_dir = private / "cp"
        control_dir.mkdir()
        if artifact_dir is not None:
            optional["artifact_dir"] = str(artifact_dir)
        runner = _ansible_runner().run(
            private_data_dir=str(private / "run"),
            project_dir=str(playbook_path.parent),
            playbook=str(playbook_path),
            inventory=_inventory(hosts),
            cmdline=" ".join(cmdline),
            envvars=_environment(remaining, control_dir),
            forks=max(1, min(forks, len(hosts))),
            timeout=max(1, math.ceil(remaining)),
            suppress_env_files=True,
            quiet=True,
            event_handler=tracker.handle,
            **optional,
        )
        if runner.status == "timeout":
            tracker.finish_rest("deadline exceeded", with_last_task=True)
        else:
            tracker.finish_rest(
                f"ansible-playbook ended ({runner.status}, rc {runner.rc}) before the host finished: "
                + _last_line(_read_stdout(runner)),
                with_last_task=True,
            )
    finally:
        _close_ssh_masters(private / "cp")
        _kill_run_processes(private)
        shutil.rmtree(private, ignore_errors=True)
    tracker.raise_sink_error()
    return tracker.results


class _HostTracker:
    """Turns ansible-runner's event stream into per-host sink calls (called from the
    runner's thread, and once more at the end)."""

    def __init__(self, hosts: Sequence[HostTarget], sink: HostSink) -> None:
        self._sink = sink
        self._pending = {host.host_id for host in hosts}
        self._last_task: dict[str, str] = {}
        self._lock = threading.Lock()
        self.sink_error: Exception | None = None
        self.results: dict[str, HostResult] = {}

    def handle(self, event: Mapping[str, Any]) -> bool:
        # An exception raised here would unwind through ansible-runner and leave
        # ansible-playbook running: keep the first one and raise it after the run.
        try:
            self._handle(event)
        except Exception as exc:  # noqa: BLE001  (re-raised by raise_sink_error)
            if self.sink_error is None:
                self.sink_error = exc
        return True  # keep the event in the artifacts

    def raise_sink_error(self) -> None:
        if self.sink_error is not None:
            raise self.sink_error

    def _handle(self, event: Mapping[str, Any]) -> None:
        status = _TASK_EVENTS.get(event.get("event", ""))
        data = event.get("event_data") or {}
        host = data.get("host")
        if status is None or host not in self._pending:
            return
        task = data.get("task") or "?"
        res = data.get("res") or {}
        if status == "ok" and res.get("changed"):
            status = "changed"
        self._last_task[host] = task
        self._sink.event(host, "ansible", {"task": task, "status": status, "duration": data.get("duration")})
        if status in ("failed", "unreachable") and not data.get("ignore_errors"):
            self._finish(host, HostResult(host, False, error=f"{task}: {_error_line(res)}"))
        elif task == RESULT_TASK and status in ("ok", "changed"):
            msg = res.get("msg")
            self._finish(host, HostResult(host, True, data=dict(msg) if isinstance(msg, Mapping) else {}))

    def finish_rest(self, why: str, with_last_task: bool = False) -> None:
        for host in sorted(self._pending):
            last = self._last_task.get(host)
            where = f" (last task: {last})" if with_last_task and last else ""
            self._finish(host, HostResult(host, False, error=why + where))

    def _finish(self, host: str, result: HostResult) -> None:
        with self._lock:
            if host not in self._pending:
                return
            self._pending.discard(host)
            self.results[host] = result
        self._sink.done(host, result.ok, result.error, result.data)


def _inventory(hosts: Sequence[HostTarget]) -> dict[str, Any]:
    """inventory hostname = host_id, ansible_host = address, HostTarget.vars as host vars
    (host vars take precedence over the playbooks' group_vars/all.yml defaults)."""
    return {
        "all": {
            "hosts": {host.host_id: {**host.vars, "ansible_host": host.address} for host in hosts},
        }
    }


def _environment(remaining: float, control_dir: Path) -> dict[str, str]:
    # ansible-runner runs `ansible-playbook` from PATH: when Python runs from a venv
    # that is not activated, its bin directory is not on PATH (rc 127 otherwise).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {
        "PATH": path,
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_SSH_CONTROL_PATH": "%(directory)s/%%C",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_TIMEOUT": str(max(1, min(SSH_CONNECT_TIMEOUT, int(remaining)))),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_SSH_RETRIES": "0",
    }


def _close_ssh_masters(control_dir: Path) -> None:
    """Tell each SSH master of this run to exit (they would linger a minute)."""
    if not control_dir.is_dir():
        return
    for socket_path in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "burst-host"],
            capture_output=True,
            timeout=10,
            check=False,
        )


def _kill_run_processes(private: Path, timeout: float = 5.0) -> None:
    """Kill whatever is left of this run, by PID. When ansible-runner stops a run at
    its timeout it kills ansible-playbook's process group, but ansible's workers run
    in sessions of their own: they would go on, open new SSH connections and start
    new masters. Every process of the run names the run's private directory on its
    command line (ansible-playbook and its forked workers: `-e @DIR/vars.json`; ssh
    and its masters: the control path), and nothing else does."""
    marker = str(private).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid for pid in _pids_naming(marker) if pid != os.getpid()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _pids_naming(marker: bytes) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass  # gone meanwhile
    return pids


def _write_private(path: Path, values: Mapping[str, Any]) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(dict(values), f)
    return path


def _error_line(res: Mapping[str, Any]) -> str:
    """One line that says why a task failed: puppet's own "Error:" line when there is
    one, else Ansible's message (with the command's last stderr line if it has one)."""
    if res.get("censored"):
        return "failed; output hidden (no_log)"
    stderr = str(res.get("stderr") or "")
    stdout = str(res.get("stdout") or "")
    for line in (stderr + "\n" + stdout).splitlines():
        if line.strip().startswith("Error:"):
            return _clip(line)
    msg = str(res.get("msg") or "failed")
    if msg == "non-zero return code" or not msg.strip():
        detail = _last_line(stderr) or _last_line(stdout)
        msg = f"rc {res.get('rc')}: {detail}" if detail else f"rc {res.get('rc')}"
    return _clip(msg)


def _clip(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return _clip(lines[-1]) if lines else ""


def _read_stdout(runner: Any) -> str:
    try:
        return runner.stdout.read()
    except Exception:  # the stdout artifact may be absent when the run never started
        return ""


def _ansible_runner() -> Any:
    import ansible_runner  # heavy: imported only when a playbook runs

    return ansible_runner


# --- initialisation ------------------------------------------------------------------

INITIALISE_PLAYBOOK = "initialise.yml"


@dataclass(frozen=True)
class AnsibleOptions:
    """How `AnsibleInitialiser` runs: the config's `[initialise.options]` when
    `[initialise] kind = "ansible"`."""

    forks: int = 50
    #: variables for every host, e.g. `burst_rpm_repo_url` when all hosts share one
    #: mirror (they override the inventory's)
    extravars: Mapping[str, Any] = field(default_factory=dict)
    #: keep ansible-runner's artifacts here (debugging); None deletes them
    artifact_dir: Path | None = None

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> AnsibleOptions:
        unknown = set(options) - {"forks", "extravars", "artifact_dir"}
        if unknown:
            raise ConfigError(f"[initialise.options]: unknown option(s) {', '.join(sorted(unknown))} "
                              "(known: forks, extravars, artifact_dir)")  # fmt: skip
        forks = options.get("forks", cls.forks)
        if not isinstance(forks, int) or isinstance(forks, bool) or forks < 1:
            raise ConfigError(f"[initialise.options] forks must be a whole number >= 1, not {forks!r}")
        extravars = options.get("extravars", {})
        if not isinstance(extravars, Mapping):
            raise ConfigError("[initialise.options] extravars must be a table of variables")
        artifact_dir = options.get("artifact_dir")
        return cls(forks, dict(extravars), Path(artifact_dir) if artifact_dir else None)


def playbook_digest(playbook: str = INITIALISE_PLAYBOOK) -> str:
    """A hash of the playbook, its group_vars and every role's files: a change in any
    of them means hosts must be initialised again."""
    root = playbooks_dir()
    files = [root / playbook]
    for sub in ("group_vars", "roles"):
        files += sorted(p for p in (root / sub).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def config_hash(host: HostTarget, digest: str, extravars: Mapping[str, Any]) -> str:
    """The configuration a host gets: the playbook files plus every variable that can
    change what they do. Connection variables (ansible_*) do not count: a host reached
    by another address or key is still configured the same."""
    relevant = {k: v for k, v in host.vars.items() if not k.startswith("ansible_") and k != "burst_config_hash"}
    relevant.update(extravars)
    blob = digest + json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class AnsibleInitialiser:
    """`Initialiser` that runs initialise.yml: RPMs, masterless puppet, docker."""

    def __init__(self, options: AnsibleOptions | Mapping[str, Any] | None = None) -> None:
        if options is None or isinstance(options, AnsibleOptions):
            self.options = options or AnsibleOptions()
        else:
            self.options = AnsibleOptions.from_mapping(options)

    def initialise(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        digest = playbook_digest(INITIALISE_PLAYBOOK)
        hashes = {host.host_id: config_hash(host, digest, self.options.extravars) for host in hosts}
        to_run = []
        for host in hosts:
            if host.vars.get("burst_config_hash") == hashes[host.host_id]:
                sink.done(host.host_id, True, "", {"config_hash": hashes[host.host_id]})
            else:
                to_run.append(host)
        if not to_run:
            return
        run_playbook(
            INITIALISE_PLAYBOOK,
            to_run,
            _WithConfigHash(sink, hashes),
            deadline,
            extravars=self.options.extravars,
            forks=self.options.forks,
            artifact_dir=self.options.artifact_dir,
        )


class _WithConfigHash:
    """Adds the host's configuration hash to the data of a successful host."""

    def __init__(self, sink: HostSink, hashes: Mapping[str, str]) -> None:
        self._sink = sink
        self._hashes = hashes

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        self._sink.event(host_id, kind, detail)

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        if ok:
            data = {**(data or {}), "config_hash": self._hashes[host_id]}
        self._sink.done(host_id, ok, error, data)
