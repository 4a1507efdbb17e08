"""The cfn-lint rules in cfn/cfnlint_taskrun, through the command users run:

    cfn-lint --append-rules cfn/cfnlint_taskrun -- template.yaml

    .venv/bin/python -m pytest -q -p no:cacheprovider cfn/tests/test_lint_rules.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from taskrun_lint import COMMAND, REPO, RULES, lint, run

SCHEMA_FILES = {
    "Org::ECS::TaskRun": REPO / "schema.json",
    "Org::ECS::ServiceRestart": REPO / "service-restart" / "schema.json",
}
SCHEMAS = {name: json.loads(path.read_text()) for name, path in SCHEMA_FILES.items()}
EXAMPLES = sorted(
    p for p in (REPO / "examples").iterdir() if p.suffix in (".yaml", ".yml", ".json")
)


def template(tmp_path: Path, text: str, name: str = "template.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def line_of(path: Path, needle: str) -> int:
    """1-based number of the first line of `path` containing `needle`."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_the_documented_command_is_the_one_in_cfn_readme():
    readme = (REPO / "cfn" / "README.md").read_text()
    assert " ".join(COMMAND) + " template.yaml" in readme


def test_the_schemas_are_the_repository_files_not_copies():
    links = sorted((REPO / "cfn" / "registry-schemas").glob("*.json"))
    assert links, "cfn/registry-schemas/ is empty"
    targets = {}
    for link in links:
        assert link.is_symlink(), f"{link} must be a link to a schema.json, not a copy"
        targets[json.loads(link.read_text())["typeName"]] = link.resolve()
    assert targets == {name: path.resolve() for name, path in SCHEMA_FILES.items()}


def test_every_example_passes():
    assert EXAMPLES, "no templates in examples/"
    used = "\n".join(p.read_text() for p in EXAMPLES)
    for type_name in SCHEMAS:  # the examples exercise both types
        assert f"Type: {type_name}" in used
    result = lint(*EXAMPLES)
    assert result.returncode == 0 and not result.findings, result.report()


def test_taskrun_misspelt_missing_and_out_of_range_are_all_reported(tmp_path):
    path = template(
        tmp_path,
        """
        Resources:
          Migrate:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: shop
              Countt: 3
              Timeout: -5
        """,
    )
    result = lint(path)
    assert result.returncode & 2, result.report()  # errors
    assert sorted(result.rules()) == ["E9002", "E9003", "E9005"], result.report()

    (unknown,) = result.by_rule("E9002")
    assert unknown.message == (
        "Resources/Migrate/Properties/Countt: unknown property 'Countt' of "
        "Org::ECS::TaskRun (did you mean 'Count'?)"
    )
    assert unknown.line == line_of(path, "Countt")

    (missing,) = result.by_rule("E9003")
    assert missing.message == (
        "Resources/Migrate/Properties/TaskDefinition: required property of "
        "Org::ECS::TaskRun is missing"
    )
    assert missing.line == line_of(path, "Properties:")

    (out_of_range,) = result.by_rule("E9005")
    assert out_of_range.message == (
        "Resources/Migrate/Properties/Timeout: -5 is less than the minimum of 1"
    )
    assert out_of_range.line == line_of(path, "Timeout")


def test_servicerestart_misspelt_missing_and_out_of_range_are_all_reported(tmp_path):
    path = template(
        tmp_path,
        """
        Resources:
          RestartApi:
            Type: Org::ECS::ServiceRestart
            Properties:
              Cluster: shop
              Servise: api
              PollInterval: 601
              Timeout: "-5"
        """,
    )
    result = lint(path)
    assert sorted(result.rules()) == ["E9002", "E9003", "E9005", "E9005"], result.report()
    messages = {f.message: f.line for f in result.findings}
    assert messages == {
        "Resources/RestartApi/Properties/Servise: unknown property 'Servise' of "
        "Org::ECS::ServiceRestart (did you mean 'Service'?)": line_of(path, "Servise"),
        "Resources/RestartApi/Properties/Service: required property of "
        "Org::ECS::ServiceRestart is missing": line_of(path, "Properties:"),
        "Resources/RestartApi/Properties/PollInterval: 601 is greater than the maximum "
        "of 600": line_of(path, "PollInterval"),
        "Resources/RestartApi/Properties/Timeout: '-5' is less than the minimum of 1": line_of(
            path, "Timeout"
        ),
    }, result.report()


