"""The one place that sets numba options for vm32's compiled kernels.

`kernel` compiles a plain function over numpy arrays and scalars, caches the
machine code on disk (a warm start loads it instead of compiling) and releases
the GIL so several host threads can run kernels at once.
"""

from numba import njit

kernel = njit(cache=True, nogil=True)
"""Decorator for hot-path functions: ``@kernel def f(...)``."""

inline_kernel = njit(cache=True, nogil=True, inline="always")
"""For tiny accessors that must vanish into their callers."""
