"""Tests of cfn/ecstasks/convert.py (ecsTasks custom resources -> Org::ECS::TaskRun).

    .venv/bin/python -m pytest -q -p no:cacheprovider cfn/ecstasks/tests
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))

import cfnyaml  # noqa: E402
import convert  # noqa: E402
from cfnyaml import Tagged, same  # noqa: E402

CFN_LINT = ROOT / ".venv" / "bin" / "cfn-lint"
# The project's way of checking Org::ECS::TaskRun properties against schema.json with
# cfn-lint: the rules in cfn/cfnlint_taskrun (--append-rules), or, before them, the
# cfn/cfn_lint_strict.py wrapper.
RULES = ROOT / "cfn" / "cfnlint_taskrun"
STRICT = ROOT / "cfn" / "cfn_lint_strict.py"
REGISTRY = ROOT / "cfn" / "registry-schemas"
SCHEMA = json.loads((ROOT / "schema.json").read_text())
ADOPT_IN_SCHEMA = "AdoptExisting" in SCHEMA["properties"]


def run(tmp_path, text, *args, name="template.yaml"):
    """Runs the converter in-process: (exit code, output text, report)."""
    src = tmp_path / name
    src.write_text(text, newline="")
    out = tmp_path / ("converted" + src.suffix)
    rep = tmp_path / "report.json"
    code = convert.main([str(src), "-o", str(out), "--report", str(rep), *args])
    return code, (out.read_text() if out.exists() else None), json.loads(rep.read_text())


def yaml_template(body):
    return textwrap.dedent(body).lstrip("\n")


RUNNER = """
  Runner:
    Type: AWS::Lambda::Function
    Properties:
      Handler: ecs_tasks.handler
      Runtime: python3.12
      Role: !GetAtt RunnerRole.Arn
      Code:
        S3Bucket: !Sub ${AWS::AccountId}-cfn-lambda
        S3Key: ecsTasks.zip
  RunnerRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
