"""The one bootstrap (ground floor): 95 % percentile-bootstrap confidence intervals of means, with a fixed seed so a
report or an evaluation is reproducible. Used by the evaluation (`agents.evaluate`: per task over episodes, the
student vs teacher difference) and the report (over the runs, i.e. seeds, of a method; a PBT population is one run).

A single value has no interval (None): with n = 1 the resampled means are all the same value, which would read as
certainty.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

LEVEL = 0.95
RESAMPLES = 10_000
SEED = 0


def interval(samples: np.ndarray, level: float = LEVEL) -> Tuple[np.ndarray, np.ndarray]:
    """The (lo, hi) percentiles of `samples` (along axis 0) that hold `level` of them: 2.5 and 97.5 for 95 %."""
    tail = (100.0 - 100.0 * level) / 2.0
    return np.percentile(samples, tail, axis=0), np.percentile(samples, 100.0 - tail, axis=0)


def resampled_means(values: np.ndarray, resamples: int = RESAMPLES,
                    seed: Union[int, np.random.Generator] = SEED) -> np.ndarray:
    """Means of `resamples` bootstrap samples of the rows of `values` ([n] or [n, G]): shape [resamples(, G)].
    `seed` may be a numpy Generator, which then goes on from where it is (several samples from one stream)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[idx].mean(axis=1)


def mean_ci(values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED):
    """(lo, hi) of the mean of `values`; None with fewer than 2 values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) < 2:
        return None
    lo, hi = interval(resampled_means(v, resamples, seed), level)
    return float(lo), float(hi)


def band(values: np.ndarray, level: float = LEVEL, resamples: int = 2000, seed: int = SEED):
    """Pointwise (lo [G], hi [G]) of the mean curve of runs `values` [n, G]; None with fewer than 2 runs."""
    if values.shape[0] < 2:
        return None
    return interval(resampled_means(values, resamples, seed), level)


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
    lo, hi = interval(100.0 * (resampled_means(m, resamples, seed) - bm) / np.abs(bm), level)
    return float(lo), float(hi)
