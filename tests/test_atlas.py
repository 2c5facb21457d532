"""Rate atlas (study "atlas", experiments/rate_atlas.toml): regimes as data, the union grid, sampled
minima, the report table and figure, a planted rate recovered, unknown or unread fields refused."""
import json
import tomllib

import numpy as np
import pandas as pd
import pytest

import tsim
from tsim import cli
from tsim import config as C
from tsim.results.figures import atlas_fit, atlas_rates
from tsim.results.report import render
from tsim.studies import atlas
from tsim.sweep.grid import REGIME, cell_key, cells
from conftest import REPO

ATLAS = REPO / "experiments" / "rate_atlas.toml"
ANALYSIS = {"measures": ["power_law"], "group_by": ["regime", "d", "matching"], "y": "barrier", "fit_min_m": 4,
            "n_boot": 100}


def _raw(*regimes, **sections):
    raw = {"study": "atlas", "teacher": {"M": 2, "d": 4}, "student": {"m": [4, 8]},
           "train": {"steps": 20}, "sweep": {"pairs": 2, "grid": 5}, "align": {"methods": ["weight", "barrier"]},
           "analysis": dict(ANALYSIS)}
    raw.update(sections)
    if regimes:
        raw["regime"] = list(regimes)
    return raw


# ------------------------------------------------------------------------------ the experiment
def test_atlas_config_covers_the_required_grid():
    full, _ = C.load(ATLAS)
    quick, _ = C.load(ATLAS, quick=True)
    regs = dict(full.regimes)
    cfgs = list(regs.values())
    assert {r.student.scale for r in cfgs} == {"1", "1/m"}
    assert {r.train.method for r in cfgs if r.atlas.source == "trained"} == {"population", "gd", "sgd"}
    assert {r.train.noise > 0 for r in cfgs if r.train.method != "population"} == {True, False}
    assert {r.teacher.inputs for r in cfgs} == {"gaussian", "sphere"}
    assert {r.teacher.kind for r in cfgs} == {"orthonormal", "random"}
    assert {r.student.train_a for r in cfgs if r.atlas.source == "trained"} == {True, False}
    assert len({(r.student.sigma0, r.student.init_exponent) for r in cfgs if r.atlas.source == "trained"}) >= 2
    assert {r.atlas.minima for r in cfgs if r.atlas.source == "minima"} == {"uniform", "dense", "sparse"}
    assert set(full.align.methods) >= {"weight", "activation", "barrier"}
    widths = [c.config.student.m for c in cells(full)]
    assert max(widths) == 512 and len({c.config.teacher.d for c in cells(full)}) == 2
    assert full.sweep.pairs >= 10 and quick.sweep.pairs < full.sweep.pairs
    assert [n for n, _ in quick.regimes] == [n for n, _ in full.regimes]  # --quick keeps every regime


def test_quick_atlas_runs_end_to_end_and_the_report_shows_every_regime(tmp_path):
    out = tmp_path / "atlas"
    summary = cli.run(str(ATLAS), str(out), quick=True, progress=False)
    df = pd.read_csv(out / "results.csv")
    names = [n for n, _ in C.load(ATLAS, quick=True)[0].regimes]
    assert list(dict.fromkeys(df["regime"])) == names
    assert set(df["matching"]) == {"weight", "activation", "barrier"}
    assert {"barrier", "zero_exists", "hall_slack", "source", "m", "d", "pair"} <= set(df.columns)
    groups = summary["measured"]["groups"]
    assert {(g["group"]["regime"], g["group"]["matching"]) for g in groups} == \
        {(n, m) for n in names for m in ("weight", "activation", "barrier")}
    # barrier-aware is never worse than weight matching on the same pairs
    piv = df.pivot_table(index=["regime", "d", "m", "pair"], columns="matching", values="barrier")
    assert (piv["barrier"] <= piv["weight"] + 1e-12).all()
    # sampled minima: existence is the Hall condition, and then barrier-aware matching reaches 0
    mins = df[(df["source"] == "minima") & (df["matching"] == "barrier")]
    assert (mins["zero_exists"] == (mins["hall_slack"] >= 0)).all()
    assert (mins.loc[mins["zero_exists"] == 1, "barrier"] <= 1e-12).all()
    assert (out / "atlas_rates.png").stat().st_size > 10_000
    page = render([out]).read_text()
    table = page.split("#### Decay exponents", 1)[1].split("####", 1)[0]
    for name in names:
        assert f"| {name} | WM |" in table and f"| {name} | barrier-aware |" in table
    assert "CI holds 0.5" in table and "the two d agree" in table and "alpha [95% CI], d = 4" in table
    assert "zero-barrier permutation exists" in page and "Which matching decides the rate" in page
    assert "![atlas_rates.png](atlas_rates.png)" in page


