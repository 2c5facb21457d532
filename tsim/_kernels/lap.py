"""Numba kernels of the exact linear assignment solver with dual prices (private, no validation).

Problem (minimisation, K square (m, m) float64): min_perm sum_i K[i, perm[i]]. Dual: prices u (rows),
v (columns) with u_i + v_j <= K_ij for all i, j; at an optimum u_i + v_perm(i) = K_i,perm(i).

Method: shortest augmenting paths (Jonker & Volgenant 1987) on a sparse candidate graph with
column generation ("pricing"), the dense matrix K kept for look-ups and checks (:func:`_prepare`,
then :func:`_run`):

1. v = one of: v_j = min_i K_ij (column reduction), half of it, or given guesses, whichever gives
   the largest greedy matching of row-wise argmins of K_ij - v_j (counted on a sample of 64 rows
   spread over K: a heuristic choice; the optimum does not depend on it). Each row keeps its k
   smallest reduced costs K_ij - v_j as candidate edges (costs copied beside them), u_i = their
   minimum (= the whole row's minimum), rows take their argmin column greedily where it is free,
   and augmenting row reduction (an auction with zero increment over the candidate edges, bounded
   as in LAPJV but with at most 32 (not m) price moves per free row, which stops the long price
   wars of structure-free costs: 1.4-1.8x faster at m = 512-1024) matches more rows. A row never
   bids past theta_i, the k-th reduced cost when its edges were chosen: every edge left out costs
   at least that (prices only fall), so the bid keeps the row's price feasible on the whole row; a
   row whose candidates all rose above theta_i is left free.
2. Every free row is augmented by Dijkstra on the reduced costs K_ij - u_i - v_j >= 0 over its
   candidate edges (binary heap with decrease-key; order: distance, then a free column, then the
   column index); prices move so that they stay feasible on candidate edges and tight on matched
   ones. A search that reaches no free column gives each free column one edge from the nearest
   row it reached (:func:`_link_free_columns`; only when every reached row is full does it widen
   them all: k more edges, or all m once a row has ``cap``), re-prices those rows, frees those no
   longer tight and goes on. On request (small costs: weight matching at m <= 256) searches run on
   whole rows instead (:func:`_dense_path`, Dijkstra as in LAPJV, vectorised passes) and step 3 is
   left to the caller's certificate.
3. Pricing: each sparse row is checked against all m columns; a row with an edge of reduced cost
   < -tol is widened and freed; step 2 runs again. When no row violates, (u, v) is feasible for
   the whole matrix: the matching is optimal (weak duality).

For a cost of integers (|K| < 2^53, as round_ties gives in units of its quantum) every sum is exact
in float64, so tol = 0 and the proof is exact. Deterministic: one order of rows and columns, no
randomness. Memory: K plus O(m cap). Eight compiled functions (_prepare, _run, _dense_searches,
_dense_path, _link_free_columns, _quantize, _round_scores, _certify) and small helpers,
written so that none inlines a large other one (cold compile time). The O(m^2) passes (row minima,
argmins, the certificate) keep four running minima (or maxima) instead of one, so they are not one
long floating-point dependency chain: 2-4x faster.
"""
import numpy as np
from numba import njit

INF = np.inf


@njit(cache=True)
def _rowmin(row, v):
    """min_j row[j] - v[j] (exact: four independent running minima, so the loop is not one long
    dependency chain; 2-4x faster than a plain running minimum)."""
    m = row.shape[0]
    b0 = INF
    b1 = INF
    b2 = INF
    b3 = INF
    j = 0
    while j + 4 <= m:
        r0 = row[j] - v[j]
        r1 = row[j + 1] - v[j + 1]
        r2 = row[j + 2] - v[j + 2]
        r3 = row[j + 3] - v[j + 3]
        b0 = r0 if r0 < b0 else b0
        b1 = r1 if r1 < b1 else b1
        b2 = r2 if r2 < b2 else b2
        b3 = r3 if r3 < b3 else b3
        j += 4
    while j < m:
        r0 = row[j] - v[j]
        b0 = r0 if r0 < b0 else b0
        j += 1
    b0 = b1 if b1 < b0 else b0
    b2 = b3 if b3 < b2 else b2
    return b2 if b2 < b0 else b0


