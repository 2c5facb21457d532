"""Numba kernels of the barrier-aware local search over permutations (private, no validation).

Path. Neuron i of the interpolated net at time t pairs neuron i of A with neuron q = perm[i] of B:
u_i(t) = (1 - t) w^A_i + t w^B_q,  b_i(t) = (1 - t) a^A_i + t a^B_q,  c(t) = (1 - t) c_A + t c_B.
Its population loss (times ``scale``: 1 Gaussian, 1/d sphere) is

    L_t = scale (1/2 c^2 Q_t - c H_t + E*),   Q_t = sum_ij b_i b_j kappa(u_i, u_j),
    H_t = sum_i b_i h(u_i),  h(u) = sum_k a*_k kappa(u, w*_k),

and the excess e_t = L_t - ((1 - t) L_A + t L_B); the barrier is max_t e_t (>= 0: e = 0 at t = 0, 1).

Inner products without vectors. With the Gram matrices AA = W_A W_A^T, AB = W_A W_B^T,
BB = W_B W_B^T (t-free, m x m) and the permuted copies ABp[i, j] = AB[i, perm[j]],
BBp[q, j] = BB[q, perm[j]], BAt = AB^T, the inner product of a candidate neuron (i, q) with the
current neuron j is

    <u_(i,q), u_j> = (1 - t)^2 AA[i, j] + t (1 - t) (ABp[i, j] + BAt[q, j]) + t^2 BBp[q, j],

so every kernel value costs O(1) (no O(d) dot product) and every loop reads contiguous rows.

State per t-point g (shape (G, m)): norms nr, inverse norms iv (0 for a zero neuron), b, hb = b h,
row sums R[g, i] = sum_j b_i b_j kappa(u_i, u_j) (diagonal included: kappa(u, u) = |u|^2 / 2), and
the excess e[g]. A swap of the partners of rows i and k replaces two neurons, so with S = {i, k}

    dQ = 2 (r_I + r_K - R_i - R_k) + K_ii + K_kk + 2 K_ik + K_II + K_KK + 2 K_IK,

r_I = b_I sum_{j not in S} b_j kappa(u_I, u_j) (I, K the new neurons), an O(m) update per t; an
accepted swap updates every R[g, j] in O(m) per t the same way. Memory O(m^2 + G m).
"""
import math

import numpy as np
from numba import njit

from .arccos import FM, INV_2PI, _pmt_sn


@njit(cache=True, error_model="numpy", fastmath=FM)
def _kap(dot, n1, inv1, n2, inv2):
    """kappa from an inner product and the two norms (inv = 1 / norm, 0 for a zero vector)."""
    cs = dot * (inv1 * inv2)
    cs = min(max(cs, -1.0), 1.0)
    pmt, sn = _pmt_sn(cs)
    return n1 * n2 * (sn + pmt * cs) * INV_2PI


@njit(cache=True, error_model="numpy", fastmath=FM)
def _norm_inv(sq):
    n = math.sqrt(max(sq, 0.0))
    return n, (1.0 / n if n > 0.0 else 0.0)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _teacher_term(t, i, q, n, inv, TA, TB, tn, tinv, Ta):
    """h(u_(i,q)) = sum_k a*_k kappa(u, w*_k), <u, w*_k> = (1 - t) TA[i, k] + t TB[q, k]."""
    h = 0.0
    for k in range(tn.shape[0]):
        h += Ta[k] * _kap((1.0 - t) * TA[i, k] + t * TB[q, k], n, inv, tn[k], tinv[k])
    return h


@njit(cache=True, error_model="numpy", fastmath=FM)
def _candidate(t, i, q, AA, AB, BB, aA, aB):
    """(norm, inverse norm, b) of the neuron pairing row i of A with row q of B at time t."""
    s1 = 1.0 - t
    sq = s1 * s1 * AA[i, i] + 2.0 * s1 * t * AB[i, q] + t * t * BB[q, q]
    n, inv = _norm_inv(sq)
    return n, inv, s1 * aA[i] + t * aB[q]


