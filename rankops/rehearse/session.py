"""One rehearsal: the world, the SageMaker emulator in front of it, the staged data and the
bootstrap endpoint, and production traffic while the pipeline runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankops.config import Settings
from rankops.environ import overlay
from rankops.rehearse import stage
from rankops.rehearse.sagemaker_emulator import Emulator
from rankops.rehearse.sagemaker_http import serving
from rankops.rehearse.world import World, check_local_endpoints, open_world

Say = Callable[[str], None]


@dataclass
class Rehearsal:
    world: World
    emulator: Emulator
    settings: Settings
    endpoint: str
    home: Path
    requests: list[bytes] = field(default_factory=list)  # logged searches, one per user

    def request(self) -> dict[str, Any]:
        return dict(json.loads(self.requests[0]))


@contextmanager
def _release_clock(emulator: Emulator) -> Iterator[None]:
    """The release Lambda's checks end their window at the emulator's time (see SageMakerEndpoint.now)."""
    from rankops.release.sagemaker_endpoint import SageMakerEndpoint

    original = SageMakerEndpoint.__dict__["now"]  # the staticmethod itself: restored as one, not as a method
    SageMakerEndpoint.now = staticmethod(emulator.clock.now)  # type: ignore[method-assign]
    try:
        yield
    finally:
        SageMakerEndpoint.now = original  # type: ignore[method-assign]


@contextmanager
def _cloudwatch_percentiles() -> Iterator[None]:
    """moto's GetMetricData answers a percentile statistic (``p95``) with no value, and then fails to
    serialize it; CloudWatch computes it. Here it is computed from the period's datapoints (the
    release checks judge ``ModelLatency`` at p95)."""
    import re

    import numpy as np
    from moto.cloudwatch.models import Statistics

    original = Statistics.get_statistics_for_type

    def with_percentiles(self: Statistics, stat: str) -> Any:
        match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
        values = self.metric_single_values_list
        if match and values:
            return float(np.percentile(values, float(match.group(1))))
        return original(self, stat)

    Statistics.get_statistics_for_type = with_percentiles  # type: ignore[method-assign]
    try:
        yield
    finally:
        Statistics.get_statistics_for_type = original  # type: ignore[method-assign]


# The release checks' traffic-volume minimums at rehearsal traffic. A soak is 600 emulated seconds
# (6 s at clock factor 0.01) in which this machine replays some tens of requests, where the deployed
# minimums assume production traffic (200 challenger invocations, 100 shadowed requests per window:
# 2,000 requests in a 10 % canary step). Every other threshold (5xx rate, p95 latency, degraded
# answers, rank correlation, score KL) stays as deployed.
TRAFFIC_MINIMUMS = {"min_invocations": 1, "shadow_min_requests": 20}


def scale_traffic_minimums(world: World, say: Say) -> dict[str, Any]:
    """Lower the release Lambda's ``CHECK_THRESHOLDS`` volume minimums to :data:`TRAFFIC_MINIMUMS`
    through Lambda's ``UpdateFunctionConfiguration`` (an operator's change, said out loud); returns
    the deployed thresholds."""
    from rankops.release.endpoint import CHECK_THRESHOLDS_VARIABLE

    name = f"{world.prefix}-release"
    environment = dict(world.function_env("release"))
    deployed = json.loads(environment.get(CHECK_THRESHOLDS_VARIABLE) or "{}")
    lowered = {**deployed, **TRAFFIC_MINIMUMS}
    environment[CHECK_THRESHOLDS_VARIABLE] = json.dumps(lowered, sort_keys=True)
    world.client("lambda").update_function_configuration(FunctionName=name, Environment={"Variables": environment})
    world.lambda_env[name] = environment
    changed = ", ".join(f"{k} {deployed.get(k, '-')} -> {v}" for k, v in TRAFFIC_MINIMUMS.items())
    say(f"stage: rehearsal traffic is far below production's: release check minimums {changed} (the rest as deployed)")
    return dict(deployed)


# The serve processes' latency budget on the rehearsal's host: 2 cores shared with Spark, MLflow,
# moto and other runs (load 10-25), where a feature lookup can outlast the deployed 150 ms and the
# answer degrades to the fallback chain, which the deployed degraded-answers check (1 %) then
# judges as the challenger's fault; and a Redis read can outlast the deployed store timeout (30 ms),
# which counts towards opening the circuit breaker (whose skipped reads degrade answers too). Only
# the budget and the store timeout are raised; the checks stay as deployed.
HOST_LATENCY_BUDGET_MS = 30_000
HOST_STORE_TIMEOUT_MS = 5_000
# as a serve process's environment (also the chaos suite's worker-kill servers: benchmarks/chaos_serving.py)
LOADED_HOST_ENVIRONMENT = {
    "RANKOPS_SERVING__LATENCY_BUDGET_MS": str(HOST_LATENCY_BUDGET_MS),
    "RANKOPS_SERVING__STORE_TIMEOUT_MS": str(HOST_STORE_TIMEOUT_MS),
}


def loaded_host_budget(emulator: Emulator, settings: Settings, say: Say) -> None:
    """Give every serve process the emulator starts :data:`HOST_LATENCY_BUDGET_MS` (over its
    Model's container environment, as an instance's own setting would be), said out loud."""
    emulator.host_environment.update(LOADED_HOST_ENVIRONMENT)
    budget, timeout = settings.serving.latency_budget_ms, settings.serving.store_timeout_ms
    say(
        f"stage: loaded host: serving latency budget {budget} -> {HOST_LATENCY_BUDGET_MS} ms, store timeout "
        f"{timeout} -> {HOST_STORE_TIMEOUT_MS} ms (checks as deployed)"
    )


@contextmanager
def open_rehearsal(
    env: str, workdir: Path, *, cdk_out: Path | None = None, events: int = 20_000, clock_factor: float = 0.01,
    say: Say = print,
) -> Iterator[Rehearsal]:  # fmt: skip
    """Build the world of ``env``, put the emulator in front of it, stage data and the bootstrap
    endpoint; everything stops on exit."""
    import logging

    from rankops.release.local_endpoint import logged_requests
    from rankops.spark_session import get_spark

    logging.getLogger("moto").setLevel(logging.CRITICAL)  # the interpreter logs every caught error
    say(f"world: {env} from its synthesized templates (moto server, redis-server, sqlite MLflow)")
    with open_world(env, workdir / "world", cdk_out) as world:
        emulator = Emulator(world, workdir / "endpoints", clock_factor=clock_factor)
        with serving(emulator) as url, overlay(
            {"AWS_ENDPOINT_URL_SAGEMAKER": url, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": url}
        ), _release_clock(emulator), _cloudwatch_percentiles():  # fmt: skip
            check_local_endpoints()
            scale_traffic_minimums(world, say)
            home = workdir / "home"
            settings = stage.world_settings(world, home)
            loaded_host_budget(emulator, settings, say)
            spark = get_spark(settings)
            say(f"stage: {events:,} logged searches in the raw bucket, features offline and online")
            stage.seed(settings, spark, events, say=say)
            say("stage: the bootstrap model (its own registry) at the template's ModelDataUrl")
            archive = stage.bootstrap_archive(settings, spark, workdir / "bootstrap")
            name = stage.bootstrap_endpoint(world, archive, emulator)
            say(f"stage: endpoint {name} InService on the bootstrap model")
            yield Rehearsal(world, emulator, settings, name, home, logged_requests(settings, 500))


RELEASE_STATES = ("Baseline", "Deploy")  # traffic matters from here on (the jobs before need the CPU)


@contextmanager
def traffic(rehearsal: Rehearsal, pause_s: float = 0.05) -> Iterator[tuple[dict[str, int], threading.Event]]:
    """Production traffic: the logged searches replayed through boto3 (``InvokeEndpoint``), one
    after another, once the returned event is set (the scenario sets it when a release state
    starts); counts sent and failed."""
    import boto3

    runtime = boto3.client("sagemaker-runtime")
    counts = {"sent": 0, "failed": 0}
    stop, go = threading.Event(), threading.Event()

    def run() -> None:
        i = 0
        while not stop.is_set():
            if not go.wait(0.5):
                continue
            body = rehearsal.requests[i % len(rehearsal.requests)]
            try:
                runtime.invoke_endpoint(EndpointName=rehearsal.endpoint, Body=body, ContentType="application/json")
            except Exception:
                counts["failed"] += 1  # a failed request is what the alarms and checks must see
            counts["sent"] += 1
            i += 1
            stop.wait(pause_s)

    thread = threading.Thread(target=run, daemon=True, name="rehearsal-traffic")
    thread.start()
    try:
        yield counts, go
    finally:
        stop.set()
        thread.join(timeout=60)
