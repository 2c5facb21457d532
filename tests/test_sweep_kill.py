"""A sweep killed with SIGKILL resumes to the numbers of an uninterrupted run; two sweeps on one folder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from tsim.cli import main
from tsim.config import from_dict
from tsim.sweep.grid import cells
from tsim.sweep.run import run_sweep
from tsim.sweep.store import STORE, Store, status_text

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

# 8 cells of ~0.1-0.3 s each: slow enough to kill the sweep half way, fast enough for CI
CONFIG = """
study = "lmc"
[teacher]
kind = "orthonormal"
M = 3
d = 6
[student]
m = [3, 4, 5, 6, 7, 8, 9, 10]
[train]
method = "population"
lr = 0.05
lr_unit = "absolute"
steps = 60000
tol = 0.0
[sweep]
pairs = 1
grid = 11
[output]
plots = []
"""


def start(tmp_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(CONFIG)
    cmd = [sys.executable, "-m", "tsim.cli", "run", str(cfg), "--out", str(out), "--no-progress", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finished(out: Path) -> dict:
    """{key: finished timestamp} of the done cells, read while the sweep may be writing."""
    if not (out / STORE).exists():
        return {}
    try:
        with Store(out, readonly=True) as st:
            return dict(st._query("SELECT key, finished FROM cells WHERE status = 'done'"))
    except ValueError:  # the store is being created
        return {}


def wait_for(proc: subprocess.Popen, out: Path, n: int, timeout: float = 60.0) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        done = finished(out)
        if len(done) >= n or proc.poll() is not None:
            return done
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"no {n} cells finished in {timeout} s")


def test_sigkill_half_way_then_rerun_equals_uninterrupted(tmp_path):
    cfg = from_dict(tomllib.loads(CONFIG))
    keys = [c.key for c in cells(cfg)]
    out = tmp_path / "killed"
    proc = start(tmp_path, out)
    wait_for(proc, out, 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished(out)
    assert 3 <= len(before) < len(keys), "the sweep was not interrupted half way"
    assert "pending" in status_text(out) and f"{len(before)} done" in status_text(out)
    assert "interrupted" in status_text(out)

    resumed = run_sweep(cfg, out, progress=False)
    after = finished(out)
    assert set(after) == set(keys)
    assert {k: after[k] for k in before} == before  # finished cells were not computed again
    assert resumed["key"].tolist() == keys  # every cell exactly once (pairs = 1)
    reference = run_sweep(cfg, tmp_path / "whole", progress=False)
    pd.testing.assert_frame_equal(resumed, reference)


def test_two_sweeps_on_one_folder(tmp_path, capsys):
    out = tmp_path / "shared"
    first = start(tmp_path, out)
    wait_for(first, out, 1)
    # the second sweep, started in this process while the first runs, is refused with one clear line
    code = main(["run", str(tmp_path / "sweep.toml"), "--out", str(out), "--no-progress"])
    assert first.poll() is None, "the first sweep ended before the second could start"
    assert code == 2
    err = capsys.readouterr().err
    assert "another tsim sweep is writing into" in err and f"pid {first.pid}" in err
    assert err.count("\n") == 1
    assert "running (pid" in status_text(out)
    assert first.wait(timeout=60) == 0
    cfg = from_dict(tomllib.loads(CONFIG))
    with Store(out, readonly=True) as st:
        df = st.rows(st.manifest())
        n_rows = st._query("SELECT COUNT(*) FROM rows")[0][0]
    assert df["key"].tolist() == [c.key for c in cells(cfg)] and n_rows == len(df)
    assert "8 done" in status_text(out) and "running" not in status_text(out)
