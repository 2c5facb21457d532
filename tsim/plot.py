"""Matplotlib figures drawn from result tables only (Agg backend, PNG files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def group_stats(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per value of x: mean, standard error, 2.5% and 97.5% quantiles and count of y (NaN dropped)."""
    g = df[[x, y]].dropna().groupby(x)[y]
    return pd.DataFrame({"mean": g.mean(), "sem": g.sem().fillna(0.0), "lo": g.quantile(0.025),
                         "hi": g.quantile(0.975), "n": g.count()})


def curves(df: pd.DataFrame, x: str, ys: dict, path: Path, xlabel: str, ylabel: str, title: str,
           logx: bool = True, logy: bool = True, floor: float = 1e-12) -> Path:
    """Mean of each column in ``ys`` ({column: label}) vs x with a 95% band (mean +- 1.96 sem).

    On a log y-axis values below ``floor`` are drawn at ``floor`` (barriers can be 0 or slightly
    negative from rounding).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for col, label in ys.items():
        if col not in df:
            continue
        s = group_stats(df, x, col)
        if s.empty:
            continue
        mean = s["mean"].to_numpy()
        band = 1.96 * s["sem"].to_numpy()
        lo, hi = mean - band, mean + band
        if logy:
            mean, lo, hi = (np.maximum(v, floor) for v in (mean, lo, hi))
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
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _sparsity(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(sparsity=df[["sparse_a", "sparse_b"]].mean(axis=1))


def _lr(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(lr_used=df[["lr_a", "lr_b"]].mean(axis=1))


BARRIERS = {"barrier_naive": "naive", "barrier_wm": "weight matching"}

PLOTS = {
    "barrier_vs_width": lambda df, p: curves(df, "m", BARRIERS, p / "barrier_vs_width.png", "student width m",
                                             "barrier (population loss)", "Barrier vs width"),
    "loss_vs_width": lambda df, p: curves(df.assign(loss=df[["loss_a", "loss_b"]].mean(axis=1)), "m",
                                          {"loss": "endpoint loss"}, p / "loss_vs_width.png", "student width m",
                                          "population loss", "Endpoint loss vs width"),
    "barrier_vs_lr": lambda df, p: curves(df, "lr", BARRIERS, p / "barrier_vs_lr.png", "train.lr",
                                          "barrier", "Barrier vs learning rate"),
    "sparsity_vs_lr": lambda df, p: curves(_sparsity(df), "lr", {"sparsity": "fraction of ~0 neurons"},
                                           p / "sparsity_vs_lr.png", "train.lr", "sparse fraction",
                                           "Sparsity vs learning rate", logy=False),
    "barrier_vs_sparsity": lambda df, p: scatter(_sparsity(df), "sparsity", "barrier_wm",
                                                 p / "barrier_vs_sparsity.png"),
}


def scatter(df: pd.DataFrame, x: str, y: str, path: Path) -> Path:
    """Scatter of y against x, one point per row."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    d = df[[x, y]].dropna()
    ax.scatter(d[x], d[y], s=10, alpha=0.6)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def draw(df: pd.DataFrame, names, out: Path) -> list[Path]:
    """Draw each named plot of ``PLOTS`` into folder ``out``; returns the files written."""
    return [PLOTS[name](df, Path(out)) for name in names]
