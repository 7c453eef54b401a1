"""The release steps of the pipeline, against a SageMaker endpoint or the local server.

The state machine's release Lambda calls :func:`release_step`; the event says what to do
(``deploy``, ``shadow``, ``canary``, ``promote``, ``rollback``, ``check``) and which endpoint:
a SageMaker endpoint name, or ``local:<RANKOPS_HOME>`` for the local inference server. The
decisions (what a shadow or canary must show before it may advance, which traffic goes
where) are :mod:`rankops.release`'s in both cases; only the mechanism differs:

* **SageMaker**: endpoint configs built by :mod:`rankops.release.sagemaker` (shadow variant,
  two weighted production variants, then a blue/green ``UpdateEndpoint`` with a
  ``DeploymentConfig`` whose ``AutoRollbackConfiguration`` watches the P1 alarms). The state
  machine polls ``DescribeEndpoint`` until the update finishes. Checks read CloudWatch.
* **local**: the release state of :mod:`rankops.release.local` (aliases + the document the
  running server follows); the server is started if it is not running. A check replays logged
  requests through the server (the local stand-in for production traffic) until the evidence decides.

Standard library and boto3 at import time (the Lambda runtime); the local branch imports
the rest of rankops lazily.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from rankops.errors import ReleaseError

LOCAL_PREFIX = "local:"
ACTIONS = ("baseline", "deploy", "shadow", "canary", "promote", "rollback", "check")
# The environment's blue/green policy (JSON, DeploymentPolicy fields), set on the release Lambda by
# infra from aws.endpoint; an event's "policy" wins over it.
DEPLOYMENT_POLICY_VARIABLE = "DEPLOYMENT_POLICY"
# The environment's post-traffic thresholds (JSON, PostTrafficEvent fields), set on the release
# Lambda by infra from release.*; an event's "post_traffic" wins over them.
CHECK_THRESHOLDS_VARIABLE = "CHECK_THRESHOLDS"


def deployment_policy(event: dict[str, Any]) -> dict[str, Any]:
    """The blue/green policy of a promote/deploy: the event's ``policy``, else ``$DEPLOYMENT_POLICY``."""
    if event.get("policy"):
        return dict(event["policy"])
    raw = os.environ.get(DEPLOYMENT_POLICY_VARIABLE, "")
    try:
        return dict(json.loads(raw)) if raw else {}
    except (TypeError, ValueError) as err:
        raise ReleaseError(f"{DEPLOYMENT_POLICY_VARIABLE} is not a JSON object: {raw!r}") from err


def check_thresholds() -> dict[str, Any]:
    """The post-traffic thresholds of this environment (``$CHECK_THRESHOLDS``; empty: the defaults)."""
    raw = os.environ.get(CHECK_THRESHOLDS_VARIABLE, "")
    try:
        return dict(json.loads(raw)) if raw else {}
    except (TypeError, ValueError) as err:
        raise ReleaseError(f"{CHECK_THRESHOLDS_VARIABLE} is not a JSON object: {raw!r}") from err


