"""Matplotlib figures of two-layer studies, drawn from result tables only, in the shared style of
:mod:`tsim.results.style` (ticks at the values run, exact zeros on their own row, diverged runs
marked, labels in words with units).

Barriers at or below :data:`ROUNDING` (1e-12; float64 losses round at ~1e-16) count as 0 and
sit on the zero row ("0 up to rounding" in the legend); other quantities only when exactly 0.

Overlays where a prediction or a measured feature exists:

- width plots (``barrier_vs_width``, ``rate_fit``): ``theory.minima``'s predicted weight-matching
  barrier vs m (global minima sampled directly, ``$TSIM_FIG_THEORY`` pairs per width, default 4;
  0 turns it off) for the Lin-Li-Wu setting (orthonormal teacher, a = 1 fixed, c = 1); the
  measured peak and first minimum after it (``[analysis] measures`` with "extrema"); the
  fitted power law with alpha and its bootstrap CI (``rate_fit``, the same fit as summary.json);
- learning-rate plots: ``theory.critical``'s critical steps as vertical lines: above
  2/lambda_max of a dense balanced minimum dense minima are unstable (GD must end sparse); above
  2/lambda_max with one neuron per type no minimum is stable. They are the closed-form
  :func:`theory.critical.critical_lr` of those minima, in the unit of ``train.lr``.

``theory`` is a top-level package beside tsim: it is imported lazily, and a figure without it
says so in a note. Files: PNG, plus SVG with ``TSIM_FIG_FORMATS=png,svg`` or ``formats=``
(:func:`tsim.results.style.formats`). :func:`pyplot` is the one way other results modules get
matplotlib's pyplot.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import style
from .style import mean_ci  # noqa: F401  (public here since before the shared style)
from .summary import groups, width_extrema, with_derived

THEORY_ENV = "TSIM_FIG_THEORY"
THEORY_SAMPLES = 4
ROUNDING = 1e-12  # barriers of float64 population losses at or below this are 0 up to rounding
BARRIER_PREFIXES = ("barrier_", "simplex_", "kavg_", "naive_max", "shared_max_", "pairwise_max_")
BARRIERS = {"barrier_naive": "naive (no permutation)", "barrier_wm": "weight matching"}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def group_stats(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per value of x: mean, standard error, bootstrap 95% CI of the mean (ci_lo, ci_hi), 2.5% and
    97.5% quantiles and count of y (NaN dropped)."""
    g = df[[x, y]].dropna().groupby(x)[y]
    ci = g.apply(lambda v: mean_ci(v.to_numpy()))
    return pd.DataFrame({"mean": g.mean(), "sem": g.sem().fillna(0.0),
                         "ci_lo": [c[0] for c in ci], "ci_hi": [c[1] for c in ci],
                         "lo": g.quantile(0.025), "hi": g.quantile(0.975), "n": g.count()})


# ------------------------------------------------------------------------------ context
def theory_samples() -> int:
    """Sampled pairs of minima per width for the theory curve: $TSIM_FIG_THEORY, default 4 (0 = off)."""
    raw = os.environ.get(THEORY_ENV, "").strip()
    try:
        return max(int(raw), 0) if raw else THEORY_SAMPLES
    except ValueError:
        raise ValueError(f"{THEORY_ENV} must be a whole number of sampled pairs (0 = no theory curve); "
                         f"got {raw!r}.") from None


@dataclass(frozen=True)
class Context:
    """What a figure needs besides the table: the config (or None), file formats, theory samples."""

    cfg: object = None
    formats: tuple = ("png",)
    samples: int = THEORY_SAMPLES
    notes: list = field(default_factory=list)

    @classmethod
    def make(cls, cfg=None, formats=None) -> "Context":
        """A context for one figure: formats from ``formats`` or $TSIM_FIG_FORMATS, samples from
        $TSIM_FIG_THEORY, no notes yet."""
        return cls(cfg, style.formats(formats), theory_samples())

    @property
    def analysis(self):
        """The config's [analysis] section, or None without a config."""
        return self.cfg.analysis if self.cfg is not None else None

    def by(self) -> tuple:
        """The group_by columns ((), without a config)."""
        return tuple(self.analysis.group_by) if self.analysis is not None else ()


