"""How early an occurrence's burst starts: its lead time.

An event may fix its lead time. Otherwise it is the slowest p95 launch-to-ready time
among the tiers the plan would use, measured from past bursts' journal once a tier
has enough samples (the configured `ready_seconds` before that), plus a margin. It
is recomputed from the history every time it is asked for, so it follows the
measurements as they grow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

#: fewer samples than this and a tier's p95 is not trusted: its configured value is used
MIN_SAMPLES = 5


def p95(samples: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    if not samples:
        raise ValueError("p95 of no samples")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def tier_ready_seconds(configured: float, history: Sequence[float], min_samples: int = MIN_SAMPLES) -> float:
    """The measured p95 when there is enough history, else the configured value."""
    return p95(history) if len(history) >= min_samples else configured


def auto_lead_seconds(tiers: Iterable[str], configured: Mapping[str, float],
                      history: Callable[[str], Sequence[float]], margin_seconds: float,
                      min_samples: int = MIN_SAMPLES) -> float:
    """max over `tiers` of their p95 time-to-ready, plus the margin. `history(tier)`
    returns the tier's past launch-to-ready seconds."""
    slowest = 0.0
    for tier in tiers:
        slowest = max(slowest, tier_ready_seconds(configured[tier], history(tier), min_samples))
    return slowest + margin_seconds
