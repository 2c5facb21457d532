"""One API convention for the core: bad input raises TypeError/ValueError naming the parameter,
"<param> must be <rule>; got <value>. <fix>"; shared validators live in tsim.checks."""
import ast
import re
from pathlib import Path

import numpy as np
import pytest

import tsim
from tsim import checks


def raises(exc, name, fn, *args, **kwargs):
    """Assert fn(*args, **kwargs) raises exc with a message of the form '<name> must ...; got ...'."""
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert msg.startswith(f"{name} must"), msg
    assert "; got " in msg, msg
    return msg


@pytest.fixture
def nets(teacher):
    W0, a0 = tsim.init_ensemble(2, 4, teacher.d, [np.random.default_rng(s) for s in (1, 2)])
    return W0, a0


@pytest.fixture
def sample(teacher):
    X = tsim.sample_inputs(12, teacher.d, "gaussian", np.random.default_rng(3))
    return X, teacher.forward(X)


# ---------------------------------------------------------------------------------------------
# tsim.checks


def test_checks_imports_numpy_only():
    src = (Path(tsim.__file__).parent / "checks.py").read_text()
    mods = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mods.add("." if node.level else node.module.split(".")[0])
    assert mods <= {"__future__", "numbers", "operator", "reprlib", "numpy"}, mods


def test_as_int():
    assert checks.as_int(3, "n") == 3 and type(checks.as_int(np.int32(3), "n")) is int
    assert checks.as_int(4.0, "n") == 4 and checks.as_int(np.float64(4.0), "n") == 4
    assert checks.as_int(np.array(5), "n") == 5
    msg = raises(ValueError, "steps", checks.as_int, 2.7, "steps", low=1, fix="Pass a whole number of steps.")
    assert msg == "steps must be an integer >= 1; got 2.7. Pass a whole number of steps."
    raises(ValueError, "n", checks.as_int, 2.5, "n")
    raises(ValueError, "n", checks.as_int, np.nan, "n")
    raises(ValueError, "n", checks.as_int, 0, "n", low=1)
    raises(ValueError, "n", checks.as_int, 9, "n", low=1, high=8)
    for bad in (True, "3", None, [3], np.array([3])):
        raises(TypeError, "n", checks.as_int, bad, "n")


def test_as_float():
    assert checks.as_float(1, "lr") == 1.0 and checks.as_float(np.float32(0.5), "lr") == 0.5
    assert checks.as_float(np.inf, "tol", low=0, finite=False) == np.inf
    raises(ValueError, "tol", checks.as_float, np.nan, "tol", low=0, finite=False)
    raises(ValueError, "lr", checks.as_float, np.inf, "lr")
    raises(ValueError, "lr", checks.as_float, 0.0, "lr", low=0, open_low=True)
    raises(ValueError, "level", checks.as_float, 1.0, "level", low=0, high=1, open_high=True)
    for bad in (True, "0.1", None, [0.1]):
        raises(TypeError, "lr", checks.as_float, bad, "lr")


def test_finite_array():
    X = np.ones((3, 2))
    assert checks.finite_array(X, "X", ndim=2) is X  # no copy
    X[1, 0] = np.nan
    msg = raises(ValueError, "X", checks.finite_array, X, "X")
    assert "nan at index (1, 0)" in msg
    raises(ValueError, "X", checks.finite_array, np.ones(3), "X", ndim=2)
    raises(ValueError, "y", checks.finite_array, np.ones(3), "y", shape=(4,))
    raises(TypeError, "X", checks.finite_array, [["a", "b"]], "X")


def test_int_array():
    assert checks.int_array([0, 2.0, 5], "checkpoints", low=0, high=5).tolist() == [0, 2, 5]
    raises(ValueError, "checkpoints", checks.int_array, [0, 2.5], "checkpoints")
    raises(ValueError, "checkpoints", checks.int_array, [0, 7], "checkpoints", low=0, high=5)
    raises(TypeError, "checkpoints", checks.int_array, ["a"], "checkpoints")


def test_as_generator():
    g = np.random.default_rng(0)
    assert checks.as_generator(g) is g
    assert checks.as_generator(5).random() == np.random.default_rng(5).random()
    msg = raises(TypeError, "rng", checks.as_generator, None)
    assert msg.endswith("Pass numpy.random.default_rng(seed).")
    raises(TypeError, "rng", checks.as_generator, np.random.RandomState(0))
    raises(TypeError, "rng", checks.as_generator, 1.5)
    raises(ValueError, "seed", checks.as_generator, -1, "seed")


