"""The `vm32` command is safe by default and says one thing one way (issue "Safe by default and
consistent everywhere"): no user file destroyed, nothing left behind on any exit, quiet on a
reader that goes away, flags checked before anything runs and named in errors, one
vocabulary, --json, the first-run message.  The signal and fuzz campaigns are scripts
(benchmarks/signals.py, benchmarks/fuzz.py); these are their small samples."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from test_cli import ERROR_PREFIX, SUBPROCESS_TIMEOUT, assert_one_error, call_main, program_file, read_exactly

from vm32.kernel.swap import is_swap_file

SPIN = "loop: li r7, loop\nloadprog r0, r7\n"  # runs until stopped
YES = "li r2, 10\nloop: li r1, 'y'\nout r1\nout r2\nli r7, loop\nloadprog r0, r7\n"  # prints lines until stopped


@pytest.fixture
def hello(tmp_path):
    return program_file(tmp_path, "hello")


def vm32_process(*args, tmpdir, **kw) -> subprocess.Popen:
    env = dict(os.environ, TMPDIR=str(tmpdir))
    return subprocess.Popen([sys.executable, "-m", "vm32", *map(str, args)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


# ---------------------------------------------------------------- never destroy a user's file


def test_a_swap_path_that_is_not_a_swap_file_is_refused(capsys, hello, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("my notes\n")
    code, out, err = call_main(capsys, "um", "run", hello, "--backend", "paged", "--swap-file", precious)
    line = assert_one_error(code, err, "--swap-file", "precious.txt exists and is not a vm32 swap file", "--force")
    assert "swap_overwrite" not in line  # the API's keyword is the API's message
    assert out == "" and precious.read_text() == "my notes\n"
    code, out, err = call_main(capsys, "paging", "demo", "--swap-file", precious)
    assert_one_error(code, err, "--swap-file", "precious.txt exists and is not a vm32 swap file", "--force")
    assert precious.read_text() == "my notes\n"
    code, out, err = call_main(capsys, "um", "run", hello, "--backend", "paged", "--swap-file", precious,
                               "--swap-size", "64K", "--force")
    assert (code, out, err) == (0, "Hello, world!\n", "") and is_swap_file(precious)
    code, out, err = call_main(capsys, "um", "run", hello, "--backend", "paged", "--swap-file", precious)
    assert code == 0  # a vm32 swap file is reused without --force


def test_swap_is_no_longer_a_flag(capsys, hello, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = call_main(capsys, "um", "run", hello, "--backend", "paged", "--swap", "16M")
    assert code == 2 and "ambiguous option: --swap" in err  # --swap-file or --swap-size
    assert not (tmp_path / "16M").exists()


def test_output_files_appear_only_complete(capsys, tmp_path):
    out = tmp_path / "prog.um"
    out.write_bytes(b"the previous program")
    (tmp_path / "bad.uma").write_text("li r1, 1\nfrob r2\n")
    code, _, err = call_main(capsys, "um", "asm", tmp_path / "bad.uma", "-o", out)
    assert_one_error(code, err, "bad.uma:2")
    assert out.read_bytes() == b"the previous program" and sorted(os.listdir(tmp_path)) == ["bad.uma", "prog.um"]
    (tmp_path / "ok.uma").write_text("halt\n")
    assert call_main(capsys, "um", "asm", tmp_path / "ok.uma", "-o", out)[0] == 0
    assert out.read_bytes() == bytes.fromhex("70000000")
    assert sorted(os.listdir(tmp_path)) == ["bad.uma", "ok.uma", "prog.um"]


# ---------------------------------------------------------------- leave nothing behind


@pytest.mark.parametrize("sig, status", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 143)])
def test_a_killed_paged_run_leaves_no_file(tmp_path, sig, status):
    prog = program_file(tmp_path, "spin", SPIN)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = vm32_process("um", "run", prog, "--backend", "paged", "--stats", tmpdir=tmpdir)
    try:
        _wait_for_running(proc, tmpdir)
        proc.send_signal(sig)
        assert proc.wait(timeout=SUBPROCESS_TIMEOUT) == status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert os.listdir(tmpdir) == []
    if sig == signal.SIGTERM:
        assert proc.stderr.read().decode().splitlines()[-1] == "vm32: error: interrupted (SIGTERM)"


def _wait_for_running(proc, tmpdir) -> None:
    """Until the process has run for a moment (its machine exists: it is past start-up);
    nothing may appear in `tmpdir` meanwhile."""
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    fds = f"/proc/{proc.pid}/fd"
    while time.monotonic() < deadline and proc.poll() is None:
        try:  # its swap file is open, and has no name
            if any(os.readlink(os.path.join(fds, fd)).endswith("(deleted)") for fd in os.listdir(fds)):
                time.sleep(0.3)
                assert os.listdir(tmpdir) == []
                return
        except OSError:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()


def test_ctrl_c_with_several_programs_says_interrupted(tmp_path):
    prog = program_file(tmp_path, "spin", SPIN)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = vm32_process("um", "run", prog, prog, "--frames", "32", tmpdir=tmpdir)
    try:
        _wait_for_running(proc, tmpdir)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=SUBPROCESS_TIMEOUT) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr.read().decode().splitlines()[-1] == "vm32: error: interrupted"
    assert os.listdir(tmpdir) == []


@pytest.mark.parametrize("sig, said", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "interrupted (SIGTERM)")])
def test_an_interrupt_during_a_compile_says_why_it_waits(sig, said):
    code = ("import os, signal, time\n"
            "from vm32.cli import common\n"
            "compiling = True\n"
            "common._compiling = lambda: compiling  # as if numba held its compiler lock\n"
            "try:\n"
            "    with common.signals_as_interrupts():\n"
            f"        os.kill(os.getpid(), {int(sig)})\n"
            "        time.sleep(0.5)\n"
            "        print('still compiling', flush=True)\n"
            "        compiling = False\n"
            "        time.sleep(30)\n"
            "except common.Interrupted as e:\n"
            "    print('stopped by', e.signum)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    assert r.stdout.decode() == f"still compiling\nstopped by {int(sig)}\n"
    assert r.stderr.decode() == f"vm32: {said}; finishing a compile first\n"


def test_an_interrupt_during_a_compile_the_command_ends_after_still_stops_it():
    # The command returns before the 50 ms retry timer fires: its exit status must still
    # say it was interrupted, not 0.
    code = ("import argparse, os, signal, sys\n"
            "import vm32.cli\n"
            "from vm32.cli import common\n"
            "compiling = True\n"
            "common._compiling = lambda: compiling  # as if numba held its compiler lock\n"
            "def handler(args):\n"
            "    global compiling\n"
            "    os.kill(os.getpid(), signal.SIGINT)\n"
            "    compiling = False\n"
            "    print('done', flush=True)\n"
            "    return 0\n"
            "vm32.cli.parse_args = lambda parser, argv: argparse.Namespace(handler=handler)\n"
            "sys.exit(vm32.cli.main([]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    assert r.stdout.decode() == "done\n"
    assert r.stderr.decode() == "vm32: interrupted; finishing a compile first\nvm32: error: interrupted\n"
    assert r.returncode == 130


def test_python_exiting_without_close_leaves_nothing(tmp_path):
    code = ("from vm32.kernel.machine import Machine\n"
            "m = Machine(frames=16, swap='1M')\n"
            "p = m.spawn(b'x' * 10000)\n"
            "p.store_u32(p.heap_base, 1)\n")
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, TMPDIR=str(tmp_path)), check=True,
                   timeout=SUBPROCESS_TIMEOUT)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- closed and broken streams


def test_several_programs_stop_quietly_when_the_reader_goes_away(tmp_path):
    prog = program_file(tmp_path, "yes", YES)
    proc = vm32_process("um", "run", prog, prog, "--frames", "32", tmpdir=tmp_path)
    try:
        assert read_exactly(proc.stdout, 1, SUBPROCESS_TIMEOUT) == b"y"
        proc.stdout.close()
        assert proc.wait(timeout=SUBPROCESS_TIMEOUT) == 141
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_paging_demo_stops_quietly_when_the_reader_goes_away(tmp_path):
    proc = vm32_process("paging", "demo", "--frames", "16", "--pages", "8", "--processes", "2", tmpdir=tmp_path)
    try:
        assert proc.stdout.readline().startswith(b"paging demo: 16 frames")
        proc.stdout.close()  # `| head -1`
        assert proc.wait(timeout=SUBPROCESS_TIMEOUT) == 141
        assert ERROR_PREFIX.encode() not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_demo_stops_when_its_reader_goes_away():
    from vm32.ui.demo import run_demo

    class Gone(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise BrokenPipeError(32, "Broken pipe")

    start = time.monotonic()
    with pytest.raises(BrokenPipeError):
        run_demo(frames=64, stdout=Gone(), stderr=io.StringIO(), live=False)
    assert time.monotonic() - start < SUBPROCESS_TIMEOUT  # every program stopped, none ran to its end


@pytest.mark.parametrize("command", ["demo", "trace sim -a 1,2,1", "heap sim -c"])
def test_a_closed_stdout_is_one_error_line_for_every_command(command):
    r = subprocess.run(["sh", "-c", f'exec "$0" -m vm32 {command} >&-', sys.executable], capture_output=True,
                       timeout=SUBPROCESS_TIMEOUT)
    assert_one_error(r.returncode, r.stderr.decode(), "standard output is closed")


# ---------------------------------------------------------------- validate before acting


@pytest.mark.parametrize("args, fragment", [
    (["paging", "demo", "--frames", "0"], "--frames 0: a machine needs at least 8 frames"),
    (["paging", "demo", "--swap-size", "1"], "--swap-size 1: a swap holds whole 4 KiB pages"),
    (["paging", "demo", "--tlb", "100"], "--tlb 100: must be a power of two"),
    (["paging", "demo", "--policy", "belady"], "--policy belady: unknown"),
    (["demo", "--frames", "2"], "--frames 2"),
    (["um", "run", "x.um", "--backend", "paged", "--tlb", "3"], "--tlb 3"),
    (["um", "run", "x.um", "--memory", "3.7G"], "--memory"),
    (["um", "run", "x.um", "--break", "nowhere"], "--break nowhere: not a number"),
    (["um", "run", "x.um", "--backend", "paged", "--break", "0x10"], "--break: only for one program"),
])
def test_flags_are_checked_first_and_named(capsys, args, fragment):
    code, out, err = call_main(capsys, *args)
    assert out == ""  # no banner before the error
    assert_one_error(code, err, fragment)


def test_the_help_default_memory_is_accepted(capsys, hello):
    code, out, err = call_main(capsys, "um", "run", "--help")
    assert "3836M" in " ".join(out.split())
    assert call_main(capsys, "um", "run", hello, "--backend", "paged", "--memory", "3836M")[:2] == (
        0, "Hello, world!\n")


def test_assembly_source_is_not_run(capsys, tmp_path):
    src = tmp_path / "scatter.uma"
    src.write_text("; a program\nstart: li r1, 1\n        halt\n")
    code, _, err = call_main(capsys, "um", "run", src)
    assert_one_error(code, err, "scatter.uma", "assembly source", "vm32 um asm")


def test_empty_assembly_is_an_error(capsys, tmp_path):
    (tmp_path / "empty.uma").write_text("; nothing\n")
    code, _, err = call_main(capsys, "um", "asm", tmp_path / "empty.uma", "-o", tmp_path / "e.um")
    assert_one_error(code, err, "empty.uma", "at least one word")
    assert not (tmp_path / "e.um").exists()


def test_dash_is_stdin_and_stdout(tmp_path):
    def vm32(*args, data=b""):
        return subprocess.run([sys.executable, "-m", "vm32", *args], input=data, capture_output=True,
                              timeout=SUBPROCESS_TIMEOUT)

    program = vm32("um", "asm", "-", "-o", "-", data=b"li r1, 'A'\nout r1\nin r2\nout r2\nhalt\n")
    assert program.returncode == 0 and len(program.stdout) == 20, program.stderr
    (tmp_path / "in.txt").write_bytes(b"z")
    r = vm32("um", "run", "-", "--input", str(tmp_path / "in.txt"), data=program.stdout)
    assert (r.returncode, r.stdout) == (0, b"Az"), r.stderr
    r = vm32("um", "run", "-", data=program.stdout)  # no --input: end of input, 0xFFFFFFFF, too large to print
    assert (r.returncode, r.stdout) == (1, b"A") and b"output-too-large" in r.stderr
    r = vm32("um", "disasm", "-", data=program.stdout)
    assert r.returncode == 0 and r.stdout.decode().split()[:3] == ["loadimm", "r1,", "65"]


def test_a_um_fault_names_the_program(capsys, tmp_path):
    prog = program_file(tmp_path, "dz", "li r1, 1\nli r2, 0\ndiv r3, r1, r2\nhalt\n")
    code, _, err = call_main(capsys, "um", "run", prog)
    assert_one_error(code, err, "dz.um: UM fault at pc=0x2")


def test_subcommand_errors_show_that_subcommand(capsys):
    code, _, err = call_main(capsys, "paging")
    assert code == 2 and err.startswith("usage: vm32 paging") and "paging_command" not in err
    code, _, err = call_main(capsys, "um", "run", "x.um", "--frobnicate")
    assert code == 2 and err.startswith("usage: vm32 um run")


def test_debug_after_the_subcommand(hello, tmp_path):
    from vm32.cli import main
    from vm32.errors import BadProgram

    with pytest.raises(BadProgram):
        main(["um", "run", str(tmp_path / "missing.um"), "--debug"])


# ---------------------------------------------------------------- one vocabulary, --json


@pytest.mark.parametrize("command", [["um", "run"], ["paging", "demo"]])
def test_one_vocabulary_in_help(capsys, command):
    code, out, _ = call_main(capsys, *command, "--help")
    text = " ".join(out.split())
    assert code == 0 and "--swap-file PATH" in text and "--swap-size SIZE" in text and "--force" in text
    assert "--swap " not in text and "(default clock)" in text and "(default 1024)" in text


def test_paging_demo_json(capsys):
    code, out, err = call_main(capsys, "paging", "demo", "--frames", "16", "--processes", "2", "--pages", "8",
                               "--json")
    doc = json.loads(out)
    assert code == 0 and doc["wrong_words"] == 0 and doc["machine"]["swap_bytes_out"] >= 0
    assert set(doc["per_process"][0]) >= {"accesses", "tlb_hits", "page_faults", "swap_bytes_in", "wrong_words"}


def test_um_run_json_is_the_last_line_of_stderr(capsys, hello):
    code, out, err = call_main(capsys, "um", "run", hello, "--stats", "--json")
    stats = json.loads(err.splitlines()[-1])
    assert (code, out) == (0, "Hello, world!\n")
    assert stats["program"] == "hello.um" and stats["instructions"] > 0
    assert stats["wall_seconds"] >= 0 and stats["compile_seconds"] >= 0


def test_several_programs_json(capsys, hello):
    code, out, err = call_main(capsys, "um", "run", hello, hello, "--frames", "16", "--json")
    doc = json.loads(err.splitlines()[-1])
    assert code == 0 and [p["name"] for p in doc["processes"]] == ["hello.um", "hello.um.2"]
    assert doc["machine"]["page_faults"] > 0


def test_heap_sim_json_has_the_finalstats_figures(capsys):
    args = ("heap", "sim", "-A", "+10,-0,+5,+200", "-c")
    code, text, _ = call_main(capsys, *args)
    finalstats = dict(kv.split("=") for kv in text.splitlines()[-1].split()[1:])
    code_json, out, err = call_main(capsys, *args, "--json")
    doc = json.loads(out)
    assert (code, code_json, err) == (0, 0, "")
    assert {k: str(v) for k, v in doc["stats"].items()} == {k: v for k, v in finalstats.items()
                                                             if k in doc["stats"]}
    assert [op["op"] for op in doc["operations"]] == ["alloc", "free", "alloc", "alloc"]
    assert doc["operations"][3]["addr"] == -1 and doc["stats"]["failed"] == 1  # 200 bytes do not fit in 100
    questions = json.loads(call_main(capsys, *args[:-1], "--json")[1])  # without -c: no answers
    assert "addr" not in questions["operations"][0] and set(questions["stats"]) == {"ops", "allocs", "frees"}


# ---------------------------------------------------------------- the first run


def test_first_run_message_only_on_a_terminal_with_a_cold_cache(tmp_path, monkeypatch, capsys):
    from argparse import Namespace

    from vm32.cli.common import announce_first_compile

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cold"))
    args = Namespace(first_run_seconds=60)
    for stderr, expected in ((Terminal(), "compiling vm32's kernels (first run, about 60 s)...\n"),
                             (io.StringIO(), "")):
        monkeypatch.setattr(sys, "stderr", stderr)
        announce_first_compile(args)
        assert stderr.getvalue() == expected
    (tmp_path / "cold" / "x").mkdir(parents=True)
    (tmp_path / "cold" / "x" / "kernel.nbi").write_bytes(b"")
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    announce_first_compile(args)
    assert stderr.getvalue() == ""
