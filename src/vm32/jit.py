"""The one place that sets numba options for vm32's compiled kernels.

`kernel` compiles a plain function over numpy arrays and scalars, caches the
machine code on disk (a warm start loads it instead of compiling) and releases
the GIL so several host threads can run kernels at once.
"""

from numba import njit

kernel = njit(cache=True, nogil=True)
"""Decorator for hot-path functions: ``@kernel def f(...)``."""

leaf_kernel = njit(cache=True, nogil=True, _nrt=False)
"""For small leaf functions on hot paths (accessors, checks): LLVM inlines them.

They are compiled without numba's reference counting (`_nrt=False`), so they
may not allocate or return arrays.  Why: a function that receives a tuple of
arrays increfs every array on entry and decrefs it on every return path;
after inlining LLVM cannot pair them up across branches, and the UM paid about
eight atomic operations per load/store (measured: 3.5x slower on sandmark).
"""

inline_leaf_kernel = njit(cache=True, nogil=True, _nrt=False, forceinline=True, no_cpython_wrapper=True)
"""A `leaf_kernel` that LLVM always inlines into its callers (``alwaysinline``), for
hot functions too big for LLVM to inline by itself (the UM's step).  Callable
from compiled code only (no Python wrapper: its arguments, such as typed lists,
could not be unboxed without reference counting).  A callee compiled without
explicit options inherits these: give callees that must not be inlined, or that
need reference counting, their own options."""

inline_kernel = kernel
"""Small helpers that may allocate: same options as `kernel` (LLVM inlines small
callees by itself).

numba's own IR-level inlining (``inline="always"``) is avoided on purpose: on
numba 0.68 it miscompiled the UM kernel (wrong results, with an
"is not in scope" NumbaIRAssumptionWarning).
"""
