"""One scorer for serving, shadow, evaluation and the benchmarks: compiled trees when a
verified artifact is present, LightGBM's ``Booster.predict`` otherwise.

At load the compiled artifact is checked (SHA-256, target, and then its scores against
LightGBM's on the stored verification sample, max absolute difference ``MAX_ABS_DIFF``);
anything wrong refuses it with a logged reason and the scorer serves through LightGBM. A
version without an artifact (older versions, a failed compile) serves through LightGBM too:
a compiled artifact is an optimisation, never a condition for serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rankops.errors import ModelError
from rankops.scoring import compiled

if TYPE_CHECKING:
    import lightgbm as lgb

log = logging.getLogger("rankops.scoring")

MAX_ABS_DIFF = 1e-9
LIGHTGBM = "lightgbm"


@dataclass(frozen=True)
class Scorer:
    """Scores rows (the booster's feature columns, in its order) with the fastest verified engine.

    ``engine`` is ``"lleaves"`` or ``"lightgbm"``; ``reason`` says why (what was refused, if anything).
    """

    booster: lgb.Booster
    native: compiled.CompiledModel | None = None
    threads: int = 1
    reason: str = "no compiled artifact"

    @property
    def engine(self) -> str:
        return self.native.meta.compiler if self.native is not None else LIGHTGBM

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if self.native is not None:
            return self.native.predict(matrix)
        return np.asarray(self.booster.predict(matrix, num_threads=self.threads))

    def lightgbm(self) -> Scorer:
        """The same model through LightGBM only (the benchmark's floor, a parity check)."""
        return Scorer(self.booster, None, self.threads, "LightGBM requested")


def verify(booster: lgb.Booster, native: compiled.CompiledModel, sample: np.ndarray) -> float:
    """Max absolute difference between the compiled and LightGBM's scores on ``sample``;
    raises :class:`ModelError` if it exceeds ``MAX_ABS_DIFF`` (or shapes differ)."""
    expected = np.asarray(booster.predict(sample, num_threads=1))
    got = native.predict(sample)
    if got.shape != expected.shape:
        raise ModelError(f"compiled scores have shape {got.shape}, LightGBM's {expected.shape}")
    diff = float(np.max(np.abs(got - expected))) if len(sample) else 0.0
    if not diff <= MAX_ABS_DIFF:  # NaN fails too
        raise ModelError(f"compiled scores differ from LightGBM's by {diff:.3g} (> {MAX_ABS_DIFF:g}) on the sample")
    return diff


def load_scorer(
    booster: lgb.Booster,
    folder: Path | None,
    *,
    threads: int = 1,
    expected_sha256: str | None = None,
    label: str = "model",
) -> Scorer:
    """A scorer for ``booster``: compiled from ``folder`` (a ``compiled/`` artifact) if it is
    present and passes every check, else LightGBM with the reason logged. Never raises for a
    bad artifact: the model still serves."""
    if folder is None or not (folder / compiled.META_FILE).is_file():
        if expected_sha256:  # the registry says there is one: its absence is worth a warning
            log.warning("%s: compiled artifact announced but not found; scoring with LightGBM", label)
        return Scorer(booster, None, threads, "no compiled artifact")
    try:
        native = compiled.load_compiled(booster, folder, expected_sha256)
        diff = verify(booster, native, compiled.read_sample(folder, native.meta))
    except ModelError as err:
        log.warning("%s: compiled artifact refused, scoring with LightGBM: %s", label, err)
        return Scorer(booster, None, threads, f"refused: {err}")
    except Exception as err:  # a broken object can fail inside LLVM in any way: still serve
        log.warning("%s: compiled artifact failed to load, scoring with LightGBM: %r", label, err)
        return Scorer(booster, None, threads, f"failed to load: {err!r}")
    return Scorer(booster, native, threads, f"verified on the stored sample, max diff {diff:.2g}")
