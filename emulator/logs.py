"""CloudWatch Logs as ECS tasks produce them and as GetLogEvents reads them.

Writing: what the awslogs driver does -- a stream `<prefix>/<container>/<task id>` per awslogs
container once its task runs, the container's lines once it stops (in-process into moto's Logs
backend). Behaviour "lateLines" (per log group) holds a stopped task's last lines back for a while.

Reading: GetLogEvents is answered here (moto's drops events at endTime's edge wrongly and never
answers partial or empty pages), with tokens as AWS documents them; behaviour "logPages" (per log
group) makes pages partial or empty. Other Logs operations are moto's.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from protocol import AwsError

# CloudWatch Logs took at most 256 KiB per event, 26 bytes of which are overhead; the awslogs
# driver splits longer lines into several events, and so do we.
MAX_LOG_EVENT_BYTES = 262144 - 26
# CloudWatch Logs API Reference, GetLogEvents: "Each page returned can contain up to 1 MB of log
# events or up to 10,000 log events."
PAGE_EVENTS = 10_000
PAGE_BYTES = 1_048_576
IPE = "InvalidParameterException"


class TaskLogs:
    """Mixed into the Launcher: writes a task's logs on its RUNNING/STOPPED transitions and answers
    GetLogEvents."""

    # ------------------------------------------------------------------ writing
    def _task_logs(self, task: Any, status: str) -> None:
        """What the awslogs driver does: a stream per container once the task runs, the container's
        lines once it has stopped (written in-process into moto's Logs backend)."""
        if not task.log_configs:
            return
        from moto.logs.models import logs_backends

        try:
            if status == "RUNNING":
                for name, options in task.log_configs.items():
                    region = options.get("awslogs-region") or task.region
                    group = options["awslogs-group"]
                    stream = f"{options['awslogs-stream-prefix']}/{name}/{task.id}"
                    backend = logs_backends[task.account][region]
                    backend.ensure_log_group(group)
                    backend.ensure_log_stream(group, stream)
                    task.log_streams[name] = (region, group, stream)
            elif status == "STOPPED":
                now = time.time()
                for name, (region, group, stream) in task.log_streams.items():
                    events = self._log_events(task, name)
                    # Behaviour "lateLines": the last N lines become readable S seconds after the
                    # task stopped. The facts review (finding 3) found no documented bound on how
                    # soon after a task stops its last awslogs lines are readable (unverified).
                    late = self.behaviours.get("logGroup", group, "lateLines")
                    if late and events:
                        held = events[-late["lines"]:]
                        events = events[:-late["lines"]]
                        self.pending_logs.append({"due": now + late["seconds"], "account": task.account,
                                                  "region": region, "group": group, "stream": stream,
                                                  "events": held})
                        self.behaviours.hit("logGroup", group, "lateLines")
                    if events:
                        logs_backends[task.account][region].put_log_events(group, stream, events)
        except Exception:  # a log problem must not break the ECS call that moved the task
            traceback.print_exc()

    def flush_late_logs(self, now: float | None = None) -> None:
        """Write the held-back lines that are due (called before every CloudWatch Logs call)."""
        if not self.pending_logs:
            return
        from moto.logs.models import logs_backends

        now = time.time() if now is None else now
        due = [p for p in self.pending_logs if p["due"] <= now]
        self.pending_logs = [p for p in self.pending_logs if p["due"] > now]
        for p in due:
            try:
                logs_backends[p["account"]][p["region"]].put_log_events(p["group"], p["stream"], p["events"])
            except Exception:
                traceback.print_exc()

    @staticmethod
    def _log_events(task: Any, name: str) -> list[dict]:
        lines = (task.outcome.get("logs") or {}).get(name)
        if lines is None:
            container = next((c for c in task.containers if c["name"] == name), {})
            code = container.get("exitCode")
            end = f"exited with code {code}" if code is not None else "stopped"
            lines = [f"{name} starting", f"{name} {end}"]
        messages = [part for line in lines for part in split_log_line(line)]
        # spread over the task's run time, strictly increasing, in ms
        start = int((task.started_at or task.created_at) * 1000)
        stop = max(int((task.execution_stopped_at or time.time()) * 1000), start)
        step = (stop - start) / max(len(messages) - 1, 1)
        events, last = [], start - 1
        for i, message in enumerate(messages):
            last = max(start + int(i * step), last + 1)
            events.append({"timestamp": last, "message": message})
        return events

    # ------------------------------------------------------------------ reading
    def get_log_events(self, body: dict, account: str, region: str) -> dict:
        """GetLogEvents as the CloudWatch Logs API Reference describes it:
        * startTime: "Events with a timestamp equal to this time or later than this time are
          included."; endTime: "Events with a timestamp equal to or later than this time are not
          included."
        * startFromHead: "If the value is true, the earliest log events are returned first. If the
          value is false, the latest log events are returned first. The default value is false."
        * limit: "If you don't specify a limit, the default is as many log events as can fit in a
          response size of 1 MB (up to 10,000 log events)."
        * "A returned page might only be partially full, or even empty. ... As long as the
          nextBackwardToken or nextForwardToken returned is NOT equal to the nextToken that you
          passed into the API call, there might be more log events available. ... The returned
          tokens are never null." At the end of the stream in the token's direction we answer the
          token that was passed, so a client that follows the tokens stops there.
        Behaviour "logPages" for the group: {"pageLimit": K} caps every page at K events (a
        partial page); {"emptyPages": N} answers the next N calls with an empty page whose tokens
        differ from the one passed (so the events are still there to read)."""
        from moto.logs.models import logs_backends

        name = body.get("logGroupName") or _group_name(body.get("logGroupIdentifier") or "")
        backend = logs_backends[account][region]
        group = backend.groups.get(name)
        if group is None:
            raise AwsError("ResourceNotFoundException", "The specified log group does not exist.")
        stream = group.streams.get(body.get("logStreamName"))
        if stream is None:
            raise AwsError("ResourceNotFoundException", "The specified log stream does not exist.")
        start_time, end_time = body.get("startTime"), body.get("endTime")
        events = sorted((e for e in stream.events
                         if (start_time is None or e.timestamp >= start_time)
                         and (end_time is None or e.timestamp < end_time)), key=lambda e: e.timestamp)
        token = body.get("nextToken")
        forward, position, nonce = _read_token(token, bool(body.get("startFromHead")), len(events))
        position = min(position, len(events))

        pages = self.behaviours.get("logGroup", name, "logPages") or {}
        size = min(body.get("limit") or PAGE_EVENTS, pages.get("pageLimit") or PAGE_EVENTS)
        if pages.get("emptyPages", 0) > 0:
            pages["emptyPages"] -= 1
            self.behaviours.hit("logGroup", name, "logPages")
            nonce += 1
            return {"events": [], "nextForwardToken": _token(True, position, nonce),
                    "nextBackwardToken": _token(False, position, nonce)}
        if pages.get("pageLimit") and len(events) > size:
            self.behaviours.hit("logGroup", name, "logPages")
        if forward:
            page = _fill(events[position:], size, from_end=False)
            first, after = position, position + len(page)
        else:
            page = _fill(events[:position], size, from_end=True)
            first, after = position - len(page), position
        out_f, out_b = _token(True, after, nonce), _token(False, first, nonce)
        if token is not None and not page:
            # nothing more in the token's direction: the same token back, as AWS documents
            out_f, out_b = (token, out_b) if forward else (out_f, token)
        return {"events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time}
                           for e in page],
                "nextForwardToken": out_f, "nextBackwardToken": out_b}