def test_as_generators():
    gs = [np.random.default_rng(s) for s in range(3)]
    assert checks.as_generators(gs, 3) == gs
    assert len(checks.as_generators(np.arange(3), 3)) == 3
    assert len(checks.as_generators(np.random.default_rng(0), 1)) == 1
    msg = raises(ValueError, "rngs", checks.as_generators, gs, 2)
    assert "E=2" in msg and "3 of them" in msg
    raises(ValueError, "rngs", checks.as_generators, gs[0], 3)
    raises(TypeError, "rngs", checks.as_generators, None, 3)
    raises(TypeError, "rngs[1]", checks.as_generators, [gs[0], None], 2)


# ---------------------------------------------------------------------------------------------
# counts must be whole numbers


def test_non_integer_counts():
    raises(ValueError, "M", tsim.Teacher.orthonormal, M=2.5, d=8)
    raises(ValueError, "d", tsim.Teacher.orthonormal, M=3, d=2)
    raises(ValueError, "d", tsim.Teacher.random, M=3, d=8.5, seed=0)
    raises(TypeError, "seed", tsim.Teacher.random, M=3, d=8, seed=None)
    raises(ValueError, "E", tsim.init_ensemble, 2.5, 4, 5, [0, 1])
    raises(ValueError, "m", tsim.init_ensemble, 2, 2.7, 5, [0, 1])
    raises(ValueError, "d", tsim.init_ensemble, 2, 4, 0, [0, 1])
    raises(ValueError, "m", tsim.TwoLayer.init, m=3.5, d=5, rng=np.random.default_rng(0))
    raises(TypeError, "rng", tsim.TwoLayer.init, m=3, d=5, rng=None)
    raises(ValueError, "n", tsim.sample_inputs, n=3.5, d=5, inputs="gaussian", rng=np.random.default_rng(0))
    raises(TypeError, "rng", tsim.sample_inputs, n=3, d=5, inputs="gaussian", rng=None)
    raises(ValueError, "inputs", tsim.sample_inputs, n=3, d=5, inputs="uniform", rng=0)


def test_integral_floats_and_seeds_give_the_same_numbers():
    W1, a1 = tsim.init_ensemble(2, 4, 5, [np.random.default_rng(s) for s in (1, 2)])
    W2, a2 = tsim.init_ensemble(2.0, 4.0, np.int64(5), [1, 2])
    assert np.array_equal(W1, W2) and np.array_equal(a1, a2)
    assert np.array_equal(tsim.sample_inputs(6, 3, "sphere", 4),
                          tsim.sample_inputs(6, 3, "sphere", np.random.default_rng(4)))


def test_init_ensemble_rngs_must_be_one_per_student():
    rngs = [np.random.default_rng(s) for s in range(2)]
    msg = raises(ValueError, "rngs", tsim.init_ensemble, 3, 4, 5, rngs)
    assert "E=3" in msg and "2 of them" in msg
    raises(ValueError, "rngs", tsim.init_ensemble, 2, 4, 5, np.random.default_rng(0))
    raises(ValueError, "sigma0", tsim.init_ensemble, 2, 4, 5, rngs, sigma0=0.0)
    raises(ValueError, "a0", tsim.init_ensemble, 2, 4, 5, rngs, a0=np.nan)


# ---------------------------------------------------------------------------------------------
# networks


def test_twolayer_rejects_non_finite_or_misshaped_weights():
    raises(ValueError, "W", tsim.TwoLayer, np.array([[1.0, np.inf]]), [1.0])
    raises(ValueError, "W", tsim.TwoLayer, np.ones(3), np.ones(3))
    raises(ValueError, "W", tsim.TwoLayer, np.ones((0, 2)), np.ones(0))
    raises(ValueError, "a", tsim.TwoLayer, np.ones((2, 2)), [1.0, np.nan])
    raises(ValueError, "a", tsim.TwoLayer, np.ones((2, 2)), [1.0])
    raises(ValueError, "c", tsim.TwoLayer, np.ones((2, 2)), [1.0, 1.0], np.nan)
    raises(TypeError, "W", tsim.TwoLayer, [["x", "y"]], [1.0])
    raises(ValueError, "W", tsim.Teacher, np.array([[np.nan, 1.0]]))


