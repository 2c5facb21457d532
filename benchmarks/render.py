"""Render the latest benchmark ratios to benchmarks/RESULTS.md, benchmarks/data/ratios.png and the
table between the bench-table markers of README.md.

Usage: python benchmarks/render.py [ratios.json] [--bench-json FILE ...]
Reads ``benchmarks/data/ratios.json`` (written by benchmarks/conftest.py) and, optionally,
pytest-benchmark JSON files (``--benchmark-json``) whose ``extra_info`` holds a ``ratio``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).parent


def _fmt_time(s):
    if s is None:
        return ""
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def _rows_from_bench_json(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    rows = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if "ratio" in info and "group" not in info:
            rows.append({"group": b.get("group") or Path(b["fullname"].split("::")[0]).stem, "case": b["name"],
                         "tsim_s": b["stats"]["min"], "ratio": info["ratio"], "baseline": info.get("baseline", "")})
    return rows


def table(rows: list[dict]) -> str:
    out = ["| benchmark | case | threads | tsim | baseline | baseline time | ratio (x faster) | target | met | notes |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r.get("ratio")
        target = r.get("target")
        notes = []
        if "frac_of_matmul" in r:
            notes.append(f"{r['tsim_gflops']:.1f} GFLOP/s = {100 * r['frac_of_matmul']:.0f}% of matmul "
                         f"({r['matmul_gflops']:.1f})")
            if r.get("frac_target"):
                notes.append(f"target {100 * r['frac_target']:.0f}%: "
                             f"{'met' if r['frac_of_matmul'] >= r['frac_target'] else 'not met'}")
        if "tsim_pairs_per_s" in r:
            notes.append(f"{r['tsim_pairs_per_s']:.3g} kernel evals/s (numpy {r['numpy_pairs_per_s']:.3g})")
        if "torch_f32_ratio" in r:
            notes.append(f"vs torch f32: {r['torch_f32_ratio']:.1f}x")
        if "trainings_per_s" in r:
            notes.append(f"{r['trainings']} trainings, {r['trainings_per_s']:.2f} trainings/s")
        if "loss_evals_per_s" in r:
            notes.append(f"{r['loss_evals_per_s']:.1f} loss evaluations/s")
        met = "" if target is None or ratio is None else ("yes" if ratio >= target else "**no**")
        tgt = "" if target is None else (f">= {target:g}x" if target >= 1 else f">= {target:.2f}x (within {1 / target:.2g}x)")
        out.append(f"| {r['group']} | {r['case']} | {r.get('threads', '')} | {_fmt_time(r.get('tsim_s'))} | "
                   f"{r.get('baseline', '')} | "
                   f"{_fmt_time(r.get('base_s'))} | {'' if ratio is None else f'{ratio:.2f}'} | {tgt} | {met} | "
                   f"{'; '.join(notes)} |")
    return "\n".join(out)


def machine_text(machine: dict) -> str:
    lines = [f"- date: {machine.get('date')}, CPUs: {machine.get('cpus')}, numba threads: "
             f"{machine.get('numba_threads')}, load average at the end: {machine.get('loadavg')}",
             f"- OPENBLAS_* in the benchmark environment: {machine.get('env')}"]
    for k in ("matmul_gflops_float64", "matmul_gflops_float32"):
        if k in machine:
            lines.append(f"- measured {k.split('_')[-1]} matmul (numpy 2000^3): {machine[k]:.1f} GFLOP/s")
    for b in machine.get("blas", []):
        lines.append(f"- {b.get('user_api')}: {b.get('internal_api')} {b.get('version')} "
                     f"({b.get('prefix')}), architecture {b.get('architecture')}, threads {b.get('num_threads')}")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("ratio")]
    if not rows:
        return
    labels = [f"{r['group']}\n{r['case']} ({r.get('threads', '?')} thr)" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.2))
    y = range(len(rows))
    ax.barh(list(y), [r["ratio"] for r in rows], color="tab:blue")
    for i, r in enumerate(rows):
        if r.get("target"):
            ax.plot([r["target"]] * 2, [i - 0.4, i + 0.4], color="tab:red", lw=2)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("baseline time / tsim time (red: target)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


MATCH_GROUP = "weight matching vs fastest exact LAP"  # benchmarks/bench_matching.py
MATCH_INTRO = """`benchmarks/bench_matching.py` (default grid: every (m, d) up to m = 2048 and random m = 4096, d = 16;
`TSIM_BENCH_MATCH=full` for the whole grid), one thread (threadpoolctl; the Numba kernels are serial), everything in one
process. **tsim** is `tsim.match.weight_assignment(A, B)`, all of it: the GEMM S = Z_A Z_B^T, the rounding of
`round_ties`, the exact sparse solve and the LP duality certificate checked over all m^2 entries. The **baselines** get
the rounded S ready-made: scipy `linear_sum_assignment(S, maximize=True)`, lapx `lapjv`, `lapjvs(prefer_float32=False)`
and `lapjvc` on -S; "fastest" is the fastest of them on the same cost, best of 20 (m = 128), 10 (m = 256), 5 (m = 512), 3
(m = 1024) or 1 (m >= 2048) calls, tsim likewise, in interleaved rounds (tsim, S, each solver, then again), so that
a slow spell of the shared machine hits every contender alike. `tsim / fastest` is the issue's ratio (target <= 1). `S + fastest` is what a user of the raw solver runs end to
end: building the same rounded S (`weight_scores`, the GEMM and the rounding; its time in `S`), then the fastest
solver; `tsim / (S + fastest)` compares with that. "random": Gaussian A and B; "trained": rows =
teacher directions (d/4 of them) times Exp(1) scales plus noise 0.05, B a permuted noisy copy of A. A baseline >= 3x
slower than the fastest at the previous m of the same (cost, d) is not run again. BLAS: the OpenBLAS kernel that runs
the GEMM, as threadpoolctl reports it. Rendered from the benchmark's own rows in `data/ratios.json`."""


