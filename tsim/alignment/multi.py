"""Connectivity of many networks: merging k networks, simplex and k-average barriers, strong LMC.

For networks theta_1..theta_k and weights lambda on the simplex, the convex combination is
theta(lambda) = sum_i lambda_i theta_i (W, a and c combined alike) and its excess loss

    E(lambda) = L(theta(lambda)) - sum_i lambda_i L(theta_i).

The simplex barrier is max_lambda E(lambda) over a grid of the simplex; the k-average barrier
is E(1/k, ..., 1/k). Strong (simultaneous) connectivity asks for one permutation per network
that makes every pair linearly connected at once (Sharma et al. 2024, arXiv:2310.06846).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..barriers import barrier
from ..losses import population_loss
from ..network import TwoLayer, check_perm
from .interface import align


def _pad_all(nets) -> list[TwoLayer]:
    nets = list(nets)
    if len(nets) < 2:
        raise ValueError(f"nets must hold at least 2 networks; got {len(nets)}.")
    d = nets[0].d
    if any(S.d != d for S in nets):
        raise ValueError(f"all networks must have the same input dimension; got {[S.d for S in nets]}.")
    m = max(S.m for S in nets)
    return [S.pad(m) for S in nets]


def combine(nets, weights) -> TwoLayer:
    """sum_i lambda_i theta_i (W, a and c alike); nets of one width, weights (k,) summing to 1."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(nets),) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be {len(nets)} finite numbers; got {weights!r}.")
    W = sum(wi * S.W for wi, S in zip(w, nets))
    a = sum(wi * S.a for wi, S in zip(w, nets))
    c = float(sum(wi * S.c for wi, S in zip(w, nets)))
    return TwoLayer(W, a, c)


def average(nets) -> TwoLayer:
    """The parameter average (1/k) sum_i theta_i of k networks of one width."""
    nets = list(nets)
    return combine(nets, np.full(len(nets), 1.0 / len(nets)))


