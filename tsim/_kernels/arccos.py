"""Numba kernels for the Gaussian arc-cosine kernel and the exact population loss.

kappa(u, v) = E_{x~N(0,I)}[relu(u.x) relu(v.x)] = |u||v| (sin t + (pi - t) cos t) / (2 pi),
d kappa / du = ((pi - t) v + sin t |v| u / |u|) / (2 pi),   t = angle(u, v).
A zero vector gives kappa = 0 and gradient 0 (the relu'(0) = 0 convention).
"""
import math

import numpy as np
from numba import njit, prange

INV_2PI = 1.0 / (2.0 * math.pi)


@njit(cache=True)
def _norms(W):
    m, d = W.shape
    out = np.empty(m)
    for i in range(m):
        s = 0.0
        for k in range(d):
            s += W[i, k] * W[i, k]
        out[i] = math.sqrt(s)
    return out


@njit(cache=True, inline="always")
def _angle_terms(dot, nu, nv):
    """(pi - t, sin t, kappa) for vectors with norms nu, nv > 0 and inner product dot."""
    cs = dot / (nu * nv)
    if cs > 1.0:
        cs = 1.0
    elif cs < -1.0:
        cs = -1.0
    pmt = math.pi - math.acos(cs)
    sn = math.sqrt(max(0.0, 1.0 - cs * cs))
    kap = nu * nv * (sn + pmt * cs) * INV_2PI
    return pmt, sn, kap


@njit(cache=True)
def _kernel_matrix(U, V):
    """kappa(U_i, V_j) for U (p, d), V (q, d) -> (p, q)."""
    p, d = U.shape
    q = V.shape[0]
    nu = _norms(U)
    nv = _norms(V)
    out = np.zeros((p, q))
    for i in range(p):
        if nu[i] == 0.0:
            continue
        for j in range(q):
            if nv[j] == 0.0:
                continue
            dot = 0.0
            for k in range(d):
                dot += U[i, k] * V[j, k]
            out[i, j] = _angle_terms(dot, nu[i], nv[j])[2]
    return out


@njit(cache=True)
def _loss_grad(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga):
    """Population loss L = 1/2 E[(f - f*)^2] (times ``scale``) and, if want_grad, its gradient.

    W (m, d), a (m,), TW (M, d), Ta (M,); tt = 1/2 sum_kl a*_k a*_l kappa(w*_k, w*_l) (unscaled).
    gW (m, d), ga (m,) are overwritten when want_grad. scale = 1 (Gaussian) or 1/d (sphere).
    """
    m, d = W.shape
    M = TW.shape[0]
    nw = _norms(W)
    nt = _norms(TW)
    c2 = c * c
    ss = 0.0
    st = 0.0
    if want_grad:
        gW[:, :] = 0.0
        ga[:] = 0.0
    radial = np.zeros(m)  # coefficient of w_i / |w_i| in dL/dw_i
    for i in range(m):
        ni = nw[i]
        if ni == 0.0:
            continue
        ai = a[i]
        kii = 0.5 * ni * ni
        ss += ai * ai * kii
        if want_grad:
            ga[i] += c2 * ai * kii
            coef = 0.5 * c2 * ai * ai
            for k in range(d):
                gW[i, k] += coef * W[i, k]
        for j in range(i + 1, m):
            nj = nw[j]
            if nj == 0.0:
                continue
            dot = 0.0
            for k in range(d):
                dot += W[i, k] * W[j, k]
            pmt, sn, kap = _angle_terms(dot, ni, nj)
            aj = a[j]
            ss += 2.0 * ai * aj * kap
            if want_grad:
                ga[i] += c2 * aj * kap
                ga[j] += c2 * ai * kap
                coef = c2 * ai * aj * INV_2PI
                ci = coef * pmt
                for k in range(d):
                    gW[i, k] += ci * W[j, k]
                    gW[j, k] += ci * W[i, k]
                radial[i] += coef * sn * nj
                radial[j] += coef * sn * ni
        for l in range(M):
            nl = nt[l]
            if nl == 0.0:
                continue
            dot = 0.0
            for k in range(d):
                dot += W[i, k] * TW[l, k]
            pmt, sn, kap = _angle_terms(dot, ni, nl)
            st += ai * Ta[l] * kap
            if want_grad:
                ga[i] -= c * Ta[l] * kap
                coef = c * ai * Ta[l] * INV_2PI
                cl = coef * pmt
                for k in range(d):
                    gW[i, k] -= cl * TW[l, k]
                radial[i] -= coef * sn * nl
    if want_grad:
        for i in range(m):
            if nw[i] > 0.0:
                r = radial[i] / nw[i]
                for k in range(d):
                    gW[i, k] = scale * (gW[i, k] + r * W[i, k])
                ga[i] *= scale
    return scale * (0.5 * c2 * ss - c * st + tt)


@njit(cache=True, parallel=True)
def _path_losses(WA, aA, cA, WB, aB, cB, ts, TW, Ta, tt, scale):
    """Population loss along (1 - t) A + t B for each t in ts -> (len(ts),)."""
    G = ts.shape[0]
    out = np.empty(G)
    dummyW = np.empty((1, 1))
    dummya = np.empty(1)
    for g in prange(G):
        t = ts[g]
        W = (1.0 - t) * WA + t * WB
        a = (1.0 - t) * aA + t * aB
        c = (1.0 - t) * cA + t * cB
        out[g] = _loss_grad(W, a, c, TW, Ta, tt, scale, False, dummyW, dummya)
    return out
