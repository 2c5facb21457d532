"""Interrupts, schedulers and damaged inputs: never a silent wrong result, never a hang.

Each case ends with one line naming the field or file and the fix, exit code 2 (130 for an interrupt),
no traceback, and leaves nothing behind that was not there before.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tsim import cli
from tsim.cli import main
from tsim.config import ConfigError, from_dict
from tsim.config import loader
from tsim.sweep import run as sweep_run
from tsim.sweep import store as sweep_store
from tsim.sweep.grid import cells
from tsim.sweep.run import attempt, interrupted, run_sweep
from tsim.sweep.store import EXPORT, LOCK, STORE, Store, repair_export, status_text

posix = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or not sys.platform.startswith("linux"),
                           reason="needs POSIX signals and /proc")

TINY = ('study = "lmc"\n[teacher]\nM = 2\nd = 4\n[student]\nm = [2, 3, 4]\n[train]\nsteps = 20\n'
        'lr_unit = "absolute"\nlr = 0.05\n[sweep]\npairs = 1\ngrid = 5\n[output]\nplots = []\n')

# cells of ~0.2-0.5 s, nearly all of it inside one Numba kernel (where a Ctrl-C turns into SystemError)
SLOW = """
study = "lmc"
[teacher]
M = 3
d = 6
[student]
m = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
[train]
lr = 0.05
lr_unit = "absolute"
steps = 60000
tol = 0.0
[sweep]
pairs = 1
grid = 5
[output]
plots = []
"""


def tiny(m=(2, 3, 4), steps=20) -> dict:
    return dict(study="lmc", teacher=dict(M=2, d=4), student=dict(m=list(m)),
                train=dict(steps=steps, lr_unit="absolute", lr=0.05), sweep=dict(pairs=1, grid=5),
                output=dict(plots=[]))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tsim: error: ") and "Traceback" not in err, err
    return lines[0]


def listing(folder: Path) -> dict:
    """{name: sha256} of every file in a folder (empty when it does not exist)."""
    if not folder.exists():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


# ---------------------------------------------------------------------- child processes
def start(tmp_path: Path, out: Path, *extra: str) -> subprocess.Popen:
    """`tsim run` on SLOW in a child process that handles SIGINT as a terminal's Ctrl-C would."""
    cfg = write(tmp_path / "slow.toml", SLOW)
    cmd = [sys.executable, "-m", "tsim.cli", "run", str(cfg), "--out", str(out), "--no-progress", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def done(out: Path) -> int:
    try:
        with Store(out, readonly=True) as st:
            return st.counts()["done"]
    except ValueError:  # no store yet
        return 0


def wait_for_cells(proc: subprocess.Popen, out: Path, n: int = 1, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended early: {proc.stderr.read()}")
        if done(out) >= n:
            return
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"no {n} cells finished in {timeout} s")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children of all its threads, recursively)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for t in tasks:
        try:
            kids = Path(f"/proc/{pid}/task/{t}/children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            found += [k] + descendants(k)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie is dead, waiting to be reaped


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def interrupt(proc: subprocess.Popen, timeout: float = 30.0) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the sweep did not stop after Ctrl-C")
    return proc.returncode, err, time.monotonic() - t0


def assert_interrupted(out: Path, rc: int, err: str) -> None:
    assert rc == 130, err
    assert err.strip().splitlines() == [
        "tsim: interrupted; finished cells are saved, run the same command again to resume."], err
    text = status_text(out)
    assert " 0 failed" in text and "pending" in text and not text.splitlines()[0].endswith(" 0 pending"), text


# ---------------------------------------------------------------------- 1. Ctrl-C
def test_keyboard_interrupt_wrapped_by_numba_is_an_interrupt(monkeypatch):
    """Numba reports a Ctrl-C inside a kernel as SystemError whose cause is the KeyboardInterrupt."""
    def kernel(cell):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("CPUDispatcher(<function _train_students>) returned a result with an exception "
                              "set") from ki

    monkeypatch.setattr(sweep_run, "run_cell", kernel)
    cell = cells(from_dict(tiny(m=(2,))))[0]
    with pytest.raises(KeyboardInterrupt):
        attempt(cell)
    try:
        kernel(cell)
    except SystemError as exc:
        assert interrupted(exc)
    assert not interrupted(ValueError("a plain failure"))


@posix
def test_ctrl_c_with_one_worker_stops_at_once_with_cells_saved(tmp_path):
    out = tmp_path / "seq"
    proc = start(tmp_path, out, "--workers", "1")
    wait_for_cells(proc, out, 2)
    rc, err, took = interrupt(proc)
    assert_interrupted(out, rc, err)
    assert took < 10, f"Ctrl-C took {took:.1f} s"


@posix
def test_ctrl_c_with_two_workers_kills_them_at_once(tmp_path):
    out = tmp_path / "pool"
    proc = start(tmp_path, out, "--workers", "2")
    wait_for_cells(proc, out, 1)
    kids = descendants(proc.pid)
    assert len(kids) >= 2, "no worker processes found"
    rc, err, took = interrupt(proc)
    assert_interrupted(out, rc, err)
    assert took < 10, f"Ctrl-C took {took:.1f} s"
    assert wait_gone(kids, 5) == []


# ---------------------------------------------------------------------- 5. orphans
@posix
def test_kill_9_of_the_main_process_takes_its_workers(tmp_path):
    out = tmp_path / "killed"
    proc = start(tmp_path, out, "--workers", "2")
    wait_for_cells(proc, out, 1)
    kids = descendants(proc.pid)  # two workers and the multiprocessing resource tracker
    assert len(kids) >= 2, "no worker processes found"
    proc.kill()
    proc.wait()
    assert wait_gone(kids) == [], "worker processes outlived the killed sweep"
    assert "interrupted" in status_text(out)


# ---------------------------------------------------------------------- 2. schedulers
@pytest.fixture
def silent_listener():
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()


def test_silent_scheduler_fails_within_the_timeout_and_leaves_nothing(tmp_path, silent_listener, capsys):
    pytest.importorskip("distributed")
    cfg, out = write(tmp_path / "t.toml", TINY), tmp_path / "out"
    t0 = time.monotonic()
    code = main(["run", str(cfg), "--out", str(out), "--no-progress", "--scheduler", silent_listener,
                 "--connect-timeout", "1"])
    took = time.monotonic() - t0
    assert code == 2 and took < 15, took
    line = one_line(capsys)
    assert f"cannot reach a Dask scheduler at --scheduler {silent_listener}: no answer within 1 s" in line
    assert "--connect-timeout" in line and "dask scheduler" in line
    assert not out.exists()


@pytest.mark.parametrize("address,why", [("notanaddress", "missing port number"), ("tcp://:8786", "no host"),
                                         ("tcp://127.0.0.1:1", "connection refused")])
def test_bad_scheduler_address_is_one_line(tmp_path, capsys, address, why):
    pytest.importorskip("distributed")
    cfg, out = write(tmp_path / "t.toml", TINY), tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--scheduler", address]) == 2
    line = one_line(capsys)
    assert address in line and why in line and ("--scheduler must be" in line or "cannot reach" in line)
    assert not out.exists()


def test_scheduler_failure_leaves_an_existing_folder_unchanged(tmp_path, silent_listener, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    run_sweep(from_dict(tiny(m=(2,))), out, progress=False)
    before = listing(out)
    cfg = write(tmp_path / "t.toml", TINY)  # a bigger grid: its cells must not be registered
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--scheduler", silent_listener,
                 "--connect-timeout", "0.5"]) == 2
    one_line(capsys)
    assert listing(out) == before
    assert "1 cells: 1 done" in status_text(out)


