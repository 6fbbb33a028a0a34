"""Shared fixtures and helpers for the vm32 tests.

* `um_corpus`: the directory named by the environment variable VM32_UM_CORPUS
  (sandmark.umz, sandmark.expected); tests using it are skipped, with the
  reason shown, when the variable is unset, and fail when it names a
  directory without the corpus.
* `backend`: every UM test that takes it runs once per backend (the jit backend with a
  compile threshold of JIT_TEST_THRESHOLD and compiling in the foreground, so that small
  programs run compiled code, the same on every run; sandmark runs with the defaults).
* Helpers, offered as session fixtures of the same names (so test files need
  not import this module): `um_run(source, backend, stdin=b"")` assembles UM
  source and runs it; `out_word(reg)` is assembly that prints a register as
  4 big-endian bytes; `words_of(output)` decodes such output.
* Marker ``sandmark``: the long whole-program runs (select with ``-m sandmark``,
  leave out with ``-m "not sandmark"``).  They are collected first, so that with
  pytest-xdist (``-n 2``) they start at once on every worker instead of ending the run
  on one of them alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

UM_BACKENDS = ("flat", "classic", "paged", "jit")
JIT_TEST_THRESHOLD = 2  # jit: code is compiled after its first pass (2 instructions), so tests run it
TEST_MEMORY = 64 << 20  # small machines: cheap to create, and quick to run out of


def pytest_configure(config):
    """Register the markers the vm32 tests use."""
    config.addinivalue_line(
        "markers", "sandmark: runs sandmark.umz from VM32_UM_CORPUS (slow, ~10-20 s per backend)")


def pytest_collection_modifyitems(config, items):
    """The sandmark runs first (a stable sort: the rest keep their order)."""
    items.sort(key=lambda item: item.get_closest_marker("sandmark") is None)


@pytest.fixture(scope="session")
def um_corpus() -> Path:
    """The UM corpus directory from VM32_UM_CORPUS; skip when the variable is unset."""
    value = os.environ.get("VM32_UM_CORPUS")
    if not value:
        pytest.skip("VM32_UM_CORPUS is not set (point it at the directory holding sandmark.umz)")
    path = Path(value)
    missing = [n for n in ("sandmark.umz", "sandmark.expected") if not (path / n).is_file()]
    if missing:
        pytest.fail(f"VM32_UM_CORPUS={value} lacks {', '.join(missing)}")
    return path


@pytest.fixture(params=UM_BACKENDS)
def backend(request, monkeypatch) -> str:
    """Each UM backend in turn (jit: compiling code after its first pass)."""
    if request.param == "jit" and request.node.get_closest_marker("sandmark") is None:
        from vm32.um.jit import runtime

        monkeypatch.setattr(runtime, "THRESHOLD", JIT_TEST_THRESHOLD)
        monkeypatch.setattr(runtime, "BACKGROUND", False)
        monkeypatch.setattr(runtime, "PAYOFF", 0)  # regions that barely run do not raise the threshold
    return request.param


def _um_run(source: str, backend: str, stdin: bytes = b"", memory_size: int = TEST_MEMORY):
    """Assemble `source`, run it to completion on `backend`; return the RunResult."""
    from vm32.um.asm import assemble
    from vm32.um.machine import run_program

    return run_program(assemble(source), stdin=stdin, backend=backend, memory_size=memory_size)


def _out_word(reg: str) -> str:
    """Assembly printing register `reg` (r1..r4) as 4 big-endian bytes.

    Destroys `reg` and uses r5, r6, r7 as scratch.
    """
    lines = []
    for shift in (24, 16, 8, 0):
        lines += [
            f"li32 r6, {1 << shift}, r7",
            f"div r5, {reg}, r6",  # the byte at `shift` (higher ones already removed)
            "out r5",
            "mul r5, r5, r6",
            "not r5, r5",
            f"add {reg}, {reg}, r5",
            "li r5, 1",
            f"add {reg}, {reg}, r5",  # reg -= byte << shift
        ]
    return "\n".join(lines) + "\n"


def _words_of(output: bytes) -> list[int]:
    """Big-endian 32-bit words of a program's output (see `out_word`)."""
    assert len(output) % 4 == 0, output
    return [int(w) for w in np.frombuffer(output, dtype=">u4")]


@pytest.fixture(scope="session")
def um_run():
    """The `_um_run` helper: assemble and run a UM program."""
    return _um_run


@pytest.fixture(scope="session")
def out_word():
    """The `_out_word` helper: assembly printing a register's 4 bytes."""
    return _out_word


@pytest.fixture(scope="session")
def words_of():
    """The `_words_of` helper: big-endian words of a program's output."""
    return _words_of
