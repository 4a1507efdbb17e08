#!/usr/bin/env python3
"""The demo's story, played the way CloudFormation plays it: each operation is invoked
through the Lambda Invoke API, re-invoked with the returned callbackContext after
callbackDelaySeconds, with properties as strings (as CloudFormation sends them).

Two stacks and two resource types, each type served by its own real handler binary:
shop-backend (a migration, a report on Fargate Spot, a service restarted after a secret
rotation) is created, updated, updated again with a failure CloudFormation rolls back,
and deleted; shop-seed's creation fails on its seed job and is rolled back."""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import boto3

from cfnkit import ACCOUNT_ID, REGION
from cfnkit.driver import Operation, caller_credentials, play

CREDS = caller_credentials("demo")
INDENT = " " * 45


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


class Stack:
    """One CloudFormation stack: its resources' operations, played as CloudFormation plays
    them, each resource type served by its own handler."""

    def __init__(self, name, services):
        self.name = name
        self.id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{name}/6f1b2c3d-demo"
        # resource type -> its function's Invoke URL
        self.urls = {t: f"{url}/2015-03-31/functions/{fn}/invocations" for t, (fn, url) in services.items()}

    def heading(self, operation, what):
        print(f"\n=== stack {self.name}: {operation}: {what}")

    def operate(self, action, type_name, logical_id, props, previous=None, rollback=False):
        """One CloudFormation operation, to its end; prints one line per progress event."""
        operation = Operation(action, type_name, logical_id, props, previous=previous, rollback=rollback,
                              stack_tags={"app": "shop"}, stack_id=self.id, credentials=CREDS,
                              send_returned_model=False)
        started = time.monotonic()

        def report(answer):
            elapsed = time.monotonic() - started
            status = answer.get("status")
            line = f"{action:<6} {logical_id:<17} {status:<11} {elapsed:5.1f}s"
            if answer.get("errorCode"):
                line += f"  [{answer['errorCode']}]"
            message = answer.get("message")
            if message:
                first, *rest = message.splitlines()
                line += f"  {first}"
                for more in rest:
                    line += f"\n{INDENT}{more}"
            print(line, flush=True)

        return play(operation, lambda request: post(self.urls[type_name], request), on_answer=report)


