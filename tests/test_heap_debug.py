"""Tests of the debugging heap (Heap(..., debug=True), vm32.heap.debug) on every policy: red
zones catch overflows and underflows, the quarantine catches writes after free and double
frees, and leaks() lists what is still live."""

import numpy as np
import pytest

from vm32.errors import DoubleFree, HeapCorruption, InvalidFree
from vm32.heap import FREED_MARK, POLICIES, Heap
from vm32.heap import debug as dbgheap

LIMIT = 1 << 18


def new_heap(policy):
    return Heap(np.zeros(LIMIT // 4, dtype=np.uint32), 64, LIMIT, policy=policy, debug=True)


@pytest.fixture(params=list(POLICIES))
def heap(request):
    return new_heap(request.param)


def poke(h, addr, value=0x41414141):
    h.mem[addr >> 2] = value


def test_overflow_into_a_red_zone_is_caught_at_free_and_by_check(heap):
    a = heap.malloc(10)  # words 0..2 are the user's; the red zone follows
    b = heap.malloc(10)
    poke(heap, a + 8)  # the last user word: fine
    assert heap.check() == []
    poke(heap, a + 12)  # one word past: the red zone
    assert any("red zone after the block" in f for f in heap.check())
    with pytest.raises(HeapCorruption, match=f"red zone after the block at {a:#x}.*offset 12"):
        heap.free(a)
    assert not heap.is_live(a)  # freed all the same
    poke(heap, b - 4)  # an underflow
    with pytest.raises(HeapCorruption, match="red zone before the block"):
        heap.free(b)
    assert heap.check() == []


def test_write_after_free_is_caught_when_the_block_leaves_the_quarantine(heap):
    a = heap.malloc(64)
    heap.free(a)
    assert (heap.mem[a >> 2 : (a + 64) >> 2] == FREED_MARK).all()
    poke(heap, a + 20)
    assert any("written after it was freed (at offset 20)" in f for f in heap.check())
    blocks = [heap.malloc(16) for _ in range(dbgheap.Q_BLOCKS)]
    with pytest.raises(HeapCorruption, match=f"block at {a:#x} .*written after it was freed"):
        for x in blocks:
            heap.free(x)
    assert heap.check() == []  # the block left the quarantine; the finding is not repeated


def test_double_free_in_and_after_quarantine(heap):
    a = heap.malloc(8)
    heap.free(a)
    with pytest.raises(DoubleFree):
        heap.free(a)
    with pytest.raises(DoubleFree):
        heap.size_of(a)
    for _ in range(dbgheap.Q_BLOCKS + 1):
        heap.free(heap.malloc(8))
    with pytest.raises(InvalidFree):  # back in the policy: freed, merged or handed out again
        heap.free(a)


def test_leaks_list_the_live_blocks(heap):
    a, b, c = heap.malloc(10), heap.calloc(200), heap.malloc(0)
    heap.free(b)
    d = heap.realloc(a, 30)  # always moves on the debugging heap
    assert d != a and heap.stats()["live_blocks"] == 2 and heap.live_bytes == 30
    leaks = heap.leaks()
    assert [(r["addr"], r["nbytes"], r["site"]) for r in leaks] == [(d, 30, dbgheap.SITE_NONE),
                                                                    (c, 0, dbgheap.SITE_NONE)]
    assert heap.check() == [] and heap.stats()["quarantined_blocks"] == 2


def test_contents_and_out_of_memory_on_the_debugging_heap():
    h = new_heap("tlsf")
    a = h.calloc(100)
    assert not h.mem[a >> 2 : (a + 100) >> 2].any()
    h.mem[a >> 2 : (a >> 2) + 25] = np.arange(25, dtype=np.uint32)
    b = h.realloc(a, 60)
    assert (h.mem[b >> 2 : (b >> 2) + 15] == np.arange(15)).all()
    sizes = []
    try:
        while True:  # the quarantine is given back before the heap says no
            sizes.append(h.malloc(4000))
            h.free(sizes.pop())
            sizes.append(h.malloc(4000))
    except Exception as e:
        assert type(e).__name__ == "OutOfMemory"
    assert len(sizes) > LIMIT // 4100 - 4 and h.check() == []