def test_network_methods(rng):
    S = tsim.TwoLayer(rng.standard_normal((3, 4)), np.ones(3))
    raises(ValueError, "perm", S.permute, [0, 0, 1])
    raises(ValueError, "m", S.pad, 2)
    raises(ValueError, "m", S.pad, 4.5)
    raises(ValueError, "X", S.forward, np.ones((2, 5)))
    raises(ValueError, "X", S.forward, np.full((2, 4), np.nan))
    raises(ValueError, "t", S.interpolate, S, np.nan)
    raises(TypeError, "other", S.interpolate, S.W, 0.5)
    raises(ValueError, "other", S.interpolate, S.pad(4), 0.5)
    assert S.pad(5.0).m == 5


# ---------------------------------------------------------------------------------------------
# networks of different input dimension d


def _d_msg(exc_info, names):
    msg = str(exc_info.value)
    assert msg.startswith(f"{names} must have the same input dimension d; got d="), msg
    assert "pad" not in msg.lower(), msg


def test_different_input_dimension_is_named_d(rng):
    T = tsim.Teacher.orthonormal(M=2, d=5)
    S = tsim.TwoLayer(rng.standard_normal((3, 4)), np.ones(3))
    S5 = tsim.TwoLayer(rng.standard_normal((3, 5)), np.ones(3))
    for fn in (tsim.population_loss, tsim.population_loss_grad, tsim.population_grad, tsim.hessian_max_eig):
        with pytest.raises(ValueError) as info:
            fn(S, T)
        _d_msg(info, "S and T")
        assert str(info.value) == ("S and T must have the same input dimension d; got d=4 and d=5. "
                                   "Networks only meet on the same inputs x in R^d.")
    with pytest.raises(ValueError) as info:
        tsim.path_losses(S, S5, T, [0.0, 1.0])
    _d_msg(info, "A and B")
    with pytest.raises(ValueError) as info:
        tsim.path_losses(S, S, T, [0.0, 1.0])
    _d_msg(info, "A and T")
    with pytest.raises(ValueError) as info:
        S.interpolate(S5, 0.5)
    _d_msg(info, "self and other")
    with pytest.raises(ValueError) as info:
        tsim.train_population(S.W, S.a, T, lr=0.1, steps=1)
    assert "input dimension d; got d=4 and d=5" in str(info.value)
    with pytest.raises(ValueError) as info:
        tsim.train_gd(S.W, S.a, np.ones((3, 5)), np.ones(3), lr=0.1, steps=1)
    assert "input dimension d; got d=4 and d=5" in str(info.value)
    with pytest.raises(ValueError, match="U and V"):
        tsim.kernel_matrix(S.W, S5.W)


def test_a_network_argument_must_be_a_network(teacher, rng):
    S = tsim.TwoLayer(rng.standard_normal((3, teacher.d)), np.ones(3))
    raises(TypeError, "S", tsim.population_loss, S.W, teacher)
    raises(TypeError, "T", tsim.population_loss, S, teacher.W)
    raises(TypeError, "T", tsim.teacher_energy, None)
    raises(TypeError, "S", tsim.sparse_fraction, S.W)
    raises(TypeError, "teacher", tsim.labels, None, np.ones((2, teacher.d)), 0.0, None)
    raises(TypeError, "T", tsim.train_population, S.W, S.a, None, lr=0.1, steps=1)
    raises(ValueError, "inputs", tsim.population_loss, S, teacher, "uniform")
    raises(TypeError, "train_a", tsim.hessian_max_eig, S, teacher, train_a=1)
    raises(ValueError, "eps", tsim.hessian_max_eig, S, teacher, eps=0.0)
    raises(ValueError, "rel", tsim.sparse_fraction, S, np.nan)


# ---------------------------------------------------------------------------------------------
# samples


