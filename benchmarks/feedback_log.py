"""The local feedback log's CPU per answer (rankops.feedback), JSON on stdout.

The server logs an answer by appending its request and response bodies to a queue; a worker
thread writes them as SageMaker data capture lines; the feedback records are built when the log
is read (docs/feedback.md). This measures each step alone, without a server, so their cost can
be compared across branches without the noise of a shared machine:

* ``submit_cpu_us``: the request thread's part (:meth:`FeedbackLog.submit`);
* ``worker_cpu_us``: the worker's part (capture lines, one atomic file per cohort and hour);
* ``read_cpu_us``: building the records when they are read (:func:`rankops.feedback.store.read`:
  parsing, the checks, Arrow), which no serving process pays.

The answers are shaped like the serving benchmark's (100 candidates), in the two kinds the server
gives: deterministic answers (most answers; the top-level figures) and randomised (``uniform``)
answers that carry every stored and on-demand feature they were scored on (the serving
benchmark's item values, some missing; ``randomised``). Best of ``--rounds`` rounds, CPU seconds
of this process.

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


Logged = list[tuple[bytes, dict[str, Any]]]  # (request body, response)


def answers(count: int, candidates: int, seed: int, randomised: bool = False) -> Logged:
    """``count`` distinct (request body, response) as the server gives them: a randomised
    (uniform) response carries what it was scored on (``logged_features``), a deterministic one not."""
    import orjson

    from rankops.features import on_demand, registry, samples
    from rankops.serving.request_ids import new_request_id

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
        items = [f"i-{k}-{j}" for j in range(candidates)]
        body = orjson.dumps({"user_id": f"u-{k}", "candidates": items, "context": {"category": "toys"}, "ts": NOW})
        scores = rng.normal(size=candidates)
        order = np.argsort(-scores, kind="stable")
        shown = zip(order.tolist(), scores[order].tolist(), strict=True)
        response: dict[str, Any] = {
            "ranking": [{"item_id": items[i], "score": s} for i, s in shown],
            "model_version": "1",
            "variant": "champion",
            "fallback": None,
            "request_id": new_request_id(),
            "propensities": [1.0 / candidates if randomised else 1.0] * candidates,
            "policy": "uniform" if randomised else "deterministic",
        }
        if randomised:
            response["logged_features"] = {name: np.asarray(c, dtype=np.float64)[order] for name, c in columns.items()}
        out.append((body, response))
    return out


def one_round(logged: Logged) -> tuple[float, float, float]:
    """CPU microseconds per answer: (submitted, written by the worker, read back as records)."""
    from rankops.feedback import store
    from rankops.feedback.log import FeedbackLog
    from rankops.lake import Lake
    from rankops.monitoring.metrics import ServingMetrics
    from rankops.serving.schema import encode

    bodies = [(body, encode(response)) for body, response in logged]  # the server has both as bytes
    n = len(logged)
    with tempfile.TemporaryDirectory(prefix="rankops-bench-feedback-") as tmp:
        lake = Lake({zone: f"{tmp}/{zone}" for zone in ("raw", "curated", "features", "artifacts")})
        feedback = FeedbackLog(lake, ServingMetrics(), capacity=n, flush_rows=n, flush_s=3600)
        times = iter(range(n))
        feedback.clock = lambda: NOW + next(times)
        started = time.process_time()
        for body, answer in bodies:
            feedback.submit(body, answer, "champion")
        submitted = time.process_time()
        feedback.start()
        feedback.stop()  # the worker writes everything queued; this thread waits without CPU
        written = time.process_time()
        rows = store.read(lake).num_rows
        read = time.process_time()
    if rows != n:
        raise RuntimeError(f"{n} answers logged, {rows} read back")
    return (submitted - started) / n * 1e6, (written - submitted) / n * 1e6, (read - written) / n * 1e6


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
        one_round(logged[: min(100, len(logged))])  # warm-up: imports, first file and read
        rounds = [one_round(logged) for _ in range(args.rounds)]
        submit, worker, read = (min(r[i] for r in rounds) for i in range(3))
        figures[randomised] = {
            "features_per_answer": len(logged[0][1].get("logged_features", {})),
            "submit_cpu_us": round(submit, 2),
            "worker_cpu_us": round(worker, 1),
            "serving_process_cpu_us": round(submit + worker, 1),  # what a server pays per answer
            "read_cpu_us": round(read, 1),  # paid by whoever reads the log, not by the server
            "rounds": [[round(a, 2), round(b, 1), round(c, 1)] for a, b, c in rounds],
        }
    report = {"config": vars(args), **figures[False], "randomised": figures[True]}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
