"""Every study's figures render from a small fixed result table in one style a reader can trust:
tick labels never overlap, every axis says what it shows, exact zeros sit on their own row just
below the data (not at 1e-12), diverged runs are marked, log axes tick at the values run, and the
theory/ overlays appear (or a note says why not)."""
from __future__ import annotations

import itertools
import sys

import numpy as np
import pandas as pd
import pytest

from tsim.config import from_dict
from tsim.results import deep_figures, figures, style

MIN_POS = 1e-5  # the smallest positive value in any synthetic table below


# ------------------------------------------------------------------------------ fixed tables
def _pair(m, p, status=("max_steps", "max_steps"), **kw):
    return {"pair": p, "seed": 0, "m": m, "M": 2, "d": 8, "lr_a": 0.9 * kw.get("lr", 0.5), "lr_b": 0.45,
            "status_a": status[0], "status_b": status[1], "steps_a": 100, "steps_b": 100,
            "train_loss_a": 1e-3, "train_loss_b": 1e-3, **kw}


WIDTHS_M = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 64)  # dense at the low end, as in the default run


def width_table() -> pd.DataFrame:
    """lmc rows vs m for d in {8, 32}: all pairs 0 at m = 2 = M (one of them 3e-17, rounding), one
    of three at m = 8, a diverged pair at m = 1, a NaN barrier (not diverged) at m = 16."""
    rows = []
    for d, (m, p) in itertools.product((8, 32), itertools.product(WIDTHS_M, range(3))):
        wm = 0.0 if m == 2 or (m == 8 and p == 0) else 2e-3 * (1 + 0.3 * p) * (4 / m) ** 1.5
        row = _pair(m, p, barrier_naive=0.05 + 0.01 * p + 0.001 * m, barrier_wm=wm,
                    loss_a=1e-4 * (1 + p) / m, loss_b=2e-4 / m, sparse_a=0.0, sparse_b=0.1, d=d)
        if m == 1 and p == 2:
            row.update(status_a="diverged", barrier_naive=np.nan, barrier_wm=np.nan, loss_a=np.nan, loss_b=np.nan)
        if m == 16 and p == 1:
            row.update(barrier_wm=np.nan)
        if m == 2 and p == 1:  # float64 rounding: counts as 0, is not drawn at 3e-17
            row.update(barrier_wm=3e-17)
        rows.append(row)
    df = pd.DataFrame(rows)
    big = df["barrier_wm"] > 1e-12
    df.loc[big, "barrier_wm"] = df.loc[big, "barrier_wm"].clip(lower=MIN_POS)
    return df


LRS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def lr_table() -> pd.DataFrame:
    """lmc rows vs lr (units of 2/lambda_max) for population GD and SGD: zeros, sparsity, divergence
    (population: one pair of three at lr 0.8, all from 1.6; SGD: all from 0.8)."""
    rows = []
    for method, lr, p in itertools.product(("population", "sgd"), LRS, range(3)):
        div = lr >= (1.6 if method == "population" else 0.8) or (method, lr, p) == ("population", 0.8, 2)
        st = ("diverged", "diverged") if div else ("max_steps", "max_steps")
        wm = np.nan if div else (0.0 if p == 0 else 1e-3 / (1 + lr))
        rows.append(_pair(8, p, st, lr=lr, method=method, barrier_naive=np.nan if div else 0.08,
                          barrier_wm=wm, sparse_a=0.0 if lr < 0.8 else 0.25, sparse_b=0.0))
    df = pd.DataFrame(rows)
    return df.assign(lr_a=0.9 * df["lr"])


