"""Hypothesis strategies over real two-layer weights (for tests/test_properties.py).

The nets are Gaussian draws edited by a list of operations that hypothesis chooses (so it can shrink
them): zero rows (dead neurons), exactly antiparallel rows (w_i = -s w_j, s a power of two so the
relation holds in floating point), duplicated neurons ((w_i, a_i) = (w_j, a_j)), rows of tiny (1e-8)
and huge (1e4) norm, zero output weights; then the rows are put in a random order.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tsim

OPS = ("zero", "antiparallel", "duplicate", "tiny", "huge", "dead_out")
TINY = 1e-8
HUGE = 1e4


def _value(draw, x):
    return draw(x) if isinstance(x, st.SearchStrategy) else x


def permutations_of(m: int) -> st.SearchStrategy:
    """A random permutation of range(m) as an int64 array."""
    return st.permutations(range(m)).map(lambda p: np.array(p, dtype=np.int64))


@st.composite
def weights(draw, m, d, special: bool = True):
    """(W (m, d), a (m,)): Gaussian rows edited by the operations in OPS, rows in a random order.

    m, d: ints or strategies of ints. ``special=False``: plain Gaussian weights (still permuted).
    """
    m = _value(draw, m)
    d = _value(draw, d)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    W = rng.standard_normal((m, d))
    a = rng.standard_normal(m)
    if special:
        ops = draw(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, m - 1), st.integers(0, m - 1),
                                      st.sampled_from([1.0, 0.5, 2.0])), max_size=m), label="ops")
        for op, i, j, s in ops:
            n = np.linalg.norm(W[i])
            if op == "zero":
                W[i] = 0.0
            elif op == "antiparallel" and i != j:
                W[i] = -s * W[j]
            elif op == "duplicate" and i != j:
                W[i], a[i] = W[j], a[j]
            elif op == "tiny" and n > 0:
                W[i] *= TINY / n
            elif op == "huge" and n > 0:
                W[i] *= HUGE / n
            elif op == "dead_out":
                a[i] = 0.0
    perm = draw(permutations_of(m), label="row order")
    return np.ascontiguousarray(W[perm]), np.ascontiguousarray(a[perm])


@st.composite
def nets(draw, m, d, special: bool = True, c=None):
    """A :class:`tsim.TwoLayer` of width m and input dimension d (ints or strategies).

    c: the output scale (float or strategy); default 1 or the mean-field 1/m.
    """
    m = _value(draw, m)
    W, a = draw(weights(m, d, special))
    c = _value(draw, c) if c is not None else draw(st.sampled_from([1.0, 1.0 / m]), label="c")
    return tsim.TwoLayer(W, a, c)


@st.composite
def net_pairs(draw, m, d, special: bool = True):
    """Two independent nets of the same shape and output scale."""
    m = _value(draw, m)
    d = _value(draw, d)
    A = draw(nets(m, d, special))
    B = draw(nets(m, d, special, c=A.c))
    return A, B


@st.composite
def teachers(draw, d, M=st.integers(1, 4)):
    """A :class:`tsim.Teacher` of input dimension d: orthonormal (when M <= d), random unit rows, or
    Gaussian rows (one of them possibly zero) with Gaussian output weights of either sign."""
    d = _value(draw, d)
    M = _value(draw, M)
    kind = draw(st.sampled_from(["orthonormal", "random", "gaussian"]), label="teacher kind")
    seed = draw(st.integers(0, 2 ** 32 - 1), label="teacher seed")
    if kind == "orthonormal" and M <= d:
        return tsim.Teacher.orthonormal(M, d)
    if kind in ("orthonormal", "random"):
        return tsim.Teacher.random(M, d, seed=seed)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((M, d))
    if M > 1 and draw(st.booleans(), label="zero teacher row"):
        W[0] = 0.0
    return tsim.Teacher(W=W, a=rng.standard_normal(M))
