"""One ECS task as the emulator sees it: its lifecycle along a scripted outcome (outcomes.py) and
how DescribeTasks renders it. The operations on tasks are in ecs_tasks.py."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

from outcomes import outcome_due
from protocol import partition_of


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
        self.execution_stopped_at: float | None = None  # the containers stopped
        self.stopped_at: float | None = None  # lastStatus reached STOPPED
        self.last_status = "PENDING" if container_instance_arn else "PROVISIONING"
        self.desired_status = "RUNNING"
        self.stop_code: str | None = None
        self.stopped_reason: str | None = None
        self.version = 1
        # Behaviours switched on for the task's cluster (behaviours.py): setting lookup and hit count.
        self.behaviour: Callable[[str], Any] = lambda key: None
        self.hit: Callable[[str], None] = lambda key: None
        self.visible_at = now  # before this, DescribeTasks/ListTasks/StopTask do not see the task
        # After the containers stop: the states still to show, each (lastStatus, {"describes", "seconds"}),
        # then `final_status` for good.
        self.stop_phases: list[tuple[str, dict]] = []
        self.final_status = "STOPPED"
        self.phase_base = now
        self.phase_describes = 0
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
        """The containers have stopped. Which states ECS shows until (and after) STOPPED depends on
        the behaviours switched on for the cluster:
        * "stopping": STOPPING first. ECS developer guide, "Amazon ECS task lifecycle": "STOPPING --
          This is a transition state where Amazon ECS is waiting on the container agent to take
          further action."
        * "deprovisioning" (awsvpc tasks only): then DEPROVISIONING. Same page: "DEPROVISIONING --
          Amazon ECS has to perform additional steps after the task has stopped but before the task
          transitions to the STOPPED state. For example, for tasks that use the awsvpc network
          mode, the elastic network interface needs to be detached and deleted."
        * "deleted": after STOPPED, DELETED for good. Same page: "DELETED -- This is a transition
          state when a task stops. This state is not displayed in the console, but is displayed in
          describe-tasks." How long ECS shows it, and what it shows after, is unverified.
        Stop code, stopped reason and exit codes are shown in all of them: DEPROVISIONING comes
        "after the task has stopped"; for STOPPING and DELETED the docs do not say (unverified)."""
        self.desired_status = "STOPPED"
        self.stop_code = stop_code
        self.stopped_reason = reason
        self.stopping_at = self.stopping_at or now
        self.execution_stopped_at = now
        phases = []
        for status, key, applies in (("STOPPING", "stopping", True),
                                     ("DEPROVISIONING", "deprovisioning", bool(self.attachments))):
            spec = self.behaviour(key) if applies else None
            if spec:
                phases.append((status, spec))
                self.hit(key)
        deleted = self.behaviour("deleted")
        if deleted:
            phases.append(("STOPPED", deleted))
            self.final_status = "DELETED"
            self.hit("deleted")
        self.stop_phases = phases
        self._enter_phase(now, described=False)
        self._touch()
        self._notify("STOPPED")

    def _enter_phase(self, now: float, described: bool) -> None:
        """Show the next stop phase (or the final status) from now on."""
        self.phase_base = now
        self.phase_describes = 1 if described else 0  # the describe that moved it on sees the new state
        status = self.stop_phases[0][0] if self.stop_phases else self.final_status
        if status != self.last_status:
            self.last_status = status
            self._touch()
        if status in ("STOPPED", "DELETED") and self.stopped_at is None:
            self.stopped_at = now
        if self.attachments:
            self.attachments[0]["status"] = "DETACHING" if status in ("STOPPING", "DEPROVISIONING") else "DELETED"

    def _advance_stopped(self, described: bool, now: float) -> None:
        if described:
            self.phase_describes += 1
        while self.stop_phases:
            _, spec = self.stop_phases[0]
            after_d, after_s = spec.get("describes"), spec.get("seconds")
            if (after_d is not None and self.phase_describes <= after_d) or (
                    after_s is not None and now - self.phase_base < after_s):
                return
            self.stop_phases.pop(0)
            self._enter_phase(now, described)

    @property
    def has_stopped(self) -> bool:
        """The containers have stopped (the task may still be STOPPING/DEPROVISIONING)."""
        return self.stop_code is not None

    def advance(self, described: bool, now: float | None = None) -> None:
        """Move the task along its outcome. `described` = this is a DescribeTasks that includes it."""
        now = time.time() if now is None else now
        if self.has_stopped:
            self._advance_stopped(described, now)
            return
        self._advance_running(described, now)
        if self.has_stopped and described:
            self.phase_describes = 1  # this describe already sees the first state after the stop

    def _advance_running(self, described: bool, now: float) -> None:
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
        if self.has_stopped:
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
            t["connectivity"] = "DISCONNECTED" if self.has_stopped else "CONNECTED"
            t["connectivityAt"] = self.connectivity_at
        for key, value in (
            ("pullStartedAt", self.pull_started_at),
            ("pullStoppedAt", self.pull_stopped_at),
            ("startedAt", self.started_at),
            ("stoppingAt", self.stopping_at),
            ("stoppedAt", self.stopped_at),
            ("executionStoppedAt", self.execution_stopped_at),
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
