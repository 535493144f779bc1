"""The fairness of a spread: gwcheck's own chi-square p-value against scipy's, and the test's statistic against
``scipy.stats.chisquare``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gwcheck.analysis.distribution import chi_square_survival, fairness

special = pytest.importorskip("scipy.special", reason="scipy is the reference (pip install -e '.[test]')")
stats = pytest.importorskip("scipy.stats", reason="scipy is the reference (pip install -e '.[test]')")

DEGREES = [*range(1, 64), 99, 100, 255, 256, 1023, 4095]
STATISTICS = [1e-300, 1e-12, 1e-6, 0.01, 0.5, 1.0, 2.0, 3.0, 10.0, 50.0, 100.0, 300.0, 700.0, 1400.0, 1e4, 1e5, 1e6]


@pytest.mark.parametrize("df", DEGREES)
def test_chi_square_survival_is_scipys(df: int) -> None:
    rng = np.random.default_rng(df)
    for statistic in [*STATISTICS, *rng.uniform(0, 3 * df, 40), *rng.lognormal(math.log(df), 1.5, 40)]:
        ours, theirs = chi_square_survival(float(statistic), df), float(special.chdtrc(df, statistic))
        if theirs > 1e-290:  # below, both underflow towards 0
            assert ours == pytest.approx(theirs, rel=1e-11), (df, statistic)
        else:
            assert ours < 1e-280, (df, statistic)


@pytest.mark.parametrize("df", [1, 2, 7])
def test_chi_square_survival_at_and_below_zero_is_one(df: int) -> None:
    assert chi_square_survival(0.0, df) == 1.0 and chi_square_survival(-1.0, df) == 1.0


@pytest.mark.parametrize(
    "counts",
    [[10, 10], [100, 80, 120, 100], [1, 0, 0, 0, 0, 0, 0], [5000, 4000, 3000, 2000, 1000], list(range(1, 40)), [10**9, 10**9 + 1]],
)
def test_fairness_chi_square_is_scipy_stats_chisquare(counts: list[int]) -> None:
    result = fairness(np.array(counts))
    expected = stats.chisquare(counts)
    assert result["chi2"] == pytest.approx(float(expected.statistic), rel=1e-12)
    assert result["chi2_p"] == pytest.approx(float(expected.pvalue), rel=1e-11, abs=1e-300)
