"""Off-policy evaluation on the lake's feedback log, end to end: the real server answers a
uniform-random slice and logs it, users click by a known click model, and the logged slates
are re-scored with registered model versions (`rankops ope --policy ...`, the off-policy gate)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from rankops import registry
from rankops.cli import main
from rankops.feedback import store
from rankops.lake import Lake
from rankops.ope import feedback_eval, gate
from rankops.serving.server import build_server
from tests import serving_helpers as h
from tests.conftest import make_settings

REQUESTS, SLATE = 1200, 8
EXAMINATION = 1.0 / np.arange(1, SLATE + 1) ** 0.8


def relevance(features: dict[str, list[float]]) -> np.ndarray:
    """The hidden truth: the utility the serving helpers' labels come from."""
    utility = 8 * np.array(features["ctr_7d"]) + np.array(features["image_quality_score"])
    utility = utility + 1.5 * np.array(features["category_match"])
    return 1 / (1 + np.exp(-2 * (utility - 2.5)))


@pytest.fixture(scope="module")
def logged(serving_home, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A feedback log of uniformly random answers with clicks and contacts drawn from the truth."""
    home = tmp_path_factory.mktemp("ope") / "home"
    h.copy_home(serving_home.settings.home, home)
    # a generous latency budget: on a loaded machine a skipped store read would degrade answers
    settings = make_settings(home, exploration={"uniform_share": 1.0}, serving={"latency_budget_ms": 600_000})
    server = build_server(settings)
    assert server.ranker.feedback is not None
    server.ranker.feedback.start()
    client = h.AsgiClient(server.app)
    rng = np.random.default_rng(3)
    try:
        for r in range(REQUESTS):
            # the request time is the catalogue's fixed NOW, so request-time features (days since an
            # item's creation) and with them every model's rankings do not depend on the wall clock;
            # the log's own ``ts`` is when the answer was given, inside the gate's window
            start = int(rng.integers(0, 300 - SLATE))
            body = h.request(SLATE, f"u-{r}", h.CATEGORIES[r % 3], start=start, ts=h.NOW)
            assert client.post("/invocations", json={**body, "request_id": f"r-{r}"}).json()["policy"] == "uniform"
    finally:
        client.close()
        server.ranker.feedback.stop()
        server.ranker.lookup.close()
    lake = Lake.from_settings(settings)
    events = []
    for row in store.read(lake).to_pylist():
        p_click = EXAMINATION * relevance(json.loads(row["features"]))
        for pos in np.flatnonzero(rng.random(SLATE) < p_click):
            events.append((row["request_id"], int(pos) + 1, "click", row["ts"]))
            if rng.random() < 0.3:
                events.append((row["request_id"], int(pos) + 1, "contact", row["ts"]))
    outcomes = pd.DataFrame(events, columns=["request_id", "position", "outcome", "ts"]).assign(value=0.0)
    store.write_outcomes(lake, outcomes)
    return settings, serving_home.versions


def true_clicks(settings, version: str) -> float:  # type: ignore[no-untyped-def]
    """The version's exact expected clicks per request on the logged requests, under the truth."""
    booster = registry.load_version_booster(settings, version)
    total = 0.0
    for row in store.read(Lake.from_settings(settings)).to_pylist():
        features = json.loads(row["features"])
        scores = booster.predict(np.column_stack([features[n] for n in booster.feature_name()]))
        total += float((EXAMINATION * relevance(features)[np.argsort(-scores, kind="stable")]).sum())
    return total / REQUESTS


def test_rankops_ope_policy_estimates_clicks_and_contacts_of_a_version(logged, capsys) -> None:  # type: ignore[no-untyped-def]
    settings, versions = logged
    args = ["--home", str(settings.home), "ope", "--bootstrap", "200"]
    assert main([*args, "--policy", "champion"]) == 0
    champion = json.loads(capsys.readouterr().out)
    assert main([*args, "--policy", versions["bad"], "--logging", "uniform"]) == 0
    bad = json.loads(capsys.readouterr().out)
    assert champion["version"] == versions["good"] and champion["logged_answers"] == {"uniform": REQUESTS}
    for report, version in ((champion, versions["good"]), (bad, versions["bad"])):
        truth = true_clicks(settings, version)
        snips = {e["estimator"]: e for e in report["click"]["estimates"]}["snips"]
        low, high = snips["ci95"]
        assert low <= truth <= high, f"v{version}: {truth:.4f} outside [{low:.4f}, {high:.4f}]"
        contacts = {e["estimator"]: e for e in report["contact"]["estimates"]}["snips"]["value"]
        assert 0 < contacts < snips["value"]
    assert {e["estimator"]: e for e in champion["click"]["estimates"]}["snips"]["ci95"][0] > bad["click"]["estimates"][
        1
    ]["ci95"][1]


def gate_record(settings, version: str, champion: str) -> dict:  # type: ignore[no-untyped-def]
    lake = Lake.from_settings(settings)
    uri = lake.uri("artifacts", "gate", "test", f"v{version}", "record.json")
    lake.write_json(uri, {"decision": "promote"})
    return {"version": version, "champion_version": champion, "gate_uri": uri, "promote": True}


def test_the_off_policy_gate_stops_a_worse_challenger_and_not_a_comparable_one(logged) -> None:  # type: ignore[no-untyped-def]
    settings, versions = logged
    lake, now = Lake.from_settings(settings), datetime.now(UTC) + timedelta(minutes=1)
    worse = gate.run(settings, lake, gate_record(settings, versions["bad"], versions["good"]), now, n_boot=200)
    assert worse["decision"] == "stop" and worse["stop"], worse["reasons"]
    assert worse["estimate"]["lift_ci95"][1] < 0 and "lower bound is below" in worse["reasons"][0]
    recorded = lake.read_json(gate_record(settings, versions["bad"], versions["good"])["gate_uri"])
    assert recorded == {"decision": "promote"}, "a fresh record; the run below records into its own"
    evaluation = gate_record(settings, versions["challenger"], versions["good"])
    good = gate.run(settings, lake, evaluation, now, n_boot=200)
    assert good["decision"] in ("pass", "inconclusive") and not good["stop"], good["reasons"]
    assert good["estimate"]["lift_ci95"][0] < 0 < good["estimate"]["lift_ci95"][1], "no clear difference"
    recorded = lake.read_json(evaluation["gate_uri"])["offpolicy"]
    assert recorded["decision"] == good["decision"] and recorded["estimate"] == good["estimate"], "in the gate record"
    same = gate.run(settings, lake, gate_record(settings, versions["good"], versions["bad"]), now, n_boot=200)
    assert same["decision"] == "pass" and same["estimate"]["lift_ci95"][0] > 0, "better than the inverted model"


def test_too_few_logged_answers_or_no_champion_is_inconclusive(logged) -> None:  # type: ignore[no-untyped-def]
    settings, versions = logged
    lake, now = Lake.from_settings(settings), datetime.now(UTC) + timedelta(minutes=1)
    strict = make_settings(settings.home, gate={"offpolicy_min_requests": REQUESTS + 1})
    few = gate.run(strict, lake, gate_record(settings, versions["bad"], versions["good"]), now, n_boot=50)
    assert few["decision"] == "inconclusive" and f"{REQUESTS} logged answers" in few["reasons"][0]
    first = gate.run(settings, lake, {"version": versions["bad"], "champion_version": None}, now, n_boot=50)
    assert first["decision"] == "inconclusive" and not first["stop"]
    explored = gate.run(
        make_settings(settings.home, gate={"offpolicy_policies": '["explore"]'}),
        lake,
        gate_record(settings, versions["bad"], versions["good"]),
        now,
        n_boot=50,
    )
    assert explored["decision"] == "inconclusive" and "no logged answers by policy explore" in explored["reasons"][0]


def test_a_model_reading_a_feature_the_log_lacks_is_named(logged) -> None:  # type: ignore[no-untyped-def]
    settings, _ = logged
    slates = feedback_eval.load(Lake.from_settings(settings))
    slates.features.pop("ctr_7d")
    booster = h.tiny_booster(0)
    with pytest.raises(Exception, match="reads feature 'ctr_7d', which the feedback log does not record"):
        feedback_eval.score(slates, booster, "9")


def shuffled_booster(seed: int = 5):  # type: ignore[no-untyped-def]
    """A ranker trained on shuffled labels: it learned nothing, and would lose clicks online."""
    import lightgbm as lgb

    frame, label, groups = h.model_frame(2000, seed)
    label = np.random.default_rng(seed).permutation(label)
    params = {"objective": "lambdarank", "num_leaves": 7, "min_data_in_leaf": 10, "verbosity": -1, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(frame.to_numpy(), label, group=groups, feature_name=list(frame.columns)), 20)


def test_a_local_pipeline_run_stops_a_shuffled_label_challenger_at_the_off_policy_gate(logged) -> None:  # type: ignore[no-untyped-def]
    """The deployed definition, run by the local runner from ``OffPolicy`` (``--from``): the real
    job in a subprocess, the gate Lambda's handler, the Choice, the reject path."""
    from rankops.pipeline import runner
    from rankops.pipeline.local import run_local

    settings, versions = logged
    shuffled = h.register(settings, shuffled_booster())
    lake, execution = Lake.from_settings(settings), "offpolicy-test"
    evaluation = gate_record(settings, shuffled, versions["good"])
    uri = lake.uri("artifacts", "pipeline", execution, "evaluation", "evaluation", "evaluation.json")
    lake.write_json(uri, evaluation)
    run = {"snapshot": "latest", "reason": "test", "refresh_features": False, "overrides": {}, "env": "local",
           "job_prefix": "rankops-local", "canary_steps": [1.0], "soak_seconds": 0}  # fmt: skip
    gate_result = {"version": shuffled, "champion_version": versions["good"], "reasons": []}
    state_input = {"execution": execution, "job_id": "0ff1c1e5", "run": run, "approval_required": "false",
                   "gate": {"result": gate_result}}  # fmt: skip
    entered = {"type": "OffPolicyStateEntered", "timestamp": 0.0,
               "stateEnteredEventDetails": {"name": "OffPolicy", "input": json.dumps(state_input)}}  # fmt: skip
    runner.save(
        settings.home, runner.ExecutionRecord("0-saved", "FAILED", 0, 0, {}, None, None, None, events=[entered])
    )

    record = run_local(settings, {}, start="OffPolicy", timeout_s=1200)
    names = [s.name for s in record.states]
    assert record.status == "SUCCEEDED", (record.error, record.cause)
    assert names == ["OffPolicy", "OffPolicyGate", "OffPolicyOk?", "OffPolicyRejected", "NotPromoted"]
    offpolicy = lake.read_json(evaluation["gate_uri"])["offpolicy"]
    assert offpolicy["decision"] == "stop" and offpolicy["estimate"]["lift_ci95"][1] < 0, offpolicy["reasons"]
    assert registry.alias_version(settings, registry.CHALLENGER) is None, "nothing registered as challenger"


def test_the_guard_report_shows_the_catalogue_narrowing_and_judges_on_the_uniform_slice(logged, capsys) -> None:  # type: ignore[no-untyped-def]
    """Three releases whose deterministic answers put fewer and fewer distinct items on top (a
    generated log), beside the server's uniform slice."""
    from rankops.feedback.record import to_table, validate

    settings, versions = logged
    rng, ts = np.random.default_rng(0), datetime.now(UTC)
    records = []
    for version, pool in (("1", 200), ("2", 60), ("3", 15)):  # the top positions draw from a shrinking pool
        for r in range(150):
            top = list(rng.choice(pool, 10, replace=False))
            rest = [k for k in rng.choice(200, 30, replace=False) if k not in top][:10]
            items = [f"i-{k}" for k in top + rest]
            records.append(validate({"request_id": f"g{version}-{r}", "ts": ts, "user_id": f"u-{r}", "context": "{}",
                                     "items": items, "scores": [0.0] * len(items), "propensities": None,
                                     "variant": "champion", "model_version": version, "fallback_level": "champion",
                                     "policy": "deterministic", "features": None}))  # fmt: skip
    lake = Lake.from_settings(settings)
    store.write(lake, records)
    assert to_table(records).num_rows == 450

    assert main(["--home", str(settings.home), "ope", "--guard", "--releases", "3", "--bootstrap", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    releases = {r["version"]: r for r in report["releases"]}
    assert list(releases) == ["1", "2", "3"], "the last three versions that answered, oldest first"
    coverage = [releases[v]["coverage"] for v in ("1", "2", "3")]
    gini_ = [releases[v]["gini"] for v in ("1", "2", "3")]
    assert coverage[0] > coverage[1] > coverage[2] and gini_[0] < gini_[1] < gini_[2]
    assert releases["3"]["shown_in_top"] == 15
    assert report["narrowing"]["coverage_change"] < -0.5 and report["narrowing"]["to_version"] == "3"
    champion = report["unbiased"]["champion"]
    assert champion["version"] == versions["good"] and champion["uniform_answers"] == REQUESTS
    assert champion["clicks_per_request"]["estimator"] == "snips"
