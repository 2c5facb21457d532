"""Align two deep nets modulo permutation: weight_matching, activation_matching, sparsity.

Convention (stated once, tested): a result ``perms`` maps each permutation name to a LongTensor
perm such that ``apply_perm(spec, perms, sd_b)`` aligns B with A; on every permuted axis,
new unit i of B is old unit ``perm[i]`` (``w.index_select(axis, perm)``). If B is A with its
units shuffled by ``q`` (B = apply_perm(spec, q, A)) then matching returns argsort(q).

Weight matching (Ainsworth et al. 2022, arXiv:2209.04836, Alg. 1): maximise
sum_k <W_k^A, pi(W_k^B)> by coordinate descent over the permutations; for permutation P with
all others fixed the objective is linear in P: sum_{(k, a) in P} <W_A^{(a)}, P W_B^{(a)}> where
W^{(a)} is the tensor with axis a moved first and the rest flattened, a linear assignment
problem (LAP) solved exactly by :func:`tsim.match.solve_assignment` on the cost rounded for ties
(:func:`tsim.match.round_ties`), the same solver and tie rule as two-layer weight matching. Permutations are visited in a
random order drawn from a seeded ``torch.Generator``; sweeps stop when none improves. A
permutation whose neighbours (permutations sharing a tensor with it) are unchanged since its
last solve is skipped: its LAP input, hence its answer, is the same.

Activation matching (Li et al. 2015, arXiv:1511.07543; Entezari et al. 2021, arXiv:2110.06296):
per permutation, the Pearson correlation C_ij between unit i of A and unit j of B over data
(spatial positions count as samples), perm = argmax_P sum_i C_{i P(i)}.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from tsim.deep.spec import PermutationSpec, check_spec, permute_tensor
from tsim.match import round_ties, solve_assignment


@dataclass(frozen=True)
class MatchResult:
    """Permutations aligning B to A.

    Attributes
    ----------
    perms : dict[str, LongTensor of shape (n_P,)]
    sweeps : int, coordinate-descent sweeps (1 for activation matching)
    objective : float, sum_k <W_k^A, pi(W_k^B)> (weight) or sum of matched correlations (activation)
    seconds : float
    """

    perms: dict
    sweeps: int
    objective: float
    seconds: float


def lap_max(C: np.ndarray) -> np.ndarray:
    """perm maximising sum_i C[i, perm[i]] for a square C (n, n): the core exact solver, ties rounded."""
    C = np.array(C, dtype=np.float64)
    return solve_assignment(round_ties(C, out=C), maximize=True)


def identity_perms(sizes: dict) -> dict:
    """{name: arange(n)}."""
    return {p: torch.arange(n) for p, n in sizes.items()}


def _matchable(state_dict: dict, keys) -> list[str]:
    if keys is not None:
        return list(keys)
    return [k for k, v in state_dict.items() if v.is_floating_point()
            and not k.endswith(("running_mean", "running_var"))]


def weight_matching(spec: PermutationSpec, sd_a: dict, sd_b: dict, seed: int = 0, max_iter: int = 100,
                    keys=None, init: dict | None = None) -> MatchResult:
    """Permutations of B maximising sum_k <W_k^A, pi(W_k^B)> (coordinate descent + exact LAP).

    Parameters
    ----------
    spec : PermutationSpec of both nets (same architecture).
    sd_a, sd_b : state_dicts; only float entries (default: parameters, not BatchNorm running
        statistics) named by ``keys`` enter the objective.
    seed : seeds the ``torch.Generator`` that draws the visiting order of each sweep.
    max_iter : at most this many sweeps; stops earlier after a sweep with no improvement.
    init : starting permutations (default identity).

    Returns
    -------
    MatchResult, with ``perms`` aligning B to A (see the module docstring).
    """
    t0 = time.perf_counter()
    sizes = check_spec(spec, sd_a)
    keys = set(_matchable(sd_a, keys))
    p2a = {p: [(k, a) for k, a in lst if k in keys] for p, lst in spec.perm_to_axes().items()}
    A = {k: sd_a[k].detach().to("cpu", torch.float64) for k in keys}
    B = {k: sd_b[k].detach().to("cpu", torch.float64) for k in keys}
    perms = {p: (init[p].clone().cpu() if init else torch.arange(n)) for p, n in sizes.items()}
    names = list(sizes)
    # C for P depends only on the permutations sharing an entry with P (its neighbours); when none
    # changed since P was last solved, the LAP would return P again, so P is skipped (exact).
    neighbours = {p: sorted({q for k, _ in p2a[p] for q in spec.axes[k] if q is not None and q != p})
                  for p in names}
    version = {p: 0 for p in names}
    seen: dict = {}
    A2 = {(k, a): A[k].movedim(a, 0).reshape(sizes[p], -1) for p in names for k, a in p2a[p]}
    gen = torch.Generator().manual_seed(seed)
    sweeps = 0
    for sweeps in range(1, max_iter + 1):
        improved = False
        for idx in torch.randperm(len(names), generator=gen).tolist():
            p = names[idx]
            state = tuple(version[q] for q in neighbours[p]) + (version[p],)
            if seen.get(p) == state:
                continue
            n = sizes[p]
            C = torch.zeros(n, n, dtype=torch.float64)
            for k, a in p2a[p]:
                wb = permute_tensor(B[k], spec.axes[k], perms, skip=p).movedim(a, 0).reshape(n, -1)
                C.addmm_(A2[(k, a)], wb.T)
            new = torch.from_numpy(lap_max(C.numpy()))
            rows = torch.arange(n)
            old_val, new_val = float(C[rows, perms[p]].sum()), float(C[rows, new].sum())
            if new_val > old_val + 1e-12 * max(1.0, abs(old_val)):
                perms[p] = new
                version[p] += 1
                improved = True
            seen[p] = tuple(version[q] for q in neighbours[p]) + (version[p],)
        if not improved:
            break
    objective = sum(float((A[k] * permute_tensor(B[k], spec.axes[k], perms)).sum()) for k in keys)
    return MatchResult(perms, sweeps, objective, time.perf_counter() - t0)


def _channels(h: torch.Tensor) -> torch.Tensor:
    """Activations with channels last and everything else flattened: shape (samples, C)."""
    return h.movedim(1, -1).reshape(-1, h.shape[1]) if h.ndim > 2 else h


class _Recorder:
    """Forward hooks on the spec's activation points, feeding ``fn(perm_name, acts (samples, C))``."""

    def __init__(self, model, spec: PermutationSpec, fn):
        mods = dict(model.named_modules())
        self.handles = []
        for p, names in spec.act_points.items():
            for name in names:
                self.handles.append(mods[name].register_forward_hook(
                    lambda _m, _i, out, p=p: fn(p, _channels(out.detach()).double())))

    def close(self):
        for h in self.handles:
            h.remove()