def _is_match(r: dict) -> bool:
    return r.get("group") == MATCH_GROUP


def matching_section(rows: list[dict]) -> list[str]:
    """The weight-matching section of RESULTS.md from bench_matching's rows (empty if none)."""
    import re

    rows = [r for r in rows if _is_match(r)]
    if not rows:
        return []

    def key(r):
        k = re.match(r"(\w+), m=(\d+), d=(\d+)", r["case"])
        return (k.group(1), int(k.group(2)), int(k.group(3))) if k else ("?", 0, 0)

    rows.sort(key=lambda r: (key(r)[0] != "random",) + key(r))
    out = ["## Weight matching vs the fastest exact LAP solver (issue 12)", "", MATCH_INTRO, "",
           "| cost | m | d | tsim (all) | fastest raw solver | its time | tsim / fastest | met (<= 1) | S | "
           "tsim / (S + fastest) | other solvers | BLAS |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    missed = []
    for r in rows:
        kind, m, d = key(r)
        ratio = r.get("tsim_over_fastest", r["tsim_s"] / r["base_s"])
        fastest = r.get("baseline", "").split(" ")[0]
        others = [f"{n} {_fmt_time(t)}" for n, t in sorted(r.get("solver_s", {}).items(), key=lambda x: x[1])
                  if n != fastest]
        if r.get("skipped"):
            others.append(f"not run: {', '.join(r['skipped'])} (>= 3x slower at m/2)")
        ok = ratio <= 1.0
        if not ok:
            missed.append(f"{kind} m = {m}, d = {d} ({ratio:.2f})")
        cost = _fmt_time(r["cost_s"]) if "cost_s" in r else ""
        with_cost = f"{r['tsim_over_fastest_with_cost']:.2f}" if "tsim_over_fastest_with_cost" in r else ""
        out.append(f"| {kind} | {m} | {d} | {_fmt_time(r['tsim_s'])} | {fastest} | {_fmt_time(r['base_s'])} | "
                   f"{ratio:.2f} | {'yes' if ok else '**no**'} | {cost} | {with_cost} | {', '.join(others)} | "
                   f"{r.get('blas', '')} |")
    out += ["", f"Met on {len(rows) - len(missed)} of {len(rows)} costs" +
            (f"; **not met on {len(missed)}**: {'; '.join(missed)}." if missed else "."), ""]
    dates = sorted({r["date"] for r in rows if r.get("date")})
    rates = [r["matmul_gflops_1t"] for r in rows if r.get("matmul_gflops_1t")]
    if dates:
        out += [f"Measured {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "") +
                (f", float64 matmul (1000^3, one thread) {min(rates):.0f}" +
                 (f"-{max(rates):.0f}" if round(max(rates)) != round(min(rates)) else "") + " GFLOP/s" if rates else "") +
                " (the machine section above is that of the other rows).", ""]
    return out


README = HERE.parent / "README.md"
MARK_START, MARK_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def readme_table(rows: list[dict], machine: dict) -> str:
    """The rows that carry a target (plus barrier and end to end), compact, with the machine line."""
    blas = "; ".join(sorted({f"{b.get('internal_api')} {b.get('version')} {b.get('architecture')}"
                             for b in machine.get("blas", []) if isinstance(b, dict) and b.get("user_api") == "blas"}))
    head = [f"Machine: {machine.get('cpus', '?')} cores, float64 matmul {machine.get('matmul_gflops_float64', 0):.0f} "
            f"GFLOP/s (1 thread), BLAS {blas or '?'}, measured {machine.get('date', '?')} "
            "(full table and profiles: benchmarks/RESULTS.md).", "",
            "| benchmark | case | threads | ratio (x faster than baseline) | target | met |", "|---|---|---|---|---|---|"]
    match = [r for r in rows if _is_match(r)]
    rows = [r for r in rows if not _is_match(r)]
    for r in rows:
        keep = r.get("target") is not None or r["group"].startswith(("barrier", "end to end"))
        if not keep:
            continue
        ratio, target = r.get("ratio"), r.get("target")
        met = "" if target is None or ratio is None else ("yes" if ratio >= target else "**no**")
        extra = f" ({100 * r['frac_of_matmul']:.0f}% of matmul)" if "frac_of_matmul" in r else ""
        if "trainings_per_s" in r:
            extra = f"{r['trainings_per_s']:.2f} trainings/s"
        ratio_txt = (f"{ratio:.2f}" if ratio is not None else "") + extra
        tgt = "" if target is None else (f">= {target:g}x" if target >= 1 else f"within {1 / target:.2g}x")
        head.append(f"| {r['group']} | {r['case']} | {r.get('threads', '')} | {ratio_txt} | {tgt} | {met} |")
    if match:
        worst = max(match, key=lambda r: r["tsim_s"] / r["base_s"])
        n_met = sum(r["tsim_s"] <= r["base_s"] for r in match)
        head.append(f"| {MATCH_GROUP} | {n_met} of {len(match)} costs, worst {worst['case']} | 1 | "
                    f"{worst['base_s'] / worst['tsim_s']:.2f} (worst) | >= 1x | {'yes' if n_met == len(match) else '**no**'} |")
    return "\n".join(head)


def update_readme(text: str, path: Path = README) -> bool:
    """Replace the README's text between the bench-table markers; False if the markers are absent."""
    if not path.exists():
        return False
    doc = path.read_text()
    a, b = doc.find(MARK_START), doc.find(MARK_END)
    if a < 0 or b < a:
        return False
    path.write_text(doc[:a + len(MARK_START)] + "\n" + text + "\n" + doc[b:])
    return True


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ratios", nargs="?", default=str(HERE / "data" / "ratios.json"))
    ap.add_argument("--bench-json", nargs="*", default=[])
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--no-readme", action="store_true", help="do not update the table in README.md")
    args = ap.parse_args(argv)
    data = json.loads(Path(args.ratios).read_text())
    rows = data["results"]
    for f in args.bench_json:
        rows += _rows_from_bench_json(Path(f))
    order = ["population", "sample GD", "sample SGD", "ensemble", "weight matching", "barrier", "end to end"]
    rows.sort(key=lambda r: (next((i for i, o in enumerate(order) if r["group"].startswith(o)), 99), r["group"]))
    png = HERE / "data" / "ratios.png"
    main_rows = [r for r in rows if not _is_match(r)]  # the matching rows get their own section
    plot(main_rows, png)
    out = Path(args.out)
    text = ["# Benchmark results", "",
            "Generated by `python benchmarks/render.py` from the latest "
            "`pytest benchmarks --benchmark-enable --benchmark-only` run. Ratios are baseline time / tsim time, "
            "measured side by side in one process; times are best-of-N wall times on the machine below.", "",
            "## Machine", "", machine_text(data.get("machine", {})), "", "## Ratios", "", table(main_rows), "",
            f"![ratios](data/{png.name})", ""]
    text += matching_section(rows)
    extra = HERE / "notes.md"
    if extra.exists():
        text += ["## Notes", "", extra.read_text()]
    out.write_text("\n".join(text))
    if not args.no_readme:
        update_readme(readme_table(rows, data.get("machine", {})))
    return out


if __name__ == "__main__":
    print(main())
