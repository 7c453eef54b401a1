"""Sticky canary routing for callers of a SageMaker endpoint.

SageMaker splits a canary's traffic per *request* by variant weight; a user stays on one model
only if the caller names the variant (``TargetVariant``). The variant comes from the user's
bucket, whose salt includes the challenger's version (:mod:`rankops.release.bucketing`), so
callers cannot compute it alone: on every canary step the release Lambda publishes the **routing
document** (mode, share, salt, variant names) to ``s3://<artifacts>/release/<endpoint>/routing.json``,
and :class:`StickyInvoker` reads it and targets the variant. The local inference server routes
with the same function (:meth:`RoutingDocument.variant_for` -> ``bucketing.target_variant``), so
a user sees the same model in both. Raising the share only adds users (bucket < share), and the
salt is fixed for one challenger: nobody changes variant while the canary grows.

Outside a canary the document says ``off``: no ``TargetVariant``, the endpoint's weights decide.
Standard library and boto3 only (Lambda and caller runtimes).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from rankops import documents
from rankops.release import bucketing
from rankops.release.sagemaker import CHALLENGER_VARIANT, CHAMPION_VARIANT


def routing_uri(artifacts_bucket: str, endpoint_name: str) -> str:
    """Where callers of ``endpoint_name`` read its routing document."""
    return f"s3://{artifacts_bucket}/release/{endpoint_name}/routing.json"


@dataclass(frozen=True)
class RoutingDocument:
    endpoint: str
    mode: str = "off"  # "canary": target variants by bucket; "off": no TargetVariant
    share: float = 0.0
    salt: str = ""
    champion_variant: str = CHAMPION_VARIANT
    challenger_variant: str = CHALLENGER_VARIANT

    @classmethod
    def canary(
        cls, endpoint: str, share: float, salt_base: str, challenger_version: str, pinned: bool = False
    ) -> RoutingDocument:
        """A canary at ``share``; ``pinned``: share 0, every user named to the champion variant (while
        the canary's variants are being set up, so that the endpoint's weights route nobody)."""
        if pinned:
            share = 0.0
        elif not 0.0 < share <= 1.0:
            raise ValueError(f"canary share must be in (0, 1], got {share}")
        return cls(endpoint, "canary", float(share), bucketing.release_salt(salt_base, challenger_version))

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RoutingDocument:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def variant_for(self, user_id: str) -> str | None:
        """The variant this user must be sent to (None: let the endpoint's weights decide)."""
        if self.mode != "canary":
            return None
        return bucketing.target_variant(user_id, self.share, self.salt, self.champion_variant, self.challenger_variant)


def publish(uri: str, doc: RoutingDocument, s3: Any = None) -> None:
    documents.write_json(uri, doc.as_dict(), s3)


def read(uri: str, endpoint: str, s3: Any = None) -> RoutingDocument:
    """The published document; none published yet means no canary (``off``)."""
    found = documents.read_json(uri, s3)
    return RoutingDocument.from_dict(found) if found else RoutingDocument(endpoint)


class StickyInvoker:
    """``InvokeEndpoint`` with the user's variant: the caller-side half of a sticky canary.
    The document is re-read at most every ``max_age_s`` (a canary step waits far longer)."""

    def __init__(self, runtime: Any, endpoint: str, uri: str, s3: Any = None, max_age_s: float = 30.0) -> None:
        self.runtime, self.endpoint, self.uri, self.s3, self.max_age_s = runtime, endpoint, uri, s3, max_age_s
        self._doc: RoutingDocument | None = None
        self._read_at = 0.0

    def document(self) -> RoutingDocument:
        if self._doc is None or time.monotonic() - self._read_at > self.max_age_s:
            self._doc, self._read_at = read(self.uri, self.endpoint, self.s3), time.monotonic()
        return self._doc

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ``InvokeEndpoint`` arguments for one ranking request (``body["user_id"]`` decides)."""
        args: dict[str, Any] = {
            "EndpointName": self.endpoint,
            "ContentType": "application/json",
            "Body": json.dumps(body).encode(),
        }
        variant = self.document().variant_for(str(body.get("user_id", "")))
        if variant is not None:
            args["TargetVariant"] = variant
        return args

    def invoke(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.runtime.invoke_endpoint(**self.request(body))
        return dict(json.loads(answer["Body"].read()))
