"""Numba kernels for the Gaussian arc-cosine kernel and the exact population loss.

kappa(u, v) = E_{x~N(0,I)}[relu(u.x) relu(v.x)] = |u||v| (sin t + (pi - t) cos t) / (2 pi),
d kappa / du = ((pi - t) v + sin t |v| u / |u|) / (2 pi),   t = angle(u, v).
A zero vector gives kappa = 0 and gradient 0 (the relu'(0) = 0 convention).

Layout for speed: the student-student sum runs over pairs i < j (symmetry), one row i at a
time, with every inner loop running over j on contiguous memory (W is used transposed, WT
(d, m)) so that LLVM vectorises it, including the branch-free arccos below. Rows are split into
NC chunks (row p paired with row m - 1 - p, so every chunk has the same work); each chunk owns
its gradient buffers, and the chunks are summed in a fixed order. The serial and the parallel
drivers run the same chunks, so they return bit-identical numbers, whatever the thread count.
"""
import math

import numpy as np
from numba import njit, prange

from . import frozen, parallel_for

INV_2PI = 1.0 / (2.0 * math.pi)
PI = math.pi
PIO2 = 0.5 * math.pi
# reassociation (vectorised sums) and fused multiply-add only: changes results by rounding,
# keeps nan/inf semantics (divergence checks rely on them)
FM = {"reassoc", "contract"}

# asin(s) = s + s R(s^2) on |s| <= 1/2 (fdlibm e_asin.c, error < 1 ulp)
_PS0 = 1.66666666666666657415e-01
_PS1 = -3.25565818622400915405e-01
_PS2 = 2.01212532134862925881e-01
_PS3 = -4.00555345006794114027e-02
_PS4 = 7.91534994289814532176e-04
_PS5 = 3.47933107596021167570e-05
_QS1 = -2.40339491173441421878e+00
_QS2 = 2.02094576023350569471e+00
_QS3 = -6.88283971605453293030e-01
_QS4 = 7.70381505559019352791e-02


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _pmt_sn(cs):
    """(pi - arccos(cs), sqrt(1 - cs^2)) for cs in [-1, 1], branch-free so that loops vectorise.

    pi - arccos(x) = pi/2 + asin(x) for |x| <= 1/2, pi - 2 asin(sqrt((1 - x)/2)) for x > 1/2 and
    2 asin(sqrt((1 + x)/2)) for x < -1/2; asin on [0, 1/2] is fdlibm's rational approximation.
    Relative error a few ulp (< 1e-15); exact 0 at x = -1 and pi at x = 1.
    """
    ax = abs(cs)
    big = ax > 0.5
    zb = 0.5 - 0.5 * ax
    z = zb if big else cs * cs
    s = math.sqrt(zb) if big else ax
    p = z * (_PS0 + z * (_PS1 + z * (_PS2 + z * (_PS3 + z * (_PS4 + z * _PS5)))))
    q = 1.0 + z * (_QS1 + z * (_QS2 + z * (_QS3 + z * _QS4)))
    r = s + s * (p / q)  # asin(s)
    if big:
        pmt = 2.0 * r if cs < 0.0 else PI - 2.0 * r
    else:
        pmt = PIO2 + r if cs >= 0.0 else PIO2 - r
    sn = math.sqrt(max(0.0, 1.0 - cs * cs))
    return pmt, sn


@njit(cache=True, error_model="numpy", fastmath=FM)
def _norms(W):
    m, d = W.shape
    out = np.empty(m)
    for i in range(m):
        s = 0.0
        for k in range(d):
            s += W[i, k] * W[i, k]
        out[i] = math.sqrt(s)
    return out


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _angle_terms(dot, nu, nv):
    """(pi - t, sin t, kappa) for vectors with norms nu, nv > 0 and inner product dot."""
    cs = dot / (nu * nv)
    if cs > 1.0:
        cs = 1.0
    elif cs < -1.0:
        cs = -1.0
    pmt, sn = _pmt_sn(cs)
    kap = nu * nv * (sn + pmt * cs) * INV_2PI
    return pmt, sn, kap


@njit(cache=True, error_model="numpy", fastmath=FM)
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


def kernel_matrix(U, V):
    """:func:`_kernel_matrix` on frozen inputs (one compiled variant)."""
    return _kernel_matrix(frozen(U), frozen(V))


