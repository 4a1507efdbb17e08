"""Seeds the local AWS emulator with what inputs/ refer to, for the offline
contract tests (scripts/cfn-test.sh).

- ECS cluster `taskrun-contract` (capacity providers FARGATE and FARGATE_SPOT)
- task definition `taskrun-migrate`: awsvpc / FARGATE; essential container `app`
  (environment DB_HOST) and a non-essential `log-router` sidecar
- task definition `taskrun-seed`: awsvpc / FARGATE; one container `seed`
- for Org::ECS::ServiceRestart: cluster `servicerestart-contract` with service `api`
  (2 tasks of task definition `servicerestart-api`, its first deployment COMPLETED)

Uses dummy static credentials; talks only to --endpoint.

    python cfn/seed_emulator.py --endpoint http://127.0.0.1:PORT [--region us-east-1]
"""
import argparse
import os
import sys

import boto3
from botocore.config import Config

CLUSTER = "taskrun-contract"
SERVICE_CLUSTER = "servicerestart-contract"
IMAGE = "public.ecr.aws/docker/library/busybox:1.36"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/taskrun-contract-execution"

TASK_DEFINITIONS = [
    {
        "family": "taskrun-migrate",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": EXECUTION_ROLE,
        "containerDefinitions": [
            {
                "name": "app",
                "image": IMAGE,
                "essential": True,
                "command": ["sh", "-c", "echo migrating $DB_HOST"],
                "environment": [
                    {"name": "DB_HOST", "value": "db.contract.internal"},
                    {"name": "DB_NAME", "value": "app"},
                ],
            },
            {
                "name": "log-router",
                "image": IMAGE,
                "essential": False,
                "command": ["sh", "-c", "sleep 1"],
            },
        ],
    },
    {
        "family": "taskrun-seed",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": EXECUTION_ROLE,
        "containerDefinitions": [
            {
                "name": "seed",
                "image": IMAGE,
                "essential": True,
                "command": ["sh", "-c", "echo seeding"],
                "environment": [{"name": "DB_HOST", "value": "db.contract.internal"}],
            }
        ],
    },
]


def seed(endpoint, region):
    session = boto3.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # nosec - doc example
        region_name=region,
    )
    ecs = session.client(
        "ecs", endpoint_url=endpoint, config=Config(retries={"max_attempts": 2})
    )
    cluster = ecs.create_cluster(
        clusterName=CLUSTER,
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )["cluster"]
    print(f"cluster {cluster['clusterArn']}")
    for definition in TASK_DEFINITIONS:
        registered = ecs.register_task_definition(**definition)["taskDefinition"]
        print(f"task definition {registered['taskDefinitionArn']}")
    ecs.create_cluster(clusterName=SERVICE_CLUSTER)
    api = ecs.register_task_definition(
        family="servicerestart-api",
        containerDefinitions=[
            {"name": "api", "image": IMAGE, "essential": True, "memory": 128,
             "command": ["sh", "-c", "sleep 3600"]}
        ],
    )["taskDefinition"]
    service = ecs.create_service(
        cluster=SERVICE_CLUSTER, serviceName="api",
        taskDefinition=api["taskDefinitionArn"], desiredCount=2,
    )["service"]
    print(f"service {service['serviceArn']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="the emulator's URL")
    parser.add_argument(
        "--region", default=os.environ.get("AWS_REGION", "us-east-1"), help="AWS region"
    )
    args = parser.parse_args()
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    seed(args.endpoint, args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main())