def study_tables() -> dict:
    """One table per alignment study, columns as tsim/studies/*.py write them."""
    steps = [0, 1, 3, 10, 30, 100, 300, 1000]
    traj = pd.DataFrame([{"pair": p, "step": s, "status_a": "max_steps", "status_b": "max_steps",
                          "barrier_single": 0.0 if s == 1000 else 1e-2 / (1 + s), "barrier_per_step": 5e-3 / (1 + s),
                          "barrier_naive": 0.1} for p in range(2) for s in steps])
    prune = pd.DataFrame([{"pair": p, "level": k, "sparsity": 1 - 0.5 ** k, "status_a": "converged",
                           "status_b": "converged", "barrier_single": 1e-3 * (k + 1), "barrier_per_step": 0.0 if k == 0
                           else 1e-3 * k, "barrier_naive": 0.05} for p in range(2) for k in range(4)])
    multi = pd.DataFrame([{"pair": p, "m": m, "k": 3, "status_a": "max_steps", "status_b": "max_steps",
                           "n_diverged": int(m == 2 and p == 1), "simplex_naive": 0.1, "simplex_ref": 1e-3,
                           "simplex_weight": 0.0 if m == 4 else 2e-3 / m, "kavg_weight": 1e-3 / m,
                           "naive_max": 0.1, "shared_max_weight": 3e-3 / m, "pairwise_max_weight": 2e-3 / m}
                          for p in range(2) for m in (2, 4, 8, 16)])
    multi.loc[multi["n_diverged"] > 0, ["simplex_naive", "simplex_ref", "simplex_weight", "kavg_weight",
                                        "naive_max", "shared_max_weight", "pairwise_max_weight"]] = np.nan
    sing = pd.DataFrame([{"pair": p, "rank": r, "status_a": "max_steps", "status_b": "max_steps",
                          "left_before": 0.1 * r, "left_after": 1 - 0.1 * r, "left_best_after": 1.0,
                          "right": 0.2} for p in range(2) for r in range(1, 6)])
    meth = pd.DataFrame([_pair(m, p, barrier_naive=0.1, barrier_weight=0.0 if m == 2 else 1e-3 / m,
                               barrier_activation=3e-3 / m, barrier_ste=1e-3 / m,
                               barrier_optimal=0.0 if m == 2 else (1e-3 / m if m <= 4 else np.nan))
                         for p in range(2) for m in (2, 3, 4, 8)])
    atlas = pd.DataFrame([_pair(m, p, d=d, regime=reg, source=src, matching=meth, zero_exists=1.0,
                                barrier=0.0 if (meth == "barrier" and (src == "minima" or m == 128))
                                else 2e-3 * (16 / m) ** (0.5 if meth == "weight" else 1.0))
                          for reg, src in (("trained", "trained"), ("minima", "minima")) for d in (8, 32)
                          for p in range(2) for m in (16, 32, 64, 128) for meth in ("weight", "barrier")])
    return {"trajectory_barrier": traj, "pruning_barrier": prune, "multi_vs_width": multi,
            "strong_vs_width": multi, "singular_alignment": sing, "methods_barrier": meth, "atlas_rates": atlas}


WIDTHS = (0.25, 0.5, 1, 2, 4, 8)


def deep_table(x: str = "width") -> pd.DataFrame:
    """Deep rows (tsim/deep/study.py columns): exact zero error barriers after matching at large
    widths, one exact-zero loss barrier, a diverged pair (non-finite end-point loss)."""
    vals = WIDTHS if x == "width" else (0.01, 0.03, 0.1, 0.3, 1.0, 2.0)
    rows = []
    for i, (v, p) in enumerate(itertools.product(vals, range(2))):
        row = {"arch": "mlp", "depth": 3, "base": 64, "width": 1.0, "norm": "none", "optimizer": "sgd", "lr": 0.1,
               "pair": p, "seed_a": 2 * p, "seed_b": 2 * p + 1, "train_loss_a": 0.1, "train_loss_b": 0.1,
               "test_loss_a": 0.1 + 0.01 * p, "test_loss_b": 0.12, "test_error_a": 0.03, "test_error_b": 0.031,
               "sparse_a": 0.05 * i / 12, "sparse_b": 0.04, "dead_a": 0.01, "dead_b": 0.02, "device": "cpu",
               x: v}
        big = i >= 8
        for m, scale in (("naive", 1.5), ("weight", 0.2), ("activation", 0.1)):
            row[f"barrier_loss_{m}"] = 0.0 if (m == "activation" and big and p == 0) else scale / (1 + i)
            row[f"barrier_error_{m}"] = 0.0 if (m != "naive" and big) else 0.01 * scale
        if i == 11:  # diverged
            row.update(test_loss_a=np.nan, **{f"barrier_{k}_{m}": np.nan for k in ("loss", "error")
                                              for m in ("naive", "weight", "activation")})
        rows.append(row)
    return pd.DataFrame(rows)


def width_cfg(**analysis):
    return from_dict({"teacher": {"M": 2, "d": 8}, "student": {"m": list(WIDTHS_M)},
                      "analysis": {"measures": ["extrema", "power_law"], "group_by": ["d"], "fit_min_m": 4,
                                   "n_boot": 50, **analysis}})


