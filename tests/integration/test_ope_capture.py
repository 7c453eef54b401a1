"""The off-policy gate in AWS, from SageMaker data capture: the prod templates' endpoint (rehearsal
emulator, the real ``serve`` container) answers a uniform-random slice, data capture writes every
answer to the template's destination, users click by a known click model, and the ``offpolicy``
job -- run with the arguments and environment of the deployed ``OffPolicy`` state -- re-scores the
captured slates from the ``logged_features`` the randomised answers carry.

The one change to the template's Model is its exploration setting (``RANKOPS_EXPLORATION__*`` in
the container environment: every user in the uniform slice instead of prod's 3% explore share),
so a few hundred requests make a decisive log."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest

from rankops import registry
from rankops.config import load_settings
from rankops.features import registry as feature_registry
from rankops.feedback import store
from rankops.lake import Lake
from rankops.rehearse.sagemaker_emulator import Emulator
from rankops.rehearse.sagemaker_http import serving
from rankops.rehearse.stage import world_settings
from rankops.rehearse.world import REPO, open_world
from sagemaker_jobs.offpolicy import entry
from tests import serving_helpers as h
from tests.integration.test_ope_feedback import relevance, shuffled_booster
from tests.integration.test_serving_container import model_archive

REQUESTS, SLATE = 900, 6  # each position's effective sample size under the uniform slice: ~REQUESTS / SLATE
EXAMINATION = 1.0 / np.arange(1, SLATE + 1) ** 0.8
pytestmark = pytest.mark.slow  # ~1.5-3 min: the world, a container, 900 invocations through the emulator
UNIFORM = {"RANKOPS_EXPLORATION__SHARE": "0", "RANKOPS_EXPLORATION__UNIFORM_SHARE": "1",  # a loaded machine:
           "RANKOPS_SERVING__LATENCY_BUDGET_MS": "600000", "RANKOPS_SERVING__STORE_TIMEOUT_MS": "10000"}  # fmt: skip


def seed_online_stores(settings: Any) -> None:
    """The serving helpers' items, sellers and categories in the world's online stores (the
    template's Redis and DynamoDB), as materialization would leave them."""
    from rankops.features.online.factory import open_stores
    from rankops.features.online.packing import pack_rows

    entities = feature_registry.stored_entities()
    stores = open_stores(settings, entities, for_writes=True)
    items = h.item_ids(300)
    sellers = sorted({h.seller_of(k) for k in range(300)})
    order = feature_registry.joined_entities("item")
    joins = [[{"seller": h.seller_of(k), "category": h.category_of(k)}[e] for e in order] for k in range(300)]
    rows = {
        "item": (items, h.item_features(300), joins),
        "seller": (sellers, h.entity_features("seller", sellers), None),
        "category": (list(h.CATEGORIES), h.entity_features("category", list(h.CATEGORIES)), None),
    }
    for entity, (keys, values, joined) in rows.items():
        stores[entity].write_batch(entity, "v1", keys, pack_rows("v1", values, joined))
        names = feature_registry.stored_names(entity)
        stores[entity].activate(entity, "v1", names, feature_registry.joined_entities(entity))
    for store_ in {id(s): s for s in stores.values()}.values():
        store_.close()


@pytest.fixture(scope="module")
def captured(
    serving_home: Any, prod_templates: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("ope-captured")
    model_archive(serving_home.settings, work / "model")
    with tarfile.open(work / "model.tar.gz", "w:gz") as tar:
        for path in (work / "model").iterdir():
            tar.add(path, arcname=path.name)
    with open_world("prod", work / "world", cdk_out=prod_templates) as world:
        emulator = Emulator(world, work / "endpoints", clock_factor=1.0)  # capture times on the wall clock
        with serving(emulator) as url, pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL_SAGEMAKER", url)
            mp.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
            (model,), (config,), (ep,) = (
                world.sagemaker[f"AWS::SageMaker::{t}"] for t in ("Model", "EndpointConfig", "Endpoint")
            )
            bucket, _, key = model["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://").partition("/")
            world.client("s3").upload_file(str(work / "model.tar.gz"), bucket, key)
            container = {**model["PrimaryContainer"]}
            container["Environment"] = {**container.get("Environment", {}), **UNIFORM}
            sm = boto3.client("sagemaker")
            sm.create_model(**{k: v for k, v in model.items() if k != "Tags"} | {"PrimaryContainer": container})
            sm.create_endpoint_config(**config)
            sm.create_endpoint(EndpointName=ep["EndpointName"], EndpointConfigName=ep["EndpointConfigName"])
            assert emulator.wait_for(ep["EndpointName"]) == "InService"

            settings = world_settings(world, work / "home")
            seed_online_stores(settings)
            runtime, rng, sizes = boto3.client("sagemaker-runtime"), np.random.default_rng(3), []
            for r in range(REQUESTS):
                body = h.request(SLATE, f"u-{r}", h.CATEGORIES[r % 3], start=int(rng.integers(0, 300 - SLATE)))
                body.update(request_id=f"r-{r}", ts=h.NOW)  # a fixed time: the items' ages do not drift
                answer = runtime.invoke_endpoint(
                    EndpointName=ep["EndpointName"], Body=json.dumps(body), ContentType="application/json"
                )["Body"].read()
                sizes.append(len(answer))
            emulator.flush_capture()  # the job reads capture minutes later in AWS, when it is written
            versions = {  # the serving home's rankers, registered in the world's (empty) registry
                role: h.register(settings, registry.load_version_booster(serving_home.settings, v))
                for role, v in serving_home.versions.items()
                if role != "fallback"
            }
            versions["shuffled"] = h.register(settings, shuffled_booster())
            yield {"world": world, "config": config, "work": work, "sizes": sizes, "versions": versions}


def deployed_job(world: Any) -> tuple[list[str], dict[str, str]]:
    """The ``OffPolicy`` state's literal ``--data-capture``/``--endpoint`` arguments and its
    container environment, as the world's state machine (the synthesized template) has them."""
    params = json.loads(world.definition())["States"]["OffPolicy"]["Parameters"]
    expression = params["AppSpecification"]["ContainerArguments.$"]
    args = []
    for flag in ("--data-capture", "--endpoint"):
        found = re.search(rf"'{flag}', '([^']*)'", expression)
        assert found, f"{flag} is not in the deployed OffPolicy arguments: {expression}"
        args += [flag, found.group(1)]
    return args, dict(params["Environment"])


@pytest.fixture(scope="module")
def job(captured: dict[str, Any]) -> Any:
    """Outcomes drawn from the truth on the captured slates, then ``run(version, champion)``: the
    job's decision, as the deployed state would run it."""
    world = captured["world"]
    args, environ = deployed_job(world)
    settings = load_settings(
        env="prod", home=captured["work"] / "home", config_file=REPO / "rankops.toml", environ=environ
    )
    lake = Lake.from_settings(settings)  # the lake the job sees (its template environment)
    feedback = store.read_capture(lake, args[1], args[3])
    rng, events = np.random.default_rng(4), []
    for row in feedback.to_pylist():
        if row["features"] is None:  # a degraded (deterministic) answer: the gate does not read it
            continue
        p_click = EXAMINATION * relevance(json.loads(row["features"]))
        for pos in np.flatnonzero(rng.random(SLATE) < p_click):
            events.append((row["request_id"], int(pos) + 1, "click", row["ts"]))
    store.write_outcomes(
        lake, pd.DataFrame(events, columns=["request_id", "position", "outcome", "ts"]).assign(value=0.0)
    )

    def run(version: str, champion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        folder = captured["work"] / f"job-{version}-{champion}"
        gate_uri = lake.uri("artifacts", "gate", "capture-test", f"v{version}-{champion}", "record.json")
        lake.write_json(gate_uri, {"decision": "promote"})
        (folder / "evaluation").mkdir(parents=True)
        evaluation = {"version": version, "champion_version": champion, "gate_uri": gate_uri, "promote": True}
        (folder / "evaluation" / "evaluation.json").write_text(json.dumps(evaluation))
        paths = ["--evaluation-dir", str(folder / "evaluation"), "--output-dir", str(folder / "output")]
        argv = ["--env", "prod", "--home", str(folder / "home"), "--config", str(REPO / "rankops.toml"), *paths, *args]
        assert entry.main(argv, environ) == 0
        doc = json.loads((folder / "output" / "offpolicy" / "offpolicy.json").read_text())
        return doc, lake.read_json(gate_uri)

    return {"run": run, "args": args, "feedback": feedback}


def test_the_job_reads_the_capture_destination_the_template_configures(captured: dict[str, Any], job: Any) -> None:
    destination = captured["config"]["DataCaptureConfig"]["DestinationS3Uri"]
    (endpoint,) = captured["world"].sagemaker["AWS::SageMaker::Endpoint"]
    assert job["args"] == ["--data-capture", destination, "--endpoint", endpoint["EndpointName"]]
    rows = job["feedback"].select(["policy", "fallback_level", "features"]).to_pandas()
    assert len(rows) == REQUESTS, "every answer captured"
    uniform = rows[rows["policy"] == "uniform"]
    assert len(uniform) >= 0.97 * REQUESTS, rows[["policy", "fallback_level"]].value_counts()
    assert uniform["features"].notna().all(), "every randomised answer carried its features"
    assert rows.loc[rows["policy"] == "deterministic", "features"].isna().all(), "a degraded answer carries none"
    first = json.loads(uniform["features"].iloc[0])
    assert set(feature_registry.model_features()) <= set(first) and all(len(v) == SLATE for v in first.values())


def test_the_off_policy_gate_decides_on_data_capture(captured: dict[str, Any], job: Any) -> None:
    versions = captured["versions"]
    doc, record = job["run"](versions["bad"], versions["good"])  # trained on inverted labels
    assert doc["decision"] == "stop" and doc["stop"], doc["reasons"]
    assert doc["estimate"]["lift_ci95"][1] < 0 and doc["estimate"]["requests"] >= 0.97 * REQUESTS
    assert record["offpolicy"]["decision"] == "stop", "the decision is in the gate record"
    # shuffled labels: worse, but by less than the inverted one; 900 answers do not resolve it
    doc, _ = job["run"](versions["shuffled"], versions["good"])
    assert doc["decision"] in ("stop", "inconclusive") and doc["estimate"]["lift"] < 0, doc["reasons"]
    assert "too little support" not in doc["reasons"][0], doc["reasons"]
    doc, record = job["run"](versions["challenger"], versions["good"])
    assert doc["decision"] in ("pass", "inconclusive") and not doc["stop"], doc["reasons"]
    assert "too little support" not in doc["reasons"][0], "a comparable challenger is judged, not waved through"
    assert record["offpolicy"]["estimate"] == doc["estimate"]
