"""vm32.kernel: Machine and Process behaviour - translation, protection, A/D, pinning,
swap, zeroed frames, errors, inspection."""

import os
import tempfile

import numpy as np
import pytest

from vm32.errors import DoubleFree, InvalidArgument, OutOfMemory, ProtectionFault, SegmentationFault, VM32Error
from vm32.kernel import Machine
from vm32.kernel.inspect import frame_table_rows, page_table_rows
from vm32.kernel.layout import IMAGE_BASE, KERNEL_BASE, P_COLS, P_PGDIR
from vm32.mmu import PTE_A, PTE_D, PTE_P, PTE_U, PTE_W, pt_walk


@pytest.fixture
def machine():
    m = Machine(frames=16, swap="1M", policy="fifo", tlb_entries=16)
    yield m
    m.close()


def pte_of(proc, va):
    ms = proc.machine.ms
    pa = pt_walk(ms.words, ms.procs[proc.pid * P_COLS + P_PGDIR], va)
    return int(ms.words[pa >> 2]) if pa >= 0 else None


def test_image_is_demand_paged_from_file(machine, tmp_path):
    img = bytes(range(256)) * 40  # 10240 bytes: 3 pages
    path = tmp_path / "prog.img"
    path.write_bytes(img)
    p = machine.spawn(path)
    assert p.stats()["image_in"] == 0
    assert p.read(IMAGE_BASE + 4096, 16) == img[4096:4112]
    assert p.stats()["image_in"] == 1 and p.stats()["image_bytes_in"] == 4096
    assert p.read(IMAGE_BASE, len(img)) == img
    assert p.read(IMAGE_BASE + len(img), 100) == bytes(100)  # tail of the last page is zero


