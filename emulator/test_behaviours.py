"""Tests of the behaviours of real AWS that tests switch on per cluster, log group or service
(behaviours.py), and of those that are always on (client-token conflicts, tags deleted by
StopTask, what services of other controllers or behind a Classic Load Balancer show)."""

from __future__ import annotations

import time
import urllib.error

import pytest
from botocore.exceptions import ClientError

from testkit import FAMILY, by_name, client, ctl, describe, run

LOG_GROUP = "/ecs/logged"


def statuses(ecs, arn, n, cluster="apps"):
    return [describe(ecs, [arn], cluster)["tasks"][0]["lastStatus"] for _ in range(n)]


# ---------------------------------------------------------------------- control API
def test_behaviours_control_api(url):
    snap = ctl(url, "behaviours", {"cluster": "apps", "deprovisioning": {"describes": 2}, "invisibleSeconds": 1})
    assert snap["clusters"]["apps"] == {"deprovisioning": {"describes": 2}, "invisibleSeconds": 1.0}
    ctl(url, "behaviours", {"deleted": {"seconds": 5}})
    ctl(url, "behaviours", {"logGroup": LOG_GROUP, "logPages": {"pageLimit": 1}})
    ctl(url, "behaviours", {"service": "arn:aws:ecs:us-east-1:123456789012:service/apps/api", "shortArn": True})
    snap = ctl(url, "behaviours")
    assert snap["global"] == {"deleted": {"seconds": 5.0}}
    assert snap["logGroups"] == {LOG_GROUP: {"logPages": {"pageLimit": 1}}}
    assert snap["services"] == {"api": {"shortArn": True}} and snap["hits"] == {}
    ctl(url, "behaviours", {"cluster": "apps", "invisibleSeconds": None})  # null removes one setting
    assert ctl(url, "behaviours")["clusters"]["apps"] == {"deprovisioning": {"describes": 2}}
    ctl(url, "behaviours", {"cluster": "apps", "clear": True})
    assert "apps" not in ctl(url, "behaviours")["clusters"]
    for bad in ({"cluster": "apps", "nope": 1}, {"logGroup": "/g", "deleted": {"describes": 1}},
                {"cluster": "apps", "logGroup": "/g"}, {"cluster": "apps", "invisibleSeconds": -1},
                {"cluster": "apps", "provisioningQuota": {"limit": "x"}}, {"service": "s", "shortArn": "yes"}):
        with pytest.raises(urllib.error.HTTPError) as e:
            ctl(url, "behaviours", bad)
        assert e.value.code == 400, bad
    ctl(url, "behaviours", {"clear": True})
    assert ctl(url, "behaviours") == {"global": {}, "clusters": {}, "logGroups": {}, "services": {}, "hits": {}}


# ---------------------------------------------------------------------- 1. STOPPING, DEPROVISIONING, DELETED
def test_stop_states_of_an_awsvpc_task(ecs, url):
    ctl(url, "behaviours", {"cluster": "apps", "stopping": {"describes": 1}, "deprovisioning": {"describes": 2},
                            "deleted": {"describes": 1}})
    ctl(url, "outcomes", {"family": FAMILY, "outcome": {"kind": "exit", "afterDescribes": 0,
                                                        "containers": {"app": {"exitCode": 3}}}})
    arn = run(ecs)["tasks"][0]["taskArn"]
    seen = [describe(ecs, [arn])["tasks"][0] for _ in range(6)]
    assert [t["lastStatus"] for t in seen] == ["STOPPING", "DEPROVISIONING", "DEPROVISIONING", "STOPPED",
                                               "DELETED", "DELETED"]
    for t in seen:  # stopped containers: stop code and exit codes from the first state on
        assert t["desiredStatus"] == "STOPPED" and t["stopCode"] == "EssentialContainerExited"
        assert by_name(t)["app"]["exitCode"] == 3 and "executionStoppedAt" in t
    assert "stoppedAt" not in seen[1] and "stoppedAt" in seen[3] and seen[4]["stoppedAt"] == seen[3]["stoppedAt"]
    assert seen[1]["attachments"][0]["status"] == "DETACHING" and seen[3]["attachments"][0]["status"] == "DELETED"
    assert ecs.list_tasks(cluster="apps", desiredStatus="STOPPED")["taskArns"] == [arn]
    assert ctl(url, "behaviours")["hits"]["cluster:apps"] == {"stopping": 1, "deprovisioning": 1, "deleted": 1}

    # a task without awsvpc has no ENI to deprovision; another cluster is not affected
    ecs.register_task_definition(family="bridge", containerDefinitions=[{"name": "app", "image": "x", "memory": 64}])
    ctl(url, "outcomes", {"family": "bridge", "default": {"kind": "exit", "afterDescribes": 0}})
    arn = ecs.run_task(cluster="apps", taskDefinition="bridge", launchType="EC2")["tasks"][0]["taskArn"]
    assert statuses(ecs, arn, 4) == ["STOPPING", "STOPPED", "DELETED", "DELETED"]
    ecs.create_cluster(clusterName="other")
    arn = ecs.run_task(cluster="other", taskDefinition="bridge", launchType="EC2")["tasks"][0]["taskArn"]
    assert statuses(ecs, arn, 2, "other") == ["STOPPED", "STOPPED"]


