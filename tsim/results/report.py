"""``tsim report DIR...``: one Markdown page per set of run folders, each measured number next to
the papers' claim and the theory/ prediction, with a plain verdict where they disagree.

The claims are data (:data:`CLAIMS`), never results. theory/ predictions (sampled global minima,
closed-form critical steps, brute-force matching) are computed here from the run's own config
when the ``theory`` package is importable; otherwise that column says so.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .figures import pyplot
from .summary import with_derived

# What the papers claim (targets to compare with, not results).
CLAIMS = {
    "source": "Zhan, Li, Wu 2025, arXiv:2503.06001 (setting: Lin, Li, Wu 2024, arXiv:2404.06391)",
    "double_descent": "barrier modulo permutation vs m shows double descent: a peak, then a minimum",
    "min_m_over_M": 2.0,          # minimum reported near m = 2M
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
    """Sampled-minima predictions per teacher width M: curve, exponent, WM vs brute-force gap."""

    preds = {}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
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
        tr = g.groupby("m")["barrier_wm"].mean()
        ax.plot(tr.index, np.maximum(tr.to_numpy(), 1e-12), "o-", ms=3, label=f"trained, M={M}")
        for c, lab in ((curve, "uniform minima"), (sparse, "sparse minima r=0.5")):
            s = c.groupby("m")["barrier_wm"].mean()
            ax.plot(s.index, np.maximum(s.to_numpy(), 1e-12), "--", label=f"{lab}, M={M}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("student width m")
    ax.set_ylabel("barrier after weight matching")
    ax.set_title("Trained students vs sampled global minima")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / f"{tag}_theory_vs_trained.png", dpi=120)
    plt.close(fig)
    return preds


def _width_section(summary: dict, df: pd.DataFrame, th, out_dir: Path, tag: str,
                   samples: int = 8) -> tuple[list[str], list[str]]:
    meas = summary.get("measured", {})
    groups = meas.get("groups", [])
    cfg = summary.get("config", {})
    preds = _theory_width(th, df, cfg, out_dir, tag, samples) if th is not None and len(df) else {}
    lines, disagree = [], []
    rows = [["group", "peak m", "min m after peak", "claim: min near", "second peak m", "verdict"]]
    for g in groups:
        ex = g.get("extrema")
        if not ex:
            continue
        M = g["group"].get("M", cfg.get("teacher", {}).get("M"))
        target = CLAIMS["min_m_over_M"] * M if isinstance(M, (int, float)) else None
        mm = ex.get("min_m_after_peak")
        ok = mm is not None and target is not None and abs(mm - target) <= 0.5 * M
        verdict = "agrees" if ok else "DISAGREES"
        if not ok:
            disagree.append(f"{g['group']}: minimum after the peak at m = {_fmt(mm)}, claimed near 2M = "
                            f"{_fmt(target)} (peak at m = {_fmt(ex.get('peak_m'))}).")
        rows.append([g["group"], ex.get("peak_m"), mm, target, ex.get("second_peak_m"), verdict])
    if len(rows) > 1:
        lines += ["### Double descent (extrema of the mean WM barrier vs m)", "", _table(rows), ""]
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
                 f"rows: {summary.get('measured', {}).get('rows')}, wall time: {summary.get('wall_time_s')} s, "
                 f"students: {summary.get('measured', {}).get('students')}", ""]
        if "extrema" in measures or "power_law" in measures:
            lines, dis = _width_section(summary, df, th, out.parent, tag, samples)
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
