"""Result store of an output folder: ``DIR/sweep.sqlite``, one transaction per finished cell.

Layout (SQLite, WAL journal; schema version ``SCHEMA``)::

    meta(name PRIMARY KEY, value)            format = "tsim-sweep-store", schema, created, manifest
                                             (JSON list of the latest sweep's cell keys, grid order),
                                             config (JSON of the latest sweep's config)
    cells(key PRIMARY KEY, point, config,    point/config: JSON; status: pending | done | diverged |
          status, reason, trace,             failed; reason: "ExceptionType: message" or "k of n
          code_version, wall_s, finished)    students diverged"; trace: the traceback of a failure
    rows(key, idx, code_version, data,       data: the row as a JSON object (NaN kept), one row per
         PRIMARY KEY (key, idx))             seed pair, columns as the study routine returns them

A cell's rows and its ``done`` status are written in one transaction, so a crash or ``kill -9``
leaves every finished cell complete and no partial cell. Keys are content hashes of the resolved
config (``tsim.sweep.grid.cell_key``); the code version is stored with each row but is not part of
the key, so editing the code does not invalidate finished cells (``collect`` shows which version
produced each row). Only the process that holds ``DIR/.tsim.lock`` writes (``SweepLock``); readers
(``status_text``, ``collect``) open the database read-only and may run during a sweep.
"""
from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

STORE = "sweep.sqlite"
LOCK = ".tsim.lock"
OWNER = ".tsim.owner"
EXPORT = "results.csv"
FORMAT = "tsim-sweep-store"
SCHEMA = 1
FINISHED = ("done", "diverged")  # statuses whose rows are kept and not recomputed

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, point TEXT, config TEXT, status TEXT NOT NULL,
    reason TEXT, trace TEXT, code_version TEXT, wall_s REAL, finished REAL);
CREATE TABLE IF NOT EXISTS rows (key TEXT NOT NULL, idx INTEGER NOT NULL, code_version TEXT,
    data TEXT NOT NULL, PRIMARY KEY (key, idx));
