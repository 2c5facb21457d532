"""Input samples and teacher labels."""
from __future__ import annotations

import numpy as np

from .network import TwoLayer

INPUTS = ("gaussian", "sphere")


def check_inputs(inputs: str) -> str:
    """Validate the input distribution name."""
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}; got {inputs!r}.")
    return inputs


def sample_inputs(n: int, d: int, inputs: str, rng: np.random.Generator) -> np.ndarray:
    """n inputs, shape (n, d): N(0, I_d) ('gaussian') or uniform on S^{d-1} ('sphere')."""
    check_inputs(inputs)
    if n < 1 or d < 1:
        raise ValueError(f"n and d must be >= 1; got n={n}, d={d}.")
    X = rng.standard_normal((n, d))
    if inputs == "sphere":
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def labels(teacher: TwoLayer, X: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """y = f*(X) + noise * N(0, 1), shape (n,)."""
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}.")
    y = teacher.forward(X)
    if noise > 0:
        y = y + noise * rng.standard_normal(y.shape[0])
    return y
