"""The sweep store and runner: resume, failures, divergence, atomic cells, foreign files, collect."""
from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from tsim.cli import main
from tsim.config import from_dict
from tsim.sweep import run as sweep_run
from tsim.sweep import store as sweep_store
from tsim.sweep.grid import cells
from tsim.sweep.run import run_sweep
from tsim.sweep.store import STORE, Store, SweepLock, collect, read_results, status_text


def tiny(m=(2, 3, 4), lr=(0.05,), steps=60, pairs=1) -> dict:
    return dict(study="lmc", teacher=dict(kind="orthonormal", M=2, d=4),
                student=dict(m=list(m)), train=dict(method="population", lr=list(lr), lr_unit="absolute",
                                                    steps=steps),
                sweep=dict(pairs=pairs, grid=7), output=dict(plots=[]))


@pytest.fixture
def counted(monkeypatch):
    """run_cell wrapped to record which cells it computed."""
    seen = []
    real = sweep_run.run_cell

    def wrapper(cell):
        seen.append(cell.key)
        return real(cell)

    monkeypatch.setattr(sweep_run, "run_cell", wrapper)
    return seen


def test_rows_tagged_and_in_grid_order(tmp_path):
    cfg = from_dict(tiny(m=(3, 2), lr=(0.05, 0.1), pairs=2))
    df = run_sweep(cfg, tmp_path, progress=False)
    keys = [c.key for c in cells(cfg)]
    assert len(df) == len(keys) * 2
    assert df["key"].tolist() == [k for k in keys for _ in range(2)]
    assert df["m"].tolist() == [3, 3, 3, 3, 2, 2, 2, 2]
    assert df["lr"].tolist() == [0.05, 0.05, 0.1, 0.1] * 2
    assert df["pair"].tolist() == [0, 1] * 4
    assert (df["code_version"] == sweep_store.code_version()).all()
    # the export is the same table
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), df)


def test_rerun_computes_only_missing_cells(tmp_path, counted):
    first = run_sweep(from_dict(tiny(m=(2, 3))), tmp_path, progress=False)
    assert len(counted) == 2
    counted.clear()
    again = run_sweep(from_dict(tiny(m=(2, 3))), tmp_path, progress=False)
    assert counted == []
    pd.testing.assert_frame_equal(again, first)
    bigger = from_dict(tiny(m=(2, 3, 4)))
    df = run_sweep(bigger, tmp_path, progress=False)
    assert counted == [cells(bigger)[2].key]
    pd.testing.assert_frame_equal(df.iloc[:2], first)
    assert status_text(tmp_path).splitlines()[0].endswith("3 cells: 3 done (0 with diverged students), "
                                                          "0 failed, 0 pending; 3 rows stored")
    # going back to the smaller grid reuses everything and reports the extra cell as kept
    counted.clear()
    assert len(run_sweep(from_dict(tiny(m=(2, 3))), tmp_path, progress=False)) == 2 and counted == []
    assert "1 more cells from earlier configs" in status_text(tmp_path)
    assert len(read_results(tmp_path, every=True)) == 3


def test_failed_cell_is_recorded_and_sweep_goes_on(tmp_path, monkeypatch):
    real = sweep_run.run_cell

    def flaky(cell):
        if cell.config.student.m == 3:
            raise FloatingPointError("boom at m = 3")
        return real(cell)

    monkeypatch.setattr(sweep_run, "run_cell", flaky)
    cfg = from_dict(tiny())
    df = run_sweep(cfg, tmp_path, progress=False)
    assert sorted(df["m"]) == [2, 4]
    text = status_text(tmp_path)
    assert "2 done" in text and "1 failed" in text and "0 pending" in text
    assert "FloatingPointError: boom at m = 3" in text
    with Store(tmp_path, readonly=True) as st:
        trace = st._query("SELECT trace FROM cells WHERE status = 'failed'")[0][0]
    assert "flaky" in trace
    # the next run retries the failed cell only
    monkeypatch.setattr(sweep_run, "run_cell", real)
    df = run_sweep(cfg, tmp_path, progress=False)
    assert df["m"].tolist() == [2, 3, 4]
    assert "0 failed" in status_text(tmp_path)


