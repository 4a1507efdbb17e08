"""The emulator's WSGI application: moto's server app behind a middleware that answers the
control API (control.py), the ECS task lifecycle (ecs_tasks.py), service deployments
(services.py) and task logs (logs.py), and injects faults (faults.py)."""

from __future__ import annotations

import collections
import json
import re
import threading
import time
import traceback
import urllib.parse
from typing import Any

from werkzeug.test import Client

from moto.core.exceptions import ServiceException
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

import aws_rules
from aws_rules import Refusal
from behaviours import Behaviours
from buckets import TokenBuckets
from control import ControlApi
from ecs_tasks import INTERCEPTED_ECS_OPS, TaskOps, TaskState
from faults import answer_fault, consume_rule, send_kill
from logs import TaskLogs
from protocol import (DEFAULT_REGION, JSON_11, TARGET_SERVICES, ControlError, EcsError, Resp, account_for, capture,
                      display_api, ecs_error_resp, json_resp, read_body, respond, respond_json)
from services import SERVICE_ECS_OPS, ServiceOps
from stacks import StackOps


class Launcher(TaskOps, TaskLogs, ServiceOps, StackOps, ControlApi):
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
        self.behaviours = Behaviours()
        self.pending_logs: list[dict] = []  # task log lines held back by behaviour "lateLines"
        self.service_deployments: dict[str, dict] = {}  # service deployment ARN -> record
        self.stacks: dict[str, dict] = {}  # CloudFormation stacks DescribeStacks knows
        self.buckets = TokenBuckets()  # off until POST /_taskrun/buckets {"enabled": true}

    def warm_up(self) -> None:
        for service in ("ecs", "ssm", "sts", "logs", "ec2"):
            if service not in self.moto_app.app_instances:
                self.moto_app.app_instances[service] = create_backend_app(service)

    @staticmethod
    def ecs_backend(account: str, region: str) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[account][region]

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
        account = account_for(environ, access_key)
        with self.lock:
            call = {"api": display_api(key), "body": body_obj, "throttled": False, "acted": False,
                    "killed": False}
            self.calls.append(call)
            # AWS's throttling comes first (buckets.py; off by default) ...
            bucket = self.buckets.take(key, body_obj, account, region)
            if bucket is not None:
                call.update({"throttled": True, "bucket": bucket, "status": 400})
                environ["taskrun.note"] = f"throttled by bucket {bucket}"
                return respond(start_response, ecs_error_resp("ThrottlingException", "Rate exceeded", 400))
            # ... then what AWS refuses, before any injected fault, dispatch or state change.
            refusal = self._refusal(key, body_obj, account, region) if json_protocol else None
            if refusal is not None:
                call["refused"] = refusal.code
                call["status"] = refusal.status
                environ["taskrun.note"] = f"refused: {refusal.code}"
                return respond(start_response, ecs_error_resp(refusal.code, refusal.message, refusal.status,
                                                              refusal.extra))
            text = raw.decode("utf-8", "replace") if method == "POST" else ""
            fault = consume_rule(self.throttles, key, text)
            if fault is not None and not fault["after"]:
                return answer_fault(start_response, environ, call, fault, json_protocol)
            kill = consume_rule(self.kills, key, text)
            resp = self._act(key, environ, body_obj, access_key, region)
            call["acted"] = True
            call["status"] = resp[0]
        if kill is not None:
            # outside the lock: other callers go on while we wait for the victim to die
            call["killed"] = send_kill(kill)
            environ["taskrun.note"] = f"then killed pid {kill['pid']}"
        if fault is not None:
            return answer_fault(start_response, environ, call, fault, json_protocol)
        return respond(start_response, resp)

    @staticmethod
    def _refusal(key: str, body_obj: Any, account: str, region: str) -> Refusal | None:
        """The error AWS answers for a request it refuses (aws_rules.py), for ECS, SSM, Logs and EventBridge."""
        service, _, op = key.partition(":")
        if service not in aws_rules.MODEL_FILES:
            return None
        ctx = aws_rules.Context(region=region, account=account, now_ms=int(time.time() * 1000))
        return aws_rules.check(service, op, body_obj, ctx)

    def _act(self, key: str, environ: dict, body_obj: Any, access_key: str, region: str) -> Resp:
        """Carry out one AWS call: ours for the ECS ops and GetLogEvents we own, else moto's."""
        if key == "cloudformation:DescribeStacks":
            return self.describe_stacks(body_obj if isinstance(body_obj, dict) else {})
        if key.startswith("logs:"):
            self.flush_late_logs()
            if key == "logs:GetLogEvents":
                try:
                    return json_resp(200, self.get_log_events(body_obj, account_for(environ, access_key), region),
                                     content_type=JSON_11)
                except EcsError as e:
                    return ecs_error_resp(e.code, e.message, e.status, e.extra)
        op = key[4:] if key.startswith("ecs:") else None
        if op in INTERCEPTED_ECS_OPS or op in SERVICE_ECS_OPS:
            account = account_for(environ, access_key)
            body = body_obj if isinstance(body_obj, dict) else {}
            try:
                if op in SERVICE_ECS_OPS:
                    return self.handle_service_op(op, body, account, region, environ)
                result = self.handle_ecs(op, body, account, region)
            except EcsError as e:
                return ecs_error_resp(e.code, e.message, e.status, e.extra)
            except ServiceException as e:
                return ecs_error_resp(e.code, e.message, 400)
            except Exception as e:  # a bug of ours: say so instead of a bare 500
                traceback.print_exc()
                return ecs_error_resp("ServerException", f"taskrun emulator error: {e!r}", 500)
            if result is not None:
                return json_resp(200, result, content_type=JSON_11)
        return capture(self.moto_app, environ)
