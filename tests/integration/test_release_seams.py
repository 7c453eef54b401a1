"""The release seams as deployed: the pipeline's release states, taken from the synthesized
template's definition (substitutions filled), run by moto's Step Functions interpreter against the
real release Lambda handler with the template's environment, SageMaker and CloudWatch in moto."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rankops.pipeline.engine import MOTO_CONFIG, installed
from tests.deployed import (
    REGION,
    UPDATES,
    botocore_instance_types,
    deployed_definition,
    deployed_world,
    lambda_arn,
    lambda_environment,
    moto_list_models,
    moto_update_endpoint,
    only_resource,
    run_state,
    run_states,
    with_percentiles,
)
from tests.moto_s3 import moto_s3
from tests.unit.test_pipeline_endpoint import archive

ENDPOINT = "rankops-prod-ranker"
RELEASE_HANDLER = "lambdas.release.handler.handler"


@pytest.fixture(scope="module")
def prod(synthesized_env: Any) -> Any:
    return synthesized_env("prod")


@pytest.fixture
def world(prod: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto with the environment's buckets, keys and roles built from the synthesized templates, and
    the release Lambda deployed as the template says (handler, environment)."""
    from moto.cloudwatch import models
    from moto.sagemaker.models import FakeEndpointConfig
    from moto.sagemaker.responses import SageMakerResponse

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", moto_update_endpoint, raising=False)
    monkeypatch.setattr(FakeEndpointConfig, "validate_instance_type", botocore_instance_types)
    monkeypatch.setattr(SageMakerResponse, "list_models", moto_list_models)
    monkeypatch.setattr(models.Statistics, "get_statistics_for_type", with_percentiles())
    UPDATES.clear()
    with mock_aws(config=MOTO_CONFIG), installed({}, time_scale=0.0), contextlib.ExitStack() as stack:
        # pyarrow (the lake's outcome events, read by the canary check) reaches moto only through a
        # server; moto's state is per process, so the server sees what the mock created
        stack.enter_context(contextlib.contextmanager(moto_s3)(monkeypatch))
        deployed = deployed_world(prod)
        for key, value in lambda_environment(prod.template("pipeline"), RELEASE_HANDLER, deployed).items():
            monkeypatch.setenv(key, value)
        role = boto3.client("iam", region_name=REGION).create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
        boto3.client("lambda", region_name=REGION).create_function(
            FunctionName=lambda_arn("rankops-release").rsplit(":", 1)[1],
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler=RELEASE_HANDLER,
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        definition = deployed_definition(prod.template("pipeline"), deployed)
        subs = only_resource(prod.template("pipeline"), "AWS::StepFunctions::StateMachine")["DefinitionSubstitutions"]
        artifacts = deployed.resolve("pipeline", subs["ArtifactsBucket"])
        # the training job's model archive, which the release step checks against the gate's digests
        model_data = f"s3://{artifacts}/pipeline/exec-8/training/model.tar.gz"
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=artifacts, Key=model_data.split("/", 3)[3], Body=archive()[0]
        )
        yield {
            "definition": definition,
            "model_data": model_data,
            "sagemaker": {
                t: deployed.properties(f"AWS::SageMaker::{t}") for t in ("Model", "EndpointConfig", "Endpoint")
            },
        }


def challenger_traffic(invocations: int, errors: int, latency_ms: float, degraded: int = 0) -> None:
    """What SageMaker and the servers' answer summaries publish for the challenger during a soak."""
    cw = boto3.client("cloudwatch", region_name=REGION)
    when = datetime.now(UTC) - timedelta(seconds=30)
    variant = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "challenger"}]

    def datum(name: str, value: float, dims: list[dict[str, str]]) -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dims, "Timestamp": when, "Value": value}

    cw.put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            datum("Invocations", invocations, variant),
            datum("Invocation5XXErrors", errors, variant),
            *[datum("ModelLatency", latency_ms * 1000 * (1 + k / 100), variant) for k in range(20)],
        ],
    )
    version = [{"Name": "ModelVersion", "Value": "8"}]
    cw.put_metric_data(
        Namespace=f"rankops/{ENDPOINT}",
        MetricData=[datum("Answers", invocations, version), datum("DegradedAnswers", degraded, version)],
    )


