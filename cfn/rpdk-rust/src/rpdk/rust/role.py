"""Least privilege for the execution role template `cfn generate` writes.

cloudformation-cli renders resource-role.yaml with one statement that allows
every handler permission of the schema on `Resource: "*"`. `restrict_role`
splits that statement, keeping the file otherwise byte for byte as cfn wrote it:

- `ssm:*` actions: only on the parameters under the record path
  (`arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter<PATH>` and
  `.../parameter<PATH>/*`), except ssm:DescribeParameters, which IAM cannot
  scope to a resource;
- `iam:PassRole`: still on "*", but only with the condition
  `StringEquals: {iam:PassedToService: <services>}`;
- everything else (e.g. ecs:*, logs:GetLogEvents) stays on "*".

The output depends only on the input text and the settings, and a second pass
over its own output changes nothing.
"""
import re
from typing import Iterable, List, Optional, Union

import yaml

POLICY_NAME = "ResourceTypePolicy"
PARAMETER_ARN = "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter"
# SSM actions that support no resource-level permission: they must stay on "*"
SSM_UNSCOPED = {"ssm:describeparameters"}
PARAMETER_PATH = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
SERVICE = re.compile(r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$")

# the statement list of ResourceTypePolicy, as cfn's resource-role.yml renders it
_STATEMENTS = re.compile(
    r"^(?P<head>(?P<outer> *)- PolicyName: " + POLICY_NAME + r"\n"
    r"(?P=outer)  PolicyDocument:\n"
    r"(?:(?P=outer)    Version: .*\n)?"
    r"(?P<indent>(?P=outer)    )Statement:\n)"
    r"(?P<body>(?:(?P=indent) .*\n)*)",
    re.M,
)


class RoleError(ValueError):
    """A setting this module cannot use; the message says which and why."""


def normalize_parameter_path(path):
    """'/org-ecs-taskrun/runs' (a leading / added, a trailing / removed)."""
    if path is None:
        return None
    if not isinstance(path, str):
        raise RoleError(f"recordParameterPath must be a string, not {path!r}")
    value = path.strip()
    if not value:
        return None
    value = "/" + value.strip("/")
    if not PARAMETER_PATH.match(value) or len(value) > 1011:
        raise RoleError(
            f"recordParameterPath {path!r} is not an SSM parameter path such as "
            "'/my-type/records' (letters, digits, '.', '-', '_' between '/')"
        )
    return value


def normalize_services(services):
    """A sorted tuple of service principals from a string or a list of them."""
    if services is None or services == "" or services == []:
        return ()
    if isinstance(services, str):
        services = [services]
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise RoleError(
            f"passRoleToService must be a string or a list of strings, not {services!r}"
        )
    result = sorted({s.strip() for s in services})
    for service in result:
        if not SERVICE.match(service):
            raise RoleError(
                f"passRoleToService {service!r} is not a service principal such as "
                "'ecs-tasks.amazonaws.com'"
            )
    return tuple(result)


def policy_statements(document):
    """The Statement list of ResourceTypePolicy in a parsed role template."""
    try:
        role = document["Resources"]["ExecutionRole"]["Properties"]
        for policy in role["Policies"]:
            if policy.get("PolicyName") == POLICY_NAME:
                return policy["PolicyDocument"]["Statement"]
    except (KeyError, TypeError):
        pass
    return None


def _actions(statement):
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def restrict_role(
    text: str,
    parameter_path: Optional[str] = None,
    pass_role_services: Union[str, Iterable[str], None] = (),
) -> str:
    """resource-role.yaml text with the statements split as the module says.

    The text comes back unchanged when there is nothing to restrict (no path and
    no service), when the policy denies (a schema without permissions) or when
    the file is not shaped the way cfn writes it.
    """
    parameter_path = normalize_parameter_path(parameter_path)
    if not isinstance(pass_role_services, (str, type(None))):
        pass_role_services = list(pass_role_services)
    services = normalize_services(pass_role_services)
    match = _STATEMENTS.search(text)
    statements = policy_statements(yaml.safe_load(text))
    if match is None or not statements:
        return text
    if any(not isinstance(s, dict) or s.get("Effect") != "Allow" for s in statements):
        return text

    actions = sorted({a for s in statements for a in _actions(s)})
    general, pass_role, ssm = [], [], []
    for action in actions:
        low = action.lower()
        if parameter_path and low.startswith("ssm:") and low not in SSM_UNSCOPED:
            ssm.append(action)
        elif services and low == "iam:passrole":
            pass_role.append(action)
        else:
            general.append(action)

    pad = " " * (len(match.group("indent")) + 2)
    lines: List[str] = []

    def statement(acts, resources=None, condition=None):
        lines.append(f"{pad}- Effect: Allow")
        lines.append(f"{pad}  Action:")
        lines.extend(f'{pad}  - "{a}"' for a in acts)
        if resources is None:
            lines.append(f'{pad}  Resource: "*"')
        else:
            lines.append(f"{pad}  Resource:")
            lines.extend(f'{pad}  - Fn::Sub: "{r}"' for r in resources)
        if condition:
            key, values = condition
            lines.append(f"{pad}  Condition:")
            lines.append(f"{pad}    StringEquals:")
            if len(values) == 1:
                lines.append(f"{pad}      {key}: {values[0]}")
            else:
                lines.append(f"{pad}      {key}:")
                lines.extend(f"{pad}        - {v}" for v in values)

    if general:
        statement(general)
    if pass_role:
        statement(pass_role, condition=("iam:PassedToService", list(services)))
    if ssm:
        arn = PARAMETER_ARN + parameter_path
        statement(ssm, resources=[arn, arn + "/*"])

    body = "".join(line + "\n" for line in lines)
    result = text[: match.start("body")] + body + text[match.end("body") :]

    # the rewrite must grant exactly the actions it was given
    after = policy_statements(yaml.safe_load(result)) or []
    if sorted(a for s in after for a in _actions(s)) != actions:
        raise RoleError("rewriting resource-role.yaml lost or duplicated an action")
    return result
