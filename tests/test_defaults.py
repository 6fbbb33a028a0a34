"""vm32.defaults: the defaults stated once, read by the CLI and the API alike, and the units."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vm32 import defaults
from vm32.defaults import format_count, format_percent, format_rate, format_seconds, format_size, parse_size, size_arg


def test_defaults_imports_no_compiled_code():
    r = subprocess.run([sys.executable, "-c", "import sys, vm32.defaults; print('numba' in sys.modules)"],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_the_kernel_and_the_um_agree_with_the_defaults():
    from vm32.memory import PAGE_SIZE
    from vm32.um.paged_process import PAGED_MAX_HEAP

    assert defaults.FRAME_SIZE == PAGE_SIZE
    assert defaults.PAGED_MAX_HEAP == PAGED_MAX_HEAP


def test_machine_defaults_are_the_clis():
    from vm32.kernel.machine import Machine

    with Machine(frames=defaults.MIN_FRAMES, swap=0) as m:
        assert (m.policy, m.tlb_entries) == (defaults.DEFAULT_POLICY, defaults.DEFAULT_TLB_ENTRIES) == ("clock", 1024)


def test_the_kernel_states_the_minimum_frame_count():
    from vm32.errors import InvalidArgument
    from vm32.kernel.machine import Machine

    with pytest.raises(InvalidArgument, match=f">= {defaults.MIN_FRAMES}"):
        Machine(frames=defaults.MIN_FRAMES - 1, swap=0)


@pytest.mark.parametrize("n, text", [(0, "0 B"), (512, "512 B"), (4096, "4 KiB"), (256 << 10, "256 KiB"),
                                     (16 << 20, "16 MiB"), (1536 << 10, "1.5 MiB"),
                                     (defaults.PAGED_MAX_HEAP, "3.7 GiB"), (5 << 30, "5 GiB"), (3 << 40, "3 TiB")])
def test_format_size(n, text):
    assert format_size(n) == text


@given(st.integers(min_value=0, max_value=1 << 40))
def test_size_arg_reads_back(n):
    assert parse_size(size_arg(n)) == n


def test_other_units():
    assert format_count(1234) == "1,234" and format_count(117_900) == "118K" and format_count(33_100_000) == "33.1M"
    assert format_count(999_999_999) == "1.0G" and format_count(5_560_000_000_000) == "5.6T"
    assert all(len(format_count(10 ** k - 1)) <= 5 for k in range(15))
    assert format_percent(0.97345) == "97.3%" and format_percent(1) == "100.0%"
    assert format_rate(35_694_000, "instructions") == "35.7 M instructions/s"
    assert format_rate(812, "page faults") == "812 page faults/s"
    assert format_seconds(0.421) == "0.42 s" and format_seconds(12.34) == "12.3 s"


@given(st.text(alphabet="0123456789abcdefxXKMGiIBb_ .-+", max_size=12))
def test_parse_size_reads_a_size_or_says_it_cannot(text):
    from vm32.errors import InvalidArgument

    try:
        assert parse_size(text) >= 0
    except InvalidArgument:
        pass


@pytest.mark.parametrize("text", ["1_", "0x1000_", "_1", "1__0"])
def test_underscores_only_between_digits(text):
    from vm32.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        parse_size(text)
