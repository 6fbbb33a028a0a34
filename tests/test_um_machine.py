"""vm32.um.machine's API: every bad argument is a vm32.errors exception with an accurate message;
compilation is counted apart from the program's own run time."""

import io

import pytest

from vm32.errors import InvalidArgument
from vm32.um.asm import assemble
from vm32.um.machine import UniversalMachine, run_program

ECHO = "in r1\nout r1\nhalt"


def test_stdin_must_be_bytes():
    with pytest.raises(InvalidArgument, match="not str.*encode"):
        run_program(assemble(ECHO), stdin="text")
    with pytest.raises(InvalidArgument, match="stdin must be bytes or a binary stream, not int"):
        run_program(assemble(ECHO), stdin=5)
    assert run_program(assemble(ECHO), stdin=b"x").output == b"x"


def test_stdout_must_be_binary():
    with pytest.raises(InvalidArgument, match="stdout must be a binary stream"):
        UniversalMachine(assemble(ECHO), stdout=io.StringIO())


@pytest.mark.parametrize("bad", [-5, 1.5, True, "10"])
def test_max_instructions_must_be_a_count(bad):
    with UniversalMachine(assemble(ECHO), stdin=b"x") as um:
        with pytest.raises(InvalidArgument, match="max_instructions"):
            um.run(max_instructions=bad)
        assert um.run(max_instructions=0)["instructions"] == 0


def test_compile_time_is_apart_from_run_time():
    stats = run_program(assemble(ECHO), stdin=b"x").stats
    assert stats["compile_seconds"] >= 0 and stats["wall_seconds"] >= 0
    assert stats["instructions_per_second"] == pytest.approx(stats["instructions"] / stats["wall_seconds"])
