"""One interface over neuron-alignment methods, and teacher-based ground truth for them.

``align(A, B, method)`` returns an :class:`AlignResult` whose ``perm`` follows the tsim convention
(see :mod:`tsim.match`): ``B.permute(perm)`` is aligned with A, neuron i of A matched with neuron
perm[i] of B. Methods:

- ``"weight"``: weight matching, one exact assignment on <z^A_i, z^B_j>, z = (w, c a)
  (Ainsworth et al. 2023, arXiv:2209.04836).
- ``"activation"``: activation matching, an assignment on the correlation of hidden activations
  relu(w_i . x); moments are either exact Gaussian ones (arc-cosine kernel) or accumulated over a
  sample in batches (streaming, memory O(m^2) whatever n).
- ``"ste"``: straight-through estimator, a permutation learned by minimising the exact population
  loss at the midpoint of A and the permuted B (Ainsworth et al. 2023, Sec. 3.3); needs torch.
- ``"optimal"``: the barrier-optimal permutation by brute force (``tsim.brute``), small m only.

Networks of different widths are first padded with zero neurons (functions unchanged) to the
larger width; ``AlignResult.padded`` says so and ``m_a``, ``m_b`` keep the original widths.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .losses import kernel_matrix
from .match import _round_ties, assignment_ties, neuron_features, solve_assignment, weight_matching, weight_scores
from .network import TwoLayer, check_perm

METHODS = ("weight", "activation", "ste", "optimal")


@dataclass(frozen=True)
class AlignResult:
    """An alignment of B to A.

    Attributes
    ----------
    perm : ndarray of int, shape (m,)   ``B.permute(perm)`` (of the padded B) is aligned with A
    method : str                        one of METHODS
    padded : bool                       True when m_a != m_b and the narrower net got zero neurons
    m_a, m_b : int                      original widths; m = max(m_a, m_b) = len(perm)
    n_tied : int                        rows with a tied 2-swap partner in the method's score
                                        (weight/activation: its own score; ste/optimal: the
                                        weight-matching score at the returned perm)
    score : float                       the assignment objective (weight: sum <z_i, z_perm(i)>;
                                        activation: sum of correlations; ste: best midpoint loss;
                                        optimal: the barrier)
    A, B : TwoLayer                     padded A and padded, permuted B (ready to interpolate)
    info : dict                         method details (ste: steps, loss curve end; ...)
    """

    perm: np.ndarray
    method: str
    padded: bool
    m_a: int
    m_b: int
    n_tied: int
    score: float
    A: TwoLayer
    B: TwoLayer
    info: dict = field(default_factory=dict)

    @property
    def m(self) -> int:
        return int(self.perm.shape[0])


def pad_pair(A: TwoLayer, B: TwoLayer) -> tuple[TwoLayer, TwoLayer, bool]:
    """(A', B', padded): both padded with zero neurons to width max(m_A, m_B).

    A zero neuron (w = 0, a = 0) adds nothing to f, so A' and B' compute A's and B's functions.
    """
    if A.d != B.d:
        raise ValueError(f"A and B must have the same input dimension; got d={A.d} and d={B.d}.")
    m = max(A.m, B.m)
    return A.pad(m), B.pad(m), A.m != B.m


# --------------------------------------------------------------------------- activation matching
class ActivationMoments:
    """Streaming first and second moments of two activation vectors h^A (m_a,), h^B (m_b,).

    ``update(HA, HB)`` takes a batch (n_b, m_a), (n_b, m_b) and merges its centred moments
    with Chan et al.'s pairwise rule, so memory stays O((m_a + m_b)^2) whatever the total n:
    C_AB <- C_AB + C_AB^batch + delta_A delta_B^T n n_b / (n + n_b), delta = batch mean - mean.
    ``correlation()`` is cov_ij / sqrt(var_i var_j), 0 where a variance is 0 (dead or zero neurons).
    """

    def __init__(self, m_a: int, m_b: int):
        self.n = 0
        self.mean_a = np.zeros(m_a)
        self.mean_b = np.zeros(m_b)
        self.m2_a = np.zeros(m_a)
        self.m2_b = np.zeros(m_b)
        self.c_ab = np.zeros((m_a, m_b))

    def update(self, HA: np.ndarray, HB: np.ndarray) -> "ActivationMoments":
        """Merge one batch of activations; returns self."""
        HA = np.asarray(HA, dtype=np.float64)
        HB = np.asarray(HB, dtype=np.float64)
        if HA.ndim != 2 or HB.ndim != 2 or HA.shape[0] != HB.shape[0] \
                or HA.shape[1] != self.mean_a.size or HB.shape[1] != self.mean_b.size:
            raise ValueError(f"HA and HB must be (n, {self.mean_a.size}) and (n, {self.mean_b.size}); "
                             f"got {HA.shape} and {HB.shape}.")
        nb = HA.shape[0]
        if nb == 0:
            return self
        ma, mb = HA.mean(axis=0), HB.mean(axis=0)
        CA, CB = HA - ma, HB - mb
        da, db = ma - self.mean_a, mb - self.mean_b
        n = self.n
        tot = n + nb
        w = n * nb / tot
        self.m2_a += (CA * CA).sum(axis=0) + da * da * w
        self.m2_b += (CB * CB).sum(axis=0) + db * db * w
        self.c_ab += CA.T @ CB + np.outer(da, db) * w
        self.mean_a += da * (nb / tot)
        self.mean_b += db * (nb / tot)
        self.n = tot
        return self

    def correlation(self) -> np.ndarray:
        """Pearson correlation matrix, shape (m_a, m_b); 0 where either variance is 0."""
        if self.n < 2:
            raise ValueError(f"need at least 2 samples for a correlation; got n={self.n}.")
        return _corr(self.c_ab, self.m2_a, self.m2_b)


def _corr(cov: np.ndarray, var_a: np.ndarray, var_b: np.ndarray) -> np.ndarray:
    sa, sb = np.sqrt(np.maximum(var_a, 0.0)), np.sqrt(np.maximum(var_b, 0.0))
    den = np.outer(sa, sb)
    tiny = 1e-12 * max(float(np.max(den)) if den.size else 0.0, 1e-300)
    out = np.zeros_like(cov)
    ok = den > tiny
    out[ok] = cov[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def population_correlation(WA: np.ndarray, WB: np.ndarray) -> np.ndarray:
    """Exact correlation of relu(w^A_i . x) and relu(w^B_j . x) for x ~ N(0, I), shape (m_a, m_b).

    E[relu(u.x)] = |u| / sqrt(2 pi),  E[relu(u.x) relu(v.x)] = kappa(u, v) (arc-cosine kernel),
    so cov = kappa(u, v) - |u||v| / (2 pi), var = |u|^2 (1/2 - 1/(2 pi)). Correlations are
    invariant to the input norm only for Gaussian inputs; on the sphere use a sample.
    """
    na, nb = np.linalg.norm(WA, axis=1), np.linalg.norm(WB, axis=1)
    cov = kernel_matrix(WA, WB) - np.outer(na, nb) / (2 * math.pi)
    k = 0.5 - 1.0 / (2 * math.pi)
    return _corr(cov, k * na ** 2, k * nb ** 2)


def activation_correlation(A: TwoLayer, B: TwoLayer, X: np.ndarray | None = None, *, n: int | None = None,
                           rng: np.random.Generator | None = None, inputs: str = "gaussian",
                           batch: int = 4096) -> np.ndarray:
    """Correlation matrix (m_a, m_b) of the hidden activations of A and B.

    Exact Gaussian moments when neither X nor n is given; otherwise streamed over X (n, d) or
    over n fresh inputs drawn from ``rng`` in batches of ``batch`` (``inputs`` "gaussian" or
    "sphere"), so memory does not grow with n.
    """
    from .data import sample_inputs

    if batch < 1:
        raise ValueError(f"batch must be >= 1; got {batch}.")
    if X is None and n is None:
        if inputs != "gaussian":
            raise ValueError(f"exact activation moments exist for inputs='gaussian' only; got {inputs!r}. "
                             "Pass a sample X or a sample size n with rng.")
        return population_correlation(A.W, B.W)
    acc = ActivationMoments(A.m, B.m)
    if X is not None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != A.d:
            raise ValueError(f"X must have shape (n, {A.d}); got {X.shape}.")
        for s in range(0, X.shape[0], batch):
            Xb = X[s: s + batch]
            acc.update(np.maximum(Xb @ A.W.T, 0.0), np.maximum(Xb @ B.W.T, 0.0))
    else:
        if rng is None:
            raise ValueError("activation matching on n fresh samples needs rng (a numpy Generator).")
        if int(n) < 2:
            raise ValueError(f"n must be >= 2; got {n}.")
        left = int(n)
        while left > 0:
            Xb = sample_inputs(min(batch, left), A.d, inputs, rng)
            acc.update(np.maximum(Xb @ A.W.T, 0.0), np.maximum(Xb @ B.W.T, 0.0))
            left -= Xb.shape[0]
    return acc.correlation()


def activation_matching(A: TwoLayer, B: TwoLayer, X: np.ndarray | None = None, **kw) -> np.ndarray:
    """perm maximising sum_i corr(h^A_i, h^B_perm(i)) (Ainsworth et al. 2023, arXiv:2209.04836).

    Keyword arguments go to :func:`activation_correlation`. ``B.permute(perm)`` aligns with A.
    """
    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}. Use align().")
    return solve_assignment(_round_ties(activation_correlation(A, B, X, **kw)), maximize=True)


# --------------------------------------------------------------------------- STE
def _torch_population_loss(torch, W, a, c, TW, Ta, tt, scale):
    """Exact population loss in torch (float64), differentiable; zero rows are safe.

    kappa(u, v) = |u||v| h(cos t) / (2 pi), h(s) = sqrt(1 - s^2) + (pi - acos s) s,
    h'(s) = pi - acos s (finite at s = +-1, so a custom backward avoids acos' singularity).
    """

    class _H(torch.autograd.Function):
        @staticmethod
        def forward(ctx, s):
            ctx.save_for_backward(s)
            return torch.sqrt(torch.clamp(1 - s * s, min=0.0)) + (math.pi - torch.acos(s)) * s

        @staticmethod
        def backward(ctx, g):
            (s,) = ctx.saved_tensors
            return g * (math.pi - torch.acos(s))

    def norms(U):
        n2 = (U * U).sum(dim=1)
        pos = n2 > 0
        return torch.where(pos, torch.sqrt(torch.where(pos, n2, torch.ones_like(n2))), torch.zeros_like(n2))

    def kern(U, V):
        nu, nv = norms(U), norms(V)
        prod = nu[:, None] * nv[None, :]
        pos = prod > 0
        s = (U @ V.T) / torch.where(pos, prod, torch.ones_like(prod))
        s = torch.clamp(s, -1.0, 1.0)
        return torch.where(pos, prod * _H.apply(s), torch.zeros_like(prod)) / (2 * math.pi)

    ss = a @ kern(W, W) @ a
    st = a @ kern(W, TW) @ Ta
    return scale * (0.5 * c * c * ss - c * st + tt)


def ste_matching(A: TwoLayer, B: TwoLayer, T: TwoLayer, *, inputs: str = "gaussian", steps: int = 200,
                 lr: float = 0.01, noise: float = 0.0, rng: np.random.Generator | None = None,
                 init: np.ndarray | None = None):
    """Permutation learned by the straight-through estimator on the exact midpoint loss.

    A proxy theta~ = (W~, a~) starts at A (plus ``noise`` times the rms weight times N(0, 1),
    drawn from a torch.Generator seeded from ``rng``). Each step projects theta~ onto B's
    permutations, perm = weight_matching(theta~, B); the straight-through weights
    B_st = theta~ + (B.permute(perm) - theta~).detach() equal the permuted B in the forward pass
    and pass gradients to theta~; Adam minimises L((A + B_st) / 2) (the exact population loss).
    Returns the visited perm of lowest midpoint loss (the first is weight matching's when
    noise = 0, so the STE never ends above weight matching on the midpoint loss).

    Returns
    -------
    perm : ndarray of int, shape (m,)
    best : float          midpoint loss at perm
    curve : ndarray, (steps,)   midpoint loss of the projection at each step

    References: Ainsworth, Hayase, Srinivasa 2023, arXiv:2209.04836, Sec. 3.3.
    """
    import torch

    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}. Use align().")
    if T is None:
        raise ValueError("the STE minimises the population loss; give the teacher T.")
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1; got {steps}.")
    if not lr > 0:
        raise ValueError(f"lr must be > 0; got {lr}.")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}.")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra intra-op threads only add contention (30x under load)
    try:
        return _ste_loop(torch, A, B, T, inputs, int(steps), float(lr), float(noise), rng, init)
    finally:
        torch.set_num_threads(threads)


def _ste_loop(torch, A, B, T, inputs, steps, lr, noise, rng, init):
    from .losses import input_scale, teacher_energy

    seed = int(rng.integers(0, 2 ** 62)) if rng is not None else 0
    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    WA, aA = torch.tensor(A.W, dtype=f64), torch.tensor(A.a, dtype=f64)
    TW, Ta = torch.tensor(np.asarray(T.W), dtype=f64), torch.tensor(T.a * T.c, dtype=f64)
    tt, scale = teacher_energy(T), input_scale(inputs, A.d)
    cmid = 0.5 * (A.c + B.c)
    rms = float(np.sqrt(np.mean(A.W ** 2))) or 1.0
    W0 = WA.clone() + noise * rms * torch.randn(WA.shape, generator=gen, dtype=f64)
    Wt = W0.clone().requires_grad_(True)
    at = aA.clone().requires_grad_(True)
    # Adam (Kingma & Ba 2015) written out: torch.optim's first step imports torch._dynamo (seconds)
    b1, b2, eps = 0.9, 0.999, 1e-8
    mom = [torch.zeros_like(Wt), torch.zeros_like(at)]
    vel = [torch.zeros_like(Wt), torch.zeros_like(at)]
    best, best_perm = math.inf, None
    curve = np.empty(int(steps))
    for k in range(int(steps)):
        proxy = TwoLayer(Wt.detach().numpy(), at.detach().numpy(), A.c)
        perm = weight_matching(proxy, B) if (k > 0 or init is None) else check_perm(init, B.m)
        BW = torch.tensor(B.W[perm], dtype=f64)
        Ba = torch.tensor(B.a[perm], dtype=f64)
        Wst = Wt + (BW - Wt).detach()
        ast = at + (Ba - at).detach()
        loss = _torch_population_loss(torch, 0.5 * (WA + Wst), 0.5 * (aA + ast), cmid, TW, Ta, tt, scale)
        val = float(loss.detach())
        curve[k] = val
        if val < best - 1e-15 * max(1.0, abs(best) if math.isfinite(best) else 1.0):
            best, best_perm = val, perm.copy()
        Wt.grad = at.grad = None
        loss.backward()
        with torch.no_grad():
            for x, mq, vq in zip((Wt, at), mom, vel):
                g = x.grad
                mq.mul_(b1).add_(g, alpha=1 - b1)
                vq.mul_(b2).addcmul_(g, g, value=1 - b2)
                x.sub_(lr * (mq / (1 - b1 ** (k + 1))) / (torch.sqrt(vq / (1 - b2 ** (k + 1))) + eps))
    return best_perm, best, curve


# --------------------------------------------------------------------------- the interface
def align(A: TwoLayer, B: TwoLayer, method: str = "weight", *, T: TwoLayer | None = None,
          X: np.ndarray | None = None, n: int | None = None, rng: np.random.Generator | None = None,
          inputs: str = "gaussian", batch: int = 4096, ste_steps: int = 200, ste_lr: float = 0.01,
          ste_noise: float = 0.0, grid: int = 25, max_m: int = 8) -> AlignResult:
    """Align B to A with ``method`` in METHODS; networks of different widths are zero-padded.

    Parameters
    ----------
    A, B : TwoLayer           widths m_a, m_b (same d); the result has width m = max(m_a, m_b)
    method : str              "weight" | "activation" | "ste" | "optimal"
    T : TwoLayer              teacher (needed by "ste" and "optimal": both use the population loss)
    X, n, rng, batch          activation matching: a sample X (n, d), or n fresh inputs from rng,
                              streamed in batches; neither = exact Gaussian moments
    inputs : str              "gaussian" or "sphere" (population loss and fresh samples)
    ste_steps, ste_lr, ste_noise   STE iterations, Adam step and init noise (see ste_matching)
    grid, max_m               "optimal": t-grid of the barrier and the largest m brute-forced

    Returns
    -------
    AlignResult
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
    m_a, m_b = A.m, B.m
    A2, B2, padded = pad_pair(A, B)
    S_wm = weight_scores(A2, B2)
    info: dict = {}
    if method == "weight":
        perm = solve_assignment(S_wm, maximize=True)
        S = S_wm
        score = float(S[np.arange(perm.size), perm].sum())
    elif method == "activation":
        S = _round_ties(activation_correlation(A2, B2, X, n=n, rng=rng, inputs=inputs, batch=batch))
        perm = solve_assignment(S, maximize=True)
        score = float(S[np.arange(perm.size), perm].sum())
    elif method == "ste":
        perm, score, curve = ste_matching(A2, B2, T, inputs=inputs, steps=ste_steps, lr=ste_lr,
                                          noise=ste_noise, rng=rng)
        S = S_wm
        info = {"steps": int(ste_steps), "loss_first": float(curve[0]), "loss_last": float(curve[-1])}
    else:
        if T is None:
            raise ValueError("method='optimal' minimises the population barrier; give the teacher T.")
        if A2.m > max_m:
            raise ValueError(f"method='optimal' enumerates m! permutations; m={A2.m} exceeds max_m={max_m}. "
                             "Use a smaller width or another method.")
        from .brute import barrier_optimal_perm

        perm, score = barrier_optimal_perm(A2, B2, T, inputs=inputs, grid=grid, max_m=max_m)
        perm = np.asarray(perm, dtype=np.int64)
        S = S_wm
        score = float(score)
    perm = check_perm(perm, A2.m)
    return AlignResult(perm=perm, method=method, padded=padded, m_a=m_a, m_b=m_b,
                       n_tied=assignment_ties(S, perm).n_tied, score=score, A=A2, B=B2.permute(perm), info=info)


