"""Concurrency: several host threads, each a CPU with its own TLB, on one machine with
few frames.  No write may be lost and no CPU may use a translation after its frame
was given to someone else."""

import threading

from vm32.kernel import Machine

PAGES = 24


def _run_threads(targets):
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(fn,)) for fn in targets]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)  # generous: a thread's first call of a kernel may compile it (cold cache, loaded CI)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    assert not errors, errors


def test_processes_on_separate_cpus_lose_no_write():
    with Machine(frames=20, swap="4M", policy="clock", tlb_entries=8, cpus=4) as m:
        procs = [m.spawn(None, heap_size=PAGES * 4096) for _ in range(3)]
        bad = []

        def worker(p, k):
            def run():
                for rnd in range(12):
                    seed = 100 * k + rnd
                    p.fill_pattern(p.heap_base, PAGES * 1024, seed)
                    bad.append(p.check_pattern(p.heap_base, PAGES * 1024, seed))

            return run

        _run_threads([worker(p, k) for k, p in enumerate(procs)])
        assert sum(bad) == 0
        assert m.stats()["page_outs"] > 0


def test_one_process_on_two_cpus_shootdown():
    """Two CPUs run the same process on disjoint halves; each evicts pages the other has cached."""
    with Machine(frames=14, swap="4M", policy="fifo", tlb_entries=16, cpus=3) as m:
        p = m.spawn(None, heap_size=2 * PAGES * 4096)
        bad = []

        def half(k):
            base = p.heap_base + k * PAGES * 4096

            def run():
                for rnd in range(15):
                    p.fill_pattern(base, PAGES * 1024, 7 * rnd + k)
                    bad.append(p.check_pattern(base, PAGES * 1024, 7 * rnd + k))
                    for i in range(0, PAGES, 3):  # single-word writes keep both TLBs busy
                        p.store_u32(base + 4096 * i + 8, rnd)
                        if p.load_u32(base + 4096 * i + 8) != rnd:
                            bad.append(1)

            return run

        _run_threads([half(0), half(1)])
        assert sum(bad) == 0
        s = p.stats()
        assert s["tlb_hits"] + s["tlb_misses"] == s["accesses"]


def test_no_stale_tlb_read_after_eviction():
    """CPU 1 caches page X, CPU 0 evicts X and reuses its frame; CPU 1 must read X's data."""
    with Machine(frames=10, swap="1M", policy="fifo", tlb_entries=64, cpus=2) as m:
        a = m.spawn(None, heap_size=4096)
        b = m.spawn(None, heap_size=32 * 4096)
        go, done = threading.Event(), threading.Event()
        seen = []

        def cpu1():
            a.store_u32(a.heap_base, 0x1234)
            assert a.load_u32(a.heap_base) == 0x1234  # now in CPU 1's TLB
            done.set()
            go.wait(30)
            seen.append(a.load_u32(a.heap_base))

        t = threading.Thread(target=cpu1)
        t.start()
        done.wait(30)
        for i in range(32):  # CPU 0 (this thread) thrashes: a's page is evicted, its frame reused
            b.store_u32(b.heap_base + 4096 * i, 0xBAD0000 + i)
        assert a.stats()["evictions"] == 1
        go.set()
        t.join(30)
        assert seen == [0x1234]


def test_heap_operations_from_two_cpus_while_a_third_thrashes():
    """Two CPUs allocate, fill, check and free in one process heap (the heap lock keeps
    the allocator whole) while a third CPU's process evicts their pages."""
    import random

    with Machine(frames=16, swap="4M", policy="clock", tlb_entries=8, cpus=4) as m:  # + this thread
        p = m.spawn(None, heap_size=64 * 4096)
        hog = m.spawn(None, heap_size=PAGES * 4096)
        bad = []
        stop = threading.Event()

        def user(k):
            def run():
                rng = random.Random(k)
                live = []
                for i in range(150):
                    n = rng.choice([8, 100, 3000, 9000])
                    a = p.malloc(n)
                    p.write(a, bytes([k * 16 + i % 16]) * n)
                    live.append((a, n, k * 16 + i % 16))
                    if len(live) > 4:
                        a, n, v = live.pop(rng.randrange(len(live)))
                        if p.read(a, n) != bytes([v]) * n:
                            bad.append(a)
                        p.free(a)
                for a, _, _ in live:
                    p.free(a)

            return run

        def thrash():
            seed = 0
            while not stop.is_set():
                seed += 1
                hog.fill_pattern(hog.heap_base, PAGES * 1024, seed)

        a = p.malloc(8)  # compile the kernels the threads use here, outside their join timeout
        p.write(a, b"x" * 8)
        assert p.read(a, 8) == b"x" * 8
        p.free(a)
        hog.fill_pattern(hog.heap_base, 1024, 0)
        t = threading.Thread(target=thrash)
        t.start()
        try:
            _run_threads([user(0), user(1)])
        finally:
            stop.set()
            t.join(60)
        assert not bad
        assert p.heap_check() == [] and p.heap_stats()["live_blocks"] == 0
        assert p.stats()["swap_in"] > 0


