"""LLVM for the JIT: optimise a region's module, emit machine code, load and unload it.

Only this module uses `llvmlite.binding` for the JIT, and only on its worker thread
(`worker()`), which creates the engine with the first region it compiles: a program
that never gets hot never pays for it.  Code
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
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import llvmlite.binding as llvm
from numba.core.compiler_lock import global_compiler_lock

from vm32.um.jit import helpers

OPT_LEVEL = 2
"""LLVM's code generation level for regions."""
PASSES = tuple(os.environ.get("VM32_JIT_PASSES", "sroa,instcombine,simplifycfg,newgvn,simplifycfg").split(","))
"""The optimisation passes run on a region, in order (not -O2: its time grows faster than
linearly with a region's size, on chains of checks, for code that is no faster)."""
_PASS_METHODS = {
    "sroa": "add_sroa_pass", "instcombine": "add_instruction_combine_pass",
    "simplifycfg": "add_simplify_cfg_pass", "newgvn": "add_new_gvn_pass", "sccp": "add_sccp_pass",
    "jumpthreading": "add_jump_threading_pass", "dce": "add_dead_code_elimination_pass",
    "dse": "add_dead_store_elimination_pass", "reassociate": "add_reassociate_pass",
    "O1": None, "O2": None, "O3": None,
}


@dataclass
class CompiledRegion:
    """A region's machine code: `address` of its function; alive while `tracker` is."""

    address: int
    tracker: object
    seconds: float  # CPU time spent optimising, emitting and loading it
    size: int  # bytes of machine code


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
        self.opt_seconds = self.emit_seconds = 0.0  # LLVM's time, for the figures

    def optimise(self, ir: str):
        """Parse and optimise module text `ir`; the llvmlite module."""
        mod = llvm.parse_assembly(ir)
        mod.triple = self.tm.triple
        mod.data_layout = str(self.tm.target_data)
        mod.verify()
        if PASSES[0].startswith("O"):
            pb = llvm.create_pass_builder(self.tm, llvm.create_pipeline_tuning_options(int(PASSES[0][1])))
            pb.getModulePassManager().run(mod, pb)
            return mod
        mpm = llvm.create_new_module_pass_manager()
        for name in PASSES:
            getattr(mpm, _PASS_METHODS[name])()
        mpm.run(mod, self.pb)
        return mod

    def compile(self, ir: str, name: str) -> CompiledRegion:
        """Optimise, emit and load module text `ir`, which defines function `name`.

        The object code is cached on disk by a hash of the IR and the target, next to
        numba's cache (whose directory changes with every edit of vm32's sources)."""
        start = time.thread_time()
        key = hashlib.sha256(f"{self.tm.triple} {llvm.get_host_cpu_name()} {ir}".encode()).hexdigest()
        path = self.cache_dir / f"{key[:32]}.o" if self.cache_dir is not None else None
        obj = None
        if path is not None and path.is_file():
            obj = path.read_bytes()
        if obj is None:
            t0 = time.thread_time()
            mod = self.optimise(ir)
            t1 = time.thread_time()
            obj = self.tm.emit_object(mod)
            self.opt_seconds += t1 - t0
            self.emit_seconds += time.thread_time() - t1
            if path is not None:
                _write_atomically(path, obj)
        self._serial += 1
        builder = llvm.JITLibraryBuilder().add_object_img(obj).export_symbol(name)
        for symbol, address in self.symbols.items():
            builder.import_symbol(symbol, address)
        tracker = builder.link(self.lljit, f"{name}_lib{self._serial}")
        size = sum(sec.size() for sec in llvm.ObjectFileRef.from_data(obj).sections() if sec.is_text())
        return CompiledRegion(tracker[name], tracker, time.thread_time() - start, size)

    def assembly(self, ir: str) -> str:
        """The host assembly of module text `ir` (for inspection)."""
        return self.tm.emit_assembly(self.optimise(ir))


def _cache_dir() -> Path | None:
    """Where compiled regions are cached (None: not at all, if numba's cache is off or
    VM32_JIT_CACHE=0)."""
    base = os.environ.get("NUMBA_CACHE_DIR")
    if not base or os.environ.get("VM32_JIT_CACHE", "1") == "0":
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


class Worker:
    """The thread that does all of the JIT's LLVM work, so that it runs beside the UM.

    LLVM's calls release the GIL, so a region compiles on one core while tier 0 goes on
    on the other.  Every use of llvmlite for the JIT goes through this one thread (LLVM's
    context is not safe to share), under numba's compiler lock (numba compiles with the
    same LLVM).  The engine is created by the first job.  It is a daemon thread: the
    process never waits for a compile at exit (Ctrl-C ends a run at once).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._engine: Engine | None = None
        threading.Thread(target=self._serve, name="vm32-jit", daemon=True).start()

    def _serve(self) -> None:
        while True:
            future, method, args = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                with global_compiler_lock:
                    if self._engine is None:
                        self._engine = Engine()
                    result = getattr(self._engine, method)(*args) if method else args[0]()
            except BaseException as error:  # handed to whoever waits for the result
                future.set_exception(error)
            else:
                future.set_result(result)

    def submit(self, method: str, *args) -> Future:
        """Run Engine.`method`(*args) on the worker thread; its future."""
        future: Future = Future()
        self._jobs.put((future, method, args))
        return future

    def call(self, method: str, *args):
        """Run Engine.`method`(*args) on the worker thread and wait for its result."""
        return self.submit(method, *args).result()

    def release(self, compiled: CompiledRegion) -> None:
        """Unload `compiled`'s machine code (on the worker thread)."""
        self._jobs.put((Future(), None, (compiled.tracker.close,)))


_WORKER: Worker | None = None


def worker() -> Worker:
    """The process's JIT worker thread, created on first use."""
    global _WORKER
    if _WORKER is None:
        _WORKER = Worker()
    return _WORKER
