"""Deep classifiers with a width multiplier: MLP, VGG-style convnet, ResNet-20-style net.

Every hidden width is ``max(1, round(base * width))`` (units for the MLP, channels of the first
stage for the conv nets; later stages double). Norm layers are ``"none"``, ``"batch"``
(BatchNorm) or ``"layer"`` (LayerNorm for the MLP, GroupNorm(1, C) for conv nets, i.e. a
LayerNorm over (C, H, W) with a per-channel affine, so hidden permutations act on it).

Every ReLU is its own module (``act*``) so activation matching and sparsity can hook it; the
permutation spec names these points (``tsim.deep.spec``). Every layer has a deterministic cuda
backward (global pooling is a mean, not ``AdaptiveAvgPool2d``), so ``run.deterministic = true``
trains every architecture on cuda without a determinism error.

References
----------
Simonyan, Zisserman 2014, arXiv:1409.1556 (VGG); He et al. 2015, arXiv:1512.03385 (ResNet-20);
Ainsworth, Hayase, Srinivasa 2022, arXiv:2209.04836 (git re-basin widths).
"""
from __future__ import annotations

import math

import torch
from torch import nn

ARCHS = ("mlp", "vgg", "resnet")
NORMS = ("none", "batch", "layer")


BASE_DEFAULT = {"mlp": 128, "vgg": 16, "resnet": 16}


def base_width(arch: str, base: int = 0) -> int:
    """``base``, or the architecture's default (MLP 128 units, VGG/ResNet 16 channels) when 0."""
    return int(base) or BASE_DEFAULT[arch]


def scaled(base: int, width: float) -> int:
    """Hidden width max(1, round(base * width))."""
    return max(1, int(round(base * width)))


def _norm(kind: str, n: int, conv: bool) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(n) if conv else nn.BatchNorm1d(n)
    if kind == "layer":
        return nn.GroupNorm(1, n) if conv else nn.LayerNorm(n)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}; got {kind!r}.")


class GlobalAvgPool(nn.Module):
    """Mean over the spatial axes, (n, C, H, W) -> (n, C).

    Replaces ``nn.AdaptiveAvgPool2d(1)``, whose backward on cuda has no deterministic
    implementation (an error under ``torch.use_deterministic_algorithms(True)``); a mean's
    backward is a broadcast, deterministic everywhere.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class MLP(nn.Module):
    """f(x) = head(relu(norm_{L-1}(fc_{L-1}( ... relu(norm_0(fc_0(flatten x))) ...)))).

    Parameters
    ----------
    in_shape : tuple of int, the shape of one example (flattened to d = prod(in_shape)).
    classes : int, number of outputs.
    depth : int, number of hidden layers L.
    width, base : hidden width h = round(base * width).
    norm : "none" | "batch" | "layer".
    """

    arch = "mlp"

    def __init__(self, in_shape, classes: int = 10, depth: int = 3, width: float = 1.0, base: int = 128,
                 norm: str = "none"):
        super().__init__()
        self.depth, self.norm_kind, self.hidden = depth, norm, scaled(base, width)
        self.flatten = nn.Flatten()
        d = math.prod(in_shape)
        for i in range(depth):
            setattr(self, f"fc{i}", nn.Linear(d if i == 0 else self.hidden, self.hidden))
            setattr(self, f"norm{i}", _norm(norm, self.hidden, conv=False))
            setattr(self, f"act{i}", nn.ReLU())
        self.head = nn.Linear(self.hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (n, classes), for x of shape (n, *in_shape)."""
        h = self.flatten(x)
        for i in range(self.depth):
            h = getattr(self, f"act{i}")(getattr(self, f"norm{i}")(getattr(self, f"fc{i}")(h)))
        return self.head(h)


