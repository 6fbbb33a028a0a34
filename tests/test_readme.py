"""The README's Python examples run as they are written, so they cannot drift from the code."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example{i + 1}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(source, monkeypatch, capsys):
    monkeypatch.chdir(README.parent)  # the examples' paths are relative to the repository
    exec(compile(source, str(README), "exec"), {"__name__": "readme_example"})


def _indented_commands(text: str) -> list[str]:
    """The README's indented command lines, in order."""
    return [line.strip() for line in text.splitlines() if line.startswith("    ") and line.strip()]


def test_ci_runs_the_readme_test_command():
    """.ci/run ends with the README's second command (the test command), word for word."""
    commands = _indented_commands(README.read_text())
    setup, test = commands[0], commands[1]
    assert "pip install" in setup and "vm32 demo" in setup
    assert "pytest" in test
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == test
