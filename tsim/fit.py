"""Power-law fits of a decaying quantity, y ~ C m^-alpha, with a pair bootstrap.

The fit is ordinary least squares of log(mean y at m) on log m over the distinct widths m; the
confidence interval comes from resampling whole units (seed pairs) with replacement, so that
the correlation of one pair across widths is kept (Efron & Tibshirani 1993, ch. 6).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import as_float, as_generator, as_int, fail, finite_array, show


@dataclass(frozen=True)
class PowerLawFit:
    """y ~ C m^-alpha fitted on per-width means.

    Attributes
    ----------
    alpha : float                  decay exponent (y ~ C m^-alpha; alpha > 0 means decay)
    C : float                      prefactor
    ci : tuple (lo, hi)            bootstrap percentile interval of alpha at ``level``
    ci_C : tuple (lo, hi)          the same for C
    level : float                  confidence level of the intervals
    n_boot : int                   bootstrap draws (those with < 2 usable widths are skipped)
    m : ndarray, shape (k,)        widths used by the point fit
    mean : ndarray, shape (k,)     per-width means used by the point fit
    boot_alpha : ndarray, (B,)     bootstrap exponents (nan for skipped draws)
    n_units : int                  number of resampled units (pairs)
    """

    alpha: float
    C: float
    ci: tuple
    ci_C: tuple
    level: float
    n_boot: int
    m: np.ndarray
    mean: np.ndarray
    boot_alpha: np.ndarray
    n_units: int

    def predict(self, m) -> np.ndarray:
        """C m^-alpha for widths m (a number or an array of finite numbers)."""
        return self.C * finite_array(m, "m") ** (-self.alpha)

    def to_dict(self) -> dict:
        """Plain numbers for summary.json."""
        return {"alpha": self.alpha, "alpha_ci": [float(self.ci[0]), float(self.ci[1])], "C": self.C,
                "C_ci": [float(self.ci_C[0]), float(self.ci_C[1])], "level": self.level,
                "n_boot": self.n_boot, "n_units": self.n_units, "m": [float(v) for v in self.m]}


def _table(m, values, pairs):
    """Widths (k,), values as a (k, U) table with nan for missing entries."""
    m = finite_array(m, "m")
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail("values", "an array of real numbers (NaN = missing)", show(values),
                   "Pass a numeric array.", TypeError) from None
    if v.ndim == 2:
        if m.ndim != 1 or m.shape[0] != v.shape[0]:
            raise fail("m", f"of shape ({v.shape[0]},), one width per row of the 2-d values table", f"shape {m.shape}",
                       "Pass one width per row of values.")
        if pairs is not None:
            raise fail("pairs", "None when values is a 2-d (width, pair) table", show(pairs),
                       "Drop pairs: the columns of the table are the pairs.")
        widths = np.unique(m)
        if widths.size != m.size:
            raise fail("m", "free of repeated widths when values is a 2-d table", show(m),
                       "Merge the rows of one width.")
        return widths, v[np.argsort(m)]
    if v.ndim != 1 or m.shape != v.shape:
        raise fail("m and values", "1-d arrays of the same shape (n,)", f"shapes {m.shape} and {v.shape}",
                   "Pass one width per value.")
    widths, wi = np.unique(m, return_inverse=True)
    if pairs is None:  # the k-th value at each width is unit k
        units = np.zeros(m.size, dtype=np.int64)
        for k in range(widths.size):
            idx = np.flatnonzero(wi == k)
            units[idx] = np.arange(idx.size)
    else:
        pairs = np.asarray(pairs)
        if pairs.shape != m.shape:
            raise fail("pairs", f"of the shape of m {m.shape}", f"shape {pairs.shape}",
                       "Pass one pair label per value.")
        _, units = np.unique(pairs, return_inverse=True)
    table = np.zeros((widths.size, units.max() + 1))
    count = np.zeros_like(table)
    ok = np.isfinite(v)
    np.add.at(table, (wi[ok], units[ok]), v[ok])
    np.add.at(count, (wi[ok], units[ok]), 1.0)
    with np.errstate(invalid="ignore"):
        return widths, np.where(count > 0, table / np.maximum(count, 1), np.nan)


def _ols(logm: np.ndarray, logy: np.ndarray):
    """Slope and intercept of logy on logm per column, masked by isfinite(logy); (B,), (B,)."""
    ok = np.isfinite(logy)
    n = ok.sum(axis=0)
    x = np.where(ok, logm[:, None], 0.0)
    y = np.where(ok, logy, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = x.sum(axis=0) / n
        my = y.sum(axis=0) / n
        dx = np.where(ok, x - mx, 0.0)
        slope = (dx * (y - my)).sum(axis=0) / (dx * dx).sum(axis=0)
        icpt = my - slope * mx
    bad = (n < 2) | ~np.isfinite(slope)
    slope[bad] = np.nan
    icpt[bad] = np.nan
    return slope, icpt


def fit_power_law(m, values, n_boot: int = 1000, pairs=None, level: float = 0.95,
                  rng: np.random.Generator | None = None, seed: int = 0) -> PowerLawFit:
    """Fit values ~ C m^-alpha and a bootstrap interval for alpha, resampling whole pairs.

    log ybar(m) = log C - alpha log m, fitted by least squares over the distinct widths, with
    ybar(m) the mean of the (finite) values at m. Widths whose mean is <= 0 cannot enter a log
    fit and are left out. The bootstrap draws the units (pairs) with replacement ``n_boot``
    times, recomputes every ybar(m) from the drawn units and refits; the interval is the
    percentile interval of the refitted exponents.

    Parameters
    ----------
    m : array, shape (n,) or (k,)
        Widths, one per value (several values per width allowed), or one per row of a 2-d table.
    values : array, shape (n,) or (k, U)
        Observations (NaN = missing, e.g. a diverged pair), or a table of k widths x U pairs.
    n_boot : int
        Bootstrap draws (>= 10).
    pairs : array, shape (n,), optional
        The unit (pair) of each value; the values of one pair at all widths are resampled
        together. Without it, the k-th value at each width forms unit k.
    level : float
        Confidence level in (0, 1).
    rng : numpy Generator or integer seed, optional
        Draws the bootstrap; by default ``np.random.default_rng(seed)``.
    seed : int >= 0
        Used when ``rng`` is None.

    Returns
    -------
    PowerLawFit
    """
    n_boot = as_int(n_boot, "n_boot", low=10, fix="Pass the number of bootstrap draws, e.g. 1000.")
    level = as_float(level, "level", low=0, high=1, open_low=True, open_high=True, fix="Pass e.g. level=0.95.")
    rng = as_generator(seed, "seed") if rng is None else as_generator(rng, "rng")
    widths, table = _table(m, values, pairs)
    if np.any(widths <= 0):
        raise fail("m", "> 0 for a power-law fit", show(widths[widths <= 0]), "Drop the widths m <= 0.")
    fin = np.isfinite(table)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(fin, table, 0.0).sum(axis=1) / fin.sum(axis=1)
    use = np.isfinite(mean) & (mean > 0)
    if use.sum() < 2:
        raise ValueError("values must have a positive finite mean at >= 2 distinct widths m to fit a power law; "
                         f"got {int(use.sum())}. Add widths, or check for diverged runs.")
    logm = np.log(widths)
    slope, icpt = _ols(logm[use], np.log(mean[use])[:, None])
    U = table.shape[1]
    counts = rng.multinomial(U, np.full(U, 1.0 / U), size=n_boot).T.astype(np.float64)  # (U, B)
    num = np.where(fin, table, 0.0) @ counts
    den = fin.astype(np.float64) @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        bmean = num / den
        logy = np.where(bmean > 0, np.log(np.where(bmean > 0, bmean, 1.0)), np.nan)
    bslope, bicpt = _ols(logm, logy)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    ok = np.isfinite(bslope)
    ci = tuple(float(v) for v in np.percentile(-bslope[ok], q)) if ok.any() else (np.nan, np.nan)
    ci_C = tuple(float(v) for v in np.percentile(np.exp(bicpt[ok]), q)) if ok.any() else (np.nan, np.nan)
    return PowerLawFit(alpha=float(-slope[0]), C=float(np.exp(icpt[0])), ci=ci, ci_C=ci_C, level=level,
                       n_boot=n_boot, m=widths[use], mean=mean[use], boot_alpha=-bslope, n_units=U)
