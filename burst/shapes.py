"""What a host can be: an instance type, the one record of it from the config through
the planner to the providers. Pure data, importing nothing of burst."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    """One shape a provider can offer. `available` is None for 'as much as the cloud
    has' and a count where the provider knows its stock (the on-prem pool)."""

    name: str
    cpu: float
    memory_gib: float
    price_per_hour: float
    zones: tuple[str, ...]
    available: int | None = None
