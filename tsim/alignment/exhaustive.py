"""The permutation that minimises the loss barrier itself, by exhaustive search (small widths).

Weight matching minimises ||theta_A - theta_{perm(B)}||^2, a proxy; on teacher-aligned minima
(neurons 0 or alpha e_j) it scores a type-j/type-k pair and a type-j/zero pair equally, so its
tie-break can decide the barrier. Here every one of the m! permutations is scored by its
barrier on the exact population loss.

Speed: the interpolated neuron i of (1 - t) A + t perm(B) is
u_{i,p}(t) = (1 - t) w^A_i + t w^B_p,  b_{i,p}(t) = (1 - t) a^A_i + t a^B_p,  p = perm(i),
which depends only on the pair (i, p). So for each t the m^2 candidate neurons, their kernel
matrix G[(i,p),(j,q)] = c_t^2 b_ip b_jq kappa(u_ip, u_jq) and teacher term
h[(i,p)] = c_t b_ip sum_k a*_k kappa(u_ip, w*_k) are computed once, and
L_t(perm) = s (1/2 sum_ij G[(i,p_i),(j,p_j)] - sum_i h[(i,p_i)] + E*) is a gather over all
perms at once (s = 1 Gaussian, 1/d sphere; E* = 1/2 E[f*^2]).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..losses import input_scale, kernel_matrix, path_losses, teacher_energy
from ..network import TwoLayer

CHUNK = 8192


def all_perms(m: int) -> np.ndarray:
    """All m! permutations of range(m) in lexicographic order, shape (m!, m)."""
    return np.array(list(itertools.permutations(range(m))), dtype=np.int64).reshape(math.factorial(m), m)


def perm_path_losses(A: TwoLayer, B: TwoLayer, T: TwoLayer, perms: np.ndarray, ts: np.ndarray,
                     inputs: str = "gaussian") -> np.ndarray:
    """Population loss on the path (1 - t) A + t B.permute(perm) for every perm and t.

    Parameters
    ----------
    perms : ndarray of int, shape (P, m)
    ts : ndarray, shape (G,)

    Returns
    -------
    losses : ndarray, shape (P, G)
    """
    m = A.m
    perms = np.asarray(perms, dtype=np.int64)
    flat = np.arange(m)[None, :] * m + perms  # (P, m) index of the pair (i, perm[i])
    scale = input_scale(inputs, A.d)
    energy = teacher_energy(T)
    out = np.empty((perms.shape[0], len(ts)))
    TW, Ta = T.W * 1.0, T.a * T.c
    for g, t in enumerate(ts):
        U = ((1 - t) * A.W[:, None, :] + t * B.W[None, :, :]).reshape(m * m, A.d)
        b = ((1 - t) * A.a[:, None] + t * B.a[None, :]).reshape(m * m)
        c = (1 - t) * A.c + t * B.c
        G = (c * c) * np.outer(b, b) * kernel_matrix(U, U)
        h = c * b * (kernel_matrix(U, TW) @ Ta)
        for s in range(0, perms.shape[0], CHUNK):
            f = flat[s:s + CHUNK]
            quad = G[f[:, :, None], f[:, None, :]].sum(axis=(1, 2))
            out[s:s + CHUNK, g] = scale * (0.5 * quad - h[f].sum(axis=1) + energy)
    return out


def barrier_optimal_perm(A: TwoLayer, B: TwoLayer, T: TwoLayer, inputs: str = "gaussian", grid: int = 25,
                         max_m: int = 8) -> tuple[np.ndarray, float]:
    """The permutation of B with the smallest loss barrier to A, by trying all m! of them.

    B(perm) = max_t [ L((1 - t) A + t B.permute(perm)) - ((1 - t) L(A) + t L(B)) ] on ``grid``
    uniform t-points of [0, 1] (the same grid as :func:`tsim.barrier`), L the exact population
    loss against teacher T. Ties go to the first permutation in lexicographic order.

    Parameters
    ----------
    A, B : TwoLayer, same shape (m, d), m <= max_m
    T : Teacher
    inputs : "gaussian" or "sphere"
    grid : int, >= 2
    max_m : int
        Refuse widths above it (m! permutations: 40320 at m = 8).

    Returns
    -------
    perm : ndarray of int, shape (m,)   ``B.permute(perm)`` attains the smallest barrier (same
                                        convention as :func:`tsim.weight_matching`)
    value : float                       that barrier
    """
    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}.")
    if A.d != T.d:
        raise ValueError(f"student and teacher input dimensions differ: {A.d} vs {T.d}.")
    if int(grid) < 2:
        raise ValueError(f"grid must be >= 2; got {grid}.")
    if A.m > int(max_m):
        raise ValueError(f"m = {A.m} exceeds max_m = {max_m}: an exhaustive search tries m! permutations. "
                         "Raise max_m (slow beyond 9) or use weight matching.")
    ts = np.linspace(0.0, 1.0, int(grid))
    ends = path_losses(A, B, T, np.array([0.0, 1.0]), inputs)
    line = (1 - ts) * ends[0] + ts * ends[1]
    perms = all_perms(A.m)
    values = (perm_path_losses(A, B, T, perms, ts, inputs) - line[None, :]).max(axis=1)
    k = int(np.argmin(values))
    return perms[k].copy(), float(values[k])


optimal_permutation = barrier_optimal_perm
