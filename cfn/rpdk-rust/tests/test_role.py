"""The least-privilege rewrite of resource-role.yaml: the statements, each setting of
settings.executionRole, validation, the default, idempotence, account confinement and
cfn-lint on the generated templates. `allowed` below is a small model of IAM's
evaluation (Action, Resource, ArnLike/StringEquals conditions) to check what a
template lets the role do, not only how it reads."""
import fnmatch
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from jinja2 import Environment, PackageLoader

from rpdk.rust.codegen import RustLanguagePlugin, RustPluginError
from rpdk.rust.role import (
    RoleError,
    check_confined,
    normalize_execution_role,
    normalize_parameter_path,
    restrict_role,
    rewrite_role,
)

REPO = Path(__file__).resolve().parents[3]
PATH = "/org-ecs-taskrun/runs"
ECS_TASKS = ["ecs-tasks.amazonaws.com"]


def _schema_actions(schema_path):
    """Every permission the schema's handlers list (what cfn puts in the role)."""
    handlers = json.loads(schema_path.read_text(encoding="utf-8"))["handlers"]
    return sorted({a for h in handlers.values() for a in h.get("permissions", [])})


# the role of each type is made from its own schema's permissions (read, not copied:
# a permission added to a schema must reach these tests)
TASKRUN_ACTIONS = _schema_actions(REPO / "schema.json")
RESTART_ACTIONS = _schema_actions(REPO / "service-restart" / "schema.json")
ECS = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:"
SSM = "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/org-ecs-taskrun/runs"
NARROW = {
    "clusters": ["prod", "batch-*"],
    "taskDefinitionFamilies": ["shop-*"],
    "passRoles": ["ecs/*", "/migrator"],
    "logGroups": ["/ecs/shop"],
}


def cfn_role(actions=TASKRUN_ACTIONS, permission="Allow", type_name="Org-ECS-TaskRun"):
    """resource-role.yaml exactly as cloudformation-cli's Project.generate renders it."""
    env = Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        loader=PackageLoader("rpdk.core.project", "templates/"),
    )
    return env.get_template("resource-role.yml").render(
        type_name=type_name,
        actions=sorted(actions),
        permission=permission,
        role_session_timeout=43200,
    )


def statements(text):
    document = yaml.safe_load(text)
    policy = document["Resources"]["ExecutionRole"]["Properties"]["Policies"][0]
    assert policy["PolicyName"] == "ResourceTypePolicy"
    return policy["PolicyDocument"]["Statement"]


def by_sid(text):
    return {s["Sid"]: s for s in statements(text)}


def sub(value):
    return {"Fn::Sub": value}


# ---------------------------------------------------- a small IAM evaluator

ACCOUNT, OTHER = "111122223333", "444455556666"
VARS = {"${AWS::Partition}": "aws", "${AWS::AccountId}": ACCOUNT, "${AWS::Region}": "eu-west-1"}


def _resolve(node):
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        node = node["Fn::Sub"]
        for name, value in VARS.items():
            node = node.replace(name, value)
        assert "${" not in node
        return node
    return node


def _values(node):
    return [_resolve(v) for v in node] if isinstance(node, list) else [_resolve(node)]


def _glob(pattern, value):
    return fnmatch.fnmatchcase(value, pattern)


def _arn_like(pattern, value):
    # IAM matches an ARN's six parts separately; the resource part keeps its colons
    if pattern == "*":
        return True
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(_glob(a, b) for a, b in zip(p, v))


def allowed(text, action, resource, context=None):
    """Does some statement of the template allow `action` on `resource`?"""
    context = context or {}
    for statement in statements(text):
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        if not any(_glob(a.lower(), action.lower()) for a in actions):
            continue
        if not any(_arn_like(r, resource) for r in _values(statement["Resource"])):
            continue
        ok = True
        for operator, keys in (statement.get("Condition") or {}).items():
            for key, wanted in keys.items():
                have = context.get(key)
                if have is None:
                    ok = False
                elif operator == "ArnLike":
                    ok = ok and any(_arn_like(w, have) for w in _values(wanted))
                elif operator == "StringEquals":
                    ok = ok and have in _values(wanted)
                else:
                    raise AssertionError(f"operator {operator} not modelled")
        if ok:
            return True
    return False


def arn(service, resource, account=ACCOUNT, region="eu-west-1"):
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def cluster(name, account=ACCOUNT):
    return {"ecs:cluster": arn("ecs", f"cluster/{name}", account)}


# ------------------------------------------------------------- the default