@njit(cache=True)
def _argmin(row, v):
    """(min_j row[j] - v[j], the smallest j attaining it)."""
    b = _rowmin(row, v)
    j = 0
    while row[j] - v[j] != b:
        j += 1
    return b, j


@njit(cache=True)
def _maxcount(row, ui, v, lo):
    """(max_j ui + v[j] - row[j], #{j: ui + v[j] - row[j] >= lo}), four running maxima."""
    m = row.shape[0]
    b0 = -INF
    b1 = -INF
    b2 = -INF
    b3 = -INF
    n = 0
    j = 0
    while j + 4 <= m:
        r0 = ui + v[j] - row[j]
        r1 = ui + v[j + 1] - row[j + 1]
        r2 = ui + v[j + 2] - row[j + 2]
        r3 = ui + v[j + 3] - row[j + 3]
        b0 = r0 if r0 > b0 else b0
        b1 = r1 if r1 > b1 else b1
        b2 = r2 if r2 > b2 else b2
        b3 = r3 if r3 > b3 else b3
        n += (r0 >= lo) + (r1 >= lo) + (r2 >= lo) + (r3 >= lo)
        j += 4
    while j < m:
        r0 = ui + v[j] - row[j]
        b0 = r0 if r0 > b0 else b0
        n += r0 >= lo
        j += 1
    b0 = b1 if b1 > b0 else b0
    b2 = b3 if b3 > b2 else b2
    return (b2 if b2 > b0 else b0), n


@njit(cache=True)
def _smallest(row, v, k, bv, bj, skip):
    """The k smallest row[j] - v[j] over j with skip[j] False (ties: smaller j first), sorted, into
    bv, bj; returns their count."""
    m = row.shape[0]
    n = 0
    thr = INF  # bv[k - 1] once k are kept (a local, so that the test stays in a register)
    for j in range(m):
        r = row[j] - v[j]
        if r < thr and not skip[j]:
            n, thr = _insert(r, j, k, bv, bj, n, thr)
    return n


@njit(cache=True)
def _insert(r, j, k, bv, bj, n, thr):
    """Insert (r, j) into the sorted bv[:n], bj[:n] (after equal values), keeping the k smallest:
    returns (n, thr), thr = bv[k - 1] once k are kept, else inf."""
    p = n if n < k else k - 1
    while p > 0 and bv[p - 1] > r:
        bv[p] = bv[p - 1]
        bj[p] = bj[p - 1]
        p -= 1
    bv[p] = r
    bj[p] = j
    if n < k:
        n += 1
    return n, (bv[k - 1] if n == k else thr)


@njit(cache=True)
def _smallest_all(row, v, k, bv, bj, R, M, cj):
    """:func:`_smallest` over every j (no skip) for m <= :data:`PREFILTER_M`, by a prefilter: with
    R = row - v, the minima M of the k classes j mod k bound the k-th smallest (k distinct entries
    are <= T = max M), so only the entries <= T (typically 2-3k) go through the insertion, which
    costs a mispredicted branch per insertion: 2x faster at m = 128, 1.5x at 512, none at 1024,
    slower beyond. Same result, same order. R, cj: (m,), M: (k,) scratch."""
    m = row.shape[0]
    for b in range(k):
        M[b] = INF
    base = 0
    while base + k <= m:
        for b in range(k):
            r = row[base + b] - v[base + b]
            R[base + b] = r
            M[b] = r if r < M[b] else M[b]
        base += k
    for j in range(base, m):
        r = row[j] - v[j]
        R[j] = r
        M[j - base] = r if r < M[j - base] else M[j - base]
    T = -INF
    for b in range(k):
        T = M[b] if M[b] > T else T
    c = 0
    for j in range(m):  # branch-free compaction of the entries <= T, in the order of j
        cj[c] = j
        c += R[j] <= T
    n = 0
    thr = INF
    for t in range(c):  # as in _smallest, over the candidates
        j = cj[t]
        if R[j] < thr:
            n, thr = _insert(R[j], j, k, bv, bj, n, thr)
    return n


