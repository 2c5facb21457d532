"""Analytic predictions for the Lin-Li-Wu teacher-student setting, each checked by a test.

- :mod:`theory.kernel`    the arc-cosine kernel form of the population loss and its gradient
                          (Gaussian and sphere inputs), in plain numpy;
- :mod:`theory.minima`    global minima sampled directly (uniform and neuron-sparse), their
                          barriers after matching, the predicted barrier-vs-m curve and exponent;
- :mod:`theory.critical`  the Hessian at a global minimum in closed form, lambda_max, the
                          critical step 2/lambda_max and the predicted sparsity transition;
- :mod:`theory.matching`  weight matching vs the barrier-optimal permutation (brute force).

References: Lin, Li, Wu 2024, "Exploring Neural Network Landscapes: Star-Shaped and Geodesic
Connectivity", arXiv:2404.06391; Zhan, Li, Wu 2025, "Analyzing the Role of Permutation
Invariance in Linear Mode Connectivity", arXiv:2503.06001.
"""
from .critical import (balanced_counts, critical_lr, gauss_newton_blocks, lambda_max_at_minimum,
                       lambda_max_hvp, predicted_sparsity, predicted_transition)
from .kernel import arccos_kernel, loss_and_grad
from .matching import matching_gap
from .minima import minima_barriers, predicted_curve, predicted_exponent, sample_minimum

__all__ = ["arccos_kernel", "balanced_counts", "critical_lr", "gauss_newton_blocks", "lambda_max_at_minimum",
           "lambda_max_hvp", "loss_and_grad", "matching_gap", "minima_barriers", "predicted_curve",
           "predicted_exponent", "predicted_sparsity", "predicted_transition", "sample_minimum"]