def test_clearing_accessed_reaches_the_tlb_of_another_cpu():
    """When a policy clears a page's Accessed bit, a CPU that caches the page drops its
    entry, so its next use sets Accessed again (hits would not)."""
    from vm32.kernel.frametable import frame_clear_referenced
    from vm32.kernel.layout import C_REQ, CPU_STRIDE, P_COLS, P_PGDIR, REQ_NONE
    from vm32.mmu import PTE_A, pt_walk

    with Machine(frames=16, swap="1M", policy="clock", tlb_entries=64, cpus=2) as m:
        p = m.spawn(None, heap_size=4096)
        ms = m.ms
        cached, go, done = threading.Event(), threading.Event(), []

        def other_cpu():
            p.store_u32(p.heap_base, 5)  # cached in this CPU's TLB
            cached.set()
            go.wait(30)
            done.append(p.load_u32(p.heap_base))

        t = threading.Thread(target=other_cpu)
        t.start()
        cached.wait(30)
        pte_pa = pt_walk(ms.words, ms.procs[p.pid * P_COLS + P_PGDIR], p.heap_base)
        frame = int(ms.words[pte_pa >> 2]) >> 12
        cpu = m.cpu()
        other = 1 - cpu
        assert frame_clear_referenced(ms.words, ms.ft, frame, ms.tlb, ms.cpus, cpu) == 1
        assert not ms.words[pte_pa >> 2] & PTE_A
        assert ms.cpus[other * CPU_STRIDE + C_REQ] != REQ_NONE  # asked, not waited for
        go.set()
        t.join(30)
        assert done == [5]
        assert ms.words[pte_pa >> 2] & PTE_A  # the use after the clearing was seen


def test_two_cpus_page_in_the_same_swapped_pages():
    """Both CPUs read the same pages back from swap at once (read-ahead outside the lock,
    page-in under it) while a third CPU's writes keep evicting them and writing back."""
    with Machine(frames=16, swap="4M", policy="fifo", tlb_entries=4, cpus=4) as m:
        p = m.spawn(None, heap_size=PAGES * 4096)
        hog = m.spawn(None, heap_size=PAGES * 4096)
        p.fill_pattern(p.heap_base, PAGES * 1024, 42)
        bad = []
        stop = threading.Event()

        def reader():
            for _ in range(8):
                bad.append(p.check_pattern(p.heap_base, PAGES * 1024, 42))

        def writer():
            seed = 0
            while not stop.is_set():
                seed += 1
                hog.fill_pattern(hog.heap_base, PAGES * 1024, seed)
                bad.append(hog.check_pattern(hog.heap_base, PAGES * 1024, seed))

        t = threading.Thread(target=writer)
        t.start()
        try:
            _run_threads([reader, reader])
        finally:
            stop.set()
            t.join(60)
        assert sum(bad) == 0
        assert p.stats()["swap_in"] > 2 * PAGES and hog.stats()["page_outs"] > PAGES


def test_page_in_takes_a_pending_write_back_buffer():
    """A slot whose page-out is still in some CPU's write-back buffer is read from that
    buffer, not from the file (which does not have the data yet)."""
    import numpy as np

    from vm32.kernel.inspect import page_table_rows
    from vm32.kernel.layout import C_WB_SLOT, CPU_STRIDE

    with Machine(frames=10, swap="1M", policy="fifo", cpus=2) as m:
        p = m.spawn(None, heap_size=PAGES * 4096)
        p.store_u32(p.heap_base, 1111)
        for i in range(1, PAGES):
            p.store_u32(p.heap_base + 4096 * i, i)
        row = next(r for r in page_table_rows(p) if r["va"] == p.heap_base)
        slot = row["slot"]
        assert slot is not None and m.swap.words[slot * 1024] == 1111
        ms = m.ms
        other = 1 - m.cpu()
        ms.bounce[other * 2048 : other * 2048 + 1024] = 2222  # "newer" data not yet written
        ms.cpus[other * CPU_STRIDE + C_WB_SLOT] = slot
        try:
            assert p.load_u32(p.heap_base) == 2222
        finally:
            ms.cpus[other * CPU_STRIDE + C_WB_SLOT] = -1
        assert np.all(ms.bounce[other * 2048 : other * 2048 + 1024] == 2222)