def test_intrinsic_functions_and_string_scalars_pass(tmp_path):
    # CloudFormation passes every scalar as a string and the handlers convert them as the
    # schema says: "5" is an integer, "true"/"FALSE"/True booleans, 42 a string. A value
    # from an intrinsic function is not a type error.
    path = template(
        tmp_path,
        """
        AWSTemplateFormatVersion: "2010-09-09"
        Parameters:
          ClusterName: {Type: String}
          Count: {Type: Number, Default: 2}
          MemoryReservation: {Type: Number, Default: 256, MinValue: 4}
          TimeoutText: {Type: String, Default: "900"}
          Flag: {Type: String, AllowedValues: ["true", "false"], Default: "true"}
          LaunchType: {Type: String, AllowedValues: [EC2, FARGATE], Default: FARGATE}
          Subnets: {Type: "List<AWS::EC2::Subnet::Id>"}
          SecurityGroup: {Type: "AWS::EC2::SecurityGroup::Id"}
          UseSpot: {Type: String, AllowedValues: ["yes", "no"], Default: "no"}
          Version: {Type: String}
        Conditions:
          Spot: !Equals [!Ref UseSpot, "yes"]
        Mappings:
          Sizes:
            small: {Timeout: 600, Cpu: "256"}
        Resources:
          TaskDefinition:
            Type: AWS::ECS::TaskDefinition
            Properties:
              ContainerDefinitions:
                - Name: app
                  Image: busybox
                  Memory: 128
          Run:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: !Ref ClusterName
              TaskDefinition: !Ref TaskDefinition
              Count: !Ref Count
              Timeout: !FindInMap [Sizes, small, Timeout]
              PollInterval: "10"
              LogTail: 5.0
              RunOnUpdate: "true"
              RunOnRollback: True
              EnableExecuteCommand: !Ref Flag
              EnableECSManagedTags: "FALSE"
              LaunchType: !If [Spot, !Ref AWS::NoValue, !Ref LaunchType]
              CapacityProviderStrategy: !If
                - Spot
                - - CapacityProvider: FARGATE_SPOT
                    Weight: "1"
                    Base: 0
                - !Ref AWS::NoValue
              PlatformVersion: !Sub "${AWS::Region}-LATEST"
              NetworkConfiguration:
                AwsvpcConfiguration:
                  Subnets: !Ref Subnets
                  SecurityGroups: [!Ref SecurityGroup]
                  AssignPublicIp: !If [Spot, ENABLED, DISABLED]
              Overrides:
                Cpu: !FindInMap [Sizes, small, Cpu]
                TaskRoleArn: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/app"
                ContainerOverrides:
                  - Name: app
                    Cpu: "128"
                    Memory: "512"
                    MemoryReservation: !Ref MemoryReservation
                    Command: !Split [" ", "echo hello"]
                    Environment:
                      - Name: VERSION
                        Value: !Ref Version
                      - Name: NUMBER
                        Value: 5
                      - Name: FLAG
                        Value: true
              Triggers:
                - !Ref Version
                - !GetAtt TaskDefinition.TaskDefinitionArn
                - !Join ["-", [a, !Ref Version]]
                - !Select [0, !Ref Subnets]
                - 42
              Tags:
                - Key: owner
                  Value: !ImportValue team-name
          Second:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: !GetAtt Run.Id
              TaskDefinition: !GetAtt [Run, Output]
              Timeout: !Ref TimeoutText
              Triggers: [!GetAtt Run.Status, !Sub "${Run.Output}-${Run.FinishedAt}"]
          Restart:
            Type: Org::ECS::ServiceRestart
            Properties:
              Cluster: !Ref ClusterName
              Service: !Sub "${ClusterName}-api"
              WaitFor: !If [Spot, STARTED, STEADY_STATE]
              Timeout: "1200"
              PollInterval: 15
              RestartOnUpdate: "True"
              RunOnRollback: false
              Triggers:
                - !GetAtt Run.Output
        Outputs:
          Output:
            Value: !GetAtt Run.Output
          Deployment:
            Value: !GetAtt Restart.DeploymentId
        """,
    )
    result = lint(path)
    assert result.returncode == 0 and not result.findings, result.report()