def test_stop_states_by_time_and_after_stop_task(ecs, url):
    ctl(url, "behaviours", {"cluster": "apps", "deprovisioning": {"seconds": 1.0}})
    ctl(url, "outcomes", {"family": FAMILY, "default": {"kind": "never_stops"}})
    arn = run(ecs)["tasks"][0]["taskArn"]
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "RUNNING"
    stopped_at = time.monotonic()
    stopped = ecs.stop_task(cluster="apps", task=arn, reason="bye")["task"]
    assert (stopped["lastStatus"], stopped["desiredStatus"], stopped["stopCode"]) == (
        "DEPROVISIONING", "STOPPED", "UserInitiated")
    seen = statuses(ecs, arn, 3)
    if time.monotonic() - stopped_at < 1.0:  # (a very slow machine may be past it already)
        assert seen == ["DEPROVISIONING"] * 3
    time.sleep(max(0.0, 1.05 - (time.monotonic() - stopped_at)))
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "STOPPED"
    # StopTask on it again answers it, still stopped
    assert ecs.stop_task(cluster="apps", task=arn)["task"]["stoppedReason"] == "bye"


# ---------------------------------------------------------------------- 2. eventual consistency
def test_new_tasks_invisible_for_a_while(ecs, url):
    ctl(url, "behaviours", {"cluster": "apps", "invisibleSeconds": 1.0})
    ctl(url, "outcomes", {"family": FAMILY, "default": {"kind": "never_stops"}})
    started = time.monotonic()
    arn = run(ecs, startedBy="me")["tasks"][0]["taskArn"]
    resp = describe(ecs, [arn])
    assert resp["tasks"] == [] and resp["failures"] == [{"arn": arn, "reason": "MISSING"}]
    assert ecs.list_tasks(cluster="apps", startedBy="me")["taskArns"] == []
    with pytest.raises(ClientError) as e:
        ecs.stop_task(cluster="apps", task=arn)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert e.value.response["Error"]["Message"] == "The referenced task was not found."
    assert time.monotonic() - started < 1.0, "too slow to see the task invisible"
    time.sleep(max(0.0, 1.05 - (time.monotonic() - started)))
    assert describe(ecs, [arn])["tasks"][0]["lastStatus"] == "RUNNING"
    assert ecs.list_tasks(cluster="apps", startedBy="me")["taskArns"] == [arn]
    assert ctl(url, "behaviours")["hits"]["cluster:apps"]["invisibleSeconds"] >= 3


# ---------------------------------------------------------------------- 3. StopTask deletes tags
def test_stop_task_deletes_tags(ecs, url):
    ctl(url, "outcomes", {"family": FAMILY, "default": {"kind": "never_stops"}})
    tags = [{"key": "org-ecs-taskrun:attempt", "value": "1"}]
    stopped_by_us = run(ecs, tags=tags)["tasks"][0]["taskArn"]
    ctl(url, "outcomes", {"family": FAMILY, "default": {"kind": "exit", "afterDescribes": 0}})
    ended = run(ecs, tags=tags)["tasks"][0]["taskArn"]
    ecs.stop_task(cluster="apps", task=stopped_by_us)
    described = {t["taskArn"]: t for t in ecs.describe_tasks(cluster="apps", tasks=[stopped_by_us, ended],
                                                              include=["TAGS"])["tasks"]}
    assert described[stopped_by_us]["tags"] == [] and described[ended]["tags"] == tags
    assert ecs.list_tags_for_resource(resourceArn=stopped_by_us)["tags"] == []


