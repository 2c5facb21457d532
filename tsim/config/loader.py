"""Loading a config: TOML -> validated, frozen sections; sweep axes -> a grid of resolved cells.

A config file has a top-level ``study`` (default ``"lmc"``; the names of :data:`tsim.studies.STUDIES`),
the sections of that study's kind (:mod:`tsim.config.sections` for two-layer studies,
:mod:`tsim.config.deep` for ``deep``) and an optional ``[quick]`` table with the same layout whose
values replace the others under ``--quick`` (validated either way).

Any scalar field may instead hold a sweep axis; the grid is the product of all axes:

- a list, ``m = [2, 4, 8]``;
- ``{logspace = [lo, hi, n]}``: n values 10**lo .. 10**hi;
- ``{geomspace = [lo, hi, n]}``: n values lo .. hi, geometric (rounded for int fields);
- ``{linspace = [lo, hi, n]}``;
- ``{range = [lo, hi]}`` or ``{range = [lo, hi, step]}``: integers lo .. hi inclusive.

Every error is a :class:`tsim.errors.ConfigError` naming the field, the rule, the value and the fix.
"""
from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..studies import STUDIES
from . import deep as deep_sections
from .constraints import Interval
from ..sweep.grid import grid, resolve
from .sections import SECTIONS, Config

#: study kind -> (its sections, its config class, its cross-field check)
KINDS = {"two_layer": (SECTIONS, Config), "deep": (deep_sections.SECTIONS, deep_sections.DeepConfig)}


# --------------------------------------------------------------------------- validation
def _fail(key: str, rule_, value, fix: str) -> ConfigError:
    return ConfigError(key, f"{key} must be {rule_.describe()}; got {value!r}. {fix[0].upper() + fix[1:]}."
                       if fix else f"{key} must be {rule_.describe()}; got {value!r}.")