def pipeline_state(world: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The execution state when the checks run (what Configure, Training and Gate put there)."""
    return {
        "execution": "exec-8",
        "run": {"soak_seconds": 600, "env": "prod", "canary_steps": [0.1, 0.5, 1.0]},
        "gate": {
            "result": {"version": "8", "champion_version": "7", "promote": True, "artifacts": {"files": archive()[1]}}
        },
        "training": {"model_data": world["model_data"]},
        **extra,
    }


def test_shadow_and_canary_checks_judge_the_challenger_through_the_deployed_definition(world) -> None:  # type: ignore[no-untyped-def]
    """Seam 2: the check states' payloads (rendered ASL, resolved by the interpreter) reach the real
    handler with a variant and the environment's thresholds; good traffic advances, bad rolls back."""
    states = world["definition"]["States"]
    shadow = states["ShadowCheck"]
    canary = states["Canary"]["ItemProcessor"]["States"]["CanaryCheck"]
    live_endpoint(world)
    capture_shadow(world, 150, "same", datetime.now(UTC))
    challenger_traffic(invocations=400, errors=0, latency_ms=20.0)
    passed = run_state(shadow, "ShadowCheck", pipeline_state(world))["shadow"]["result"]
    assert passed["ok"] is True and passed["action"] == "advance", passed
    assert passed["figures"]["invocations"] == 400
    item = pipeline_state(world, share=0.1)
    challenger_traffic(invocations=400, errors=40, latency_ms=20.0)  # 5% errors in the canary's window
    failed = run_state(canary, "CanaryCheck", item)["check"]["result"]
    assert failed["ok"] is False and failed["action"] == "rollback"
    assert any("5xx rate" in reason for reason in failed["reasons"]), failed["reasons"]


def live_endpoint(world: dict[str, Any]) -> dict[str, Any]:
    """The serving stack's Model, EndpointConfig and Endpoint as CloudFormation first creates them
    (one ``champion`` variant on the bootstrap model, data capture into the raw bucket)."""
    sm = boto3.client("sagemaker", region_name=REGION)
    model, config, endpoint = (world["sagemaker"][t] for t in ("Model", "EndpointConfig", "Endpoint"))
    assert endpoint["EndpointName"] == ENDPOINT and [v["VariantName"] for v in config["ProductionVariants"]] == [
        "champion"
    ]
    sm.create_model(**{k: v for k, v in model.items() if k != "Tags"})
    sm.create_endpoint_config(**{k: v for k, v in config.items() if k != "Tags"})
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=endpoint["EndpointConfigName"])
    return sm.describe_endpoint(EndpointName=ENDPOINT)


def serving() -> tuple[str, list[str]]:
    """The live endpoint config and the models behind its production variants."""
    sm = boto3.client("sagemaker", region_name=REGION)
    config = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    return config, [v["ModelName"] for v in variants]


def test_a_release_promoted_under_guardrails_rolls_back_to_what_served_before(world) -> None:  # type: ignore[no-untyped-def]
    """Seams 3 and 4 through the deployed states: Baseline records the serving config; Promote after a
    canary keeps the live variant names, so its UpdateEndpoint carries the alarm-watched blue/green
    policy; a Rollback after Promote restores the recorded config (model 7), not the live champion
    (already model 8)."""
    states = world["definition"]["States"]
    canary = states["Canary"]["ItemProcessor"]["States"]
    live_endpoint(world)
    before = serving()  # the template's config and bootstrap model
    state = pipeline_state(world)
    state = run_state(states["Baseline"], "Baseline", state)
    state = run_state(states["Shadow"], "Shadow", state)
    for share in (0.1, 1.0):
        item = {k: state[k] for k in ("execution", "run", "gate", "training")} | {"share": share}
        run_state(canary["SetCanaryShare"], "SetCanaryShare", item)
    state = run_state(states["Promote"], "Promote", state)
    promotion = UPDATES[-1]
    assert promotion["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"], "promotion is alarm-watched"
    assert state["release"]["result"]["guardrails"] is True
    config, models = serving()
    assert config == state["release"]["result"]["endpoint_config"] and before[1][0] not in models

    assert run_states(states, ["PromotedDescribe", "PromotedReady?"], state)["ended_in"] == "PromoteRegistry"

    # PromoteRegistry failed: the live champion variant already serves model 8
    state = run_state(states["Rollback"], "Rollback", state | {"failure": {"Error": "States.TaskFailed"}})
    assert serving() == before

    # An alarm during the baking period: SageMaker rolls the guarded update back by itself and the
    # endpoint is InService again, on the old config; the poll must not take that for a promotion.
    assert run_states(states, ["PromotedDescribe", "PromotedReady?"], state)["ended_in"] == "PromotedFailed"


