"""Paging benchmarks: (a) cost of a TLB-hit 32-bit read through the kernel's compiled path
vs a flat read; (b) a scale run - two processes touching far more memory than the machine
has, every word verified, swap throughput next to the raw disk write speed.

    python benchmarks/paging.py                 # (a) and (b) at scale 1/8 (2 x 384 MiB on 128 MiB)
    python benchmarks/paging.py --scale 1       # the full run: 2 x 3 GiB on 1 GiB (long)
    python benchmarks/paging.py --only tlb --repeat 5 --json

Swap throughput is measured honestly: the write phase ends with an msync of the swap
file, and the raw figure writes a file of the same size with os.write + fsync.
(a)'s figures are medians of --repeat rounds of its four loops in turn (flat, paged, flat,
...); (b) is one run.  --json: the figures as one JSON object at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

import numpy as np
from numba import njit

from bench_common import add_json, add_repeat, alternated, load_average, load_line, medians

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


def _seconds(fn, *args) -> float:
    """Wall seconds of one call of fn(*args)."""
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def bench_tlb(repeat: int, n: int = 20_000_000) -> dict:
    """(a): TLB-hit read vs flat read, 16 pages (all in a 64-entry TLB): ns per read of each
    loop (medians of `repeat` rounds of the four loops in turn), paged/flat ratios."""
    pages = 16
    reps = n // (pages * 1024)
    nseq = reps * pages * 1024
    with Machine(frames=64, swap="1M", policy="fifo", tlb_entries=64, cpus=1) as m:
        p = m.spawn(None, heap_size=pages * 4096)
        p.fill_pattern(p.heap_base, pages * 1024, 1)  # all pages resident, translations cached
        cpu = m.cpu()
        cpu_enter(m.ms, cpu, p.pid)
        try:
            # flat: the same physical words the pages landed in, via a contiguous flat buffer
            flat = np.ascontiguousarray(m.mem.words[: pages * 1024 + 64 * 1024].copy())
            loops = {"flat_random": (flat_reads, flat, 0, pages * 1024, n),
                     "paged_random": (paged_reads, m.ms, cpu, p.heap_base, pages * 1024, n),
                     "flat_sequential": (flat_seq, flat, 0, pages * 1024, reps),
                     "paged_sequential": (paged_seq, m.ms, cpu, p.heap_base, pages * 1024, reps)}
            for fn, *args in loops.values():
                fn(*args)  # compile / warm
            runs = {name: [] for name in loops}
            for _, name in alternated(repeat, loops):
                runs[name].append(_seconds(*loops[name]))
        finally:
            cpu_leave(m.ms, cpu, 0)
        misses = int(m.ms.cstats[cpu * 16 + 1])
    reads = {"flat_random": n, "paged_random": n, "flat_sequential": nseq, "paged_sequential": nseq}
    ns = {name: 1e9 * t / reads[name] for name, t in medians(runs).items()}
    figures = {"runs": repeat, "ns_per_read": ns, "seconds": runs,
               "paged/flat": {"random": ns["paged_random"] / ns["flat_random"],
                              "sequential": ns["paged_sequential"] / ns["flat_sequential"]},
               "tlb_misses": misses}
    print(f"(a) TLB-hit 32-bit read vs flat read (medians of {repeat} alternated runs)")
    print(f"    random addresses: flat {ns['flat_random']:.2f} ns/read, paged {ns['paged_random']:.2f} ns/read, "
          f"ratio {figures['paged/flat']['random']:.2f}x")
    print(f"    sequential:       flat {ns['flat_sequential']:.2f} ns/read, paged {ns['paged_sequential']:.2f} "
          f"ns/read, ratio {figures['paged/flat']['sequential']:.2f}x  (flat loop is vectorised by LLVM)")
    print(f"    TLB misses during the timed loops: {misses}")
    print(f"    {load_line()}")
    return figures


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


def bench_scale(scale: float, policy: str, directory: str, threads: int = 2) -> dict:
    """(b): two processes each touching 3 GiB * scale on a machine of 1 GiB * scale, on
    `threads` host threads (2: one CPU each; 1: one CPU alternating 16 MiB chunks).  One run
    (it is long): its figures and the raw disk write speed measured after it."""
    per_proc = int(3 * GIB * scale) // 4096 * 4096
    phys = int(GIB * scale) // 4096 * 4096
    swap = 2 * per_proc + (64 << 20)
    print(f"(b) scale {scale}: 2 processes x {per_proc >> 20} MiB on {phys >> 20} MiB of physical memory, "
          f"swap file {swap >> 20} MiB in {directory}, policy {policy}, {threads} host thread(s)")
    swap_path = os.path.join(directory, f"vm32-bench-{os.getpid()}.swap")
    t_all = time.perf_counter()
    try:
        figures = _scale_run(phys, swap, swap_path, policy, per_proc, threads)
    finally:
        if os.path.exists(swap_path):
            os.unlink(swap_path)
    out_all = figures["swap_bytes_out"]
    raw = raw_disk_write(out_all, directory)
    wall = time.perf_counter() - t_all
    print(f"    raw disk write of the same {out_all >> 20} MiB (os.write 1 MiB + fsync): {raw:.0f} MB/s; "
          f"swap-out/raw = {figures['swap_out_mb_s'] / raw:.2f}")
    print(f"    wall time of (b): {wall:.1f} s; {load_line()}")
    return dict(figures, scale=scale, policy=policy, threads=threads, bytes_per_process=per_proc,
                physical_bytes=phys, raw_write_mb_s=raw, swap_out_over_raw=figures["swap_out_mb_s"] / raw,
                wall_seconds=wall)


def _scale_run(phys: int, swap: int, swap_path: str, policy: str, per_proc: int, threads: int) -> dict:
    """The two-process run of (b); prints and returns its figures (bytes written to swap in
    both phases, swap-out MB/s of the write phase, ...)."""
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
        figures = {"write_seconds": t_write, "write_faults": s1["page_faults"] - s0["page_faults"],
                   "swap_out_mb_s": out_bytes / t_write / 1e6,
                   "verify_seconds": t_read, "verify_faults": s2["page_faults"] - s1["page_faults"],
                   "swap_in_mb_s": in_bytes / t_read / 1e6,
                   "swap_bytes_out": s2["swap_bytes_out"] - s0["swap_bytes_out"],
                   "words_wrong": sum(wrong), "words": 2 * nwords}
        print(f"    write phase {t_write:.2f} s: {figures['write_faults']} faults, "
              f"{out_bytes >> 20} MiB to swap -> {figures['swap_out_mb_s']:.0f} MB/s of swap-out "
              f"(whole phase incl. pattern compute and msync)")
        print(f"    verify phase {t_read:.2f} s: {figures['verify_faults']} faults, "
              f"{in_bytes >> 20} MiB from swap -> {figures['swap_in_mb_s']:.0f} MB/s of swap-in, "
              f"{(s2['swap_bytes_out'] - s1['swap_bytes_out']) >> 20} MiB more written")
        print(f"    words wrong: {sum(wrong)} of {2 * nwords}  (every byte written once and verified)")
        tot = m.stats()
        print(f"    machine: accesses {tot['accesses']}, TLB hit rate {100 * tot['tlb_hits'] / tot['accesses']:.3f}%, "
              f"evictions {tot['evictions']}, page-outs {tot['page_outs']}, swap-ins {tot['swap_in']}")
        figures["machine"] = {k: tot[k] for k in ("accesses", "tlb_hits", "evictions", "page_outs", "swap_in")}
    return figures


def main(argv=None) -> None:
    """Run the paging benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.125, help="fraction of the 2 x 3 GiB on 1 GiB run (default 1/8)")
    ap.add_argument("--policy", default="fifo")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="directory of the swap file and raw-write file")
    ap.add_argument("--only", choices=["tlb", "scale"])
    ap.add_argument("--threads", type=int, choices=[1, 2], default=2,
                    help="host threads (CPUs) running the two processes in (b) (default 2)")
    add_repeat(ap, help="rounds of the four loops of (a), alternated; figures are their medians")
    add_json(ap)
    args = ap.parse_args(argv)
    figures = {}
    if args.only != "scale":
        figures["tlb"] = bench_tlb(args.repeat)
    if args.only != "tlb":
        figures["scale"] = bench_scale(args.scale, args.policy, args.dir, args.threads)
    if args.json:
        print(json.dumps(dict(figures, load_average=load_average())))

if __name__ == "__main__":
    main()
