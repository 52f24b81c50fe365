"""Timeliness (及时性): how long after discharge a settlement list reaches the province,
counted in fixed hour buckets so that histograms add up across days, hospitals and cities.

The quality worker fills them and the ops reports read them: one definition for both.
"""

from __future__ import annotations

import bisect

LAG_EDGES_H: tuple[int, ...] = (*(24 * d for d in range(1, 16)), 480, 720, 1440, 2160)
"""Upper edges (hours, inclusive) of the lag buckets; one more bucket holds everything later."""
LAG_BUCKETS = len(LAG_EDGES_H) + 1


def lag_bucket(hours: float) -> int:
    """Index of the bucket (lower edge, upper edge] holding `hours` (0 h is in the first)."""
    return bisect.bisect_left(LAG_EDGES_H, hours)


def lag_percentile(hist: list[int], q: float) -> float | None:
    """The q-quantile (0..1) of a lag histogram in hours, linear inside its bucket.

    In the open last bucket the answer is its lower edge (a floor, not an estimate).
    """
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(hist):
        if count and seen + count >= rank:
            lower = 0.0 if i == 0 else float(LAG_EDGES_H[i - 1])
            if i >= len(LAG_EDGES_H):
                return lower
            return lower + (LAG_EDGES_H[i] - lower) * max(0.0, rank - seen) / count
        seen += count
    return float(LAG_EDGES_H[-1])
