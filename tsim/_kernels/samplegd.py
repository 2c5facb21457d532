"""Numba kernels: GD and minibatch SGD on the empirical squared loss for an ensemble.

Per step, on a batch Xb (b, d), yb (b,): H = Xb W^T, f = c relu(H) a, r = f - yb,
L = 1/(2b) sum r^2, dL/da = c/b relu(H)^T r, dL/dW = (c/b) ((r a^T) * 1[H > 0])^T Xb.
Two (b x d x m) products: 4 b m d flops per step (plus O(b m)); the third product of a
network's backward pass, the gradient with respect to the inputs, is not needed.

The batch is processed in blocks of B samples so that the (B, m) activations stay in cache.
Two code paths, chosen by the shapes only (so a student's numbers never depend on the ensemble
size or the thread count):
- small m d ("hand" path): loops vectorised over the samples of a block, W^T X^T layout,
  no BLAS call; students run on Python threads (the kernel releases the GIL).
- large m d ("blas" path): the two products of each block are BLAS GEMMs (np.dot into
  preallocated buffers); students run one after another and BLAS uses the threads.
"""
import math

import numpy as np
from numba import njit

from .arccos import FM
from . import frozen, parallel_for
from .steps import _checkpoint, _diverged, _gd_update, _outputs, _stopped

BLAS_MIN_MD = 8192  # m * d from which the two products go to BLAS
HAND_BLOCK = 8192  # doubles of activations per block on the hand path