# --------------------------------------------------------------------------- teacher ground truth
def planted_recovery(perm, planted) -> float:
    """Fraction of neurons matched as planted: B = A.permute(planted) is undone by argsort(planted).

    Returns mean_i [perm[i] == argsort(planted)[i]] in [0, 1]. Duplicate or zero neurons in A can
    be swapped at no cost; use :func:`functional_recovery` to count those as recovered.
    """
    planted = check_perm(planted, len(planted))
    perm = check_perm(perm, planted.size)
    return float(np.mean(perm == np.argsort(planted)))


def functional_recovery(A: TwoLayer, B: TwoLayer, perm, rtol: float = 1e-8) -> float:
    """Fraction of i with neuron perm[i] of B equal to neuron i of A (features z = (w, c a)) within rtol."""
    perm = check_perm(perm, B.m)
    za, zb = neuron_features(A), neuron_features(B.permute(perm))
    scale = max(float(np.max(np.abs(za))), 1e-300)
    return float(np.mean(np.max(np.abs(za - zb), axis=1) <= rtol * scale))


@dataclass(frozen=True)
class TeacherAlignment:
    """How each student neuron lines up with the teacher neurons.

    Attributes
    ----------
    cos : ndarray, shape (m, M)     cos angle(w_j, w*_k); 0 for a zero neuron
    best : ndarray of int, (m,)     argmax_k cos[j, k], -1 for a neuron with |c a_j| |w_j| <= tol
    best_cos : ndarray, (m,)        cos[j, best[j]] (nan for inactive neurons)
    active : ndarray of bool, (m,)  |c a_j| |w_j| > tol * max_j |c a_j| |w_j|
    """

    cos: np.ndarray
    best: np.ndarray
    best_cos: np.ndarray
    active: np.ndarray


