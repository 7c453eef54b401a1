"""The compiled-tree artifact: LightGBM's trees as native code (lleaves, via LLVM).

Compiled once at registration by the training job, loaded by every scorer. A folder
``compiled/`` holds three files:

* ``model.o``: the object code for the model (lleaves' tree code generator, emitted and loaded
  by :mod:`rankops.scoring.native` with the small code model; serving never compiles);
* ``sample.npy``: the verification sample, rows the scorer scores with both LightGBM and
  the compiled code at load (validation rows plus an all-missing and an all-zero row, so the
  missing-value and zero branches are exercised);
* ``compiled.json``: the compiler and its version, the target (LLVM triple and CPU), the
  SHA-256 of ``model.o`` and of the sample, the LightGBM model text's SHA-256, sizes, seconds.

The object is compiled for the architecture's baseline CPU (``generic``), not for the build
machine's CPU, so any host of the same triple runs it (an instruction the serving CPU lacks
would kill the process, not fail a check); at this tree depth it scores as fast (docs/scoring.md).
Why lleaves and not a C-generating compiler: docs/scoring.md.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.errors import ModelError
from rankops.scoring import native

if TYPE_CHECKING:
    import lightgbm as lgb

COMPILER = "lleaves"
COMPILED_DIR = "compiled"
OBJECT_FILE, SAMPLE_FILE, META_FILE = "model.o", "sample.npy", "compiled.json"
TARGET_CPU = "generic"  # the triple's baseline: portable to every host of the architecture
INLINE = True  # trees inlined into the root loop: 11-20 % faster scoring for ~2-4x the compile time
CODE_MODEL = "small"  # RIP-relative constants: 43 % less scoring code than "large" (rankops.scoring.native)
SAMPLE_ROWS = 256
TAG_PREFIX = "compiled."  # model version tags: compiled.compiler, compiled.sha256, ...
TAGGED = ("compiler", "compiler_version", "llvmlite_version", "target_triple", "target_cpu", "code_model", "sha256")


@dataclass(frozen=True)
class CompiledMeta:
    """What ``compiled.json`` records (and, prefixed with ``compiled.``, the version's tags)."""

    compiler: str
    compiler_version: str
    llvmlite_version: str
    target_triple: str
    target_cpu: str
    sha256: str  # of model.o
    sample_sha256: str
    model_sha256: str  # of the LightGBM model text it was compiled from
    num_feature: int
    num_trees: int
    object_bytes: int
    compile_seconds: float
    inlined: bool = False  # records written before rankops inlined trees lack the field
    code_model: str = "large"  # records written before the small code model lack the field
    code_bytes: int | None = None  # code and constants loaded for scoring (None: not recorded)

    def tags(self) -> dict[str, str]:
        """The model version tags: compiler name/version, target and the object's SHA-256."""
        return {TAG_PREFIX + k: str(v) for k, v in asdict(self).items() if k in TAGGED} | {
            TAG_PREFIX + "compile_seconds": f"{self.compile_seconds:.3f}"
        }


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(dist: str) -> str:
    try:
        return dist_version(dist)
    except PackageNotFoundError:
        return "missing"


def available() -> str | None:
    """``None`` if the compiler can be used here, else the reason it cannot."""
    try:
        import lleaves  # noqa: F401
        import llvmlite.binding  # noqa: F401
    except ImportError as err:
        return f"the compiler is not installed ({err}); install rankops[serve]"
    return None


def process_triple() -> str:
    import llvmlite.binding as llvm

    return str(llvm.get_process_triple())


def _single_output(booster: lgb.Booster) -> None:
    """The native entry point writes one score per row: a multi-output model would overrun it."""
    outputs = booster.num_model_per_iteration()
    if outputs != 1:
        raise ModelError(f"the model has {outputs} outputs per row; compiled scoring takes one")


def verification_sample(rows: np.ndarray, size: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """Up to ``size`` of ``rows`` plus an all-missing and an all-zero row (float64, C order)."""
    rows = np.asarray(rows, dtype=np.float64)
    if len(rows) > size:
        rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), size, replace=False))]
    width = rows.shape[1]
    return np.ascontiguousarray(np.vstack([rows, np.full((1, width), np.nan), np.zeros((1, width))]))


def compile_booster(booster: lgb.Booster, rows: np.ndarray, out_dir: Path) -> CompiledMeta:
    """Compile ``booster`` into ``out_dir`` (created; must not hold a previous artifact) with
    a verification sample drawn from ``rows`` (the booster's own feature columns).

    Trees are inlined into the compiled root loop (lleaves' ``finline``): the serving shape (100
    rows, 500 trees) scores 11-20 % faster on the two machines measured, for ~2-4x the compile time
    (seconds for the demo's model, under a minute at 500 trees; docs/scoring.md). The object is
    emitted with the small code model (:mod:`rankops.scoring.native`): 43 % less code to run.
    Only single-output models (rankers, regressors): the native entry point writes one score per row."""
    import llvmlite.binding as llvm

    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / OBJECT_FILE
    if obj.exists():
        raise ModelError(f"{obj} already exists: a compiled artifact is written once, into an empty folder")
    _single_output(booster)
    sample = verification_sample(rows)
    if sample.shape[1] != booster.num_feature():
        raise ModelError(f"verification rows have {sample.shape[1]} columns; the model has {booster.num_feature()}")
    text = booster.model_to_string()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rankops-compile-") as tmp:
        source = Path(tmp) / "model.txt"
        source.write_text(text)
        data, code_model = native.emit_object(source, inline=INLINE, cpu=TARGET_CPU, code_model=CODE_MODEL)
    obj.write_bytes(data)
    seconds = time.perf_counter() - start
    np.save(out_dir / SAMPLE_FILE, sample)
    meta = CompiledMeta(
        compiler=COMPILER,
        compiler_version=_version("lleaves"),
        llvmlite_version=_version("llvmlite"),
        target_triple=str(llvm.get_process_triple()),
        target_cpu=TARGET_CPU,
        sha256=sha256_bytes(data),
        sample_sha256=sha256_file(out_dir / SAMPLE_FILE),
        model_sha256=hashlib.sha256(text.encode()).hexdigest(),
        num_feature=int(booster.num_feature()),
        num_trees=int(booster.num_trees()),
        object_bytes=len(data),
        code_bytes=native.code_bytes(data),
        compile_seconds=round(seconds, 3),
        inlined=INLINE,
        code_model=code_model,
    )
    (out_dir / META_FILE).write_text(json.dumps(asdict(meta), indent=2, sort_keys=True) + "\n")
    return meta


