"""The record of a registered study (kept apart from the registry so study modules import it alone)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError


def _no_device(cfg, device: str | None):
    """Two-layer studies run on the CPU with Numba: any device but cpu/auto is refused."""
    if device not in (None, "cpu", "auto"):
        raise ConfigError("--device", f"--device {device} applies to study = \"deep\" configs only; two-layer "
                          "studies run on the CPU with Numba. Drop --device.")
    return cfg


@dataclass(frozen=True)
class Study:
    """A registered study.

    Attributes
    ----------
    name : str            the config's top-level ``study``
    run : callable        (cfg, pairs) -> list[dict], one resolved grid cell
    kind : str            which config sections it reads: "two_layer" or "deep"
    prepare : callable    (cfg, device or None) -> cfg before cells are keyed (deep: resolves the device)
    """

    name: str
    run: Callable
    kind: str = "two_layer"
    prepare: Callable = _no_device