"""


@lru_cache(maxsize=1)
def code_version() -> str:
    """``tsim.__version__`` plus the git commit of the source tree when there is one.

    E.g. ``"0.1.0+g84ab515.dirty"`` (``.dirty``: tracked files differ from the commit), or ``"0.1.0"``
    for an installed release.
    """
    import tsim

    version = tsim.__version__
    src = Path(tsim.__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if sha.returncode != 0:
            return version
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return f"{version}+g{sha.stdout.strip()}" + (".dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return version


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (tuple, set)):
        return list(x)
    return str(x)


def to_json(obj) -> str:
    """Compact JSON; NaN and inf are kept (Python's json reads them back), numpy scalars unwrapped."""
    return json.dumps(obj, separators=(",", ":"), default=_json_default)


def _foreign(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is not a tsim sweep store ({why}). Nothing was changed: move the file away "
                      f"or give another output folder with --out.")


def _check_dir(out: Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is a file, not a folder. Give another path with --out.")
    return out


def _check_format(con: sqlite3.Connection, path: Path) -> None:
    """Raise ValueError unless ``con`` is a tsim store of a schema this code reads."""
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise _foreign(path, str(exc)) from None
    if not names:
        return  # a new (or empty) database
    if not {"meta", "cells", "rows"} <= names:
        raise _foreign(path, f"tables {sorted(names)}, expected meta, cells, rows")
    try:
        meta = dict(con.execute("SELECT name, value FROM meta WHERE name IN ('format', 'schema')"))
    except sqlite3.DatabaseError as exc:
        raise _foreign(path, str(exc)) from None
    if meta.get("format") != FORMAT:
        raise _foreign(path, f"format {meta.get('format')!r}, expected {FORMAT!r}")
    if int(meta.get("schema", -1)) > SCHEMA:
        raise ValueError(f"{path} was written by a newer tsim (store schema {meta['schema']} > {SCHEMA}). "
                         "Upgrade tsim to read it; nothing was changed.")


class Store:
    """Read/write access to ``DIR/sweep.sqlite``. Writers must hold the folder's ``SweepLock``.

    Parameters
    ----------
    out : Path
        The output folder (created when writing).
    readonly : bool
        Open without creating or changing anything (for status and collect).
    """

    def __init__(self, out: Path, readonly: bool = False):
        self.out = _check_dir(out)
        self.path = self.out / STORE
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise ValueError(f"{self.out} holds no sweep store ({STORE}). Run `tsim run --out {self.out}` "
                                 "first.")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self.con = self._connect(uri, uri=True)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            self.con = self._connect(str(self.path))
        try:
            _check_format(self.con, self.path)
            if not readonly:
                self._init()
        except BaseException:
            self.con.close()
            raise

    def _connect(self, target: str, uri: bool = False) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(target, uri=uri, timeout=30.0, isolation_level=None)
            con.execute("PRAGMA busy_timeout = 30000")
            return con
        except sqlite3.DatabaseError as exc:
            raise _foreign(self.path, str(exc)) from None

    def _init(self) -> None:
        try:
            mode = self.con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # WAL + NORMAL: a committed cell survives a killed process; a power cut may lose the last
            # few cells (they are recomputed on the next run), never the consistency of the store.
            self.con.execute("PRAGMA synchronous = NORMAL" if mode == "wal" else "PRAGMA synchronous = FULL")
            self.con.executescript(_TABLES)
            with self._tx():
                self.con.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
                self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
                self.con.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (_now(),))
        except sqlite3.DatabaseError as exc:
            raise _foreign(self.path, str(exc)) from None

    def _tx(self):
        return _Transaction(self.con)

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ writing
    def register(self, cells, config: dict) -> None:
        """Record the sweep's cells (pending unless already known) and its manifest, in one transaction.

        ``cells``: objects with ``key``, ``point`` (dict) and ``config`` (a Config with ``to_dict``).
        """
        keys = [c.key for c in cells]
        with self._tx():
            self.con.executemany(
                "INSERT OR IGNORE INTO cells (key, point, config, status) VALUES (?, ?, ?, 'pending')",
                [(c.key, to_json(c.point), to_json(c.config.to_dict())) for c in cells])
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('manifest', ?)", (to_json(keys),))
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('config', ?)", (to_json(config),))

    def record(self, key: str, rows: list[dict] | None, reason: str | None = None, trace: str | None = None,
               wall_s: float = float("nan"), version: str | None = None) -> str:
        """Store one cell's outcome atomically; return its status.

        ``rows`` None (or a ``reason`` without rows) marks the cell failed with that reason; otherwise
        its rows replace any earlier ones and the status is ``done``, or ``diverged`` when a row has a
        diverged student (the reason then says how many).
        """
        version = version or code_version()
        if rows is None:
            status = "failed"
            reason = reason or "failed without a reason"
        else:
            n_div = sum((r.get("status_a") == "diverged") + (r.get("status_b") == "diverged") for r in rows)
            status = "diverged" if n_div else "done"
            reason = f"{n_div} of {2 * len(rows)} students diverged" if n_div else None
        with self._tx():
            self.con.execute(
                "INSERT INTO cells (key, status) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET status = "
                "excluded.status", (key, status))
            self.con.execute("UPDATE cells SET reason = ?, trace = ?, code_version = ?, wall_s = ?, "
                             "finished = ? WHERE key = ?",
                             (reason, trace, version, None if math.isnan(wall_s) else wall_s, time.time(), key))
            if rows is not None:
                self.con.execute("DELETE FROM rows WHERE key = ?", (key,))
                self.con.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)",
                                     [(key, i, version, to_json({**r, "code_version": version}))
                                      for i, r in enumerate(rows)])
        return status

    def set_meta(self, name: str, value: str) -> None:
        with self._tx():
            self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    # ------------------------------------------------------------------ reading
    def _query(self, sql: str, args=()) -> list[tuple]:
        try:
            return self.con.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path} cannot be read ({exc}). Nothing was changed: move the file away "
                             "and re-run the sweep, or restore it from a copy.") from None

    def meta(self, name: str, default=None):
        r = self._query("SELECT value FROM meta WHERE name = ?", (name,))
        return r[0][0] if r else default

    def manifest(self) -> list[str]:
        """The latest sweep's cell keys in grid order ([] before any sweep)."""
        return json.loads(self.meta("manifest", "[]"))

    def statuses(self) -> dict[str, str]:
        """{key: status} of every cell the store knows."""
        return dict(self._query("SELECT key, status FROM cells"))

    def finished_keys(self) -> set[str]:
        return {k for k, s in self.statuses().items() if s in FINISHED}

    def failures(self) -> list[tuple[str, str, str]]:
        """(key, point JSON, reason) of the failed cells."""
        return self._query("SELECT key, point, reason FROM cells WHERE status = 'failed' ORDER BY finished")

    def rows(self, keys: list[str] | None = None) -> pd.DataFrame:
        """The finished rows of ``keys`` (all cells when None), ordered by ``keys`` then pair index."""
        got = self._query("SELECT key, idx, data FROM rows")
        order = {k: i for i, k in enumerate(keys)} if keys is not None else None
        if order is not None:
            got = [g for g in got if g[0] in order]
            got.sort(key=lambda g: (order[g[0]], g[1]))
        else:
            fin = dict(self._query("SELECT key, finished FROM cells"))
            got.sort(key=lambda g: (fin.get(g[0]) or 0.0, g[0], g[1]))
        try:
            return pd.DataFrame([json.loads(g[2]) for g in got])
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path} holds a row that is not JSON ({exc}). The file was changed by "
                             "something other than tsim; nothing was changed.") from None


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self):
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")
        return False


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------------- the writer lock
class SweepLock:
    """Exclusive right to write into an output folder, held for a whole sweep.

    A second sweep on the same folder fails at once with a ValueError naming the running one (process
    id and host from ``DIR/.tsim.owner``). The lock is an OS file lock (``filelock``), released by the
    OS when the holder dies, so a killed sweep never blocks the next run.
    """

    def __init__(self, out: Path):
        from filelock import FileLock

        self.out = _check_dir(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.out / LOCK), timeout=0)

    def __enter__(self):
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            who = _owner(self.out)
            raise ValueError(f"another tsim sweep is writing into {self.out}{who}. Wait for it to finish "
                             "(`tsim status` shows its progress) or give another folder with --out.") from None
        (self.out / OWNER).write_text(to_json({"pid": os.getpid(), "host": socket.gethostname(),
                                               "started": _now()}))
        return self

    def __exit__(self, *exc):
        try:
            (self.out / OWNER).unlink(missing_ok=True)
        finally:
            self._lock.release()
        return False