"""


def with_runner(resources, head=""):
    """A template with the ecsTasks function Runner, its role, and `resources`."""
    return (
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        + textwrap.dedent(head).lstrip("\n")
        + "Resources:\n"
        + RUNNER.lstrip("\n")
        + textwrap.indent(textwrap.dedent(resources).lstrip("\n"), "  ")
    )


def props_of(text, name):
    return cfnyaml.load(text)["Resources"][name]["Properties"]


# --- the seed README's example ------------------------------------------------------------

SEED_EXPECTED = {
    "Cluster": {"Ref": "ApplicationCluster"},
    "TaskDefinition": {"Ref": "ApplicationTaskDefinition"},
    "Count": 1,
    "Timeout": 1800,
    "RunOnUpdate": True,
    "UpdateCriteria": [{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}],
    "PollInterval": 30,
    "Overrides": {
        "ContainerOverrides": [
            {
                "Name": "app",
                "Command": ["bundle", "exec", "rake", "db:migrate"],
                "Environment": [{"Name": "SOME_VAR", "Value": "SOME_VALUE"}],
            }
        ]
    },
    "Instances": [
        "arn:aws:ecs:us-west-2:012345678901:container-instance/9d8698b5-5477-4b8b-bb63-dfd1e140b0d8"
    ],
    "AdoptExisting": True,
}


def check_seed_conversion(original, converted):
    migrate = converted["Resources"]["MigrateTask"]
    assert migrate["Type"] == "Org::ECS::TaskRun"
    props = migrate["Properties"]
    assert "ServiceToken" not in props
    # property by property, then order and types (True is not 1, "1" is not 1)
    for key, value in SEED_EXPECTED.items():
        assert same(props.get(key), value), "%s: %r, expected %r" % (key, props.get(key), value)
    assert list(props) == list(SEED_EXPECTED)
    # every other resource is untouched
    for name, res in original["Resources"].items():
        if name != "MigrateTask":
            assert same(converted["Resources"][name], res), name
    assert list(converted["Resources"]) == list(original["Resources"])


def test_seed_example_yaml_converts_property_by_property(tmp_path):
    src = (FIXTURES / "seed_example.yaml").read_text()
    code, out, report = run(tmp_path, src)
    assert code == 0
    check_seed_conversion(cfnyaml.load(src), cfnyaml.load(out))
    (conv,) = report["converted"]
    assert conv["resource"] == "MigrateTask" and conv["from_type"] == "Custom::ECSTask"
    assert conv["function"] == "EcsTaskRunner"
    assert conv["unmapped"] == []
    rows = {r["ecsTasks"]: r for r in conv["mapping"]}
    assert rows["ServiceToken"]["TaskRun"] is None
    assert rows["RunOnUpdate"]["note"] == "RunOnUpdate written True -> true"
    assert "containerOverrides -> ContainerOverrides" in rows["Overrides"]["note"]
    assert "SOME_VALUE" not in json.dumps(report)  # environment values are not reported
    assert report["status"] == "converted" and report["exit_code"] == 0


def test_seed_example_yaml_keeps_every_other_line_and_the_comments(tmp_path):
    src = (FIXTURES / "seed_example.yaml").read_text()
    _, out, report = run(tmp_path, src)
    before, after = src.splitlines(), out.splitlines()
    start = before.index("  MigrateTask:")
    assert after[:start + 1] == before[:start + 1]  # byte for byte up to the converted resource
    for comment in (
        "# The maximum amount of time to wait for the task to complete - defaults to 290 seconds",
        "# Controls if the task should run for update operations - defaults to True",
        "# Specifies criteria to determine if a task update should run",
        "# List of environment keys to compare.  The task is only run if the environment key value has changed.",
        "# How often to poll the status of a given task",
        "# Task definition overrides",
        "# Optional list of container instances to run the task on",
    ):
        assert comment in out, comment
    assert "      Cluster: { \"Ref\": \"ApplicationCluster\" }" in after  # unchanged values verbatim
    assert "      RunOnUpdate: true       # Controls if the task should run for update operations - defaults to True" in after
    assert "      AdoptExisting: true  # added by cfn/ecstasks/convert.py: deployed onto the live stack, this CREATE runs no task" in after
    assert "    Type: Org::ECS::TaskRun  # was Custom::ECSTask (ecsTasks)" in after
    assert report["output"]["comments_kept"] is True


def test_seed_example_json_converts_to_the_same_taskrun_and_stays_json(tmp_path):
    src = (FIXTURES / "seed_example.json").read_text()
    assert json.loads(src)["Resources"]["MigrateTask"]["Properties"]["RunOnUpdate"] == "True"
    code, out, report = run(tmp_path, src, name="template.json")
    assert code == 0
    converted = json.loads(out)  # JSON in, JSON out
    assert out.startswith("{\n  \"AWSTemplateFormatVersion\"")
    check_seed_conversion(json.loads(src), converted)
    _, yaml_out, _ = run(tmp_path, (FIXTURES / "seed_example.yaml").read_text())
    assert same(converted, json.loads(json.dumps(cfnyaml.load(yaml_out))))
    rows = {r["ecsTasks"]: r for r in report["converted"][0]["mapping"]}
    assert "'True' (string, read by ecsTasks as True) -> true" in rows["RunOnUpdate"]["note"]
    assert report["format"] == "json" and report["output"]["comments_kept"] is None


def test_seed_example_removal_list_and_steps(tmp_path):
    _, out, report = run(tmp_path, (FIXTURES / "seed_example.yaml").read_text())
    removal = report["removal"]
    assert {r["resource"] for r in removal["resources"]} == {"EcsTaskRunner", "EcsTaskRunnerRole", "EcsTaskRunnerLogGroup"}
    assert removal["removed_now"] == [] and removal["blocked"] == []
    for name in ("EcsTaskRunner", "EcsTaskRunnerRole", "EcsTaskRunnerLogGroup"):
        assert name in cfnyaml.load(out)["Resources"]  # kept by default
    assert "cleanup phase" in removal["why"] and "second deployment" in removal["mode"]
    steps = " ".join(report["steps"])
    assert "no task runs" in steps and "second deployment" in steps and "From then on" in steps


def test_seed_example_remove_function_drops_them_in_the_same_output(tmp_path):
    _, out, report = run(tmp_path, (FIXTURES / "seed_example.yaml").read_text(), "--remove-function")
    resources = cfnyaml.load(out)["Resources"]
    assert set(resources) == {"ApplicationCluster", "ApplicationTaskDefinition", "MigrateTask"}
    assert sorted(report["removal"]["removed_now"]) == ["EcsTaskRunner", "EcsTaskRunnerLogGroup", "EcsTaskRunnerRole"]
    assert "DELETE_FAILED" in report["removal"]["why"]


def test_converted_template_converts_to_nothing_and_then_cleans_up(tmp_path):
    _, out, _ = run(tmp_path, (FIXTURES / "seed_example.yaml").read_text())
    code, again, report = run(tmp_path, out, name="step1.yaml")
    assert code == 0 and again == out and report["status"] == "nothing-to-convert"
    code, step2, report = run(tmp_path, out, "--remove-function", name="step1.yaml")
    assert code == 0
    assert set(cfnyaml.load(step2)["Resources"]) == {"ApplicationCluster", "ApplicationTaskDefinition", "MigrateTask"}
    assert "only after the converted template has been deployed" in report["removal"]["why"]


# --- YAML short forms, JSON -----------------------------------------------------------------

SHORT_FORMS = with_runner(
    """
    Cluster:
      Type: AWS::ECS::Cluster
    Migrate:
      Type: Custom::ECSTask
      Metadata:
        Note: !Sub 'migrates ${Env}'   # kept as it is
      Properties:
        ServiceToken: !GetAtt Runner.Arn
        Cluster: !Ref Cluster
        TaskDefinition: !Sub '${AWS::StackName}-migrate'   # the family
        Count: !If [IsProd, 2, 1]
        Timeout: !FindInMap [Timeouts, !Ref 'AWS::Region', Migrate]
        RunOnUpdate: !If [NotProd, true, 'False']
        Overrides:
          containerOverrides:
            - name: app
              command: !Split [' ', !Sub 'bin/rails db:migrate VERSION=${Env}']
              environment:
                - name: DB_HOST
                  value: !ImportValue db-host
                - name: AZ
                  value: !Select [0, !GetAZs '']
                - name: B64
                  value: !Base64 plain
                - name: JOINED
                  value: !Join [',', [a, !Ref Env]]
                - name: NESTED
                  value: !GetAtt Db.Endpoint.Address
          taskRoleArn: !GetAtt TaskRole.Arn
        Triggers:
          - !Ref Env
          - !If [IsProd, a, !Ref 'AWS::NoValue']
    Db:
      Type: AWS::RDS::DBInstance
      Properties:
        DBInstanceClass: db.t3.micro
        Engine: postgres
        MasterUsername: app
        ManageMasterUserPassword: true
        AllocatedStorage: "20"
    TaskRole:
      Type: AWS::IAM::Role
      Properties:
        AssumeRolePolicyDocument: !Transform {Name: AWS::Include, Parameters: {Location: s3://bucket/trust.json}}
    Vpc:
      Type: AWS::EC2::VPC
      Properties:
        CidrBlock: 10.0.0.0/16
    Subnet:
      Type: AWS::EC2::Subnet
      Condition: Both
      Properties:
        VpcId: !Ref Vpc
        CidrBlock: !Select [0, !Cidr [!GetAtt Vpc.CidrBlock, 4, 8]]
    """,
    head="""
    Parameters:
      Env:
        Type: String
        Default: dev
    Mappings:
      Timeouts:
        us-east-1: {Migrate: 600}
    Conditions:
      IsProd: !Equals [!Ref Env, prod]
      NotProd: !Not [!Condition IsProd]
      Both: !And [!Condition IsProd, !Or [!Condition NotProd, !Condition IsProd]]
    """,
)


def test_short_form_intrinsics_survive_yaml_in_yaml_out(tmp_path):
    code, out, report = run(tmp_path, SHORT_FORMS)
    assert code == 0, report["converted"][0]["unmapped"]
    assert "Fn::" not in out  # nothing was expanded to a long form
    for text in (
        "Count: !If [IsProd, 2, 1]",
        "Timeout: !FindInMap [Timeouts, !Ref 'AWS::Region', Migrate]",
        "RunOnUpdate: !If [NotProd, true, false]",
        "      Note: !Sub 'migrates ${Env}'   # kept as it is",
        "TaskDefinition: !Sub '${AWS::StackName}-migrate'   # the family",
        "Command: !Split [' ', !Sub 'bin/rails db:migrate VERSION=${Env}']",
        "Value: !ImportValue db-host",
        "Value: !Select [0, !GetAZs '']",
        "Value: !Base64 plain",
        "Value: !Join [',', [a, !Ref Env]]",
        "Value: !GetAtt Db.Endpoint.Address",
        "TaskRoleArn: !GetAtt TaskRole.Arn",
        "Both: !And [!Condition IsProd, !Or [!Condition NotProd, !Condition IsProd]]",
        "NotProd: !Not [!Condition IsProd]",
        "CidrBlock: !Select [0, !Cidr [!GetAtt Vpc.CidrBlock, 4, 8]]",
        "AssumeRolePolicyDocument: !Transform {Name: AWS::Include, Parameters: {Location: s3://bucket/trust.json}}",
    ):
        assert text in out, text
    props = props_of(out, "Migrate")
    env = props["Overrides"]["ContainerOverrides"][0]["Environment"]
    assert [type(e["Value"]) for e in env] == [Tagged] * 5
    assert [e["Value"].tag for e in env] == ["!ImportValue", "!Select", "!Base64", "!Join", "!GetAtt"]
    assert env[4]["Value"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}
    assert props["Count"].tag == "!If" and props["Triggers"][1].tag == "!If"
    assert props["RunOnUpdate"].tag == "!If" and props["RunOnUpdate"]["Fn::If"][2] is False


def test_yaml_dumper_round_trips_every_short_form():
    lines = ["Root:"]
    samples = {
        "!And": "[!Condition A, !Condition B]", "!Base64": "text", "!Cidr": "[10.0.0.0/16, 4, 8]",
        "!Condition": "A", "!Equals": "[a, b]", "!FindInMap": "[M, K, V]", "!ForEach": "[X, [a], {}]",
        "!GetAtt": "Res.Attr.Nested", "!GetAZs": "''", "!If": "[A, 1, 2]", "!ImportValue": "export",
        "!Join": "['', [a, b]]", "!Length": "[a, b]", "!Not": "[!Condition A]", "!Or": "[!Condition A, !Condition B]",
        "!Ref": "Res", "!Select": "[0, [a]]", "!Split": "[',', 'a,b']", "!Sub": "'${AWS::StackName}-x'",
        "!ToJsonString": "{a: 1}", "!Transform": "{Name: AWS::Include, Parameters: {Location: s3://b/k}}",
    }
    assert set(samples) == set(cfnyaml.SHORT_FORM_TAGS)
    for i, (tag, value) in enumerate(samples.items()):
        lines.append("  K%d: %s %s" % (i, tag, value))
    lines.append("  Multi: !Sub |\n    line ${A}\n    line 2")
    lines.append("  Long:\n    Fn::Sub: kept long")
    data = cfnyaml.load("\n".join(lines) + "\n")
    dumped = cfnyaml.dump(data)
    again = cfnyaml.load(dumped)
    assert same(again, data)
    for i, tag in enumerate(samples):
        assert again["Root"]["K%d" % i].tag == tag
        assert ("K%d: %s" % (i, tag)) in dumped
    assert "Multi: !Sub |" in dumped and "Fn::Sub: kept long" in dumped
    assert data["Root"]["K7"] == {"Fn::GetAtt": ["Res", "Attr.Nested"]}


def test_json_stays_json_and_unrelated_json_is_kept(tmp_path):
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Runner": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "ecs_tasks.handler", "Runtime": "python3.12", "Role": "arn:aws:iam::123456789012:role/r", "Code": {"ZipFile": "x"}}},
            "Task": {
                "Type": "Custom::ECSTask",
                "Properties": {
                    "ServiceToken": {"Fn::GetAtt": ["Runner", "Arn"]},
                    "Cluster": "default",
                    "TaskDefinition": "migrate:3",
                    "RunOnUpdate": "false",
                    "Overrides": {"containerOverrides": [{"name": "app", "command": ["migrate"]}]},
                },
            },
        },
    }
    code, out, report = run(tmp_path, json.dumps(template, indent=4), name="t.json")
    assert code == 0
    data = json.loads(out)
    assert out.startswith('{\n    "AWSTemplateFormatVersion"')  # its indentation kept
    props = data["Resources"]["Task"]["Properties"]
    assert props == {
        "Cluster": "default", "TaskDefinition": "migrate:3", "RunOnUpdate": False,
        "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["migrate"]}]},
        "Timeout": 290, "AdoptExisting": True,
    }
    assert data["Resources"]["Runner"] == template["Resources"]["Runner"]


# --- values ---------------------------------------------------------------------------------


def test_python_booleans_and_string_scalars(tmp_path):
    resources = ""
    cases = [("True", True), ("'True'", True), ("yes", True), ("'YES'", True), ("FALSE", False),
             ("'False'", False), ("no", False), ("false", False), ("'true'", True)]
    for i, (text, _) in enumerate(cases):
        resources += """
        T%d:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: !GetAtt Runner.Arn
            Cluster: default
            TaskDefinition: migrate
            RunOnUpdate: %s
            Count: '2'
            Timeout: "600"
            PollInterval: 20.0
        """ % (i, text)
    code, out, report = run(tmp_path, with_runner(resources))
    assert code == 0
    for i, (_, expected) in enumerate(cases):
        props = props_of(out, "T%d" % i)
        assert props["RunOnUpdate"] is expected, cases[i]
        assert same(props["Count"], 2) and same(props["Timeout"], 600) and same(props["PollInterval"], 20)
    assert "RunOnUpdate: True" not in out and "RunOnUpdate: 'True'" not in out
    changes = report["converted"][0]["changes"]
    assert "Resources.T0.Properties.RunOnUpdate: True (YAML 1.1/Python spelling) -> true" in changes
    assert "Resources.T0.Properties.Count: '2' (string) -> 2" in changes


def test_camelcase_overrides_to_taskrun_shape(tmp_path):
    code, out, report = run(tmp_path, with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: !GetAtt Runner.Arn
            Cluster: default
            TaskDefinition: migrate
            Overrides:
              containerOverrides:
                - name: app
                  command: [bin/migrate, --verbose]
                  environment:
                    - name: FLAG
                      value: True
                    - name: N
                      value: 5
                    - name: EMPTY
                  environmentFiles:
                    - type: s3
                      value: arn:aws:s3:::bucket/app.env
                  cpu: "256"
                  memory: 512
                  memoryReservation: "128"
                  resourceRequirements:
                    - type: GPU
                      value: 1
                - name: sidecar
                  command: [sleep, "1"]
              cpu: 512
              memory: "1024"
              taskRoleArn: arn:aws:iam::123456789012:role/migrate-task
              executionRoleArn: arn:aws:iam::123456789012:role/migrate-exec
              ephemeralStorage:
                sizeInGiB: "30"
    """))
    assert code == 0, report["converted"][0]["unmapped"]
    assert same(props_of(out, "Task")["Overrides"], {
        "ContainerOverrides": [
            {
                "Name": "app",
                "Command": ["bin/migrate", "--verbose"],
                "Environment": [{"Name": "FLAG", "Value": "true"}, {"Name": "N", "Value": "5"}, {"Name": "EMPTY"}],
                "EnvironmentFiles": [{"Type": "s3", "Value": "arn:aws:s3:::bucket/app.env"}],
                "Cpu": 256,
                "Memory": 512,
                "MemoryReservation": 128,
                "ResourceRequirements": [{"Type": "GPU", "Value": "1"}],
            },
            {"Name": "sidecar", "Command": ["sleep", "1"]},
        ],
        "Cpu": "512",
        "Memory": "1024",
        "TaskRoleArn": "arn:aws:iam::123456789012:role/migrate-task",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/migrate-exec",
        "EphemeralStorage": {"SizeInGiB": 30},
    })
    assert "True" not in json.dumps(report["converted"][0]["changes"])  # env values not shown


