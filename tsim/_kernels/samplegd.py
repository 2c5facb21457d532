"""Numba kernels: GD and minibatch SGD on the empirical squared loss for an ensemble.

Per step, on a batch Xb (b, d), yb (b,): H = Xb W^T, f = c relu(H) a, r = f - yb,
L = 1/(2b) sum r^2, dL/da = c/b relu(H)^T r, dL/dW = (c/b) ((r a^T) * 1[H > 0])^T Xb.
Two (b x d x m) products: 4 b m d flops per step (plus O(b m)); the third product of a
network's backward pass, the gradient with respect to the inputs, is not needed.

The batch is processed in blocks of B samples so that the (B, m) activations stay in cache.
Two code paths, chosen by the shapes only (so a student's numbers never depend on the ensemble
size or the thread count):
- small m d ("hand" path): loops vectorised over the samples of a block, W^T X^T layout,
  no BLAS call; students run in parallel (prange over E).
- large m d ("blas" path): the two products of each block are BLAS GEMMs (np.dot into
  preallocated buffers); students run one after another and BLAS uses the threads.
"""
import math

import numpy as np
from numba import njit, prange

from .arccos import FM
from .popgd import STATUS_CONVERGED, STATUS_DIVERGED, STATUS_MAX_STEPS

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


@njit(cache=True, error_model="numpy", fastmath=FM)
def _block_hand(W, a, c, XT, y, p0, B, inv_b, want_grad, H, f, gW, ga):
    """Sum over samples p0..p0+B-1 of r_p^2 (r = c relu(W x_p) . a - y_p), and gradient parts.

    XT (d, n) holds the inputs as columns; H (m, >= B) and f (>= B,) are scratch.
    gW (m, d), ga (m,) get (c/b) sum_p r_p a_j 1[h_pj > 0] x_p and (c/b) sum_p r_p relu(h_pj).
    Loops run over the B samples (contiguous), unrolled by 4 over the input dimension.
    """
    m, d = W.shape
    fv = f[:B]
    yv = y[p0:p0 + B]
    for t in range(B):
        fv[t] = 0.0
    d4 = d - d % 4
    for j in range(m):
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
            k = 0
            while k + 4 <= d4:
                x0 = XT[k, p0:p0 + B]
                x1 = XT[k + 1, p0:p0 + B]
                x2 = XT[k + 2, p0:p0 + B]
                x3 = XT[k + 3, p0:p0 + B]
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
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


@njit(cache=True, error_model="numpy")
def _batch_loss_grad(W, a, c, Xb, yb, want_grad, H, gW, ga):
    """Empirical loss on (Xb (b, d), yb (b,)) and (if want_grad) gradients into gW, ga.

    H is unused (kept for the signature); the path is chosen from m d as in training.
    """
    m, d = W.shape
    b = Xb.shape[0]
    use_blas = m * d >= BLAS_MIN_MD
    B = _block_size(m, use_blas)
    XT = np.ascontiguousarray(Xb.T) if not use_blas else np.empty((1, 1))
    Hs = np.empty((B, m)) if use_blas else np.empty((m, B))
    return _loss_grad_set(W, a, c, XT, Xb, yb, want_grad, use_blas, Hs, np.empty(B), gW, ga,
                          np.empty((m, d)))


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


@njit(cache=True, error_model="numpy", fastmath=FM)
def _train_one(e, W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup, record_every,
               ckpt_steps, ckW, cka, status, done, final, curve, use_blas):
    E, m, d = W.shape
    n = X.shape[1]
    full = batch >= n
    b = n if full else batch
    K = ckpt_steps.shape[0]
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
            loss = _loss_grad_set(We, ae, c, XT, Xe, ye, full, use_blas, H, f, gW, ga, G)
            bad = not math.isfinite(loss) or loss > blowup
        else:
            state = _draw_batch(Xe, ye, state, Xbr, XbT, yb, use_blas)
            bl = _loss_grad_set(We, ae, c, XbT, Xbr, yb, True, use_blas, H, f, gW, ga, G)
            bad = not math.isfinite(bl) or bl > blowup
        if bad:
            status[e] = STATUS_DIVERGED
            We[:, :] = Wp
            ae[:] = ap
            done[e] = max(s - 1, 0)
            final[e] = last
            return
        if need_full:
            last = loss
            if s % record_every == 0:
                curve[e, s // record_every] = loss
        while kc < K and ckpt_steps[kc] == s:
            ckW[e, kc] = We
            cka[e, kc] = ae
            kc += 1
        if need_full and (loss <= tol or s == steps):
            status[e] = STATUS_CONVERGED if loss <= tol else STATUS_MAX_STEPS
            done[e] = s
            final[e] = loss
            return
        if need_full and not full:
            # the full pass gave the loss only: take this step on a fresh minibatch
            state = _draw_batch(Xe, ye, state, Xbr, XbT, yb, use_blas)
            _loss_grad_set(We, ae, c, XbT, Xbr, yb, True, use_blas, H, f, gW, ga, G)
        Wp[:, :] = We
        ap[:] = ae
        lre = lr[e]
        for j in range(m):
            for k in range(d):
                We[j, k] -= lre * gW[j, k]
        if train_a:
            for j in range(m):
                ae[j] -= lre * ga[j]


@njit(cache=True, parallel=True, error_model="numpy")
def _train_samples(W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup,
                   record_every, ckpt_steps, ckW, cka):
    """GD (batch == n) or SGD (batch < n, sampling with replacement) for each student, in place.

    W (E, m, d), a (E, m), X (E, n, d), y (E, n), lr (E,), seeds (E,) uint64.
    The recorded/returned loss is the full training loss. Status, divergence and checkpoints
    as in ``_train_population``. Students in parallel (small m d) or one after another with
    threaded BLAS (m d >= BLAS_MIN_MD).
    """
    E, m, d = W.shape
    R = steps // record_every + 1
    status = np.zeros(E, dtype=np.int64)
    done = np.zeros(E, dtype=np.int64)
    final = np.empty(E)
    curve = np.full((E, R), np.nan)
    if m * d >= BLAS_MIN_MD:
        for e in range(E):
            _train_one(e, W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup, record_every,
                       ckpt_steps, ckW, cka, status, done, final, curve, True)
    else:
        for e in prange(E):
            _train_one(e, W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup, record_every,
                       ckpt_steps, ckW, cka, status, done, final, curve, False)
    return status, done, final, curve
