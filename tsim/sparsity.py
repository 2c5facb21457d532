"""Sparsity of a two-layer solution, measured on neuron magnitudes s_j = |c a_j| |w_j|."""
from __future__ import annotations

import numpy as np

from .checks import as_float
from .network import TwoLayer, check_net


def neuron_magnitudes(S: TwoLayer) -> np.ndarray:
    """s_j = |c a_j| |w_j|, shape (m,): the size of neuron j's contribution (ReLU is 1-homogeneous)."""
    check_net(S, "S")
    return np.abs(S.c * S.a) * np.linalg.norm(S.W, axis=1)


def sparse_fraction(S: TwoLayer, rel: float = 1e-3) -> float:
    """Fraction of neurons with s_j < rel * max_k s_k (1.0 for the zero network)."""
    rel = as_float(rel, "rel", low=0, high=1, open_high=True, fix="Pass a relative threshold such as 1e-3.")
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
