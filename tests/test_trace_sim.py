"""vm32.trace.sim: replays against the plain oracles of naive_paging, the live kernel on the
same reference string, TLB and Dirty accounting, and the one-pass futures (OPT's next
uses, LRU's stack distances)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naive_paging import (
    arc_faults,
    clock_clear_faults,
    clock_faults,
    fifo_faults,
    lru_faults,
    nru_faults,
    opt_faults,
    random_refs,
    sieve_faults,
)
from user_policy import mru_faults
from vm32.errors import InvalidArgument
from vm32.kernel.machine import Machine
from vm32.trace.future import NEVER, lru_misses, next_uses, stack_distances
from vm32.trace.readers import trace_from_pages
from vm32.trace.sim import simulate

BELADY = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]
ORACLES = {
    "fifo": fifo_faults,
    "lru": lru_faults,
    "clock": clock_faults,
    "clock-clear": clock_clear_faults,
    "opt": opt_faults,
    "sieve": sieve_faults,
    "arc": arc_faults,
    "user_policy:MRU": lambda refs, n: (mru_faults(refs, n), None),
}


def test_fifo_belady_anomaly():
    trace = trace_from_pages(BELADY)
    assert [simulate(trace, "fifo", n).misses for n in (3, 4)] == [9, 10]


@pytest.mark.parametrize("policy", list(ORACLES))
def test_policies_match_oracles_whatever_the_tlb(policy):
    for seed in range(3):
        refs = random_refs(seed, 1000, 30)
        trace = trace_from_pages(refs, [r % 7 == 0 for r in refs])
        for n in (1, 3, 8, 29):
            expected = ORACLES[policy](refs, n)[0]
            for tlb in (0, 1, 4, 1024):
                assert simulate(trace, policy, n, tlb).misses == expected, (seed, n, tlb)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 25), min_size=1, max_size=300), st.integers(1, 12))
def test_opt_is_never_worse(refs, frames):
    trace = trace_from_pages(refs)
    best = simulate(trace, "opt", frames, 16).misses
    assert best == opt_faults(refs, frames)[0]
    for policy in ("fifo", "lru", "clock", "clock-clear", "nru", "random", "sieve", "arc"):
        assert best <= simulate(trace, policy, frames, 16).misses, policy


def test_nru_matches_oracle():
    refs = random_refs(4, 2000, 12)
    writes = [r % 3 == 0 for r in random_refs(104, 2000, 12)]
    trace = trace_from_pages(refs, writes)
    assert simulate(trace, "nru", 4, 16).misses == nru_faults(refs, writes, 4, 16)[0]


def test_counts_cold_misses_writebacks_and_tlb_hits():
    # pages 1..3 written, then read back on 2 frames: 1, 2 and 3 leave Dirty once each, 1 leaves clean
    trace = trace_from_pages([1, 2, 3, 1, 1, 2, 3], writes=[1, 1, 1, 0, 0, 0, 0])
    r = simulate(trace, "fifo", 2, tlb=4)
    assert (r.misses, r.cold_misses) == (6, 3)
    assert r.writebacks == 3
    assert r.tlb_hit_rate == pytest.approx(1 / 7)  # the second reference to page 1
    assert simulate(trace, "fifo", 2, tlb=0).tlb_hit_rate is None


@pytest.mark.parametrize("policy", ["fifo", "clock", "lru", "nru", "clock-clear", "sieve", "arc"])
def test_kernel_and_simulator_agree(policy):
    refs = random_refs(11, 400, 20)
    writes = [int(r % 4 == 0) for r in random_refs(12, 400, 20)]
    data_frames = 6
    # the live kernel: kernel memory + its page table + a page directory + one page table are extra
    with Machine(frames=data_frames + 4, swap="1M", policy=policy, tlb_entries=8, cpus=1) as m:
        p = m.spawn(heap_size=64 * 4096)
        for page, w in zip(refs, writes):
            va = p.heap_base + page * 4096
            p.store_u32(va, page) if w else p.load_u32(va)
        kernel_faults = p.stats()["page_faults"]
    sim = simulate(trace_from_pages(refs, writes), policy, data_frames, tlb=8)
    assert sim.misses == kernel_faults


def test_live_kernel_refuses_opt():
    with pytest.raises(InvalidArgument, match="needs to know the future"):
        Machine(frames=16, swap="64K", policy="opt", cpus=1)


def test_bad_arguments():
    trace = trace_from_pages(BELADY)
    with pytest.raises(InvalidArgument, match="frames must be an integer >= 1"):
        simulate(trace, "fifo", 0)
    with pytest.raises(InvalidArgument, match="power of two"):
        simulate(trace, "fifo", 3, tlb=3)
    with pytest.raises(InvalidArgument, match="unknown replacement policy"):
        simulate(trace, "belady", 3)


def test_next_uses():
    nu = next_uses(np.array([5, 6, 5, 7, 6], dtype=np.uint32))
    assert nu.tolist() == [2, 4, NEVER, NEVER, NEVER]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=400), st.integers(1, 45))
def test_stack_distances_give_lru_misses(refs, frames):
    hist, cold = stack_distances(trace_from_pages(refs).vpns)
    assert cold == len(set(refs))
    assert lru_misses(hist, cold, [frames])[0] == lru_faults(refs, frames)[0]
