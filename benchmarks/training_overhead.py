"""Training overhead: the pipeline's training job against plain ``lightgbm.train``.

    python -m benchmarks.training_overhead                 # 1,000,000 rows (a few minutes on 2 cores)
    python -m benchmarks.training_overhead --rows 20000 --rounds 5

Both sides get the same rows (synthetic graded-relevance queries with the model's
feature columns, split 85/15 by query order) and the same parameters (the configured
lambdarank parameters, early stopping on validation NDCG@10). Plain LightGBM starts
from NumPy arrays in memory; the training job starts from the processing job's
channel folders (Parquet + manifest, written before the clock starts: processing is
excluded) and does everything it does in the pipeline: read and verify the channels,
train the ranker and the fallback, log the run and both models to MLflow (sqlite,
created before the clock starts) and write ``SM_MODEL_DIR``. The JSON reports both
timings (the minimum of ``--repeat`` alternating measurements, each job run against a
fresh registry so nothing is reused), the job's phases, both ratios (with and without the
fallback model, which is a second model rather than overhead), the same ratio in CPU
seconds of the process (all threads; steadier than wall time on a shared machine), and
whether both produced the same model. The ``compile`` line is the job's compile step (both
models compiled to native code for serving, docs/scoring.md): seconds, trees and object bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COMPILE_FIELDS = ("compiler", "code_model", "num_trees", "object_bytes", "code_bytes", "compile_seconds")


def make_frame(rows: int, per_query: int, seed: int, features: list[str]) -> pd.DataFrame:
    """Queries of ``per_query`` rows in time order; labels 0..4 from a hidden score."""
    rng = np.random.default_rng(seed)
    n_queries = max(rows // per_query, 2)
    n = n_queries * per_query
    x = rng.normal(size=(n, len(features)))
    weights = rng.normal(size=len(features))
    utility = x @ weights + 0.5 * np.sin(3 * x[:, 0]) + rng.normal(scale=1.5, size=n)
    label = np.clip(np.floor(utility - np.quantile(utility, 0.7)), 0, 4).astype(np.int32)
    query = np.repeat(np.arange(n_queries), per_query)
    frame = pd.DataFrame(x, columns=features)
    frame.insert(0, "request_id", pd.Series(query).map("r-{}".format))
    frame.insert(1, "ts", pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(query, unit="s"))
    frame.insert(2, "item_id", pd.Series(rng.integers(0, max(n // 20, 10), n)).map("i-{}".format))
    frame["label"] = label
    return frame


def write_channels(frame: pd.DataFrame, base: Path) -> dict[str, Path]:
    """The processing job's output for these rows: train and validation channels with a manifest."""
    from rankops.training import processing
    from rankops.training.manifest import build_manifest

    queries = frame["request_id"].drop_duplicates().to_numpy()
    cut = frame["request_id"].isin(set(queries[: int(len(queries) * 0.85)])).to_numpy()
    splits = {"train": frame[cut].reset_index(drop=True), "validation": frame[~cut].reset_index(drop=True)}
    folders = {name: base / "channels" / name for name in splits}
    channels = {name: (folders[name], part, {}) for name, part in splits.items()}
    processing.write_channels(channels, build_manifest(splits, {"benchmark": True}))
    return folders


def plain_lightgbm(
    frame: pd.DataFrame, folders: dict[str, Path], params: dict[str, Any], rounds: int
) -> tuple[Any, float]:
    """``lightgbm.train`` from arrays already in memory (the clock covers Dataset construction)."""
    import lightgbm as lgb

    from rankops.features import registry
    from rankops.training.metrics import group_sizes

    features = registry.model_features()
    parts = {n: pd.read_parquet(f / "data.parquet") for n, f in folders.items()}
    arrays = {
        n: (p[features].to_numpy(np.float64), p["label"].to_numpy(), group_sizes(p["request_id"].to_numpy()))
        for n, p in parts.items()
    }
    started, cpu = time.perf_counter(), time.process_time()
    xt, yt, gt = arrays["train"]
    xv, yv, gv = arrays["validation"]
    dtrain = lgb.Dataset(xt, label=yt, group=gt, feature_name=features)
    dvalid = lgb.Dataset(xv, label=yv, group=gv, reference=dtrain)
    booster = lgb.train(params, dtrain, num_boost_round=rounds, valid_sets=[dvalid], valid_names=["valid"])
    return booster, time.perf_counter() - started, time.process_time() - cpu


