"""Tests of vm32.heap: properties under random operation sequences, and every error path."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from vm32.errors import DoubleFree, InvalidArgument, InvalidFree, OutOfMemory
from vm32.heap import FREED_MARK, HEAP_DOUBLE_FREE, HEAP_INVALID_FREE, HEAP_OK, Heap, core, heap_free, heap_realloc
from vm32.memory import PhysicalMemory

BASE = 64
LIMIT = 1 << 16


def new_heap(limit=LIMIT, base=BASE, **kw):
    mem = np.zeros(LIMIT // 4 + 16, dtype=np.uint32)
    return Heap(mem, base, limit, **kw)


def fill(heap, addr, n, seed):
    """Write a pattern derived from `seed` over the first n bytes (rounded up to words) of a block."""
    words = (n + 3) // 4
    pattern = (np.arange(words, dtype=np.uint64) * 2654435761 + seed) & 0xFFFFFFFF
    heap.mem[addr // 4 : addr // 4 + words] = pattern.astype(np.uint32)
    return pattern.astype(np.uint32)


sizes = st.one_of(st.integers(0, 80), st.integers(0, 3000), st.sampled_from([0, 1, 4, 8, 12, 16, 252, 256, 260]))


class HeapMachine(RuleBasedStateMachine):
    """Random malloc/calloc/realloc/free; contents, bounds and check() verified after each step."""

    @initialize(debug=st.booleans(), cache=st.booleans(), cap=st.sampled_from([None, None, 0, 48, 400]))
    def setup(self, debug, cache, cap):
        self.heap = new_heap(debug=debug, cache=cache, cache_cap=cap)
        self.cap = cap if cache and not debug else 0
        self.debug = debug  # a debugging heap: red zones and a quarantine (vm32.heap.debug)
        self.blocks = {}  # addr -> (nbytes, expected words)
        self.seed = 1

    def _add(self, addr, n):
        assert addr % 8 == 0 and BASE < addr and addr + n <= LIMIT
        assert addr not in self.blocks
        self.seed += 1
        self.blocks[addr] = (n, fill(self.heap, addr, n, self.seed))

    @rule(n=sizes)
    def malloc(self, n):
        before = self.heap.stats()["footprint"]
        try:
            addr = self.heap.malloc(n)
        except OutOfMemory:
            if not self.debug:  # (the debugging heap's zones take room of their own)
                assert sum(b[0] for b in self.blocks.values()) + n > (LIMIT - BASE) // 4
            assert self.heap.stats()["cached_blocks"] == 0  # emptied before giving up
            return
        if self.heap.stats()["footprint"] > before:
            assert self.heap.stats()["cached_blocks"] == 0  # caches emptied before growing
        self._add(addr, n)

    @rule(n=sizes)
    def calloc(self, n):
        try:
            addr = self.heap.calloc(n)
        except OutOfMemory:
            return
        assert not self.heap.mem[addr // 4 : addr // 4 + (n + 3) // 4].any()
        self._add(addr, n)

    @precondition(lambda self: self.blocks)
    @rule(data=st.data())
    def free(self, data):
        addr = data.draw(st.sampled_from(sorted(self.blocks)))
        self.heap.free(addr)
        del self.blocks[addr]
        assert not self.heap.is_live(addr)
        with pytest.raises(InvalidFree):
            self.heap.free(addr)

    @precondition(lambda self: self.blocks)
    @rule(data=st.data(), n=sizes)
    def realloc(self, data, n):
        addr = data.draw(st.sampled_from(sorted(self.blocks)))
        old_n, words = self.blocks[addr]
        before = self.heap.stats()["footprint"]
        try:
            new = self.heap.realloc(addr, n)
        except OutOfMemory:
            return
        if self.heap.stats()["footprint"] > before:  # caches emptied before growing; a moved block's
            assert self.heap.stats()["cached_blocks"] <= int(new != addr)  # old block may be cached after
        keep = min(old_n, n) // 4
        assert np.array_equal(self.heap.mem[new // 4 : new // 4 + keep], words[:keep])
        del self.blocks[addr]
        self._add(new, n)

    @precondition(lambda self: self.blocks and not self.debug)  # (debug: freed blocks wait in quarantine)
    @rule(data=st.data())
    def free_then_malloc_same_size_reuses(self, data):
        addr = data.draw(st.sampled_from(sorted(self.blocks)))
        n = self.blocks[addr][0]
        before = self.heap.stats()["footprint"]
        self.heap.free(addr)
        del self.blocks[addr]
        new = self.heap.malloc(n)
        assert self.heap.stats()["footprint"] == before
        self._add(new, n)

    @invariant()
    def healthy(self):
        if not hasattr(self, "heap"):
            return
        assert self.heap.check() == []
        spans = sorted((a, a + max(n, 1)) for a, (n, _) in self.blocks.items())
        for (a0, e0), (a1, _) in zip(spans, spans[1:]):
            assert e0 <= a1, "live blocks overlap"
        for a, (n, words) in self.blocks.items():
            assert self.heap.is_live(a) and self.heap.size_of(a) == n
            assert np.array_equal(self.heap.mem[a // 4 : a // 4 + len(words)], words)
        st_ = self.heap.stats()
        assert st_["cached_bytes"] <= (self.cap if self.cap is not None else LIMIT)
        assert st_["live_blocks"] == len(self.blocks)
        assert st_["live_bytes"] == sum(n for n, _ in self.blocks.values())


TestHeapMachine = HeapMachine.TestCase
TestHeapMachine.settings = settings(
    max_examples=int(os.environ.get("HEAP_EXAMPLES", 60)),  # HEAP_EXAMPLES=1500 for a longer search
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_errors_on_bad_addresses():
    h = new_heap()
    a = h.malloc(40)
    b = h.malloc(40)
    for bad in (0, a + 4, a + 8, 3, BASE, BASE - 8, LIMIT, LIMIT + 8, 2**40, -8, 2**70):
        with pytest.raises(InvalidFree) as e:
            h.free(bad)
        assert not isinstance(e.value, DoubleFree)
        with pytest.raises(InvalidFree):
            h.size_of(bad)
        if bad != 0:  # realloc(0, n) allocates, as in C (test_realloc_of_0_allocates)
            with pytest.raises(InvalidFree):
                h.realloc(bad, 8)
        assert not h.is_live(bad)
    h.free(a)
    with pytest.raises(DoubleFree):
        h.free(a)
    with pytest.raises(DoubleFree):
        h.realloc(a, 8)
    with pytest.raises(DoubleFree):
        h.size_of(a)
    assert h.is_live(b) and h.check() == []


def test_realloc_of_0_allocates():
    h = new_heap()
    a = h.realloc(0, 100)
    assert h.is_live(a) and h.size_of(a) == 100


@pytest.mark.parametrize("policy", ["tlsf", "first"])
@pytest.mark.parametrize("size", [16, 4096, 1 << 20])
def test_a_second_free_is_a_double_free_for_every_size(policy, size):
    """Even when the freed block merged with a neighbour or went back to the top of the heap."""
    h = Heap(PhysicalMemory(8 << 20), base=4096, limit=8 << 20, policy=policy)
    keep = h.malloc(64)
    a = h.malloc(size)
    h.free(a)
    with pytest.raises(DoubleFree):
        h.free(a)
    b = h.malloc(size)  # handed out again: freeing it is fine, once
    h.free(b)
    assert h.is_live(keep) and h.check() == []


def test_kernel_statuses():
    h = new_heap()
    a = h.malloc(24)
    h.malloc(8)
    assert heap_free(h.mem, h.state, np.int64(a + 8)) == HEAP_INVALID_FREE
    assert heap_free(h.mem, h.state, np.int64(a)) == HEAP_OK
    assert heap_free(h.mem, h.state, np.int64(a)) == HEAP_DOUBLE_FREE
    assert heap_realloc(h.mem, h.state, np.int64(a), np.int64(8)) == -HEAP_DOUBLE_FREE
    assert heap_realloc(h.mem, h.state, np.int64(0), np.int64(8)) == -HEAP_INVALID_FREE


def test_is_live_is_exact():
    h = new_heap()
    blocks = [h.malloc(n) for n in (0, 1, 7, 8, 9, 100, 1000)]
    live = set(blocks)
    h.free(blocks[2])
    live.discard(blocks[2])
    probes = list(range(-16, LIMIT + 64, 4)) + [2**31, 2**32, 2**40, 2**62, -(2**63)]
    got = {p for p in probes if h.is_live(p)}
    assert got == live


def test_malloc_zero_is_unique():
    h = new_heap()
    addrs = [h.malloc(0) for _ in range(50)]
    assert len(set(addrs)) == 50
    assert all(h.size_of(a) == 0 and h.is_live(a) for a in addrs)
    assert h.check() == []


def test_out_of_room_and_impossible_sizes():
    h = new_heap(limit=BASE + 4096)
    for n in (4096, 2**32, 2**32 + 1, 2**40, 2**80):
        with pytest.raises(OutOfMemory):
            h.malloc(n)
    a = h.malloc(4096 - 16)
    with pytest.raises(OutOfMemory):
        h.malloc(1)
    with pytest.raises(OutOfMemory):
        h.realloc(a, 4096)
    assert h.size_of(a) == 4096 - 16 and h.check() == []
    h.free(a)
    assert h.stats()["live_bytes"] == 0 and h.malloc(4096 - 16) == a


def test_reuse_split_and_coalesce():
    h = new_heap(cache=False)
    a, b, c, d = (h.malloc(100) for _ in range(4))
    fp = h.stats()["footprint"]
    h.free(b)
    h.free(c)  # merges with b
    assert h.stats()["free_blocks"] == 1
    e = h.malloc(200)  # fits in b+c without growing
    assert e == b and h.stats()["footprint"] == fp
    h.free(e)
    h.free(a)
    h.free(d)  # everything merges back into top
    s = h.stats()
    assert s["free_blocks"] == 0 and s["top"] == BASE + 4 and h.check() == []


def test_realloc_in_place_and_moving():
    h = new_heap()
    a = h.malloc(40)
    fill(h, a, 40, 7)
    assert h.realloc(a, 400) == a  # grows into top
    b = h.malloc(8)
    assert h.realloc(a, 16) == a  # shrinks in place, the tail becomes free
    assert h.realloc(a, 300) == a  # grows back into the free tail
    c = h.realloc(a, 1000)  # must move above b
    assert c != a and h.is_live(c) and not h.is_live(a) and h.is_live(b)
    assert h.check() == []


def test_debug_fills_freed_payload():
    h = new_heap(debug=True)
    a = h.malloc(64)
    h.malloc(8)
    h.free(a)
    assert h.mem[a // 4 + 2] == FREED_MARK


def test_invalid_arguments():
    mem = np.zeros(1024, dtype=np.uint32)
    for base, limit in ((0, 4096), (4, 4096), (8, 4092), (8, 8192), (4096, 4096), (-8, 4096), (8, 16)):
        with pytest.raises(InvalidArgument):
            Heap(mem, base, limit)
    with pytest.raises(InvalidArgument):
        Heap(np.zeros(1024, dtype=np.int64), 8, 4096)
    h = Heap(mem, 8, 4096)
    with pytest.raises(InvalidArgument):
        h.malloc(-1)
    with pytest.raises(InvalidArgument):
        h.malloc(1.5)
    with pytest.raises(InvalidArgument):
        h.free("x")


def test_on_physical_memory_full_range():
    with PhysicalMemory(1 << 20) as mem:
        h = Heap(mem, 4096, mem.size)
        a = h.calloc(12)
        assert mem.read_word(a) == 0 and h.size_of(a) == 12 and h.check() == []


def test_check_reports_corruption():
    h = new_heap()
    a = h.malloc(40)
    h.malloc(40)
    h.free(a)
    h.mem[a // 4 - 1] = 12345  # smash the free block's header
    assert h.check() != []


PURE_PYTHON = """
import numpy as np
from vm32.heap import Heap
h = Heap(np.zeros(4096, dtype=np.uint32), 8, 16384)
a = [h.malloc(n) for n in (3, 300, 0, 40)]
h.free(a[1]); h.free(a[0])
b = h.calloc(290); c = h.realloc(a[3], 500)
assert h.check() == [], h.check()
assert h.is_live(b) and h.is_live(c) and not h.is_live(a[0]) and not h.is_live(2**40)
print("ok", h.stats()["live_blocks"])
"""


def test_kernels_without_jit():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", PURE_PYTHON], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "3"]


def test_quick_cache_reuse_double_free_and_flush():
    h = new_heap(limit=BASE + 8192)
    small = [h.malloc(20) for _ in range(100)]  # 24-byte blocks: 2400 bytes
    a = small[10]
    h.free(a)
    assert h.stats()["cached_blocks"] == 1 and not h.is_live(a)
    with pytest.raises(DoubleFree):
        h.free(a)
    assert h.malloc(17) == a  # same block size: the cached block comes back
    for b in small:
        h.free(b)
    assert h.stats()["cached_blocks"] > 0 and h.check() == []
    big = h.malloc(8192 - 64)  # needs the cached blocks merged back into top
    assert h.is_live(big) and h.stats()["cached_blocks"] == 0 and h.check() == []


def test_stats_counts():
    h = new_heap()
    a = h.calloc(10)
    b = h.malloc(300)
    b = h.realloc(b, 5000)
    h.free(a)
    s = h.stats()
    assert (s["live_blocks"], s["live_bytes"], s["callocs"], s["reallocs"]) == (1, 5000, 1, 1)
    assert s["peak_live_bytes"] >= 5000 and s["footprint"] >= 5000 and s["largest_free"] > 0


def test_caches_never_grow_the_footprint():
    h = new_heap()
    small = [h.malloc(12) for _ in range(400)]  # 16-byte blocks
    fp = h.stats()["footprint"]
    for a in small:
        h.free(a)
    assert h.stats()["cached_blocks"] == 400
    mid = [h.malloc(20) for _ in range(250)]  # 24-byte blocks: the 16-byte caches are emptied and merged
    s = h.stats()
    assert s["footprint"] == fp and s["cached_blocks"] == 0 and h.check() == []
    for a in mid[::2]:
        h.free(a)
    assert h.malloc(20) == mid[-2]  # LIFO: the last freed comes back first
    assert h.check() == []


def test_cache_cap_sends_frees_to_the_lists():
    h = new_heap(cache_cap=64)
    blocks = [h.malloc(12) for _ in range(10)]
    h.malloc(8)  # keeps the freed blocks off top
    for a in blocks:
        h.free(a)
    s = h.stats()
    assert s["cached_bytes"] == 64 and s["cached_blocks"] == 4
    assert s["free_blocks"] >= 1 and h.check() == []
    with pytest.raises(InvalidArgument):
        new_heap(cache_cap=-1)


def test_realloc_across_cache_and_list_sizes():
    h = new_heap()
    a = h.malloc(100)
    b = h.malloc(100)
    guard = h.malloc(8)
    h.free(a)  # cached: a neighbour that looks live to b
    assert h.stats()["cached_blocks"] == 1
    data = fill(h, b, 100, 3)
    c = h.realloc(b, 1000)  # cannot grow into the guard: moves, contents kept
    assert np.array_equal(h.mem[c // 4 : c // 4 + 25], data)
    s = h.stats()  # growing top emptied the caches first (a is a free block now); b went to its cache
    assert s["cached_blocks"] == 1 and s["free_blocks"] == 1
    d = h.realloc(c, 40)  # shrink in place at top
    assert d == c and h.check() == []
    assert h.malloc(100) == b  # the cached block of that size comes back
    assert h.malloc(100) == a  # then the free block, from the lists
    assert h.is_live(guard) and h.check() == []


def test_interleaved_cache_and_merge_keeps_invariants():
    rng = np.random.default_rng(5)
    h = new_heap()
    live = []
    for step in range(3000):
        if live and rng.random() < 0.5:
            h.free(live.pop(int(rng.integers(len(live)))))
        else:
            n = int(rng.choice([4, 12, 20, 60, 250, 252, 256, 300, 1000]))
            try:
                live.append(h.malloc(n))
            except OutOfMemory:
                pass
        if step % 100 == 0:
            assert h.check() == []
    assert h.check() == []


def test_check_reports_a_missing_end_mark():
    h = new_heap(cache=False)
    a = h.malloc(100)
    h.malloc(8)
    h.free(a)
    tags = h.state.view(np.uint8)
    end = int(h.state[core.M_TAG_ORIGIN]) + (a + 104 - 8) // 8  # the last granule of a's 104-byte block
    assert tags[end] == core.T_END
    tags[end] = 0
    assert any("last granule" in f for f in h.check())
