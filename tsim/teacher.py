"""Teachers f*(x) = sum_k a*_k relu(w*_k . x)."""
from __future__ import annotations

import numpy as np

from .checks import as_generator, as_int, finite_array
from .network import TwoLayer


class Teacher(TwoLayer):
    """A teacher network: W (M, d) with rows w*_k, a (M,) (default all ones), output scale c (default 1).

    Build with ``Teacher(W=..., a=...)``, :meth:`orthonormal` or :meth:`random`.
    """

    def __init__(self, W, a=None, c: float = 1.0):
        if a is None:
            a = np.ones(finite_array(W, "W", ndim=2).shape[0])
        super().__init__(W, a, c)

    @property
    def M(self) -> int:
        """Teacher width."""
        return self.m

    @classmethod
    def orthonormal(cls, M: int, d: int, a=None) -> "Teacher":
        """w*_k = e_k (k < M), needs d >= M (Lin, Li, Wu 2024, arXiv:2404.06391)."""
        M = as_int(M, "M", low=1, fix="Pass the teacher width as a whole number.")
        d = as_int(d, "d", low=M, fix="An orthonormal teacher needs d >= M: raise d or use Teacher.random.")
        return cls(np.eye(M, d), a)

    @classmethod
    def random(cls, M: int, d: int, seed, a=None) -> "Teacher":
        """w*_k uniform on the unit sphere S^{d-1}, drawn from ``seed`` (an integer >= 0 or a numpy Generator)."""
        M = as_int(M, "M", low=1, fix="Pass the teacher width as a whole number.")
        d = as_int(d, "d", low=1, fix="Pass the input dimension as a whole number.")
        rng = as_generator(seed, "seed")
        W = rng.standard_normal((M, d))
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        return cls(W, a)
