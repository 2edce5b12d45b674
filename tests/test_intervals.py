"""The one bootstrap (sf_kickstart.stats: the report's and the evaluation's intervals), checked against a by-hand
numpy computation."""

import numpy as np
import pytest

from sf_kickstart import stats as intervals
from sf_kickstart.report.analysis import Stat


def test_mean_ci_is_the_percentile_bootstrap_with_a_fixed_seed():
    values = [3.0, 7.0, 1.0, 9.0, 5.0]
    rng = np.random.default_rng(0)  # the same draws, by hand
    idx = rng.integers(0, 5, size=(10_000, 5))
    means = np.asarray(values)[idx].mean(axis=1)
    want = (np.percentile(means, 2.5), np.percentile(means, 97.5))
    assert intervals.mean_ci(values) == pytest.approx(want)
    lo, hi = intervals.mean_ci(values)
    assert 1.0 <= lo < np.mean(values) < hi <= 9.0
    assert intervals.mean_ci(values) == intervals.mean_ci(values)  # reproducible


def test_two_values_and_degenerate_cases():
    # two runs: the resampled means are a, (a+b)/2 or b (probabilities 1/4, 1/2, 1/4): the interval is [a, b]
    assert intervals.mean_ci([40.0, 60.0]) == pytest.approx((40.0, 60.0))
    assert intervals.mean_ci([5.0, 5.0, 5.0]) == pytest.approx((5.0, 5.0))  # no spread: a zero-width interval
    assert intervals.mean_ci([5.0]) is None  # one run has no interval
    assert intervals.mean_ci([]) is None
    assert intervals.mean_ci([1.0, None, float("nan")]) is None  # missing values are not runs
    s = Stat.of([5.0])
    assert (s.mean, s.n, s.ci) == (5.0, 1, None)


def test_band_is_pointwise_and_improvement_resamples_both_sides():
    runs = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    lo, hi = intervals.band(runs)
    assert lo[1] == hi[1] == 10.0 and 0.0 <= lo[0] < 2.0 < hi[0] <= 4.0
    assert intervals.band(runs[:1]) is None
    assert intervals.improvement_ci([100.0, 80.0], [60.0, 40.0]) == pytest.approx((100 * 20 / 60, 100 * 60 / 40))
    assert intervals.improvement_ci([100.0], [60.0, 40.0]) is None
