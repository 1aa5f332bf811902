"""Percentiles for the bench clients (a2a_ttft.py,
gateway_latency.py): nearest-rank, over seconds reported in milliseconds."""

from __future__ import annotations

import math


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def stats(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in ms of durations given in seconds."""
    ms = sorted(v * 1000 for v in values)
    return {
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": ms[-1] if ms else math.nan,
        "mean": sum(ms) / len(ms) if ms else math.nan,
    }
