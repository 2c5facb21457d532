"""Sweeps: a config's grid of cells (grid.py), a result store (store.py), execution (run.py)."""
