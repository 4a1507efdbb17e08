"""ECS services: moto stores them; the emulator keeps their deployments, which roll out (or fail,
or hang) by a scripted per-service deployment outcome (outcomes.py), and what ECS shows of them
for the deployment controller and load balancer the service has (see ServiceOps). Service
deployments and lifecycle hooks: service_deployments.py."""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from typing import Any

from moto.core.utils import utcnow

from outcomes import BUILTIN_DEPLOYMENT_OUTCOME, outcome_due
from protocol import ECS_TARGET_PREFIX, JSON_11, EcsError, Resp, capture, json_resp
from service_deployments import ServiceDeploymentOps, check_pause_hooks

# What ECS stores when CreateService has no (or a partial) deploymentConfiguration.
DEFAULT_DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
MAX_SERVICE_EVENTS = 100
SERVICE_ECS_OPS = {"CreateService", "UpdateService", "DescribeServices", "ContinueServiceDeployment",
                   "DescribeServiceDeployments", "ListServiceDeployments"}
# ECS API Reference, UpdateService: "For services using the blue/green (CODE_DEPLOY) deployment
# controller, only the desired count, deployment configuration, health check grace period, task
# placement constraints and strategies, enable ECS managed tags option, and propagate tags can be
# updated using this API. If the network configuration, platform version, task definition, or load
# balancer need to be updated, create a new CodeDeploy deployment." and "For services using an
# external deployment controller, you can update only the desired count, task placement
# constraints and strategies, health check grace period, enable ECS managed tags option, and
# propagate tags option". forceNewDeployment is in neither list. ECS's answers seen:
# InvalidParameterException "Unable to update task definition on services with a CODE_DEPLOY
# deployment controller. Use AWS CodeDeploy to trigger a new deployment." (boto/boto3#1936) and
# "Unable to update network parameters on services with a CODE_DEPLOY deployment controller. ..."
# (hashicorp/terraform-provider-aws#13473). The other wordings (forceNewDeployment, EXTERNAL) are
# unverified; whether ECS refuses forceNewDeployment alone is unverified too (a reporter says the
# console's "force new deployment" works on a CODE_DEPLOY service).
CONTROLLER_LIMITS = {
    "CODE_DEPLOY": ("Use AWS CodeDeploy to trigger a new deployment.",
                    (("taskDefinition", "task definition"), ("networkConfiguration", "network parameters"),
                     ("platformVersion", "platform version"), ("loadBalancers", "load balancers"),
                     ("forceNewDeployment", "force a new deployment"))),
    "EXTERNAL": ("Create a new task set to deploy.",
                 (("taskDefinition", "task definition"), ("networkConfiguration", "network parameters"),
                  ("platformVersion", "platform version"), ("loadBalancers", "load balancers"),
                  ("launchType", "launch type"), ("capacityProviderStrategy", "capacity provider strategy"),
                  ("deploymentConfiguration", "deployment configuration"),
                  ("forceNewDeployment", "force a new deployment"))),
}


