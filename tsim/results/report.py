"""``tsim report DIR...``: one Markdown page per set of run folders, each measured number next to
the papers' claim and the theory/ prediction, with a plain verdict where they disagree.

The claims are data (:data:`CLAIMS`), never results, and only what the sources state: the
abstract of Zhan, Li, Wu 2025 states double descent, the O(m^-1/2) decay for large m independent
of d, and the sharp sparsity transition with the learning rate; it says nothing about where the
minimum of the double descent falls, so the measured peak and minimum widths are shown without a
target. theory/ predictions (sampled global minima, closed-form critical steps, brute-force
matching) are computed here from the run's own config when the ``theory`` package is importable;
otherwise that column says so. A rate atlas (study "atlas") gets one table of every regime
(:func:`_atlas_section`); a ``methods`` run one table of the methods per width
(:func:`_methods_section`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import style
from .figures import ROUNDING, atlas_fit
from .summary import with_derived

# What the papers claim (targets to compare with, not results): only what the sources state.
CLAIMS = {
    "source": "Zhan, Li, Wu 2025, arXiv:2503.06001 (setting: Lin, Li, Wu 2024, arXiv:2404.06391)",
    "double_descent": "barrier modulo permutation vs m shows double descent: a peak, then a minimum",
    "rate": "for large m the barrier modulo permutation decreases to zero at a rate O(m^-1/2), independent "
            "of the input dimension, under an assumption such as a uniform distribution of global minima",
    "alpha_bound": 0.5,           # barrier = O(m^-1/2): decay exponent at least 1/2
    "alpha_d_independent": True,  # the rate does not depend on d
    "lr_transition": "raising the learning rate causes a sharp transition to sparse solutions",
    "sparsity_lowers_barrier": True,
}


def _theory():
    """The theory modules, or None (``theory`` is a top-level package next to tsim)."""
    try:
        import theory.critical as critical
        import theory.matching as matching
        import theory.minima as minima
    except ImportError:  # pragma: no cover - theory/ absent from the installation
        return None
    return {"critical": critical, "minima": minima, "matching": matching}


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _table(rows: list[list]) -> str:
    head, *body = rows
    lines = ["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


def _load(d: Path) -> tuple[dict, pd.DataFrame]:
    p = Path(d) / "summary.json"
    if not p.is_file():
        raise ValueError(f"{d} has no summary.json; give output folders of `tsim run`.")
    summary = json.loads(p.read_text())
    res = Path(d) / "results.csv"
    return summary, (pd.read_csv(res) if res.is_file() else pd.DataFrame())


# ------------------------------------------------------------------------------ width / rate
def _theory_width(th, df: pd.DataFrame, cfg: dict, out_dir: Path, tag: str, n: int = 8) -> dict:
    """Sampled-minima predictions per teacher width M: curve, exponent, WM vs brute-force gap; and the
    figure ``{tag}_theory_vs_trained.png`` (trained vs sampled minima, shared style: zeros on the zero row)."""
    preds = {}
    series = []  # (stats, label, marker, line style)
    min_m = cfg.get("analysis", {}).get("fit_min_m", 16)
    for M, g in df.groupby("M") if "M" in df else [(cfg["teacher"]["M"], df)]:
        M = int(M)
        ms = sorted(int(m) for m in g["m"].unique() if m >= M)
        if not ms:
            continue
        d = int(g["d"].min()) if "d" in g else int(cfg["teacher"]["d"])
        curve = th["minima"].predicted_curve(ms, M, d, n=n, seed=0)
        sparse = th["minima"].predicted_curve(ms, M, d, n=n, seed=0, r=0.5)
        entry = {"curve": curve.groupby("m")["barrier_wm"].mean().to_dict()}
        try:
            entry["alpha"] = th["minima"].predicted_exponent(curve, min_m=min_m, n_boot=200).to_dict()
        except ValueError as exc:
            entry["alpha"] = {"error": str(exc)}
        small = sorted({m for m in (M + 1, 2 * M, 3 * M) if m <= 8})
        gaps = th["matching"].sampled_gaps(small, M, d, n=max(2, n // 2), seed=0) if small else pd.DataFrame()
        entry["gap"] = gaps.groupby("m")[["barrier_wm", "barrier_opt", "gap"]].mean().to_dict("index") \
            if len(gaps) else {}
        preds[M] = entry
        if "barrier_wm" in g:
            series.append((style.pair_stats(g, "m", "barrier_wm", True, style.diverged_rows(g), zero_tol=ROUNDING),
                           f"trained, M={M}", "o", "-"))
        for c, lab, mk in ((curve, "sampled minima, dense (r = 0)", "s"), (sparse, "sampled minima, sparse (r = 0.5)",
                                                                           "D")):
            series.append((style.pair_stats(c, "m", "barrier_wm", True, zero_tol=ROUNDING), f"{lab}, M={M}", mk, "--"))
    _theory_figure(series, out_dir / f"{tag}_theory_vs_trained.png")
    return preds


@style.styled
def _theory_figure(series: list, path: Path) -> list[Path]:
    """Trained vs sampled-minima WM barrier vs m in the shared style (:class:`tsim.results.style.Panel`)."""
    fig, (ax,) = style.new_figure(1, width=5.6)
    p = style.Panel(ax, True, True, ROUNDING)
    for i, (st, lab, marker, ls) in enumerate(series):
        p.series(st, lab, style.CYCLE[i % len(style.CYCLE)], marker=marker, ls=ls)
    xs = sorted({float(x) for st, *_ in series for x in st.index})
    p.finish(style.axis_label("m"), "barrier after weight matching", "Trained students vs sampled global minima",
             xticks=xs or None, legend_title="line: mean over pairs > 0, band: 95% CI")
    style.fit_height(fig)
    return style.save(fig, path)


def _width_section(summary: dict, df: pd.DataFrame, th, out_dir: Path, tag: str,
                   samples: int = 8) -> tuple[list[str], list[str]]:
    meas = summary.get("measured", {})
    groups = meas.get("groups", [])
    cfg = summary.get("config", {})
    preds = _theory_width(th, df, cfg, out_dir, tag, samples) if th is not None and len(df) else {}
    lines, disagree = [], []
    rows = [["group", "peak m", "barrier at the peak", "first minimum after the peak, m", "barrier there",
             "second peak m"]]
    for g in groups:
        ex = g.get("extrema")
        if not ex or all(v is None for v in ex.values()):
            continue
        rows.append([g["group"], ex.get("peak_m"), ex.get("peak_barrier"), ex.get("min_m_after_peak"),
                     ex.get("min_barrier_after_peak"), ex.get("second_peak_m")])
    if len(rows) > 1:
        lines += ["### Double descent (extrema of the mean WM barrier vs m)", "",
                  f"Claim: {CLAIMS['double_descent']}. The sources do not say at which width the minimum falls, "
                  "so the measured widths stand alone.", "", _table(rows), ""]
    rows = [["group", "alpha", "95% CI", "claim: alpha >=", "theory (sampled minima) alpha", "verdict"]]
    alphas = []
    for g in groups:
        pl = g.get("power_law")
        if not pl:
            continue
        M = g["group"].get("M", cfg.get("teacher", {}).get("M"))
        tp = preds.get(int(M), {}).get("alpha", {}) if M is not None else {}
        if "alpha" not in pl:
            rows.append([g["group"], None, pl.get("error"), CLAIMS["alpha_bound"], tp.get("alpha"), "no fit"])
            continue
        lo, hi = pl["alpha_ci"]
        alphas.append((g["group"], pl["alpha"], lo, hi))
        ok = hi >= CLAIMS["alpha_bound"]
        if not ok:
            disagree.append(f"{g['group']}: alpha = {pl['alpha']:.3g} [{lo:.3g}, {hi:.3g}] decays slower than "
                            f"the claimed m^-{CLAIMS['alpha_bound']} bound.")
        tci = tp.get("alpha_ci", [None, None])
        rows.append([g["group"], pl["alpha"], f"[{_fmt(lo)}, {_fmt(hi)}]", CLAIMS["alpha_bound"],
                     f"{_fmt(tp.get('alpha'))} [{_fmt(tci[0])}, {_fmt(tci[1])}]", "agrees" if ok else "DISAGREES"])
    if len(rows) > 1:
        lines += [f"### Rate of the tail (barrier ~ C m^-alpha, m >= {cfg.get('analysis', {}).get('fit_min_m')})",
                  "", _table(rows), ""]
    if len(alphas) > 1:
        overlap = max(a[2] for a in alphas) <= min(a[3] for a in alphas)
        lines += [f"d-independence: the alpha intervals {'overlap' if overlap else 'do NOT all overlap'} "
                  f"(claim: alpha does not depend on d).", ""]
        if not overlap:
            disagree.append("alpha differs between groups (CIs do not all overlap); claim: independent of d.")
    if preds:
        rows = [["M", "m", "WM barrier (sampled minima)", "barrier-optimal perm", "gap WM - optimal"]]
        for M, e in preds.items():
            for m, v in e["gap"].items():
                rows.append([M, m, v["barrier_wm"], v["barrier_opt"], v["gap"]])
        lines += ["### Weight matching vs the barrier-optimal permutation (sampled minima, brute force)", "",
                  _table(rows), "", f"![theory vs trained]({tag}_theory_vs_trained.png)", ""]
    return lines, disagree


# ------------------------------------------------------------------------------ methods
def _methods_section(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Per width m: the mean barrier of each alignment method, weight matching's excess over
    barrier-aware matching (mean, max, pairs where it is > 0 beyond rounding) and how many
    assignments were certified optimal (LP duality) where the study recorded it."""
    meths = [c[len("barrier_"):] for c in df.columns if c.startswith("barrier_") and c != "barrier_naive"]
    if "m" not in df or not meths:
        return [], []
    rows = [["m", "pairs", "naive", *(_MATCH.get(k, k) for k in meths), "WM excess over barrier-aware: mean",
             "max", "pairs > 0", "certified"]]
    disagree = []
    for m, g in df.groupby("m"):
        ex = pd.to_numeric(g.get("excess_weight_over_barrier", pd.Series(dtype=float)), errors="coerce").dropna()
        cert = []
        for k in meths:
            c = g.get(f"certified_{k}")
            if c is None:
                continue
            c = c.dropna()
            if len(c):
                cert.append(f"{_MATCH.get(k, k)} {int((c == True).sum())}/{len(c)}")  # noqa: E712 (JSON bools)
        rows.append([int(m), len(g), g["barrier_naive"].mean(),
                     *(pd.to_numeric(g[f"barrier_{k}"], errors="coerce").mean() for k in meths),
                     ex.mean() if len(ex) else None, ex.max() if len(ex) else None,
                     f"{int((ex > ROUNDING).sum())}/{len(ex)}" if len(ex) else None,
                     ", ".join(cert) or "not recorded"])
        if len(ex) and ex.min() < -ROUNDING:
            disagree.append(f"m = {int(m)}: barrier-aware matching is above weight matching (excess "
                            f"{ex.min():.3g} < 0); it must never be worse.")
    lines = ["### Alignment methods per width (mean over pairs)", "",
             "Barrier-aware matching starts from weight matching and keeps it unless a swap lowers the barrier, "
             "so WM's excess over it is what the matching (not the landscape) adds to the barrier.", "",
             _table(rows), ""]
    return lines, disagree


