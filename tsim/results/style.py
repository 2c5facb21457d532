"""One figure style for every study (two-layer :mod:`~tsim.results.figures` and deep
:mod:`~tsim.results.deep_figures`).

What every figure does the same way:

- **Statistics over pairs** (:func:`pair_stats`): per x value, the mean over seed pairs with a
  seeded percentile-bootstrap 95% CI. On a log y axis both come from the pairs' *positive*
  values only; pairs whose value is 0 are counted, not averaged ("0": exactly 0, or at most a
  stated rounding tolerance such as 1e-12 for barriers of float64 losses).
- **Zeros** (:class:`Panel`): on a log y axis they are drawn as hollow markers on a zero row a
  little below the lowest positive value drawn, labelled "0" on the y axis and separated from
  the data by a dotted line; each marker carries "k/n" (k of n pairs are 0) and the legend says
  so. Nothing is drawn at an arbitrary floor such as 1e-12.
- **Diverged runs** (no value): an "x" at the top of the panel at that x, one row per series;
  where only k of n pairs diverged, "k/n" below the marks.
- **Axes**: log axes put their ticks at the values actually run (no minor tick labels); labels in
  words with units (:func:`axis_label`); tick labels that would overlap are dropped at save time
  (:func:`tidy_ticks`), the values that are kept being the ends and round numbers first.
- **Files**: PNG by default; set ``TSIM_FIG_FORMATS=png,svg`` (or pass ``formats``) for SVG too
  (:func:`formats`). Figures are plain :class:`matplotlib.figure.Figure` objects on an Agg canvas
  (no pyplot state).
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS_ENV = "TSIM_FIG_FORMATS"
KNOWN_FORMATS = ("png", "svg", "pdf")
DPI = 130

#: one colour per alignment method, for every study (two-layer and deep)
METHOD_COLORS = {"naive": "tab:red", "weight": "tab:blue", "activation": "tab:green", "ste": "tab:purple",
                 "optimal": "black"}
METHOD_NAMES = {"naive": "naive (no permutation)", "weight": "weight matching", "activation": "activation matching",
                "ste": "straight-through estimator", "optimal": "barrier-optimal permutation"}
CYCLE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
         "tab:olive", "tab:cyan")
MARKERS = "osD^v<>ph"
LINESTYLES = ("-", "--", ":", "-.")

ZERO_GAP = 4.0        # the zero row sits this factor below the lowest positive value drawn
RC = {"font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
      "legend.fontsize": 7, "legend.title_fontsize": 7, "axes.spines.top": False, "axes.spines.right": False,
      "grid.alpha": 0.3, "grid.linewidth": 0.6, "svg.hashsalt": "tsim", "svg.fonttype": "path"}

# artist ids (gid) of the overlays, so that tests and readers of SVG files can find them
GID_ZERO, GID_DIVERGED, GID_THEORY, GID_FIT, GID_EXTREMA = "zeros", "diverged", "theory", "fit", "extrema"


# ------------------------------------------------------------------------------ files and figures
def formats(requested=None) -> tuple:
    """File formats to write: ``requested`` (a sequence or "png,svg"), else $TSIM_FIG_FORMATS, else ("png",).

    Raises
    ------
    ValueError  for a format outside :data:`KNOWN_FORMATS`.
    """
    if requested is None:
        requested = os.environ.get(FORMATS_ENV, "") or "png"
    if isinstance(requested, str):
        requested = requested.split(",")
    out = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in requested if f.strip()))
    bad = [f for f in out if f not in KNOWN_FORMATS]
    if bad or not out:
        raise ValueError(f"figure formats must be among {KNOWN_FORMATS}; got {list(requested)!r}. "
                         f"Set {FORMATS_ENV}=png or png,svg.")
    return out


def styled(fn):
    """Run a figure function inside the shared matplotlib rc settings (:data:`RC`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def new_figure(ncols: int = 1, width: float = 4.9, height: float = 3.5):
    """(figure, [axes]) of one row of ``ncols`` panels on an Agg canvas, constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(int(ncols), 1)
    fig = Figure(figsize=(width * n, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, n, i + 1) for i in range(n)]


def save(fig, path, fmts=("png",)) -> list[Path]:
    """Drop overlapping tick labels, then write ``path`` with each suffix in ``fmts``; returns the paths."""
    tidy_ticks(fig)
    out = []
    for fmt in fmts:
        p = Path(path).with_suffix(f".{fmt}")
        # tight: legends placed below the axes are kept whole; optimize: smaller PNGs (docs/results)
        fig.savefig(p, dpi=DPI, bbox_inches="tight", pad_inches=0.05,
                    metadata={"Date": None} if fmt == "svg" else None)
        if fmt == "png":
            palette_png(p)  # rewrites the file, compressed once there
        out.append(p)
    return out


def palette_png(path) -> None:
    """Rewrite an opaque RGB(A) PNG as 256 colours (median cut, no dither): a plot has few colours
    besides the anti-aliasing shades, so it looks the same at about a third of the bytes. A PNG with
    transparency keeps its colours. Either way it is saved with ``optimize`` (smaller files)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        transparent = im.mode == "RGBA" and im.getextrema()[3][0] < 255
        out = im if transparent else im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                                  dither=Image.Dither.NONE)
    out.save(path, optimize=True)


