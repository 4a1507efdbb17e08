#!/usr/bin/env python3
"""The demo's story, played the way CloudFormation plays it: each operation is invoked
through the Lambda Invoke API, re-invoked with the returned callbackContext after
callbackDelaySeconds, with properties as strings (as CloudFormation sends them)."""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

import boto3

REGION = "us-east-1"
CREDS = {"accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "sessionToken": "demo"}
STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop-backend/6f1b2c3d-demo"


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


def strings(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return [strings(v) for v in value]
    if isinstance(value, dict):
        return {k: strings(v) for k, v in value.items()}
    return value


class Stack:
    def __init__(self, lambda_url):
        self.invoke_url = f"{lambda_url}/2015-03-31/functions/TaskRun/invocations"

    def operate(self, title, action, logical_id, props, previous=None):
        print(f"\n--- {title}")
        token = str(uuid.uuid4())
        context = None
        started = time.monotonic()
        while True:
            data = {"callerCredentials": CREDS, "logicalResourceId": logical_id, "resourceProperties": strings(props),
                    "stackTags": {"app": "shop"}}
            if previous is not None:
                data["previousResourceProperties"] = strings(previous)
            event = {"action": action, "awsAccountId": "123456789012", "bearerToken": token, "region": REGION,
                     "resourceType": "Org::ECS::TaskRun", "stackId": STACK, "requestData": data}
            if context is not None:
                event["callbackContext"] = context
            answer = post(self.invoke_url, event)
            elapsed = time.monotonic() - started
            status = answer.get("status")
            line = f"{action:<6} {logical_id:<16} {status:<11} {elapsed:5.1f}s"
            if answer.get("errorCode"):
                line += f"  [{answer['errorCode']}]"
            message = answer.get("message")
            if message:
                first, *rest = message.splitlines()
                line += f"  {first}"
                for more in rest:
                    line += f"\n{'':>43}{more}"
            print(line, flush=True)
            if status != "IN_PROGRESS":
                return answer
            context = answer["callbackContext"]
            time.sleep(answer.get("callbackDelaySeconds", 1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lambda-url", required=True)
    parser.add_argument("--emulator-url", required=True)
    args = parser.parse_args()

    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=args.emulator_url,
                       aws_access_key_id=CREDS["accessKeyId"], aws_secret_access_key=CREDS["secretAccessKey"])
    ecs.create_cluster(clusterName="shop")
    ecs.register_task_definition(family="shop-migrate", containerDefinitions=[
        {"name": "app", "image": "shop/api:42", "memory": 512, "essential": True,
         "environment": [{"name": "DB_HOST", "value": "db.shop.internal"}]},
        {"name": "log-router", "image": "amazon/aws-for-fluent-bit:stable", "memory": 64, "essential": False},
    ])

    def control(path, body):
        return post(f"{args.emulator_url}/_taskrun/{path}", body)

    # Migrations take a few seconds; the seed data job exits 2 (a duplicate key, say).
    control("outcomes", {"family": "shop-migrate", "default": {"kind": "exit", "afterSeconds": 4}})
    stack = Stack(args.lambda_url)
    migrate = {"Cluster": "shop", "TaskDefinition": "shop-migrate", "Timeout": 300, "PollInterval": 2,
               "UpdateCriteria": [{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}],
               "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["bin/rails", "db:migrate"],
                                                     "Environment": [{"Name": "RAILS_ENV", "Value": "production"}]}]}}
    print("A stack deploy creates two TaskRuns: a database migration and a seed data job.")
    created = stack.operate("create: the migration succeeds", "CREATE", "MigrateDatabase", migrate)
    run_id = created.get("resourceModel", {}).get("Id")
    print(f"{'':>43}Id={run_id} Status={created.get('resourceModel', {}).get('Status')}")

    control("outcomes", {"family": "shop-migrate", "outcome": {"kind": "exit", "afterSeconds": 3,
                                                             "containers": {"app": {"exitCode": 2}}}, "count": 1})
    seed = dict(migrate, Overrides={"ContainerOverrides": [{"Name": "app", "Command": ["bin/rails", "db:seed"]}]})
    seed.pop("UpdateCriteria")
    stack.operate("create: the seed job exits 2, so the deploy fails (and would roll back)", "CREATE", "SeedData", seed)

    changed = dict(migrate, Timeout=600)
    stack.operate("update: only Timeout changed, DB_HOST did not: nothing to run", "UPDATE", "MigrateDatabase",
                  dict(changed, Id=run_id), previous=dict(migrate, Id=run_id))
    stack.operate("delete: the stack goes away", "DELETE", "MigrateDatabase", dict(changed, Id=run_id))
    stopped = ecs.list_tasks(cluster="shop", desiredStatus="STOPPED")["taskArns"]
    running = ecs.list_tasks(cluster="shop", desiredStatus="RUNNING")["taskArns"]
    if running:
        print(f"\nECS ran {len(stopped) + len(running)} task(s) in all; {len(running)} still running:")
        for arn in running:
            print(f"  {arn}")
        return 1
    print(f"\nECS ran {len(stopped)} task(s) in all; none is left running.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except urllib.error.URLError as e:
        print(f"\ndemo: the local Lambda service or the emulator did not answer: {e.reason}", file=sys.stderr)
        sys.exit(1)
