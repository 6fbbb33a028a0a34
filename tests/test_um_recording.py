"""Recording a UM program's allocations (`vm32 um run --record-allocs`, vm32.um.recording):
the log grows as needed and is a valid allocation trace."""

from pathlib import Path

import numpy as np
import pytest

from vm32.errors import InvalidArgument
from vm32.heap import alloctrace
from vm32.um.asm import assemble
from vm32.um.machine import UniversalMachine
from vm32.um.recording import record_allocations

PROGRAMS = Path(__file__).parents[1] / "src" / "vm32" / "um" / "programs"


def test_a_long_recording_grows_its_log_and_is_a_valid_trace():
    events = record_allocations(assemble((PROGRAMS / "lists.uma").read_text()))
    assert events.shape[0] == 200_000  # 100,000 two-word nodes mapped, then all unmapped (> 2 x 65,536)
    assert (events[:100_000] == 2).all() and (events[100_000:] < 0).all()
    alloctrace.check_events(events, "lists")


def test_recording_keeps_the_program_output_and_needs_classic():
    words = assemble((PROGRAMS / "hello.uma").read_text())
    with UniversalMachine(words, backend="classic", record_allocs=True) as um:
        um.run()
        assert um.recorded_events().shape == (0,)
        assert um._stdout.getvalue() == b"Hello, world!\n"
    with pytest.raises(InvalidArgument, match="classic backend"):
        UniversalMachine(words, backend="flat", record_allocs=True)
    with UniversalMachine(words) as um, pytest.raises(InvalidArgument, match="does not record"):
        um.recorded_events()
    assert np.int32 == record_allocations(words).dtype
