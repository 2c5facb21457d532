"""A sweep killed with SIGKILL resumes to the numbers of an uninterrupted run; two sweeps on one folder.

No timing windows: the sweep runs in a child process (the ``tsim run`` command line) whose cell
routine or store commit is wrapped so that it stops at a chosen point (after k committed cells, or
inside the transaction of cell k + 1, rows written but not committed) and says so on stdout. The test
then acts on a process that is known to be there and mid-sweep: it kills it with SIGKILL, or starts a
second sweep on the same folder and then lets the first one go on.
"""
from __future__ import annotations

import os
import select
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
from tsim.sweep.store import Store, status_text

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

TIMEOUT = 60.0  # seconds any one step may take before the test fails (never reached when healthy)
K = 3           # cells committed before the sweep is stopped

# 8 cells of a few hundredths of a second each
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
steps = 5000
tol = 0.0
[sweep]
pairs = 1
grid = 11
[output]
plots = []
"""

PAUSED = "TSIM-TEST-PAUSED"

# The child: `tsim run CONFIG --out OUT` with one hook. phase "cell": the (k+1)-th cell routine stops
# before computing; phase "commit": the (k+1)-th store.record stops just before its COMMIT. It prints
# PAUSED and waits for a line on stdin (then goes on), or for the signal that ends it.
CHILD = r"""
import sys
from tsim.cli import main
import tsim.sweep.run as run
from tsim.sweep.store import Store

cfg, out, phase, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = {"cell": 0, "commit": 0}


def pause():
    print("%s", flush=True)
    sys.stdin.readline()


real_cell = run.run_cell


def run_cell(cell):
    calls["cell"] += 1
    if phase == "cell" and calls["cell"] == k + 1:
        pause()
    return real_cell(cell)


real_record = Store.record


def record(self, *args, **kwargs):
    calls["commit"] += 1
    if phase == "commit" and calls["commit"] == k + 1:
        con = self.con

        class PauseBeforeCommit:
            def execute(self, sql, *a):
                if sql.strip().upper() == "COMMIT":
                    pause()
                return con.execute(sql, *a)

            def __getattr__(self, name):
                return getattr(con, name)

        self.con = PauseBeforeCommit()
        try:
            return real_record(self, *args, **kwargs)
        finally:
            self.con = con
    return real_record(self, *args, **kwargs)


run.run_cell = run_cell
Store.record = record
sys.exit(main(["run", cfg, "--out", out, "--no-progress", "--workers", "1"]))
""" % PAUSED


def config():
    return from_dict(tomllib.loads(CONFIG))


def start(tmp_path: Path, out: Path, phase: str, k: int = K) -> subprocess.Popen:
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(CONFIG)
    return subprocess.Popen([sys.executable, "-c", CHILD, str(cfg), str(out), phase, str(k)], bufsize=0,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_paused(proc: subprocess.Popen) -> None:
    """Block until the child reports it stopped at its hook (bounded by TIMEOUT)."""
    deadline = time.monotonic() + TIMEOUT
    seen = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 4096)
            seen += chunk
            if PAUSED.encode() in seen:
                return
            if not chunk:  # the child ended without reaching its hook
                break
        elif proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate(timeout=TIMEOUT)
    raise AssertionError(f"the sweep never reached its pause point (exit {proc.returncode}):\n{err.decode()}")


def finished(out: Path) -> dict:
    """{key: finished timestamp} of the done cells (read-only; the sweep may hold a write transaction)."""
    with Store(out, readonly=True) as st:
        return dict(st._query("SELECT key, finished FROM cells WHERE status = 'done'"))


def same_results(df: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Bit-identical rows; code_version (commit and dirty flag, read by each process) is not a result."""
    assert df["code_version"].notna().all()
    pd.testing.assert_frame_equal(df.drop(columns="code_version"), reference.drop(columns="code_version"),
                                  check_exact=True)


def n_rows(out: Path) -> int:
    with Store(out, readonly=True) as st:
        return st._query("SELECT COUNT(*) FROM rows")[0][0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sweep."""
    return run_sweep(config(), tmp_path_factory.mktemp("whole"), progress=False)


@pytest.mark.parametrize("phase", ["cell", "commit"])
def test_sigkill_mid_sweep_then_rerun_equals_uninterrupted(tmp_path, reference, phase):
    cfg = config()
    keys = [c.key for c in cells(cfg)]
    assert K < len(keys)
    out = tmp_path / "killed"
    proc = start(tmp_path, out, phase)
    try:
        wait_paused(proc)
        # the child is alive, K cells are committed; in phase "commit" cell K + 1's rows are written
        # into an open transaction that readers do not see
        assert len(finished(out)) == K and n_rows(out) == K
        assert "running (pid" in status_text(out)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=TIMEOUT) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    before = finished(out)
    assert len(before) == K and n_rows(out) == K  # every committed cell kept, no partial cell
    status = status_text(out)
    assert f"{K} done" in status and f"{len(keys) - K} pending" in status and "interrupted" in status

    resumed = run_sweep(cfg, out, progress=False)
    after = finished(out)
    assert set(after) == set(keys)
    assert {k: after[k] for k in before} == before  # finished cells were not computed again
    assert resumed["key"].tolist() == keys  # every cell exactly once (pairs = 1)
    assert n_rows(out) == len(keys)
    same_results(resumed, reference)  # bit-identical numbers


def test_two_sweeps_on_one_folder(tmp_path, capsys, reference):
    out = tmp_path / "shared"
    first = start(tmp_path, out, "cell", k=1)
    try:
        wait_paused(first)  # the first sweep holds the folder, one cell done
        # the second sweep, started in this process while the first runs, is refused with one clear line
        code = main(["run", str(tmp_path / "sweep.toml"), "--out", str(out), "--no-progress"])
        assert code == 2
        err = capsys.readouterr().err
        assert "another tsim sweep is writing into" in err and f"pid {first.pid}" in err
        assert err.count("\n") == 1
        assert "running (pid" in status_text(out)
        assert first.poll() is None  # the refusal did not disturb the first sweep
        _, child_err = first.communicate(b"go\n", timeout=TIMEOUT)
        assert first.returncode == 0, child_err.decode()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=TIMEOUT)
    cfg = config()
    with Store(out, readonly=True) as st:
        df = st.rows(st.manifest())
    assert df["key"].tolist() == [c.key for c in cells(cfg)] and n_rows(out) == len(df)
    assert "8 done" in status_text(out) and "running" not in status_text(out)
    same_results(df, reference)
