"""Running a sweep: the cells of a config's grid that the store lacks, on one of three executors.

- in this process, one cell after the other (``workers = 1``; Numba uses every core for the ensemble
  of a cell);
- a local process pool of ``workers`` spawned processes, one Numba/BLAS thread each, a cell per task
  (each cell still trains all its seed pairs as one ensemble);
- a Dask cluster (``scheduler = "local"``: a LocalCluster of ``workers`` processes on this machine;
  ``scheduler = "tcp://HOST:PORT"``: a running scheduler and its workers).

Whatever the executor, only this process writes: each finished cell goes into ``DIR/sweep.sqlite`` in
one transaction (``tsim.sweep.store``), so an interrupted sweep resumes where it stopped and a cell
that raises is recorded as failed with its reason while the others go on. A cell that raises a
:class:`~tsim.errors.ConfigError` (a field every cell shares is wrong, e.g. ``data.root``) stops the
sweep instead, as any bad input does.

Reliability rules (docs/sweeps.md):

- Ctrl-C stops every executor at once (pool workers are killed, Dask futures cancelled); finished
  cells are saved. A Ctrl-C that Numba turns into ``SystemError`` inside a kernel is still an interrupt.
- Pool workers die with the main process, even when it is killed with ``kill -9`` (Linux:
  ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread watching the parent process id).
- A scheduler address is checked, and the scheduler must answer within ``connect_timeout`` seconds.
- A sweep that stops before its first cell (bad scheduler, another sweep running, a damaged store, an
  interrupt, a bad field) leaves the output folder as it found it: the store is created, and the grid
  registered, only when the first cell's outcome is recorded.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .._kernels import COMPILING, cache_is_cold, compile_notice
from ..errors import ConfigError
from ..studies import get as get_study
from .grid import Cell, cells
from .store import STORE, Store, SweepLock, check_store, code_version, export_csv, repair_export

#: seconds a Dask scheduler given by address has to answer (``tsim run --connect-timeout``)
CONNECT_TIMEOUT_S = 20.0


def run_cell(cell: Cell) -> list[dict]:
    """The rows of one cell: its study routine over all its pairs, tagged with key and point."""
    cfg = cell.config
    rows = get_study(cfg.study).run(cfg, range(cfg.sweep.pairs))
    for r in rows:
        for name, value in cell.point.items():
            col = name.split(".")[1]
            same = col in r and r[col] == value  # the study already reports this field (m, M, d)
            r[col if col not in r or same else name.replace(".", "_")] = value
        r["key"] = cell.key
    return rows


@dataclass(frozen=True)
class Outcome:
    """What a worker returns for one cell: its rows, or the reason (and traceback) it failed.

    ``fatal`` is ``(field, message)`` of a ConfigError the cell raised: the sweep stops with it.
    """

    key: str
    rows: list | None
    reason: str | None
    trace: str | None
    wall_s: float
    version: str
    fatal: tuple | None = None


# ---------------------------------------------------------------------- interrupts
_SIGINT = threading.Event()  # set by the sweep's SIGINT handler in the main process


def interrupted(exc: BaseException | None) -> bool:
    """True when ``exc`` is, wraps or was raised while handling a KeyboardInterrupt.

    Numba reports a Ctrl-C that arrives inside a kernel as ``SystemError: CPUDispatcher(...) returned a
    result with an exception set`` whose ``__cause__`` / ``__context__`` is the KeyboardInterrupt.
    """
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
    return False


@contextlib.contextmanager
def sigint_flag():
    """While a sweep runs in the main thread, remember a Ctrl-C (then raise KeyboardInterrupt as usual),
    so an interrupt that a cell swallows still stops the sweep after that cell."""
    prev = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or prev is signal.SIG_IGN:
        yield
        return

    def on_sigint(signum, frame):
        _SIGINT.set()
        if callable(prev):
            prev(signum, frame)
        raise KeyboardInterrupt

    _SIGINT.clear()
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, prev)
        _SIGINT.clear()


def _stop_if_interrupted() -> None:
    if _SIGINT.is_set():
        raise KeyboardInterrupt


# ---------------------------------------------------------------------- one cell
_LIMITED = False


def limit_threads(threads: int | str | None) -> None:
    """Numba threads of this thread and BLAS threads of this process (once); None leaves them.

    ``"auto"`` (Dask workers of a remote cluster): cores / threads of the worker.
    """
    global _LIMITED
    if threads is None:
        return
    if threads == "auto":
        try:
            from distributed import get_worker

            threads = max(1, (os.cpu_count() or 1) // get_worker().state.nthreads)
        except (ImportError, ValueError, AttributeError):
            return
    from .._kernels import set_threads

    set_threads(threads)
    if not _LIMITED:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(threads))
        _LIMITED = True


def attempt(cell: Cell, threads: int | str | None = None) -> Outcome:
    """Run one cell and never raise, except on an interrupt: a failure becomes an Outcome with a reason,
    a ConfigError an Outcome with ``fatal`` set."""
    limit_threads(threads)
    t0 = time.perf_counter()
    try:
        rows = run_cell(cell)
        return Outcome(cell.key, rows, None, None, time.perf_counter() - t0, code_version())
    except ConfigError as exc:  # a wrong field: every cell would fail the same way
        return Outcome(cell.key, None, f"ConfigError: {exc}", traceback.format_exc(), time.perf_counter() - t0,
                       code_version(), fatal=(exc.field, str(exc)))
    except Exception as exc:  # a cell's failure is data: record it and go on
        if interrupted(exc) or _SIGINT.is_set():
            raise KeyboardInterrupt from None
        return Outcome(cell.key, None, f"{type(exc).__name__}: {exc}", traceback.format_exc(),
                       time.perf_counter() - t0, code_version())


# ---------------------------------------------------------------------- worker processes
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` ends, however it ends (``kill -9`` included).

    Linux: the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``); elsewhere a
    daemon thread polls ``os.getppid()`` every second.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before the request
                    os._exit(1)
                return
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    threading.Thread(target=_watch_parent, args=(parent,), name="tsim-watch-parent", daemon=True).start()


def _watch_parent(parent: int) -> None:  # pragma: no cover - used where prctl is missing
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _init_worker(parent: int) -> None:
    """Pool worker start-up: die with the main process, leave Ctrl-C to it, one thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops the pool
    die_with_parent(parent)
    limit_threads(1)