def show(answer, *fields):
    model = answer.get("resourceModel", {})
    print(INDENT + " ".join(f"{f}={model[f]}" for f in fields if f in model))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--taskrun-url", required=True, help="the Lambda service of Org::ECS::TaskRun")
    parser.add_argument("--servicerestart-url", required=True, help="the Lambda service of Org::ECS::ServiceRestart")
    parser.add_argument("--emulator-url", required=True)
    args = parser.parse_args()

    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=args.emulator_url,
                       aws_access_key_id=CREDS["accessKeyId"], aws_secret_access_key=CREDS["secretAccessKey"])
    ecs.create_cluster(clusterName="shop")
    awslogs = {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/shop", "awslogs-stream-prefix": "shop",
                                                   "awslogs-region": REGION}}
    ecs.register_task_definition(family="shop-migrate", containerDefinitions=[
        {"name": "app", "image": "shop/api:42", "memory": 512, "essential": True, "logConfiguration": awslogs,
         "environment": [{"name": "DB_HOST", "value": "db.shop.internal"}]},
        {"name": "log-router", "image": "amazon/aws-for-fluent-bit:stable", "memory": 64, "essential": False},
    ])
    ecs.register_task_definition(family="shop-report", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                 cpu="256", memory="512", containerDefinitions=[
                                     {"name": "report", "image": "shop/report:7", "essential": True}])
    api = ecs.register_task_definition(family="shop-api", containerDefinitions=[
        {"name": "api", "image": "shop/api:42", "memory": 512, "essential": True}])
    ecs.create_service(cluster="shop", serviceName="api", desiredCount=3,
                       taskDefinition=api["taskDefinition"]["taskDefinitionArn"])

    def control(path, body):
        return post(f"{args.emulator_url}/_taskrun/{path}", body)

    def control_get(path):
        with urllib.request.urlopen(f"{args.emulator_url}/_taskrun/{path}", timeout=30) as resp:
            return json.loads(resp.read())

    services = {"Org::ECS::TaskRun": ("TaskRun", args.taskrun_url),
                "Org::ECS::ServiceRestart": ("ServiceRestart", args.servicerestart_url)}
    backend = Stack("shop-backend", services)
    seed_stack = Stack("shop-seed", services)
    task_run, restart = "Org::ECS::TaskRun", "Org::ECS::ServiceRestart"
    print("Two stacks, as CloudFormation plays them. shop-backend has a database migration and a")
    print("monthly report on Fargate Spot (TaskRuns) and a restart of the api service after a secret")
    print("rotation (ServiceRestart); it is created, updated twice (the second update fails and is")
    print("rolled back), then deleted. shop-seed has a seed data job that fails, so its creation is")
    print("rolled back. One line per answer of the handler; IN_PROGRESS lines are what CloudFormation")
    print("hears between callbacks (stack events show the FAILED messages).")

    # --- shop-backend: created
    backend.heading("CREATE", "every resource is created; the stack reaches CREATE_COMPLETE")
    # The migration takes 4 s and prints its schema version with the output marker.
    control("outcomes", {"family": "shop-migrate", "outcome": {
        "kind": "exit", "afterSeconds": 4,
        "logs": {"app": ["== 20261122 AddOrdersIndex: migrating", "== 20261122 AddOrdersIndex: migrated (3.1s)",
                         'TASKRUN_OUTPUT {"schemaVersion": 42}']}}, "count": 1})
    migrate = {"Cluster": "shop", "TaskDefinition": "shop-migrate", "Timeout": 300,
               "UpdateCriteria": [{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}],
               "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["bin/rails", "db:migrate"],
                                                     "Environment": [{"Name": "RAILS_ENV", "Value": "production"}]}]}}
    print("    MigrateDatabase: the migration succeeds and hands its schema version to the stack (!GetAtt Output)")
    created = backend.operate("CREATE", task_run, "MigrateDatabase", migrate)
    run_id = created.get("resourceModel", {}).get("Id")
    show(created, "Id", "Status", "Output")

    # The report's first attempt loses its Spot capacity (and exits 0 on SIGTERM).
    control("outcomes", {"family": "shop-report", "default": {"kind": "exit", "afterSeconds": 3}})
    control("outcomes", {"family": "shop-report", "count": 1, "outcome": {
        "kind": "exit", "afterSeconds": 2, "stopCode": "SpotInterruption",
        "stoppedReason": "Your Spot Task was interrupted.", "containers": {"report": {"exitCode": 0}}}})
    report = {"Cluster": "shop", "TaskDefinition": "shop-report",
              "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}],
              "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": ["subnet-0a1b2c3d"]}},
              "Retry": {"Attempts": 2, "SpotFallback": True}}
    print("    MonthlyReport: its Spot task is interrupted (exit 0 on SIGTERM is no success) and retried on FARGATE")
    reported = backend.operate("CREATE", task_run, "MonthlyReport", report)
    for task in reported.get("resourceModel", {}).get("Tasks", []):
        attempt = f"retry {task['Attempt']}" if task.get("Attempt") else "first attempt"
        then = f", retried because of {task['RetriedBecause']}" if task.get("RetriedBecause") else ""
        print(f"{INDENT}Tasks: {attempt}: {task.get('StopCode')}{then}")
    launched = control_get("calls?api=RunTask")[-2:]
    providers = " then ".join(c["capacityProviderStrategy"][0]["capacityProvider"] for c in launched)
    print(f"{INDENT}RunTask capacity providers: {providers}")

    # ServiceRestart: the api service's tasks read the database password at start.
    control("deployment-outcomes", {"service": "api", "count": 1, "outcome": {"kind": "completed", "afterSeconds": 3}})
    restart_props = {"Cluster": "shop", "Service": "api", "Triggers": ["secret-version-1"], "PollInterval": 5}
    print("    RestartApi: restart the api service (it reads the rotated password at start) and wait for steady state")
    restarted = backend.operate("CREATE", restart, "RestartApi", restart_props)
    restart_id = restarted.get("resourceModel", {}).get("Id")
    show(restarted, "DeploymentId", "Status")

    # --- shop-backend: updated, nothing to run
    backend.heading("UPDATE", "only the migration's Timeout changed; the stack reaches UPDATE_COMPLETE")
    changed = dict(migrate, Timeout=600)
    print("    MigrateDatabase: DB_HOST did not change: the migration is not run again")
    backend.operate("UPDATE", task_run, "MigrateDatabase", dict(changed, Id=run_id), previous=dict(migrate, Id=run_id))

    # --- shop-backend: an update that fails and is rolled back
    backend.heading("UPDATE", "a new database host and a rotated password; the new api tasks crash, so the "
                              "update fails and is rolled back")
    control("outcomes", {"family": "shop-migrate", "count": 1, "outcome": {
        "kind": "exit", "afterSeconds": 3,
        "logs": {"app": ["== 20261201 MoveToNewHost: migrated (1.2s)", 'TASKRUN_OUTPUT {"schemaVersion": 43}']}}})
    moved = dict(changed, Overrides={"ContainerOverrides": [{"Name": "app", "Command": ["bin/rails", "db:migrate"],
                                                             "Environment": [{"Name": "RAILS_ENV", "Value": "production"},
                                                                             {"Name": "DB_HOST", "Value": "db2.shop.internal"}]}]})
    print("    MigrateDatabase: DB_HOST changed: the migration runs")
    backend.operate("UPDATE", task_run, "MigrateDatabase", dict(moved, Id=run_id), previous=dict(changed, Id=run_id))
    control("deployment-outcomes", {"service": "api", "count": 1, "outcome": {
        "kind": "failed", "afterSeconds": 3, "failedTasks": 3}})
    rotated = dict(restart_props, Triggers=["secret-version-2"], Id=restart_id)
    print("    RestartApi: the new deployment's tasks fail; ECS's circuit breaker rolls the service back")
    backend.operate("UPDATE", restart, "RestartApi", rotated, previous=dict(restart_props, Id=restart_id))
    print("    CloudFormation rolls the whole update back, newest change first (requests with rollback: true):")
    backend.operate("UPDATE", restart, "RestartApi", dict(restart_props, Id=restart_id), previous=rotated,
                    rollback=True)
    backend.operate("UPDATE", task_run, "MigrateDatabase", dict(changed, Id=run_id), previous=dict(moved, Id=run_id),
                    rollback=True)
    print(f"{INDENT}the stack is UPDATE_ROLLBACK_COMPLETE (a migration is not run backwards: RunOnRollback is false)")

    # --- shop-seed: a creation that fails and is rolled back
    seed_stack.heading("CREATE", "the seed data job fails; CloudFormation rolls the stack's creation back")
    control("outcomes", {"family": "shop-migrate", "count": 1, "outcome": {
        "kind": "exit", "afterSeconds": 3, "containers": {"app": {"exitCode": 3}},
        "logs": {"app": ["Seeding products...", "  inserted 1200 products", "Seeding users...",
                         'PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint "users_email_key"',
                         "DETAIL:  Key (email)=(admin@shop.example) already exists.", "rails aborted!"]}}})
    seed = dict(migrate, LogTail=4,
                Overrides={"ContainerOverrides": [{"Name": "app", "Command": ["bin/rails", "db:seed"]}]})
    seed.pop("UpdateCriteria")
    print("    SeedData: the job exits 3; the stack event says why, with the last lines of its log")
    seed_stack.operate("CREATE", task_run, "SeedData", seed)
    print(f"{INDENT}nothing to delete: a failed CREATE leaves no task and no record; "
          "the stack is ROLLBACK_COMPLETE")

    # --- shop-backend: deleted
    backend.heading("DELETE", "the stack goes away (a ServiceRestart leaves its service alone)")
    backend.operate("DELETE", task_run, "MigrateDatabase", dict(changed, Id=run_id))
    backend.operate("DELETE", task_run, "MonthlyReport", dict(report, Id=reported.get("resourceModel", {}).get("Id")))
    backend.operate("DELETE", restart, "RestartApi", dict(restart_props, Id=restart_id))

    stopped = ecs.list_tasks(cluster="shop", desiredStatus="STOPPED")["taskArns"]
    running = ecs.list_tasks(cluster="shop", desiredStatus="RUNNING")["taskArns"]
    service = ecs.describe_services(cluster="shop", services=["api"])["services"][0]
    primary = next((d for d in service["deployments"] if d["status"] == "PRIMARY"), {})
    failed = [d for d in service["deployments"] if d.get("rolloutState") == "FAILED"]
    print(f"\nService api: {service['runningCount']} of {service['desiredCount']} tasks running on the PRIMARY "
          f"deployment ({primary.get('rolloutState')}, the one the circuit breaker rolled back to)"
          + (f"; the failed one is still listed, {failed[0]['status']}, until the next deployment." if failed else "."))
    if running:
        print(f"ECS ran {len(stopped) + len(running)} one-off task(s) in all; {len(running)} still running:")
        for arn in running:
            print(f"  {arn}")
        return 1
    print(f"ECS ran {len(stopped)} one-off task(s) in all; none is left running.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except urllib.error.URLError as e:
        print(f"\ndemo: the local Lambda service or the emulator did not answer: {e.reason}", file=sys.stderr)
        sys.exit(1)