# ---------------------------------------------------------------------- 5. client token
def test_client_token_reused_with_other_parameters(ecs, url):
    first = run(ecs, clientToken="tok-1", count=2)
    arns = [t["taskArn"] for t in first["tasks"]]
    assert [t["taskArn"] for t in run(ecs, clientToken="tok-1", count=2)["tasks"]] == arns
    with pytest.raises(ClientError) as e:
        run(ecs, clientToken="tok-1", count=3)
    err = e.value.response
    assert err["Error"]["Code"] == "ConflictException" and err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["resourceIds"] == arns
    assert "clientToken is already in use" in err["Error"]["Message"]
    with pytest.raises(ClientError):
        run(ecs, clientToken="tok-1", count=2, startedBy="someone-else")
    assert len(ctl(url, "tasks")) == 2


# ---------------------------------------------------------------------- 6. PROVISIONING quota
def test_provisioning_quota(ecs, url):
    ctl(url, "behaviours", {"cluster": "apps", "provisioningQuota": {"times": 1}})
    with pytest.raises(ClientError) as e:
        run(ecs)
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert "PROVISIONING" in e.value.response["Error"]["Message"]
    assert run(ecs)["tasks"]  # used up
    ctl(url, "wipe-ecs", {"keepClusters": True})
    ctl(url, "behaviours", {"cluster": "apps", "provisioningQuota": {"limit": 3}})
    first = [t["taskArn"] for t in run(ecs, count=2)["tasks"]]
    with pytest.raises(ClientError) as e:
        run(ecs, count=2)  # 2 PROVISIONING + 2 > 3
    assert e.value.response["Error"]["Code"] == "ClientException"
    assert len(run(ecs, count=1)["tasks"]) == 1
    describe(ecs, first)  # they leave PROVISIONING
    assert len(run(ecs, count=2)["tasks"]) == 2
    assert ctl(url, "behaviours")["hits"]["cluster:apps"]["provisioningQuota"] == 2


# ---------------------------------------------------------------------- 4. CloudWatch Logs
def register_logged(ecs):
    options = {"awslogs-group": LOG_GROUP, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "migrate"}
    ecs.register_task_definition(family="logged", containerDefinitions=[
        {"name": "app", "image": "x", "memory": 128, "logConfiguration": {"logDriver": "awslogs", "options": options}}])


def task_with_lines(ecs, url, lines):
    register_logged(ecs)
    ctl(url, "outcomes", {"family": "logged", "outcome": {"kind": "exit", "afterDescribes": 0, "logs": {"app": lines}}})
    arn = ecs.run_task(cluster="apps", taskDefinition="logged")["tasks"][0]["taskArn"]
    describe(ecs, [arn])
    return f"migrate/app/{arn.rsplit('/', 1)[1]}"


def test_get_log_events_pages_partial_and_empty(ecs, url):
    lines = [f"line {i}" for i in range(7)]
    stream = task_with_lines(ecs, url, lines)
    logs = client(url, "logs")
    ctl(url, "behaviours", {"logGroup": LOG_GROUP, "logPages": {"pageLimit": 3, "emptyPages": 1}})
    first = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=False, limit=10)
    assert first["events"] == []  # a client reading once sees nothing
    got, token = [], None
    for _ in range(10):  # follow nextBackwardToken until it comes back unchanged, as AWS documents
        kw = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=False, limit=10, **kw)
        assert len(page["events"]) <= 3
        got = [e["message"] for e in page["events"]] + got
        if page["nextBackwardToken"] == token:
            break
        token = page["nextBackwardToken"]
    assert got == lines
    # forward from the head, the same
    got, token = [], None
    for _ in range(10):
        kw = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True, **kw)
        got += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert got == lines
    assert ctl(url, "behaviours")["hits"][f"logGroup:{LOG_GROUP}"]["logPages"] >= 3
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, nextToken="garbage")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=LOG_GROUP, logStreamName="no/such/stream")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_get_log_events_time_range(ecs, url):
    stream = task_with_lines(ecs, url, ["a", "b", "c"])
    logs = client(url, "logs")
    everything = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)["events"]
    stamps = [e["timestamp"] for e in everything]
    assert [e["message"] for e in everything] == ["a", "b", "c"] and stamps == sorted(stamps)
    # startTime included, endTime excluded
    window = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startTime=stamps[1],
                                 endTime=stamps[2], startFromHead=True)["events"]
    assert [e["message"] for e in window] == ["b"]
    by_identifier = logs.get_log_events(logGroupIdentifier=f"arn:aws:logs:us-east-1:123456789012:log-group:{LOG_GROUP}",
                                        logStreamName=stream, limit=1)["events"]
    assert [e["message"] for e in by_identifier] == ["c"]


