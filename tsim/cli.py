"""Command line: ``tsim run [CONFIG.toml] [--out DIR] [--quick]``, ``tsim status``, ``tsim collect``,
``tsim report``. Bad input ends with one line on stderr and exit code 2 (set TSIM_DEBUG=1 for the
traceback); so does a sweep with failed cells (how many, and `tsim status DIR` for the reasons). Ctrl-C
ends with exit code 130 and the finished cells saved."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

from .config import from_dict
from .config.loader import read_toml
from .errors import ConfigError
from .results import draw, write_summary
from .studies import get as get_study
from .sweep.run import CONNECT_TIMEOUT_S, WorkerDied, run_sweep


def default_config_text() -> str:
    """The embedded default experiment (tsim/configs/default.toml)."""
    return resources.files("tsim").joinpath("configs/default.toml").read_text()


def read_raw(path) -> dict:
    """The raw TOML dict of a config file, of the embedded default when path is None, or ``path``
    itself when it is already a dict (a config built in Python)."""
    if isinstance(path, dict):
        return path
    if path is None:
        import tomllib

        return tomllib.loads(default_config_text())
    return read_toml(path)


class CellsFailed(ValueError):
    """A sweep finished with failed cells: results, summary and figures hold the others.

    ``summary`` is what :func:`run` would have returned; the message says how many failed and where to
    look (``tsim status DIR``).
    """

    def __init__(self, summary: dict, failed: int, cells: int, out: Path):
        self.summary, self.failed, self.cells, self.out = summary, failed, cells, out
        super().__init__(f"{failed} of {cells} cells failed; their rows are missing from {out / 'results.csv'} "
                         f"and the summary. `tsim status {out}` lists the reasons; fix them and run the same "
                         "command again (finished cells are reused).")


def _failed_cells(df, out: Path) -> tuple[int, int]:
    """(failed, all) cells of the sweep just run (from ``df.attrs``, else from the store in ``out``)."""
    counts = df.attrs.get("counts")
    if counts is None:
        from .sweep.store import Store

        with Store(out, readonly=True) as st:
            counts = st.counts()
    return counts["failed"], counts["cells"]


def run(config: str | dict | None = None, out: str | None = None, quick: bool = False, device: str | None = None,
        progress: bool = True, workers: int | None = None, scheduler: str | None = None, force: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT_S) -> dict:
    """Run a config (or the default) and write results, summary.json and figures; return the summary.

    Every study, two-layer or deep, takes the same path: validate the config, let its study prepare it
    (deep: resolve ``device`` into ``run.device``), run the cells the store lacks, then write the
    summary and figures. ``workers`` overrides sweep.workers (local process pool); ``scheduler`` is
    "local" for a Dask LocalCluster or the address of a Dask scheduler ("tcp://HOST:PORT"), which must
    answer within ``connect_timeout`` seconds. ``force`` runs grids and cells above the size guards.

    Raises
    ------
    ConfigError, ValueError
        Bad input (nothing is left behind), or no cell finished.
    CellsFailed
        Some cells failed; results, summary and figures of the others are written.
    """
    cfg = from_dict(read_raw(config), quick=quick, force=force)
    cfg = get_study(cfg.study).prepare(cfg, device)
    out_dir = Path(out or cfg.output.dir)
    t0 = time.perf_counter()
    df = run_sweep(cfg, out_dir, progress=progress, workers=workers or cfg.sweep.workers, scheduler=scheduler,
                   connect_timeout=connect_timeout)
    if df.empty:
        raise ValueError(f"no cell of the sweep finished; `tsim status {out_dir}` lists the reasons. Fix them "
                         "and run the same command again.")
    wall = time.perf_counter() - t0
    summary = write_summary(out_dir, cfg, df, config_file=config if isinstance(config, str) else
                            ("<dict>" if config is not None else "<embedded default>"), quick=quick,
                            wall_time_s=wall, cell_time_s=df.attrs.get("cell_time_s"),
                            figure_paths=draw(df, cfg, out_dir))
    failed, cells = _failed_cells(df, out_dir)
    if failed:
        raise CellsFailed(summary, failed, cells, out_dir)
    return summary


RUN_EXAMPLES = """examples:
  tsim run                                      the embedded default (width sweep, M = 4), ~1 min
  tsim run --quick                              the same, small: seconds
  tsim run experiments/rate.toml --workers 2    a study on two local processes
  tsim run experiments/rate.toml --out /tmp/r   write elsewhere; rerun the same line to resume
  tsim run experiments/mnist_width.toml --device auto     deep study on a GPU when one is present
  tsim run experiments/rate.toml --dask local --workers 4  the cells on a Dask LocalCluster
  tsim run experiments/rate.toml --scheduler tcp://HOST:8786 --connect-timeout 30
  tsim run experiments/width_double_descent.toml --force  above the size guards
