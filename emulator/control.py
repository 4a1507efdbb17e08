"""The control API under /_taskrun/ (never reaches moto); documented in emulator/README.md."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import time
import urllib.parse
from typing import Any

from faults import body_filter, int_field, process_gone
from outcomes import BUILTIN_DEFAULT_OUTCOME, BUILTIN_DEPLOYMENT_OUTCOME, normalize_deployment_outcome, normalize_outcome
from protocol import (DEFAULT_REGION, ECS_TARGET_PREFIX, JSON_11, ControlError, api_key, display_api, read_body,
                      respond_json)


class ControlApi:
    """The /_taskrun/ endpoints; mixed into the Launcher, whose state they read and change."""

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
            ("POST", "behaviours"): lambda: self.behaviours.set(body),
            ("GET", "behaviours"): self.behaviours.snapshot,
            ("POST", "stacks"): lambda: self.ctl_stacks(body),
            ("POST", "buckets"): lambda: self.buckets.configure(body),
            ("GET", "buckets"): self.buckets.snapshot,
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
        if not body.get("keepClusters"):
            self.service_deployments = {}
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