# ------------------------------------------------------------------------------ a planted rate
def _planted(path, alpha=0.5, pairs=12, seed=0):
    """A fake atlas run folder: a planted C m^-alpha regime, an all-zero one, a diverged one and one
    with two widths only."""
    rng = np.random.default_rng(seed)
    ms = [16, 32, 64, 128, 256, 512]
    rows = []
    for d in (8, 32):
        for p in range(pairs):
            scale = np.exp(0.2 * rng.standard_normal())
            for m in ms:
                noise = scale * np.exp(0.2 * rng.standard_normal())
                base = {"pair": p, "m": m, "d": d, "M": 4, "source": "trained", "status_a": "max_steps",
                        "status_b": "max_steps", "zero_exists": 0.0}
                for meth in ("weight", "barrier"):
                    rows.append({**base, "regime": "planted", "matching": meth, "loss_a": 1e-9, "loss_b": 3e-9,
                                 "barrier": 0.3 * m ** -alpha * noise * (1 + 0.05 * (meth == "weight"))})
                    rows.append({**base, "regime": "slow_train", "matching": meth, "loss_a": 1e-9 * m,
                                 "loss_b": 1e-9 * m, "barrier": 1e-4 * m ** -alpha * noise})
                    rows.append({**base, "regime": "slow_small", "matching": meth, "loss_a": 1e-12 * m,
                                 "loss_b": 1e-12 * m, "barrier": 1e-4 * m ** -alpha * noise})
                    rows.append({**base, "regime": "all_zero", "matching": meth, "barrier": 0.0, "zero_exists": 1.0})
                    rows.append({**base, "regime": "wm_only", "matching": meth, "zero_exists": 1.0,
                                 "barrier": 0.3 * m ** -alpha * noise if meth == "weight" else 0.0})
                    rows.append({**base, "regime": "diverged", "matching": meth, "barrier": np.nan,
                                 "status_a": "diverged", "zero_exists": np.nan})
                    if m in (16, 32):
                        rows.append({**base, "regime": "two_widths", "matching": meth, "barrier": 1e-3 / m})
    path.mkdir()
    pd.DataFrame(rows).to_csv(path / "results.csv", index=False)
    cfg = {"study": "atlas", "analysis": {**ANALYSIS, "fit_min_m": 16, "n_boot": 500}, "sweep": {"seed": 0},
           "teacher": {"M": 4, "d": [8, 32]}}
    (path / "summary.json").write_text(json.dumps({"study": "atlas", "config": cfg, "figures": [],
                                                   "measured": {"rows": len(rows)}}))
    return pd.DataFrame(rows)