def test_default_statements():
    result = restrict_role(cfn_role(), PATH, ECS_TASKS)
    in_account = {"ArnLike": {"ecs:cluster": sub(ECS + "cluster/*")}}
    assert statements(result) == [
        {
            "Sid": "NoResourceLevelPermissions",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTaskDefinition"],
            "Resource": "*",
        },
        {
            "Sid": "LaunchTasks",
            "Effect": "Allow",
            "Action": ["ecs:RunTask", "ecs:StartTask"],
            "Resource": [sub(ECS + "task-definition/*:*")],
            "Condition": in_account,
        },
        {
            "Sid": "TasksInClusters",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
            "Resource": [sub(ECS + "task/*")],
            "Condition": in_account,
        },
        {
            "Sid": "ListTasksInClusters",
            "Effect": "Allow",
            "Action": ["ecs:ListTasks"],
            "Resource": "*",
            "Condition": in_account,
        },
        {
            "Sid": "TagTasksAtLaunch",
            "Effect": "Allow",
            "Action": ["ecs:TagResource"],
            "Resource": [sub(ECS + "task/*")],
            "Condition": {"StringEquals": {"ecs:CreateAction": ["RunTask", "StartTask"]}},
        },
        {
            "Sid": "PassRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*")],
            "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        },
        {
            "Sid": "ReadTaskLogs",
            "Effect": "Allow",
            "Action": ["logs:GetLogEvents"],
            "Resource": [sub("arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:*")],
        },
        {
            "Sid": "ReadStacks",
            "Effect": "Allow",
            "Action": ["cloudformation:DescribeStacks"],
            "Resource": [sub(
                "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/*/*"
            )],
        },
        {
            "Sid": "SendEvents",
            "Effect": "Allow",
            "Action": ["events:PutEvents"],
            "Resource": [sub("arn:${AWS::Partition}:events:*:${AWS::AccountId}:event-bus/*")],
        },
        {
            "Sid": "RecordParameters",
            "Effect": "Allow",
            "Action": [
                "ssm:DeleteParameter",
                "ssm:GetParameter",
                "ssm:GetParametersByPath",
                "ssm:PutParameter",
            ],
            "Resource": [sub(SSM), sub(SSM + "/*")],
        },
    ]