@njit(cache=True, error_model="numpy", fastmath=FM)
def _rows(t, i, q, AA, ABp, BAt, BBp, pa, pb):
    """pa + pb = <u_(i,q), u_j> for every current neuron j (pa from A's row i, pb from B's row q)."""
    s1 = 1.0 - t
    a2, bt, g2 = s1 * s1, s1 * t, t * t
    m = pa.shape[0]
    for j in range(m):
        pa[j] = a2 * AA[i, j] + bt * ABp[i, j]
        pb[j] = bt * BAt[q, j] + g2 * BBp[q, j]


@njit(cache=True, error_model="numpy", fastmath=FM)
def _build(ts, perm, AA, AB, BB, ABp, BAt, BBp, TA, TB, tn, tinv, Ta, aA, aB, cA, cB, scale, energy, line,
           nr, iv, b, hb, R, e, pa, pb):
    """Fill the state (nr, iv, b, hb, R: (G, m); e: (G,)) of the current perm from scratch."""
    G = ts.shape[0]
    m = perm.shape[0]
    for g in range(G):
        t = ts[g]
        for j in range(m):
            nr[g, j], iv[g, j], b[g, j] = _candidate(t, j, perm[j], AA, AB, BB, aA, aB)
            hb[g, j] = b[g, j] * _teacher_term(t, j, perm[j], nr[g, j], iv[g, j], TA, TB, tn, tinv, Ta)
        for i in range(m):
            _rows(t, i, perm[i], AA, ABp, BAt, BBp, pa, pb)
            s = 0.0
            for j in range(m):
                s += b[g, j] * _kap(pa[j] + pb[j], nr[g, i], iv[g, i], nr[g, j], iv[g, j])
            R[g, i] = b[g, i] * s
        e[g] = _excess(ts[g], R[g], hb[g], cA, cB, scale, energy, line[g])


@njit(cache=True, error_model="numpy", fastmath=FM)
def _excess(t, Rg, hbg, cA, cB, scale, energy, lineg):
    c = (1.0 - t) * cA + t * cB
    return scale * (0.5 * c * c * Rg.sum() - c * hbg.sum() + energy) - lineg


@njit(cache=True, error_model="numpy", fastmath=FM)
def _swap_delta(g, t, i, k, pI, qI, pK, qK, perm, AA, AB, BB, TA, TB, tn, tinv, Ta, aA, aB, cA, cB, scale,
                nr, iv, b, hb, R):
    """Change of e[g] when rows i and k exchange their partners in B.

    pI + qI, pK + qK: inner products of the two new neurons with every current neuron (from
    :func:`_rows`). b[g, i] and b[g, k] are read, then zeroed while the rows are summed (the
    old neurons leave), then restored.
    """
    pi, pk = perm[i], perm[k]
    qi, qk = pk, pi  # new partners
    nI, invI, bI = _candidate(t, i, qi, AA, AB, BB, aA, aB)
    nK, invK, bK = _candidate(t, k, qk, AA, AB, BB, aA, aB)
    bi, bk = b[g, i], b[g, k]
    b[g, i] = 0.0
    b[g, k] = 0.0
    bg, ng, ig = b[g], nr[g], iv[g]
    sI = 0.0
    sK = 0.0
    for j in range(perm.shape[0]):
        sI += bg[j] * _kap(pI[j] + qI[j], nI, invI, ng[j], ig[j])
        sK += bg[j] * _kap(pK[j] + qK[j], nK, invK, ng[j], ig[j])
    b[g, i] = bi
    b[g, k] = bk
    s1 = 1.0 - t
    a2, bt, g2 = s1 * s1, s1 * t, t * t
    KIK = bI * bK * _kap(a2 * AA[i, k] + bt * (AB[i, qk] + AB[k, qi]) + g2 * BB[qi, qk], nI, invI, nK, invK)
    Kik = bi * bk * _kap(a2 * AA[i, k] + bt * (AB[i, pk] + AB[k, pi]) + g2 * BB[pi, pk], ng[i], ig[i], ng[k],
                         ig[k])
    diag = 0.5 * (bi * bi * ng[i] * ng[i] + bk * bk * ng[k] * ng[k] + bI * bI * nI * nI + bK * bK * nK * nK)
    dQ = 2.0 * (bI * sI + bK * sK - R[g, i] - R[g, k]) + diag + 2.0 * (Kik + KIK)
    hI = _teacher_term(t, i, qi, nI, invI, TA, TB, tn, tinv, Ta)
    hK = _teacher_term(t, k, qk, nK, invK, TA, TB, tn, tinv, Ta)
    dH = bI * hI + bK * hK - hb[g, i] - hb[g, k]
    c = (1.0 - t) * cA + t * cB
    return scale * (0.5 * c * c * dQ - c * dH)


