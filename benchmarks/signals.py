"""A signal campaign: interrupt paged runs at random moments and check that nothing is left.

    .venv/bin/python benchmarks/signals.py [--runs 100] [--seed 1] [--max-delay 4]

Each run starts one of the commands below with TMPDIR and its working directory set to
fresh empty directories, sends it SIGINT, SIGTERM, SIGHUP or SIGKILL after a random delay
(start-up, compiling or loading kernels, running, finishing), until `--runs` signals, the
same number of each, have reached a command still running; every run checks:

- no file is left in its TMPDIR or its working directory, and the named swap file it was
  given still holds exactly what was there (a vm32 swap file) or does not exist;
- the exit status is 128 + the signal's number (SIGINT 130, SIGTERM 143, SIGHUP 129),
  or the signal itself for SIGKILL or during the interpreter's start-up (before vm32
  handles signals; stderr then empty), or 0 if the run ended before the signal came;
- stderr holds no traceback, and its last line is "vm32: error: interrupted..." when
  a caught signal ended the run.

Prints the counts per signal and command, and exits 1 if any run broke a rule.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPIN = "loop: li r7, loop\nloadprog r0, r7\n"
SWEEP = """
        li      r1, 65536
        map     r2, r1
loop:   li      r4, 65535
fill:   store   r2, r4, r4
        not     r6, r0
        add     r4, r4, r6
        li      r7, fill
        li      r6, loop
        cmov    r6, r7, r4
        loadprog r0, r6
"""  # writes a 256 KiB array over and over: pages in and out on a small machine

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)


def commands(programs: dict[str, Path], swap_file: Path) -> list[list[str]]:
    """The paged runs to interrupt (`vm32` arguments)."""
    spin, sweep = str(programs["spin"]), str(programs["sweep"])
    return [
        ["um", "run", sweep, "--backend", "paged", "--frames", "16", "--stats"],
        ["um", "run", spin, "--backend", "paged"],
        ["um", "run", sweep, spin, sweep, "--frames", "32"],
        ["um", "run", sweep, "--backend", "paged", "--frames", "16", "--swap-file", str(swap_file),
         "--swap-size", "2M"],
        ["demo"],
        ["paging", "demo", "--frames", "32", "--pages", "4096"],  # 26 frames hold its page tables
    ]


def one_run(cmd: list[str], sig: int, delay: float, swap_file: Path) -> tuple[str, str | None, int]:
    """Run `cmd`, send `sig` after `delay` seconds; (outcome, broken rule or None, files left)."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as cwd:
        swap_before = swap_file.read_bytes()[-512:] if swap_file.exists() else None
        env = dict(os.environ, TMPDIR=tmp)
        proc = subprocess.Popen([sys.executable, "-m", "vm32", *cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        ended_first = proc.poll() is not None
        if not ended_first:
            proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            return "hung", f"{cmd} {signal.Signals(sig).name}: still running 120 s after the signal", 0
        err = err.decode(errors="replace")
        left = os.listdir(tmp) + os.listdir(cwd)
        status = proc.returncode
    problems = []
    if left:
        problems.append(f"left {left}")
    if swap_before is not None and swap_file.read_bytes()[-512:] != swap_before:
        problems.append("the named swap file's trailer changed")
    if "Traceback" in err:
        problems.append("a traceback: " + err[-400:])
    if ended_first:
        outcome = "ended before the signal"
        if status != 0:
            problems.append(f"status {status}: {err[-300:]}")
    elif sig == signal.SIGKILL:
        outcome = "killed"
        if status != -signal.SIGKILL:
            problems.append(f"status {status}")
    elif status == -sig and not err:
        outcome = "ended by the signal at start-up"  # before vm32 handles signals: nothing made yet
    else:
        outcome = "interrupted"
        last = err.rstrip("\n").splitlines()[-1:] or [""]
        if status == 0:
            outcome = "ended as the signal came"
        elif status != 128 + sig or not last[0].startswith("vm32: error: interrupted"):
            problems.append(f"status {status}, last line {last[0]!r}")
    return outcome, ("; ".join(problems) or None), len(left)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="interrupts that reach a running command, "
                        "the same number of each signal (runs that end first do not count)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=4.0, help="latest moment of the signal, in seconds")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    from vm32.um.asm import assemble, to_bytes

    counts: collections.Counter = collections.Counter()
    broken: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        programs = {}
        for name, source in (("spin", SPIN), ("sweep", SWEEP)):
            programs[name] = Path(work) / f"{name}.um"
            programs[name].write_bytes(to_bytes(assemble(source, name)))
        swap_file = Path(work) / "my.swap"
        cmds = commands(programs, swap_file)
        halt = Path(work) / "halt.um"
        halt.write_bytes(to_bytes(assemble("halt", "halt")))
        for cmd in (["um", "run", halt, "--backend", "paged"], ["um", "run", halt, halt, "--frames", "32"], ["demo"],
                    ["paging", "demo", "--frames", "32", "--pages", "16"]):
            # every kernel compiled first (a cold cache): a signal waits for a compile, which may take minutes
            subprocess.run([sys.executable, "-m", "vm32", *map(str, cmd)], cwd=work, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=900)
        interrupted = {sig: 0 for sig in SIGNALS}  # runs the signal reached while they ran
        i = files_left = 0
        while min(interrupted.values()) < args.runs // len(SIGNALS):
            sig = min(SIGNALS, key=lambda s: (interrupted[s], rng.random()))
            cmd = rng.choice(cmds)
            delay = rng.uniform(0.05, args.max_delay)
            outcome, problem, left = one_run(cmd, sig, delay, swap_file)
            files_left += left
            name = signal.Signals(sig).name
            if not outcome.startswith("ended"):
                interrupted[sig] += 1
            counts[f"{name:<8} {outcome}"] += 1
            counts[f"command {' '.join(cmd[:2])}"] += 1
            if problem:
                broken.append(f"run {i}: vm32 {' '.join(cmd)} with {name} after {delay:.2f} s: {problem}")
                counts[f"{name:<8} BROKEN"] += 1
            i += 1
            print(f"{i:>4} {name:<8} after {delay:4.2f} s  {outcome:<32} vm32 {' '.join(cmd[:2])}"
                  + ("  BROKEN" if problem else ""), flush=True)
    print()
    for key in sorted(counts):
        print(f"{counts[key]:>6}  {key}")
    print(f"{sum(interrupted.values())} runs interrupted while they ran "
          f"({', '.join(f'{signal.Signals(s).name} {n}' for s, n in interrupted.items())}), {i} runs in all, "
          f"{files_left} files left behind, {len(broken)} broken rules, {time.perf_counter() - start:.0f} s "
          f"(seed {args.seed})")
    for line in broken:
        print("  " + line)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