def _batches(X: torch.Tensor, batch: int):
    for i in range(0, len(X), batch):
        yield X[i:i + batch]


def activation_matching(model_a, model_b, spec: PermutationSpec, X: torch.Tensor,
                        batch: int = 500) -> MatchResult:
    """Permutations of B maximising summed Pearson correlation of hidden activations with A.

    C_ij = cov(h^A_i, h^B_j) / (std(h^A_i) std(h^B_j)) over the n examples of X (times spatial
    positions), accumulated per permutation over all its activation points; a unit with zero
    variance gets std 1 (its correlations are 0). Both models run in eval mode.

    Parameters
    ----------
    X : Tensor, shape (n, *in_shape), on the models' device.
    """
    t0 = time.perf_counter()
    stats: dict = {}

    def feed(tag):
        def fn(p, h):
            s = stats.setdefault(p, {})
            s.setdefault(tag, []).append(h)
        return fn

    objective = 0.0
    perms = {}
    acc: dict = {}
    for model in (model_a, model_b):
        model.eval()
    rec_a, rec_b = _Recorder(model_a, spec, feed("a")), _Recorder(model_b, spec, feed("b"))
    try:
        with torch.no_grad():
            for xb in _batches(X, batch):
                model_a(xb)
                model_b(xb)
                for p, s in stats.items():
                    ha, hb = torch.cat(s["a"], 0), torch.cat(s["b"], 0)
                    a = acc.setdefault(p, {"n": 0, "sa": 0, "sb": 0, "saa": 0, "sbb": 0, "sab": 0})
                    a["n"] += ha.shape[0]
                    a["sa"] = a["sa"] + ha.sum(0)
                    a["sb"] = a["sb"] + hb.sum(0)
                    a["saa"] = a["saa"] + (ha * ha).sum(0)
                    a["sbb"] = a["sbb"] + (hb * hb).sum(0)
                    a["sab"] = a["sab"] + ha.T @ hb
                stats.clear()
    finally:
        rec_a.close()
        rec_b.close()
    for p, a in acc.items():
        n = a["n"]
        ma, mb = a["sa"] / n, a["sb"] / n
        cov = a["sab"] / n - torch.outer(ma, mb)
        sa = (a["saa"] / n - ma * ma).clamp_min(0).sqrt()
        sb = (a["sbb"] / n - mb * mb).clamp_min(0).sqrt()
        sa = torch.where(sa > 1e-12, sa, torch.ones_like(sa))
        sb = torch.where(sb > 1e-12, sb, torch.ones_like(sb))
        corr = (cov / torch.outer(sa, sb)).cpu()
        perm = torch.from_numpy(lap_max(corr.numpy()))
        perms[p] = perm
        objective += float(corr[torch.arange(len(perm)), perm].sum())
    return MatchResult(perms, 1, objective, time.perf_counter() - t0)


def unit_activity(model, spec: PermutationSpec, X: torch.Tensor, batch: int = 500) -> np.ndarray:
    """Mean post-ReLU activation of every hidden unit over X (and spatial positions).

    Returns
    -------
    ndarray, shape (total units,): one entry per (activation point, channel), in spec order.
    """
    sums: dict = {}
    mods = dict(model.named_modules())
    handles = []
    model.eval()
    for p, names in spec.act_points.items():
        for name in names:
            handles.append(mods[name].register_forward_hook(
                lambda _m, _i, out, name=name: sums.__setitem__(
                    name, sums.get(name, 0) + _channels(out.detach()).double().mean(0) * out.shape[0])))
    try:
        with torch.no_grad():
            for xb in _batches(X, batch):
                model(xb)
    finally:
        for h in handles:
            h.remove()
    return np.concatenate([(sums[n] / len(X)).cpu().numpy() for names in spec.act_points.values()
                           for n in names])


def sparsity(activity: np.ndarray, tol: float = 0.01) -> dict:
    """Fraction of hidden units that are dead or near zero.

    ``dead``: mean activation exactly 0 (never active on the probe set); ``sparse``: mean
    activation <= tol * (mean over all units). Both in [0, 1].
    """
    activity = np.asarray(activity, dtype=np.float64)
    if activity.size == 0:
        return {"dead": 0.0, "sparse": 0.0}
    scale = activity.mean()
    return {"dead": float(np.mean(activity <= 0.0)), "sparse": float(np.mean(activity <= tol * scale))}
