"""ECS service deployments as DescribeServiceDeployments/ListServiceDeployments show them, and
deployments that wait at a PAUSE lifecycle hook until ContinueServiceDeployment.

What the ECS API Reference (botocore 1.44.5 model) says, and what is modelled:
* DeploymentLifecycleHook.targetType: "PAUSE - Pauses the deployment at the specified lifecycle
  stage until you call ContinueServiceDeployment to continue or roll back." lifecycleStages for
  hooks: RECONCILE_SERVICE, PRE_SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT,
  POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT, PRODUCTION_TRAFFIC_SHIFT,
  POST_PRODUCTION_TRAFFIC_SHIFT; "PAUSE hooks cannot be configured at TEST_TRAFFIC_SHIFT or
  PRODUCTION_TRAFFIC_SHIFT stages." (refused by UpdateService/CreateService here; wording
  unverified). RECONCILE_SERVICE "only happens when you start a new service deployment with more
  than 1 service revision in an ACTIVE state" (modelled: only while another deployment is ACTIVE).
* ContinueServiceDeployment: "Continues or rolls back an Amazon ECS service deployment that is
  paused at a lifecycle hook. ... To find the hookId of the paused hook, call
  DescribeServiceDeployments and inspect the lifecycleHookDetails field." action CONTINUE
  (default) or ROLLBACK.
* DeploymentLifecycleHookDetail: hookId, targetType, status ("AWAITING_ACTION, IN_PROGRESS,
  SUCCEEDED, FAILED, and TIMED_OUT"), expiresAt, timeoutAction; timeoutConfiguration
  timeoutInMinutes "Default: 1440 (24 hours)", action "Default: ROLLBACK".
* ServiceDeployment.status: PENDING, SUCCESSFUL, STOPPED, STOP_REQUESTED, IN_PROGRESS,
  ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED; lifecycleStage
  the current stage; stoppedAt when "The rollback option is not in use ... and the service fails."
While a deployment waits at a hook, DescribeServices shows it PRIMARY with rolloutState
IN_PROGRESS (the Deployment reference has no paused state) and its outcome does not progress.
The service deployment ARN format (arn:...:service-deployment/<cluster>/<service>/<id>) follows
the reference's examples; its exact shape is unverified.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from protocol import EcsError, partition_of

HOOK_STAGES = ["RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
               "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]
NO_PAUSE_STAGES = {"TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"}
# the ServiceDeploymentLifecycleStage a PRE_PRODUCTION_TRAFFIC_SHIFT hook is reported in (that
# stage has no ServiceDeploymentLifecycleStage value of its own)
STAGE_SHOWN = {"PRE_PRODUCTION_TRAFFIC_SHIFT": "PRODUCTION_TRAFFIC_SHIFT"}


def check_pause_hooks(configuration: dict | None) -> None:
    for hook in (configuration or {}).get("lifecycleHooks") or []:
        if hook.get("targetType") == "PAUSE" and NO_PAUSE_STAGES & set(hook.get("lifecycleStages") or []):
            raise EcsError("InvalidParameterException",
                           "PAUSE hooks cannot be configured at TEST_TRAFFIC_SHIFT or PRODUCTION_TRAFFIC_SHIFT stages.")


class ServiceDeploymentOps:
    """Mixed into the Launcher: one service deployment record per ECS deployment of a service."""

    def sd_start(self, service: Any, dep: dict) -> None:
        """A new deployment `dep` of `service` starts: record it and pause it at its first PAUSE hook."""
        now = time.time()
        arn = (f"arn:{partition_of(service.region_name)}:ecs:{service.region_name}:{service._account_id}:"
               f"service-deployment/{service.cluster_name}/{service.name}/{secrets.token_urlsafe(16)[:22]}")
        previous = [d for d in service.deployments if d is not dep and d.get("status") in ("PRIMARY", "ACTIVE")]
        record = {
            "serviceDeploymentArn": arn, "serviceArn": service.arn, "clusterArn": service.cluster_arn,
            "createdAt": now, "startedAt": now, "updatedAt": now, "status": "IN_PROGRESS",
            "targetServiceRevision": {"arn": _revision_arn(service, dep), "requestedTaskCount": dep["desiredCount"],
                                      "runningTaskCount": 0, "pendingTaskCount": dep["desiredCount"]},
            "sourceServiceRevisions": [{"arn": _revision_arn(service, d), "requestedTaskCount": d.get("desiredCount", 0),
                                        "runningTaskCount": d.get("runningCount", 0), "pendingTaskCount": 0}
                                       for d in previous],
            "deploymentConfiguration": dict(getattr(service, "deployment_configuration", None) or {}),
            "lifecycleHookDetails": [],
            "taskrun": {"deploymentId": dep["id"], "stages": self._pause_stages(service, bool(previous)),
                        "hook": None},
        }
        self.service_deployments[arn] = record
        dep["taskrun_sd"] = arn
        self._pause_next(record, now)

    @staticmethod
    def _pause_stages(service: Any, others_active: bool) -> list[tuple[str, dict]]:
        hooks = (getattr(service, "deployment_configuration", None) or {}).get("lifecycleHooks") or []
        stages = []
        for stage in HOOK_STAGES:
            if stage == "RECONCILE_SERVICE" and not others_active:
                continue
            for hook in hooks:
                if hook.get("targetType") == "PAUSE" and stage in (hook.get("lifecycleStages") or []):
                    stages.append((stage, hook))
        return stages

    def _pause_next(self, record: dict, now: float) -> None:
        """Pause at the next PAUSE hook stage, or run on (stage SCALE_UP) when none is left."""
        state = record["taskrun"]
        if not state["stages"]:
            state["hook"] = None
            record["lifecycleStage"] = "SCALE_UP"
            return
        stage, hook = state["stages"].pop(0)
        timeout = hook.get("timeoutConfiguration") or {}
        detail = {"hookId": str(uuid.uuid4()), "targetType": "PAUSE", "status": "AWAITING_ACTION",
                  "expiresAt": now + 60 * (timeout.get("timeoutInMinutes") or 1440),
                  "timeoutAction": timeout.get("action") or "ROLLBACK"}
        record["lifecycleHookDetails"] = [detail]
        record["lifecycleStage"] = STAGE_SHOWN.get(stage, stage)
        record["updatedAt"] = now
        state["hook"] = detail

    def sd_paused(self, service: Any, dep: dict, now: float) -> bool:
        """Whether `dep` waits at a hook (after applying a hook's timeout action if it expired)."""
        record = self.service_deployments.get(dep.get("taskrun_sd") or "")
        hook = record and record["taskrun"]["hook"]
        if not hook:
            return False
        if now >= hook["expiresAt"]:
            hook["status"] = "TIMED_OUT"
            self._act_on_hook(service, dep, record, hook["timeoutAction"], now)
            return bool(record["taskrun"]["hook"])
        return True

    def sd_finish(self, service: Any, dep: dict, status: str, reason: str | None = None) -> None:
        record = self.service_deployments.get(dep.get("taskrun_sd") or "")
        if record is None or record["status"] not in ("IN_PROGRESS", "PENDING"):
            return
        now = time.time()
        record.update({"status": status, "updatedAt": now, "finishedAt": now})
        record["lifecycleStage"] = "CLEAN_UP" if status == "SUCCESSFUL" else record.get("lifecycleStage")
        record["targetServiceRevision"]["runningTaskCount"] = dep.get("runningCount", 0)
        record["targetServiceRevision"]["pendingTaskCount"] = 0
        if status == "STOPPED":
            record["stoppedAt"] = now
        if reason:
            record["statusReason"] = reason

    def _act_on_hook(self, service: Any, dep: dict, record: dict, action: str, now: float) -> None:
        hook = record["taskrun"]["hook"]
        if hook["status"] == "AWAITING_ACTION":
            hook["status"] = "SUCCEEDED"
        record["taskrun"]["hook"] = None
        if action == "ROLLBACK":
            self.rollback_deployment(service, dep, "Service deployment rolled back at a lifecycle hook.")
            return
        self._pause_next(record, now)
        if record["taskrun"]["hook"] is None:
            rollout = getattr(service, "taskrun_rollout", None)
            if rollout and rollout["deploymentId"] == dep["id"]:
                rollout["describes"], rollout["base"] = 0, now  # the outcome counts from here

    # ------------------------------------------------------------------ operations
    def continue_service_deployment(self, backend: Any, body: dict) -> dict:
        arn = body.get("serviceDeploymentArn") or ""
        record = self.service_deployments.get(arn)
        if record is None:
            raise EcsError("ServiceDeploymentNotFoundException", "The service deployment does not exist.")
        hook = record["taskrun"]["hook"]
        if hook is None or hook["hookId"] != body.get("hookId"):
            # wording unverified
            raise EcsError("InvalidParameterException", "The service deployment is not paused at that lifecycle hook.")
        service = next((s for s in backend.services.values() if s.arn == record["serviceArn"]), None)
        dep = next((d for d in (service.deployments if service else []) if d.get("taskrun_sd") == arn), None)
        if service is None or dep is None:
            raise EcsError("ServiceDeploymentNotFoundException", "The service deployment does not exist.")
        self._act_on_hook(service, dep, record, body.get("action") or "CONTINUE", time.time())
        return {"serviceDeploymentArn": arn}

    def describe_service_deployments(self, backend: Any, body: dict) -> dict:
        self._advance_all(backend)
        found, failures = [], []
        for arn in body.get("serviceDeploymentArns") or []:
            record = self.service_deployments.get(arn)
            if record is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append({k: v for k, v in record.items() if k != "taskrun"})
        return {"serviceDeployments": found, "failures": failures}

    def list_service_deployments(self, backend: Any, body: dict) -> dict:
        self._advance_all(backend)
        ref = str(body.get("service") or "")
        cluster = str(body.get("cluster") or "default").split("/")[-1]
        service = backend.services.get(f"{cluster}:{ref.split('/')[-1]}")
        if service is None:
            raise EcsError("ServiceNotFoundException", "Service not found.")
        wanted = set(body.get("status") or [])
        brief = []
        for record in sorted(self.service_deployments.values(), key=lambda r: -r["createdAt"]):
            if record["serviceArn"] != service.arn or (wanted and record["status"] not in wanted):
                continue
            item = {k: record[k] for k in ("serviceDeploymentArn", "serviceArn", "clusterArn", "createdAt",
                                           "startedAt", "status") if k in record}
            item["targetServiceRevisionArn"] = record["targetServiceRevision"]["arn"]
            for k in ("finishedAt", "statusReason"):
                if k in record:
                    item[k] = record[k]
            brief.append(item)
        limit = body.get("maxResults") or 20
        return {"serviceDeployments": brief[:limit]}

    def _advance_all(self, backend: Any) -> None:
        """Hook timeouts apply whether or not anyone describes the service."""
        now = time.time()
        for service in list(backend.services.values()):
            for dep in list(getattr(service, "deployments", [])):
                if dep.get("taskrun_sd"):
                    self.sd_paused(service, dep, now)


def _revision_arn(service: Any, dep: dict) -> str:
    suffix = str(dep.get("id", "")).split("/")[-1]
    return (f"arn:{partition_of(service.region_name)}:ecs:{service.region_name}:{service._account_id}:"
            f"service-revision/{service.cluster_name}/{service.name}/{suffix}")
