"""Paging benchmarks: (a) cost of a TLB-hit 32-bit read through the kernel's compiled path
vs a flat read; (b) a scale run - two processes touching far more memory than the machine
has, every word verified, swap throughput next to the raw disk write speed.

    python benchmarks/paging.py                 # (a) and (b) at scale 1/8 (2 x 384 MiB on 128 MiB)
    python benchmarks/paging.py --scale 1       # the full run: 2 x 3 GiB on 1 GiB (long)
    python benchmarks/paging.py --only tlb

Swap throughput is measured honestly: the write phase ends with an msync of the swap
file, and the raw figure writes a file of the same size with os.write + fsync.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np
from numba import njit

from vm32.kernel import Machine
from vm32.kernel.fault import vm_translate
from vm32.kernel.sync import cpu_enter, cpu_leave

GIB = 1 << 30


@njit(nogil=True)
def flat_reads(words, base, span_words, n):
    """n reads at pseudo-random word addresses in [base, base + 4*span_words), flat memory."""
    s = np.uint64(0)
    x = np.int64(12345)
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        a = base + 4 * (x % span_words)
        s += words[a >> 2]
    return s


@njit(nogil=True, _nrt=False)  # hot loops over the machine tuple: no refcounting (see vm32.jit)
def paged_reads(ms, cpu, base, span_words, n):
    """The same reads through vm_translate (TLB hit path; misses and faults if any)."""
    s = np.uint64(0)
    x = np.int64(12345)
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        a = base + 4 * (x % span_words)
        pa = vm_translate(ms, cpu, a, 0, 1)
        s += ms.words[pa >> 2]
    return s


@njit(nogil=True)
def flat_seq(words, base, nwords, reps):
    s = np.uint64(0)
    for _ in range(reps):
        for i in range(nwords):
            s += words[(base + 4 * i) >> 2]
    return s


@njit(nogil=True, _nrt=False)
def paged_seq(ms, cpu, base, nwords, reps):
    s = np.uint64(0)
    for _ in range(reps):
        for i in range(nwords):
            pa = vm_translate(ms, cpu, base + 4 * i, 0, 1)
            s += ms.words[pa >> 2]
    return s


def _best(fn, *args, repeat=5):
    fn(*args)  # compile / warm
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def bench_tlb(n: int = 20_000_000) -> None:
    """(a): TLB-hit read vs flat read, 16 pages (all in a 64-entry TLB)."""
    pages = 16
    with Machine(frames=64, swap="1M", policy="fifo", tlb_entries=64, cpus=1) as m:
        p = m.spawn(None, heap_size=pages * 4096)
        p.fill_pattern(p.heap_base, pages * 1024, 1)  # all pages resident, translations cached
        cpu = m.cpu()
        cpu_enter(m.ms, cpu, p.pid)
        try:
            # flat: the same physical words the pages landed in, via a contiguous flat buffer
            flat = np.ascontiguousarray(m.mem.words[: pages * 1024 + 64 * 1024].copy())
            t_flat = _best(flat_reads, flat, 0, pages * 1024, n)
            t_paged = _best(paged_reads, m.ms, cpu, p.heap_base, pages * 1024, n)
            reps = n // (pages * 1024)
            t_fseq = _best(flat_seq, flat, 0, pages * 1024, reps)
            t_pseq = _best(paged_seq, m.ms, cpu, p.heap_base, pages * 1024, reps)
        finally:
            cpu_leave(m.ms, cpu, 0)
        misses = int(m.ms.cstats[cpu * 16 + 1])
    print("(a) TLB-hit 32-bit read vs flat read (best of 5)")
    print(f"    random addresses: flat {1e9 * t_flat / n:.2f} ns/read, paged {1e9 * t_paged / n:.2f} ns/read, "
          f"ratio {t_paged / t_flat:.2f}x")
    nseq = reps * pages * 1024
    print(f"    sequential:       flat {1e9 * t_fseq / nseq:.2f} ns/read, paged {1e9 * t_pseq / nseq:.2f} ns/read, "
          f"ratio {t_pseq / t_fseq:.2f}x  (flat loop is vectorised by LLVM)")
    print(f"    TLB misses during the timed loops: {misses}")


def raw_disk_write(nbytes: int, directory: str) -> float:
    """MB/s of writing `nbytes` to a new file in `directory` with os.write (1 MiB) + fsync."""
    buf = os.urandom(1 << 20)
    fd, path = tempfile.mkstemp(dir=directory, prefix="vm32-raw-")
    try:
        t = time.perf_counter()
        left = nbytes
        while left > 0:
            left -= os.write(fd, buf[: min(left, len(buf))])
        os.fsync(fd)
        dt = time.perf_counter() - t
    finally:
        os.close(fd)
        os.unlink(path)
    return nbytes / dt / 1e6


def bench_scale(scale: float, policy: str, directory: str, threads: int = 2) -> None:
    """(b): two processes each touching 3 GiB * scale on a machine of 1 GiB * scale, on
    `threads` host threads (2: one CPU each; 1: one CPU alternating 16 MiB chunks)."""
    per_proc = int(3 * GIB * scale) // 4096 * 4096
    phys = int(GIB * scale) // 4096 * 4096
    swap = 2 * per_proc + (64 << 20)
    print(f"(b) scale {scale}: 2 processes x {per_proc >> 20} MiB on {phys >> 20} MiB of physical memory, "
          f"swap file {swap >> 20} MiB in {directory}, policy {policy}, {threads} host thread(s)")
    swap_path = os.path.join(directory, f"vm32-bench-{os.getpid()}.swap")
    t_all = time.perf_counter()
    try:
        out_all, ratio = _scale_run(phys, swap, swap_path, policy, per_proc, threads)
    finally:
        if os.path.exists(swap_path):
            os.unlink(swap_path)
    raw = raw_disk_write(out_all, directory)
    print(f"    raw disk write of the same {out_all >> 20} MiB (os.write 1 MiB + fsync): {raw:.0f} MB/s; "
          f"swap-out/raw = {ratio / raw:.2f}")
    print(f"    wall time of (b): {time.perf_counter() - t_all:.1f} s")


def _scale_run(phys: int, swap: int, swap_path: str, policy: str, per_proc: int, threads: int) -> tuple[int, float]:
    """The two-process run of (b); returns (bytes written to swap, swap-out MB/s)."""
    with Machine(frames=phys // 4096, swap=swap, policy=policy, tlb_entries=64, cpus=3,
                 swap_path=swap_path, max_processes=2) as m:
        procs = [m.spawn(None, heap_size=per_proc) for _ in range(2)]
        nwords = per_proc // 4
        wrong = [0, 0]
        chunk = 1 << 22  # words per call (16 MiB)

        def phase(check: int) -> float:
            def run(ks):
                for w in range(0, nwords, chunk):
                    for i in ks:
                        p = procs[i]
                        n = min(chunk, nwords - w)
                        if check:
                            wrong[i] += p.check_pattern(p.heap_base + 4 * w, n, 77 + i)
                        else:
                            p.fill_pattern(p.heap_base + 4 * w, n, 77 + i)

            t = time.perf_counter()
            ts = [threading.Thread(target=run, args=(ks,)) for ks in ([[0, 1]] if threads == 1 else [[0], [1]])]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
            m.swap.sync()  # msync: the swap writes are on disk before the clock stops
            return time.perf_counter() - t

        procs[0].fill_pattern(procs[0].heap_base, 1024, 0)  # compile outside the timing
        s0 = m.stats()
        t_write = phase(0)
        s1 = m.stats()
        t_read = phase(1)
        s2 = m.stats()
        out_bytes = s1["swap_bytes_out"] - s0["swap_bytes_out"]
        in_bytes = s2["swap_bytes_in"] - s1["swap_bytes_in"]
        out_all = s2["swap_bytes_out"] - s0["swap_bytes_out"]
        print(f"    write phase {t_write:.2f} s: {s1['page_faults'] - s0['page_faults']} faults, "
              f"{out_bytes >> 20} MiB to swap -> {out_bytes / t_write / 1e6:.0f} MB/s of swap-out "
              f"(whole phase incl. pattern compute and msync)")
        print(f"    verify phase {t_read:.2f} s: {s2['page_faults'] - s1['page_faults']} faults, "
              f"{in_bytes >> 20} MiB from swap -> {in_bytes / t_read / 1e6:.0f} MB/s of swap-in, "
              f"{(s2['swap_bytes_out'] - s1['swap_bytes_out']) >> 20} MiB more written")
        print(f"    words wrong: {sum(wrong)} of {2 * nwords}  (every byte written once and verified)")
        tot = m.stats()
        print(f"    machine: accesses {tot['accesses']}, TLB hit rate {100 * tot['tlb_hits'] / tot['accesses']:.3f}%, "
              f"evictions {tot['evictions']}, page-outs {tot['page_outs']}, swap-ins {tot['swap_in']}")
    return out_all, out_bytes / t_write / 1e6


def main(argv=None) -> None:
    """Run the paging benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.125, help="fraction of the 2 x 3 GiB on 1 GiB run (default 1/8)")
    ap.add_argument("--policy", default="fifo")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="directory of the swap file and raw-write file")
    ap.add_argument("--only", choices=["tlb", "scale"])
    ap.add_argument("--threads", type=int, choices=[1, 2], default=2,
                    help="host threads (CPUs) running the two processes in (b) (default 2)")
    args = ap.parse_args(argv)
    if args.only != "scale":
        bench_tlb()
    if args.only != "tlb":
        bench_scale(args.scale, args.policy, args.dir, args.threads)


if __name__ == "__main__":
    main()
