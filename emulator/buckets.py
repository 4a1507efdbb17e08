"""Per-account, per-Region token buckets: AWS's request throttling, off by default.

ECS API Reference, "Request throttling": ECS throttles per account and Region with token buckets
(a burst, refilled at a sustained rate), and "All API actions in a category share the same token
bucket" -- every caller of the account draws from the same buckets. The categories the project
uses (burst / refill per second):
  cluster resource read   DescribeTasks, ListTasks, DescribeContainerInstances,
                          ListContainerInstances, ListAttributes                 100 / 20
  cluster resource modify RunTask, StartTask, StopTask                           100 / 40
  task definition read    DescribeTaskDefinition                                  50 / 20
  service read            DescribeServices, ListServices                        100 / 20
  service modify          UpdateService, CreateService, DeleteService             50 / 5
  tag modify              TagResource, UntagResource                              20 / 10
ECS developer guide, "AWS Fargate throttling quotas": RunTask for Fargate, 20 calls per second
(burst and sustained), on top of the cluster-modify bucket.
SSM: GetParameter, GetParameters, GetParametersByPath share the default Parameter Store throughput
of 40 transactions per second (AWS Systems Manager quotas, as quoted by the facts review);
PutParameter's limit is not documented -- AWS Support reportedly gave 3 per second
(github-aws-runners/terraform-aws-github-runner#2944), modelled as burst 3 / refill 3.
A throttled call answers ThrottlingException "Rate exceeded" (ECS: observed on RunTask,
cisagov/crossfeed#247; SSM PutParameter reference: "If you experience ThrottlingException: Rate
exceeded errors, enable higher throughput."), HTTP 400, before anything else looks at it.

Control (emulator/README.md, "Token buckets"):
  POST /_taskrun/buckets {"enabled": true, "scale": 1.0, "background": 0.25, "reset": false}
    scale multiplies every burst and refill (0.1 = a tenth of AWS's); background is a share of
    every bucket's refill that another consumer of the account takes; reset refills the buckets
    and zeroes the counts. Changing enabled/scale/background refills the buckets too.
  GET  /_taskrun/buckets -> {"enabled", "scale", "background", "buckets": {"<account>/<region>/<bucket>":
                              {"burst", "refillPerSecond", "level", "allowed", "throttled"}}}
"""

from __future__ import annotations

import time
from typing import Any

from protocol import ControlError

# bucket -> (burst, refill per second, APIs as "service:Operation")
BUCKETS: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "ecs-cluster-read": (100, 20, ("ecs:DescribeTasks", "ecs:ListTasks", "ecs:DescribeContainerInstances",
                                   "ecs:ListContainerInstances", "ecs:ListAttributes")),
    "ecs-cluster-modify": (100, 40, ("ecs:RunTask", "ecs:StartTask", "ecs:StopTask")),
    "ecs-task-definition-read": (50, 20, ("ecs:DescribeTaskDefinition",)),
    "ecs-service-read": (100, 20, ("ecs:DescribeServices", "ecs:ListServices")),
    "ecs-service-modify": (50, 5, ("ecs:UpdateService", "ecs:CreateService", "ecs:DeleteService")),
    "ecs-tag-modify": (20, 10, ("ecs:TagResource", "ecs:UntagResource")),
    "fargate-run-task": (20, 20, ()),  # RunTask on Fargate, decided from the request (see take)
    "ssm-get-parameter": (40, 40, ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath")),
    "ssm-put-parameter": (3, 3, ("ssm:PutParameter",)),
}
BUCKET_OF = {api: name for name, (_, _, apis) in BUCKETS.items() for api in apis}
FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


class TokenBuckets:
    def __init__(self) -> None:
        self.enabled = False
        self.scale = 1.0
        self.background = 0.0
        self.reset()

    def reset(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}  # "<account>/<region>/<bucket>" -> level, last, counts

    def configure(self, body: dict) -> dict:
        changed = False
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise ControlError("enabled must be true or false")
            changed |= body["enabled"] != self.enabled
            self.enabled = body["enabled"]
        for key, low, high in (("scale", 0.0001, 1000.0), ("background", 0.0, 0.99)):
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                    raise ControlError(f"{key} must be a number from {low} to {high}")
                changed |= value != getattr(self, key)
                setattr(self, key, float(value))
        if changed or body.get("reset"):
            self.reset()
        return self.snapshot()

    def _limits(self, name: str) -> tuple[float, float]:
        burst, refill, _ = BUCKETS[name]
        return burst * self.scale, refill * self.scale * (1.0 - self.background)

    def take(self, key: str, body: Any, account: str, region: str, now: float | None = None) -> str | None:
        """Take a token for this call from each bucket it draws on; the name of the bucket that
        throttles it, or None. Nothing is taken when buckets are off."""
        if not self.enabled:
            return None
        names = [BUCKET_OF[key]] if key in BUCKET_OF else []
        if key == "ecs:RunTask" and isinstance(body, dict) and _is_fargate(body):
            names.append("fargate-run-task")
        if not names:
            return None
        now = time.monotonic() if now is None else now
        states = [self._state(f"{account}/{region}/{name}", name, now) for name in names]
        for name, state in zip(names, states):
            if state["level"] < 1.0:
                state["throttled"] += 1
                return name
        for state in states:
            state["level"] -= 1.0
            state["allowed"] += 1
        return None

    def _state(self, full: str, name: str, now: float) -> dict:
        burst, refill = self._limits(name)
        state = self.state.get(full)
        if state is None:
            state = self.state[full] = {"level": burst, "last": now, "allowed": 0, "throttled": 0}
        state["level"] = min(burst, state["level"] + (now - state["last"]) * refill)
        state["last"] = now
        return state

    def snapshot(self) -> dict:
        now = time.monotonic()
        out = {}
        for full in sorted(self.state):
            name = full.rsplit("/", 1)[1]
            state = self._state(full, name, now)
            burst, refill = self._limits(name)
            out[full] = {"burst": burst, "refillPerSecond": refill, "level": round(state["level"], 3),
                         "allowed": state["allowed"], "throttled": state["throttled"]}
        return {"enabled": self.enabled, "scale": self.scale, "background": self.background, "buckets": out}


def _is_fargate(body: dict) -> bool:
    """A RunTask that launches on Fargate, as far as the request says (a cluster default strategy
    is not looked at)."""
    if body.get("launchType") == "FARGATE":
        return True
    strategy = body.get("capacityProviderStrategy") or []
    return any(isinstance(i, dict) and i.get("capacityProvider") in FARGATE_PROVIDERS for i in strategy)
