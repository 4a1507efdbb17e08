"""Documented CloudWatch Logs limits the API model does not carry, each with the page it comes from."""

from __future__ import annotations

from aws_model import Context, Refusal, refuse, rule

IPE = "InvalidParameterException"

# ---- CloudWatch Logs
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 1_048_576


@rule("logs", "PutLogEvents", source="PutLogEvents; observed nhs-england-tools/terraform-aws-opennext#27, "
      "aws/aws-for-fluent-bit#68, dibog/cloudwatch-logback-appender#17")
def _logs_put(body: dict, ctx: Context, op: str) -> Refusal | None:
    events = body.get("logEvents")
    if not isinstance(events, list):
        return None
    total = 0
    last = None
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            continue
        message = event.get("message")
        size = len(message.encode()) + EVENT_OVERHEAD if isinstance(message, str) else EVENT_OVERHEAD
        # CloudWatch Logs API Reference, PutLogEvents: "Each log event can be no larger than 1 MB."
        # AWS: InvalidParameterException "Log event too large: 292824 bytes exceeds limit of
        # 262144" (aws/aws-for-fluent-bit#68, when the limit was 256 KB; it counts the 26 bytes).
        if size > MAX_EVENT_BYTES:
            return refuse(IPE, f"Log event too large: {size} bytes exceeds limit of {MAX_EVENT_BYTES}",
                          f"logEvents.{i + 1}.member.message", f"at most {MAX_EVENT_BYTES} bytes with 26 of overhead",
                          size)
        total += size
        stamp = event.get("timestamp")
        # PutLogEvents: "A batch of log events in a single request must be in a chronological
        # order. Otherwise, the operation fails." AWS: InvalidParameterException "Log events in a
        # single PutLogEvents request must be in chronological order."
        # (dibog/cloudwatch-logback-appender#17)
        if isinstance(stamp, int) and last is not None and stamp < last:
            return refuse(IPE, "Log events in a single PutLogEvents request must be in chronological order.",
                          f"logEvents.{i + 1}.member.timestamp", "not before the previous event's")
        if isinstance(stamp, int):
            last = stamp
    # PutLogEvents: "The maximum batch size is 1,048,576 bytes. This size is calculated as the sum
    # of all event messages in UTF-8, plus 26 bytes for each log event." AWS:
    # InvalidParameterException "Upload too large: 1049882 bytes exceeds limit of 1048576"
    # (nhs-england-tools/terraform-aws-opennext#27).
    if total > MAX_BATCH_BYTES:
        return refuse(IPE, f"Upload too large: {total} bytes exceeds limit of {MAX_BATCH_BYTES}", "logEvents",
                      "at most 1048576 bytes (UTF-8 messages + 26 per event)", total)
    # PutLogEvents: "For valid events (within 14 days in the past to 2 hours in future), the time
    # span in a single batch cannot exceed 24 hours. Otherwise, the operation fails." (wording of
    # the refusal unverified). Events outside that window are not a refusal: "Events more than 2
    # hours in the future are rejected while processing remaining valid events" (and older than 14
    # days likewise) -- moto answers those in rejectedLogEventsInfo.
    now = ctx.now_ms
    if now is not None:
        stamps = [e["timestamp"] for e in events if isinstance(e, dict) and isinstance(e.get("timestamp"), int)
                  and now - 14 * 86_400_000 <= e["timestamp"] <= now + 2 * 3_600_000]
        if stamps and max(stamps) - min(stamps) > 24 * 3_600_000:
            return refuse(IPE, "The batch of log events in a single PutLogEvents request cannot span more than "
                          "24 hours.", "logEvents", "valid events must span at most 24 hours", len(events))
    return None


@rule("logs", "GetLogEvents", "FilterLogEvents", source="GetLogEvents logGroupName/logGroupIdentifier")
def _logs_group_reference(body: dict, ctx: Context, op: str) -> Refusal | None:
    # CloudWatch Logs API Reference, GetLogEvents and FilterLogEvents, logGroupName: "You must
    # include either logGroupIdentifier or logGroupName, but not both." (wording of the refusal
    # unverified)
    both = body.get("logGroupName") is not None and body.get("logGroupIdentifier") is not None
    neither = body.get("logGroupName") is None and body.get("logGroupIdentifier") is None
    if both or neither:
        return refuse(IPE, "LogGroup name and LogGroup ARN are mutually exclusive parameters." if both else
                      "Should provide either logGroupName or logGroupIdentifier.", "logGroupName",
                      "exactly one of logGroupName and logGroupIdentifier")
    return None
