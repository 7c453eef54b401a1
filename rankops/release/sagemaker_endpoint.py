"""The release steps against a SageMaker endpoint (:class:`rankops.release.endpoint.Endpoint`).

Endpoint configs come from :mod:`rankops.release.sagemaker` (shadow variant, two weighted
production variants, then a blue/green ``UpdateEndpoint`` with a ``DeploymentConfig`` whose
``AutoRollbackConfiguration`` watches the P1 alarms). The state machine polls ``DescribeEndpoint``
until an update finishes. Checks read CloudWatch (and, in a shadow, data capture); ``route``
publishes the sticky canary's routing document. What each step does in AWS: ``docs/release.md``.

Standard library and boto3 at import time (the Lambda runtime).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from typing import Any

from rankops import aws_clients
from rankops.errors import ReleaseError
from rankops.integrity import MODEL_DIGEST_ENV  # standard library only
from rankops.release import capture_outcomes, shadow_capture
from rankops.release.endpoint import ROUTING_SALT_VARIABLE, check_thresholds, deployment_policy


def _name(*parts: object) -> str:
    """A SageMaker resource name (<= 63 chars) unique for its parts."""
    readable = "-".join(str(p) for p in parts[:2])[:40].strip("-")
    return f"{readable}-{hashlib.sha256(repr(parts).encode()).hexdigest()[:12]}"


class SageMakerEndpoint:
    """The real endpoint. Requests come from :mod:`rankops.release.sagemaker`."""

    def __init__(self, name: str, sagemaker: Any, cloudwatch: Any, s3: Any = None) -> None:
        self.name = name
        self.sm = sagemaker
        self.cw = cloudwatch
        self.s3 = s3

    @classmethod
    def open(cls, name: str) -> SageMakerEndpoint:
        """The endpoint through this process's boto3 clients (the Lambda's role and region)."""
        return cls(name, aws_clients.client("sagemaker"), aws_clients.client("cloudwatch"))

    @staticmethod
    def now() -> datetime:
        """The end of a check's window. A rehearsal replaces it with its emulated clock, the time
        its SageMaker emulator stamps metrics and data capture with."""
        return datetime.now(UTC)

    def describe(self) -> dict[str, Any]:
        return dict(self.sm.describe_endpoint(EndpointName=self.name))

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
            tree = self.verify_archive(event)
            serving = self.sm.describe_model(ModelName=serving_model)["PrimaryContainer"].get("Environment", {})
            environment = {**serving, **event.get("model_environment", {}), MODEL_DIGEST_ENV: tree}
            request: dict[str, Any] = {
                "ModelName": name,
                "ExecutionRoleArn": event["model_role"],
                "PrimaryContainer": {
                    "Image": event["image"],
                    "ModelDataUrl": event["model_data_url"],
                    "Environment": environment,
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

    def verify_archive(self, event: dict[str, Any]) -> str:
        """The model archive's tree digest, after checking each of its files against the digests
        the gate recorded (``artifacts`` of the gate result): a tampered or swapped archive is
        refused before any SageMaker model is made of it; the container re-checks at start."""
        from rankops import integrity

        url = str(event["model_data_url"])
        gated = (event.get("artifacts") or {}).get("files") or {}
        bucket, _, key = url.removeprefix("s3://").partition("/")
        s3 = self.s3 or aws_clients.client("s3")
        try:
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as err:  # botocore's errors: a release of an unreadable archive is refused
            raise ReleaseError(f"cannot read the model archive {url} to verify it: {err}") from None
        try:
            files = integrity.archive_digests(data)
            integrity.verify_files(files, gated, f"model archive {url} (version {event['version']})")
        except integrity.IntegrityError as err:
            raise ReleaseError(str(err)) from None
        return integrity.tree_digest(files)

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

        if action == "route":  # the canary step's endpoint update has settled: callers may target it
            return self._publish_routing(event, float(event["share"]))
        if action in ("deploy", "promote", "shadow", "rollback"):
            self._publish_routing(event, 0.0)  # before the variants change: callers stop targeting
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
            # the canary's first step: until ``route`` publishes its share, sticky callers name the
            # champion (weights alone would send a random tenth of requests to the challenger, and
            # those users back to the champion once the share is published)
            self._publish_routing(event, 0.0, pinned=True)
            return self._apply(event, "canary", share)
        if action == "baseline":  # what serves before this release: Rollback restores exactly this
            live = self._live_config()
            champion = next(v for v in live["ProductionVariants"] if v["VariantName"] == requests.CHAMPION_VARIANT)
            return {"endpoint_config": live["EndpointConfigName"], "champion_model": champion["ModelName"]}
        if action == "rollback":
            return self._rollback(event)
        return self.check(event)

    def _publish_routing(self, event: dict[str, Any], share: float, pinned: bool = False) -> dict[str, Any]:
        """Publish the routing document (:mod:`rankops.release.routing_document`): a canary at
        ``share``, or ``off`` (share 0), or ``pinned``: every user named to the champion variant.
        Without ``routing_uri`` in the event nothing is published."""
        from rankops.release import routing_document as routing

        uri = event.get("routing_uri")
        if not uri:
            return {"published": False}
        if share > 0 or pinned:
            salt = os.environ.get(ROUTING_SALT_VARIABLE) or "rankops"
            doc = routing.RoutingDocument.canary(self.name, share, salt, str(event["version"]), pinned)
        else:
            doc = routing.RoutingDocument(self.name)
        routing.publish(str(uri), doc)
        return {"published": True, "routing_uri": uri, **doc.as_dict()}

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
        from datetime import timedelta

        from rankops.release import checks

        window_s = int(event.get("window_s", 900))
        end = self.now()
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
        reasons = [c["detail"] for c in result.checks if not c["passed"]]
        answer: dict[str, Any] = {"figures": result.figures}
        ok = result.passed
        thresholds = {**check_thresholds(), **event.get("post_traffic", {})}
        if event.get("stage") == "shadow":  # a shadow also compares the scores (data capture)
            shadow, decision = self._shadow_comparison(start, thresholds)
            answer["shadow"] = shadow
            ok = ok and decision.action == "advance"
            reasons += [] if decision.action == "advance" else decision.reasons
        if event.get("stage") == "canary":  # a canary is also judged on what users did (CTR, contacts)
            judged = self._canary_outcomes(start, end, thresholds)
            if judged is not None:
                answer["outcomes"] = {"action": judged.action, "reasons": judged.reasons, **judged.evidence}
                if capture_outcomes.blocks(judged, thresholds):
                    ok, reasons = False, [*reasons, *judged.reasons]
        return {"ok": ok, "action": "advance" if ok else "rollback", "reasons": reasons, **answer}

    def _canary_outcomes(self, since: datetime, until: datetime, thresholds: dict[str, Any]) -> Any:
        """Both variants' captured answers since ``since`` joined to the lake's outcome events
        (:mod:`rankops.release.capture_outcomes`); ``None`` when outcomes are not judged."""
        from rankops.release import sagemaker as requests

        if thresholds.get("canary_outcomes", "when_logged") == "off":
            return None
        raw = os.environ.get(capture_outcomes.RAW_ZONE_VARIABLE)
        if not raw:
            raise ReleaseError(
                f"${capture_outcomes.RAW_ZONE_VARIABLE} is not set: the canary's outcomes cannot be read"
            )
        destination = self._live_config().get("DataCaptureConfig", {}).get("DestinationS3Uri")
        if not destination:
            raise ReleaseError(f"endpoint {self.name} has no data capture: a canary cannot be judged on outcomes")
        s3 = self.s3 or aws_clients.client("s3")
        answers = [
            row
            for variant in (requests.CHAMPION_VARIANT, requests.CHALLENGER_VARIANT)
            for row in capture_outcomes.shown(
                i for i in shadow_capture.read_variant(s3, destination, self.name, variant, since)[0]
                if i.inference_time < until
            )
        ]  # fmt: skip
        window = {"since": since.isoformat(), "until": until.isoformat(), "answers": len(answers)}
        return capture_outcomes.decide(answers, capture_outcomes.read_outcomes(raw, since), thresholds, window)

    def _shadow_comparison(self, since: Any, thresholds: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """Rank correlation and score KL of the shadow, from both variants' data capture since ``since``."""
        from rankops.release import decisions
        from rankops.release import sagemaker as requests

        destination = self._live_config().get("DataCaptureConfig", {}).get("DestinationS3Uri")
        if not destination:
            raise ReleaseError(f"endpoint {self.name} has no data capture: a shadow cannot be compared")
        s3 = self.s3 or aws_clients.client("s3")
        read = [shadow_capture.read_variant(s3, destination, self.name, v, since)
                for v in (requests.CHAMPION_VARIANT, requests.CHALLENGER_VARIANT)]  # fmt: skip
        summary = shadow_capture.compare(
            shadow_capture.pair(read[0][0], read[1][0]), int(thresholds.get("shadow_bins", 20))
        )
        summary["unparsed_lines"] = read[0][1] + read[1][1]
        decision = decisions.shadow_decision(
            summary,
            int(thresholds.get("shadow_min_requests", 100)),
            float(thresholds.get("min_rank_correlation", 0.3)),
            float(thresholds.get("max_kl_divergence", 0.5)),
        )
        return summary, decision
