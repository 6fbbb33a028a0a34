"""Process heaps: vm32.heap's allocator inside a process's paged address space.

Block headers live in the process's pages, so heap operations fault pages in and out;
an operation whose page-in fails is undone completely (procheap.py; its direct mode,
the paged UM's, is tested in test_um_paged.py)."""

import random

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from vm32.errors import DoubleFree, HeapError, InvalidArgument, InvalidFree, OutOfMemory
from vm32.kernel import Machine


@pytest.fixture
def machine():
    m = Machine(frames=16, swap="2M", policy="fifo", tlb_entries=16)
    yield m
    m.close()


def test_malloc_write_read_free(machine):
    p = machine.spawn(None, heap_size=64 * 4096)
    a = p.malloc(100)
    assert p.heap_base < a < p.heap_end and a % 8 == 0
    p.write(a, b"x" * 100)
    b = p.malloc(5000)
    assert b >= a + 100 or b + 5000 <= a  # no overlap
    assert p.read(a, 100) == b"x" * 100 and p.size_of(a) == 100 and p.size_of(b) == 5000
    p.free(a)
    assert not p.heap.is_live(a) and p.heap.is_live(b)
    assert p.heap_check() == []
    s = p.heap_stats()
    assert s["live_blocks"] == 1 and s["live_bytes"] == 5000 and s["rolled_back"] == 0


def test_headers_are_words_in_the_process_pages(machine):
    p = machine.spawn(None, heap_size=16 * 4096)
    a = p.malloc(1234)
    assert p.load_u32(a - 4) == 1234  # the allocator's header, seen by the process itself


def test_realloc_keeps_contents_and_calloc_zeroes(machine):
    p = machine.spawn(None, heap_size=64 * 4096)
    a = p.malloc(3000)
    data = bytes(random.Random(1).randrange(256) for _ in range(3000))
    p.write(a, data)
    p.malloc(16)  # a neighbour, so growing has to move
    b = p.realloc(a, 30000)
    assert p.read(b, 3000) == data
    c = p.realloc(b, 100)
    assert p.read(c, 100) == data[:100]
    z = p.calloc(20000)
    assert p.read(z, 20000) == bytes(20000)
    assert p.heap_check() == []


def test_calloc_is_zero_after_its_pages_were_swapped():
    with Machine(frames=10, swap="4M", policy="clock") as m:
        p = m.spawn(None, heap_size=64 * 4096)
        a = p.malloc(40000)  # 10 pages: more than the machine's free frames
        p.write(a, b"\xAA" * 40000)
        p.free(a)
        assert p.stats()["page_outs"] > 0  # the 0xAA pages went to swap
        b = p.calloc(40000)
        assert p.read(b, 40000) == bytes(40000)
        assert p.heap_check() == []


def test_bad_frees(machine):
    p = machine.spawn(None, heap_size=16 * 4096)
    a = p.malloc(64)
    b = p.malloc(5000)
    with pytest.raises(InvalidFree, match="not the address of a live block"):
        p.free(a + 8)  # interior
    with pytest.raises(InvalidFree):
        p.free(p.heap_end + 64)  # outside the heap
    with pytest.raises(InvalidFree):
        p.free(0)
    p.free(a)
    with pytest.raises(DoubleFree, match="already free"):
        p.free(a)
    p.free(b)
    with pytest.raises((DoubleFree, InvalidFree)):  # merged into top: no longer a block at all
        p.free(b)
    with pytest.raises((DoubleFree, InvalidFree)):
        p.realloc(b, 10)
    with pytest.raises((DoubleFree, InvalidFree)):
        p.size_of(a)
    with pytest.raises(InvalidArgument):
        p.malloc(-1)
    assert p.heap_check() == []


def test_heap_full_and_no_heap(machine):
    p = machine.spawn(None, heap_size=4 * 4096)
    with pytest.raises(OutOfMemory, match="no room for 20000 bytes"):
        p.malloc(20000)
    a = p.malloc(8000)
    with pytest.raises(OutOfMemory):
        p.realloc(a, 20000)
    assert p.size_of(a) == 8000  # the block is intact
    q = machine.spawn(None, heap_size=0)
    with pytest.raises(InvalidArgument, match="no heap"):
        q.malloc(1)


def test_corrupted_header_is_a_heap_error_not_a_crash(machine):
    p = machine.spawn(None, heap_size=16 * 4096)
    a = p.malloc(5000)
    p.malloc(100)
    p.store_u32(a - 4, 0x7FFFFFF0)  # a stray write over the block's header
    with pytest.raises(HeapError, match="corrupted"):
        p.free(a)


def _model_of(p, blocks):
    return {a: p.read(a, len(d)) for a, d in blocks.items()}


