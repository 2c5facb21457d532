"""Population loss through the arc-cosine kernel, its gradient, and the empirical loss.

For x ~ N(0, I_d):  E[relu(u.x) relu(v.x)] = kappa(u, v) = |u||v| (sin t + (pi - t) cos t) / (2 pi),
t the angle between u and v (Cho & Saul 2009). Hence for f = c sum_j a_j relu(w_j.x) and
f* = sum_k a*_k relu(w*_k.x):

    L = 1/2 E[(f - f*)^2] = 1/2 c^2 a^T K(W, W) a - c a^T K(W, W*) a* + 1/2 a*^T K(W*, W*) a*.

For x uniform on S^{d-1}, x = g/|g| with g Gaussian and E|g|^2 = d, so by positive homogeneity
every term, and the loss, is the Gaussian one divided by d.

The loss is >= 0 and the weights of a :class:`TwoLayer` are finite, so a NaN can only come from
float64 overflow (inf - inf, 0 * inf); every loss here reports such an overflow as +inf.
"""
from __future__ import annotations

import numpy as np

from ._kernels.arccos import _path_losses, kernel_matrix as _kernel_matrix, loss_grad
from .checks import as_bool, as_float, as_int, fail, finite_array
from .data import check_inputs
from .network import TwoLayer, check_net, check_same_d


def input_scale(inputs: str, d: int) -> float:
    """1 for Gaussian inputs, 1/d for inputs uniform on the sphere."""
    d = as_int(d, "d", low=1, fix="Pass the input dimension as a whole number.")
    return 1.0 if check_inputs(inputs) == "gaussian" else 1.0 / d


def _overflow_to_inf(loss):
    """NaN -> +inf (a loss that overflowed float64 is +inf; see the module docstring)."""
    return np.where(np.isnan(loss), np.inf, loss)


