"""Docker Swarm through the Docker SDK on a manager: the `Cluster` burst talks to.

The manager is reached at the Docker endpoint the config names: a unix socket in the
lab, `ssh://` or `tcp://` with TLS in production. Everything that must happen *on a
host* (join, leave) runs through Ansible's join.yml and leave.yml over SSH, in the lab
as in production: one code path, and burst never needs a Docker endpoint per host.
Everything else (join token, node Ready, labels, spillover services, drain, node rm,
capacity) is a manager API call.

The join token is a secret: it goes to the playbook only in `secret_vars` and never
into an event, a log line or an error message.

Spillover: `ensure_spillover(event, service, n)` runs a service `<service>-burst-<event>`
with the base service's task template (image, command, resources, networks, ports)
placed by the constraint `node.labels.burst.event==<event>`, so its tasks land on the
new hosts only. Services use dnsrr endpoints and host-mode ports (no IPVS here), so a
host-mode port means at most one task per node. Image pull time is part of the SLA:
`wait_spillover` reports it per host from the tasks' own state timestamps.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from burst.errors import BurstError
from burst.provision import HostSink, HostTarget, NodeCapacity, event_key
from burst.wait import DeadlineExceeded, wait_until

LABEL_EVENT = "burst.event"
LABEL_SPILLOVER_OF = "burst.spillover-of"
#: on a base service grown in place for an event: `burst.in-place.<event key>` = tasks added
LABEL_IN_PLACE = "burst.in-place."
#: the task states a drained node may still show for a while; any other is final
_LIVE_TASK_STATES = {"new", "pending", "assigned", "accepted", "preparing", "starting", "running"}
_POLL = 0.2


class ClusterError(BurstError):
    """The swarm manager refused or could not be reached."""


@contextlib.contextmanager
def _docker_errors(what: str) -> Iterator[None]:
    """The one place where Docker SDK errors become burst errors (one line each)."""
    import docker.errors
    import requests.exceptions

    try:
        yield
    except docker.errors.NotFound:
        raise
    except docker.errors.APIError as exc:
        raise ClusterError(f"swarm: {what}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ClusterError(f"swarm: {what}: {exc}") from exc


def spillover_name(service: str, event: str) -> str:
    return f"{service}-burst-{event_key(event)}"[:63]


class SwarmCluster:
    """Options (from the config's [swarm.options]):

    docker_url      the manager's endpoint: unix:///..., ssh://user@host, tcp://host:2376
    tls_ca, tls_cert, tls_key   client TLS files for tcp:// (verify against tls_ca)
    manager_addr    host:port new nodes join (default: the manager's own advertise address)
    stop_grace_seconds          spillover tasks' stop grace period (default 1)
    """

    def __init__(
        self,
        docker_url: str,
        *,
        tls: Mapping[str, str] | None = None,
        manager_addr: str = "",
        stop_grace_seconds: float = 1.0,
        run_playbook: Callable[..., Any] | None = None,
    ):
        import docker

        kwargs: dict[str, Any] = {"base_url": docker_url, "timeout": 30}
        if tls:
            kwargs["tls"] = docker.tls.TLSConfig(
                client_cert=(tls["tls_cert"], tls["tls_key"]), ca_cert=tls["tls_ca"], verify=True
            )
        if docker_url.startswith("ssh://"):
            kwargs["use_ssh_client"] = True  # the ssh binary: honours ~/.ssh/config
        with _docker_errors(f"connect to {docker_url}"):
            self.client = docker.DockerClient(**kwargs)
        self.docker_url = docker_url
        self._manager_addr = manager_addr
        self.stop_grace_ns = int(stop_grace_seconds * 1e9)
        if run_playbook is None:
            from burst.provision.ansible import run_playbook
        self._run_playbook = run_playbook

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "SwarmCluster":
        if not options.get("docker_url"):
            raise ClusterError("swarm: options.docker_url is required (the manager's Docker endpoint)")
        tls = {k: options[k] for k in ("tls_ca", "tls_cert", "tls_key") if k in options}
        if tls and len(tls) != 3:
            raise ClusterError("swarm: TLS needs all of tls_ca, tls_cert and tls_key")
        return cls(
            options["docker_url"], tls=tls or None, manager_addr=options.get("manager_addr", ""),
            stop_grace_seconds=float(options.get("stop_grace_seconds", 1.0)),
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()

    # -- join --------------------------------------------------------------------------

    def join(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """join.yml on the hosts not in the swarm yet; then, per host as soon as its
        join is done: wait for its node to be Ready, label it, report its node id."""
        out = _OncePerHost(sink, hosts, "join")
        with out.reporting_the_rest(), ThreadPoolExecutor(max_workers=8) as after_join:
            to_join = []
            for host in hosts:
                node = self._node_for(host, ready_only=True)
                if node is not None:  # already in: idempotent
                    after_join.submit(self._finish_join, host, node["ID"], out, deadline)
                else:
                    to_join.append(dataclasses.replace(host, vars={**host.vars, "burst_swarm_advertise_addr": host.address}))
            if not to_join:
                return
            with _docker_errors("read the join token"):
                token = self.client.swarm.attrs["JoinTokens"]["Worker"]
            by_id = {h.host_id: h for h in to_join}

            def joined(host_id: str, ok: bool, error: str, data: Mapping[str, Any]) -> None:
                if not ok:
                    out.done(host_id, False, f"join: {error}")
                else:  # on to Ready and labels at once, while the others still join
                    after_join.submit(self._finish_join, by_id[host_id], data.get("node_id", ""), out, deadline)

            self._run_playbook(
                "join.yml", to_join, _Relay(out, joined), deadline,
                extravars={"burst_swarm_manager_addr": self.manager_addr()},
                secret_vars={"burst_swarm_join_token": token},
            )  # fmt: skip

    def manager_addr(self) -> str:
        if self._manager_addr:
            return self._manager_addr
        with _docker_errors("read the manager address"):
            info = self.client.info()["Swarm"]
        managers = [m["Addr"] for m in info.get("RemoteManagers") or [] if m.get("NodeID") == info.get("NodeID")]
        return managers[0] if managers else f"{info['NodeAddr']}:2377"

    def _finish_join(self, host: HostTarget, node_id: str, out: "_OncePerHost", deadline: float) -> None:
        with out.reporting(host.host_id):
            started = time.monotonic()
            node_id = node_id or self._wait_node_id(host, deadline)
            seen: dict[str, Any] = {}

            def ready() -> bool:
                seen["node"] = node = self._node(node_id)
                return node is not None and node["Status"]["State"] == "ready"

            try:
                wait_until(ready, deadline=deadline, interval=_POLL, what=f"node {node_id} Ready")
            except DeadlineExceeded:
                state = seen["node"]["Status"]["State"] if seen.get("node") else "absent"
                out.done(host.host_id, False, f"join: node {node_id} not Ready before the deadline ({state})")
                return
            out.event(host.host_id, "node_ready", {"node_id": node_id, "seconds": round(time.monotonic() - started, 3)})
            self._update_node(node_id, labels=dict(host.labels))
            out.event(host.host_id, "node_labelled", {"node_id": node_id, "labels": dict(host.labels)})
            out.done(host.host_id, True, "", {"node_id": node_id})

    def _wait_node_id(self, host: HostTarget, deadline: float) -> str:
        try:
            node = wait_until(lambda: self._node_for(host, ready_only=False), deadline=deadline, interval=_POLL,
                              what=f"a swarm node with address {host.address}")
        except DeadlineExceeded:
            raise ClusterError(f"no swarm node with address {host.address}") from None
        return node["ID"]

    # -- drain and leave ---------------------------------------------------------------

    def drain(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """Availability drain, then wait until no task is live on those nodes."""
        out = _OncePerHost(sink, hosts, "drain")
        with out.reporting_the_rest():
            waiting: dict[str, HostTarget] = {}
            for host in hosts:
                with out.reporting(host.host_id):
                    node = self._node_for(host, ready_only=False)
                    if node is None:
                        out.done(host.host_id, True, "", {"node_id": ""})  # already gone
                        continue
                    self._update_node(node["ID"], availability="drain")
                    waiting[node["ID"]] = host
            started = time.monotonic()

            def all_drained() -> bool:
                """Reports each node as soon as no task is live on it."""
                with contextlib.suppress(ClusterError):  # a failed poll is retried until the deadline
                    tasks = self._tasks({"node": list(waiting)})
                    live = {t["NodeID"] for t in tasks if t["Status"]["State"] in _LIVE_TASK_STATES}
                    for node_id in [n for n in waiting if n not in live]:
                        host = waiting.pop(node_id)
                        seconds = round(time.monotonic() - started, 3)
                        out.event(host.host_id, "drained", {"node_id": node_id, "seconds": seconds})
                        out.done(host.host_id, True, "", {"node_id": node_id})
                return not waiting

            if not waiting:
                return
            try:
                wait_until(all_drained, deadline=deadline, interval=_POLL, what="the drained nodes' tasks to stop")
            except DeadlineExceeded:
                for node_id, host in waiting.items():
                    out.done(host.host_id, False, f"drain: tasks still running on node {node_id} at the deadline")

    def leave(self, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """leave.yml on the hosts, then `node rm --force` on the manager. A host that
        cannot run leave.yml (unreachable: it is about to be terminated anyway) still has
        its node removed, with a `leave_forced` event; only a failed `node rm` fails.
        Caveat: such a host's own dockerd still believes it is in the swarm."""
        out = _OncePerHost(sink, hosts, "leave")
        with out.reporting_the_rest():
            nodes: dict[str, str] = {}
            present = []
            for host in hosts:
                with out.reporting(host.host_id):
                    node = self._node_for(host, ready_only=False)
                    if node is None:
                        out.done(host.host_id, True, "", {"node_id": ""})  # already gone
                    else:
                        nodes[host.host_id] = node["ID"]
                        present.append(host)
            if not present:
                return

            def left(host_id: str, ok: bool, error: str, data: Mapping[str, Any]) -> None:
                with out.reporting(host_id):
                    if not ok:
                        out.event(host_id, "leave_forced", {"error": error})
                    try:
                        with _docker_errors(f"remove node {nodes[host_id]}"):
                            self.client.api.remove_node(nodes[host_id], force=True)
                    except _not_found():
                        pass  # already gone
                    out.done(host_id, True, "", {"node_id": nodes[host_id]})

            self._run_playbook("leave.yml", present, _Relay(out, left), deadline, extravars={}, secret_vars={})

    # -- spillover ---------------------------------------------------------------------

    def ensure_spillover(self, event: str, service: str, replicas: int, in_place: int = 0) -> None:
        self._grow_in_place(event, service, in_place)
        replicas -= in_place
        name = spillover_name(service, event)
        with _docker_errors(f"ensure spillover {name}"):
            try:
                existing = self.client.services.get(name)
            except _not_found():
                existing = None
            if existing is not None:
                current = existing.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas")
                if current != replicas:
                    existing.scale(replicas)
                return
            try:
                base = self.client.services.get(service)
            except _not_found():
                raise ClusterError(f"swarm: no service {service!r} to spill over (create the base service first)") from None
            spec = base.attrs["Spec"]
            template = copy.deepcopy(spec["TaskTemplate"])
            template.pop("ForceUpdate", None)
            template["ContainerSpec"]["StopGracePeriod"] = self.stop_grace_ns
            endpoint = copy.deepcopy(spec.get("EndpointSpec") or {"Mode": "dnsrr"})
            endpoint["Mode"] = "dnsrr"  # no IPVS: the routing mesh does not work here
            host_ports = [p for p in endpoint.get("Ports", []) if p.get("PublishMode") == "host"]
            placement = {"Constraints": [f"node.labels.{LABEL_EVENT}=={event_key(event)}"]}
            if host_ports:
                placement["MaxReplicas"] = 1  # one host-mode port per node
            template["Placement"] = placement
            self.client.api.create_service(
                template, name=name, mode={"Replicated": {"Replicas": replicas}}, endpoint_spec=endpoint,
                labels={LABEL_EVENT: event_key(event), LABEL_SPILLOVER_OF: service},
            )  # fmt: skip

    def _grow_in_place(self, event: str, service: str, tasks: int) -> None:
        """Grow (or shrink back) the base service itself by `tasks` for this event. The
        increment is kept as a label on the service, so a repeat changes nothing and
        overlapping events add up."""
        label = LABEL_IN_PLACE + event_key(event)
        with _docker_errors(f"grow {service} in place"):
            try:
                base = self.client.services.get(service)
            except _not_found():
                if tasks == 0:
                    return
                raise ClusterError(f"swarm: no service {service!r} to grow") from None
            spec = base.attrs["Spec"]
            labels = dict(spec.get("Labels") or {})
            before = int(labels.get(label, 0))
            if before == tasks:
                return
            replicas = spec["Mode"].get("Replicated", {}).get("Replicas", 0) - before + tasks
            if tasks:
                labels[label] = str(tasks)
            else:
                labels.pop(label, None)
            import docker.types

            base.update(mode=docker.types.ServiceMode("replicated", replicas=replicas), labels=labels)

    def _in_place_running(self, event: str) -> dict[str, int]:
        """Of each base service grown for this event, how many of its added tasks run
        (the added ones are the last to be counted)."""
        label = LABEL_IN_PLACE + event_key(event)
        out = {}
        with _docker_errors("list services"):
            grown = self.client.api.services(filters={"label": label})
        for svc in grown:
            added = int(svc["Spec"]["Labels"][label])
            wanted = svc["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0)
            tasks = self._tasks({"service": svc["ID"], "desired-state": "running"})
            running = sum(1 for t in tasks if t["Status"]["State"] == "running")
            out[svc["Spec"]["Name"]] = max(0, min(added, running - (wanted - added)))
        return out

    def spillover_running(self, event: str) -> dict[str, int]:
        running = self._in_place_running(event)
        for svc in self._spillover_services(event):
            base = svc["Spec"]["Labels"][LABEL_SPILLOVER_OF]
            tasks = self._tasks({"service": svc["ID"], "desired-state": "running"})
            running[base] = running.get(base, 0) + sum(1 for t in tasks if t["Status"]["State"] == "running")
        return running

    def remove_spillover(self, event: str) -> None:
        for service in self._in_place_running(event):
            self._grow_in_place(event, service, 0)
        for svc in self._spillover_services(event):
            try:
                with _docker_errors(f"remove {svc['Spec']['Name']}"):
                    self.client.api.remove_service(svc["ID"])
            except _not_found():
                pass  # already gone

    def wait_spillover(self, event: str, hosts: Sequence[HostTarget], sink: HostSink, deadline: float) -> None:
        """Wait until every spillover service of `event` has its replicas running, then
        report each host: an `image_pull` event per task placed on it (the time its task
        spent preparing, i.e. pulling the image, from the swarm's own timestamps) and
        `done` with the number of its running tasks."""
        by_node: dict[str, HostTarget] = {}
        for host in hosts:
            node = self._node_for(host, ready_only=False)
            if node is not None:
                by_node[node["ID"]] = host
        preparing_since: dict[str, datetime] = {}  # task id -> when it began preparing
        tasks: list[dict[str, Any]] = []
        running: list[dict[str, Any]] = []

        def all_running() -> bool:
            nonlocal tasks, running
            services = self._spillover_services(event)
            tasks = [t for svc in services for t in self._tasks({"service": svc["ID"], "desired-state": "running"})]
            for t in tasks:
                if t["Status"]["State"] == "preparing":
                    preparing_since.setdefault(t["ID"], _timestamp(t["Status"]["Timestamp"]))
            wanted = sum(s["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0) for s in services)
            running = [t for t in tasks if t["Status"]["State"] == "running"]
            return len(running) >= wanted

        # short interval: a pull of a small image takes ~0.25 s; at the deadline, each
        # host is reported with what runs on it then
        with contextlib.suppress(DeadlineExceeded):
            wait_until(all_running, deadline=deadline, interval=0.05, what=f"the spillover tasks of {event}")
        for node_id, host in by_node.items():
            mine = [t for t in running if t.get("NodeID") == node_id]
            for t in mine:
                started = _timestamp(t["CreatedAt"])
                at_running = _timestamp(t["Status"]["Timestamp"])
                detail = {"task": t["ID"], "image": t["Spec"]["ContainerSpec"]["Image"],
                          "schedule_to_running_seconds": round((at_running - started).total_seconds(), 3)}  # fmt: skip
                if t["ID"] in preparing_since:
                    detail["pull_seconds"] = round((at_running - preparing_since[t["ID"]]).total_seconds(), 3)
                sink.event(host.host_id, "image_pull", detail)
            stuck = [t for t in tasks if t.get("NodeID") == node_id and t["Status"]["State"] != "running"]
            if stuck:
                sink.done(host.host_id, False, f"spillover: task {stuck[0]['Status']['State']} at the deadline: "
                          f"{stuck[0]['Status'].get('Err', '')}".strip())  # fmt: skip
            else:
                sink.done(host.host_id, True, "", {"tasks_running": len(mine)})

    # -- capacity ----------------------------------------------------------------------

    def free_capacity(self) -> list[NodeCapacity]:
        """Per Ready, active node: its CPUs and memory minus the reservations of the
        tasks running there."""
        with _docker_errors("list nodes"):
            nodes = self.client.api.nodes()
        tasks = self._tasks({"desired-state": "running"})
        free = []
        for node in nodes:
            if node["Status"]["State"] != "ready" or node["Spec"].get("Availability") != "active":
                continue
            res = node["Description"]["Resources"]
            cpu, mem = res["NanoCPUs"], res["MemoryBytes"]
            for t in tasks:
                if t.get("NodeID") == node["ID"] and t["Status"]["State"] == "running":
                    reserved = t["Spec"].get("Resources", {}).get("Reservations", {})
                    cpu -= reserved.get("NanoCPUs", 0)
                    mem -= reserved.get("MemoryBytes", 0)
            free.append(NodeCapacity(node=node["Description"]["Hostname"], cpu=max(cpu, 0) / 1e9,
                                     memory_gib=max(mem, 0) / 2**30))  # fmt: skip
        return free

    # -- nodes and tasks ---------------------------------------------------------------

    def _node(self, node_id: str) -> dict[str, Any] | None:
        try:
            with _docker_errors(f"inspect node {node_id}"):
                return self.client.api.inspect_node(node_id)
        except _not_found():
            return None

    def _node_for(self, host: HostTarget, *, ready_only: bool) -> dict[str, Any] | None:
        """The host's node: by its node id when known, else by its address (a reused
        address may also show an old Down node: the newest Ready one wins)."""
        if host.node_id:
            node = self._node(host.node_id)
            if node is not None and (not ready_only or node["Status"]["State"] == "ready"):
                return node
            if node is not None:
                return None
        with _docker_errors("list nodes"):
            nodes = [n for n in self.client.api.nodes() if n["Status"].get("Addr") == host.address]
        if ready_only:
            nodes = [n for n in nodes if n["Status"]["State"] == "ready"]
        nodes.sort(key=lambda n: (n["Status"]["State"] == "ready", n["CreatedAt"]))
        return nodes[-1] if nodes else None

    def _update_node(self, node_id: str, *, availability: str | None = None, labels: Mapping[str, str] = ()) -> None:
        """Read-modify-write of the node spec; retried when another writer bumped its
        version in between (the update is idempotent)."""
        import docker.errors
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

        def out_of_sequence(exc: BaseException) -> bool:
            return isinstance(exc, docker.errors.APIError) and "out of sequence" in str(exc)

        def write() -> None:
            node = self._node(node_id)
            if node is None:
                raise ClusterError(f"swarm: node {node_id} is gone")
            spec = node["Spec"]
            if availability:
                spec["Availability"] = availability
            spec["Labels"] = {**(spec.get("Labels") or {}), **dict(labels)}
            self.client.api.update_node(node_id, node["Version"]["Index"], spec)

        try:
            Retrying(retry=retry_if_exception(out_of_sequence), stop=stop_after_attempt(5), wait=wait_fixed(0.05),
                     reraise=True)(write)
        except docker.errors.APIError as exc:
            raise ClusterError(f"swarm: update node {node_id}: {exc.explanation or exc}") from exc

    def _tasks(self, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        with _docker_errors("list tasks"):
            return self.client.api.tasks(filters=dict(filters))

    def _spillover_services(self, event: str) -> list[dict[str, Any]]:
        with _docker_errors("list services"):
            return self.client.api.services(filters={"label": [f"{LABEL_EVENT}={event_key(event)}",
                                                                LABEL_SPILLOVER_OF]})


class _OncePerHost:
    """Wraps the caller's sink: every host of a call is reported `done` exactly once,
    even when the manager or the playbook run fails half way (then with that error)."""

    def __init__(self, sink: HostSink, hosts: Sequence[HostTarget], step: str):
        self._sink, self._step = sink, step
        self._pending = {h.host_id for h in hosts}
        self._lock = threading.Lock()

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        self._sink.event(host_id, kind, detail)

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            if host_id not in self._pending:
                return
            self._pending.discard(host_id)
        self._sink.done(host_id, ok, error, data)

    @contextlib.contextmanager
    def reporting(self, host_id: str) -> Iterator[None]:
        """A failure of this host's own step fails this host only. Anything raised in a
        worker thread is reported too: a host must never go unreported."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001
            detail = str(exc) if isinstance(exc, BurstError) else f"{type(exc).__name__}: {exc}"
            self.done(host_id, False, f"{self._step}: {detail}")

    @contextlib.contextmanager
    def reporting_the_rest(self) -> Iterator[None]:
        """A failure of the whole call fails every host not reported yet, then raises
        on if it is a bug (not a BurstError)."""
        try:
            yield
        except Exception as exc:
            for host_id in sorted(self._pending):
                self.done(host_id, False, f"{self._step}: {exc}")
            if not isinstance(exc, BurstError):
                raise


class _Relay:
    """The sink a playbook run reports to: events pass through, `done` goes to `then`."""

    def __init__(self, out: _OncePerHost, then: Callable[[str, bool, str, Mapping[str, Any]], None]):
        self._out, self._then = out, then

    def event(self, host_id: str, kind: str, detail: Mapping[str, Any]) -> None:
        self._out.event(host_id, kind, detail)

    def done(self, host_id: str, ok: bool, error: str = "", data: Mapping[str, Any] | None = None) -> None:
        self._then(host_id, ok, error, data or {})


def _not_found() -> type[Exception]:
    import docker.errors

    return docker.errors.NotFound


def _timestamp(text: str) -> datetime:
    """Docker's RFC 3339 timestamps carry nanoseconds; Python parses microseconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
