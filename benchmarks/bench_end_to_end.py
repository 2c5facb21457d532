"""End to end: the default ``tsim run`` sweep (embedded tsim/configs/default.toml), trainings per second.

Runs the sweep in one process (workers=1; the kernels use the threads) and reports student
trainings per second and the wall time. Set TSIM_BENCH_QUICK=1 to run the ``--quick`` variant.
No baseline: this is the number to watch across versions.
"""
import os
import time
from importlib import resources

from tsim import config as tconfig
from tsim.sweep.run import run_sweep


def test_default_sweep(benchmark, record, tmp_path):
    quick = os.environ.get("TSIM_BENCH_QUICK", "0") == "1"
    with resources.as_file(resources.files("tsim").joinpath("configs/default.toml")) as path:
        cfg, _ = tconfig.load(path, quick=quick)
    t0 = time.perf_counter()
    df = benchmark.pedantic(lambda: run_sweep(cfg, tmp_path / "out", progress=False, workers=1), rounds=1,
                            iterations=1)
    wall = time.perf_counter() - t0
    trainings = 2 * len(df)
    assert trainings > 0 and df["loss_a"].notna().all()
    record("end to end: default sweep" + (" (quick)" if quick else ""), f"{len(df)} pairs, workers=1", wall,
           None, trainings=trainings, trainings_per_s=trainings / wall)
