"""Weight and activation matching recover planted permutations; barriers; training determinism."""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core machine

from tsim.deep import barrier, match, mnist, models, spec, train  # noqa: E402


def _planted(arch, shape, norm, seed=0, noise=0.0):
    """(model A, spec, planted perms q, state_dict of B = q(A) + noise)."""
    a = models.build(arch, shape, 5, depth=2, width=1, base=8, norm=norm, seed=seed).eval()
    sp = spec.spec_for(a)
    g = torch.Generator().manual_seed(seed + 100)
    q = spec.random_perms(spec.check_spec(sp, a.state_dict()), g)
    sd_b = spec.apply_perm(sp, q, a.state_dict())
    if noise:
        sd_b = {k: (v + noise * v.std() * torch.randn(v.shape, generator=g)
                    if v.is_floating_point() and v.ndim > 1 else v) for k, v in sd_b.items()}
    return a, sp, q, sd_b


@pytest.mark.parametrize("arch,shape,norm", [("mlp", (12,), "none"), ("vgg", (1, 8, 8), "batch"),
                                             ("resnet", (1, 8, 8), "batch"), ("resnet", (1, 8, 8), "layer")])
def test_weight_matching_recovers_planted_perm(arch, shape, norm):
    a, sp, q, sd_b = _planted(arch, shape, norm, noise=0.01)
    res = match.weight_matching(sp, a.state_dict(), sd_b, seed=0)
    for p, perm in q.items():
        assert torch.equal(res.perms[p], torch.argsort(perm)), p
    aligned = spec.apply_perm(sp, res.perms, sd_b)
    assert all(torch.allclose(aligned[k], v, atol=0.1 * float(v.abs().max()) + 1e-6)
               for k, v in a.state_dict().items() if v.is_floating_point())


def test_weight_matching_is_seeded_and_improves_objective():
    a = models.build("mlp", (10,), 4, depth=3, width=1, base=16, seed=1)
    b = models.build("mlp", (10,), 4, depth=3, width=1, base=16, seed=2)
    sp = spec.spec_for(a)
    r1 = match.weight_matching(sp, a.state_dict(), b.state_dict(), seed=5)
    r2 = match.weight_matching(sp, a.state_dict(), b.state_dict(), seed=5)
    assert all(torch.equal(r1.perms[p], r2.perms[p]) for p in r1.perms)
    ident = match.identity_perms(spec.check_spec(sp, a.state_dict()))
    base = match.weight_matching(sp, a.state_dict(), b.state_dict(), max_iter=1, init=ident, restarts=0)
    keys = [k for k, _ in a.named_parameters()]
    naive = sum(float((a.state_dict()[k] * b.state_dict()[k]).sum()) for k in keys)
    assert r1.objective > naive and r1.objective >= base.objective - 1e-9 and r1.sweeps >= 1


def _noisy_mlp(sizes, noise, seed):
    """(spec, sd_a, sd_b, keys, planted perms aligning B to A): A a random MLP d-h-...-h-c, B = A with
    its hidden units shuffled plus Gaussian noise ``noise`` times each tensor's std (tensors of
    more than one entry)."""
    d, *hidden, c = sizes
    a = models.build("mlp", (d,), c, depth=len(hidden), base=hidden[0], seed=seed)
    sp = spec.spec_for(a)
    g = torch.Generator().manual_seed(seed + 1000)
    q = spec.random_perms(spec.check_spec(sp, a.state_dict()), g)
    sd_b = {k: v + noise * v.std() * torch.randn(v.shape, generator=g) if v.numel() > 1 else v
            for k, v in spec.apply_perm(sp, q, a.state_dict()).items()}
    return sp, a.state_dict(), sd_b, [k for k, _ in a.named_parameters()], {p: torch.argsort(v) for p, v in q.items()}


def _objective(sp, sd_a, sd_b, perms, keys):
    aligned = spec.apply_perm(sp, perms, sd_b)
    return sum(float((sd_a[k].double() * aligned[k].double()).sum()) for k in keys)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_weight_matching_reaches_planted_objective_under_noise(seed):
    """20-64-64-1, noise 2x the weight std: the planted perms are no longer optimal, and coordinate
    descent from the identity stalls below them; the default search gets at least as high."""
    sp, sd_a, sd_b, keys, truth = _noisy_mlp((20, 64, 64, 1), 2.0, seed)
    planted = _objective(sp, sd_a, sd_b, truth, keys)
    cd = match.weight_matching(sp, sd_a, sd_b, seed=seed, keys=keys, init="identity", restarts=0)
    res = match.weight_matching(sp, sd_a, sd_b, seed=seed, keys=keys)
    assert cd.objective < planted - 1.0  # the stall this search escapes
    assert res.objective >= planted - 1e-9
    assert res.objective == pytest.approx(_objective(sp, sd_a, sd_b, res.perms, keys), rel=1e-12, abs=1e-9)