def test_diverged_cell_is_finished_with_reason(tmp_path):
    df = run_sweep(from_dict(tiny(m=(2,), lr=(0.05, 80.0))), tmp_path, progress=False)
    assert df["status_a"].tolist() == ["max_steps", "diverged"]
    assert np.isnan(df["barrier_wm"].iloc[1]) and np.isfinite(df["barrier_wm"].iloc[0])
    assert "2 done (1 with diverged students)" in status_text(tmp_path)
    with Store(tmp_path, readonly=True) as st:
        assert st._query("SELECT reason FROM cells WHERE status = 'diverged'") == [
            ("2 of 2 students diverged",)]


def test_cell_write_is_atomic(tmp_path, monkeypatch):
    """A failure in the middle of writing a cell's rows leaves none of them."""
    cfg = from_dict(tiny(m=(2,), pairs=3))
    cell = cells(cfg)[0]
    rows = sweep_run.run_cell(cell)
    real = sweep_store.to_json
    calls = []

    def breaks_on_third_row(obj):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(obj)

    with Store(tmp_path) as st:
        st.register([cell], cfg.to_dict())
        monkeypatch.setattr(sweep_store, "to_json", breaks_on_third_row)
        with pytest.raises(OSError, match="disk full"):
            st.record(cell.key, rows)
        monkeypatch.setattr(sweep_store, "to_json", real)
        assert st.statuses() == {cell.key: "pending"}
        assert st.rows().empty
        assert st.record(cell.key, rows) == "done"
        assert len(st.rows()) == 3


def test_second_writer_is_refused(tmp_path):
    with SweepLock(tmp_path):
        with pytest.raises(ValueError, match="another tsim sweep is writing into .*pid"):
            run_sweep(from_dict(tiny()), tmp_path, progress=False)
    assert not (tmp_path / STORE).exists()
    assert len(run_sweep(from_dict(tiny()), tmp_path, progress=False)) == 3


@pytest.mark.parametrize("content", [b"not a database, just text\n" * 100, b"SQLite format 3\x00" + b"\xff" * 200])
def test_corrupt_store_gives_clear_error_and_is_left_alone(tmp_path, content, capsys):
    path = tmp_path / STORE
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{STORE}.*(not a tsim sweep store|cannot be read).*Nothing was"):
        run_sweep(from_dict(tiny()), tmp_path, progress=False)
    for fn in (status_text, read_results):
        with pytest.raises(ValueError, match=STORE):
            fn(tmp_path)
    assert main(["status", str(tmp_path)]) == 2
    assert main(["collect", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("tsim: error:") and STORE in e for e in err)
    assert path.read_bytes() == content


def test_foreign_sqlite_and_newer_schema_are_refused(tmp_path):
    path = tmp_path / STORE
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE photos (id INTEGER, name TEXT)")
        con.execute("INSERT INTO photos VALUES (1, 'cat')")
    con.close()
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"not a tsim sweep store \(tables \['photos'\]"):
        run_sweep(from_dict(tiny()), tmp_path, progress=False)
    assert path.read_bytes() == before

    other = tmp_path / "newer"
    run_sweep(from_dict(tiny(m=(2,))), other, progress=False)
    with sqlite3.connect(other / STORE) as con:
        con.execute("UPDATE meta SET value = '99' WHERE name = 'schema'")
    con.close()
    with pytest.raises(ValueError, match="newer tsim"):
        status_text(other)


