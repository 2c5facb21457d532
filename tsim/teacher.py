"""Teachers f*(x) = sum_k a*_k relu(w*_k . x)."""
from __future__ import annotations

import numpy as np

from .network import TwoLayer


class Teacher(TwoLayer):
    """A teacher network: W (M, d) with rows w*_k, a (M,), output scale 1.

    Build with ``Teacher(W=..., a=...)``, :meth:`orthonormal` or :meth:`random`.
    """

    def __init__(self, W, a=None, c: float = 1.0):
        W = np.asarray(W, dtype=np.float64)
        if a is None:
            a = np.ones(W.shape[0] if W.ndim == 2 else 0)
        super().__init__(W, a, c)

    @property
    def M(self) -> int:
        """Teacher width."""
        return self.m

    @classmethod
    def orthonormal(cls, M: int, d: int, a=None) -> "Teacher":
        """w*_k = e_k (k < M), needs d >= M (Lin, Li, Wu 2024, arXiv:2404.06391)."""
        if M < 1:
            raise ValueError(f"M must be >= 1; got {M}.")
        if d < M:
            raise ValueError(f"an orthonormal teacher needs d >= M; got d={d} < M={M}. "
                             "Raise d or use Teacher.random.")
        return cls(np.eye(M, d), a)

    @classmethod
    def random(cls, M: int, d: int, seed: int, a=None) -> "Teacher":
        """w*_k uniform on the unit sphere S^{d-1}, drawn from ``seed``."""
        if M < 1 or d < 1:
            raise ValueError(f"M and d must be >= 1; got M={M}, d={d}.")
        rng = np.random.default_rng(seed)
        W = rng.standard_normal((M, d))
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        return cls(W, a)
