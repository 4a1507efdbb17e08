#!/usr/bin/env python3
"""Local AWS emulator for the Org::ECS::TaskRun resource type.

moto 5.2.5's own server app (ECS, SSM, STS, Logs, EC2, ... on one endpoint; the service is
picked from the SigV4 credential scope) wrapped in a WSGI middleware that takes over the ECS
task lifecycle, which stock moto cannot model faithfully:

* RunTask / StartTask / DescribeTasks / StopTask / ListTasks (and Tag/Untag/ListTagsForResource
  on task ARNs) are answered here. Clusters, task definitions and container instances stay
  in moto and are read in-process.
* Every started task gets an *outcome* (exit codes, never_starts, never_stops) from a per-family
  FIFO queue, a per-family default or the global default (exit 0 after 1 DescribeTasks).
* Tasks whose containers use the awslogs driver write CloudWatch Logs (moto's Logs backend).
* ECS services: moto keeps them; CreateService/UpdateService/DescribeServices are wrapped so that
  deployments roll out (or fail, or hang) by a scripted per-service *deployment outcome*.
* RunTask honours clientToken, can be told to return failures[]; every API can be made to fail
  (before or after acting) and can kill a given process after acting.
* Control endpoints live under /_taskrun/ (see CONTROL API below) and never reach moto.

Usage: python emulator/taskrun_emulator.py --port 0 [--port-file PATH] [--parent-pid PID]
                                          [--log-requests]
Prints exactly one line `READY http://127.0.0.1:<port>` on stdout once it serves. With
--log-requests, stderr gets one line per request naming the API of AWS calls:
`POST / ecs:RunTask 200 12ms`, `POST /_taskrun/throttle 200 0ms`, plus a note for injected
faults and kills (`... 503 3ms (injected fault after acting)`).

API NAMES (throttle, kill, calls): an ECS op bare or prefixed ("RunTask", "ecs:RunTask"), any
other service as "service:Op" ("ssm:PutParameter", "logs:GetLogEvents", "sts:GetCallerIdentity").

CONTROL API (JSON in/out):
  GET  /_taskrun/health                 -> {"ok": true}
  POST /_taskrun/reset                  -> reset moto entirely and all launcher state
  POST /_taskrun/wipe-ecs {"keepClusters": false}
        forget ECS state but keep SSM (and every other service). Default: moto's ECS backend is
        reset (clusters, task definitions, container instances, services and their deployments)
        and all launcher tasks and clientTokens are dropped, so DescribeTasks on an old ARN
        answers ClusterNotFoundException. With "keepClusters": true only the tasks and
        clientTokens are forgotten, so DescribeTasks on old ARNs answers failures[] reason
        MISSING. Outcome/deployment-outcome/failure/throttle/kill configuration and the call log
        are kept.
  POST /_taskrun/outcomes
        {"family": F, "outcome": {...}, "count": N}  queue an outcome for the next N tasks of F
        {"family": F, "default": {...}|null}         set/clear F's default outcome
        {"default": {...}|null}                      set/clear the global default outcome
        {"family": F, "clearQueue": true}            drop F's queued outcomes
        {"taskArn": ARN, "outcome": {...}}           replace a started task's outcome; its
                                                     afterDescribes/afterSeconds count from now
  GET  /_taskrun/outcomes               -> {"queues":..., "defaults":..., "globalDefault":...}
  POST /_taskrun/failures {"family": F, "reason": R, "count": N, "detail": D, "arn": A}
        the next N tasks RunTask would start for F come back as failures[] entries instead
        (one entry per task; arn defaults to a container instance ARN of the cluster, else the
        cluster ARN). StartTask is not affected.
  POST /_taskrun/throttle {"api": "DescribeTasks", "times": N, "skip": 0,
                           "code": "ThrottlingException", "message": "Rate exceeded", "status": 400,
                           "after": false, "html": false}
        the next N calls of that API (after letting `skip` of them through) fail with that error.
        times 0 clears it; all but api are optional. status is any of 400..599 and is rendered in
        the call's protocol: JSON (ECS, SSM, Logs: x-amz-json-1.1 body {"__type", "message"} and
        header x-amzn-errortype) or query/XML (STS: <ErrorResponse>, Type Receiver for 5xx;
        ThrottlingException is called Throttling there).
        "after": true  the call is carried out first (RunTask/StartTask start their tasks,
                       StopTask stops, PutParameter writes, ...) and THEN the error is returned:
                       an ambiguous failure. Default: fail before acting.
        "bodyContains": S  the rule only applies to calls whose raw request body holds S (for
                       tests side by side: their own cluster name, say); rules are kept per
                       api and bodyContains.
        "html": true   the body is a load balancer's HTML page instead of an AWS error
                       (`<html>...<h1>503 Service Temporarily Unavailable</h1>...`, Content-Type
                       text/html, no x-amzn-errortype; SDKs see only the status). status
                       defaults to 503 then; code/message are unused.
  POST /_taskrun/kill {"api": "RunTask", "pid": 1234, "times": 1, "skip": 0, "signal": 9,
                       "waitSeconds": 2}
        on the next `times` calls of that API (after letting `skip` through untouched) the call
        is carried out, then `signal` (number or name: 9, "KILL", "SIGTERM"; default SIGKILL) is
        sent to pid, and once pid is gone (zombie counts; at most waitSeconds, outside the big
        lock) the answer is sent, normally to nobody. Simulates the caller (e.g. a Lambda handler,
        pid from local_lambda.py's GET /_local/handler-pid) dying between two calls. times 0
        clears. "bodyContains" scopes it as for throttle. 400 for pid <= 1 or the emulator's own, 404 when pid does not exist now. A
        matching call that a throttle rule fails before acting does not count.
  POST /_taskrun/deployment-outcomes      (how UpdateService's new deployments end; see SERVICES)
        {"service": S, "outcome": {...}, "count": N}  queue for the next N deployments of S
        {"service": S, "default": {...}|null}         set/clear S's default
        {"default": {...}|null}                       set/clear the global default
        {"service": S, "clearQueue": true}            drop S's queue
        S is a service name (an ARN is cut to its name), whatever the cluster.
  GET  /_taskrun/deployment-outcomes    -> {"queues":..., "defaults":..., "globalDefault":...}
  POST /_taskrun/container-instances {"cluster": C, "count": N, "region": "us-east-1"}
        -> {"containerInstanceArns": [...]}  (creates the EC2 instances moto needs)
  GET  /_taskrun/calls[?api=RunTask]
        with api: [body, ...] of every request of that API since the last reset, in order
        (throttled ones included). Without: [{"api", "body", "throttled", "acted", "killed",
        "status"}, ...]: throttled = answered with an injected error, acted = carried out
        (false only for faults before acting), killed = a kill rule signalled its process,
        status = the HTTP status answered. ECS ops are named bare ("RunTask"); other JSON/query
        services as "ssm:GetParameter" etc.
  GET  /_taskrun/tasks -> [{"taskArn","family","clusterArn","taskDefinitionArn","lastStatus",
                           "desiredStatus","stopCode","stoppedReason","describes","outcome",
                           "containers":[{"name","exitCode","reason","lastStatus"}]}]

OUTCOMES: {"kind": "exit"|"never_starts"|"never_stops", "afterDescribes": 1, "afterSeconds": 0.5,
           "containers": {"app": {"exitCode": 2, "reason": "..."}},
           "stopCode": ..., "stoppedReason": ..., "logs": {"app": ["line 1", ...]}}
  Without afterDescribes/afterSeconds, afterDescribes is 1. afterDescribes N means N
  DescribeTasks calls including the task show it not yet STOPPED and call N+1 shows STOPPED
  (0 = STOPPED on the first describe). afterSeconds counts wall time from the start. With both,
  both must be met. Before stopping, `exit`/`never_stops` tasks are PENDING on the first of
  several pre-stop describes, else RUNNING; with afterSeconds alone they are RUNNING from the
  first describe (or 50 ms) until afterSeconds have passed, so {"afterSeconds": 20} is a task
  running 20 s of wall time. `never_starts` tasks are PENDING. RunTask/StartTask responses show
  PROVISIONING (no container instance) or PENDING. stopCode/stoppedReason can be anything (e.g.
  "SpotInterruption" with exit code 0); containers not named exit 0.

CLOUDWATCH LOGS: a container whose task definition has logConfiguration {"logDriver": "awslogs",
  "options": {"awslogs-group": G, "awslogs-stream-prefix": P, "awslogs-region": R}} gets, when the
  task turns RUNNING, log group G (created if missing) and stream P/<container>/<task id> in region
  R (default: the task's); when the task stops, its lines are appended: the outcome's
  "logs"[container], else two lines "<container> starting", "<container> exited with code N".
  Timestamps are in ms, strictly increasing, spread over the task's run. Lines over CloudWatch's
  per-event limit (256 KiB - 26 bytes) are split into several events, as the awslogs driver does.
  Containers without awslogs or without a stream prefix, and tasks that never ran, write nothing.
  GetLogEvents (startFromHead, limit, tokens) is moto's: startFromHead false + limit N = last N.

SERVICES (deploymentController ECS): moto stores the services; the middleware keeps deployments.
  CreateService: one PRIMARY deployment `ecs-svc/<19 digits>`, rolloutState COMPLETED,
    runningCount = desiredCount, events "has started N tasks: (task ...)", "has reached a steady
    state."; deploymentConfiguration kept (AWS defaults filled in; moto alone drops it).
  UpdateService with forceNewDeployment or a different taskDefinition: new PRIMARY deployment
    (IN_PROGRESS, "ECS deployment <id> in progress.", runningCount 0, pendingCount = desiredCount,
    failedTasks 0, createdAt/updatedAt, taskDefinition); the previous PRIMARY becomes ACTIVE;
    event "(service S) has started N tasks: ...". Other updates (desiredCount, ...) change the
    PRIMARY in place. deploymentConfiguration given is merged into the stored one. The answer is
    the updated service. Unknown service: ServiceNotFoundException (moto); deleted service:
    ServiceNotActiveException; unknown task definition: ClientException, nothing changed.
  The new deployment takes the service's next deployment outcome:
    {"kind": "completed"|"failed"|"stuck", "afterDescribes": 1, "afterSeconds": S,
     "reason": "...", "failedTasks": K, "rollback": bool}
    afterDescribes/afterSeconds as for task outcomes, counting DescribeServices calls that
    include the service (default: completed after 1, so the 2nd describe shows COMPLETED).
    completed: COMPLETED, runningCount = desiredCount, the other deployments disappear, events
      "has stopped N running tasks", "(deployment <id>) deployment completed.", "has reached a
      steady state.".
    failed: rolloutState FAILED, rolloutStateReason = reason (default "ECS deployment circuit
      breaker: tasks failed to start."), failedTasks K (default max(desiredCount, 1)), running 0;
      then, like the circuit breaker's rollback, the previous deployment is PRIMARY again (the
      service's taskDefinition back to its) and the failed one stays listed as ACTIVE/FAILED
      until the next deployment. rollback: default true unless the service's
      deploymentCircuitBreaker is enabled with rollback false; without rollback (or without a
      previous deployment) the failed deployment stays PRIMARY.
    stuck: IN_PROGRESS forever; each DescribeServices adds K (default 1) to failedTasks.
  Events are newest first ({id, createdAt, message}, at most 100). DescribeServices on an unknown
  service: failures [{arn, reason: MISSING}] (moto).
"""