def kernel_matrix(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Arc-cosine kernel matrix kappa(U_i, V_j), U (p, d), V (q, d) -> (p, q); zero rows give 0."""
    U = np.ascontiguousarray(finite_array(U, "U", ndim=2))
    V = np.ascontiguousarray(finite_array(V, "V", ndim=2))
    if U.shape[1] != V.shape[1]:
        raise fail("U and V", "(p, d) and (q, d) arrays with the same number of columns d",
                   f"shapes {U.shape} and {V.shape}", "Pass vectors of one input dimension.")
    return _kernel_matrix(U, V)


def teacher_energy(T: TwoLayer) -> float:
    """1/2 E[f*(x)^2] for Gaussian x = 1/2 a*^T K(W*, W*) a* (the loss of a zero student)."""
    check_net(T, "T")
    return 0.5 * float(T.a @ _kernel_matrix(T.W, T.W) @ T.a) * T.c ** 2


def _check_pair(S, T) -> None:
    check_net(S, "S")
    check_net(T, "T")
    check_same_d(S, T, "S and T")


def population_loss_grad(S: TwoLayer, T: TwoLayer, inputs: str = "gaussian"):
    """Exact L and its gradient: (loss float, dL/dW (m, d), dL/da (m,)).

    dL/dw_i = c^2 a_i sum_j a_j d1kappa(w_i, w_j) - c a_i sum_k a*_k d1kappa(w_i, w*_k),
    d1kappa(u, v) = ((pi - t) v + sin t |v| u/|u|) / (2 pi); a zero neuron gets gradient 0.
    A loss that overflows float64 is returned as +inf (the gradient is then not meaningful).
    """
    _check_pair(S, T)
    scale = input_scale(inputs, S.d)
    gW = np.empty((S.m, S.d))
    ga = np.empty(S.m)
    loss = loss_grad(S.W, S.a, S.c, T.W * 1.0, T.a * T.c, teacher_energy(T), scale, True, gW, ga)
    return float(_overflow_to_inf(loss)), gW, ga


def population_loss(S: TwoLayer, T: TwoLayer, inputs: str = "gaussian") -> float:
    """Exact L = 1/2 E_x[(f(x) - f*(x))^2] for 'gaussian' or 'sphere' inputs (float).

    A loss that overflows float64 (e.g. weights of order 1e200) is +inf, never NaN.
    """
    _check_pair(S, T)
    scale = input_scale(inputs, S.d)
    dummy = np.empty((1, 1))
    return float(_overflow_to_inf(loss_grad(S.W, S.a, S.c, T.W * 1.0, T.a * T.c, teacher_energy(T), scale,
                                            False, dummy, np.empty(1))))


def population_grad(S: TwoLayer, T: TwoLayer, inputs: str = "gaussian"):
    """Exact gradient (dL/dW (m, d), dL/da (m,)); see :func:`population_loss_grad`."""
    _, gW, ga = population_loss_grad(S, T, inputs)
    return gW, ga


def path_losses(A: TwoLayer, B: TwoLayer, T: TwoLayer, ts: np.ndarray, inputs: str = "gaussian") -> np.ndarray:
    """Population loss at (1 - t) A + t B for each finite t, shape (len(ts),); parallel over t.

    A loss that overflows float64 is +inf.
    """
    check_net(A, "A")
    check_net(B, "B")
    check_net(T, "T")
    check_same_d(A, B, "A and B")
    check_same_d(A, T, "A and T")
    if A.m != B.m:
        raise fail("A and B", "of the same width m", f"m={A.m} and m={B.m}",
                   "Pad the narrower net first (TwoLayer.pad).")
    ts = np.ascontiguousarray(finite_array(ts, "ts", ndim=1))
    scale = input_scale(inputs, A.d)
    return _overflow_to_inf(_path_losses(A.W, A.a, A.c, B.W, B.a, B.c, ts, T.W * 1.0, T.a * T.c,
                                         teacher_energy(T), scale))


def empirical_loss(S: TwoLayer, X: np.ndarray, y: np.ndarray) -> float:
    """1/(2n) sum_p (f(x_p) - y_p)^2 for finite X (n, d), y (n,); +inf if it overflows float64."""
    check_net(S, "S")
    f = S.forward(X)  # checks X: finite, (n, d)
    r = f - finite_array(y, "y", shape=(f.shape[0],))
    loss = 0.5 * float(np.mean(r * r))
    return np.inf if np.isnan(loss) else loss


def hessian_max_eig(S: TwoLayer, T: TwoLayer, inputs: str = "gaussian", train_a: bool = False,
                    eps: float = 1e-6) -> float:
    """Largest eigenvalue lambda_max of the population-loss Hessian at S.

    Hessian-vector products are central differences of the exact gradient,
    Hv ~ (g(theta + eps v) - g(theta - eps v)) / (2 eps), fed to Lanczos (scipy eigsh).
    Parameters are W (and a if train_a). Zero neurons are a non-smooth point of L; call this
    away from them (e.g. at the initialisation). GD on a quadratic is stable iff lr < 2/lambda_max.
    ``eps`` is the relative finite-difference step (> 0).
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    _check_pair(S, T)
    check_inputs(inputs)
    train_a = as_bool(train_a, "train_a")
    eps = as_float(eps, "eps", low=0, open_low=True, fix="Pass a small step such as 1e-6.")
    m, d = S.m, S.d
    nW = m * d
    n = nW + (m if train_a else 0)

    def grad(theta):
        W = theta[:nW].reshape(m, d)
        a = theta[nW:] if train_a else S.a
        gW, ga = population_grad(TwoLayer(W, a, S.c), T, inputs)
        return np.concatenate([gW.ravel(), ga]) if train_a else gW.ravel()

    theta0 = np.concatenate([S.W.ravel(), S.a]) if train_a else S.W.ravel().copy()
    scale = eps * max(1.0, float(np.linalg.norm(theta0)) / np.sqrt(n))

    def hvp(v):
        v = np.asarray(v).ravel()
        nv = np.linalg.norm(v)
        if nv == 0:
            return np.zeros(n)
        h = scale / nv
        return (grad(theta0 + h * v) - grad(theta0 - h * v)) / (2 * h)

    if n <= 2:
        H = np.column_stack([hvp(e) for e in np.eye(n)])
        return float(np.max(np.linalg.eigvalsh(0.5 * (H + H.T))))
    op = LinearOperator((n, n), matvec=hvp, dtype=np.float64)
    v0 = np.ones(n) / np.sqrt(n)
    return float(eigsh(op, k=1, which="LA", v0=v0, tol=1e-6, return_eigenvectors=False)[0])