def test_update_criteria_environment_key_singular(tmp_path):
    code, out, report = run(tmp_path, with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: !GetAtt Runner.Arn
            Cluster: default
            TaskDefinition: migrate
            UpdateCriteria:
              - Container: app
                EnvironmentKey: DB_HOST
              - Container: worker
                EnvironmentKey: [DB_HOST, DB_NAME, DB_HOST]
    """))
    assert code == 0
    assert same(props_of(out, "Task")["UpdateCriteria"], [
        {"Container": "app", "EnvironmentKeys": ["DB_HOST"]},
        {"Container": "worker", "EnvironmentKeys": ["DB_HOST", "DB_NAME"]},
    ])
    changes = " ".join(report["converted"][0]["changes"])
    assert "EnvironmentKey -> EnvironmentKeys" in changes and "duplicate" in changes


def test_timeout_pinned_to_290_when_absent_kept_when_given(tmp_path):
    body = """
        A:
          Type: Custom::ECSTask
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t}
        B:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: !GetAtt Runner.Arn
            Cluster: c
            TaskDefinition: t
            Timeout: 120
    """
    _, out, report = run(tmp_path, with_runner(body))
    assert same(props_of(out, "A")["Timeout"], 290) and same(props_of(out, "B")["Timeout"], 120)
    rows = {r["TaskRun"]: r for r in report["converted"][0]["mapping"]}
    assert "ecsTasks' default was 290 s, TaskRun's is 3600 s" in rows["Timeout"]["note"]
    _, out, report = run(tmp_path, with_runner(body), "--no-pin-timeout")
    assert "Timeout" not in props_of(out, "A") and same(props_of(out, "B")["Timeout"], 120)
    assert any("TaskRun waits 3600 s" in n for n in report["converted"][0]["notes"])


# --- which resources ------------------------------------------------------------------------


def test_aws_cloudformation_customresource_is_converted(tmp_path):
    code, out, report = run(tmp_path, with_runner("""
        Task:
          Type: AWS::CloudFormation::CustomResource
          Properties:
            ServiceToken: !GetAtt Runner.Arn
            Cluster: c
            TaskDefinition: t
    """))
    assert code == 0
    assert cfnyaml.load(out)["Resources"]["Task"]["Type"] == "Org::ECS::TaskRun"
    assert report["converted"][0]["from_type"] == "AWS::CloudFormation::CustomResource"


def test_several_ecstasks_resources_in_one_template(tmp_path):
    code, out, report = run(tmp_path, with_runner("""
        Migrate:
          Type: Custom::ECSTask
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: migrate}
        Seed:
          Type: Custom::SeedData
          DependsOn: Migrate
          Properties: {ServiceToken: !Sub '${Runner.Arn}', Cluster: c, TaskDefinition: seed, Count: 2}
        Smoke:
          Type: AWS::CloudFormation::CustomResource
          DependsOn: [Seed, Runner]
          Properties: {ServiceToken: !GetAtt [Runner, Arn], Cluster: c, TaskDefinition: smoke}
        Manual:
          Type: Custom::ECSTask
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: manual}
    """), "--skip", "Manual")
    assert code == 0
    data = cfnyaml.load(out)["Resources"]
    assert [c["resource"] for c in report["converted"]] == ["Migrate", "Seed", "Smoke"]
    assert [data[n]["Type"] for n in ("Migrate", "Seed", "Smoke", "Manual")] == ["Org::ECS::TaskRun"] * 3 + ["Custom::ECSTask"]
    assert data["Seed"]["DependsOn"] == "Migrate"
    assert data["Smoke"]["DependsOn"] == ["Seed"]  # the function is no longer needed
    assert same(data["Seed"]["Properties"]["Count"], 2)
    # Manual still uses the function: it stays, with its role
    assert report["removal"]["resources"] == []
    assert report["removal"]["blocked"] == [] and report["left_alone"][0]["resource"] == "Manual"


def test_unrelated_custom_resources_are_left_alone(tmp_path):
    src = with_runner("""
        OtherFn:
          Type: AWS::Lambda::Function
          Properties:
            Handler: index.handler
            Runtime: python3.12
            Role: !GetAtt RunnerRole.Arn
            Code: {ZipFile: "def handler(e, c): pass"}
        Thing:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: !GetAtt OtherFn.Arn
            Cluster: looks-like-ecstasks-but-is-not
            TaskDefinition: t
        Literal:
          Type: Custom::Thing
          Properties:
            ServiceToken: arn:aws:lambda:us-east-1:123456789012:function:other
            Value: 1
        LiteralEcsTasks:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: arn:aws:lambda:us-east-1:123456789012:function:prod-ecsTasks
            Cluster: c
            TaskDefinition: t
        Migrate:
          Type: Custom::ECSTask
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t}
    """)
    code, out, report = run(tmp_path, src)
    assert code == 0
    before, after = cfnyaml.load(src)["Resources"], cfnyaml.load(out)["Resources"]
    for name in ("OtherFn", "Thing", "Literal", "LiteralEcsTasks"):
        assert same(after[name], before[name]), name
    assert after["Migrate"]["Type"] == "Org::ECS::TaskRun"
    left = {la["resource"]: la["why"] for la in report["left_alone"]}
    assert set(left) == {"Thing", "Literal", "LiteralEcsTasks"}
    assert "not an ecsTasks function" in left["Thing"] and "--function OtherFn" in left["Thing"]
    assert "--service-token" in left["LiteralEcsTasks"]
    # the role is also OtherFn's: it stays; the function goes
    assert {r["resource"] for r in report["removal"]["resources"]} == {"Runner"}
    # with --function, OtherFn counts as ecsTasks too
    _, out, report = run(tmp_path, src, "--function", "OtherFn")
    assert cfnyaml.load(out)["Resources"]["Thing"]["Type"] == "Org::ECS::TaskRun"


@pytest.mark.parametrize("token", [
    "!GetAtt Runner.Arn",
    "!GetAtt [Runner, Arn]",
    "\n              Fn::GetAtt: [Runner, Arn]",
    "\n              Fn::GetAtt: Runner.Arn",
    "!Sub '${Runner.Arn}'",
    '\n              Fn::Sub: "${Runner.Arn}"',
    "!Sub ['${Fn}', {Fn: !GetAtt Runner.Arn}]",
    "!Sub 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-ecsTasks'",
    "!If [IsProd, !GetAtt Runner.Arn, !Sub '${Runner.Arn}']",
    "!Ref RunnerAlias",
])
def test_service_token_forms_of_the_template_function(tmp_path, token):
    src = with_runner("""
        RunnerAlias:
          Type: AWS::Lambda::Alias
          Properties: {FunctionName: !Ref Runner, FunctionVersion: $LATEST, Name: live}
        Task:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: %s
            Cluster: c
            TaskDefinition: t
    """ % token, head="""
    Conditions:
      IsProd: !Equals [!Ref 'AWS::Region', us-east-1]
    """).replace("      Handler: ecs_tasks.handler\n", "      Handler: ecs_tasks.handler\n      FunctionName: !Sub ${AWS::StackName}-ecsTasks\n")
    code, out, report = run(tmp_path, src)
    assert code == 0
    assert [c["resource"] for c in report["converted"]] == ["Task"], report["left_alone"]
    assert report["converted"][0]["function"] == "Runner"


@pytest.mark.parametrize("token,glob", [
    ("arn:aws:lambda:us-east-1:123456789012:function:prod-ecsTasks", "arn:aws:lambda:*:function:*-ecsTasks"),
    ("!ImportValue shared-ecsTasks-arn", "ImportValue:*ecsTasks*"),
    ("!Ref EcsTasksArn", "Ref:EcsTasksArn"),
    ("!Ref EcsTasksArn", "arn:aws:lambda:*:ecsTasks"),
    ("!Sub 'arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:shared-ecsTasks'", "*:function:shared-ecsTasks"),
])
def test_service_token_given_by_pattern(tmp_path, token, glob):
    src = yaml_template("""
    Parameters:
      EcsTasksArn:
        Type: String
        Default: arn:aws:lambda:us-east-1:123456789012:function:ecsTasks
    Resources:
      Task:
        Type: Custom::ECSTask
        Properties:
          ServiceToken: %s
          Cluster: c
          TaskDefinition: t
      Unrelated:
        Type: Custom::Other
        Properties:
          ServiceToken: arn:aws:lambda:us-east-1:123456789012:function:other
    """ % token)
    code, out, report = run(tmp_path, src)
    assert code == 0 and report["status"] == "nothing-to-convert"
    assert out == src
    code, out, report = run(tmp_path, src, "--service-token", glob)
    assert code == 0 and [c["resource"] for c in report["converted"]] == ["Task"]
    assert report["converted"][0]["function"] is None
    assert cfnyaml.load(out)["Resources"]["Unrelated"]["Type"] == "Custom::Other"
    assert report["removal"]["resources"] == []  # no function in this template


# --- what cannot be mapped ------------------------------------------------------------------


def test_unknown_properties_and_uninterpretable_values_are_reported_and_left_in_place(tmp_path):
    code, out, report = run(tmp_path, with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: !GetAtt Runner.Arn
            Cluster: c
            TaskDefinition: t
            Foo: bar
            runOnUpdate: false
            RunOnUpdate: maybe
            Timeout: 0
            Overrides:
              inferenceAcceleratorOverrides: [{deviceName: d, deviceType: eia2.medium}]
              taskRoleArn: migrate-role
              containerOverrides:
                - name: app
                  bogus: 1
                  environment:
                    - name: SECRET
                      value: hunter2
                      extra: x
            UpdateCriteria:
              - Container: app
                EnvironmentKeys: []
                Extra: 1
              - Container: worker
                EnvironmentKey: OLD
                EnvironmentKeys: [DB_HOST]
              - !If [IsProd, {Container: app, EnvironmentKey: A}, !Ref 'AWS::NoValue']
    """, head="""
    Conditions:
      IsProd: !Equals [!Ref 'AWS::Region', us-east-1]
    """))
    assert code == 1
    (conv,) = report["converted"]
    paths = {u["path"]: u for u in conv["unmapped"]}
    base = "Resources.Task.Properties."
    for path in ("Foo", "runOnUpdate", "RunOnUpdate", "Timeout", "Overrides.inferenceAcceleratorOverrides",
                 "Overrides.taskRoleArn", "Overrides.containerOverrides[0].bogus",
                 "Overrides.containerOverrides[0].environment[0].extra", "UpdateCriteria[0].EnvironmentKeys",
                 "UpdateCriteria[0].Extra", "UpdateCriteria[1].EnvironmentKey"):
        assert base + path in paths, path
    assert "ecsTasks ignored unknown properties" in paths[base + "Foo"]["reason"]
    assert "hunter2" not in json.dumps(report)
    props = props_of(out, "Task")  # written, with each left where it was
    assert props["Foo"] == "bar" and props["runOnUpdate"] is False and props["RunOnUpdate"] == "maybe"
    assert props["Timeout"] == 0
    assert props["Overrides"]["inferenceAcceleratorOverrides"] == [{"deviceName": "d", "deviceType": "eia2.medium"}]
    assert props["Overrides"]["ContainerOverrides"][0]["bogus"] == 1
    assert same(props["UpdateCriteria"][1], {"Container": "worker", "EnvironmentKey": "OLD", "EnvironmentKeys": ["DB_HOST"]})
    assert same(props["UpdateCriteria"][2], {"Fn::If": ["IsProd", {"Container": "app", "EnvironmentKeys": ["A"]}, {"Ref": "AWS::NoValue"}]})
    assert len(conv["unmapped"]) == 11
    assert report["status"] == "incomplete" and report["exit_code"] == 1


