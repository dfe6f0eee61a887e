"""Give up: when a failed host's slot gets no further attempt (the burst then
completes short of it and says so)."""

from __future__ import annotations

from burst.reconciler.context import BurstPass
from burst.store import HostRow

#: hosts of one slot that may come up and fail before the slot is given up; launches
#: that found no stock do not count (offerings are finite: the walk ends by itself)
MAX_ATTEMPTS = 3


def why_give_up(bp: BurstPass, failed: HostRow, offering: tuple[str, str, str] | None) -> str | None:
    """The reason to give the failed host's slot up, or None to replace it on `offering`."""
    if bp.burst.halted:
        return f"the burst is halted: {bp.burst.halted}"
    came_up = sum(1 for h in bp.rows if h.slot == failed.slot and h.instance_id and h.error)
    if came_up >= MAX_ATTEMPTS:
        return f"{came_up} hosts failed"
    if offering is None:
        return "no offering left with stock"
    return None
