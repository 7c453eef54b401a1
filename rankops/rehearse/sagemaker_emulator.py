"""What moto lacks: SageMaker endpoints that deploy, shift traffic, roll back and answer.

The emulator keeps models, endpoint configs and endpoints; a deployment (CreateEndpoint,
UpdateEndpoint) runs in a thread on the emulated clock (:class:`Clock`: ``factor`` real seconds
per emulated second, so a 600 s baking period passes in 6 s at 0.01): the new fleet's ``serve``
processes start (:mod:`rankops.rehearse.variants`), traffic shifts as the ``DeploymentConfig``
says (blue/green ALL_AT_ONCE, CANARY, LINEAR; wait intervals; ``TerminationWaitInSeconds``),
and the ``AutoRollbackConfiguration`` alarms are evaluated against the metrics the emulator
publishes to (moto) CloudWatch (:mod:`rankops.rehearse.alarms`); an alarm rolls traffic back to
the old fleet. Invocations route by variant weight (or ``TargetVariant``), copy to shadow variants,
write data capture in batches (:mod:`rankops.rehearse.capture_writer`) and queue per-variant metrics
(:mod:`rankops.rehearse.metric_publisher`). Wire protocol: :mod:`rankops.rehearse.sagemaker_http`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from rankops.monitoring.data_capture import capture_line
from rankops.rehearse import alarms
from rankops.rehearse.capture_writer import FLUSH_S, CaptureWriter
from rankops.rehearse.clock import Clock, traffic_shares
from rankops.rehearse.container_logs import LogShipper, scaled_environment
from rankops.rehearse.metric_publisher import MetricPublisher
from rankops.rehearse.variants import Answer, VariantServer


class ApiError(Exception):
    """A SageMaker error reply (``__type`` and message)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


@dataclass
class Fleet:
    """The variants of one endpoint config, each with its serve process."""

    config: dict[str, Any]
    servers: dict[str, VariantServer]
    weights: dict[str, float]

    def pick(self, target: str | None) -> str:
        if target:
            return target
        names = [n for n in self.weights if self.weights[n] > 0] or list(self.weights)
        return random.choices(names, weights=[self.weights[n] or 1 for n in names])[0]  # noqa: S311 - routing


@dataclass
class Endpoint:
    name: str
    arn: str
    config_name: str
    status: str
    created: datetime
    modified: datetime
    live: Fleet | None = None
    new: Fleet | None = None
    new_share: float = 0.0  # traffic share of the new fleet while a blue/green deployment shifts
    failure_reason: str | None = None
    last_deployment: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)  # status history, for tests and the report
    rollbacks: list[str] = field(default_factory=list)  # each auto-rollback's FailureReason (the next update clears it)