def read_meta(folder: Path) -> CompiledMeta:
    path = folder / META_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return CompiledMeta(**data)
    except (OSError, ValueError, TypeError) as err:
        raise ModelError(f"{path} is not a compiled-artifact record: {err}") from err


def branch_order_column(booster: lgb.Booster) -> int | None:
    """The column rows are scored in the order of: the feature with the most split gain, the one
    the trees' upper, most-travelled splits test (``None`` for a model without splits).

    The native code runs a block of trees over one row after another; rows in the order of that
    feature take the same branches one after another, which the CPU's branch predictor learns.
    Each row's score is computed alone, so the order changes no score. Measured on the serving
    benchmark's 500-tree model: 336 -> 261 µs per 100 rows (docs/scoring.md, "Rows in branch order")."""
    gain = np.asarray(booster.feature_importance("gain"), dtype=np.float64)
    if not gain.size or not np.nanmax(gain) > 0:
        return None
    return int(np.nanargmax(gain))


class CompiledModel:
    """A loaded compiled artifact: ``predict`` calls the native code (the GIL is released) on the
    rows sorted by ``order_column`` (:func:`branch_order_column`), and returns the scores in the
    caller's row order."""

    def __init__(self, forest: native.NativeForest, meta: CompiledMeta, order_column: int | None = None) -> None:
        self._forest = forest
        self.meta = meta
        if order_column is not None and not 0 <= order_column < meta.num_feature:
            raise ValueError(f"order column {order_column} is not one of the model's {meta.num_feature} features")
        self.order_column = order_column

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        rows = np.asarray(matrix, dtype=np.float64)
        column = self.order_column
        if column is None or rows.ndim != 2 or len(rows) < 3 or rows.shape[1] != self.meta.num_feature:
            return self._forest.predict(rows)  # (which names a wrong shape)
        order = np.argsort(rows[:, column], kind="stable")
        scores = np.empty(len(rows), dtype=np.float64)
        scores[order] = self._forest.predict(rows[order])  # fancy indexing: a C-ordered copy
        return scores


def load_compiled(booster: lgb.Booster, folder: Path, expected_sha256: str | None = None) -> CompiledModel:
    """The compiled artifact in ``folder`` for ``booster``, after the cheap checks: the compiler
    is installed, the record is readable, the object's SHA-256 matches the record (and
    ``expected_sha256``, the registry's tag, when given), the target triple is this process's,
    the feature count is the booster's. Raises :class:`ModelError` naming the first failure.
    The score check is the caller's (:mod:`rankops.scoring.scorer`)."""
    missing = available()
    if missing:
        raise ModelError(missing)
    meta = read_meta(folder)
    obj = folder / OBJECT_FILE
    try:
        data = obj.read_bytes()  # hashed and loaded as these same bytes
    except OSError as err:
        raise ModelError(f"{obj} is missing or unreadable: {err}") from err
    actual = sha256_bytes(data)
    for source, wanted in (("compiled.json", meta.sha256), ("the model version's tag", expected_sha256)):
        if wanted is not None and actual != wanted:
            raise ModelError(f"{obj} has SHA-256 {actual[:12]}..., {source} says {wanted[:12]}...: refused")
    if meta.compiler != COMPILER:
        raise ModelError(f"{folder} was made by {meta.compiler!r}; this scorer loads {COMPILER!r} artifacts")
    here = process_triple()
    if meta.target_triple != here:
        raise ModelError(f"{folder} targets {meta.target_triple}; this process is {here}")
    _single_output(booster)
    if meta.num_feature != booster.num_feature():
        raise ModelError(f"{folder} scores {meta.num_feature} features; the model has {booster.num_feature()}")
    if meta.code_model not in ("small", "large"):
        raise ModelError(f"{folder} records code model {meta.code_model!r}; this scorer loads 'small' or 'large'")
    try:  # the object is loaded, never recompiled: its compile options are in its code already
        forest = native.NativeForest(data, meta.num_feature, meta.target_cpu, meta.code_model)
    except (RuntimeError, ValueError) as err:
        raise ModelError(f"{obj} could not be loaded: {err}") from err
    return CompiledModel(forest, meta, branch_order_column(booster))


def read_sample(folder: Path, meta: CompiledMeta) -> np.ndarray:
    path = folder / SAMPLE_FILE
    if not path.is_file() or sha256_file(path) != meta.sample_sha256:
        raise ModelError(f"{path} is missing or does not match its SHA-256 in compiled.json")
    return np.load(path, allow_pickle=False)
