"""Command line: ``tsim run [CONFIG.toml] [--out DIR] [--quick]``, ``tsim status``, ``tsim collect``,
``tsim report``. Bad input ends with one line on stderr and exit code 2 (set TSIM_DEBUG=1 for the
traceback)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from importlib import resources
from pathlib import Path

from .config import from_dict
from .errors import ConfigError
from .results import draw, write_summary
from .studies import get as get_study
from .sweep.run import run_sweep


def default_config_text() -> str:
    """The embedded default experiment (tsim/configs/default.toml)."""
    return resources.files("tsim").joinpath("configs/default.toml").read_text()


def read_raw(path) -> dict:
    """The raw TOML dict of a config file, of the embedded default when path is None, or ``path``
    itself when it is already a dict (a config built in Python)."""
    if isinstance(path, dict):
        return path
    if path is None:
        return tomllib.loads(default_config_text())
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config", f"config file {path!r} does not exist. Give the path of a .toml file, "
                          "e.g. experiments/width_double_descent.toml, or none for the default.")
    try:
        return tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"{path} is not valid TOML ({exc}). Fix the syntax.") from None


def run(config: str | dict | None = None, out: str | None = None, quick: bool = False, device: str | None = None,
        progress: bool = True, workers: int | None = None, scheduler: str | None = None) -> dict:
    """Run a config (or the default) and write results, summary.json and figures; return the summary.

    Every study, two-layer or deep, takes the same path: validate the config, let its study prepare it
    (deep: resolve ``device`` into ``run.device``), run the cells the store lacks, then write the
    summary and figures. ``workers`` overrides sweep.workers (local process pool); ``scheduler`` is
    "local" for a Dask LocalCluster or the address of a Dask scheduler ("tcp://HOST:PORT").
    """
    cfg = from_dict(read_raw(config), quick=quick)
    cfg = get_study(cfg.study).prepare(cfg, device)
    out_dir = Path(out or cfg.output.dir)
    t0 = time.perf_counter()
    df = run_sweep(cfg, out_dir, progress=progress, workers=workers or cfg.sweep.workers, scheduler=scheduler)
    if df.empty:
        raise ValueError(f"no cell of the sweep finished; `tsim status {out_dir}` lists the reasons. Fix them "
                         "and run the same command again.")
    wall = time.perf_counter() - t0
    return write_summary(out_dir, cfg, df, config_file=config if isinstance(config, str) else
                         ("<dict>" if config is not None else "<embedded default>"), quick=quick,
                         wall_time_s=wall, figure_paths=draw(df, cfg, out_dir))


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="tsim", description="Teacher-student LMC simulator.")
    p.add_argument("--version", action="version", version=f"tsim {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a config (default: the embedded width sweep)")
    r.add_argument("config", nargs="?", help="TOML config; omit for the embedded default")
    r.add_argument("--out", help="output folder (default: output.dir of the config)")
    r.add_argument("--quick", action="store_true", help="apply the config's [quick] overrides")
    r.add_argument("--device", choices=["cpu", "cuda", "auto"], help="torch device (deep studies)")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.add_argument("--workers", type=int, help="local worker processes (default: sweep.workers)")
    r.add_argument("--dask", choices=["local"], help="run the cells on a Dask LocalCluster on this machine")
    r.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
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


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "run":
            if args.workers is not None and args.workers < 1:
                raise ConfigError("--workers", f"--workers must be >= 1; got {args.workers}.")
            if args.dask and args.scheduler:
                raise ConfigError("--scheduler", "give either --dask local or --scheduler ADDRESS, not both.")
            summary = run(args.config, args.out, args.quick, args.device, progress=not args.no_progress,
                          workers=args.workers, scheduler=args.scheduler or args.dask)
            print(json.dumps(summary.get("measured", {}), indent=2, default=str))
        elif args.cmd == "status":
            from .sweep.store import status_text

            print(status_text(Path(args.dir)))
        elif args.cmd == "collect":
            from .sweep.store import collect

            print(collect(Path(args.dir), Path(args.to) if args.to else None))
        elif args.cmd == "report":
            from .results.report import render

            print(render([Path(d) for d in args.dirs], Path(args.out) if args.out else None))
    except (ConfigError, ValueError, OSError) as exc:
        if os.environ.get("TSIM_DEBUG"):
            raise
        field = getattr(exc, "field", None)
        print(f"tsim: error: {exc}" if field is None or str(exc).startswith(field) else f"tsim: error: {exc}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tsim: interrupted; finished cells are saved, run the same command again to resume.",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