@njit(cache=True, error_model="numpy", fastmath=FM)
def _apply_swap(g, t, i, k, perm, AA, AB, BB, ABp, BAt, BBp, TA, TB, tn, tinv, Ta, aA, aB, cA, cB, scale, energy,
                line, nr, iv, b, hb, R, e, pI, qI, pK, qK, po, qo):
    """Update the state at t-point g for the swap of rows i, k (perm not yet swapped), O(m)."""
    m = perm.shape[0]
    pi, pk = perm[i], perm[k]
    qi, qk = pk, pi
    nI, invI, bI = _candidate(t, i, qi, AA, AB, BB, aA, aB)
    nK, invK, bK = _candidate(t, k, qk, AA, AB, BB, aA, aB)
    _rows(t, i, qi, AA, ABp, BAt, BBp, pI, qI)
    _rows(t, k, qk, AA, ABp, BAt, BBp, pK, qK)
    bi, bk = b[g, i], b[g, k]
    sI = 0.0
    sK = 0.0
    _rows(t, i, pi, AA, ABp, BAt, BBp, po, qo)  # old neuron i
    for j in range(m):
        if j == i or j == k:
            continue
        kI = _kap(pI[j] + qI[j], nI, invI, nr[g, j], iv[g, j])
        kK = _kap(pK[j] + qK[j], nK, invK, nr[g, j], iv[g, j])
        sI += b[g, j] * kI
        sK += b[g, j] * kK
        R[g, j] += b[g, j] * (bI * kI + bK * kK - bi * _kap(po[j] + qo[j], nr[g, i], iv[g, i], nr[g, j], iv[g, j]))
    _rows(t, k, pk, AA, ABp, BAt, BBp, po, qo)  # old neuron k
    for j in range(m):
        if j == i or j == k:
            continue
        R[g, j] -= b[g, j] * bk * _kap(po[j] + qo[j], nr[g, k], iv[g, k], nr[g, j], iv[g, j])
    s1 = 1.0 - t
    KIK = bI * bK * _kap(s1 * s1 * AA[i, k] + s1 * t * (AB[i, qk] + AB[k, qi]) + t * t * BB[qi, qk], nI, invI, nK,
                         invK)
    R[g, i] = bI * sI + 0.5 * bI * bI * nI * nI + KIK
    R[g, k] = bK * sK + 0.5 * bK * bK * nK * nK + KIK
    nr[g, i], iv[g, i], b[g, i] = nI, invI, bI
    nr[g, k], iv[g, k], b[g, k] = nK, invK, bK
    hb[g, i] = bI * _teacher_term(t, i, qi, nI, invI, TA, TB, tn, tinv, Ta)
    hb[g, k] = bK * _teacher_term(t, k, qk, nK, invK, TA, TB, tn, tinv, Ta)
    e[g] = _excess(t, R[g], hb[g], cA, cB, scale, energy, line[g])


@njit(cache=True, error_model="numpy", fastmath=FM)
def _swap_columns(perm, ABp, BBp, BB, AB, i, k):
    m = perm.shape[0]
    pi = perm[i]
    perm[i] = perm[k]
    perm[k] = pi
    for r in range(m):
        ABp[r, i] = AB[r, perm[i]]
        ABp[r, k] = AB[r, perm[k]]
        BBp[r, i] = BB[r, perm[i]]
        BBp[r, k] = BB[r, perm[k]]


@njit(cache=True, error_model="numpy", fastmath=FM)
def _peak(e):
    """(max, argmax) of e over the interior t-points 1..G-2, and the interior order by e, descending.

    A stable insertion sort (G is small; np.argsort would cost seconds of compilation).
    """
    order = np.arange(1, e.shape[0] - 1)
    for p in range(1, order.shape[0]):
        g = order[p]
        q = p
        while q > 0 and e[order[q - 1]] < e[g]:
            order[q] = order[q - 1]
            q -= 1
        order[q] = g
    return e[order[0]], order[0], order