def _owner(out: Path) -> str:
    try:
        o = json.loads((out / OWNER).read_text())
        return f" (pid {o['pid']} on {o['host']}, started {o['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _running(out: Path) -> str:
    """'running (pid ...)', 'interrupted' or '' from the owner file (status only, never the lock)."""
    try:
        o = json.loads((out / OWNER).read_text())
    except (OSError, ValueError):
        return ""
    if o.get("host") == socket.gethostname():
        try:
            os.kill(int(o["pid"]), 0)
        except (ProcessLookupError, ValueError, KeyError, TypeError):
            return "interrupted (the sweep that wrote it is gone; run it again to resume)"
        except PermissionError:
            pass
    return f"running (pid {o.get('pid')} on {o.get('host')}, started {o.get('started')})"


# ---------------------------------------------------------------------- export, status, collect
def export_csv(out: Path, df: pd.DataFrame) -> Path | None:
    """Write ``DIR/results.csv`` atomically (temp file, then rename); return it, or None if skipped.

    A results.csv that tsim did not write (its sha256 differs from the one recorded in the store) is
    left alone: a warning is printed and the table stays available through ``tsim collect``.
    """
    import hashlib
    import sys

    out = Path(out)
    path = out / EXPORT
    with Store(out) as st:
        known = st.meta("export_sha256")
        if path.exists():
            have = hashlib.sha256(path.read_bytes()).hexdigest()
            if have != known:
                print(f"tsim: {path} was not written by this sweep store; left unchanged. "
                      f"Use `tsim collect {out} --to FILE` for the table.", file=sys.stderr)
                return None
        tmp = out / f".{EXPORT}.{os.getpid()}.tmp"
        df.to_csv(tmp, index=False)
        sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
        st.set_meta("export_sha256", sha)
        os.replace(tmp, path)
    return path


