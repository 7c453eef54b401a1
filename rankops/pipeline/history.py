"""Reading a running execution's history, cheaply, for :func:`rankops.pipeline.runner.follow`.

The runner reports each state as it happens and answers approval requests, so it polls the
execution's history while it runs. Two costs made that the larger part of a rehearsal's time:

- moto's ``GetExecutionHistory`` ignores ``maxResults``, ``nextToken`` and ``reverseOrder`` and
  returns the whole history on every call; a release's history grows to ~7,000 events (the
  state machine's ``DescribeEndpoint`` polling loops), and serializing it 20 times a second took
  half of the process's time (its one GIL is shared by moto, the SageMaker emulator, the Lambda
  handlers and the traffic);
- each event's timestamp is parsed again by botocore on every call.

So: where the execution runs in this process's moto (the local runner's ``mock_aws``, a
rehearsal's in-process moto server) the new events are read from moto's own event list, no
serialization; anywhere else (Step Functions itself) from the API, newest page first until the
last seen event, which costs one page per poll. Both give the same events (a test compares them),
and polls take at most :data:`POLL_SHARE` of the time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

HISTORY_PAGE = 1000  # GetExecutionHistory's largest page
POLL_S = (0.05, 2.0)  # shortest and longest pause between two polls of a running execution
POLL_SHARE = 0.2  # of the time spent polling, at most

HistoryReader = Callable[[int], list[dict[str, Any]]]  # events with an id above the argument, oldest first


def poll_interval(last_poll_s: float) -> float:
    """The pause after a poll that took ``last_poll_s``: polling takes at most :data:`POLL_SHARE`
    of the time, between 50 ms and 2 s apart."""
    return min(POLL_S[1], max(POLL_S[0], last_poll_s * (1 - POLL_SHARE) / POLL_SHARE))


def new_events(sfn: Any, execution: str, after_id: int) -> list[dict[str, Any]]:
    """The execution's history events with an id above ``after_id``, oldest first, through the
    API: newest pages first (``reverseOrder``) until a page reaches ``after_id``; a service that
    ignores paging and order (moto) is read in full and filtered by id, with the same result."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": execution, "maxResults": HISTORY_PAGE, "reverseOrder": True}
    while True:
        page = sfn.get_execution_history(**request)
        newer = [event for event in page["events"] if event["id"] > after_id]
        found.extend(newer)
        if len(newer) < len(page["events"]) or not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    return sorted(found, key=lambda event: int(event["id"]))


def in_process(execution: str) -> HistoryReader | None:
    """A reader of moto's own event list for ``execution``, when it runs in this process's moto
    (Step Functions with ``execute_state_machine``); ``None`` otherwise (another process, AWS)."""
    try:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends
    except ImportError:  # pragma: no cover - moto is a dependency; a trimmed install reads the API
        return None
    parts = execution.split(":")  # arn:aws:states:<region>:<account>:execution:<machine>:<name>
    if len(parts) < 8 or parts[5] != "execution":
        return None
    region, account = parts[3], parts[4]
    try:
        backend = stepfunctions_parser_backends[account][region]
        found = backend.describe_execution(execution_arn=execution)
    except Exception:  # not an execution of this process's moto
        return None

    def read(after_id: int) -> list[dict[str, Any]]:
        worker = getattr(found, "exec_worker", None)
        env = worker.env if worker is not None else None
        if env is None:  # not started yet
            return []
        manager = env.event_manager
        with manager._mutex:  # moto appends under this lock, ids rising; a listed event never changes
            listed = manager._history_event_list
            start = len(listed)
            while start > 0 and listed[start - 1]["id"] > after_id:
                start -= 1
            fresh = listed[start:]
        return [_as_the_api_returns(event) for event in copy.deepcopy(fresh)]

    return read


def _as_the_api_returns(event: dict[str, Any]) -> dict[str, Any]:
    """moto keeps an event's time as ISO 8601 text and its type as an enum; boto3 hands out a
    ``datetime`` and a string."""
    kind = event["type"]
    stamp = event["timestamp"]
    return {
        **event,
        "type": str(getattr(kind, "value", kind)),
        "timestamp": datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else stamp,
    }


def reader(sfn: Any, execution: str) -> HistoryReader:
    """How :func:`rankops.pipeline.runner.follow` reads ``execution``'s new events."""
    return in_process(execution) or (lambda after_id: new_events(sfn, execution, after_id))
