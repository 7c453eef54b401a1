"""The shadow comparison in AWS, from SageMaker data capture.

In a shadow, SageMaker sends each sampled request to the production variant (``champion``) and
a copy to the shadow variant (``challenger``); the caller only ever sees the production answer.
With data capture on, both variants' invocations land under
``<DestinationS3Uri>/<endpoint>/<variant>/...`` in the one format :mod:`rankops.monitoring.data_capture`
parses. The two copies of one request are paired by ``inferenceId`` when the caller set one, else by
the request body (the shadow copy is byte-identical), in time order. Each pair's scores, aligned by
item, feed the same accumulator and summary as the local server's shadow
(:class:`rankops.release.stats.ShadowAccumulator`, :func:`rankops.release.stats.summarize`), and the
same :func:`rankops.release.decisions.shadow_decision` judges the result.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from rankops import documents
from rankops.monitoring import data_capture
from rankops.monitoring.data_capture import CapturedInvocation, CaptureError
from rankops.release.stats import ShadowAccumulator, summarize


def _pair_key(invocation: CapturedInvocation) -> str:
    if invocation.inference_id:
        return "id:" + invocation.inference_id
    return "body:" + json.dumps(invocation.request, sort_keys=True, separators=(",", ":"))


def pair(
    production: Iterable[CapturedInvocation], shadow: Iterable[CapturedInvocation]
) -> list[tuple[CapturedInvocation, CapturedInvocation]]:
    """(production, shadow) copies of the same requests; unmatched invocations are left out."""
    waiting: dict[str, deque[CapturedInvocation]] = defaultdict(deque)
    for invocation in sorted(shadow, key=lambda i: i.inference_time):
        waiting[_pair_key(invocation)].append(invocation)
    pairs = []
    for invocation in sorted(production, key=lambda i: i.inference_time):
        queue = waiting.get(_pair_key(invocation))
        if queue:
            pairs.append((invocation, queue.popleft()))
    return pairs


def _scores(response: dict[str, Any]) -> dict[str, float]:
    return {str(r["item_id"]): float(r["score"]) for r in response.get("ranking", []) if "score" in r}


def compare(pairs: Iterable[tuple[CapturedInvocation, CapturedInvocation]], bins: int = 20) -> dict[str, Any]:
    """The shadow summary (rank correlation, score KL, ...) of paired captures; answers that are not
    a ranking by the model itself (a fallback) are skipped, as the local shadow skips them."""
    accumulator = ShadowAccumulator()
    for production, shadow in pairs:
        if production.response.get("fallback") or shadow.response.get("fallback"):
            continue
        champion, challenger = _scores(production.response), _scores(shadow.response)
        items = [item for item in champion if item in challenger]
        if items:
            accumulator.add(np.array([champion[i] for i in items]), np.array([challenger[i] for i in items]))
    return summarize(accumulator.snapshot(), bins)


def read_variant(
    s3: Any, destination_uri: str, endpoint: str, variant: str, since: datetime
) -> tuple[list[CapturedInvocation], int]:
    """One variant's captured invocations since ``since`` (and how many lines did not parse).

    A capture file holds many invocations (JSON Lines) in the hour folder of its first line
    (``<variant>/yyyy/mm/dd/hh/``): the listing starts at the folder of the hour before ``since``'s
    (slack for a file whose last lines run past its folder's hour), so a check reads its window,
    not the endpoint's whole history, with one GetObject per file."""
    bucket, prefix = documents.split_s3(data_capture.variant_prefix(destination_uri, endpoint, variant))
    start = prefix + f"{(since - timedelta(hours=1)).astimezone(UTC):%Y/%m/%d/%H}"
    found, broken = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, StartAfter=start):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode("utf-8")
            for line in filter(None, body.splitlines()):
                try:
                    invocation = data_capture.parse_line(line, endpoint, variant)
                except CaptureError:
                    broken += 1
                    continue
                if invocation.inference_time >= since:
                    found.append(invocation)
    return found, broken
