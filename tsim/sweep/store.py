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

Nothing is written into a file before it is known to be a healthy tsim store: an existing
``sweep.sqlite`` is opened read-only and checked (``PRAGMA quick_check``, tables, format, schema)
first, a zero-length file counts as damaged, and a new store is built under a temporary name and
renamed into place, so an interrupted creation never leaves a half-made store. ``results.csv`` is
written to a temporary file, flushed to disk and renamed before its hash is recorded; the hash of
the export in flight is recorded beside the last one, so whichever moment a crash hits, the next
export recognises the file as its own and rewrites it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
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


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # pragma: no cover - statvfs is POSIX
        return False


def writable_dir(out: Path) -> list[Path]:
    """Check, without creating anything, that ``out`` is or can become a folder this process writes in.

    Parameters
    ----------
    out : Path
        The output folder (``--out``).

    Returns
    -------
    list of Path
        The folders that do not exist yet, outermost first (created later by :class:`SweepLock`).

    Raises
    ------
    ValueError
        ``out`` or one of its parents is a file, or the nearest existing folder is on a read-only file
        system or not writable; the message names the path and the fix.
    """
    out = Path(out)
    missing, p = [], out
    while not (p.exists() or p.is_symlink()) and p.parent != p:
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        where = "a file" if p == out else f"under {p}, which is a file"
        raise ValueError(f"--out must be a folder; got {out}, {where}. Give another folder with --out.")
    if _read_only_fs(p):
        raise ValueError(f"--out must be on a writable file system; got {out} ({p} is on a read-only file "
                         "system). Give a writable folder with --out.")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ValueError(f"--out must be a folder you can write in; got {out} ({p} is not writable for this "
                         "user). Give another folder with --out or fix its permissions.")
    return missing[::-1]


def _ro_uri(path: Path, exclusive: bool = False) -> str:
    """URI of a read-only open. ``exclusive`` (the caller holds the folder's lock, so nobody writes) and
    no WAL file: ``immutable``, so reading creates no ``-wal`` / ``-shm`` side files either."""
    path = Path(path)
    quiet = exclusive and not path.with_name(path.name + "-wal").exists()
    return path.resolve().as_uri() + ("?mode=ro&immutable=1" if quiet else "?mode=ro")