def test_canary_users_stay_on_their_variant_as_the_share_grows(world) -> None:  # type: ignore[no-untyped-def]
    """Seam 5: each deployed PublishRouting step publishes the routing document where callers read
    it; the caller helper's TargetVariant for a user never changes back as the share grows, and it
    is the variant the local server's routing picks for the same user."""
    from rankops.release.bucketing import release_salt
    from rankops.release.routing_document import StickyInvoker
    from rankops.serving.routing import Routing

    canary = world["definition"]["States"]["Canary"]["ItemProcessor"]["States"]
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    users = [f"u-{i}" for i in range(1000)]
    seen: dict[str, str] = {}
    for share in (0.1, 0.5, 1.0):
        state = pipeline_state(world) | {"share": share}
        routing = run_state(canary["PublishRouting"], "PublishRouting", state)["routing"]["result"]
        invoker = StickyInvoker(runtime, ENDPOINT, routing["routing_uri"])  # reads the document once
        targets = {u: invoker.request({"user_id": u, "candidates": ["a"]})["TargetVariant"] for u in users}
        server = Routing(object(), object(), mode="canary", canary_share=share,  # type: ignore[arg-type]
                         salt=release_salt(os.environ["ROUTING_SALT"], "8"))  # fmt: skip
        assert all(server.route(u)[0] == targets[u] for u in users), "server and callers route alike"
        assert not [u for u, v in seen.items() if v == "challenger" and targets[u] != "challenger"]
        assert abs(sum(v == "challenger" for v in targets.values()) / len(users) - share) < 0.05
        seen = targets


def test_the_first_canary_step_names_the_champion_until_its_share_is_published(world) -> None:  # type: ignore[no-untyped-def]
    """Seam 5, the first step: the deployed SetCanaryShare adds the challenger variant at its weight,
    but sticky callers must not be routed by weights before PublishRouting (a random tenth of requests
    would reach the challenger, and those users go back to the champion once the share is out): the
    step first publishes a pinned document, every user named to the champion."""
    from rankops.release.routing_document import StickyInvoker

    states = world["definition"]["States"]
    canary = states["Canary"]["ItemProcessor"]["States"]
    live_endpoint(world)
    state = run_state(states["Shadow"], "Shadow", pipeline_state(world))
    uri = states["Shadow"]["Parameters"]["Payload"]["routing_uri"]
    item = {k: state[k] for k in ("execution", "run", "gate", "training")} | {"share": 0.1}
    run_state(canary["SetCanaryShare"], "SetCanaryShare", item)
    _, models = serving()
    assert len(models) == 2, "the canary config (champion and challenger variants) is live"
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    pinned = StickyInvoker(runtime, ENDPOINT, uri)
    assert {pinned.request({"user_id": f"u-{i}"}).get("TargetVariant") for i in range(500)} == {"champion"}
    run_state(canary["PublishRouting"], "PublishRouting", item)
    published = {
        StickyInvoker(runtime, ENDPOINT, uri).request({"user_id": f"u-{i}"})["TargetVariant"] for i in range(500)
    }
    assert published == {"champion", "challenger"}


def capture_shadow(world: dict[str, Any], requests: int, challenger_order: str, when: datetime) -> None:
    """What SageMaker's data capture writes in a shadow: each request answered by the production
    variant (champion) and, as a copy, by the shadow variant (challenger)."""
    from rankops.monitoring.data_capture import capture_key, capture_line

    s3 = boto3.client("s3", region_name=REGION)
    destination = world["sagemaker"]["EndpointConfig"]["DataCaptureConfig"]["DestinationS3Uri"]
    lines: dict[str, list[str]] = {"champion": [], "challenger": []}
    for r in range(requests):
        items = [f"i-{r}-{k}" for k in range(6)]
        body = json.dumps({"user_id": f"u-{r}", "candidates": items}).encode()
        scores = {"champion": [6.0 - k + 0.01 * r for k in range(6)]}
        scores["challenger"] = scores["champion"][::-1] if challenger_order == "reversed" else scores["champion"]
        for variant, values in scores.items():
            answer = {"ranking": [{"item_id": i, "score": s} for i, s in sorted(zip(items, values, strict=True),
                                                                                key=lambda p: -p[1])]}  # fmt: skip
            lines[variant].append(capture_line(body, json.dumps(answer).encode(), inference_time=when))
    for variant, text in lines.items():
        uri = capture_key(destination, ENDPOINT, variant, when)
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(text).encode())


