"""Private Numba kernels. Every function here is @njit, takes C-contiguous float64 arrays and
returns arrays; validation lives in the public wrappers."""
