"""What the calendar asks for at a moment: overlapping occurrences add their demands.

The daemon gives every occurrence its own burst (named by the occurrence key), so
capacity is owned per occurrence: when one ends, only its own hosts go back, and the
hosts of every other live occurrence stay. These functions state that rule on plain
data, for `burst calendar list` and for the tests that check it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from burst.calendar.model import Occurrence


def demand_at(occurrences: Iterable[Occurrence], t: datetime) -> dict[str, int]:
    """Replicas per service wanted at `t`: the sum over occurrences live at `t`."""
    total: Counter[str] = Counter()
    for occ in occurrences:
        if not occ.freeze and occ.live_at(t):
            total.update(occ.demand)
    return dict(total)


def returned_at_end(occurrences: Iterable[Occurrence], ending: Occurrence) -> dict[str, int]:
    """Replicas per service that go back when `ending` ends: what the summed demand
    held just before its end, less what the other live occurrences still need then."""
    occs = list(occurrences)
    just_before = ending.end - timedelta(microseconds=1)
    held = demand_at(occs, just_before)
    still_needed = demand_at([o for o in occs if o.key != ending.key], just_before)
    return {svc: n - still_needed.get(svc, 0) for svc, n in held.items() if n > still_needed.get(svc, 0)}


def peak_demand(occurrences: Iterable[Occurrence]) -> dict[str, int]:
    """The largest summed demand per service (checked at every start: the sum only
    grows there)."""
    occs = [o for o in occurrences if not o.freeze]
    peak: dict[str, int] = {}
    for occ in occs:
        for svc, n in demand_at(occs, occ.start).items():
            peak[svc] = max(peak.get(svc, 0), n)
    return peak


def frozen_at(occurrences: Iterable[Occurrence], t: datetime) -> Occurrence | None:
    """The freeze window running at `t`, if any: nothing is scaled in while it runs."""
    for occ in occurrences:
        if occ.freeze and occ.live_at(t):
            return occ
    return None