def test_planted_half_rate_is_recovered_within_its_ci(tmp_path):
    df = _planted(tmp_path / "run")
    for d in (8, 32):
        f = atlas_fit(df[(df["regime"] == "planted") & (df["matching"] == "weight") & (df["d"] == d)], 16, 500)
        assert f["alpha_ci"][0] <= 0.5 <= f["alpha_ci"][1] and abs(f["alpha"] - 0.5) < 0.1
    assert "every barrier is 0" in atlas_fit(df[df["regime"] == "all_zero"], 16, 100)["error"]
    assert "no finite barrier" in atlas_fit(df[df["regime"] == "diverged"], 16, 100)["error"]
    assert "2 widths" in atlas_fit(df[df["regime"] == "two_widths"], 16, 100)["error"]
    page = render([tmp_path / "run"]).read_text()
    row = next(line for line in page.splitlines() if line.startswith("| planted | WM |"))
    assert row.endswith("| yes | yes |")  # the CI holds 1/2 in both d, and the two d agree
    assert "**Rate 1/2**: the CI holds 0.5 in planted / WM (d = 8, 32)" in page
    assert "| all_zero | WM | no fit: every barrier is 0" in page
    assert "| two_widths | WM | no fit: 2 widths with a positive mean barrier" in page
    assert "| diverged | WM | no fit: no finite barrier" in page
    assert "every WM and barrier-aware barrier is 0: no rate to decide" in page
    assert ("wm_only: d = 8: at the largest width barrier-aware matching reaches 0 in every pair, WM does not "
            "(WM decays with alpha = 0.") in page and "the WM barrier and its rate are the matching's" in page
    assert "(m = 512: a zero-barrier permutation exists in 12/12, WM reaches 0 in 0/12" in page
    # endpoint losses: constant in planted, 32x from m = 16 to 512 in slow_train (flagged: 5e-7 at m = 512
    # is > 1% of its barrier) and slow_small (not flagged: 5e-10 is < 1% of it), planted not
    assert next(line for line in page.splitlines() if line.startswith("| planted |")).endswith("| 2e-09 -> 2e-09 |")
    less = next(line for line in page.splitlines() if line.startswith("- **Less converged at large m**"))
    assert "slow_train (1.6e-08 -> 5.12e-07" in less and "planted" not in less and "slow_small" not in less
    files = atlas_rates(df, tmp_path)
    assert files[0].stat().st_size > 10_000


# ------------------------------------------------------------------------------ the config
def test_regimes_make_a_union_grid_with_distinct_keys():
    cfg = C.from_dict(_raw({"name": "a"}, {"name": "b", "student": {"m": [4, 8, 16]}},
                           {"name": "c", "atlas": {"source": "minima", "minima": "dense"}}))
    pts = C.grid(cfg)
    assert len(pts) == 2 + 3 + 2 and [p[REGIME] for p in pts] == ["a"] * 2 + ["b"] * 3 + ["c"] * 2
    cs = cells(cfg)
    assert len({c.key for c in cs}) == len(cs)
    assert cs[-1].config.atlas.source == "minima" and cs[-1].config.regimes == () and cs[-1].config.axes == ()
    assert cs[0].config.atlas.regime == "a" and cs[4].config.student.m == 16
    assert [r["atlas"]["regime"] for r in cfg.to_dict()["regime"]] == ["a", "b", "c"]
    lmc = C.from_dict({"student": {"m": 4}})
    assert "atlas" not in lmc.to_dict() and cell_key(lmc) == cell_key(C.resolve(lmc, {}))  # other studies unchanged


def test_quick_applies_on_top_of_every_regime():
    raw = _raw({"name": "a", "train": {"steps": 500}}, {"name": "b"}, quick={"train": {"steps": 7}})
    assert [r.train.steps for _, r in C.from_dict(raw).regimes] == [500, 20]
    assert [r.train.steps for _, r in C.from_dict(raw, quick=True).regimes] == [7, 7]


@pytest.mark.parametrize("regime,field,words", [
    ({"name": "x", "trian": {"lr": 0.1}}, "regime.trian", "unknown key regime.trian in [[regime]] 'x'. Allowed "
                                                          "keys in a [[regime]]: name, teacher, student, train"),
    ({"name": "x", "train": {"lrr": 0.1}}, "regime.x.train.lrr", "[[regime]] 'x': unknown key train.lrr. Allowed "
                                                                 "keys in [train]:"),
    ({"name": "x", "train": {"lr": -1.0}}, "regime.x.train.lr", "[[regime]] 'x': train.lr must be a float > 0"),
    ({"train": {"lr": 0.1}}, "regime.name", "give each [[regime]] a name"),
    ({"name": "x", "sweep": {"pairs": 3}}, "regime.sweep", "sweep, output and analysis are shared"),
])
def test_bad_regime_is_rejected_naming_the_field(regime, field, words):
    with pytest.raises(C.ConfigError) as err:
        C.from_dict(_raw(regime))
    assert err.value.field == field
    assert words.lower() in str(err.value).lower()


