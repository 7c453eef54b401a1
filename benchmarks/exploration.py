"""Exploration costs: the extra latency of a randomised answer and the clicks it gives up.

    python -m benchmarks.exploration                      # 30-item slates, top_k 4..6, share 5%

Latency: per-request time of ``exploration.sample`` (Plackett-Luce over the top k with exact
marginals) against its peer ``exploration.deterministic`` (the routed model's own order,
propensity 1.0) on the same scores, as the minimum over ``--repeat`` rounds of the mean over
``--requests`` calls (process CPU time too, steadier on a shared machine). Clicks: on the
simulation world of ``rankops.ope.simulation`` (true click model known), the expected clicks
per request of the deterministic ranking by the logging scores and of its Plackett-Luce
randomisation at each temperature; the cost at ``--share`` is ``share * (det - explored)``.
Serving: the server's own step (``rankops.serving.exploration.Explorer.arrange`` on a parsed
request, with the environment's ``[exploration]`` settings) per policy, against its
``deterministic`` peer: the extra latency an explored or uniform answer adds to a request.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from rankops.config import get_settings
from rankops.ope import exploration, simulation
from rankops.serving.exploration import Explorer
from rankops.serving.schema import RankRequest


def per_call(fn: Callable[[], object], requests: int, repeat: int) -> dict[str, float]:
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(requests):
            fn()
        wall.append((time.perf_counter() - w0) / requests)
        cpu.append((time.process_time() - c0) / requests)
    return {"wall_us": round(min(wall) * 1e6, 1), "cpu_us": round(min(cpu) * 1e6, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slate", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--uniform-share", type=float, default=0.01)
    parser.add_argument("--env", default="prod", help="whose [exploration] settings the serving step uses")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    scores = rng.normal(size=args.slate)
    latency: dict[str, Any] = {
        "deterministic": per_call(lambda: exploration.deterministic(scores), args.requests, args.repeat)
    }
    for k in (4, 5, 6):
        latency[f"plackett_luce_top{k}"] = per_call(
            lambda k=k: exploration.sample(scores, 1.0, k, rng), args.requests, args.repeat
        )
    cfg = get_settings(args.env).exploration
    explorer = Explorer.from_config(cfg, "bench")
    request = RankRequest("u-1", [f"i-{k}" for k in range(args.slate)], {"category": "toys"})
    serving: dict[str, Any] = {"env": args.env, "top_k": cfg.top_k, "temperature": cfg.temperature}
    for policy in ("deterministic", "explore", "uniform"):
        serving[policy] = per_call(partial(explorer.arrange, request, scores, policy), args.requests, args.repeat)
    for policy in ("explore", "uniform"):
        serving[f"{policy}_extra_us"] = round(serving[policy]["wall_us"] - serving["deterministic"]["wall_us"], 1)
    world = simulation.world(events=30_000, k=5, seed=7)
    order = np.argsort(-world.logging_score, axis=1)
    det = np.zeros(world.click.shape)
    n, k = world.item.shape
    det[np.repeat(np.arange(n), k), order.ravel(), np.tile(np.arange(k), n)] = 1.0
    v_det = simulation.true_value(world, det)
    clicks: dict[str, Any] = {"deterministic": round(v_det, 4)}
    for temperature in (0.5, 1.0, 2.0):
        v = simulation.true_value(world, exploration.marginals(world.logging_score, temperature))
        clicks[f"plackett_luce_T{temperature}"] = {
            "clicks_per_request": round(v, 4),
            "relative_loss_when_explored": round((v_det - v) / v_det, 4),
            f"ctr_given_up_at_share_{args.share}": round(args.share * (v_det - v) / v_det, 5),
        }
    v_uni = simulation.true_value(world, np.full(world.click.shape, 1.0 / k))
    clicks["uniform"] = {
        "clicks_per_request": round(v_uni, 4),
        "relative_loss_when_explored": round((v_det - v_uni) / v_det, 4),
        f"ctr_given_up_at_share_{args.uniform_share}": round(args.uniform_share * (v_det - v_uni) / v_det, 5),
    }
    report = {"slate": args.slate, "latency_per_request": latency, "serving_arrange": serving, "clicks_top5": clicks}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