def simplex_grid(k: int, grid: int) -> np.ndarray:
    """All lambda = (i_1, ..., i_k) / (grid - 1) with non-negative integers summing to grid - 1.

    Returns shape (C(grid + k - 2, k - 1), k); the vertices and edges of the simplex are included.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2; got {k}.")
    if grid < 2:
        raise ValueError(f"grid must be >= 2; got {grid}.")
    n = grid - 1

    def rec(left, parts):
        if parts == 1:
            yield (left,)
            return
        for i in range(left, -1, -1):
            for rest in rec(left - i, parts - 1):
                yield (i,) + rest

    return np.array(list(rec(n, k)), dtype=np.float64) / n


@dataclass(frozen=True)
class SimplexBarrier:
    """The excess loss on a grid of the simplex of k networks.

    Attributes
    ----------
    value : float                 max over the grid of E(lambda) (the simplex barrier)
    argmax : ndarray, (k,)        the lambda attaining it
    lambdas : ndarray, (G, k)     grid points
    excess : ndarray, (G,)        E(lambda) at each grid point
    losses : ndarray, (k,)        endpoint losses L(theta_i)
    """

    value: float
    argmax: np.ndarray
    lambdas: np.ndarray
    excess: np.ndarray
    losses: np.ndarray


def simplex_barrier(nets, T: TwoLayer, *, grid: int = 11, inputs: str = "gaussian") -> SimplexBarrier:
    """max_lambda L(sum_i lambda_i theta_i) - sum_i lambda_i L(theta_i) over a simplex grid.

    For 3 networks this is the 2-simplex barrier; for 2 it is the usual barrier on ``grid``
    t-points. Networks of different widths are zero-padded. Loss: exact population loss vs T.
    """
    nets = _pad_all(nets)
    lambdas = simplex_grid(len(nets), grid)
    ends = np.array([population_loss(S, T, inputs) for S in nets])
    excess = np.array([population_loss(combine(nets, lam), T, inputs) - lam @ ends for lam in lambdas])
    i = int(np.argmax(excess))
    return SimplexBarrier(value=float(excess[i]), argmax=lambdas[i], lambdas=lambdas, excess=excess, losses=ends)


def average_barrier(nets, T: TwoLayer, inputs: str = "gaussian") -> float:
    """L((1/k) sum_i theta_i) - (1/k) sum_i L(theta_i): the barrier of the k-average (0 for k copies)."""
    nets = _pad_all(nets)
    ends = np.mean([population_loss(S, T, inputs) for S in nets])
    return float(population_loss(average(nets), T, inputs) - ends)


@dataclass(frozen=True)
class MergeResult:
    """k networks brought into one common alignment.

    Attributes
    ----------
    perms : list of ndarray (m,)   perms[i] aligns net i: nets[i].permute(perms[i]) (padded)
    nets : list of TwoLayer        the aligned (padded) networks
    iters : int                    sweeps done (0 for reference alignment)
    converged : bool               the last sweep changed no permutation
    n_tied : int                   sum over the networks of tied rows in the last alignment step
    """

    perms: list
    nets: list
    iters: int
    converged: bool
    n_tied: int

    @property
    def average(self) -> TwoLayer:
        return average(self.nets)


def merge_to_reference(nets, ref: int = 0, method: str = "weight", **kw) -> MergeResult:
    """Align every network to ``nets[ref]`` (its own perm is the identity).

    ``method`` and keyword arguments go to :func:`tsim.alignment.align` (T for "ste"/"optimal").
    """
    nets = _pad_all(nets)
    if not 0 <= ref < len(nets):
        raise ValueError(f"ref must index one of the {len(nets)} networks; got {ref}.")
    perms, out, ties = [], [], 0
    for i, S in enumerate(nets):
        if i == ref:
            perms.append(np.arange(S.m))
            out.append(S)
            continue
        r = align(nets[ref], S, method, **kw)
        perms.append(r.perm)
        out.append(r.B)
        ties += r.n_tied
    return MergeResult(perms=perms, nets=out, iters=0, converged=True, n_tied=ties)


def merge_many(nets, method: str = "weight", *, max_iters: int = 50, rng: np.random.Generator | None = None,
               **kw) -> MergeResult:
    """Align k networks to one another by iterated matching to the mean of the others.

    Start from weight matching to network 0; then sweep over the networks in a random order
    (from ``rng``; fixed order if None), re-aligning network i to the average of the other
    aligned networks, until a sweep changes no permutation or ``max_iters`` sweeps
    (MergeMany, Ainsworth et al. 2023, arXiv:2209.04836, Alg. 3). ``rng`` also goes to align
    (activation matching on fresh samples, STE init noise). At the fixed point each
    network is matched to the mean of the others, a criterion that names no reference; the
    permutations are defined up to one common relabelling.
    """
    nets = _pad_all(nets)
    if max_iters < 1:
        raise ValueError(f"max_iters must be >= 1; got {max_iters}.")
    start = merge_to_reference(nets, 0, "weight")
    perms = [p.copy() for p in start.perms]
    k = len(nets)
    converged, it, ties = False, 0, 0
    for it in range(1, max_iters + 1):
        changed = False
        ties = 0
        order = rng.permutation(k) if rng is not None else np.arange(k)
        for i in order:
            others = average([nets[j].permute(perms[j]) for j in range(k) if j != i])
            r = align(others, nets[i], method, rng=rng, **kw)
            ties += r.n_tied
            if not np.array_equal(r.perm, perms[i]):
                perms[i] = r.perm
                changed = True
        if not changed:
            converged = True
            break
    return MergeResult(perms=perms, nets=[S.permute(p) for S, p in zip(nets, perms)], iters=it,
                       converged=converged, n_tied=ties)


@dataclass(frozen=True)
class StrongConnectivity:
    """Pairwise barriers under one shared set of permutations vs pairwise-optimal ones.

    Attributes
    ----------
    shared : ndarray, (k, k)     barrier(P_i theta_i, P_j theta_j), one P_i per network (merge_many)
    pairwise : ndarray, (k, k)   barrier(theta_i, theta_j) with theta_j aligned to theta_i alone
    naive : ndarray, (k, k)      barrier without alignment
    merge : MergeResult          the shared permutations
    """

    shared: np.ndarray
    pairwise: np.ndarray
    naive: np.ndarray
    merge: MergeResult

    def summary(self) -> dict:
        """Mean and max over pairs i < j of each matrix (flat floats for result rows)."""
        iu = np.triu_indices(self.shared.shape[0], 1)
        out = {}
        for name in ("shared", "pairwise", "naive"):
            v = getattr(self, name)[iu]
            out[f"{name}_mean"] = float(np.mean(v))
            out[f"{name}_max"] = float(np.max(v))
        return out


def strong_connectivity(nets, T: TwoLayer, *, method: str = "weight", grid: int = 25, inputs: str = "gaussian",
                        rng: np.random.Generator | None = None, merge: MergeResult | None = None,
                        **kw) -> StrongConnectivity:
    """Does one permutation per network connect it to every other network at once?

    Shared permutations come from :func:`merge_many` (or ``merge``); pairwise ones from aligning
    each pair on its own with ``method``. Barrier on the exact population loss, ``grid`` t-points.
    """
    nets = _pad_all(nets)
    k = len(nets)
    if merge is None:
        merge = merge_many(nets, method, rng=rng, T=T, inputs=inputs, **kw)
    shared, pair, naive = (np.zeros((k, k)) for _ in range(3))
    for i in range(k):
        for j in range(i + 1, k):
            shared[i, j] = shared[j, i] = barrier(merge.nets[i], merge.nets[j], T, grid=grid, inputs=inputs).value
            r = align(nets[i], nets[j], method, T=T, inputs=inputs, rng=rng, **kw)
            pair[i, j] = pair[j, i] = barrier(nets[i], r.B, T, grid=grid, inputs=inputs).value
            naive[i, j] = naive[j, i] = barrier(nets[i], nets[j], T, grid=grid, inputs=inputs).value
    return StrongConnectivity(shared=shared, pairwise=pair, naive=naive, merge=merge)


def pairwise_shared(nets, perms) -> list[TwoLayer]:
    """nets[i].permute(perms[i]) for every i (after zero padding to a common width)."""
    nets = _pad_all(nets)
    return [S.permute(check_perm(p, S.m)) for S, p in zip(nets, perms)]


__all__ = ["MergeResult", "SimplexBarrier", "StrongConnectivity", "average", "average_barrier", "combine",
           "merge_many", "merge_to_reference", "pairwise_shared", "simplex_barrier", "simplex_grid",
           "strong_connectivity"]