@njit(cache=True, error_model="numpy", fastmath=FM)
def _fill_pair_rows(t, AA, ABp, BAt, BBp, PA, PB):
    """PA[i, j] + PB[q, j] = <u_(i,q), u_j> at time t for all i, q, j (two m x m tables)."""
    m = PA.shape[0]
    s1 = 1.0 - t
    a2, bt, g2 = s1 * s1, s1 * t, t * t
    for i in range(m):
        for j in range(m):
            PA[i, j] = a2 * AA[i, j] + bt * ABp[i, j]
            PB[i, j] = bt * BAt[i, j] + g2 * BBp[i, j]


@njit(cache=True, error_model="numpy", fastmath=FM)
def _sweep(ts, perm, AA, AB, BB, TA, TB, tn, Ta, aA, aB, cA, cB, scale, energy, line, tol):
    """One first-improvement pass over all pairs i < k; perm is updated in place.

    A swap is accepted when it lowers max over interior t of e_t by more than ``tol``: it must
    lower e at the current peak t-point g* (tested first, O(m), with the tables PA, PB of g*),
    and keep every other e_g below the old max minus tol (t-points tested by decreasing e, so a
    failing candidate usually stops at the first). Returns (swaps accepted, peak excess after).
    """
    G = ts.shape[0]
    m = perm.shape[0]
    if G < 3 or m < 2:
        return 0, 0.0
    BAt = np.ascontiguousarray(AB.T)
    ABp = np.empty((m, m))
    BBp = np.empty((m, m))
    for r in range(m):
        for j in range(m):
            ABp[r, j] = AB[r, perm[j]]
            BBp[r, j] = BB[r, perm[j]]
    tinv = np.zeros(tn.shape[0])
    for l in range(tn.shape[0]):
        if tn[l] > 0.0:
            tinv[l] = 1.0 / tn[l]
    nr = np.empty((G, m))
    iv = np.empty((G, m))
    b = np.empty((G, m))
    hb = np.empty((G, m))
    R = np.empty((G, m))
    e = np.empty(G)
    pI, qI, pK, qK, po, qo = (np.empty(m), np.empty(m), np.empty(m), np.empty(m), np.empty(m), np.empty(m))
    _build(ts, perm, AA, AB, BB, ABp, BAt, BBp, TA, TB, tn, tinv, Ta, aA, aB, cA, cB, scale, energy, line,
           nr, iv, b, hb, R, e, pI, qI)
    E, gs, order = _peak(e)
    if E <= tol:
        return 0, E
    PA = np.empty((m, m))
    PB = np.empty((m, m))
    _fill_pair_rows(ts[gs], AA, ABp, BAt, BBp, PA, PB)
    accepted = 0
    for i in range(m - 1):
        for k in range(i + 1, m):
            d = _swap_delta(gs, ts[gs], i, k, PA[i], PB[perm[k]], PA[k], PB[perm[i]], perm, AA, AB, BB, TA, TB,
                            tn, tinv, Ta, aA, aB, cA, cB, scale, nr, iv, b, hb, R)
            if not d < -tol:
                continue
            ok = True
            for g in order:
                if g == gs:
                    continue
                t = ts[g]
                _rows(t, i, perm[k], AA, ABp, BAt, BBp, pI, qI)
                _rows(t, k, perm[i], AA, ABp, BAt, BBp, pK, qK)
                dg = _swap_delta(g, t, i, k, pI, qI, pK, qK, perm, AA, AB, BB, TA, TB, tn, tinv, Ta, aA, aB, cA,
                                 cB, scale, nr, iv, b, hb, R)
                if not e[g] + dg < E - tol:
                    ok = False
                    break
            if not ok:
                continue
            for g in range(1, G - 1):
                _apply_swap(g, ts[g], i, k, perm, AA, AB, BB, ABp, BAt, BBp, TA, TB, tn, tinv, Ta, aA, aB, cA, cB,
                            scale, energy, line, nr, iv, b, hb, R, e, pI, qI, pK, qK, po, qo)
            _swap_columns(perm, ABp, BBp, BB, AB, i, k)
            accepted += 1
            E, gs, order = _peak(e)
            if E <= tol:
                return accepted, E
            _fill_pair_rows(ts[gs], AA, ABp, BAt, BBp, PA, PB)
    return accepted, E
