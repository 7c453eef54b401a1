"""Native scoring code: emit a LightGBM forest as an object file, load one into this process.

lleaves turns the model text into an optimised LLVM module (its tree code generator); this
module does the two steps around it that lleaves' ``Model.compile(cache=...)`` would do
differently:

* **The small code model** (on x86-64). lleaves loads objects with LLVM's default section memory
  manager, which maps code and constants separately (possibly gigabytes apart), so only the
  *large* code model is safe with it: every constant is reached through a 10-byte immediate.
  A small-code-model object is loaded here with llvmlite's own memory manager (``use_lmm``), which
  reserves one block for all sections of an object, so its 32-bit RIP-relative offsets always
  reach (:data:`SMALL_LIMIT_BYTES` bounds the object). That manager reserves no GOT, so only
  objects whose every relocation is RIP-relative (``R_X86_64_PC32``, checked in the ELF itself:
  :func:`relocation_types`) take that path; any other object is emitted, and loaded, the large
  way, as lleaves does. At 500 trees the scoring code shrinks from 588 to 335 kB, and a
  request's CPU falls with it (docs/scoring.md, "Small code model").
* **Loading exactly the bytes that were checked.** :class:`NativeForest` takes the object's bytes
  (the caller hashes those very bytes), not a path read again later.

The entry point ``forest_root(rows, out, start, end)`` adds each row's score into ``out[i]``
(the trees run in blocks), so ``out`` starts at zero.
"""

from __future__ import annotations

import ctypes
import platform
import struct
from pathlib import Path
from typing import Any

import numpy as np

ENTRY = "forest_root"
BLOCK_TREES = 34  # lleaves' default tree block (cache blocking); measured best of 10/34/100 (docs/scoring.md)
SMALL_LIMIT_BYTES = 1 << 30  # objects above this are emitted with the large code model instead
R_X86_64_PC32 = 2  # the one relocation a small-code-model forest needs (RIP-relative constants)
_SHT_RELA, _SHT_REL = 4, 9
_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int)


def _llvm() -> Any:
    import llvmlite.binding as llvm

    llvm.initialize()  # per-process LLVM state; safe to call again
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm


def _target_machine(cpu: str, code_model: str) -> Any:
    llvm = _llvm()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=cpu, features="", reloc="pic", codemodel=code_model)


def relocation_types(data: bytes) -> set[int]:
    """Every relocation type in an ELF64 little-endian object (``ValueError`` if it is not one)."""
    if data[:6] != b"\x7fELF\x02\x01":
        raise ValueError("not a 64-bit little-endian ELF object")
    try:
        return _relocation_types(data)
    except struct.error as err:  # a header or table that runs past the end of the data
        raise ValueError(f"a truncated ELF object: {err}") from err


def _relocation_types(data: bytes) -> set[int]:
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    types: set[int] = set()
    for index in range(shnum):
        header = struct.unpack_from("<IIQQQQIIQQ", data, shoff + index * shentsize)
        kind, offset, size, entsize = header[1], header[4], header[5], header[9]
        if kind in (_SHT_RELA, _SHT_REL) and size:
            if entsize not in (16, 24) or offset + size > len(data):
                raise ValueError("a relocation section does not fit the object")
            info = np.ndarray(size // entsize, dtype="<u8", buffer=data, offset=offset + 8, strides=(entsize,))
            types.update(int(t) for t in np.unique(info & 0xFFFFFFFF))
    return types


def small_model_possible() -> bool:
    """The small path is built for x86-64 (``R_X86_64_PC32``); elsewhere objects stay large."""
    return platform.machine() in ("x86_64", "AMD64")


def small_model_safe(data: bytes) -> bool:
    """True if the object can be loaded the small way: x86-64, within the size bound, every
    relocation RIP-relative."""
    return small_model_possible() and len(data) <= SMALL_LIMIT_BYTES and relocation_types(data) <= {R_X86_64_PC32}


def _parsed(data: bytes) -> Any:
    """LLVM's view of an object file; refused here when LLVM cannot parse it (truncated, not an
    object), since handing such a reference on crashes the process."""
    parsed = _llvm().ObjectFileRef.from_data(data)
    if not parsed._ptr:
        raise ValueError("not an object file LLVM can read")
    return parsed


def emit_object(model_file: Path, *, inline: bool, cpu: str, code_model: str) -> tuple[bytes, str]:
    """The LightGBM model text at ``model_file`` as object code for this process's triple and
    ``cpu``: ``(object bytes, the code model used)``. ``inline``: trees inlined into the root
    loop (lleaves' ``finline``). A small-code-model object that could not be loaded the small
    way (too big, another architecture, a relocation other than RIP-relative) is emitted large."""
    from lleaves.compiler import compile_to_module

    if code_model == "small" and not small_model_possible():
        code_model = "large"
    module = compile_to_module(str(model_file), fblocksize=BLOCK_TREES, finline=inline, froot_func_name=ENTRY)
    machine = _target_machine(cpu, code_model)
    module.data_layout = str(machine.target_data)
    data = bytes(machine.emit_object(module))
    if code_model == "small" and not small_model_safe(data):
        return emit_object(model_file, inline=inline, cpu=cpu, code_model="large")
    return data, code_model


def code_bytes(data: bytes) -> int:
    """What loading the object maps for scoring: its code and constants (``.text``, ``.rodata*``),
    not its relocation and symbol tables (which the small code model's file has more of)."""
    sections = _parsed(data).sections()
    return sum(s.size() for s in sections if (s.name() or b"").startswith((b".text", b".rodata")))


class NativeForest:
    """An object file's forest, loaded into this process: :meth:`predict` calls it (the GIL is
    released for the call). Keeps the execution engine (owner of the code) alive with itself."""

    def __init__(self, data: bytes, num_feature: int, cpu: str, code_model: str) -> None:
        llvm = _llvm()
        parsed = _parsed(data)
        # Small: one reserved block (offsets reach), only for what that manager can place
        # (module docstring); large: the platform's default manager, as lleaves loads it
        # (llvmlite's own on 64-bit ARM, LLVM's elsewhere).
        small = code_model == "small"
        if small and not small_model_safe(data):
            raise ValueError("a small-code-model object that cannot be loaded safely (size, architecture, relocations)")
        machine = _target_machine(cpu, code_model)
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine, use_lmm=True if small else None)
        self._engine.add_object_file(parsed)
        self._data = data  # the object may view these bytes rather than copy them: keep them alive
        self._engine.finalize_object()
        address = self._engine.get_function_address(ENTRY)
        if not address:
            raise ValueError(f"the object has no {ENTRY!r} function")
        self._entry = _ENTRY_TYPE(address)
        self.num_feature = num_feature

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        # The native code reads rows through a raw pointer: a C-ordered float64 array this frame
        # keeps alive, of exactly the model's width (anything else would read out of bounds).
        rows = np.ascontiguousarray(matrix, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.num_feature:
            raise ValueError(f"expected rows of {self.num_feature} features, got shape {rows.shape}")
        count = rows.shape[0]
        if count >= 2**31 - 1:
            raise ValueError(f"{count} rows in one call; the native entry point counts rows in 32 bits")
        out = np.zeros(count, dtype=np.float64)
        if count:
            self._entry(rows.ctypes.data, out.ctypes.data, 0, count)
        return out
