"""The Dask path: a small sweep on a LocalCluster of 2 workers gives the local runner's table."""
from __future__ import annotations

import pandas as pd
import pytest

from tsim.config import from_dict
from tsim.sweep import run as sweep_run
from tsim.sweep.run import run_sweep
from tsim.sweep.store import status_text

pytest.importorskip("distributed")


def tiny(m):
    return from_dict(dict(study="lmc", teacher=dict(kind="orthonormal", M=2, d=4), student=dict(m=list(m)),
                          train=dict(method="population", lr=[0.05, 0.1], lr_unit="absolute", steps=80),
                          sweep=dict(pairs=2, grid=7), output=dict(plots=[])))


def test_dask_local_cluster_equals_local_runner(tmp_path):
    cfg = tiny((2, 3, 4))
    local = run_sweep(cfg, tmp_path / "local", progress=False, workers=1)
    # half the cells already there: Dask computes only the other half, into the same store
    run_sweep(tiny((2,)), tmp_path / "dask", progress=False, workers=1)
    dask = run_sweep(cfg, tmp_path / "dask", progress=False, workers=2, scheduler="local")
    pd.testing.assert_frame_equal(dask, local)
    assert "6 done" in status_text(tmp_path / "dask")


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(address, timeout):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr("distributed.Client", refuse)
    with pytest.raises(ValueError, match="cannot reach a Dask scheduler at --scheduler tcp://.*dask scheduler"):
        sweep_run.dask_client("tcp://127.0.0.1:1", 1)
