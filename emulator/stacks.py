"""CloudFormation DescribeStacks, as far as a resource handler asks it: the status of the
stack a request comes from (Org::ECS::TaskRun's AdoptExisting tells a stack being created
from one being updated). Tests say which stacks exist and in which status
(`POST /_taskrun/stacks {"stackId": ARN, "status": "UPDATE_IN_PROGRESS"}`); moto's own
CloudFormation is not used (it would need the whole template machinery).

What the CloudFormation API Reference says, and what is modelled:
* DescribeStacks (query protocol, `StackName` = a stack's name or unique stack ID) answers
  `DescribeStacksResult/Stacks/member` with `StackId`, `StackName`, `StackStatus`,
  `CreationTime`.
* An unknown stack is a `ValidationError` (HTTP 400): "Stack with id <name> does not
  exist" (the message as seen in the AWS CLI's answers; the reference lists no error for
  it).
* `StackStatus` values: CREATE_IN_PROGRESS, CREATE_FAILED, CREATE_COMPLETE,
  ROLLBACK_IN_PROGRESS, ..., UPDATE_IN_PROGRESS, UPDATE_COMPLETE_CLEANUP_IN_PROGRESS,
  UPDATE_ROLLBACK_IN_PROGRESS, ... (StackStatus in the reference); any is accepted here.
"""

from __future__ import annotations

import time
import uuid
from xml.sax.saxutils import escape

from protocol import ControlError, Resp

NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def _xml(status: int, body: str) -> Resp:
    return status, [("Content-Type", "text/xml")], body.encode()


class StackOps:
    """Mixed into the Launcher: `self.stacks` (stack ID or name -> record)."""

    def ctl_stacks(self, body: dict) -> dict:
        stack_id = body.get("stackId")
        status = body.get("status")
        if not isinstance(stack_id, str) or not stack_id:
            raise ControlError("stacks: stackId (a stack ARN) is required")
        if status is None:
            self.stacks.pop(stack_id, None)
            return {"stacks": sorted(self.stacks)}
        if not isinstance(status, str) or not status.isupper():
            raise ControlError("stacks: status must be a StackStatus such as UPDATE_IN_PROGRESS")
        name = stack_id.split(":stack/", 1)[-1].split("/", 1)[0]
        self.stacks[stack_id] = {"StackId": stack_id, "StackName": name, "StackStatus": status,
                                 "CreationTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        return {"stacks": sorted(self.stacks)}

    def describe_stacks(self, body: dict) -> Resp:
        wanted = body.get("StackName") or ""
        found = [s for s in self.stacks.values() if wanted in (s["StackId"], s["StackName"])]
        request_id = str(uuid.uuid4())
        if not found:
            return _xml(400, f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type>'
                             f"<Code>ValidationError</Code><Message>Stack with id {escape(wanted)} does not exist"
                             f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        members = "".join(
            "<member>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in stack.items()) + "</member>"
            for stack in found)
        return _xml(200, f'<DescribeStacksResponse xmlns="{NAMESPACE}"><DescribeStacksResult><Stacks>{members}'
                         f"</Stacks></DescribeStacksResult><ResponseMetadata><RequestId>{request_id}</RequestId>"
                         f"</ResponseMetadata></DescribeStacksResponse>")

