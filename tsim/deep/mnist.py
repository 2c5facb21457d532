"""Datasets for the deep path: MNIST read from IDX files, and a deep ReLU teacher.

MNIST is read from torchvision's raw layout ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
(optionally ``.gz``); nothing is ever downloaded or unpickled. ROOT is the config's ``data.root``,
else the env var ``TSIM_DATA``, else ``<repo>/../shared/data/mnist``.

IDX format (LeCun et al. 1998): bytes 0-1 are zero, byte 2 the type code (0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), byte 3 the number of dimensions k, then k
big-endian uint32 sizes, then the data, big-endian, C order.

This module needs only numpy; the arrays are turned into torch tensors by the caller.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from tsim.errors import ConfigError

IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
IDX_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in IDX_TYPES.items()}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def _read_bytes(path: Path) -> bytes:
    """The (decompressed) bytes of ``path``; a corrupt or truncated gzip raises ValueError naming it."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot decompress ({exc}); the file is corrupt or truncated. "
                         f"Replace it with a fresh copy.") from None


def parse_idx(buf: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array of the stored type and shape (native byte order).

    Raises
    ------
    ValueError
        Naming ``name`` and the problem: short header, nonzero magic, unknown type code,
        or a data size that differs from the product of the dimensions.
    """
    if len(buf) < 4:
        raise ValueError(f"{name}: IDX header needs 4 bytes; the file has {len(buf)}. The file is truncated.")
    if buf[0] != 0 or buf[1] != 0:
        raise ValueError(f"{name}: bad IDX magic number 0x{buf[:4].hex()} (the first two bytes must be 0). "
                         f"This is not an IDX file.")
    code, ndim = buf[2], buf[3]
    if code not in IDX_TYPES:
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02x} in magic 0x{buf[:4].hex()}; "
                         f"expected one of {', '.join(f'0x{c:02x}' for c in IDX_TYPES)}.")
    head = 4 + 4 * ndim
    if len(buf) < head:
        raise ValueError(f"{name}: IDX header declares {ndim} dimensions ({head} bytes) but the file has "
                         f"{len(buf)} bytes. The file is truncated.")
    dims = tuple(int(v) for v in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: four 32-bit dims would overflow int64
    got = len(buf) - head
    if got != expected:
        kind = "truncated" if got < expected else "longer than declared"
        raise ValueError(f"{name}: IDX data has {got} bytes but dimensions {dims} of {dtype.name} need "
                         f"{expected}; the file is {kind}.")
    return np.frombuffer(buf, dtype=dtype, offset=head).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` decompressed on the fly); see :func:`parse_idx` for the checks."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip when the name ends in ``.gz``); the inverse of :func:`read_idx`."""
    path = Path(path)
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str
    if key not in IDX_CODES:
        raise ValueError(f"array dtype {array.dtype} has no IDX type code; use uint8, int8, int16, int32, "
                         f"float32 or float64.")
    code = IDX_CODES[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


MNIST_SHAPE = (1, 28, 28)
TEACHER_SHAPE = (1, 8, 8)


def input_shape(dataset: str, shape=()) -> tuple[int, ...]:
    """Shape of one input example: (1, 28, 28) for MNIST, ``shape`` (default (1, 8, 8)) for the teacher."""
    if dataset == "mnist":
        return MNIST_SHAPE
    return tuple(shape) if shape else TEACHER_SHAPE


def data_root(root: str | Path | None = None) -> Path:
    """The MNIST root: ``root`` if given, else ``$TSIM_DATA``, else ``<repo>/../shared/data/mnist``."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get("TSIM_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def find_raw(root: str | Path | None, name: str) -> Path:
    """Path of ``ROOT/MNIST/raw/<name>`` or its ``.gz`` (also accepts ROOT pointing at ``raw`` itself)."""
    base = data_root(root)
    for folder in (base / "MNIST" / "raw", base / "raw", base):
        for cand in (folder / name, folder / (name + ".gz")):
            if cand.is_file():
                return cand
    raise ConfigError("data.root", f"MNIST file {name}[.gz] not found under {base}/MNIST/raw. Set data.root "
                      f"(or the env var TSIM_DATA) to the folder holding MNIST/raw/, or use "
                      f"data.dataset = \"teacher\".")


def load_mnist(root: str | Path | None = None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one MNIST split.

    Returns
    -------
    X : ndarray, shape (n, 28, 28), uint8
    y : ndarray, shape (n,), int64 in 0..9
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}.")
    img_name, lab_name, _ = FILES[split]
    img_path, lab_path = find_raw(root, img_name), find_raw(root, lab_name)
    X, y = read_idx(img_path), read_idx(lab_path)
    if X.ndim != 3 or X.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images of shape (n, rows, cols); got {X.dtype} {X.shape}.")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise ValueError(f"{lab_path}: expected uint8 labels of shape (n,); got {y.dtype} {y.shape}.")
    if len(X) != len(y):
        raise ValueError(f"{img_path} has {len(X)} images but {lab_path} has {len(y)} labels; "
                         f"the two files must belong to the same split.")
    if len(y) and y.max() > 9:
        raise ValueError(f"{lab_path}: labels must be 0..9; found {int(y.max())}.")
    return X, y.astype(np.int64)


def mnist_arrays(root: str | Path | None, n_train: int = 0, n_test: int = 0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalised MNIST, x -> (x/255 - 0.1307)/0.3081, with seeded random subsets.

    ``n_train = 0`` (``n_test = 0``) keeps the whole split; otherwise a subset drawn without
    replacement by ``np.random.default_rng(seed)``.

    Returns
    -------
    X_train : ndarray, shape (n_train, 1, 28, 28), float32
    y_train : ndarray, shape (n_train,), int64
    X_test, y_test : the same for the test split
    """
    rng = np.random.default_rng(seed)
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        X, y = load_mnist(root, split)
        if n and n < len(X):
            idx = np.sort(rng.choice(len(X), size=n, replace=False))
            X, y = X[idx], y[idx]
        Xf = ((X.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD)[:, None]
        out += [Xf, y]
    return tuple(out)


def teacher_arrays(shape: tuple[int, ...], n_train: int, n_test: int, width: int = 64, depth: int = 3,
                   classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A classification set labelled by a random deep ReLU teacher, x ~ N(0, I_d), d = prod(shape).

    h_0 = x, h_l = relu(W_l h_{l-1}) with W_l ~ N(0, 2/fan_in) (He), logits z = V h_depth - mean(z),
    label y = argmax_k z_k. Subtracting the mean logit (over all drawn inputs) balances the classes.

    Returns
    -------
    X_train : ndarray, shape (n_train, *shape), float32
    y_train : ndarray, shape (n_train,), int64
    X_test, y_test : the same for n_test fresh inputs
    """
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    X = rng.standard_normal((n_train + n_test, d))
    h = X
    for _ in range(depth):
        W = rng.standard_normal((width, h.shape[1])) * np.sqrt(2.0 / h.shape[1])
        h = np.maximum(h @ W.T, 0.0)
    V = rng.standard_normal((classes, width)) / np.sqrt(width)
    z = h @ V.T
    y = np.argmax(z - z.mean(axis=0), axis=1).astype(np.int64)
    X = X.astype(np.float32).reshape((n_train + n_test,) + tuple(shape))
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