"""


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="tsim", description="Teacher-student LMC simulator.")
    p.add_argument("--version", action="version", version=f"tsim {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a config (default: the embedded width sweep)",
                       description="Run a study: validate the config, run the cells its output folder "
                       "lacks (an interrupted run resumes), then write results.csv, summary.json and the "
                       "figures. Exit codes: 0 done, 2 bad input or failed cells (one line names them), 130 "
                       "interrupted (finished cells are kept).",
                       epilog=RUN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("config", nargs="?",
                   help="TOML config; omit for the embedded default. e.g. experiments/rate.toml")
    r.add_argument("--out", metavar="DIR",
                   help="output folder (default: output.dir of the config). e.g. --out results/rate_d64")
    r.add_argument("--quick", action="store_true",
                   help="apply the config's [quick] overrides (small, seconds). e.g. --quick")
    r.add_argument("--device", choices=["cpu", "cuda", "auto"],
                   help="torch device of deep studies (default: run.device). e.g. --device auto")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar. e.g. --no-progress")
    r.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: sweep.workers). e.g. --workers 2")
    r.add_argument("--dask", choices=["local"],
                   help="run the cells on a Dask LocalCluster on this machine. e.g. --dask local --workers 4")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask scheduler. e.g. --scheduler tcp://10.0.0.5:8786")
    r.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S, metavar="SECONDS",
                   help=f"seconds --scheduler has to answer (default {CONNECT_TIMEOUT_S:g}). "
                   "e.g. --connect-timeout 30")
    r.add_argument("--force", action="store_true",
                   help="run grids and cells above the size guards (cells, memory, work). e.g. --force")
    rep = sub.add_parser("report", help="render figures and a Markdown page comparing measured numbers "
                         "with the papers' claims and theory/ predictions")
    rep.add_argument("dirs", nargs="+", help="output folders of tsim run")
    rep.add_argument("--out", help="report file (default: DIR/report.md of the first folder)")
    s = sub.add_parser("status", help="done / failed / pending cells of an output folder")
    s.add_argument("dir")
    c = sub.add_parser("collect", help="one table of all finished rows")
    c.add_argument("dir")
    c.add_argument("--to", help="output file (.csv or .parquet); default DIR/collected.csv")
    return p


def _one_line(exc: BaseException) -> str:
    """The one line printed for an error that ends a command (no traceback)."""
    if isinstance(exc, MemoryError):
        return ("out of memory (" + (str(exc) or "an allocation failed") + "). Lower the sizes of the config "
                "(student.m, train.n, sweep.pairs, model.width, grid axes) or use fewer --workers.")
    if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
        from .sweep.store import os_reason

        return f"{os_reason(exc)}. Check the path, its permissions and free space, or give another --out."
    return " ".join(str(exc).split())


def _run_command(args) -> None:
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", f"--workers must be >= 1; got {args.workers}. Use 1 or more.")
    if args.dask and args.scheduler:
        raise ConfigError("--scheduler", "give either --dask local or --scheduler ADDRESS, not both.")
    if not args.connect_timeout > 0:
        raise ConfigError("--connect-timeout", f"--connect-timeout must be > 0 seconds; got "
                          f"{args.connect_timeout:g}. Use e.g. 20.")
    try:
        summary = run(args.config, args.out, args.quick, args.device, progress=not args.no_progress,
                      workers=args.workers, scheduler=args.scheduler or args.dask, force=args.force,
                      connect_timeout=args.connect_timeout)
    except CellsFailed as exc:
        print(json.dumps(exc.summary.get("measured", {}), indent=2, default=str))
        raise
    print(json.dumps(summary.get("measured", {}), indent=2, default=str))


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "run":
            _run_command(args)
        elif args.cmd == "status":
            from .sweep.store import status_text

            print(status_text(Path(args.dir)))
        elif args.cmd == "collect":
            from .sweep.store import collect

            print(collect(Path(args.dir), Path(args.to) if args.to else None))
        elif args.cmd == "report":
            from .results.report import render

            print(render([Path(d) for d in args.dirs], Path(args.out) if args.out else None))
    except KeyboardInterrupt:
        print("tsim: interrupted; finished cells are saved, run the same command again to resume.",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tsim status DIR | head -1`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ConfigError, ValueError, OSError, MemoryError, WorkerDied) as exc:
        if os.environ.get("TSIM_DEBUG"):
            raise
        print(f"tsim: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
