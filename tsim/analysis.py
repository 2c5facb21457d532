"""Summary numbers computed from a result table (what summary.json reports as measured)."""
from __future__ import annotations

import platform

import numpy as np
import pandas as pd


def versions() -> dict:
    """Versions of tsim and the libraries that produced the numbers."""
    import numba
    import scipy

    import tsim

    out = {"tsim": tsim.__version__, "python": platform.python_version(), "numpy": np.__version__,
           "scipy": scipy.__version__, "numba": numba.__version__, "pandas": pd.__version__}
    try:
        from importlib.metadata import version

        out["lapx"] = version("lapx")
    except Exception:  # pragma: no cover - lapx missing means scipy is used
        out["lapx"] = None
    return out


def width_extrema(df: pd.DataFrame, y: str = "barrier_wm") -> dict:
    """Width of the largest mean barrier (peak) and of the smallest mean barrier beyond it (minimum).

    Only meaningful when the table has several widths m; returns None entries otherwise.
    """
    if "m" not in df or df["m"].nunique() < 2:
        return {"peak_m": None, "min_m_after_peak": None}
    mean = df[["m", y]].dropna().groupby("m")[y].mean()
    if mean.empty:
        return {"peak_m": None, "min_m_after_peak": None}
    peak = int(mean.idxmax())
    after = mean[mean.index >= peak]
    # the minimum between the peak and the point where the curve starts its final decay is the
    # first local minimum after the peak
    vals = after.to_numpy()
    k = next((i for i in range(1, len(vals) - 1) if vals[i] <= vals[i - 1] and vals[i] < vals[i + 1]), None)
    return {"peak_m": peak, "peak_barrier": float(mean.loc[peak]),
            "min_m_after_peak": int(after.index[k]) if k is not None else None,
            "min_barrier_after_peak": float(vals[k]) if k is not None else None}


def outcome_counts(df: pd.DataFrame) -> dict:
    """How many students ended converged / max_steps / diverged."""
    st = pd.concat([df["status_a"], df["status_b"]]) if "status_a" in df else pd.Series(dtype=str)
    return {k: int(v) for k, v in st.value_counts().items()}


def summarize(df: pd.DataFrame) -> dict:
    """Measured numbers for summary.json."""
    out = {"rows": int(len(df)), "students": outcome_counts(df)}
    if "barrier_wm" in df:
        out.update(width_extrema(df))
        out["mean_barrier_naive"] = float(df["barrier_naive"].mean())
        out["mean_barrier_wm"] = float(df["barrier_wm"].mean())
    return out
