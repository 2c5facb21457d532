"""IDX reader, MNIST loader and the deep teacher dataset (numpy only, no torch)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tsim.config import ConfigError
from tsim.deep import mnist

MNIST_ROOT = Path(os.environ.get("TSIM_DATA") or Path(__file__).resolve().parents[1].parent / "shared/data/mnist")
HAVE_MNIST = (MNIST_ROOT / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").is_file() or (
    MNIST_ROOT / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((5, 3, 4)) * 50).astype(dtype)
    path = mnist.write_idx(tmp_path / f"x-idx3-ubyte{suffix}", a)
    b = mnist.read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_header_layout(tmp_path):
    path = mnist.write_idx(tmp_path / "lab", np.arange(7, dtype=np.uint8))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 1]) and int.from_bytes(raw[4:8], "big") == 7 and len(raw) == 15


def test_truncated_file_names_file(tmp_path):
    path = mnist.write_idx(tmp_path / "imgs-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"imgs-idx3-ubyte.*truncated"):
        mnist.read_idx(path)


def test_short_header_and_bad_magic(tmp_path):
    p = tmp_path / "short"
    p.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="short.*truncated"):
        mnist.read_idx(p)
    p.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        mnist.read_idx(p)
    p.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="type code 0x07"):
        mnist.read_idx(p)
    p.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(ValueError, match="3 dimensions"):
        mnist.read_idx(p)


def test_corrupt_and_truncated_gzip(tmp_path):
    good = mnist.write_idx(tmp_path / "a-idx1-ubyte.gz", np.arange(1000, dtype=np.uint8) % 10)
    data = good.read_bytes()
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut-idx1-ubyte.gz.*corrupt or truncated"):
        mnist.read_idx(cut)
    junk = tmp_path / "junk-idx1-ubyte.gz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="junk-idx1-ubyte.gz"):
        mnist.read_idx(junk)


def _fake_mnist(root: Path, n_img: int, n_lab: int) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split in ("train", "t10k"):
        mnist.write_idx(raw / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n_img, 28, 28), dtype=np.uint8))
        mnist.write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n_lab).astype(np.uint8))


def test_loader_on_fake_tree_and_subset(tmp_path):
    _fake_mnist(tmp_path, 30, 30)
    Xtr, ytr, Xte, yte = mnist.mnist_arrays(tmp_path, n_train=10, n_test=0, seed=3)
    assert Xtr.shape == (10, 1, 28, 28) and Xtr.dtype == np.float32 and ytr.shape == (10,)
    assert Xte.shape == (30, 1, 28, 28) and yte.dtype == np.int64
    again = mnist.mnist_arrays(tmp_path, n_train=10, n_test=0, seed=3)
    np.testing.assert_array_equal(Xtr, again[0])


def test_loader_label_count_mismatch(tmp_path):
    _fake_mnist(tmp_path, 30, 29)
    with pytest.raises(ValueError, match="30 images but .* 29 labels"):
        mnist.load_mnist(tmp_path, "train")


def test_missing_files_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found") as info:
        mnist.load_mnist(tmp_path / "nowhere", "train")
    assert info.value.field == "data.root"


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TSIM_DATA", str(tmp_path))
    assert mnist.data_root(None) == tmp_path
    assert mnist.data_root("/x/y") == Path("/x/y")


@pytest.mark.skipif(not HAVE_MNIST, reason=f"real MNIST not found under {MNIST_ROOT}/MNIST/raw")
def test_real_mnist():
    X, y = mnist.load_mnist(MNIST_ROOT, "test")
    assert X.shape == (10000, 28, 28) and y.shape == (10000,)
    assert set(np.unique(y)) == set(range(10))
    assert 30 < X.mean() < 36  # MNIST mean pixel about 33.3 (0.1307 * 255)


def test_teacher_dataset_seeded_and_balanced():
    a = mnist.teacher_arrays((1, 4, 4), 2000, 500, width=32, depth=3, classes=5, seed=7)
    b = mnist.teacher_arrays((1, 4, 4), 2000, 500, width=32, depth=3, classes=5, seed=7)
    assert a[0].shape == (2000, 1, 4, 4) and a[2].shape == (500, 1, 4, 4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    counts = np.bincount(a[1], minlength=5)
    assert counts.min() > 0.03 * 2000  # every class present
    c = mnist.teacher_arrays((1, 4, 4), 2000, 500, width=32, depth=3, classes=5, seed=8)
    assert not np.array_equal(a[1], c[1])