# ---------------------------------------------------------------------- executors
@contextlib.contextmanager
def _sequential(todo: list[Cell]):
    yield (attempt(cell) for cell in todo)


def _kill(ex) -> None:
    """Kill the pool's worker processes now (an interrupt or an error stops the sweep at once)."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.kill()
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            p.join(5)


class WorkerDied(RuntimeError):
    """A worker process of the local pool died (killed, out of memory); the finished cells are saved."""


def _pool_outcomes(ex, todo: list[Cell]):
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    futures = [ex.submit(attempt, cell) for cell in todo]
    for fut in as_completed(futures):
        try:
            yield fut.result()
        except BrokenProcessPool:
            raise WorkerDied("a worker process of the sweep died (out of memory or killed); the "
                               "finished cells are saved. Run the same command again to resume, with "
                               "fewer --workers if memory ran out.") from None


@contextlib.contextmanager
def _pool(todo: list[Cell], workers: int):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(os.getpid(),))
    stopped = False
    try:
        yield _pool_outcomes(ex, todo)
    except BaseException:
        stopped = True
        _kill(ex)
        raise
    finally:
        ex.shutdown(wait=not stopped, cancel_futures=True)


def scheduler_address(address: str) -> str:
    """``address`` checked as a Dask scheduler address (``tcp://HOST:PORT``, ``HOST:PORT``, ...).

    Raises
    ------
    ValueError
        The address has no host or port, or an unknown scheme; the message says what to give.
    """
    from distributed.comm.addressing import get_address_host_port, parse_address

    try:
        scheme, _ = parse_address(address)
        host, port = get_address_host_port(address)
        if not host or port is None:
            raise ValueError("no host or port")
    except (ValueError, TypeError) as exc:
        why = str(exc).split(" in address")[0]
        raise ValueError(f"--scheduler must be the address of a Dask scheduler such as tcp://HOST:8786; got "
                         f"{address!r} ({why}). Give the address `dask scheduler` prints, or use --dask "
                         "local.") from None
    return address


def _tcp_reachable(address: str, timeout: float) -> None:
    """Fail at once on a refused TCP connection or an unknown host (Dask retries those until its timeout)."""
    import socket

    from distributed.comm.addressing import get_address_host_port, parse_address

    if parse_address(address)[0] != "tcp":
        return
    host, port = get_address_host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.timeout:
        return  # the probe reports it, with the same timeout
    except OSError as exc:
        raise ValueError(f"cannot reach a Dask scheduler at --scheduler {address} ({(exc.strerror or str(exc)).lower()}"
                         "). Start one with `dask scheduler` and workers with `dask worker tcp://HOST:8786` (see "
                         "docs/sweeps.md), or use --dask local.") from None


async def _identity(address: str, timeout: float) -> dict:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        with contextlib.suppress(Exception):
            comm.abort()


def probe_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> dict:
    """The identity of the Dask scheduler at ``address``, which must answer within ``timeout`` seconds.

    A server that accepts the connection but never answers fails here, after ``timeout`` seconds, not
    in ``distributed.Client`` (which can wait forever in the handshake).

    Raises
    ------
    ValueError
        Nothing answers in time, the connection is refused, or the answer is not a scheduler's.
    """
    hint = ("Start one with `dask scheduler` and workers with `dask worker tcp://HOST:8786` (see "
            "docs/sweeps.md), or use --dask local.")
    try:
        info = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))
    except (asyncio.TimeoutError, TimeoutError):
        raise ValueError(f"cannot reach a Dask scheduler at --scheduler {address}: no answer within {timeout:g} "
                         f"s (--connect-timeout). {hint}") from None
    except (OSError, ValueError, RuntimeError, EOFError) as exc:
        raise ValueError(f"cannot reach a Dask scheduler at --scheduler {address} ({exc}). {hint}") from None
    except Exception as exc:  # distributed's CommClosedError and friends
        raise ValueError(f"cannot reach a Dask scheduler at --scheduler {address} ({type(exc).__name__}: {exc}). "
                         f"{hint}") from None
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise ValueError(f"--scheduler {address} must be a Dask scheduler; it answered as {kind!r}. Give the "
                         "address `dask scheduler` prints (not a worker's).")
    return info


def dask_client(scheduler: str, workers: int, timeout: float = CONNECT_TIMEOUT_S):
    """A ``distributed.Client``: a LocalCluster of ``workers`` processes for "local", else the address
    (checked, and probed with a ``timeout`` in seconds, before the client connects)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise ValueError("--dask/--scheduler need dask[distributed]: pip install 'dask[distributed]'.") from None
    if scheduler == "local":
        import logging

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        return Client(cluster)
    address = scheduler_address(scheduler)
    _tcp_reachable(address, timeout)
    info = probe_scheduler(address, timeout)
    try:
        client = Client(address, timeout=f"{timeout:g}s")
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach a Dask scheduler at --scheduler {address} ({exc}). Start one with "
                         "`dask scheduler` and workers with `dask worker tcp://HOST:8786` (see docs/sweeps.md), "
                         "or use --dask local.") from None
    if isinstance(info, dict) and not info.get("workers"):
        print(f"tsim: the scheduler at {address} has no workers yet; the cells wait until one joins "
              f"(`dask worker {address}`).", file=sys.stderr)
    return client


