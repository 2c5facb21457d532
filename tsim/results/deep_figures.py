"""Figures of a deep study, drawn from the result table only (matplotlib ``Figure``, no pyplot state).

Each figure plots mean +- standard deviation over seed pairs against the swept quantity
(``x``: "width" or "lr"), one line per method (and per value of any other swept column).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

METHOD_STYLE = {"naive": ("tab:red", "naive"), "weight": ("tab:blue", "weight matching"),
                "activation": ("tab:green", "activation matching")}


def _figure(ncols: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6 * ncols, 3.6), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _save(fig, path: Path, title: str) -> Path:
    """Title (if any) and write the figure; returns the path."""
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    return path


def _groups(df: pd.DataFrame, by: list[str]):
    if not by:
        yield "", df
        return
    for key, sub in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield ", ".join(f"{b}={k}" for b, k in zip(by, key)), sub


def _line(ax, sub: pd.DataFrame, x: str, col: str, label: str, color=None, marker="o", ls="-"):
    agg = sub.groupby(x)[col].agg(["mean", "std", "count"]).reset_index()
    std = agg["std"].fillna(0.0).to_numpy()
    ax.errorbar(agg[x], agg["mean"], yerr=std, marker=marker, ls=ls, capsize=3, label=label, color=color)


def _axis(ax, x: str, ylabel: str):
    ax.set_xlabel({"width": "width multiplier", "lr": "learning rate"}.get(x, x))
    ax.set_ylabel(ylabel)
    if x in ("lr", "width"):
        ax.set_xscale("log")
    ax.grid(alpha=0.3)


def barrier_figure(df: pd.DataFrame, x: str, methods, by: list[str], path: Path, title: str = "") -> Path:
    """Loss and error barrier vs ``x``, one line per method (and group of ``by``)."""
    fig, (ax_l, ax_e) = _figure(2)
    markers, styles = "os^dv<>", ("-", "--", ":", "-.")
    for gi, (gname, sub) in enumerate(_groups(df, by)):
        for m in methods:
            color, name = METHOD_STYLE[m]
            label = f"{name}" + (f" ({gname})" if gname else "")
            style = dict(color=color, marker=markers[gi % 7], ls=styles[gi % 4])
            _line(ax_l, sub, x, f"barrier_loss_{m}", label, **style)
            _line(ax_e, sub, x, f"barrier_error_{m}", label, **style)
    _axis(ax_l, x, "test-loss barrier")
    _axis(ax_e, x, "test-error barrier")
    ax_l.legend(fontsize=7)
    return _save(fig, path, title)


def sparsity_figure(df: pd.DataFrame, x: str, methods, by: list[str], path: Path, title: str = "") -> Path:
    """Fraction of sparse hidden units vs ``x``, and each barrier vs sparsity (one point per run pair)."""
    df = df.assign(sparse=(df["sparse_a"] + df["sparse_b"]) / 2, dead=(df["dead_a"] + df["dead_b"]) / 2)
    fig, (ax_s, ax_b) = _figure(2)
    for gname, sub in _groups(df, by):
        _line(ax_s, sub, x, "sparse", "near-zero units" + (f" ({gname})" if gname else ""))
        _line(ax_s, sub, x, "dead", "dead units" + (f" ({gname})" if gname else ""), marker="x")
    _axis(ax_s, x, "fraction of hidden units")
    ax_s.legend(fontsize=7)
    for m in methods:
        color, name = METHOD_STYLE[m]
        ax_b.scatter(df["sparse"], df[f"barrier_loss_{m}"], color=color, label=name, s=18)
    ax_b.set_xlabel("fraction of near-zero units")
    ax_b.set_ylabel("test-loss barrier")
    ax_b.grid(alpha=0.3)
    ax_b.legend(fontsize=7)
    return _save(fig, path, title)


def endpoints_figure(df: pd.DataFrame, x: str, by: list[str], path: Path, title: str = "") -> Path:
    """Test loss and error of the trained end points vs ``x``."""
    df = df.assign(test_loss=(df["test_loss_a"] + df["test_loss_b"]) / 2,
                   test_error=(df["test_error_a"] + df["test_error_b"]) / 2)
    fig, (ax_l, ax_e) = _figure(2)
    for gname, sub in _groups(df, by):
        _line(ax_l, sub, x, "test_loss", gname or "end points")
        _line(ax_e, sub, x, "test_error", gname or "end points")
    _axis(ax_l, x, "test loss")
    _axis(ax_e, x, "test error")
    ax_l.legend(fontsize=7)
    return _save(fig, path, title)


#: plot name -> (file name, function(df, x, methods, by, path, title))
PLOTS = {
    "barrier": ("barrier.png", barrier_figure),
    "sparsity": ("sparsity.png", sparsity_figure),
    "endpoints": ("endpoints.png", lambda df, x, methods, by, path, title: endpoints_figure(df, x, by, path, title)),
}


def draw(df: pd.DataFrame, out: Path, plots, methods, swept: list[str], title: str = "") -> list[Path]:
    """All requested figures (the barrier figure when none is); x is "width" when swept (or when
    nothing is), else "lr", else the first swept column. Returns the written paths (PNG)."""
    x = "width" if ("width" in swept or not swept) else ("lr" if "lr" in swept else swept[0])
    by = [c for c in swept if c != x and df[c].nunique() > 1]
    out = Path(out)
    return [PLOTS[name][1](df, x, methods, by, out / PLOTS[name][0], title) for name in (plots or ["barrier"])]
