"""Configs: frozen dataclasses, TOML loading, validation and sweep axes.

A config file has sections ``[teacher]``, ``[student]``, ``[train]``, ``[sweep]``,
``[output]`` and ``[analysis]``, whose keys equal the dataclass fields below, plus an optional
top-level ``study`` naming the routine that runs one grid cell (default ``"lmc"``) and an
optional ``[quick]`` table with the same layout whose values replace the others under
``--quick``.

Any scalar field may instead hold a sweep axis; the grid is the product of all axes:

- a list, ``m = [2, 4, 8]``;
- ``{logspace = [lo, hi, n]}``: n values 10**lo .. 10**hi;
- ``{geomspace = [lo, hi, n]}``: n values lo .. hi, geometric (rounded for int fields);
- ``{linspace = [lo, hi, n]}``;
- ``{range = [lo, hi]}`` or ``{range = [lo, hi, step]}``: integers lo .. hi inclusive.

Every error is a :class:`ConfigError` naming the field, the rule, the value and the fix.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A bad config value. ``field`` is the dotted name (``train.lr``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


# --------------------------------------------------------------------------- constraints
@dataclass(frozen=True)
class Interval:
    """A number of type ``kind`` (int or float) in [low, high]; ``open_low`` makes it > low."""

    kind: type
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    example: Any = None

    def describe(self) -> str:
        name = "an integer" if self.kind is int else "a float"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        return name + (" " + " and ".join(parts) if parts else "")

    def check(self, value: Any) -> Any:
        """Return the value coerced to ``kind``; raise ValueError when it breaks the rule."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            raise ValueError
        if self.high is not None and value > self.high:
            raise ValueError
        return value

    def bad_value(self) -> Any:
        """A value that breaks the rule (used by tests)."""
        if self.low is not None:
            return self.low - 1 if self.kind is int else (self.low if self.open_low else self.low - 1.0)
        return "not a number"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    values: tuple

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) and not any(isinstance(v, bool) for v in self.values):
            raise ValueError
        if value not in self.values:
            raise ValueError
        return value

    def bad_value(self) -> Any:
        return "no-such-choice"


@dataclass(frozen=True)
class Text:
    """Any string (paths, names)."""

    def describe(self) -> str:
        return "a string"

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError
        return value

    def bad_value(self) -> Any:
        return 3.5


