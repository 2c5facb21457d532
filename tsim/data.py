"""Input samples and teacher labels."""
from __future__ import annotations

import numpy as np

from .checks import as_float, as_generator, as_int, fail, show
from .network import check_net

INPUTS = ("gaussian", "sphere")


def check_inputs(inputs: str) -> str:
    """Validate the input distribution name ("gaussian" or "sphere")."""
    if not isinstance(inputs, str) or inputs not in INPUTS:
        raise fail("inputs", f"one of {INPUTS}", show(inputs), "Pass inputs='gaussian' or inputs='sphere'.")
    return inputs


def sample_inputs(n: int, d: int, inputs: str, rng) -> np.ndarray:
    """n inputs, shape (n, d): N(0, I_d) ('gaussian') or uniform on S^{d-1} ('sphere').

    ``rng`` is a numpy Generator (its stream goes on) or an integer seed.
    """
    check_inputs(inputs)
    n = as_int(n, "n", low=1, fix="Pass the number of samples as a whole number.")
    d = as_int(d, "d", low=1, fix="Pass the input dimension as a whole number.")
    rng = as_generator(rng)
    X = rng.standard_normal((n, d))
    if inputs == "sphere":
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def labels(teacher, X: np.ndarray, noise: float, rng) -> np.ndarray:
    """y = f*(X) + noise * N(0, 1), shape (n,), for finite X (n, d).

    ``rng`` (a numpy Generator or an integer seed) draws the noise; it may be None when noise = 0.
    """
    check_net(teacher, "teacher")
    noise = as_float(noise, "noise", low=0)
    if rng is not None or noise > 0:
        rng = as_generator(rng)
    y = teacher.forward(X)
    if noise > 0:
        y = y + noise * rng.standard_normal(y.shape[0])
    return y
