import os
from pathlib import Path

import numpy as np
import pytest

import tsim

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def teacher():
    return tsim.Teacher.orthonormal(M=3, d=5)


def mnist_root():
    """TSIM_DATA or ../shared/data/mnist next to the repo; None if absent."""
    root = Path(os.environ.get("TSIM_DATA", REPO.parent / "shared" / "data" / "mnist"))
    return root if (root / "MNIST" / "raw").is_dir() else None