def release_step(event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action")
    if action not in ACTIONS:
        raise ReleaseError(f"unknown release action {action!r}; expected one of {', '.join(ACTIONS)}")
    endpoint = str(event.get("endpoint", ""))
    if not endpoint:
        raise ReleaseError("the release step needs an endpoint (a SageMaker endpoint name or local:<home>)")
    if endpoint.startswith(LOCAL_PREFIX):
        return LocalEndpoint(endpoint[len(LOCAL_PREFIX) :]).run(action, event)
    import boto3

    return SageMakerEndpoint(endpoint, boto3.client("sagemaker"), boto3.client("cloudwatch")).run(action, event)


# -- local ---------------------------------------------------------------------------------------
class LocalEndpoint:
    """The local inference server under a ``RANKOPS_HOME``, driven by the local release state."""

    def __init__(self, home: str) -> None:
        from rankops.config import load_settings

        self.settings = load_settings(home=home)

    def _server(self) -> str:
        from rankops import background

        state = background.status(self.settings.home)
        if state is None:
            cfg = self.settings.serving
            state = background.start(self.settings.home, self.settings.env, cfg.host, cfg.port)
        return str(state["url"])

    def describe(self) -> dict[str, Any]:
        """``DescribeEndpoint``'s answer for the local server: always settled (local steps switch
        synchronously), its "config" named after the release state it serves."""
        from rankops.release import local

        config = local_config_name(local.current_state(self.settings))
        return {"EndpointStatus": "InService", "EndpointConfigName": config}

    def run(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        from rankops.release import local
        from rankops.release import state as transitions

        settings, version = self.settings, str(event.get("version") or "")
        if action == "deploy":  # the first release: nothing to compare with, the gate's floor decided
            new = transitions.first_release(local.current_state(settings), version)
            local.apply(settings, new)
            url = self._server()
            local.wait_for_server(url, new)
            return {"mode": new.mode, "champion": new.champion, "url": url}
        if action == "check":
            return self._check(int(event.get("max_requests", 4000)))
        if action == "baseline":  # the local rollback restores `previous` (the release state keeps it)
            return {"champion": local.current_state(settings).champion}
        url = self._server()
        if action == "shadow":
            result = local.shadow(settings, version, url=url)
        elif action == "canary":
            result = local.canary(settings, float(event["share"]), force=True, url=url)
        elif action == "promote":
            result = local.promote(settings, force=True, url=url)
        else:
            result = local.rollback(settings, url=url)
        state = result.state
        return {
            "endpoint_config": local_config_name(state),
            "mode": state.mode,
            "champion": state.champion,
            "challenger": state.challenger,
            "canary_share": state.canary_share,
            "removed": result.removed,
        }

    def _check(self, max_requests: int = 4000, batch: int = 100, settle_s: float = 15.0) -> dict[str, Any]:
        """Replay logged traffic until the evidence decides (or ``max_requests`` were sent and
        ``settle_s`` passed: shadow scores are reported every couple of seconds)."""
        from rankops.release import local

        settings, url = self.settings, self._server()
        bodies = logged_requests(settings, 2000)
        sent, deadline = 0, None
        while True:
            state = local.current_state(settings)
            decision = local.step_evidence(settings, state, url)
            if decision.action != "hold" or (deadline is not None and time.monotonic() > deadline):
                return {"ok": decision.ok, **decision.as_dict(), "mode": state.mode, "replayed": sent}
            if sent < max_requests:
                post_all(url, [bodies[(sent + k) % len(bodies)] for k in range(batch)])
                sent += batch
            else:
                deadline = deadline or time.monotonic() + settle_s
                time.sleep(0.5)


def local_config_name(state: Any) -> str:
    """The local stand-in for an endpoint config name: one per release state."""
    return f"local-{state.mode}-{state.champion}-{state.challenger}-{state.canary_share:g}"


def logged_requests(settings: Any, count: int) -> list[bytes]:
    """Recent logged searches as request bodies, one per user (the local stand-in for production
    traffic: a sticky canary splits *users*, so replaying one search per user gives the challenger
    its configured share of requests)."""
    from rankops.errors import DataError
    from rankops.lake import Lake

    lake = Lake.from_settings(settings)
    parts = lake.partitions("raw", "events")[-72:]
    columns = ["ts", "request_id", "user_id", "query_category", "device", "item_id"]
    frame = lake.read("raw", "events", columns, parts).to_pandas()
    if frame.empty:
        raise DataError("no logged requests in the lake to replay; run `rankops generate` or `rankops ingest`")
    newest = frame.sort_values("ts").groupby("user_id")["request_id"].last().tail(count)
    chosen = frame[frame["request_id"].isin(set(newest))]
    bodies = []
    for _, rows in chosen.groupby("request_id", sort=False):
        first = rows.iloc[0]
        body = {
            "user_id": first["user_id"],
            "context": {"category": first["query_category"], "device": first["device"]},
            "candidates": list(dict.fromkeys(rows["item_id"])),
        }
        bodies.append(json.dumps(body).encode())
    return bodies


def post_all(url: str, bodies: list[bytes]) -> None:
    """POST each body to ``/invocations`` over one keep-alive connection."""
    import http.client
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stall per request
    try:
        for body in bodies:
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
    finally:
        conn.close()


# -- SageMaker -------------------------------------------------------------------------------------
def _name(*parts: object) -> str:
    """A SageMaker resource name (<= 63 chars) unique for its parts."""
    readable = "-".join(str(p) for p in parts[:2])[:40].strip("-")
    return f"{readable}-{hashlib.sha256(repr(parts).encode()).hexdigest()[:12]}"


class SageMakerEndpoint:
    """The real endpoint. Requests come from :mod:`rankops.release.sagemaker`."""

    def __init__(self, name: str, sagemaker: Any, cloudwatch: Any) -> None:
        self.name = name
        self.sm = sagemaker
        self.cw = cloudwatch

    def _live_config(self) -> dict[str, Any]:
        config = self.sm.describe_endpoint(EndpointName=self.name)["EndpointConfigName"]
        return dict(self.sm.describe_endpoint_config(EndpointConfigName=config))

    def _model(self, event: dict[str, Any], serving_model: str) -> str:
        """The challenger's SageMaker Model (created once per version). Its environment is the serving
        model's (lake, online stores, their secrets: what the infrastructure gave the endpoint) plus
        the event's ``model_environment``."""
        name = _name(self.name, "v" + str(event["version"]), event["model_data_url"])
        existing = self.sm.list_models(NameContains=name)["Models"]
        if not existing:
            serving = self.sm.describe_model(ModelName=serving_model)["PrimaryContainer"].get("Environment", {})
            request: dict[str, Any] = {
                "ModelName": name,
                "ExecutionRoleArn": event["model_role"],
                "PrimaryContainer": {
                    "Image": event["image"],
                    "ModelDataUrl": event["model_data_url"],
                    "Environment": {**serving, **event.get("model_environment", {})},
                },
                "EnableNetworkIsolation": False,
            }
            if event.get("subnets"):
                request["VpcConfig"] = {
                    "Subnets": str(event["subnets"]).split(","),
                    "SecurityGroupIds": [event["security_group"]],
                }
            self.sm.create_model(**request)
        return name

    def _apply(self, event: dict[str, Any], mode: str, share: float = 0.0, blue_green: bool = False) -> dict[str, Any]:
        from rankops.release import sagemaker as requests

        live = self._live_config()
        current = next(v for v in live["ProductionVariants"] if v["VariantName"] == requests.CHAMPION_VARIANT)
        champion = requests.VariantSpec(current["ModelName"], current["InstanceType"], current["InitialInstanceCount"])
        challenger = requests.VariantSpec(
            self._model(event, current["ModelName"]), event["instance_type"], int(event.get("instance_count", 1))
        )
        if blue_green:  # the challenger becomes the production variant
            champion, challenger_spec, mode = challenger, None, "off"
        else:
            challenger_spec = challenger
        config_name = _name(self.name, mode, champion.model_name, challenger.model_name, share, event.get("execution"))
        capture: dict[str, Any] = {
            "data_capture_uri": live.get("DataCaptureConfig", {}).get("DestinationS3Uri"),
            "kms_key_id": live.get("KmsKeyId"),
        }
        live_names = [v["VariantName"] for v in live["ProductionVariants"]]
        if blue_green:  # every live variant name kept: SageMaker's guardrails apply (see promotion_config_request)
            request = requests.promotion_config_request(config_name, champion, live_names, **capture)
        else:
            request = requests.endpoint_config_request(config_name, champion, challenger_spec, mode, share, **capture)
        if not self.sm.list_endpoint_configs(NameContains=config_name)["EndpointConfigs"]:
            self.sm.create_endpoint_config(**request)
        # A shadow variant has no place in a guarded update (the pipeline promotes from a canary, so
        # this is the manual shadow -> promote path): that promotion is SageMaker's plain update.
        guarded = blue_green and not live.get("ShadowProductionVariants")
        if guarded:
            policy = requests.DeploymentPolicy(**deployment_policy(event))
            alarms = [a for a in str(event.get("alarms", "")).split(",") if a]
            self.sm.update_endpoint(**requests.update_endpoint_request(self.name, config_name, policy, alarms))
        else:
            self.sm.update_endpoint(**requests.switch_config_request(self.name, config_name))
        return {"endpoint_config": config_name, "mode": mode, "canary_share": share, "guardrails": guarded}

    def run(self, action: str, event: dict[str, Any]) -> dict[str, Any]:
        from rankops.release import sagemaker as requests

        if action in ("deploy", "promote"):
            return self._apply(event, "off", blue_green=True)
        if action == "shadow":
            return self._apply(event, "shadow")
        if action == "canary":
            share = float(event["share"])
            live = self._live_config()
            if any(v["VariantName"] == requests.CHALLENGER_VARIANT for v in live["ProductionVariants"]):
                self.sm.update_endpoint_weights_and_capacities(**requests.canary_weights_request(self.name, share))
                return {"mode": "canary", "canary_share": share}
            return self._apply(event, "canary", share)
        if action == "baseline":  # what serves before this release: Rollback restores exactly this
            live = self._live_config()
            champion = next(v for v in live["ProductionVariants"] if v["VariantName"] == requests.CHAMPION_VARIANT)
            return {"endpoint_config": live["EndpointConfigName"], "champion_model": champion["ModelName"]}
        if action == "rollback":
            return self._rollback(event)
        return self.check(event)

    def _rollback(self, event: dict[str, Any]) -> dict[str, Any]:
        """Back to the endpoint config recorded by ``baseline`` before the release changed anything.
        Rebuilding it from the live ``champion`` variant would be wrong after ``Promote``: that variant
        already serves the rejected model. Without a baseline (a manual rollback), the live champion
        alone is kept (drops a shadow or canary challenger)."""
        from rankops.release import sagemaker as requests

        restore = (event.get("restore") or {}).get("endpoint_config")
        if restore:
            self.sm.update_endpoint(**requests.switch_config_request(self.name, restore))
            return {"endpoint_config": restore, "mode": "off", "restored": True}
        live = self._live_config()
        current = next(v for v in live["ProductionVariants"] if v["VariantName"] == requests.CHAMPION_VARIANT)
        spec = requests.VariantSpec(current["ModelName"], current["InstanceType"], current["InitialInstanceCount"])
        name = _name(self.name, "rollback", spec.model_name, event.get("execution"))
        if not self.sm.list_endpoint_configs(NameContains=name)["EndpointConfigs"]:
            self.sm.create_endpoint_config(
                **requests.endpoint_config_request(
                    name,
                    spec,
                    data_capture_uri=live.get("DataCaptureConfig", {}).get("DestinationS3Uri"),
                    kms_key_id=live.get("KmsKeyId"),
                )
            )
        self.sm.update_endpoint(**requests.switch_config_request(self.name, name))
        return {"endpoint_config": name, "mode": "off", "restored": False}

    def check(self, event: dict[str, Any]) -> dict[str, Any]:
        """Error rate and latency of the challenger variant over the soak window (CloudWatch)."""
        from datetime import UTC, datetime, timedelta

        from rankops.release import checks

        window_s = int(event.get("window_s", 900))
        end = datetime.now(UTC)
        start = end - timedelta(seconds=window_s)
        if not event.get("variant_name"):
            raise ReleaseError("a release check needs the variant_name to judge (the pipeline sends 'challenger')")
        post = checks.PostTrafficEvent.from_event(
            {
                "window_minutes": max(1, window_s // 60),
                **check_thresholds(),
                "model_version": event.get("version"),  # the challenger's answers must not degrade
                **event.get("post_traffic", {}),
                "variant_name": event["variant_name"],
                "endpoint_name": self.name,
            }
        )
        figures = checks.traffic_figures(self.cw.get_metric_data(**checks.metric_data_request(post, start, end)))
        result = checks.post_traffic(figures, post)
        return {
            "ok": result.passed,
            "action": "advance" if result.passed else "rollback",
            "reasons": [c["detail"] for c in result.checks if not c["passed"]],
            "figures": result.figures,
        }
