"""Percentiles the benchmarks print (bench/ is not a package: its modules import this by path)."""
from __future__ import annotations

from typing import List


def nearest_rank(xs: List[float], q: float) -> float:
    """The value at quantile ``q`` (0..1) by the rounded rank; nan for no values."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[k]