class ServiceOps(ServiceDeploymentOps):
    """CreateService/UpdateService/DescribeServices and the service deployment operations; mixed
    into the Launcher.

    What a service's deployments show depends on the service, as in AWS:
    * Deployment reference, rolloutState: "The rolloutState of a service is only returned for
      services that use the rolling update (ECS) deployment type that aren't behind a Classic Load
      Balancer." A service with loadBalancers[].loadBalancerName (a Classic Load Balancer) gets no
      rolloutState/rolloutStateReason; CODE_DEPLOY and EXTERNAL services get no ECS deployments at
      all ("This is used only when a service uses the ECS deployment controller type.").
    * Behaviour "shortArn" (per service, set before CreateService): the service gets the ARN
      services created before 2021 have, arn:aws:ecs:<region>:<account>:service/<name> (ECS
      developer guide, "Migrate an Amazon ECS short service ARN to a long ARN"); TagResource on it
      is refused (limits_ecs.py)."""

    # ------------------------------------------------------------------ ECS services
    def handle_service_op(self, op: str, body: dict, account: str, region: str, environ: dict) -> Resp:
        """CreateService/UpdateService/DescribeServices: moto keeps the services; we keep their
        deployments (on moto's Service objects, so wipe-ecs and reset forget them too)."""
        backend = self.ecs_backend(account, region)
        if op == "DescribeServices":
            self._advance_described_services(backend, body)
            return self._shown(capture(self.moto_app, environ), backend)
        if op == "CreateService":
            check_pause_hooks(body.get("deploymentConfiguration"))
            resp = capture(self.moto_app, environ)
            if resp[0] != 200:
                return resp
            service = backend._get_service(body.get("cluster") or "default", body.get("serviceName"))
            if self.behaviours.get("service", service.name, "shortArn"):
                service.__class__ = _short_arn_class(type(service))
                self.behaviours.hit("service", service.name, "shortArn")
            self._init_service(service, body)
            return self._render_service(environ, service)
        if op == "ContinueServiceDeployment":
            return json_resp(200, self.continue_service_deployment(backend, body), content_type=JSON_11)
        if op == "DescribeServiceDeployments":
            return json_resp(200, self.describe_service_deployments(backend, body), content_type=JSON_11)
        if op == "ListServiceDeployments":
            return json_resp(200, self.list_service_deployments(backend, body), content_type=JSON_11)
        return self._update_service(backend, body, environ)

    @staticmethod
    def _shows_rollout_state(service: Any) -> bool:
        return not any(lb.get("loadBalancerName") for lb in getattr(service, "load_balancers", None) or [])

    def _shown(self, resp: Resp, backend: Any) -> Resp:
        """moto's rendering of services, without what AWS does not show for them."""
        if resp[0] != 200:
            return resp
        data = json.loads(resp[2])
        changed = False
        for item in data.get("services") or ([data["service"]] if data.get("service") else []):
            cluster = str(item.get("clusterArn", "")).split("/")[-1]
            service = backend.services.get(f"{cluster}:{item.get('serviceName')}")
            if service is not None and not self._shows_rollout_state(service):
                for dep in item.get("deployments") or []:
                    changed |= dep.pop("rolloutState", None) is not None
                    dep.pop("rolloutStateReason", None)
            # ECS API Reference, Service: "currentServiceDeployment - The ARN of the current
            # service deployment." (moto does not show it): the newest deployment's record.
            current = [d.get("taskrun_sd") for d in getattr(service, "deployments", None) or []
                       if d.get("taskrun_sd")] if service is not None else []
            if current:
                newest = max(current, key=lambda arn: self.service_deployments[arn]["createdAt"]
                             if arn in self.service_deployments else 0)
                if item.get("currentServiceDeployment") != newest:
                    item["currentServiceDeployment"] = newest
                    changed = True
        return json_resp(200, data, content_type=JSON_11) if changed else resp

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
        controller = (getattr(service, "deployment_controller", None) or {}).get("type", "ECS")
        if controller in CONTROLLER_LIMITS:
            advice, members = CONTROLLER_LIMITS[controller]
            for member, what in members:
                if body.get(member) not in (None, False, []):
                    raise EcsError("InvalidParameterException", f"Unable to update {what} on services with a "
                                   f"{controller} deployment controller. {advice}" if member != "forceNewDeployment"
                                   else f"Unable to {what} on services with a {controller} deployment controller. "
                                   f"{advice}")
        check_pause_hooks(body.get("deploymentConfiguration"))
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
        self.sd_start(service, dep)
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
        if self.sd_paused(service, dep, now):
            return  # waiting at a PAUSE lifecycle hook (service_deployments.py)
        if not getattr(service, "taskrun_rollout", None):
            return  # a hook's timeout rolled it back
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

    def _complete_deployment(self, service: Any, dep: dict) -> None:
        dep.update({"rolloutState": "COMPLETED", "rolloutStateReason": f"ECS deployment {dep['id']} completed.",
                    "runningCount": dep["desiredCount"], "pendingCount": 0, "updatedAt": utcnow()})
        drained = sum(d.get("runningCount") or 0 for d in service.deployments if d is not dep)
        service.deployments = [dep]
        if drained:
            add_service_event(service, f"has stopped {drained} running tasks: {fake_task_list(drained)}.")
        add_service_event(service, f"(deployment {dep['id']}) deployment completed.")
        add_service_event(service, "has reached a steady state.")
        self.sd_finish(service, dep, "SUCCESSFUL")

    def rollback_deployment(self, service: Any, dep: dict, reason: str) -> None:
        """ContinueServiceDeployment ROLLBACK (or a hook timing out with ROLLBACK)."""
        service.taskrun_rollout = None
        self._fail_deployment(service, dep, {"rollback": True, "reason": reason, "failedTasks": 0})
        recount_service(service)

    def _fail_deployment(self, service: Any, dep: dict, outcome: dict) -> None:
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
            self.sd_finish(service, dep, "STOPPED", dep["rolloutStateReason"])
            return  # the failed deployment stays PRIMARY
        # the circuit breaker's rollback: the last deployment that worked serves again
        dep["status"] = "ACTIVE"
        previous["status"] = "PRIMARY"
        previous["updatedAt"] = utcnow()
        service.task_definition = previous["taskDefinition"]
        service.deployments = [previous, dep]
        add_service_event(service, f"rolling back to deployment {previous['id']}.")
        self.sd_finish(service, dep, "ROLLBACK_SUCCESSFUL", dep["rolloutStateReason"])

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
        answer = json_resp(200, {"service": described["services"][0]}, content_type=JSON_11)
        return self._shown(answer, self.ecs_backend(service._account_id, service.region_name))

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


_SHORT_ARN_CLASSES: dict[type, type] = {}


def _short_arn_class(base: type) -> type:
    """moto's Service class with the short (pre-2021) ARN, whatever the account setting says."""
    if base not in _SHORT_ARN_CLASSES:
        def arn(self: Any) -> str:
            from moto.utilities.utils import get_partition

            return f"arn:{get_partition(self.region_name)}:ecs:{self.region_name}:{self._account_id}:service/{self.name}"

        _SHORT_ARN_CLASSES[base] = type(f"ShortArn{base.__name__}", (base,), {"arn": property(arn)})
    return _SHORT_ARN_CLASSES[base]