def lr_unit(df: pd.DataFrame, cfg=None) -> str | None:
    """The unit of the lr column: the config's ``train.lr_unit`` (unless swept), else read from the
    table (lr equal to the absolute step lr_a: "absolute"; never equal: "critical"); None if unknown."""
    if cfg is not None and "lr_unit" not in df:
        return cfg.train.lr_unit
    if "lr_unit" in df and df["lr_unit"].nunique() == 1:
        return str(df["lr_unit"].iloc[0])
    if {"lr", "lr_a"} <= set(df.columns) and len(df):
        same = np.isclose(df["lr"].to_numpy(float), df["lr_a"].to_numpy(float), rtol=1e-9)
        return "absolute" if same.all() else ("critical" if not same.any() else None)
    return None


def _label(key: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in key.items())


def _sparsity(df: pd.DataFrame) -> pd.DataFrame:
    return with_derived(df) if "status_a" in df else df.assign(sparsity=df[["sparse_a", "sparse_b"]].mean(axis=1))


def zero_tol(column: str) -> float:
    """Values of ``column`` counted as 0: barriers (float64 losses, rounding ~1e-16) up to
    :data:`ROUNDING`, anything else only when exactly 0."""
    return ROUNDING if column.startswith(BARRIER_PREFIXES) else 0.0


def _legend_title(logy: bool, count: str = "pairs") -> str:
    return f"line: mean over {count} > 0, band: 95% CI" if logy else f"line: mean over {count}, band: 95% CI"


# ------------------------------------------------------------------------------ building blocks
def _panels(df: pd.DataFrame, x: str, ys: dict, by, logx: bool, logy: bool, mark_diverged: bool = True):
    """One panel per column of ``ys`` present in df; in each, one series per group of ``by``.

    Returns (figure, {column: Panel}, [(label, color, rows)], {(column, label): pair_stats}).
    """
    cols = [c for c in ys if c in df]
    fig, axes = style.new_figure(len(cols))
    div = style.diverged_rows(df) if mark_diverged else None
    grps = [(_label(k), style.CYCLE[i % len(style.CYCLE)], g) for i, (k, g) in enumerate(groups(df, by))]
    panels, stats = {}, {}
    for ax, col in zip(axes, cols):
        p = panels[col] = style.Panel(ax, logx, logy, zero_tol(col))
        for i, (lab, color, g) in enumerate(grps):
            s = stats[(col, lab)] = style.pair_stats(g, x, col, logy, None if div is None else div[g.index],
                                                      zero_tol=p.zero_tol)
            p.series(s, lab or ys[col], color if lab else style.color_of(col, i))
    if not cols:
        axes[0].text(0.5, 0.5, "no data to plot", ha="center", va="center", transform=axes[0].transAxes)
    return fig, panels, grps, stats


def _finish(fig, panels: dict, titles: dict, xlabel: str, ylabel: str, xticks, path: Path, ctx: Context,
            title: str = "", count: str = "pairs", legend_title: str | None = None,
            xbounds: tuple | None = None) -> list[Path]:
    """Finish every panel (titles per column), add the notes and the suptitle, size and save."""
    for col, p in panels.items():
        p.finish(xlabel, ylabel, titles.get(col, ""), xticks=xticks, count=count, xbounds=xbounds,
                 legend_title=legend_title if legend_title is not None else _legend_title(p.logy, count))
    if title:
        fig.suptitle(title)
    if ctx.notes:
        style.note(fig, "; ".join(dict.fromkeys(ctx.notes)))
    style.fit_height(fig, extra_rows=1 if ctx.notes else 0)
    return style.save(fig, path, ctx.formats)


def _values_run(df: pd.DataFrame, x: str) -> list:
    return sorted(pd.to_numeric(df[x], errors="coerce").dropna().unique().tolist()) if x in df else []