def test_bytes_image_and_temporary_swap_have_no_name(tmp_path, monkeypatch):
    """Files without a name from the start: no exit, SIGKILL included, can leave them behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    m = Machine(frames=16, swap="64K")
    p = m.spawn(b"\x01\x02\x03\x04")
    assert p.image_path is None and m.swap.path is None
    assert p.load_u32(IMAGE_BASE) == 0x04030201
    assert os.listdir(tmp_path) == []
    m.close()


def test_heap_and_stack_are_zero_filled_and_writable(machine):
    p = machine.spawn(None, heap_size=8192, stack_size=8192)
    assert p.read(p.heap_base, 8192) == bytes(8192)
    p.store_u32(p.stack_top - 4, 0xCAFEBABE)
    assert p.load_u32(p.stack_top - 4) == 0xCAFEBABE
    assert p.stats()["zero_fill"] == 3


def test_segfault_names_address(machine):
    p = machine.spawn(None, heap_size=4096)
    with pytest.raises(SegmentationFault, match="0x00000010"):
        p.load_u32(0x10)
    with pytest.raises(SegmentationFault, match=f"{p.heap_end:#010x}"):
        p.read(p.heap_end, 1)
    assert p.stats()["segmentation_faults"] == 2


def test_kernel_memory_is_supervisor_only_and_shared(machine):
    a = machine.spawn(None)
    b = machine.spawn(None)
    with pytest.raises(ProtectionFault, match="supervisor"):
        a.load_u32(KERNEL_BASE)
    with pytest.raises(ProtectionFault):
        a.write(KERNEL_BASE + 8, b"x")
    a.store_u32(KERNEL_BASE + 8, 77, user=False)
    assert b.load_u32(KERNEL_BASE + 8, user=False) == 77  # one kernel memory in every space
    with pytest.raises(SegmentationFault):
        a.load_u32(KERNEL_BASE + machine.kernel_frames * 4096, user=False)
    assert a.stats()["protection_faults"] == 2


def test_write_to_read_only_image_is_a_protection_fault(machine):
    p = machine.spawn(b"code" * 100, writable_image=False)
    assert p.read(IMAGE_BASE, 4) == b"code"
    with pytest.raises(ProtectionFault, match="read-only"):
        p.write(IMAGE_BASE, b"X")
    q = machine.spawn(b"code" * 100, writable_image=False)
    with pytest.raises(ProtectionFault, match="read-only"):  # not present yet: still protection
        q.store_u32(IMAGE_BASE, 1)


def test_accessed_and_dirty_set_on_access(machine):
    p = machine.spawn(None)
    p.read(p.heap_base, 4)
    pte = pte_of(p, p.heap_base)
    assert pte & PTE_P and pte & PTE_A and not pte & PTE_D and pte & PTE_U and pte & PTE_W
    p.write(p.heap_base + 100, b"z")
    assert pte_of(p, p.heap_base) & PTE_D


def test_page_directory_frame_shows_real_entries(machine):
    p = machine.spawn(None)
    p.write(p.heap_base, b"x")
    pgdir = int(machine.ms.procs[p.pid * P_COLS + P_PGDIR])
    raw = machine.mem.read(pgdir, 4096)
    kpde = int.from_bytes(raw[4 * (KERNEL_BASE >> 22) :][:4], "little")
    assert kpde & 7 == PTE_P | PTE_W  # kernel table: present, writable, supervisor
    upde = int.from_bytes(raw[4 * (p.heap_base >> 22) :][:4], "little")
    assert upde & 7 == 7


def test_swap_round_trip_and_dirty_only_writes(machine):
    p = machine.spawn(None, heap_size=40 * 4096)
    for i in range(40):
        p.store_u32(p.heap_base + 4096 * i, i + 1)
    s = p.stats()
    assert s["page_outs"] > 0 and s["swap_bytes_out"] == 4096 * s["page_outs"]
    for i in range(40):
        assert p.load_u32(p.heap_base + 4096 * i) == i + 1
    outs = p.stats()["page_outs"]
    for i in range(40):  # read-only pass: pages with a valid swap copy are dropped, not written
        p.load_u32(p.heap_base + 4096 * i)
    assert p.stats()["page_outs"] == outs
    assert p.stats()["swap_in"] > 0


def test_clean_untouched_pages_are_never_written(machine):
    p = machine.spawn(None, heap_size=40 * 4096)
    for i in range(40):
        assert p.load_u32(p.heap_base + 4096 * i) == 0
    assert p.stats()["page_outs"] == 0 and p.stats()["evictions"] > 0


def test_frames_are_zeroed_before_reuse():
    m = Machine(frames=12, swap="1M")
    a = m.spawn(None, heap_size=20 * 4096)
    for i in range(20):
        a.write(a.heap_base + 4096 * i, b"\xAA" * 4096)
    a.exit()
    b = m.spawn(None, heap_size=20 * 4096)
    for i in range(20):
        assert b.read(b.heap_base + 4096 * i, 4096) == bytes(4096)
    m.close()


def test_pinned_page_never_evicted(machine):
    p = machine.spawn(None, heap_size=64 * 4096)
    p.store_u32(p.heap_base, 42)
    p.pin(p.heap_base)
    frame = pte_of(p, p.heap_base) >> 12
    for i in range(1, 64):
        p.store_u32(p.heap_base + 4096 * i, i)
    assert pte_of(p, p.heap_base) >> 12 == frame
    rows = frame_table_rows(machine)
    assert rows[frame]["pinned"] and rows[frame]["va"] == p.heap_base
    assert all(r["pinned"] for r in rows if r["kind"] in ("page directory", "page table", "kernel memory"))
    p.unpin(p.heap_base)
    for i in range(1, 64):
        p.load_u32(p.heap_base + 4096 * i)
    assert not pte_of(p, p.heap_base) & PTE_P  # evictable again
    assert p.load_u32(p.heap_base) == 42


def test_page_tables_are_pinned_and_allocated_on_demand(machine):
    p = machine.spawn(None, heap_size=12 << 20)
    before = machine.pinned_frames()
    p.store_u32(p.heap_base + (8 << 20), 1)  # a third 4 MiB region
    assert machine.pinned_frames() == before + 1
    assert p.stats()["page_tables"] == 1


def test_swap_full_is_out_of_memory_and_loses_nothing():
    m = Machine(frames=12, swap="16K")  # 4 slots
    p = m.spawn(None, heap_size=40 * 4096)
    written = []
    with pytest.raises(OutOfMemory, match="swap is full"):
        for i in range(40):
            p.store_u32(p.heap_base + 4096 * i, 1000 + i)
            written.append(i)
    # every written page is intact, in a frame or in its swap slot (reading them back
    # would need another slot, so look at frames and the swap file directly)
    rows = {r["va"]: r for r in page_table_rows(p)}
    for i in written:
        r = rows[p.heap_base + 4096 * i]
        if r["frame"] is not None:
            raw = m.mem.read(r["frame"] * 4096, 4)
        else:
            raw = m.swap.bytes[r["slot"] * 4096 :][:4].tobytes()
        assert int.from_bytes(raw, "little") == 1000 + i
    assert p.load_u32(p.heap_base + 4096 * written[-1]) == 1000 + written[-1]  # resident
    m.close()


def test_swap_write_error_is_a_clear_error_and_loses_nothing():
    m = Machine(frames=12, swap="1M", policy="fifo")
    p = m.spawn(None, heap_size=40 * 4096)
    written = []
    for i in range(20):
        p.store_u32(p.heap_base + 4096 * i, 1000 + i)
        written.append(i)
    assert p.stats()["page_outs"] > 0
    swap_fd = m.swap.fd
    read_only = os.open(f"/proc/self/fd/{swap_fd}", os.O_RDONLY)  # the swap file has no name
    saved = os.dup(swap_fd)
    try:
        os.dup2(read_only, swap_fd)  # the host now refuses every write to the swap file
        with pytest.raises(VM32Error, match="swap file could not be read or written"):
            for i in range(20, 40):
                p.store_u32(p.heap_base + 4096 * i, 1000 + i)
                written.append(i)
    finally:
        os.dup2(saved, swap_fd)
        os.close(saved)
        os.close(read_only)
    # The page whose write failed stayed in its frame: every page written before the error
    # (in both loops) is intact, and with the swap file writable again the machine goes on.
    assert len(written) < 40
    for i in written:
        assert p.load_u32(p.heap_base + 4096 * i) == 1000 + i
    p.store_u32(p.heap_base + 4096 * 39, 7)
    assert p.load_u32(p.heap_base + 4096 * 39) == 7
    m.close()


def test_swap_full_evicts_a_page_that_needs_no_slot():
    """FIFO's victim is dirty and the swap is full, but clean pages are resident: one of
    them goes instead, and OutOfMemory comes only when every page is dirty and slotless."""
    m = Machine(frames=8, swap="8K", policy="fifo")  # 4 frames for pages, 2 slots
    p = m.spawn(None, heap_size=40 * 4096)
    page = [p.heap_base + 4096 * i for i in range(40)]
    for i in range(2):
        p.store_u32(page[i], 100 + i)  # dirty, oldest
    for i in range(2, 4):
        assert p.load_u32(page[i]) == 0  # clean, younger
    p.store_u32(page[4], 104)  # evicts page 0 into slot 0
    p.store_u32(page[5], 105)  # evicts page 1 into slot 1: swap full
    p.store_u32(page[6], 106)  # victim page 4 is dirty and slotless: clean page 2 goes instead
    p.store_u32(page[7], 107)  # and clean page 3
    with pytest.raises(OutOfMemory, match="swap is full"):
        p.store_u32(page[8], 108)
    for i in (4, 5, 6, 7):
        assert p.load_u32(page[i]) == 100 + i
    m.close()


def test_no_swap_and_clean_pages_still_work():
    m = Machine(frames=10, swap=0)
    p = m.spawn(b"\x07" * 40960, heap_size=4096)
    assert p.read(IMAGE_BASE, 40960) == b"\x07" * 40960  # clean image pages are dropped and re-read
    m.close()


def test_all_frames_pinned_is_out_of_memory():
    m = Machine(frames=8, swap="64K")
    p = m.spawn(None, heap_size=16 * 4096)
    with pytest.raises(OutOfMemory, match="pinned"):
        for i in range(16):
            p.store_u32(p.heap_base + 4096 * i, 1)
            p.pin(p.heap_base + 4096 * i)
    m.close()


def test_exit_frees_frames_and_slots(machine):
    p = machine.spawn(None, heap_size=40 * 4096)
    p.fill_pattern(p.heap_base, 40 * 1024, 3)
    assert machine.stats()["swap_slots_used"] > 0
    p.exit()
    st = machine.stats()
    assert st["swap_slots_used"] == 0 and st["free_frames"] == machine.frames - 2
    with pytest.raises(InvalidArgument, match="exited"):
        p.load_u32(p.heap_base)
    assert st["page_outs"] == p.stats()["page_outs"] > 0


def test_pattern_and_stats(machine):
    p = machine.spawn(None, heap_size=32 * 4096)
    p.fill_pattern(p.heap_base, 32 * 1024, 11)
    assert p.check_pattern(p.heap_base, 32 * 1024, 11) == 0
    p.store_u32(p.heap_base + 4, 0)
    assert p.check_pattern(p.heap_base, 32 * 1024, 11) == 1
    s = p.stats()
    assert s["accesses"] == 3 * 32 * 1024 + 1
    assert s["tlb_hits"] + s["tlb_misses"] == s["accesses"]
    assert s["page_faults"] == s["zero_fill"] + s["swap_in"] + s["image_in"]


def test_one_walk_per_tlb_miss_faults_included(machine):
    # A not-present fault walks the tree once: the fault handler, the read-ahead and the
    # re-read after the TLB fill use the entry's address that walk found.  (On one CPU no
    # other CPU evicts a page between its fault and its use, so nothing walks twice.)
    p = machine.spawn(None, heap_size=48 * 4096)
    p.fill_pattern(p.heap_base, 48 * 1024, 5)  # 48 pages on 16 frames: zero fills, evictions
    assert p.check_pattern(p.heap_base, 48 * 1024, 5) == 0  # and page-ins from swap
    s = p.stats()
    assert s["page_faults"] >= 96 and s["swap_in"] > 0
    assert s["walks"] == s["tlb_misses"]
    cpu = machine.cpu_stats()[machine.cpu()]
    assert cpu["walks"] == cpu["tlb_misses"] >= s["tlb_misses"]


def test_page_table_view(machine):
    p = machine.spawn(None, heap_size=40 * 4096)
    for i in range(40):
        p.store_u32(p.heap_base + 4096 * i, i)
    rows = page_table_rows(p)
    assert len(rows) == 40
    assert any(r["where"].startswith("swap slot") for r in rows)
    assert any(r["frame"] is not None for r in rows)
    assert p.page_table() == rows  # the API returns the rows; vm32.ui renders them (test_ui.py)
    assert len(machine.frame_table()) == 16


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(frames=4), "frames"),
        (dict(frames=16, tlb_entries=12), "power of two"),
        (dict(frames=16, policy="belady"), "unknown replacement policy"),
        (dict(frames=16, swap=-1), "swap"),
        (dict(frames=16, swap="lots"), "size"),
        (dict(frames=16, cpus=0), "cpus"),
        (dict(frames=2**21), "4 GiB"),
    ],
)
def test_bad_machine_arguments(kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        Machine(**kwargs)


def test_bad_process_arguments(machine, tmp_path):
    with pytest.raises(InvalidArgument, match="does not exist"):
        machine.spawn(tmp_path / "missing.img")
    with pytest.raises(InvalidArgument, match="do not fit"):
        machine.spawn(None, heap_size=0xF0000000)
    p = machine.spawn(None)
    with pytest.raises(InvalidArgument, match="multiple of 4"):
        p.load_u32(p.heap_base + 2)
    with pytest.raises(InvalidArgument, match="32 bits"):
        p.store_u32(p.heap_base, 1 << 32)
    with pytest.raises(InvalidArgument, match="32-bit address"):
        p.read(-1, 4)
    with pytest.raises(InvalidArgument):
        p.read(0xFFFFFFFF, 4)


def test_load_store_word_seam_on_paged_memory(machine):
    """Another kernel reaches a process's memory through vm32.memory.load_word/store_word."""
    import numba

    from vm32.kernel.access import CTX_ACCESSES, CTX_SIZE, CTX_STATUS, PagedMemory
    from vm32.kernel.sync import cpu_enter, cpu_leave
    from vm32.memory import load_word, store_word

    @numba.njit
    def fill_and_sum(mem, base, n):
        s = 0
        for i in range(n):
            store_word(mem, base + 4 * i, i)
        for i in range(n):
            s += load_word(mem, base + 4 * i)
        return s

    p = machine.spawn(None, heap_size=20 * 4096)
    cpu = machine.cpu()
    ctx = np.zeros(CTX_SIZE, dtype=np.int64)
    ctx[0], ctx[1], ctx[2] = cpu, p.pid, 1
    mem = PagedMemory(machine.ms, ctx)
    assert cpu_enter(machine.ms, cpu, p.pid) == 0
    total = fill_and_sum(mem, p.heap_base, 20 * 1024)
    cpu_leave(machine.ms, cpu, ctx[CTX_ACCESSES])
    assert total == sum(range(20 * 1024)) and ctx[CTX_STATUS] == 0
    assert p.load_u32(p.heap_base + 4 * 5000) == 5000
    cpu_enter(machine.ms, cpu, p.pid)
    fill_and_sum(mem, 0x10, 1)  # unmapped: the status slot reports it
    cpu_leave(machine.ms, cpu, 0)
    assert ctx[CTX_STATUS] == -4


