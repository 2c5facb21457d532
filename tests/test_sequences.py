"""One permutation along training trajectories and pruning sequences."""
import numpy as np
import pytest

import tsim
from tsim.alignment.sequences import masked_gd, prune_sequence, sequence_barriers, trajectory_barriers


def test_one_permutation_connects_a_trajectory_and_its_permuted_copy(teacher, rng):
    W0, a0 = tsim.init_ensemble(1, 5, teacher.d, [rng])
    res = tsim.train_population(W0, a0, teacher, lr=0.05, steps=200, checkpoints=[0, 50, 100, 200])
    p = rng.permutation(5)
    seq_a = [res.checkpoint(0, k) for k in range(4)]
    seq_b = [S.permute(p) for S in seq_a]
    sb = trajectory_barriers(seq_a, seq_b, teacher, at=-1, grid=11)
    assert np.array_equal(sb.perm, np.argsort(p))
    assert np.all(np.abs(sb.single) < 1e-12) and np.all(np.abs(sb.per_step) < 1e-12)
    assert np.all(sb.naive[1:] > 1e-6)


def test_single_equals_per_step_at_the_chosen_step(teacher, rng):
    nets = [tsim.TwoLayer(rng.standard_normal((4, teacher.d)), np.ones(4)) for _ in range(6)]
    sb = sequence_barriers(nets[:3], nets[3:], teacher, at=1, grid=11)
    assert sb.at == 1 and sb.single[1] == pytest.approx(sb.per_step[1]) and sb.agree[1] == 1.0
    with pytest.raises(ValueError, match="at must"):
        sequence_barriers(nets[:3], nets[3:], teacher, at=3)


def test_masked_gd_keeps_pruned_weights_at_zero_and_matches_the_trainer(teacher, rng):
    W0, a0 = tsim.init_ensemble(1, 4, teacher.d, [rng])
    S0 = tsim.TwoLayer(W0[0], a0[0])
    dense, _, _ = masked_gd(S0, teacher, np.ones_like(S0.W), lr=0.05, steps=30)
    ref = tsim.train_population(W0, a0, teacher, lr=0.05, steps=30)
    assert np.allclose(dense.W, ref.W[0], rtol=1e-10, atol=1e-12)
    mask = (rng.random(S0.W.shape) > 0.5).astype(float)
    S, status, _ = masked_gd(S0, teacher, mask, lr=0.05, steps=30)
    assert np.all(S.W[mask == 0] == 0) and status == "max_steps"


def test_prune_sequence_is_nested_and_geometric(teacher, rng):
    W0, a0 = tsim.init_ensemble(1, 6, teacher.d, [rng])
    seq = prune_sequence(tsim.TwoLayer(W0[0], a0[0]), teacher, levels=3, rate=0.5, lr=0.05, steps=50)
    n = W0[0].size
    assert np.allclose(seq.sparsity, [1 - round(n * 0.5 ** k) / n for k in range(4)])
    for k in range(1, 4):
        assert np.all(seq.masks[k] <= seq.masks[k - 1])
        assert np.all(seq.nets[k].W[seq.masks[k] == 0] == 0)
    assert len(seq.status) == 4 and np.all(np.isfinite(seq.loss))
    with pytest.raises(ValueError, match="rate"):
        prune_sequence(tsim.TwoLayer(W0[0], a0[0]), teacher, rate=1.0, lr=0.05, steps=5)