def read_results(out: Path, every: bool = False) -> pd.DataFrame:
    """The finished rows of the latest sweep in ``out`` (``every``: of all cells ever stored).

    Falls back to ``out/results.csv`` for folders without a store (deep studies, older tsim).
    """
    out = _check_dir(out)
    if not (out / STORE).exists() and (out / EXPORT).exists():
        try:
            return pd.read_csv(out / EXPORT)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(f"{out / EXPORT} is not a result table ({exc}). Nothing was changed.") from None
    with Store(out, readonly=True) as st:
        return st.rows(None if every else st.manifest())


def status_text(out: Path) -> str:
    """Done / diverged / failed / pending cells of the latest sweep in ``out``, and failure reasons."""
    out = _check_dir(out)
    if not out.exists():
        raise ValueError(f"output folder {out} does not exist. Give the --out folder of a tsim run.")
    if not (out / STORE).exists() and (out / EXPORT).exists():
        n = len(read_results(out))
        return f"{out}: no sweep store; {EXPORT} has {n} rows (written by a deep study or an older tsim)."
    with Store(out, readonly=True) as st:
        manifest = st.manifest()
        status = st.statuses()
        counts = {"done": 0, "diverged": 0, "failed": 0, "pending": 0}
        for k in manifest:
            counts[status.get(k, "pending")] += 1
        n_rows = st._query("SELECT COUNT(*) FROM rows")[0][0]
        failures = [f for f in st.failures() if f[0] in set(manifest)]
        other = len(set(status) - set(manifest))
    total = len(manifest)
    fin = counts["done"] + counts["diverged"]
    lines = [f"{out}: {total} cells: {fin} done ({counts['diverged']} with diverged students), "
             f"{counts['failed']} failed, {counts['pending']} pending; {n_rows} rows stored"]
    state = _running(out)
    if state:
        lines.append(f"sweep {state}")
    if other:
        lines.append(f"{other} more cells from earlier configs are kept in {STORE} (reused if asked for again)")
    for key, point, reason in failures[:10]:
        lines.append(f"failed {key} {point}: {reason}")
    if len(failures) > 10:
        lines.append(f"... and {len(failures) - 10} more failed cells")
    if counts["failed"] or counts["pending"]:
        lines.append("run the same `tsim run` command again to compute the failed and pending cells")
    return "\n".join(lines)


def collect(out: Path, to: Path | None = None, every: bool = False) -> Path:
    """Write the finished rows of ``out`` to ``to`` (``.csv`` or ``.parquet``); return its path.

    Default ``to`` is ``out/collected.csv``. ``every`` includes cells of earlier configs.
    """
    out = Path(out)
    to = Path(to) if to else out / "collected.csv"
    if to.suffix not in (".csv", ".parquet"):
        raise ValueError(f"--to must end in .csv or .parquet; got {to.name}. E.g. --to results.parquet.")
    if to.resolve() == (out / STORE).resolve():
        raise ValueError(f"--to {to} would overwrite the sweep store. Give another file.")
    df = read_results(out, every=every)
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.{os.getpid()}.tmp")
    if to.suffix == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    os.replace(tmp, to)
    return to
