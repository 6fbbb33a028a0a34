"""The `best` policy: an explicit free list searched for the smallest free block that
fits (the first of equals).

All of it is vm32.heap.freelist (its docstring gives the words, the invariants as
equations, and the costs) with the search set to BEST; Heap(policy="best") takes that
module's parameters (header, align, order, coalesce).
"""

import numpy as np

from vm32.heap import freelist
from vm32.heap.freelist import *  # noqa: F401,F403 - this policy's kernels and tables are freelist's

__all__ = [*freelist.__all__, "NAME", "ID", "SUMMARY", "SEARCH", "new_state"]

NAME = "best"
ID = 2
SUMMARY = "explicit free list: the smallest free block that fits (the first of equals)"
SEARCH = freelist.BEST


def new_state(base: int, limit: int, **params) -> np.ndarray:
    """A best-fit state over [base, limit) ready for `heap_init` (params: see PARAMS)."""
    return freelist.new_list_state(base, limit, SEARCH, **params)