def _check_format(con: sqlite3.Connection, path: Path) -> None:
    """Raise ValueError unless ``con`` is a tsim store of a schema this code reads."""
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise _foreign(path, str(exc)) from None
    if not names:
        raise _foreign(path, "an SQLite database without tables")
    if not {"meta", "cells", "rows"} <= names:
        raise _foreign(path, f"tables {sorted(names)}, expected meta, cells, rows")
    try:
        meta = dict(con.execute("SELECT name, value FROM meta WHERE name IN ('format', 'schema')"))
    except sqlite3.DatabaseError as exc:
        raise _foreign(path, str(exc)) from None
    if meta.get("format") != FORMAT:
        raise _foreign(path, f"format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        schema = int(meta.get("schema", -1))
    except (TypeError, ValueError):
        raise _foreign(path, f"schema {meta.get('schema')!r}, expected an integer") from None
    if schema > SCHEMA:
        raise ValueError(f"{path} was written by a newer tsim (store schema {schema} > {SCHEMA}). "
                         "Upgrade tsim to read it; nothing was changed.")


def _verify(target: str, path: Path, uri: bool) -> None:
    """Open ``target`` (read-only when a ``mode=ro`` URI), run ``PRAGMA quick_check`` and the format check."""
    con = sqlite3.connect(target, uri=uri, timeout=30.0, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout = 30000")
        problems = [r[0] for r in con.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise _foreign(path, "damaged: " + "; ".join(map(str, problems))[:300])
        _check_format(con, path)
    finally:
        con.close()


def _needs_writer(exc: sqlite3.Error) -> bool:
    """True for errors of a read-only open of a WAL store whose index must be rebuilt (not damage)."""
    return str(getattr(exc, "sqlite_errorname", "")).startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY"))


def _verify_copy(path: Path) -> None:
    """Check a private copy of the store and its WAL (a read-only open could not recover the WAL index)."""
    with tempfile.TemporaryDirectory(prefix="tsim-check-") as tmp:
        copy = Path(tmp) / STORE
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        try:
            _verify(str(copy), path, uri=False)
        except sqlite3.DatabaseError as exc:
            raise _foreign(path, str(exc)) from None


def check_store(path: Path, exclusive: bool = False) -> bool:
    """Whether ``path`` holds a healthy tsim store (True) or nothing (False), changing nothing.

    The file is opened read-only and checked with ``PRAGMA quick_check`` and for tsim's tables, format
    and schema. A zero-length file, a folder or another program's file is damaged, not new.
    ``exclusive``: the caller holds the folder's lock (see :func:`_ro_uri`).

    Raises
    ------
    ValueError
        The file is not a healthy tsim store; the message names it and says what to do.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return False
    if not path.is_file():
        raise _foreign(path, "a folder" if path.is_dir() else "not a regular file")
    if path.stat().st_size == 0:
        raise _foreign(path, "a zero-length file, not a database")
    try:
        _verify(_ro_uri(path, exclusive), path, uri=True)
    except sqlite3.Error as exc:
        if not _needs_writer(exc):
            raise _foreign(path, str(exc)) from None
        _verify_copy(path)
    return True


def _create(path: Path) -> None:
    """A new, empty store at ``path``: built under a temporary name, then renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        leftover.unlink(missing_ok=True)
    con = sqlite3.connect(str(tmp), isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.executescript(_TABLES)
        con.executemany("INSERT INTO meta VALUES (?, ?)",
                        [("format", FORMAT), ("schema", str(SCHEMA)), ("created", _now())])
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()  # checkpoints the WAL into the file and removes -wal / -shm
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:  # pragma: no cover - some file systems cannot fsync a folder
        pass


class Store:
    """Read/write access to ``DIR/sweep.sqlite``. Writers must hold the folder's ``SweepLock``.

    Parameters
    ----------
    out : Path
        The output folder (created when writing).
    readonly : bool
        Open without creating or changing anything (for status and collect).
    exclusive : bool
        The caller holds the folder's ``SweepLock`` (writers always do). Then, and when no sweep owns
        the folder, a read-only open of a store without a WAL file creates no SQLite side files.

    Raises
    ------
    ValueError
        The folder holds no store (``readonly``), or a file that is not a healthy tsim store: it is
        checked read-only before anything is written (see :func:`check_store`).
    """

    def __init__(self, out: Path, readonly: bool = False, exclusive: bool = False):
        self.out = _check_dir(out)
        self.path = self.out / STORE
        self.readonly = readonly
        # no writer: the caller holds the lock, or no sweep owns the folder (its owner file is written
        # before a sweep's first write and removed after its last)
        exclusive = exclusive or not readonly or not (self.out / OWNER).exists()
        exists = check_store(self.path, exclusive)
        if readonly:
            if not exists:
                raise ValueError(f"{self.out} holds no sweep store ({STORE}). Run `tsim run --out {self.out}` "
                                 "first.")
            self.con = self._connect(_ro_uri(self.path, exclusive), uri=True)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            if not exists:
                _create(self.path)
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

    def set_meta(self, name: str, value: str | None, **more: str | None) -> None:
        """Set meta entries in one transaction; a value of None deletes the entry."""
        with self._tx():
            for k, v in {name: value, **more}.items():
                if v is None:
                    self.con.execute("DELETE FROM meta WHERE name = ?", (k,))
                else:
                    self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v))

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
        """The latest sweep's cell keys in grid order ([] before any sweep).

        Raises ValueError naming the file when the entry is not a JSON list of keys (changed by
        something other than tsim).
        """
        raw = self.meta("manifest", "[]")
        try:
            keys = json.loads(raw)
        except (TypeError, ValueError):
            keys = None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"{self.path}: the manifest must be a JSON list of cell keys; got "
                             f"{str(raw)[:60]!r}. The file was changed by something other than tsim; nothing "
                             "was changed: run the same `tsim run` again to rewrite the manifest, or restore "
                             "the store from a copy.")
        return keys

    def counts(self) -> dict[str, int]:
        """Cells of the latest sweep by status: done, diverged, failed, pending (and ``cells``)."""
        status = self.statuses()
        counts = {"done": 0, "diverged": 0, "failed": 0, "pending": 0}
        manifest = self.manifest()
        for k in manifest:
            s = status.get(k, "pending")
            counts[s if s in counts else "pending"] += 1
        return {**counts, "cells": len(manifest)}

    def cell_seconds(self) -> float:
        """Sum of the compute time (wall_s) of the finished cells of the latest sweep, whichever
        invocation ran them (with N workers the sweep's wall time is about this / N)."""
        keys = set(self.manifest())
        return float(sum(w for k, s, w in self._query("SELECT key, status, wall_s FROM cells")
                         if k in keys and s in FINISHED and w is not None))

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

    Before creating anything the folder is checked (:func:`writable_dir`). Set ``discard = True`` before
    leaving to remove what entering created (the lock file, new folders): a sweep that stops before
    its first cell leaves the folder as it found it.
    """

    def __init__(self, out: Path):
        self.out = _check_dir(out)
        self.created = writable_dir(self.out)
        self.lock_path = self.out / LOCK
        self.discard = False
        self._lock = None
        self._new_lock = False

    def __enter__(self):
        from filelock import FileLock, Timeout

        if self.lock_path.is_dir() or (self.lock_path.exists() and not self.lock_path.is_file()):
            raise ValueError(f"{self.lock_path} must be tsim's lock file; got a "
                             f"{'folder' if self.lock_path.is_dir() else 'special file'}. Remove it (nothing "
                             "of tsim's is in it) or give another folder with --out.")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._new_lock = not self.lock_path.exists()
            self._lock = FileLock(str(self.lock_path), timeout=0)
            self._lock.acquire()
        except Timeout:
            who = _owner(self.out)
            raise ValueError(f"another tsim sweep is writing into {self.out}{who}. Wait for it to finish "
                             "(`tsim status` shows its progress) or give another folder with --out.") from None
        except OSError as exc:
            self._undo()
            raise ValueError(f"{self.lock_path} must be a lock file tsim can create; got {os_reason(exc)}. "
                             "Give another folder with --out.") from None
        try:
            (self.out / OWNER).write_text(to_json({"pid": os.getpid(), "host": socket.gethostname(),
                                                   "started": _now()}))
        except OSError as exc:
            self._lock.release()
            self._undo()
            raise ValueError(f"{self.out / OWNER} must be writable; got {os_reason(exc)}. Give another "
                             "folder with --out.") from None
        return self

    def __exit__(self, *exc):
        try:
            (self.out / OWNER).unlink(missing_ok=True)
            if self.discard and self._new_lock:
                self.lock_path.unlink(missing_ok=True)  # still held: no other sweep can take it meanwhile
        finally:
            self._lock.release()
            if self.discard:
                self._undo()
        return False

    def _undo(self) -> None:
        """Remove the folders this lock created (only while they are empty)."""
        if self._new_lock:
            try:
                self.lock_path.unlink(missing_ok=True)
            except OSError:
                pass
        for folder in reversed(self.created):
            try:
                folder.rmdir()
            except OSError:
                break


def os_reason(exc: OSError) -> str:
    """An OSError in words: "read-only file system", "permission denied", ... and the path."""
    why = (exc.strerror or str(exc)).lower()
    return f"{why} ({exc.filename})" if exc.filename else why


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
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _export_temps(out: Path) -> list[Path]:
    """Temporary files of exports that were interrupted (``.results.csv.PID.tmp``)."""
    return sorted(out.glob(f".{EXPORT}.*.tmp"))


def own_export(st: Store) -> bool | None:
    """Whether ``DIR/results.csv`` was written by this store: None when there is none.

    It is tsim's when its sha256 is the last recorded export's, or the export in flight when a crash
    hit (recorded before the rename), or, for stores of older tsim versions that recorded the new hash
    before renaming, when an orphaned temporary export carries the recorded hash.
    """
    path = st.out / EXPORT
    if not path.is_file():
        return None
    known = {st.meta("export_sha256"), st.meta("export_pending")} - {None}
    if _sha256(path) in known:
        return True
    return any(_sha256(t) in known for t in _export_temps(st.out))


def _write_csv(st: Store, df: pd.DataFrame) -> Path:
    """Write ``df`` to ``DIR/results.csv``: temp file, fsync, record the hash in flight, rename, fsync the
    folder, then record the hash. A crash at any point leaves a file ``own_export`` recognises."""
    out, path = st.out, st.out / EXPORT
    tmp = out / f".{EXPORT}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="") as f:
        df.to_csv(f, index=False)
        f.flush()
        os.fsync(f.fileno())
    sha = _sha256(tmp)
    st.set_meta("export_pending", sha)
    os.replace(tmp, path)
    _fsync_dir(out)
    st.set_meta("export_sha256", sha, export_pending=None)
    return path


def _drop_export(st: Store) -> None:
    """Remove tsim's own results.csv (nothing of the grid finished, so any old table would be stale)."""
    (st.out / EXPORT).unlink(missing_ok=True)
    st.set_meta("export_sha256", None, export_pending=None)


def export_csv(out: Path, df: pd.DataFrame) -> Path | None:
    """Write ``DIR/results.csv`` atomically with respect to its recorded hash; return it, or None if skipped.

    A results.csv that tsim did not write (see :func:`own_export`) is left alone: a warning is printed
    and the table stays available through ``tsim collect``. tsim's own file is always rewritten (a
    stale one left by a crash included); with no finished rows it is removed rather than left stale.
    Temporary files of interrupted exports are removed.
    """
    out = Path(out)
    path = out / EXPORT
    with Store(out) as st:
        own = own_export(st)
        for tmp in _export_temps(out):
            tmp.unlink(missing_ok=True)
        if own is False:
            print(f"tsim: {path} was not written by this sweep store; left unchanged. "
                  f"Use `tsim collect {out} --to FILE` for the table.", file=sys.stderr)
            return None
        if df.empty:
            if own:
                _drop_export(st)
            return None
        return _write_csv(st, df)


def repair_export(st: Store) -> None:
    """Finish an export that a crash interrupted: rewrite tsim's own results.csv from the rows of the
    manifest (the grid of the sweep that was exporting) when an export was in flight (its hash recorded
    as pending, a temporary file left, or a file that is not the last recorded export). Called before a
    new sweep registers its grid; other files, and a manifest it cannot read, are left alone."""
    path, temps = st.out / EXPORT, _export_temps(st.out)
    in_flight = bool(temps) or st.meta("export_pending") is not None
    if not in_flight and (not path.is_file() or _sha256(path) == st.meta("export_sha256")):
        return  # no export was interrupted (a missing file stays missing until the sweep's own export)
    own = own_export(st)
    for tmp in temps:
        tmp.unlink(missing_ok=True)
    if own is False:
        return
    try:
        df = st.rows(st.manifest())
    except ValueError:
        return
    if df.empty:
        _drop_export(st)
    else:
        _write_csv(st, df)


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
        counts = st.counts()
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