# ---------------------------------------------------------------------------------------------
# population loss and gradient, chunked over row pairs


@njit(cache=True, error_model="numpy", fastmath=FM)
def _n_chunks(m):
    """Number of row chunks for width m (a function of m only, so results never depend on threads)."""
    if m < 256:
        return 1
    return min(8, m // 64)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _workspace(m, d):
    """Scratch for :func:`_loss_grad_ws`: WT (d, m), nw (m,), inv (m,), GT (NC, d, m), V (NC, 4, m), ss (NC,)."""
    NC = _n_chunks(m)
    return (np.empty((d, m)), np.empty(m), np.empty(m), np.empty((NC, d, m)), np.empty((NC, 4, m)),
            np.empty(NC))


@njit(cache=True, error_model="numpy", fastmath=FM)
def _prepare(W, WT, nw, inv):
    """Norms, inverse norms (0 for a zero row) and WT = W^T with zero rows zeroed."""
    m, d = W.shape
    for j in range(m):
        s = 0.0
        for k in range(d):
            s += W[j, k] * W[j, k]
        nw[j] = math.sqrt(s)
    for j in range(m):
        nonzero = nw[j] > 0.0
        inv[j] = 1.0 / nw[j] if nonzero else 0.0
        for k in range(d):
            WT[k, j] = W[j, k] if nonzero else 0.0


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _row_dots(WT, i, j0, dots):
    """dots[t] = <w_i, w_{j0 + t}> for t in [0, m - j0).

    Inner loops index slices from 0 so that indices are provably >= 0 (no wraparound code) and
    LLVM vectorises them; ``range(j0, m)`` with a data-dependent j0 runs several times slower.
    """
    d, m = WT.shape
    L = m - j0
    w0 = WT[0, i]
    r = WT[0, j0:]
    for t in range(L):
        dots[t] = w0 * r[t]
    k = 1
    while k + 4 <= d:  # four inputs per pass: one load/store of dots per 4 multiply-adds
        w0, w1, w2, w3 = WT[k, i], WT[k + 1, i], WT[k + 2, i], WT[k + 3, i]
        r0 = WT[k, j0:]
        r1 = WT[k + 1, j0:]
        r2 = WT[k + 2, j0:]
        r3 = WT[k + 3, j0:]
        for t in range(L):
            dots[t] += w0 * r0[t] + w1 * r1[t] + w2 * r2[t] + w3 * r3[t]
        k += 4
    while k < d:
        wk = WT[k, i]
        r = WT[k, j0:]
        for t in range(L):
            dots[t] += wk * r[t]
        k += 1


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _row_grad(i, WT, nw, inv, a, c2, GT, ga, rad, dots, P):
    """Row i of the pair sum over j > i: returns a_i sum_j a_j kappa_ij, adds gradient parts."""
    d, m = WT.shape
    ni = nw[i]
    j0 = i + 1
    if ni == 0.0 or j0 >= m:
        return 0.0
    L = m - j0
    _row_dots(WT, i, j0, dots)
    ai = a[i]
    invi = inv[i]
    cai = c2 * ai
    crad = cai * ni * INV_2PI
    iv = inv[j0:]
    nv = nw[j0:]
    av = a[j0:]
    gv = ga[j0:]
    rv = rad[j0:]
    rowk = 0.0
    rowr = 0.0
    for t in range(L):
        cs = dots[t] * (invi * iv[t])
        cs = min(max(cs, -1.0), 1.0)
        pmt, sn = _pmt_sn(cs)
        nj = nv[t]
        aj = av[t]
        kap = ni * nj * (sn + pmt * cs) * INV_2PI
        rowk += aj * kap
        gv[t] += cai * kap
        asn = aj * sn
        rowr += asn * nj
        rv[t] += crad * asn
        P[t] = aj * pmt
    ga[i] += c2 * rowk
    cp = cai * INV_2PI
    rad[i] += cp * rowr
    k = 0
    while k + 2 <= d:  # two inputs per pass: P loaded once
        wk0 = cp * WT[k, i]
        wk1 = cp * WT[k + 1, i]
        wr0 = WT[k, j0:]
        wr1 = WT[k + 1, j0:]
        gr0 = GT[k, j0:]
        gr1 = GT[k + 1, j0:]
        s0 = 0.0
        s1 = 0.0
        for t in range(L):
            pj = P[t]
            s0 += pj * wr0[t]
            s1 += pj * wr1[t]
            gr0[t] += pj * wk0
            gr1[t] += pj * wk1
        GT[k, i] += cp * s0
        GT[k + 1, i] += cp * s1
        k += 2
    while k < d:
        wk = cp * WT[k, i]
        wr = WT[k, j0:]
        gr = GT[k, j0:]
        s0 = 0.0
        for t in range(L):
            pj = P[t]
            s0 += pj * wr[t]
            gr[t] += pj * wk
        GT[k, i] += cp * s0
        k += 1
    return ai * rowk


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _row_loss(i, WT, nw, inv, a, dots):
    """a_i sum_{j > i} a_j kappa(w_i, w_j)."""
    d, m = WT.shape
    ni = nw[i]
    j0 = i + 1
    if ni == 0.0 or j0 >= m:
        return 0.0
    L = m - j0
    _row_dots(WT, i, j0, dots)
    invi = inv[i]
    iv = inv[j0:]
    nv = nw[j0:]
    av = a[j0:]
    rowk = 0.0
    for t in range(L):
        cs = dots[t] * (invi * iv[t])
        cs = min(max(cs, -1.0), 1.0)
        pmt, sn = _pmt_sn(cs)
        rowk += av[t] * (ni * nv[t] * (sn + pmt * cs) * INV_2PI)
    return a[i] * rowk


@njit(cache=True, error_model="numpy", fastmath=FM)
def _chunk_rows(ch, NC, m):
    """Rows of chunk ch of NC, in summation order: p, m - 1 - p for p = ch, ch + NC, ... < (m + 1) // 2
    (one call site for the inlined row kernel, which halves the code LLVM compiles)."""
    rows = np.empty(2 * ((m + 1) // 2 - ch + NC - 1) // NC + 2, dtype=np.int64)
    k = 0
    for p in range(ch, (m + 1) // 2, NC):
        rows[k] = p
        k += 1
        if m - 1 - p != p:
            rows[k] = m - 1 - p
            k += 1
    return rows[:k]


@njit(cache=True, error_model="numpy", fastmath=FM)
def _chunk_grad(ch, NC, WT, nw, inv, a, c2, GT, V):
    """Rows p and m - 1 - p for p = ch, ch + NC, ...: their pair sums and gradient parts.

    Returns sum over these rows of a_i sum_{j > i} a_j kappa_ij. GT (d, m) gets the part of
    dL/dW^T along the partners' weights, V[0] the part of dL/da, V[1] the radial coefficients
    (all without the factor ``scale``); V[2], V[3] are scratch.
    """
    d, m = WT.shape
    ga = V[0]
    rad = V[1]
    dots = V[2]
    P = V[3]
    GT[:, :] = 0.0
    ga[:] = 0.0
    rad[:] = 0.0
    ss = 0.0
    for i in _chunk_rows(ch, NC, m):
        ss += _row_grad(i, WT, nw, inv, a, c2, GT, ga, rad, dots, P)
    return ss


@njit(cache=True, error_model="numpy", fastmath=FM)
def _chunk_loss(ch, NC, WT, nw, inv, a, dots):
    """sum over rows p, m - 1 - p (p = ch, ch + NC, ...) of a_i sum_{j > i} a_j kappa(w_i, w_j)."""
    d, m = WT.shape
    ss = 0.0
    for i in _chunk_rows(ch, NC, m):
        ss += _row_loss(i, WT, nw, inv, a, dots)
    return ss


@njit(cache=True, parallel=True, error_model="numpy", fastmath=FM)
def _pairs_parallel(want_grad, WT, nw, inv, a, c2, GT, V, ssc):
    NC = ssc.shape[0]
    for i in prange(NC):
        ch = np.int64(i)  # prange counts in uint64: one int64 signature for the chunk kernels
        if want_grad:
            ssc[ch] = _chunk_grad(ch, NC, WT, nw, inv, a, c2, GT[ch], V[ch])
        else:
            ssc[ch] = _chunk_loss(ch, NC, WT, nw, inv, a, V[ch, 2])


@njit(cache=True, error_model="numpy", fastmath=FM)
def _loss_grad_ws(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga, ws):
    """:func:`_loss_grad` with a workspace from :func:`_workspace`, the row chunks run serially."""
    WT, nw, inv, GT, V, ssc = ws
    _prepare(W, WT, nw, inv)
    NC = ssc.shape[0]
    for ch in range(NC):
        if want_grad:
            ssc[ch] = _chunk_grad(ch, NC, WT, nw, inv, a, c * c, GT[ch], V[ch])
        else:
            ssc[ch] = _chunk_loss(ch, NC, WT, nw, inv, a, V[ch, 2])
    return _assemble(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga, ws)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _loss_grad_ws_rows(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga, ws):
    """:func:`_loss_grad_ws` with the row chunks on threads (bit-identical to the serial run).

    A separate entry rather than a flag: a run-time flag compiles both chains into every caller,
    and the threaded one is needed only for large m with fewer students than threads."""
    WT, nw, inv, GT, V, ssc = ws
    _prepare(W, WT, nw, inv)
    _pairs_parallel(want_grad, WT, nw, inv, a, c * c, GT, V, ssc)
    return _assemble(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga, ws)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _assemble(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga, ws):
    """Finish the loss after the pair sums: the diagonal, the chunk sums in a fixed order, the
    student-teacher terms and the gradient (into gW, ga when want_grad); returns the loss."""
    m, d = W.shape
    M = TW.shape[0]
    WT, nw, inv, GT, V, ssc = ws
    NC = ssc.shape[0]
    c2 = c * c
    ss = 0.0
    for ch in range(NC):
        ss += ssc[ch]
    ss *= 2.0
    dg = 0.0
    for j in range(m):
        dg += a[j] * a[j] * (0.5 * nw[j] * nw[j])
    ss += dg
    # chunk sums (fixed order) into GT[0], V[0, 0] (dL/da), V[0, 1] (radial)
    G0 = GT[0]
    g0 = V[0, 0]
    r0 = V[0, 1]
    if want_grad:
        for ch in range(1, NC):
            Gc = GT[ch]
            for k in range(d):
                for j in range(m):
                    G0[k, j] += Gc[k, j]
            for j in range(m):
                g0[j] += V[ch, 0, j]
                r0[j] += V[ch, 1, j]
    # student-teacher terms, vectorised over students j
    dots = V[0, 2]
    st = 0.0
    for l in range(M):
        nl = 0.0
        for k in range(d):
            nl += TW[l, k] * TW[l, k]
        nl = math.sqrt(nl)
        if nl == 0.0:
            continue
        invl = 1.0 / nl
        tal = Ta[l]
        for j in range(m):
            dots[j] = TW[l, 0] * WT[0, j]
        for k in range(1, d):
            tk = TW[l, k]
            for j in range(m):
                dots[j] += tk * WT[k, j]
        if want_grad:
            P = V[0, 3]
            ctl = c * tal
            cr = ctl * nl * INV_2PI
            stl = 0.0
            for j in range(m):
                cs = dots[j] * (inv[j] * invl)
                cs = min(max(cs, -1.0), 1.0)
                pmt, sn = _pmt_sn(cs)
                aj = a[j]
                kap = nw[j] * nl * (sn + pmt * cs) * INV_2PI
                stl += aj * kap
                g0[j] -= ctl * kap
                r0[j] -= cr * aj * sn
                P[j] = ctl * INV_2PI * aj * pmt
            st += tal * stl
            for k in range(d):
                tk = TW[l, k]
                for j in range(m):
                    G0[k, j] -= P[j] * tk
        else:
            stl = 0.0
            for j in range(m):
                cs = dots[j] * (inv[j] * invl)
                cs = min(max(cs, -1.0), 1.0)
                pmt, sn = _pmt_sn(cs)
                stl += a[j] * (nw[j] * nl * (sn + pmt * cs) * INV_2PI)
            st += tal * stl
    if want_grad:
        for j in range(m):
            nj = nw[j]
            if nj > 0.0:
                aj = a[j]
                r = r0[j] * inv[j] + 0.5 * c2 * aj * aj
                for k in range(d):
                    gW[j, k] = scale * (G0[k, j] + r * W[j, k])
                ga[j] = scale * (g0[j] + c2 * aj * (0.5 * nj * nj))
            else:
                for k in range(d):
                    gW[j, k] = 0.0
                ga[j] = 0.0
    return scale * (0.5 * c2 * ss - c * st + tt)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FM)
def _loss_grad(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga):
    """Population loss L = 1/2 E[(f - f*)^2] (times ``scale``) and, if want_grad, its gradient.

    W (m, d), a (m,), TW (M, d), Ta (M,); tt = 1/2 sum_kl a*_k a*_l kappa(w*_k, w*_l) (unscaled).
    gW (m, d), ga (m,) are overwritten when want_grad. scale = 1 (Gaussian) or 1/d (sphere).
    Called through :func:`loss_grad`, which passes writable arrays only.
    """
    m, d = W.shape
    return _loss_grad_ws(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga, _workspace(m, d))


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FM)
def _loss_grad_rows(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga):
    """:func:`_loss_grad` with the row chunks on threads (same numbers)."""
    m, d = W.shape
    return _loss_grad_ws_rows(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga, _workspace(m, d))


ROWS_THREADED_FROM_M = 1024  # one loss evaluation splits its rows over threads from this width on


def loss_grad(W, a, c, TW, Ta, tt, scale, want_grad, gW, ga):
    """:func:`_loss_grad`, its rows on threads from m = ROWS_THREADED_FROM_M when numba has several
    threads (below, one evaluation takes milliseconds at most, and the threaded chain costs
    seconds to compile) (a plain-Python dispatcher, so that a run compiles only the chain it uses).

    Arrays are passed C-contiguous, float64 and writable (read-only TwoLayer weights are copied,
    O(m d)): one signature per kernel, so a cold cache compiles each chain once."""
    import numba

    threaded = W.shape[0] >= ROWS_THREADED_FROM_M and numba.get_num_threads() > 1
    kernel = _loss_grad_rows if threaded else _loss_grad
    W, a, TW, Ta, gW, ga = (np.require(x, np.float64, "CW") for x in (W, a, TW, Ta, gW, ga))
    return kernel(W, a, float(c), TW, Ta, float(tt), float(scale), bool(want_grad), gW, ga)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FM)
def _path_chunk(WA, aA, cA, WB, aB, cB, ts, TW, Ta, tt, scale, off, out):
    """out[g] = population loss at (1 - ts[g]) A + ts[g] B, serially over g (releases the GIL).

    ``off`` must be False: passed in rather than written as a constant (typed Literal[bool]) so
    that the loss kernel is called with the same types as everywhere else and compiles once."""
    m, d = WA.shape
    ws = _workspace(m, d)
    dummyW = np.empty((1, 1))
    dummya = np.empty(1)
    for g in range(ts.shape[0]):
        t = ts[g]
        W = (1.0 - t) * WA + t * WB
        a = (1.0 - t) * aA + t * aB
        c = (1.0 - t) * cA + t * cB
        out[g] = _loss_grad_ws(W, a, c, TW, Ta, tt, scale, off, dummyW, dummya, ws)


PATH_THREADS_FROM_WORK = 1 << 20  # m^2 d (t-points) from which a path's t-points go to threads


def _path_losses(WA, aA, cA, WB, aB, cB, ts, TW, Ta, tt, scale):
    """Population loss along (1 - t) A + t B for each t in ts -> (len(ts),).

    The t-points are split into contiguous chunks run on threads (:func:`parallel_for`) once the
    path is worth it (m^2 d len(ts) >= PATH_THREADS_FROM_WORK); a small path runs in one call.
    Each t-point's number does not depend on the split."""
    import numba

    WA, aA, WB, aB, ts = (frozen(x) for x in (WA, aA, WB, aB, ts))
    TW, Ta = (np.require(x, np.float64, "CW") for x in (TW, Ta))
    m, d = WA.shape
    G = ts.shape[0]
    out = np.empty(G)
    work = m * m * d * G
    parts = 1 if work < PATH_THREADS_FROM_WORK else min(G, numba.get_num_threads())
    bounds = np.linspace(0, G, parts + 1).astype(np.int64)

    def chunk(k):
        g0, g1 = bounds[k], bounds[k + 1]
        _path_chunk(WA, aA, float(cA), WB, aB, float(cB), ts[g0:g1], TW, Ta, float(tt), float(scale), False,
                    out[g0:g1])

    parallel_for(chunk, parts)
    return out