def test_late_log_lines(ecs, url):
    ctl(url, "behaviours", {"logGroup": LOG_GROUP, "lateLines": {"seconds": 1.0, "lines": 2}})
    before_stop = time.monotonic()
    stream = task_with_lines(ecs, url, ["one", "two", "three", "OUTPUT: done"])
    logs = client(url, "logs")

    def read():
        return [e["message"] for e in logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                                                          startFromHead=True)["events"]]

    early = read()
    if time.monotonic() - before_stop < 1.0:  # (a very slow machine may be past it already)
        assert early == ["one", "two"]
    # The late lines fall due a second after the task stopped, which is after before_stop: wait
    # for them (a fixed 1.05 s left 50 ms of slack, and a loaded machine missed it).
    full = ["one", "two", "three", "OUTPUT: done"]
    lines = read()
    while lines != full and time.monotonic() - before_stop < 10.0:
        time.sleep(0.05)
        lines = read()
    assert lines == full
    assert ctl(url, "behaviours")["hits"][f"logGroup:{LOG_GROUP}"] == {"lateLines": 1}


# ---------------------------------------------------------------------- 7. services
def web(ecs):
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "web:1", "memory": 128}])


def test_code_deploy_and_external_services(ecs, url):
    web(ecs)
    for controller in ("CODE_DEPLOY", "EXTERNAL"):
        name = f"svc-{controller.lower().replace('_', '-')}"
        created = ecs.create_service(cluster="apps", serviceName=name, taskDefinition="web", desiredCount=1,
                                     deploymentController={"type": controller})["service"]
        assert created["deployments"] == []  # no ECS deployments, so no rolloutState to wait for
        with pytest.raises(ClientError) as e:
            ecs.update_service(cluster="apps", service=name, forceNewDeployment=True)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
        assert controller in e.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as e:
            ecs.update_service(cluster="apps", service=name, taskDefinition="web:1")
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
        assert ecs.update_service(cluster="apps", service=name, desiredCount=2)["service"]["desiredCount"] == 2
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="apps", service="svc-code-deploy", taskDefinition="web:1")
    assert e.value.response["Error"]["Message"] == (
        "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
        "Use AWS CodeDeploy to trigger a new deployment.")


def test_classic_load_balancer_service_has_no_rollout_state(ecs, url):
    web(ecs)
    svc = ecs.create_service(cluster="apps", serviceName="clb", taskDefinition="web", desiredCount=1,
                             role="arn:aws:iam::123456789012:role/ecsServiceRole",
                             loadBalancers=[{"loadBalancerName": "classic", "containerName": "web",
                                             "containerPort": 80}])["service"]
    assert all("rolloutState" not in d and "rolloutStateReason" not in d for d in svc["deployments"])
    updated = ecs.update_service(cluster="apps", service="clb", forceNewDeployment=True)["service"]
    assert len(updated["deployments"]) == 2 and all("rolloutState" not in d for d in updated["deployments"])
    for _ in range(3):
        deployments = ecs.describe_services(cluster="apps", services=["clb"])["services"][0]["deployments"]
        assert all("rolloutState" not in d for d in deployments)
    assert len(deployments) == 1 and deployments[0]["status"] == "PRIMARY"  # it did complete


def test_short_service_arn(ecs, url):
    web(ecs)
    ctl(url, "behaviours", {"service": "legacy", "shortArn": True})
    legacy = ecs.create_service(cluster="apps", serviceName="legacy", taskDefinition="web", desiredCount=1)["service"]
    assert legacy["serviceArn"] == "arn:aws:ecs:us-east-1:123456789012:service/legacy"
    modern = ecs.create_service(cluster="apps", serviceName="modern", taskDefinition="web", desiredCount=1)["service"]
    assert modern["serviceArn"] == "arn:aws:ecs:us-east-1:123456789012:service/apps/modern"
    # the short ARN names the service in later calls (of its cluster)
    assert ecs.describe_services(cluster="apps", services=[legacy["serviceArn"]])["services"][0]["serviceName"] == "legacy"
    ecs.update_service(cluster="apps", service=legacy["serviceArn"], forceNewDeployment=True)
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=legacy["serviceArn"], tags=[{"key": "k", "value": "v"}])
    assert e.value.response["Error"]["Message"] == "Long arn format must be used for tagging operations"
    assert ctl(url, "behaviours")["hits"] == {"service:legacy": {"shortArn": 1}}


