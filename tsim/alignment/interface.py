"""One interface over neuron-alignment methods: ``align(A, B, method)`` and the method registry.

``align(A, B, method)`` returns an :class:`AlignResult` whose ``perm`` follows the tsim convention
(see :mod:`tsim.match`): ``B.permute(perm)`` is aligned with A, neuron i of A matched with neuron
perm[i] of B. Methods (:data:`METHODS`, the one list of names every study and config uses):

- ``"weight"``: weight matching, one exact assignment on <z^A_i, z^B_j>, z = (w, c a)
  (Ainsworth et al. 2023, arXiv:2209.04836), :func:`tsim.match.weight_matching`.
- ``"activation"``: activation matching on the correlation of hidden activations
  (:mod:`tsim.alignment.activation`).
- ``"ste"``: straight-through estimator on the exact midpoint loss (:mod:`tsim.alignment.ste`).
- ``"optimal"``: the barrier-optimal permutation by exhaustive search, small m only
  (:mod:`tsim.alignment.exhaustive`).
- ``"barrier"``: barrier-aware matching, any m: exact on teacher-aligned nets, else a local
  search on the barrier from WM; never worse than WM on the same t-grid
  (:mod:`tsim.alignment.barrier_aware`).

Networks of different widths are first padded with zero neurons (functions unchanged) to the
larger width; ``AlignResult.padded`` says so and ``m_a``, ``m_b`` keep the original widths.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..match import assignment_ties, neuron_features, round_ties, solve_lap, weight_scores
from ..network import TwoLayer, check_perm
from .activation import activation_correlation
from .barrier_aware import barrier_aware_matching
from .exhaustive import barrier_optimal_perm
from .ste import ste_matching


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
                                        optimal, barrier: the barrier)
    A, B : TwoLayer                     padded A and padded, permuted B (ready to interpolate)
    info : dict                         method details (ste: steps, loss curve end; ...)
    certified : bool or None            weight/activation: the assignment came with an LP duality
                                        certificate of exact optimality on the rounded score
                                        (:func:`tsim.match.solve_lap`); None for the other methods
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
    certified: bool | None = None

    @property
    def m(self) -> int:
        return int(self.perm.shape[0])


def pad_pair(A: TwoLayer, B: TwoLayer) -> tuple[TwoLayer, TwoLayer, bool]:
    """(A', B', padded): both padded with zero neurons to width max(m_A, m_B).

    A zero neuron (w = 0, a = 0) adds nothing to f, so A' and B' compute A's and B's functions.
    """
    if A.d != B.d:
        raise ValueError(f"A and B must have the same input dimension d; got d={A.d} and d={B.d}.")
    m = max(A.m, B.m)
    return A.pad(m), B.pad(m), A.m != B.m


# --------------------------------------------------------------------------- the methods
# Each takes the padded pair, its rounded weight-matching score S_wm and the options of align();
# returns (perm, the score matrix whose ties are reported, objective, info).
# "weight" and "activation" put the certificate flag of their assignment in info["certified"].
def _weight(A, B, S_wm, o):
    ZB = neuron_features(B)
    res = solve_lap(S_wm, maximize=True, col_prices=0.5 * np.einsum("ij,ij->i", ZB, ZB))
    return res.perm, S_wm, float(S_wm[np.arange(res.perm.size), res.perm].sum()), {"certified": res.certified}


def _activation(A, B, S_wm, o):
    S = round_ties(activation_correlation(A, B, o["X"], n=o["n"], rng=o["rng"], inputs=o["inputs"],
                                          batch=o["batch"]))
    res = solve_lap(S, maximize=True)
    return res.perm, S, float(S[np.arange(res.perm.size), res.perm].sum()), {"certified": res.certified}


def _ste(A, B, S_wm, o):
    perm, best, curve = ste_matching(A, B, o["T"], inputs=o["inputs"], steps=o["ste_steps"], lr=o["ste_lr"],
                                     noise=o["ste_noise"], rng=o["rng"])
    return perm, S_wm, float(best), {"steps": int(o["ste_steps"]), "loss_first": float(curve[0]),
                                     "loss_last": float(curve[-1])}


def _optimal(A, B, S_wm, o):
    if o["T"] is None:
        raise ValueError("method='optimal' minimises the population barrier; give the teacher T.")
    perm, value = barrier_optimal_perm(A, B, o["T"], inputs=o["inputs"], grid=o["grid"], max_m=o["max_m"])
    return np.asarray(perm, dtype=np.int64), S_wm, float(value), {}


def _barrier(A, B, S_wm, o):
    if o["T"] is None:
        raise ValueError("method='barrier' minimises the population barrier; give the teacher T.")
    perm, value, info = barrier_aware_matching(A, B, o["T"], inputs=o["inputs"], grid=o["grid"], S_wm=S_wm)
    return perm, S_wm, value, info


#: method name -> implementation; the one vocabulary of alignment methods (configs, studies, deep).
METHODS = {"weight": _weight, "activation": _activation, "ste": _ste, "optimal": _optimal, "barrier": _barrier}


def align(A: TwoLayer, B: TwoLayer, method: str = "weight", *, T: TwoLayer | None = None,
          X: np.ndarray | None = None, n: int | None = None, rng: np.random.Generator | None = None,
          inputs: str = "gaussian", batch: int = 4096, ste_steps: int = 200, ste_lr: float = 0.01,
          ste_noise: float = 0.0, grid: int = 25, max_m: int = 8) -> AlignResult:
    """Align B to A with ``method`` in METHODS; networks of different widths are zero-padded.

    Parameters
    ----------
    A, B : TwoLayer           widths m_a, m_b (same d); the result has width m = max(m_a, m_b)
    method : str              "weight" | "activation" | "ste" | "optimal" | "barrier"
    T : TwoLayer              teacher (needed by "ste", "optimal" and "barrier": they use the population loss)
    X, n, rng, batch          activation matching: a sample X (n, d), or n fresh inputs from rng,
                              streamed in batches; neither = exact Gaussian moments
    inputs : str              "gaussian" or "sphere" (population loss and fresh samples)
    ste_steps, ste_lr, ste_noise   STE iterations, Adam step and init noise (see ste_matching)
    grid, max_m               "optimal": t-grid of the barrier and the largest m brute-forced;
                              "barrier": its t-grid (budget: call barrier_aware_matching directly)

    Returns
    -------
    AlignResult
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}; got {method!r}.")
    m_a, m_b = A.m, B.m
    A2, B2, padded = pad_pair(A, B)
    S_wm = weight_scores(A2, B2)
    opts = dict(T=T, X=X, n=n, rng=rng, inputs=inputs, batch=batch, ste_steps=ste_steps, ste_lr=ste_lr,
                ste_noise=ste_noise, grid=grid, max_m=max_m)
    perm, S, score, info = METHODS[method](A2, B2, S_wm, opts)
    perm = check_perm(perm, A2.m)
    certified = info.pop("certified", None)
    return AlignResult(perm=perm, method=method, padded=padded, m_a=m_a, m_b=m_b,
                       n_tied=assignment_ties(S, perm).n_tied, score=score, A=A2, B=B2.permute(perm), info=info,
                       certified=certified)