def test_an_incomplete_output_does_not_validate(tmp_path):
    """What could not be mapped stays where it was, so the schema refuses the template
    (cfn-lint with the schema applied) instead of a deploy silently dropping it."""
    if not CFN_LINT.exists():
        pytest.skip("no .venv/bin/cfn-lint (bash scripts/venv.sh)")
    code, out, _ = run(tmp_path, with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t, Foo: bar}
    """))
    assert code == 1
    path = tmp_path / "converted.yaml"
    result = strict_lint(path, strip_adopt=not ADOPT_IN_SCHEMA)
    assert result.returncode != 0 and "Foo" in result.stdout, result.stdout


# --- removal ---------------------------------------------------------------------------------


def test_removal_includes_permission_and_named_log_group_and_reviews_the_rest(tmp_path):
    code, out, report = run(tmp_path, with_runner("""
        RunnerLogs:
          Type: AWS::Logs::LogGroup
          Properties:
            LogGroupName: !Sub /aws/lambda/${AWS::StackName}-ecsTasks
        InvokeSelf:
          Type: AWS::Lambda::Permission
          Properties:
            FunctionName: !Ref Runner
            Action: lambda:InvokeFunction
            Principal: !Ref AWS::AccountId
        RunnerKey:
          Type: AWS::KMS::Key
          Properties:
            KeyPolicy: {Version: "2012-10-17", Statement: []}
        Task:
          Type: Custom::ECSTask
          DependsOn: Runner
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t}
    """).replace("      Handler: ecs_tasks.handler\n", "      Handler: ecs_tasks.handler\n      FunctionName: !Sub ${AWS::StackName}-ecsTasks\n      KmsKeyArn: !GetAtt RunnerKey.Arn\n"))
    assert code == 0
    removal = report["removal"]
    assert {r["resource"] for r in removal["resources"]} == {"Runner", "RunnerRole", "RunnerLogs", "InvokeSelf"}
    assert removal["review"] == [{"resource": "RunnerKey", "type": "AWS::KMS::Key", "used_by": ["Runner"]}]
    assert "DependsOn" not in cfnyaml.load(out)["Resources"]["Task"]
    assert removal["depends_on_dropped"] == [{"resource": "Task", "dropped": ["Runner"]}]
    _, out, report = run(tmp_path, out, "--remove-function", name="step1.yaml")
    assert set(cfnyaml.load(out)["Resources"]) == {"RunnerKey", "Task"}


def test_function_used_elsewhere_is_not_removed(tmp_path):
    code, out, report = run(tmp_path, with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t}
    """) + textwrap.dedent("""
    Outputs:
      RunnerArn:
        Value: !GetAtt Runner.Arn
        Export: {Name: !Sub '${AWS::StackName}-runner'}
    """), "--remove-function")
    assert code == 0
    assert report["removal"]["resources"] == [] and report["removal"]["removed_now"] == []
    assert report["removal"]["blocked"] == [{"function": "Runner", "referred_to_by": ["Outputs.RunnerArn"]}]
    assert "Runner" in cfnyaml.load(out)["Resources"]


