"""A fuzz campaign: random and mutated inputs everywhere a user can give vm32 one.

    .venv/bin/python benchmarks/fuzz.py [--programs 10000] [--cli 500] [--sources 2000]
                                        [--sizes 20000] [--backends flat,classic,paged,jit] [--seed 1]

1. `--programs` random and mutated UM programs on each backend, in-process through the
   API (`UniversalMachine(...).run(max_instructions=...)`), in worker processes so that
   a host crash is seen and counted rather than ending the campaign.  Every outcome
   must be a halt, an exhausted budget or a `vm32.errors` exception; and the backends
   must agree on each program's output and outcome (flat is the reference) when the
   program maps no array (array ids are addresses on flat and paged, indexes on classic).
2. `--cli` random and mutated programs through `vm32 um run` in subprocesses: exit status 0,
   or 1 with stderr ending in one `vm32: error:` line; never a traceback.  A program that
   still runs after a few seconds (it loops) gets SIGINT: status 130, "interrupted".
3. `--sources` random and mutated assembly sources through `vm32.um.asm.assemble`
   (AssemblyError or words), a tenth of them through `vm32 um asm`.
4. `--sizes` random size strings through `vm32.defaults.parse_size` (InvalidArgument or
   a non-negative int).

Everything runs with a fresh TMPDIR, and the files left in it are counted.  Prints the
counts of each kind of outcome, and exits 1 if any run broke a rule
(a traceback, a host crash, an exception that is not a VM32Error, a disagreement).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

BUDGET = 20_000  # instructions per run: random programs loop forever as often as not
CHUNK = 1000  # programs per worker process (a new process each: a host crash costs one chunk)
OPCODE_WEIGHTS = [6, 6, 6, 6, 6, 6, 6, 1, 6, 3, 3, 2, 3, 10, 1, 1]  # halt and invalid operators rare


# ---- programs ------------------------------------------------------------------------------------


def shipped_programs() -> list[list[int]]:
    """The words of the programs that ship with vm32 (the seeds of mutation)."""
    from vm32.um.asm import assemble

    folder = resources.files("vm32.um").joinpath("programs")
    return [list(map(int, assemble(folder.joinpath(n).read_text(), n))) for n in
            ("hello.uma", "echo.uma", "demo.uma")]


def random_program(rng: random.Random) -> list[int]:
    """Random instructions, mostly well formed, with small registers values to index with."""
    words = []
    for _ in range(rng.randint(1, 64)):
        op = rng.choices(range(16), OPCODE_WEIGHTS)[0]
        if op == 13:
            words.append((13 << 28) | (rng.randrange(8) << 25) | rng.choice([0, 1, 2, 3, 7, 64, 1000,
                                                                             rng.randrange(1 << 25)]))
        else:
            words.append((op << 28) | rng.randrange(1 << 9) | (rng.randrange(2) * rng.randrange(1 << 28) & ~0x1FF
                                                                 if rng.random() < 0.1 else 0))
    return words


def mutated(rng: random.Random, seed: list[int]) -> list[int]:
    """`seed` with a few words flipped, replaced, dropped or duplicated."""
    words = list(seed)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(words))
        kind = rng.randrange(4)
        if kind == 0:
            words[i] ^= 1 << rng.randrange(32)
        elif kind == 1:
            words[i] = rng.randrange(1 << 32)
        elif kind == 2 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, words[i])
    return words


def program(rng: random.Random, seeds: list[list[int]]) -> list[int]:
    return random_program(rng) if rng.random() < 0.5 else mutated(rng, rng.choice(seeds))


# ---- runs through the API (in worker processes) ----------------------------------------------------


def run_api(words: list[int], backend: str, machine=None) -> tuple[str, bytes]:
    """(outcome, output) of one run: 'halted', 'budget', an error's class and kind, or
    'BROKEN <exception>' for anything that is not a vm32.errors exception."""
    import io

    import numpy as np

    from vm32.errors import UMFault, VM32Error
    from vm32.um.machine import UniversalMachine

    out = io.BytesIO()
    kw = dict(machine=machine) if backend == "paged" else {}
    try:
        with UniversalMachine(np.array(words, dtype=np.uint32), backend=backend, memory_size="1M",
                              stdin=b"fuzz input\n", stdout=out, **kw) as um:
            um.run(max_instructions=BUDGET)
            return ("halted" if um.halted else "budget"), out.getvalue()
    except UMFault as e:
        return f"UMFault {e.kind} pc={e.pc}", out.getvalue()
    except VM32Error as e:
        return type(e).__name__, out.getvalue()
    except Exception as e:  # noqa: BLE001 - the campaign counts these as broken rules
        return f"BROKEN {type(e).__name__}: {e}", out.getvalue()


def api_chunk(args) -> list[tuple[int, str, str, bytes]]:
    """Worker: run programs `start`..`start+n` of the seeded stream on `backend`."""
    seed, start, n, backend = args
    began = time.perf_counter()
    from vm32.kernel.machine import Machine

    seeds = shipped_programs()
    results = []
    machine = Machine(frames=64, swap="8M", cpus=2, max_processes=4) if backend == "paged" else None
    try:
        for i in range(start, start + n):
            words = program(random.Random(seed * 1_000_003 + i), seeds)
            outcome, output = run_api(words, backend, machine)
            results.append((i, backend, outcome, output))
    finally:
        if machine is not None:
            machine.close()
    return results, time.perf_counter() - began


def api_campaign(seed: int, count: int, backends: list[str], counts: collections.Counter, broken: list) -> dict:
    """Every program on every backend; returns {(i, backend): (outcome, output)}."""
    jobs = [(seed, start, min(CHUNK, count - start), b) for b in backends for start in range(0, count, CHUNK)]
    results = {}
    worker_seconds: collections.Counter = collections.Counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(2, maxtasksperchild=1) as pool:
        pending = {job: pool.apply_async(api_chunk, (job,)) for job in jobs}
        for job, res in pending.items():
            try:
                chunk, seconds = res.get(timeout=1800)
                worker_seconds[job[3]] += seconds
                for i, backend, outcome, output in chunk:
                    results[i, backend] = (outcome, output)
                    counts[f"api {backend} {outcome.split(' pc=')[0]}"] += 1
                    if outcome.startswith("BROKEN"):
                        broken.append(f"program {i} on {backend}: {outcome}")
            except Exception as e:  # noqa: BLE001 - a worker that died: a host crash
                counts[f"api {job[3]} HOST CRASH"] += job[2]
                broken.append(f"programs {job[1]}..{job[1] + job[2]} on {job[3]}: worker died ({e!r})")
    for backend, seconds in worker_seconds.items():
        print(f"api {backend}: {count} programs in {seconds:.0f} s of worker time", flush=True)
    return results


def compare_backends(results: dict, words_of, count: int, backends: list[str], counts: collections.Counter,
                     broken: list) -> None:
    """The backends agree with flat on each program that maps no array and halted or faulted
    within the budget.  (A program that maps arrays may use their ids as numbers, and ids
    differ by design: an address on flat and paged, a table index on classic.)"""
    for i in range(count):
        ref = results.get((i, "flat"))
        if ref is None or ref[0] == "budget":
            continue
        maps = any((w >> 28) == 8 for w in words_of(i))
        for b in backends:
            got = results.get((i, b))
            if b == "flat" or got is None or got[0] == "budget":
                continue
            if got == ref:
                counts[f"agree {b}"] += 1
            elif maps:
                counts[f"differ {b} (the program maps arrays: ids differ by design)"] += 1
            else:
                counts[f"DISAGREE {b}"] += 1
                broken.append(f"program {i}: flat {ref[0]} {ref[1][:20]!r}, {b} {got[0]} {got[1][:20]!r}")


# ---- runs through the command line ------------------------------------------------------------------


def cli_campaign(seed: int, count: int, backends: list[str], counts: collections.Counter, broken: list) -> None:
    """`vm32 um run` on random and mutated programs, two at a time: one error line or success,
    never a traceback; a program still running after LOOP_SECONDS gets SIGINT and must end
    with "interrupted" and status 130."""
    from concurrent.futures import ThreadPoolExecutor

    from vm32.um.asm import to_bytes

    rng = random.Random(seed + 7)
    seeds = shipped_programs()
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for i in range(count):
            path = Path(tmp) / f"p{i}.um"
            data = to_bytes(program(rng, seeds))
            if rng.random() < 0.1:  # a file that is not whole words, or is text
                data = data[: rng.randrange(len(data) + 1)] if rng.random() < 0.5 else b"li r1, 1\nhalt\n"
            path.write_bytes(data)
            backend = rng.choice(backends)
            extra = ["--frames", "32"] if backend == "paged" else []
            runs.append((f"um run {backend} program {i}",
                         [sys.executable, "-m", "vm32", "um", "run", str(path), "--backend", backend, *extra]))
        warm = Path(tmp) / "warm.um"  # compile each backend's kernels first (once, when the cache is cold):
        warm.write_bytes(to_bytes([0x70000000]))  # a SIGINT waits for a compile to end, which takes a minute
        for backend in backends:
            subprocess.run([sys.executable, "-m", "vm32", "um", "run", str(warm), "--backend", backend],
                           capture_output=True, timeout=600)
        with ThreadPoolExecutor(2) as pool:
            for what, r in pool.map(lambda run: (run[0], _run_cli(run[1])), runs):
                if r.returncode == 130 and r.stderr.decode(errors="replace").rstrip().endswith(
                        "vm32: error: interrupted") and b"Traceback" not in r.stderr:
                    counts["cli interrupted (a program that loops: not an error)"] += 1
                else:
                    _judge_cli(r, what, counts, broken)


LOOP_SECONDS = 5.0  # a CLI run still going after this gets SIGINT (a random program that loops)


def _run_cli(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run `cmd` with input b"x"; SIGINT after LOOP_SECONDS, SIGKILL 30 s later."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(b"x", timeout=LOOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _judge_cli(r, what: str, counts: collections.Counter, broken: list) -> None:
    err = r.stderr.decode(errors="replace")
    lines = err.rstrip("\n").splitlines()
    if r.returncode == 0:
        counts["cli ok"] += 1
    elif r.returncode == 1 and lines and lines[-1].startswith("vm32: error: ") and "Traceback" not in err:
        counts["cli error line"] += 1
    else:
        counts["cli BROKEN"] += 1
        broken.append(f"{what}: status {r.returncode}: {err[-300:]}")


# ---- assembly sources and sizes ------------------------------------------------------------------


TOKENS = ["li", "li32", "add", "mul", "div", "nand", "not", "nop", "cmov", "load", "store", "map", "unmap",
          "out", "in", "loadprog", "halt", "loadimm", ".word", ".space", ".string", ".equ", "r0", "r7", "r8",
          "x:", "x", "loop:", ",", "'a'", "'\\n'", '"hi\\n"', "0x10", "-1", "4294967295", "99999999999",
          "0b101", "1_000", ";", "#", "+", "-", "\\", "\t", "é", "\x00"]


def random_source(rng: random.Random, seeds: list[str]) -> str:
    if rng.random() < 0.5:
        return "\n".join(" ".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 6)))
                         for _ in range(rng.randint(0, 12)))
    text = list(rng.choice(seeds))
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(text))
        text[i:i + rng.randint(0, 3)] = rng.choice(TOKENS)
    return "".join(text)


def source_campaign(seed: int, count: int, counts: collections.Counter, broken: list) -> None:
    from vm32.errors import AssemblyError
    from vm32.um.asm import assemble

    rng = random.Random(seed + 11)
    folder = resources.files("vm32.um").joinpath("programs")
    seeds = [folder.joinpath(n).read_text() for n in ("hello.uma", "echo.uma", "demo.uma")]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            text = random_source(rng, seeds)
            try:
                assemble(text, "fuzz")
                counts["asm ok"] += 1
            except AssemblyError:
                counts["asm AssemblyError"] += 1
            except Exception as e:  # noqa: BLE001
                counts["asm BROKEN"] += 1
                broken.append(f"source {i}: {type(e).__name__}: {e}")
            if i % 10 == 0:
                src = Path(tmp) / "s.uma"
                src.write_text(text, errors="surrogateescape")
                r = subprocess.run([sys.executable, "-m", "vm32", "um", "asm", str(src), "-o", str(Path(tmp) / "s.um")],
                                   capture_output=True, timeout=60)
                _judge_cli(r, f"um asm source {i}", counts, broken)


SIZE_PARTS = ["", "0", "1", "4096", "0x", "0x1000", "0XFF", "1_0", "_", "-", "+", " ", "K", "k", "M", "G", "T",
              "KiB", "MB", "GiB", "B", "b", "i", ".", "1.5", "e3", "99999999999999999999", "\t", "０"]


def size_campaign(seed: int, count: int, counts: collections.Counter, broken: list) -> None:
    from vm32.defaults import parse_size
    from vm32.errors import InvalidArgument

    rng = random.Random(seed + 13)
    for i in range(count):
        text = "".join(rng.choice(SIZE_PARTS) for _ in range(rng.randint(0, 4)))
        try:
            value = parse_size(text)
            ok = isinstance(value, int) and value >= 0
            counts["size ok" if ok else "size BROKEN"] += 1
            if not ok:
                broken.append(f"size {text!r}: {value!r}")
        except InvalidArgument:
            counts["size InvalidArgument"] += 1
        except Exception as e:  # noqa: BLE001
            counts["size BROKEN"] += 1
            broken.append(f"size {text!r}: {type(e).__name__}: {e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=10_000)
    parser.add_argument("--cli", type=int, default=500)
    parser.add_argument("--sources", type=int, default=2_000)
    parser.add_argument("--sizes", type=int, default=20_000)
    parser.add_argument("--backends", default="flat,classic,paged,jit")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    backends = args.backends.split(",")
    counts: collections.Counter = collections.Counter()
    broken: list[str] = []
    start = time.perf_counter()
    tmpdir = tempfile.mkdtemp(prefix="vm32-fuzz-")  # the campaign's own TMPDIR: what is left in it is counted
    os.environ["TMPDIR"] = tempfile.tempdir = tmpdir
    size_campaign(args.seed, args.sizes, counts, broken)
    source_campaign(args.seed, args.sources, counts, broken)
    results = api_campaign(args.seed, args.programs, backends, counts, broken)
    seeds = shipped_programs()
    compare_backends(results, lambda i: program(random.Random(args.seed * 1_000_003 + i), seeds),
                     args.programs, backends, counts, broken)
    cli_campaign(args.seed, args.cli, backends, counts, broken)
    left = sorted(os.listdir(tmpdir))
    counts["temporary files left"] = len(left)
    if left:
        broken.append(f"left in TMPDIR {tmpdir}: {', '.join(left[:10])}")
    else:
        os.rmdir(tmpdir)
    for key in sorted(counts):
        print(f"{counts[key]:>8}  {key}")
    print(f"{len(broken)} broken rules in {time.perf_counter() - start:.0f} s (seed {args.seed})")
    for line in broken[:50]:
        print("  " + line)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
