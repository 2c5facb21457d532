"""Permutation specs as data: which axes of which state_dict entries each hidden permutation acts on.

A :class:`PermutationSpec` maps every state_dict key to a tuple with one entry per tensor axis:
the name of the permutation acting on that axis, or ``None``. E.g. for an MLP layer
``"fc1.weight": ("P1", "P0")`` (out axis permuted by P1, in axis by P0), ``"fc1.bias": ("P1",)``,
``"norm1.running_mean": ("P1",)``, ``"norm1.num_batches_tracked": ()``.

Residual streams share one permutation across a stage (the stem output, every block output
and the projection shortcut of the stage all carry ``S<stage>``), because the identity shortcut
adds them channel by channel. ``act_points`` names, for each permutation, the ReLU modules whose
output channels (axis 1) it permutes; activation matching and sparsity read them.

Convention (:func:`apply_perm`): permuting axis ``a`` of a tensor w by ``perm``
gives ``w.index_select(a, perm)``, i.e. new unit i is old unit ``perm[i]``.

Reference: Ainsworth, Hayase, Srinivasa 2022, arXiv:2209.04836 (``PermutationSpec``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PermutationSpec:
    """Axes of every state_dict entry and the activation points of every permutation.

    Attributes
    ----------
    axes : dict[str, tuple[str | None, ...]]
        state_dict key -> permutation name (or None) per tensor axis.
    act_points : dict[str, tuple[str, ...]]
        permutation name -> module names whose output has that permutation on axis 1.
    """

    axes: dict
    act_points: dict = field(default_factory=dict)

    @property
    def perms(self) -> list[str]:
        """Permutation names in first-appearance order."""
        seen: dict = {}
        for ax in self.axes.values():
            for p in ax:
                if p is not None:
                    seen.setdefault(p, None)
        return list(seen)

    def perm_to_axes(self) -> dict[str, list[tuple[str, int]]]:
        """permutation name -> [(state_dict key, axis), ...] it acts on."""
        out: dict = {p: [] for p in self.perms}
        for key, ax in self.axes.items():
            for a, p in enumerate(ax):
                if p is not None:
                    out[p].append((key, a))
        return out


def _module_entries(module, prefix: str, out_p: str | None, in_p: str | None) -> dict:
    """Axes for a Linear/Conv (weight (out, in, ...), bias (out,)) or a norm layer (1-d entries)."""
    entries = {}
    for name, tensor in module.state_dict().items():
        key = f"{prefix}.{name}"
        if tensor.ndim == 0:
            entries[key] = ()
        elif tensor.ndim == 1:
            entries[key] = (out_p,)
        else:
            entries[key] = (out_p, in_p) + (None,) * (tensor.ndim - 2)
    return entries


def mlp_spec(model) -> PermutationSpec:
    """Spec of :class:`tsim.deep.models.MLP`: P_i on hidden layer i."""
    axes, points = {}, {}
    for i in range(model.depth):
        p, prev = f"P{i}", (f"P{i - 1}" if i else None)
        axes.update(_module_entries(getattr(model, f"fc{i}"), f"fc{i}", p, prev))
        axes.update(_module_entries(getattr(model, f"norm{i}"), f"norm{i}", p, None))
        points[p] = (f"act{i}",)
    axes.update(_module_entries(model.head, "head", None, f"P{model.depth - 1}"))
    return PermutationSpec(axes, points)


def vgg_spec(model) -> PermutationSpec:
    """Spec of :class:`tsim.deep.models.VGG`: P_i on the channels of conv layer i."""
    axes, points = {}, {}
    for i in range(model.depth):
        p, prev = f"P{i}", (f"P{i - 1}" if i else None)
        axes.update(_module_entries(getattr(model, f"conv{i}"), f"conv{i}", p, prev))
        axes.update(_module_entries(getattr(model, f"norm{i}"), f"norm{i}", p, None))
        points[p] = (f"act{i}",)
    axes.update(_module_entries(model.head, "head", None, f"P{model.depth - 1}"))
    return PermutationSpec(axes, points)


def resnet_spec(model) -> PermutationSpec:
    """Spec of :class:`tsim.deep.models.ResNet`: S_s on the residual stream of stage s, B_k inside block k."""
    axes = {}
    points: dict = {"S0": ["stem_act"]}
    axes.update(_module_entries(model.stem_conv, "stem_conv", "S0", None))
    axes.update(_module_entries(model.stem_norm, "stem_norm", "S0", None))
    stream = "S0"
    for k, block in enumerate(model.blocks):
        stage = k // model.depth
        out_s, inner, pre = f"S{stage}", f"B{k}", f"blocks.{k}"
        axes.update(_module_entries(block.conv1, f"{pre}.conv1", inner, stream))
        axes.update(_module_entries(block.norm1, f"{pre}.norm1", inner, None))
        axes.update(_module_entries(block.conv2, f"{pre}.conv2", out_s, inner))
        axes.update(_module_entries(block.norm2, f"{pre}.norm2", out_s, None))
        if block.projection:
            axes.update(_module_entries(block.shortcut_conv, f"{pre}.shortcut_conv", out_s, stream))
            axes.update(_module_entries(block.shortcut_norm, f"{pre}.shortcut_norm", out_s, None))
        points[inner] = [f"{pre}.act1"]
        points.setdefault(out_s, []).append(f"{pre}.act2")
        stream = out_s
    axes.update(_module_entries(model.head, "head", None, stream))
    return PermutationSpec(axes, {p: tuple(v) for p, v in points.items()})


def spec_for(model) -> PermutationSpec:
    """The spec of a tsim.deep model (dispatch on ``model.arch``), checked against its state_dict."""
    makers = {"mlp": mlp_spec, "vgg": vgg_spec, "resnet": resnet_spec}
    arch = getattr(model, "arch", None)
    if arch not in makers:
        raise TypeError(f"no permutation spec for {type(model).__name__}; expected a tsim.deep model "
                        f"({', '.join(makers)}).")
    spec = makers[arch](model)
    check_spec(spec, model.state_dict(), dict(model.named_modules()))
    return spec


def check_spec(spec: PermutationSpec, state_dict: dict, modules: dict | None = None) -> dict[str, int]:
    """Check a spec against a state_dict; return {permutation name: size}.

    Checks: the spec and the state_dict have the same keys; each entry has one axis name per
    tensor dimension; every axis a permutation acts on has the same length; every activation
    point names a module (when ``modules`` is given).

    Raises
    ------
    ValueError
        Naming the key, the permutation and the sizes at fault.
    """
    missing = [k for k in state_dict if k not in spec.axes]
    extra = [k for k in spec.axes if k not in state_dict]
    if missing:
        raise ValueError(f"state_dict entries without a spec entry: {missing}; add them to the spec "
                         f"(use () for unpermuted scalars).")
    if extra:
        raise ValueError(f"spec entries not in the state_dict: {extra}; remove them or fix the names.")
    sizes: dict = {}
    for key, ax in spec.axes.items():
        shape = tuple(state_dict[key].shape)
        if len(ax) != len(shape):
            raise ValueError(f"spec entry {key!r} has {len(ax)} axes {ax} but the tensor has shape {shape}.")
        for a, p in enumerate(ax):
            if p is None:
                continue
            if sizes.setdefault(p, shape[a]) != shape[a]:
                raise ValueError(f"permutation {p!r} acts on axes of different sizes: {sizes[p]} and "
                                 f"{shape[a]} (axis {a} of {key!r}).")
    if modules is not None:
        for p, names in spec.act_points.items():
            if p not in sizes:
                raise ValueError(f"activation point for unknown permutation {p!r}.")
            for name in names:
                if name not in modules:
                    raise ValueError(f"activation point {name!r} of {p!r} is not a module of the model.")
    return sizes


def random_perms(sizes: dict[str, int], generator):
    """{name: torch.randperm(size, generator=generator)} for every permutation, in sorted-name order."""
    import torch

    return {p: torch.randperm(sizes[p], generator=generator) for p in sorted(sizes)}


def invariance_error(model, spec: PermutationSpec, x, generator) -> float:
    """max |f(x) - f_pi(x)| for random permutations pi from the spec, both in eval mode.

    A correct spec gives a value at float round-off (about 1e-6 in float32).
    """
    import copy

    import torch

    sizes = check_spec(spec, model.state_dict())
    perms = random_perms(sizes, generator)
    other = copy.deepcopy(model)
    other.load_state_dict(apply_perm(spec, perms, model.state_dict()))
    model.eval()
    other.eval()
    with torch.no_grad():
        return float((model(x) - other(x)).abs().max())


def permute_tensor(w, axes: tuple, perms: dict, skip: str | None = None):
    """w with ``perms[p]`` applied on every axis named p (``index_select``), except permutation ``skip``."""
    for a, p in enumerate(axes):
        if p is not None and p != skip:
            w = w.index_select(a, perms[p].to(w.device))
    return w


def apply_perm(spec: PermutationSpec, perms: dict, state_dict: dict) -> dict:
    """A new state_dict with every spec axis permuted: new unit i is old unit perm[i]."""
    return {k: permute_tensor(v, spec.axes[k], perms) for k, v in state_dict.items()}