def test_uses_of_converted_resources_are_reported(tmp_path):
    _, _, report = run(tmp_path, with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t}
    """) + textwrap.dedent("""
    Outputs:
      Id:
        Value: !Ref Task
      Bad:
        Value: !GetAtt Task.Result
      Good:
        Value: !Sub '${Task.Status}'
    """))
    uses = {u["at"]: u for u in report["references_to_converted"]}
    assert "TaskRun's Id" in uses["Outputs.Id"]["note"]
    assert "not a TaskRun attribute" in uses["Outputs.Bad"]["note"]
    assert uses["Outputs.Good"]["note"] == "a TaskRun attribute"


# --- the command ----------------------------------------------------------------------------


@pytest.mark.parametrize("content,name,message", [
    (None, "missing.yaml", "cannot read"),
    ("Resources: [unclosed\n", "bad.yaml", "not valid YAML"),
    ('{"Resources": ', "bad.json", "not valid JSON"),
    ("- a\n- b\n", "list.yaml", "not a mapping"),
    ("AWSTemplateFormatVersion: '2010-09-09'\n", "nores.yaml", "no Resources"),
    ("Resources:\n  A: {Type: X}\n  A: {Type: Y}\n", "dup.yaml", "duplicate key"),
])
def test_unreadable_input_exits_2(tmp_path, capsys, content, name, message):
    src = tmp_path / name
    if content is not None:
        src.write_text(content)
    code = convert.main([str(src), "-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 2


def test_nothing_to_convert_exits_0_and_says_so(tmp_path, capsys):
    src = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket  # a comment\n"
    code, out, report = run(tmp_path, src)
    assert code == 0 and out == src and report["status"] == "nothing-to-convert"
    assert "Nothing to convert" in capsys.readouterr().out


def test_cli_stdout_output_default_path_and_crlf(tmp_path):
    src = (FIXTURES / "seed_example.yaml").read_text().replace("\n", "\r\n")
    path = tmp_path / "stack.yaml"
    path.write_text(src, newline="")
    script = str(HERE.parent / "convert.py")
    result = subprocess.run([sys.executable, script, str(path), "-o", "-"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    assert "Org::ECS::TaskRun" in result.stdout and "Steps:" in result.stderr and "Steps:" not in result.stdout
    result = subprocess.run([sys.executable, script, str(path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "Steps:" in result.stdout
    written = (tmp_path / "stack.taskrun.yaml").read_bytes().decode()
    assert written.count("\r\n") == written.count("\n")  # CRLF kept, in new lines too
    assert "AdoptExisting: true" in written


# --- cfn-lint -------------------------------------------------------------------------------


def lint(path, *extra):
    return subprocess.run(
        [str(CFN_LINT), "--registry-schemas", str(REGISTRY), "--regions", "us-east-1", *extra, "--", str(path)],
        capture_output=True, text=True, cwd=ROOT,
    )


def strict_lint(path, strip_adopt, *extra):
    """cfn-lint with schema.json really applied (cfn/cfnlint_taskrun). Without
    AdoptExisting in schema.json yet, the lines that set it are left out of the copy linted
    (so every other property is still checked)."""
    if strip_adopt:
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
            for res in data["Resources"].values():
                (res.get("Properties") or {}).pop("AdoptExisting", None)
            text = json.dumps(data, indent=2)
        else:
            text = "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("AdoptExisting:"))
        path = path.with_name(path.stem + ".no-adopt" + path.suffix)
        path.write_text(text)
    if RULES.is_dir():
        command = [str(CFN_LINT), "--append-rules", str(RULES)]
    elif STRICT.exists():
        command = [str(ROOT / ".venv" / "bin" / "python"), str(STRICT)]
    else:
        pytest.skip("neither cfn/cfnlint_taskrun nor cfn/cfn_lint_strict.py: no way to check TaskRun properties with cfn-lint")
    return subprocess.run(
        command + ["--registry-schemas", str(REGISTRY), "--regions", "us-east-1", *extra, "--", str(path)],
        capture_output=True, text=True, cwd=ROOT,
    )


# E2533: the seed's function runs python2.7, a runtime Lambda no longer lets anyone create.
# That function is the user's, already deployed and left unchanged by the conversion
# (deleting it later is allowed); the --remove-function output is linted without it.
KEPT_FUNCTION_CHECKS = ("--ignore-checks", "E2533")


@pytest.mark.parametrize("fixture", ["seed_example.yaml", "seed_example.json"])
@pytest.mark.parametrize("remove", [False, True])
def test_converted_seed_example_passes_cfn_lint(tmp_path, fixture, remove):
    if not CFN_LINT.exists():
        pytest.skip("no .venv/bin/cfn-lint (bash scripts/venv.sh)")
    args = ["--remove-function"] if remove else []
    code, out, _ = run(tmp_path, (FIXTURES / fixture).read_text(), *args, name=fixture)
    assert code == 0
    path = tmp_path / ("converted" + Path(fixture).suffix)
    extra = () if remove else KEPT_FUNCTION_CHECKS
    result = lint(path, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    result = strict_lint(path, not ADOPT_IN_SCHEMA, *extra)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["short_forms", "overrides"])
def test_other_converted_templates_pass_cfn_lint(tmp_path, name):
    if not CFN_LINT.exists():
        pytest.skip("no .venv/bin/cfn-lint (bash scripts/venv.sh)")
    src = SHORT_FORMS if name == "short_forms" else with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties:
            ServiceToken: !GetAtt Runner.Arn
            Cluster: default
            TaskDefinition: migrate
            RunOnUpdate: 'no'
            UpdateCriteria: [{Container: app, EnvironmentKey: DB_HOST}]
            Triggers: [!Ref 'AWS::StackName', 3]
            Overrides:
              containerOverrides: [{name: app, cpu: "256", environment: [{name: A, value: 1}]}]
              cpu: 512
              ephemeralStorage: {sizeInGiB: "30"}
    """)
    code, out, _ = run(tmp_path, src)
    assert code == 0
    path = tmp_path / "converted.yaml"
    result = lint(path)
    assert result.returncode == 0, result.stdout + result.stderr
    result = strict_lint(path, not ADOPT_IN_SCHEMA)
    assert result.returncode == 0, result.stdout + result.stderr


