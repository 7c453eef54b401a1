"""Run a rendered state machine locally and record what happened.

The runner stands up the AWS resources the definition talks to inside moto (the
Lambda functions, with their real handlers; SNS topics), starts one execution of the
exact definition text, prints each state as it starts and finishes, and saves the
execution history as JSON under ``RANKOPS_HOME/pipeline/executions``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rankops.errors import RankopsError
from rankops.lake import new_run_id
from rankops.pipeline import history
from rankops.pipeline.engine import MOTO_CONFIG, LocalHandler, installed

REGION = "eu-west-1"
ACCOUNT = "123456789012"


@dataclass
class StateRecord:
    name: str
    type: str
    started: float
    ended: float | None = None
    status: str = "running"  # running | succeeded | failed
    error: str | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started


@dataclass
class ExecutionRecord:
    name: str
    status: str
    started: float
    ended: float
    input: dict[str, Any]
    output: Any
    error: str | None
    cause: str | None
    states: list[StateRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    template_sha: str = ""  # sha256 of the definition text before substitution (what CDK deploys)
    definition_sha: str = ""  # sha256 of the text the interpreter ran (as the state machine stored it)
    approvals: list[dict[str, Any]] = field(default_factory=list)  # approval requests and their answers

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LocalResources:
    """What must exist in moto for the definition to run: Lambda name -> handler path, topics."""

    lambdas: Mapping[str, str]
    topics: tuple[str, ...] = ()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _zip_stub() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "handlers run in-process from the repository (rankops.pipeline.engine)")
    return buffer.getvalue()


def _state_events(
    events: list[dict[str, Any]],
    records: dict[str, StateRecord],
    order: list[StateRecord],
    on_state: Callable[[StateRecord], None] | None,
) -> None:
    """Fold new history events into per-state records (top-level and nested alike)."""
    for event in events:
        kind = event["type"]
        stamp = event["timestamp"].timestamp() if hasattr(event["timestamp"], "timestamp") else time.time()
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            record = StateRecord(name, kind[: -len("StateEntered")], stamp)
            records[name] = record
            order.append(record)
            if on_state:
                on_state(record)
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in records and records[name].status == "running":
                records[name].ended, records[name].status = stamp, "succeeded"
                if on_state:
                    on_state(records[name])
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed") and order:
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            running = [r for r in order if r.status == "running"]
            if running:
                running[-1].error = f"{details.get('error')}: {str(details.get('cause', ''))[:300]}"


# An approver sees the approval request (the SNS message the state machine publishes, with
# the release's evidence) and answers: True approves, False rejects.
Approver = Callable[[dict[str, Any]], bool]


def _approval_requests(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``.waitForTaskToken`` publications among ``events``: their message, with the token."""
    requests = []
    for event in events:
        details = event.get("taskScheduledEventDetails") or {}
        if event["type"] != "TaskScheduled" or not str(details.get("resource", "")).endswith(".waitForTaskToken"):
            continue
        message = json.loads(details.get("parameters") or "{}").get("Message", {})
        message = json.loads(message) if isinstance(message, str) else message
        if isinstance(message, dict) and message.get("task_token"):
            requests.append(message)
    return requests


def _answer(sfn: Any, request: dict[str, Any], approver: Approver | None) -> dict[str, Any]:
    """Send the approver's answer (or, with no approver, a rejection that says how to approve)."""
    token = request["task_token"]
    shown = {k: v for k, v in request.items() if k not in ("task_token", "approve", "reject")}
    if approver is None:
        approved, cause = False, "approval required but nobody to ask: run with --approve yes|no"
    else:
        approved, cause = approver(shown), "rejected by the local approver"
    if approved:
        sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True, "by": "local"}))
    else:
        sfn.send_task_failure(taskToken=token, error="ApprovalRejected", cause=cause)
    return {**shown, "approved": approved}


def run_definition(
    definition: str,
    execution_input: Mapping[str, Any],
    handlers: Mapping[str, LocalHandler],
    resources: LocalResources,
    *,
    name: str = "rankops-pipeline",
    time_scale: float = 0.0,
    timeout_s: float = 3600,
    on_state: Callable[[StateRecord], None] | None = None,
    template_sha: str = "",
    approver: Approver | None = None,
) -> ExecutionRecord:
    """Execute ``definition`` (ASL JSON text, substitutions already applied) to completion.

    A run longer than ``timeout_s`` is stopped and recorded as ``ABORTED`` (error
    ``LocalTimeout``); approval requests go to ``approver`` (none: they are rejected)."""
    try:
        json.loads(definition)
    except json.JSONDecodeError as err:
        raise RankopsError(f"the state machine definition is not valid JSON: {err}") from err
    quiet = logging.getLogger("moto")  # the interpreter logs every caught error; the history has them
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return _run(
            definition,
            execution_input,
            handlers,
            resources,
            name,
            time_scale,
            timeout_s,
            on_state,
            template_sha,
            approver,
        )
    finally:
        quiet.setLevel(level)