def test_default_is_the_account_and_nothing_else():
    role = restrict_role(cfn_role(), PATH, ECS_TASKS)
    td = arn("ecs", "task-definition/anything:7")
    assert allowed(role, "ecs:RunTask", td, cluster("any"))
    assert not allowed(role, "ecs:RunTask", td, cluster("any", OTHER))
    assert not allowed(role, "ecs:RunTask", arn("ecs", "task-definition/x:1", OTHER), cluster("any"))
    assert not allowed(role, "ecs:RunTask", arn("ecs", "task-definition/x:1", region="us-east-1"), cluster("any"))
    assert allowed(role, "ecs:StopTask", arn("ecs", "task/any/abc"), cluster("any"))
    assert not allowed(role, "ecs:StopTask", arn("ecs", "task/any/abc", OTHER), cluster("any", OTHER))
    assert allowed(role, "ecs:ListTasks", "*", cluster("any"))
    assert not allowed(role, "ecs:ListTasks", "*", cluster("any", OTHER))
    assert not allowed(role, "ecs:ListTasks", "*")  # no cluster key: denied
    assert allowed(role, "events:PutEvents", arn("events", "event-bus/deploys"))
    assert not allowed(role, "events:PutEvents", arn("events", "event-bus/deploys", OTHER))
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/any/path/name"
    passed = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    assert allowed(role, "iam:PassRole", role_arn, passed)
    assert not allowed(role, "iam:PassRole", role_arn, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allowed(role, "iam:PassRole", f"arn:aws:iam::{OTHER}:role/x", passed)
    stream = "log-group:/any:log-stream:a/b/c"
    assert allowed(role, "logs:GetLogEvents", arn("logs", stream, region="us-east-1"))
    assert not allowed(role, "logs:GetLogEvents", arn("logs", stream, OTHER))
    stack = "stack/shop/0f4a1b20-3c4d-11ef-9f5e-0a1b2c3d4e5f"
    assert allowed(role, "cloudformation:DescribeStacks", arn("cloudformation", stack))
    assert not allowed(role, "cloudformation:DescribeStacks", arn("cloudformation", stack, OTHER))
    assert not allowed(
        role, "cloudformation:DescribeStacks", arn("cloudformation", stack, region="us-east-1")
    )
    assert not allowed(role, "cloudformation:DescribeStacks", "*")
    parameter = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/org-ecs-taskrun/runs/x"
    assert allowed(role, "ssm:GetParameter", parameter)
    assert not allowed(role, "ssm:GetParameter", parameter.replace("runs/x", "other"))
    assert not allowed(role, "ssm:GetParameter", parameter.replace(ACCOUNT, OTHER))


def test_tag_resource_only_at_launch():
    role = restrict_role(cfn_role(), PATH, ECS_TASKS)
    task = arn("ecs", "task/prod/abc")
    assert allowed(role, "ecs:TagResource", task, {"ecs:CreateAction": "RunTask"})
    assert allowed(role, "ecs:TagResource", task, {"ecs:CreateAction": "StartTask"})
    # tagging an existing task, or another resource, is not allowed
    assert not allowed(role, "ecs:TagResource", task)
    assert not allowed(role, "ecs:TagResource", task, {"ecs:CreateAction": "CreateService"})
    assert not allowed(role, "ecs:TagResource", arn("ecs", "cluster/prod"), {"ecs:CreateAction": "RunTask"})


def test_create_action_values_are_the_api_names_whatever_the_schema_case():
    sids = by_sid(restrict_role(cfn_role(["ecs:runtask", "ECS:TagResource"]), PATH))
    assert sids["TagTasksAtLaunch"]["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}
    assert sids["LaunchTasks"]["Action"] == ["ecs:runtask"]


def test_tag_resource_without_launch_actions_stays_in_the_account():
    sids = by_sid(restrict_role(cfn_role(["ecs:TagResource", "ssm:GetParameter"]), PATH))
    assert sids["TagResources"]["Resource"] == [sub(ECS + "*")]
    assert "Condition" not in sids["TagResources"]


def test_explicit_star_is_the_default():
    stars = {name: ["*"] for name in ("clusters", "taskDefinitionFamilies", "passRoles", "logGroups")}
    assert restrict_role(cfn_role(), PATH, ECS_TASKS, stars) == restrict_role(cfn_role(), PATH, ECS_TASKS)
    assert restrict_role(cfn_role(), PATH, ECS_TASKS, {}) == restrict_role(cfn_role(), PATH, ECS_TASKS)
    restart = {"clusters": "*", "services": ["*"]}
    assert restrict_role(cfn_role(RESTART_ACTIONS), PATH, (), restart) == restrict_role(
        cfn_role(RESTART_ACTIONS), PATH
    )


def test_pass_role_defaults_to_ecs_tasks_next_to_run_task():
    assert restrict_role(cfn_role(), PATH) == restrict_role(cfn_role(), PATH, ECS_TASKS)
    rewrite = rewrite_role(cfn_role(), PATH)
    assert rewrite.pass_role_services == ("ecs-tasks.amazonaws.com",)


def test_pass_role_without_launch_or_service_has_no_service_condition():
    rewrite = rewrite_role(cfn_role(["iam:PassRole", "ssm:GetParameter"]), PATH)
    assert rewrite.pass_role_services == ()
    assert "Condition" not in by_sid(rewrite.text)["PassRoles"]
    assert by_sid(rewrite.text)["PassRoles"]["Resource"] == [
        sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*")
    ]


def test_several_pass_role_services():
    role = restrict_role(cfn_role(), PATH, ["ecs.amazonaws.com", "ecs-tasks.amazonaws.com"])
    assert by_sid(role)["PassRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}
    }


# ------------------------------------------------------- each setting's effect


def test_clusters():
    role = restrict_role(cfn_role(), PATH, ECS_TASKS, {"clusters": ["prod", "batch-*"]})
    sids = by_sid(role)
    expected = {"ArnLike": {"ecs:cluster": [sub(ECS + "cluster/batch-*"), sub(ECS + "cluster/prod")]}}
    for sid in ("LaunchTasks", "TasksInClusters", "ListTasksInClusters"):
        assert sids[sid]["Condition"] == expected
    td = arn("ecs", "task-definition/app:1")
    assert allowed(role, "ecs:RunTask", td, cluster("prod"))
    assert allowed(role, "ecs:StartTask", td, cluster("batch-nightly"))
    assert not allowed(role, "ecs:RunTask", td, cluster("dev"))
    assert not allowed(role, "ecs:RunTask", td, cluster("production"))
    assert allowed(role, "ecs:DescribeTasks", arn("ecs", "task/prod/1"), cluster("prod"))
    assert not allowed(role, "ecs:StopTask", arn("ecs", "task/dev/1"), cluster("dev"))
    # a task ARN in the old format (no cluster in it) is still judged by its cluster
    assert allowed(role, "ecs:StopTask", arn("ecs", "task/1234"), cluster("prod"))
    assert not allowed(role, "ecs:ListTasks", "*", cluster("dev"))


def test_cluster_arn_entries():
    entry = "arn:${AWS::Partition}:ecs:*:${AWS::AccountId}:cluster/shared"
    scope = normalize_execution_role({"clusters": [entry, "prod"]})
    assert scope.clusters == (ECS + "cluster/prod", entry)  # sorted


def test_task_definition_families():
    role = restrict_role(
        cfn_role(), PATH, ECS_TASKS, {"taskDefinitionFamilies": ["shop-*", "report:3"]}
    )
    assert by_sid(role)["LaunchTasks"]["Resource"] == [
        sub(ECS + "task-definition/report:3"),
        sub(ECS + "task-definition/shop-*:*"),
    ]
    assert allowed(role, "ecs:RunTask", arn("ecs", "task-definition/shop-migrate:12"), cluster("c"))
    assert allowed(role, "ecs:RunTask", arn("ecs", "task-definition/report:3"), cluster("c"))
    assert not allowed(role, "ecs:RunTask", arn("ecs", "task-definition/report:4"), cluster("c"))
    assert not allowed(role, "ecs:RunTask", arn("ecs", "task-definition/admin:1"), cluster("c"))
    # the other statements do not change
    default = by_sid(restrict_role(cfn_role(), PATH, ECS_TASKS))
    for sid, statement in by_sid(role).items():
        if sid != "LaunchTasks":
            assert statement == default[sid]


def test_family_arn_entry_gets_any_revision():
    entry = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/app"
    assert normalize_execution_role({"taskDefinitionFamilies": entry}).families == (entry + ":*",)


def test_pass_roles():
    role = restrict_role(cfn_role(), PATH, ECS_TASKS, {"passRoles": ["ecs/*", "/migrator"]})
    iam = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
    assert by_sid(role)["PassRoles"]["Resource"] == [sub(iam + "ecs/*"), sub(iam + "migrator")]
    passed = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    assert allowed(role, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/ecs/task-x", passed)
    assert allowed(role, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/migrator", passed)
    assert not allowed(role, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Admin", passed)
    assert not allowed(role, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/migrator-admin", passed)


def test_pass_role_arn_entry():
    entry = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/tasks/*"
    assert normalize_execution_role({"passRoles": [entry]}).pass_roles == (entry,)


def test_log_groups():
    role = restrict_role(cfn_role(), PATH, ECS_TASKS, {"logGroups": ["/ecs/shop", "/batch/*"]})
    logs = "arn:${AWS::Partition}:logs:*:${AWS::AccountId}:log-group:"
    assert by_sid(role)["ReadTaskLogs"]["Resource"] == [
        sub(logs + "/batch/*"),
        sub(logs + "/ecs/shop"),
        sub(logs + "/ecs/shop:*"),
    ]
    stream = "log-group:/ecs/shop:log-stream:migrate/app/abc"
    assert allowed(role, "logs:GetLogEvents", arn("logs", stream))
    assert allowed(role, "logs:GetLogEvents", arn("logs", stream, region="us-west-2"))
    assert allowed(role, "logs:GetLogEvents", arn("logs", "log-group:/ecs/shop"))
    assert allowed(role, "logs:GetLogEvents", arn("logs", "log-group:/batch/x:log-stream:y"))
    assert not allowed(role, "logs:GetLogEvents", arn("logs", "log-group:/ecs/shopping:log-stream:y"))
    assert not allowed(role, "logs:GetLogEvents", arn("logs", "log-group:/aws/lambda/x:log-stream:y"))


def test_log_group_arn_entry_keeps_its_region():
    entry = "arn:${AWS::Partition}:logs:eu-west-1:${AWS::AccountId}:log-group:/ecs/x"
    assert normalize_execution_role({"logGroups": entry}).log_groups == (entry, entry + ":*")


def test_services():
    role = restrict_role(
        cfn_role(RESTART_ACTIONS, type_name="Org-ECS-ServiceRestart"),
        "/org-ecs-servicerestart/runs",
        (),
        {"services": ["prod/web", "api"], "clusters": ["prod", "legacy"]},
    )
    sids = by_sid(role)
    assert list(sids) == ["ServicesInClusters", "ServiceDeployments", "RecordParameters"]
    # the deployments of those services only (a short service ARN has none of its own)
    assert sids["ServiceDeployments"]["Resource"] == [
        sub(ECS + "service-deployment/*/api/*"),
        sub(ECS + "service-deployment/prod/web/*"),
    ]
    assert allowed(
        role, "ecs:DescribeServiceDeployments", arn("ecs", "service-deployment/prod/web/d1")
    )
    assert not allowed(
        role, "ecs:DescribeServiceDeployments", arn("ecs", "service-deployment/prod/admin/d1")
    )
    assert sids["ServicesInClusters"]["Resource"] == [
        sub(ECS + "service/*/api"),
        sub(ECS + "service/api"),
        sub(ECS + "service/prod/web"),
    ]
    assert allowed(role, "ecs:UpdateService", arn("ecs", "service/prod/web"), cluster("prod"))
    assert allowed(role, "ecs:DescribeServices", arn("ecs", "service/prod/api"), cluster("prod"))
    # a service ARN of the old format has no cluster: the ecs:cluster condition still holds
    assert allowed(role, "ecs:UpdateService", arn("ecs", "service/api"), cluster("legacy"))
    assert not allowed(role, "ecs:UpdateService", arn("ecs", "service/prod/admin"), cluster("prod"))
    assert not allowed(role, "ecs:UpdateService", arn("ecs", "service/dev/api"), cluster("dev"))
    assert not allowed(role, "ecs:UpdateService", arn("ecs", "service/prod/web", OTHER), cluster("prod", OTHER))


def test_service_restart_default():
    role = restrict_role(cfn_role(RESTART_ACTIONS), "/org-ecs-servicerestart/runs")
    service = by_sid(role)["ServicesInClusters"]
    assert service["Resource"] == [sub(ECS + "service/*")]
    assert service["Condition"] == {"ArnLike": {"ecs:cluster": sub(ECS + "cluster/*")}}
    assert allowed(role, "ecs:UpdateService", arn("ecs", "service/any/x"), cluster("any"))
    assert not allowed(role, "ecs:UpdateService", arn("ecs", "service/any/x", OTHER), cluster("any", OTHER))


def test_settings_report():
    rewrite = rewrite_role(cfn_role(), PATH, ECS_TASKS, {"passRoles": ["x"], "services": ["y"]})
    assert rewrite.defaulted == ("clusters", "taskDefinitionFamilies", "logGroups")
    assert rewrite.unused == ("services",)
    assert rewrite.unscoped == ()
    restart = rewrite_role(cfn_role(RESTART_ACTIONS), PATH)
    assert restart.defaulted == ("clusters", "services")


# ---------------------------------------------------------------- ssm (as before)


def test_every_ssm_action_is_scoped_but_describe_parameters():
    role = cfn_role(["ssm:*", "ssm:GetParameters", "ssm:DescribeParameters", "ecs:RunTask"])
    sids = by_sid(restrict_role(role, PATH, ECS_TASKS))
    assert sids["NoResourceLevelPermissions"]["Action"] == ["ssm:DescribeParameters"]
    assert sids["RecordParameters"]["Action"] == ["ssm:*", "ssm:GetParameters"]
    assert sids["RecordParameters"]["Resource"] == [sub(SSM), sub(SSM + "/*")]


def test_without_path_ssm_is_every_parameter_of_the_account():
    sids = by_sid(restrict_role(cfn_role(), None, ECS_TASKS))
    assert sids["RecordParameters"]["Resource"] == [
        sub("arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/*")
    ]


def test_path_is_normalized():
    assert normalize_parameter_path("org-ecs-taskrun/runs/") == PATH
    assert restrict_role(cfn_role(), "org-ecs-taskrun/runs/", ECS_TASKS) == restrict_role(
        cfn_role(), PATH, ECS_TASKS
    )


@pytest.mark.parametrize("bad", ["/runs/${AWS::Region}", "/a b", '/a"b', "/a//b", 42])
def test_bad_path(bad):
    with pytest.raises(RoleError, match="recordParameterPath"):
        restrict_role(cfn_role(), bad, ECS_TASKS)


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "setting, message",
    [
        ("prod", r"settings\.executionRole must be an object"),
        (["prod"], r"settings\.executionRole must be an object"),
        ({"cluster": ["prod"]}, r"settings\.executionRole\.cluster is not a setting"),
        ({"clusters": 7}, r"settings\.executionRole\.clusters must be a string or a list"),
        ({"clusters": [7]}, r"settings\.executionRole\.clusters must be a string or a list"),
        ({"clusters": []}, r"settings\.executionRole\.clusters is empty"),
        ({"clusters": ["prod", " "]}, r"settings\.executionRole\.clusters\[1\] is empty"),
        ({"clusters": ["my cluster"]}, r"clusters\[0\]: 'my cluster' is not a cluster name"),
        ({"clusters": ["a/b"]}, r"clusters\[0\]: 'a/b' is not a cluster name"),
        ({"clusters": ['a"b']}, r"clusters\[0\]"),
        ({"clusters": ["${AWS::StackName}"]}, r"clusters\[0\]"),
        ({"clusters": ["x" * 256]}, r"clusters\[0\]"),
        (
            {"clusters": ["arn:aws:ecs:eu-west-1:123456789012:cluster/prod"]},
            r"clusters\[0\]: .* write the partition as \$\{AWS::Partition\}",
        ),
        (
            {"clusters": ["arn:${AWS::Partition}:ecs:eu-west-1:123456789012:cluster/prod"]},
            r"clusters\[0\]: .* names account '123456789012'.*\$\{AWS::AccountId\}",
        ),
        (
            {"clusters": ["arn:${AWS::Partition}:ecs:eu-west-1:*:cluster/prod"]},
            r"clusters\[0\]: .* names account '\*'",
        ),
        (
            {"clusters": ["arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/x/y"]},
            r"clusters\[0\]: .* resource part",
        ),
        (
            {"clusters": ["arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:cluster/x"]},
            r"clusters\[0\]: .* is not a ecs ARN",
        ),
        (
            {"clusters": ["arn:${AWS::Partition}:ecs:${AWS::StackName}:${AWS::AccountId}:cluster/x"]},
            r"clusters\[0\]: .* the region must be",
        ),
        ({"taskDefinitionFamilies": ["app:latest"]}, r"taskDefinitionFamilies\[0\]"),
        ({"taskDefinitionFamilies": ["app.v2"]}, r"taskDefinitionFamilies\[0\]"),
        ({"passRoles": ["a b"]}, r"passRoles\[0\]: 'a b' is not a role name"),
        ({"passRoles": ["a//b"]}, r"passRoles\[0\]"),
        ({"passRoles": ["/"]}, r"passRoles\[0\]"),
        (
            {"passRoles": ["arn:${AWS::Partition}:iam:us-east-1:${AWS::AccountId}:role/x"]},
            r"passRoles\[0\]: .* iam ARNs have no region",
        ),
        (
            {"passRoles": ["arn:${AWS::Partition}:iam::${AWS::AccountId}:user/x"]},
            r"passRoles\[0\]: .* resource part",
        ),
        ({"logGroups": ["/ecs/a:b"]}, r"logGroups\[0\]: '/ecs/a:b' is not a log group name"),
        ({"logGroups": ["/ecs/a b"]}, r"logGroups\[0\]"),
        ({"services": ["a/b/c"]}, r"services\[0\]: 'a/b/c' is not <cluster>/<service>"),
        ({"services": [""]}, r"services\[0\] is empty"),
    ],
)
def test_bad_execution_role_setting(setting, message):
    with pytest.raises(RoleError, match=message):
        restrict_role(cfn_role(), PATH, ECS_TASKS, setting)


def test_a_bad_setting_fails_even_when_no_action_uses_it():
    with pytest.raises(RoleError, match=r"services\[0\]"):
        restrict_role(cfn_role(), PATH, ECS_TASKS, {"services": ["a b"]})


def test_too_many_patterns_for_iam():
    families = [f"family-number-{i:04d}" for i in range(400)]
    with pytest.raises(RoleError, match="more than the 10240 IAM allows"):
        restrict_role(cfn_role(), PATH, ECS_TASKS, {"taskDefinitionFamilies": families})


# ------------------------------------------------- determinism and idempotence


@pytest.mark.parametrize("settings", [None, NARROW])
def test_deterministic_and_idempotent(settings):
    once = restrict_role(cfn_role(), PATH, ECS_TASKS, settings)
    assert restrict_role(cfn_role(), PATH, ECS_TASKS, settings) == once
    assert restrict_role(once, PATH, ECS_TASKS, settings) == once
    # the action order of the schema does not matter (cfn sorts, and so does this)
    assert restrict_role(cfn_role(list(reversed(TASKRUN_ACTIONS))), PATH, ECS_TASKS, settings) == once
    # nor the order or repetition of the entries of a setting
    if settings:
        shuffled = {k: list(reversed(v)) + v for k, v in settings.items()}
        assert restrict_role(cfn_role(), PATH, ECS_TASKS, shuffled) == once


def test_a_second_pass_with_other_settings_narrows_again():
    wide = restrict_role(cfn_role(), PATH, ECS_TASKS)
    assert restrict_role(wide, PATH, ECS_TASKS, NARROW) == restrict_role(cfn_role(), PATH, ECS_TASKS, NARROW)


def test_rest_of_the_file_is_untouched():
    before, after = cfn_role(), restrict_role(cfn_role(), PATH, ECS_TASKS, NARROW)
    head = before[: before.index("              - Effect: Allow\n                Action:")]
    tail = before[before.index("Outputs:") :]
    assert after.startswith(head) and after.endswith(tail)
    doc_before, doc_after = yaml.safe_load(before), yaml.safe_load(after)
    for document in (doc_before, doc_after):
        del document["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    assert doc_before == doc_after
    # the statements keep cfn's layout
    assert '              - Sid: NoResourceLevelPermissions\n                Effect: Allow\n' in after
    assert '                - "ecs:DescribeTaskDefinition"\n                Resource: "*"\n' in after


def test_only_unknown_actions_leave_the_file_unchanged():
    role = cfn_role(["s3:GetObject", "sqs:SendMessage"])
    rewrite = rewrite_role(role, PATH, ECS_TASKS)
    assert rewrite.text == role
    assert rewrite.unscoped == ("s3:GetObject", "sqs:SendMessage")


def test_unknown_actions_next_to_known_ones_stay_on_star():
    rewrite = rewrite_role(cfn_role(["ecs:RunTask", "s3:GetObject"]), PATH)
    assert by_sid(rewrite.text)["NoResourceLevelPermissions"]["Action"] == ["s3:GetObject"]
    assert rewrite.unscoped == ("s3:GetObject",)


def test_deny_all_is_left_alone():
    role = cfn_role(["*"], permission="Deny")
    assert restrict_role(role, PATH, ECS_TASKS, NARROW) == role


def test_unknown_shape_is_left_alone():
    text = "Resources: {}\n"
    assert restrict_role(text, PATH, ECS_TASKS, NARROW) == text


# ----------------------------------- account confinement and valid CloudFormation


def _independent_confinement_check(text):
    """Written apart from role.check_confined: every Resource is an Fn::Sub ARN of
    ${AWS::Partition} and ${AWS::AccountId}, or "*" for DescribeTaskDefinition (no
    resource-level permission) or under an ArnLike condition naming ARNs of the account."""
    for statement in statements(text):
        resource = statement["Resource"]
        if resource == "*":
            if statement["Action"] == ["ecs:DescribeTaskDefinition"]:
                continue
            arn_like = statement["Condition"]["ArnLike"]
            values = [v for vs in arn_like.values() for v in (vs if isinstance(vs, list) else [vs])]
            resources = values
        else:
            resources = resource
        assert resources
        for item in resources:
            assert set(item) == {"Fn::Sub"}, item
            parts = item["Fn::Sub"].split(":")
            assert parts[0] == "arn" and parts[1] == "${AWS"  # ${AWS::Partition}
            assert "${AWS::Partition}" in item["Fn::Sub"]
            joined = item["Fn::Sub"].replace("${AWS::Partition}", "P").replace(
                "${AWS::AccountId}", "ACCOUNT"
            ).replace("${AWS::Region}", "REGION")
            assert joined.split(":")[4] == "ACCOUNT", item


def _variants():
    yield "taskrun-default", restrict_role(cfn_role(), PATH, ECS_TASKS)
    yield "taskrun-narrow", restrict_role(cfn_role(), PATH, ECS_TASKS, NARROW)
    yield "restart-default", restrict_role(
        cfn_role(RESTART_ACTIONS, type_name="Org-ECS-ServiceRestart"), "/org-ecs-servicerestart/runs"
    )
    yield "restart-narrow", restrict_role(
        cfn_role(RESTART_ACTIONS, type_name="Org-ECS-ServiceRestart"),
        "/org-ecs-servicerestart/runs",
        (),
        {"clusters": ["prod"], "services": ["prod/web", "api"]},
    )
    for path in ("resource-role.yaml", "service-restart/resource-role.yaml"):
        yield path, (REPO / path).read_text(encoding="utf-8")


@pytest.mark.parametrize("name, text", list(_variants()), ids=[n for n, _ in _variants()])
def test_every_resource_is_confined_to_the_account(name, text):
    _independent_confinement_check(text)
    check_confined(statements(text))


def test_check_confined_refuses_a_wide_statement():
    with pytest.raises(RoleError, match="unconfined"):
        check_confined([{"Sid": "X", "Action": ["ecs:RunTask"], "Resource": "*"}])
    with pytest.raises(RoleError, match="not confined"):
        check_confined([{"Sid": "X", "Action": ["ecs:RunTask"], "Resource": [sub("arn:aws:ecs:*:*:*")]}])


def _cfn_lint():
    here = Path(sys.executable).parent / "cfn-lint"
    return str(here) if here.exists() else shutil.which("cfn-lint")


@pytest.mark.skipif(_cfn_lint() is None, reason="cfn-lint is not installed")
def test_generated_templates_pass_cfn_lint(tmp_path):
    files = []
    for name, text in _variants():
        path = tmp_path / (name.replace("/", "-") + ".yaml")
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    result = subprocess.run([_cfn_lint(), *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_roles_are_what_the_settings_give():
    """resource-role.yaml of both types is the rewrite of cfn's role with the settings
    of their .rpdk-config (the drift check does this with the real cfn generate)."""
    for folder, actions, type_name in (
        (REPO, TASKRUN_ACTIONS, "Org-ECS-TaskRun"),
        (REPO / "service-restart", RESTART_ACTIONS, "Org-ECS-ServiceRestart"),
    ):
        settings = json.loads((folder / ".rpdk-config").read_text())["settings"]
        expected = restrict_role(
            cfn_role(actions, type_name=type_name),
            settings.get("recordParameterPath"),
            settings.get("passRoleToService"),
            settings.get("executionRole"),
        )
        assert (folder / "resource-role.yaml").read_text(encoding="utf-8") == expected


# ------------------------------------------------------ through generate()


def project(tmp_path, text, **settings):
    (tmp_path / "resource-role.yaml").write_text(text)

    def overwrite(path, contents):
        path.write_text(contents, encoding="utf-8")

    return SimpleNamespace(
        root=tmp_path,
        settings={"protocolVersion": "2.0.0", "architecture": "x86_64", **settings},
        runtime="provided.al2023",
        artifact_type="RESOURCE",
        # generate also writes the model (src/model/generated.rs) from it
        schema={"typeName": "Org::Test::Thing", "properties": {"Id": {"type": "string"}}},
        overwrite=overwrite,
        write_settings=lambda: None,
    )


def test_generate_rewrites_the_file(tmp_path):
    proj = project(
        tmp_path,
        cfn_role(),
        recordParameterPath=PATH,
        passRoleToService="ecs-tasks.amazonaws.com",
        executionRole=NARROW,
    )
    RustLanguagePlugin().generate(proj)
    assert (tmp_path / "resource-role.yaml").read_text() == restrict_role(
        cfn_role(), PATH, ECS_TASKS, NARROW
    )


def test_generate_warns_about_defaults(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    proj = project(tmp_path, cfn_role(), executionRole={"passRoles": ["ecs/*"]})
    RustLanguagePlugin().generate(proj)
    messages = [r.getMessage() for r in caplog.records]
    assert any("recordParameterPath is not set" in m for m in messages)
    assert any(
        "settings.executionRole.clusters/taskDefinitionFamilies/logGroups not set" in m
        for m in messages
    )
    # iam:PassRole went to ecs-tasks by default: no warning about it
    assert not any("passRoleToService" in m for m in messages)


def test_generate_is_quiet_when_everything_is_set(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    proj = project(
        tmp_path, cfn_role(), recordParameterPath=PATH, passRoleToService=ECS_TASKS, executionRole=NARROW
    )
    RustLanguagePlugin().generate(proj)
    assert [r.getMessage() for r in caplog.records] == []


def test_generate_warns_about_unused_settings_and_unknown_actions(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    role = cfn_role(RESTART_ACTIONS + ["s3:GetObject"])
    proj = project(
        tmp_path, role, recordParameterPath=PATH, executionRole={"passRoles": ["x"], "clusters": ["c"], "services": ["c/s"]}
    )
    RustLanguagePlugin().generate(proj)
    messages = [r.getMessage() for r in caplog.records]
    assert any("settings.executionRole.passRoles narrow none" in m for m in messages)
    assert any('s3:GetObject left on Resource "*"' in m for m in messages)


def test_generate_warns_when_pass_role_has_no_service(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    proj = project(tmp_path, cfn_role(["iam:PassRole", "ssm:GetParameter"]), recordParameterPath=PATH)
    RustLanguagePlugin().generate(proj)
    assert any("passRoleToService is not set" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "settings, name",
    [
        ({"recordParameterPath": "/a b"}, "recordParameterPath"),
        ({"executionRole": {"clusters": ["a b"]}}, r"settings\.executionRole\.clusters\[0\]"),
        ({"executionRole": {"logGroup": ["x"]}}, r"settings\.executionRole\.logGroup"),
        ({"executionRole": {"passRoles": ["arn:${AWS::Partition}:iam::999999999999:role/x"]}}, "passRoles"),
    ],
)
def test_generate_refuses_a_bad_setting(tmp_path, settings, name):
    proj = project(tmp_path, cfn_role(), **settings)
    with pytest.raises(RustPluginError, match=name):
        RustLanguagePlugin().generate(proj)
    # the file cfn wrote is left as it was
    assert (tmp_path / "resource-role.yaml").read_text() == cfn_role()


def test_cfn_generate_calls_the_plugin_after_writing_the_role(tmp_path, monkeypatch):
    """The real cloudformation-cli Project: its generate renders resource-role.yaml,
    then calls the `rust` plugin, which narrows it."""
    from rpdk.core.project import Project

    schema = {
        "typeName": "Org::Test::Thing",
        "description": "test",
        "properties": {"Id": {"type": "string"}},
        "primaryIdentifier": ["/properties/Id"],
        "readOnlyProperties": ["/properties/Id"],
        "additionalProperties": False,
        "handlers": {
            "create": {"permissions": ["ssm:PutParameter", "iam:PassRole", "ecs:RunTask"]},
            "read": {"permissions": ["ssm:GetParameter"]},
            "delete": {"permissions": ["ssm:DeleteParameter"]},
            "list": {"permissions": ["ssm:GetParametersByPath"]},
        },
    }
    (tmp_path / "org-test-thing.json").write_text(json.dumps(schema))
    settings = {
        "artifact_type": "RESOURCE",
        "typeName": "Org::Test::Thing",
        "language": "rust",
        "runtime": "provided.al2023",
        "entrypoint": "bootstrap",
        "testEntrypoint": "bootstrap",
        "settings": {
            "protocolVersion": "2.0.0",
            "architecture": "x86_64",
            "recordParameterPath": "/org-test-thing",
            "passRoleToService": "ecs-tasks.amazonaws.com",
            "executionRole": {"clusters": ["prod"], "passRoles": ["things/*"]},
        },
    }
    (tmp_path / ".rpdk-config").write_text(json.dumps(settings))
    monkeypatch.chdir(tmp_path)
    proj = Project(root=tmp_path)
    proj.load()
    proj.generate(local_only=True)
    sids = by_sid((tmp_path / "resource-role.yaml").read_text())
    assert list(sids) == ["LaunchTasks", "PassRoles", "RecordParameters"]
    assert sids["LaunchTasks"]["Condition"] == {"ArnLike": {"ecs:cluster": sub(ECS + "cluster/prod")}}
    assert sids["PassRoles"]["Resource"] == [
        sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/things/*")
    ]
    assert sids["PassRoles"]["Condition"]["StringEquals"] == {
        "iam:PassedToService": "ecs-tasks.amazonaws.com"
    }
    arn_ = "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/org-test-thing"
    assert sids["RecordParameters"]["Resource"] == [sub(arn_), sub(arn_ + "/*")]