def test_each_kind_of_violation_has_its_rule_id(tmp_path):
    path = template(
        tmp_path,
        """
        Resources:
          Run:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: {Name: shop}
              TaskDefinition: migrate
              Count: "five"
              Timeout: 2.5
              RunOnUpdate: "yes"
              LaunchType: fargate
              Instances: []
              DecidingContainers: [app, app]
              Overrides:
                TaskRoleArn: migrate-role
                ContainerOverrides:
                  - Nam: app
              Status: SUCCEEDED
          Restart:
            Type: Org::ECS::ServiceRestart
            Properties:
              Service: ""
              WaitFor: READY
        Outputs:
          Bad:
            Value: !GetAtt Run.Outputs
          BadList:
            Value: !GetAtt [Restart, Deployment]
          BadSub:
            Value: !Sub "${Run.Statuss}"
        """,
    )
    result = lint(path)
    found = {(f.rule, f.line) for f in result.findings}
    expected = {
        ("E9004", line_of(path, "Cluster:")),  # an object for a string
        ("E9004", line_of(path, "Count:")),  # "five" for an integer
        ("E9004", line_of(path, "Timeout:")),  # 2.5 for an integer (the handler refuses it)
        ("E9004", line_of(path, "RunOnUpdate:")),  # "yes" for a boolean
        ("E9007", line_of(path, "LaunchType:")),  # enum (case sensitive)
        ("E9006", line_of(path, "Instances:")),  # minItems
        ("E9010", line_of(path, "DecidingContainers:")),  # uniqueItems
        ("E9008", line_of(path, "TaskRoleArn:")),  # pattern
        ("E9002", line_of(path, "Nam:")),  # unknown property, nested
        ("E9003", line_of(path, "Nam:")),  # required property, nested
        ("W9001", line_of(path, "Status:")),  # read-only property
        ("E9006", line_of(path, 'Service: ""')),  # minLength
        ("E9007", line_of(path, "WaitFor:")),
        ("E9011", line_of(path, "Run.Outputs")),  # Fn::GetAtt of an unknown attribute
        ("E9011", line_of(path, "[Restart, Deployment]")),
        ("E9011", line_of(path, "Run.Statuss")),
    }
    assert found == expected, result.report()
    messages = "\n".join(f.message for f in result.findings)
    assert (
        "Resources/Run/Properties/Overrides/ContainerOverrides/0/Name: required property"
        in messages
    )
    assert "did you mean 'Output'?" in messages
    assert "did you mean 'DeploymentId'?" in messages
    assert result.returncode & 2 and result.returncode & 4  # errors and a warning


def test_the_anyof_rule_says_what_the_schema_describes(tmp_path):
    path = template(
        tmp_path,
        """
        Resources:
          Run:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: shop
              TaskDefinition: migrate
              LaunchType: FARGATE
              CapacityProviderStrategy:
                - CapacityProvider: FARGATE_SPOT
        """,
    )
    result = lint(path)
    (rule,) = {branch["description"] for branch in SCHEMAS["Org::ECS::TaskRun"]["anyOf"]}
    assert [(f.rule, f.message) for f in result.findings] == [
        ("E9009", f"Resources/Run/Properties: {rule}")
    ], result.report()