from __future__ import annotations

import argparse
import base64
import collections
import copy
import http
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import random
import traceback
import urllib.parse
import uuid
from typing import Any, Callable

from werkzeug.serving import make_server
from werkzeug.test import Client

from moto.core.exceptions import ServiceException
from moto.core.utils import utcnow
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
TARGET_SERVICES = {
    ECS_TARGET_PREFIX: "ecs",
    "AmazonSSM": "ssm",
    "Logs_20140328": "logs",
}
JSON_11 = "application/x-amz-json-1.1"
DEFAULT_REGION = "us-east-1"
BUILTIN_DEFAULT_OUTCOME = {"kind": "exit", "afterDescribes": 1}
OUTCOME_KINDS = ("exit", "never_starts", "never_stops")
DEPLOYMENT_KINDS = ("completed", "failed", "stuck")
BUILTIN_DEPLOYMENT_OUTCOME = {"kind": "completed", "afterDescribes": 1}
# What ECS stores when CreateService has no (or a partial) deploymentConfiguration.
DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
MAX_SERVICE_EVENTS = 100
# CloudWatch Logs takes at most 256 KiB per event, 26 bytes of which are overhead; the awslogs
# driver splits longer lines into several events, and so do we.
MAX_LOG_EVENT_BYTES = 262144 - 26
# What a load balancer in front of an AWS endpoint calls its statuses (for {"html": true} faults).
LB_PHRASES = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
MAX_RUN_COUNT = 10
MAX_DESCRIBE = 100
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
INTERCEPTED_ECS_OPS = {
    "RunTask",
    "StartTask",
    "DescribeTasks",
    "StopTask",
    "ListTasks",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
}
SERVICE_ECS_OPS = {"CreateService", "UpdateService", "DescribeServices"}
# A response as the middleware passes it around: (status, headers, body).
Resp = tuple[int, list, bytes]


class EcsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


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