def note(fig, text: str) -> None:
    """A small grey note at the bottom left of the figure, below the legends (what is missing and why).

    Drawn as the figure's ``supxlabel`` so that the constrained layout keeps room for it.
    """
    fig.supxlabel(f"note: {text}", x=0.01, ha="left", fontsize=6.5, color="0.35")


# ------------------------------------------------------------------------------ words
def fmt_value(v: float) -> str:
    """A short plain label for a number run: 0.25, 1, 12, 256, 0.39, 1.5, 2e-4."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    a = abs(v)
    if v.is_integer() and a < 1e5:
        return str(int(v))
    if 1e-3 <= a < 100:
        return f"{v:.2g}"
    if 100 <= a < 1e5:
        return f"{v:.0f}"
    mant, exp = f"{v:.1e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"


def sci_label(v: float) -> str:
    """Mathtext label of a tick on a log axis: $10^{-3}$, $2\\times10^{-4}$ (0 for v <= 0)."""
    if v <= 0:
        return "0"
    k = math.floor(math.log10(v) + 1e-9)
    mant = v / 10.0 ** k
    if abs(mant - 1) < 1e-6:
        return f"$10^{{{k}}}$"
    return f"${fmt_value(mant)}\\times10^{{{k}}}$"


def log_label_fn(ticks):
    """Labels for the ticks of a log axis: plain numbers when every tick lies in [0.01, 100]
    (0.02, 0.05, 0.1), else mathtext powers of ten for all (:func:`sci_label`)."""
    pos = [t for t in ticks if t > 0]
    return fmt_value if pos and min(pos) >= 0.01 - 1e-12 and max(pos) <= 100 else sci_label


LABELS = {
    "m": "student width m",
    "M": "teacher width M",
    "d": "input dimension d",
    "width": "width multiplier",
    "step": "training step",
    "rank": "rank of the singular value",
    "sparsity": "fraction of near-zero neurons",
    "level": "pruning round",
    "depth": "depth (hidden layers)",
    "base": "base width (hidden units at multiplier 1)",
}


def lr_label(unit: str | None) -> str:
    """Axis label of a learning rate in the unit of the config (``train.lr_unit``)."""
    if unit == "critical":
        return r"learning rate ($\times\,2/\lambda_{\max}$ at init)"
    if unit == "absolute":
        return "learning rate (absolute step)"
    if unit:
        return f"learning rate ({unit} step)"
    return "learning rate"


def axis_label(name: str, lr_unit: str | None = None) -> str:
    """Words for a result column on an axis (``lr`` in the unit ``lr_unit``); the name itself if unknown."""
    if name == "lr":
        return lr_label(lr_unit)
    return LABELS.get(name, name.replace("_", " "))


def color_of(name: str, i: int) -> str:
    """The method colour when ``name`` ends with a method name (barrier_weight, simplex_ste), else the i-th
    colour of the cycle."""
    for meth, c in METHOD_COLORS.items():
        if name == meth or name.endswith("_" + meth):
            return c
    return CYCLE[i % len(CYCLE)]


# ------------------------------------------------------------------------------ statistics
def mean_ci(values: np.ndarray, level: float = 0.95, n_boot: int = 400, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (n,), seeded.

    Unlike mean +- 1.96 sem it stays inside the range of the data, so a band of positive barriers
    never dips below 0 on a log axis. A single value gives (value, value); none gives (nan, nan).
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size < 2:
        return float(v.mean()), float(v.mean())
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def diverged_rows(df: pd.DataFrame) -> pd.Series:
    """True for rows whose run diverged: a student status "diverged" (two-layer), a group with
    diverged networks (multi), or a non-finite end-point loss (deep)."""
    out = pd.Series(False, index=df.index)
    for c in ("status_a", "status_b"):
        if c in df:
            out |= df[c].astype(str) == "diverged"
    if "n_diverged" in df:
        out |= df["n_diverged"].fillna(0) > 0
    for c in ("test_loss_a", "test_loss_b"):
        if c in df and "status_a" not in df:
            out |= ~np.isfinite(pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float))
    return out


def pair_stats(df: pd.DataFrame, x: str, y: str, log: bool, diverged: pd.Series | None = None,
               seed: int = 0, zero_tol: float = 0.0) -> pd.DataFrame:
    """Per value of ``x``: what a panel draws for column ``y``.

    Columns: n (rows with a value or a diverged run), n_div (diverged, no value), n_zero (values
    <= ``zero_tol``, 0 by default: exact zeros), n_pos (values above it), mean, ci_lo, ci_hi
    (bootstrap 95% CI of the mean). With ``log`` the mean and CI are over the values above
    ``zero_tol`` (NaN where there are none); otherwise over all finite values. Rows with neither a
    finite value nor a diverged run are left out.
    """
    cols = ["n", "n_div", "n_zero", "n_pos", "mean", "ci_lo", "ci_hi"]
    if x not in df or y not in df:
        return pd.DataFrame(columns=cols, dtype=float)
    val = pd.to_numeric(df[y], errors="coerce").astype(float)
    ok = np.isfinite(val)
    div = (diverged if diverged is not None else pd.Series(False, index=df.index)) & ~ok
    rows = {}
    for xv, idx in df.groupby(x, sort=True).groups.items():
        v = val[idx][ok[idx]].to_numpy()
        pos = v > max(zero_tol, 0.0)
        use = v[pos] if log else v
        lo, hi = mean_ci(use, seed=seed)
        rows[xv] = [int(v.size + div[idx].sum()), int(div[idx].sum()), int((~pos).sum()), int(pos.sum()),
                    float(use.mean()) if use.size else np.nan, lo, hi]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    out = out[out["n"] > 0]
    try:
        out.index = out.index.astype(float)
    except (TypeError, ValueError):
        pass
    return out.sort_index()


# ------------------------------------------------------------------------------ ticks
def _nice_rank(v: float) -> int:
    """0 for a power of ten, 1 for 2^k or {1, 2, 5} x 10^k, 2 otherwise (tick-label priority)."""
    if v <= 0:
        return 2
    k = math.log10(v)
    if abs(k - round(k)) < 1e-9:
        return 0
    k2 = math.log2(v)
    if abs(k2 - round(k2)) < 1e-9:
        return 1
    mant = v / 10 ** math.floor(k)
    return 1 if any(abs(mant - s) < 1e-9 for s in (2.0, 5.0)) else 2


def label_priority(values) -> list:
    """Tick values in the order their labels are kept: both ends, then round numbers, then the rest."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return []
    ends = {vals[0], vals[-1]}
    return sorted(vals, key=lambda v: (v not in ends, _nice_rank(v), vals.index(v)))


