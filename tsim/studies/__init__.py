"""Study routines: what one grid cell computes, found by walking this package.

Each module (except the private ones and :mod:`~tsim.studies.steps`, the shared steps) defines
``STUDY = Study(...)``; :data:`STUDIES` maps every name to it. A routine takes a resolved config
and pair indices and returns flat result rows; the sweep runner knows studies only by name.
"""
from __future__ import annotations

import importlib
import pkgutil

from ._study import Study


def _discover() -> dict[str, Study]:
    out = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "steps":
            continue
        study = getattr(importlib.import_module(f"{__name__}.{info.name}"), "STUDY", None)
        if isinstance(study, Study):
            out[study.name] = study
    return dict(sorted(out.items()))


#: name -> Study, for every study module of this package
STUDIES: dict[str, Study] = _discover()


def get(name: str) -> Study:
    """The study called ``name``; ValueError listing the known ones otherwise."""
    if name not in STUDIES:
        raise ValueError(f"study must be one of {', '.join(map(repr, STUDIES))}; got {name!r}.")
    return STUDIES[name]