@pytest.mark.parametrize("heap_policy", ["tlsf", "first", "buddy"])
def test_every_failing_access_is_rolled_back(heap_policy):
    """Make the k-th heap word access of an operation fail, for every k: the operation
    raises OutOfMemory and leaves heap and contents as they were (every heap policy
    runs journaled: its words and state go through the same journal)."""
    rng = random.Random(7)
    with Machine(frames=9, swap="4M", policy="fifo", tlb_entries=4) as m:
        p = m.spawn(None, heap_size=96 * 4096, heap_policy=heap_policy)
        assert p.heap.policy == heap_policy and p.heap.counters()["policy"] == heap_policy
        blocks = {}
        for i in range(12):
            a = p.malloc(rng.choice([24, 200, 3000, 9000]))
            d = bytes([i + 1]) * p.size_of(a)
            p.write(a, d)
            blocks[a] = d
        for a in list(blocks)[::3]:
            p.free(a)
            del blocks[a]
        ops = [
            lambda: ("malloc", p.malloc(5000)),
            lambda: ("calloc", p.calloc(300)),
            lambda: ("free", p.free(next(iter(blocks)))),
            lambda: ("realloc", p.realloc(list(blocks)[1], 12000)),
            lambda: ("realloc", p.realloc(list(blocks)[2], 40)),
        ]
        for op in ops:
            before = (p.heap.state.copy(), _model_of(p, blocks))
            k, failed = 1, True
            while failed:
                p.heap.inject_failure(k)
                try:
                    op()
                    failed = False
                except OutOfMemory:
                    assert (p.heap.state == before[0]).all(), f"state changed by a failed op (k={k})"
                    assert _model_of(p, blocks) == before[1]
                    assert p.heap_check() == []
                k += 1
            p.heap.inject_failure(0)
            assert k > 3  # the operation really made several accesses
            # the last run succeeded: redo the model from the heap's view
            blocks = {a: p.read(a, p.size_of(a)) for a in list(blocks) if p.heap.is_live(a)}
        assert p.heap_stats()["rolled_back"] > 20


def test_undo_writes_into_swap_when_the_page_left_during_the_operation():
    """A realloc that moves a block over more pages than there are frames: words written
    early are paged out before the failure, and the undo puts the old values in swap."""
    with Machine(frames=8, swap="4M", policy="fifo", tlb_entries=4) as m:
        p = m.spawn(None, heap_size=64 * 4096)
        a = p.malloc(28000)  # 7 pages; the machine has 4 frames for pages
        p.write(a, b"\x5A" * 28000)
        p.malloc(8)  # pins the block in place: growing must move it
        p.heap.grow_journal()  # room for the 7000-word copy in the journal
        p.heap.inject_failure(13900)  # near the end of the copy (7000 loads + 7000 stores)
        with pytest.raises(OutOfMemory):
            p.realloc(a, 29000)
        assert p.heap_stats()["undone_in_swap"] > 0
        assert p.heap_check() == []
        assert p.read(a, 28000) == b"\x5A" * 28000
        b = p.realloc(a, 29000)
        assert p.read(b, 28000) == b"\x5A" * 28000


def test_real_swap_full_inside_a_heap_operation_changes_nothing():
    with Machine(frames=12, swap="64K", policy="fifo", tlb_entries=8) as m:
        p = m.spawn(None, heap_size=64 * 4096)
        filler = m.spawn(None, heap_size=64 * 4096)
        blocks = [p.malloc(4000) for _ in range(3)]
        for i, a in enumerate(blocks):
            p.write(a, bytes([i + 7]) * 4000)
        state = p.heap.state.copy()
        with pytest.raises(OutOfMemory, match="swap is full"):
            for i in range(64):  # dirty pages until every slot is taken and every frame dirty
                filler.store_u32(filler.heap_base + 4096 * i, i)
        with pytest.raises(OutOfMemory, match="undone.*swap is full"):
            p.malloc(30000)  # its header lands on a new page: no frame can be freed for it
        assert (p.heap.state == state).all()
        filler.exit()  # frees its frames and slots
        assert p.heap_check() == []
        for i, a in enumerate(blocks):
            assert p.read(a, 4000) == bytes([i + 7]) * 4000
        assert p.malloc(30000) > 0


def test_big_calloc_and_realloc_use_no_journal():
    with Machine(frames=16, swap="8M", policy="clock") as m:
        p = m.spawn(None, heap_size=1024 * 4096)
        a = p.calloc(1 << 20)
        p.write(a + 12345, b"mark")
        p.malloc(8)
        b = p.realloc(a, (1 << 20) + 4096)  # moves 1 MiB: more than the 4096-entry journal
        assert b != a and p.read(b + 12345, 4) == b"mark"
        assert p.heap.journal.shape[0] < 20000  # realloc redone as malloc + copy + free
        assert not p.heap.is_live(a) and p.heap_check() == []


def test_exit_and_heap_of_dead_process(machine):
    p = machine.spawn(None, heap_size=16 * 4096)
    a = p.malloc(10)
    p.exit()
    with pytest.raises(InvalidArgument, match="exited"):
        p.free(a)


# ---- stateful: two processes, random heap traffic, far fewer frames than heap pages ----------

HEAP_PAGES = 40


