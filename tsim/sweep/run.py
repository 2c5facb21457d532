"""Running a sweep: every cell of the grid, rows appended to the output folder as cells finish."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..config import Config
from ..studies import STUDY_ROUTINES
from .grid import Cell, cells


def run_cell(cell: Cell) -> list[dict]:
    """The rows of one cell: its study routine over all its pairs, tagged with key and point."""
    cfg = cell.config
    rows = STUDY_ROUTINES[cfg.study](cfg, range(cfg.sweep.pairs))
    for r in rows:
        for name, value in cell.point.items():
            col = name.split(".")[1]
            r[col if col not in r or col == "m" else name.replace(".", "_")] = value
        r["key"] = cell.key
    return rows


def run_sweep(cfg: Config, out: Path, progress: bool = True, workers: int = 1,
              scheduler: str | None = None) -> pd.DataFrame:
    """Run every cell not yet in ``out/results.csv``; append each finished cell; return the table.

    (workers and scheduler are accepted for the parallel runner; this version runs cells in order.)
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.csv"
    done = set(pd.read_csv(path, usecols=["key"])["key"]) if path.exists() else set()
    todo = [c for c in cells(cfg) if c.key not in done]
    for cell in tqdm(todo, desc="cells", disable=not progress, unit="cell"):
        df = pd.DataFrame(run_cell(cell))
        df.to_csv(path, mode="a", header=not path.exists(), index=False)
    return pd.read_csv(path)