def vgg_channels(depth: int, width: float, base: int) -> list[int]:
    """Channels of the 3 * depth conv layers: three stages of ``depth`` layers with c, 2c, 4c channels."""
    return [scaled(base, width) * 2 ** (i // depth) for i in range(3 * depth)]


class VGG(nn.Module):
    """conv3x3 -> norm -> relu layers in three stages of ``depth`` layers (c, 2c, 4c channels,
    c = round(base * width)), 2x2 max-pool after each stage (while the image is >= 2 pixels),
    global average pool, linear head. depth = 3 gives 9 conv layers (VGG-11 without its 512 stage)."""

    arch = "vgg"

    def __init__(self, in_shape, classes: int = 10, depth: int = 2, width: float = 1.0, base: int = 16,
                 norm: str = "batch"):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"VGG needs in_shape = (channels, height, width); got {tuple(in_shape)}.")
        self.norm_kind = norm
        self.channels = vgg_channels(depth, width, base)
        self.depth = len(self.channels)  # number of conv layers
        c_in, size = in_shape[0], min(in_shape[1:])
        self.pool_after = []
        for i, c in enumerate(self.channels):
            setattr(self, f"conv{i}", nn.Conv2d(c_in, c, 3, padding=1, bias=norm != "batch"))
            setattr(self, f"norm{i}", _norm(norm, c, conv=True))
            setattr(self, f"act{i}", nn.ReLU())
            last_of_stage = (i + 1) % depth == 0
            pool = last_of_stage and size >= 2
            size = size // 2 if pool else size
            self.pool_after.append(pool)
            c_in = c
        self.pool = nn.MaxPool2d(2)
        self.gap = GlobalAvgPool()
        self.head = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (n, classes), for x of shape (n, C, H, W)."""
        h = x
        for i in range(self.depth):
            h = getattr(self, f"act{i}")(getattr(self, f"norm{i}")(getattr(self, f"conv{i}")(h)))
            if self.pool_after[i]:
                h = self.pool(h)
        return self.head(self.gap(h))


class Block(nn.Module):
    """Basic residual block: act2(norm2(conv2(act1(norm1(conv1 x)))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str):
        super().__init__()
        bias = norm != "batch"
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias)
        self.norm1 = _norm(norm, c_out, conv=True)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias)
        self.norm2 = _norm(norm, c_out, conv=True)
        self.act2 = nn.ReLU()
        self.projection = stride != 1 or c_in != c_out
        if self.projection:
            self.shortcut_conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=bias)
            self.shortcut_norm = _norm(norm, c_out, conv=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        s = self.shortcut_norm(self.shortcut_conv(x)) if self.projection else x
        return self.act2(h + s)


class ResNet(nn.Module):
    """ResNet-20 style (depth = 3 blocks per stage gives 6*3 + 2 = 20 layers): stem conv3x3 with
    c = round(base * width) channels, three stages of ``depth`` blocks with c, 2c, 4c channels
    (stride 1, 2, 2), global average pool, linear head."""

    arch = "resnet"

    def __init__(self, in_shape, classes: int = 10, depth: int = 3, width: float = 1.0, base: int = 16,
                 norm: str = "batch"):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"ResNet needs in_shape = (channels, height, width); got {tuple(in_shape)}.")
        self.depth, self.norm_kind = depth, norm
        c = scaled(base, width)
        self.stage_channels = [c, 2 * c, 4 * c]
        self.stem_conv = nn.Conv2d(in_shape[0], c, 3, padding=1, bias=norm != "batch")
        self.stem_norm = _norm(norm, c, conv=True)
        self.stem_act = nn.ReLU()
        blocks, c_in = [], c
        for s, c_out in enumerate(self.stage_channels):
            for k in range(depth):
                stride = 2 if (s > 0 and k == 0) else 1
                blocks.append(Block(c_in, c_out, stride, norm))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.gap = GlobalAvgPool()
        self.head = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (n, classes), for x of shape (n, C, H, W)."""
        h = self.stem_act(self.stem_norm(self.stem_conv(x)))
        for block in self.blocks:
            h = block(h)
        return self.head(self.gap(h))


def build(arch: str, in_shape, classes: int = 10, depth: int = 3, width: float = 1.0, base: int = 16,
          norm: str = "none", seed: int = 0) -> nn.Module:
    """A freshly initialised model; the init is drawn from ``torch.manual_seed(seed)`` inside a
    forked RNG, so the global torch RNG is untouched and the same seed gives the same weights."""
    classes_ = {"mlp": MLP, "vgg": VGG, "resnet": ResNet}
    if arch not in classes_:
        raise ValueError(f"arch must be one of {ARCHS}; got {arch!r}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return classes_[arch](tuple(in_shape), classes, depth, width, base, norm)
