"""Adapter that lets moto's Step Functions interpreter run *our* tasks locally.

moto (pinned in setup.py) ships an ASL interpreter derived from LocalStack's. Out of
the box it cannot run the pipeline: SageMaker and EMR integrations are unsupported,
Lambda handlers never run, and Wait/Retry sleep for real. Four seams fix that, all
installed and removed together by :func:`installed`:

1. ``state_task_factory.state_task_service_for`` is rebound so ``sagemaker``, ``emr-serverless``
   and ``elasticmapreduce`` resources (``.sync`` or request-response), and ``aws-sdk:sagemaker:*``
   calls, run a *local handler* (a function ``(action, parameters) -> describe-like dict``);
   a handler that raises fails the state with ``States.TaskFailed`` and a Describe-like cause,
   as AWS reports a failed job.
2. ``LambdaSimpleBackend.invoke`` calls the function's real handler in-process, with the
   function's environment variables set for the call, and reports
   exceptions as ``x-amz-function-error: Unhandled`` with ``errorType``/``errorMessage``, so
   Retry/Catch on Lambda errors behave as in AWS.
3. and 4. Retry intervals and Wait states are shortened by ``time_scale`` (the JSON stays
   identical to what CDK deploys; only the clock is faster).

``tests/unit/test_pipeline_engine.py`` is a sub-second smoke test of every seam: if a moto
upgrade moves one of them, it fails loudly.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from moto.awslambda_simple import models as lambda_simple
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from rankops.environ import overlay

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
LOCAL_SERVICES = frozenset({"sagemaker", "emr-serverless", "elasticmapreduce"})
LocalHandler = Callable[[str, dict[str, Any]], dict[str, Any]]


class LocalTaskFailed(Exception):
    """A local job failed; ``cause`` is what AWS would put in the failure (a Describe-like dict)."""

    def __init__(self, cause: Mapping[str, Any]) -> None:
        super().__init__(json.dumps(cause, default=str))
        self.cause = dict(cause)


_handlers: dict[str, LocalHandler] = {}


def _task_failed(env: Any, task: Any, ex: Exception) -> FailureEvent:
    cause = str(ex) if isinstance(ex, LocalTaskFailed) else json.dumps({"error": repr(ex)})
    error = StatesErrorNameType.StatesTaskFailed.to_name()
    return FailureEvent(
        env=env,
        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(  # type: ignore[typeddict-item]
            taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=cause, resource=task._get_sfn_resource(), resourceType=task._get_sfn_resource_type()
            )
        ),
    )


def _run_local(task: Any, env: Any, service: str, parameters: dict[str, Any]) -> None:
    handler = _handlers.get(service)
    if handler is None:
        raise LocalTaskFailed({"FailureReason": f"no local handler for service {service!r}"})
    result = handler(task.resource.api_action, parameters)
    env.stack.append(result)


class LocalServiceTask(StateTaskServiceCallback):
    """Optimized integrations (``sagemaker:createTrainingJob.sync`` ...) run by a local handler."""

    def __init__(self) -> None:
        patterns: set[Any] = {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
        super().__init__(supported_integration_patterns=patterns)

    def _get_supported_parameters(self) -> set[str] | None:
        return set()  # any parameters: the local handler validates what it needs

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        _run_local(self, env, self.resource.service_name, normalised_parameters)

    def _build_sync_resolver(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> Callable[[], Any]:
        result = env.stack.pop()  # the job already ran to completion: its description is the outcome
        return lambda: result

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        return _task_failed(env, self, ex)


class LocalAwsSdkTask(StateTaskServiceAwsSdk):
    """``aws-sdk:<service>:<action>``: local handler for local services, moto for the rest."""

    def _eval_service_task(
        self, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        if self.resource.api_name in _handlers:
            _run_local(self, env, self.resource.api_name, normalised_parameters)
        else:
            super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if self.resource.api_name in _handlers:
            return _task_failed(env, self, ex)
        return super()._from_error(env, ex)


def _invoke_lambda(
    backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: dict[str, str]
) -> bytes:
    """Run the Lambda's handler (``module.path.function``) in-process, as the Lambda runtime would,
    with the function's own environment variables (what the template gives it) set for the call."""
    fn = backend.get_function(function_name, qualifier)
    module_name, _, attr = fn.handler.rpartition(".")
    event = json.loads(body) if body else {}
    context = SimpleNamespace(
        function_name=fn.function_name, aws_request_id=str(time.time_ns()), get_remaining_time_in_millis=lambda: 900_000
    )
    try:
        with _function_environment(dict(getattr(fn, "environment_vars", None) or {})):
            result = getattr(importlib.import_module(module_name), attr)(event, context)
    except Exception as err:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": type(err).__name__,
                "errorMessage": str(err),
                "stackTrace": traceback.format_exception(err)[-3:],
            }
        ).encode()
    return json.dumps(result).encode()


_lock = threading.Lock()
_invoke_lock = threading.RLock()


@contextmanager
def _function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """The function's environment over this process's for one invocation (one at a time: the
    environment is process-wide), then this process's again."""
    with _invoke_lock, overlay(variables):
        yield


@contextmanager
def installed(handlers: Mapping[str, LocalHandler], time_scale: float = 0.0) -> Iterator[None]:
    """Install the seams for the duration of a local run (one run per process at a time)."""
    originals = (
        state_task_factory.state_task_service_for,
        lambda_simple.LambdaSimpleBackend.invoke,
        retrier_decl.time,
        WaitFunction._wait_interval,
    )
    factory, _, _, wait_interval = originals

    def service_for(service_name: str) -> Any:
        if service_name in LOCAL_SERVICES:
            return LocalServiceTask()
        if service_name == "aws-sdk":
            return LocalAwsSdkTask()
        return factory(service_name)

    def scaled_wait(self: Any, env: Any, wait_seconds: int) -> None:
        wait_interval(self, env, round(wait_seconds * time_scale))

    with _lock:
        _handlers.clear()
        _handlers.update(handlers)
        state_task_factory.state_task_service_for = service_for
        lambda_simple.LambdaSimpleBackend.invoke = _invoke_lambda  # type: ignore[method-assign,assignment]
        retrier_decl.time = SimpleNamespace(sleep=lambda s: time.sleep(s * time_scale))  # type: ignore[assignment]
        WaitFunction._wait_interval = scaled_wait  # type: ignore[method-assign]
        try:
            yield
        finally:
            state_task_factory.state_task_service_for = originals[0]
            lambda_simple.LambdaSimpleBackend.invoke = originals[1]  # type: ignore[method-assign]
            retrier_decl.time = originals[2]
            WaitFunction._wait_interval = originals[3]  # type: ignore[method-assign]
            _handlers.clear()