def test_the_shadow_check_compares_scores_from_data_capture(world) -> None:  # type: ignore[no-untyped-def]
    """Seam 6: ShadowCheck reads both variants' data capture for the soak window, pairs the copies of
    each request and judges rank correlation and score KL; healthy traffic alone does not pass it."""
    live_endpoint(world)
    challenger_traffic(invocations=400, errors=0, latency_ms=20.0)
    shadow = world["definition"]["States"]["ShadowCheck"]
    capture_shadow(world, 150, "reversed", datetime.now(UTC) - timedelta(seconds=120))
    rejected = run_state(shadow, "ShadowCheck", pipeline_state(world))["shadow"]["result"]
    assert rejected["ok"] is False and rejected["shadow"]["requests"] == 150
    assert any("rank correlation" in reason for reason in rejected["reasons"]), rejected["reasons"]
    capture_shadow(world, 150, "same", datetime.now(UTC))  # the first capture is outside this window
    state = pipeline_state(world, run={"soak_seconds": 60, "env": "prod"})
    accepted = run_state(shadow, "ShadowCheck", state)["shadow"]["result"]
    assert accepted["ok"] is True, accepted["reasons"]
    assert accepted["shadow"]["spearman_mean"] == 1.0 and accepted["shadow"]["requests"] == 150


def capture_canary(
    world: dict[str, Any], when: datetime, answers: int, clicks: dict[str, float], contacts: float
) -> None:
    """A canary's data capture (both production variants answer their users) and the outcome events
    users sent for those answers, joined by request id: ``clicks[variant]`` of a variant's answers got
    a click at position 1, ``contacts`` of every variant's answers a contact at position 2."""
    import pandas as pd

    from rankops.feedback import store
    from rankops.lake import Lake
    from rankops.monitoring.data_capture import capture_key, capture_line

    s3, events = boto3.client("s3", region_name=REGION), []
    destination = world["sagemaker"]["EndpointConfig"]["DataCaptureConfig"]["DestinationS3Uri"]
    for variant, rate in clicks.items():
        lines = []
        for n in range(answers):
            request_id, items = f"{variant}-{n}", [f"i-{n}-{k}" for k in range(6)]
            body = json.dumps({"user_id": f"u-{variant}-{n}", "candidates": items}).encode()
            ranking = [{"item_id": i, "score": 6.0 - k} for k, i in enumerate(items)]
            answer = {"request_id": request_id, "ranking": ranking, "model_version": "8"}
            lines.append(capture_line(body, json.dumps(answer).encode(), inference_time=when))
            events += [(request_id, 1, "click")] * (n < rate * answers)
            events += [(request_id, 2, "contact")] * (n < contacts * answers)
        bucket, key = capture_key(destination, ENDPOINT, variant, when).removeprefix("s3://").split("/", 1)
        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    frame = pd.DataFrame(events, columns=["request_id", "position", "outcome"])
    frame["value"], frame["ts"] = 1.0, pd.Timestamp(when + timedelta(seconds=20)).floor("ms")
    store.write_outcomes(Lake.zone_reader("raw", os.environ["RANKOPS_LAKE__RAW"]), frame)


def test_the_canary_check_judges_ctr_from_data_capture_and_outcomes(world) -> None:  # type: ignore[no-untyped-def]
    """Issue 13 in AWS: CanaryCheck (the rendered state, the real handler) joins both variants' captured
    answers to the lake's outcome events by request id and judges CTR and contact rate with the CTR
    judge: a significant CTR loss rolls back although every serving figure is healthy; an equal CTR
    past the horizon advances, with the evidence in the step's result."""
    live_endpoint(world)
    challenger_traffic(invocations=400, errors=0, latency_ms=20.0)
    canary = world["definition"]["States"]["Canary"]["ItemProcessor"]["States"]["CanaryCheck"]
    item = pipeline_state(world, share=0.1)
    capture_canary(world, datetime.now(UTC) - timedelta(seconds=60), 10_000, {"champion": 0.3, "challenger": 0.2}, 0.05)
    lost = run_state(canary, "CanaryCheck", item)["check"]["result"]
    assert lost["ok"] is False and lost["outcomes"]["action"] == "rollback", lost
    assert lost["outcomes"]["cohorts"]["challenger"] == {"answers": 10_000, "clicked": 2_000, "contacted": 500}
    assert lost["outcomes"]["ctr"]["interval"][1] < 0 and any("significant loss" in r for r in lost["reasons"])

    s3 = boto3.client("s3", region_name=REGION)
    for uri in (world["sagemaker"]["EndpointConfig"]["DataCaptureConfig"]["DestinationS3Uri"],
                os.environ["RANKOPS_LAKE__RAW"] + "/outcomes"):  # fmt: skip
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
    capture_canary(
        world, datetime.now(UTC) - timedelta(seconds=60), 10_000, {"champion": 0.25, "challenger": 0.25}, 0.05
    )
    equal = run_state(canary, "CanaryCheck", item)["check"]["result"]
    assert equal["ok"] is True and equal["outcomes"]["action"] == "advance", equal["outcomes"]["reasons"]
    assert equal["outcomes"]["ctr"]["n_required"] <= 10_000 and equal["outcomes"]["outcome_events"] == 6_000
