"""Two-layer ReLU networks f(x) = c sum_j a_j relu(w_j . x)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import as_float, as_generators, as_int, fail, finite_array, show


def check_net(net, name: str = "S") -> "TwoLayer":
    """``net`` itself if it is a :class:`TwoLayer` (a Teacher is one); a TypeError naming ``name`` otherwise."""
    if not isinstance(net, TwoLayer):
        raise fail(name, "a TwoLayer network (or a Teacher)", show(net),
                   "Build one with tsim.TwoLayer(W, a) or tsim.Teacher(W).", TypeError)
    return net


def check_same_d(A: "TwoLayer", B: "TwoLayer", names: str = "S and T") -> None:
    """ValueError unless the two networks ``names`` (e.g. "S and T") have the same input dimension d."""
    if A.d != B.d:
        raise ValueError(f"{names} must have the same input dimension d; got d={A.d} and d={B.d}. "
                         "Networks only meet on the same inputs x in R^d.")


@dataclass(frozen=True, eq=False)
class TwoLayer:
    """A two-layer ReLU network f(x) = c sum_j a_j relu(w_j . x).

    Attributes
    ----------
    W : ndarray, shape (m, d)
        First-layer weights, rows w_j.
    a : ndarray, shape (m,)
        Output weights.
    c : float
        Output scale (1 for the unscaled net, 1/m for the mean-field scaling).
    """

    W: np.ndarray
    a: np.ndarray
    c: float = 1.0

    def __post_init__(self):
        W = np.array(finite_array(self.W, "W", ndim=2), order="C")  # own copy: it is frozen below
        m, d = W.shape
        if m < 1 or d < 1:
            raise fail("W", "of shape (m, d) with m >= 1 neurons and d >= 1 inputs", f"shape {W.shape}",
                       "Pass at least one neuron and one input dimension.")
        a = np.array(finite_array(self.a, "a", ndim=1), order="C")
        if a.shape[0] != m:
            raise fail("a", f"of shape ({m},) to match W {W.shape}", f"shape {a.shape}",
                       "Pass one output weight a_j per row w_j of W.")
        c = as_float(self.c, "c")
        W.setflags(write=False)
        a.setflags(write=False)
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "c", c)

    @property
    def m(self) -> int:
        """Width (number of hidden neurons)."""
        return self.W.shape[0]

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.W.shape[1]

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Outputs f(X) for X of shape (n, d) -> (n,)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.d:
            raise ValueError(f"X must have shape (n, {self.d}); got {X.shape}.")
        return self.c * (np.maximum(X @ self.W.T, 0.0) @ self.a)

    def permute(self, perm) -> "TwoLayer":
        """The same function with hidden neurons reordered: rows W[perm], a[perm]."""
        perm = check_perm(perm, self.m)
        return TwoLayer(self.W[perm], self.a[perm], self.c)

    def interpolate(self, other: "TwoLayer", t: float) -> "TwoLayer":
        """(1 - t) self + t other, parameter-wise (W, a and c)."""
        if other.W.shape != self.W.shape:
            raise ValueError(f"cannot interpolate shapes {self.W.shape} and {other.W.shape}; "
                             "pad the narrower net first (TwoLayer.pad).")
        return TwoLayer((1 - t) * self.W + t * other.W, (1 - t) * self.a + t * other.a,
                        (1 - t) * self.c + t * other.c)

    def pad(self, m: int) -> "TwoLayer":
        """The same function with zero neurons appended up to width m."""
        if m < self.m:
            raise ValueError(f"pad width m={m} is below the current width {self.m}.")
        W = np.zeros((m, self.d))
        a = np.zeros(m)
        W[: self.m] = self.W
        a[: self.m] = self.a
        return TwoLayer(W, a, self.c)

    @classmethod
    def init(cls, m: int, d: int, rng: np.random.Generator, sigma0: float = 1.0, a0: float = 1.0,
             c: float = 1.0) -> "TwoLayer":
        """Random init w_j ~ N(0, sigma0^2 I / d), a_j = a0."""
        W, a = init_ensemble(1, m, d, [rng], sigma0, a0)
        return cls(W[0], a[0], c)


def init_ensemble(E: int, m: int, d: int, rngs, sigma0: float = 1.0, a0: float = 1.0):
    """E independent inits, W (E, m, d) with w_j ~ N(0, sigma0^2 I/d), a (E, m) = a0.

    ``rngs`` is a sequence of E numpy Generators (one per student, so that a student's init
    depends only on its own seed).
    """
    if m < 1 or d < 1:
        raise ValueError(f"m and d must be >= 1; got m={m}, d={d}.")
    if sigma0 <= 0:
        raise ValueError(f"sigma0 must be > 0; got {sigma0}.")
    W = np.stack([r.standard_normal((m, d)) * (sigma0 / np.sqrt(d)) for r in rngs])
    a = np.full((E, m), float(a0))
    return np.ascontiguousarray(W), a


def check_perm(perm, m: int) -> np.ndarray:
    """Validate a permutation of range(m); return it as an int64 array."""
    perm = np.asarray(perm)
    if perm.shape != (m,) or not np.issubdtype(perm.dtype, np.integer) \
            or not np.array_equal(np.sort(perm), np.arange(m)):
        raise ValueError(f"perm must be a permutation of range({m}); got {perm!r}.")
    return perm.astype(np.int64)
