"""The least-privilege rewrite of resource-role.yaml."""
import json
import logging
from types import SimpleNamespace

import pytest
import yaml
from jinja2 import Environment, PackageLoader

from rpdk.rust.codegen import RustLanguagePlugin, RustPluginError
from rpdk.rust.role import RoleError, normalize_parameter_path, restrict_role

PATH = "/org-ecs-taskrun/runs"
ECS_TASKS = ["ecs-tasks.amazonaws.com"]
ACTIONS = [
    "ecs:DescribeTaskDefinition",
    "ecs:DescribeTasks",
    "ecs:RunTask",
    "ecs:StartTask",
    "ecs:StopTask",
    "ecs:TagResource",
    "iam:PassRole",
    "logs:GetLogEvents",
    "ssm:DeleteParameter",
    "ssm:GetParameter",
    "ssm:GetParametersByPath",
    "ssm:PutParameter",
]
ARN = "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/org-ecs-taskrun/runs"


def cfn_role(actions=ACTIONS, permission="Allow"):
    """resource-role.yaml exactly as cloudformation-cli's Project.generate renders it."""
    env = Environment(
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        loader=PackageLoader("rpdk.core.project", "templates/"),
    )
    return env.get_template("resource-role.yml").render(
        type_name="Org-ECS-TaskRun",
        actions=sorted(actions),
        permission=permission,
        role_session_timeout=43200,
    )


def statements(text):
    document = yaml.safe_load(text)
    policy = document["Resources"]["ExecutionRole"]["Properties"]["Policies"][0]
    assert policy["PolicyName"] == "ResourceTypePolicy"
    return policy["PolicyDocument"]["Statement"]


def test_statements_split():
    result = restrict_role(cfn_role(), PATH, ECS_TASKS)
    assert statements(result) == [
        {
            "Effect": "Allow",
            "Action": [
                "ecs:DescribeTaskDefinition",
                "ecs:DescribeTasks",
                "ecs:RunTask",
                "ecs:StartTask",
                "ecs:StopTask",
                "ecs:TagResource",
                "logs:GetLogEvents",
            ],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": "*",
            "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        },
        {
            "Effect": "Allow",
            "Action": [
                "ssm:DeleteParameter",
                "ssm:GetParameter",
                "ssm:GetParametersByPath",
                "ssm:PutParameter",
            ],
            "Resource": [{"Fn::Sub": ARN}, {"Fn::Sub": ARN + "/*"}],
        },
    ]


def test_rest_of_the_file_is_untouched():
    before, after = cfn_role(), restrict_role(cfn_role(), PATH, ECS_TASKS)
    head = before[: before.index("              - Effect: Allow\n                Action:")]
    tail = before[before.index("Outputs:") :]
    assert after.startswith(head) and after.endswith(tail)
    doc_before, doc_after = yaml.safe_load(before), yaml.safe_load(after)
    for document in (doc_before, doc_after):
        del document["Resources"]["ExecutionRole"]["Properties"]["Policies"]
    assert doc_before == doc_after
    # the first statement keeps cfn's formatting
    assert '                - "ecs:DescribeTaskDefinition"\n' in after
    assert '                Resource: "*"\n              - Effect: Allow\n' in after


def test_deterministic_and_idempotent():
    once = restrict_role(cfn_role(), PATH, ECS_TASKS)
    assert restrict_role(cfn_role(), PATH, ECS_TASKS) == once
    assert restrict_role(once, PATH, ECS_TASKS) == once
    # the action order of the schema does not matter (cfn sorts, and so does this)
    assert restrict_role(cfn_role(list(reversed(ACTIONS))), PATH, ECS_TASKS) == once


def test_every_ssm_action_is_scoped_but_describe_parameters():
    role = cfn_role(["ssm:*", "ssm:GetParameters", "ssm:DescribeParameters", "ecs:RunTask"])
    first, ssm = statements(restrict_role(role, PATH, ECS_TASKS))
    assert first["Action"] == ["ecs:RunTask", "ssm:DescribeParameters"]
    assert first["Resource"] == "*"
    assert ssm["Action"] == ["ssm:*", "ssm:GetParameters"]
    assert ssm["Resource"] == [{"Fn::Sub": ARN}, {"Fn::Sub": ARN + "/*"}]


def test_path_is_normalized():
    assert normalize_parameter_path("org-ecs-taskrun/runs/") == PATH
    assert restrict_role(cfn_role(), "org-ecs-taskrun/runs/", ECS_TASKS) == restrict_role(
        cfn_role(), PATH, ECS_TASKS
    )


@pytest.mark.parametrize("bad", ["/runs/${AWS::Region}", "/a b", '/a"b', "/a//b", 42])
def test_bad_path(bad):
    with pytest.raises(RoleError):
        restrict_role(cfn_role(), bad, ECS_TASKS)


def test_several_pass_role_services():
    role = restrict_role(cfn_role(), PATH, ["ecs.amazonaws.com", "ecs-tasks.amazonaws.com"])
    pass_role = statements(role)[1]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com", "ecs.amazonaws.com"]}
    }


