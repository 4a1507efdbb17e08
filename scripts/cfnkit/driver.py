"""CloudFormation's side of a resource handler, as the Registry plays it.

Each operation (CREATE, UPDATE, DELETE, READ, LIST) has one bearer token; its first request
carries the template's properties with every scalar as a string (CloudFormation does not
keep a template's types); while the handler answers IN_PROGRESS, CloudFormation waits
callbackDelaySeconds and invokes it again with the returned callbackContext (and, by
default, the returned resourceModel as the desired state), until SUCCESS or FAILED.

    operation = Operation("CREATE", "Org::ECS::TaskRun", "Migrate", {"Timeout": 300},
                          stack_id=STACK_ID, credentials=caller_credentials("demo"))
    last = play(operation, invoke)   # invoke(request) -> the handler's answer (a dict)
"""
from __future__ import annotations

import time
import uuid
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable, Optional

from cfnkit import ACCOUNT_ID, REGION

# AWS's documentation example keys: never valid anywhere, accepted by the emulator.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # nosec - AWS's doc example


def caller_credentials(session_token: str) -> dict:
    """The requestData.callerCredentials of a request (the documentation example keys)."""
    return {
        "accessKeyId": ACCESS_KEY_ID,
        "secretAccessKey": SECRET_ACCESS_KEY,
        "sessionToken": session_token,
    }


def strings(value: Any) -> Any:
    """`value` with its scalars as CloudFormation sends them: true/false, numbers as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return [strings(v) for v in value]
    if isinstance(value, dict):
        return {k: strings(v) for k, v in value.items()}
    return value


@dataclass
class Operation:
    """One operation on one resource: its token, and the request of each of its invocations.

    `request()` is the next invocation's request; `follow(answer)` takes the handler's answer
    and says how long CloudFormation waits before the next one (None: the operation ended).
    `properties` and `previous` are given as in the template and kept as strings.
    """

    action: str
    resource_type: str
    logical_id: Optional[str]
    properties: dict
    _: KW_ONLY
    stack_id: str
    credentials: dict
    previous: Optional[dict] = None
    rollback: bool = False
    stack_tags: Optional[dict] = None
    account: str = ACCOUNT_ID
    region: str = REGION
    send_returned_model: bool = True
    token: str = field(init=False, default_factory=lambda: str(uuid.uuid4()))
    context: Optional[dict] = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.properties = strings(self.properties)
        if self.previous is not None:
            self.previous = strings(self.previous)

    def request(self) -> dict:
        """The request of the next invocation, as the Registry sends it to the handler."""
        data: dict = {"callerCredentials": self.credentials}
        if self.logical_id is not None:
            data["logicalResourceId"] = self.logical_id
        data["resourceProperties"] = self.properties
        if self.stack_tags is not None:
            data["stackTags"] = self.stack_tags
        if self.previous is not None:
            data["previousResourceProperties"] = self.previous
        request = {
            "action": self.action,
            "awsAccountId": self.account,
            "bearerToken": self.token,
            "region": self.region,
            "resourceType": self.resource_type,
            "stackId": self.stack_id,
            "requestData": data,
        }
        if self.rollback:
            request["rollback"] = True
        if self.context is not None:
            request["callbackContext"] = self.context
        return request

    def follow(self, answer: dict) -> Optional[float]:
        """Seconds to wait before invoking again after `answer`, or None if the operation ended."""
        if answer.get("status") != "IN_PROGRESS":
            return None
        self.context = answer.get("callbackContext")
        if self.send_returned_model and answer.get("resourceModel") is not None:
            self.properties = answer["resourceModel"]
        return float(answer.get("callbackDelaySeconds") or 0)


def play(
    operation: Operation,
    invoke: Callable[[dict], dict],
    *,
    on_answer: Optional[Callable[[dict], None]] = None,
    give_up_after: Optional[float] = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    """Plays `operation` to its end, invoking the handler through `invoke(request) -> answer`
    (and `on_answer` with each answer); returns the last answer. With `give_up_after`, stops
    (returning an IN_PROGRESS answer) once that many seconds have gone by."""
    started = clock()
    while True:
        answer = invoke(operation.request())
        if on_answer is not None:
            on_answer(answer)
        delay = operation.follow(answer)
        if delay is None:
            return answer
        if give_up_after is not None and clock() - started > give_up_after:
            return answer
        sleep(delay)
