"""LLVM for the JIT: optimise a region's module, emit machine code, load and unload it.

Only this module imports `llvmlite.binding` for the JIT, and only when the first region
is compiled (`Engine()`), so a program that never gets hot never pays for it.  Code
goes through ORC's LLJIT as object files, one library per region: a
`CompiledRegion` holds the library's resource tracker, and dropping it unloads the
machine code (an invalidated region's memory comes back).

The target is the host: its triple, CPU and features, so other architectures that
llvmlite supports need no change here (the IR assumes 64-bit pointers and a
little-endian host, as vm32's flat memory does).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import llvmlite.binding as llvm

from vm32.um.jit import helpers

OPT_LEVEL = 2
"""LLVM's optimisation level for regions (the -O2 pipeline, and codegen level 2)."""


@dataclass
class CompiledRegion:
    """A region's machine code: `address` of its function; alive while `tracker` is."""

    address: int
    tracker: object
    seconds: float  # time spent optimising, emitting and loading it


class Engine:
    """One LLJIT instance with the host target; compiles modules to callable regions."""

    def __init__(self, opt_level: int = OPT_LEVEL):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        target = llvm.Target.from_triple(llvm.get_process_triple())
        self.tm = target.create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
            opt=opt_level, reloc="default", codemodel="jitdefault", jit=True)
        self.lljit = llvm.create_lljit_compiler(self.tm)
        self.pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        self.pb = llvm.create_pass_builder(self.tm, self.pto)
        self.symbols = helpers.symbols()
        self._serial = 0
        self.cache_dir = _cache_dir()

    def optimise(self, ir: str):
        """Parse and optimise module text `ir`; the llvmlite module."""
        mod = llvm.parse_assembly(ir)
        mod.triple = self.tm.triple
        mod.data_layout = str(self.tm.target_data)
        mod.verify()
        self.pb.getModulePassManager().run(mod, self.pb)
        return mod

    def compile(self, ir: str, name: str) -> CompiledRegion:
        """Optimise, emit and load module text `ir`, which defines function `name`.

        The object code is cached on disk by a hash of the IR and the target, next to
        numba's cache (whose directory changes with every edit of vm32's sources)."""
        start = time.perf_counter()
        key = hashlib.sha256(f"{self.tm.triple} {llvm.get_host_cpu_name()} {ir}".encode()).hexdigest()
        path = self.cache_dir / f"{key[:32]}.o" if self.cache_dir is not None else None
        obj = None
        if path is not None and path.is_file():
            obj = path.read_bytes()
        if obj is None:
            obj = self.tm.emit_object(self.optimise(ir))
            if path is not None:
                _write_atomically(path, obj)
        self._serial += 1
        builder = llvm.JITLibraryBuilder().add_object_img(obj).export_symbol(name)
        for symbol, address in self.symbols.items():
            builder.import_symbol(symbol, address)
        tracker = builder.link(self.lljit, f"{name}_lib{self._serial}")
        return CompiledRegion(tracker[name], tracker, time.perf_counter() - start)

    def assembly(self, ir: str) -> str:
        """The host assembly of module text `ir` (for inspection)."""
        return self.tm.emit_assembly(self.optimise(ir))


def _cache_dir() -> Path | None:
    """Where compiled regions are cached (None: not at all, if numba's cache is off)."""
    base = os.environ.get("NUMBA_CACHE_DIR")
    if not base:
        return None
    path = Path(base) / "jit-regions"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory (never a torn file)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


_ENGINE: Engine | None = None


def engine() -> Engine:
    """The process's JIT engine, created on first use."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine()
    return _ENGINE