def lr_cfg():
    return from_dict({"teacher": {"M": 2, "d": 8}, "student": {"m": 8},
                      "train": {"method": ["population", "sgd"], "lr": list(LRS), "lr_unit": "critical"},
                      "analysis": {"measures": ["transition"], "group_by": ["method"]}})


# ------------------------------------------------------------------------------ capture and checks
def _capture(mp) -> list:
    """Make style.save record [(figure, [paths])]; theory curves from 2 sampled pairs; PNG only."""
    mp.setenv(figures.THEORY_ENV, "2")
    mp.delenv(style.FORMATS_ENV, raising=False)
    seen, save = [], style.save

    def keep(fig, path, fmts=("png",)):
        paths = save(fig, path, fmts)
        seen.append((fig, paths))
        return paths

    mp.setattr(style, "save", keep)
    return seen


@pytest.fixture
def captured(monkeypatch):
    return _capture(monkeypatch)


def render_all(tmp_path) -> dict:
    """{plot name: [paths]} for every key of figures.PLOTS and, per swept x, deep_figures.PLOTS."""
    out = {}
    w, lr, st = width_table(), lr_table(), study_tables()
    for name in figures.PLOTS:
        if name in st:
            out[name] = figures.draw(st[name], [name], tmp_path, None)
        elif "lr" in name or name == "barrier_vs_sparsity":
            out[name] = figures.draw(lr, [name], tmp_path, lr_cfg())
        else:
            out[name] = figures.draw(w, [name], tmp_path, width_cfg())
    for x in ("width", "lr"):
        (tmp_path / x).mkdir()
        paths = deep_figures.draw(deep_table(x), tmp_path / x, list(deep_figures.PLOTS),
                                  ["naive", "weight", "activation"], [x], title=f"deep vs {x}")
        for name, (fname, _) in deep_figures.PLOTS.items():
            out[f"deep_{name}_{x}"] = [p for p in paths if p.name == fname]
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """(files by plot, figures by plot, [(figure, paths)]): every figure drawn once for the module."""
    with pytest.MonkeyPatch.context() as mp:
        seen = _capture(mp)
        files = render_all(tmp_path_factory.mktemp("figs"))
    figs = {paths[0].stem if paths[0].parent.name not in ("width", "lr") else
            f"deep_{paths[0].stem}_{paths[0].parent.name}": fig for fig, paths in seen}
    return files, figs, seen


def drawn_labels(ax):
    return [lab for axis in (ax.xaxis, ax.yaxis) for _, lab in style.drawn_tick_labels(axis)]


def data_ys(ax) -> np.ndarray:
    """Every y value drawn in data coordinates: lines, bands, scatters (not axis-fraction overlays)."""
    ys = []
    for line in ax.get_lines():
        if line.get_transform() == ax.transData:
            ys.append(np.asarray(line.get_ydata(), dtype=float))
    for coll in ax.collections:
        if coll.get_transform() == ax.transData:
            ys += [p.vertices[:, 1] for p in coll.get_paths()]
        elif coll.get_offset_transform() == ax.transData and len(coll.get_offsets()):
            ys.append(np.asarray(coll.get_offsets(), dtype=float)[:, 1])
    y = np.concatenate(ys) if ys else np.array([])
    return y[np.isfinite(y)]


def gids(ax) -> set:
    return {a.get_gid() for a in ax.get_children() if a.get_gid()}


# ------------------------------------------------------------------------------ tests
def test_every_figure_renders_readable(rendered):
    files, _, seen = rendered
    assert set(figures.PLOTS) <= set(files) and len(seen) == len(figures.PLOTS) + 2 * len(deep_figures.PLOTS)
    for name, paths in files.items():
        assert paths and all(p.suffix == ".png" and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths), name
    for fig, paths in seen:
        fig.draw_without_rendering()
        r = fig.canvas.get_renderer()
        for ax in fig.axes:
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), (paths[0].name, ax.get_title())
            boxes = [lab.get_window_extent(r) for lab in drawn_labels(ax)]
            assert len(boxes) >= 4, paths[0].name
            for a, b in itertools.combinations(boxes, 2):
                assert not a.overlaps(b), f"{paths[0].name}: tick labels overlap"
            for axis in (ax.xaxis, ax.yaxis):  # no minor tick labels anywhere
                assert not any(t.get_text() for t in axis.get_minorticklabels()), paths[0].name
            if ax.get_yscale() == "log":  # nothing below the data (or theory curve) / 100, no 1e-12 floor
                theory = [np.nanmin(a.get_ydata()) for a in ax.get_lines() if a.get_gid() == style.GID_THEORY]
                low = min([MIN_POS] + theory)
                ys = data_ys(ax)
                assert ys.size and ys.min() >= low / 100, f"{paths[0].name}: y = {ys.min():.3g} drawn"
                assert ax.get_ylim()[0] >= low / 200, paths[0].name


