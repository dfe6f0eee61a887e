"""A plan as a value: the hosts per tier, zone and type that a burst adds.

The planner (`burst.planner`) makes it; the store keeps it with its burst; the
reconciler, the report and the CLI read it. Pure data, importing nothing of burst.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class PlanGroup:
    """`count` hosts of one type in one zone of one tier, and the replicas they take."""

    tier: str
    provider: str
    zone: str
    instance_type: str
    count: int
    price_per_hour: float
    ready_seconds: float
    replicas: dict[str, int]
    #: what the hosts carry, as runs of identical hosts: (hosts, replicas on each host);
    #: empty in plans made before the field existed
    per_host: tuple[tuple[int, dict[str, int]], ...] = ()

    @property
    def cost_per_hour(self) -> float:
        return self.count * self.price_per_hour


@dataclass(frozen=True)
class Plan:
    groups: tuple[PlanGroup, ...]
    #: replicas that fit in room the cluster already has
    absorbed: dict[str, int]
    #: replicas no tier could take (a non-empty dict means the plan falls short)
    unplaced: dict[str, int]
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (tier, why)

    @property
    def hosts(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def cost_per_hour(self) -> float:
        return round(sum(g.cost_per_hour for g in self.groups), 4)

    @property
    def ready_seconds(self) -> float:
        return max((g.ready_seconds for g in self.groups), default=0.0)

    def to_dict(self) -> dict:
        return {"groups": [asdict(g) for g in self.groups], "absorbed": self.absorbed,
                "unplaced": self.unplaced, "skipped": [list(s) for s in self.skipped],
                "hosts": self.hosts, "cost_per_hour": self.cost_per_hour,
                "ready_seconds": self.ready_seconds}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Plan":
        return cls(groups=tuple(_group(g) for g in data["groups"]), absorbed=dict(data["absorbed"]),
                   unplaced=dict(data["unplaced"]), skipped=tuple(tuple(s) for s in data["skipped"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        return cls.from_dict(json.loads(text))


def _group(data: Mapping) -> PlanGroup:
    fields = dict(data)
    fields["per_host"] = tuple((int(n), dict(each)) for n, each in fields.get("per_host", ()))
    return PlanGroup(**fields)


def demand_from_json(text: str) -> dict[str, int]:
    """A stored demand (service -> extra replicas), checked: positive whole numbers."""
    data = json.loads(text)
    if not isinstance(data, dict) or not all(isinstance(k, str) and type(v) is int and v > 0
                                             for k, v in data.items()):
        raise ValueError(f"not a demand (service -> positive replica count): {text[:80]!r}")
    return data


def demand_to_json(demand: Mapping[str, int]) -> str:
    return json.dumps(dict(demand), sort_keys=True)