# ---------------------------------------------------------------------- 3. config input
BAD_CONFIGS = [
    ("[student]\nm = {range = [8, 2]}\n", "student.m", "lo <= hi"),
    ("[student]\nm = {range = [1.9, 3.9]}\n", "student.m", "whole numbers"),
    ("[train]\nlr = {logspace = [-3, 0, 1e12]}\n", "train.lr", "at most 100,000 values"),
    ("[train]\nlr = {linspace = [0.1, 1, 2.5]}\n", "train.lr", "whole n"),
    ("[student]\nm = {linspace = [1, inf, 3]}\n", "student.m", "finite"),
    ("[student]\nm = {range = [1, 10000]}\n[train]\nlr = {logspace = [-3, 0, 10000]}\n", "student.m",
     "the grid must have at most 100,000 cells; got 100,000,000"),
    ("[train]\nsteps = 1e20\n", "train.steps", "below 2**63"),
    ("[train]\nsteps = 100000000000\n", "train.steps", "memory"),
    ("[train]\nsteps = 10000000000\nrecord_every = 1000000\n", "train.steps", "multiply-adds"),
    ("[student]\nm = 1e10\n", "student.m", "memory"),
    ("[train]\ntol = nan\n", "train.tol", "must be a float >= 0; got nan"),
    ("[quick.train]\nlr = -1\n", "quick.train.lr", "train.lr must be a float > 0"),
]