# ------------------------------------------------------------------------------ rate atlas
_MATCH = {"weight": "WM", "activation": "AM", "barrier": "barrier-aware", "ste": "STE", "optimal": "optimal"}


def _regime_configs(cfg: dict) -> dict:
    """{regime name: its resolved config dict} of an atlas summary (one regime: the config itself)."""
    regs = cfg.get("regime") or [cfg]
    return {r.get("atlas", {}).get("regime", "base"): r for r in regs}


def _setting(rc: dict) -> str:
    """A regime's setting in words, from its config dict."""
    if not rc:
        return "n/a (no config of this regime in summary.json)"
    t, s, tr, a = (rc.get(k, {}) for k in ("teacher", "student", "train", "atlas"))
    words = [f"{t.get('kind', '?')} teacher", f"{t.get('inputs', '?')} inputs", f"c = {s.get('scale', '?')}"]
    if a.get("source") == "minima":
        kind = {"uniform": "types uniform on {zero, 1..M}", "dense": "no zero neurons",
                "sparse": f"each neuron zero w.p. r = {_fmt(a.get('r'))}"}.get(a.get("minima"), a.get("minima"))
        return f"sampled global minima, {kind}; " + ", ".join(words)
    how = {"population": "population GD", "gd": f"full-batch GD on n = {tr.get('n')}",
           "sgd": f"SGD, batch {tr.get('batch')} of n = {tr.get('n')}"}.get(tr.get("method"), tr.get("method"))
    if tr.get("method") != "population" and tr.get("noise"):
        how += f", label noise {_fmt(tr.get('noise'))}"
    init = f"init std {_fmt(s.get('sigma0'))} m^-{_fmt(s.get('init_exponent'))}/sqrt(d)"
    return (f"{how}, {tr.get('steps')} steps, lr {_fmt(tr.get('lr'))} ({tr.get('lr_unit')}); "
            + ", ".join(words + ["a trained" if s.get("train_a") else "a fixed", init]))


