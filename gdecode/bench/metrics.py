"""Statistics of the benchmarks: percentiles and bootstrap means with confidence intervals.

JSONSchemaBench metrics (Geng et al. 2025, "JSONSchemaBench: A Rigorous Benchmark of Structured Outputs
for Language Models"; the official runner is epfl-dlab/jsonschemabench), per split and overall:

- **declared coverage**: share of the schemas the engine accepts, i.e. compiles without an error (an
  engine that declares a schema unsupported does not cover it). Timeouts and crashes count as not covered.
- **empirical coverage**: share of *all* the schemas for which generation succeeded and the output parses
  as JSON and validates against the schema (``jsonschema`` Draft 2020-12 with a format checker).
- **compliance rate**: empirical / declared coverage: how often a schema the engine claims to support
  actually yields a valid output.
- **GCT**: grammar compile time; **TTFT**: time to first token, which includes the GCT (the time a user
  waits); **TPOT**: time per output token after the first. Times are reported as medians.

Coverage figures are bootstrap means over schemas (resampled with replacement, ``n_boot`` times, seeded)
with percentile confidence intervals, as in the paper's tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bootstrap_mean(values: Sequence[float], *, n_boot: int = 1000, ci: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float]:
    """(bootstrap mean, CI low, CI high) of ``values``; (nan, nan, nan) for no values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(means.mean()), float(lo), float(hi)


def bootstrap_ratio(num: Sequence[float], den: Sequence[float], *, n_boot: int = 1000, ci: float = 0.95,
                    seed: int = 0) -> tuple[float, float, float]:
    """Bootstrap of sum(num)/sum(den) over paired items (compliance = empirical / declared)."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.size == 0 or b.sum() == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    d = b[idx].sum(axis=1)
    ratios = np.where(d > 0, a[idx].sum(axis=1) / np.where(d > 0, d, 1), np.nan)
    ratios = ratios[~np.isnan(ratios)]
    lo, hi = np.quantile(ratios, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(ratios.mean()), float(lo), float(hi)


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 90, 99, 100)) -> dict[str, float]:
    """{"p50": .., "p90": .., "p99": .., "max": ..}; nan for no values."""
    x = np.asarray(values, dtype=float)
    out = {}
    for q in qs:
        key = "max" if q == 100 else f"p{q:g}"
        out[key] = float(np.percentile(x, q)) if x.size else float("nan")
    return out
