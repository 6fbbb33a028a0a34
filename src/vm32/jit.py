"""The one place that sets numba options for vm32's compiled kernels.

Every decorator caches the machine code on disk (a warm start loads it instead
of compiling) and releases the GIL so several host threads can run kernels at
once.  They differ in two choices that decide the speed of hot paths:

* reference counting: numba increfs every array a function receives (each
  array of a tuple argument too) and decrefs it on every return path; after
  inlining LLVM cannot pair them up across branches.  A *leaf* kernel is
  compiled without it (``_nrt=False``): it may not allocate or return arrays.
* inlining: LLVM inlines small callees by itself.  *inline* kernels are always
  inlined (LLVM ``alwaysinline``), *outline* kernels never are.  A callee
  compiled without explicit options inherits its first caller's, so a cold
  path called from an inline kernel must say ``outline`` to stay out of line.

numba's own IR-level inlining (``inline="always"``) miscompiled the UM kernel on
numba 0.68 (wrong results, with an "is not in scope" NumbaIRAssumptionWarning);
only `ir_inline_leaf_kernel` uses it, for a few allocator helpers whose calls
cost more than their work, and the allocator's tests check them.

Processes share the on-disk cache (`pytest -n 2`, two `vm32` commands started
at once on a cold cache), and numba saves a function's machine code without a
lock: two processes saving two signatures of one function can both take data
file 1, and the index then names for one signature the other's code (numba
issues #4807, #9348).  `_save_locked` replaces numba's save: one save at a time
per cache directory, and the data file is written before the index names it.

A cached function also carries the code of every function it calls, each under
its symbol name: qualified name, argument types and an id that numba counts up
from 1 in every process.  The closures of one factory share a qualified name (the
page-policy dispatchers: one per policy and hook), so two processes can give two
different closures one symbol; a third process that loads both cached callers
keeps one body for the name, and one caller runs the other's closure (a policy
dispatcher that chooses no victim: "every physical frame is pinned"; numba issue
#10486).  `_ProcessUniqueIds` makes the ids count from a random base in each
process, so symbols compiled by different processes never share a name.
"""

import fcntl
import itertools
import os
import secrets
import threading
import time
from contextlib import contextmanager

from numba import njit
from numba.core import bytecode, caching, event


def _save_locked(self, key, data) -> None:
    """numba's IndexDataCacheFile.save, under an exclusive lock on the cache directory:
    the index is read, a data file chosen and written, then the index, by one process at
    a time (readers need no lock: an index entry names only data written before it)."""
    fd = os.open(self._cache_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        overloads = self._load_index()
        name = overloads.get(key)
        if name is None:
            taken = set(overloads.values())
            name = next(n for n in map(self._data_name, itertools.count(1)) if n not in taken)
        self._save_data(name, data)
        if overloads.get(key) != name:
            overloads[key] = name
            self._save_index(overloads)
    finally:
        os.close(fd)  # (releases the lock)


caching.IndexDataCacheFile.save = _save_locked


class _ProcessUniqueIds:
    """numba's source of function ids (the ``v<id>`` of every symbol it compiles): a count
    from a random 62-bit base, drawn again in a forked child, so that no two processes
    (writers of one on-disk cache) give one symbol name to two different functions."""

    def __init__(self):
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._ids = itertools.count(secrets.randbits(62) + 1)

    def __iter__(self):
        return self

    def __next__(self) -> int:
        return next(self._ids)


bytecode.FunctionIdentity._unique_ids = _ProcessUniqueIds()

_COMMON = dict(cache=True, nogil=True)

kernel = njit(**_COMMON)
"""Decorator for compiled functions: ``@kernel def f(...)``."""

inline_kernel = kernel
"""Small helpers that may allocate (LLVM inlines small callees by itself)."""

outline_kernel = njit(**_COMMON, forceinline=False)
"""Cold paths (the page-fault handler's slow path...) kept out of their callers."""

leaf_kernel = njit(**_COMMON, _nrt=False)
"""Small leaf functions on hot paths (accessors, checks): no reference counting.

Why: the UM once paid about eight atomic operations per load/store for the
increfs and decrefs of the arrays in its space tuple (3.5x slower on sandmark).
"""

inline_leaf_kernel = njit(**_COMMON, _nrt=False, forceinline=True)
"""A `leaf_kernel` always inlined: hot functions LLVM judged too big to inline
(heap_malloc/heap_free: a call passes each array as 7 words on the stack)."""

outline_leaf_kernel = njit(**_COMMON, _nrt=False, forceinline=False)
"""A `leaf_kernel` never inlined: the slow paths of inline leaf kernels."""

step_kernel = njit(**_COMMON, _nrt=False, forceinline=True, no_cpython_wrapper=True)
"""An `inline_leaf_kernel` callable from compiled code only: the UM's step, whose
arguments (the classic backend's typed lists) could not even be unboxed from
Python without reference counting."""

ir_inline_leaf_kernel = njit(**_COMMON, _nrt=False, inline="always")
"""A `leaf_kernel` inlined by numba at IR level (see the module note)."""


class CompileTimer(event.Listener):
    """Seconds the creating thread spent compiling kernels or loading them from the cache
    (inside numba's compiler lock), while installed by `compile_timer()`."""

    def __init__(self):
        self.thread = threading.get_ident()
        self.seconds = 0.0
        self._depth = 0
        self._start = 0.0

    def on_start(self, ev) -> None:  # noqa: D102 - numba's Listener API
        if threading.get_ident() == self.thread:
            if self._depth == 0:
                self._start = time.perf_counter()
            self._depth += 1

    def on_end(self, ev) -> None:  # noqa: D102 - numba's Listener API
        if threading.get_ident() == self.thread and self._depth:
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - self._start


@contextmanager
def compile_timer():
    """``with compile_timer() as t:`` t.seconds is this thread's compile time in the block, so
    a run's own time can be told apart from the first run's compilation."""
    timer = CompileTimer()
    with event.install_listener("numba:compiler_lock", timer):
        yield timer

