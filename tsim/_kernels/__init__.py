"""Private Numba kernels. Every function here is @njit, takes C-contiguous float64 arrays and
returns arrays; validation lives in the public wrappers."""


def set_threads(n: int) -> None:
    """Let the kernels' parallel loops use n threads (clipped to [1, NUMBA_NUM_THREADS])."""
    import numba

    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def numba_version() -> str:
    """Version of the compiler behind the kernels."""
    import numba

    return numba.__version__
