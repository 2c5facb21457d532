"""Each LMC-theory experiment runs from its config with --quick and writes data, figures and a
machine-readable summary with the measured numbers."""
import json

import pandas as pd
import pytest

from tsim import cli
from tsim.config import grid, load, resolve
from conftest import REPO

EXPERIMENTS = {
    "width_double_descent": ("extrema", "power_law"),
    "rate": ("power_law",),
    "lr_sparsity": ("transition",),
}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_full_and_quick_configs_validate(name):
    full, _ = load(REPO / "experiments" / f"{name}.toml")
    quick, _ = load(REPO / "experiments" / f"{name}.toml", quick=True)
    assert set(EXPERIMENTS[name]) <= set(full.analysis.measures)
    assert full.sweep.pairs >= 10 and quick.sweep.pairs < full.sweep.pairs


def test_width_config_spans_the_required_grid():
    cfg, _ = load(REPO / "experiments" / "width_double_descent.toml")
    cells = [resolve(cfg, p) for p in grid(cfg)]
    ms = {c.student.m for c in cells}
    Ms = {c.teacher.M for c in cells}
    assert len(Ms) >= 2 and max(ms) >= 512
    for M in Ms:
        assert set(range(1, 3 * M + 1)) <= ms
        assert {4 * M, 16 * M} <= {c.teacher.d for c in cells if c.teacher.M == M}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_run_writes_data_figures_summary(tmp_path, name):
    out = tmp_path / name
    assert cli.main(["run", str(REPO / "experiments" / f"{name}.toml"), "--quick", "--out", str(out),
                     "--no-progress"]) == 0
    df = pd.read_csv(out / "results.csv")
    s = json.loads((out / "summary.json").read_text())
    groups = s["measured"]["groups"]
    assert groups and all(set(EXPERIMENTS[name]) <= set(g) for g in groups)
    for f in s["figures"]:
        assert (out / f).stat().st_size > 1000
    if name == "lr_sparsity":
        assert {"method", "lr", "sparse_a", "status_a"} <= set(df.columns)
        for g in groups:  # the grid reaches divergence, which is located with an interval
            div = g["divergence"]
            assert div["hi"] is not None and (div["lo"] is None or div["lo"] < div["hi"])
        assert df.loc[df["status_a"] == "diverged", "barrier_wm"].isna().all()
    else:
        fits = [g["power_law"] for g in groups]
        assert all(("alpha" in f and f["alpha_ci"][0] <= f["alpha"] <= f["alpha_ci"][1]) or "error" in f
                   for f in fits)
        assert any("alpha" in f for f in fits)
