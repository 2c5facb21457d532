"""Weight matching vs the permutation that minimises the barrier itself (m <= 8).

Weight matching maximises sum_i <z^A_i, z^B_perm(i)> (z = (w, c a)); the barrier-optimal
permutation minimises max_t [L((1 - t) A + t perm(B)) - ((1 - t) L(A) + t L(B))] over all m!
permutations (:func:`tsim.barrier_optimal_perm`). By definition gap = B_wm - B_opt >= 0 (up to the
t-grid: both use the same grid). On teacher-aligned minima the weight-matching score of a
type-j/type-k pair and of a type-j/zero pair are both 0, so ties (reported by
:func:`tsim.weight_matching_ties`) can make the gap positive.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import tsim

from .minima import sample_minimum


def matching_gap(A: tsim.TwoLayer, B: tsim.TwoLayer, T, inputs: str = "gaussian", grid: int = 25) -> dict:
    """Barriers after weight matching and after the barrier-optimal permutation, and their gap.

    Returns
    -------
    dict with barrier_wm, barrier_opt, gap (= barrier_wm - barrier_opt), n_tied (weight-matching
    ties), same_perm (whether both permutations coincide).
    """
    wm = tsim.barrier(A, B, T, align="weight", grid=grid, inputs=inputs)
    perm, opt = tsim.barrier_optimal_perm(A, B, T, inputs=inputs, grid=grid)
    return {"barrier_wm": wm.value, "barrier_opt": opt, "gap": wm.value - opt, "n_tied": wm.n_tied,
            "same_perm": bool(np.array_equal(perm, wm.perm))}


def sampled_gaps(ms, M: int, d: int, n: int = 10, seed: int = 0, r: float = 0.0, grid: int = 25) -> pd.DataFrame:
    """:func:`matching_gap` over n pairs of sampled minima at each width m in ms (M <= m <= 8)."""
    T = tsim.Teacher.orthonormal(M, d)
    rows = []
    for m in ms:
        rng = np.random.default_rng([seed, int(m), int(1000 * r)])
        for k in range(int(n)):
            A, B = sample_minimum(int(m), M, d, rng, r), sample_minimum(int(m), M, d, rng, r)
            rows.append({"m": int(m), "sample": k, "r": r, **matching_gap(A, B, T, grid=grid)})
    return pd.DataFrame(rows)
