"""Global minima of the Lin-Li-Wu setting, sampled directly, and their barriers modulo permutation.

Setting (Lin, Li, Wu 2024, arXiv:2404.06391): teacher f*(x) = sum_{j<=M} relu(e_j . x), student
f(x) = sum_{i<=m} relu(w_i . x) (a = 1 fixed, W trained), exact population loss. For m >= M the
global minima are exactly the students whose every neuron is 0 or alpha_i e_j (alpha_i > 0), with
the alphas of each type j summing to 1: then f = f* identically since relu(alpha e_j . x) =
alpha relu(x_j). A minimum is a type map tau: [m] -> {0, 1..M} (0 = zero neuron, every j used)
and, per type j, a point of the open simplex {alpha > 0, sum alpha = 1}.

Distributions sampled here:
- "uniform" (r = 0): each neuron's type uniform on {1..M}, conditioned on every type occurring,
  and the alphas of a type uniform on its simplex (Dirichlet(1, ..., 1)). This is the natural
  volume measure on the top-dimensional strata (zero neurons have measure zero there).
- "neuron-sparse" (r > 0): each neuron is zero with probability r independently, the others
  as above (conditioned on every type occurring among the nonzero ones).

Prediction. Two independent minima A, B are aligned (weight matching, or the barrier-optimal
permutation for m <= 8) and the barrier of the population loss on the linear path is computed
exactly; nothing is trained. Heuristic for the decay: the type counts n_j^A, n_j^B differ by
O(sqrt(m/M)), so O(sqrt(m)) neurons of alpha ~ M/m must be paired across types (or with zeros);
each such pair (1 - t) alpha e_j + t beta e_k leaves a residual relu(.) - (1 - t) alpha relu(x_j)
- t beta relu(x_k) <= 0 of size ~ alpha, all of one sign, so the function error at mid-path is
~ sqrt(m) M/m ~ m^{-1/2} and the loss barrier ~ m^{-1}; sparsity (fewer, larger neurons) raises
the per-pair error but the permutation has zeros to absorb type mismatches. The measured
curve and exponent come from :func:`predicted_curve` and :func:`predicted_exponent`; nothing
in d enters (every minimum lies in span(e_1..e_M), d only pads zeros).

Names in the rate atlas (``study = "atlas"``, :mod:`tsim.studies.atlas`, which draws the same
minima with the same draws for any teacher and output scale): its "dense" is r = 0 here (called
"uniform" above: no zero neurons), its "uniform" is r = 1/(M+1) (each neuron's type uniform on
{zero, 1..M}, :func:`atlas_r`), its "sparse" is r > 0 as given.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import tsim
from tsim.alignment.exhaustive import barrier_optimal_perm
from tsim.studies.atlas import sample_types  # one sampler of neuron types for theory/ and the atlas

ALIGNS = ("naive", "weight", "optimal")


def sample_minimum(m: int, M: int, d: int, rng: np.random.Generator, r: float = 0.0) -> tsim.TwoLayer:
    """A global minimum W (m, d), a = 1, of the orthonormal teacher e_1..e_M (see module docstring).

    Parameters
    ----------
    m, M, d : int          student width, teacher width, input dimension (d >= M)
    rng : Generator
    r : float in [0, 1)    probability that a neuron is zero (0: the uniform distribution)
    """
    if d < M:
        raise ValueError(f"d must be >= M ({M}) for the orthonormal teacher; got {d}.")
    types = sample_types(m, M, rng, r)
    W = np.zeros((m, d))
    for j in range(1, M + 1):
        idx = np.flatnonzero(types == j)
        W[idx, j - 1] = rng.dirichlet(np.ones(idx.size))
    return tsim.TwoLayer(W, np.ones(m))


def pair_barriers(A: tsim.TwoLayer, B: tsim.TwoLayer, T, aligns=ALIGNS, grid: int = 25,
                  inputs: str = "gaussian") -> dict:
    """Barriers of the population loss between A and B for each alignment in ``aligns``.

    "naive" (no permutation), "weight" (weight matching) and "optimal" (all m! permutations,
    m <= 8; NaN above). Also returns "n_tied", the weight-matching ties.
    """
    out = {}
    for how in aligns:
        if how == "naive":
            out["barrier_naive"] = tsim.barrier(A, B, T, grid=grid, inputs=inputs).value
        elif how == "weight":
            res = tsim.barrier(A, B, T, align="weight", grid=grid, inputs=inputs)
            out["barrier_wm"], out["n_tied"] = res.value, res.n_tied
        elif how == "optimal":
            out["barrier_opt"] = (barrier_optimal_perm(A, B, T, inputs, grid)[1] if A.m <= 8 else np.nan)
        else:
            raise ValueError(f"aligns entries must be among {ALIGNS}; got {how!r}.")
    return out


def minima_barriers(m: int, M: int, d: int, n: int, rng: np.random.Generator, r: float = 0.0,
                    aligns=("naive", "weight"), grid: int = 25, inputs: str = "gaussian") -> pd.DataFrame:
    """Barriers between n independent pairs of sampled minima; one row per pair (columns sample, m, ...)."""
    T = tsim.Teacher.orthonormal(M, d)
    rows = []
    for k in range(int(n)):
        A = sample_minimum(m, M, d, rng, r)
        B = sample_minimum(m, M, d, rng, r)
        rows.append({"sample": k, "m": m, "r": r, **pair_barriers(A, B, T, aligns, grid, inputs)})
    return pd.DataFrame(rows)


def predicted_curve(ms, M: int, d: int, n: int = 20, seed: int = 0, r: float = 0.0,
                    aligns=("naive", "weight"), grid: int = 25, inputs: str = "gaussian") -> pd.DataFrame:
    """Predicted barrier vs m from sampled minima: the rows of :func:`minima_barriers` for each m >= M.

    Each width uses its own Generator ``default_rng([seed, m])``, so adding widths leaves the
    others unchanged. Widths below M (no global minimum) are skipped.
    """
    frames = [minima_barriers(int(m), M, d, n, np.random.default_rng([seed, int(m), int(1000 * r)]), r, aligns,
                              grid, inputs) for m in ms if int(m) >= M]
    if not frames:
        raise ValueError(f"ms has no width >= M = {M}; got {list(ms)}.")
    return pd.concat(frames, ignore_index=True)


def predicted_exponent(curve: pd.DataFrame, column: str = "barrier_wm", min_m: int = 16, n_boot: int = 500,
                       seed: int = 0) -> tsim.PowerLawFit:
    """Decay exponent alpha of the predicted curve, barrier ~ C m^-alpha over m >= min_m (pairs resampled)."""
    sub = curve[curve["m"] >= min_m]
    return tsim.fit_power_law(sub["m"].to_numpy(), sub[column].to_numpy(), n_boot=n_boot,
                              pairs=sub["sample"].to_numpy(), seed=seed)


def atlas_r(kind: str, M: int, r: float = 0.5) -> float:
    """The zero probability r of this module for the rate atlas's minima ``kind``: "uniform" 1/(M+1)
    (types uniform on {zero, 1..M}), "dense" 0, "sparse" r (see the module docstring)."""
    rs = {"uniform": 1.0 / (M + 1), "dense": 0.0, "sparse": float(r)}
    if kind not in rs:
        raise ValueError(f"kind must be one of {tuple(rs)}; got {kind!r}.")
    return rs[kind]
