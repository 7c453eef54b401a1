"""The serving benchmark's world: settings, the synthetic catalogue and model, servers.

Split from :mod:`benchmarks.serving` (the measurements); nothing here measures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED_REDIS = "redis://127.0.0.1:6379/0"
CATEGORIES = ("toys", "vehicles", "furniture", "fashion", "garden")
NOW = 1_800_000_000.0
VERSION = "bench-v1"


def settings_for(home: Path) -> Any:
    from rankops.config import load_settings

    return load_settings(env="local", home=home, config_file=REPO / "rankops.toml", environ={})


def percentiles(values_s: list[float]) -> dict[str, float | int | None]:
    if not values_s:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    ms = np.asarray(values_s) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "n": len(ms),
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
    }


# -- data and model ---------------------------------------------------------------------------
def item_features(count: int, seed: int) -> np.ndarray:
    """Stored item features in registry order, plausible values (item ``k`` in ``CATEGORIES[k % n]``)."""
    from rankops.features import samples

    return samples.stored_values("item", count, seed, NOW, CATEGORIES)


def model_matrix(stored: np.ndarray, category: str) -> np.ndarray:
    """Item features plus registry defaults for the joined entities (the benchmark serves items only)."""
    from rankops.features import on_demand, registry

    columns = {f.name: stored[:, i] for i, f in enumerate(registry.stored_features("item"))}
    for entity in registry.joined_entities("item"):
        columns.update({f.name: np.full(len(stored), f.default) for f in registry.stored_features(entity)})
    columns.update(on_demand.compute(columns, NOW, on_demand.category_code(category)))
    return np.column_stack([columns[n] for n in registry.model_features()])


def train_and_register(settings: Any, trees: int, rows: int) -> tuple[Any, str, dict[str, Any]]:
    """Train the benchmark's ranker, register it as champion and compile it as the training job
    does (its cost is the third value: trees, sizes, compile seconds)."""
    import lightgbm as lgb
    import pandas as pd

    from rankops import registry
    from rankops.features.registry import model_features
    from rankops.scoring import artifacts
    from rankops.training.baseline import rule_scores

    rng = np.random.default_rng(1)
    stored = item_features(rows, 2)
    x = model_matrix(stored, "toys")
    utility = 8 * rule_scores(dict(zip(model_features(), x.T, strict=True))) + rng.normal(0, 0.3, rows)
    label = np.clip(np.round(utility), 0, 4).astype(int)
    params = {"objective": "lambdarank", "num_leaves": 31, "min_data_in_leaf": 20, "verbosity": -1, "num_threads": 2}
    booster = lgb.train(params, lgb.Dataset(x, label, group=[50] * (rows // 50), feature_name=model_features()), trees)
    frame = pd.DataFrame(x[:5], columns=model_features())
    registered = registry.log_ranker(
        settings, booster, params=params, metrics={}, history={}, input_example=frame, tags={"benchmark": "serving"}
    )
    registry.set_alias(settings, registry.CHAMPION, registered.version)
    started = time.perf_counter()
    tags = artifacts.attach_compiled(settings, settings.mlflow.model_name, registered.version, booster, x)
    cost = {
        "trees": booster.num_trees(),
        "lightgbm_model_bytes": len(booster.model_to_string().encode()),
        "compiled_object_bytes": None,
        "compile_seconds": float(tags.get("compiled.compile_seconds", "nan")),
        "compile_and_register_seconds": round(time.perf_counter() - started, 3),
        "compiler": f"{tags.get('compiled.compiler')} {tags.get('compiled.compiler_version')}",
        "target": f"{tags.get('compiled.target_triple')}/{tags.get('compiled.target_cpu')}",
        "compile_error": tags.get("compiled.error"),
    }
    return booster, registered.model_uri, cost


# -- servers ------------------------------------------------------------------------------------
def free_port() -> int:
    from rankops.background import free_port as pick

    return pick(0)


def start(command: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    from rankops.background import wait_until_ready

    env = dict(env or os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow execs `uvicorn`
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", 120, proc)
    except Exception:
        print(log.read_text()[-3000:], file=sys.stderr)
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, 9)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
