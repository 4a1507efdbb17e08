"""Request parsing and response rendering shared by the emulator's modules.

AWS calls reach the emulator in two protocols: JSON 1.1 (ECS, SSM, CloudWatch Logs: `POST /` with
`X-Amz-Target: <prefix>.<Operation>`, errors as `{"__type", "message"}` plus header
`x-amzn-errortype`) and query/XML (STS, EC2: form-encoded `Action=...`, errors as
`<ErrorResponse>`). This module knows both; nothing here holds state.
"""

from __future__ import annotations

import http
import io
import json
import os
import uuid
from typing import Any, Callable

ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
TARGET_SERVICES = {
    ECS_TARGET_PREFIX: "ecs",
    "AmazonSSM": "ssm",
    "Logs_20140328": "logs",
    # Amazon EventBridge API Reference, "PutEvents": JSON 1.1, X-Amz-Target AWSEvents.PutEvents.
    # Mapped so its calls are logged as events:PutEvents and checked against the model.
    "AWSEvents": "events",
}
JSON_11 = "application/x-amz-json-1.1"
DEFAULT_REGION = "us-east-1"
# What a load balancer in front of an AWS endpoint calls its statuses (for {"html": true} faults).
LB_PHRASES = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
# A response as the middleware passes it around: (status, headers, body).
Resp = tuple[int, list, bytes]


class AwsError(Exception):
    """An error AWS would answer, rendered in the protocol of the call (JSON 1.1 here)."""

    def __init__(self, code: str, message: str, status: int = 400, extra: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra or {}  # more members of the error body, e.g. ConflictException.resourceIds


EcsError = AwsError  # the name the ECS code uses


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def api_key(api: str) -> str:
    """Normalize an API name: "RunTask" / "ecs:RunTask" / "AmazonSSM.GetParameter" -> "svc:Op"."""
    api = api.strip()
    if ":" in api:
        service, op = api.split(":", 1)
        return f"{service.lower()}:{op}"
    if "." in api:
        prefix, op = api.split(".", 1)
        return f"{TARGET_SERVICES.get(prefix, prefix.lower())}:{op}"
    return f"ecs:{api}"


def display_api(key: str) -> str:
    return key[4:] if key.startswith("ecs:") else key


def read_body(environ: dict) -> bytes:
    """Read the request body and put it back so the wrapped app can read it again."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        raw = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        raw = stream.read()
    else:
        raw = b""
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    environ.pop("wsgi.input_terminated", None)
    return raw


def status_line(status: int, phrase: str | None = None) -> str:
    if phrase is None:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
    return f"{status} {phrase}"


def respond(start_response: Any, resp: Resp, phrase: str | None = None) -> list[bytes]:
    status, headers, body = resp
    start_response(status_line(status, phrase), headers)
    return [body]


def json_resp(status: int, obj: Any, content_type: str = "application/json",
              extra_headers: list | None = None) -> Resp:
    data = json.dumps(obj).encode()
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(data))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ] + (extra_headers or [])
    return status, headers, data


def respond_json(start_response: Any, status: int, obj: Any, content_type: str = "application/json",
                 extra_headers: list | None = None) -> list[bytes]:
    return respond(start_response, json_resp(status, obj, content_type, extra_headers))


def ecs_error_resp(code: str, message: str, status: int = 400, extra: dict | None = None) -> Resp:
    """An AWS error in the JSON 1.1 protocol (ECS, SSM, Logs): body {"__type", "message"} plus
    any modelled members of the exception, header x-amzn-errortype."""
    return json_resp(status, {"__type": code, "message": message, **(extra or {})},
                     content_type=JSON_11, extra_headers=[("x-amzn-errortype", code)])


def ecs_error(start_response: Any, code: str, message: str, status: int = 400) -> list[bytes]:
    return respond(start_response, ecs_error_resp(code, message, status))


def fault_resp(spec: dict, json_protocol: bool) -> Resp:
    """The injected error of a throttle rule, in the protocol of the call (or as a load balancer's
    HTML page, which carries no AWS error code at all: SDKs see only the HTTP status)."""
    code, message, status = spec["code"], spec["message"], spec["status"]
    if spec.get("html"):
        phrase = LB_PHRASES.get(status) or status_line(status).split(" ", 1)[1]
        page = (
            f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {phrase}</h1></center>\r\n</body>\r\n</html>\r\n"
        ).encode()
        return status, [("Content-Type", "text/html"), ("Content-Length", str(len(page)))], page
    if json_protocol:
        return ecs_error_resp(code, message, status)
    if code == "ThrottlingException":
        code = "Throttling"  # what query-protocol services (STS) call it
    kind = "Receiver" if status >= 500 else "Sender"
    xml = (
        f"<ErrorResponse><Error><Type>{kind}</Type>"
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    return status, [("Content-Type", "text/xml"), ("Content-Length", str(len(xml))),
                    ("x-amzn-errortype", code)], xml


def capture(app: Any, environ: dict) -> Resp:
    """Run a WSGI app to completion and keep its answer, so it can be changed or thrown away."""
    got: dict = {}

    def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
        got["status"], got["headers"] = int(status.split(None, 1)[0]), list(headers)
        return lambda data: got.setdefault("written", []).append(data)

    result = app(environ, start_response)
    try:
        body = b"".join(got.get("written", [])) + b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return got["status"], got["headers"], body


def account_for(environ: dict, access_key: str) -> str:
    """The account a call acts in, by moto's rules (MOTO_ACCOUNT_ID, X-Moto-Account-Id, access key)."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "AKIAEXAMPLE")