def _group_name(identifier: str) -> str:
    """logGroupIdentifier: "Specify either the name or ARN of the log group"."""
    if identifier.startswith("arn:"):
        identifier = identifier.split(":log-group:", 1)[-1]
        if identifier.endswith(":*"):
            identifier = identifier[:-2]
    return identifier


def _token(forward: bool, position: int, nonce: int) -> str:
    return f"{'f' if forward else 'b'}/{position:056d}/s{nonce}"


def _read_token(token: Any, start_from_head: bool, count: int) -> tuple[bool, int, int]:
    """(forward, position, nonce) of a nextToken; without one, from the head or the tail. The
    direction is the token's (what ECS does with a forward token and startFromHead false --
    "you must specify true for startFromHead" -- is unverified)."""
    if token is None:
        return start_from_head, 0 if start_from_head else count, 0
    try:
        direction, position, nonce = str(token).split("/")
        if direction not in ("f", "b") or not nonce.startswith("s"):
            raise ValueError(token)
        return direction == "f", int(position), int(nonce[1:])
    except ValueError:
        raise AwsError(IPE, "The specified nextToken is invalid.")


def _fill(events: list, limit: int, from_end: bool) -> list:
    """At most `limit` events and 1 MB (26 bytes of overhead each), from the start or the end."""
    chosen, size = [], 0
    for event in (reversed(events) if from_end else events):
        cost = len(event.message.encode()) + 26
        if len(chosen) >= limit or (chosen and size + cost > PAGE_BYTES):
            break
        chosen.append(event)
        size += cost
    return list(reversed(chosen)) if from_end else chosen


def split_log_line(line: str) -> list[str]:
    """One line as CloudWatch events: lines over the per-event limit become several events."""
    data = line.encode()
    if len(data) <= MAX_LOG_EVENT_BYTES:
        return [line]
    parts = []
    while data:
        cut = min(MAX_LOG_EVENT_BYTES, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # never inside a UTF-8 sequence
        parts.append(data[:cut].decode())
        data = data[cut:]
    return parts
