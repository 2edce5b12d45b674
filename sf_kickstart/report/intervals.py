"""95 % bootstrap confidence intervals of a mean over seeds (percentile method, fixed seed: a report is reproducible).

A single run has no interval (None): with n = 1 the resampled means are all the same value, which would read as
certainty. Every interval is over the runs (seeds) of a method; a PBT population counts as one run.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

LEVEL = 0.95
RESAMPLES = 10_000
SEED = 0


def _percentiles(means: np.ndarray, level: float) -> Tuple[np.ndarray, np.ndarray]:
    tail = 100.0 * (1.0 - level) / 2.0
    return np.percentile(means, tail, axis=0), np.percentile(means, 100.0 - tail, axis=0)


def resampled_means(values: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Means of `resamples` bootstrap samples of the rows of `values` ([n] or [n, G]): shape [resamples(, G)]."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[idx].mean(axis=1)


def mean_ci(values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED):
    """(lo, hi) of the mean of `values`; None with fewer than 2 values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) < 2:
        return None
    lo, hi = _percentiles(resampled_means(v, resamples, seed), level)
    return float(lo), float(hi)


def band(values: np.ndarray, level: float = LEVEL, resamples: int = 2000, seed: int = SEED):
    """Pointwise (lo [G], hi [G]) of the mean curve of runs `values` [n, G]; None with fewer than 2 runs."""
    if values.shape[0] < 2:
        return None
    return _percentiles(resampled_means(values, resamples, seed), level)


def improvement_ci(method: Sequence[float], baseline: Sequence[float], level: float = LEVEL,
                   resamples: int = RESAMPLES, seed: int = SEED) -> Optional[Tuple[float, float]]:
    """(lo, hi) of 100·(mean(method) − mean(baseline)) / |mean(baseline)|, the two samples resampled independently;
    None unless both have ≥ 2 values (or the baseline mean can be 0)."""
    m = np.asarray(method, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if len(m) < 2 or len(b) < 2:
        return None
    bm = resampled_means(b, resamples, seed + 1)
    if np.any(bm == 0):
        return None
    lo, hi = _percentiles(100.0 * (resampled_means(m, resamples, seed) - bm) / np.abs(bm), level)
    return float(lo), float(hi)