class TickLabels:
    """Tick-label function whose labels can be hidden per value (see :func:`tidy_ticks`).

    Wrap it in a ``matplotlib.ticker.FuncFormatter`` (:func:`formatter`). ``fn(value) -> str``
    makes a label; ``zero_at`` is the y of a zero row, labelled "0"; ``hidden`` holds the values
    whose labels are dropped.
    """

    def __init__(self, fn, zero_at: float | None = None):
        self.fn, self.zero_at, self.hidden = fn, zero_at, set()

    def __call__(self, v, pos=None) -> str:
        if any(math.isclose(v, h, rel_tol=1e-9, abs_tol=1e-300) for h in self.hidden):
            return ""
        if self.zero_at is not None and math.isclose(v, self.zero_at, rel_tol=1e-9):
            return "0"
        return self.fn(v)


def formatter(fn, zero_at: float | None = None):
    """A FuncFormatter over a :class:`TickLabels` of ``fn``."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(TickLabels(fn, zero_at))


def _labels_of(axis):
    """The :class:`TickLabels` behind an axis's major formatter, or None."""
    fn = getattr(axis.get_major_formatter(), "func", None)
    return fn if isinstance(fn, TickLabels) else None


def drawn_tick_labels(axis) -> list:
    """[(value, Text)] of the tick labels an axis draws: visible, non-empty, inside the view."""
    locs = list(axis.get_majorticklocs())
    lo, hi = sorted(axis.get_view_interval())
    span = max(abs(hi), abs(lo), 1e-300) * 1e-9
    out = []
    for loc, tick in zip(locs, axis.get_major_ticks(len(locs))):
        for lab in (tick.label1, tick.label2):
            if lo - span <= loc <= hi + span and lab.get_visible() and lab.get_text().strip():
                out.append((float(loc), lab))
    return out


