"""A provider with no cloud behind it, for tests, demos and failure drills.

Its instances live in a JSON file (under the config's state dir), so they outlive a
crash of the burst process as cloud instances would. Latencies and faults come from
the tier options and can be changed at run time in the file's "faults" table (tests
and drills do that from another process). Every call is recorded in the file.

Options (all optional):
  boot_seconds        seconds from launch to running (default 2)
  launch_seconds      latency of one launch call (default 0.05)
  state_file          where the instances live (default <state_dir>/fake-<cluster>.json)
  faults              initial faults, see `Faults`
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Iterator

from filelock import FileLock

from burst.provider import (
    TAG_BATCH,
    Instance,
    InstanceNotFoundError,
    InstanceState,
    InstanceType,
    InsufficientCapacityError,
    LaunchRequest,
    NotOwnedError,
    Provider,
    ProviderConfigError,
    ProviderContext,
    ThrottledError,
)


@dataclass
class Faults:
    no_stock_zones: list[str] = field(default_factory=list)  # launches there fail: no capacity
    no_stock_types: list[str] = field(default_factory=list)
    max_per_launch: int | None = None  # a launch gets at most this many (partial capacity)
    throttle_next: int = 0  # the next N calls raise ThrottledError
    never_ready: int = 0  # the next N instances launched never leave pending
    boot_jitter: float = 0.0  # each boot takes boot_seconds * (1 + U(0, jitter))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Faults":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ProviderConfigError(f"fake: unknown fault {sorted(unknown)[0]!r} (known: {', '.join(sorted(known))})")
        return cls(**dict(data))


def _now() -> float:
    return time.time()


class FakeProvider(Provider):
    name: ClassVar[str] = "fake"
    #: its describe is a local file read: cheap to ask often
    poll_seconds: ClassVar[float] = 0.1

    def __init__(self, context: ProviderContext, options: Mapping[str, Any]):
        super().__init__(context, options)
        try:
            self.boot_seconds = float(options.get("boot_seconds", 2.0))
            self.launch_seconds = float(options.get("launch_seconds", 0.05))
        except (TypeError, ValueError):
            raise ProviderConfigError("fake: boot_seconds and launch_seconds must be numbers") from None
        default = Path(context.state_dir) / f"fake-{context.cluster}.json"
        self.path = Path(options.get("state_file") or default)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path) + ".lock")
        # threads of this process queue here, not in the file lock's sleep-and-retry poll
        self._thread_lock = threading.Lock()
        self._types = [InstanceType(name=t["name"], cpu=t["cpu"], memory_gib=t["memory_gib"],
                                    price_per_hour=t["price_per_hour"], zones=tuple(t["zones"]))
                       for t in options.get("instance_types", [])]
        initial = Faults.from_dict(options.get("faults", {}))
        with self._state() as state:
            state.setdefault("faults", asdict(initial))

    # -- the file --------------------------------------------------------------

    @contextmanager
    def _state(self) -> Iterator[dict]:
        """Read-modify-write of the instance file under a file lock; written atomically."""
        with self._thread_lock, self._lock:
            try:
                state = json.loads(self.path.read_text())
            except FileNotFoundError:
                state = {}
            state.setdefault("instances", {})
            state.setdefault("requests", {})
            state.setdefault("calls", [])
            state.setdefault("next_id", 1)
            yield state
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.path)

    def _call(self, state: dict, op: str, **args: Any) -> Faults:
        state["calls"].append({"op": op, "at": _now(), **args})
        faults = Faults.from_dict(state["faults"])
        if faults.throttle_next > 0:
            state["faults"]["throttle_next"] -= 1
            raise ThrottledError(f"fake: {op} throttled", code="Throttling", provider=self.name)
        return faults

    def set_faults(self, **faults: Any) -> None:
        with self._state() as state:
            merged = {**state["faults"], **faults}
            Faults.from_dict(merged)
            state["faults"] = merged

    def records(self) -> dict:
        """The whole file: instances, requests and calls (for tests and drills)."""
        with self._state() as state:
            return json.loads(json.dumps(state))

    # -- the contract ------------------------------------------------------------

    def instance_types(self) -> Sequence[InstanceType]:
        return list(self._types)

    def _instance(self, rec: dict, now: float) -> Instance:
        state = InstanceState(rec["state"])
        if state is InstanceState.PENDING and not rec["never_ready"] and now >= rec["ready_at"]:
            state = InstanceState.RUNNING
        return Instance(id=rec["id"], provider=self.name, zone=rec["zone"], instance_type=rec["type"],
                        state=state, address=rec["address"] if state is InstanceState.RUNNING else None,
                        tags=dict(rec["tags"]), created_at=datetime.fromtimestamp(rec["created_at"], UTC))

    def launch(self, req: LaunchRequest) -> list[Instance]:
        if not 1 <= req.count <= self.max_batch:
            raise ValueError(f"fake: launch count {req.count} outside 1..{self.max_batch}")
        time.sleep(self.launch_seconds)
        with self._state() as state:
            faults = self._call(state, "launch", request_id=req.request_id, count=req.count,
                                zone=req.zone, type=req.instance_type)
            now = _now()
            if req.request_id in state["requests"]:  # idempotent: same token, same instances
                return [self._instance(state["instances"][i], now) for i in state["requests"][req.request_id]]
            if req.zone in faults.no_stock_zones or req.instance_type in faults.no_stock_types:
                raise InsufficientCapacityError(
                    f"fake: no stock of {req.instance_type} in {req.zone}", code="NoStock", provider=self.name)
            count = min(req.count, faults.max_per_launch or req.count)
            made = []
            for _ in range(count):
                n = state["next_id"]
                state["next_id"] += 1
                never = faults.never_ready > 0
                if never:
                    faults.never_ready -= 1
                    state["faults"]["never_ready"] = faults.never_ready
                boot = self.boot_seconds * (1 + random.uniform(0, faults.boot_jitter))
                rec = {"id": f"fake-{n:06d}", "zone": req.zone, "type": req.instance_type,
                       "state": InstanceState.PENDING.value, "created_at": now, "ready_at": now + boot,
                       "never_ready": never, "address": f"127.77.{n // 250 % 250}.{n % 250 + 1}",
                       "tags": {**self.owner_tags(req.tags), TAG_BATCH: req.request_id},
                       "request_id": req.request_id}
                state["instances"][rec["id"]] = rec
                made.append(rec["id"])
            state["requests"][req.request_id] = made
            instances = [self._instance(state["instances"][i], now) for i in made]
        if count < req.count:
            raise InsufficientCapacityError(f"fake: only {count} of {req.count} {req.instance_type} in {req.zone}",
                                            created=instances, code="NoStock", provider=self.name)
        return instances

    def describe(self, ids: Sequence[str]) -> list[Instance]:
        with self._state() as state:
            self._call(state, "describe", count=len(ids))
            now = _now()
            return [self._instance(state["instances"][i], now) for i in ids
                    if i in state["instances"] and state["instances"][i]["state"] != "terminated"]

    def list(self) -> list[Instance]:
        with self._state() as state:
            self._call(state, "list")
            now = _now()
            return [self._instance(rec, now) for rec in state["instances"].values()
                    if rec["state"] != "terminated" and rec["tags"].get("burst:cluster") == self.cluster]

    def terminate(self, ids: Sequence[str], *, request_id: str) -> None:
        with self._state() as state:
            self._call(state, "terminate", request_id=request_id, ids=list(ids))
            known = [state["instances"][i] for i in ids if i in state["instances"]]
            foreign = [r["id"] for r in known if r["tags"].get("burst:cluster") != self.cluster]
            if foreign:
                raise NotOwnedError(f"fake: refusing to terminate {', '.join(foreign)}: not tagged as "
                                    f"cluster {self.cluster}'s", provider=self.name)
            for rec in known:
                rec["state"] = InstanceState.TERMINATED.value

    def create_foreign(self, zone: str = "zone-a", instance_type: str = "foreign", cluster: str = "") -> str:
        """An instance burst does not own (made 'by someone else'): for refusal tests."""
        with self._state() as state:
            n = state["next_id"]
            state["next_id"] += 1
            rec = {"id": f"fake-{n:06d}", "zone": zone, "type": instance_type, "state": "running",
                   "created_at": _now(), "ready_at": _now(), "never_ready": False, "address": "127.77.255.255",
                   "tags": {"burst:cluster": cluster} if cluster else {}, "request_id": ""}
            state["instances"][rec["id"]] = rec
            return rec["id"]


__all__ = ["FakeProvider", "Faults", "InstanceNotFoundError"]
