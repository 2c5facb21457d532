"""Matplotlib figures of two-layer studies, drawn from result tables only (Agg backend, PNG files).

:func:`pyplot` is the one way every results module gets matplotlib."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .summary import groups, with_derived


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_ci(values: np.ndarray, level: float = 0.95, n_boot: int = 400, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (n,), seeded.

    Unlike mean +- 1.96 sem it stays inside the range of the data, so a band of non-negative
    barriers never dips below 0 on a log axis.
    """
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float(v.mean()), float(v.mean())
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def group_stats(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per value of x: mean, standard error, bootstrap 95% CI of the mean (ci_lo, ci_hi), 2.5% and
    97.5% quantiles and count of y (NaN dropped)."""
    g = df[[x, y]].dropna().groupby(x)[y]
    ci = g.apply(lambda v: mean_ci(v.to_numpy()))
    return pd.DataFrame({"mean": g.mean(), "sem": g.sem().fillna(0.0),
                         "ci_lo": [c[0] for c in ci], "ci_hi": [c[1] for c in ci],
                         "lo": g.quantile(0.025), "hi": g.quantile(0.975), "n": g.count()})


def _band(s: pd.DataFrame, logy: bool, floor: float):
    """(mean, lower, upper) of a group_stats table, floored for a log axis."""
    out = (s["mean"].to_numpy(), s["ci_lo"].to_numpy(), s["ci_hi"].to_numpy())
    return tuple(np.maximum(v, floor) for v in out) if logy else out


def curves(df: pd.DataFrame, x: str, ys: dict, path: Path, xlabel: str, ylabel: str, title: str,
           logx: bool = True, logy: bool = True, floor: float = 1e-12) -> Path:
    """Mean of each column in ``ys`` ({column: label}) vs x with a bootstrap 95% CI band.

    On a log y-axis values below ``floor`` are drawn at ``floor`` (barriers can be 0 or slightly
    negative from rounding).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for col, label in ys.items():
        if col not in df:
            continue
        s = group_stats(df, x, col)
        if s.empty:
            continue
        mean, lo, hi = _band(s, logy, floor)
        ax.plot(s.index, mean, marker="o", ms=3, label=label)
        ax.fill_between(s.index, lo, hi, alpha=0.25)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _sparsity(df: pd.DataFrame) -> pd.DataFrame:
    return with_derived(df) if "status_a" in df else df.assign(sparsity=df[["sparse_a", "sparse_b"]].mean(axis=1))


def _lr(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(lr_used=df[["lr_a", "lr_b"]].mean(axis=1))


BARRIERS = {"barrier_naive": "naive", "barrier_wm": "weight matching"}


def _label(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def grouped(df: pd.DataFrame, x: str, ys: dict, path: Path, xlabel: str, ylabel: str, title: str,
            by=(), logx: bool = True, logy: bool = True, floor: float = 1e-12, fits: dict | None = None) -> Path:
    """One panel per column of ``ys``; in each, the mean vs x with a bootstrap 95% CI band per group of ``by``.

    ``fits`` maps a group label to (m, fitted values, legend text) drawn as a dashed line on the
    panel of the first column (used for power-law fits).
    """
    plt = pyplot()
    cols = [c for c in ys if c in df]
    fig, axes = plt.subplots(1, max(len(cols), 1), figsize=(5.2 * max(len(cols), 1), 4), squeeze=False)
    for ax, col in zip(axes[0], cols):
        for key, g in groups(df, by):
            s = group_stats(g, x, col)
            if s.empty:
                continue
            mean, lo, hi = _band(s, logy, floor)
            lab = _label(key) or ys[col]
            line, = ax.plot(s.index, mean, marker="o", ms=3, label=lab)
            ax.fill_between(s.index, lo, hi, alpha=0.2, color=line.get_color())
            if fits and col == cols[0] and lab in fits:
                fm, fv, ftext = fits[lab]
                ax.plot(fm, fv, "--", color=line.get_color(), label=ftext)
        ax.set_xscale("log" if logx else "linear")
        ax.set_yscale("log" if logy else "linear")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: {ys[col]}")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _by(analysis) -> tuple:
    return tuple(analysis.group_by) if analysis is not None else ()


def barrier_vs_width(df, p, analysis=None):
    return grouped(df, "m", BARRIERS, p / "barrier_vs_width.png", "student width m", "barrier (population loss)",
                   "Barrier vs width", by=_by(analysis))


def rate_fit(df, p, analysis=None):
    """Large-width tail with the fitted power law per group (dashed)."""
    from .summary import rate_fit as fit

    y = analysis.y if analysis is not None else "barrier_wm"
    min_m = analysis.fit_min_m if analysis is not None else 16
    n_boot = min(analysis.n_boot, 200) if analysis is not None else 200
    fits = {}
    for key, g in groups(df, _by(analysis)):
        f = fit(g, y, min_m, n_boot)
        if "alpha" in f:
            m = np.array(f["m"])
            fits[_label(key) or {"barrier_wm": "weight matching"}.get(y, y)] = (
                m, f["C"] * m ** -f["alpha"],
                f"fit: alpha={f['alpha']:.2f} [{f['alpha_ci'][0]:.2f}, {f['alpha_ci'][1]:.2f}]")
    return grouped(df[df["m"] >= min_m], "m", {y: BARRIERS.get(y, y)}, p / "rate_fit.png", "student width m",
                   "barrier", "Tail fit", by=_by(analysis), fits=fits)


def sparsity_vs_lr(df, p, analysis=None):
    return grouped(_sparsity(df), "lr", {"sparsity": "fraction of ~0 neurons (non-diverged)"},
                   p / "sparsity_vs_lr.png", "train.lr", "sparse fraction", "Sparsity vs lr", by=_by(analysis),
                   logy=False)


def diverged_vs_lr(df, p, analysis=None):
    return grouped(_sparsity(df), "lr", {"diverged": "fraction of students diverged"}, p / "diverged_vs_lr.png",
                   "train.lr", "diverged fraction", "Divergence vs lr", by=_by(analysis), logy=False)


def barrier_vs_lr(df, p, analysis=None):
    return grouped(df, "lr", BARRIERS, p / "barrier_vs_lr.png", "train.lr", "barrier", "Barrier vs lr",
                   by=_by(analysis))


def barrier_vs_sparsity(df, p, analysis=None):
    return scatter(_sparsity(df), "sparsity", "barrier_wm", p / "barrier_vs_sparsity.png",
                   hue=_by(analysis), logy=True)


PLOTS = {
    "barrier_vs_width": barrier_vs_width,
    "loss_vs_width": lambda df, p: curves(df.assign(loss=df[["loss_a", "loss_b"]].mean(axis=1)), "m",
                                          {"loss": "endpoint loss"}, p / "loss_vs_width.png", "student width m",
                                          "population loss", "Endpoint loss vs width"),
    "barrier_vs_lr": barrier_vs_lr,
    "sparsity_vs_lr": sparsity_vs_lr,
    "barrier_vs_sparsity": barrier_vs_sparsity,
    "rate_fit": rate_fit,
    "diverged_vs_lr": diverged_vs_lr,
}
GROUPED = {"barrier_vs_width", "barrier_vs_lr", "sparsity_vs_lr", "barrier_vs_sparsity", "rate_fit",
           "diverged_vs_lr"}  # these take the [analysis] section (group_by, fit settings)


# alignment studies (tsim.studies); columns absent from a table are skipped by curves()
_METHOD_NAMES = {"weight": "WM", "activation": "AM", "ste": "STE", "optimal": "optimal"}
_SEQ = {"barrier_single": "one permutation", "barrier_per_step": "per-step matching", "barrier_naive": "naive"}
PLOTS.update({
    "trajectory_barrier": lambda df, p: curves(df, "step", _SEQ, p / "trajectory_barrier.png", "training step",
                                               "barrier", "Barrier along training trajectories"),
    "pruning_barrier": lambda df, p: curves(df, "sparsity", _SEQ, p / "pruning_barrier.png",
                                            "fraction of first-layer weights pruned", "barrier",
                                            "Barrier along IMP sequences", logx=False),
    "multi_vs_width": lambda df, p: curves(
        df, "m", {"simplex_naive": "simplex, naive", "simplex_ref": "simplex, WM to net 0",
                  **{f"simplex_{k}": f"simplex, {v} merge" for k, v in _METHOD_NAMES.items()},
                  **{f"kavg_{k}": f"k-average, {v} merge" for k, v in _METHOD_NAMES.items()}},
        p / "multi_vs_width.png", "student width m", "barrier", "Barrier of k merged networks vs width"),
    "strong_vs_width": lambda df, p: curves(
        df, "m", {"naive_max": "naive", **{f"shared_max_{k}": f"shared perms ({v})" for k, v in _METHOD_NAMES.items()},
                  **{f"pairwise_max_{k}": f"pairwise perms ({v})" for k, v in _METHOD_NAMES.items()}},
        p / "strong_vs_width.png", "student width m", "max pairwise barrier", "Strong connectivity vs width"),
    "singular_alignment": lambda df, p: curves(
        df, "rank", {"left_before": "left, before", "left_after": "left, after matching",
                     "left_best_after": "left (best partner), after", "right": "right (d-side)"},
        p / "singular_alignment.png", "rank of singular value", "|cos| of singular vectors",
        "Singular-vector alignment vs rank", logx=False, logy=False),
    "methods_barrier": lambda df, p: curves(
        df, "m", {"barrier_naive": "naive", **{f"barrier_{k}": v for k, v in _METHOD_NAMES.items()}},
        p / "methods_barrier.png", "student width m", "barrier", "Barrier by alignment method"),
})


def scatter(df: pd.DataFrame, x: str, y: str, path: Path, hue=(), logy: bool = False) -> Path:
    """Scatter of y against x, one point per row, coloured by the groups of ``hue`` columns."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, g in groups(df, hue):
        d = g[[x, y]].dropna()
        if logy:
            d = d[d[y] > 0]
        ax.scatter(d[x], d[y], s=10, alpha=0.6, label=_label(key) or None)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)
    if hue:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def draw(df: pd.DataFrame, names, out: Path, cfg=None) -> list[Path]:
    """Draw each named plot of ``PLOTS`` into folder ``out``; returns the files written.

    With a config, the plots in ``GROUPED`` use its ``[analysis]`` section (group_by, fit).
    """
    analysis = cfg.analysis if cfg is not None else None
    return [PLOTS[name](df, Path(out), analysis) if name in GROUPED else PLOTS[name](df, Path(out))
            for name in names]