class HeapModel(RuleBasedStateMachine):
    """Each block's expected bytes in a dict; 6 frames for data under 2 x 40 heap pages."""

    @initialize(policy=st.sampled_from(["fifo", "clock", "lru", "random"]))
    def boot(self, policy):
        self.m = Machine(frames=12, swap="2M", policy=policy, tlb_entries=8)  # 6 frames for data
        self.procs = [self.m.spawn(None, heap_size=HEAP_PAGES * 4096) for _ in range(2)]
        self.blocks = [{}, {}]  # va -> expected bytes
        self.rng = random.Random(0)

    def _fill(self, k, va, start, n):
        data = self.rng.randbytes(n)
        self.procs[k].write(va + start, data)
        return data

    @rule(k=st.integers(0, 1), n=st.integers(0, 9000), zero=st.booleans())
    def alloc(self, k, n, zero):
        p = self.procs[k]
        try:
            va = p.calloc(n) if zero else p.malloc(n)
        except OutOfMemory:
            return
        self.blocks[k][va] = bytes(n) if zero else self._fill(k, va, 0, n)

    @precondition(lambda self: any(self.blocks))
    @rule(k=st.integers(0, 1), pick=st.integers(0, 10**6), n=st.integers(0, 12000))
    def realloc(self, k, pick, n):
        if not self.blocks[k]:
            return
        va = sorted(self.blocks[k])[pick % len(self.blocks[k])]
        old = self.blocks[k].pop(va)
        try:
            nva = self.procs[k].realloc(va, n)
        except OutOfMemory:
            self.blocks[k][va] = old
            return
        kept = old[:n]
        self.blocks[k][nva] = kept + (self._fill(k, nva, len(kept), n - len(kept)) if n > len(kept) else b"")

    @precondition(lambda self: any(self.blocks))
    @rule(k=st.integers(0, 1), pick=st.integers(0, 10**6))
    def free(self, k, pick):
        if not self.blocks[k]:
            return
        va = sorted(self.blocks[k])[pick % len(self.blocks[k])]
        self.procs[k].free(va)
        del self.blocks[k][va]
        with pytest.raises((DoubleFree, InvalidFree)):  # InvalidFree once merged with a neighbour
            self.procs[k].free(va)

    @precondition(lambda self: any(self.blocks))
    @rule(k=st.integers(0, 1), pick=st.integers(0, 10**6), off=st.integers(0, 9000), n=st.integers(1, 300))
    def write(self, k, pick, off, n):
        if not self.blocks[k]:
            return
        va = sorted(self.blocks[k])[pick % len(self.blocks[k])]
        old = self.blocks[k][va]
        if not old:
            return
        off %= len(old)
        n = min(n, len(old) - off)
        self.blocks[k][va] = old[:off] + self._fill(k, va, off, n) + old[off + n :]

    @rule(k=st.integers(0, 1), after=st.integers(1, 40), n=st.integers(1, 9000))
    def failing_malloc(self, k, after, n):
        p = self.procs[k]
        state = p.heap.state.copy()
        p.heap.inject_failure(after)
        try:
            va = p.malloc(n)
        except OutOfMemory:
            assert (p.heap.state == state).all()
            return
        finally:
            p.heap.inject_failure(0)
        self.blocks[k][va] = self._fill(k, va, 0, n)

    @invariant()
    def contents_and_layout(self):
        if not hasattr(self, "m"):
            return
        for k, p in enumerate(self.procs):
            spans = sorted((va, va + len(d)) for va, d in self.blocks[k].items())
            for (a0, a1), (b0, _) in zip(spans, spans[1:]):
                assert a1 <= b0 - 4, "blocks overlap (or a header is inside a block)"
            for va, d in self.blocks[k].items():
                assert p.heap.is_live(va) and p.size_of(va) == len(d)
                assert p.read(va, len(d)) == d
            assert p.heap_check() == []
            assert p.heap_stats()["live_blocks"] == len(self.blocks[k])

    def teardown(self):
        if hasattr(self, "m"):
            self.m.close()


HeapModel.TestCase.settings = settings(
    max_examples=20, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestHeapModel = HeapModel.TestCase


def test_heap_blocks_and_their_headers_go_through_swap():
    # The machine of the stateful model above, and a workload that is sure to page: the
    # allocator's blocks, headers and links are swapped out and read back whole.
    rng = random.Random(3)
    with Machine(frames=12, swap="2M", policy="clock", tlb_entries=8) as m:
        p = m.spawn(None, heap_size=HEAP_PAGES * 4096)
        blocks = {}
        for i in range(60):
            n = rng.randrange(1, 6000)
            va = p.malloc(n)
            blocks[va] = rng.randbytes(n)
            p.write(va, blocks[va])
            if i % 3 == 2:
                gone = rng.choice(sorted(blocks))
                del blocks[gone]
                p.free(gone)
        for va, data in blocks.items():
            assert p.read(va, len(data)) == data and p.size_of(va) == len(data)
        assert p.heap_check() == []
        s = p.stats()
        assert s["page_outs"] > 0 and s["swap_in"] > 0