def normalize_outcome(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ControlError("outcome must be a JSON object")
    kind = raw.get("kind", "exit")
    if kind not in OUTCOME_KINDS:
        raise ControlError(f"outcome.kind must be one of {list(OUTCOME_KINDS)}")
    out = dict(raw)
    out["kind"] = kind
    check_after(out, "outcome")
    containers = out.get("containers") or {}
    if not isinstance(containers, dict) or not all(
        isinstance(v, dict) for v in containers.values()
    ):
        raise ControlError('outcome.containers must map container names to {"exitCode", "reason"}')
    out["containers"] = containers
    logs = out.get("logs")
    if logs is not None:
        if not isinstance(logs, dict) or not all(
            isinstance(v, list) and all(isinstance(line, str) for line in v) for v in logs.values()
        ):
            raise ControlError('outcome.logs must map container names to lists of strings')
    return out


def check_after(out: dict, what: str) -> None:
    for key in ("afterDescribes", "afterSeconds"):
        if out.get(key) is not None:
            value = out[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ControlError(f"{what}.{key} must be a number >= 0")
    if out.get("afterDescribes") is not None:
        out["afterDescribes"] = int(out["afterDescribes"])


def normalize_deployment_outcome(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ControlError("outcome must be a JSON object")
    out = dict(raw)
    out["kind"] = out.get("kind", "completed")
    if out["kind"] not in DEPLOYMENT_KINDS:
        raise ControlError(f"outcome.kind must be one of {list(DEPLOYMENT_KINDS)}")
    check_after(out, "outcome")
    failed = out.get("failedTasks")
    if failed is not None and (isinstance(failed, bool) or not isinstance(failed, int) or failed < 0):
        raise ControlError("outcome.failedTasks must be an integer >= 0")
    if out.get("reason") is not None and not isinstance(out["reason"], str):
        raise ControlError("outcome.reason must be a string")
    if out.get("rollback") is not None and not isinstance(out["rollback"], bool):
        raise ControlError("outcome.rollback must be true or false")
    return out


def outcome_due(outcome: dict, describes: int, elapsed: float) -> bool:
    """Whether an outcome's condition is met. Neither afterDescribes nor afterSeconds: after 1
    describe. afterDescribes N: N describes see the old state, describe N+1 the new one."""
    after_d = outcome.get("afterDescribes")
    after_s = outcome.get("afterSeconds")
    if after_d is None and after_s is None:
        after_d = 1
    return (after_d is None or describes > after_d) and (after_s is None or elapsed >= after_s)


def body_filter(body: dict) -> str:
    value = body.get("bodyContains") or ""
    if not isinstance(value, str):
        raise ControlError("bodyContains must be a string")
    return value


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


def int_field(body: dict, name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ControlError(f"{name} must be an integer >= 0")
    return value


def send_kill(spec: dict) -> bool:
    """Signal the process of a kill rule and give it up to waitSeconds to be gone, so the answer
    we send next is not read by it."""
    pid = spec["pid"]
    try:
        os.kill(pid, spec["signal"])
    except (ProcessLookupError, PermissionError) as e:
        logging.getLogger("taskrun").warning("kill rule: cannot signal pid %s: %s", pid, e)
        return False
    deadline = time.monotonic() + spec["waitSeconds"]
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


class TaskState:
    """One ECS task as the launcher sees it."""

    def __init__(
        self,
        *,
        account: str,
        region: str,
        cluster_name: str,
        cluster_arn: str,
        task_def: Any,
        container_instance_arn: str | None,
        launch_type: str,
        capacity_provider_name: str | None,
        platform_version: str | None,
        group: str,
        started_by: str | None,
        overrides: dict | None,
        tags: list | None,
        network_configuration: dict | None,
        outcome: dict,
        enable_execute_command: bool,
    ):
        now = time.time()
        part = partition_of(region)
        self.id = uuid.uuid4().hex
        self.account = account
        self.region = region
        self.arn = f"arn:{part}:ecs:{region}:{account}:task/{cluster_name}/{self.id}"
        self.cluster_name = cluster_name
        self.cluster_arn = cluster_arn
        self.family = task_def.family
        self.task_definition_arn = task_def.arn
        self.td_cpu = task_def.cpu
        self.td_memory = task_def.memory
        self.container_instance_arn = container_instance_arn
        self.launch_type = launch_type
        self.capacity_provider_name = capacity_provider_name
        self.platform_version = platform_version
        self.group = group
        self.started_by = started_by
        self.overrides = dict(overrides or {})
        self.overrides.setdefault("containerOverrides", [])
        self.overrides.setdefault("inferenceAcceleratorOverrides", [])
        self.tags = list(tags or [])
        self.enable_execute_command = enable_execute_command
        self.created_at = now
        self.pull_started_at: float | None = None
        self.pull_stopped_at: float | None = None
        self.started_at: float | None = None
        self.connectivity_at: float | None = None
        self.stopping_at: float | None = None
        self.stopped_at: float | None = None
        self.last_status = "PENDING" if container_instance_arn else "PROVISIONING"
        self.desired_status = "RUNNING"
        self.stop_code: str | None = None
        self.stopped_reason: str | None = None
        self.version = 1
        self.set_outcome(outcome, now)
        # called with (task, "RUNNING"|"STOPPED") on those transitions (CloudWatch Logs)
        self.on_change: Callable[[TaskState, str], None] | None = None
        self.log_configs: dict[str, dict] = {}  # container name -> awslogs options
        self.log_streams: dict[str, tuple] = {}  # container name -> (region, group, stream)
        self.containers = []
        for cdef in task_def.container_definitions:
            cid = uuid.uuid4()
            log_conf = cdef.get("logConfiguration") or {}
            options = log_conf.get("options") or {}
            if log_conf.get("logDriver") == "awslogs" and options.get("awslogs-group") and options.get(
                "awslogs-stream-prefix"
            ):
                # without a stream prefix a Fargate task cannot start; we just write nothing
                self.log_configs[cdef.get("name")] = options
            self.containers.append(
                {
                    "name": cdef.get("name"),
                    "image": cdef.get("image"),
                    "cpu": cdef.get("cpu", 0),
                    "memory": cdef.get("memory"),
                    "memoryReservation": cdef.get("memoryReservation"),
                    "essential": cdef.get("essential", True),
                    "containerArn": f"arn:{part}:ecs:{region}:{account}:container/{cluster_name}/{self.id}/{cid}",
                    "lastStatus": "PENDING",
                    "exitCode": None,
                    "reason": None,
                    "runtimeId": None,
                }
            )
        self.attachments = []
        awsvpc = (network_configuration or {}).get("awsvpcConfiguration")
        if awsvpc or task_def.network_mode == "awsvpc":
            subnets = (awsvpc or {}).get("subnets") or ["subnet-00000000"]
            octets = [int(self.id[i : i + 2], 16) for i in (0, 2)]
            self.attachments.append(
                {
                    "id": str(uuid.uuid4()),
                    "type": "ElasticNetworkInterface",
                    "status": "PRECREATED",
                    "details": [
                        {"name": "subnetId", "value": subnets[0]},
                        {"name": "networkInterfaceId", "value": "eni-" + self.id[:17]},
                        {"name": "macAddress", "value": "0a:" + ":".join(self.id[i : i + 2] for i in range(2, 12, 2))},
                        {"name": "privateDnsName", "value": f"ip-10-0-{octets[0]}-{octets[1]}.ec2.internal"},
                        {"name": "privateIPv4Address", "value": f"10.0.{octets[0]}.{octets[1]}"},
                    ],
                }
            )

    # ------------------------------------------------------------------ lifecycle
    def set_outcome(self, outcome: dict, now: float) -> None:
        self.outcome = outcome
        self.outcome_base = now
        self.describes = 0

    def _touch(self) -> None:
        self.version += 1

    def _to_pending(self, now: float) -> None:
        if self.last_status == "PROVISIONING":
            self.last_status = "PENDING"
            self._touch()
        if self.attachments and self.attachments[0]["status"] == "PRECREATED":
            self.attachments[0]["status"] = "ATTACHED"
        if self.connectivity_at is None:
            self.connectivity_at = now
        if self.pull_started_at is None:
            self.pull_started_at = now

    def _to_running(self, now: float) -> None:
        self._to_pending(now)
        if self.pull_stopped_at is None:
            self.pull_stopped_at = now
        if self.started_at is None:
            self.started_at = now
        started = self.last_status != "RUNNING"
        if started:
            self.last_status = "RUNNING"
            self._touch()
        for c in self.containers:
            if c["lastStatus"] != "STOPPED":
                c["lastStatus"] = "RUNNING"
                if c["runtimeId"] is None:
                    c["runtimeId"] = f"{self.id}-{abs(hash(c['name'])) % 10**10:010d}"
        if started:
            self._notify("RUNNING")

    def _notify(self, status: str) -> None:
        if self.on_change is not None:
            self.on_change(self, status)

    def _to_stopped(self, now: float, stop_code: str, reason: str) -> None:
        self.desired_status = "STOPPED"
        self.last_status = "STOPPED"
        self.stop_code = stop_code
        self.stopped_reason = reason
        self.stopping_at = self.stopping_at or now
        self.stopped_at = now
        if self.attachments:
            self.attachments[0]["status"] = "DELETED"
        self._touch()
        self._notify("STOPPED")

    def advance(self, described: bool, now: float | None = None) -> None:
        """Move the task along its outcome. `described` = this is a DescribeTasks that includes it."""
        if self.last_status == "STOPPED":
            return
        now = time.time() if now is None else now
        if described:
            self.describes += 1
        outcome = self.outcome
        kind = outcome["kind"]
        if kind == "never_stops":
            if self.describes >= 1 or (now - self.outcome_base) >= 0.05:
                self._to_running(now)
            return
        after_d = outcome.get("afterDescribes")
        if after_d is None and outcome.get("afterSeconds") is None:
            after_d = 1
        if outcome_due(outcome, self.describes, now - self.outcome_base):
            if kind == "exit":
                self._to_running(now)
                self._finish_exit(now)
            else:
                self._to_pending(now)
                self._finish_never_started(now)
            return
        if kind == "never_starts":
            if self.describes >= 1 or after_d is None:
                self._to_pending(now)
            return
        # exit, not yet stopping
        if after_d is not None:
            if self.describes == 0:
                return
            if self.describes == 1 and after_d >= 2:
                self._to_pending(now)
            else:
                self._to_running(now)
        elif self.describes >= 1 or (now - self.outcome_base) >= 0.05:
            # time only: RUNNING for (nearly) all of afterSeconds, so a task of 20 s takes 20 s
            # of wall time in RUNNING, as a benchmark expects
            self._to_running(now)

    def _finish_exit(self, now: float) -> None:
        outcome = self.outcome
        per = outcome.get("containers") or {}
        for c in self.containers:
            spec = per.get(c["name"]) or {}
            c["lastStatus"] = "STOPPED"
            c["exitCode"] = int(spec.get("exitCode", 0))
            if spec.get("reason"):
                c["reason"] = spec["reason"]
        self._to_stopped(
            now,
            outcome.get("stopCode") or "EssentialContainerExited",
            outcome.get("stoppedReason") or "Essential container in task exited",
        )

    def _finish_never_started(self, now: float) -> None:
        outcome = self.outcome
        image = next((c["image"] for c in self.containers if c["essential"]), None) or (
            self.containers[0]["image"] if self.containers else "unknown"
        )
        reason = outcome.get("stoppedReason") or (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
            f"failed to resolve ref {image}: not found"
        )
        per = outcome.get("containers") or {}
        for c in self.containers:
            spec = per.get(c["name"]) or {}
            c["lastStatus"] = "STOPPED"
            c["exitCode"] = None
            c["reason"] = spec.get("reason") or reason
        self._to_stopped(now, outcome.get("stopCode") or "TaskFailedToStart", reason)

    def user_stop(self, reason: str | None) -> None:
        self.advance(described=False)
        if self.last_status == "STOPPED":
            return
        now = time.time()
        started = self.started_at is not None
        for c in self.containers:
            c["lastStatus"] = "STOPPED"
            if started:
                c["exitCode"] = 143
        if not started:
            self._to_pending(now)
        self._to_stopped(now, "UserInitiated", reason or "Task stopped by user")

    # ------------------------------------------------------------------ rendering
    def to_json(self, include_tags: bool = False) -> dict:
        t: dict[str, Any] = {
            "attachments": self.attachments,
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "availabilityZone": f"{self.region}a",
            "clusterArn": self.cluster_arn,
            "containers": [self._container_json(c) for c in self.containers],
            "createdAt": self.created_at,
            "desiredStatus": self.desired_status,
            "enableExecuteCommand": self.enable_execute_command,
            "group": self.group,
            "healthStatus": "UNKNOWN",
            "lastStatus": self.last_status,
            "launchType": self.launch_type,
            "overrides": self.overrides,
            "taskArn": self.arn,
            "taskDefinitionArn": self.task_definition_arn,
            "version": self.version,
        }
        if self.launch_type == "FARGATE":
            t["platformVersion"] = self.platform_version or "1.4.0"
            t["platformFamily"] = "Linux"
            t["ephemeralStorage"] = {"sizeInGiB": 20}
        if self.capacity_provider_name:
            t["capacityProviderName"] = self.capacity_provider_name
        if self.container_instance_arn:
            t["containerInstanceArn"] = self.container_instance_arn
        if self.td_cpu:
            t["cpu"] = str(self.td_cpu)
        if self.td_memory:
            t["memory"] = str(self.td_memory)
        if self.started_by:
            t["startedBy"] = self.started_by
        if self.connectivity_at is not None:
            t["connectivity"] = "CONNECTED" if self.last_status != "STOPPED" else "DISCONNECTED"
            t["connectivityAt"] = self.connectivity_at
        for key, value in (
            ("pullStartedAt", self.pull_started_at),
            ("pullStoppedAt", self.pull_stopped_at),
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("stoppedAt", self.stopped_at),
            ("executionStoppedAt", self.stopped_at),
            ("stopCode", self.stop_code),
            ("stoppedReason", self.stopped_reason),
        ):
            if value is not None:
                t[key] = value
        if include_tags:
            t["tags"] = self.tags
        return t

    def _container_json(self, c: dict) -> dict:
        out: dict[str, Any] = {
            "containerArn": c["containerArn"],
            "taskArn": self.arn,
            "name": c["name"],
            "image": c["image"],
            "lastStatus": c["lastStatus"],
            "networkBindings": [],
            "networkInterfaces": [],
            "healthStatus": "UNKNOWN",
            "cpu": str(c["cpu"] or 0),
        }
        if c["memory"] is not None:
            out["memory"] = str(c["memory"])
        if c["memoryReservation"] is not None:
            out["memoryReservation"] = str(c["memoryReservation"])
        if c["runtimeId"]:
            out["runtimeId"] = c["runtimeId"]
        if self.attachments and self.attachments[0]["status"] != "PRECREATED":
            details = {d["name"]: d["value"] for d in self.attachments[0]["details"]}
            out["networkInterfaces"] = [
                {
                    "attachmentId": self.attachments[0]["id"],
                    "privateIpv4Address": details["privateIPv4Address"],
                }
            ]
        if c["exitCode"] is not None:
            out["exitCode"] = c["exitCode"]
        if c["reason"]:
            out["reason"] = c["reason"]
        return out

    def summary(self) -> dict:
        return {
            "taskArn": self.arn,
            "family": self.family,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.task_definition_arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "stopCode": self.stop_code,
            "stoppedReason": self.stopped_reason,
            "describes": self.describes,
            "outcome": self.outcome,
            "containers": [
                {
                    "name": c["name"],
                    "lastStatus": c["lastStatus"],
                    "exitCode": c["exitCode"],
                    "reason": c["reason"],
                }
                for c in self.containers
            ],
        }


class Launcher:
    """WSGI middleware: control endpoints + ECS task lifecycle in front of moto's server app."""

    def __init__(self) -> None:
        self.moto_app = DomainDispatcherApplication(create_backend_app)
        self.client = Client(self.moto_app)
        self.lock = threading.RLock()
        self._rr: dict[str, int] = {}
        self._reset_launcher_state()

    # ------------------------------------------------------------------ state
    def _reset_launcher_state(self) -> None:
        self.tasks: dict[str, TaskState] = {}  # arn -> task (insertion ordered)
        self.tokens: dict[tuple, dict] = {}
        self.outcome_queues: dict[str, collections.deque] = {}
        self.family_defaults: dict[str, dict] = {}
        self.global_default: dict | None = None
        self.failure_queues: dict[str, collections.deque] = {}
        self.throttles: dict[str, dict] = {}
        self.kills: dict[str, dict] = {}
        self.deployment_queues: dict[str, collections.deque] = {}
        self.deployment_defaults: dict[str, dict] = {}
        self.deployment_global_default: dict | None = None
        self.calls: list[dict] = []

    def warm_up(self) -> None:
        for service in ("ecs", "ssm", "sts", "logs", "ec2"):
            if service not in self.moto_app.app_instances:
                self.moto_app.app_instances[service] = create_backend_app(service)

    @staticmethod
    def ecs_backend(account: str, region: str) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[account][region]

    def next_outcome(self, family: str) -> dict:
        queue = self.outcome_queues.get(family)
        if queue:
            entry = queue[0]
            entry["remaining"] -= 1
            if entry["remaining"] <= 0:
                queue.popleft()
            return entry["outcome"]
        if family in self.family_defaults:
            return self.family_defaults[family]
        return self.global_default or BUILTIN_DEFAULT_OUTCOME

    def take_failures(self, family: str, wanted: int) -> list[dict]:
        taken: list[dict] = []
        queue = self.failure_queues.get(family)
        while queue and len(taken) < wanted:
            entry = queue[0]
            take = min(entry["remaining"], wanted - len(taken))
            taken.extend([entry] * take)
            entry["remaining"] -= take
            if entry["remaining"] <= 0:
                queue.popleft()
        return taken

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        try:
            if path.startswith("/_taskrun/") or path == "/_taskrun":
                with self.lock:
                    return self.handle_control(environ, start_response)
            return self.handle_aws(environ, start_response)
        except ControlError as e:
            return respond_json(start_response, e.status, {"error": e.message})
        except Exception as e:
            if not path.startswith("/_taskrun"):
                raise
            traceback.print_exc()
            return respond_json(start_response, 500, {"error": f"taskrun emulator error: {e!r}"})

    def handle_aws(self, environ: dict, start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        ctype = environ.get("CONTENT_TYPE", "")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = re.search(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
        access_key, region, scope_service = (m.group(1), m.group(2), m.group(3)) if m else ("", DEFAULT_REGION, "")

        key = None
        body_obj: Any = None
        raw = b""
        if method == "POST" and (target or ctype.startswith("application/x-www-form-urlencoded")):
            raw = read_body(environ)
            if target and "." in target:
                prefix, op = target.split(".", 1)
                key = f"{TARGET_SERVICES.get(prefix, prefix.lower())}:{op}"
                try:
                    body_obj = json.loads(raw or b"{}")
                except ValueError:
                    body_obj = raw.decode("utf-8", "replace")
            elif raw:
                form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
                action = (form.get("Action") or [None])[0]
                if action:
                    key = f"{(scope_service or 'query').lower()}:{action}"
                    body_obj = {k: v[0] if len(v) == 1 else v for k, v in form.items()}

        if key is None:
            with self.lock:
                return self.moto_app(environ, start_response)
        environ["taskrun.api"] = key  # for the request log line
        json_protocol = bool(target)
        with self.lock:
            call = {"api": display_api(key), "body": body_obj, "throttled": False, "acted": False,
                    "killed": False}
            self.calls.append(call)
            text = raw.decode("utf-8", "replace") if method == "POST" else ""
            fault = self._consume_rule(self.throttles, key, text)
            if fault is not None and not fault["after"]:
                return self._answer_fault(start_response, environ, call, fault, json_protocol)
            kill = self._consume_rule(self.kills, key, text)
            resp = self._act(key, environ, body_obj, access_key, region)
            call["acted"] = True
            call["status"] = resp[0]
        if kill is not None:
            # outside the lock: other callers go on while we wait for the victim to die
            call["killed"] = send_kill(kill)
            environ["taskrun.note"] = f"then killed pid {kill['pid']}"
        if fault is not None:
            return self._answer_fault(start_response, environ, call, fault, json_protocol)
        return respond(start_response, resp)

    @staticmethod
    def _answer_fault(start_response: Any, environ: dict, call: dict, fault: dict,
                      json_protocol: bool) -> list[bytes]:
        resp = fault_resp(fault, json_protocol)
        call["throttled"] = True
        call["status"] = resp[0]
        note = "injected fault after acting" if fault["after"] else "injected fault"
        environ["taskrun.note"] = "; ".join(filter(None, [environ.get("taskrun.note"), note]))
        return respond(start_response, resp, LB_PHRASES.get(resp[0]) if fault.get("html") else None)

    def _act(self, key: str, environ: dict, body_obj: Any, access_key: str, region: str) -> Resp:
        """Carry out one AWS call: ours for the ECS ops we own, else moto's."""
        op = key[4:] if key.startswith("ecs:") else None
        if op in INTERCEPTED_ECS_OPS or op in SERVICE_ECS_OPS:
            account = self.account_for(environ, access_key)
            body = body_obj if isinstance(body_obj, dict) else {}
            try:
                if op in SERVICE_ECS_OPS:
                    return self.handle_service_op(op, body, account, region, environ)
                result = self.handle_ecs(op, body, account, region)
            except EcsError as e:
                return ecs_error_resp(e.code, e.message, e.status)
            except ServiceException as e:
                return ecs_error_resp(e.code, e.message, 400)
            except Exception as e:  # a bug of ours: say so instead of a bare 500
                traceback.print_exc()
                return ecs_error_resp("ServerException", f"taskrun emulator error: {e!r}", 500)
            if result is not None:
                return json_resp(200, result, content_type=JSON_11)
        return capture(self.moto_app, environ)

    @staticmethod
    def account_for(environ: dict, access_key: str) -> str:
        if os.environ.get("MOTO_ACCOUNT_ID"):
            return os.environ["MOTO_ACCOUNT_ID"]
        if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
            return environ["HTTP_X_MOTO_ACCOUNT_ID"]
        from moto.iam.models import get_account_id_from

        return get_account_id_from(access_key or "AKIAEXAMPLE")

    @staticmethod
    def _consume_rule(rules: dict, key: str, body: str = "") -> dict | None:
        """The throttle/kill rule that applies to this call, if any (its first `skip` calls
        pass). Rules are kept by (api, bodyContains): a rule with bodyContains only applies to
        calls whose raw body holds that text (tests running side by side scope their faults
        to their own cluster that way)."""
        for rule_key in [k for k in rules if k[0] == key and k[1] in body]:
            spec = rules[rule_key]
            if spec["remaining"] <= 0:
                continue
            if spec.get("skip", 0) > 0:
                spec["skip"] -= 1
                return None
            spec["remaining"] -= 1
            if spec["remaining"] <= 0:
                del rules[rule_key]
            return spec
        return None

    # ------------------------------------------------------------------ ECS ops
    def handle_ecs(self, op: str, body: dict, account: str, region: str) -> dict | None:
        backend = self.ecs_backend(account, region)
        if op == "RunTask":
            return self.run_task(backend, body, account, region)
        if op == "StartTask":
            return self.start_task(backend, body, account, region)
        if op == "DescribeTasks":
            return self.describe_tasks(backend, body, account, region)
        if op == "StopTask":
            return self.stop_task(backend, body, account, region)
        if op == "ListTasks":
            return self.list_tasks(backend, body, account, region)
        if op in ("TagResource", "UntagResource", "ListTagsForResource"):
            task = self.tasks.get(body.get("resourceArn", ""))
            if task is None:
                return None  # not a task: moto handles it
            if op == "TagResource":
                new = {t["key"]: t["value"] for t in body.get("tags") or []}
                task.tags = [t for t in task.tags if t["key"] not in new] + [
                    {"key": k, "value": v} for k, v in new.items()
                ]
                return {}
            if op == "UntagResource":
                drop = set(body.get("tagKeys") or [])
                task.tags = [t for t in task.tags if t["key"] not in drop]
                return {}
            return {"tags": task.tags}
        return None

    @staticmethod
    def _cluster(backend: Any, name: str | None, for_start: bool = False) -> Any:
        cluster_name = (name or "default").split("/")[-1]
        cluster = backend.clusters.get(cluster_name)
        if cluster is None or (for_start and getattr(cluster, "status", "ACTIVE") != "ACTIVE"):
            raise EcsError("ClusterNotFoundException", "Cluster not found.")
        return cluster

    @staticmethod
    def _task_definition(backend: Any, ref: str | None) -> Any:
        if not ref:
            raise EcsError("InvalidParameterException", "TaskDefinition cannot be empty.")
        name = ref.split("/")[-1]
        if ":" not in name:
            # a bare family runs its latest ACTIVE revision, as in AWS
            revisions = backend.task_definitions.get(name) or {}
            active = [rev for rev, td in revisions.items() if getattr(td, "status", "ACTIVE") == "ACTIVE"]
            if not active:
                raise EcsError("ClientException", "TaskDefinition not found.")
            return revisions[max(active)]
        try:
            td = backend.describe_task_definition(ref)
        except ServiceException:
            raise EcsError("ClientException", "TaskDefinition not found.")
        except (ValueError, KeyError):
            raise EcsError("ClientException", "TaskDefinition not found.")
        if getattr(td, "status", "ACTIVE") != "ACTIVE":
            raise EcsError("ClientException", "TaskDefinition is inactive")
        return td

    def _new_task(self, backend: Any, cluster: Any, td: Any, body: dict, account: str, region: str,
                  container_instance_arn: str | None, launch_type: str,
                  capacity_provider_name: str | None) -> TaskState:
        task = TaskState(
            account=account,
            region=region,
            cluster_name=cluster.name,
            cluster_arn=cluster.arn,
            task_def=td,
            container_instance_arn=container_instance_arn,
            launch_type=launch_type,
            capacity_provider_name=capacity_provider_name,
            platform_version=body.get("platformVersion"),
            group=body.get("group") or f"family:{td.family}",
            started_by=body.get("startedBy"),
            overrides=body.get("overrides"),
            tags=body.get("tags"),
            network_configuration=body.get("networkConfiguration"),
            outcome=self.next_outcome(td.family),
            enable_execute_command=bool(body.get("enableExecuteCommand")),
        )
        task.on_change = self._task_logs
        self.tasks[task.arn] = task
        return task

    def run_task(self, backend: Any, body: dict, account: str, region: str) -> dict:
        launch_type = body.get("launchType")
        strategy = body.get("capacityProviderStrategy") or []
        if launch_type and launch_type not in ("EC2", "FARGATE", "EXTERNAL"):
            raise EcsError("InvalidParameterException", "launch type should be one of [EC2,FARGATE,EXTERNAL]")
        if launch_type and strategy:
            raise EcsError(
                "InvalidParameterException",
                "Specify either Launch Type or Capacity Provider Strategy, but not both.",
            )
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RUN_COUNT:
            raise EcsError("InvalidParameterException", f"Count must be between 1 and {MAX_RUN_COUNT}.")
        token = body.get("clientToken")
        if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 64):
            raise EcsError("InvalidParameterException", "clientToken must be between 1 and 64 characters.")
        cluster = self._cluster(backend, body.get("cluster"), for_start=True)
        token_key = (account, region, cluster.name, token) if token else None
        if token_key and token_key in self.tokens:
            prior = self.tokens[token_key]
            tasks = []
            for arn in prior["taskArns"]:
                task = self.tasks.get(arn)
                if task is not None:
                    task.advance(described=False)
                    tasks.append(task.to_json())
            return {"tasks": tasks, "failures": prior["failures"]}
        td = self._task_definition(backend, body.get("taskDefinition"))

        if not strategy and not launch_type:
            strategy = list(getattr(cluster, "default_capacity_provider_strategy", None) or [])
        cp_name = strategy[0].get("capacityProvider") if strategy else None
        instances = [
            ci
            for ci in backend.container_instances.get(cluster.name, {}).values()
            if ci.status == "ACTIVE"
        ]
        on_instances = bool(instances) and launch_type in (None, "EC2", "EXTERNAL") and cp_name not in FARGATE_PROVIDERS
        if launch_type:
            effective_launch_type = launch_type
        elif cp_name in FARGATE_PROVIDERS:
            effective_launch_type = "FARGATE"
        elif cp_name or on_instances:
            effective_launch_type = "EC2"
        else:
            effective_launch_type = "FARGATE"

        failures_spec = self.take_failures(td.family, count)
        failures = []
        rr = self._rr_start(cluster.name, len(instances))
        for i, spec in enumerate(failures_spec):
            arn = spec.get("arn") or (
                instances[(rr + i) % len(instances)].container_instance_arn if instances else cluster.arn
            )
            entry = {"arn": arn, "reason": spec["reason"]}
            if spec.get("detail"):
                entry["detail"] = spec["detail"]
            failures.append(entry)

        tasks = []
        for i in range(count - len(failures_spec)):
            ci_arn = instances[(rr + i) % len(instances)].container_instance_arn if on_instances else None
            task = self._new_task(backend, cluster, td, body, account, region, ci_arn,
                                  effective_launch_type, cp_name)
            tasks.append(task)
        if token_key:
            self.tokens[token_key] = {"taskArns": [t.arn for t in tasks], "failures": failures}
        return {"tasks": [t.to_json() for t in tasks], "failures": failures}

    def _rr_start(self, cluster_name: str, n: int) -> int:
        if n == 0:
            return 0
        value = self._rr.get(cluster_name, 0)
        self._rr[cluster_name] = value + 1
        return value % n

    def start_task(self, backend: Any, body: dict, account: str, region: str) -> dict:
        cluster = self._cluster(backend, body.get("cluster"), for_start=True)
        refs = body.get("containerInstances") or []
        if not refs:
            raise EcsError("InvalidParameterException", "Container Instances cannot be empty.")
        if len(refs) > 10:
            raise EcsError("InvalidParameterException", "Container Instances cannot be more than 10.")
        td = self._task_definition(backend, body.get("taskDefinition"))
        known = backend.container_instances.get(cluster.name, {})
        tasks, failures = [], []
        for ref in refs:
            ci = known.get(ref.split("/")[-1])
            if ci is None:
                arn = ref if ref.startswith("arn:") else (
                    f"arn:{partition_of(region)}:ecs:{region}:{account}:container-instance/{cluster.name}/{ref}"
                )
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            tasks.append(self._new_task(backend, cluster, td, body, account, region,
                                        ci.container_instance_arn, "EC2", None))
        return {"tasks": [t.to_json() for t in tasks], "failures": failures}

    def _find_task(self, cluster: Any, ref: str) -> TaskState | None:
        task = self.tasks.get(ref)
        if task is None and not ref.startswith("arn:"):
            for candidate in self.tasks.values():
                if candidate.id == ref and candidate.cluster_name == cluster.name:
                    task = candidate
                    break
        elif task is None:
            # short-format ARN arn:aws:ecs:region:acct:task/<id>
            task_id = ref.split("/")[-1]
            for candidate in self.tasks.values():
                if candidate.id == task_id and candidate.cluster_name == cluster.name:
                    task = candidate
                    break
        if task is not None and task.cluster_arn != cluster.arn:
            return None
        return task

    def describe_tasks(self, backend: Any, body: dict, account: str, region: str) -> dict:
        refs = body.get("tasks") or []
        if not refs:
            raise EcsError("InvalidParameterException", "Tasks cannot be empty.")
        if len(refs) > MAX_DESCRIBE:
            raise EcsError("InvalidParameterException", f"Tasks cannot have more than {MAX_DESCRIBE} elements")
        cluster = self._cluster(backend, body.get("cluster"))
        include_tags = "TAGS" in (body.get("include") or [])
        now = time.time()
        out, failures, seen = [], [], set()
        for ref in refs:
            task = self._find_task(cluster, ref)
            if task is None:
                arn = ref if ref.startswith("arn:") else (
                    f"arn:{partition_of(region)}:ecs:{region}:{account}:task/{cluster.name}/{ref}"
                )
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            if task.arn in seen:
                continue
            seen.add(task.arn)
            task.advance(described=True, now=now)
            out.append(task.to_json(include_tags))
        return {"tasks": out, "failures": failures}

    def stop_task(self, backend: Any, body: dict, account: str, region: str) -> dict:
        cluster = self._cluster(backend, body.get("cluster"))
        ref = body.get("task") or ""
        task = self._find_task(cluster, ref) if ref else None
        if task is None:
            raise EcsError("InvalidParameterException", "The referenced task was not found.")
        task.user_stop(body.get("reason"))
        return {"task": task.to_json()}

    def list_tasks(self, backend: Any, body: dict, account: str, region: str) -> dict:
        cluster = self._cluster(backend, body.get("cluster"))
        desired = body.get("desiredStatus") or "RUNNING"
        if desired not in ("RUNNING", "PENDING", "STOPPED"):
            raise EcsError("InvalidParameterException", "desiredStatus should be one of [RUNNING,PENDING,STOPPED]")
        max_results = body.get("maxResults") or 100
        if not 1 <= int(max_results) <= 100:
            raise EcsError("InvalidParameterException", "maxResults must be between 1 and 100.")
        if body.get("serviceName"):
            return {"taskArns": []}
        ci = body.get("containerInstance")
        family = body.get("family")
        started_by = body.get("startedBy")
        launch_type = body.get("launchType")
        now = time.time()
        arns = []
        for task in self.tasks.values():
            if task.cluster_arn != cluster.arn:
                continue
            task.advance(described=False, now=now)
            status = "RUNNING" if desired == "PENDING" else desired
            if task.desired_status != status:
                continue
            if desired == "PENDING" and task.last_status not in ("PROVISIONING", "PENDING"):
                continue
            if ci and (task.container_instance_arn or "").split("/")[-1] != ci.split("/")[-1]:
                continue
            if family and task.family != family:
                continue
            if started_by and task.started_by != started_by:
                continue
            if launch_type and task.launch_type != launch_type:
                continue
            arns.append(task.arn)
        start = 0
        if body.get("nextToken"):
            try:
                start = int(base64.b64decode(body["nextToken"]).decode())
            except (ValueError, TypeError):
                raise EcsError("InvalidParameterException", "Invalid nextToken")
        page = arns[start : start + int(max_results)]
        result: dict[str, Any] = {"taskArns": page}
        if start + int(max_results) < len(arns):
            result["nextToken"] = base64.b64encode(str(start + int(max_results)).encode()).decode()
        return result

    # ------------------------------------------------------------------ CloudWatch Logs
    def _task_logs(self, task: TaskState, status: str) -> None:
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
                for name, (region, group, stream) in task.log_streams.items():
                    events = self._log_events(task, name)
                    if events:
                        logs_backends[task.account][region].put_log_events(group, stream, events)
        except Exception:  # a log problem must not break the ECS call that moved the task
            traceback.print_exc()

    @staticmethod
    def _log_events(task: TaskState, name: str) -> list[dict]:
        lines = (task.outcome.get("logs") or {}).get(name)
        if lines is None:
            container = next((c for c in task.containers if c["name"] == name), {})
            code = container.get("exitCode")
            end = f"exited with code {code}" if code is not None else "stopped"
            lines = [f"{name} starting", f"{name} {end}"]
        messages = [part for line in lines for part in split_log_line(line)]
        # spread over the task's run time, strictly increasing, in ms
        start = int((task.started_at or task.created_at) * 1000)
        stop = max(int((task.stopped_at or time.time()) * 1000), start)
        step = (stop - start) / max(len(messages) - 1, 1)
        events, last = [], start - 1
        for i, message in enumerate(messages):
            last = max(start + int(i * step), last + 1)
            events.append({"timestamp": last, "message": message})
        return events

    # ------------------------------------------------------------------ ECS services
    def handle_service_op(self, op: str, body: dict, account: str, region: str, environ: dict) -> Resp:
        """CreateService/UpdateService/DescribeServices: moto keeps the services; we keep their
        deployments (on moto's Service objects, so wipe-ecs and reset forget them too)."""
        backend = self.ecs_backend(account, region)
        if op == "DescribeServices":
            self._advance_described_services(backend, body)
            return capture(self.moto_app, environ)
        if op == "CreateService":
            resp = capture(self.moto_app, environ)
            if resp[0] != 200:
                return resp
            service = backend._get_service(body.get("cluster") or "default", body.get("serviceName"))
            self._init_service(service, body)
            return self._render_service(environ, service)
        return self._update_service(backend, body, environ)

    def _advance_described_services(self, backend: Any, body: dict) -> None:
        try:
            cluster = backend._get_cluster(body.get("cluster") or "default")
        except Exception:
            return  # moto answers the error
        now = time.time()
        seen = set()
        for ref in body.get("services") or []:
            service = backend.services.get(f"{cluster.name}:{str(ref).split('/')[-1]}")
            if service is not None and id(service) not in seen:
                seen.add(id(service))
                self._advance_rollout(service, described=True, now=now)

    def _init_service(self, service: Any, body: dict) -> None:
        conf = copy.deepcopy(DEFAULT_DEPLOYMENT_CONFIGURATION)
        conf.update(body.get("deploymentConfiguration") or {})
        service.deployment_configuration = conf  # moto's CreateService drops it
        service.taskrun_rollout = None
        if not service.deployments:
            return  # CODE_DEPLOY / EXTERNAL controllers: no ECS deployments
        dep = service.deployments[0]
        dep_id = new_deployment_id()
        now = utcnow()
        desired = service.desired_count
        dep.update({
            "id": dep_id, "status": "PRIMARY", "createdAt": now, "updatedAt": now,
            "desiredCount": desired, "runningCount": desired, "pendingCount": 0, "failedTasks": 0,
            "rolloutState": "COMPLETED", "rolloutStateReason": f"ECS deployment {dep_id} completed.",
        })
        recount_service(service)
        if desired:
            add_service_event(service, f"has started {desired} tasks: {fake_task_list(desired)}.")
        add_service_event(service, "has reached a steady state.")

    def _update_service(self, backend: Any, body: dict, environ: dict) -> Resp:
        cluster_ref = body.get("cluster") or "default"
        try:
            service = backend._get_service(cluster_ref, str(body.get("service") or "").split("/")[-1])
        except Exception:
            return capture(self.moto_app, environ)  # moto answers ServiceNotFound/ClusterNotFound
        if service.status != "ACTIVE":
            raise EcsError("ServiceNotActiveException", "Service was not ACTIVE.")
        new_td = service.task_definition
        if body.get("taskDefinition"):
            new_td = self._task_definition(backend, body["taskDefinition"]).arn
        before = {
            "deployments": copy.deepcopy(service.deployments),
            "task_definition": service.task_definition,
            "deployment_configuration": copy.deepcopy(getattr(service, "deployment_configuration", None)
                                                      or DEFAULT_DEPLOYMENT_CONFIGURATION),
        }
        resp = capture(self.moto_app, environ)
        if resp[0] != 200:
            return resp
        # undo what moto does to deployments (it renames the PRIMARY in place) and keep a full ARN
        service.deployments = before["deployments"]
        service.task_definition = new_td
        conf = before["deployment_configuration"]
        conf.update(body.get("deploymentConfiguration") or {})
        service.deployment_configuration = conf
        if service.deployments:
            if body.get("forceNewDeployment") or new_td != before["task_definition"]:
                self._start_deployment(service)
            else:
                primary = service.deployments[0]
                primary["desiredCount"] = service.desired_count
                if primary.get("rolloutState") == "COMPLETED":
                    primary["runningCount"], primary["pendingCount"] = service.desired_count, 0
                else:
                    primary["pendingCount"] = max(service.desired_count - primary["runningCount"], 0)
                primary["updatedAt"] = utcnow()
            recount_service(service)
        return self._render_service(environ, service)

    def _start_deployment(self, service: Any) -> None:
        now = utcnow()
        # deployments that failed and were rolled back from are done with
        service.deployments = [d for d in service.deployments if d.get("rolloutState") != "FAILED"]
        template = service.deployments[0] if service.deployments else {}
        for dep in service.deployments:
            if dep["status"] == "PRIMARY":
                dep["status"] = "ACTIVE"
                dep["updatedAt"] = now
        dep_id = new_deployment_id()
        desired = service.desired_count
        dep = {k: template[k] for k in ("launchType", "platformFamily", "platformVersion",
                                        "networkConfiguration") if k in template}
        dep.update({
            "id": dep_id, "status": "PRIMARY", "taskDefinition": service.task_definition,
            "desiredCount": desired, "pendingCount": desired, "runningCount": 0, "failedTasks": 0,
            "createdAt": now, "updatedAt": now, "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
        })
        service.deployments.insert(0, dep)
        service.taskrun_rollout = {"deploymentId": dep_id, "outcome": self.next_deployment_outcome(service.name),
                                   "describes": 0, "base": time.time(), "stuckEvent": False}
        if desired:
            add_service_event(service, f"has started {desired} tasks: {fake_task_list(desired)}.")

    def _advance_rollout(self, service: Any, described: bool, now: float) -> None:
        rollout = getattr(service, "taskrun_rollout", None)
        if not rollout:
            return
        dep = next((d for d in service.deployments if d["id"] == rollout["deploymentId"]), None)
        if dep is None or dep.get("rolloutState") != "IN_PROGRESS":
            service.taskrun_rollout = None
            return
        if described:
            rollout["describes"] += 1
        outcome = rollout["outcome"]
        if outcome["kind"] == "stuck":
            if described:  # tasks keep failing to start; the deployment never gives up
                dep["failedTasks"] += outcome.get("failedTasks") or 1
                dep["updatedAt"] = utcnow()
                if not rollout["stuckEvent"]:
                    rollout["stuckEvent"] = True
                    add_service_event(service, "is unable to consistently start tasks successfully. For more "
                                      "information, see the Troubleshooting section of the Amazon ECS "
                                      "Developer Guide.")
            return
        if not outcome_due(outcome, rollout["describes"], now - rollout["base"]):
            return
        service.taskrun_rollout = None
        if outcome["kind"] == "completed":
            self._complete_deployment(service, dep)
        else:
            self._fail_deployment(service, dep, outcome)
        recount_service(service)

    @staticmethod
    def _complete_deployment(service: Any, dep: dict) -> None:
        dep.update({"rolloutState": "COMPLETED", "rolloutStateReason": f"ECS deployment {dep['id']} completed.",
                    "runningCount": dep["desiredCount"], "pendingCount": 0, "updatedAt": utcnow()})
        drained = sum(d.get("runningCount") or 0 for d in service.deployments if d is not dep)
        service.deployments = [dep]
        if drained:
            add_service_event(service, f"has stopped {drained} running tasks: {fake_task_list(drained)}.")
        add_service_event(service, f"(deployment {dep['id']}) deployment completed.")
        add_service_event(service, "has reached a steady state.")

    @staticmethod
    def _fail_deployment(service: Any, dep: dict, outcome: dict) -> None:
        failed = outcome.get("failedTasks")
        dep.update({
            "rolloutState": "FAILED",
            "rolloutStateReason": outcome.get("reason") or "ECS deployment circuit breaker: tasks failed to start.",
            "failedTasks": failed if failed is not None else max(dep["desiredCount"], 1),
            "runningCount": 0, "pendingCount": 0, "updatedAt": utcnow(),
        })
        add_service_event(service, f"(deployment {dep['id']}) deployment failed: tasks failed to start.")
        rollback = outcome.get("rollback")
        if rollback is None:
            breaker = (getattr(service, "deployment_configuration", None) or {}).get("deploymentCircuitBreaker") or {}
            rollback = bool(breaker.get("rollback")) if breaker.get("enable") else True
        previous = next((d for d in service.deployments if d is not dep and d["status"] == "ACTIVE"
                         and d.get("rolloutState") != "FAILED"), None)
        if not rollback or previous is None:
            return  # the failed deployment stays PRIMARY
        # the circuit breaker's rollback: the last deployment that worked serves again
        dep["status"] = "ACTIVE"
        previous["status"] = "PRIMARY"
        previous["updatedAt"] = utcnow()
        service.task_definition = previous["taskDefinition"]
        service.deployments = [previous, dep]
        add_service_event(service, f"rolling back to deployment {previous['id']}.")

    def _render_service(self, environ: dict, service: Any) -> Resp:
        """Answer {"service": ...} in moto's own rendering, by asking it to describe the service."""
        headers = {
            "Authorization": environ.get("HTTP_AUTHORIZATION", ""),
            "X-Amz-Target": f"{ECS_TARGET_PREFIX}.DescribeServices",
            "Content-Type": JSON_11,
        }
        if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
            headers["X-Moto-Account-Id"] = environ["HTTP_X_MOTO_ACCOUNT_ID"]
        resp = self.client.post("/", data=json.dumps({"cluster": service.cluster_arn, "services": [service.arn]}),
                                headers=headers)
        described = json.loads(resp.get_data(as_text=True))
        return json_resp(200, {"service": described["services"][0]}, content_type=JSON_11)

    # ------------------------------------------------------------------ control
    def handle_control(self, environ: dict, start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        name = path[len("/_taskrun/"):] if path.startswith("/_taskrun/") else ""
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        body: dict = {}
        if method == "POST":
            raw = read_body(environ)
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ControlError("body must be JSON")
                if not isinstance(body, dict):
                    raise ControlError("body must be a JSON object")

        routes = {
            ("GET", "health"): lambda: {"ok": True},
            ("POST", "reset"): self.ctl_reset,
            ("POST", "wipe-ecs"): lambda: self.ctl_wipe_ecs(body),
            ("POST", "outcomes"): lambda: self.ctl_outcomes(body),
            ("GET", "outcomes"): self.ctl_get_outcomes,
            ("POST", "failures"): lambda: self.ctl_failures(body),
            ("POST", "throttle"): lambda: self.ctl_throttle(body),
            ("POST", "kill"): lambda: self.ctl_kill(body),
            ("POST", "deployment-outcomes"): lambda: self.ctl_deployment_outcomes(body),
            ("GET", "deployment-outcomes"): self.ctl_get_deployment_outcomes,
            ("POST", "container-instances"): lambda: self.ctl_container_instances(body, environ),
            ("GET", "calls"): lambda: self.ctl_calls(query),
            ("GET", "tasks"): lambda: [t.summary() for t in self.tasks.values()],
        }
        handler = routes.get((method, name))
        if handler is None:
            if any(n == name for (_, n) in routes):
                raise ControlError(f"method {method} not allowed on /_taskrun/{name}", 405)
            raise ControlError(f"unknown control endpoint /_taskrun/{name}", 404)
        return respond_json(start_response, 200, handler())

    def ctl_reset(self) -> dict:
        resp = self.client.post("/moto-api/reset")
        if resp.status_code != 200:
            raise ControlError(f"moto reset failed: HTTP {resp.status_code}", 500)
        self._reset_launcher_state()
        self._rr = {}
        return {"ok": True}

    def ctl_wipe_ecs(self, body: dict) -> dict:
        if not body.get("keepClusters"):
            from moto.ecs.models import ecs_backends

            for account_backends in list(ecs_backends.values()):
                account_backends.reset()
        self.tasks = {}
        self.tokens = {}
        self._rr = {}
        return {"ok": True, "keptClusters": bool(body.get("keepClusters"))}

    def ctl_outcomes(self, body: dict) -> dict:
        if "taskArn" in body:
            task = self.tasks.get(body["taskArn"])
            if task is None:
                raise ControlError(f"unknown task {body['taskArn']}", 404)
            task.set_outcome(normalize_outcome(body.get("outcome")), time.time())
            return {"ok": True, "task": task.summary()}
        family = body.get("family")
        if family is not None and (not isinstance(family, str) or not family):
            raise ControlError("family must be a non-empty string")
        done = False
        if "default" in body:
            value = None if body["default"] is None else normalize_outcome(body["default"])
            if family is None:
                self.global_default = value
            elif value is None:
                self.family_defaults.pop(family, None)
            else:
                self.family_defaults[family] = value
            done = True
        if body.get("clearQueue"):
            if family is None:
                self.outcome_queues.clear()
            else:
                self.outcome_queues.pop(family, None)
            done = True
        if "outcome" in body:
            if family is None:
                raise ControlError("family is required to queue an outcome")
            count = body.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ControlError("count must be an integer >= 1")
            self.outcome_queues.setdefault(family, collections.deque()).append(
                {"outcome": normalize_outcome(body["outcome"]), "remaining": count}
            )
            done = True
        if not done:
            raise ControlError('expected "outcome", "default", "clearQueue" or "taskArn"')
        return {"ok": True, **self.ctl_get_outcomes()}

    def ctl_get_outcomes(self) -> dict:
        return {
            "queues": {f: [dict(e) for e in q] for f, q in self.outcome_queues.items() if q},
            "defaults": self.family_defaults,
            "globalDefault": self.global_default or BUILTIN_DEFAULT_OUTCOME,
        }

    def ctl_failures(self, body: dict) -> dict:
        family, reason = body.get("family"), body.get("reason")
        if not isinstance(family, str) or not family or not isinstance(reason, str) or not reason:
            raise ControlError("family and reason are required")
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ControlError("count must be an integer >= 0")
        if count == 0:
            self.failure_queues.pop(family, None)
        else:
            self.failure_queues.setdefault(family, collections.deque()).append(
                {"reason": reason, "detail": body.get("detail"), "arn": body.get("arn"), "remaining": count}
            )
        return {"ok": True, "queued": {f: [dict(e) for e in q] for f, q in self.failure_queues.items() if q}}

    def ctl_throttle(self, body: dict) -> dict:
        api = body.get("api")
        if not isinstance(api, str) or not api:
            raise ControlError("api is required")
        times = int_field(body, "times", 1)
        skip = int_field(body, "skip", 0)
        key = (api_key(api), body_filter(body))
        if times == 0:
            self.throttles.pop(key, None)
        else:
            html = bool(body.get("html"))
            status = body.get("status") or (503 if html else 400)
            if isinstance(status, str) and status.isdigit():
                status = int(status)
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise ControlError("status must be an HTTP error status, 400 to 599")
            self.throttles[key] = {
                "remaining": times,
                "skip": skip,
                "code": body.get("code") or "ThrottlingException",
                "message": body.get("message") or "Rate exceeded",
                "status": status,
                "after": bool(body.get("after")),
                "html": html,
            }
        return {"ok": True, "throttles": {display_api(k[0]) + (f" ~{k[1]}" if k[1] else ""): v["remaining"]
                                          for k, v in self.throttles.items()}}

    def ctl_kill(self, body: dict) -> dict:
        api = body.get("api")
        if not isinstance(api, str) or not api:
            raise ControlError("api is required")
        times = int_field(body, "times", 1)
        key = (api_key(api), body_filter(body))
        if times == 0:
            self.kills.pop(key, None)
            return {"ok": True, "kills": {display_api(k[0]): dict(v) for k, v in self.kills.items()}}
        pid = body.get("pid")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1 or pid == os.getpid():
            raise ControlError("pid must be the id of another process (> 1, not the emulator's)")
        if process_gone(pid):
            raise ControlError(f"no process {pid}", 404)
        sig = body.get("signal", signal.SIGKILL)
        try:
            sig = signal.Signals(sig) if isinstance(sig, int) else signal.Signals[
                sig.upper() if sig.upper().startswith("SIG") else "SIG" + sig.upper()]
        except (ValueError, KeyError, AttributeError):
            raise ControlError("signal must be a signal number or name (9, \"KILL\", \"SIGTERM\")")
        wait = body.get("waitSeconds", 2)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 30:
            raise ControlError("waitSeconds must be a number from 0 to 30")
        self.kills[key] = {"remaining": times, "skip": int_field(body, "skip", 0), "pid": pid,
                           "signal": int(sig), "waitSeconds": wait}
        return {"ok": True, "kills": {display_api(k[0]): dict(v) for k, v in self.kills.items()}}

    def ctl_deployment_outcomes(self, body: dict) -> dict:
        service = body.get("service")
        if service is not None:
            if not isinstance(service, str) or not service:
                raise ControlError("service must be a non-empty string")
            service = service.split("/")[-1]  # an ARN names the same service
        done = False
        if "default" in body:
            value = None if body["default"] is None else normalize_deployment_outcome(body["default"])
            if service is None:
                self.deployment_global_default = value
            elif value is None:
                self.deployment_defaults.pop(service, None)
            else:
                self.deployment_defaults[service] = value
            done = True
        if body.get("clearQueue"):
            if service is None:
                self.deployment_queues.clear()
            else:
                self.deployment_queues.pop(service, None)
            done = True
        if "outcome" in body:
            if service is None:
                raise ControlError("service is required to queue an outcome")
            count = body.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ControlError("count must be an integer >= 1")
            self.deployment_queues.setdefault(service, collections.deque()).append(
                {"outcome": normalize_deployment_outcome(body["outcome"]), "remaining": count}
            )
            done = True
        if not done:
            raise ControlError('expected "outcome", "default" or "clearQueue"')
        return {"ok": True, **self.ctl_get_deployment_outcomes()}

    def ctl_get_deployment_outcomes(self) -> dict:
        return {
            "queues": {n: [dict(e) for e in q] for n, q in self.deployment_queues.items() if q},
            "defaults": self.deployment_defaults,
            "globalDefault": self.deployment_global_default or BUILTIN_DEPLOYMENT_OUTCOME,
        }

    def next_deployment_outcome(self, service: str) -> dict:
        queue = self.deployment_queues.get(service)
        if queue:
            entry = queue[0]
            entry["remaining"] -= 1
            if entry["remaining"] <= 0:
                queue.popleft()
            return entry["outcome"]
        if service in self.deployment_defaults:
            return self.deployment_defaults[service]
        return self.deployment_global_default or BUILTIN_DEPLOYMENT_OUTCOME

    def ctl_container_instances(self, body: dict, environ: dict) -> dict:
        cluster = body.get("cluster") or "default"
        count = body.get("count", 1)
        region = body.get("region") or DEFAULT_REGION
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50:
            raise ControlError("count must be an integer between 1 and 50")
        auth = (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20200101/{region}/{svc}/aws4_request, "
            "SignedHeaders=host, Signature=0"
        )
        extra = {}
        if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
            extra["X-Moto-Account-Id"] = environ["HTTP_X_MOTO_ACCOUNT_ID"]
        resp = self.client.post(
            "/",
            data={
                "Action": "RunInstances",
                "Version": "2016-11-15",
                "ImageId": "ami-12c6146b",
                "InstanceType": "m5.large",
                "MinCount": str(count),
                "MaxCount": str(count),
            },
            headers={"Authorization": auth.format(region=region, svc="ec2"), **extra},
        )
        if resp.status_code != 200:
            raise ControlError(f"EC2 RunInstances failed: {resp.get_data(as_text=True)[:500]}", 500)
        instance_ids = re.findall(r"<instanceId>(i-[0-9a-f]+)</instanceId>", resp.get_data(as_text=True))
        arns = []
        for instance_id in instance_ids:
            doc = json.dumps({"instanceId": instance_id, "region": region, "availabilityZone": f"{region}a"})
            resp = self.client.post(
                "/",
                data=json.dumps({"cluster": cluster, "instanceIdentityDocument": doc}),
                headers={
                    "Authorization": auth.format(region=region, svc="ecs"),
                    "X-Amz-Target": f"{ECS_TARGET_PREFIX}.RegisterContainerInstance",
                    "Content-Type": JSON_11,
                    **extra,
                },
            )
            text = resp.get_data(as_text=True)
            if resp.status_code != 200:
                raise ControlError(f"RegisterContainerInstance failed: {text[:500]}", 500)
            arns.append(json.loads(text)["containerInstance"]["containerInstanceArn"])
        return {"containerInstanceArns": arns, "ec2InstanceIds": instance_ids}

    def ctl_calls(self, query: dict) -> Any:
        api = (query.get("api") or [None])[0]
        if api:
            want = display_api(api_key(api))
            return [c["body"] for c in self.calls if c["api"] == want]
        return self.calls


# ---------------------------------------------------------------------- helpers
def new_deployment_id() -> str:
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"


def fake_task_list(n: int) -> str:
    """Service events name the tasks they started/stopped; service tasks are not modelled."""
    shown = " ".join(f"(task {uuid.uuid4().hex})" for _ in range(min(n, 5)))
    return shown + (f" and {n - 5} more" if n > 5 else "")


def add_service_event(service: Any, text: str) -> None:
    """Service events are newest first, like ECS's (which keeps the last 100)."""
    service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(),
                              "message": f"(service {service.name}) {text}"})
    del service.events[MAX_SERVICE_EVENTS:]


def recount_service(service: Any) -> None:
    service.running_count = sum(d.get("runningCount") or 0 for d in service.deployments)
    service.pending_count = sum(d.get("pendingCount") or 0 for d in service.deployments)


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


def ecs_error_resp(code: str, message: str, status: int = 400) -> Resp:
    return json_resp(status, {"__type": code, "message": message},
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


def process_gone(pid: int) -> bool:
    """True when pid no longer runs: absent, or a zombie its parent has not reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


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


class RequestHandler(MotoRequestHandler):
    """moto's request handler with one readable log line per request: `POST / ecs:RunTask 200 12ms`
    (AWS calls all go to `POST /`, so the line names the API), `POST /_taskrun/throttle 200 1ms`."""

    def make_environ(self) -> dict:
        environ = super().make_environ()
        environ["taskrun.t0"] = time.monotonic()
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        environ = getattr(self, "environ", None) or {}
        started = environ.get("taskrun.t0")
        took = f" {(time.monotonic() - started) * 1000:.0f}ms" if started is not None else ""
        api = environ.get("taskrun.api")
        note = environ.get("taskrun.note")
        path = getattr(self, "path", "") or ""
        line = f"{getattr(self, 'command', '-')} {path}{' ' + api if api else ''} {code}{took}{' (' + note + ')' if note else ''}"
        logging.getLogger("werkzeug").info(line.translate(self._control_char_table))


def watch_parent(pid: int) -> None:
    def loop() -> None:
        while True:
            time.sleep(0.5)
            if process_gone(pid):
                os._exit(0)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--port-file", help="write the bound port to this file once ready")
    parser.add_argument("--parent-pid", type=int, help="exit when this process no longer exists")
    parser.add_argument("--log-requests", action="store_true",
                        help="log every HTTP request to stderr (default: only errors)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.log_requests else logging.WARNING)

    if args.parent_pid:
        watch_parent(args.parent_pid)

    app = Launcher()
    app.warm_up()
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=RequestHandler)
    port = server.server_port

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stdout.write(f"READY http://127.0.0.1:{port}\n")
    sys.stdout.flush()
    # Nothing else goes to stdout: a caller may read just the READY line and never drain the pipe
    # (or close it). Stray prints (moto has a few) go to stderr from here on.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
