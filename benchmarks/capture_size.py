"""What ``logged_features`` costs: response bytes and encoding time of a randomised answer from a
SageMaker container (which carries the features it was scored on, for off-policy evaluation from
data capture) against its deterministic peer (which does not), on the same slate.

    python -m benchmarks.capture_size                    # 30-item slates, prod and dev shares

The response is built as :meth:`rankops.serving.core.Ranker._respond` builds it (every feature
column the server computes: stored features of item, seller and category, on-demand ones) and
encoded by the server's encoder (:func:`rankops.serving.schema.encode`). Reported: bytes per
answer for each policy, the extra per randomised answer, the average extra bytes per answer at
each environment's exploration shares, and the encoding time (minimum over ``--repeat`` rounds
of the mean over ``--requests`` calls).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import numpy as np

from rankops.config import load_settings
from rankops.features import on_demand, samples
from rankops.features import registry as features
from rankops.serving.exploration import Explorer
from rankops.serving.schema import encode

NOW = 1_800_000_000.0
CATEGORIES = ("toys", "vehicles", "furniture")


def columns(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Every column the server scores a slate of ``count`` candidates on."""
    out: dict[str, np.ndarray] = {}
    for entity in features.stored_entities():
        values = samples.stored_values(entity, count, seed, NOW, CATEGORIES if entity == "item" else (None,))
        out.update({n: values[:, i] for i, n in enumerate(features.stored_names(entity))})
    out.update(on_demand.compute(out, NOW, on_demand.category_code("toys")))
    return out


def response(count: int, policy: str, cols: dict[str, np.ndarray], explorer: Explorer) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=count)
    order = np.argsort(-scores) if policy == "deterministic" else rng.permutation(count)
    doc: dict[str, Any] = {
        "ranking": [{"item_id": f"i-{1000 + int(i)}", "score": float(scores[i])} for i in order],
        "model_version": "7",
        "variant": "champion",
        "fallback": None,
        "request_id": uuid.uuid4().hex,
        "propensities": [1.0 if policy == "deterministic" else 1.0 / count] * count,
        "policy": policy,
    }
    logged = explorer.logged_features(policy, cols, order)
    if logged is not None:
        doc["logged_features"] = logged
    return doc


def encode_us(doc: dict[str, Any], requests: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(requests):
            encode(doc)
        best = min(best, (time.perf_counter() - start) / requests)
    return round(best * 1e6, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    cols = columns(args.candidates)
    container = Explorer(log_features=True)
    docs = {p: response(args.candidates, p, cols, container) for p in ("deterministic", "uniform")}
    size = {p: len(encode(d)) for p, d in docs.items()}
    extra = size["uniform"] - size["deterministic"]
    shares = {}
    for env in ("dev", "staging", "prod"):
        cfg = load_settings(env=env).exploration
        shares[env] = {"randomised_share": round(cfg.share + cfg.uniform_share, 4),
                       "extra_bytes_per_answer": round((cfg.share + cfg.uniform_share) * extra, 1)}  # fmt: skip
    report = {
        "candidates": args.candidates,
        "feature_columns": len(cols),
        "response_bytes": size,
        "logged_features_bytes": extra,
        "encode_us": {p: encode_us(d, args.requests, args.repeat) for p, d in docs.items()},
        "by_environment": shares,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
