"""Exploration in the real server: sticky per-user policies, exact logged propensities, never
for a request that forces a variant, and the feedback log records policy, propensities and the
features the answer was scored on."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from rankops.feedback import store
from rankops.lake import Lake
from rankops.ope.exploration import marginals
from rankops.serving.invocations import TARGET_HEADER
from rankops.serving.server import build_server
from tests import serving_helpers as h
from tests.conftest import make_settings

TOP_K, TEMPERATURE = 3, 0.5


def test_sticky_policies_with_exact_propensities_logged(serving_copy) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        serving_copy.settings.home,
        exploration={"share": 0.4, "uniform_share": 0.2, "top_k": TOP_K, "temperature": TEMPERATURE},
        serving={"latency_budget_ms": 600_000},  # a loaded machine must not degrade answers to the fallback
    )
    server = build_server(settings)
    feedback = server.ranker.feedback
    assert feedback is not None
    feedback.start()
    client = h.AsgiClient(server.app)
    answers: dict[str, dict] = {}
    try:
        for u in range(150):
            body = {**h.request(6, f"u-{u}"), "request_id": f"r-{u}"}
            first = client.post("/invocations", json=body).json()
            again = client.post("/invocations", json={**body, "request_id": f"r-{u}-again"}).json()
            assert again["policy"] == first["policy"] and again["ranking"] == first["ranking"], "sticky per user"
            answers[f"r-{u}"] = first
        forced = [
            client.post("/invocations", json=h.request(6, f"u-{u}"), headers={TARGET_HEADER: "champion"}).json()
            for u in range(40)
        ]
    finally:
        client.close()
        feedback.stop()
        server.ranker.lookup.close()

    policies = Counter(a["policy"] for a in answers.values())
    assert set(policies) == {"deterministic", "explore", "uniform"}
    assert 0.2 < policies["explore"] / 150 < 0.6 and 0.08 < policies["uniform"] / 150 < 0.35
    assert {a["policy"] for a in forced} == {"deterministic"}, "a forced variant is never randomised"
    reordered = 0
    for answer in answers.values():
        scores = np.array([r["score"] for r in answer["ranking"]])
        p = np.array(answer["propensities"])
        if answer["policy"] == "deterministic":
            assert (p == 1.0).all() and (np.diff(scores) <= 0).all()
        elif answer["policy"] == "uniform":
            assert np.allclose(p, 1 / 6)
            reordered += int((np.diff(scores) > 0).any())
        else:  # Plackett-Luce over the top 3: exact marginals, the rest in place with propensity 1
            top = np.sort(scores[:TOP_K])[::-1]
            slot = [int(np.flatnonzero(top == s)[0]) for s in scores[:TOP_K]]
            exact = marginals(top[None, :], TEMPERATURE)[0]
            assert np.allclose(p[:TOP_K], [exact[slot[j], j] for j in range(TOP_K)])
            assert (p[TOP_K:] == 1.0).all() and (np.diff(scores[TOP_K:]) <= 0).all()
            reordered += int((np.diff(scores[:TOP_K]) > 0).any())
    assert reordered > 0, "some randomised answers differ from the model's order"

    table = store.read(Lake.from_settings(settings)).to_pylist()
    logged = {r["request_id"]: r for r in table}
    stored = h.item_features(300)[:, 0]  # ctr_7d, the first stored item feature
    for rid, answer in answers.items():
        row = logged[rid]
        assert row["policy"] == answer["policy"] and row["propensities"] == answer["propensities"]
        assert row["items"] == [r["item_id"] for r in answer["ranking"]]
        if row["policy"] == "deterministic":  # as in data capture: off-policy evaluation reads no others
            assert row["features"] is None, "only randomised answers carry their features"
            continue
        shown = json.loads(row["features"])
        expected = [stored[int(item.split("-")[1])] for item in row["items"]]
        assert np.allclose(shown["ctr_7d"], expected), "features logged in the order shown"
