"""Result store of an output folder (results.csv, one row per pair, tagged with the cell key)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_results(out: Path) -> pd.DataFrame:
    """All rows of ``out/results.csv`` (an empty table if there is none)."""
    path = Path(out) / "results.csv"
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a tsim result table ({exc}). Move it away and re-run.") from None


def status_text(out: Path) -> str:
    """One line: how many cells are done in ``out``."""
    df = read_results(out)
    done = df["key"].nunique() if "key" in df else 0
    return f"{out}: {done} cells done, {len(df)} rows"


def collect(out: Path, to: Path | None = None) -> Path:
    """Write all rows to ``to`` (CSV or Parquet by suffix); return its path."""
    df = read_results(out)
    to = Path(to) if to else Path(out) / "collected.csv"
    if to.suffix == ".parquet":
        df.to_parquet(to, index=False)
    else:
        df.to_csv(to, index=False)
    return to