def test_weight_matching_large_noise_beats_planted_and_cd():
    sp, sd_a, sd_b, keys, truth = _noisy_mlp((30, 96, 96, 96, 5), 8.0, 1)
    cd = match.weight_matching(sp, sd_a, sd_b, seed=1, keys=keys, init="identity", restarts=0)
    res = match.weight_matching(sp, sd_a, sd_b, seed=1, keys=keys)
    assert res.objective >= _objective(sp, sd_a, sd_b, truth, keys) and res.objective > cd.objective


@pytest.mark.parametrize("sizes,seed", [((20, 64, 64, 1), 1), ((10, 16, 16, 16, 4), 2), ((50, 128, 128, 128, 10), 3)])
def test_weight_matching_beats_identity_descent_on_independent_nets(sizes, seed):
    d, *hidden, c = sizes
    a = models.build("mlp", (d,), c, depth=len(hidden), base=hidden[0], seed=seed)
    b = models.build("mlp", (d,), c, depth=len(hidden), base=hidden[0], seed=seed + 50)
    sp, keys = spec.spec_for(a), [k for k, _ in a.named_parameters()]
    cd = match.weight_matching(sp, a.state_dict(), b.state_dict(), seed=seed, keys=keys, init="identity", restarts=0)
    res = match.weight_matching(sp, a.state_dict(), b.state_dict(), seed=seed, keys=keys)
    assert res.objective > cd.objective + 1e-6
    assert _is_descent_fixed_point(sp, a.state_dict(), b.state_dict(), res.perms, keys)


def _is_descent_fixed_point(sp, sd_a, sd_b, perms, keys) -> bool:
    """No single permutation's LAP, the others fixed, raises the objective (a coordinate-descent optimum)."""
    base = _objective(sp, sd_a, sd_b, perms, keys)
    for p, perm in perms.items():
        n = len(perm)
        C = torch.zeros(n, n, dtype=torch.float64)
        aligned = spec.apply_perm(sp, {**perms, p: torch.arange(n)}, sd_b)
        for k, axis in sp.perm_to_axes()[p]:
            if k in keys:
                wa = sd_a[k].double().movedim(axis, 0).reshape(n, -1)
                C += wa @ aligned[k].double().movedim(axis, 0).reshape(n, -1).T
        best = torch.from_numpy(match.lap_max(C.numpy()))
        if _objective(sp, sd_a, sd_b, {**perms, p: best}, keys) > base + 1e-9 * max(1.0, abs(base)):
            return False
    return True


def test_weight_matching_is_deterministic_and_options_work():
    sp, sd_a, sd_b, keys, _ = _noisy_mlp((12, 24, 24, 24, 3), 1.0, 5)
    runs = [match.weight_matching(sp, sd_a, sd_b, seed=7, keys=keys) for _ in range(2)]
    assert all(torch.equal(runs[0].perms[p], runs[1].perms[p]) for p in runs[0].perms)
    assert runs[0].objective == runs[1].objective and runs[0].restarts == runs[1].restarts > 0
    assert runs[0].start in ("layerwise", "anneal", "kick") and runs[0].laps > 0
    for init in ("anneal", "identity"):
        r = match.weight_matching(sp, sd_a, sd_b, seed=7, keys=keys, init=init, restarts=2)
        assert all(torch.equal(torch.sort(v).values, torch.arange(len(v))) for v in r.perms.values())
    assert match.weight_matching(sp, sd_a, sd_b, keys=keys, time_budget=0.0).restarts == 0
    assert match.weight_matching(sp, sd_a, sd_b, keys=keys, budget=0.0).restarts == 0
    with pytest.raises(ValueError, match="init"):
        match.weight_matching(sp, sd_a, sd_b, init="random")
    with pytest.raises(ValueError, match="not a permutation"):
        match.weight_matching(sp, sd_a, sd_b, init={p: torch.zeros(24, dtype=torch.long) for p in runs[0].perms})


def test_weight_matching_anneal_on_resnet_spec():
    a = models.build("resnet", (1, 8, 8), 5, depth=2, width=1, base=8, norm="batch", seed=0)
    b = models.build("resnet", (1, 8, 8), 5, depth=2, width=1, base=8, norm="batch", seed=1)
    sp, sd_a, sd_b = spec.spec_for(a), a.state_dict(), b.state_dict()
    cd = match.weight_matching(sp, sd_a, sd_b, seed=3, init="identity", restarts=0)
    for init in ("layerwise", "anneal"):
        res = match.weight_matching(sp, sd_a, sd_b, seed=3, init=init)
        assert res.objective >= cd.objective - 1e-9 and set(res.perms) == set(cd.perms)


@pytest.mark.parametrize("arch,shape,norm", [("mlp", (12,), "none"), ("resnet", (1, 8, 8), "batch")])
def test_activation_matching_recovers_planted_perm(arch, shape, norm):
    a, sp, q, sd_b = _planted(arch, shape, norm, seed=3)
    b = copy.deepcopy(a)
    b.load_state_dict(sd_b)
    X = torch.randn(300, *shape, generator=torch.Generator().manual_seed(4))
    res = match.activation_matching(a, b, sp, X, batch=128)
    for p, perm in q.items():
        assert torch.equal(res.perms[p], torch.argsort(perm)), p
    n_units = sum(len(v) for v in q.values())
    assert res.objective == pytest.approx(n_units, rel=1e-3)  # every matched pair has correlation 1