def test_foreign_files_in_folder_are_untouched(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    mine = tmp_path / "results.csv"
    mine.write_text("a,b\n1,2\n")
    df = run_sweep(from_dict(tiny()), tmp_path, progress=False)
    assert len(df) == 3
    assert notes.read_text() == "my notes" and mine.read_text() == "a,b\n1,2\n"
    assert "left unchanged" in capsys.readouterr().err
    pd.testing.assert_frame_equal(read_results(tmp_path), df)


def test_collect_csv_and_parquet(tmp_path):
    df = run_sweep(from_dict(tiny(pairs=2)), tmp_path / "run", progress=False)
    for name in ("all.csv", "all.parquet"):
        to = collect(tmp_path / "run", tmp_path / name)
        back = pd.read_csv(to) if to.suffix == ".csv" else pd.read_parquet(to)
        pd.testing.assert_frame_equal(back, df)
    assert collect(tmp_path / "run") == tmp_path / "run" / "collected.csv"
    with pytest.raises(ValueError, match="must end in .csv or .parquet"):
        collect(tmp_path / "run", tmp_path / "x.xlsx")


def test_status_of_missing_or_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        status_text(tmp_path / "nope")
    with pytest.raises(ValueError, match="holds no sweep store.*tsim run --out"):
        status_text(tmp_path)


def test_pool_of_two_workers_equals_sequential(tmp_path):
    cfg = from_dict(tiny(m=(2, 3, 4, 5), pairs=2))
    seq = run_sweep(cfg, tmp_path / "seq", progress=False, workers=1)
    pool = run_sweep(cfg, tmp_path / "pool", progress=False, workers=2)
    pd.testing.assert_frame_equal(pool, seq)


def test_cli_run_with_every_cell_failed_exits_2(tmp_path, monkeypatch, capsys):
    def broken(cell):
        raise ZeroDivisionError("division by zero in the study")

    monkeypatch.setattr(sweep_run, "run_cell", broken)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('study = "lmc"\n[teacher]\nM = 2\nd = 4\n[student]\nm = [2, 3]\n[train]\nsteps = 20\n'
                   '[sweep]\npairs = 1\n[output]\nplots = []\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "no cell of the sweep finished; `tsim status" in capsys.readouterr().err
    text = status_text(tmp_path / "out")
    assert "2 failed" in text and text.count("ZeroDivisionError: division by zero in the study") == 2


# ---------------------------------------------------------------------- compile notices
def test_compile_notice_brackets_a_real_compilation_only():
    from numba import njit

    from tsim._kernels import compile_notice

    seen = []

    @njit
    def fresh(x):  # never compiled before: a real compilation
        return x + 1

    with compile_notice(lambda: seen.append("start"), lambda: seen.append("end")):
        fresh(1)
        fresh(2)  # already compiled: no event
    assert seen == ["start", "end"]


def test_cache_probe_says_cold_on_an_empty_cache_and_warm_after_a_run(tmp_path):
    import os
    import subprocess
    import sys

    import tsim
    from tsim._kernels import cache_is_cold

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    probe = "from tsim._kernels import cache_is_cold; print(cache_is_cold())"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    T = tsim.Teacher.orthonormal(2, 3)
    tsim.population_loss(tsim.TwoLayer(np.eye(3)[:2], np.ones(2)), T)  # compiles or loads, so the cache has it
    assert cache_is_cold() is False


def test_worker_bar_says_workers_compile_until_the_first_cell(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep_run, "cache_is_cold", lambda: True)
    run_sweep(from_dict(tiny(m=(2, 3))), tmp_path / "pool", progress=True, workers=2)
    err = capsys.readouterr().err
    assert "cells (workers compiling kernels, first run only)" in err
    assert err.rstrip().splitlines()[-1].lstrip("\r").split("\r")[-1].startswith("cells: 100%")
    monkeypatch.setattr(sweep_run, "cache_is_cold", lambda: False)
    run_sweep(from_dict(tiny(m=(2, 3, 4))), tmp_path / "warm", progress=True, workers=2)
    assert "compiling" not in capsys.readouterr().err
