"""The ECS task lifecycle the emulator owns: RunTask, StartTask, DescribeTasks, StopTask,
ListTasks and Tag/Untag/ListTagsForResource on task ARNs. Clusters, task definitions and
container instances stay in moto and are read in-process.

Every started task gets an outcome (outcomes.py) from a per-family FIFO queue, a per-family
default or the global default (exit 0 after 1 DescribeTasks). Requests reach these operations only
once aws_rules.check accepted them. Modelled here, each with its source: client-token conflicts,
a cluster default strategy without weight, tags deleted by StopTask (always on, as in AWS); new
tasks invisible for a while and the PROVISIONING quota (behaviours, per cluster)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from moto.core.exceptions import ServiceException

from outcomes import BUILTIN_DEFAULT_OUTCOME
from protocol import EcsError, partition_of
from task_state import TaskState

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


class TaskOps:
    """The ECS task operations; mixed into the Launcher, whose state (tasks, tokens, queues) they use."""

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
        task.behaviour = lambda key: self.behaviours.get("cluster", cluster.name, key)
        task.hit = lambda key: self.behaviours.hit("cluster", cluster.name, key)
        # ECS API Reference, RunTask: "The Amazon ECS API follows an eventual consistency model. ...
        # the result of an API command you run that affects your Amazon ECS resources might not be
        # immediately visible to all subsequent commands you run." Behaviour "invisibleSeconds": a
        # new task is not seen by DescribeTasks, ListTasks and StopTask for that long.
        task.visible_at = task.created_at + (task.behaviour("invisibleSeconds") or 0)
        self.tasks[task.arn] = task
        return task

    def _invisible(self, task: TaskState, now: float) -> bool:
        if now < task.visible_at:
            task.hit("invisibleSeconds")
            return True
        return False

    def run_task(self, backend: Any, body: dict, account: str, region: str) -> dict:
        # The request passed aws_rules.check (launch type, strategy, count, token already checked).
        launch_type = body.get("launchType")
        strategy = body.get("capacityProviderStrategy") or []
        count = body.get("count", 1)
        token = body.get("clientToken")
        cluster = self._cluster(backend, body.get("cluster"), for_start=True)
        token_key = (account, region, cluster.name, token) if token else None
        # ECS API Reference, RunTask: "If you get a ConflictException error, the RunTask request
        # could not be processed due to conflicts. The provided clientToken is already in use with a
        # different RunTask request. The resourceIds are the existing task ARNs which are already
        # associated with the clientToken." The same token with the same parameters answers the
        # first answer again. The message text is the reference's sentence (AWS's exact wording is
        # unverified); "the same parameters" is compared on the whole request but clientToken.
        params = json.dumps({k: v for k, v in body.items() if k != "clientToken"}, sort_keys=True)
        if token_key and token_key in self.tokens:
            prior = self.tokens[token_key]
            if prior["params"] != params:
                raise EcsError("ConflictException", "The provided clientToken is already in use with a different "
                               "RunTask request.", extra={"resourceIds": list(prior["taskArns"])})
            tasks = []
            for arn in prior["taskArns"]:
                task = self.tasks.get(arn)
                if task is not None:
                    task.advance(described=False)
                    tasks.append(task.to_json())
            return {"tasks": tasks, "failures": prior["failures"]}
        td = self._task_definition(backend, body.get("taskDefinition"))
        self._provisioning_quota(cluster, count)

        if not strategy and not launch_type:
            strategy = list(getattr(cluster, "default_capacity_provider_strategy", None) or [])
            # The cluster's default strategy is used; ECS refuses one without a weight > 0 with
            # InvalidParameterException in these words (terraform-aws-modules/terraform-aws-ecs#27).
            if strategy and not any((item.get("weight") or 0) > 0 for item in strategy):
                raise EcsError("InvalidParameterException", "There are no capacity providers with a weight value "
                               "greater than zero defined in the default capacity provider strategy. At least one "
                               "capacity provider must have a weight value greater than zero specified. Update the "
                               "cluster's default capacity provider strategy or specify a valid capacity provider "
                               "strategy and try again.")
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
            self.tokens[token_key] = {"taskArns": [t.arn for t in tasks], "failures": failures, "params": params}
        return {"tasks": [t.to_json() for t in tasks], "failures": failures}

    def _provisioning_quota(self, cluster: Any, count: int) -> None:
        """ECS API Reference, RunTask: "If you get a ClientException error, the RunTask could not be
        processed because you use managed scaling and there is a capacity error because the quota
        of tasks in the PROVISIONING per cluster has been reached." (quota "Tasks in the PROVISIONING
        state per cluster", Amazon ECS service quotas; aws/aws-sdk-ruby#3047 reports the
        ClientException.) Behaviour "provisioningQuota": {"limit": Q} refuses a RunTask that would
        make more than Q tasks of the cluster PROVISIONING; {"times": N} refuses the next N RunTask
        calls. The message wording is unverified."""
        quota = self.behaviours.get("cluster", cluster.name, "provisioningQuota")
        if not quota:
            return
        refuse = False
        if quota.get("times", 0) > 0:
            quota["times"] -= 1
            refuse = True
        elif "limit" in quota:
            provisioning = sum(1 for t in self.tasks.values()
                               if t.cluster_arn == cluster.arn and t.last_status == "PROVISIONING")
            refuse = provisioning + count > quota["limit"]
        if refuse:
            self.behaviours.hit("cluster", cluster.name, "provisioningQuota")
            raise EcsError("ClientException", "The quota of tasks in the PROVISIONING state per cluster has been "
                           "reached. Try again later.")

    def _rr_start(self, cluster_name: str, n: int) -> int:
        if n == 0:
            return 0
        value = self._rr.get(cluster_name, 0)
        self._rr[cluster_name] = value + 1
        return value % n

    def start_task(self, backend: Any, body: dict, account: str, region: str) -> dict:
        cluster = self._cluster(backend, body.get("cluster"), for_start=True)
        refs = body.get("containerInstances") or []
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
        cluster = self._cluster(backend, body.get("cluster"))
        include_tags = "TAGS" in (body.get("include") or [])
        now = time.time()
        out, failures, seen = [], [], set()
        for ref in refs:
            task = self._find_task(cluster, ref)
            if task is None or self._invisible(task, now):
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
        if task is None or self._invisible(task, time.time()):
            raise EcsError("InvalidParameterException", "The referenced task was not found.")
        task.user_stop(body.get("reason"))
        # ECS API Reference, StopTask: "Any tags associated with the task will be deleted." Always,
        # as in AWS (also when the task had already stopped: unverified).
        task.tags = []
        return {"task": task.to_json()}

    def list_tasks(self, backend: Any, body: dict, account: str, region: str) -> dict:
        cluster = self._cluster(backend, body.get("cluster"))
        desired = body.get("desiredStatus") or "RUNNING"
        max_results = body.get("maxResults") or 100
        if body.get("serviceName"):
            return {"taskArns": []}
        ci = body.get("containerInstance")
        family = body.get("family")
        started_by = body.get("startedBy")
        launch_type = body.get("launchType")
        now = time.time()
        arns = []
        for task in self.tasks.values():
            if task.cluster_arn != cluster.arn or self._invisible(task, now):
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
