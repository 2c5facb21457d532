"""Private Numba kernels. Every function here is @njit, takes C-contiguous float64 arrays and
returns arrays; validation lives in the public wrappers."""
import contextlib
import os

import numpy as np


def set_threads(n: int) -> None:
    """Let the kernels' parallel loops use n threads (clipped to [1, NUMBA_NUM_THREADS])."""
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def numba_version() -> str:
    """Version of the compiler behind the kernels."""
    import numba

    return numba.__version__


def frozen(x: np.ndarray) -> np.ndarray:
    """A read-only, C-contiguous float64 view of x (a copy only if x is not already so).

    Kernels compile one variant per argument type, and read-only is part of the type: inputs
    the kernels only read are passed frozen always, so a cold cache compiles them once."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.flags.writeable:
        x = x.view()
        x.flags.writeable = False
    return x


_POOL: dict = {}


def parallel_for(body, n: int) -> None:
    """Run body(i) for i in range(n) on up to numba.get_num_threads() Python threads.

    The kernels called by ``body`` are compiled with ``nogil=True``, so the threads run in parallel;
    this replaces a ``prange`` over independent jobs (students, chunks of t-points), whose parallel
    compilation costs seconds on a cold cache. Each job writes only its own outputs, so the numbers
    do not depend on the thread count. The pool persists (idle threads block, they do not spin).
    Exceptions propagate.
    """
    import numba

    threads = min(int(n), numba.get_num_threads())
    if threads <= 1:
        for i in range(n):
            body(i)
        return
    from concurrent.futures import ThreadPoolExecutor

    key = (numba.get_num_threads(), os.getpid())  # a forked child must not use its parent's threads
    pool = _POOL.get(key)
    if pool is None:
        for old_key, old in list(_POOL.items()):
            if old_key[1] == os.getpid():
                old.shutdown(wait=False)
        _POOL.clear()
        pool = _POOL[key] = ThreadPoolExecutor(max_workers=key[0], thread_name_prefix="tsim-kernel")
    for _ in pool.map(body, range(n)):
        pass


COMPILING = "compiling kernels, first run only"


def cache_is_cold() -> bool:
    """True when the population-loss kernel, which every two-layer run uses, has no entry in Numba's
    cache yet (a first run on this machine or after its source changed): worker processes will
    compile before their first cell. False when it has one, or when the cache cannot be inspected.
    """
    try:
        from .arccos import _loss_grad

        import pathlib

        return not pathlib.Path(_loss_grad._cache._cache_file._index_path).exists()
    except Exception:  # noqa: BLE001 - a private Numba attribute: no notice rather than a failure
        return False


@contextlib.contextmanager
def compile_notice(start, end):
    """While the block runs, call ``start()`` when Numba begins compiling a kernel (not when it loads
    one from its cache) and ``end()`` when that compilation, nested ones included, has finished.

    Compilations hold Numba's global lock, so one depth counter serves every thread.
    """
    from numba.core import event

    class Notice(event.Listener):
        depth = 0

        def on_start(self, ev):
            self.depth += 1
            if self.depth == 1:
                start()

        def on_end(self, ev):
            self.depth -= 1
            if self.depth == 0:
                end()

    with event.install_listener("numba:compile", Notice()):
        yield
