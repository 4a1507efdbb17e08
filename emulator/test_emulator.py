"""Tests for emulator/taskrun_emulator.py: starts the launcher as a subprocess on a free port and
drives it with boto3 (dummy credentials) plus its /_taskrun/ control API.

Run: .venv/bin/python -m pytest emulator/test_emulator.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "taskrun_emulator.py")
REGION = "us-east-1"
CREDS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
FAMILY = "migrate"


@pytest.fixture(scope="session")
def emulator():
    log = tempfile.NamedTemporaryFile(prefix="taskrun-emulator-", suffix=".log", delete=False)
    port_file = log.name + ".port"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, LAUNCHER, "--port", "0", "--port-file", port_file, "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:"), f"bad ready line {line!r}; log: {open(log.name).read()[-2000:]}"
        url = line.split()[1]
        with open(port_file) as f:
            assert url.endswith(":" + f.read().strip())
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for path in (log.name, port_file):
            try:
                os.unlink(path)
            except OSError:
                pass


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


@pytest.fixture
def url(emulator):
    ctl(emulator, "reset", {})
    return emulator


def client(url: str, service: str, retries: int = 0):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": retries + 1, "mode": "standard"}),
        **CREDS,
    )


@pytest.fixture
def ecs(url):
    c = client(url, "ecs")
    c.create_cluster(clusterName="apps")
    c.register_task_definition(
        family=FAMILY,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": "example/app:1", "essential": True, "memory": 256},
            {"name": "log-router", "image": "example/fluentbit:2", "essential": False, "memory": 64},
        ],
    )
    return c


NET = {"awsvpcConfiguration": {"subnets": ["subnet-1234"], "securityGroups": ["sg-1234"], "assignPublicIp": "DISABLED"}}


def run(ecs, **kw):
    args = {"cluster": "apps", "taskDefinition": FAMILY, "launchType": "FARGATE", "networkConfiguration": NET}
    args.update(kw)
    return ecs.run_task(**args)


def describe(ecs, arns, cluster="apps"):
    return ecs.describe_tasks(cluster=cluster, tasks=arns)


def by_name(task):
    return {c["name"]: c for c in task["containers"]}


def test_health_and_unknown_endpoint(emulator):
    assert ctl(emulator, "health") == {"ok": True}
    with pytest.raises(urllib.error.HTTPError) as e:
        ctl(emulator, "nope")
    assert e.value.code == 404


def test_default_outcome_lifecycle(ecs, url):
    resp = run(ecs)
    assert resp["failures"] == []
    (task,) = resp["tasks"]
    arn = task["taskArn"]
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING"
    assert arn.startswith("arn:aws:ecs:us-east-1:123456789012:task/apps/")
    assert [c["name"] for c in task["containers"]] == ["app", "log-router"]
    assert task["launchType"] == "FARGATE" and task["group"] == f"family:{FAMILY}"

    t1 = describe(ecs, [arn])["tasks"][0]
    assert t1["lastStatus"] == "RUNNING" and "startedAt" in t1 and "stoppedAt" not in t1
    assert all(c["lastStatus"] == "RUNNING" and "exitCode" not in c for c in t1["containers"])

    t2 = describe(ecs, [arn])["tasks"][0]
    assert t2["lastStatus"] == "STOPPED" and t2["desiredStatus"] == "STOPPED"
    assert t2["stopCode"] == "EssentialContainerExited"
    assert t2["stoppedReason"] == "Essential container in task exited"
    assert {n: c["exitCode"] for n, c in by_name(t2).items()} == {"app": 0, "log-router": 0}
    assert all("essential" not in c for c in t2["containers"])
    for key in ("createdAt", "startedAt", "stoppingAt", "stoppedAt"):
        assert key in t2
    assert t2["createdAt"] <= t2["startedAt"] <= t2["stoppedAt"]
    assert t2["clusterArn"].endswith(":cluster/apps")
    assert t2["taskDefinitionArn"].endswith(f":task-definition/{FAMILY}:1")
    c = by_name(t2)["app"]
    assert c["taskArn"] == arn and c["image"] == "example/app:1" and c["containerArn"]

    # a third describe keeps it STOPPED; the launcher's view agrees
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "STOPPED"
    (view,) = ctl(url, "tasks")
    assert view["taskArn"] == arn and view["family"] == FAMILY and view["stopCode"] == "EssentialContainerExited"
    assert {c["name"]: c["exitCode"] for c in view["containers"]} == {"app": 0, "log-router": 0}


def test_queued_exit_codes_and_counts(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "count": 2, "outcome": {
        "kind": "exit", "afterDescribes": 2,
        "containers": {"app": {"exitCode": 2, "reason": "migration failed"}},
    }})
    arns = [t["taskArn"] for t in run(ecs, count=3)["tasks"]]
    assert len(arns) == 3
    d1 = {t["taskArn"]: t for t in describe(ecs, arns)["tasks"]}
    assert [d1[a]["lastStatus"] for a in arns] == ["PENDING", "PENDING", "RUNNING"]
    d2 = {t["taskArn"]: t for t in describe(ecs, arns)["tasks"]}
    assert [d2[a]["lastStatus"] for a in arns] == ["RUNNING", "RUNNING", "STOPPED"]
    d3 = {t["taskArn"]: t for t in describe(ecs, arns)["tasks"]}
    for a in arns[:2]:
        t = d3[a]
        assert t["lastStatus"] == "STOPPED"
        assert by_name(t)["app"]["exitCode"] == 2 and by_name(t)["app"]["reason"] == "migration failed"
        assert by_name(t)["log-router"]["exitCode"] == 0 and "reason" not in by_name(t)["log-router"]
    assert by_name(d3[arns[2]])["app"]["exitCode"] == 0  # queue exhausted -> global default


def test_family_and_global_defaults_and_after_seconds(ecs, url):
    ctl(url, "outcomes", {"default": {"kind": "exit", "afterDescribes": 0, "containers": {"app": {"exitCode": 7}}}})
    ctl(url, "outcomes", {"family": FAMILY, "default": {"kind": "exit", "afterSeconds": 0.3,
                                                        "containers": {"app": {"exitCode": 3}}}})
    arn = run(ecs)["tasks"][0]["taskArn"]
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] in ("PENDING", "RUNNING")
    time.sleep(0.35)
    t = describe(ecs, [arn])["tasks"][0]
    assert t["lastStatus"] == "STOPPED" and by_name(t)["app"]["exitCode"] == 3
    # clearing the family default falls back to the global default (afterDescribes 0)
    ctl(url, "outcomes", {"family": FAMILY, "default": None})
    arn = run(ecs)["tasks"][0]["taskArn"]
    t = describe(ecs, [arn])["tasks"][0]
    assert t["lastStatus"] == "STOPPED" and by_name(t)["app"]["exitCode"] == 7 and "startedAt" in t


def test_never_starts(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "never_starts", "afterDescribes": 1}})
    arn = run(ecs)["tasks"][0]["taskArn"]
    t1 = describe(ecs, [arn])["tasks"][0]
    assert t1["lastStatus"] == "PENDING" and "startedAt" not in t1
    t2 = describe(ecs, [arn])["tasks"][0]
    assert t2["lastStatus"] == "STOPPED" and t2["stopCode"] == "TaskFailedToStart"
    assert t2["stoppedReason"].startswith("CannotPullContainerError: pull image manifest has been retried 5 time(s)")
    assert "startedAt" not in t2 and "stoppedAt" in t2
    for c in t2["containers"]:
        assert "exitCode" not in c and c["reason"].startswith("CannotPullContainerError")


def test_never_stops_and_stop_task(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "never_stops"}})
    arn = run(ecs, startedBy="cfn")["tasks"][0]["taskArn"]
    for _ in range(4):
        assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "RUNNING"
    assert ecs.list_tasks(cluster="apps")["taskArns"] == [arn]
    assert ecs.list_tasks(cluster="apps", desiredStatus="STOPPED")["taskArns"] == []
    stopped = ecs.stop_task(cluster="apps", task=arn, reason="Stack deleted")["task"]
    assert stopped["lastStatus"] == "STOPPED" and stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated" and stopped["stoppedReason"] == "Stack deleted"
    assert {c["exitCode"] for c in stopped["containers"]} == {143}
    # stopping again is a no-op that returns the task
    again = ecs.stop_task(cluster="apps", task=arn)["task"]
    assert again["stoppedReason"] == "Stack deleted" and again["stoppedAt"] == stopped["stoppedAt"]
    assert ecs.list_tasks(cluster="apps")["taskArns"] == []
    assert ecs.list_tasks(cluster="apps", desiredStatus="STOPPED")["taskArns"] == [arn]
    assert [b["reason"] for b in ctl(url, "calls?api=StopTask") if "reason" in b] == ["Stack deleted"]
    # stop a task that never started: no exit codes, default reason
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "never_stops"}})
    arn2 = run(ecs)["tasks"][0]["taskArn"]
    s2 = ecs.stop_task(cluster="apps", task=arn2)["task"]
    assert s2["stoppedReason"] == "Task stopped by user" and all("exitCode" not in c for c in s2["containers"])
    with pytest.raises(ClientError) as e:
        ecs.stop_task(cluster="apps", task="0123456789abcdef0123456789abcdef")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_set_outcome_of_started_task(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "never_stops"}})
    arn = run(ecs)["tasks"][0]["taskArn"]
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "RUNNING"
    ctl(url, "outcomes", {"taskArn": arn, "outcome": {"kind": "exit", "afterDescribes": 0,
                                                      "containers": {"app": {"exitCode": 1}},
                                                      "stopCode": "EssentialContainerExited",
                                                      "stoppedReason": "boom"}})
    t = describe(ecs, [arn])["tasks"][0]
    assert t["lastStatus"] == "STOPPED" and t["stoppedReason"] == "boom" and by_name(t)["app"]["exitCode"] == 1


def test_describe_missing_and_limits(ecs, url):
    arn = run(ecs)["tasks"][0]["taskArn"]
    ghost = arn.rsplit("/", 1)[0] + "/" + uuid.uuid4().hex
    resp = describe(ecs, [arn, ghost])
    assert [t["taskArn"] for t in resp["tasks"]] == [arn]
    assert resp["failures"] == [{"arn": ghost, "reason": "MISSING"}]
    # describe by short id works too
    assert describe(ecs, [arn.rsplit("/", 1)[1]])["tasks"][0]["taskArn"] == arn
    with pytest.raises(ClientError) as e:
        describe(ecs, [ghost] * 101)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        describe(ecs, [arn], cluster="nope")
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"
    with pytest.raises(ClientError) as e:
        run(ecs, count=11)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        run(ecs, taskDefinition="nope")
    assert e.value.response["Error"]["Code"] == "ClientException"


def test_run_task_variants_without_instances(ecs, url):
    # capacity provider strategy, no launch type, EC2 launch type: all start on an instance-less cluster
    r1 = ecs.run_task(cluster="apps", taskDefinition=f"{FAMILY}:1",
                      capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                      networkConfiguration=NET, overrides={"containerOverrides": [{"name": "app", "command": ["migrate"]}]})
    t = r1["tasks"][0]
    assert t["capacityProviderName"] == "FARGATE_SPOT" and t["launchType"] == "FARGATE"
    assert t["overrides"]["containerOverrides"] == [{"name": "app", "command": ["migrate"]}]
    r2 = ecs.run_task(cluster="apps", taskDefinition=FAMILY, count=10)
    assert len(r2["tasks"]) == 10
    r3 = ecs.run_task(cluster="apps", taskDefinition=FAMILY, launchType="EC2", group="g1")
    assert r3["tasks"][0]["launchType"] == "EC2" and r3["tasks"][0]["group"] == "g1"
    assert len(ctl(url, "tasks")) == 12


def test_client_token_idempotency(ecs, url):
    a = run(ecs, clientToken="tok-1", count=2)
    b = run(ecs, clientToken="tok-1", count=2)
    assert [t["taskArn"] for t in a["tasks"]] == [t["taskArn"] for t in b["tasks"]]
    assert len(ctl(url, "tasks")) == 2
    c = run(ecs, clientToken="tok-2")
    assert c["tasks"][0]["taskArn"] not in {t["taskArn"] for t in a["tasks"]}
    assert len(ctl(url, "tasks")) == 3
    assert [b.get("clientToken") for b in ctl(url, "calls?api=RunTask")] == ["tok-1", "tok-1", "tok-2"]


def test_failures(ecs, url):
    ctl(url, "failures", {"family": FAMILY, "reason": "RESOURCE:MEMORY", "count": 2, "detail": "no room"})
    r = run(ecs, count=3, clientToken="f1")
    assert len(r["tasks"]) == 1
    assert [(f["reason"], f["detail"]) for f in r["failures"]] == [("RESOURCE:MEMORY", "no room")] * 2
    assert r["failures"][0]["arn"].endswith(":cluster/apps")
    # replay with same token returns the same failures and starts nothing new
    r2 = run(ecs, count=3, clientToken="f1")
    assert r2["failures"] == r["failures"] and [t["taskArn"] for t in r2["tasks"]] == [r["tasks"][0]["taskArn"]]
    ctl(url, "failures", {"family": FAMILY, "reason": "AGENT", "count": 1})
    r3 = run(ecs)
    assert r3["tasks"] == [] and r3["failures"][0]["reason"] == "AGENT"
    assert len(run(ecs)["tasks"]) == 1


def test_throttling(ecs, url):
    arn = run(ecs)["tasks"][0]["taskArn"]
    ctl(url, "throttle", {"api": "DescribeTasks", "times": 2})
    with pytest.raises(ClientError) as e:
        describe(ecs, [arn])
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    # a retrying client rides over the second throttle
    assert client(url, "ecs", retries=2).describe_tasks(cluster="apps", tasks=[arn])["tasks"]
    calls = [c for c in ctl(url, "calls") if c["api"] == "DescribeTasks"]
    assert [c["throttled"] for c in calls] == [True, True, False]
    # SSM throttling by "ssm:Op" name
    ssm = client(url, "ssm")
    ssm.put_parameter(Name="/t/x", Value="v", Type="String")
    ctl(url, "throttle", {"api": "ssm:GetParameter", "times": 1})
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/t/x")
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    assert ssm.get_parameter(Name="/t/x")["Parameter"]["Value"] == "v"
    # STS (query protocol) throttling
    sts = client(url, "sts")
    ctl(url, "throttle", {"api": "sts:GetCallerIdentity", "times": 1})
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert e.value.response["Error"]["Code"] == "Throttling"
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_start_task_on_container_instances(ecs, url):
    ecs.create_cluster(clusterName="ec2c")
    arns = ctl(url, "container-instances", {"cluster": "ec2c", "count": 2})["containerInstanceArns"]
    assert len(arns) == 2
    assert sorted(ecs.list_container_instances(cluster="ec2c")["containerInstanceArns"]) == sorted(arns)
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "exit", "afterDescribes": 0,
                                                        "containers": {"app": {"exitCode": 5}}}})
    r = ecs.start_task(cluster="ec2c", taskDefinition=FAMILY, containerInstances=arns + ["deadbeef"])
    assert len(r["tasks"]) == 2 and r["failures"][0]["reason"] == "MISSING"
    assert sorted(t["containerInstanceArn"] for t in r["tasks"]) == sorted(arns)
    assert {t["launchType"] for t in r["tasks"]} == {"EC2"}
    describe(ecs, [t["taskArn"] for t in r["tasks"]], cluster="ec2c")
    d = describe(ecs, [t["taskArn"] for t in r["tasks"]], cluster="ec2c")["tasks"]
    codes = sorted(by_name(t)["app"]["exitCode"] for t in d)
    assert codes == [0, 5]  # one queued outcome, then the default
    # RunTask with EC2 on a cluster that has instances places the task on one
    t = ecs.run_task(cluster="ec2c", taskDefinition=FAMILY, launchType="EC2")["tasks"][0]
    assert t["containerInstanceArn"] in arns and t["lastStatus"] == "PENDING"
    assert ecs.list_tasks(cluster="ec2c", containerInstance=t["containerInstanceArn"])["taskArns"] == [t["taskArn"]]


def test_list_tasks_filters_and_pagination(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "default": {"kind": "never_stops"}})
    arns = [t["taskArn"] for t in run(ecs, count=5, startedBy="me")["tasks"]]
    page1 = ecs.list_tasks(cluster="apps", maxResults=2)
    assert page1["taskArns"] == arns[:2] and page1["nextToken"]
    everything = [a for p in ecs.get_paginator("list_tasks").paginate(cluster="apps", PaginationConfig={"PageSize": 2})
                  for a in p["taskArns"]]
    assert everything == arns
    assert ecs.list_tasks(cluster="apps", family="other")["taskArns"] == []
    assert ecs.list_tasks(cluster="apps", startedBy="me", family=FAMILY)["taskArns"] == arns


def test_task_tags(ecs, url):
    arn = run(ecs, tags=[{"key": "stack", "value": "s1"}])["tasks"][0]["taskArn"]
    assert ecs.describe_tasks(cluster="apps", tasks=[arn], include=["TAGS"])["tasks"][0]["tags"] == [
        {"key": "stack", "value": "s1"}]
    assert "tags" not in describe(ecs, [arn])["tasks"][0]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}])
    assert len(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == 2


def test_wipe_ecs_keeps_ssm(ecs, url):
    ssm = client(url, "ssm")
    ssm.put_parameter(Name="/org-ecs-taskrun/runs/r1", Value="{}", Type="String")
    arn = run(ecs)["tasks"][0]["taskArn"]
    ctl(url, "wipe-ecs", {"keepClusters": True})
    assert describe(ecs, [arn])["failures"] == [{"arn": arn, "reason": "MISSING"}]
    ctl(url, "wipe-ecs", {})
    with pytest.raises(ClientError) as e:
        describe(ecs, [arn])
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []
    assert ctl(url, "tasks") == []
    assert ssm.get_parameter(Name="/org-ecs-taskrun/runs/r1")["Parameter"]["Value"] == "{}"
    # full reset drops SSM too
    ctl(url, "reset", {})
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/org-ecs-taskrun/runs/r1")
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"
    assert [c["api"] for c in ctl(url, "calls")] == ["ssm:GetParameter"]


def test_calls_log(ecs, url):
    run(ecs, count=2, clientToken="abc")
    calls = ctl(url, "calls")
    assert [c["api"] for c in calls][-2:] == ["RegisterTaskDefinition", "RunTask"]
    body = ctl(url, "calls?api=RunTask")[0]
    assert body["count"] == 2 and body["clientToken"] == "abc" and body["cluster"] == "apps"
    assert ctl(url, "calls?api=ecs:RunTask") == [body]


def test_ssm_like_the_rust_sdk(url):
    ssm = client(url, "ssm")
    name = "/org-ecs-taskrun/runs/abc"
    ssm.put_parameter(Name=name, Value="secret-1", Type="SecureString", Tier="Intelligent-Tiering", Overwrite=True)
    ssm.put_parameter(Name=name, Value="secret-2", Type="SecureString", Tier="Intelligent-Tiering", Overwrite=True)
    p = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert p["Value"] == "secret-2" and p["Type"] == "SecureString" and p["Version"] == 2
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] != "secret-2"  # encrypted form without decryption
    for i in range(5):
        ssm.put_parameter(Name=f"/org-ecs-taskrun/runs/r{i}", Value=str(i), Type="String", Overwrite=True)
    ssm.put_parameter(Name="/org-ecs-taskrun/runs/deep/x", Value="nested", Type="String")
    names, token = [], None
    while True:
        kw = {"Path": "/org-ecs-taskrun/runs", "Recursive": False, "MaxResults": 2, "WithDecryption": True}
        if token:
            kw["NextToken"] = token
        page = ssm.get_parameters_by_path(**kw)
        assert len(page["Parameters"]) <= 2
        names += [x["Name"] for x in page["Parameters"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(names) == sorted([name] + [f"/org-ecs-taskrun/runs/r{i}" for i in range(5)])
    ssm.delete_parameter(Name=name)
    with pytest.raises(ClientError) as e:
        ssm.delete_parameter(Name=name)
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=name, WithDecryption=True)
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"


def test_parent_pid_watchdog(tmp_path):
    # a parent that exits at once: the emulator must follow it within a couple of seconds
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    proc = subprocess.Popen([sys.executable, LAUNCHER, "--port", "0", "--parent-pid", str(parent.pid)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().startswith("READY ")
        parent.kill()
        parent.wait()
        proc.wait(timeout=5)
    finally:
        for p in (proc, parent):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_sigterm_exits_cleanly(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, LAUNCHER, "--port", "0", "--port-file", str(port_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"READY http://127.0.0.1:{port_file.read_text().strip()}"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_family_runs_latest_active_revision(ecs, url):
    ecs.register_task_definition(family=FAMILY, containerDefinitions=[{"name": "app", "image": "example/app:2", "memory": 128}])
    assert run(ecs)["tasks"][0]["taskDefinitionArn"].endswith(f"{FAMILY}:2")
    ecs.deregister_task_definition(taskDefinition=f"{FAMILY}:2")
    t = run(ecs)["tasks"][0]
    assert t["taskDefinitionArn"].endswith(f"{FAMILY}:1") and len(t["containers"]) == 2
    with pytest.raises(ClientError) as e:
        run(ecs, taskDefinition=f"{FAMILY}:2")
    assert e.value.response["Error"]["Code"] == "ClientException"
