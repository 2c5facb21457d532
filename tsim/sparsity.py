"""Sparsity of a two-layer solution, measured on neuron magnitudes s_j = |c a_j| |w_j|."""
from __future__ import annotations

import numpy as np

from .network import TwoLayer


def neuron_magnitudes(S: TwoLayer) -> np.ndarray:
    """s_j = |c a_j| |w_j|, shape (m,): the size of neuron j's contribution (ReLU is 1-homogeneous)."""
    return np.abs(S.c * S.a) * np.linalg.norm(S.W, axis=1)


def sparse_fraction(S: TwoLayer, rel: float = 1e-3) -> float:
    """Fraction of neurons with s_j < rel * max_k s_k (1.0 for the zero network)."""
    if not 0 <= rel < 1:
        raise ValueError(f"rel must be in [0, 1); got {rel}.")
    s = neuron_magnitudes(S)
    top = s.max()
    if top == 0:
        return 1.0
    return float(np.mean(s < rel * top))


def effective_neurons(S: TwoLayer) -> float:
    """Participation ratio (sum_j s_j)^2 / sum_j s_j^2, between 1 and m (0 for the zero network)."""
    s = neuron_magnitudes(S)
    q = float(np.sum(s * s))
    return 0.0 if q == 0 else float(np.sum(s) ** 2 / q)