def tidy_ticks(fig, pad: float = 2.0) -> int:
    """Hide tick labels that would overlap a label kept before them; returns how many were hidden.

    Within one axes the x and y labels are checked together. Kept first: the "0" of a zero row,
    then the x labels in :func:`label_priority` order, then the y labels. Only labels made by a
    :class:`TickLabels` can be hidden; the others are kept as they are. The layout computed here
    is kept (the figure's layout engine is switched off afterwards), so saving does not redo it.
    """
    fig.draw_without_rendering()
    r = fig.canvas.get_renderer()
    hidden = 0
    for ax in fig.axes:
        queue = []  # (rank, order, labels or None, value, Text)
        for rank, axis in ((1, ax.xaxis), (2, ax.yaxis)):
            fmt = _labels_of(axis)
            by_val = dict(drawn_tick_labels(axis))
            for i, v in enumerate(label_priority(by_val)):
                zero = fmt is not None and fmt.zero_at is not None and math.isclose(v, fmt.zero_at, rel_tol=1e-9)
                queue.append((0 if (zero or fmt is None) else rank, i, fmt, v, by_val[v]))
        kept = []
        for _, _, fmt, v, lab in sorted(queue, key=lambda q: q[:2]):
            bb = lab.get_window_extent(r).padded(pad / 2)
            if fmt is not None and any(bb.overlaps(k) for k in kept):
                fmt.hidden.add(v)
                hidden += 1
            else:
                kept.append(bb)
    fig.set_layout_engine("none")
    return hidden


def log_ticks(lo: float, hi: float) -> list:
    """Major ticks of a log axis over [lo, hi]: the powers of ten inside (at most about 7), or
    1-2-5 steps when fewer than three powers of ten fall inside (a range under two decades)."""
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    tens = [10.0 ** k for k in range(k0, k1 + 1) if lo <= 10.0 ** k <= hi]
    if len(tens) >= 3:
        step = max(1, math.ceil(len(tens) / 7))
        return tens[::-1][::step][::-1]
    return [s * 10.0 ** k for k in range(k0, k1 + 1) for s in (1, 2, 5) if lo <= s * 10.0 ** k <= hi]


