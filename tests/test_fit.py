"""fit_power_law recovers known exponents from noisy synthetic power laws; its interval covers."""
import numpy as np
import pytest

import tsim


def synthetic(rng, alpha, C=0.3, pairs=12, widths=(16, 32, 64, 128, 256, 512), noise=0.3):
    """Long-format data y = C m^-alpha * pair effect * lognormal noise."""
    m = np.repeat(np.asarray(widths, float), pairs)
    p = np.tile(np.arange(pairs), len(widths))
    pair_effect = np.exp(0.2 * rng.standard_normal(pairs))[p]
    y = C * m ** -alpha * pair_effect * np.exp(noise * rng.standard_normal(m.size))
    return m, y, p


@pytest.mark.parametrize("alpha", [0.5, 1.0, 0.25])
def test_recovers_known_exponent(alpha):
    rng = np.random.default_rng(7)
    m, y, p = synthetic(rng, alpha)
    fit = tsim.fit_power_law(m, y, n_boot=500, pairs=p, rng=np.random.default_rng(1))
    # one draw: the estimate is close and the interval brackets it (coverage is tested below)
    assert abs(fit.alpha - alpha) < 0.1
    assert fit.ci[0] < fit.alpha < fit.ci[1]
    assert fit.ci[0] - 0.05 < alpha < fit.ci[1] + 0.05
    assert fit.ci[1] - fit.ci[0] < 0.3
    assert fit.n_units == 12
    assert np.allclose(fit.predict(fit.m), fit.C * fit.m ** -fit.alpha)


def test_interval_coverage_is_near_nominal():
    rng = np.random.default_rng(3)
    hits = 0
    reps = 60
    for _ in range(reps):
        m, y, p = synthetic(rng, 0.5, pairs=10, noise=0.5)
        fit = tsim.fit_power_law(m, y, n_boot=200, pairs=p, rng=rng)
        hits += fit.ci[0] < 0.5 < fit.ci[1]
    # nominal 95%; the percentile bootstrap with 10 units under-covers a little
    assert hits / reps > 0.75


def test_exact_power_law_and_table_form():
    m = np.array([4.0, 8, 16, 32])
    table = np.outer(2.0 * m ** -0.5, np.ones(5))
    fit = tsim.fit_power_law(m, table, n_boot=50)
    assert fit.alpha == pytest.approx(0.5, abs=1e-12) and fit.C == pytest.approx(2.0)
    assert fit.ci[0] == pytest.approx(0.5) and fit.ci[1] == pytest.approx(0.5)


def test_nan_and_nonpositive_widths_are_skipped():
    m = np.array([2.0, 4, 8, 16, 32])
    table = np.outer(m ** -1.0, np.ones(4))
    table[0] = -1.0  # a width with a negative mean barrier cannot enter the log fit
    table[2, 1] = np.nan  # a diverged pair
    fit = tsim.fit_power_law(m, table, n_boot=50)
    assert fit.alpha == pytest.approx(1.0) and 2.0 not in fit.m


def test_bad_input_names_parameter():
    with pytest.raises(ValueError, match="n_boot"):
        tsim.fit_power_law([1, 2], [1, 2], n_boot=3)
    with pytest.raises(ValueError, match=">= 2 distinct widths"):
        tsim.fit_power_law([4, 4], [1.0, 2.0], n_boot=20)
    with pytest.raises(ValueError, match="same shape"):
        tsim.fit_power_law([1, 2, 3], [1.0, 2.0], n_boot=20)


def test_public_fit_is_equivariant_and_order_free():
    """tsim.fit_power_law (the public name) fits log ybar on log m, so rescaling y by k multiplies C
    (and its interval) by k, rescaling m by s multiplies C by s^alpha, and neither moves alpha or its
    interval; the order of the observations does not matter at all (same bootstrap draws)."""
    m, y, p = synthetic(np.random.default_rng(11), 0.8)
    base = tsim.fit_power_law(m, y, n_boot=200, pairs=p, seed=5)
    assert base.alpha == pytest.approx(0.8, abs=0.15)
    scaled = tsim.fit_power_law(m, 7.0 * y, n_boot=200, pairs=p, seed=5)
    assert scaled.alpha == pytest.approx(base.alpha, rel=1e-12)
    assert scaled.C == pytest.approx(7.0 * base.C, rel=1e-12)
    assert np.allclose(scaled.ci, base.ci, rtol=1e-10) and np.allclose(scaled.ci_C, 7.0 * np.array(base.ci_C),
                                                                       rtol=1e-10)
    wider = tsim.fit_power_law(3.0 * m, y, n_boot=200, pairs=p, seed=5)
    assert wider.alpha == pytest.approx(base.alpha, rel=1e-12)
    assert wider.C == pytest.approx(base.C * 3.0 ** base.alpha, rel=1e-12)
    assert np.allclose(wider.ci, base.ci, rtol=1e-10)
    order = np.random.default_rng(0).permutation(m.size)
    shuffled = tsim.fit_power_law(m[order], y[order], n_boot=200, pairs=p[order], seed=5)
    assert shuffled.alpha == base.alpha and shuffled.C == base.C and shuffled.ci == base.ci
    assert np.array_equal(shuffled.boot_alpha, base.boot_alpha)
    # a different exponent is seen: the fit reads the data, not a constant
    assert tsim.fit_power_law(m, y * m ** -0.5, n_boot=50, pairs=p, seed=5).alpha == pytest.approx(
        base.alpha + 0.5, rel=1e-12)
