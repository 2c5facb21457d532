"""The population loss of a two-layer ReLU net in closed form (arc-cosine kernel), plain numpy.

Derivation. For x ~ N(0, I_d) and u, v != 0 at angle theta, rotate so that u, v span the first
two coordinates; (u.x, v.x) is a centred Gaussian pair with correlation cos theta, and
(Cho & Saul 2009, "Kernel methods for deep learning", NeurIPS, arc-cosine kernel of degree 1)

    kappa(u, v) = E[relu(u.x) relu(v.x)] = |u| |v| (sin theta + (pi - theta) cos theta) / (2 pi).

With f(x) = c sum_i a_i relu(w_i.x) and f*(x) = sum_k a*_k relu(w*_k.x),

    L = 1/2 E[(f - f*)^2] = 1/2 c^2 sum_ij a_i a_j kappa(w_i, w_j)
                           - c sum_ik a_i a*_k kappa(w_i, w*_k) + 1/2 sum_kl a*_k a*_l kappa(w*_k, w*_l).

Gradient: d theta / du = -(v/|v| - cos theta u/|u|) / (|u| sin theta), which gives

    d kappa / du = ((pi - theta) v + sin theta |v| u / |u|) / (2 pi)

(at theta = 0 it is v/2; both arguments moving gives d kappa(u, u)/du = u, consistent with
kappa(u, u) = |u|^2/2, which is why the j = i term of the sum below needs no special case).
So dL/dw_i = c^2 a_i sum_j a_j dkappa(w_i, w_j) - c a_i sum_k a*_k dkappa(w_i, w*_k) and
dL/da_i = c^2 sum_j a_j kappa(w_i, w_j) - c sum_k a*_k kappa(w_i, w*_k).
A zero neuron contributes 0 and gets the subgradient 0.

Sphere. x uniform on S^{d-1} is x = g/|g| with g ~ N(0, I), |g| independent of g/|g|, and
relu is 1-homogeneous, so E_g[relu(u.g) relu(v.g)] = E|g|^2 E_x[relu(u.x) relu(v.x)] and
E|g|^2 = d: every kernel term, hence L and its gradient, is the Gaussian one divided by d.
"""
from __future__ import annotations

import numpy as np

INPUTS = ("gaussian", "sphere")


def arccos_kernel(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """kappa(U_i, V_j) = |u||v| (sin t + (pi - t) cos t) / (2 pi), U (p, d), V (q, d) -> (p, q); 0 at zero rows."""
    U = np.asarray(U, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    if U.ndim != 2 or V.ndim != 2 or U.shape[1] != V.shape[1]:
        raise ValueError(f"U and V must be (p, d) and (q, d); got {U.shape} and {V.shape}.")
    nu = np.linalg.norm(U, axis=1)
    nv = np.linalg.norm(V, axis=1)
    den = np.outer(nu, nv)
    with np.errstate(invalid="ignore", divide="ignore"):
        cs = np.clip(np.where(den > 0, (U @ V.T) / np.where(den > 0, den, 1.0), 1.0), -1.0, 1.0)
    th = np.arccos(cs)
    return den * (np.sin(th) + (np.pi - th) * cs) / (2 * np.pi)


def _dkappa(u: np.ndarray, V: np.ndarray) -> np.ndarray:
    """d kappa(u, v_k) / du for each row v_k of V -> (q, d); zeros when u or v_k is 0."""
    nu = np.linalg.norm(u)
    nv = np.linalg.norm(V, axis=1)
    out = np.zeros_like(V)
    if nu == 0:
        return out
    ok = nv > 0
    cs = np.clip((V[ok] @ u) / (nu * nv[ok]), -1.0, 1.0)
    th = np.arccos(cs)
    out[ok] = ((np.pi - th)[:, None] * V[ok] + (np.sin(th) * nv[ok])[:, None] * (u / nu)[None, :]) / (2 * np.pi)
    return out


def loss_and_grad(W, a, TW, Ta, c: float = 1.0, inputs: str = "gaussian"):
    """Population loss L and its gradient (dL/dW (m, d), dL/da (m,)) from the formulas above.

    Parameters
    ----------
    W : ndarray, shape (m, d);  a : ndarray, shape (m,);  c : float   the student
    TW : ndarray, shape (M, d); Ta : ndarray, shape (M,)              the teacher
    inputs : "gaussian" or "sphere" (everything divided by d)
    """
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}; got {inputs!r}.")
    W, a, TW, Ta = (np.asarray(v, dtype=np.float64) for v in (W, a, TW, Ta))
    s = 1.0 if inputs == "gaussian" else 1.0 / W.shape[1]
    Kss, Kst, Ktt = arccos_kernel(W, W), arccos_kernel(W, TW), arccos_kernel(TW, TW)
    L = 0.5 * c * c * a @ Kss @ a - c * a @ Kst @ Ta + 0.5 * Ta @ Ktt @ Ta
    gW = np.stack([c * c * a[i] * (a @ _dkappa(W[i], W)) - c * a[i] * (Ta @ _dkappa(W[i], TW))
                   for i in range(W.shape[0])])
    ga = c * c * Kss @ a - c * Kst @ Ta
    return s * float(L), s * gW, s * ga
