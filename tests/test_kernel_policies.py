"""Replacement policies on scripted reference strings, driven directly over a frame table
(as the trace simulator will), checked against the list-based oracles in naive_paging."""

import numpy as np
import pytest

from naive_paging import clock_faults, fifo_faults, lru_faults, nru_faults, random_refs
from vm32.errors import InvalidArgument
from vm32.kernel.layout import FF_PINNED, FREE, FT_COLS, FT_FLAGS, FT_OWNER, FT_PTE, FT_SLOT, FT_VPN
from vm32.kernel.policies import (
    POLICIES,
    live_policy_id,
    load_policy,
    make_policy_state,
    register,
    sees_every_access,
    policy_choose_victim,
    policy_id,
    policy_on_access,
    policy_on_map,
)
from vm32.mmu import PTE_A, PTE_D, PTE_P, PTE_U, PTE_W, make_tlbs, pte_make

NO_CPUS = np.zeros(0, dtype=np.int64)  # like the trace simulator: no CPUs to send TLB requests to


class Harness:
    """nframes frames; the PTE of page p lives in frame `nframes` (a page table) at index p."""

    def __init__(self, policy, nframes, seed=1, period=4):
        self.n = nframes
        self.words = np.zeros((nframes + 1) * 1024, dtype=np.uint32)
        self.ft = np.zeros((nframes, FT_COLS), dtype=np.int64)
        self.ft[:, FT_OWNER] = FREE
        self.ft[:, FT_PTE] = -1
        self.pol = make_policy_state(policy_id(policy), nframes, seed, period)
        self.tlb = make_tlbs(1, 1)
        self.free = list(range(nframes))
        self.faults = 0
        self.victims = []

    def ref(self, page, write=False):
        i = self.n * 1024 + page
        pte = int(self.words[i])
        if pte & PTE_P:
            self.words[i] = pte | PTE_A | (PTE_D if write else 0)
            policy_on_access(self.ft, self.pol, pte >> 12)
            return
        self.faults += 1
        if self.free:
            f = self.free.pop(0)
        else:
            f = policy_choose_victim(self.words, self.ft, self.pol, self.tlb, NO_CPUS, -1)
            assert f >= 0
            self.victims.append(int(self.ft[f, FT_VPN]))
            self.words[self.ft[f, FT_PTE] >> 2] = 0
        self.ft[f, FT_OWNER], self.ft[f, FT_VPN], self.ft[f, FT_FLAGS], self.ft[f, FT_SLOT] = 0, page, 0, -1
        self.ft[f, FT_PTE] = i * 4
        policy_on_map(self.ft, self.pol, f)
        self.words[i] = pte_make(f, PTE_W | PTE_U | PTE_A | (PTE_D if write else 0))

    def run(self, refs, writes=None):
        for k, p in enumerate(refs):
            self.ref(p, bool(writes[k]) if writes is not None else False)
        return self.faults, self.victims


BELADY = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]


def test_fifo_belady_anomaly():
    assert Harness("fifo", 3).run(BELADY)[0] == 9
    assert Harness("fifo", 4).run(BELADY)[0] == 10
    assert Harness("fifo", 3).run(BELADY) == fifo_faults(BELADY, 3)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("nframes", [3, 5, 8])
def test_fifo_lru_clock_match_oracles(seed, nframes):
    refs = random_refs(seed, 300, 12)
    assert Harness("fifo", nframes).run(refs) == fifo_faults(refs, nframes)
    assert Harness("lru", nframes).run(refs) == lru_faults(refs, nframes)
    assert Harness("clock", nframes).run(refs) == clock_faults(refs, nframes)


def test_lru_and_clock_on_classic_string():
    refs = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]
    assert Harness("lru", 3).run(refs)[0] == 12  # the textbook figure
    assert Harness("lru", 3).run(refs) == lru_faults(refs, 3)
    assert Harness("fifo", 3).run(refs)[0] == 15
    assert Harness("clock", 3).run(refs) == clock_faults(refs, 3)


@pytest.mark.parametrize("seed", range(3))
def test_nru_matches_oracle(seed):
    refs = random_refs(seed, 300, 10)
    writes = [r % 3 == 0 for r in random_refs(seed + 100, 300, 10)]
    assert Harness("nru", 4, period=3).run(refs, writes) == nru_faults(refs, writes, 4, 3)


def test_nru_prefers_clean_unreferenced_pages():
    h = Harness("nru", 3, period=1000)
    h.run([1, 2, 3], [True, False, True])  # all referenced; 2 is clean
    h.words[3 * 1024 + 1] = int(h.words[3 * 1024 + 1]) & ~PTE_A  # page 1 not referenced but dirty -> class 1
    h.ref(4)
    assert h.victims == [1]


def test_random_is_seeded_and_reproducible():
    refs = random_refs(9, 200, 16)
    a = Harness("random", 5, seed=42).run(refs)
    b = Harness("random", 5, seed=42).run(refs)
    c = Harness("random", 5, seed=43).run(refs)
    assert a == b and a != c
    assert all(0 <= v < 16 for v in a[1])


@pytest.mark.parametrize("policy", ["fifo", "clock", "nru", "lru", "random"])
def test_pinned_frames_are_never_victims(policy):
    h = Harness(policy, 4)
    h.run([0, 1, 2, 3])
    h.ft[1, FT_FLAGS] |= FF_PINNED  # frame 1 holds page 1
    h.run(random_refs(5, 200, 20))
    assert 1 not in h.victims
    assert h.ft[1, FT_VPN] == 1
    for f in range(4):
        h.ft[f, FT_FLAGS] |= FF_PINNED
    assert policy_choose_victim(h.words, h.ft, h.pol, h.tlb, NO_CPUS, -1) == -1


def test_policy_names():
    assert policy_id("Second-Chance") == policy_id("clock")
    with pytest.raises(InvalidArgument, match="unknown replacement policy"):
        policy_id("opt-ish")
    assert {"fifo", "clock", "clock-clear", "nru", "lru", "random", "opt", "sieve", "arc"} <= set(POLICIES)
    assert len(set(POLICIES.values())) == len(POLICIES)  # ids are unique


def test_registry_declares_and_refuses():
    assert sees_every_access(policy_id("lru")) and sees_every_access(policy_id("arc"))
    assert not sees_every_access(policy_id("clock"))
    with pytest.raises(InvalidArgument, match="needs to know the future.*vm32 trace sim"):
        live_policy_id("opt")
    assert live_policy_id("sieve") == policy_id("sieve")
    with pytest.raises(InvalidArgument, match="cannot load policy"):
        load_policy("no_such_module_vm32:Policy")
    with pytest.raises(InvalidArgument, match="lacks"):
        register(object())