def test_zeros_sit_on_their_own_row_below_the_data(rendered):
    figs = rendered[1]
    for name in ("barrier_vs_width", "barrier_vs_lr", "methods_barrier", "barrier_vs_sparsity", "deep_barrier_width"):
        ax = next(a for a in figs[name].axes if style.GID_ZERO in gids(a))
        zero_y = {float(y) for a in ax.get_children() if a.get_gid() == style.GID_ZERO
                  for y in (a.get_ydata() if hasattr(a, "get_ydata") else a.get_offsets()[:, 1])}
        assert len(zero_y) == 1, name  # one zero row
        floor = zero_y.pop()
        pos = data_ys(ax)
        pos = pos[pos > floor * 1.0001]
        assert pos.min() / 100 <= floor < pos.min(), name  # just below every positive value, not at 1e-12
        labels = {round(v, 15): lab.get_text() for v, lab in style.drawn_tick_labels(ax.yaxis)}
        assert labels.get(round(floor, 15)) == "0", name
        texts = [t.get_text() for t in ax.texts]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        what = "exactly 0" if name.startswith("deep") else "0 up to rounding, <= 1e-12"
        assert any(t.startswith(what) for t in legend), name
        if name != "barrier_vs_sparsity":
            assert any(t.count("/") == 1 and t.split("/")[0].isdigit() for t in texts), name  # "k/n" beside it
    # width: the WM panel's zero at m = 2 reads 3/3 for each d (all pairs exactly 0)
    wm = figs["barrier_vs_width"].axes[1]
    assert sum(t.get_text() == "3/3" for t in wm.texts) == 2


def test_log_axes_tick_at_the_values_run_with_words(rendered):
    figs = rendered[1]
    checks = {"barrier_vs_width": (WIDTHS_M, "student width m"),
              "barrier_vs_lr": (LRS, "learning rate"), "deep_barrier_width": (WIDTHS, "width multiplier"),
              "deep_endpoints_lr": ((0.01, 0.03, 0.1, 0.3, 1.0, 2.0), "learning rate (SGD step)")}
    for name, (values, words) in checks.items():
        ax = figs[name].axes[0]
        assert ax.get_xscale() == "log"
        assert np.allclose(sorted(ax.get_xticks()), sorted(values)), name
        assert ax.get_xlabel().startswith(words), name
    lr_label = figs["sparsity_vs_lr"].axes[0].get_xlabel()
    assert "lambda" in lr_label and "2/" in lr_label  # lr_unit = "critical": the unit is 2/lambda_max
    deep = figs["deep_barrier_width"].axes[0]
    shown = [lab.get_text() for _, lab in style.drawn_tick_labels(deep.xaxis)]
    assert shown == ["0.25", "0.5", "1", "2", "4", "8"]  # no "3x10^-1" minor labels


def test_overlays_diverged_fit_theory_extrema(rendered):
    figs = rendered[1]
    lr_ax = figs["barrier_vs_lr"].axes[1]
    marks = [a for a in lr_ax.get_lines() if a.get_gid() == style.GID_DIVERGED]
    assert len(marks) == 3 + 3  # population: 1/3 at lr 0.8, all at 1.6 and 3.2; sgd: all at 0.8, 1.6, 3.2
    counts = [t.get_text() for t in lr_ax.texts if not isinstance(t.xycoords, str)]  # at the top, axes y
    assert counts == ["1/3"]  # a partial divergence is counted; "x" alone means every pair diverged
    vlines = [a for a in lr_ax.get_lines() if a.get_gid() == style.GID_THEORY]
    assert len(vlines) == 2 and all(np.ptp(v.get_xdata()) == 0 for v in vlines)  # critical steps, vertical
    assert "theory" in " ".join(t.get_text() for t in lr_ax.get_legend().get_texts())
    rate = figs["rate_fit"].axes[0]
    legend = [t.get_text() for t in rate.get_legend().get_texts()]
    fit = [t for t in legend if "alpha$ = " in t and t.startswith("fit")]
    assert len(fit) == 2 and all("[" in t and "]" in t for t in fit)
    assert style.GID_THEORY in gids(rate) and any(t.startswith("theory") and "alpha" in t for t in legend)
    wm = figs["barrier_vs_width"].axes[1]
    assert {style.GID_THEORY, style.GID_EXTREMA, style.GID_ZERO} <= gids(wm)
    theory = [a for a in wm.get_lines() if a.get_gid() == style.GID_THEORY]
    assert all(np.nanmin(a.get_ydata()) > 0 for a in theory)