def test_page_table_lists_pages_evicted_clean(machine):
    """A page that left its frame clean has no swap copy; it is still listed, with where its
    contents are: the image or zero fill."""
    p = machine.spawn(b"\x05" * 8192, heap_size=40 * 4096)
    assert p.load_u32(IMAGE_BASE) == 0x05050505
    for i in range(40):
        p.load_u32(p.heap_base + 4096 * i)  # read only: every page stays clean
    rows = {r["va"]: r for r in p.page_table()}
    assert len(rows) == 41  # every page touched, resident or not
    where = {r["where"] for r in rows.values() if r["frame"] is None}
    assert where <= {"zero-fill", "in the image"} and "zero-fill" in where
    if rows[IMAGE_BASE]["frame"] is None:
        assert rows[IMAGE_BASE]["where"] == "in the image"
    assert p.load_u32(p.heap_base) == 0 and p.load_u32(IMAGE_BASE) == 0x05050505  # and they come back


def test_bad_arguments_are_vm32_errors(machine):
    p = machine.spawn(None, heap_size=4096)
    with pytest.raises(InvalidArgument, match="bytes-like, not str"):
        p.write(p.heap_base, "text")
    with pytest.raises(InvalidArgument, match="length -1 must be a non-negative integer"):
        p.read(p.heap_base, -1)


def test_the_machine_module_shows_its_api():
    import vm32.kernel.machine as module

    assert module.__all__ == ["Machine", "Process"]


@pytest.mark.parametrize("size", [16, 4096, 100_000])
def test_a_second_free_is_a_double_free_for_every_size(machine, size):
    p = machine.spawn(None, heap_size=1 << 20)
    a = p.malloc(size)
    p.free(a)
    with pytest.raises(DoubleFree):
        p.free(a)
    b = p.realloc(0, size)  # realloc of 0 allocates, as in C
    assert p.size_of(b) == size
