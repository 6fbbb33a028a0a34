"""vm32's layers, as a test: every module imports only its own layer or lower ones, the
compiled cores import no third-party package but numpy, numba and llvmlite, and no private
name crosses from one package to another.  (The layers are listed in vm32/__init__.py.)

The modules are read as text (ast), not imported: the test is quick and needs no numba.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

import vm32

ROOT = Path(vm32.__file__).resolve().parent

# Rank of each layer; a module may import its own layer and any layer of lower rank.
LAYERS = {
    "errors": 0, "jit": 0, "defaults": 0, "atomic": 0, "files": 0, "workers": 0,
    "memory": 1,
    "heap": 2, "mmu": 2,
    "kernel": 3,
    "trace": 4, "um": 4,
    "ui": 5,
    "cli": 6, "__main__": 6,
}
COMPILED_MAY_IMPORT = {"numpy", "numba", "llvmlite"}  # besides vm32 and the standard library


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the vm32 package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["vm32", *parts])] = path
    return out


MODULES = _modules()


def _package(name: str) -> str:
    """The part of vm32 that module `name` belongs to: its first name below vm32."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


@functools.cache
def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names taken from it, line) of every import in the file, functions' included."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.ImportFrom):  # relative: resolve against the module's package
            raise AssertionError(f"{path}:{node.lineno}: relative import (vm32 spells its imports out)")
    return found


def _vm32_target(module: str, names: list[str]) -> list[str]:
    """The vm32 modules an import statement reaches (a `from package import module` reaches
    the module)."""
    if module != "vm32" and not module.startswith("vm32."):
        return []
    reached = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
    return reached or [module]


def test_every_module_has_a_layer():
    unknown = sorted({_package(m) for m in MODULES if m != "vm32" and _package(m) not in LAYERS})
    assert not unknown, f"add these parts of vm32 to LAYERS (and to vm32/__init__.py's list): {unknown}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m != "vm32"))
def test_imports_go_down_the_layers(name):
    own = _package(name)
    wrong = []
    for module, names, line in _imports(MODULES[name]):
        for target in _vm32_target(module, names):
            other = _package(target)
            if other in ("", own):
                continue
            if LAYERS[other] > LAYERS[own]:
                wrong.append(f"line {line}: {own} (layer {LAYERS[own]}) imports {target} (layer {LAYERS[other]})")
    assert not wrong, "\n".join(wrong)


def _is_compiled(path: Path) -> bool:
    return any(module.split(".")[0] == "numba" or module == "vm32.jit" for module, _, _ in _imports(path))


@pytest.mark.parametrize("name", sorted(m for m, p in MODULES.items() if _is_compiled(p)))
def test_compiled_cores_import_only_numpy_numba_llvmlite(name):
    third_party = {
        module.split(".")[0] for module, _, _ in _imports(MODULES[name])
        if module.split(".")[0] not in sys.stdlib_module_names and module.split(".")[0] != "vm32"
    }
    assert third_party <= COMPILED_MAY_IMPORT, f"{name} imports {sorted(third_party - COMPILED_MAY_IMPORT)}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m != "vm32"))
def test_no_private_name_crosses_packages(name):
    own = _package(name)
    tree = _tree(MODULES[name])
    crossing, aliases = [], {}
    for module, names, line in _imports(MODULES[name]):
        for target in _vm32_target(module, names):
            if _package(target) == own:
                continue
            taken = [n for n in names if _private(n) and f"{module}.{n}" not in MODULES]
            crossing += [f"line {line}: {module}.{n}" for n in taken]
    for node in ast.walk(tree):  # `import vm32.x.y as m` / `from vm32.x import y`, then m._name
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                full = a.name if isinstance(node, ast.Import) else f"{node.module}.{a.name}"
                if full in MODULES and _package(full) != own:
                    aliases[a.asname or a.name.split(".")[0]] = full
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and _private(node.attr)):
            crossing.append(f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}")
    assert not crossing, f"{name} uses private names of other packages:\n" + "\n".join(crossing)
