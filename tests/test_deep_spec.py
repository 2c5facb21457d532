"""Permutation specs: every model's outputs are invariant under random permutations from its spec."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared 2-core machine

from tsim.deep import models, spec  # noqa: E402
from tsim.deep.spec import apply_perm  # noqa: E402

CASES = [
    ("mlp", (1, 28, 28), "none"), ("mlp", (20,), "batch"), ("mlp", (1, 6, 6), "layer"),
    ("vgg", (1, 28, 28), "batch"), ("vgg", (1, 8, 8), "layer"), ("vgg", (3, 9, 7), "none"),
    ("resnet", (1, 28, 28), "batch"), ("resnet", (1, 8, 8), "layer"), ("resnet", (2, 9, 9), "none"),
]


def _randomised(arch, shape, norm, seed=1):
    """A model with non-trivial norm affine parameters and BatchNorm running statistics."""
    g = torch.Generator().manual_seed(seed)
    m = models.build(arch, shape, 7, depth=2, width=0.5, base=12, norm=norm, seed=seed)
    with torch.no_grad():
        for k, v in m.state_dict().items():
            if "norm" in k and v.is_floating_point():
                v.copy_(torch.rand(v.shape, generator=g) + 0.5)
    return m.eval()


@pytest.mark.parametrize("arch,shape,norm", CASES)
def test_outputs_invariant_under_random_perms(arch, shape, norm):
    m = _randomised(arch, shape, norm)
    sp = spec.spec_for(m)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, *shape, generator=g)
    with torch.no_grad():
        scale = float(m(x).abs().max())
    assert scale > 1e-3
    for _ in range(3):
        assert spec.invariance_error(m, sp, x, g) <= 1e-5 * max(1.0, scale)


@pytest.mark.parametrize("arch,shape,norm", [("mlp", (20,), "batch"), ("resnet", (1, 8, 8), "batch")])
def test_incomplete_spec_breaks_invariance(arch, shape, norm):
    """Dropping the norm layers from the spec must change the outputs (the test can fail)."""
    m = _randomised(arch, shape, norm)
    sp = spec.spec_for(m)
    broken = spec.PermutationSpec({k: (ax if "norm" not in k else (None,) * len(ax)) for k, ax in sp.axes.items()},
                                  sp.act_points)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, *shape, generator=g)
    assert spec.invariance_error(m, broken, x, g) > 1e-3


def test_resnet_spec_shares_stream_perm():
    m = models.build("resnet", (1, 8, 8), 10, depth=2, width=1, base=4, norm="batch")
    sp = spec.spec_for(m)
    assert sp.axes["stem_conv.weight"] == ("S0", None, None, None)
    assert sp.axes["blocks.1.conv2.weight"][0] == "S0"  # identity shortcut: same stream
    assert sp.axes["blocks.2.shortcut_conv.weight"][:2] == ("S1", "S0")  # projection changes stream
    assert sp.axes["blocks.0.norm1.num_batches_tracked"] == ()
    assert sp.act_points["S0"] == ("stem_act", "blocks.0.act2", "blocks.1.act2")
    sizes = spec.check_spec(sp, m.state_dict())
    assert sizes["S0"] == 4 and sizes["S1"] == 8 and sizes["S2"] == 16 and len(sizes) == 3 + 6


def test_check_spec_rejects_bad_specs():
    m = models.build("mlp", (5,), 3, depth=2, width=1, base=4)
    sp = spec.spec_for(m)
    sd = m.state_dict()
    with pytest.raises(ValueError, match="without a spec entry.*fc0.bias"):
        spec.check_spec(spec.PermutationSpec({k: v for k, v in sp.axes.items() if k != "fc0.bias"}), sd)
    with pytest.raises(ValueError, match="different sizes"):
        spec.check_spec(spec.PermutationSpec({**sp.axes, "fc0.weight": ("P0", "P0")}), sd)
    with pytest.raises(ValueError, match="1 axes"):
        spec.check_spec(spec.PermutationSpec({**sp.axes, "fc0.weight": ("P0",)}), sd)
    with pytest.raises(ValueError, match="not a module"):
        spec.check_spec(spec.PermutationSpec(sp.axes, {"P0": ("nope",)}), sd, dict(m.named_modules()))


def test_apply_perm_convention():
    """new unit i of B is old unit perm[i]: rows of fc0.weight are index_selected."""
    m = models.build("mlp", (3,), 2, depth=1, width=1, base=4)
    sp = spec.spec_for(m)
    perm = torch.tensor([2, 0, 3, 1])
    new = apply_perm(sp, {"P0": perm}, m.state_dict())
    assert torch.equal(new["fc0.weight"][0], m.state_dict()["fc0.weight"][2])
    assert torch.equal(new["head.weight"][:, 1], m.state_dict()["head.weight"][:, 0])