@njit(cache=True, inline="always")
def _splitmix64(state):
    """One step of splitmix64: returns (new state, 64-bit output) as uint64."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True)
def _block_size(m, use_blas):
    """Samples per block (from the shapes only): on the hand path the (m, B) activations take
    about 64 KiB (L1/L2); BLAS blocks have 256 rows so that the GEMMs run near peak."""
    if use_blas:
        return 256
    return max(32, min(1024, (HAND_BLOCK // max(m, 1)) // 8 * 8))


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _fwd4(W, XT, p0, B, j, H):
    """H[j + q, :B] = W[j + q] . x_p for q < 4: 4 neurons x 4 inputs per pass (register blocking)."""
    d = W.shape[1]
    h0 = H[j, :B]
    h1 = H[j + 1, :B]
    h2 = H[j + 2, :B]
    h3 = H[j + 3, :B]
    x = XT[0, p0:p0 + B]
    u0, u1, u2, u3 = W[j, 0], W[j + 1, 0], W[j + 2, 0], W[j + 3, 0]
    for t in range(B):
        xv = x[t]
        h0[t] = u0 * xv
        h1[t] = u1 * xv
        h2[t] = u2 * xv
        h3[t] = u3 * xv
    k = 1
    while k + 4 <= d:
        x0 = XT[k, p0:p0 + B]
        x1 = XT[k + 1, p0:p0 + B]
        x2 = XT[k + 2, p0:p0 + B]
        x3 = XT[k + 3, p0:p0 + B]
        a00, a01, a02, a03 = W[j, k], W[j, k + 1], W[j, k + 2], W[j, k + 3]
        a10, a11, a12, a13 = W[j + 1, k], W[j + 1, k + 1], W[j + 1, k + 2], W[j + 1, k + 3]
        a20, a21, a22, a23 = W[j + 2, k], W[j + 2, k + 1], W[j + 2, k + 2], W[j + 2, k + 3]
        a30, a31, a32, a33 = W[j + 3, k], W[j + 3, k + 1], W[j + 3, k + 2], W[j + 3, k + 3]
        for t in range(B):
            v0 = x0[t]
            v1 = x1[t]
            v2 = x2[t]
            v3 = x3[t]
            h0[t] += a00 * v0 + a01 * v1 + a02 * v2 + a03 * v3
            h1[t] += a10 * v0 + a11 * v1 + a12 * v2 + a13 * v3
            h2[t] += a20 * v0 + a21 * v1 + a22 * v2 + a23 * v3
            h3[t] += a30 * v0 + a31 * v1 + a32 * v2 + a33 * v3
        k += 4
    while k < d:
        x = XT[k, p0:p0 + B]
        u0, u1, u2, u3 = W[j, k], W[j + 1, k], W[j + 2, k], W[j + 3, k]
        for t in range(B):
            xv = x[t]
            h0[t] += u0 * xv
            h1[t] += u1 * xv
            h2[t] += u2 * xv
            h3[t] += u3 * xv
        k += 1


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _fwd1(W, XT, p0, B, j, H):
    """H[j, :B] = W[j] . x_p."""
    d = W.shape[1]
    h = H[j, :B]
    w = W[j]
    x0 = XT[0, p0:p0 + B]
    w0 = w[0]
    for t in range(B):
        h[t] = w0 * x0[t]
    k = 1
    while k + 4 <= d:
        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        x0 = XT[k, p0:p0 + B]
        x1 = XT[k + 1, p0:p0 + B]
        x2 = XT[k + 2, p0:p0 + B]
        x3 = XT[k + 3, p0:p0 + B]
        for t in range(B):
            h[t] += w0 * x0[t] + w1 * x1[t] + w2 * x2[t] + w3 * x3[t]
        k += 4
    while k < d:
        w0 = w[k]
        x0 = XT[k, p0:p0 + B]
        for t in range(B):
            h[t] += w0 * x0[t]
        k += 1


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _bwd4(XT, p0, B, j, H, gW):
    """gW[j + q, k] += sum_t H[j + q, t] x_t[k] for q < 4, k < d (H holds the back-propagated D)."""
    d = gW.shape[1]
    h0 = H[j, :B]
    h1 = H[j + 1, :B]
    h2 = H[j + 2, :B]
    h3 = H[j + 3, :B]
    k = 0
    while k + 4 <= d:
        x0 = XT[k, p0:p0 + B]
        x1 = XT[k + 1, p0:p0 + B]
        x2 = XT[k + 2, p0:p0 + B]
        x3 = XT[k + 3, p0:p0 + B]
        s00 = s01 = s02 = s03 = 0.0
        s10 = s11 = s12 = s13 = 0.0
        s20 = s21 = s22 = s23 = 0.0
        s30 = s31 = s32 = s33 = 0.0
        for t in range(B):
            v0 = x0[t]
            v1 = x1[t]
            v2 = x2[t]
            v3 = x3[t]
            e0 = h0[t]
            e1 = h1[t]
            e2 = h2[t]
            e3 = h3[t]
            s00 += e0 * v0
            s01 += e0 * v1
            s02 += e0 * v2
            s03 += e0 * v3
            s10 += e1 * v0
            s11 += e1 * v1
            s12 += e1 * v2
            s13 += e1 * v3
            s20 += e2 * v0
            s21 += e2 * v1
            s22 += e2 * v2
            s23 += e2 * v3
            s30 += e3 * v0
            s31 += e3 * v1
            s32 += e3 * v2
            s33 += e3 * v3
        gW[j, k] += s00
        gW[j, k + 1] += s01
        gW[j, k + 2] += s02
        gW[j, k + 3] += s03
        gW[j + 1, k] += s10
        gW[j + 1, k + 1] += s11
        gW[j + 1, k + 2] += s12
        gW[j + 1, k + 3] += s13
        gW[j + 2, k] += s20
        gW[j + 2, k + 1] += s21
        gW[j + 2, k + 2] += s22
        gW[j + 2, k + 3] += s23
        gW[j + 3, k] += s30
        gW[j + 3, k + 1] += s31
        gW[j + 3, k + 2] += s32
        gW[j + 3, k + 3] += s33
        k += 4
    while k < d:
        x0 = XT[k, p0:p0 + B]
        s0 = s1 = s2 = s3 = 0.0
        for t in range(B):
            v0 = x0[t]
            s0 += h0[t] * v0
            s1 += h1[t] * v0
            s2 += h2[t] * v0
            s3 += h3[t] * v0
        gW[j, k] += s0
        gW[j + 1, k] += s1
        gW[j + 2, k] += s2
        gW[j + 3, k] += s3
        k += 1


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _bwd1(XT, p0, B, j, H, gW):
    """gW[j, k] += sum_t H[j, t] x_t[k]."""
    d = gW.shape[1]
    h = H[j, :B]
    k = 0
    while k + 4 <= d:
        x0 = XT[k, p0:p0 + B]
        x1 = XT[k + 1, p0:p0 + B]
        x2 = XT[k + 2, p0:p0 + B]
        x3 = XT[k + 3, p0:p0 + B]
        s0 = s1 = s2 = s3 = 0.0
        for t in range(B):
            ht = h[t]
            s0 += ht * x0[t]
            s1 += ht * x1[t]
            s2 += ht * x2[t]
            s3 += ht * x3[t]
        gW[j, k] += s0
        gW[j, k + 1] += s1
        gW[j, k + 2] += s2
        gW[j, k + 3] += s3
        k += 4
    while k < d:
        x0 = XT[k, p0:p0 + B]
        s0 = 0.0
        for t in range(B):
            s0 += h[t] * x0[t]
        gW[j, k] += s0
        k += 1


@njit(cache=True, error_model="numpy", fastmath=FM)
def _block_hand(W, a, c, XT, y, p0, B, inv_b, want_grad, H, f, gW, ga):
    """Sum over samples p0..p0+B-1 of r_p^2 (r = c relu(W x_p) . a - y_p), and gradient parts.

    XT (d, n) holds the inputs as columns; H (m, >= B) and f (>= B,) are scratch.
    gW (m, d), ga (m,) get (c/b) sum_p r_p a_j 1[h_pj > 0] x_p and (c/b) sum_p r_p relu(h_pj).
    Loops run over the B samples (contiguous), register-blocked 4 neurons x 4 inputs.
    """
    m, d = W.shape
    m4 = m - m % 4
    fv = f[:B]
    yv = y[p0:p0 + B]
    for t in range(B):
        fv[t] = 0.0
    for j in range(0, m4, 4):
        _fwd4(W, XT, p0, B, j, H)
    for j in range(m4, m):
        _fwd1(W, XT, p0, B, j, H)
    for j in range(m):
        h = H[j, :B]
        aj = a[j]
        for t in range(B):
            fv[t] += aj * max(h[t], 0.0)
    loss = 0.0
    cb = c * inv_b
    for t in range(B):
        r = c * fv[t] - yv[t]
        loss += r * r
        fv[t] = cb * r
    if want_grad:
        for j in range(m):
            h = H[j, :B]
            aj = a[j]
            gaj = 0.0
            for t in range(B):
                ht = h[t]
                pos = ht > 0.0
                gaj += fv[t] * (ht if pos else 0.0)
                h[t] = fv[t] * aj if pos else 0.0
            ga[j] += gaj
        for j in range(0, m4, 4):
            _bwd4(XT, p0, B, j, H, gW)
        for j in range(m4, m):
            _bwd1(XT, p0, B, j, H, gW)
    return loss


@njit(cache=True, error_model="numpy", fastmath=FM)
def _block_blas(W, a, c, Xr, y, p0, B, inv_b, want_grad, H, f, gW, ga, G):
    """:func:`_block_hand` with the two products as BLAS calls; Xr (n, d) row-major,
    H (>= B, m) scratch, G (m, d) scratch."""
    m, d = W.shape
    Xb = Xr[p0:p0 + B]
    Hb = H[:B]
    np.dot(Xb, W.T, Hb)
    fv = f[:B]
    yv = y[p0:p0 + B]
    loss = 0.0
    cb = c * inv_b
    for p in range(B):
        hp = Hb[p]
        s = 0.0
        for j in range(m):
            s += a[j] * max(hp[j], 0.0)
        r = c * s - yv[p]
        loss += r * r
        fv[p] = cb * r
    if want_grad:
        for p in range(B):
            hp = Hb[p]
            cr = fv[p]
            for j in range(m):
                ht = hp[j]
                pos = ht > 0.0
                ga[j] += cr * (ht if pos else 0.0)
                hp[j] = cr * a[j] if pos else 0.0
        np.dot(Hb.T, Xb, G)
        for j in range(m):
            for k in range(d):
                gW[j, k] += G[j, k]
    return loss


@njit(cache=True, error_model="numpy", fastmath=FM)
def _loss_grad_set(W, a, c, XT, Xr, y, want_grad, use_blas, H, f, gW, ga, G):
    """Loss 1/(2b) sum_p r_p^2 over all b samples of (XT (d, b) or Xr (b, d), y (b,)), and the
    gradient into gW, ga when want_grad. Blocks of :func:`_block_size` samples, summed in order."""
    m = W.shape[0]
    b = y.shape[0]
    B = _block_size(m, use_blas)
    inv_b = 1.0 / b
    if want_grad:
        gW[:, :] = 0.0
        ga[:] = 0.0
    loss = 0.0
    for p0 in range(0, b, B):
        nb = min(B, b - p0)
        if use_blas:
            loss += _block_blas(W, a, c, Xr, y, p0, nb, inv_b, want_grad, H, f, gW, ga, G)
        else:
            loss += _block_hand(W, a, c, XT, y, p0, nb, inv_b, want_grad, H, f, gW, ga)
    return 0.5 * loss * inv_b


@njit(cache=True, error_model="numpy", fastmath=FM)
def _draw_batch(X, y, state, Xr, XT, yb, use_blas):
    """Fill the minibatch (rows of X drawn with replacement by splitmix64); returns the state."""
    n, d = X.shape
    b = yb.shape[0]
    for p in range(b):
        state, z = _splitmix64(state)
        idx = np.int64(z % np.uint64(n))
        if use_blas:
            for k in range(d):
                Xr[p, k] = X[idx, k]
        else:
            for k in range(d):
                XT[k, p] = X[idx, k]
        yb[p] = y[idx]
    return state


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FM)
def _train_one(e, W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup, record_every,
               ckpt_steps, ckW, cka, status, done, final, curve, use_blas):
    E, m, d = W.shape
    n = X.shape[1]
    full = batch >= n
    b = n if full else batch
    B = _block_size(m, use_blas)
    gW = np.empty((m, d))
    ga = np.empty(m)
    G = np.empty((m, d))
    H = np.empty((B, m)) if use_blas else np.empty((m, B))
    f = np.empty(B)
    Xe = X[e]
    ye = y[e]
    XT = np.empty((1, 1))
    if not use_blas:
        XT = np.ascontiguousarray(Xe.T)
    XbT = np.empty((1, 1))
    Xbr = np.empty((1, 1))
    if not full:
        if use_blas:
            Xbr = np.empty((b, d))
        else:
            XbT = np.empty((d, b))
    yb = np.empty(b)
    We = W[e]
    ae = a[e]
    Wp = We.copy()
    ap = ae.copy()
    state = seeds[e]
    kc = 0
    last = math.nan
    for s in range(steps + 1):
        need_full = full or s % record_every == 0 or s == steps
        loss = math.nan
        if need_full:
            # no gradient at the last step (nothing follows it)
            loss = _loss_grad_set(We, ae, c, XT, Xe, ye, full and s < steps, use_blas, H, f, gW, ga, G)
            bad = not math.isfinite(loss) or loss > blowup
        else:
            state = _draw_batch(Xe, ye, state, Xbr, XbT, yb, use_blas)
            # `not full` is True here; a run-time value, not the constant (Literal[bool]: one more variant)
            bl = _loss_grad_set(We, ae, c, XbT, Xbr, yb, not full, use_blas, H, f, gW, ga, G)
            bad = not math.isfinite(bl) or bl > blowup
        if bad:
            _diverged(e, s, last, We, ae, Wp, ap, status, done, final)
            return
        if need_full:
            last = loss
            if s % record_every == 0:
                curve[e, s // record_every] = loss
        kc = _checkpoint(e, s, kc, ckpt_steps, We, ae, ckW, cka)
        if need_full and _stopped(e, s, loss, tol, steps, status, done, final):
            return
        if need_full and not full:
            # the full pass gave the loss only: take this step on a fresh minibatch
            state = _draw_batch(Xe, ye, state, Xbr, XbT, yb, use_blas)
            _loss_grad_set(We, ae, c, XbT, Xbr, yb, not full, use_blas, H, f, gW, ga, G)
        _gd_update(We, ae, Wp, ap, gW, ga, lr[e], train_a)


def _train_samples(W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup,
                   record_every, ckpt_steps, ckW, cka):
    """GD (batch == n) or SGD (batch < n, sampling with replacement) for each student, in place.

    W (E, m, d), a (E, m), X (E, n, d), y (E, n), lr (E,), seeds (E,) uint64.
    The recorded/returned loss is the full training loss. Status, divergence and checkpoints
    as in ``_train_population``. Returns (status, steps_done, final loss, curve).
    Students on Python threads with hand loops when m d < BLAS_MIN_MD (the kernel releases the
    GIL), else one after another with threaded BLAS (a plain-Python dispatcher on the shapes only;
    no prange, whose parallel compilation costs seconds on a cold cache).
    """
    E, m, d = W.shape
    use_blas = m * d >= BLAS_MIN_MD
    out = _outputs(E, steps, record_every)
    X, y = frozen(X), frozen(y)  # read only: one compiled variant whether or not they were shared

    def student(e):
        _train_one(e, W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup, record_every, ckpt_steps,
                   ckW, cka, *out, use_blas)

    if use_blas:  # BLAS uses the threads
        for e in range(E):
            student(e)
    else:
        parallel_for(student, E)
    return out
