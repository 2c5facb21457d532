"""Sections of a two-layer config: one frozen dataclass per TOML table, keys equal to the fields.

Each field carries a constraint (:mod:`tsim.config.constraints`) and a hint for the fix. Lists of
names come from the registries that own them: alignment methods from :data:`tsim.alignment.METHODS`,
plots from :data:`tsim.results.figures.PLOTS`, studies from :data:`tsim.studies.STUDIES`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..alignment import METHODS
from ..results.figures import PLOTS as FIGURES
from .constraints import Choice, Interval, Text, TextList, as_dict, rule


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


PLOTS = tuple(FIGURES)


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


ALIGN_METHODS = tuple(METHODS)


@dataclass(frozen=True)
class AlignConfig:
    """Alignment studies (trajectory, multi, pruning, singular, methods): method, k networks,
    checkpoints, pruning, STE."""

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


SOURCES = ("trained", "minima")
MINIMA = ("uniform", "dense", "sparse")


@dataclass(frozen=True)
class AtlasConfig:
    """Rate atlas (``study = "atlas"``, :mod:`tsim.studies.atlas`): what one regime measures.

    A regime is the base config with the overrides of one ``[[regime]]`` table; ``regime`` is its
    name (set from the table's ``name``). ``source``: "trained" (students trained as in every
    study, :mod:`tsim.studies.steps`) or "minima" (global minima sampled directly, no training):
    ``minima`` "uniform" (each neuron's type uniform on {zero, 1..M}), "dense" (no zero neurons)
    or "sparse" (each neuron zero with probability ``r``). ``zero_tol``: on trained students a
    zero-barrier permutation counts as found when the barrier-aware barrier is <= zero_tol times
    the mean endpoint loss of the pair (plus 1e-12 for rounding). ``search_sweeps``: budget of
    the barrier-aware local search. The [atlas] table applies to study = "atlas" only.
    """

    regime: str = rule(Text(), "base", "name the regime with [[regime]] name = \"...\"", sweepable=False)
    source: str = rule(Choice(SOURCES), "trained",
                       "use 'trained' (train students) or 'minima' (sample global minima, no training)",
                       sweepable=False)
    minima: str = rule(Choice(MINIMA), "uniform",
                       "use 'uniform' (types uniform on {zero, 1..M}), 'dense' (no zero neurons) or 'sparse'",
                       sweepable=False)
    r: float = rule(Interval(float, 0.0, 0.95, open_low=True, example=0.5), 0.5,
                    "the zero probability of a neuron in 'sparse' minima is in (0, 0.95], e.g. 0.5",
                    sweepable=False)
    zero_tol: float = rule(Interval(float, 0.0, example=0.01), 0.01,
                           "use a fraction >= 0 of the endpoint loss, e.g. 0.01", sweepable=False)
    search_sweeps: int = rule(Interval(int, 0, example=10), 10,
                              "use a number of local-search sweeps >= 0 (0: the start permutation only)",
                              sweepable=False)


def derive_teacher(t: TeacherConfig) -> TeacherConfig:
    """Apply teacher.d_over_M: d = d_over_M * M when it is set (> 0)."""
    return replace(t, d=t.d_over_M * t.M) if t.d_over_M > 0 else t


SECTIONS: dict[str, type] = {
    "teacher": TeacherConfig,
    "student": StudentConfig,
    "train": TrainConfig,
    "sweep": SweepConfig,
    "output": OutputConfig,
    "analysis": AnalysisConfig,
    "align": AlignConfig,
    "atlas": AtlasConfig,
}


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
    atlas: AtlasConfig = field(default_factory=AtlasConfig)
    axes: tuple = ()  # ((dotted name, (values...)), ...) in file order
    regimes: tuple = ()  # ((name, Config), ...): study "atlas", the grid is the union of the regimes' grids

    def __post_init__(self):
        # teacher.d_over_M > 0 sets d = d_over_M * M, in every cell a sweep resolves (replace() re-runs this)
        object.__setattr__(self, "teacher", derive_teacher(self.teacher))

    def to_dict(self) -> dict:
        """Plain nested dict (axes included as lists), for summary.json; [atlas] only for study
        "atlas" (so other studies' cell keys do not change), each regime under ``regime``."""
        out = as_dict(self, SECTIONS)
        if self.study != "atlas":
            out.pop("atlas")
        if self.regimes:
            out["regime"] = [r.to_dict() for _, r in self.regimes]
        return out
