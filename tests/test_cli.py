"""The `vm32` command: end-to-end runs in a subprocess, error cases through `main()`.

Every error a user can cause must end as exactly one line starting
``vm32: error:`` on stderr, a non-zero exit status and no traceback.
"""

import os
import re
import select
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from vm32.cli import main
from vm32.um.asm import assemble, to_bytes
from vm32.um.machine import run_program

PROGRAMS = resources.files("vm32.um").joinpath("programs")
ERROR_PREFIX = "vm32: error:"
SUBPROCESS_TIMEOUT = 120  # generous: a cold numba cache compiles the kernel first


# ---------------------------------------------------------------- helpers


def vm32(*args, input: bytes | None = b"", timeout: float = SUBPROCESS_TIMEOUT, **kw):
    """Run `python -m vm32 ARGS` and return the CompletedProcess (bytes)."""
    return subprocess.run([sys.executable, "-m", "vm32", *map(str, args)], input=input,
                          capture_output=True, timeout=timeout, **kw)


def call_main(capsys, *args) -> tuple[int, str, str]:
    """Run `main(ARGS)` in-process; return (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse: --help and command-line errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code, err: str, *fragments: str, usage_ok: bool = False) -> str:
    """`err` is a clean failure: one `vm32: error:` line, no traceback; return that line."""
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, err
    if not usage_ok:  # only argparse errors may add a usage summary
        assert lines == errors, err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def source_of(name: str) -> str:
    return PROGRAMS.joinpath(name).read_text()


def program_file(tmp_path: Path, name: str, source: str | None = None) -> Path:
    """Assemble a shipped program (or `source`) into tmp_path/NAME.um."""
    text = source if source is not None else source_of(f"{name}.uma")
    path = tmp_path / f"{name}.um"
    path.write_bytes(to_bytes(assemble(text, name)))
    return path


@pytest.fixture
def hello(tmp_path) -> Path:
    return program_file(tmp_path, "hello")


DIVIDE_BY_ZERO = """
        li  r1, 1
        li  r2, 0
        div r3, r1, r2      ; pc 2
        halt
"""

MAP_FOREVER = """
        li  r2, 1000        ; 4000-byte segments, never unmapped
loop:   map r1, r2
        li  r7, loop
        loadprog r0, r7
