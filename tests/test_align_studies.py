"""The alignment studies end to end: each experiments/ config validates and its [quick] run writes
rows with the expected columns and its figures."""
import math
from pathlib import Path

import pandas as pd
import pytest

from tsim import config
from tsim.cli import run

REPO = Path(__file__).resolve().parents[1]

CONFIGS = {
    "trajectory.toml": ("barrier_single", "barrier_per_step", "barrier_naive", "step"),
    "three_networks.toml": ("simplex_weight", "kavg_weight", "shared_max_weight", "pairwise_max_weight"),
    "singular_vectors.toml": ("rank", "left_before", "left_after", "rel_dist_before", "rel_dist_after"),
    "methods.toml": ("barrier_weight", "barrier_activation", "barrier_ste", "barrier_optimal"),
    "pruning.toml": ("sparsity", "barrier_single", "barrier_per_step"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_quick_config_runs_end_to_end(name, tmp_path):
    cfg, _ = config.load(REPO / "experiments" / name)
    summary = run(str(REPO / "experiments" / name), str(tmp_path), quick=True, progress=False)
    df = pd.read_csv(tmp_path / "results.csv")
    assert len(df) > 0 and summary["measured"]["rows"] == len(df)
    for col in CONFIGS[name]:
        assert col in df.columns, col
    barriers = [c for c in df.columns if c.startswith(("barrier_", "simplex_", "kavg_")) and c != "barrier_optimal"]
    assert df[barriers].notna().all().all()
    for fig in cfg.output.plots:
        assert (tmp_path / f"{fig}.png").stat().st_size > 0
    if name == "methods.toml":  # assignments of WM and AM come certified; the report tabulates them
        assert df["certified_weight"].astype(bool).all() and df["certified_activation"].astype(bool).all()
        assert df["certified_ste"].isna().all()
        from tsim.results.report import render

        text = render([tmp_path], tmp_path / "report.md", samples=2).read_text()
        assert "### Alignment methods per width" in text
        n = int((df["m"] == df["m"].min()).sum())
        assert f"WM {n}/{n}, AM {n}/{n}" in text
    if "perm_step" in df:  # the single permutation is the per-step one at its own checkpoint
        own = df[df["step"] == df["perm_step"]]
        assert len(own) > 0 and all(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
                                    for a, b in zip(own["barrier_single"], own["barrier_per_step"]))


def test_align_section_rejects_bad_values():
    with pytest.raises(config.ConfigError, match="align.perm_at"):
        config.from_dict({"study": "trajectory", "align": {"checkpoints": 4, "perm_at": 4}})
    with pytest.raises(config.ConfigError, match="align.k"):
        config.from_dict({"study": "multi", "align": {"k": 1}})
    with pytest.raises(config.ConfigError, match="align.method"):
        config.from_dict({"study": "methods", "align": {"method": "magic"}})
    cfg = config.from_dict({"study": "pruning", "align": {"prune_levels": 3, "perm_at": 3}})
    assert cfg.align.perm_at == 3
