"""Bit scans for the allocator's bitmaps: highest and lowest set bit of an int64.

Under the JIT they compile to one ``lzcnt``/``tzcnt`` instruction (numba
intrinsics); without it (NUMBA_DISABLE_JIT=1) plain Python computes the same.
Both require ``x > 0``.
"""

import numpy as np
from numba import types
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
from numba.extending import overload


def msb(x):
    """Index of the highest set bit of `x` (> 0): msb(1) == 0, msb(256) == 8."""
    return int(x).bit_length() - 1


def lsb(x):
    """Index of the lowest set bit of `x` (> 0): lsb(12) == 2."""
    x = int(x)
    return (x & -x).bit_length() - 1


@overload(msb, inline="always")
def _msb_jit(x):
    if isinstance(x, types.Integer):
        return lambda x: np.int64(63) - np.int64(leading_zeros(np.int64(x)))
    return None


@overload(lsb, inline="always")
def _lsb_jit(x):
    if isinstance(x, types.Integer):
        return lambda x: np.int64(trailing_zeros(np.int64(x)))
    return None
