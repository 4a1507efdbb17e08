"""Helpers of the emulator's tests: the client set-up, the control API, common task calls."""

from __future__ import annotations

import json
import os
import urllib.request

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "taskrun_emulator.py")
REGION = "us-east-1"
CREDS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
FAMILY = "migrate"
NET = {"awsvpcConfiguration": {"subnets": ["subnet-1234"], "securityGroups": ["sg-1234"], "assignPublicIp": "DISABLED"}}


def ctl(url: str, name: str, body: dict | None = None, method: str | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{url}/_taskrun/{name}",
        data=data,
        method=method or ("POST" if body is not None else "GET"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def client(url: str, service: str, retries: int = 0):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}),
        **CREDS,
    )


def run(ecs, **kw):
    args = {"cluster": "apps", "taskDefinition": FAMILY, "launchType": "FARGATE", "networkConfiguration": NET}
    args.update(kw)
    return ecs.run_task(**args)


def describe(ecs, arns, cluster="apps"):
    return ecs.describe_tasks(cluster=cluster, tasks=arns)


def by_name(task):
    return {c["name"]: c for c in task["containers"]}
