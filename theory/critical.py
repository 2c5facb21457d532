"""The Hessian at a global minimum in closed form, lambda_max and the critical GD step 2/lambda_max.

Derivation. At a global minimum f = f* almost everywhere, so the second-order term
E[(f - f*) d^2 f] vanishes and the Hessian of L = 1/2 E[(f - f*)^2] in W is the Gauss-Newton
matrix H = E[g g^T], g = grad_W f. (Kinks: moving W by delta changes f by grad f . delta except
on a set of x of measure O(|delta|), where the change is O(|delta|) too; that adds O(|delta|^3)
to L, so H is the Hessian. Zero neurons are not differentiable points; they are left out.)
For a nonzero neuron i of type j (w_i = alpha_i e_j), grad_{w_i} f = c a_i 1{x_j > 0} x, which
does not depend on alpha_i. With phi_j = 1{x_j > 0} x and x ~ N(0, I_d),

    Sigma_jj = E[phi_j phi_j^T] = I/2,
    Sigma_jk = E[phi_j phi_k^T] = I/4 + (e_j e_k^T + e_k e_j^T) / (2 pi)   (j != k),

(diagonal: E[x_l^2 1 1] = 1/4 for every l, including l = j: E[x_j^2 1{x_j>0}] P(x_k>0) = 1/4;
off-diagonal (j, k): E[x_j 1{x_j>0}] E[x_k 1{x_k>0}] = (1/sqrt(2 pi))^2). Writing g = (U kron I) psi
with psi = (phi_1, .., phi_M) and U the (m, M) type-indicator matrix scaled by c a_i, the nonzero
eigenvalues of H are those of the (M d, M d) matrix

    H_hat = (D^{1/2} kron I) Sigma (D^{1/2} kron I),   D = diag(s_j),  s_j = sum_{i of type j} (c a_i)^2,

so lambda_max depends only on s_j (= n_j, the number of nonzero neurons of type j, when
c a_i = 1), not on the alphas, and it grows linearly when all counts are scaled:
lambda_max(k n) = k lambda_max(n). For the sphere, Sigma is divided by d.

Consequence (stability of GD; Wu, Ma, E 2018, NeurIPS "How SGD selects the global minima"): GD
with step eta can only settle at minima with lambda_max < 2/eta. Dense minima (n_j ~ m/M) have
lambda_max ~ (m/M) lambda_1, lambda_1 = lambda_max(1, .., 1); a step above 2/lambda_max(dense)
forces at most k = ceil(2/(eta lambda_1)) - 1 nonzero neurons per type (balanced), i.e. a
sparse fraction >= 1 - M k / m, and above 2/lambda_1 no minimum is stable.
"""
from __future__ import annotations

import numpy as np

import tsim


def gauss_newton_blocks(M: int, d: int, inputs: str = "gaussian") -> np.ndarray:
    """Sigma_jk = E[1{x_j>0} 1{x_k>0} x x^T] for the orthonormal teacher, shape (M, M, d, d)."""
    if M < 1 or d < M:
        raise ValueError(f"need 1 <= M <= d; got M={M}, d={d}.")
    S = np.empty((M, M, d, d))
    eye = np.eye(d)
    for j in range(M):
        for k in range(M):
            if j == k:
                S[j, k] = eye / 2
            else:
                S[j, k] = eye / 4
                S[j, k, j, k] += 1 / (2 * np.pi)
                S[j, k, k, j] += 1 / (2 * np.pi)
    return S / (d if inputs == "sphere" else 1.0)


def lambda_max_at_minimum(counts, d: int, inputs: str = "gaussian") -> float:
    """Largest Hessian eigenvalue of L in W at a teacher-aligned global minimum.

    Parameters
    ----------
    counts : array, shape (M,)   s_j = sum over nonzero type-j neurons of (c a_i)^2 (= their
                                 number for a = 1, c = 1); types with s_j = 0 allowed
    d : int                      input dimension
    """
    s = np.asarray(counts, dtype=np.float64)
    if s.ndim != 1 or np.any(s < 0):
        raise ValueError(f"counts must be a 1-d array of non-negative numbers; got {counts!r}.")
    M = s.size
    S = gauss_newton_blocks(M, d, inputs)
    r = np.sqrt(s)
    H = (r[:, None, None, None] * S * r[None, :, None, None]).transpose(0, 2, 1, 3).reshape(M * d, M * d)
    return float(np.linalg.eigvalsh(H)[-1])


def balanced_counts(m: int, M: int) -> np.ndarray:
    """Counts n_j as equal as possible with sum m, shape (M,)."""
    return np.array([m // M + (j < m % M) for j in range(M)], dtype=np.float64)


def nonzero_part(S: tsim.TwoLayer, rel: float = 1e-8) -> tsim.TwoLayer:
    """S without its zero neurons (magnitude below rel times the largest)."""
    mag = tsim.neuron_magnitudes(S)
    keep = mag > rel * mag.max()
    return tsim.TwoLayer(S.W[keep], S.a[keep], S.c)


def lambda_max_hvp(S: tsim.TwoLayer, T, inputs: str = "gaussian") -> float:
    """lambda_max of the population-loss Hessian in the nonzero neurons' W, by Lanczos on HVPs.

    Uses :func:`tsim.hessian_max_eig` (central differences of the exact gradient) on S with its
    zero neurons removed (they contribute nothing to L and are non-smooth points).
    """
    return tsim.hessian_max_eig(nonzero_part(S), T, inputs, train_a=False)


def critical_lr(S: tsim.TwoLayer, T, inputs: str = "gaussian") -> float:
    """2 / lambda_max at S (the nonzero neurons): GD diverges from S's neighbourhood above it."""
    return 2.0 / lambda_max_hvp(S, T, inputs)


def predicted_transition(m: int, M: int, d: int, lam_init: float, inputs: str = "gaussian") -> dict:
    """Predicted learning rates, in units of 2/lambda_init (config lr_unit = "critical").

    sparsify = lambda_init / lambda_max(dense balanced minimum, n_j ~ m/M): above it the dense
    minima are unstable and GD must end sparse (or not converge);
    diverge = lambda_init / lambda_max(one neuron per type): above it no global minimum is stable.
    Also returns the absolute critical steps eta_sparsify, eta_diverge.
    """
    lam_dense = lambda_max_at_minimum(balanced_counts(m, M), d, inputs)
    lam_one = lambda_max_at_minimum(np.ones(M), d, inputs)
    return {"sparsify": lam_init / lam_dense, "diverge": lam_init / lam_one, "eta_sparsify": 2 / lam_dense,
            "eta_diverge": 2 / lam_one, "lambda_dense": lam_dense, "lambda_one": lam_one}


def predicted_sparsity(eta, m: int, M: int, d: int, inputs: str = "gaussian") -> np.ndarray:
    """Smallest sparse fraction of a GD-stable balanced minimum at step eta (absolute), shape of eta.

    k(eta) = ceil(2/(eta lambda_1)) - 1 nonzero neurons per type (lambda_max(k 1) = k lambda_1),
    capped at m/M; sparse fraction 1 - M k / m. NaN where eta >= 2/lambda_1 (no stable minimum).
    """
    eta = np.asarray(eta, dtype=np.float64)
    lam1 = lambda_max_at_minimum(np.ones(M), d, inputs)
    k = np.ceil(2.0 / (eta * lam1)) - 1
    k = np.minimum(k, m / M)
    out = 1.0 - M * k / m
    return np.where(k >= 1, np.clip(out, 0.0, 1.0), np.nan)