@style.styled
def curves(df: pd.DataFrame, x: str, ys: dict, path: Path, xlabel: str, ylabel: str, title: str,
           logx: bool = True, logy: bool = True, ctx: Context | None = None, xticks: bool = True,
           count: str = "pairs", xbounds: tuple | None = None) -> list[Path]:
    """Mean over pairs of each column in ``ys`` ({column: label}) vs x, one figure, one panel.

    Bootstrap 95% CI band; on a log y axis over the positive values, zeros on the zero row.
    ``xticks``: ticks at the x values run; ``xbounds``: limits of a linear x (fractions: (0, 1)).
    Returns the files written (one per format).
    """
    ctx = ctx or Context.make()
    fig, (ax,) = style.new_figure(1, width=5.6)
    cols = [c for c in ys if c in df]
    p = style.Panel(ax, logx, logy, min((zero_tol(c) for c in cols), default=0.0))
    div = style.diverged_rows(df)
    colors = [style.color_of(c, i) for i, c in enumerate(cols)]
    if len(set(colors)) < len(colors):  # two columns of one method: colours from the cycle instead
        colors = [style.CYCLE[i % len(style.CYCLE)] for i in range(len(cols))]
    for i, (col, color) in enumerate(zip(cols, colors)):
        p.series(style.pair_stats(df, x, col, logy, div, zero_tol=p.zero_tol), ys[col], color,
                 marker=style.MARKERS[i % len(style.MARKERS)])
    return _finish(fig, {"": p}, {"": title}, xlabel, ylabel, _values_run(df, x) if xticks else None, path, ctx,
                   count=count, xbounds=xbounds)


@style.styled
def grouped(df: pd.DataFrame, x: str, ys: dict, path: Path, xlabel: str, ylabel: str, title: str,
            by=(), logx: bool = True, logy: bool = True, ctx: Context | None = None,
            mark_diverged: bool = True) -> list[Path]:
    """One panel per column of ``ys``; in each, the mean vs x with a 95% CI band per group of ``by``."""
    ctx = ctx or Context.make()
    fig, panels, _, _ = _panels(df, x, ys, by, logx, logy, mark_diverged)
    return _finish(fig, panels, ys, xlabel, ylabel, _values_run(df, x), path, ctx, title)


# ------------------------------------------------------------------------------ theory
def _theory(name: str):
    """The module theory.<name>, or None when the theory package is not importable."""
    try:
        if name == "minima":
            import theory.minima as mod
        else:
            import theory.critical as mod
    except ImportError:
        return None
    return mod


def _setting_reason(df: pd.DataFrame, cfg) -> str | None:
    """None when the theory's setting holds (orthonormal teacher, a = 1 fixed, c = 1), else why not."""
    if cfg is None:
        return "no config given"

    def values(section, name):
        return set(df[name].unique()) if name in df else {getattr(getattr(cfg, section), name)}

    if values("teacher", "kind") != {"orthonormal"}:
        return "teacher is not orthonormal"
    if values("student", "train_a") != {False} or values("student", "scale") != {"1"} \
            or values("student", "a0") != {1.0}:
        return "needs a = 1 fixed and c = 1"
    return None


def _one(g: pd.DataFrame, key: dict, name: str, default):
    """The single value of column ``name`` in a group (its key, its rows, else the config default)."""
    if name in key:
        return key[name]
    if name in g:
        vals = g[name].dropna().unique()
        return vals[0] if len(vals) == 1 else None
    return default


@functools.lru_cache(maxsize=64)
def _predicted(ms: tuple, M: int, d: int, inputs: str, n: int) -> pd.DataFrame:
    """theory.minima.predicted_curve for weight matching (cached: two figures ask for it)."""
    return _theory("minima").predicted_curve(list(ms), M, d, n=n, seed=0, aligns=("weight",), inputs=inputs)