def test_an_unquoted_on_key_is_explained(tmp_path):
    # YAML 1.1 reads `On:` as the key True; the retry causes would not reach the handler.
    path = template(
        tmp_path,
        """
        Resources:
          Run:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: shop
              TaskDefinition: migrate
              Retry:
                Attempts: 1
                On: [PlacementFailure]
          Quoted:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: shop
              TaskDefinition: migrate
              Retry:
                Attempts: 1
                "On": [PlacementFailure]
        """,
    )
    result = lint(path)
    (finding,) = result.findings
    assert finding.rule == "E9002" and finding.line == line_of(path, "Retry:")
    assert "quote the property name ('On')" in finding.message, result.report()


def _violation(schema: dict, root: dict):
    """A value breaking one constraint of a property's schema, and the rule that says so
    (None for a shape this test does not know)."""
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].split("/")[-1]]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        if "minimum" in schema:
            return schema["minimum"] - 1, "E9005"
        if "maximum" in schema:
            return schema["maximum"] + 1, "E9005"
        return "many", "E9004"
    if kind == "boolean":
        return "maybe", "E9004"
    if kind == "string":
        if "enum" in schema:
            return "NOT-" + schema["enum"][0], "E9007"
        if "pattern" in schema:
            return "!", "E9008"
        if schema.get("minLength", 0) >= 1:
            return "", "E9006"
        if "maxLength" in schema:
            return "x" * (schema["maxLength"] + 1), "E9006"
        return {"Not": "a string"}, "E9004"
    if kind == "array":
        if schema.get("minItems", 0) >= 1:
            return [], "E9006"
        return {"Not": "a list"}, "E9004"
    if kind == "object":
        if schema.get("required"):
            return {}, "E9003"
        return {"NoSuchProperty": 1}, "E9002"
    return None  # a shape this test does not know how to break (a list of types, ...)


@pytest.mark.parametrize("type_name", sorted(SCHEMAS))
def test_every_property_constraint_of_the_schema_is_enforced(tmp_path, type_name):
    """One resource per writable property, with a value that breaks its schema."""
    schema = SCHEMAS[type_name]
    read_only = {p.split("/")[-1] for p in schema.get("readOnlyProperties", [])}
    valid = {"Cluster": "shop", "TaskDefinition": "migrate", "Service": "api"}
    valid = {k: v for k, v in valid.items() if k in schema["required"]}
    expected, lines = {}, ["Resources:"]
    for name, prop in schema["properties"].items():
        if name in read_only:
            continue
        broken = _violation(prop, schema)
        if broken is None:
            continue
        value, rule = broken
        logical = f"Bad{name}"
        props = {**valid, name: value}
        lines += [f"  {logical}:", f"    Type: {type_name}", "    Properties:"]
        lines += [f"      {k}: {json.dumps(v)}" for k, v in props.items()]
        expected[logical] = (rule, name)
    # and one resource without each required property
    for name in schema["required"]:
        logical = f"Without{name}"
        lines += [f"  {logical}:", f"    Type: {type_name}", "    Properties:"]
        rest = {k: v for k, v in valid.items() if k != name}
        lines += [f"      {k}: {json.dumps(v)}" for k, v in rest.items()] or ["      {}"]
        expected[logical] = ("E9003", name)
    assert len(expected) > len(schema["required"]), "no property constraint tested"
    path = tmp_path / "generated.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = lint(path)

    missed = []
    for logical, (rule, name) in expected.items():
        prefix = f"Resources/{logical}/Properties/{name}"
        if not any(f.rule == rule and f.message.startswith(prefix) for f in result.findings):
            missed.append(f"{logical}: {rule} at {prefix}")
    assert not missed, "not reported:\n" + "\n".join(missed) + "\n" + result.report()


