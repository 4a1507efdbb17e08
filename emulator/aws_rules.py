"""What AWS refuses: every request is checked against the published API model of its service and
against the documented limits the models do not carry, before it is dispatched.

The models are the pinned copies in aws_models/ (botocore 1.44.5, documentation stripped; see
aws_models/SOURCE.md), never the installed botocore. `check(service, operation, body)` answers
None (AWS would accept the request as far as we know) or a Refusal: the exception AWS sends, its
message, and the offending member paths. Used by the emulator for every JSON-protocol call of ECS,
SSM, Logs and EventBridge, and by check_requests.py for request logs of other test suites.

Which exception a constraint violation comes back as, per service (JSON 1.1, HTTP 400):
  ECS   InvalidParameterException. Observed for input constraints: "startedBy longer than 36."
        (convox/rack#1727), "Cluster must match ^[a-zA-Z0-9\\-_]{1,255}$, but was ..."
        (awslabs/amazon-ecs-nodejs-microservices#18), "Container Overrides length must be at most
        8192" (convox/rack#1906), "Some tags contain invalid characters. Valid characters: UTF-8
        letters, spaces, numbers and _ . / = + - : @." (prefect-archive/prefect-aws#223). ECS's
        wording for the generic model constraints (lengths, enums) is unverified; we use the
        wording AWS's request validation uses for Logs and SSM (below).
  Logs  InvalidParameterException "1 validation error detected: Value '...' at 'logStreamName'
        failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        (cisagov/crossfeed#374), "... at 'logEvents.1.member.timestamp' failed to satisfy
        constraint: Member must not be null" (amazon-archives/cloudwatch-logs-centralize-logs#8).
  SSM   ValidationException "1 validation error detected: Value at 'value' failed to satisfy
        constraint: Member must have length greater than or equal to 1"
        (ministryofjustice/modernisation-platform#8116; a sensitive member's value is left out).
  EventBridge  ValidationException, HTTP 400: "The input fails to satisfy the constraints specified
        by an AWS service" ("Amazon EventBridge API Reference, Common Errors"). Its message wording
        for a model constraint is unverified; we use the wording above (members as the model names
        them: "Entries.1.member.EventBusName"). No documented limit beyond the model is checked yet
        (PutEvents' 256 KB total entry size, "Amazon EventBridge quotas", is not).
  A member of the wrong JSON type: SerializationException (the exception name AWS's JSON
  protocol uses for bodies it cannot read; the message wording is unverified).

Patterns are matched against the whole value (Java's String.matches): AWS refuses a log stream
name containing ':' under the unanchored pattern `[^:*]*` (cisagov/crossfeed#374), which a search
would accept. Members the model does not know are ignored, as JSON-protocol services do.
"""

from __future__ import annotations

from typing import Any

import limits_ecs  # registers the documented ECS limits
import limits_logs  # ... CloudWatch Logs limits
import limits_ssm  # ... SSM limits
from aws_model import (MODEL_FILES, RULES, TARGET_PREFIXES, VALIDATION_EXCEPTION, Context, Refusal, Violation,
                       check_model, service_of_target, validation_message)

LIMIT_MODULES = (limits_ecs, limits_logs, limits_ssm)
__all__ = ["MODEL_FILES", "RULES", "TARGET_PREFIXES", "VALIDATION_EXCEPTION", "Context", "Refusal", "Violation",
           "check", "check_model", "service_of_target", "validation_message"]


def check(service: str, operation: str, body: Any, ctx: Context | None = None) -> Refusal | None:
    """None when AWS would accept the request as far as the model and the documented limits go,
    else the Refusal AWS answers. Model constraints come first, as AWS validates a request before
    it looks at its meaning."""
    if service not in MODEL_FILES:
        return None
    if not isinstance(body, dict):
        return Refusal("SerializationException", "The request body must be a JSON object",
                       [Violation("(body)", "must be a JSON object")])
    refusal = check_model(service, operation, body)
    if refusal is not None:
        return refusal
    ctx = ctx or Context()
    for item in RULES:
        if item.service == service and (not item.operations or operation in item.operations):
            refusal = item.check(body, ctx, operation)
            if refusal is not None:
                return refusal
    return None