def run(rows: int, per_query: int, rounds: int | None, seed: int, repeat: int = 1) -> dict[str, Any]:
    from rankops import ranker_model, registry
    from rankops.config import load_settings
    from rankops.features import registry as features
    from rankops.sagemaker_contract import layout_training, training_paths
    from rankops.training.jobs import training
    from rankops.training.train import lambdarank_params, with_hyperparameters

    plain_s: list[float] = []
    ours_s: list[float] = []
    plain_cpu: list[float] = []
    ours_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rankops-bench-") as tmp:
        base = Path(tmp)
        frame = make_frame(rows, per_query, seed, features.model_features())
        folders = write_channels(frame, base)
        hp = {"num_boost_round": rounds} if rounds else {}
        for attempt in range(repeat):  # alternate who goes first; a fresh registry each time
            settings = load_settings(env="local", home=base / f"home-{attempt}", environ={})
            cfg = with_hyperparameters(settings.training, hp)
            registry.connect(settings)  # create the sqlite schema before the clock starts
            params = {
                **lambdarank_params(cfg, settings.evaluation.ndcg_k),
                "early_stopping_round": cfg.early_stopping_rounds,
            }
            env = layout_training(base / f"job-{attempt}", folders, hp)
            for side in ("plain", "ours") if attempt % 2 == 0 else ("ours", "plain"):
                if side == "plain":
                    plain, seconds, cpu = plain_lightgbm(frame, folders, params, cfg.num_boost_round)
                    plain_s.append(seconds)
                    plain_cpu.append(cpu)
                    continue
                started, cpu = time.perf_counter(), time.process_time()
                outcome = training.run(
                    settings, training_paths(env, base / f"job-{attempt}"), hp, code_version="benchmark"
                )
                ours_s.append(time.perf_counter() - started)
                ours_cpu.append(time.process_time() - cpu)
        valid = pd.read_parquet(folders["validation"] / "data.parquet")
        x = valid[features.model_features()].to_numpy(np.float64)
        ours = ranker_model.load_model(outcome.model_dir)
        same = bool(np.array_equal(np.asarray(ours.predict(x)), np.asarray(plain.predict(x))))
        records = [Path(outcome.model_dir, *sub, "compiled", "compiled.json") for sub in ((), ("fallback",))]
        compiled = [json.loads(r.read_text()) for r in records if r.is_file()]
    fallback_s = outcome.seconds.get("train_fallback", 0.0)
    compile_s = outcome.seconds.get("compile", 0.0)
    return {
        "benchmark": "training_overhead",
        "rows": len(frame),
        "rows_per_query": per_query,
        "features": len(features.model_features()),
        "num_boost_round": cfg.num_boost_round,
        "repeat": repeat,
        "best_iteration": {"plain": plain.best_iteration, "ours": outcome.best_iteration},
        "same_model": same,
        "seconds": {
            "plain_lightgbm": round(min(plain_s), 3),
            "training_job": round(min(ours_s), 3),
            "all_plain_lightgbm": [round(t, 3) for t in plain_s],
            "all_training_job": [round(t, 3) for t in ours_s],
            "job_phases_last": outcome.seconds,
            "cpu_plain_lightgbm": round(min(plain_cpu), 3),
            "cpu_training_job": round(min(ours_cpu), 3),
        },
        "ratio": round(min(ours_s) / min(plain_s), 3),
        "ratio_without_fallback": round((min(ours_s) - fallback_s) / min(plain_s), 3),
        "ratio_cpu": round(min(ours_cpu) / min(plain_cpu), 3),
        "compile": {
            "seconds": compile_s,
            "share_of_job": round(compile_s / min(ours_s), 3),
            "models": [{k: c[k] for k in COMPILE_FIELDS} for c in compiled],
        },
        "target_ratio": 1.2,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }


def main(argv: list[str] | None = None) -> int:
    # Waiting OpenMP threads sleep instead of spinning: on a shared machine spinning threads make
    # LightGBM several times slower and the timings mostly noise. Applies to both sides alike; it
    # must be set before LightGBM's OpenMP runtime starts (a benchmark process, not job code).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rows-per-query", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=None, help="boosting rounds (default: training.num_boost_round)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2, help="measurements per side (the minimum is reported)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rows, args.rows_per_query, args.rounds, args.seed, args.repeat), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