def test_adopt_existing_is_in_the_taskrun_schema():
    """The converter writes AdoptExisting: true; the lead is adding it to schema.json."""
    if not ADOPT_IN_SCHEMA:
        pytest.skip(
            "schema.json has no AdoptExisting property yet: the strict cfn-lint checks above "
            "lint the converted templates without their AdoptExisting lines until it has"
        )
    prop = SCHEMA["properties"]["AdoptExisting"]
    assert prop.get("type") == "boolean"
    assert "/properties/AdoptExisting" not in SCHEMA.get("readOnlyProperties", [])


def test_comments_of_removed_lines_go_with_them(tmp_path):
    src = with_runner("""
        Task:
          Type: Custom::ECSTask
          Properties:
            # the ecsTasks function
            ServiceToken: !GetAtt Runner.Arn

            # the cluster
            Cluster: c
            TaskDefinition: t
    """).replace("  Runner:\n", "  # the function, removed with it\n  Runner:\n")
    _, out, report = run(tmp_path, src, "--remove-function")
    assert "# the ecsTasks function" not in out and "# the function, removed with it" not in out
    assert "      # the cluster\n      Cluster: c\n" in out
    assert report["output"]["comments_kept"] is True


def test_flow_style_resources_are_rewritten_whole_and_say_so(tmp_path):
    src = (
        "# this comment cannot be kept\n"
        "Resources: {Runner: {Type: AWS::Lambda::Function, Properties: {Handler: ecs_tasks.handler, "
        "Runtime: python3.12, Role: !Sub 'arn:aws:iam::${AWS::AccountId}:role/r', Code: {ZipFile: x}}}, "
        "Task: {Type: Custom::ECSTask, Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t}}}\n"
    )
    code, out, report = run(tmp_path, src)
    assert code == 0 and report["output"]["comments_kept"] is False
    assert "comments lost" in report["output"]["how"]
    data = cfnyaml.load(out)
    assert data["Resources"]["Task"]["Type"] == "Org::ECS::TaskRun"
    assert data["Resources"]["Runner"]["Properties"]["Role"].tag == "!Sub"
    assert "Role: !Sub arn:aws:iam::${AWS::AccountId}:role/r" in out