def test_without_theory_the_figure_says_so(tmp_path, captured, monkeypatch):
    for mod in ("theory", "theory.minima", "theory.critical"):
        monkeypatch.setitem(sys.modules, mod, None)  # import theory.* raises ImportError
    paths = figures.draw(width_table(), ["barrier_vs_width"], tmp_path, width_cfg())
    paths += figures.draw(lr_table(), ["barrier_vs_lr"], tmp_path, lr_cfg())
    assert [p.name for p in paths] == ["barrier_vs_width.png", "barrier_vs_lr.png"]
    for fig, _ in captured:
        assert any("theory/ not importable" in t.get_text() for t in fig.texts)
        assert all(style.GID_THEORY not in gids(ax) for ax in fig.axes)


def test_svg_on_request(tmp_path, captured, monkeypatch):
    paths = figures.draw(width_table(), ["loss_vs_width"], tmp_path, None, formats=("png", "svg"))
    assert [p.suffix for p in paths] == [".png", ".svg"] and b"<svg" in paths[1].read_bytes()[:400]
    monkeypatch.setenv(style.FORMATS_ENV, "png,svg")
    paths = deep_figures.draw(deep_table(), tmp_path, ["endpoints"], ["weight"], ["width"])
    assert sorted(p.name for p in paths) == ["endpoints.png", "endpoints.svg"]
    with pytest.raises(ValueError, match="formats"):
        style.formats("png,jpeg")


def test_png_is_a_palette_image_that_looks_the_same(tmp_path):
    """style.save writes 256-colour PNGs: smaller than the RGBA matplotlib writes, pixels within a
    few levels of it (and exact on the white background)."""
    from PIL import Image

    paths = figures.draw(width_table(), ["barrier_vs_width"], tmp_path, None)
    fig, _ = style.new_figure()
    ax = fig.axes[0]
    ax.plot([1, 2, 3], [1, 4, 2], label="a")
    ax.legend()
    full = tmp_path / "full.png"
    style.tidy_ticks(fig)
    fig.savefig(full, dpi=style.DPI, bbox_inches="tight", pad_inches=0.05)
    small = style.save(fig, tmp_path / "small.png")[0]
    with Image.open(paths[0]) as im:
        assert im.mode == "P"
    a = np.asarray(Image.open(full).convert("RGB"), float)
    b = np.asarray(Image.open(small).convert("RGB"), float)
    assert a.shape == b.shape and np.abs(a - b).mean() < 1.0 and np.abs(a - b).max() <= 64
    assert np.all(b[a.min(axis=2) == 255] == 255)
    assert small.stat().st_size < full.stat().st_size


def test_stats_count_zeros_and_divergence_apart():
    df = pd.DataFrame({"x": [1, 1, 1, 1, 2], "y": [0.0, 1e-3, 3e-3, np.nan, np.nan],
                       "status_a": ["max_steps"] * 3 + ["diverged", "max_steps"]})
    s = style.pair_stats(df, "x", "y", log=True, diverged=style.diverged_rows(df))
    assert s.loc[1.0, ["n", "n_div", "n_zero", "n_pos"]].tolist() == [4, 1, 1, 2]
    assert s.loc[1.0, "mean"] == pytest.approx(2e-3) and 1e-3 <= s.loc[1.0, "ci_lo"] <= s.loc[1.0, "ci_hi"] <= 3e-3
    assert 2.0 not in s.index  # a NaN that is no divergence is left out
    lin = style.pair_stats(df, "x", "y", log=False)
    assert lin.loc[1.0, "mean"] == pytest.approx(4e-3 / 3)
    assert figures.mean_ci(np.array([1.0, 2.0, 3.0]))[0] >= 1.0
    assert list(figures.group_stats(df, "x", "y").columns) == ["mean", "sem", "ci_lo", "ci_hi", "lo", "hi", "n"]