def set_value_ticks(axis, values) -> None:
    """Ticks of ``axis`` at the values run (labels by :func:`fmt_value`), no minor ticks."""
    from matplotlib.ticker import FixedLocator, NullLocator

    vals = sorted({float(v) for v in values if np.isfinite(v)})
    axis.set_major_locator(FixedLocator(vals))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(formatter(fmt_value))


def linear_label_fn(ticks):
    """Labels for evenly spaced ticks with as many decimals as their spacing needs (0.105, 0.11)."""
    t = sorted(ticks)
    step = min((b - a for a, b in zip(t, t[1:]) if b > a), default=1.0)
    dec = min(max(0, -math.floor(math.log10(step) + 1e-9)), 10)
    big = max(abs(v) for v in t) if t else 0.0
    if big >= 1e5 or (0 < big < 1e-4):
        return sci_label if min(t) > 0 else fmt_value

    def label(v):
        text = f"{v:.{dec}f}"
        return "0" if float(text) == 0 else text

    return label


def set_linear_ticks(axis, lo: float, hi: float, nbins: int = 6) -> None:
    """About ``nbins`` round ticks over [lo, hi] with labels of one precision (:func:`linear_label_fn`)."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    eps = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    ticks = [float(v) for v in MaxNLocator(nbins=nbins).tick_values(lo, hi) if lo - eps <= v <= hi + eps]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(formatter(linear_label_fn(ticks)))


LABEL_GAP = 16.0  # points between the centres of two "k/n" labels on one level


def stagger_levels(positions, gap: float) -> list:
    """Level (0, 1, 2, ...) of each label at sorted ``positions`` (points) so that labels on one
    level are at least ``gap`` apart: the lowest level whose last label is far enough."""
    last: list = []
    out = []
    for p in positions:
        lev = next((i for i, q in enumerate(last) if p - q >= gap), len(last))
        if lev == len(last):
            last.append(p)
        else:
            last[lev] = p
        out.append(lev)
    return out


# ------------------------------------------------------------------------------ one panel
class Panel:
    """One axes drawn in the shared style; overlays are collected, then placed by :meth:`finish`.

    Parameters
    ----------
    ax : matplotlib Axes
    logx, logy : bool   log scales (an x axis holding 0 becomes symlog)
    zero_tol : float    values <= zero_tol count as 0 (0: exact zeros only; barriers of float64
                        losses use 1e-12, far above rounding); the legend says which
    """

    def __init__(self, ax, logx: bool = False, logy: bool = False, zero_tol: float = 0.0):
        self.ax, self.logx, self.logy, self.zero_tol = ax, logx, logy, float(zero_tol)
        self.ys: list = []          # positive (log) or finite (linear) y values drawn in data coordinates
        self.xs: list = []          # x values drawn
        self.zeros: list = []       # (x, k, n, color) per series point with exact zeros
        self.zero_points: list = []  # (x array, color) of scatter points that are 0
        self.diverged: list = []    # (x, k, n, color)
        self.marks: list = []       # (x, y or None (floor), kwargs) deferred markers
        self.vlines: list = []      # (x, kwargs)

    # ---- what a figure draws
    def series(self, stats: pd.DataFrame, label: str, color, marker: str = "o", ls: str = "-", band: bool = True):
        """Mean over pairs vs x with its 95% CI band; zeros and divergences recorded for the overlays."""
        if stats.empty:
            return None
        x = stats.index.to_numpy(dtype=float)
        mean, lo, hi = (stats[c].to_numpy(dtype=float) for c in ("mean", "ci_lo", "ci_hi"))
        (line,) = self.ax.plot(x, mean, marker=marker, ms=4, ls=ls, lw=1.4, color=color, label=label)
        if band and np.isfinite(lo).any():
            self.ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
        self._keep(x, np.concatenate([mean, lo, hi]))
        for xv, r in stats.iterrows():
            if self.logy and r["n_zero"] > 0:
                self.zeros.append((float(xv), int(r["n_zero"]), int(r["n"]), color))
            if r["n_div"] > 0:
                self.diverged.append((float(xv), int(r["n_div"]), int(r["n"]), color))
        return line

    def line(self, x, y, label: str, color, ls: str = "--", gid: str | None = None, min_value: float = 0.0,
             **kw):
        """A curve (fit, theory); on a log y axis only its values above ``min_value`` (and > 0) are drawn."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float).copy()
        if self.logy:
            y[~(y > max(min_value, 0.0))] = np.nan
        if not np.isfinite(y).any():
            return None
        (line,) = self.ax.plot(x, y, ls=ls, color=color, label=label, lw=1.2, **kw)
        if gid:
            line.set_gid(gid)
        self._keep(x, y)
        return line

    def points(self, x, y, label: str, color, marker: str = "o"):
        """A scatter, one point per row; on a log y axis points <= 0 go to the zero row."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        pos = y > max(self.zero_tol, 0.0) if self.logy else np.ones_like(y, dtype=bool)
        self.ax.scatter(x[pos], y[pos], s=14, alpha=0.7, color=color, marker=marker, label=label, lw=0)
        if (~pos).any():
            self.zero_points.append((x[~pos], color))
        self._keep(x, y[pos])

    def mark(self, x: float, y: float | None, **kw):
        """A marker at (x, y), or on the zero row when y is None or not drawable (resolved at finish)."""
        self.marks.append((float(x), y, kw))

    def vline(self, x: float, **kw):
        """A vertical line at x (theory); the x range is widened to show it."""
        self.vlines.append((float(x), kw))

    def _keep(self, x, y):
        y = np.asarray(y, dtype=float)
        y = y[np.isfinite(y) & (y > 0)] if self.logy else y[np.isfinite(y)]
        self.ys.extend(y.tolist())
        self.xs.extend(np.asarray(x, dtype=float)[np.isfinite(np.asarray(x, dtype=float))].tolist())

    # ---- placing the overlays, ticks and words
    def _ylimits(self) -> tuple:
        """(bottom, top, zero row or None, lowest positive) of a log y axis."""
        has_zero = bool(self.zeros or self.zero_points or any(y is None or not (y > 0) for _, y, _ in self.marks))
        lo, hi = (min(self.ys), max(self.ys)) if self.ys else (0.1, 1.0)
        hi = max(hi, lo * 1.01)
        floor = lo / ZERO_GAP if has_zero else None
        bottom = (floor if floor else lo) / 1.6
        top = hi * max(1.4, (hi / bottom) ** 0.06)
        rows = self._div_rows()
        top *= (top / bottom) ** (0.06 * rows + (0.04 if self.marks else 0.0))
        return bottom, top, floor, lo

    def _x_points(self, xs) -> list:
        """Horizontal positions of data x values in points (at the current axes size)."""
        if not xs:
            return []
        px = self.ax.get_xaxis_transform().transform(np.column_stack([xs, np.zeros(len(xs))]))[:, 0]
        return (px * 72.0 / self.ax.figure.dpi).tolist()

    def _div_rows(self) -> int:
        """Rows of diverged marks at the top: the most series diverged at one x, then the staggered
        rows of "k/n" counts of partial divergences (needs the x limits set)."""
        xs = [d[0] for d in self.diverged]
        part = sorted(d[0] for d in self.diverged if d[1] < d[2])
        count_rows = max(stagger_levels(self._x_points(part), LABEL_GAP), default=-1) + 1
        return max((xs.count(x) for x in xs), default=0) + count_rows

    def finish(self, xlabel: str, ylabel: str, title: str = "", xticks=None, legend_title: str | None = None,
               count: str = "pairs", xbounds: tuple | None = None):
        """Scales, zero row, divergence marks, ticks at ``xticks``, labels and the legend.

        ``xbounds``: (lo, hi) a linear x axis may not pass by more than a hair (fractions: (0, 1)).
        """
        ax = self.ax
        x_all = np.array([v for v in self.xs] + [x for x, _ in self.vlines] + list(xticks if xticks is not None
                                                                                   else []), dtype=float)
        if self.logx:
            pos = x_all[x_all > 0]
            if (x_all <= 0).any() and pos.size:
                ax.set_xscale("symlog", linthresh=float(pos.min()), linscale=0.5)
            else:
                ax.set_xscale("log")
        run = np.array(list(xticks) if xticks is not None else self.xs, dtype=float)
        run = run[np.isfinite(run)]
        if ax.get_xscale() == "log":
            run = run[run > 0]
        if run.size:
            lo_x, hi_x = run.min(), run.max()
            for xv, _ in self.vlines:  # theory lines: widen the range a little if they fall just outside
                lo_x, hi_x = min(lo_x, xv), max(hi_x, xv)
            if ax.get_xscale() == "log" and lo_x > 0:
                f = (hi_x / lo_x) ** 0.05 if hi_x > lo_x else 1.5
                ax.set_xlim(lo_x / f, hi_x * f)
            elif ax.get_xscale() == "symlog":  # 0 run: pad in the transformed coordinates
                lin = float(pos.min())
                f = max(hi_x / lin, 2.0) ** 0.05
                ax.set_xlim(lo_x - 0.3 * lin, hi_x * f)
            else:
                pad = 0.05 * (hi_x - lo_x) if hi_x > lo_x else 0.5
                lo_l, hi_l = lo_x - pad, hi_x + pad
                if xbounds is not None:
                    lo_l, hi_l = max(lo_l, xbounds[0] - 0.02), min(hi_l, xbounds[1] + 0.02)
                ax.set_xlim(lo_l, hi_l)
        if xticks is not None:
            set_value_ticks(ax.xaxis, xticks)
        elif ax.get_xscale() == "linear":
            set_linear_ticks(ax.xaxis, *ax.get_xlim())
        else:
            from matplotlib.ticker import NullFormatter

            ax.xaxis.set_major_formatter(formatter(sci_label))
            ax.xaxis.set_minor_formatter(NullFormatter())

        handles = []
        if self.logy:
            handles += self._finish_log_y(count)
        else:
            if self.ys:
                lo, hi = min(self.ys), max(self.ys)
                span = (hi - lo) or (abs(hi) if hi else 1.0)
                top = hi + span * (0.06 + 0.1 * self._div_rows())
                ax.set_ylim(lo - 0.06 * span, top)
            set_linear_ticks(ax.yaxis, *ax.get_ylim())
            for x, y, kw in self.marks:
                ax.plot([x], [y], ls="none", **kw)
        handles += self._finish_diverged(count)
        for xv, kw in self.vlines:
            ax.axvline(xv, **{"color": "0.25", "lw": 1.0, "gid": GID_THEORY, **kw})
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.grid(True, which="major")
        self._legend(handles, legend_title)

    def _finish_log_y(self, count: str) -> list:
        from matplotlib.lines import Line2D
        from matplotlib.ticker import FixedLocator, NullLocator

        ax = self.ax
        ax.set_yscale("log")
        bottom, top, floor, lo = self._ylimits()
        ax.set_ylim(bottom, top)
        ticks = [t for t in log_ticks(bottom, top) if floor is None or t >= math.sqrt(floor * lo)]
        ax.yaxis.set_major_locator(FixedLocator(([floor] if floor is not None else []) + ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(formatter(log_label_fn(ticks), zero_at=floor))
        for x, y, kw in self.marks:
            ax.plot([x], [y if (y is not None and y > 0) else floor], ls="none", **kw)
        if floor is None:
            return []
        ax.axhline(math.sqrt(floor * lo), color="0.55", lw=0.7, ls=(0, (1, 2)))
        zeros = sorted(self.zeros, key=lambda z: z[0])
        levels = stagger_levels(self._x_points([z[0] for z in zeros]), LABEL_GAP)
        for (x, k, n, color), lev in zip(zeros, levels):
            ax.plot([x], [floor], ls="none", marker="o", ms=5.5, mfc="white", mec=color, mew=1.3, gid=GID_ZERO,
                    clip_on=False, zorder=4)
            ax.annotate(f"{k}/{n}", (x, floor), xytext=(0, 5 + 8 * lev), textcoords="offset points",
                        fontsize=6.5, color=color, ha="center", va="bottom")
        for xs, color in self.zero_points:
            ax.scatter(xs, np.full(xs.shape, floor), s=18, marker="o", facecolors="white", edgecolors=color,
                       lw=1.0, gid=GID_ZERO, zorder=4)
        what = "exactly 0" if self.zero_tol <= 0 else f"0 up to rounding, <= {fmt_value(self.zero_tol)}"
        if self.zeros:
            lab = f"{what} (k/n {count} above the marker)"
        else:
            k = sum(len(xs) for xs, _ in self.zero_points)
            lab = f"{what} ({k} points, on the 0 row)"
        return [Line2D([], [], ls="none", marker="o", mfc="white", mec="0.3", mew=1.2, label=lab)]

    def _finish_diverged(self, count: str) -> list:
        from matplotlib.lines import Line2D
        from matplotlib.transforms import ScaledTranslation

        if not self.diverged:
            return []
        ax = self.ax
        tr = ax.get_xaxis_transform()
        stack: dict = {}
        for x, k, n, color in self.diverged:  # one row per series at the same x, from the top down
            lev = stack[x] = stack.get(x, -1) + 1
            shift = ScaledTranslation(0, -9 * lev / 72, ax.figure.dpi_scale_trans)
            ax.plot([x], [0.96], transform=tr + shift, ls="none", marker="x", ms=5.5, mew=1.5, color=color,
                    gid=GID_DIVERGED, clip_on=False)
        rows = max(stack.values()) + 1
        part = sorted((d for d in self.diverged if d[1] < d[2]), key=lambda d: d[0])
        for (x, k, n, color), lev in zip(part, stagger_levels(self._x_points([d[0] for d in part]), LABEL_GAP)):
            ax.annotate(f"{k}/{n}", (x, 0.96), xycoords=tr, xytext=(0, -9 * rows - 8 * lev),
                        textcoords="offset points", fontsize=6.5, color=color, ha="center", va="center")
        return [Line2D([], [], ls="none", marker="x", color="0.3", mew=1.5,
                       label=f"diverged: all {count}, or k/n {count} (counts below the x), no value")]

    def _legend(self, extra: list, title: str | None):
        ax = self.ax
        handles, labels = ax.get_legend_handles_labels()
        handles, labels = handles + extra, labels + [h.get_label() for h in extra]
        if not handles:
            return
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=legend_columns(labels),
                  frameon=False, title=title, borderaxespad=0.0, handlelength=2.2, columnspacing=1.2)


def legend_columns(labels) -> int:
    """Two legend columns for more than three short entries, else one."""
    return 2 if len(labels) > 3 and max(len(str(t)) for t in labels) <= 34 else 1


def legend_rows(fig) -> int:
    """Rows of the tallest legend of a figure (to size it)."""
    rows = 0
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            labels = [t.get_text() for t in leg.get_texts()]
            rows = max(rows, math.ceil(len(labels) / legend_columns(labels)) + bool(leg.get_title().get_text()))
    return rows


def fit_height(fig, base: float = 3.4, per_row: float = 0.2, extra_rows: int = 0) -> None:
    """Grow the figure's height by the rows of its tallest legend (kept below the panels) and
    ``extra_rows`` more (a note)."""
    w, _ = fig.get_size_inches()
    fig.set_size_inches(w, base + per_row * (legend_rows(fig) + extra_rows))