def test_non_finite_or_misshaped_samples(teacher, nets, sample):
    W0, a0 = nets
    X, y = sample
    Xbad = X.copy()
    Xbad[3, 1] = np.nan
    ybad = y.copy()
    ybad[2] = np.inf
    S = tsim.TwoLayer(W0[0], a0[0])
    msg = raises(ValueError, "X", tsim.empirical_loss, S, Xbad, y)
    assert "nan at index (3, 1)" in msg
    raises(ValueError, "y", tsim.empirical_loss, S, X, ybad)
    raises(ValueError, "y", tsim.empirical_loss, S, X, y[:-1])
    raises(ValueError, "X", tsim.labels, teacher, Xbad, 0.0, None)
    raises(ValueError, "X", tsim.labels, teacher, Xbad, 0.1, np.random.default_rng(0))
    raises(TypeError, "rng", tsim.labels, teacher, X, 0.1, None)
    raises(ValueError, "noise", tsim.labels, teacher, X, -0.1, None)
    raises(ValueError, "noise", tsim.labels, teacher, X, np.nan, None)
    sgd = dict(lr=0.1, steps=2, batch=4, rng=np.random.default_rng(0))
    for train, kw in ((tsim.train_gd, dict(lr=0.1, steps=2)), (tsim.train_sgd, sgd)):
        raises(ValueError, "X", train, W0, a0, Xbad, y, **kw)
        raises(ValueError, "X", train, W0, a0, np.broadcast_to(Xbad, (2,) + X.shape), np.stack([y, y]), **kw)
        raises(ValueError, "y", train, W0, a0, X, ybad, **kw)
        raises(ValueError, "y", train, W0, a0, X, y[:-1], **kw)
        raises(ValueError, "y", train, W0, a0, X, np.stack([y, y]), **kw)
        raises(ValueError, "X", train, W0, a0, np.ones((3,) + X.shape), np.ones((3, X.shape[0])), **kw)


# ---------------------------------------------------------------------------------------------
# trainer arguments


def _trainers(teacher, X, y):
    return [
        lambda W0, a0, **kw: tsim.train_population(W0, a0, teacher, **kw),
        lambda W0, a0, **kw: tsim.train_gd(W0, a0, X, y, **kw),
        lambda W0, a0, **kw: tsim.train_sgd(W0, a0, X, y, batch=4, rng=np.random.default_rng(0), **kw),
    ]


def test_trainer_counts_and_step_sizes(teacher, nets, sample):
    W0, a0 = nets
    for train in _trainers(teacher, *sample):
        msg = raises(ValueError, "steps", train, W0, a0, lr=0.1, steps=2.7)
        assert msg == "steps must be an integer >= 1; got 2.7. Pass a whole number of steps."
        raises(ValueError, "steps", train, W0, a0, lr=0.1, steps=0)
        raises(TypeError, "steps", train, W0, a0, lr=0.1, steps=None)
        raises(ValueError, "record_every", train, W0, a0, lr=0.1, steps=3, record_every=1.5)
        raises(ValueError, "record_every", train, W0, a0, lr=0.1, steps=3, record_every=0)
        for lr in (0.0, -0.1, np.nan, np.inf, [0.1, -0.1], [0.1, np.nan], [0.1, 0.1, 0.1]):
            raises(ValueError, "lr", train, W0, a0, lr=lr, steps=3)
        raises(TypeError, "lr", train, W0, a0, lr="0.1", steps=3)
        raises(ValueError, "tol", train, W0, a0, lr=0.1, steps=3, tol=np.nan)
        raises(ValueError, "tol", train, W0, a0, lr=0.1, steps=3, tol=-1.0)
        raises(ValueError, "checkpoints", train, W0, a0, lr=0.1, steps=3, checkpoints=[0, 1.5])
        raises(ValueError, "checkpoints", train, W0, a0, lr=0.1, steps=3, checkpoints=[0, 4])
        raises(ValueError, "W0", train, W0 * np.nan, a0, lr=0.1, steps=3)
        raises(ValueError, "W0", train, W0[0, 0], a0, lr=0.1, steps=3)
        raises(ValueError, "a0", train, W0, np.ones(3), lr=0.1, steps=3)
        raises(ValueError, "a0", train, W0, a0 * np.inf, lr=0.1, steps=3)
        raises(ValueError, "c", train, W0, a0, lr=0.1, steps=3, c=np.nan)
        raises(TypeError, "train_a", train, W0, a0, lr=0.1, steps=3, train_a="yes")


def test_batch_and_rng_of_sgd(nets, sample):
    W0, a0 = nets
    X, y = sample
    for batch in (2.5, 0, X.shape[0] + 1):
        raises(ValueError, "batch", tsim.train_sgd, W0, a0, X, y, lr=0.1, steps=2, batch=batch,
               rng=np.random.default_rng(0))
    msg = raises(TypeError, "rng", tsim.train_sgd, W0, a0, X, y, lr=0.1, steps=2, batch=4, rng=None)
    assert "numpy.random.default_rng(seed)" in msg
    with pytest.raises(TypeError):
        tsim.train_sgd(W0, a0, X, y, lr=0.1, steps=2, batch=4)  # rng is required
    msg = raises(ValueError, "rng", tsim.train_sgd, W0, a0, X, y, lr=0.1, steps=2, batch=4,
                 rng=[np.random.default_rng(0)] * 3)
    assert "E=2" in msg and "3 of them" in msg
    raises(TypeError, "rng", tsim.train_sgd, W0, a0, X, y, lr=0.1, steps=2, batch=4,
           rng=np.random.RandomState(0))


