"""End-to-end deep runs, config validation and lazy torch import."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tsim.cli import run as cli_run
from tsim.config import ConfigError, from_dict
from tsim.config.deep import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p for p in (ROOT / "experiments").glob("*.toml")
                     if tomllib.loads(p.read_text()).get("study") == "deep")
MNIST_ROOT = ROOT.parent / "shared" / "data" / "mnist"
TINY = {
    "study": "deep",
    "data": {"dataset": "teacher", "shape": [1, 6, 6], "n_train": 384, "n_test": 192, "classes": 3,
             "teacher_width": 16, "teacher_depth": 2},
    "model": {"arch": "mlp", "depth": 2, "base": 8, "width": [1, 2]},
    "train": {"epochs": 2, "batch": 64, "lr": 0.1},
    "match": {"grid": 3, "am_examples": 128},
    "sweep": {"pairs": 1},
    "run": {"device": "cpu", "threads": 1},
    "output": {"plots": ["barrier", "sparsity", "endpoints"]},
}


def run(raw, out, quick=False, device=None, progress=False):
    """A deep config through the one pipeline every study uses (tsim run)."""
    return cli_run(raw, str(out), quick=quick, device=device, progress=progress)


def test_import_tsim_does_not_import_torch():
    code = ("import sys, tsim, tsim.deep, tsim.config, tsim.cli, tsim.studies, tsim.results, tsim.deep.mnist; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_tiny_run_writes_outputs_and_is_deterministic(tmp_path):
    pytest.importorskip("torch")
    import pandas as pd

    s1 = run(TINY, tmp_path / "a", quick=False, device=None, progress=False)
    s2 = run(TINY, tmp_path / "b", quick=False, device="cpu", progress=False)
    df = pd.read_csv(tmp_path / "a" / "results.csv")
    assert len(df) == 2 and set(df["width"]) == {1.0, 2.0}
    for m in ("naive", "weight", "activation"):
        assert df[f"barrier_loss_{m}"].notna().all() and df[f"barrier_error_{m}"].notna().all()
    assert {"seed_a", "seed_b", "sparse_a", "test_error_a", "test_loss_b"} <= set(df.columns)
    # how every row was computed, read back from torch during the run
    assert (df["device"] == "cpu").all() and not df["amp_used"].any() and not df["tf32_train"].any()
    assert not df["tf32_eval"].any() and (df["eval_precision"] == "float32").all()
    assert (df["train_precision"] == "float32").all() and df["deterministic"].all()
    assert (df["amp_dtype"] == "bfloat16").all()
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["device"] == "cpu" and summary["rows"] == 2 and summary["seeds"]["pairs"] == 1
    assert summary["study"] == "deep" and summary["config"]["run"]["device"] == "cpu"
    assert summary["measured"]["cells"][0]["pairs"] == 1 and "torch" in summary["versions"]
    assert {"cuda", "cudnn", "gpu", "eval_precision", "process_tf32_matmul", "cublas_workspace_config"} \
        <= set(summary["versions"])
    # the summary states the training precision of the runs, as the rows do
    assert summary["versions"]["train_precision"] == "float32" and summary["versions"]["amp_used"] is False
    assert set(summary) >= {"config", "config_file", "quick", "versions", "seeds", "wall_time_s", "measured",
                            "figures"}  # the summary schema of every study
    for name in ("barrier.png", "sparsity.png", "endpoints.png"):
        assert (tmp_path / "a" / name).stat().st_size > 1000
    df2 = pd.read_csv(tmp_path / "b" / "results.csv")
    cols = [c for c in df.columns if c.startswith(("barrier_", "test_", "train_loss"))]
    pd.testing.assert_frame_equal(df[cols], df2[cols])
    assert s1["measured"]["cells"][0]["barrier_loss_weight_mean"] == \
        s2["measured"]["cells"][0]["barrier_loss_weight_mean"]


def test_rerun_resumes_from_the_store_and_recomputes_nothing(tmp_path):
    pytest.importorskip("torch")
    import pandas as pd

    from tsim.deep import study
    from tsim.sweep.store import Store

    out = tmp_path / "r"
    run(TINY, out)
    first = pd.read_csv(out / "results.csv")
    with Store(out, readonly=True) as st:
        assert set(st.statuses().values()) == {"done"} and len(st.statuses()) == 2
    calls = []
    orig = study.run_pair
    study.run_pair = lambda *a, **k: calls.append(a) or orig(*a, **k)
    try:
        run(TINY, out)
    finally:
        study.run_pair = orig
    assert calls == []  # every cell was already stored
    again = pd.read_csv(out / "results.csv")
    cols = [c for c in first.columns if c.startswith(("barrier_", "test_"))]
    pd.testing.assert_frame_equal(first[cols], again[cols])


@pytest.mark.skipif(not (MNIST_ROOT / "MNIST" / "raw").is_dir(), reason=f"real MNIST absent at {MNIST_ROOT}")
def test_quick_config_end_to_end_on_mnist(tmp_path):
    """experiments/mnist_width.toml under --quick, shrunk further through its own [quick] table."""
    pytest.importorskip("torch")
    raw = tomllib.loads((ROOT / "experiments" / "mnist_width.toml").read_text())
    raw["data"]["root"] = str(MNIST_ROOT)
    raw["quick"].update(data={"n_train": 1000, "n_test": 300}, model={"width": [1]},
                        train={"epochs": 3}, match={"grid": 3, "am_examples": 200}, sweep={"pairs": 1},
                        run={"threads": 1})
    summary = run(raw, tmp_path, quick=True, device="cpu", progress=False)
    assert summary["config"]["data"]["n_train"] == 1000 and summary["quick"] is True
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "summary.json").is_file()
    assert list(tmp_path.glob("*.png"))
    m = summary["measured"]["cells"][0]
    assert m["test_error_a_mean"] < 0.5  # it learned something
    assert m["barrier_loss_weight_mean"] < m["barrier_loss_naive_mean"]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
@pytest.mark.parametrize("quick", [False, True])
def test_experiment_configs_validate(path, quick):
    raw = tomllib.loads(path.read_text())
    cfg = from_dict(raw, quick=quick)
    assert cfg.axes and "quick" in raw
    assert cfg.to_dict()["study"] == "deep"


def test_three_deep_experiments_exist():
    assert {p.name for p in EXPERIMENTS} >= {"mnist_width.toml", "mnist_lr_sparsity.toml", "deep_archs.toml"}


def test_unknown_key_names_itself():
    with pytest.raises(ConfigError, match=r"unknown key model\.widht.*Allowed keys in \[model\]: arch") as e:
        from_dict({"study": "deep", "model": {"widht": 2}})
    assert e.value.field == "model.widht"
    with pytest.raises(ConfigError, match=r"unknown section \[modle\]"):
        from_dict({"study": "deep", "modle": {}})
    with pytest.raises(ConfigError, match=r"unknown key train\.lrr"):
        from_dict({"study": "deep", "quick": {"train": {"lrr": 0.1}}}, quick=True)


def _fields():
    for sec, cls in SECTIONS.items():
        for f in cls.__dataclass_fields__.values():
            yield sec, f


@pytest.mark.parametrize("sec,f", list(_fields()), ids=lambda x: getattr(x, "name", x))
def test_each_field_rejects_a_bad_value(sec, f):
    bad = f.metadata["rule"].bad_value()
    with pytest.raises(ConfigError) as e:
        from_dict({"study": "deep", sec: {f.name: bad}})
    assert e.value.field == f"{sec}.{f.name}" and f"{sec}.{f.name}" in str(e.value)


def test_cross_field_rules_and_sweep_rules():
    with pytest.raises(ConfigError, match="needs a \\(channels, height, width\\) input"):
        from_dict({"study": "deep", "data": {"dataset": "teacher", "shape": [64], "n_train": 10, "n_test": 10},
                   "model": {"arch": "resnet"}})
    with pytest.raises(ConfigError, match="cannot be swept"):
        from_dict({"study": "deep", "sweep": {"pairs": [1, 2]}})
    with pytest.raises(ConfigError, match=r"unknown section \[model\]"):
        from_dict({"study": "lmc", "model": {"arch": "mlp"}})  # the sections follow the study
    cfg = from_dict({"study": "deep", "train": {"lr": {"geomspace": [0.01, 1.0, 3]}}})
    assert cfg.axes[0][0] == "train.lr" and len(cfg.axes[0][1]) == 3


def test_bad_device_is_config_error(tmp_path):
    torch = pytest.importorskip("torch")
    from tsim.deep.study import resolve_device

    with pytest.raises(ConfigError, match="run.device"):
        resolve_device("tpu")
    assert resolve_device("auto") in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


def test_precision_and_device_are_in_every_cell_key():
    """Changing the device, amp, its dtype, TF32 or determinism gives another cell; workers does not."""
    from dataclasses import replace

    from tsim.sweep.grid import cells

    base = from_dict(TINY)
    variants = {"base": base, "cuda": replace(base, run=replace(base.run, device="cuda")),
                "amp": replace(base, train=replace(base.train, amp=True)),
                "fp16": replace(base, train=replace(base.train, amp=True, amp_dtype="float16")),
                "tf32": replace(base, run=replace(base.run, tf32=True)),
                "nondet": replace(base, run=replace(base.run, deterministic=False))}
    keys = {name: tuple(c.key for c in cells(cfg)) for name, cfg in variants.items()}
    assert len({k for ks in keys.values() for k in ks}) == 2 * len(variants)
    same = replace(base, sweep=replace(base.sweep, workers=4))
    assert tuple(c.key for c in cells(same)) == keys["base"]


def test_prepare_sets_the_cublas_workspace_before_cuda_work(monkeypatch):
    pytest.importorskip("torch")
    from tsim.deep import study
    from tsim.studies.deep import prepare

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cfg = prepare(from_dict(TINY), "cpu")
    assert cfg.run.device == "cpu" and "CUBLAS_WORKSPACE_CONFIG" not in __import__("os").environ
    monkeypatch.setattr(study, "resolve_device", lambda requested: "cuda")
    cfg = prepare(from_dict(TINY), "cuda")
    assert cfg.run.device == "cuda" and __import__("os").environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


TINY_TOML = """study = "deep"
[data]
dataset = "teacher"
shape = [1, 6, 6]
n_train = 128
n_test = 64
classes = 3
[model]
arch = "mlp"
depth = 1
base = 4
width = [1, 2]
[train]
epochs = 1
batch = 64
[match]
grid = 3
am_examples = 64
[sweep]
pairs = 1
[run]
device = "cpu"
threads = 1
[output]
plots = []
"""


def test_out_of_memory_fails_the_cell_with_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    from tsim.cli import main
    from tsim.deep import study
    from tsim.sweep.store import Store

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB. GPU 0 has a total "
                                          "capacity of 79 GiB.\nSee documentation for Memory Management")

    monkeypatch.setattr(study, "run_pair", oom)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tsim: error: no cell of the sweep finished")
    with Store(tmp_path / "out", readonly=True) as st:
        reasons = [r for _, _, r in st.failures()]
    assert len(reasons) == 2 and all("\n" not in r for r in reasons)
    assert all(r.startswith("ValueError: CUDA out of memory in cell (arch=mlp, width=") for r in reasons)
    assert all(r.endswith("(Tried to allocate 9.00 GiB): lower train.batch or model.width.") for r in reasons)


@pytest.mark.slow  # two spawned processes import torch: 10-20 s on a busy 2-core machine
def test_workers_2_runs_deep_cells_in_a_process_pool(tmp_path):
    """--workers 2 on a deep config: the cells run in two spawned processes, with the numbers of one process."""
    pytest.importorskip("torch")
    import pandas as pd

    from tsim.cli import main

    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    assert main(["run", str(config), "--out", str(tmp_path / "pool"), "--no-progress", "--workers", "2"]) == 0
    assert main(["run", str(config), "--out", str(tmp_path / "seq"), "--no-progress", "--workers", "1"]) == 0
    pool, seq = (pd.read_csv(tmp_path / d / "results.csv") for d in ("pool", "seq"))
    cols = [c for c in seq.columns if c.startswith(("barrier_", "test_", "train_loss", "key"))]
    assert len(pool) == 2
    pd.testing.assert_frame_equal(pool[cols], seq[cols])