def test_deployment_paused_at_a_lifecycle_hook(ecs, url):
    web(ecs)
    hooks = [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP", "POST_PRODUCTION_TRAFFIC_SHIFT"]}]
    ecs.create_service(cluster="apps", serviceName="bg", taskDefinition="web", desiredCount=2,
                       deploymentConfiguration={"strategy": "BLUE_GREEN", "lifecycleHooks": hooks})
    new = ecs.update_service(cluster="apps", service="bg", forceNewDeployment=True)["service"]["deployments"][0]
    (brief,) = ecs.list_service_deployments(cluster="apps", service="bg")["serviceDeployments"]
    arn = brief["serviceDeploymentArn"]
    # DescribeServices names the current service deployment (ECS API Reference, Service)
    shown = ecs.describe_services(cluster="apps", services=["bg"])["services"][0]
    assert shown["currentServiceDeployment"] == arn

    def record():
        return ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]

    def rollout():
        return ecs.describe_services(cluster="apps", services=["bg"])["services"][0]["deployments"][0]

    for stage in ("POST_SCALE_UP", "POST_PRODUCTION_TRAFFIC_SHIFT"):
        for _ in range(3):  # waits, however often it is described
            dep = rollout()
            assert (dep["id"], dep["rolloutState"]) == (new["id"], "IN_PROGRESS")
        sd = record()
        assert (sd["status"], sd["lifecycleStage"]) == ("IN_PROGRESS", stage)
        (hook,) = sd["lifecycleHookDetails"]
        assert (hook["targetType"], hook["status"], hook["timeoutAction"]) == ("PAUSE", "AWAITING_ACTION", "ROLLBACK")
        ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    rollout()
    assert rollout()["rolloutState"] == "COMPLETED" and record()["status"] == "SUCCESSFUL"

    # ROLLBACK at the hook: the previous deployment serves again
    ecs.update_service(cluster="apps", service="bg", forceNewDeployment=True)
    arn = ecs.list_service_deployments(cluster="apps", service="bg", status=["IN_PROGRESS"])[
        "serviceDeployments"][0]["serviceDeploymentArn"]
    hook_id = record()["lifecycleHookDetails"][0]["hookId"]
    with pytest.raises(ClientError) as e:
        ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId="not-this-one")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook_id, action="ROLLBACK")
    primary, failed = ecs.describe_services(cluster="apps", services=["bg"])["services"][0]["deployments"]
    assert (primary["id"], failed["rolloutState"]) == (new["id"], "FAILED")
    assert record()["status"] == "ROLLBACK_SUCCESSFUL"
    # PAUSE hooks cannot be configured at TEST_TRAFFIC_SHIFT
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="apps", service="bg", deploymentConfiguration={"lifecycleHooks": [
            {"targetType": "PAUSE", "lifecycleStages": ["TEST_TRAFFIC_SHIFT"]}]})
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecs.continue_service_deployment(serviceDeploymentArn=arn + "x", hookId=hook_id)
    assert e.value.response["Error"]["Code"] == "ServiceDeploymentNotFoundException"


def test_cluster_default_strategy_without_weight(ecs, url):
    # accepted by CreateCluster (weight defaults to 0), refused when RunTask would use it
    ecs.create_cluster(clusterName="noweight", capacityProviders=["FARGATE"],
                       defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE"}])
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="noweight", taskDefinition=FAMILY)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "no capacity providers with a weight value greater than zero" in e.value.response["Error"]["Message"]
    # a strategy in the request, or a launch type, is fine
    assert ecs.run_task(cluster="noweight", taskDefinition=FAMILY, launchType="FARGATE")["tasks"]


def test_describe_stacks_answers_what_tests_set(url):
    import boto3
    cfn = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=url,
                       aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret")
    arn = "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/0a1b"
    ctl(url, "stacks", {"stackId": arn, "status": "UPDATE_IN_PROGRESS"})
    (stack,) = cfn.describe_stacks(StackName=arn)["Stacks"]
    assert (stack["StackId"], stack["StackName"], stack["StackStatus"]) == (arn, "shop", "UPDATE_IN_PROGRESS")
    assert cfn.describe_stacks(StackName="shop")["Stacks"][0]["StackStatus"] == "UPDATE_IN_PROGRESS"
    ctl(url, "stacks", {"stackId": arn, "status": None})
    with pytest.raises(Exception) as e:
        cfn.describe_stacks(StackName=arn)
    assert "does not exist" in str(e.value)