#: the widest rows whose k smallest entries are found by :func:`_smallest_all` (the prefilter's
#: extra passes over R outweigh the insertions it saves beyond)
PREFILTER_M = 1024


@njit(cache=True)
def _prepare(K, H, k, tol, arr, L, Lc, F, I, B, stats, bound, have_min):
    """Steps 1 of the module docstring: initial prices, candidate edges, greedy matching, ARR.

    H (h, m): guesses of the column prices. have_min: F[2] already holds the column minima of K.
    Work arrays: L (m, cap) int64, Lc (m, cap) float64 (edges, their costs); F (3, m) float64 (u, v, d);
    I (11, m) int64 (x, y, nl, free, path, rows, cols, heap, pos, queue, tie); B (3, m) bool (dense, sc,
    mark). Returns the number of free rows (in I[3], a stack); stats[4] = the prices used (0 column
    minima, 1 half, 2 + r: H[r]).
    """
    m = K.shape[0]
    u, v, d = F[0], F[1], F[2]
    x, y, nl, free = I[0], I[1], I[2], I[3]
    dense, sc, mark = B[0], B[1], B[2]
    if not have_min:
        for j in range(m):
            d[j] = INF
        for i in range(m):
            Ki = K[i]
            for j in range(m):
                if Ki[j] < d[j]:
                    d[j] = Ki[j]
    best = -1
    for c in range(H.shape[0] + 2):
        for j in range(m):
            if c == 0:
                u[j] = d[j]
            elif c == 1:
                u[j] = np.rint(0.5 * d[j]) if tol == 0.0 else 0.5 * d[j]
            else:
                u[j] = H[c - 2, j]
            mark[j] = False
        g = 0  # greedy matching of the row-wise argmins under prices u (on every s-th row)
        for i in range(0, m, max(1, m // 64)):
            arg = _argmin(K[i], u)[1]
            if not mark[arg]:
                mark[arg] = True
                g += 1
        if g > best:
            best = g
            stats[4] = c
            for j in range(m):
                v[j] = u[j]
    bv = np.empty(k, np.float64)
    bj = np.empty(k, np.int64)
    theta = np.empty(m, np.float64)
    R = np.empty(m, np.float64)
    M = np.empty(k, np.float64)
    cj = np.empty(m, np.int64)
    pre = m <= PREFILTER_M and m >= 2 * k
    for i in range(m):
        x[i] = -1
        y[i] = -1
        d[i] = INF
        dense[i] = False
        sc[i] = False
        mark[i] = False
        I[8, i] = -1
    for i in range(m):  # k best edges per row; u_i = row minimum; greedy matching on argmins
        n = _smallest_all(K[i], v, k, bv, bj, R, M, cj) if pre else _smallest(K[i], v, k, bv, bj, mark)
        for t in range(n):
            L[i, t] = bj[t]
            Lc[i, t] = K[i, bj[t]]
        nl[i] = n
        theta[i] = bv[k - 1] if n == k else INF  # every edge left out costs >= theta_i, now and later
        u[i] = bv[0]
        if y[bj[0]] == -1:
            x[i] = bj[0]
            y[bj[0]] = i
    nf = 0
    for i in range(m):
        if x[i] == -1:
            free[nf] = i
            nf += 1
    for _ in range(arr):  # augmenting row reduction over the candidate edges
        cur = 0
        nfree = 0
        cnt = 0
        while cur < nf:
            cnt += 1
            i = free[cur]
            cur += 1
            j1 = -1
            j2 = -1
            v1 = INF
            v2 = INF
            for t in range(nl[i]):
                j = L[i, t]
                c = Lc[i, t] - v[j]
                if c < v2:
                    if c >= v1:
                        v2 = c
                        j2 = j
                    else:
                        v2 = v1
                        j2 = j1
                        v1 = c
                        j1 = j
            if theta[i] < v1:  # an edge left out is now below every candidate: the row stays free
                free[nfree] = i
                nfree += 1
                continue
            if theta[i] < v2:  # an edge left out may be second best: bid no further than it
                v2 = theta[i]
                j2 = -1
            i0 = y[j1]
            low = j2 >= 0 and v1 < v2
            if cnt < cur * bound:
                if low:
                    v[j1] -= v2 - v1
                elif i0 >= 0 and j2 >= 0:
                    j1 = j2
                    i0 = y[j2]
                if i0 >= 0:
                    x[i0] = -1
                    if low:
                        cur -= 1
                        free[cur] = i0
                    else:
                        free[nfree] = i0
                        nfree += 1
            elif i0 >= 0:
                x[i0] = -1
                free[nfree] = i0
                nfree += 1
            x[i] = j1
            y[j1] = i
        nf = nfree
    for i in range(m):  # prices of matched rows: tight; free rows: the minimum over their edges
        if x[i] >= 0:
            u[i] = K[i, x[i]] - v[x[i]]
        else:
            b = INF
            for t in range(nl[i]):
                b = min(b, Lc[i, t] - v[L[i, t]])
            u[i] = b
    for t in range(nf // 2):  # a stack: rows are augmented in increasing order
        free[t], free[nf - 1 - t] = free[nf - 1 - t], free[t]
    return nf


@njit(cache=True)
def _link_free_columns(K, tol, L, Lc, F, I, B, nr, stats):
    """A search got stuck: give each free column j one edge, from the row among the nr reached
    (I[5]) with the smallest reduced cost K_ij - u_i - v_j, so that the next search can reach it.

    The free columns of a stuck search are typically on the lists of free rows only (rows that no
    search passes through); one edge per free column replaces widening every reached row by k
    (1.5-2x faster on structure-free costs at m = 128). An edge of negative reduced cost lowers u_i
    to keep the prices feasible, freeing row i when its match is no longer tight. Returns whether an
    edge was added (False: every reached row is full or dense; the caller widens instead).
    """
    m = K.shape[0]
    cap = L.shape[1]
    u, v = F[0], F[1]
    x, y, nl, rows = I[0], I[1], I[2], I[5]
    dense = B[0]
    added = False
    for j in range(m):
        if y[j] != -1:
            continue
        bi = -1
        br = INF
        for t in range(nr):
            i = rows[t]
            if dense[i] or nl[i] >= cap:
                continue
            r = K[i, j] - u[i] - v[j]
            if r < br:
                br = r
                bi = i
        if bi < 0:
            continue
        i = bi
        L[i, nl[i]] = j
        Lc[i, nl[i]] = K[i, j]
        nl[i] += 1
        stats[1] += 1
        added = True
        if br < 0.0:
            xi = x[i]
            if xi >= 0 and br >= -tol:  # still tight within tol: keep the match exactly tight
                continue
            u[i] = K[i, j] - v[j]
            if xi >= 0:
                y[xi] = -1
                x[i] = -1
    return added


@njit(cache=True)
def _flip(x, y, path, sink, cur):
    """Augment along the path of predecessors from the free column sink back to the free row cur."""
    j = sink
    while True:
        i = path[j]
        y[j] = i
        nxt = x[i]
        x[i] = j
        j = nxt
        if i == cur:
            break


@njit(cache=True)
def _dense_path(K, cur, F, I, pen):
    """One shortest augmenting path from the free row cur over every edge of K (Dijkstra on whole rows,
    as in LAPJV), prices moved as in :func:`_run` (feasible and tight on the matching for every edge),
    the path flipped. Returns the number of rows scanned. Work arrays: F[2] distances, I[4]
    predecessors, I[6] scanned columns; pen (m,) scratch: 0, or -inf once a column is scanned.

    Every pass runs over all m columns in order, with the scanned ones priced out (d_j - pen_j = inf)
    instead of skipped through an index list, so the passes vectorise: 1.4-1.8x faster than LAPJV's
    list of columns at m = 128-256. Next column: the nearest (:func:`_rowmin` of d - pen), a free one
    first on ties, else the smallest index.
    """
    m = K.shape[0]
    u, v, d = F[0], F[1], F[2]
    x, y, path, cols = I[0], I[1], I[4], I[6]
    Kc = K[cur]
    uc = u[cur]
    for j in range(m):
        d[j] = Kc[j] - uc - v[j]
        path[j] = cur
        pen[j] = 0.0
    lo = 0  # cols[:lo]: the scanned columns
    while True:
        mu = _rowmin(d, pen)
        jm = -1
        for j in range(m):
            if d[j] - pen[j] == mu:
                if y[j] == -1:
                    jm = j
                    break
                if jm < 0:
                    jm = j
        if y[jm] == -1:
            break
        pen[jm] = -INF
        cols[lo] = jm
        lo += 1
        i = y[jm]
        Ki = K[i]
        h = mu - u[i]
        for j in range(m):  # scanned columns: r = inf, never below d
            r = h + Ki[j] - v[j] - pen[j]
            if r < d[j]:
                d[j] = r
                path[j] = i
    # prices: rows reached through a scanned column j rise by mu - d_j, those columns fall by it
    u[cur] += mu
    for t in range(lo):
        j = cols[t]
        dj = mu - d[j]
        v[j] -= dj
        u[y[j]] += dj
    _flip(x, y, path, jm, cur)
    return lo + 1  # the rows of the scanned columns, and cur


@njit(cache=True)
def _dense_searches(K, nf, F, I, stats):
    """Augment every free row (the stack I[3][:nf], last first) by :func:`_dense_path`; stats[2] counts
    the rows scanned. Its own compiled function, called from Python, so that :func:`_run` does not
    carry the dense search (cold compile time)."""
    free = I[3]
    pen = np.empty(K.shape[0])
    for t in range(nf - 1, -1, -1):
        stats[2] += _dense_path(K, free[t], F, I, pen)


@njit(cache=True)
def _run(K, nf, k, tol, max_rounds, L, Lc, F, I, B, stats):
    """Steps 2 and 3 of the module docstring on the state left by :func:`_prepare`.

    Result: x = I[0] (column of row i), u = F[0], v = F[1], feasible (u_i + v_j <= K_ij + tol) and
    tight on x unless the pricing rounds ran out (stats[0] == max_rounds). stats: pricing rounds,
    rows widened, rows reached by searches, dense rows.
    """
    m = K.shape[0]
    cap = L.shape[1]
    u, v, d = F[0], F[1], F[2]
    x, y, nl, free, path, rows, cols, h, pos, wq, tie = (I[0], I[1], I[2], I[3], I[4], I[5], I[6], I[7],
                                                          I[8], I[9], I[10])
    dense, sc, mark = B[0], B[1], B[2]
    bv = np.empty(k, np.float64)
    bj = np.empty(k, np.int64)
    nw = 0
    while True:
        if nw > 0:  # widen the queued rows: more edges, u_i = row minimum, freed unless still tight
            for t in range(nw):
                i = wq[t]
                stats[1] += 1
                Ki = K[i]
                if not dense[i] and nl[i] + k > cap:
                    dense[i] = True
                b = INF
                if dense[i]:
                    b = _rowmin(Ki, v)
                else:
                    for s in range(nl[i]):
                        mark[L[i, s]] = True
                        b = min(b, Lc[i, s] - v[L[i, s]])
                    n = _smallest(Ki, v, k, bv, bj, mark)
                    for s in range(nl[i]):
                        mark[L[i, s]] = False
                    for s in range(n):
                        L[i, nl[i] + s] = bj[s]
                        Lc[i, nl[i] + s] = Ki[bj[s]]
                    nl[i] += n
                    if n > 0:
                        b = min(b, bv[0])
                u[i] = b
                xi = x[i]
                if xi >= 0:
                    if Ki[xi] - v[xi] - b > tol:
                        y[xi] = -1
                        x[i] = -1
                        free[nf] = i
                        nf += 1
                    else:  # still tight (within tol): keep the match exactly tight
                        u[i] = Ki[xi] - v[xi]
            nw = 0
        if nf > 0:  # one shortest augmenting path from the free row cur
            cur = free[nf - 1]
            nr = 0
            nc = 0
            nh = 0
            min_val = 0.0
            i = cur
            sink = -1
            while sink == -1:
                rows[nr] = i
                nr += 1
                Ki = K[i]
                ui = u[i]
                dn = dense[i]
                for t in range(m if dn else nl[i]):
                    if dn:
                        j = t
                        r = min_val + Ki[t] - ui - v[t]
                    else:
                        j = L[i, t]
                        r = min_val + Lc[i, t] - ui - v[j]
                    if sc[j] or r >= d[j]:
                        continue
                    if d[j] == INF:
                        cols[nc] = j
                        nc += 1
                        tie[j] = j + (m if y[j] >= 0 else 0)  # free columns first on equal distance
                        c = nh
                        nh += 1
                    else:
                        c = pos[j]
                    d[j] = r
                    path[j] = i
                    while c > 0:  # sift up
                        p = (c - 1) >> 1
                        q = h[p]
                        if d[q] < r or (d[q] == r and tie[q] < tie[j]):
                            break
                        h[c] = q
                        pos[q] = c
                        c = p
                    h[c] = j
                    pos[j] = c
                if nh == 0:
                    break
                j = h[0]  # pop the nearest column
                pos[j] = -1
                nh -= 1
                if nh > 0:
                    last = h[nh]
                    dl = d[last]
                    c = 0
                    while True:
                        l = 2 * c + 1
                        if l >= nh:
                            break
                        if l + 1 < nh and (d[h[l + 1]] < d[h[l]]
                                           or (d[h[l + 1]] == d[h[l]] and tie[h[l + 1]] < tie[h[l]])):
                            l += 1
                        q = h[l]
                        if dl < d[q] or (dl == d[q] and tie[last] < tie[q]):
                            break
                        h[c] = q
                        pos[q] = c
                        c = l
                    h[c] = last
                    pos[last] = c
                min_val = d[j]
                sc[j] = True
                if y[j] == -1:
                    sink = j
                else:
                    i = y[j]
            if sink >= 0:
                stats[2] += nr
                # prices: u_i += min_val - d(x_i) on reached rows, v_j -= min_val - d_j on scanned columns
                u[cur] += min_val
                for t in range(1, nr):
                    i = rows[t]
                    u[i] += min_val - d[x[i]]
                for t in range(nc):
                    j = cols[t]
                    if sc[j]:
                        v[j] -= min_val - d[j]
                _flip(x, y, path, sink, cur)
                nf -= 1
            else:  # stuck: no free column reachable
                stats[2] += nr
                if not _link_free_columns(K, tol, L, Lc, F, I, B, nr, stats):  # every row reached is widened
                    for t in range(nr):
                        wq[t] = rows[t]
                    nw = nr
                nf = 0
                for i in range(m):  # rows freed by a new edge join the free rows (the stack is rebuilt)
                    if x[i] == -1:
                        free[nf] = i
                        nf += 1
            for t in range(nc):
                j = cols[t]
                d[j] = INF
                sc[j] = False
                pos[j] = -1
            continue
        if stats[0] == max_rounds:
            break
        stats[0] += 1
        # pricing: rows with an edge of negative reduced cost are widened (and freed)
        for i in range(m):
            if dense[i]:
                continue
            Ki = K[i]
            if _rowmin(Ki, v) < Ki[x[i]] - v[x[i]] - tol:
                wq[nw] = i
                nw += 1
        if nw == 0:
            break
    for i in range(m):
        stats[3] += dense[i]
    return nf


def work_arrays(m, k, cap):
    """The work arrays of :func:`solve` for width m, k edges per row and capacity cap: (L, Lc, F, I, B),
    rows of L and Lc max(cap, min(k, m)) long."""
    cap = max(cap, min(k, m))
    return (np.empty((m, cap), np.int64), np.empty((m, cap)), np.empty((3, m)), np.empty((11, m), np.int64),
            np.empty((3, m), np.bool_))


def solve(K, hints, k, cap, tol, max_rounds=10 ** 9, arr=2, bound=32, colmin=None, work=None, dense_search=False):
    """Run :func:`_prepare` and :func:`_run`: returns (x, u, v, stats), views of the work arrays.

    colmin: the column minima of K when already known (:func:`_round_scores` gives them).
    hints: a list of guesses of v (m,) each, or an array (h, m).
    work: :func:`work_arrays` (m, k, cap) to reuse (their content is overwritten); fresh ones by
    default. dense_search: augment the free rows left by :func:`_prepare` by whole-row searches
    (:func:`_dense_searches`) and skip :func:`_run`: the prices are then feasible on every entry by
    construction, which the caller's certificate checks.
    stats: pricing rounds, rows widened, rows reached by searches, dense rows, prices used.
    """
    m = K.shape[0]
    H = np.ascontiguousarray(np.asarray(hints, dtype=np.float64).reshape(-1, m))  # no copy of an (h, m) array
    L, Lc, F, I, B = work_arrays(m, k, cap) if work is None else work
    k = min(k, m)
    stats = np.zeros(5, np.int64)
    if colmin is not None:
        F[2] = colmin
    nf = _prepare(K, H, k, tol, arr, L, Lc, F, I, B, stats, min(m, bound), colmin is not None)
    if dense_search:  # whole-row searches: feasible everywhere, no pricing round needed
        _dense_searches(K, nf, F, I, stats)
    else:
        _run(K, nf, k, tol, max_rounds, L, Lc, F, I, B, stats)
    return I[0], F[0], F[1], stats


@njit(cache=True)
def _quantize(C, q, sign, out):
    """out = sign * rint(C / q) (out may be C); returns max |C / q - rint(C / q)| (0 on the q grid)."""
    m, n = C.shape
    worst = 0.0
    for i in range(m):
        for j in range(n):
            z = C[i, j] / q
            r = np.rint(z)
            e = abs(z - r)
            if e > worst:
                worst = e
            out[i, j] = sign * r
    return worst


@njit(cache=True)
def quantum(scale):
    """q = 10^(floor(log10 scale) - 11) for scale > 0: the grid of round_ties (12 significant digits of
    scale). One compiled function for round_ties, solve_lap and weight matching, so that all use the
    same q bit for bit (numpy's log10 and numba's could differ in the last bit near a power of ten)."""
    return 10.0 ** (np.floor(np.log10(scale)) - 11.0)


@njit(cache=True)
def _round_scores(K, d, ZB, hint):
    """Round the score S = K in place as round_ties does, into the integers to minimise: K = -rint(S / q),
    q = :func:`quantum` (max|S|); d = the column minima of the result; hint_j = rint(-|z^B_j|^2 / (2 q)),
    the column price guess of weight matching (ZB (m, d + 1)). Returns q, or 0 (K untouched) when
    max|S| is 0 or S is not finite.

    The rounding reads and writes one array at the same place, so its loop vectorises (an ``out`` that
    may be K would not: the aliasing check fails). One compiled call instead of five numpy ones (the
    call overhead is 10-15% of a weight matching at m = 128).
    """
    m, n = K.shape
    scale = 0.0
    nan = 0
    for i in range(m):
        b, c = _absmax(K[i])
        scale = b if b > scale else scale
        nan += c
    if scale == 0.0 or not np.isfinite(scale) or nan > 0:
        return 0.0
    q = quantum(scale)
    for j in range(n):
        d[j] = INF
    for i in range(m):
        Ki = K[i]
        for j in range(n):
            r = -np.rint(Ki[j] / q)
            Ki[j] = r
            d[j] = r if r < d[j] else d[j]
    c = -0.5 / q
    for j in range(ZB.shape[0]):
        z = ZB[j]
        hint[j] = np.rint(np.dot(z, z) * c)
    return q


@njit(cache=True)
def _absmax(row):
    """(max_j |row[j]|, the number of NaNs in row), four running maxima."""
    n = row.shape[0]
    b0 = 0.0
    b1 = 0.0
    b2 = 0.0
    b3 = 0.0
    nan = 0
    j = 0
    while j + 4 <= n:
        a0 = abs(row[j])
        a1 = abs(row[j + 1])
        a2 = abs(row[j + 2])
        a3 = abs(row[j + 3])
        b0 = a0 if a0 > b0 else b0
        b1 = a1 if a1 > b1 else b1
        b2 = a2 if a2 > b2 else b2
        b3 = a3 if a3 > b3 else b3
        nan += (a0 != a0) + (a1 != a1) + (a2 != a2) + (a3 != a3)
        j += 4
    while j < n:
        a0 = abs(row[j])
        b0 = a0 if a0 > b0 else b0
        nan += a0 != a0
        j += 1
    b0 = b1 if b1 > b0 else b0
    b2 = b3 if b3 > b2 else b2
    return (b2 if b2 > b0 else b0), nan


@njit(cache=True)
def _certify(K, x, u, v, tol, E):
    """Check the prices against the whole matrix and list the tight edges off the matching.

    Returns (viol, slack, big, n): viol = max_ij u_i + v_j - K_ij (feasible: <= tol), slack =
    max_i |u_i + v_x(i) - K_i,x(i)| (tight on x: <= tol), big = max |u|, |v| (< 2^52 keeps integer
    sums exact), n = the number of edges (i, j), j != x(i), with |u_i + v_j - K_ij| <= tol; the
    first E.shape[0] of them go to E (rows i, j).
    """
    m = K.shape[0]
    viol = -INF
    slack = 0.0
    big = 0.0
    n = 0
    cap = E.shape[0]
    for i in range(m):
        Ki = K[i]
        ui = u[i]
        big = max(big, abs(ui))
        xi = x[i]
        w, c = _maxcount(Ki, ui, v, -tol)
        viol = max(viol, w)
        rx = ui + v[xi] - Ki[xi]
        if c > (rx >= -tol):  # a tight edge off the matching: list them (a second pass, rarely)
            for j in range(m):
                r = ui + v[j] - Ki[j]
                if r >= -tol and j != xi:
                    if n < cap:
                        E[n, 0] = i
                        E[n, 1] = j
                    n += 1
        slack = max(slack, abs(rx))
    for j in range(m):
        big = max(big, abs(v[j]))
    return viol, slack, big, n


@njit(cache=True)
def _alternating_cycle(E, n, x):
    """True if the tight edges E[:n] (off the matching x) close an alternating cycle, i.e. another
    matching of the same value exists: a cycle in the digraph on rows with i -> (row matched to j)
    for each edge (i, j). Iterative depth-first search, O(m + n)."""
    m = x.shape[0]
    y = np.empty(m, np.int64)
    for i in range(m):
        y[x[i]] = i
    start = np.zeros(m + 1, np.int64)
    for t in range(n):
        start[E[t, 0] + 1] += 1
    for i in range(m):
        start[i + 1] += start[i]
    fill = start[:m].copy()
    adj = np.empty(n, np.int64)
    for t in range(n):
        i = E[t, 0]
        adj[fill[i]] = y[E[t, 1]]
        fill[i] += 1
    state = np.zeros(m, np.int64)  # 0 new, 1 on the stack, 2 done
    nxt = start[:m].copy()
    stack = np.empty(m, np.int64)
    for s in range(m):
        if state[s] != 0:
            continue
        top = 0
        stack[0] = s
        state[s] = 1
        while top >= 0:
            i = stack[top]
            if nxt[i] < start[i + 1]:
                k = adj[nxt[i]]
                nxt[i] += 1
                if state[k] == 1:
                    return True
                if state[k] == 0:
                    state[k] = 1
                    top += 1
                    stack[top] = k
            else:
                state[i] = 2
                top -= 1
    return False
