"""From a config to grid cells, each with a content key. Works for any sectioned config (two-layer or
deep): a frozen dataclass whose sections are fields, with its sweep axes in ``axes``.

A config with ``regimes`` (``((name, config), ...)``, study "atlas") has as its grid the union of
the regimes' grids, in regime order; each point names its regime under :data:`REGIME`.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, replace

# fields that do not change a cell's numbers and so stay out of its key
_NOT_KEYED = {("sweep", "workers")}
_NOT_KEYED_SECTIONS = ("output", "analysis")
#: the point entry that names the regime of a cell (configs with ``regimes``)
REGIME = "atlas.regime"


@dataclass(frozen=True)
class Cell:
    """One grid point: ``point`` maps swept dotted names to values, ``config`` is fully resolved."""

    key: str
    point: dict
    config: object


def grid(cfg) -> list[dict]:
    """All grid points: a list of {dotted name: value}, the product of ``cfg.axes`` in file order."""
    return list(points(cfg))


def _regimes(cfg) -> tuple:
    return getattr(cfg, "regimes", ())


def points(cfg):
    """The grid points one at a time (an iterator over what :func:`grid` lists)."""
    if _regimes(cfg):
        return ({REGIME: name, **p} for name, rc in _regimes(cfg) for p in points(rc))
    names = [k for k, _ in cfg.axes]
    return (dict(zip(names, combo)) for combo in itertools.product(*(v for _, v in cfg.axes)))


def grid_size(cfg) -> int:
    """Number of grid cells, the product of the axes' lengths (summed over regimes), counted without
    building a cell."""
    if _regimes(cfg):
        return sum(grid_size(rc) for _, rc in _regimes(cfg))
    return math.prod(len(v) for _, v in cfg.axes)


def resolve(cfg, point: dict):
    """The scalar config of one grid point (axes removed; of a config with regimes, the point's regime)."""
    if _regimes(cfg) and REGIME in point:
        rest = {k: v for k, v in point.items() if k != REGIME}
        return resolve(dict(_regimes(cfg))[point[REGIME]], rest)
    sections: dict = {}
    for key, value in point.items():
        sec, fld = key.split(".")
        sections[sec] = replace(sections.get(sec, getattr(cfg, sec)), **{fld: value})
    return replace(cfg, axes=(), **sections)


def cell_key(cfg) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of the resolved config's numeric fields."""
    d = cfg.to_dict()
    for sec in _NOT_KEYED_SECTIONS:
        d.pop(sec, None)
    for sec, fld in _NOT_KEYED:
        d.get(sec, {}).pop(fld, None)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cells(cfg) -> list[Cell]:
    """All cells of the config's grid (a config without axes is one cell)."""
    out = []
    for point in grid(cfg):
        resolved = resolve(cfg, point)
        out.append(Cell(key=cell_key(resolved), point=point, config=resolved))
    return out