class Emulator:
    """The SageMaker control plane and runtime for one rehearsal (see the module docstring)."""

    def __init__(self, world: Any, folder: Path, clock_factor: float = 0.01, capture_flush_s: float = FLUSH_S) -> None:
        self.world, self.folder, self.clock = world, folder, Clock(clock_factor)
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._s3, self._cw = world.client("s3"), world.client("cloudwatch")
        self.logs = LogShipper(world.client("logs"), self._cw)  # the containers' stdout -> CloudWatch Logs
        self.capture = CaptureWriter(self._s3, self.clock.factor, capture_flush_s)  # a .jsonl file per flush
        self.metrics = MetricPublisher(self._cw, self.clock.factor)  # off the request path, batched
        # fault hooks: (endpoint, new fleet, UpdateEndpoint request) before traffic shifts
        self.fleet_started: list[Any] = []
        self.host_environment: dict[str, str] = {}  # over every container's (session.loaded_host_budget)

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.world.region}:123456789012:{kind}/{name.lower()}"

    # -- models and configs ---------------------------------------------------------------------
    def CreateModel(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["ModelName"] in self.models:
            raise ApiError("ValidationException", f'Cannot create already existing model "{p["ModelName"]}".')
        self.models[p["ModelName"]] = {
            **p,
            "ModelArn": self._arn("model", p["ModelName"]),
            "CreationTime": self.clock.now(),
        }
        return {"ModelArn": self.models[p["ModelName"]]["ModelArn"]}

    def DescribeModel(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["ModelName"] not in self.models:
            raise ApiError("ValidationException", f'Could not find model "{p["ModelName"]}".')
        return {k: v for k, v in self.models[p["ModelName"]].items() if k != "Tags"}

    def ListModels(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [m for n, m in self.models.items() if p.get("NameContains", "") in n]
        return {"Models": [{k: m[k] for k in ("ModelName", "ModelArn", "CreationTime")} for m in found]}

    def CreateEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        if name in self.configs:
            raise ApiError("ValidationException", f'Cannot create already existing endpoint configuration "{name}".')
        for variant in p["ProductionVariants"] + p.get("ShadowProductionVariants", []):
            if variant["ModelName"] not in self.models:
                raise ApiError("ValidationException", f'Could not find model "{variant["ModelName"]}".')
        arn = self._arn("endpoint-config", name)
        self.configs[name] = {**p, "EndpointConfigArn": arn, "CreationTime": self.clock.now()}
        return {"EndpointConfigArn": arn}

    def DescribeEndpointConfig(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["EndpointConfigName"] not in self.configs:
            raise ApiError("ValidationException", f'Could not find endpoint configuration "{p["EndpointConfigName"]}".')
        return {k: v for k, v in self.configs[p["EndpointConfigName"]].items() if k != "Tags"}

    def ListEndpointConfigs(self, p: dict[str, Any]) -> dict[str, Any]:
        found = [c for n, c in self.configs.items() if p.get("NameContains", "") in n]
        keys = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        return {"EndpointConfigs": [{k: c[k] for k in keys} for c in found]}

    # -- endpoints ------------------------------------------------------------------------------
    def _endpoint(self, name: str) -> Endpoint:
        if name not in self.endpoints:
            raise ApiError("ValidationException", f'Could not find endpoint "{name}".')
        return self.endpoints[name]

    def _set(self, ep: Endpoint, status: str) -> None:
        with self._changed:
            ep.status, ep.modified = status, self.clock.now()
            ep.events.append(status)
            self._changed.notify_all()

    def _ship(self, endpoint: str, stream: str, line: str) -> int:
        return self.logs.ship(endpoint, stream, line, self.clock.now())

    def _start_fleet(self, ep: Endpoint, config_name: str, weights: dict[str, float] | None = None) -> Fleet:
        config = self.configs[config_name]
        servers = {}
        for variant in config["ProductionVariants"] + config.get("ShadowProductionVariants", []):
            model = self.models[variant["ModelName"]]
            container = model["PrimaryContainer"]
            folder = self.folder / ep.name / config_name / variant["VariantName"]
            environment = {**scaled_environment(container.get("Environment", {}), self.clock.factor),
                           **self.host_environment}  # fmt: skip
            stream = f"{variant['VariantName']}/{config_name}"
            servers[variant["VariantName"]] = VariantServer(
                folder, container["ModelDataUrl"], environment, self._s3,
                partial(self._ship, ep.name, stream),
            )  # fmt: skip
        for server in servers.values():
            server.wait_ready()
        given = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in config["ProductionVariants"]}
        return Fleet(config, servers, {**given, **{k: w for k, w in (weights or {}).items() if k in given}})

    def CreateEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        if name in self.endpoints:
            raise ApiError("ValidationException", f'Cannot create already existing endpoint "{name}".')
        if p["EndpointConfigName"] not in self.configs:
            raise ApiError("ValidationException", f'Could not find endpoint configuration "{p["EndpointConfigName"]}".')
        now = self.clock.now()
        ep = Endpoint(name, self._arn("endpoint", name), p["EndpointConfigName"], "Creating", now, now)
        self.endpoints[name] = ep
        self._run(self._create, ep)
        return {"EndpointArn": ep.arn}

    def _run(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _create(self, ep: Endpoint) -> None:
        try:
            ep.live = self._start_fleet(ep, ep.config_name)
            self._set(ep, "InService")
        except Exception as err:  # the endpoint fails, as SageMaker reports a container that never gets healthy
            ep.failure_reason = str(err)
            self._set(ep, "Failed")

    def DescribeEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        ep = self._endpoint(p["EndpointName"])
        with self._lock:
            out: dict[str, Any] = {
                "EndpointName": ep.name,
                "EndpointArn": ep.arn,
                "EndpointConfigName": ep.config_name,
                "EndpointStatus": ep.status,
                "CreationTime": ep.created,
                "LastModifiedTime": ep.modified,
            }
            fleets = [f for f in (ep.live, ep.new) if f is not None]
            variants = [
                {
                    "VariantName": v["VariantName"],
                    "CurrentWeight": f.weights.get(v["VariantName"], 0.0),
                    "DesiredWeight": f.weights.get(v["VariantName"], 0.0),
                    "CurrentInstanceCount": int(v.get("InitialInstanceCount", 1)),
                    "DesiredInstanceCount": int(v.get("InitialInstanceCount", 1)),
                }
                for f in fleets[:1]
                for v in f.config["ProductionVariants"]
            ]
            if variants:
                out["ProductionVariants"] = variants
            if ep.failure_reason:
                out["FailureReason"] = ep.failure_reason
            if ep.last_deployment:
                out["LastDeploymentConfig"] = ep.last_deployment
            return out

    def UpdateEndpointWeightsAndCapacities(self, p: dict[str, Any]) -> dict[str, Any]:
        ep = self._endpoint(p["EndpointName"])
        if ep.status != "InService" or ep.live is None:
            raise ApiError("ValidationException", f'Cannot update in-progress endpoint "{ep.name}".')
        for desired in p["DesiredWeightsAndCapacities"]:
            if desired["VariantName"] not in ep.live.weights:
                raise ApiError(
                    "ValidationException", f'The variant name(s) "{desired["VariantName"]}" is/are not present.'
                )
        self._set(ep, "Updating")
        for desired in p["DesiredWeightsAndCapacities"]:
            if "DesiredWeight" in desired:
                ep.live.weights[desired["VariantName"]] = float(desired["DesiredWeight"])
        self._set(ep, "InService")
        return {"EndpointArn": ep.arn}

    def UpdateEndpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        ep = self._endpoint(p["EndpointName"])
        if ep.status != "InService":
            raise ApiError("ValidationException", f'Cannot update in-progress endpoint "{ep.name}".')
        if p["EndpointConfigName"] not in self.configs:
            raise ApiError("ValidationException", f'Could not find endpoint configuration "{p["EndpointConfigName"]}".')
        self._set(ep, "Updating")
        ep.failure_reason = None
        self._run(self._deploy, ep, p)
        return {"EndpointArn": ep.arn}

    # -- deployments ----------------------------------------------------------------------------
    def _watch(self, ep: Endpoint, alarm_names: list[str], seconds: float) -> str | None:
        """Bake for ``seconds`` (emulated), evaluating the alarms; the first alarm in ALARM, else None.
        Each evaluation first flushes the metric queue: its wall-clock lag is whole alarm periods
        at the emulated pace, and could hide a crashed fleet's 5xx for an entire bake."""
        end = self.clock.now() + timedelta(seconds=seconds)
        while True:
            if alarm_names:
                self.metrics.flush()
                for alarm in self._cw.describe_alarms(AlarmNames=alarm_names)["MetricAlarms"]:
                    if alarms.evaluate(self._cw, alarm, self.clock.now()) == "ALARM":
                        self._cw.set_alarm_state(
                            AlarmName=alarm["AlarmName"], StateValue="ALARM", StateReason="rehearsal: threshold crossed"
                        )
                        return str(alarm["AlarmName"])
            if self.clock.now() >= end:
                return None
            self.clock.sleep(min(30.0, max(1.0, seconds / 20)))

    def _deploy(self, ep: Endpoint, p: dict[str, Any]) -> None:
        try:
            self._shift(ep, p)
        except Exception as err:  # an emulator fault: back to the old fleet, said in FailureReason
            with self._lock:
                if ep.new is not None:
                    for server in ep.new.servers.values():
                        server.stop()
                ep.new, ep.new_share = None, 0.0
                ep.failure_reason = f"rehearsal emulator error during the deployment: {err!r}"
            self._set(ep, "InService")

    def _shift(self, ep: Endpoint, p: dict[str, Any]) -> None:
        old = ep.live
        assert old is not None
        retained = dict(old.weights) if p.get("RetainAllVariantProperties") else None
        if retained and any(
            x.get("VariantPropertyType") == "DesiredWeight" for x in p.get("ExcludeRetainedVariantProperties", [])
        ):
            retained = None
        try:
            new = self._start_fleet(ep, p["EndpointConfigName"], retained)
        except Exception as err:
            ep.failure_reason = f"new fleet did not start: {err}"
            self._set(ep, "InService")  # the old fleet keeps serving, as SageMaker keeps the old config
            return
        for hook in list(self.fleet_started):
            hook(ep, new, p)
        config = p.get("DeploymentConfig") or {}
        policy = config.get("BlueGreenUpdatePolicy", {})
        routing = policy.get("TrafficRoutingConfiguration", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0})
        alarm_names = [a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
        with self._lock:
            ep.new = new
        steps = traffic_shares(routing)
        fired = None
        for share in steps:
            with self._lock:
                ep.new_share = share
            wait = (
                float(routing.get("WaitIntervalInSeconds", 0))
                if share < 1.0
                else float(policy.get("TerminationWaitInSeconds", 0))
            )
            fired = self._watch(ep, alarm_names, wait)
            if fired:
                break
        with self._lock:
            if fired:
                self._set(ep, "RollingBack")
                ep.new, ep.new_share = None, 0.0
                ep.failure_reason = f"Rolled back: alarm {fired} went into ALARM during the deployment"
                ep.rollbacks.append(ep.failure_reason)
                stopped = new
            else:
                ep.live, ep.new, ep.new_share = new, None, 0.0
                ep.config_name = p["EndpointConfigName"]
                stopped = old
            if config:
                ep.last_deployment = config
        for server in stopped.servers.values():
            server.stop()
        self._set(ep, "InService")

    def wait_for(self, name: str, statuses: tuple[str, ...] = ("InService", "Failed"), timeout_s: float = 300) -> str:
        """Block until the endpoint's status is one of ``statuses`` (an event, not a sleep)."""
        ep = self._endpoint(name)
        with self._changed:
            if not self._changed.wait_for(lambda: ep.status in statuses, timeout=timeout_s):
                raise TimeoutError(f"endpoint {name} still {ep.status} after {timeout_s} s")
            return ep.status

    # -- runtime --------------------------------------------------------------------------------
    def invoke(self, name: str, body: bytes, content_type: str, accept: str, target: str | None) -> tuple[str, Answer]:
        ep = self._endpoint(name)
        with self._lock:
            if ep.live is None:
                raise ApiError("ValidationError", f"Endpoint {name} is not in service.")
            use_new = ep.new is not None and random.random() < ep.new_share  # noqa: S311 - traffic shifting
            fleet = ep.new if use_new and ep.new is not None else ep.live
            if target and target not in fleet.weights:
                raise ApiError("ValidationError", f"The variant {target} is not in endpoint {name}.")
            variant = fleet.pick(target)
            shadows = [v["VariantName"] for v in fleet.config.get("ShadowProductionVariants", [])]
        answer = fleet.servers[variant].invoke(body, content_type, accept)
        self._observe(ep, fleet, variant, body, content_type, answer)
        for shadow in shadows:  # SageMaker copies the request to shadow variants; their answer is not returned
            copy = fleet.servers[shadow].invoke(body, content_type, accept)
            self._observe(ep, fleet, shadow, body, content_type, copy)
        return variant, answer

    def _observe(self, ep: Endpoint, fleet: Fleet, variant: str, body: bytes, ctype: str, answer: Answer) -> None:
        now = self.clock.now()
        dims = [{"Name": "EndpointName", "Value": ep.name}, {"Name": "VariantName", "Value": variant}]
        figures = (("Invocations", 1.0, "None"), ("Invocation5XXErrors", float(answer.status >= 500), "None"),
                   ("ModelLatency", float(answer.latency_us), "Microseconds"))  # fmt: skip
        self.metrics.put(
            "AWS/SageMaker",
            [{"MetricName": name, "Dimensions": dims, "Value": value, "Unit": unit, "Timestamp": now}
             for name, value, unit in figures],
        )  # fmt: skip
        capture = fleet.config.get("DataCaptureConfig") or {}
        if capture.get("EnableCapture") and answer.status < 500:
            types = capture.get("CaptureContentTypeHeader", {}).get("JsonContentTypes", ["application/json"])
            line = capture_line(
                body, answer.body, content_type=ctype, accept=answer.content_type, inference_time=now, json_types=types
            )
            self.capture.add(capture["DestinationS3Uri"], ep.name, variant, now, line)

    def flush_capture(self) -> int:
        """Write every buffered capture line to S3 now (returns the objects written). SageMaker's
        capture lags its traffic; a rehearsal step that reads capture right after sending traffic
        calls this first, where a job in AWS would run minutes later."""
        return self.capture.flush()

    def flush_metrics(self) -> None:
        """Send every queued endpoint metric to CloudWatch now (as :meth:`flush_capture`)."""
        self.metrics.flush()

    def close(self) -> None:
        try:
            self.metrics.close()
            self.capture.close()
        finally:
            for ep in self.endpoints.values():
                for fleet in (ep.live, ep.new):
                    for server in fleet.servers.values() if fleet else ():
                        server.stop()