def test_barrier_formula_and_interpolation():
    t = np.linspace(0, 1, 5)
    curve = np.array([1.0, 2.0, 3.5, 2.0, 3.0])
    from tsim.barriers import barrier_from_losses

    r = barrier_from_losses(t, curve)  # the core reading of a path, shared by two-layer and deep nets
    assert r.value == pytest.approx(3.5 - 2.0) and r.t == 0.5
    a = models.build("mlp", (4,), 3, depth=1, base=5, seed=0).state_dict()
    b = models.build("mlp", (4,), 3, depth=1, base=5, seed=1).state_dict()
    mid = barrier.interpolate_state(a, b, 0.25)
    assert torch.allclose(mid["fc0.weight"], 0.75 * a["fc0.weight"] + 0.25 * b["fc0.weight"])


def test_reset_bn_recomputes_statistics():
    m = models.build("mlp", (6,), 3, depth=1, base=4, norm="batch", seed=0)
    X = torch.randn(256, 6, generator=torch.Generator().manual_seed(0)) * 3 + 1
    barrier.reset_bn(m, X, batches=4, batch=64)
    with torch.no_grad():
        pre = m.fc0(X)
    assert torch.allclose(m.norm0.running_mean, pre.mean(0), atol=1e-5)
    assert not m.training


@pytest.fixture(scope="module")
def trained_pair():
    data = [torch.from_numpy(a) for a in mnist.teacher_arrays((16,), 2000, 500, width=32, depth=2, classes=4, seed=0)]
    nets = []
    for seed in (0, 1):
        net = models.build("mlp", (16,), 4, depth=2, base=32, seed=seed)
        train.train(net, data[0], data[1], lr=0.1, epochs=4, batch=64, seed=seed)
        nets.append(net)
    return nets, data


def test_planted_barrier_zero_after_matching_positive_before(trained_pair):
    (net, _), (Xtr, ytr, Xte, yte) = trained_pair
    sp = spec.spec_for(net)
    q = spec.random_perms(spec.check_spec(sp, net.state_dict()), torch.Generator().manual_seed(9))
    sd_b = spec.apply_perm(sp, q, net.state_dict())
    naive = barrier.barrier(net, net.state_dict(), sd_b, Xte, yte, grid=5)
    res = match.weight_matching(sp, net.state_dict(), sd_b, seed=0)
    wm = barrier.barrier(net, net.state_dict(), spec.apply_perm(sp, res.perms, sd_b), Xte, yte, grid=5)
    assert abs(wm.loss.value) < 1e-5 and abs(wm.error.value) < 1e-9
    assert naive.loss.value > 0.05


def test_matching_lowers_barrier_between_seeds(trained_pair):
    (a, b), (Xtr, ytr, Xte, yte) = trained_pair
    sp = spec.spec_for(a)
    naive = barrier.barrier(a, a.state_dict(), b.state_dict(), Xte, yte, grid=5)
    am = match.activation_matching(a, b, sp, Xtr[:500])
    am_bar = barrier.barrier(a, a.state_dict(), spec.apply_perm(sp, am.perms, b.state_dict()), Xte, yte, grid=5)
    assert am_bar.loss.value < naive.loss.value


def test_training_is_deterministic_and_learns():
    arrays = mnist.teacher_arrays((1, 6, 6), 512, 256, width=16, depth=2, classes=3, seed=1)
    data = [torch.from_numpy(a) for a in arrays]
    out = []
    for _ in range(2):
        net = models.build("resnet", (1, 6, 6), 3, depth=1, base=4, norm="batch", seed=4)
        st = train.train(net, data[0], data[1], lr=0.05, epochs=3, batch=64, seed=4)
        out.append((net.state_dict(), st))
    assert all(torch.equal(v, out[1][0][k]) for k, v in out[0][0].items())
    assert out[0][1].status == "ok" and out[0][1].epoch_loss[-1] < out[0][1].epoch_loss[0]


def test_divergence_is_an_outcome():
    data = [torch.from_numpy(a) for a in mnist.teacher_arrays((8,), 256, 64, width=8, depth=1, classes=3, seed=1)]
    net = models.build("mlp", (8,), 3, depth=2, base=8, seed=0)
    st = train.train(net, data[0] * 1e3, data[1], lr=1e3, epochs=5, batch=32, momentum=0.9, seed=0)
    assert st.status == "diverged"
    assert all(torch.isfinite(v).all() for v in net.state_dict().values())


def test_sparsity_counts_dead_units():
    act = np.array([0.0, 0.0, 1.0, 2.0, 0.001, 3.0])
    s = match.sparsity(act, tol=0.01)
    assert s["dead"] == pytest.approx(2 / 6) and s["sparse"] == pytest.approx(3 / 6)