def teacher_alignment(S: TwoLayer, T: TwoLayer, tol: float = 1e-3) -> TeacherAlignment:
    """Cosine of each student neuron with each teacher neuron and its best teacher partner.

    A neuron is active when its output magnitude |c a_j| |w_j| exceeds ``tol`` times the largest
    (the same rule as tsim.sparse_fraction); inactive neurons get best = -1.
    """
    if S.d != T.d:
        raise ValueError(f"student and teacher input dimensions differ: {S.d} vs {T.d}.")
    nw, nt = np.linalg.norm(S.W, axis=1), np.linalg.norm(T.W, axis=1)
    den = np.outer(nw, nt)
    cos = np.divide(S.W @ T.W.T, den, out=np.zeros_like(den), where=den > 0)
    mag = np.abs(S.c * S.a) * nw
    active = mag > tol * max(float(mag.max()), 1e-300)
    best = np.where(active, np.argmax(cos, axis=1), -1)
    best_cos = np.where(active, cos[np.arange(S.m), np.maximum(best, 0)], np.nan)
    return TeacherAlignment(cos=cos, best=best, best_cos=best_cos, active=active)


def teacher_agreement(A: TwoLayer, B: TwoLayer, perm, T: TwoLayer, tol: float = 1e-3) -> float:
    """Fraction of matched pairs (i, perm[i]) that sit on the same teacher neuron.

    A pair counts when both neurons are inactive, or both are active with the same best teacher
    neuron (see :func:`teacher_alignment`). 1 means the matching is right by the teacher's
    labelling, whatever its weight-matching score; nan if A and B widths differ (pad first).
    """
    perm = check_perm(perm, B.m)
    if A.m != B.m:
        raise ValueError(f"A and B must have the same width; got {A.m} and {B.m}. Pad first (pad_pair).")
    ta, tb = teacher_alignment(A, T, tol), teacher_alignment(B.permute(perm), T, tol)
    return float(np.mean(ta.best == tb.best))