def test_registry_schemas_option_alone_checks_no_property(tmp_path):
    """Why the rules exist: cfn-lint 1.58.0 with --registry-schemas passes this template.

    If this starts failing, cfn-lint validates registry types itself now: its E3002,
    E3003, ... would report the same problems as E9002, E9003, ...: revisit the rules.
    """
    path = template(
        tmp_path,
        """
        Resources:
          Run:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: shop
              Countt: 3
              Timeout: -5
        """,
    )
    result = run(["--registry-schemas", "cfn/registry-schemas", "--", str(path)])
    assert result.returncode == 0 and not result.findings, result.report()
    without_schemas = run(["--", str(path)])
    assert without_schemas.rules() == ["E3006"], without_schemas.report()


BAD = """
Resources:
  Run:
    Type: Org::ECS::TaskRun
    Properties:
      Cluster: shop
      Countt: 3
      Timeout: -5
"""


def test_option_order_and_the_file_name_swallowing_pitfall(tmp_path):
    path = template(tmp_path, BAD)
    expected = ["E9002", "E9003", "E9005"]
    assert sorted(lint(path).rules()) == expected

    # Template first, option after: the same.
    after = run([str(path), "--append-rules", RULES])
    assert sorted(after.rules()) == expected, after.report()

    # --registry-schemas as well (needless, harmless): the same, nothing twice.
    both = run(["--registry-schemas", "cfn/registry-schemas", "--append-rules", RULES, "--", str(path)])
    assert sorted(both.rules()) == expected, both.report()

    # As a module name (cfn/ on PYTHONPATH): the same.
    module = run(["--append-rules", "cfnlint_taskrun", "--", str(path)], env={"PYTHONPATH": "cfn"})
    assert sorted(module.rules()) == expected, module.report()

    # Without `--`, --append-rules (nargs +) takes the template for a rules module: cfn-lint
    # stops with an error (it does not lint the template, and does not pass either).
    swallowed = run(["--append-rules", RULES, str(path)])
    assert swallowed.returncode != 0 and not swallowed.findings
    assert "Tried to append rules but got an error" in swallowed.stderr


def test_agrees_with_cfn_lint_own_rules_where_they_would_apply(tmp_path):
    """Wherever cfn-lint's own E30xx rules, made to see the registry schema (the
    monkeypatch of ProviderSchemaManager.get_resource_schemas_by_regions that these rules
    make unnecessary), find a problem, these rules find one too."""
    path = template(
        tmp_path,
        """
        Resources:
          Run:
            Type: Org::ECS::TaskRun
            Properties:
              Cluster: shop
              Countt: 3
              Timeout: -5
              LaunchType: fargate
              Instances: []
              Overrides:
                TaskRoleArn: migrate-role
                ContainerOverrides:
                  - Nam: app
                    Cpu: -1
              CapacityProviderStrategy:
                - CapacityProvider: FARGATE
              Tags:
                - Key: "aws:reserved"
                  Value: v
          Restart:
            Type: Org::ECS::ServiceRestart
            Properties:
              Servic: api
              WaitFor: READY
              PollInterval: 0
        """,
    )
    patched = """
import sys
from cfnlint.schema.manager import ProviderSchemaManager
original = ProviderSchemaManager.get_resource_schemas_by_regions
def by_regions(self, resource_type, regions):
    if resource_type in self._registry_schemas:
        yield list(regions), self._registry_schemas[resource_type]
        return
    yield from original(self, resource_type, regions)
ProviderSchemaManager.get_resource_schemas_by_regions = by_regions
from cfnlint.runner import main
sys.exit(main())
"""
    proc = subprocess.run(
        [sys.executable, "-c", patched, "--registry-schemas", "cfn/registry-schemas",
         "--format", "json", "--", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    theirs = [m for m in json.loads(proc.stdout) if m["ParentId"] is None]
    ours = json.loads(run(["--append-rules", RULES, "--format", "json", "--", str(path)]).stdout)

    def lines(matches, prefix):
        return {
            m["Location"]["Start"]["LineNumber"]
            for m in matches
            if m["Rule"]["Id"].startswith(prefix)
        }

    their_lines, our_lines = lines(theirs, "E3"), lines(ours, "E9")
    assert their_lines, theirs
    assert their_lines <= our_lines, (sorted(their_lines - our_lines), theirs, ours)