@pytest.mark.parametrize("text,field,words", BAD_CONFIGS, ids=[b[1] + ":" + b[2][:12] for b in BAD_CONFIGS])
def test_bad_config_is_one_line_and_leaves_nothing(tmp_path, capsys, text, field, words):
    cfg, out = write(tmp_path / "bad.toml", text), tmp_path / "out"
    t0 = time.monotonic()
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert time.monotonic() - t0 < 10
    body = one_line(capsys).removeprefix("tsim: error: ")
    name = field.removeprefix("quick.")
    assert words in body and name in body and body.startswith((name, "the grid", "[quick]")), body
    if any(w in words for w in ("memory", "multiply-adds", "cells", "values")):
        assert body.endswith("or pass --force to run it anyway."), body
    with pytest.raises(ConfigError) as err:
        from_dict(loader.read_toml(cfg))
    assert err.value.field == field
    assert not out.exists()


def test_range_ends_are_whole_and_float_fields_take_linspace():
    cfg = from_dict({"student": {"m": {"range": [2.0, 4.0]}}})
    assert cfg.axes == (("student.m", (2, 3, 4)),)
    with pytest.raises(ConfigError, match=r"train.lr = \{range"):
        from_dict({"train": {"lr": {"range": [0.1, 0.5, 0.1]}}})