def test_sgd_with_one_generator_per_student(teacher, sample):
    X, y = sample
    W0, a0 = tsim.init_ensemble(3, 4, teacher.d, [np.random.default_rng(s) for s in range(3)])
    kw = dict(lr=0.05, steps=40, batch=4, record_every=10)
    ens = tsim.train_sgd(W0, a0, X, y, rng=[np.random.default_rng([5, e]) for e in range(3)], **kw)
    for e in range(3):  # student e's noise depends on its own Generator only
        alone = tsim.train_sgd(W0[e:e + 1], a0[e:e + 1], X, y, rng=[np.random.default_rng([5, e])], **kw)
        assert np.array_equal(ens.W[e], alone.W[0]) and np.array_equal(ens.curve[e], alone.curve[0], equal_nan=True)
    # one Generator: the E seeds are rng.integers(0, 2**63, size=E, dtype=uint64), as before
    one = tsim.train_sgd(W0[:1], a0[:1], X, y, rng=np.random.default_rng(9), **kw)
    seq = tsim.train_sgd(W0[:1], a0[:1], X, y, rng=[np.random.default_rng(9)], **kw)
    seed = tsim.train_sgd(W0[:1], a0[:1], X, y, rng=9, **kw)
    assert np.array_equal(one.W, seq.W) and np.array_equal(one.W, seed.W)


def test_train_result_indices(teacher, nets):
    W0, a0 = nets
    res = tsim.train_population(W0, a0, teacher, lr=0.05, steps=4, checkpoints=[0, 4])
    assert np.array_equal(res.student(-1).W, res.W[1])
    raises(ValueError, "e", res.student, 2)
    raises(ValueError, "e", res.student, 0.5)
    raises(ValueError, "k", res.checkpoint, 0, 2)
    assert np.array_equal(res.checkpoint(1, 1).W, res.W[1])


# ---------------------------------------------------------------------------------------------
# overflow


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_overflowing_loss_is_inf_not_nan(teacher, rng):
    S = tsim.TwoLayer(rng.standard_normal((3, teacher.d)) * 1e200, np.ones(3))
    assert tsim.population_loss(S, teacher) == np.inf
    assert tsim.population_loss(S, teacher, "sphere") == np.inf
    assert tsim.population_loss_grad(S, teacher)[0] == np.inf
    S0 = tsim.TwoLayer(rng.standard_normal((3, teacher.d)), np.ones(3))
    path = tsim.path_losses(S, S0, teacher, np.linspace(0, 1, 5))
    assert not np.any(np.isnan(path)) and path[0] == np.inf and np.isfinite(path[-1])
    X = tsim.sample_inputs(8, teacher.d, "gaussian", rng)
    big = tsim.TwoLayer(np.abs(S.W) * 1e100, np.array([1e200, -1e200, 0.0]))
    assert tsim.empirical_loss(big, X, np.zeros(8)) == np.inf


# ---------------------------------------------------------------------------------------------
# fit


def test_fit_power_law_arguments():
    m, v = [4, 8, 16], [1.0, 0.5, 0.25]
    raises(ValueError, "n_boot", tsim.fit_power_law, m, v, n_boot=20.5)
    raises(ValueError, "level", tsim.fit_power_law, m, v, n_boot=20, level=np.nan)
    raises(ValueError, "m", tsim.fit_power_law, [4, np.nan, 16], v, n_boot=20)
    raises(TypeError, "rng", tsim.fit_power_law, m, v, n_boot=20, rng="x")
    raises(TypeError, "seed", tsim.fit_power_law, m, v, n_boot=20, seed=None)
    a = tsim.fit_power_law(m, v, n_boot=20, seed=3)
    b = tsim.fit_power_law(m, v, n_boot=20.0, rng=np.random.default_rng(3))
    assert a.alpha == pytest.approx(1.0) and a.ci == b.ci
    assert re.match(r"m must be finite", str(pytest.raises(ValueError, a.predict, [np.nan]).value))