def _width_theory(panel, grps, df: pd.DataFrame, ctx: Context, min_m: int = 1, exponent: bool = False) -> None:
    """Overlay the sampled-minima prediction of the WM barrier vs m on ``panel``, one curve per group.

    The prediction is computed at every width of the group's rows with m >= M (so the width and
    tail figures share one cached computation) and drawn for m >= ``min_m``; ``exponent`` adds
    its fitted alpha over m >= min_m to the legend.
    """
    if panel is None or ctx.samples <= 0:
        return
    if _theory("minima") is None:
        ctx.notes.append("theory/ not importable: no theory curve")
        return
    reason = _setting_reason(df, ctx.cfg)
    if reason:
        ctx.notes.append(f"no theory curve ({reason})")
        return
    cfg, colors = ctx.cfg, {lab: color for lab, color, _ in grps}
    for key, g in groups(df, ctx.by()):
        lab = _label(key)
        M, d = _one(g, key, "M", cfg.teacher.M), _one(g, key, "d", cfg.teacher.d)
        inputs = _one(g, key, "inputs", cfg.teacher.inputs)
        if M is None or d is None:
            ctx.notes.append("no theory curve for a group mixing teacher widths M or dimensions d")
            continue
        ms = tuple(int(m) for m in _values_run(g, "m") if m >= M)
        if lab not in colors or not any(m >= min_m for m in ms):
            continue
        curve = _predicted(ms, int(M), int(d), str(inputs), ctx.samples)
        mean = curve.groupby("m")["barrier_wm"].mean()
        mean = mean[mean.index >= min_m]
        color = colors[lab]
        text = f"theory, sampled minima ({lab + ', ' if lab else ''}{ctx.samples} pairs/m)"
        if exponent:
            try:
                fit = _theory("minima").predicted_exponent(curve, min_m=min_m, n_boot=200)
                text += f": $\\alpha$ = {fit.alpha:.2f} [{fit.ci[0]:.2f}, {fit.ci[1]:.2f}]"
            except ValueError:
                pass
        panel.line(mean.index, mean.to_numpy(), text, color, ls=(0, (4, 2)), gid=style.GID_THEORY,
                   min_value=ROUNDING, marker="s", ms=3, mfc="white")


def _lr_theory(panels: dict, df: pd.DataFrame, ctx: Context, unit: str | None) -> None:
    """Vertical lines at theory.critical's critical steps (dense minima unstable, no stable minimum)."""
    if not panels or "lr" not in df:
        return
    crit = _theory("critical")
    if crit is None:
        ctx.notes.append("theory/ not importable: no critical learning rates")
        return
    reason = _setting_reason(df, ctx.cfg)
    m, M, d = (_one(df, {}, c, None) for c in ("m", "M", "d"))
    if reason or None in (m, M, d) or m < M or unit not in ("critical", "absolute"):
        ctx.notes.append(f"no critical learning rate ({reason or 'needs one m >= M and a known lr unit'})")
        return
    inputs = _one(df, {}, "inputs", ctx.cfg.teacher.inputs)
    lam = 1.0
    if unit == "critical":
        ok = (df["lr_a"] > 0) & np.isfinite(df["lr_a"])
        lam = float(np.mean(2 * df.loc[ok, "lr"] / df.loc[ok, "lr_a"]))
    pred = crit.predicted_transition(int(m), int(M), int(d), lam, str(inputs))
    key = ("sparsify", "diverge") if unit == "critical" else ("eta_sparsify", "eta_diverge")
    for p in panels.values():
        p.vline(pred[key[0]], ls="--", label=f"theory: dense minima unstable above {style.fmt_value(pred[key[0]])}")
        p.vline(pred[key[1]], ls=":", label=f"theory: no minimum stable above {style.fmt_value(pred[key[1]])}")


def _mark_extrema(panel, grps, stats: dict, col: str) -> None:
    """Mark the measured peak and first minimum after it of each group's mean (summary.width_extrema)."""
    if panel is None:
        return
    first = True
    for lab, color, g in grps:
        ex = width_extrema(g, col)
        s = stats.get((col, lab))
        for k, marker, text in (("peak_m", "^", "measured peak of the mean"),
                                ("min_m_after_peak", "v", "measured first minimum after the peak")):
            m = ex.get(k)
            if m is None or s is None or float(m) not in s.index:
                continue
            y = s.loc[float(m), "mean"]
            panel.mark(m, y if np.isfinite(y) else None, marker=marker, ms=9, mfc="none", mec=color, mew=1.4,
                       gid=style.GID_EXTREMA, label=text if first else None, zorder=5)
        first = False


# ------------------------------------------------------------------------------ the figures
def _width_label() -> str:
    return style.axis_label("m")