@pytest.mark.parametrize("raw,field,words", [
    (_raw({"name": "mins", "atlas": {"source": "minima"}, "train": {"lr": 0.1}}), "regime.mins.train.lr",
     "[[regime]] 'mins' sets train.lr, which it does not read"),
    (_raw({"name": "dense", "atlas": {"source": "minima", "minima": "dense", "r": 0.3}}), "regime.dense.atlas.r",
     "zero probability of \"sparse\" minima"),
    (_raw({"name": "pop", "train": {"noise": 0.1}}), "regime.pop.train.noise", "train.method = 'population'"),
    (_raw({"name": "a"}, align={"methods": ["weight"], "k": 4}), "align.k",
     "align.k is not read by any regime of study"),
    (_raw({"name": "a"}, train={"batch": 8}), "train.batch", "(regime 'a': train.method = 'population')"),
    (_raw({"name": "a", "train": {"lr": [0.1, 0.2]}}), "train.lr", "cannot be swept in study = \"atlas\""),
    (_raw({"name": "a"}, analysis={**ANALYSIS, "group_by": ["regime", "d"]}), "analysis.group_by",
     "analysis.group_by [\"regime\", \"d\", \"matching\"]"),
    (_raw({"name": "s", "teacher": {"inputs": "sphere"}}, align={"methods": ["activation"]}), "align.n_act",
     "align.n_act = 4096"),
    (_raw({"name": "t"}, {"name": "m", "atlas": {"source": "minima"}, "student": {"m": [1, 2]}}),
     "student.m", "student.m must be >= teacher.M (2) for sampled global minima"),
    ({"atlas": {"source": "minima"}}, "atlas", "the [atlas] table applies to study = \"atlas\" only"),
    ({"regime": [{"name": "a"}]}, "regime", "[[regime]] tables apply to study = \"atlas\" only"),
])
def test_unread_or_misplaced_fields_are_errors(raw, field, words):
    with pytest.raises(C.ConfigError) as err:
        C.from_dict(raw)
    assert err.value.field == field
    assert words in str(err.value)


def test_cli_names_a_bad_regime_in_one_line(tmp_path, capsys):
    text = ATLAS.read_text() + '\n[[regime]]\nname = "typo"\n[regime.train]\nlrr = 1.0\n'
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert tomllib.loads(text)["regime"][-1]["train"]["lrr"] == 1.0
    assert cli.main(["run", str(bad), "--quick", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[[regime]] 'typo'" in err and "unknown key train.lrr" in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ sampled minima
def test_sampled_minimum_matches_theory_and_is_a_global_minimum():
    minima = pytest.importorskip("theory.minima")
    for r in (0.0, 0.3):
        A, types = atlas.sample_minimum(tsim.Teacher.orthonormal(3, 5), 9, np.random.default_rng(4), r)
        B = minima.sample_minimum(9, 3, 5, np.random.default_rng(4), r)
        assert np.array_equal(A.W, B.W) and np.array_equal(A.a, B.a) and np.array_equal(types > 0, B.W.any(axis=1))
    T = tsim.Teacher.random(3, 6, seed=2)
    for inputs in ("gaussian", "sphere"):
        for c in (1.0, 1.0 / 10):
            S, types = atlas.sample_minimum(T, 10, np.random.default_rng(1), 0.25, c=c, a0=2.0)
            assert tsim.population_loss(S, T, inputs) < 1e-12 and set(types[types > 0]) == {1, 2, 3}
    with pytest.raises(ValueError, match="c \\* a0 > 0"):
        atlas.sample_minimum(T, 10, np.random.default_rng(1), c=1.0, a0=-1.0)
    for kind in ("uniform", "dense", "sparse"):
        assert atlas.zero_probability(kind, 4, 0.3) == minima.atlas_r(kind, 4, 0.3)
    assert atlas.zero_probability("uniform", 4, 0.5) == pytest.approx(0.2)
    assert atlas.zero_probability("dense", 4, 0.5) == 0.0 and atlas.zero_probability("sparse", 4, 0.5) == 0.5


def test_minima_regime_is_reproducible_and_trains_nothing(monkeypatch):
    cfg = C.from_dict(_raw({"name": "u", "atlas": {"source": "minima", "minima": "uniform"}}, train={}))
    cell = C.resolve(cfg, C.grid(cfg)[1])
    monkeypatch.setattr(atlas, "trained_pairs", lambda *a, **k: pytest.fail("a minima regime trained students"))
    a, b = pd.DataFrame(atlas.run(cell, range(2))), pd.DataFrame(atlas.run(cell, range(2)))
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    assert set(a["status_a"]) == {"sampled"} and (a["loss_a"].abs() < 1e-14).all()
