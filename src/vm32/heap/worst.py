"""The `worst` policy: an explicit free list searched for the largest free block (the first of equals).

All of it is vm32.heap.freelist (its docstring gives the words, the invariants as
equations, and the costs) with the search set to WORST; Heap(policy="worst") takes that
module's parameters (header, align, order, coalesce).
"""

import numpy as np

from vm32.heap import freelist
from vm32.heap.freelist import *  # noqa: F401,F403 - this policy's kernels and tables are freelist's

__all__ = [*freelist.__all__, "NAME", "ID", "SUMMARY", "SEARCH", "new_state"]

NAME = "worst"
ID = 3
SUMMARY = "explicit free list: the largest free block (the first of equals)"
SEARCH = freelist.WORST


def new_state(base: int, limit: int, **params) -> np.ndarray:
    """A worst-fit state over [base, limit) ready for `heap_init` (params: see PARAMS)."""
    return freelist.new_list_state(base, limit, SEARCH, **params)