@style.styled
def barrier_vs_width(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """Naive and WM barrier vs m per group, with the theory curve and the measured extrema (WM panel)."""
    ctx = ctx or Context.make()
    fig, panels, grps, stats = _panels(df, "m", BARRIERS, ctx.by(), True, True)
    y = ctx.analysis.y if ctx.analysis is not None else "barrier_wm"
    measures = ctx.analysis.measures if ctx.analysis is not None else ("extrema",)
    _width_theory(panels.get("barrier_wm"), grps, df, ctx)
    if "extrema" in measures:
        _mark_extrema(panels.get(y), grps, stats, y)
    return _finish(fig, panels, BARRIERS, _width_label(), "barrier (population loss)", _values_run(df, "m"),
                   Path(out) / "barrier_vs_width.png", ctx, "Barrier vs student width")


@style.styled
def rate_fit(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """Large-width tail with the fitted power law per group (alpha [CI] as in summary.json) and theory."""
    from .summary import rate_fit as fit

    ctx = ctx or Context.make()
    an = ctx.analysis
    y = an.y if an is not None else "barrier_wm"
    min_m = an.fit_min_m if an is not None else 16
    n_boot = an.n_boot if an is not None else 1000
    seed = ctx.cfg.sweep.seed if ctx.cfg is not None else 0
    tail = df[df["m"] >= min_m] if "m" in df else df
    ys = {y: BARRIERS.get(y, y)}
    fig, panels, grps, _ = _panels(tail, "m", ys, ctx.by(), True, True)
    panel = panels.get(y)
    for (key, g), (lab, color, _) in zip(groups(tail, ctx.by()), grps):
        f = fit(g, y, min_m, n_boot, seed)
        if panel is not None and "alpha" in f:
            m = np.array(f["m"])
            lo, hi = f["alpha_ci"]
            panel.line(m, f["C"] * m ** -f["alpha"], f"fit $C\\,m^{{-\\alpha}}${' (' + lab + ')' if lab else ''}: "
                       f"$\\alpha$ = {f['alpha']:.2f} [{lo:.2f}, {hi:.2f}]", color, ls="--", gid=style.GID_FIT)
        elif panel is not None:
            ctx.notes.append(f"no fit{' for ' + lab if lab else ''}: {f.get('error', 'too few widths')}")
    if y == "barrier_wm":
        _width_theory(panel, grps, df, ctx, min_m=min_m, exponent=True)
    return _finish(fig, panels, {y: f"Tail fit (m >= {min_m}): {ys[y]}"}, _width_label(), "barrier (population loss)",
                   _values_run(tail, "m"), Path(out) / "rate_fit.png", ctx)


def _lr_figure(df: pd.DataFrame, out: Path, ctx: Context, ys: dict, name: str, ylabel: str, title: str,
               logy: bool, mark_diverged: bool = True) -> list[Path]:
    """A quantity vs the learning rate per group, with theory.critical's critical steps."""
    unit = lr_unit(df, ctx.cfg)
    fig, panels, _, _ = _panels(df, "lr", ys, ctx.by(), True, logy, mark_diverged)
    _lr_theory(panels, df, ctx, unit)
    return _finish(fig, panels, ys, style.lr_label(unit), ylabel, _values_run(df, "lr"), Path(out) / name, ctx, title)


@style.styled
def sparsity_vs_lr(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """Sparse fraction of the non-diverged students vs lr."""
    return _lr_figure(_sparsity(df), out, ctx or Context.make(), {"sparsity": "near-zero neurons (non-diverged)"},
                      "sparsity_vs_lr.png", "fraction of neurons near zero", "Sparsity vs learning rate", False)


@style.styled
def diverged_vs_lr(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """Fraction of students that diverged vs lr."""
    return _lr_figure(_sparsity(df), out, ctx or Context.make(), {"diverged": "students diverged"},
                      "diverged_vs_lr.png", "fraction of students diverged", "Divergence vs learning rate", False,
                      mark_diverged=False)


@style.styled
def barrier_vs_lr(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """Naive and WM barrier vs lr (diverged pairs marked at the top)."""
    return _lr_figure(df, out, ctx or Context.make(), BARRIERS, "barrier_vs_lr.png", "barrier (population loss)",
                      "Barrier vs learning rate", True)


@style.styled
def barrier_vs_sparsity(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """WM barrier against sparsity, one point per pair, coloured by group (zeros on the zero row)."""
    ctx = ctx or Context.make()
    d = _sparsity(df)
    fig, (ax,) = style.new_figure(1, width=5.6)
    p = style.Panel(ax, False, True, zero_tol("barrier_wm"))
    for i, (key, g) in enumerate(groups(d, ctx.by())):
        if {"sparsity", "barrier_wm"} <= set(g.columns):
            p.points(g["sparsity"], g["barrier_wm"], _label(key) or "pairs", style.CYCLE[i % len(style.CYCLE)])
    return _finish(fig, {"": p}, {"": "Weight-matching barrier vs sparsity"}, "fraction of neurons near zero "
                   "(mean of the pair)", "barrier after weight matching", None, Path(out) / "barrier_vs_sparsity.png",
                   ctx, legend_title="one point per pair", xbounds=(0.0, 1.0))


@style.styled
def loss_vs_width(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """Endpoint population loss (mean of the pair) vs m."""
    d = df.assign(loss=df[["loss_a", "loss_b"]].mean(axis=1)) if {"loss_a", "loss_b"} <= set(df.columns) else df
    return curves(d, "m", {"loss": "end-point loss (mean of the pair)"}, Path(out) / "loss_vs_width.png",
                  _width_label(), "population loss", "End-point loss vs width", ctx=ctx)


# alignment studies (tsim.studies); columns absent from a table are skipped by curves()
_METHOD_NAMES = {"weight": "WM", "activation": "AM", "ste": "STE", "optimal": "optimal", "barrier": "barrier-aware"}
_SEQ = {"barrier_single": "one permutation", "barrier_per_step": "per-step matching", "barrier_naive": "naive"}


def trajectory_barrier(df, out, ctx=None):
    return curves(df, "step", _SEQ, Path(out) / "trajectory_barrier.png", style.axis_label("step"),
                  "barrier (population loss)", "Barrier along training trajectories", ctx=ctx)


def pruning_barrier(df, out, ctx=None):
    return curves(df, "sparsity", _SEQ, Path(out) / "pruning_barrier.png", "fraction of first-layer weights pruned",
                  "barrier (population loss)", "Barrier along IMP sequences", logx=False, ctx=ctx, xticks=False,
                  xbounds=(0.0, 1.0))


def multi_vs_width(df, out, ctx=None):
    ys = {"simplex_naive": "simplex, naive", "simplex_ref": "simplex, WM to net 0",
          **{f"simplex_{k}": f"simplex, {v} merge" for k, v in _METHOD_NAMES.items()},
          **{f"kavg_{k}": f"k-average, {v} merge" for k, v in _METHOD_NAMES.items()}}
    return curves(df, "m", ys, Path(out) / "multi_vs_width.png", _width_label(), "barrier (population loss)",
                  "Barrier of k merged networks vs width", ctx=ctx, count="groups")


def strong_vs_width(df, out, ctx=None):
    ys = {"naive_max": "naive", **{f"shared_max_{k}": f"shared perms ({v})" for k, v in _METHOD_NAMES.items()},
          **{f"pairwise_max_{k}": f"pairwise perms ({v})" for k, v in _METHOD_NAMES.items()}}
    return curves(df, "m", ys, Path(out) / "strong_vs_width.png", _width_label(),
                  "max pairwise barrier (population loss)", "Strong connectivity vs width", ctx=ctx, count="groups")


def singular_alignment(df, out, ctx=None):
    ys = {"left_before": "left, before", "left_after": "left, after matching",
          "left_best_after": "left (best partner), after", "right": "right (d-side)"}
    return curves(df, "rank", ys, Path(out) / "singular_alignment.png", style.axis_label("rank"),
                  "|cos| of singular vectors", "Singular-vector alignment vs rank", logx=False, logy=False, ctx=ctx)


def methods_barrier(df, out, ctx=None):
    ys = {"barrier_naive": "naive", **{f"barrier_{k}": v for k, v in _METHOD_NAMES.items()}}
    return curves(df, "m", ys, Path(out) / "methods_barrier.png", _width_label(), "barrier (population loss)",
                  "Barrier by alignment method", ctx=ctx)


# ------------------------------------------------------------------------------ rate atlas
ATLAS_COLORS = {"weight": "tab:blue", "activation": "tab:green", "barrier": "tab:orange", "ste": "tab:purple",
                "optimal": "black"}
MIN_FIT_WIDTHS = 3  # a power law needs at least three widths with a positive mean to be called a fit


def atlas_fit(g: pd.DataFrame, min_m: int = 16, n_boot: int = 1000, seed: int = 0) -> dict:
    """The fit of one (regime, d, matching) group of an atlas table, as in summary.json
    (:func:`tsim.results.summary.rate_fit` on column ``barrier``), or ``{"error": why}``: no finite
    barrier (diverged), every barrier 0, or fewer than :data:`MIN_FIT_WIDTHS` widths with a positive mean."""
    from .summary import rate_fit as fit

    tail = g[g["m"] >= min_m] if "m" in g else g
    vals = pd.to_numeric(tail.get("barrier", pd.Series(dtype=float)), errors="coerce")
    if not np.isfinite(vals).any():
        return {"error": "no finite barrier (diverged or not run)"}
    if not (vals > ROUNDING).any():
        return {"error": "every barrier is 0 (up to rounding)"}
    tail = tail.assign(barrier=vals.where(~(vals <= ROUNDING), 0.0))  # rounding noise counts as 0
    pos = tail.groupby("m")["barrier"].mean()
    k = int((pos > 0).sum())
    if k < MIN_FIT_WIDTHS:
        return {"error": f"{k} width{'s' if k != 1 else ''} with a positive mean barrier (m >= {min_m}); "
                         f"a fit needs {MIN_FIT_WIDTHS}"}
    return fit(tail, "barrier", min_m, n_boot, seed)


def _atlas_order(df: pd.DataFrame, cfg) -> list:
    names = [n for n, _ in getattr(cfg, "regimes", ())] if cfg is not None else []
    seen = list(dict.fromkeys(df["regime"].tolist())) if "regime" in df else []
    return [n for n in names if n in seen] + [n for n in seen if n not in names]


@style.styled
def atlas_rates(df: pd.DataFrame, out: Path, ctx: Context | None = None) -> list[Path]:
    """Rate atlas: barrier vs m on log axes, one panel per regime; per matching (colour) and d
    (marker, line style) the mean over pairs, zeros included, as fitted (pairs at 0 also counted on
    the zero row, diverged runs marked) and
    the fitted C m^-alpha (dotted, over the fitted widths); alpha [95% CI] of each fit is written in
    the panel ("no fit" where :func:`atlas_fit` says so). One legend for the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    ctx = ctx or Context.make()
    an = ctx.analysis
    min_m = an.fit_min_m if an is not None else 16
    n_boot = an.n_boot if an is not None else 1000
    seed = ctx.cfg.sweep.seed if ctx.cfg is not None else 0
    regimes = _atlas_order(df, ctx.cfg) if {"regime", "matching", "barrier", "m"} <= set(df.columns) else []
    ncols = min(4, max(len(regimes), 1))
    nrows = max(1, -(-len(regimes) // ncols))
    height = 4.3 * nrows + 1.6
    fig = Figure(figsize=(4.2 * ncols, height))  # fixed margins: a constrained layout of many panels is slow
    fig.subplots_adjust(left=0.07 if ncols > 1 else 0.16, right=0.98, top=1 - 0.75 / height,
                        bottom=(1.2 + 1.0) / height, wspace=0.28, hspace=0.75)
    FigureCanvasAgg(fig)
    if not regimes:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no atlas rows to plot (columns regime, matching, barrier, m)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_xlabel(_width_label())
        ax.set_ylabel("barrier (population loss)")
        return style.save(fig, Path(out) / "atlas_rates.png", ctx.formats)
    div = style.diverged_rows(df)
    ds = sorted(df["d"].dropna().unique().tolist()) if "d" in df else [None]
    meths = list(dict.fromkeys(df["matching"].tolist()))
    colors = {m: ATLAS_COLORS.get(m, style.CYCLE[i % len(style.CYCLE)]) for i, m in enumerate(meths)}
    for k, name in enumerate(regimes):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        p = style.Panel(ax, True, True, ROUNDING)
        sub = df[df["regime"] == name]
        fits = []
        for meth in meths:
            for j, d in enumerate(ds):
                g = sub[(sub["matching"] == meth) & ((sub["d"] == d) if d is not None else True)]
                if g.empty:
                    continue
                f = atlas_fit(g, min_m, n_boot, seed)
                fits.append(f"{_METHOD_NAMES.get(meth, meth)}{'' if d is None else f', d={int(d)}'}: "
                            + (f"{f['alpha']:.2f} [{f['alpha_ci'][0]:.2f}, {f['alpha_ci'][1]:.2f}]"
                               if "alpha" in f else "no fit"))
                # the fitted quantity: the mean over all pairs, zeros included (zeros also counted on the 0 row);
                # a mean of 0 is not drawn on the log axis, its pairs sit on the 0 row
                b = pd.to_numeric(g["barrier"], errors="coerce")
                st = style.pair_stats(g.assign(barrier=b.where(~(b <= ROUNDING), 0.0)), "m", "barrier", False,
                                      div[g.index], zero_tol=ROUNDING)
                st.loc[~(st["mean"] > 0), ["mean", "ci_lo", "ci_hi"]] = np.nan
                p.series(st, f"{meth} {d}", colors[meth], marker=style.MARKERS[j % len(style.MARKERS)],
                         ls=style.LINESTYLES[j % len(style.LINESTYLES)], band=False)
                if "alpha" in f:
                    m = np.array(f["m"])
                    p.line(m, f["C"] * m ** -f["alpha"], None, colors[meth], ls=(0, (1, 1.5)), gid=style.GID_FIT)
        src = sub["source"].iloc[0] if "source" in sub else ""
        p.finish(_width_label(), "barrier (population loss)", name + (f" ({src})" if src else ""),
                 xticks=_values_run(sub, "m"))
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.text(0.0, -0.2, "alpha [95% CI]: " + "; ".join(fits[:2]) + ("\n" if fits[2:] else "")
                + "\n".join("; ".join(fits[i:i + 2]) for i in range(2, len(fits), 2)), transform=ax.transAxes,
                fontsize=6, va="top", ha="left", color="0.2")
    handles = [Line2D([], [], color=colors[m], lw=1.4, label=_METHOD_NAMES.get(m, m)) for m in meths]
    handles += [Line2D([], [], color="0.3", marker=style.MARKERS[j % len(style.MARKERS)],
                       ls=style.LINESTYLES[j % len(style.LINESTYLES)], label=f"d = {int(d)}")
                for j, d in enumerate(ds) if d is not None]
    handles += [Line2D([], [], color="0.3", ls=(0, (1, 1.5)), label="fit C m^-alpha (fitted widths)"),
                Line2D([], [], ls="none", marker="o", mfc="white", mec="0.3", mew=1.2,
                       label=f"0 (<= {style.fmt_value(ROUNDING)}): k/n pairs above the marker"),
                Line2D([], [], ls="none", marker="x", color="0.3", mew=1.5, label="diverged (no value)")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False,
               title="line: mean over pairs, zeros included (the quantity fitted)", bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"Rate atlas: barrier modulo permutation vs width, fit C m^-alpha over m >= {min_m}")
    return style.save(fig, Path(out) / "atlas_rates.png", ctx.formats)


#: plot name -> function(df, out folder, Context or None) -> [paths written]
PLOTS = {
    "barrier_vs_width": barrier_vs_width,
    "loss_vs_width": loss_vs_width,
    "barrier_vs_lr": barrier_vs_lr,
    "sparsity_vs_lr": sparsity_vs_lr,
    "barrier_vs_sparsity": barrier_vs_sparsity,
    "rate_fit": rate_fit,
    "diverged_vs_lr": diverged_vs_lr,
    "trajectory_barrier": trajectory_barrier,
    "pruning_barrier": pruning_barrier,
    "multi_vs_width": multi_vs_width,
    "strong_vs_width": strong_vs_width,
    "singular_alignment": singular_alignment,
    "methods_barrier": methods_barrier,
    "atlas_rates": atlas_rates,
}


def draw(df: pd.DataFrame, names, out: Path, cfg=None, formats=None) -> list[Path]:
    """Draw each named plot of ``PLOTS`` into folder ``out``; returns the files written.

    ``cfg`` (a :class:`tsim.config.Config`) gives the ``[analysis]`` settings (group_by, fit),
    the unit of lr and the setting the theory overlays need; ``formats`` the file types
    (default ``$TSIM_FIG_FORMATS`` or PNG).
    """
    fmts = style.formats(formats)
    out_files = []
    for name in names:
        out_files += PLOTS[name](df, Path(out), Context.make(cfg, fmts))
    return out_files
