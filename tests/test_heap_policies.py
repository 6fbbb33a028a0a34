"""Tests of every vm32.heap policy: one state machine per policy against the plain models of
tests/naive_heap.py, the textbook decisions of the list policies, buddy's splits and merges,
the recycler's reuse of exact sizes, and the registry's errors."""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from naive_heap import NaiveFreeList, NaiveHeap
from vm32.errors import DoubleFree, InvalidArgument, InvalidFree, OutOfMemory
from vm32.heap import FREED_MARK, POLICIES, Heap, buddy, freelist
from vm32.heap.policies import policy_of_state

BASE = 64
LIMIT = 1 << 15
LIST_POLICIES = ("first", "best", "worst", "next")

sizes = st.one_of(st.integers(0, 64), st.integers(0, 2500), st.sampled_from([0, 1, 4, 8, 12, 252, 256, 260]))


def new_heap(policy, limit=LIMIT, **kw):
    return Heap(np.zeros(LIMIT // 4 + 16, dtype=np.uint32), BASE, limit, policy=policy, **kw)


def pattern(n: int, seed: int) -> bytes:
    return bytes((seed * 31 + i * 7) & 0xFF for i in range(n))


def write(heap, addr, data):
    view = heap.mem.view(np.uint8)
    view[addr : addr + len(data)] = np.frombuffer(data, dtype=np.uint8)


def read(heap, addr, n):
    return bytes(heap.mem.view(np.uint8)[addr : addr + n])


class PolicyMachine(RuleBasedStateMachine):
    """Random malloc/calloc/realloc/free on one policy: no overlap, alignment, contents kept,
    calloc zeroed, the same addresses as the textbook model (list policies), check() clean."""

    policy = "tlsf"

    @initialize(debug=st.booleans(), order=st.sampled_from(list(freelist.ORDERS)), coalesce=st.booleans(),
                header=st.sampled_from([4, 8]), align=st.sampled_from([8, 16]))
    def setup(self, debug, order, coalesce, header, align):
        params = {}
        self.model = None
        if self.policy in LIST_POLICIES:
            params = dict(order=order, coalesce=coalesce, header=header, align=align)
        if self.policy in LIST_POLICIES and not debug:  # (the debugging heap adds red zones to every block)
            self.model = NaiveFreeList(BASE, LIMIT - BASE, search=self.policy.upper(), order=order,
                                       coalesce=coalesce, header=header, align=align, teach=False)
        self.heap = new_heap(self.policy, debug=debug, **params)
        self.debug = debug
        self.live = NaiveHeap()
        self.freed: list[int] = []
        self.seed = 0

    def _new(self, addr, data):
        self.live.add(addr, data)
        write(self.heap, addr, data)

    def _alloc(self, n, zeroed):
        expected = self.model.malloc(n)[0] if self.model else None
        try:
            addr = self.heap.calloc(n) if zeroed else self.heap.malloc(n)
        except OutOfMemory:
            assert expected in (None, -1)
            return
        assert expected in (None, addr)
        if zeroed:
            assert read(self.heap, addr, n) == bytes(n)
        self.seed += 1
        self._new(addr, pattern(n, self.seed))

    @rule(n=sizes)
    def malloc(self, n):
        self._alloc(n, False)

    @rule(n=sizes)
    def calloc(self, n):
        self._alloc(n, True)

    @precondition(lambda self: self.live.blocks)
    @rule(data=st.data())
    def free(self, data):
        addr = data.draw(st.sampled_from(sorted(self.live.blocks)))
        n = len(self.live.remove(addr))
        self.heap.free(addr)
        if self.model:
            assert self.model.free_block(addr) == 0
        if self.debug:  # in the quarantine, filled
            assert (self.heap.mem[addr // 4 : (addr + n) // 4] == FREED_MARK).all()
        self.freed.append(addr)

    @precondition(lambda self: self.live.blocks)
    @rule(data=st.data(), n=sizes)
    def realloc(self, data, n):
        addr = data.draw(st.sampled_from(sorted(self.live.blocks)))
        old = bytes(self.live.blocks[addr])
        try:
            new = self.heap.realloc(addr, n)
        except OutOfMemory:
            assert read(self.heap, addr, len(old)) == old
            return
        self.live.remove(addr)
        keep = min(n, len(old))
        assert read(self.heap, new, keep) == old[:keep]
        self._new(new, old[:keep] + pattern(n - keep, self.seed))
        if self.model:
            self._model_realloc(addr, n, new)

    def _model_realloc(self, addr, n, new):
        block = addr - self.model.header
        if self.model.block_size(n) == self.model.live[block]:
            assert new == addr
            return
        expected, _ = self.model.malloc(n)
        self.model.free_block(addr)
        assert new == expected

    @precondition(lambda self: self.freed)
    @rule()
    def free_again(self):
        addr = self.freed[-1]
        if addr in self.live.blocks:
            return  # handed out again since
        with pytest.raises(InvalidFree):  # DoubleFree, or InvalidFree once merged away
            self.heap.free(addr)

    @rule(offset=st.sampled_from([-8, -4, 1, 4, 8, 16, 1 << 20]))
    def free_bad(self, offset):
        base = min(self.live.blocks) if self.live.blocks else BASE + 8
        if base + offset in self.live.blocks:
            return
        with pytest.raises(InvalidFree):
            self.heap.free(base + offset)
        assert not self.heap.is_live(base + offset)

    @invariant()
    def healthy(self):
        assert self.heap.check() == []
        s = self.heap.stats()
        assert s["live_blocks"] == len(self.live.blocks)
        assert s["live_bytes"] == sum(len(d) for d in self.live.blocks.values())
        assert s["hole_bytes"] >= s["largest_hole"] >= 0
        for addr, d in self.live.blocks.items():
            assert self.heap.is_live(addr) and self.heap.size_of(addr) == len(d)
            assert read(self.heap, addr, len(d)) == bytes(d)
        if self.model:
            assert freelist.entries(self.heap.state) == self.model.free


def _machine_test(policy):
    machine = type(f"{policy.title()}Machine", (PolicyMachine,), {"policy": policy})
    test = machine.TestCase
    test.settings = settings(max_examples=12, stateful_step_count=25, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
    return test


for _name in POLICIES:
    if _name != "tlsf":  # tlsf has its own, larger machine in test_heap.py
        globals()[f"Test{_name.title()}Machine"] = _machine_test(_name)


# ---------------------------------------------------------------- textbook decisions


def teaching_run(search, ops, *, order="ADDRSORT", coalesce=False, header=0, align=-1, size=100, base=1000):
    """Run ops such as "+10,-0" (alloc 10 bytes, free ptr[0]) through the list policy in
    teaching mode; per op (payload address or free status, searched, free list)."""
    state = freelist.new_teaching_state(base, size, freelist.SEARCHES[search], freelist.ORDERS[order], coalesce,
                                        header, align)
    mem = np.zeros(1, np.uint32)
    ptrs, out = [], []
    for op in ops.split(","):
        if op[0] == "+":
            p = int(freelist.heap_malloc(mem, state, int(op[1:])))
            ptrs.append(p if p else -1)
            out.append((ptrs[-1], int(state[freelist.M_LAST_SEARCHED]), freelist.entries(state)))
        else:
            status = freelist.heap_free(mem, state, ptrs[int(op[1:])])
            out.append((int(status), 0, freelist.entries(state)))
    return out


# Holes of 30 (at 1010) and 20 (at 1050) in a full 100-byte heap.
HOLES = "+10,+30,+10,+20,+30,-1,-3"


@pytest.mark.parametrize("search, addr, searched, after", [
    ("FIRST", 1010, 1, [(1025, 15), (1050, 20)]),
    ("BEST", 1050, 2, [(1010, 30), (1065, 5)]),
    ("WORST", 1010, 2, [(1025, 15), (1050, 20)]),
    ("NEXT", 1010, 1, [(1025, 15), (1050, 20)]),
])
def test_textbook_fits_on_the_same_free_list(search, addr, searched, after):
    *_, (got, count, entries) = teaching_run(search, HOLES + ",+15")
    assert (got, count, entries) == (addr, searched, after)


def test_next_fit_goes_on_from_where_it_stopped():
    # Holes 1010:30 and 1050:20; Alloc(5) takes 1010 (rover now in 1015:25); after a hole
    # opens at 1000, first fit would take 1000, next fit goes on at 1015.
    run = teaching_run("NEXT", HOLES + ",+5,-0,+8")
    assert run[-3][0] == 1010
    assert run[-1][:2] == (1015, 1)
    first = teaching_run("FIRST", HOLES + ",+5,-0,+8")
    assert first[-1][:2] == (1000, 1)


def test_worst_fit_prefers_the_first_of_equal_sizes_and_best_the_first_exact():
    run = teaching_run("WORST", "+20,+10,+20,+10,+40,-0,-2,+5")
    assert run[-1][:2] == (1000, 2)
    run = teaching_run("BEST", "+20,+10,+20,+10,+40,-0,-2,+20")
    assert run[-1][:3] == (1000, 2, [(1030, 20)])


@pytest.mark.parametrize("order, expected", [
    ("ADDRSORT", [(1000, 10), (1020, 30), (1060, 40)]),
    ("SIZESORT+", [(1000, 10), (1020, 30), (1060, 40)]),
    ("SIZESORT-", [(1060, 40), (1020, 30), (1000, 10)]),
    ("INSERT-FRONT", [(1020, 30), (1000, 10), (1060, 40)]),
    ("INSERT-BACK", [(1060, 40), (1000, 10), (1020, 30)]),
])
def test_list_orders(order, expected):
    # blocks 10 @1000, 10 @1010, 30 @1020, 10 @1050; the tail 40 @1060 stays free
    run = teaching_run("FIRST", "+10,+10,+30,+10,-0,-2", order=order)
    assert run[-1][2] == expected


def test_coalescing_merges_neighbours_in_list_order_only():
    run = teaching_run("FIRST", "+10,+10,+10,+70,-0,-1,-2", coalesce=True)
    assert run[-1][2] == [(1000, 30)]
    # INSERT-FRONT: 1020 then 1010 then 1000 at the front: each merges with the one after it
    run = teaching_run("FIRST", "+10,+10,+10,+70,-2,-1,-0", coalesce=True, order="INSERT-FRONT")
    assert run[-1][2] == [(1000, 30)]
    # INSERT-BACK: 1000, 1020, then 1010 at the back: only 1010 after 1020 is in list order
    run = teaching_run("FIRST", "+10,+10,+10,+70,-0,-2,-1", coalesce=True, order="INSERT-BACK")
    assert run[-1][2] == [(1000, 10), (1020, 10), (1010, 10)]


def test_header_and_alignment_in_the_textbook_size_rule():
    run = teaching_run("FIRST", "+3,+5", header=4, align=4)
    assert [r[0] for r in run] == [1004, 1012]  # blocks of 4 + 4 and 8 + 4 bytes; payload = block + 4
    assert run[-1][2] == [(1020, 80)]


# ---------------------------------------------------------------- buddy and recycler


def test_buddy_splits_down_and_merges_back():
    h = new_heap("buddy")
    first = h.stats()["free_list_len"]
    a = h.malloc(4)  # an 8-byte block: every order above it split once
    assert a == BASE + 8
    assert h.stats()["free_list_len"] == first + (int(np.log2(LIMIT)) - 1 - 3) - 1
    b = h.malloc(4)
    assert b == a + 8  # a's buddy
    c = h.malloc(20)  # 24 + 4 -> 32 bytes: the order-5 block after a and b's order-4 pair
    assert c == a + 32
    for x in (a, c, b):
        h.free(x)
        assert h.check() == []
    assert h.stats()["free_list_len"] == first  # all merged back
    assert h.stats()["footprint"] == 64 + 4  # high-water mark: base .. end of c's block


def test_buddy_blocks_are_powers_of_two():
    h = new_heap("buddy")
    for n in (1, 4, 5, 12, 13, 100, 1000, 4092, 4093):
        a = h.malloc(n)
        assert (a - 4 - (BASE + 4)) % buddy.heap_block_bytes(h.state, n) == 0
        assert buddy.heap_block_bytes(h.state, n) == 1 << max(3, (n + 3).bit_length())
    assert h.check() == []


def test_recycler_reuses_exact_sizes_last_in_first_out():
    h = new_heap("recycler")
    a, b, c = h.malloc(100), h.malloc(100), h.malloc(50)
    h.free(a)
    h.free(b)
    assert h.malloc(97) == b  # same block size (104 bytes): the last freed first
    assert h.malloc(100) == a
    h.free(c)
    d = h.malloc(101)  # 112-byte block: no freed block of that size, a new one
    assert d not in (a, b, c) and d > c
    assert h.malloc(50) == c
    assert h.check() == []


def test_recycler_never_splits_or_merges():
    h = new_heap("recycler", limit=4096)
    blocks = [h.malloc(8) for _ in range(200)]
    for a in blocks:
        h.free(a)
    with pytest.raises(OutOfMemory):
        h.malloc(1000)  # 3 KB free in 16-byte blocks, none usable
    assert h.stats()["hole_bytes"] == 200 * 16


# ---------------------------------------------------------------- registry and errors


def test_registry_and_parameters():
    assert list(POLICIES) == ["tlsf", "first", "best", "worst", "next", "recycler", "buddy", "sharded"]
    assert len({m.ID for m in POLICIES.values()}) == len(POLICIES)
    with pytest.raises(InvalidArgument, match="unknown heap policy 'bset'.*tlsf, first"):
        new_heap("bset")
    with pytest.raises(InvalidArgument, match="buddy does not take order"):
        new_heap("buddy", order="ADDRSORT")
    with pytest.raises(InvalidArgument, match="tlsf does not take header"):
        new_heap("tlsf", header=8)
    with pytest.raises(InvalidArgument, match="header size 6"):
        new_heap("first", header=6)
    with pytest.raises(InvalidArgument, match="alignment 12"):
        new_heap("best", align=12)
    with pytest.raises(InvalidArgument, match="unknown list order 'SIZE'"):
        new_heap("worst", order="SIZE")
    assert new_heap("first", order="sizesort-").kernels is POLICIES["first"]


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_policy_reports_bad_frees_and_corruption(policy):
    h = new_heap(policy)
    a = h.malloc(40)
    h.free(a)
    with pytest.raises(DoubleFree):
        h.free(a)
    for bad in (0, -8, 3, a + 4, LIMIT + 64):
        with pytest.raises(InvalidFree):
            h.free(bad)
        with pytest.raises(InvalidFree):
            h.size_of(bad)
    b = h.malloc(40)
    h.mem[(b - 4) // 4] = 1 << 20  # the header of a live block: a size that runs off the heap
    assert h.check() != []


@pytest.mark.parametrize("policy", list(POLICIES))
def test_state_names_its_policy(policy):
    h = new_heap(policy)
    assert policy_of_state(h.state) is POLICIES[policy] is h.kernels
