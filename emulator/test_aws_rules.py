"""Tests of the request checks (aws_rules.py): for each rule a request AWS refuses (with the
exception AWS sends) and a well-formed one that passes; the vendored models; and the emulator
refusing before any state change."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

import aws_rules
from aws_model import MODEL_FILES, model
from testkit import HERE, client, ctl, run

NOW = int(time.time() * 1000)
CTX = aws_rules.Context(now_ms=NOW)
TAGS = [{"key": "stack", "value": "s1"}]
RUN = {"cluster": "apps", "taskDefinition": "migrate", "launchType": "FARGATE", "count": 1, "startedBy": "cfn-1",
       "clientToken": "0123456789abcdef0123456789abcdef", "tags": TAGS,
       "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}}


def with_(base: dict, **changes) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def events(*stamps, message="x"):
    return [{"timestamp": t, "message": message} for t in stamps]


PUT = {"Name": "/org-ecs-taskrun/runs/abc", "Value": "v", "Type": "SecureString", "Tier": "Intelligent-Tiering",
       "Overwrite": True}
LOGS = {"logGroupName": "/ecs/app", "logStreamName": "migrate/app/1", "logEvents": events(NOW - 2, NOW - 1)}
ENTRY = {"Source": "org.ecs.taskrun", "DetailType": "TaskRun Task Started", "Detail": '{"Count": 1}',
         "EventBusName": "default", "Resources": ["arn:aws:ecs:us-east-1:123456789012:task/apps/0123"]}
PUT_EVENTS = {"Entries": [ENTRY]}

# (name, service, operation, refused request, exception AWS sends, well-formed request)
CASES = [
    # ---- the model: required, types, lengths, enums, patterns, list sizes, ranges
    ("required", "ecs", "RunTask", with_(RUN, taskDefinition=None), "InvalidParameterException", RUN),
    ("type", "ecs", "RunTask", with_(RUN, count="1"), "SerializationException", RUN),
    ("enum", "ecs", "RunTask", with_(RUN, launchType="LAMBDA"), "InvalidParameterException", RUN),
    ("tags <= 50", "ecs", "RunTask", with_(RUN, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)]),
     "InvalidParameterException", with_(RUN, tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])),
    ("tag key length", "ecs", "RunTask", with_(RUN, tags=[{"key": "k" * 129, "value": "v"}]),
     "InvalidParameterException", with_(RUN, tags=[{"key": "k" * 128, "value": "v" * 256}])),
    ("tag characters", "ecs", "RunTask", with_(RUN, tags=[{"key": "team", "value": "a(b)"}]),
     "InvalidParameterException", with_(RUN, tags=[{"key": "équipe", "value": "a b_c.d:e/f=g+h-i@j"}])),
    ("weight range", "ecs", "RunTask",
     with_(RUN, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1001}]),
     "InvalidParameterException",
     with_(RUN, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1000}])),
    ("log limit range", "logs", "GetLogEvents", {"logGroupName": "/g", "logStreamName": "s", "limit": 10001},
     "InvalidParameterException", {"logGroupName": "/g", "logStreamName": "s", "limit": 10000}),
    ("log limit minimum", "logs", "GetLogEvents", {"logGroupName": "/g", "logStreamName": "s", "limit": 0},
     "InvalidParameterException", {"logGroupName": "/g", "logStreamName": "s", "limit": 1}),
    ("stream name pattern", "logs", "CreateLogStream", {"logGroupName": "/g", "logStreamName": "a:b"},
     "InvalidParameterException", {"logGroupName": "/g", "logStreamName": "a__b"}),
    ("empty message", "logs", "PutLogEvents", with_(LOGS, logEvents=[{"timestamp": NOW, "message": ""}]),
     "InvalidParameterException", with_(LOGS, logEvents=[{"timestamp": NOW, "message": " "}])),
    ("ssm tier enum", "ssm", "PutParameter", with_(PUT, Tier="IntelligentTiering"), "ValidationException", PUT),
    ("ssm max results", "ssm", "GetParametersByPath", {"Path": "/org-ecs-taskrun/runs", "MaxResults": 11},
     "ValidationException", {"Path": "/org-ecs-taskrun/runs", "MaxResults": 10}),
    # ---- ECS: documented limits the model lacks
    ("aws: tag key", "ecs", "RunTask", with_(RUN, tags=[{"key": "AwS:stack", "value": "v"}]),
     "InvalidParameterException", with_(RUN, tags=[{"key": "stack-aws:x", "value": "v"}])),
    ("aws: tag value", "ecs", "StartTask",
     {"cluster": "apps", "taskDefinition": "migrate", "containerInstances": ["ci"], "tags": [{"key": "k", "value": "aws:x"}]},
     "InvalidParameterException",
     {"cluster": "apps", "taskDefinition": "migrate", "containerInstances": ["ci"], "tags": [{"key": "k", "value": "x"}]}),
    ("duplicate tag keys", "ecs", "RunTask", with_(RUN, tags=[{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]),
     "InvalidParameterException", with_(RUN, tags=[{"key": "k", "value": "1"}, {"key": "K", "value": "2"}])),
    ("overrides <= 8192", "ecs", "RunTask",
     with_(RUN, overrides={"containerOverrides": [{"name": "app", "command": ["x" * 8200]}]}),
     "InvalidParameterException",
     with_(RUN, overrides={"containerOverrides": [{"name": "app", "command": ["x" * 8100]}]})),
    ("capacity strategy without weight", "ecs", "RunTask",
     with_(RUN, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}]),
     "InvalidParameterException",
     with_(RUN, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 0},
                                                          {"capacityProvider": "FARGATE_SPOT", "weight": 1}])),
    ("two bases", "ecs", "RunTask",
     with_(RUN, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                                          {"capacityProvider": "FARGATE_SPOT", "base": 2, "weight": 1}]),
     "InvalidParameterException",
     with_(RUN, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                                          {"capacityProvider": "FARGATE_SPOT", "base": 0, "weight": 1}])),
    ("strategy with launch type", "ecs", "RunTask",
     with_(RUN, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}]),
     "InvalidParameterException", with_(RUN, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])),
    ("count 1..10", "ecs", "RunTask", with_(RUN, count=11), "InvalidParameterException", with_(RUN, count=10)),
    ("count 0", "ecs", "RunTask", with_(RUN, count=0), "InvalidParameterException", with_(RUN, count=1)),
    ("StartTask <= 10 instances", "ecs", "StartTask",
     {"cluster": "apps", "taskDefinition": "migrate", "containerInstances": [f"ci-{i}" for i in range(11)]},
     "InvalidParameterException",
     {"cluster": "apps", "taskDefinition": "migrate", "containerInstances": [f"ci-{i}" for i in range(10)]}),
    ("StartTask startedBy <= 36", "ecs", "StartTask",
     {"cluster": "apps", "taskDefinition": "migrate", "containerInstances": ["ci"], "startedBy": "x" * 37},
     "InvalidParameterException",
     {"cluster": "apps", "taskDefinition": "migrate", "containerInstances": ["ci"], "startedBy": "x" * 36}),
    ("RunTask startedBy <= 128", "ecs", "RunTask", with_(RUN, startedBy="x" * 129), "InvalidParameterException",
     with_(RUN, startedBy="a-B_9/" * 21)),
    ("startedBy characters", "ecs", "RunTask", with_(RUN, startedBy="abc:def"), "InvalidParameterException", RUN),
    ("clientToken characters", "ecs", "RunTask", with_(RUN, clientToken="has space"), "InvalidParameterException",
     with_(RUN, clientToken="!~" * 32)),
    ("clientToken <= 64", "ecs", "RunTask", with_(RUN, clientToken="t" * 65), "InvalidParameterException", RUN),
    ("propagateTags SERVICE", "ecs", "RunTask", with_(RUN, propagateTags="SERVICE"), "InvalidParameterException",
     with_(RUN, propagateTags="TASK_DEFINITION")),
    ("placement constraints <= 10", "ecs", "RunTask",
     with_(RUN, placementConstraints=[{"type": "memberOf", "expression": "attribute:x == y"}] * 11),
     "InvalidParameterException", with_(RUN, placementConstraints=[{"type": "memberOf", "expression": "attribute:x == y"}] * 10)),
    ("distinctInstance with expression", "ecs", "RunTask",
     with_(RUN, placementConstraints=[{"type": "distinctInstance", "expression": "x"}]), "InvalidParameterException",
     with_(RUN, placementConstraints=[{"type": "distinctInstance"}])),
    ("placement strategies <= 5", "ecs", "RunTask", with_(RUN, placementStrategy=[{"type": "random"}] * 6),
     "InvalidParameterException", with_(RUN, placementStrategy=[{"type": "random"}] * 5)),
    ("subnets <= 16", "ecs", "RunTask",
     with_(RUN, networkConfiguration={"awsvpcConfiguration": {"subnets": [f"subnet-{i}" for i in range(17)]}}),
     "InvalidParameterException",
     with_(RUN, networkConfiguration={"awsvpcConfiguration": {"subnets": [f"subnet-{i}" for i in range(16)]}})),
    ("security groups <= 5", "ecs", "RunTask",
     with_(RUN, networkConfiguration={"awsvpcConfiguration": {"subnets": ["s"], "securityGroups": ["sg"] * 6}}),
     "InvalidParameterException",
     with_(RUN, networkConfiguration={"awsvpcConfiguration": {"subnets": ["s"], "securityGroups": ["sg"] * 5}})),
    ("ephemeral storage 21..200", "ecs", "RunTask", with_(RUN, overrides={"ephemeralStorage": {"sizeInGiB": 20}}),
     "InvalidParameterException", with_(RUN, overrides={"ephemeralStorage": {"sizeInGiB": 21}})),
    ("cluster name", "ecs", "DescribeTasks", {"cluster": "my cluster", "tasks": ["t"]}, "InvalidParameterException",
     {"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/my-cluster_1", "tasks": ["t"]}),
    ("DescribeTasks <= 100", "ecs", "DescribeTasks", {"cluster": "apps", "tasks": ["t"] * 101},
     "InvalidParameterException", {"cluster": "apps", "tasks": ["t"] * 100}),
    ("DescribeTasks empty", "ecs", "DescribeTasks", {"cluster": "apps", "tasks": []}, "InvalidParameterException",
     {"cluster": "apps", "tasks": ["t"]}),
    ("DescribeServices <= 10", "ecs", "DescribeServices", {"cluster": "apps", "services": ["s"] * 11},
     "InvalidParameterException", {"cluster": "apps", "services": ["s"] * 10}),
    ("startedBy with family", "ecs", "ListTasks", {"cluster": "apps", "startedBy": "me", "family": "f"},
     "InvalidParameterException", {"cluster": "apps", "startedBy": "me", "desiredStatus": "STOPPED"}),
    ("startedBy with launchType", "ecs", "ListTasks", {"cluster": "apps", "startedBy": "me", "launchType": "FARGATE"},
     "InvalidParameterException", {"cluster": "apps", "family": "f", "launchType": "FARGATE"}),
    ("startedBy with serviceName", "ecs", "ListTasks", {"cluster": "apps", "startedBy": "me", "serviceName": "s"},
     "InvalidParameterException", {"cluster": "apps", "serviceName": "s", "desiredStatus": "RUNNING"}),
    ("startedBy with containerInstance", "ecs", "ListTasks",
     {"cluster": "apps", "startedBy": "me", "containerInstance": "ci"}, "InvalidParameterException",
     {"cluster": "apps", "containerInstance": "ci"}),
    ("ListTasks maxResults", "ecs", "ListTasks", {"cluster": "apps", "maxResults": 101}, "InvalidParameterException",
     {"cluster": "apps", "maxResults": 100}),
    ("StopTask reason <= 255", "ecs", "StopTask", {"cluster": "apps", "task": "t", "reason": "r" * 256},
     "InvalidParameterException", {"cluster": "apps", "task": "t", "reason": "r" * 255}),
    ("service name", "ecs", "CreateService", {"cluster": "apps", "serviceName": "my.api", "taskDefinition": "web"},
     "InvalidParameterException", {"cluster": "apps", "serviceName": "my-api_2", "taskDefinition": "web"}),
    ("family name", "ecs", "RegisterTaskDefinition",
     {"family": "a/b", "containerDefinitions": [{"name": "a", "image": "x"}]}, "InvalidParameterException",
     {"family": "a-b", "containerDefinitions": [{"name": "a", "image": "x"}]}),
    ("tag a short service ARN", "ecs", "TagResource",
     {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:service/api", "tags": TAGS}, "InvalidParameterException",
     {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:service/apps/api", "tags": TAGS}),
    # ---- CloudWatch Logs
    ("GetLogEvents limit 1..10000", "logs", "GetLogEvents", {"logGroupName": "/g", "logStreamName": "s", "limit": 20000},
     "InvalidParameterException", {"logGroupName": "/g", "logStreamName": "s", "limit": 100, "startFromHead": False}),
    ("group name and identifier", "logs", "GetLogEvents",
     {"logGroupName": "/g", "logGroupIdentifier": "/g", "logStreamName": "s"}, "InvalidParameterException",
     {"logGroupIdentifier": "arn:aws:logs:us-east-1:123456789012:log-group:/g", "logStreamName": "s"}),
    ("events <= 10000", "logs", "PutLogEvents", with_(LOGS, logEvents=events(*([NOW] * 10001), message="")),
     "InvalidParameterException", with_(LOGS, logEvents=events(*([NOW] * 10000)))),
    ("batch <= 1 MiB", "logs", "PutLogEvents", with_(LOGS, logEvents=events(*([NOW] * 41), message="x" * 25600)),
     "InvalidParameterException", with_(LOGS, logEvents=events(*([NOW] * 40), message="x" * 25600))),
    ("event <= 1 MB", "logs", "PutLogEvents", with_(LOGS, logEvents=events(NOW, message="x" * (1048576 - 25))),
     "InvalidParameterException", with_(LOGS, logEvents=events(NOW, message="x" * (1048576 - 26)))),
    ("chronological", "logs", "PutLogEvents", with_(LOGS, logEvents=events(NOW, NOW - 1)),
     "InvalidParameterException", with_(LOGS, logEvents=events(NOW - 1, NOW - 1, NOW))),
    ("24-hour span", "logs", "PutLogEvents", with_(LOGS, logEvents=events(NOW - 25 * 3600_000, NOW)),
     "InvalidParameterException", with_(LOGS, logEvents=events(NOW - 15 * 86400_000, NOW - 23 * 3600_000, NOW))),
    # ---- SSM Parameter Store
    ("empty value", "ssm", "PutParameter", with_(PUT, Value=""), "ValidationException", PUT),
    ("name characters", "ssm", "PutParameter", with_(PUT, Name="/org-ecs-taskrun/runs/a b"), "ValidationException", PUT),
    ("name prefix aws", "ssm", "PutParameter", with_(PUT, Name="/AWS-runs/x"), "ValidationException",
     with_(PUT, Name="/runs-aws/x")),
    ("name prefix ssm", "ssm", "PutParameter", with_(PUT, Name="ssmRun"), "ValidationException", with_(PUT, Name="runSsm")),
    ("hierarchy begins with /", "ssm", "PutParameter", with_(PUT, Name="org/x"), "ValidationException",
     with_(PUT, Name="/org/x")),
    ("hierarchy <= 15 levels", "ssm", "PutParameter", with_(PUT, Name="/a" * 16), "HierarchyLevelLimitExceededException",
     with_(PUT, Name="/a" * 15)),
    # 1011 characters with "arn:aws:ssm:us-east-1:123456789012:parameter" (44) before the name
    ("name length", "ssm", "PutParameter", with_(PUT, Name="/" + "n" * 967), "ValidationException",
     with_(PUT, Name="/" + "n" * 966)),
    ("standard value <= 4 KB", "ssm", "PutParameter", with_(PUT, Tier="Standard", Value="v" * 4097), "ValidationException",
     with_(PUT, Tier="Standard", Value="v" * 4096)),
    ("default tier is standard", "ssm", "PutParameter", with_(PUT, Tier=None, Value="é" * 2049), "ValidationException",
     with_(PUT, Tier=None, Value="é" * 2048)),
    ("advanced value <= 8 KB", "ssm", "PutParameter", with_(PUT, Tier="Advanced", Value="v" * 8193), "ValidationException",
     with_(PUT, Tier="Advanced", Value="v" * 8192)),
    ("intelligent tiering <= 8 KB", "ssm", "PutParameter", with_(PUT, Value="v" * 8193), "ValidationException",
     with_(PUT, Value="v" * 8000)),
    ("nested parameter", "ssm", "PutParameter", with_(PUT, Value='{"a": "{{ssm:/x}}"}'), "ValidationException",
     with_(PUT, Value='{"a": {"b": "{x}"}}')),
    ("tags with overwrite", "ssm", "PutParameter", with_(PUT, Tags=[{"Key": "k", "Value": "v"}]), "ValidationException",
     with_(PUT, Overwrite=False, Tags=[{"Key": "k", "Value": "v"}])),
    ("GetParameter name", "ssm", "GetParameter", {"Name": "{test}-test"}, "ValidationException",
     {"Name": "/aws/service/x:3", "WithDecryption": True}),
    ("path begins with /", "ssm", "GetParametersByPath", {"Path": "org-ecs-taskrun"}, "ValidationException",
     {"Path": "/org-ecs-taskrun/runs", "Recursive": False}),
    # ---- EventBridge: the model's Entries 1..10 and its NonPartnerEventBusNameOrArn pattern
    ("PutEvents <= 10 entries", "events", "PutEvents", {"Entries": [ENTRY] * 11}, "ValidationException",
     {"Entries": [ENTRY] * 10}),
    ("PutEvents no entries", "events", "PutEvents", {"Entries": []}, "ValidationException", PUT_EVENTS),
    ("PutEvents bus name", "events", "PutEvents", {"Entries": [with_(ENTRY, EventBusName="my bus")]},
     "ValidationException",
     {"Entries": [with_(ENTRY, EventBusName="arn:aws:events:us-east-1:123456789012:event-bus/my-bus_1.x")]}),
]


@pytest.mark.parametrize("name,service,operation,refused,code,accepted", CASES, ids=[c[0] for c in CASES])
def test_rule(name, service, operation, refused, code, accepted):
    got = aws_rules.check(service, operation, refused, CTX)
    assert got is not None, f"{name}: not refused"
    assert got.code == code, (got.code, got.message)
    assert got.violations and all(v.path for v in got.violations)
    ok = aws_rules.check(service, operation, accepted, CTX)
    assert ok is None, (ok.code, ok.message) if ok else None


def test_messages_in_aws_words():
    """The wording AWS uses where it was observed (sources in aws_rules.py and limits_*.py)."""
    assert aws_rules.check("ecs", "RunTask", with_(RUN, tags=[{"key": "a(b", "value": "v"}]), CTX).message == (
        "Some tags contain invalid characters. Valid characters: UTF-8 letters, spaces, numbers and _ . / = + - : @.")
    assert aws_rules.check("ecs", "ListTasks", {"startedBy": "x", "family": "f"}, CTX).message == (
        "cannot specify startedBy with other arguments")
    assert aws_rules.check("logs", "GetLogEvents", {"logGroupName": "/g", "logStreamName": "a:b"}, CTX).message == (
        "1 validation error detected: Value 'a:b' at 'logStreamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [^:*]*")
    # SSM names members lowerCamel and leaves sensitive values out
    assert aws_rules.check("ssm", "PutParameter", with_(PUT, Value=""), CTX).message == (
        "1 validation error detected: Value at 'value' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1")
    assert aws_rules.check("ssm", "PutParameter", with_(PUT, Name="ssm-x"), CTX).message.startswith(
        'Parameter name: can\'t be prefixed with "ssm" (case-insensitive).')
    assert aws_rules.check("ecs", "RunTask", with_(RUN, overrides={"x": "y" * 9000}), CTX).message == (
        "Container Overrides length must be at most 8192")
    big = aws_rules.check("logs", "PutLogEvents", with_(LOGS, logEvents=events(*([NOW] * 41), message="x" * 25600)), CTX)
    assert big.message == "Upload too large: 1050666 bytes exceeds limit of 1048576"


def test_several_violations_and_unknown_members():
    got = aws_rules.check("logs", "GetLogEvents", {"logStreamName": "a*b", "limit": 0, "logGroupName": "/g"}, CTX)
    assert got.message.startswith("2 validation errors detected: ")
    assert sorted(v.path for v in got.violations) == ["limit", "logStreamName"]
    # members the model does not know are ignored, as AWS's JSON protocol does
    assert aws_rules.check("ecs", "ListClusters", {"someFutureMember": 1}, CTX) is None
    # a body that is not a JSON object
    assert aws_rules.check("ecs", "ListClusters", "[1]", CTX).code == "SerializationException"
    # nested paths as AWS names them
    got = aws_rules.check("logs", "PutLogEvents", with_(LOGS, logEvents=[{"message": "x"}]), CTX)
    assert [v.path for v in got.violations] == ["logEvents.1.member.timestamp"]
    got = aws_rules.check("events", "PutEvents", {"Entries": [ENTRY, with_(ENTRY, EventBusName="a/b")]}, CTX)
    assert (got.code, [v.path for v in got.violations]) == ("ValidationException", ["Entries.2.member.EventBusName"])


def test_models_are_the_pinned_copies():
    for service, name in MODEL_FILES.items():
        m = model(service)
        assert m.operations and m.shapes
        for shape in m.shapes.values():  # every pattern compiles
            if "pattern" in shape:
                m.pattern(shape["pattern"])
        text = open(os.path.join(HERE, "aws_models", name)).read()
        assert '"documentation"' not in text
    source = open(os.path.join(HERE, "aws_models", "SOURCE.md")).read()
    assert "botocore 1.44.5" in source and source.count("sha256") >= 1
    done = subprocess.run([sys.executable, os.path.join(HERE, "aws_models", "regenerate.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_project_call_is_known_to_the_models():
    for target in ("AmazonEC2ContainerServiceV20141113.RunTask", "AmazonEC2ContainerServiceV20141113.StartTask",
                   "AmazonEC2ContainerServiceV20141113.DescribeTasks", "AmazonEC2ContainerServiceV20141113.StopTask",
                   "AmazonEC2ContainerServiceV20141113.ListTasks", "AmazonEC2ContainerServiceV20141113.UpdateService",
                   "AmazonEC2ContainerServiceV20141113.DescribeServices",
                   "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition", "AmazonSSM.PutParameter",
                   "AmazonSSM.GetParameter", "AmazonSSM.GetParametersByPath", "AmazonSSM.DeleteParameter",
                   "Logs_20140328.GetLogEvents", "Logs_20140328.PutLogEvents", "Logs_20140328.CreateLogGroup",
                   "Logs_20140328.CreateLogStream", "AWSEvents.PutEvents"):
        service, op = aws_rules.service_of_target(target)
        assert model(service).input_shape(op), target


# ---------------------------------------------------------------------- through the emulator
def test_emulator_refuses_before_acting(ecs, url):
    raw = client(url, "ecs")
    with pytest.raises(ClientError) as e:
        run(raw, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    err = e.value.response
    assert err["Error"]["Code"] == "InvalidParameterException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "InvalidParameterException"
    assert ctl(url, "tasks") == []  # nothing started
    (call,) = [c for c in ctl(url, "calls") if c["api"] == "RunTask"]
    assert call["refused"] == "InvalidParameterException" and not call["acted"] and call["status"] == 400
    # an injected fault is not used up by a refused call
    ctl(url, "throttle", {"api": "RunTask", "times": 1})
    with pytest.raises(ClientError) as e:
        run(raw, count=11)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        run(raw)
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    # SSM and Logs in their own words
    ssm = client(url, "ssm")
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/x/y", Value="v" * 4097, Type="String")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/x/y")
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"  # nothing was written
    logs = client(url, "logs")
    logs.create_log_group(logGroupName="/ecs/app")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName="/ecs/app", logStreamName="a:b")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert logs.describe_log_streams(logGroupName="/ecs/app")["logStreams"] == []


def test_emulator_refuses_bodies_the_sdk_would_not_send(url):
    """Raw JSON that no SDK sends: wrong types, null for a required member."""
    import urllib.request

    def post(target, body):
        req = urllib.request.Request(url + "/", data=json.dumps(body).encode(), headers={
            "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20200101/us-east-1/ecs/aws4_request, "
                             "SignedHeaders=host, Signature=0"})
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()), err.headers["x-amzn-errortype"]
        return 200, None, None

    status, body, header = post("AmazonEC2ContainerServiceV20141113.DescribeTasks", {"cluster": "c", "tasks": "t"})
    assert (status, body["__type"], header) == (400, "SerializationException", "SerializationException")
    status, body, _ = post("AmazonEC2ContainerServiceV20141113.RunTask", {"taskDefinition": None})
    assert status == 400 and body["message"].endswith("Member must not be null")
