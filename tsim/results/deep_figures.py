"""Figures of a deep study, drawn from the result table only, in the shared style of
:mod:`tsim.results.style` (the two-layer figures use it too).

Each figure plots the mean over seed pairs with a bootstrap 95% CI band against the swept
quantity (``x``: "width" or "lr"), one line per method (colour) and per value of any other swept
column (marker and line style). The x ticks are the values run; the loss barrier is on a log
axis, where pairs with a barrier of exactly 0 sit on their own "0" row with "k/n"; runs whose
end-point loss is not finite are marked as diverged at the top. PNG by default; SVG too with
``formats=("png", "svg")`` or ``TSIM_FIG_FORMATS=png,svg``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import style

#: method -> (colour, name in words); the colours are the shared :data:`tsim.results.style.METHOD_COLORS`
METHOD_STYLE = {m: (style.METHOD_COLORS[m], style.METHOD_NAMES[m]) for m in ("naive", "weight", "activation")}


def _groups(df: pd.DataFrame, by: list[str]):
    if not by:
        yield "", df
        return
    for key, sub in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield ", ".join(f"{b} = {k}" for b, k in zip(by, key)), sub


def x_label(df: pd.DataFrame, x: str) -> str:
    """Words for the swept quantity: "width multiplier", "learning rate (SGD step)", ..."""
    if x == "lr":
        opt = df["optimizer"].dropna().unique() if "optimizer" in df else []
        return style.lr_label({"sgd": "SGD", "adam": "Adam"}.get(opt[0], str(opt[0])) if len(opt) == 1 else None)
    return style.axis_label(x)


def _ticks(df: pd.DataFrame, x: str) -> list | None:
    vals = pd.to_numeric(df[x], errors="coerce").dropna().unique() if x in df else []
    return sorted(float(v) for v in vals) if len(vals) else None


def _finish(fig, panels, df, x, ylabels, titles, path: Path, title: str, formats) -> list[Path]:
    """Finish panels against the swept ``x`` (ticks at its values), title, size and save."""
    for p, ylabel, sub in zip(panels, ylabels, titles):
        p.finish(x_label(df, x), ylabel, sub, xticks=_ticks(df, x),
                 legend_title=f"line: mean over pairs{' > 0' if p.logy else ''}, band: 95% CI")
    if title:
        fig.suptitle(title)
    style.fit_height(fig)
    return style.save(fig, path, style.formats(formats))


@style.styled
def barrier_figure(df: pd.DataFrame, x: str, methods, by: list[str], path: Path, title: str = "",
                   formats=None) -> list[Path]:
    """Loss barrier (log axis) and error barrier vs ``x``, one line per method (and group of ``by``)."""
    fig, axes = style.new_figure(2)
    panels = [style.Panel(axes[0], True, True), style.Panel(axes[1], True, False)]
    div = style.diverged_rows(df)
    for gi, (gname, sub) in enumerate(_groups(df, by)):
        for m in methods:
            color, name = METHOD_STYLE[m]
            label = name + (f" ({gname})" if gname else "")
            kw = dict(marker=style.MARKERS[gi % len(style.MARKERS)], ls=style.LINESTYLES[gi % len(style.LINESTYLES)])
            for p, col in zip(panels, (f"barrier_loss_{m}", f"barrier_error_{m}")):
                p.series(style.pair_stats(sub, x, col, p.logy, div[sub.index]), label, color, **kw)
    return _finish(fig, panels, df, x, ("test-loss barrier", "test-error barrier"),
                   ("Loss barrier", "Error barrier"), path, title, formats)


@style.styled
def sparsity_figure(df: pd.DataFrame, x: str, methods, by: list[str], path: Path, title: str = "",
                    formats=None) -> list[Path]:
    """Fraction of sparse hidden units vs ``x``, and the loss barrier vs sparsity (one point per pair)."""
    df = df.assign(sparse=(df["sparse_a"] + df["sparse_b"]) / 2, dead=(df["dead_a"] + df["dead_b"]) / 2)
    fig, axes = style.new_figure(2)
    p_s, p_b = style.Panel(axes[0], True, False), style.Panel(axes[1], False, True)
    div = style.diverged_rows(df)
    for gi, (gname, sub) in enumerate(_groups(df, by)):
        tail = f" ({gname})" if gname else ""
        ls = style.LINESTYLES[gi % len(style.LINESTYLES)]
        p_s.series(style.pair_stats(sub, x, "sparse", False, div[sub.index]), "near-zero units" + tail,
                   style.CYCLE[0], ls=ls)
        p_s.series(style.pair_stats(sub, x, "dead", False, div[sub.index]), "dead units" + tail, style.CYCLE[1],
                   marker="x", ls=ls)
    for m in methods:
        color, name = METHOD_STYLE[m]
        p_b.points(df["sparse"], df[f"barrier_loss_{m}"], name, color)
    p_s.finish(x_label(df, x), "fraction of hidden units", "Sparsity", xticks=_ticks(df, x),
               legend_title="line: mean over pairs, band: 95% CI")
    p_b.finish("fraction of near-zero units (mean of the pair)", "test-loss barrier", "Barrier vs sparsity",
               legend_title="one point per pair", xbounds=(0.0, 1.0))
    if title:
        fig.suptitle(title)
    style.fit_height(fig)
    return style.save(fig, path, style.formats(formats))


@style.styled
def endpoints_figure(df: pd.DataFrame, x: str, by: list[str], path: Path, title: str = "",
                     formats=None) -> list[Path]:
    """Test loss and error of the trained end points vs ``x``."""
    df = df.assign(test_loss=(df["test_loss_a"] + df["test_loss_b"]) / 2,
                   test_error=(df["test_error_a"] + df["test_error_b"]) / 2)
    fig, axes = style.new_figure(2)
    panels = [style.Panel(axes[0], True, False), style.Panel(axes[1], True, False)]
    div = style.diverged_rows(df)
    for gi, (gname, sub) in enumerate(_groups(df, by)):
        color = style.CYCLE[gi % len(style.CYCLE)]
        for p, col in zip(panels, ("test_loss", "test_error")):
            p.series(style.pair_stats(sub, x, col, False, div[sub.index]), gname or "end points (mean of the pair)",
                     color, marker=style.MARKERS[gi % len(style.MARKERS)])
    return _finish(fig, panels, df, x, ("test loss", "test error"), ("End-point loss", "End-point error"), path,
                   title, formats)


#: plot name -> (file name, function(df, x, methods, by, path, title, formats=None) -> [paths written])
PLOTS = {
    "barrier": ("barrier.png", barrier_figure),
    "sparsity": ("sparsity.png", sparsity_figure),
    "endpoints": ("endpoints.png", lambda df, x, methods, by, path, title, formats=None:
                  endpoints_figure(df, x, by, path, title, formats)),
}


def draw(df: pd.DataFrame, out: Path, plots, methods, swept: list[str], title: str = "",
         formats=None) -> list[Path]:
    """All requested figures (the barrier figure when none is); x is "width" when swept (or when
    nothing is), else "lr", else the first swept column. Returns the written paths (PNG, and the
    other ``formats`` or ``$TSIM_FIG_FORMATS``)."""
    x = "width" if ("width" in swept or not swept) else ("lr" if "lr" in swept else swept[0])
    by = [c for c in swept if c != x and c in df and df[c].nunique() > 1]
    out = Path(out)
    fmts = style.formats(formats)
    files = []
    for name in (plots or ["barrier"]):
        fname, fn = PLOTS[name]
        files += fn(df, x, methods, by, out / fname, title, fmts)
    return files
