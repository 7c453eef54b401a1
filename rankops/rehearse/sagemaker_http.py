"""The emulator's wire: SageMaker's JSON protocol and the runtime's InvokeEndpoint, on 127.0.0.1.

boto3 reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``
(botocore's service-specific endpoint variables). Every request is validated against botocore's
service model (``ParamValidator`` on the operation's input shape) and every response against the
output shape, so the emulator can neither accept what SageMaker rejects nor answer what boto3
could not have received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from botocore.session import get_session
from botocore.validate import ParamValidator

from rankops.rehearse.sagemaker_emulator import ApiError, Emulator

OPERATIONS = [
    "CreateModel",
    "DescribeModel",
    "ListModels",
    "CreateEndpointConfig",
    "DescribeEndpointConfig",
    "ListEndpointConfigs",
    "CreateEndpoint",
    "UpdateEndpoint",
    "UpdateEndpointWeightsAndCapacities",
    "DescribeEndpoint",
]
_session = get_session()
_control = _session.get_service_model("sagemaker")
_runtime = _session.get_service_model("sagemaker-runtime")


class ContractError(Exception):
    """The emulator produced a response botocore's model does not allow (a bug in the emulator)."""


def validate(shape: Any, params: dict[str, Any], what: str) -> None:
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ApiError("ValidationException", f"{what}: {report.generate_report()}")


def control(emulator: Emulator, target: str, body: bytes) -> dict[str, Any]:
    """One control-plane call: ``X-Amz-Target: SageMaker.<Op>`` with a JSON body."""
    op = target.removeprefix("SageMaker.")
    if op not in OPERATIONS:
        raise ApiError("UnknownOperationException", f"the rehearsal's SageMaker does not emulate {op}")
    model = _control.operation_model(op)
    params = json.loads(body or b"{}")
    validate(model.input_shape, params, op)
    result: dict[str, Any] = getattr(emulator, op)(params)
    try:
        validate(model.output_shape, result, f"{op} response")
    except ApiError as err:
        raise ContractError(str(err)) from err
    return result


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"not JSON: {value!r}")


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            if self.path.startswith("/endpoints/"):
                self._invoke(body)
                return
            result = control(self.emulator, self.headers.get("X-Amz-Target", ""), body)
            self._reply(200, json.dumps(result, default=_json).encode(), {"Content-Type": "application/x-amz-json-1.1"})
        except ApiError as err:
            error = json.dumps({"__type": err.code, "message": str(err)}).encode()
            self._reply(err.status, error, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": err.code})
        except Exception as err:  # an emulator bug: a 500 naming it, never a silent pass
            error = json.dumps({"__type": "InternalFailure", "message": repr(err)}).encode()
            self._reply(500, error, {"Content-Type": "application/x-amz-json-1.1"})

    def _invoke(self, body: bytes) -> None:
        name = unquote(self.path.split("/")[2])
        params: dict[str, Any] = {
            "EndpointName": name,
            "Body": body,
            "ContentType": self.headers.get("Content-Type", "application/json"),
            "Accept": self.headers.get("Accept", "application/json"),
        }
        target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
        if target:
            params["TargetVariant"] = target
        validate(_runtime.operation_model("InvokeEndpoint").input_shape, params, "InvokeEndpoint")
        variant, answer = self.emulator.invoke(name, body, params["ContentType"], params["Accept"], target)
        if answer.status >= 400:
            message = json.dumps({"__type": "ModelError", "message": answer.body.decode(errors="replace")[:500]})
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "ModelError"}
            self._reply(424, message.encode(), headers)
            return
        output = {"Body": answer.body, "ContentType": answer.content_type, "InvokedProductionVariant": variant}
        try:
            validate(_runtime.operation_model("InvokeEndpoint").output_shape, output, "InvokeEndpoint response")
        except ApiError as err:
            raise ContractError(str(err)) from err
        self._reply(
            200, answer.body, {"Content-Type": answer.content_type, "x-Amzn-Invoked-Production-Variant": variant}
        )


@contextmanager
def serving(emulator: Emulator) -> Iterator[str]:
    """Serve the emulator on a free 127.0.0.1 port; yields its URL."""
    handler = type("Handler", (_Handler,), {"emulator": emulator})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        emulator.close()
