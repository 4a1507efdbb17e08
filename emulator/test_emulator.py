"""Tests for emulator/taskrun_emulator.py: starts the launcher as a subprocess on a free port and
drives it with boto3 (dummy credentials) plus its /_taskrun/ control API.

Run: .venv/bin/python -m pytest emulator/test_emulator.py -q
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from testkit import CREDS, FAMILY, HERE, LAUNCHER, NET, REGION, by_name, client, ctl, describe, run


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


def test_faults_scoped_to_a_body(ecs, url):
    """Tests running side by side scope a fault to their own cluster with bodyContains."""
    ecs.create_cluster(clusterName="mine")
    ecs.create_cluster(clusterName="theirs")
    ctl(url, "throttle", {"api": "ListTasks", "times": 1, "bodyContains": "mine"})
    assert ecs.list_tasks(cluster="theirs")["taskArns"] == []  # not for them
    with pytest.raises(ClientError):
        ecs.list_tasks(cluster="mine")
    assert ecs.list_tasks(cluster="mine")["taskArns"] == []  # used up


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
    assert ecs.list_tasks(cluster="apps", startedBy="me")["taskArns"] == arns
    # ECS refuses startedBy with another filter (ListTasks reference; aws/aws-sdk-go-v2#1893)
    with pytest.raises(ClientError) as e:
        ecs.list_tasks(cluster="apps", startedBy="me", family=FAMILY)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


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


# ---------------------------------------------------------------------- faults after acting
def test_fault_after_acting_runs_the_call_then_fails(ecs, url):
    ctl(url, "throttle", {"api": "RunTask", "times": 1, "after": True, "status": 503,
                          "code": "ServiceUnavailableException", "message": "try later"})
    with pytest.raises(ClientError) as e:
        run(ecs, count=2, startedBy="ambiguous")
    err = e.value.response
    assert err["Error"]["Code"] == "ServiceUnavailableException" and err["Error"]["Message"] == "try later"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 503
    # ... yet the tasks were started
    started = ecs.list_tasks(cluster="apps", startedBy="ambiguous")["taskArns"]
    assert len(started) == 2 and len(ctl(url, "tasks")) == 2
    (call,) = [c for c in ctl(url, "calls") if c["api"] == "RunTask"]
    assert call["throttled"] and call["acted"] and not call["killed"] and call["status"] == 503

    # StopTask: stops, then fails
    ctl(url, "throttle", {"api": "ecs:StopTask", "after": True})
    with pytest.raises(ClientError) as e:
        ecs.stop_task(cluster="apps", task=started[0], reason="bye")
    assert e.value.response["Error"]["Code"] == "ThrottlingException"
    assert describe(ecs, [started[0]])["tasks"][0]["stoppedReason"] == "bye"

    # SSM PutParameter: writes, then a 500
    ssm = client(url, "ssm")
    ctl(url, "throttle", {"api": "ssm:PutParameter", "after": True, "status": 500, "code": "InternalServerError"})
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name="/amb/p", Value="written", Type="String")
    assert e.value.response["Error"]["Code"] == "InternalServerError"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert ssm.get_parameter(Name="/amb/p")["Parameter"]["Value"] == "written"

    # the default still fails before acting, and says so in the call log
    ctl(url, "throttle", {"api": "ssm:PutParameter"})
    with pytest.raises(ClientError):
        ssm.put_parameter(Name="/amb/q", Value="never", Type="String")
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/amb/q")
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"
    puts = [c for c in ctl(url, "calls") if c["api"] == "ssm:PutParameter"]
    assert [(c["throttled"], c["acted"]) for c in puts] == [(True, True), (True, False)]


def test_fault_5xx_in_every_protocol(url):
    ecs, sts, logs = client(url, "ecs"), client(url, "sts"), client(url, "logs")
    ctl(url, "throttle", {"api": "ListClusters", "status": 500, "code": "ServerException", "message": "boom"})
    with pytest.raises(ClientError) as e:
        ecs.list_clusters()
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ServerException", 500)
    ctl(url, "throttle", {"api": "logs:DescribeLogGroups", "status": 503, "code": "ServiceUnavailableException"})
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups()
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ServiceUnavailableException", 503)
    ctl(url, "throttle", {"api": "sts:GetCallerIdentity", "status": 500, "code": "InternalFailure", "after": True})
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InternalFailure", 500)
    (call,) = [c for c in ctl(url, "calls") if c["api"] == "sts:GetCallerIdentity"]
    assert call["acted"] and call["throttled"]


def test_fault_as_load_balancer_html(ecs, url):
    ctl(url, "throttle", {"api": "RunTask", "html": True, "status": 502, "after": True})
    with pytest.raises(ClientError) as e:
        run(ecs)
    meta = e.value.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 502 and e.value.response["Error"]["Code"] == "502"
    assert meta["HTTPHeaders"]["content-type"] == "text/html" and "x-amzn-errortype" not in meta["HTTPHeaders"]
    assert len(ctl(url, "tasks")) == 1  # acted
    # raw: the page a load balancer sends; 503 by default
    ctl(url, "throttle", {"api": "sts:GetCallerIdentity", "html": True})
    req = urllib.request.Request(url + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20200101/us-east-1/sts/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 503 and e.value.reason == "Service Temporarily Unavailable"
    body = e.value.read().decode()
    assert body.startswith("<html>") and "<h1>503 Service Temporarily Unavailable</h1>" in body
    assert e.value.headers["Content-Type"] == "text/html"
    (call,) = [c for c in ctl(url, "calls") if c["api"] == "sts:GetCallerIdentity"]
    assert call["throttled"] and not call["acted"] and call["status"] == 503


def test_throttle_skip_and_validation(ecs, url):
    ctl(url, "throttle", {"api": "ListClusters", "times": 1, "skip": 2})
    ecs.list_clusters()
    ecs.list_clusters()
    with pytest.raises(ClientError):
        ecs.list_clusters()
    ecs.list_clusters()
    for bad in ({"api": "RunTask", "status": 200}, {"api": "RunTask", "skip": -1}, {"times": 1}):
        with pytest.raises(urllib.error.HTTPError) as e:
            ctl(url, "throttle", bad)
        assert e.value.code == 400


# ---------------------------------------------------------------------- kill rule
def test_kill_rule_signals_after_acting(url):
    ssm = client(url, "ssm")
    victim = subprocess.Popen(["sleep", "60"])
    try:
        ctl(url, "kill", {"api": "ssm:PutParameter", "pid": victim.pid, "skip": 1})
        ssm.put_parameter(Name="/kill/1", Value="a", Type="String")  # let through
        assert victim.poll() is None
        ssm.put_parameter(Name="/kill/2", Value="b", Type="String")  # acts, kills, answers
        assert victim.wait(timeout=5) == -9
        assert ssm.get_parameter(Name="/kill/2")["Parameter"]["Value"] == "b"
        puts = [c for c in ctl(url, "calls") if c["api"] == "ssm:PutParameter"]
        assert [(c["acted"], c["killed"]) for c in puts] == [(True, False), (True, True)]
        ssm.put_parameter(Name="/kill/3", Value="c", Type="String")  # times 1: used up
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()

    # signal by name; times 0 clears; unknown processes are refused
    other = subprocess.Popen(["sleep", "60"])
    try:
        ctl(url, "kill", {"api": "RunTask", "pid": other.pid, "signal": "TERM", "times": 3})
        assert ctl(url, "kill", {"api": "ecs:RunTask", "times": 0})["kills"] == {}
        with pytest.raises(urllib.error.HTTPError) as e:
            ctl(url, "kill", {"api": "RunTask", "pid": 1})
        assert e.value.code == 400
    finally:
        other.kill()
        other.wait()
    with pytest.raises(urllib.error.HTTPError) as e:
        ctl(url, "kill", {"api": "RunTask", "pid": other.pid})
    assert e.value.code == 404


FAKE_HANDLER = """#!{python}
# A stand-in for the handler binary: the Runtime API loop, one SSM PutParameter per invocation.
import json, os, urllib.request
import boto3
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
ssm = boto3.client("ssm")
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id, event = r.headers["Lambda-Runtime-Aws-Request-Id"], json.loads(r.read())
    ssm.put_parameter(Name=event["name"], Value="v", Type="String", Overwrite=True)
    body = json.dumps({{"pid": os.getpid()}}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=body, method="POST"))