def _dask_outcomes(client, todo: list[Cell], threads, futures: list):
    from distributed import as_completed

    futures += [client.submit(attempt, cell, threads, key=f"tsim-cell-{cell.key}", pure=False) for cell in todo]
    for fut in as_completed(futures):
        if fut.status == "error":  # the task itself could not run (lost worker, unpicklable result)
            exc = fut.exception()
            key = fut.key.removeprefix("tsim-cell-") if isinstance(fut.key, str) else str(fut.key)
            yield Outcome(key, None, f"{type(exc).__name__}: {exc}", None, float("nan"), "unknown")
        else:
            yield fut.result()
        fut.release()


@contextlib.contextmanager
def _dask(todo: list[Cell], workers: int, scheduler: str, timeout: float):
    client = dask_client(scheduler, workers, timeout)
    threads = 1 if scheduler == "local" else "auto"
    futures: list = []
    try:
        yield _dask_outcomes(client, todo, threads, futures)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures, force=True)
        raise
    finally:
        cluster = getattr(client, "cluster", None)
        with contextlib.suppress(Exception):
            client.close(timeout=5)
        if cluster is not None and scheduler == "local":
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)


def _executor(todo: list[Cell], workers: int, scheduler: str | None, timeout: float):
    """A context manager over an iterator of Outcomes; leaving it stops every worker."""
    if scheduler:
        return _dask(todo, workers, scheduler, timeout)
    if workers > 1 and len(todo) > 1:
        return _pool(todo, min(workers, len(todo)))
    return _sequential(todo)