def test_size_guards_can_be_forced(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(loader, "MAX_CELLS", 2)
    with pytest.raises(ConfigError, match="the grid must have at most 2 cells; got 3"):
        from_dict(tiny())
    assert len(cells(from_dict(tiny(), force=True))) == 3
    cfg = write(tmp_path / "t.toml", TINY)
    assert main(["run", str(cfg), "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "--force" in one_line(capsys)
    assert main(["run", str(cfg), "--out", str(tmp_path / "b"), "--no-progress", "--force"]) == 0
    assert len(pd.read_csv(tmp_path / "b" / EXPORT)) == 3
    cell = from_dict({"student": {"m": 64}, "train": {"n_test": 10}})
    with pytest.raises(ConfigError, match=r"student.m: a cell must fit in this machine's memory \(1 KiB\); got about"):
        loader.check_cell_size(cell, ram=1024)
    with pytest.raises(ConfigError, match=r"train.steps: a cell must need at most 1e\+06 multiply-adds"):
        loader.check_cell_size(cell, max_work=1e6)
    loader.check_cell_size(cell)  # the default cell fits


def test_grid_is_counted_without_building_it(monkeypatch):
    built = []
    real = loader.resolve
    monkeypatch.setattr(loader, "resolve", lambda cfg, p: built.append(p) or real(cfg, p))
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="100,000,000"):
        from_dict({"student": {"m": {"range": [1, 10000]}}, "train": {"lr": {"logspace": [-3, 0, 10000]}}})
    assert time.monotonic() - t0 < 2 and built == []


def test_quick_table_is_validated_without_quick():
    with pytest.raises(ConfigError) as err:
        from_dict({"quick": {"student": {"m": 0}}})
    assert err.value.field == "quick.student.m"
    with pytest.raises(ConfigError, match="unknown section"):
        from_dict({"quick": {"studnet": {"m": 2}}})


# ---------------------------------------------------------------------- 8. paths
def test_config_path_that_is_not_a_file(tmp_path, capsys):
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "config must be a TOML file; got the folder" in one_line(capsys)
    if Path("/dev/null").exists():
        assert main(["run", "/dev/null", "--out", str(tmp_path / "o")]) == 2
        assert "config must be a regular TOML file; got '/dev/null', a character device" in one_line(capsys)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # never opened: reading it would wait forever
    assert main(["run", str(fifo), "--out", str(tmp_path / "o")]) == 2
    assert "a pipe" in one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_out_under_a_file_or_read_only(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path / "t.toml", TINY)
    (tmp_path / "plain").write_text("a file")
    assert main(["run", str(cfg), "--out", str(tmp_path / "plain" / "sub"), "--no-progress"]) == 2
    line = one_line(capsys)
    assert "--out must be a folder" in line and "which is a file" in line
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(sweep_store, "_read_only_fs", lambda p: Path(p) == ro)
    assert main(["run", str(cfg), "--out", str(ro / "x" / "y"), "--no-progress"]) == 2
    assert "--out must be on a writable file system" in one_line(capsys)
    assert list(ro.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting needs root")
def test_out_on_a_real_read_only_file_system(tmp_path, capsys):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        cfg = write(tmp_path / "t.toml", TINY)
        assert main(["run", str(cfg), "--out", str(mnt / "out"), "--no-progress"]) == 2
        assert "read-only file system" in one_line(capsys)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_lock_that_is_a_folder_and_a_damaged_manifest(tmp_path, capsys):
    cfg = write(tmp_path / "t.toml", TINY)
    out = tmp_path / "out"
    (out / LOCK).mkdir(parents=True)
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert f"{LOCK} must be tsim's lock file; got a folder" in one_line(capsys)
    (out / LOCK).rmdir()
    run_sweep(from_dict(tiny()), out, progress=False)
    for bad in ("{not json", "7"):
        with sqlite3.connect(out / STORE) as con:
            con.execute("UPDATE meta SET value = ? WHERE name = 'manifest'", (bad,))
        con.close()
        assert main(["status", str(out)]) == 2
        line = one_line(capsys)
        assert "the manifest must be a JSON list of cell keys" in line and STORE in line
    # tsim run rewrites the manifest
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "3 done" in status_text(out)


# ---------------------------------------------------------------------- 7. damaged stores
def damage(path: Path) -> bytes:
    data = bytearray(path.read_bytes())
    page = 4096
    data[page:3 * page] = bytes((i * 37 + 11) % 256 for i in range(2 * page))  # garbage pages 2-3
    path.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize("kind", ["garbage pages", "zero-length", "empty sqlite"])
def test_damaged_store_is_never_written(tmp_path, capsys, kind):
    out = tmp_path / "out"
    path = out / STORE
    if kind == "garbage pages":
        run_sweep(from_dict(tiny(m=(2, 3, 4, 5, 6, 7))), out, progress=False)
        damage(path)
    elif kind == "zero-length":
        out.mkdir()
        path.write_bytes(b"")
    else:
        out.mkdir()
        sqlite3.connect(path).close()
        assert path.stat().st_size == 0
        with sqlite3.connect(path) as con:
            con.execute("PRAGMA user_version = 3")  # a valid database without tables
        con.close()
    before = listing(out)
    cfg = write(tmp_path / "t.toml", TINY)
    for argv in (["run", str(cfg), "--out", str(out), "--no-progress"], ["status", str(out)],
                 ["collect", str(out)]):
        assert main(argv) == 2
        line = one_line(capsys)
        assert STORE in line and "not a tsim sweep store" in line and "Nothing was changed" in line
        assert listing(out) == before, f"{argv[0]} changed the folder"


# ---------------------------------------------------------------------- 4. results.csv and its hash
class Crash(BaseException):
    """A kill -9 at one point of the export."""


def crash_on(monkeypatch, what: str):
    real_replace, real_set_meta = os.replace, Store.set_meta

    def replace(src, dst, *a, **k):
        if what == "rename" and Path(dst).name == EXPORT:
            raise Crash
        return real_replace(src, dst, *a, **k)

    def set_meta(self, name, value, **more):
        if what == "record" and name == "export_sha256":
            raise Crash
        return real_set_meta(self, name, value, **more)

    monkeypatch.setattr(sweep_store.os, "replace", replace)
    monkeypatch.setattr(Store, "set_meta", set_meta)


@pytest.mark.parametrize("what", ["rename", "record"])
def test_crash_during_export_is_repaired_by_the_next_run(tmp_path, monkeypatch, capsys, what):
    out = tmp_path / "out"
    run_sweep(from_dict(tiny(m=(2,))), out, progress=False)
    old = (out / EXPORT).read_bytes()
    with monkeypatch.context() as mp:
        crash_on(mp, what)
        with pytest.raises(Crash):
            run_sweep(from_dict(tiny(m=(2, 3))), out, progress=False)
    temps = list(out.glob(f".{EXPORT}.*.tmp"))
    assert (what == "rename") == bool(temps) and ((out / EXPORT).read_bytes() == old) == (what == "rename")
    # the store knows the file is its own: a repair (as at the start of the next sweep) rewrites it
    with Store(out) as st:
        assert sweep_store.own_export(st)
        repair_export(st)
        assert hashlib.sha256((out / EXPORT).read_bytes()).hexdigest() == st.meta("export_sha256")
    assert not list(out.glob(f".{EXPORT}.*.tmp"))
    df = run_sweep(from_dict(tiny(m=(2, 3, 4))), out, progress=False)
    assert "left unchanged" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out / EXPORT), df)


def test_stale_csv_of_an_older_tsim_is_rewritten(tmp_path, capsys):
    """Older tsim recorded the new hash before the rename: a kill left the old CSV and the temp file."""
    out = tmp_path / "out"
    run_sweep(from_dict(tiny(m=(2,))), out, progress=False)
    temp = out / f".{EXPORT}.4242.tmp"
    temp.write_text("pair,m\n0,2\n0,3\n")
    with Store(out) as st:
        st.set_meta("export_sha256", hashlib.sha256(temp.read_bytes()).hexdigest())
    df = run_sweep(from_dict(tiny(m=(2, 3))), out, progress=False)
    assert "left unchanged" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out / EXPORT), df)
    assert not temp.exists()