"""


def test_local_lambda_handler_killed_mid_invocation(url, tmp_path):
    handler = tmp_path / "bootstrap"
    handler.write_text(FAKE_HANDLER.format(python=sys.executable))
    handler.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": url, "AWS_REGION": REGION, "AWS_MAX_ATTEMPTS": "1",
                "AWS_ACCESS_KEY_ID": CREDS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDS["aws_secret_access_key"]})
    lam = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "scripts", "local_lambda.py"),
                            "--binary", str(handler), "--port", "0", "--parent-pid", str(os.getpid())],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = lam.stdout.readline()
        assert line.startswith("READY "), line
        lam_url = line.split()[1]

        def handler_pid():
            with urllib.request.urlopen(lam_url + "/_local/handler-pid", timeout=10) as r:
                return json.loads(r.read())["pid"]

        def invoke(name):
            req = urllib.request.Request(lam_url + "/2015-03-31/functions/TaskRun/invocations",
                                         data=json.dumps({"name": name}).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.headers.get("X-Amz-Function-Error"), json.loads(r.read())

        first = handler_pid()
        assert isinstance(first, int)
        ctl(url, "kill", {"api": "ssm:PutParameter", "pid": first})
        error, body = invoke("/lambda/1")
        assert error == "Unhandled" and body["errorType"] == "Runtime.ExitError"
        assert "Runtime exited with error: signal: killed" in body["errorMessage"]
        assert client(url, "ssm").get_parameter(Name="/lambda/1")["Parameter"]["Value"] == "v"  # it acted
        assert handler_pid() is None
        error, body = invoke("/lambda/2")  # a fresh handler process serves the next one
        assert error is None and body["pid"] != first and body["pid"] == handler_pid()
    finally:
        lam.terminate()
        try:
            lam.wait(timeout=10)
        except subprocess.TimeoutExpired:
            lam.kill()
            lam.wait()


# ---------------------------------------------------------------------- outcomes
def test_any_stop_code_with_exit_code(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {
        "kind": "exit", "stopCode": "SpotInterruption", "stoppedReason": "Your Spot Task was interrupted.",
        "containers": {"app": {"exitCode": 0}}}})
    arn = run(ecs)["tasks"][0]["taskArn"]
    describe(ecs, [arn])
    t = describe(ecs, [arn])["tasks"][0]
    assert (t["lastStatus"], t["stopCode"], t["stoppedReason"]) == (
        "STOPPED", "SpotInterruption", "Your Spot Task was interrupted.")
    assert by_name(t)["app"]["exitCode"] == 0


def test_after_seconds_is_wall_time_running(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "exit", "afterSeconds": 1.5}})
    t0 = time.time()
    arn = run(ecs)["tasks"][0]["taskArn"]
    statuses = []
    while time.time() - t0 < 1.3:
        statuses.append(describe(ecs, [arn])["tasks"][0]["lastStatus"])
        time.sleep(0.2)
    assert set(statuses) == {"RUNNING"}
    time.sleep(max(0.0, 1.6 - (time.time() - t0)))
    t = describe(ecs, [arn])["tasks"][0]
    assert t["lastStatus"] == "STOPPED"
    assert (t["stoppedAt"] - t["createdAt"]).total_seconds() >= 1.5


# ---------------------------------------------------------------------- CloudWatch Logs
def register_logged(ecs, family="logged"):
    def awslogs(prefix, region=REGION):
        options = {"awslogs-group": "/ecs/logged", "awslogs-region": region}
        if prefix:
            options["awslogs-stream-prefix"] = prefix
        return {"logDriver": "awslogs", "options": options}

    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "app", "image": "x", "memory": 128, "logConfiguration": awslogs("migrate")},
        {"name": "sidecar", "image": "x", "memory": 64, "essential": False, "logConfiguration": awslogs(None)},
        {"name": "plain", "image": "x", "memory": 64, "essential": False},
        {"name": "west", "image": "x", "memory": 64, "essential": False,
         "logConfiguration": awslogs("w", region="us-west-2")},
    ])


def test_task_logs_in_cloudwatch(ecs, url):
    register_logged(ecs)
    logs = client(url, "logs")
    lines = [f"line {i}" for i in range(1, 6)] + ["x" * 100_000]
    ctl(url, "outcomes", {"family": "logged", "outcome": {
        "kind": "exit", "afterDescribes": 1, "containers": {"app": {"exitCode": 3}}, "logs": {"app": lines}}})
    arn = ecs.run_task(cluster="apps", taskDefinition="logged")["tasks"][0]["taskArn"]
    task_id = arn.rsplit("/", 1)[1]
    stream = f"migrate/app/{task_id}"
    assert logs.describe_log_groups()["logGroups"] == []  # nothing before it runs
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "RUNNING"
    streams = logs.describe_log_streams(logGroupName="/ecs/logged")["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]  # sidecar: no prefix, plain: no awslogs
    assert logs.get_log_events(logGroupName="/ecs/logged", logStreamName=stream)["events"] == []
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "STOPPED"

    events = logs.get_log_events(logGroupName="/ecs/logged", logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == lines
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps) and stamps[0] > 1_600_000_000_000
    tail = logs.get_log_events(logGroupName="/ecs/logged", logStreamName=stream, startFromHead=False, limit=2)
    assert [e["message"] for e in tail["events"]] == lines[-2:]
    # the container in another region logs there, with the default two lines
    logs_west = boto3.client("logs", region_name="us-west-2", endpoint_url=url, **CREDS)
    west_events = logs_west.get_log_events(logGroupName="/ecs/logged", logStreamName=f"w/west/{task_id}",
                                           startFromHead=True)["events"]
    assert [e["message"] for e in west_events] == ["west starting", "west exited with code 0"]


def test_task_logs_default_lines_and_huge_lines(ecs, url):
    register_logged(ecs)
    logs = client(url, "logs")
    ctl(url, "outcomes", {"family": "logged", "outcome": {
        "kind": "exit", "afterDescribes": 0, "containers": {"app": {"exitCode": 2}}}})
    arn = ecs.run_task(cluster="apps", taskDefinition="logged")["tasks"][0]["taskArn"]
    describe(ecs, [arn])
    stream = f"migrate/app/{arn.rsplit('/', 1)[1]}"
    events = logs.get_log_events(logGroupName="/ecs/logged", logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["app starting", "app exited with code 2"]
    # a line over CloudWatch's 256 KB event limit becomes several events, as with the awslogs driver
    big = "y" * 300_000
    ctl(url, "outcomes", {"family": "logged", "outcome": {"kind": "exit", "afterDescribes": 0, "logs": {"app": [big, "end"]}}})
    arn = ecs.run_task(cluster="apps", taskDefinition="logged")["tasks"][0]["taskArn"]
    describe(ecs, [arn])
    stream = f"migrate/app/{arn.rsplit('/', 1)[1]}"
    messages = [e["message"] for e in logs.get_log_events(logGroupName="/ecs/logged", logStreamName=stream,
                                                          startFromHead=True)["events"]]
    assert len(messages) == 3 and "".join(messages[:2]) == big and messages[2] == "end"
    assert all(len(m.encode()) <= 262144 - 26 for m in messages)
    # a task stopped by the user logs what it had (143); one that never ran has no stream
    ctl(url, "outcomes", {"family": "logged", "outcome": {"kind": "never_stops"}})
    arn = ecs.run_task(cluster="apps", taskDefinition="logged")["tasks"][0]["taskArn"]
    describe(ecs, [arn])
    ecs.stop_task(cluster="apps", task=arn)
    stream = f"migrate/app/{arn.rsplit('/', 1)[1]}"
    messages = [e["message"] for e in logs.get_log_events(logGroupName="/ecs/logged", logStreamName=stream)["events"]]
    assert messages == ["app starting", "app exited with code 143"]
    ctl(url, "outcomes", {"family": "logged", "outcome": {"kind": "never_starts", "afterDescribes": 0}})
    arn = ecs.run_task(cluster="apps", taskDefinition="logged")["tasks"][0]["taskArn"]
    describe(ecs, [arn])
    names = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/ecs/logged")["logStreams"]]
    assert not any(arn.rsplit("/", 1)[1] in n for n in names)


# ---------------------------------------------------------------------- ECS services
DEPLOYMENT_ID = r"^ecs-svc/\d{19}$"


@pytest.fixture
def svc(ecs):
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "web:1", "memory": 128}])
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "web:2", "memory": 128}])
    created = ecs.create_service(cluster="apps", serviceName="api", taskDefinition="web:1", desiredCount=2,
                                 deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 50,
                                                          "deploymentCircuitBreaker": {"enable": True,
                                                                                       "rollback": True}})
    return created["service"]


def describe_service(ecs, name="api"):
    return ecs.describe_services(cluster="apps", services=[name])["services"][0]


def test_service_create_and_completed_deployment(ecs, url, svc):
    (dep,) = svc["deployments"]
    assert re.match(DEPLOYMENT_ID, dep["id"]) and dep["status"] == "PRIMARY" and dep["rolloutState"] == "COMPLETED"
    assert svc["runningCount"] == svc["desiredCount"] == dep["runningCount"] == 2 and svc["pendingCount"] == 0
    assert svc["events"][0]["message"] == "(service api) has reached a steady state."
    assert svc["deploymentConfiguration"]["minimumHealthyPercent"] == 50

    updated = ecs.update_service(cluster="apps", service="api", forceNewDeployment=True)["service"]
    new, old = updated["deployments"]
    assert re.match(DEPLOYMENT_ID, new["id"]) and new["id"] != dep["id"]
    assert (new["status"], new["rolloutState"], new["runningCount"], new["failedTasks"], new["desiredCount"]) == (
        "PRIMARY", "IN_PROGRESS", 0, 0, 2)
    assert new["rolloutStateReason"] == f"ECS deployment {new['id']} in progress."
    assert new["pendingCount"] == 2 and new["taskDefinition"].endswith("task-definition/web:1")
    assert new["createdAt"] and new["updatedAt"]
    assert (old["id"], old["status"]) == (dep["id"], "ACTIVE")
    assert updated["events"][0]["message"].startswith("(service api) has started 2 tasks: (task ")
    assert all({"id", "createdAt", "message"} <= set(e) for e in updated["events"])
    assert updated["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}

    first = describe_service(ecs)  # default outcome: completed after 1 DescribeServices
    assert first["deployments"][0]["rolloutState"] == "IN_PROGRESS" and len(first["deployments"]) == 2
    done = describe_service(ecs)
    (only,) = done["deployments"]
    assert (only["id"], only["status"], only["rolloutState"], only["runningCount"]) == (
        new["id"], "PRIMARY", "COMPLETED", 2)
    assert done["runningCount"] == 2 and done["events"][0]["message"] == "(service api) has reached a steady state."
    assert done["events"][0]["createdAt"] >= done["events"][-1]["createdAt"]  # newest first

    # a new task definition is a new deployment too; desiredCount alone is not
    ecs.update_service(cluster="apps", service="api", desiredCount=3)
    assert [d["id"] for d in describe_service(ecs)["deployments"]] == [new["id"]]
    assert describe_service(ecs)["runningCount"] == 3
    by_td = ecs.update_service(cluster="apps", service="api", taskDefinition="web")["service"]
    assert by_td["taskDefinition"].endswith("web:2") and by_td["deployments"][0]["taskDefinition"].endswith("web:2")
    assert len(by_td["deployments"]) == 2
    calls = ctl(url, "calls")
    assert [c["api"] for c in calls if "Service" in c["api"]][:4] == [
        "CreateService", "UpdateService", "DescribeServices", "DescribeServices"]
    assert ctl(url, "calls?api=UpdateService")[0] == {"cluster": "apps", "service": "api", "forceNewDeployment": True}


def test_service_deployment_failed_rolls_back(ecs, url, svc):
    ctl(url, "deployment-outcomes", {"service": "api", "outcome": {
        "kind": "failed", "afterDescribes": 2, "failedTasks": 3}})
    new = ecs.update_service(cluster="apps", service="api", taskDefinition="web:2")["service"]["deployments"][0]
    for _ in range(2):
        assert describe_service(ecs)["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    s = describe_service(ecs)
    primary, failed = s["deployments"]
    assert (failed["id"], failed["status"], failed["rolloutState"], failed["failedTasks"]) == (
        new["id"], "ACTIVE", "FAILED", 3)
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert primary["id"] == svc["deployments"][0]["id"] and primary["status"] == "PRIMARY"
    assert s["taskDefinition"].endswith("web:1") and s["runningCount"] == 2
    assert s["events"][0]["message"] == f"(service api) rolling back to deployment {primary['id']}."
    # the next deployment (default: completed) drops the failed one
    ecs.update_service(cluster="apps", service="api", forceNewDeployment=True)
    describe_service(ecs)
    assert len(describe_service(ecs)["deployments"]) == 1


def test_service_deployment_failed_without_rollback_and_after_seconds(ecs, url, svc):
    ctl(url, "deployment-outcomes", {"service": "api", "outcome": {
        "kind": "failed", "afterSeconds": 0.3, "rollback": False, "reason": "tasks failed health checks"}})
    ecs.update_service(cluster="apps", service="api", forceNewDeployment=True)
    assert describe_service(ecs)["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert describe_service(ecs)["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    time.sleep(0.35)
    dep = describe_service(ecs)["deployments"][0]
    assert (dep["status"], dep["rolloutState"], dep["rolloutStateReason"], dep["failedTasks"]) == (
        "PRIMARY", "FAILED", "tasks failed health checks", 2)


def test_service_deployment_stuck(ecs, url, svc):
    ctl(url, "deployment-outcomes", {"default": {"kind": "stuck"}})
    ecs.update_service(cluster="apps", service="api", forceNewDeployment=True)
    seen = [describe_service(ecs)["deployments"][0] for _ in range(4)]
    assert {d["rolloutState"] for d in seen} == {"IN_PROGRESS"}
    assert [d["failedTasks"] for d in seen] == [1, 2, 3, 4]
    assert "unable to consistently start tasks" in describe_service(ecs)["events"][0]["message"]
    assert ctl(url, "deployment-outcomes")["globalDefault"] == {"kind": "stuck"}
    ctl(url, "deployment-outcomes", {"default": None})
    assert ctl(url, "deployment-outcomes")["globalDefault"] == {"kind": "completed", "afterDescribes": 1}


def test_service_errors(ecs, url, svc):
    resp = ecs.describe_services(cluster="apps", services=["api", "ghost"])
    assert [s["serviceName"] for s in resp["services"]] == ["api"]
    assert resp["failures"] == [{"arn": "arn:aws:ecs:us-east-1:123456789012:service/ghost", "reason": "MISSING"}]
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="apps", service="ghost", forceNewDeployment=True)
    assert e.value.response["Error"]["Code"] == "ServiceNotFoundException"
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="apps", service="api", taskDefinition="nope:9")
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert len(describe_service(ecs)["deployments"]) == 1  # nothing changed
    ecs.delete_service(cluster="apps", service="api", force=True)
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="apps", service="api", forceNewDeployment=True)
    assert e.value.response["Error"]["Code"] == "ServiceNotActiveException"
    with pytest.raises(urllib.error.HTTPError) as e:
        ctl(url, "deployment-outcomes", {"service": "api", "outcome": {"kind": "exploded"}})
    assert e.value.code == 400


# ---------------------------------------------------------------------- request log
def test_request_log_names_the_api(emulator_server, ecs, url):
    ecs.list_clusters()
    client(url, "sts").get_caller_identity()
    ctl(url, "health")
    deadline = time.time() + 5
    while time.time() < deadline:
        text = open(emulator_server["log"]).read()
        if "GET /_taskrun/health 200" in text:
            break
        time.sleep(0.05)
    assert re.search(r"^POST / ecs:ListClusters 200 \d+ms$", text, re.M), text[-2000:]
    assert re.search(r"^POST / sts:GetCallerIdentity 200 \d+ms$", text, re.M)
    assert re.search(r"^GET /_taskrun/health 200 \d+ms$", text, re.M)


# ---------------------------------------------------------------------- ListTasks
def test_list_tasks_status_and_started_by(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "exit", "afterDescribes": 0}})
    done = run(ecs, startedBy="a")["tasks"][0]["taskArn"]
    describe(ecs, [done])
    ctl(url, "outcomes", {"family": FAMILY, "default": {"kind": "never_stops"}})
    running_a = run(ecs, startedBy="a", tags=[{"key": "k", "value": "v"}])["tasks"][0]["taskArn"]
    running_b = run(ecs, startedBy="b")["tasks"][0]["taskArn"]
    assert ecs.list_tasks(cluster="apps")["taskArns"] == [running_a, running_b]
    assert ecs.list_tasks(cluster="apps", desiredStatus="RUNNING", startedBy="a")["taskArns"] == [running_a]
    assert ecs.list_tasks(cluster="apps", desiredStatus="STOPPED")["taskArns"] == [done]
    assert ecs.list_tasks(cluster="apps", desiredStatus="STOPPED", startedBy="b")["taskArns"] == []
    tagged = ecs.describe_tasks(cluster="apps", tasks=[running_a, running_b], include=["TAGS"])["tasks"]
    assert [t["tags"] for t in tagged] == [[{"key": "k", "value": "v"}], []]
