"""The local feedback log's CPU per answer (rankops.feedback), JSON on stdout.

Under the serving benchmark's load the log's worker thread is about a fifth of the server's
CPU (docs/scoring.md). This measures its two steps alone, without a server, so their cost can
be compared across branches without the noise of a shared machine: turning answers into
records (:func:`rankops.feedback.record.from_answer`: the shown items' features as JSON, the
checks) and committing them to a local lake (:func:`rankops.feedback.store.write`: Arrow and
Parquet). The answers are shaped like the serving benchmark's (100 candidates), in the two kinds
the server logs: deterministic answers without features (most answers; the top-level figures) and
randomised (``uniform``) answers with every stored and on-demand feature the server scored (the
serving benchmark's item values, some missing; ``randomised``).
Best of ``--rounds`` rounds, CPU seconds of this process.

    python -m benchmarks.feedback_log            # 2,000 answers x 5 rounds
    python -m benchmarks.feedback_log --quick    # 200 answers x 2 rounds
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any

import numpy as np

NOW = 1_800_000_000.0
CATEGORIES = ("toys", "vehicles", "furniture", "fashion", "garden")


Logged = list[tuple[Any, dict[str, Any], "dict[str, np.ndarray] | None"]]


def answers(count: int, candidates: int, seed: int, randomised: bool = False) -> Logged:
    """``count`` distinct (request, response, logged feature columns) as the server logs them: a
    deterministic answer logs no features; a randomised (uniform) one logs what it was scored on."""
    from rankops.features import on_demand, registry, samples
    from rankops.serving.request_ids import new_request_id
    from rankops.serving.schema import RankRequest

    rng = np.random.default_rng(seed)
    # the serving benchmark's item values (benchmarks.serving_setup.item_features): some features
    # hold missing values (NaN), logged as such
    stored = samples.stored_values("item", count * candidates, seed, NOW, CATEGORIES)
    out = []
    for k in range(count):
        rows = stored[k * candidates : (k + 1) * candidates]
        columns = {f.name: rows[:, i] for i, f in enumerate(registry.stored_features("item"))}
        for entity in registry.joined_entities("item"):
            columns.update({f.name: np.full(candidates, f.default) for f in registry.stored_features(entity)})
        columns.update(on_demand.compute(columns, NOW, on_demand.category_code("toys")))
        request = RankRequest(f"u-{k}", [f"i-{k}-{j}" for j in range(candidates)], {"category": "toys"}, NOW)
        scores = rng.normal(size=candidates)
        order = np.argsort(-scores, kind="stable")
        shown = zip(order.tolist(), scores[order].tolist(), strict=True)
        response = {
            "ranking": [{"item_id": request.candidates[i], "score": s} for i, s in shown],
            "model_version": "1",
            "variant": "champion",
            "fallback": None,
            "request_id": new_request_id(),
            "propensities": [1.0 / candidates if randomised else 1.0] * candidates,
            "policy": "uniform" if randomised else "deterministic",
        }
        out.append((request, response, columns if randomised else None))
    return out


def one_round(logged: Logged) -> tuple[float, float]:
    """CPU microseconds per answer: (records built, records written)."""
    from rankops.feedback import record, store
    from rankops.lake import Lake

    with tempfile.TemporaryDirectory(prefix="rankops-bench-feedback-") as tmp:
        lake = Lake({zone: f"{tmp}/{zone}" for zone in ("raw", "curated", "features", "artifacts")})
        started = time.process_time()
        records = [record.from_answer(r, a, "champion", NOW + k, f) for k, (r, a, f) in enumerate(logged)]
        built = time.process_time()
        store.write(lake, records)
        written = time.process_time()
    n = len(logged)
    return (built - started) / n * 1e6, (written - built) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 answers x 2 rounds")
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.quick:
        args.answers, args.rounds = 200, 2
    figures = {}
    for randomised in (False, True):
        logged = answers(args.answers, args.candidates, seed=3, randomised=randomised)
        one_round(logged[: min(100, len(logged))])  # warm-up: imports, first Parquet write
        rounds = [one_round(logged) for _ in range(args.rounds)]
        build, write = min(r[0] for r in rounds), min(r[1] for r in rounds)
        figures[randomised] = {
            "features_per_answer": len(logged[0][2] or {}),
            "record_cpu_us": round(build, 1),
            "write_cpu_us": round(write, 1),
            "total_cpu_us": round(build + write, 1),
            "rounds": [[round(a, 1), round(b, 1)] for a, b in rounds],
        }
    report = {"config": vars(args), **figures[False], "randomised": figures[True]}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