"""


# ---------------------------------------------------------------- end to end


def test_um_run_hello(hello):
    r = vm32("um", "run", hello)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Hello, world!\n"
    assert r.stderr == b""


@pytest.mark.parametrize("backend", ["flat", "classic"])
def test_um_run_backends_in_process(hello, capsys, backend):
    code, out, err = call_main(capsys, "um", "run", hello, "--backend", backend, "--memory", "1M")
    assert (code, out, err) == (0, "Hello, world!\n", "")


def test_um_run_stats(hello):
    r = vm32("um", "run", hello, "--stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Hello, world!\n"  # the table goes to stderr, not into the output
    err = r.stderr.decode()
    expected = run_program(hello).stats["instructions"]
    m = re.search(r"instructions\s*\S\s*([\d,]+)", err)
    assert m, err
    assert int(m.group(1).replace(",", "")) == expected
    for row in ("segments mapped", "segments unmapped", "peak live segments",
                "allocator footprint", "wall seconds", "instructions per second"):
        assert row in err, row


def test_demo():
    r = vm32("demo", timeout=3 * SUBPROCESS_TIMEOUT)  # a cold cache compiles the paged and the flat UM
    assert r.returncode == 0, r.stderr
    assert "demo: all checks passed" in r.stdout.decode()
    assert "instructions" in r.stderr.decode()


def test_console_script(hello):
    script = Path(sys.executable).with_name("vm32")
    script = script if script.exists() else shutil.which("vm32")
    if not script:
        pytest.skip("the vm32 console script is not installed next to this Python")
    r = subprocess.run([str(script), "um", "run", str(hello)], capture_output=True,
                       timeout=SUBPROCESS_TIMEOUT)
    assert (r.returncode, r.stdout) == (0, b"Hello, world!\n"), r.stderr


@pytest.mark.parametrize("module", ["vm32", "vm32.cli"])
def test_python_m(module):
    r = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True,
                       timeout=SUBPROCESS_TIMEOUT)
    assert (r.returncode, r.stdout.split()[0], r.stderr) == (0, "vm32", "")


def test_asm_disasm_round_trip(tmp_path):
    src = PROGRAMS.joinpath("demo.uma")
    (tmp_path / "demo.uma").write_text(src.read_text())
    r = vm32("um", "asm", tmp_path / "demo.uma", "-o", tmp_path / "demo.um")
    assert r.returncode == 0, r.stderr
    words = assemble(src.read_text())
    assert (tmp_path / "demo.um").read_bytes() == to_bytes(words)
    assert f"{len(words)} words" in r.stderr.decode()

    r = vm32("um", "disasm", tmp_path / "demo.um")
    assert r.returncode == 0, r.stderr
    listing = r.stdout.decode()
    assert len(listing.splitlines()) == len(words)
    (tmp_path / "listing.uma").write_text(listing)
    r = vm32("um", "asm", tmp_path / "listing.uma", "-o", tmp_path / "again.um")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.um").read_bytes() == (tmp_path / "demo.um").read_bytes()


def test_disasm_to_file(hello, tmp_path, capsys):
    out = tmp_path / "hello.lst"
    code, stdout, err = call_main(capsys, "um", "disasm", hello, "-o", out)
    assert (code, stdout, err) == (0, "", "")
    text = out.read_text()
    assert text.splitlines()[0].split() [:3] == ["loadimm", "r1,", "12"]
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_echo_through_a_pipe(tmp_path):
    echo = program_file(tmp_path, "echo")
    r = vm32("um", "run", echo, input=b"Hello, World! abc-xyz {}\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"HELLO, WORLD! ABC-XYZ {}\n"


def test_echo_interactive(tmp_path):
    """Output written before the program blocks on input reaches the pipe at once."""
    echo = program_file(tmp_path, "echo")
    proc = subprocess.Popen([sys.executable, "-m", "vm32", "um", "run", str(echo)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in (b"first line\n", b"second: q\n"):
            proc.stdin.write(line)
            proc.stdin.flush()
            # stdin stays open: the answer must come while the machine waits for more
            assert read_exactly(proc.stdout, len(line), SUBPROCESS_TIMEOUT) == line.upper()
        proc.stdin.close()
        assert proc.wait(timeout=SUBPROCESS_TIMEOUT) == 0
        assert proc.stdout.read() == b""
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def read_exactly(stream, n: int, timeout: float) -> bytes:
    """Read `n` bytes from a pipe, failing after `timeout` seconds."""
    fd, data, deadline = stream.fileno(), b"", time.monotonic() + timeout
    while len(data) < n:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        assert ready, f"no output within {timeout} s (got {data!r}): output not flushed before input?"
        chunk = os.read(fd, n - len(data))
        assert chunk, f"end of output after {data!r}"
        data += chunk
    return data


def test_input_file(tmp_path, capsys):
    echo = program_file(tmp_path, "echo")
    (tmp_path / "in.txt").write_bytes(b"from a file\n")
    code, out, err = call_main(capsys, "um", "run", echo, "--input", tmp_path / "in.txt")
    assert (code, out, err) == (0, "FROM A FILE\n", "")


# ---------------------------------------------------------------- --help


@pytest.mark.parametrize("args", [[], ["demo"], ["um"], ["um", "run"], ["um", "asm"],
                                  ["um", "disasm"]])
def test_help(capsys, args):
    code, out, err = call_main(capsys, *args, "--help")
    assert code == 0 and err == ""
    assert out.startswith("usage: vm32" + "".join(" " + a for a in args))


def test_help_lists_options(capsys):
    _, out, _ = call_main(capsys, "um", "run", "--help")
    for option in ("--backend", "--memory", "--input", "--stats", "flat", "classic"):
        assert option in out


def test_version(capsys):
    code, out, _ = call_main(capsys, "--version")
    assert code == 0 and out.startswith("vm32 ")


# ---------------------------------------------------------------- errors


def test_missing_program(capsys, tmp_path):
    code, out, err = call_main(capsys, "um", "run", tmp_path / "nope.um")
    assert code == 1 and out == ""
    assert_one_error(code, err, "nope.um", "no such file")


def test_directory_program(capsys, tmp_path):
    code, _, err = call_main(capsys, "um", "run", tmp_path)
    assert_one_error(code, err, "is a directory")


def test_empty_program(capsys, tmp_path):
    (tmp_path / "empty.um").write_bytes(b"")
    code, _, err = call_main(capsys, "um", "run", tmp_path / "empty.um")
    assert_one_error(code, err, "empty.um", "empty")


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_truncated_program(capsys, tmp_path, n):
    (tmp_path / "cut.um").write_bytes(b"\x70" * n)
    code, _, err = call_main(capsys, "um", "run", tmp_path / "cut.um")
    assert_one_error(code, err, "cut.um", "not a multiple of 4")


def test_unknown_backend(capsys, hello):
    code, _, err = call_main(capsys, "um", "run", hello, "--backend", "jot")
    assert code == 2
    assert_one_error(code, err, "'jot'", usage_ok=True)


@pytest.mark.parametrize("size, fragment", [("123", "multiple of 4096"), ("lots", "'lots'"),
                                            ("5000", "multiple of 4096"), ("5G", "4 GiB"),
                                            ("0", "multiple of 4096"), ("-4K", "size")])
def test_bad_memory_size(capsys, hello, size, fragment):
    code, _, err = call_main(capsys, "um", "run", hello, f"--memory={size}")
    assert code == 1
    assert_one_error(code, err, fragment)


def test_smallest_memories(capsys, hello):
    # classic keeps segments outside emulated memory: one frame is enough
    assert call_main(capsys, "um", "run", hello, "--memory", "4K", "--backend", "classic")[:2] == (
        0, "Hello, world!\n")
    # flat keeps frame 0 unused (no segment has id 0): two frames are the least that runs
    assert call_main(capsys, "um", "run", hello, "--memory", "8K")[:2] == (0, "Hello, world!\n")
    code, out, err = call_main(capsys, "um", "run", hello, "--memory", "4K")
    if code != 0:  # too small for the flat backend: a clean error, not a crash
        assert out == ""
        assert_one_error(code, err)


def test_no_subcommand(capsys):
    code, out, err = call_main(capsys)
    assert code == 2 and out == ""
    assert_one_error(code, err, "COMMAND", usage_ok=True)


def test_no_um_subcommand(capsys):
    code, _, err = call_main(capsys, "um")
    assert code == 2
    assert_one_error(code, err, "UM_COMMAND", usage_ok=True)


@pytest.mark.parametrize("args", [["frob"], ["um", "frob"], ["um", "run"], ["um", "asm", "x.uma"],
                                  ["demo", "extra"], ["um", "run", "p.um", "--bogus"]])
def test_bad_command_lines(capsys, args):
    code, _, err = call_main(capsys, *args)
    assert code == 2
    assert_one_error(code, err, usage_ok=True)


def test_bad_command_line_in_subprocess():
    r = vm32("um", "frob")
    assert_one_error(r.returncode, r.stderr.decode(), "frob", usage_ok=True)
    r = vm32()
    assert_one_error(r.returncode, r.stderr.decode(), usage_ok=True)


def test_asm_syntax_error(capsys, tmp_path):
    (tmp_path / "bad.uma").write_text("        li r1, 1\n\n        frob r1, r2\n        halt\n")
    code, _, err = call_main(capsys, "um", "asm", tmp_path / "bad.uma", "-o", tmp_path / "bad.um")
    line = assert_one_error(code, err, "bad.uma:3", "frob")
    assert code == 1, line
    assert not (tmp_path / "bad.um").exists()  # no half-written output


@pytest.mark.parametrize("source, fragment", [("li r9, 1\n", ":1"), ("halt\nli r1\n", ":2"),
                                              ("jmp: halt\njmp: halt\n", ":2"),
                                              ("li r1, nowhere\n", ":1"),
                                              ('.string "open\n', ":1")])
def test_asm_errors_name_the_line(capsys, tmp_path, source, fragment):
    (tmp_path / "e.uma").write_text(source)
    code, _, err = call_main(capsys, "um", "asm", tmp_path / "e.uma", "-o", tmp_path / "e.um")
    assert_one_error(code, err, "e.uma" + fragment)


def test_asm_missing_file(capsys, tmp_path):
    code, _, err = call_main(capsys, "um", "asm", tmp_path / "nope.uma", "-o", tmp_path / "o.um")
    assert_one_error(code, err, "nope.uma")


def test_asm_not_utf8(capsys, tmp_path):
    (tmp_path / "bin.uma").write_bytes(b"halt ; \xff\xfe\n")
    code, _, err = call_main(capsys, "um", "asm", tmp_path / "bin.uma", "-o", tmp_path / "o.um")
    assert_one_error(code, err, "bin.uma")


def test_asm_output_not_writable(capsys, tmp_path):
    (tmp_path / "ok.uma").write_text("halt\n")
    code, _, err = call_main(capsys, "um", "asm", tmp_path / "ok.uma", "-o", tmp_path)
    assert_one_error(code, err, "cannot write")


@pytest.mark.parametrize("data", [b"", b"\x01\x02\x03"])
def test_disasm_bad_file(capsys, tmp_path, data):
    (tmp_path / "bad.um").write_bytes(data)
    code, out, err = call_main(capsys, "um", "disasm", tmp_path / "bad.um")
    assert out == ""
    assert_one_error(code, err, "bad.um")


def test_disasm_missing_and_directory(capsys, tmp_path):
    code, _, err = call_main(capsys, "um", "disasm", tmp_path / "gone.um")
    assert_one_error(code, err, "gone.um", "no such file")
    code, _, err = call_main(capsys, "um", "disasm", tmp_path)
    assert_one_error(code, err, "directory")


def test_input_missing_file(capsys, hello, tmp_path):
    code, out, err = call_main(capsys, "um", "run", hello, "--input", tmp_path / "none.txt")
    assert out == ""
    assert_one_error(code, err, "none.txt")


def test_input_is_a_directory(capsys, hello, tmp_path):
    code, _, err = call_main(capsys, "um", "run", hello, "--input", tmp_path)
    assert_one_error(code, err, "cannot open input file")


@pytest.mark.parametrize("backend", ["flat", "classic"])
def test_um_fault_message(capsys, tmp_path, backend):
    prog = program_file(tmp_path, "dz", DIVIDE_BY_ZERO)
    code, out, err = call_main(capsys, "um", "run", prog, "--backend", backend)
    assert code == 1 and out == ""
    line = assert_one_error(code, err, "UM fault", "pc=0x2", "divide-by-zero", "division by zero")
    instruction = int(assemble(DIVIDE_BY_ZERO)[2])
    assert f"{instruction:#010x}" in line


def test_um_fault_after_output_in_subprocess(tmp_path):
    source = "li r1, 'o'\nout r1\nli r1, 'k'\nout r1\n" + DIVIDE_BY_ZERO
    prog = program_file(tmp_path, "late", source)
    r = vm32("um", "run", prog)
    assert r.stdout == b"ok"  # what the program wrote before the fault is kept
    assert_one_error(r.returncode, r.stderr.decode(), "divide-by-zero", "pc=0x6")
    assert r.returncode == 1


@pytest.mark.parametrize("backend", ["flat", "classic"])
def test_out_of_memory_with_tiny_memory(capsys, tmp_path, backend):
    prog = program_file(tmp_path, "hog", MAP_FOREVER)
    code, out, err = call_main(capsys, "um", "run", prog, "--memory", "64K", "--backend", backend)
    assert code == 1 and out == ""
    assert_one_error(code, err, "out-of-memory", "pc=0x1")


def test_out_of_memory_subprocess_with_stats(tmp_path):
    prog = program_file(tmp_path, "hog", MAP_FOREVER)
    r = vm32("um", "run", prog, "--memory", "64K", "--stats")
    err = r.stderr.decode()
    assert r.returncode == 1
    assert "Traceback" not in err
    assert [l for l in err.splitlines() if l.startswith(ERROR_PREFIX)] == [
        l for l in err.splitlines() if "out-of-memory" in l]
    assert "segments mapped" in err  # the statistics of the failed run are still shown
    assert err.rstrip().splitlines()[-1].startswith(ERROR_PREFIX)  # the error comes last


# ---------------------------------------------------------------- a broken console


def test_output_to_a_full_disk(hello):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "wb") as full:
        r = subprocess.run([sys.executable, "-m", "vm32", "um", "run", str(hello)],
                           stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           timeout=SUBPROCESS_TIMEOUT)
    assert_one_error(r.returncode, r.stderr.decode(), "No space left")


def test_closed_stdout(hello):
    r = subprocess.run(["sh", "-c", 'exec "$0" -m vm32 um run "$1" >&-', sys.executable,
                        str(hello)], stderr=subprocess.PIPE, timeout=SUBPROCESS_TIMEOUT)
    assert_one_error(r.returncode, r.stderr.decode(), "standard output is closed")


def test_closed_stdin_is_end_of_input(tmp_path):
    echo = program_file(tmp_path, "echo")
    r = subprocess.run(["sh", "-c", 'exec "$0" -m vm32 um run "$1" <&-', sys.executable,
                        str(echo)], capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


def test_reader_goes_away(tmp_path):
    """A pipe closed by the reader (`| head -c1`) ends the run quietly."""
    source = "loop: li r1, 'y'\nout r1\nli r7, loop\nloadprog r0, r7\n"  # endless output
    prog = program_file(tmp_path, "yes", source)
    proc = subprocess.Popen([sys.executable, "-m", "vm32", "um", "run", str(prog)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert read_exactly(proc.stdout, 1, SUBPROCESS_TIMEOUT) == b"y"
        proc.stdout.close()
        assert proc.wait(timeout=SUBPROCESS_TIMEOUT) == 141  # as a shell reports SIGPIPE
        assert proc.stderr.read() == b""  # quietly
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_host_refuses_the_memory(capsys, hello, monkeypatch):
    import vm32.memory as memory_module

    def refuse(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(memory_module.mmap, "mmap", refuse)
    code, _, err = call_main(capsys, "um", "run", hello)
    assert_one_error(code, err, "smaller memory size")


def test_debug_shows_the_exception(hello, tmp_path):
    from vm32.errors import BadProgram

    with pytest.raises(BadProgram):
        main(["--debug", "um", "run", str(tmp_path / "missing.um")])
    r = vm32("--debug", "um", "run", tmp_path / "missing.um")
    assert r.returncode != 0 and b"Traceback" in r.stderr
