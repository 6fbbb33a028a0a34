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