def _expand_axis(key: str, spec: Any, rule_) -> list:
    """Turn a sweep spec (list or {logspace|geomspace|linspace|range = [...]}) into values."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(key, f"{key} is an empty list; give at least one value.")
        return spec
    (how, args), = spec.items() if len(spec) == 1 else (("?", None),)
    forms = ("logspace", "geomspace", "linspace", "range")
    if how not in forms or not isinstance(args, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in args):
        raise ConfigError(key, f"{key} must be a value, a list, or one of {{{' | '.join(forms)} = [lo, hi, n]}}; "
                          f"got {spec!r}. Write e.g. {key.split('.')[1]} = {{logspace = [-3, 0, 7]}}.")
    if how == "range":
        if len(args) not in (2, 3):
            raise ConfigError(key, f"{key} = {{range = [lo, hi(, step)]}} takes 2 or 3 numbers; got {args!r}.")
        step = int(args[2]) if len(args) == 3 else 1
        if step < 1:
            raise ConfigError(key, f"{key}: the range step must be >= 1; got {step}.")
        return list(range(int(args[0]), int(args[1]) + 1, step))
    if len(args) != 3 or int(args[2]) < 1:
        raise ConfigError(key, f"{key} = {{{how} = [lo, hi, n]}} takes 3 numbers with n >= 1; got {args!r}.")
    lo, hi, n = float(args[0]), float(args[1]), int(args[2])
    if how == "logspace":
        vals = np.logspace(lo, hi, n)
    elif how == "geomspace":
        if lo <= 0 or hi <= 0:
            raise ConfigError(key, f"{key} = {{geomspace = ...}} needs positive ends; got {args!r}.")
        vals = np.geomspace(lo, hi, n)
    else:
        vals = np.linspace(lo, hi, n)
    if isinstance(rule_, Interval) and rule_.kind is int:
        return sorted(set(int(round(v)) for v in vals))
    return [float(v) for v in vals]


def parse_section(name: str, cls: type, raw: Any, axes: list) -> Any:
    """Validate table ``[name]`` into dataclass ``cls``; sweep axes are appended to ``axes``."""
    if not isinstance(raw, dict):
        raise ConfigError(name, f"[{name}] must be a table of keys; got {raw!r}.")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        dotted = f"{name}.{key}"
        if key not in known:
            raise ConfigError(dotted, f"unknown key {dotted}. Allowed keys in [{name}]: "
                              f"{', '.join(known)}. Fix the spelling or remove it.")
        f = known[key]
        rule_, fix = f.metadata["rule"], f.metadata["fix"]
        is_axis = isinstance(value, dict) or (isinstance(value, list) and not getattr(rule_, "takes_list", False))
        if is_axis:
            if not f.metadata["sweepable"]:
                raise ConfigError(dotted, f"{dotted} cannot be swept; give one value such as "
                                  f"{rule_.example if isinstance(rule_, Interval) else f.default!r}.")
            seq = _expand_axis(dotted, value, rule_)
            checked = []
            for v in seq:
                try:
                    checked.append(rule_.check(v))
                except ValueError:
                    raise _fail(dotted, rule_, v, fix) from None
            axes.append((dotted, tuple(checked)))
            values[key] = checked[0]
        else:
            try:
                values[key] = rule_.check(value)
            except ValueError:
                raise _fail(dotted, rule_, value, fix) from None
    return cls(**values)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            and not _is_axis_spec(v) else v
    return out


def _is_axis_spec(v: dict) -> bool:
    return len(v) == 1 and next(iter(v)) in ("logspace", "geomspace", "linspace", "range")


def parse_sections(raw: dict, sections: dict, quick: bool) -> tuple[dict, tuple]:
    """Validate every section of a raw config (``study`` removed), with ``[quick]`` merged in when
    ``quick``; the ``[quick]`` overrides are validated either way, so a bad one fails at once.

    Returns ({section name: section dataclass}, axes).
    """
    if not isinstance(raw, dict):
        raise ConfigError("config", f"a config must be a table of sections; got {type(raw).__name__}.")
    raw = dict(raw)
    raw.pop("study", None)
    quick_raw = raw.pop("quick", {})
    if not isinstance(quick_raw, dict):
        raise ConfigError("quick", "[quick] must be a table of overrides with the same sections.")
    merged = _merge(raw, quick_raw)
    for tag, table in (("", raw), ("quick.", quick_raw)):
        for key in table:
            if key not in sections:
                raise ConfigError(tag + key, f"unknown section [{tag}{key}]. Allowed sections: study, "
                                  f"{', '.join(sections)}, quick. Fix the spelling or remove it.")
    out = None
    for use_quick, table in ((False, raw), (True, merged)):
        axes: list = []
        try:
            parts = {name: parse_section(name, cls, table.get(name, {}), axes) for name, cls in sections.items()}
        except ConfigError as exc:
            if use_quick and not quick:
                raise ConfigError(f"quick.{exc.field}", f"[quick]: {exc}") from None
            raise
        if use_quick == bool(quick):
            out = (parts, tuple(axes))
    return out


def study_of(raw: Any) -> str:
    """The study a raw config names (default "lmc"), checked against the registry."""
    study = raw.get("study", "lmc") if isinstance(raw, dict) else "lmc"
    if study not in STUDIES:
        raise ConfigError("study", f"study must be one of {', '.join(map(repr, STUDIES))}; got {study!r}. "
                          "Set study to a known routine or remove the key (default 'lmc').")
    return study


def from_dict(raw: dict, quick: bool = False):
    """Validate a nested dict (as read from TOML) into the config of its study's kind
    (:class:`~tsim.config.sections.Config` or :class:`~tsim.config.deep.DeepConfig`).

    Raises
    ------
    ConfigError
        Naming the first bad field, the rule, the value and the fix.
    """
    study = study_of(raw)
    sections, cls = KINDS[STUDIES[study].kind]
    parts, axes = parse_sections(raw, sections, quick)
    cfg = cls(study=study, axes=axes, **parts)
    for cell in [cfg] + ([resolve(cfg, p) for p in grid(cfg)] if axes else []):
        check_cross(cell)
    return cfg


def check_cross(cfg) -> None:
    """Rules between fields of one resolved cell."""
    if isinstance(cfg, deep_sections.DeepConfig):
        deep_sections.check_cross(cfg)
        return
    t = cfg.teacher
    if t.kind == "orthonormal" and t.d < t.M:
        raise ConfigError("teacher.d", f"teacher.d must be >= teacher.M ({t.M}) for an orthonormal teacher; "
                          f"got {t.d}. Raise teacher.d or set teacher.kind = \"random\".")
    tr = cfg.train
    if tr.method == "sgd" and tr.batch > tr.n:
        raise ConfigError("train.batch", f"train.batch must be <= train.n ({tr.n}); got {tr.batch}. "
                          f"Lower train.batch or raise train.n.")
    al, n_seq = cfg.align, {"trajectory": cfg.align.checkpoints, "pruning": cfg.align.prune_levels + 1}
    if cfg.study in n_seq and al.perm_at >= n_seq[cfg.study]:
        raise ConfigError("align.perm_at", f"align.perm_at must be -1 or < {n_seq[cfg.study]} (the sequence "
                          f"length of study {cfg.study!r}); got {al.perm_at}. Lower align.perm_at.")


def load(path: str | Path, quick: bool = False) -> tuple[Any, dict]:
    """Read and validate a TOML config; return the config and the raw dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"config file {str(path)!r} does not exist. Give the path of a .toml file, "
                          f"e.g. experiments/width_double_descent.toml.")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{path} is not valid TOML ({exc}). Fix the syntax.") from None
    return from_dict(raw, quick=quick), raw


