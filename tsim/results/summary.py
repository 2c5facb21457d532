"""Summary numbers computed from a result table (what summary.json reports as measured).

Generic routines driven by the ``[analysis]`` config section: double-descent extrema of a
barrier vs width, a power-law fit of its large-width tail, and the location of a sparsity
transition (and of divergence) along a swept learning rate. Each is computed per group of the
``group_by`` columns.
"""
from __future__ import annotations

import platform
from importlib.metadata import version as _version

import numpy as np
import pandas as pd

from ..fit import fit_power_law


def versions(study: str = "lmc", cfg=None) -> dict:
    """Versions of tsim and the libraries that produced the numbers (deep: torch, CUDA, cuDNN, GPU and,
    given the resolved config ``cfg``, the training precision its runs used)."""
    import scipy

    import tsim

    out = {"tsim": tsim.__version__, "python": platform.python_version(), "numpy": np.__version__,
           "scipy": scipy.__version__, "numba": _version("numba"), "pandas": pd.__version__}
    try:
        out["lapx"] = _version("lapx")
    except Exception:  # pragma: no cover - lapx missing means scipy is used
        out["lapx"] = None
    if study == "deep":
        from ..deep.study import torch_versions

        out.update(torch_versions(cfg))
    return out


def with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Add per-row columns: diverged (fraction of the pair, 0/0.5/1), sparsity (mean sparse fraction
    of the non-diverged students), lr_used (mean absolute step), loss (mean endpoint loss)."""
    out = df.copy()
    if {"status_a", "status_b"} <= set(df.columns):
        da, db = df["status_a"] == "diverged", df["status_b"] == "diverged"
        out["diverged"] = (da.astype(float) + db.astype(float)) / 2
        if {"sparse_a", "sparse_b"} <= set(df.columns):
            sa = df["sparse_a"].where(~da)
            sb = df["sparse_b"].where(~db)
            out["sparsity"] = pd.concat([sa, sb], axis=1).mean(axis=1)
    if {"lr_a", "lr_b"} <= set(df.columns):
        out["lr_used"] = df[["lr_a", "lr_b"]].mean(axis=1)
    if {"loss_a", "loss_b"} <= set(df.columns):
        out["loss"] = df[["loss_a", "loss_b"]].mean(axis=1)
    return out


def width_extrema(df: pd.DataFrame, y: str = "barrier_wm") -> dict:
    """Width of the largest mean barrier (peak) and of the first local minimum of the mean after it.

    Also the largest mean after that minimum (a second ascent, if any) and the last width's mean.
    Only meaningful when the table has several widths m; returns None entries otherwise.
    """
    none = {"peak_m": None, "min_m_after_peak": None}
    if "m" not in df or y not in df or df["m"].nunique() < 2:
        return none
    mean = df[["m", y]].dropna().groupby("m")[y].mean()
    if mean.empty:
        return none
    peak = int(mean.idxmax())
    after = mean[mean.index >= peak]
    vals = after.to_numpy()
    k = next((i for i in range(1, len(vals) - 1) if vals[i] <= vals[i - 1] and vals[i] < vals[i + 1]), None)
    out = {"peak_m": peak, "peak_barrier": float(mean.loc[peak]),
           "min_m_after_peak": int(after.index[k]) if k is not None else None,
           "min_barrier_after_peak": float(vals[k]) if k is not None else None,
           "last_m": int(mean.index[-1]), "last_barrier": float(mean.iloc[-1])}
    if k is not None and k + 1 < len(vals):
        rest = after.iloc[k + 1:]
        out["second_peak_m"] = int(rest.idxmax())
        out["second_peak_barrier"] = float(rest.max())
    return out


def rate_fit(df: pd.DataFrame, y: str = "barrier_wm", min_m: int = 16, n_boot: int = 1000,
             seed: int = 0) -> dict:
    """Power law y ~ C m^-alpha over widths m >= min_m with a bootstrap CI resampling pairs.

    Returns the fit as a dict (:meth:`tsim.fit.PowerLawFit.to_dict`) with ``reference_alpha`` 0.5,
    or ``{"error": ...}`` when fewer than two usable widths remain.
    """
    if "m" not in df or y not in df:
        return {"error": f"the table has no columns m and {y}"}
    sub = df[df["m"] >= min_m]
    try:
        fit = fit_power_law(sub["m"].to_numpy(), sub[y].to_numpy(), n_boot=n_boot,
                            pairs=sub["pair"].to_numpy() if "pair" in sub else None, seed=seed)
    except ValueError as exc:
        return {"error": str(exc)}
    return {**fit.to_dict(), "min_m": int(min_m), "column": y}


def transition(df: pd.DataFrame, x: str = "lr", y: str = "sparsity", level: float = 0.05) -> dict:
    """Where the mean of y over rows first exceeds ``level`` as x increases.

    Returns lo (the last x below, or None), hi (the first x above, or None), x_star (geometric
    midpoint of [lo, hi] when both exist) and the mean curve. x values where y is NaN for every
    row (all students diverged) are skipped.
    """
    if x not in df or y not in df:
        return {"error": f"the table has no columns {x} and {y}"}
    mean = df[[x, y]].dropna().groupby(x)[y].mean().sort_index()
    above = mean[mean > level]
    hi = float(above.index[0]) if len(above) else None
    below = mean[mean.index < hi] if hi is not None else mean
    lo = float(below.index[-1]) if len(below) else None
    star = float(np.sqrt(lo * hi)) if lo is not None and hi is not None and lo > 0 else None
    return {"x": x, "y": y, "level": level, "lo": lo, "hi": hi, "x_star": star,
            "curve": {str(k): float(v) for k, v in mean.items()}}


def groups(df: pd.DataFrame, by) -> list:
    """[(group key as {column: value}, rows), ...] over the columns ``by`` present in df (one group if none)."""
    by = [c for c in by if c in df.columns]
    if not by:
        return [({}, df)]
    return [(dict(zip(by, (k if isinstance(k, tuple) else (k,)))), g) for k, g in df.groupby(by, sort=True)]


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def outcome_counts(df: pd.DataFrame) -> dict:
    """How many students ended converged / max_steps / diverged."""
    st = pd.concat([df["status_a"], df["status_b"]]) if "status_a" in df else pd.Series(dtype=str)
    return {k: int(v) for k, v in st.value_counts().items()}


def cell_means(df: pd.DataFrame, by: list[str]) -> list[dict]:
    """Per value of the ``by`` columns: means of the barrier, test, sparsity and timing columns over
    seed pairs, and the standard deviation of each barrier (deep studies)."""
    cols = [c for c in df.columns if c.startswith(("barrier_", "test_error_", "test_loss_", "sparse_", "dead_"))]
    cols += [c for c in ("weight_seconds", "activation_seconds", "train_seconds") if c in df.columns]
    out = []
    for key, sub in groups(df, by):
        rec = {k: _plain(v) for k, v in key.items()}
        rec.update({f"{c}_mean": float(sub[c].mean()) for c in cols})
        rec.update({f"{c}_std": float(sub[c].std(ddof=0)) for c in cols if c.startswith("barrier_")})
        rec["pairs"] = int(len(sub))
        out.append(rec)
    return out


def swept_columns(cfg) -> list[str]:
    """Result columns of the swept fields (a field's own name, e.g. model.width -> width)."""
    return [key.split(".")[1] for key, _ in cfg.axes]


def summarize(df: pd.DataFrame, cfg=None) -> dict:
    """Measured numbers for summary.json.

    Without ``cfg``: row and outcome counts, extrema of barrier_wm vs m and mean barriers. With a
    :class:`tsim.config.Config`, the ``[analysis]`` measures per ``group_by`` group under
    ``"groups"`` (a list of {"group": {...}, measure: {...}}).
    """
    out = {"rows": int(len(df)), "students": outcome_counts(df)}
    if "barrier_wm" in df:
        out.update(width_extrema(df))
        out["mean_barrier_naive"] = float(df["barrier_naive"].mean())
        out["mean_barrier_wm"] = float(df["barrier_wm"].mean())
    if cfg is None:
        return out
    if cfg.study == "deep":
        out["cells"] = cell_means(df, swept_columns(cfg) or ["arch"])
        return out
    an = cfg.analysis
    d = with_derived(df)
    entries = []
    for key, g in groups(d, an.group_by):
        entry = {"group": {k: _plain(v) for k, v in key.items()}, "rows": int(len(g))}
        if "extrema" in an.measures:
            entry["extrema"] = width_extrema(g, an.y)
        if "power_law" in an.measures:
            entry["power_law"] = rate_fit(g, an.y, an.fit_min_m, an.n_boot, cfg.sweep.seed)
        if "transition" in an.measures:
            entry["transition"] = transition(g, an.transition_x, "sparsity", an.transition_level)
            entry["divergence"] = transition(g, an.transition_x, "diverged", 0.5)
        entries.append(entry)
    out["groups"] = entries
    return out