def test_no_finished_cell_leaves_no_csv(tmp_path, monkeypatch, capsys):
    def broken(cell):
        raise ZeroDivisionError("in the study")

    monkeypatch.setattr(sweep_run, "run_cell", broken)
    cfg, out = write(tmp_path / "t.toml", TINY), tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert "no cell of the sweep finished" in one_line(capsys)
    assert not (out / EXPORT).exists() and "3 failed" in status_text(out)


# ---------------------------------------------------------------------- 6. fail-fast leaves nothing
def test_config_error_in_a_cell_stops_the_sweep_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    calls = []

    def no_data(cell):
        calls.append(cell.key)
        raise ConfigError("data.root", "MNIST file train-images-idx3-ubyte[.gz] not found under /x/MNIST/raw. "
                                       "Set data.root (or the env var TSIM_DATA) to the folder holding MNIST/raw/.")

    monkeypatch.setattr(sweep_run, "run_cell", no_data)
    cfg, out = write(tmp_path / "t.toml", TINY), tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    line = one_line(capsys)
    assert "MNIST file" in line and "data.root" in line
    assert len(calls) == 1 and not out.exists()


def test_interrupt_before_the_first_cell_leaves_nothing(tmp_path, monkeypatch, capsys):
    def ctrl_c(cell):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_run, "run_cell", ctrl_c)
    cfg, out = write(tmp_path / "t.toml", TINY), tmp_path / "new" / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------------- failed cells
def test_failed_cells_exit_2_and_say_where_to_look(tmp_path, monkeypatch, capsys):
    real = sweep_run.run_cell

    def flaky(cell):
        if cell.config.student.m == 3:
            raise FloatingPointError("boom at m = 3")
        return real(cell)

    monkeypatch.setattr(sweep_run, "run_cell", flaky)
    cfg, out = write(tmp_path / "t.toml", TINY), tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    line = one_line(capsys)
    assert "1 of 3 cells failed" in line and f"`tsim status {out}`" in line
    assert sorted(pd.read_csv(out / EXPORT)["m"]) == [2, 4] and (out / "summary.json").exists()
    with pytest.raises(cli.CellsFailed) as err:
        cli.run(str(cfg), str(out), progress=False)
    assert err.value.failed == 1 and err.value.summary["measured"]
