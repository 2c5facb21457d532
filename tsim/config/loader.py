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
- ``{range = [lo, hi]}`` or ``{range = [lo, hi, step]}``: integers lo .. hi inclusive (whole numbers only,
  lo <= hi).

Every error is a :class:`tsim.errors.ConfigError` naming the field, the rule, the value and the fix.

Regimes (``study = "atlas"``): an array of tables ``[[regime]]``, each with a ``name`` and partial
sections (teacher, student, train, align, atlas) that override the base config for that regime;
the grid is the union of the regimes' grids, and ``--quick`` applies ``[quick]`` on top of each
regime. A study module may define ``reads(cfg) -> set of dotted fields`` (:func:`check_reads`):
then a field that a regime sets (or that the base sets and no regime reads) but does not read is
an error, not silently ignored.

Size guards (:func:`check_grid`, :func:`check_cell_size`), before anything is allocated: a grid of more
than :data:`MAX_CELLS` cells (counted from the axes' lengths, no cell built), an axis of more values,
or a cell whose estimated memory exceeds this machine's or whose estimated work exceeds
:data:`MAX_WORK` multiply-adds is refused with its estimated size, unless ``force`` (``tsim run
--force``). Integers must fit in 64 bits whatever ``force`` says (the kernels count in int64).
"""
from __future__ import annotations

import itertools
import math
import os
import re
import stat
import sys
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..studies import STUDIES
from . import deep as deep_sections
from .constraints import Interval
from ..sweep.grid import grid_size, points, resolve
from .sections import SECTIONS, Config

#: study kind -> (its sections, its config class, its cross-field check)
KINDS = {"two_layer": (SECTIONS, Config), "deep": (deep_sections.SECTIONS, deep_sections.DeepConfig)}


# --------------------------------------------------------------------------- validation
def _fail(key: str, rule_, value, fix: str) -> ConfigError:
    return ConfigError(key, f"{key} must be {rule_.describe()}; got {value!r}. {fix[0].upper() + fix[1:]}."
                       if fix else f"{key} must be {rule_.describe()}; got {value!r}.")


#: most cells a grid may have (and values an axis may have) without --force
MAX_CELLS = 100_000
#: bytes a grid cell costs before it runs: its resolved config in memory and its row in the store
CELL_BYTES = 3_000
#: most multiply-adds one cell may need without --force (about a day at 1e9 per second)
MAX_WORK = 1e14
#: integers must fit in int64 (the Numba kernels and SQLite count in 64 bits)
INT_LIMIT = 2 ** 63
_FORMS = ("logspace", "geomspace", "linspace", "range")


def _whole(v) -> bool:
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _axis_length(key: str, how: str, args: list, force: bool) -> int:
    """Number of values of an axis spec, computed before any value is made; refused above MAX_CELLS."""
    if how == "range":
        if len(args) not in (2, 3):
            raise ConfigError(key, f"{key} = {{range = [lo, hi(, step)]}} takes 2 or 3 numbers; got {args!r}.")
        if not all(_whole(v) for v in args):
            raise ConfigError(key, f"{key} = {{range = [lo, hi(, step)]}} must hold whole numbers; got {args!r}. "
                              f"Use {{linspace = [lo, hi, n]}} for fractional values.")
        lo, hi, step = int(args[0]), int(args[1]), int(args[2]) if len(args) == 3 else 1
        if step < 1:
            raise ConfigError(key, f"{key}: the range step must be >= 1; got {step}.")
        if hi < lo:
            raise ConfigError(key, f"{key} = {{range = [lo, hi]}} must have lo <= hi; got {args!r}, an empty "
                              f"range. Swap the ends: {{range = [{hi}, {lo}]}}.")
        n = (hi - lo) // step + 1
    else:
        if len(args) != 3 or not _whole(args[2]) or int(args[2]) < 1:
            raise ConfigError(key, f"{key} = {{{how} = [lo, hi, n]}} takes 3 numbers with a whole n >= 1; "
                              f"got {args!r}.")
        n = int(args[2])
    if n > MAX_CELLS and not force:
        raise ConfigError(key, f"{key} must have at most {MAX_CELLS:,} values; got {n:,} from {{{how} = {args!r}}}, "
                          f"about {_bytes(n * CELL_BYTES)} of grid cells. Use fewer values, or pass --force to "
                          "run it anyway.")
    return n


def _expand_axis(key: str, spec: Any, rule_, force: bool = False) -> list:
    """Turn a sweep spec (list or {logspace|geomspace|linspace|range = [...]}) into values."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(key, f"{key} is an empty list; give at least one value.")
        return spec
    (how, args), = spec.items() if len(spec) == 1 else (("?", None),)
    if how not in _FORMS or not isinstance(args, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in args):
        raise ConfigError(key, f"{key} must be a value, a list, or one of {{{' | '.join(_FORMS)} = [lo, hi, n]}}; "
                          f"got {spec!r}. Write e.g. {key.split('.')[1]} = {{logspace = [-3, 0, 7]}}.")
    if not all(math.isfinite(v) for v in args):
        raise ConfigError(key, f"{key} = {{{how} = [...]}} must hold finite numbers; got {args!r}. Use finite ends.")
    n = _axis_length(key, how, args, force)
    if how == "range":
        step = int(args[2]) if len(args) == 3 else 1
        return list(range(int(args[0]), int(args[1]) + 1, step))
    lo, hi = float(args[0]), float(args[1])
    if how == "geomspace" and (lo <= 0 or hi <= 0):
        raise ConfigError(key, f"{key} = {{geomspace = ...}} needs positive ends; got {args!r}.")
    with np.errstate(all="ignore"):  # 10**400 becomes inf, which the field's rule then names
        vals = {"logspace": np.logspace, "geomspace": np.geomspace, "linspace": np.linspace}[how](lo, hi, n)
    if isinstance(rule_, Interval) and rule_.kind is int:
        if not np.all(np.isfinite(vals)):
            raise ConfigError(key, f"{key} = {{{how} = {args!r}}} must give finite values; got {vals.tolist()[:3]}. "
                              "Use smaller ends.")
        return sorted(set(int(round(v)) for v in vals))
    return [float(v) for v in vals]


def _check_value(dotted: str, rule_, value, fix: str):
    """One value of a field through its rule; integers must also fit in 64 bits."""
    try:
        v = rule_.check(value)
    except (ValueError, OverflowError):
        raise _fail(dotted, rule_, value, fix) from None
    if isinstance(v, int) and not isinstance(v, bool) and not -INT_LIMIT <= v < INT_LIMIT:
        raise ConfigError(dotted, f"{dotted} must be an integer below 2**63 (about 9.2e18: the kernels count in "
                          f"64 bits); got {value!r}. {fix[0].upper() + fix[1:] if fix else 'Use a smaller value'}.")
    return v


def parse_section(name: str, cls: type, raw: Any, axes: list, force: bool = False) -> Any:
    """Validate table ``[name]`` into dataclass ``cls``; sweep axes are appended to ``axes``.

    ``force`` lifts the limit on the number of values of an axis (:data:`MAX_CELLS`).
    """
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
            seq = _expand_axis(dotted, value, rule_, force)
            checked = [_check_value(dotted, rule_, v, fix) for v in seq]
            axes.append((dotted, tuple(checked)))
            values[key] = checked[0]
        else:
            values[key] = _check_value(dotted, rule_, value, fix)
    return cls(**values)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            and not _is_axis_spec(v) else v
    return out


def _is_axis_spec(v: dict) -> bool:
    return len(v) == 1 and next(iter(v)) in ("logspace", "geomspace", "linspace", "range")


def parse_sections(raw: dict, sections: dict, quick: bool, force: bool = False) -> tuple[dict, tuple]:
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
            parts = {name: parse_section(name, cls, table.get(name, {}), axes, force)
                     for name, cls in sections.items()}
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


def from_dict(raw: dict, quick: bool = False, force: bool = False):
    """Validate a nested dict (as read from TOML) into the config of its study's kind
    (:class:`~tsim.config.sections.Config` or :class:`~tsim.config.deep.DeepConfig`).

    Parameters
    ----------
    raw : dict
        The config as read from TOML.
    quick : bool
        Apply the ``[quick]`` overrides (validated either way).
    force : bool
        Run grids and cells above the size guards (:data:`MAX_CELLS`, memory, :data:`MAX_WORK`).

    Raises
    ------
    ConfigError
        Naming the first bad field, the rule, the value and the fix; for a grid or cell above the size
        guards, its estimated size.
    """
    study = study_of(raw)
    sections, cls = KINDS[STUDIES[study].kind]
    raw, regimes_raw = split_regimes(raw, study)
    parts, axes = parse_sections(raw, sections, quick, force)
    cfg = cls(study=study, axes=axes, **parts)
    if regimes_raw is not None:
        cfg = replace(cfg, regimes=parse_regimes(raw, regimes_raw, sections, cls, quick, force))
    check_study(raw, regimes_raw, cfg)
    check_grid(cfg, force)
    limits = (_ram_bytes(), MAX_WORK)
    for cell in itertools.chain([cfg], (resolve(cfg, p) for p in points(cfg))
                                if axes or getattr(cfg, "regimes", ()) else ()):
        check_cross(cell)
        if not force:
            check_cell_size(cell, *limits)
    return cfg


# --------------------------------------------------------------------------- regimes (study atlas)
#: sections a [[regime]] table may override (sweep, output and analysis are shared by all regimes)
REGIME_SECTIONS = ("teacher", "student", "train", "align", "atlas")
#: the only fields an atlas config may sweep: a regime is one setting, its grid the widths and dimensions
ATLAS_AXES = ("student.m", "teacher.d", "teacher.d_over_M")
ATLAS_GROUPS = ("regime", "d", "matching")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def split_regimes(raw: Any, study: str) -> tuple[Any, list | None]:
    """(raw without ``regime``, the [[regime]] tables or None); [[regime]] and [atlas] only with study atlas."""
    if not isinstance(raw, dict):
        return raw, None
    quick = raw.get("quick")
    if isinstance(quick, dict) and "regime" in quick:
        raise ConfigError("quick.regime", "[quick] cannot hold [[regime]] tables; [quick] applies on top of "
                          "every regime. Move the regime tables to the top level.")
    if study != "atlas":
        if "regime" in raw:
            _atlas_only("regime", "[[regime]] tables apply", study)
        return raw, None
    if "regime" not in raw:
        return raw, None
    raw = dict(raw)
    regimes = raw.pop("regime")
    if not isinstance(regimes, list) or not regimes or not all(isinstance(r, dict) for r in regimes):
        raise ConfigError("regime", f"regime must be an array of tables [[regime]], each with a name and partial "
                          f"sections ({', '.join(REGIME_SECTIONS)}); got {regimes!r}. Write e.g. [[regime]] "
                          "name = \"mean_field\" followed by [regime.student] scale = \"1/m\".")
    return raw, regimes


def _atlas_only(key: str, what: str, study: str):
    raise ConfigError(key, f"{what} to study = \"atlas\" only; got study = {study!r}. Set study = \"atlas\" "
                      f"or remove {'them' if key == 'regime' else 'it'}.")


def parse_regimes(raw: dict, regimes: list, sections: dict, cls: type, quick: bool, force: bool) -> tuple:
    """((name, config), ...) of the [[regime]] tables: each is the base ``raw`` with the regime's
    sections merged in (then [quick], when ``quick``), validated like any config; errors name the regime."""
    out, seen = [], set()
    if isinstance(raw.get("atlas"), dict) and "regime" in raw["atlas"]:
        raise ConfigError("atlas.regime", "atlas.regime is set by each [[regime]] table's name; got it in [atlas] "
                          "as well. Remove atlas.regime.")
    for k, reg in enumerate(regimes):
        reg = dict(reg)
        name = reg.pop("name", None)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError("regime.name", f"regime.name must be a name of letters, digits, '_', '-' or '.' "
                              f"(e.g. \"mean_field\"); got {name!r} in [[regime]] number {k + 1}. Give each "
                              "[[regime]] a name.")
        if name in seen:
            raise ConfigError("regime.name", f"regime.name must be unique; got {name!r} twice. Rename one.")
        seen.add(name)
        for key, table in reg.items():
            if key not in REGIME_SECTIONS:
                raise ConfigError(f"regime.{key}", f"unknown key regime.{key} in [[regime]] {name!r}. Allowed keys "
                                  f"in a [[regime]]: name, {', '.join(REGIME_SECTIONS)} (sweep, output and analysis "
                                  "are shared by every regime). Fix the spelling or remove it.")
            if not isinstance(table, dict):
                raise ConfigError(f"regime.{key}", f"regime.{key} in [[regime]] {name!r} must be a table of keys; "
                                  f"got {table!r}. Write [regime.{key}] followed by its keys.")
        if "regime" in reg.get("atlas", {}):
            raise ConfigError(f"regime.{name}.atlas.regime", f"[[regime]] {name!r}: atlas.regime is the regime's "
                              "name; remove it (the table's name sets it).")
        merged = _merge(raw, reg)
        merged["atlas"] = {**merged.get("atlas", {}), "regime": name}
        try:
            parts, axes = parse_sections(merged, sections, quick, force)
        except ConfigError as exc:
            raise ConfigError(f"regime.{name}.{exc.field}", f"[[regime]] {name!r}: {exc}") from None
        out.append((name, cls(study=raw.get("study", "lmc"), axes=axes, **parts)))
    return tuple(out)


def _set_fields(table: Any) -> set[str]:
    """Dotted names of the fields a raw table of sections sets ([quick] included)."""
    out = set()
    if not isinstance(table, dict):
        return out
    for sec, keys in table.items():
        if sec == "quick":
            out |= _set_fields(keys)
        elif isinstance(keys, dict):
            out |= {f"{sec}.{k}" for k in keys}
    return out


def check_reads(raw: dict, regimes_raw: list | None, cfg) -> None:
    """Refuse config fields the study does not read, when its module defines ``reads(cfg)``.

    A field set in a [[regime]] table must be read by that regime; a field set in the base (or in
    [quick]) must be read by at least one regime. The message names the field and the regime.
    """
    reads = getattr(sys.modules.get(STUDIES[cfg.study].run.__module__), "reads", None)
    if reads is None:
        return
    regimes = cfg.regimes or ((cfg.atlas.regime, cfg),)
    read = {name: reads(rc) for name, rc in regimes}
    for name, reg in zip((n for n, _ in regimes), regimes_raw or ()):
        for key in sorted(_set_fields({k: v for k, v in reg.items() if k != "name"}) - read[name]):
            raise ConfigError(f"regime.{name}.{key}", f"[[regime]] {name!r} sets {key}, which it does not read "
                              f"({_why(key, dict(regimes)[name])}). Remove {key} from that regime.")
    every = set().union(*read.values())
    for key in sorted(_set_fields(raw) - every):
        who = f"any regime of study = {cfg.study!r}" if cfg.regimes else f"study = {cfg.study!r}"
        first = f"regime {regimes[0][0]!r}: " if cfg.regimes else ""
        raise ConfigError(key, f"{key} is not read by {who} ({first}{_why(key, regimes[0][1])}). Remove {key}.")


def _why(key: str, cfg) -> str:
    """Why a regime does not read ``key`` (for the message of :func:`check_reads`)."""
    sec = key.split(".")[0]
    if cfg.study != "atlas":
        return "no reason given"
    if key == "atlas.r":
        return (f"atlas.source = {cfg.atlas.source!r}, atlas.minima = {cfg.atlas.minima!r}; r is the zero "
                "probability of \"sparse\" minima")
    if key == "atlas.minima":
        return "atlas.source = \"trained\"; atlas.minima describes sampled minima"
    if key == "atlas.zero_tol":
        return "atlas.source = \"minima\": existence is the exact Hall condition, no tolerance"
    if cfg.atlas.source == "minima" and sec in ("train", "student"):
        return "atlas.source = \"minima\": global minima are sampled, not trained"
    if sec == "train":
        return f"train.method = {cfg.train.method!r}"
    if sec == "align":
        return f"align.methods = {list(cfg.align.methods)}; only the options of those methods are read"
    return "the atlas does not use it"


def check_study(raw: dict, regimes_raw: list | None, cfg) -> None:
    """Whole-config rules of a study: fields it does not read (:func:`check_reads`); for the atlas
    its axes (widths and dimensions only) and its [analysis] (alpha per regime, d and matching)."""
    if not isinstance(cfg, Config):
        return
    quick = raw.get("quick")
    if cfg.study != "atlas" and ("atlas" in raw or (isinstance(quick, dict) and "atlas" in quick)):
        _atlas_only("atlas", "the [atlas] table applies", cfg.study)
    check_reads(raw, regimes_raw, cfg)
    if cfg.study != "atlas":
        return
    for name, rc in cfg.regimes or ((cfg.atlas.regime, cfg),):
        for key, _ in rc.axes:
            if key not in ATLAS_AXES:
                raise ConfigError(key, f"{key} cannot be swept in study = \"atlas\" (regime {name!r}); only "
                                  f"{', '.join(ATLAS_AXES)} may be: a regime is one setting. Give {key} one value, "
                                  "or add a [[regime]] per value.")
    an = cfg.analysis
    if an.y != "barrier":
        raise ConfigError("analysis.y", f"analysis.y must be \"barrier\" for study = \"atlas\" (its one barrier "
                          f"column, with a matching column beside it); got {an.y!r}. Set analysis.y = \"barrier\".")
    if "power_law" not in an.measures or not set(ATLAS_GROUPS) <= set(an.group_by):
        raise ConfigError("analysis.group_by", f"study = \"atlas\" fits alpha per regime, d and matching: "
                          f"analysis.measures must hold \"power_law\" and analysis.group_by {list(ATLAS_GROUPS)}; "
                          f"got measures = {list(an.measures)}, group_by = {list(an.group_by)}. Set analysis.group_by "
                          f"= {list(ATLAS_GROUPS)} and add \"power_law\" to analysis.measures.".replace("'", '"'))


def _check_atlas_cell(cfg) -> None:
    """Rules of one resolved atlas cell."""
    t, s, a = cfg.teacher, cfg.student, cfg.atlas
    where = f" (regime {a.regime!r})"
    if a.source == "minima":
        if s.m < t.M:
            raise ConfigError("student.m", f"student.m must be >= teacher.M ({t.M}) for sampled global minima"
                              f"{where}; got {s.m}. Use widths m >= {t.M}.")
        if not s.a0 > 0:
            raise ConfigError("student.a0", f"student.a0 must be > 0 for sampled global minima{where} (the common "
                              f"output weight of every neuron); got {s.a0}. Set student.a0 = 1.0.")
    if "activation" in cfg.align.methods and t.inputs != "gaussian" and cfg.align.n_act == 0:
        raise ConfigError("align.n_act", f"align.n_act must be > 0 for activation matching with teacher.inputs = "
                          f"{t.inputs!r}{where} (exact moments exist for Gaussian inputs only); got 0. Set "
                          "align.n_act = 4096 in that regime.")


# --------------------------------------------------------------------------- size guards
def _bytes(n: float) -> str:
    """A byte count in words: 512 B, 3 KiB, ..., 1.2 PiB, 2.5e+06 EiB (any size, no overflow)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _ram_bytes() -> float | None:
    """Physical memory of this machine, or None where the OS does not say."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE")) * float(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_grid(cfg, force: bool = False) -> int:
    """The number of cells of ``cfg``'s grid, counted from the axes' lengths (no cell is built).

    Raises
    ------
    ConfigError
        More than :data:`MAX_CELLS` cells and not ``force``; the message gives the axes and the
        estimated size of the cells.
    """
    n = grid_size(cfg)
    if n > MAX_CELLS and not force:
        longest = max(cfg.axes, key=lambda a: len(a[1]))[0]
        shape = " x ".join(f"{k} {len(v):,}" for k, v in cfg.axes)
        raise ConfigError(longest, f"the grid must have at most {MAX_CELLS:,} cells; got {n:,} ({shape}), about "
                          f"{_bytes(n * CELL_BYTES)} of cell configs to build and store. Use fewer values per "
                          "axis or split the sweep into several configs, or pass --force to run it anyway.")
    return n


def _two_layer_size(cfg) -> tuple[dict, dict, str]:
    """Estimated bytes and multiply-adds of one resolved two-layer cell, by the field that drives each
    term, and a description of the cell. Upper estimates from the trainers' and measures' arrays."""
    t, s, tr, al = cfg.teacher, cfg.student, cfg.train, cfg.align
    m, d, M, pairs = s.m, t.d, t.M, cfg.sweep.pairs
    k = al.k if cfg.study == "multi" else 2
    E = k * pairs  # students trained together
    ck = {"trajectory": al.checkpoints, "pruning": al.prune_levels + 1}.get(cfg.study, 0)
    sampled = tr.method != "population"
    per_step = m * (m + M) * d if not sampled else 2 * (tr.n if tr.method == "gd" else tr.batch) * m * d
    memory = {
        "student.m": 8 * (E * m * d * (16 + ck) + 4 * m * m + (al.n_act * (d + m) if al.n_act else 0)),
        "train.steps": 8 * E * (tr.steps // tr.record_every + 2),
        "train.n": 8 * 2 * E * tr.n * (d + 1 + min(tr.n, 4096) * m / max(tr.n, 1)) if sampled else 0,
        "train.n_test": 8 * 2 * tr.n_test * (d + m + 1),
    }
    work = {
        "train.steps": float(tr.steps) * E * per_step,
        "student.m": float(pairs) * (m ** 3 + cfg.sweep.grid * m * (m + M) * d
                                     + (al.ste_steps * m * (m + M) * d if cfg.study == "methods" else 0)),
        "train.n_test": float(E) * tr.n_test * m * d,
    }
    what = (f"student.m = {m}, teacher.d = {d}, teacher.M = {M}, train.steps = {tr.steps}, {E} students"
            + (f", train.n = {tr.n}" if sampled else ""))
    return memory, work, what


def _deep_size(cfg) -> tuple[dict, dict, str]:
    """Estimated bytes of one resolved deep cell (parameters, optimiser state, data, activations)."""
    from ..deep.mnist import input_shape

    mo, da, tr = cfg.model, cfg.data, cfg.train
    shape = input_shape(da.dataset, da.shape)
    inputs = math.prod(shape)
    h = max(1, round((mo.base or (128 if mo.arch == "mlp" else 16)) * mo.width))
    classes = 10 if da.dataset == "mnist" else da.classes
    if mo.arch == "mlp":
        params = inputs * h + (mo.depth - 1) * h * h + h * classes
        acts = tr.batch * h * mo.depth
    else:  # three stages of up to 4h channels
        params = 9 * (shape[0] * h + 3 * mo.depth * (4 * h) ** 2) + 4 * h * classes
        acts = tr.batch * h * math.prod(shape[1:]) * 3 * mo.depth
    n = (da.n_train or 60000) + (da.n_test or 10000)
    memory = {"model.width": 4 * (16 * params + 4 * acts + h * h * 2), "data.n_train": 4 * 2 * n * inputs}
    what = f"model.arch = {mo.arch!r}, model.width = {mo.width:g} ({h} units), model.depth = {mo.depth}"
    return memory, {}, what


def check_cell_size(cfg, ram: float | None = None, max_work: float = MAX_WORK) -> None:
    """Refuse a resolved cell whose estimated memory exceeds ``ram`` bytes (default: this machine's) or
    whose estimated multiply-adds exceed ``max_work``, before anything is allocated.

    Raises
    ------
    ConfigError
        Naming the field that drives the estimate, the estimate and the limit.
    """
    ram = _ram_bytes() if ram is None else ram
    memory, work, what = (_deep_size if isinstance(cfg, deep_sections.DeepConfig) else _two_layer_size)(cfg)
    need = sum(memory.values())
    if ram is not None and need > ram:
        field = max(memory, key=memory.get)
        raise ConfigError(field, f"{field}: a cell must fit in this machine's memory ({_bytes(ram)}); got about "
                          f"{_bytes(need)} ({what}). Lower {field}, or pass --force to run it anyway.")
    total = sum(work.values())
    if total > max_work:
        field = max(work, key=work.get)
        raise ConfigError(field, f"{field}: a cell must need at most {max_work:.0e} multiply-adds (about a day at "
                          f"1e9 per second); got about {total:.1e}, {_duration(total / 1e9)} ({what}). Lower "
                          f"{field}, or pass --force to run it anyway.")


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
    if cfg.study == "atlas":
        _check_atlas_cell(cfg)
    al, n_seq = cfg.align, {"trajectory": cfg.align.checkpoints, "pruning": cfg.align.prune_levels + 1}
    if cfg.study in n_seq and al.perm_at >= n_seq[cfg.study]:
        raise ConfigError("align.perm_at", f"align.perm_at must be -1 or < {n_seq[cfg.study]} (the sequence "
                          f"length of study {cfg.study!r}); got {al.perm_at}. Lower align.perm_at.")


def read_toml(path: str | Path) -> dict:
    """The raw dict of a TOML config file.

    Raises
    ------
    ConfigError
        (field ``config``) the path is missing, a folder, not a regular file (a device, a pipe: never
        read), unreadable, or not valid UTF-8 TOML; the message names the path and the fix.
    """
    p = Path(path)
    hint = "Give the path of a .toml file, e.g. experiments/width_double_descent.toml, or none for the default."
    if p.is_dir():
        raise ConfigError("config", f"config must be a TOML file; got the folder {str(path)!r}. {hint}")
    if not p.exists():
        raise ConfigError("config", f"config file {str(path)!r} does not exist. {hint}")
    mode = p.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                else "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise ConfigError("config", f"config must be a regular TOML file; got {str(path)!r}, {kind}. {hint}")
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError("config", f"config file {str(path)!r} must be readable; got "
                          f"{(exc.strerror or str(exc)).lower()}. Fix its permissions or copy it.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML (not UTF-8 text: {exc.reason} at byte "
                          f"{exc.start}). Save it as UTF-8.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML ({exc}). Fix the syntax.") from None


def load(path: str | Path, quick: bool = False, force: bool = False) -> tuple[Any, dict]:
    """Read and validate a TOML config; return the config and the raw dict."""
    raw = read_toml(path)
    return from_dict(raw, quick=quick, force=force), raw