def _run(
    definition: str,
    execution_input: Mapping[str, Any],
    handlers: Mapping[str, LocalHandler],
    resources: LocalResources,
    name: str,
    time_scale: float,
    timeout_s: float,
    on_state: Callable[[StateRecord], None] | None,
    template_sha: str,
    approver: Approver | None,
) -> ExecutionRecord:
    import boto3
    from moto import mock_aws

    with mock_aws(config=MOTO_CONFIG), installed(handlers, time_scale):  # type: ignore[call-overload]
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="rankops-local", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lambdas = boto3.client("lambda", region_name=REGION)
        for function_name, handler in resources.lambdas.items():
            lambdas.create_function(
                FunctionName=function_name,
                Runtime="python3.11",
                Role=role,
                Handler=handler,
                Code={"ZipFile": _zip_stub()},
                Timeout=900,
            )
        sns = boto3.client("sns", region_name=REGION)
        for topic in resources.topics:
            sns.create_topic(Name=topic)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"]
        return start_and_follow(
            sfn, machine, execution_input, on_state=on_state, approver=approver, timeout_s=timeout_s,
            template_sha=template_sha,
        )  # fmt: skip


def start_and_follow(
    sfn: Any,
    machine: str,
    execution_input: Mapping[str, Any],
    *,
    on_state: Callable[[StateRecord], None] | None = None,
    approver: Approver | None = None,
    timeout_s: float = 3600,
    template_sha: str = "",
) -> ExecutionRecord:
    """Start one execution of the state machine ``machine`` (wherever ``sfn`` reaches: the local
    runner's mock, or a rehearsal's moto server), report each state, answer approval requests,
    and return its record once it ends (stopped after ``timeout_s``: ``LocalTimeout``)."""
    stored = sfn.describe_state_machine(stateMachineArn=machine)["definition"]
    execution_name = new_run_id()
    started = time.time()
    execution = sfn.start_execution(stateMachineArn=machine, name=execution_name, input=json.dumps(execution_input))[
        "executionArn"
    ]
    return follow(
        sfn, execution, execution_input, on_state=on_state, approver=approver, timeout_s=timeout_s,
        template_sha=template_sha, definition_sha=sha(stored), started=started,
    )  # fmt: skip


def follow(
    sfn: Any,
    execution: str,
    execution_input: Mapping[str, Any],
    *,
    on_state: Callable[[StateRecord], None] | None = None,
    approver: Approver | None = None,
    timeout_s: float = 3600,
    template_sha: str = "",
    definition_sha: str = "",
    started: float | None = None,
) -> ExecutionRecord:
    """Follow the execution ``execution`` (an ARN; started here or by someone else, e.g. a trigger
    Lambda): report each state, answer approval requests, return its record once it ends."""
    execution_name = execution.rsplit(":", 1)[-1]
    started = time.time() if started is None else started
    read_history = history.reader(sfn, execution)
    records: dict[str, StateRecord] = {}
    order: list[StateRecord] = []
    approvals: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    timed_out = False
    while True:
        polled = time.monotonic()
        status = sfn.describe_execution(executionArn=execution)
        fresh = read_history(events[-1]["id"] if events else 0)
        events.extend(fresh)
        _state_events(fresh, records, order, on_state)
        if status["status"] != "RUNNING":
            break
        approvals.extend(_answer(sfn, request, approver) for request in _approval_requests(fresh))
        if time.monotonic() > deadline and not timed_out:  # stop it, then record how it ended
            sfn.stop_execution(executionArn=execution, error="LocalTimeout", cause=f"exceeded {timeout_s:.0f}s")
            timed_out = True
            continue
        time.sleep(history.poll_interval(time.monotonic() - polled))
    for record in order:
        if record.status == "running":
            record.ended, record.status = time.time(), "failed"
    output = json.loads(status["output"]) if status.get("output") else None
    return ExecutionRecord(
        name=execution_name,
        status=status["status"],
        started=started,
        ended=time.time(),
        input=dict(execution_input),
        output=output,
        error="LocalTimeout" if timed_out else status.get("error"),
        cause=f"the local run exceeded {timeout_s:.0f}s and was stopped" if timed_out else status.get("cause"),
        states=order,
        events=[{**e, "timestamp": e["timestamp"].timestamp()} for e in events],
        template_sha=template_sha,
        definition_sha=definition_sha,
        approvals=approvals,
    )


# -- history -----------------------------------------------------------------------------------
def history_dir(home: Path) -> Path:
    return home / "pipeline" / "executions"


def save(home: Path, record: ExecutionRecord) -> Path:
    folder = history_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=2, default=str))
    tmp.replace(path)
    return path


def load_history(home: Path, last: int = 10) -> list[dict[str, Any]]:
    """The ``last`` saved executions, newest first."""
    folder = history_dir(home)
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"), reverse=True)[:last]
    return [json.loads(p.read_text()) for p in paths]