@dataclass(frozen=True)
class TextList:
    """A list of strings from ``allowed`` (or any strings if ``allowed`` is empty)."""

    allowed: tuple = ()
    takes_list = True  # a TOML list is one value of this field, not a sweep axis

    def describe(self) -> str:
        if self.allowed:
            return "a list of strings from " + ", ".join(repr(v) for v in self.allowed)
        return "a list of strings"

    def check(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError
        if self.allowed and any(v not in self.allowed for v in value):
            raise ValueError
        return tuple(value)

    def bad_value(self) -> Any:
        return ["no-such-entry"] if self.allowed else 3


def rule(constraint, default, fix: str = "", sweepable: bool = True):
    """A dataclass field with a constraint (``metadata['rule']``) and a hint for the fix."""
    return field(default=default, metadata={"rule": constraint, "fix": fix, "sweepable": sweepable})


OPTIONAL_FLOAT = "auto"


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class TeacherConfig:
    """Teacher f*(x) = sum_k a*_k relu(w*_k . x) with M neurons in dimension d."""

    kind: str = rule(Choice(("orthonormal", "random")), "orthonormal",
                     "use 'orthonormal' (w*_k = e_k) or 'random' (unit vectors from seed)")
    M: int = rule(Interval(int, 1, example=4), 4, "use a positive teacher width")
    d: int = rule(Interval(int, 1, example=16), 16, "use a positive input dimension")
    d_over_M: int = rule(Interval(int, 0, example=4), 0,
                         "use 0 to take teacher.d as given, or k >= 1 to set d = k * M (e.g. 4 for d = 4M)")
    inputs: str = rule(Choice(("gaussian", "sphere")), "gaussian", "inputs are 'gaussian' or 'sphere'")
    seed: int = rule(Interval(int, 0, example=0), 0, "use a non-negative integer seed")


@dataclass(frozen=True)
class StudentConfig:
    """Student f(x) = c sum_j a_j relu(w_j . x); init w_j ~ N(0, s^2 I / d), s = sigma0 m^-init_exponent,
    a_j = a0."""

    m: int = rule(Interval(int, 1, example=8), 8, "use a width m >= 1")
    train_a: bool = rule(Choice((False, True)), False, "true trains the output weights a as well")
    scale: str = rule(Choice(("1", "1/m")), "1", "output scale c: '1' (unscaled) or '1/m' (mean field)")
    sigma0: float = rule(Interval(float, 0.0, open_low=True, example=1.0), 1.0,
                         "use a positive init scale such as 1.0")
    a0: float = rule(Interval(float, example=1.0), 1.0, "a0 is the initial value of every a_j")
    init_exponent: float = rule(Interval(float, 0.0, example=1.0), 0.0,
                                "the init std is sigma0 * m^(-init_exponent) / sqrt(d); use 0 for a "
                                "width-independent init or 1 for sigma0 / m")


@dataclass(frozen=True)
class TrainConfig:
    """How each student is trained.

    ``lr`` is the step size eta. With ``lr_unit = "critical"`` it is a multiple of
    2 / lambda_max, lambda_max the largest Hessian eigenvalue of the population loss at the
    student's initialisation (stable GD on a quadratic needs eta < 2 / lambda_max).
    """

    method: str = rule(Choice(("population", "gd", "sgd")), "population",
                       "use 'population' (exact loss), 'gd' or 'sgd' (samples)")
    lr: float = rule(Interval(float, 0.0, open_low=True, example=0.05), 0.5,
                     "set a positive step size such as 0.05")
    lr_unit: str = rule(Choice(("absolute", "critical")), "critical",
                        "'absolute' uses lr as is; 'critical' multiplies it by 2/lambda_max")
    steps: int = rule(Interval(int, 1, example=1000), 20000, "use a positive number of steps")
    tol: float = rule(Interval(float, 0.0, example=1e-10), 1e-10, "use a loss tolerance >= 0")
    n: int = rule(Interval(int, 1, example=1000), 1000, "use a positive number of training samples")
    batch: int = rule(Interval(int, 1, example=32), 32, "use a positive minibatch size")
    noise: float = rule(Interval(float, 0.0, example=0.0), 0.0, "label noise std must be >= 0")
    n_test: int = rule(Interval(int, 1, example=10000), 10000, "use a positive test sample size")
    record_every: int = rule(Interval(int, 1, example=100), 100, "record the loss every k >= 1 steps")


@dataclass(frozen=True)
class SweepConfig:
    """Repetition and execution: ``pairs`` independent seed pairs per grid cell."""

    pairs: int = rule(Interval(int, 1, example=5), 5, "use at least one seed pair", sweepable=False)
    seed: int = rule(Interval(int, 0, example=0), 0, "use a non-negative base seed", sweepable=False)
    workers: int = rule(Interval(int, 0, example=2), 1,
                        "use 1 (this process; Numba threads over each cell's ensemble use every core), "
                        "N > 1 worker processes, or 0 for one process per core", sweepable=False)
    grid: int = rule(Interval(int, 3, example=51), 25, "use at least 3 t-points for the barrier",
                     sweepable=False)


PLOTS = ("barrier_vs_width", "barrier_vs_lr", "sparsity_vs_lr", "barrier_vs_sparsity", "loss_vs_width",
         "trajectory_barrier", "pruning_barrier", "multi_vs_width", "strong_vs_width", "singular_alignment",
         "methods_barrier", "rate_fit", "diverged_vs_lr")


@dataclass(frozen=True)
class OutputConfig:
    """Where and what to write."""

    dir: str = rule(Text(), "results/run", "give an output folder", sweepable=False)
    plots: tuple = rule(TextList(PLOTS), ("barrier_vs_width",), "choose plots from the list",
                        sweepable=False)


MEASURES = ("extrema", "power_law", "transition")


@dataclass(frozen=True)
class AnalysisConfig:
    """Summary statistics computed from the result table (tsim.analysis.summarize).

    ``measures``: "extrema" (peak and minimum width of the mean of ``y`` vs m), "power_law"
    (y ~ C m^-alpha over m >= fit_min_m, bootstrap CI over pairs, n_boot draws), "transition"
    (the ``transition_x`` interval where the mean sparse fraction first exceeds
    ``transition_level``, and where most students first diverge). Each is computed per value
    of the ``group_by`` columns.
    """

    fit_min_m: int = rule(Interval(int, 1, example=16), 16,
                          "the power-law fit uses widths m >= fit_min_m", sweepable=False)
    n_boot: int = rule(Interval(int, 10, example=1000), 1000, "use at least 10 bootstrap draws",
                       sweepable=False)
    measures: tuple = rule(TextList(MEASURES), ("extrema",), "choose measures from the list",
                           sweepable=False)
    group_by: tuple = rule(TextList(), (), "name result columns such as [\"d\", \"M\"] (swept fields)",
                           sweepable=False)
    y: str = rule(Text(), "barrier_wm", "name the barrier column, e.g. \"barrier_wm\"", sweepable=False)
    transition_x: str = rule(Text(), "lr", "name the swept column of the transition, e.g. \"lr\"",
                             sweepable=False)
    transition_level: float = rule(Interval(float, 0.0, 1.0, open_low=True, example=0.05), 0.05,
                                   "use a sparse fraction in (0, 1] such as 0.05", sweepable=False)


ALIGN_METHODS = ("weight", "activation", "ste", "optimal")


@dataclass(frozen=True)
class AlignConfig:
    """Alignment studies (tsim.studies_align): method, k networks, checkpoints, pruning, STE."""

    method: str = rule(Choice(ALIGN_METHODS), "weight", "use one of the alignment methods")
    methods: tuple = rule(TextList(ALIGN_METHODS), ("weight", "activation", "ste"),
                          "list the methods to compare", sweepable=False)
    k: int = rule(Interval(int, 2, example=3), 3, "merge at least 2 networks")
    checkpoints: int = rule(Interval(int, 2, example=11), 11, "save at least 2 checkpoints")
    perm_at: int = rule(Interval(int, -1, example=-1), -1,
                        "give the checkpoint (or pruning level) index of the single permutation; -1 = last")
    prune_levels: int = rule(Interval(int, 1, example=4), 4, "use at least one pruning round")
    prune_rate: float = rule(Interval(float, 0.0, 0.99, open_low=True, example=0.5), 0.5,
                             "prune a fraction in (0, 0.99] of the remaining weights per round")
    rewind_step: int = rule(Interval(int, 0, example=0), 0, "rewind to a step >= 0 (0 = the initialisation)")
    n_act: int = rule(Interval(int, 0, example=0), 0,
                      "activation-matching sample size; 0 uses the exact Gaussian moments")
    ste_steps: int = rule(Interval(int, 1, example=200), 200, "use at least one STE step")
    ste_lr: float = rule(Interval(float, 0.0, open_low=True, example=0.01), 0.01, "use a positive STE step")
    ste_noise: float = rule(Interval(float, 0.0, example=0.0), 0.0, "STE init noise must be >= 0")
    simplex_grid: int = rule(Interval(int, 2, example=11), 11, "use at least 2 points per simplex edge")
    max_m: int = rule(Interval(int, 1, 9, example=8), 8, "brute force enumerates m! permutations; use m <= 9")


SECTIONS: dict[str, type] = {
    "teacher": TeacherConfig,
    "student": StudentConfig,
    "train": TrainConfig,
    "sweep": SweepConfig,
    "output": OutputConfig,
    "analysis": AnalysisConfig,
    "align": AlignConfig,
}
STUDIES = ("lmc", "trajectory", "multi", "pruning", "singular", "methods")


@dataclass(frozen=True)
class Config:
    """A whole config: one instance per section. Sweep axes live in ``axes``."""

    study: str = "lmc"
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    axes: tuple = ()  # ((dotted name, (values...)), ...) in file order

    def to_dict(self) -> dict:
        """Plain nested dict (axes included as lists), for summary.json."""
        out = {"study": self.study}
        for name in SECTIONS:
            out[name] = {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in dataclasses.asdict(getattr(self, name)).items()}
        for key, values in self.axes:
            sec, fld = key.split(".")
            out[sec][fld] = list(values)
        return out


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
    import numpy as np

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


def parse_sections(raw: dict, sections: dict, quick: bool, studies: tuple, default_study: str):
    """The shared part of loading any config: apply ``[quick]``, check ``study`` and section names,
    validate every section. Returns (study, {name: section dataclass}, axes)."""
    if not isinstance(raw, dict):
        raise ConfigError("config", f"a config must be a table of sections; got {type(raw).__name__}.")
    raw = dict(raw)
    quick_raw = raw.pop("quick", {})
    if not isinstance(quick_raw, dict):
        raise ConfigError("quick", "[quick] must be a table of overrides with the same sections.")
    if quick:
        raw = _merge(raw, quick_raw)
    study = raw.pop("study", default_study)
    if study not in studies:
        raise ConfigError("study", f"study must be one of {', '.join(map(repr, studies))}; got {study!r}. "
                          f"Set study to a known routine or remove the key (default {default_study!r}).")
    for key in raw:
        if key not in sections:
            raise ConfigError(key, f"unknown section [{key}]. Allowed sections: study, "
                              f"{', '.join(sections)}, quick. Fix the spelling or remove it.")
    axes: list = []
    parts = {name: parse_section(name, cls, raw.get(name, {}), axes) for name, cls in sections.items()}
    return study, parts, tuple(axes)


def from_dict(raw: dict, quick: bool = False, extra_studies: tuple = ()) -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`.

    Raises
    ------
    ConfigError
        Naming the first bad field, the rule, the value and the fix.
    """
    study, parts, axes = parse_sections(raw, SECTIONS, quick, STUDIES + tuple(extra_studies), "lmc")
    parts["teacher"] = derive_teacher(parts["teacher"])
    cfg = Config(study=study, axes=axes, **parts)
    for cell in [cfg] + ([resolve(cfg, p) for p in grid(cfg)] if axes else []):
        check_cross(cell)
    return cfg


def check_cross(cfg: Config) -> None:
    """Rules between fields of one resolved cell."""
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


def load(path: str | Path, quick: bool = False, extra_studies: tuple = ()) -> tuple[Config, dict]:
    """Read and validate a TOML config; return the config and the raw dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config", f"config file {str(path)!r} does not exist. Give the path of a .toml file, "
                          f"e.g. experiments/width_double_descent.toml.")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{path} is not valid TOML ({exc}). Fix the syntax.") from None
    return from_dict(raw, quick=quick, extra_studies=extra_studies), raw


# --------------------------------------------------------------------------- grid
def grid(cfg: Config) -> list[dict]:
    """All grid points: a list of {dotted name: value}, the product of ``cfg.axes`` in file order."""
    names = [k for k, _ in cfg.axes]
    return [dict(zip(names, combo)) for combo in itertools.product(*(v for _, v in cfg.axes))]


def derive_teacher(t: TeacherConfig) -> TeacherConfig:
    """Apply teacher.d_over_M: d = d_over_M * M when it is set (> 0)."""
    return replace(t, d=t.d_over_M * t.M) if t.d_over_M > 0 else t


def resolve(cfg, point: dict):
    """The scalar config of one grid point (axes removed); works for any config dataclass whose
    sections are fields and whose sweep axes are in ``axes`` (Config, tsim.deep's DeepConfig)."""
    sections = {}
    for key, value in point.items():
        sec, fld = key.split(".")
        sections[sec] = replace(sections.get(sec, getattr(cfg, sec)), **{fld: value})
    if isinstance(cfg, Config):
        sections["teacher"] = derive_teacher(sections.get("teacher", cfg.teacher))
    return replace(cfg, axes=(), **sections)