def _ci_text(f: dict) -> str:
    if "alpha" not in f:
        return f"no fit: {f.get('error', 'no data')}"
    return f"{f['alpha']:.2f} [{f['alpha_ci'][0]:.2f}, {f['alpha_ci'][1]:.2f}]"


def _holds(f: dict, v: float) -> bool | None:
    return None if "alpha" not in f else bool(f["alpha_ci"][0] <= v <= f["alpha_ci"][1])


def _overlap(f: dict, g: dict) -> bool | None:
    if "alpha" not in f or "alpha" not in g:
        return None
    return bool(max(f["alpha_ci"][0], g["alpha_ci"][0]) <= min(f["alpha_ci"][1], g["alpha_ci"][1]))


def _exists_text(ex: pd.DataFrame) -> str:
    v = pd.to_numeric(ex["zero_exists"], errors="coerce").dropna() if "zero_exists" in ex else pd.Series(dtype=float)
    if v.empty:
        return "n/a"
    return f"{v.mean():.2f} ({int(v.sum())}/{v.size})"


def _atlas_section(summary: dict, df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The rate atlas in one table: alpha [CI] per d for each regime and matching, whether the CI
    holds 1/2 and whether the two d agree; a table of the regimes with the fraction of pairs where a
    zero-barrier permutation exists; plain verdicts (which regimes give 1/2, which matching decides)."""
    cfg = summary.get("config", {})
    an = cfg.get("analysis", {})
    min_m, n_boot = int(an.get("fit_min_m", 16)), int(an.get("n_boot", 1000))
    seed = int(cfg.get("sweep", {}).get("seed", 0))
    bound = CLAIMS["alpha_bound"]
    regs = _regime_configs(cfg)
    lines = ["### Rate atlas: barrier ~ C m^-alpha per regime, d and matching", "",
             f"Claim (Zhan, Li, Wu 2025, arXiv:2503.06001, abstract): {CLAIMS['rate']}. O(m^-1/2) bounds the "
             "barrier: it asks "
             f"alpha >= {bound}; a rate *like* m^-1/2 is alpha = {bound}.", ""]
    need = {"regime", "matching", "barrier", "m", "d", "pair"}
    if df.empty or not need <= set(df.columns):
        return lines + [f"No atlas rows (results.csv lacks {sorted(need - set(df.columns))})."], []
    order = [r for r in regs if r in set(df["regime"])] + [r for r in dict.fromkeys(df["regime"]) if r not in regs]
    ds = sorted(int(d) for d in df["d"].dropna().unique())
    # --- regimes
    div = style.diverged_rows(df)
    rows = [["regime", "setting", "widths m", "pairs", "zero-barrier permutation exists: fraction of pairs (all m)",
             "at the largest m", "diverged pairs", "endpoint loss, smallest -> largest m"]]
    loss_growth = {}
    for name in order:
        sub = df[df["regime"] == name]
        ex = sub.drop_duplicates(["d", "m", "pair"])
        top = ex[ex["m"] == ex["m"].max()]
        ms = sorted(int(m) for m in sub["m"].unique())
        lo, hi = _endpoint_loss(ex, ms[0]), _endpoint_loss(ex, ms[-1])
        wm = pd.to_numeric(sub[(sub["m"] == ms[-1]) & (sub["matching"] == "weight")]["barrier"], errors="coerce")
        b_top = float(wm.mean()) if wm.notna().any() else float("nan")
        if lo > 0 and hi > 10 * lo and not hi < 0.01 * b_top:  # grows, and is not negligible next to the barrier
            loss_growth[name] = (lo, hi, b_top)
        rows.append([name, _setting(regs.get(name, {})), ", ".join(map(str, ms)), int(ex["pair"].nunique()),
                     _exists_text(ex), f"m = {ms[-1]}: {_exists_text(top)}",
                     f"{int(div[ex.index].sum())}/{len(ex)}", f"{_fmt(lo)} -> {_fmt(hi)}"])
    zt = regs[order[0]].get("atlas", {}).get("zero_tol", 0.01) if order and order[0] in regs else 0.01
    lines += ["#### Regimes", "", _table(rows), "",
              "A zero-barrier permutation *exists*: on sampled minima (teacher-aligned), exactly when the Hall "
              "condition sum_j max(n_j^A, n_j^B) <= m holds for the type counts n_j (tsim.alignment.hall_slack); "
              f"on trained students, by a stated tolerance: the barrier-aware barrier is <= {_fmt(zt)} x the mean "
              f"endpoint loss of the pair + {ROUNDING:g} (n/a where barrier-aware matching was not run). "
              "Barrier-aware matching is a local search: its barrier bounds the best permutation's from above. "
              "Endpoint loss: the mean over pairs and both ends of the population loss (0 for sampled minima).", ""]
    # --- alpha table
    fits: dict = {}
    head = ["regime", "matching"] + [f"alpha [95% CI], d = {d}" for d in ds] + [f"CI holds {bound}", "the two d agree"]
    rows = [head]
    for name in order:
        sub = df[df["regime"] == name]
        for meth in dict.fromkeys(sub["matching"]):
            g = sub[sub["matching"] == meth]
            fs = {d: atlas_fit(g[g["d"] == d], min_m, n_boot, seed) for d in ds}
            fits[(name, meth)] = fs
            holds = [d for d in ds if _holds(fs[d], bound)]
            known = [d for d in ds if "alpha" in fs[d]]
            htxt = ("n/a" if not known else "no" if not holds else "yes" if holds == known
                    else ", ".join(f"d = {d}" for d in holds) + " only")
            ov = _overlap(fs[ds[0]], fs[ds[-1]]) if len(ds) > 1 else None
            agree = "n/a" if ov is None else ("yes" if ov else "NO")
            if len(ds) > 1 and _same_across_d(g, ds):
                minima = "source" in g and set(g["source"]) == {"minima"}
                agree = "identical in every pair" + (" (sampled minima: d only pads zeros)" if minima else "")
            rows.append([name, _MATCH.get(meth, meth)] + [_ci_text(fs[d]) for d in ds] + [htxt, agree])
    lines += ["#### Decay exponents", "",
              f"Fit over m >= {min_m} of the mean barrier over pairs at each width (zeros included), 95% "
              f"percentile-bootstrap CI over pairs ({n_boot} draws); a fit needs 3 widths with a positive mean. "
              "'The two d agree': the two CIs overlap.", "", _table(rows), ""]
    # --- verdicts
    half = [f"{n} / {_MATCH.get(m_, m_)} (d = {', '.join(str(d) for d in ds if _holds(f[d], bound))})"
            for (n, m_), f in fits.items() if any(_holds(f[d], bound) for d in ds)]
    slow = [(n, m_, d, f[d]) for (n, m_), f in fits.items() for d in ds
            if "alpha" in f[d] and f[d]["alpha_ci"][1] < bound]
    steep = [(n, m_, d) for (n, m_), f in fits.items() for d in ds if "alpha" in f[d] and f[d]["alpha_ci"][0] > bound]
    verdict = ["#### What the atlas says", ""]
    verdict.append(f"- **Rate 1/2**: the CI holds {bound} in " + ("; ".join(half) + "." if half else
                   "no regime and matching: nowhere does the barrier decay like m^-1/2 within its CI."))
    verdict.append(f"- **Faster than 1/2** (CI above {bound}): {len(steep)} of "
                   f"{sum('alpha' in f[d] for f in fits.values() for d in ds)} fits; **slower** (CI below): "
                   + (", ".join(f"{n} / {_MATCH.get(m_, m_)} d = {d}" for n, m_, d, _ in slow) if slow else "none")
                   + ".")
    if loss_growth:
        verdict.append("- **Less converged at large m**: the mean endpoint loss grows more than 10x from the "
                       "smallest to the largest width, to at least 1% of the WM barrier there, in " + ", ".join(
                           f"{n} ({_fmt(lo)} -> {_fmt(hi)}; WM barrier at the largest m {_fmt(b)})"
                           for n, (lo, hi, b) in loss_growth.items())
                       + ": after the same steps the wide students are further from a minimum; where that loss "
                       "comes near the barrier, the barrier's trend with m mixes training time with the landscape.")
    nofit = [n for n in order if not any("alpha" in f[d] for (r, _), f in fits.items() if r == n for d in ds)]
    if nofit:
        verdict.append("- **No fit in any matching or d**: " + ", ".join(nofit) + " (reasons in the table).")
    dis = [f"{n} / {_MATCH.get(m_, m_)}" for (n, m_), f in fits.items() if len(ds) > 1
           and _overlap(f[ds[0]], f[ds[-1]]) is False]
    verdict.append(f"- **d**: the two d give disjoint CIs in " + (", ".join(dis) if dis else "no regime and matching")
                   + " (the claim is a d-independent bound, alpha >= 1/2, not equal exponents).")
    verdict += ["- **Which matching decides the rate** (weight matching vs barrier-aware matching on the same pairs):"]
    for name in order:
        w, b = fits.get((name, "weight")), fits.get((name, "barrier"))
        if w is None or b is None:
            continue
        sub = df[df["regime"] == name]
        verdict.append(f"  - {name}: " + "; ".join(f"d = {d}: {_decides(w[d], b[d], _at_top(sub[sub['d'] == d]))}"
                                                   for d in ds))
    lines += verdict + [""]
    disagree = [f"{n} / {_MATCH.get(m_, m_)}, d = {d}: alpha = {f['alpha']:.3g} [{f['alpha_ci'][0]:.3g}, "
                f"{f['alpha_ci'][1]:.3g}] decays slower than the claimed O(m^-{bound}) (a claim for large m under "
                "an assumption such as uniformly distributed global minima; see the regime's setting)"
                + (f"; but the endpoint loss there grows from {_fmt(loss_growth[n][0])} to {_fmt(loss_growth[n][1])} "
                   "with m: the wide students are less converged, so this may be training time, not the landscape."
                   if n in loss_growth else ".")
                for n, m_, d, f in slow]
    return lines, disagree


def _endpoint_loss(ex: pd.DataFrame, m: int) -> float:
    """Mean over pairs (and both ends) of the endpoint population loss at width m; nan without losses."""
    if not {"loss_a", "loss_b"} <= set(ex.columns):
        return float("nan")
    at = ex[ex["m"] == m]
    vals = pd.to_numeric(pd.concat([at["loss_a"], at["loss_b"]]), errors="coerce")
    if not vals.notna().any():
        return float("nan")
    v = float(vals.mean())
    return 0.0 if abs(v) <= ROUNDING else v  # sampled minima: 0 up to float64 rounding


def _same_across_d(g: pd.DataFrame, ds: list) -> bool:
    """True when every (m, pair) has the same barrier at every d (sampled minima of an orthonormal
    teacher: d only pads zero coordinates, the draws do not depend on d)."""
    tabs = [g[g["d"] == d].set_index(["m", "pair"])["barrier"].sort_index() for d in ds]
    if not (pd.to_numeric(g["barrier"], errors="coerce") > ROUNDING).any():
        return False
    return all(t.index.equals(tabs[0].index) and np.allclose(t.to_numpy(float), tabs[0].to_numpy(float),
                                                             rtol=1e-9, atol=0.0, equal_nan=True) for t in tabs[1:])


def _at_top(g: pd.DataFrame) -> dict:
    """At the largest width of one (regime, d): m, pairs n, pairs where a zero-barrier permutation
    exists (None if unknown), pairs where weight matching and barrier-aware matching reach 0."""
    top = g[g["m"] == g["m"].max()]

    def zeros(meth):
        b = pd.to_numeric(top.loc[top["matching"] == meth, "barrier"], errors="coerce").dropna()
        return (int((b <= ROUNDING).sum()), int(b.size)) if b.size else None

    ex = pd.to_numeric(top.drop_duplicates("pair")["zero_exists"], errors="coerce").dropna() \
        if "zero_exists" in top else pd.Series(dtype=float)
    return {"m": int(top["m"].max()) if len(top) else None, "exists": (int(ex.sum()), int(ex.size)) if ex.size
            else None, "wm0": zeros("weight"), "ba0": zeros("barrier")}


def _decides(w: dict, b: dict, top: dict) -> str:
    """Weight matching vs barrier-aware matching on one (regime, d), in words, with the counts at the
    largest width (``top``, :func:`_at_top`)."""
    parts = [f"a zero-barrier permutation exists in {top['exists'][0]}/{top['exists'][1]}"] \
        if top.get("exists") else []
    parts += [f"{lab} reaches 0 in {top[key][0]}/{top[key][1]}" for lab, key in (("WM", "wm0"), ("barrier-aware", "ba0"))
              if top.get(key)]
    at = f" (m = {top['m']}: {', '.join(parts)})" if parts else ""
    zero = "every barrier is 0"
    if zero in w.get("error", "") and zero in b.get("error", ""):
        return "every WM and barrier-aware barrier is 0: no rate to decide" + at
    ba0, wm0 = top.get("ba0"), top.get("wm0")
    if ba0 and wm0 and ba0[0] == ba0[1] and wm0[0] < wm0[1]:
        wtxt = f"WM decays with alpha = {_ci_text(w)}" if "alpha" in w else f"WM: {_ci_text(w)}"
        return (f"at the largest width barrier-aware matching reaches 0 in every pair, WM does not ({wtxt}): "
                "the WM barrier and its rate are the matching's, the landscape's barrier is 0" + at)
    if "alpha" not in w:
        return f"WM has no fit ({w.get('error')})" + at
    if "alpha" not in b:
        return f"barrier-aware has no fit ({b.get('error')}); WM alpha = {w['alpha']:.2f}" + at
    if _overlap(w, b):
        return (f"same rate within the CIs (WM {_ci_text(w)}, barrier-aware {_ci_text(b)}): the better "
                "permutations the barrier-aware search finds do not change the rate" + at)
    faster = "faster" if b["alpha"] > w["alpha"] else "slower"
    return (f"the rates differ (WM {_ci_text(w)}, barrier-aware {_ci_text(b)}, {faster}): the matching decides "
            "the rate" + at)


# ------------------------------------------------------------------------------ lr sparsity
def _lr_section(summary: dict, df: pd.DataFrame, th, out_dir: Path, tag: str) -> tuple[list[str], list[str]]:

    cfg = summary.get("config", {})
    lines, disagree = [], []
    t, s, tr = cfg.get("teacher", {}), cfg.get("student", {}), cfg.get("train", {})
    d = with_derived(df) if len(df) else df
    rows = [["group", "sparsity rises above", "interval (lr)", "diverges (lr)", "theory: dense minima unstable",
             "theory: no stable minimum", "verdict"]]
    for g in summary.get("measured", {}).get("groups", []):
        trn = g.get("transition")
        if not trn:
            continue
        pred = {}
        sub = d
        for k, v in g["group"].items():
            if k in d:
                sub = sub[sub[k] == v]
        if th is not None and tr.get("lr_unit") == "critical" and len(sub) and isinstance(s.get("m"), int):
            lam_init = float(np.nanmean(2 * sub["lr"] / sub["lr_a"]))
            pred = th["critical"].predicted_transition(s["m"], t["M"], t["d"], lam_init, t.get("inputs", "gaussian"))
        lo, hi = trn.get("lo"), trn.get("hi")
        div = g.get("divergence", {})
        p = pred.get("sparsify")
        if hi is None:
            verdict = "no transition seen"
            disagree.append(f"{g['group']}: no sparsity above {trn['level']} before divergence "
                            f"(diverges in ({_fmt(div.get('lo'))}, {_fmt(div.get('hi'))}]).")
        elif p is None:
            verdict = "no prediction"
        else:
            ok = (lo is None or p >= lo / 1.5) and p <= hi * 1.5
            verdict = "agrees" if ok else "DISAGREES"
            if not ok:
                disagree.append(f"{g['group']}: sparsity transition in ({_fmt(lo)}, {_fmt(hi)}], theory predicts "
                                f"{p:.3g} (units of 2/lambda_init).")
        rows.append([g["group"], trn["level"], f"({_fmt(lo)}, {_fmt(hi)}]",
                     f"({_fmt(div.get('lo'))}, {_fmt(div.get('hi'))}]", pred.get("sparsify"), pred.get("diverge"),
                     verdict])
    if len(rows) > 1:
        lines += ["### Learning-rate transition (lr in units of 2/lambda_max at init)", "", _table(rows), ""]
    if {"sparsity", "barrier_wm"} <= set(d.columns):
        rows = [["group", "Spearman(sparsity, WM barrier)", "rows", "verdict"]]
        by = [c for c in cfg.get("analysis", {}).get("group_by", []) if c in d]
        for key, g in (d.groupby(by) if by else [("all", d)]):
            g = g[["sparsity", "barrier_wm"]].dropna()
            if len(g) < 3 or g["sparsity"].nunique() < 2:
                rows.append([key, None, len(g), "too few sparse rows"])
                continue
            rho = float(g["sparsity"].rank().corr(g["barrier_wm"].rank()))
            ok = rho < 0
            if not ok:
                disagree.append(f"{key}: sparser students do not have lower barriers (Spearman {rho:.2f}).")
            rows.append([key, rho, len(g), "agrees" if ok else "DISAGREES"])
        lines += ["### Does sparsity lower the barrier? (claim: yes)", "", _table(rows), ""]
    return lines, disagree


def render(dirs: list[Path], out: Path | None = None, samples: int = 8) -> Path:
    """Write a Markdown report for the run folders ``dirs``; return its path.

    Default path: ``dirs[0]/report.md``. Figures of each run are linked; theory figures are
    written next to the report. ``samples``: pairs of sampled minima per width for the theory
    curves (the brute-force comparison uses half as many, at widths M+1, 2M, 3M up to 8).
    """
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise ValueError("dirs must name at least one output folder of `tsim run`.")
    out = Path(out) if out else dirs[0] / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    th = _theory()
    body, disagree = [], []
    for k, d in enumerate(dirs):
        summary, df = _load(d)
        measures = summary.get("config", {}).get("analysis", {}).get("measures", [])
        tag = f"run{k}"
        body += [f"## {d}", "", f"config: `{summary.get('config_file')}`, quick: {summary.get('quick')}, "
                 f"rows: {summary.get('measured', {}).get('rows')}, wall time: {summary.get('wall_time_s')} s "
                 f"(last command; compute of all cells: {summary.get('cell_time_s', 'n/a')} s), "
                 f"students: {summary.get('measured', {}).get('students')}", ""]
        if summary.get("study") == "atlas":
            lines, dis = _atlas_section(summary, df)
            body += lines
            disagree += [f"[{d}] {x}" for x in dis]
        elif "extrema" in measures or "power_law" in measures:
            lines, dis = _width_section(summary, df, th, out.parent, tag, samples)
            body += lines
            disagree += [f"[{d}] {x}" for x in dis]
        if summary.get("study") == "methods":
            lines, dis = _methods_section(df)
            body += lines
            disagree += [f"[{d}] {x}" for x in dis]
        if "transition" in measures:
            lines, dis = _lr_section(summary, df, th, out.parent, tag)
            body += lines
            disagree += [f"[{d}] {x}" for x in dis]
        for f in summary.get("figures", []):
            rel = Path(os.path.relpath((d / f).resolve(), out.parent.resolve())).as_posix()
            body += [f"![{f}]({rel})", ""]
    head = ["# tsim report: LMC modulo permutation", "", f"Claims from {CLAIMS['source']}.", "",
            "## Where measurement and claim/theory disagree", ""]
    head += [f"- {x}" for x in disagree] or ["- nowhere among the numbers checked."]
    if th is None:
        head += ["", "(theory/ is not importable here: theory columns are empty.)"]
    out.write_text("\n".join(head + [""] + body) + "\n")
    return out