# ---------------------------------------------------------------------- the store, opened late
class _Writer:
    """The store of one sweep, opened for writing only when the first outcome is recorded (or at the
    end when every cell was already finished): a sweep that stops before that writes nothing."""

    def __init__(self, out: Path, grid: list[Cell], config: dict):
        self.out, self.grid, self.config = out, grid, config
        self.store: Store | None = None

    def open(self) -> Store:
        if self.store is None:
            store = Store(self.out)
            try:
                repair_export(store)  # a results.csv left stale by a crash, from the manifest it was made of
                store.register(self.grid, self.config)
            except BaseException:
                store.close()
                raise
            self.store = store
        return self.store

    def record(self, o: Outcome) -> str:
        return self.open().record(o.key, o.rows, o.reason, o.trace, o.wall_s, o.version)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _finished_keys(out: Path) -> set[str]:
    """Finished cells of an existing store (checked read-only first), or none."""
    if not check_store(out / STORE, exclusive=True):
        return set()
    with Store(out, readonly=True, exclusive=True) as st:
        return st.finished_keys()


# ---------------------------------------------------------------------- the sweep
def run_sweep(cfg, out: Path, progress: bool = True, workers: int | None = 1,
              scheduler: str | None = None, connect_timeout: float = CONNECT_TIMEOUT_S) -> pd.DataFrame:
    """Compute every cell of ``cfg``'s grid that ``out/sweep.sqlite`` lacks; return all finished rows.

    Parameters
    ----------
    cfg : Config or DeepConfig
        The sweep (its axes make the grid).
    out : Path
        Output folder; holds the store, its lock and, at the end, ``results.csv``.
    progress : bool
        Show one progress bar over all cells (finished ones counted from the start) with an ETA.
    workers : int or None
        Worker processes (the local pool, or a Dask LocalCluster); 1 runs in this process; None or 0:
        one per core.
    scheduler : str or None
        None: no Dask. "local": a Dask LocalCluster. "tcp://HOST:PORT": a running Dask scheduler.
    connect_timeout : float
        Seconds a scheduler given by address has to answer.

    Returns
    -------
    DataFrame
        The rows of the finished cells of this grid in grid order (one per seed pair; failed cells have
        none, see ``tsim status``), with the swept fields, ``key`` and ``code_version`` as columns;
        ``attrs["counts"]`` holds the grid's cells by status (done, diverged, failed, pending, cells).

    Raises
    ------
    ValueError
        Another sweep writes into ``out``, ``out`` cannot be written, it holds a file tsim cannot read
        as its store, or the scheduler is malformed or does not answer. Nothing is left behind.
    ConfigError
        A cell raised one (a wrong field); cells finished before it are kept.
    KeyboardInterrupt
        Ctrl-C: every worker is stopped, finished cells are kept.
    """
    out = Path(out)
    workers = int(workers) if workers else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}.")
    if connect_timeout <= 0:
        raise ValueError(f"--connect-timeout must be > 0 seconds; got {connect_timeout:g}. Use e.g. 20.")
    if scheduler and scheduler != "local":
        scheduler_address(scheduler)
    grid = cells(cfg)
    with SweepLock(out) as lock, sigint_flag():
        writer = _Writer(out, grid, cfg.to_dict())
        try:
            finished = _finished_keys(out)
            todo = [c for c in grid if c.key not in finished]
            _run(writer, todo, len(grid), workers, scheduler, connect_timeout, progress)
            store = writer.open()
            df = store.rows([c.key for c in grid])
            df.attrs["counts"] = store.counts()
            df.attrs["cell_time_s"] = store.cell_seconds()
        except BaseException:
            lock.discard = writer.store is None  # stopped before its first cell: leave no trace
            raise
        finally:
            writer.close()
        export_csv(out, df)
    return df


def _run(writer: _Writer, todo: list[Cell], total: int, workers: int, scheduler: str | None, timeout: float,
         progress: bool) -> None:
    counts = {"failed": 0, "diverged": 0}
    # worker processes compile out of sight of this process's compile events: say so until a cell returns
    desc = f"cells (workers {COMPILING})" if (workers > 1 or scheduler) and todo and cache_is_cold() else "cells"
    with _executor(todo, workers, scheduler, timeout) as outcomes, \
            tqdm(total=total, initial=total - len(todo), desc=desc, unit="cell", disable=not progress,
                 dynamic_ncols=True) as bar, \
            compile_notice(lambda: bar.set_description_str(f"cells ({COMPILING})"),
                           lambda: bar.set_description_str("cells")):
        for o in outcomes:
            if o.fatal:
                raise ConfigError(*o.fatal)
            status = writer.record(o)
            _stop_if_interrupted()
            if status in counts:
                counts[status] += 1
                bar.set_postfix(counts, refresh=False)
            if desc != "cells":  # the first cell is back: the workers have compiled what they need
                bar.set_description_str("cells", refresh=False)
                desc = "cells"
            bar.update(1)