def test_without_path_ssm_stays_as_cfn_wrote_it():
    result = restrict_role(cfn_role(), None, ECS_TASKS)
    first, pass_role = statements(result)
    assert first["Resource"] == "*" and "ssm:GetParameter" in first["Action"]
    assert pass_role["Action"] == ["iam:PassRole"]


def test_without_any_setting_the_file_is_unchanged():
    assert restrict_role(cfn_role()) == cfn_role()


def test_without_pass_role_or_ssm_actions():
    role = cfn_role(["ecs:RunTask", "logs:GetLogEvents"])
    assert restrict_role(role, PATH, ECS_TASKS) == role


def test_deny_all_is_left_alone():
    role = cfn_role(["*"], permission="Deny")
    assert restrict_role(role, PATH, ECS_TASKS) == role


def test_unknown_shape_is_left_alone():
    text = "Resources: {}\n"
    assert restrict_role(text, PATH, ECS_TASKS) == text


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
        overwrite=overwrite,
        write_settings=lambda: None,
    )


def test_generate_rewrites_the_file(tmp_path):
    proj = project(
        tmp_path, cfn_role(), recordParameterPath=PATH, passRoleToService="ecs-tasks.amazonaws.com"
    )
    RustLanguagePlugin().generate(proj)
    assert (tmp_path / "resource-role.yaml").read_text() == restrict_role(cfn_role(), PATH, ECS_TASKS)


def test_generate_without_path_warns(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    proj = project(tmp_path, cfn_role(), passRoleToService="ecs-tasks.amazonaws.com")
    RustLanguagePlugin().generate(proj)
    assert any("recordParameterPath is not set" in r.getMessage() for r in caplog.records)
    ssm = [s for s in statements((tmp_path / "resource-role.yaml").read_text()) if "ssm:GetParameter" in s["Action"]]
    assert ssm[0]["Resource"] == "*"


def test_generate_refuses_a_bad_setting(tmp_path):
    proj = project(tmp_path, cfn_role(), recordParameterPath="/a b")
    with pytest.raises(RustPluginError, match="recordParameterPath"):
        RustLanguagePlugin().generate(proj)


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
        },
    }
    (tmp_path / ".rpdk-config").write_text(json.dumps(settings))
    monkeypatch.chdir(tmp_path)
    proj = Project(root=tmp_path)
    proj.load()
    proj.generate(local_only=True)
    general, pass_role, ssm = statements((tmp_path / "resource-role.yaml").read_text())
    assert general["Action"] == ["ecs:RunTask"]
    assert pass_role["Condition"]["StringEquals"] == {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    arn = "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/org-test-thing"
    assert ssm["Resource"] == [{"Fn::Sub": arn}, {"Fn::Sub": arn + "/*"}]
