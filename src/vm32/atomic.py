"""Atomic operations on numpy array elements, usable inside numba kernels.

numba has no CPU atomics, and the paged machine needs a few: page-table entries
are updated by the MMU of one CPU (Accessed/Dirty) while the kernel on another
CPU evicts the page, and a spin lock serialises fault handling.  Each operation
here is a plain Python function (correct under the GIL, so kernels still run
with ``NUMBA_DISABLE_JIT=1``) which `_atomic` gives an @overload that emits one
LLVM atomic instruction (``cmpxchg``, ``atomicrmw``, ``load atomic``, ``store
atomic``) on the element's address.  All use sequentially consistent ordering:
the callers are slow paths or once-per-kernel-entry handshakes, so the simple
strongest ordering costs nothing measurable (on x86 an atomic load is a plain load).

Only 1-d C-contiguous arrays of 32- or 64-bit integers are supported; the index
is not bounds-checked (callers own the index).  Also here, for spin-waits and
the few hand-made barriers: `fence`, `cpu_yield` and `spin_pause`.
"""

from __future__ import annotations

import os
import platform

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

_ORDER = "seq_cst"


def _check(arr, idx) -> bool:
    return (
        isinstance(arr, types.Array)
        and arr.ndim == 1
        and isinstance(arr.dtype, types.Integer)
        and arr.dtype.bitwidth in (32, 64)
        and isinstance(idx, types.Integer)
    )


# numba matches parameters exactly (no *args in intrinsics, overloads and their
# implementations), so each arity spells them out once: (intrinsic typer, overload) around
# the typing helper t and the intrinsic f.
_SHAPES = {
    0: (
        lambda t: lambda typingctx, arr, i: t(arr, i, ()),
        lambda f: lambda arr, i: (lambda arr, i: f(arr, i)) if _check(arr, i) else None,
    ),
    1: (
        lambda t: lambda typingctx, arr, i, a: t(arr, i, (a,)),
        lambda f: lambda arr, i, a: (lambda arr, i, a: f(arr, i, a)) if _check(arr, i) else None,
    ),
    2: (
        lambda t: lambda typingctx, arr, i, a, b: t(arr, i, (a, b)),
        lambda f: lambda arr, i, a, b: (lambda arr, i, a, b: f(arr, i, a, b)) if _check(arr, i) else None,
    ),
}


def _atomic(nvals: int, emit, returns: bool = True):
    """Decorator for the plain-Python version of an atomic operation on ``arr[i]``.

    Gives it an @overload whose intrinsic computes the element's address, casts the
    `nvals` operands to the element type and returns ``emit(builder, ptr, operands,
    width_in_bytes)`` (nothing when `returns` is False).
    """

    def typer(arr, idx, vals):
        if not _check(arr, idx):
            return None

        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
            ops = [context.cast(builder, v, t, aryty.dtype) for v, t in zip(args[2:], signature.args[2:])]
            res = emit(builder, ptr, ops, aryty.dtype.bitwidth // 8)
            return res if returns else context.get_dummy_value()

        return (arr.dtype if returns else types.void)(arr, idx, *vals), codegen

    def deco(pyfunc):
        make_typer, make_overload = _SHAPES[nvals]
        t = make_typer(typer)
        t.__name__ = f"_{pyfunc.__name__}_intrinsic"
        overload(pyfunc)(make_overload(intrinsic(t)))
        return pyfunc

    return deco


@_atomic(2, lambda b, p, v, w: b.extract_value(b.cmpxchg(p, v[0], v[1], _ORDER, _ORDER), 0))
def atomic_cas(arr, i, expected, new):
    """Compare-and-swap ``arr[i]``: store `new` if it equals `expected`; return the old value."""
    old = arr[i]
    if old == expected:
        arr[i] = new
    return old


@_atomic(1, lambda b, p, v, w: b.atomic_rmw("xchg", p, v[0], _ORDER))
def atomic_xchg(arr, i, new):
    """Store `new` into ``arr[i]`` and return the previous value, atomically."""
    old = arr[i]
    arr[i] = new
    return old


@_atomic(1, lambda b, p, v, w: b.atomic_rmw("add", p, v[0], _ORDER))
def atomic_add(arr, i, delta):
    """Add `delta` to ``arr[i]`` atomically; return the previous value."""
    old = arr[i]
    arr[i] = old + delta
    return old


@_atomic(1, lambda b, p, v, w: b.atomic_rmw("or", p, v[0], _ORDER))
def atomic_or(arr, i, bits):
    """OR `bits` into ``arr[i]`` atomically; return the previous value."""
    old = arr[i]
    arr[i] = old | bits
    return old


@_atomic(0, lambda b, p, v, w: b.load_atomic(p, _ORDER, w))
def atomic_load(arr, i):
    """Read ``arr[i]`` with sequentially consistent ordering (never hoisted out of a loop)."""
    return arr[i]


@_atomic(1, lambda b, p, v, w: b.store_atomic(v[0], p, _ORDER, w), returns=False)
def atomic_store(arr, i, value):
    """Write ``arr[i]`` with sequentially consistent ordering."""
    arr[i] = value


def _statement(name: str, emit):
    """An intrinsic without operands or result whose code is ``emit(builder)``."""

    def typer(typingctx):
        def codegen(context, builder, signature, args):
            emit(builder)
            return context.get_dummy_value()

        return types.void(), codegen

    typer.__name__ = name
    return intrinsic(typer)


def _call_c(builder, name: str, restype) -> None:
    builder.call(cgutils.get_or_insert_function(builder.module, ir.FunctionType(restype, []), name), [])


_X86 = platform.machine() in ("x86_64", "AMD64", "i386", "i686")
_fence_intr = _statement("_fence_intr", lambda b: b.fence(_ORDER))
_yield_intr = _statement("_yield_intr", lambda b: _call_c(b, "sched_yield", ir.IntType(32)))
_pause_intr = _statement("_pause_intr", lambda b: _call_c(b, "llvm.x86.sse2.pause", ir.VoidType()) if _X86 else None)


def fence():
    """A full memory fence: no load after it is performed before a store before it."""


def cpu_yield():
    """Give the host CPU to another thread (sched_yield)."""
    os.sched_yield()


SPIN_PAUSES = 512  # pauses (~10-40 ns each) before a spin-wait starts yielding the host CPU


def spin_pause(spins):
    """One step of a spin-wait that has run `spins` steps: a ``pause`` (frees the core's
    resources for its sibling, saves power), then, past SPIN_PAUSES steps, sched_yield
    (the lock holder may have been descheduled).  Returns spins + 1.

    Why not yield at once: the waits here (the machine lock, a shootdown answer, a
    write-back) last a few microseconds; a yield on a busy host hands the core to
    another process for a whole time slice (measured with perf: two CPUs faulting back
    to back spent ~20% of their samples in sched_yield and the scheduler; pausing
    first made that benchmark about twice as fast).
    """
    if spins >= SPIN_PAUSES:
        os.sched_yield()
    return spins + 1


@overload(fence)
def _ov_fence():
    return lambda: _fence_intr()


@overload(cpu_yield)
def _ov_yield():
    return lambda: _yield_intr()


@overload(spin_pause)
def _ov_spin_pause(spins):
    def impl(spins):
        _pause_intr()
        if spins >= SPIN_PAUSES:
            _yield_intr()
        return spins + 1

    return impl
