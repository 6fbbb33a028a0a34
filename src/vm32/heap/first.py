"""The `first` policy: an explicit free list searched for the first free block that fits, in list order.

All of it is vm32.heap.freelist (its docstring gives the words, the invariants as
equations, and the costs) with the search set to FIRST; Heap(policy="first") takes that
module's parameters (header, align, order, coalesce).
"""

import numpy as np

from vm32.heap import freelist
from vm32.heap.freelist import *  # noqa: F401,F403 - this policy's kernels and tables are freelist's

__all__ = [*freelist.__all__, "NAME", "ID", "SUMMARY", "SEARCH", "new_state"]

NAME = "first"
ID = 1
SUMMARY = "explicit free list: the first free block that fits, in list order"
SEARCH = freelist.FIRST


def new_state(base: int, limit: int, **params) -> np.ndarray:
    """A first-fit state over [base, limit) ready for `heap_init` (params: see PARAMS)."""
    return freelist.new_list_state(base, limit, SEARCH, **params)