def test_removal_takes_the_role_policies_only_the_function_used(tmp_path):
    src = """
Resources:
  Runner:
    Type: AWS::Lambda::Function
    Properties: {Handler: ecs_tasks.handler, Runtime: python3.12, Role: !GetAtt RunnerRole.Arn, Code: {ZipFile: x}}
  RunnerRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      ManagedPolicyArns: [!Ref Shared, !Ref Own]
  Own:
    Type: AWS::IAM::ManagedPolicy
    Properties: {PolicyDocument: {}}
  Shared:
    Type: AWS::IAM::ManagedPolicy
    Properties: {PolicyDocument: {}}
  OtherRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {}
      ManagedPolicyArns: [!Ref Shared]
  InvokeSelfPolicy:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: InvokeSelf
      Roles: [!Ref RunnerRole]
      PolicyDocument:
        Statement:
          - Sid: InvokeSelf
            Effect: Allow
            Action: lambda:InvokeFunction
            Resource: !GetAtt Runner.Arn
  Task:
    Type: Custom::ECSTask
    Properties: {ServiceToken: !GetAtt Runner.Arn, Cluster: c, TaskDefinition: t}
"""
    code, out, report = run(tmp_path, src)
    assert code == 0
    removal = {r["resource"]: r["why"] for r in report["removal"]["resources"]}
    assert set(removal) == {"Runner", "RunnerRole", "InvokeSelfPolicy", "Own"}  # Shared is OtherRole's too
    assert removal["RunnerRole"] == "AWS::IAM::Role used only by InvokeSelfPolicy, Runner"
