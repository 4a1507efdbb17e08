"""Least privilege for the execution role template `cfn generate` writes.

Why it matters. A resource type's execution role (RegisterType `ExecutionRoleArn`) is
assumed by CloudFormation "to create a temporary session token, which it then passes to
the resource type handler" for every operation of every stack that uses the type in the
account (and, through the trust policy cfn renders, in the region it was registered in).
Whatever the role may do, anyone who may create a stack there may have done through the
type, whatever their own IAM permissions say.
  https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_RegisterType.html

What cfn writes. cloudformation-cli renders resource-role.yaml with one statement that
allows every handler permission of the schema on `Resource: "*"`. `rewrite_role` splits
that statement into one statement per kind of resource, each scoped by the settings of
`.rpdk-config` (see `normalize_execution_role`), and leaves the rest of the file byte for
byte as cfn wrote it. Every Resource pattern and every ARN a Condition compares with is
built with `Fn::Sub` from `${AWS::Partition}` and `${AWS::AccountId}`: the role never
reaches another account. ECS patterns also carry `${AWS::Region}`, the region the role
serves (cfn's trust policy only lets the type registered in that region assume it, and
the handler calls ECS in the stack's region).

The statements (Sid: actions -> Resource, Condition), from the Service Authorization
Reference (SAR) pages cited:

- NoResourceLevelPermissions: ecs:DescribeTaskDefinition and ssm:DescribeParameters ->
  "*". The SAR lists no resource type for them ("If there is no value for this column,
  you must specify all resources ("*")"): a Resource pattern would deny them. Actions this
  module does not know also stay here (with a warning): it cannot guess their ARNs.
- LaunchTasks: ecs:RunTask, ecs:StartTask -> task-definition/<family>:* (resource type
  `task-definition*`, ARN `arn:${Partition}:ecs:${Region}:${Account}:task-definition/
  ${TaskDefinitionFamilyName}:${TaskDefinitionRevisionNumber}`), Condition ArnLike
  ecs:cluster (an ARN-typed key both actions support).
- TasksInClusters: ecs:DescribeTasks, ecs:StopTask -> task/* (resource type `task*`),
  Condition ArnLike ecs:cluster (supported by both). The cluster goes in the condition,
  not in the ARN, because tasks started before the long ARN format have no cluster in
  their ARN (`task/<id>`).
- ListTasksInClusters: ecs:ListTasks -> "*" with Condition ArnLike ecs:cluster. The SAR
  names the resource type `container-instance*`, but ListTasks on a cluster names no
  container instance; ECS's own example and awsdocs/amazon-ecs-developer-guide#211 use
  "*" with the ecs:cluster condition, which is what confines it (to the account too).
- TagTasksAtLaunch: ecs:TagResource -> task/*, Condition StringEquals ecs:CreateAction
  [RunTask, StartTask]: RunTask and StartTask list ecs:TagResource as a dependent action
  when tags are given, and ecs:CreateAction ("the name of a resource-creating API
  action") limits the permission to tagging at creation, so the role cannot tag any
  existing ECS resource. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/
  supported-iam-actions-tagging.html (A schema with ecs:TagResource but neither launch
  action gets TagResources: any ECS resource of the account and region.)
- ServicesInClusters: ecs:DescribeServices, ecs:UpdateService -> service/<cluster>/<name>
  (resource type `service*`, ARN `...:service/${ClusterName}/${ServiceName}`), Condition
  ArnLike ecs:cluster (supported by both).
- PassRoles: iam:PassRole -> role/<path/name> (resource type `role*`, ARN
  `arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}`), Condition StringEquals
  iam:PassedToService. iam:AssociatedResourceArn is not used: only the services that
  document it set it, we found no ECS documentation of it (the task does not exist yet
  when RunTask passes its roles), and a condition on an absent key denies.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
- ReadTaskLogs: logs:GetLogEvents -> log-group:<name> and log-group:<name>:* (the SAR
  names the `log-stream*` resource type, `...:log-group:${LogGroupName}:log-stream:
  ${LogStreamName}`; both forms are listed so the log group ARN matches too). Any region:
  a container's awslogs-region may differ from the stack's, and the handler reads there.
- ReadStacks: cloudformation:DescribeStacks -> stack/*/* of the account in the role's
  region (resource type `stack*`, ARN `arn:${Partition}:cloudformation:${Region}:
  ${Account}:stack/${StackName}/${Id}`): a handler reads the status of the stack it
  serves (TaskRun's AdoptExisting), never another account's.
- SendEvents: events:PutEvents -> event-bus/* of the account, any region (resource type
  `event-bus*`, ARN `arn:${Partition}:events:${Region}:${Account}:event-bus/
  ${EventBusName}`; list_amazoneventbridge.html): the bus is a property of each resource
  (TaskRun's Events), so the role cannot name it; a narrower role names the bus.
- RecordParameters: the ssm: actions -> parameter<recordParameterPath> and .../* (resource
  type `parameter*`), or every parameter of the account without that setting (SSM
  parameters can be shared across accounts, so "*" would reach further).

SAR pages: https://docs.aws.amazon.com/service-authorization/latest/reference/
list_amazonelasticcontainerservice.html, list_awsidentityandaccessmanagementiam.html,
list_amazoncloudwatchlogs.html, list_awssystemsmanager.html, list_awscloudformation.html (their action, resource type
and condition key tables were read as mirrored, machine-readable, in
github.com/iann0036/iam-dataset aws/iam_definition.json and in cfn-lint's
data/AdditionalSpecs/Policies.json); ECS examples (RunTask with ecs:cluster, ListTasks on
"*"): https://docs.aws.amazon.com/AmazonECS/latest/developerguide/
security_iam_id-based-policy-examples.html

The output depends only on the input text and the settings, and a second pass over its
own output changes nothing.
"""
import json
import re
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import yaml

POLICY_NAME = "ResourceTypePolicy"
PARTITION, ACCOUNT, REGION = "${AWS::Partition}", "${AWS::AccountId}", "${AWS::Region}"
PARAMETER_ARN = f"arn:{PARTITION}:ssm:*:{ACCOUNT}:parameter"
ECS_ARN = f"arn:{PARTITION}:ecs:{REGION}:{ACCOUNT}:"
PARAMETER_PATH = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
SERVICE = re.compile(r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$")
# IAM allows 10,240 characters (whitespace not counted) for all inline policies of a role
MAX_POLICY_CHARS = 10240

# settings.executionRole in .rpdk-config
EXECUTION_ROLE = "executionRole"
CLUSTERS = "clusters"
FAMILIES = "taskDefinitionFamilies"
PASS_ROLES = "passRoles"
LOG_GROUPS = "logGroups"
SERVICES = "services"
SETTING_NAMES = (CLUSTERS, FAMILIES, PASS_ROLES, LOG_GROUPS, SERVICES)

# the actions each rule knows, lower case (IAM action names are case-insensitive)
NO_RESOURCE_LEVEL = {"ecs:describetaskdefinition", "ssm:describeparameters"}
LAUNCH = {"ecs:runtask", "ecs:starttask"}
CREATE_ACTIONS = {"ecs:runtask": "RunTask", "ecs:starttask": "StartTask"}
TASKS = {"ecs:describetasks", "ecs:stoptask"}
LIST_TASKS = {"ecs:listtasks"}
TAG = {"ecs:tagresource"}
SERVICE_ACTIONS = {"ecs:describeservices", "ecs:updateservice"}
# resource type `service-deployment*`: arn:${Partition}:ecs:${Region}:${Account}:
# service-deployment/${ClusterName}/${ServiceName}/${ServiceDeploymentId} ("Permissions
# required for viewing Amazon ECS service deployments", ECS developer guide)
SERVICE_DEPLOYMENT_ACTIONS = {"ecs:describeservicedeployments", "ecs:listservicedeployments"}
PASS_ROLE = {"iam:passrole"}
LOGS = {"logs:getlogevents"}
STACKS = {"cloudformation:describestacks"}
EVENTS = {"events:putevents"}
# which settings narrow which actions (to report settings without effect)
SETTING_ACTIONS = {
    CLUSTERS: LAUNCH | TASKS | LIST_TASKS | SERVICE_ACTIONS,
    FAMILIES: LAUNCH,
    PASS_ROLES: PASS_ROLE,
    LOG_GROUPS: LOGS,
    SERVICES: SERVICE_ACTIONS,
}
# iam:PassRole next to RunTask/StartTask: the roles go to ECS tasks
ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"

# names as the services allow them, plus the IAM wildcards * and ?
ECS_NAME = r"[A-Za-z0-9_*?-]{1,255}"  # cluster, service, task definition family
ROLE_PATH_NAME = r"[A-Za-z0-9_+=,.@*?-]+(?:/[A-Za-z0-9_+=,.@*?-]+)*"
LOG_GROUP_NAME = r"[A-Za-z0-9_#./*?-]{1,512}"
REGION_PART = r"\$\{AWS::Region\}|\*|[a-z]{2}(?:-[a-z]+)+-\d+"
_PART = r"(?:\$\{AWS::[A-Za-z]+\}|[^:$])*"
_ARN = re.compile(
    rf"^arn:(?P<partition>{_PART}):(?P<service>{_PART}):(?P<region>{_PART}):"
    rf"(?P<account>{_PART}):(?P<resource>.+)$"
)

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


class Scope(NamedTuple):
    """settings.executionRole, as ARN patterns (Fn::Sub strings); `given` names the
    settings that were set (the others hold the default: all of the account)."""

    clusters: Tuple[str, ...]
    families: Tuple[str, ...]
    pass_roles: Tuple[str, ...]
    log_groups: Tuple[str, ...]
    services: Tuple[str, ...]
    given: Tuple[str, ...]


class Rewrite(NamedTuple):
    text: str
    defaulted: Tuple[str, ...]  # settings that apply to the actions but were not set
    unused: Tuple[str, ...]  # settings that were set but narrow none of the actions
    unscoped: Tuple[str, ...]  # actions this module does not know, left on "*"
    pass_role_services: Tuple[str, ...]  # iam:PassedToService values used


# ------------------------------------------------------------------ settings


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


def _arn(where: str, entry: str, service: str, resource: str, regional: bool):
    """(region, resource match) of an ARN entry in this account, or a RoleError."""
    match = _ARN.match(entry)
    if not match:
        raise RoleError(f"{where}: {entry!r} is not an ARN")
    if match["partition"] != PARTITION:
        raise RoleError(
            f"{where}: {entry!r}: write the partition as {PARTITION} (Fn::Sub fills it in)"
        )
    if match["account"] != ACCOUNT:
        raise RoleError(
            f"{where}: {entry!r} names account {match['account']!r}: the execution role "
            f"only acts in the account it is created in, write {ACCOUNT}"
        )
    if match["service"] != service:
        raise RoleError(f"{where}: {entry!r} is not a {service} ARN")
    region = match["region"]
    if regional and not re.fullmatch(REGION_PART, region):
        raise RoleError(
            f"{where}: {entry!r}: the region must be {REGION}, '*' or a region code"
        )
    if not regional and region:
        raise RoleError(f"{where}: {entry!r}: {service} ARNs have no region")
    found = re.fullmatch(resource, match["resource"])
    if not found:
        raise RoleError(f"{where}: {entry!r}: the resource part is not valid here")
    return region, found


def _cluster(where, entry):
    if entry.startswith("arn:"):
        _arn(where, entry, "ecs", rf"cluster/{ECS_NAME}", True)
        return [entry]
    if not re.fullmatch(ECS_NAME, entry):
        raise RoleError(
            f"{where}: {entry!r} is not a cluster name (letters, digits, '-', '_', "
            f"wildcards '*' '?') or an ARN {ECS_ARN}cluster/<name>"
        )
    return [f"{ECS_ARN}cluster/{entry}"]


def _family(where, entry):
    revision = r"(?::(?P<rev>[0-9]+|\*))?"
    if entry.startswith("arn:"):
        _, found = _arn(where, entry, "ecs", rf"task-definition/{ECS_NAME}{revision}", True)
        return [entry if found["rev"] else entry + ":*"]
    found = re.fullmatch(ECS_NAME + revision, entry)
    if not found:
        raise RoleError(
            f"{where}: {entry!r} is not a task definition family (letters, digits, "
            f"'-', '_', wildcards '*' '?'; optionally ':<revision>') or an ARN "
            f"{ECS_ARN}task-definition/<family>:<revision>"
        )
    return [f"{ECS_ARN}task-definition/{entry}" + ("" if found["rev"] else ":*")]


def _role(where, entry):
    prefix = f"arn:{PARTITION}:iam::{ACCOUNT}:role/"
    if entry.startswith("arn:"):
        _arn(where, entry, "iam", rf"role/{ROLE_PATH_NAME}", False)
        return [entry]
    name = entry[1:] if entry.startswith("/") else entry
    if not re.fullmatch(ROLE_PATH_NAME, name) or len(name) > 576:
        raise RoleError(
            f"{where}: {entry!r} is not a role name or path/name such as 'ecs-tasks/*' "
            f"(letters, digits, '+=,.@-_', '/' between path parts, wildcards '*' '?') "
            f"or an ARN {prefix}<path/name>"
        )
    return [prefix + name]


def _log_group(where, entry):
    if entry.startswith("arn:"):
        region, found = _arn(
            where, entry, "logs", rf"log-group:(?P<name>{LOG_GROUP_NAME})(?::\*)?", True
        )
        name = found["name"]
    else:
        region, name = "*", entry
        if not re.fullmatch(LOG_GROUP_NAME, name):
            raise RoleError(
                f"{where}: {entry!r} is not a log group name (letters, digits, "
                f"'_-/.#', wildcards '*' '?') or an ARN "
                f"arn:{PARTITION}:logs:<region>:{ACCOUNT}:log-group:<name>"
            )
    group = f"arn:{PARTITION}:logs:{region}:{ACCOUNT}:log-group:{name}"
    # the log group and its streams (log-group:<name>:log-stream:<stream>); a trailing
    # '*' already matches both
    return [group] if name.endswith("*") else [group, group + ":*"]


def _service(where, entry):
    if entry.startswith("arn:"):
        _arn(where, entry, "ecs", rf"service/{ECS_NAME}(?:/{ECS_NAME})?", True)
        return [entry]
    found = re.fullmatch(rf"(?:(?P<cluster>{ECS_NAME})/)?(?P<name>{ECS_NAME})", entry)
    if not found:
        raise RoleError(
            f"{where}: {entry!r} is not <cluster>/<service> or <service> (letters, "
            f"digits, '-', '_', wildcards '*' '?') or an ARN {ECS_ARN}service/<cluster>/<name>"
        )
    if found["cluster"] or entry == "*":
        return [f"{ECS_ARN}service/{entry}"]
    # any cluster, and the ARN of a service created before the long ARN format
    # (service/<name>, without the cluster)
    return [f"{ECS_ARN}service/*/{entry}", f"{ECS_ARN}service/{entry}"]


_KINDS = {
    CLUSTERS: _cluster,
    FAMILIES: _family,
    PASS_ROLES: _role,
    LOG_GROUPS: _log_group,
    SERVICES: _service,
}


def normalize_execution_role(value) -> Scope:
    """settings.executionRole ({"clusters": [...], ...}, each a string or a list of
    strings) as ARN patterns; a missing setting is the whole account (and region)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise RoleError(
            f"settings.{EXECUTION_ROLE} must be an object such as "
            f'{{"{CLUSTERS}": ["prod"]}}, not {value!r}'
        )
    unknown = sorted(set(value) - set(SETTING_NAMES))
    if unknown:
        raise RoleError(
            f"settings.{EXECUTION_ROLE}.{unknown[0]} is not a setting: use "
            + ", ".join(SETTING_NAMES)
        )
    patterns: Dict[str, Tuple[str, ...]] = {}
    given = []
    for name in SETTING_NAMES:
        build = _KINDS[name]
        where = f"settings.{EXECUTION_ROLE}.{name}"
        entries = value.get(name)
        if entries is None:
            # the default is what "*" gives: every one of the account
            patterns[name] = tuple(build(where, "*"))
            continue
        given.append(name)
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise RoleError(f"{where} must be a string or a list of strings, not {entries!r}")
        if not entries:
            raise RoleError(
                f"{where} is empty: it would allow nothing (leave it out for the "
                "default, everything of the account)"
            )
        result = set()
        for index, entry in enumerate(entries):
            entry = entry.strip()
            if not entry:
                raise RoleError(f"{where}[{index}] is empty")
            result.update(build(f"{where}[{index}]", entry))
        patterns[name] = tuple(sorted(result))
    return Scope(
        clusters=patterns[CLUSTERS],
        families=patterns[FAMILIES],
        pass_roles=patterns[PASS_ROLES],
        log_groups=patterns[LOG_GROUPS],
        services=patterns[SERVICES],
        given=tuple(given),
    )


# ----------------------------------------------------------------- template


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


class _Statement(NamedTuple):
    sid: str
    actions: List[str]
    resources: Optional[List[str]]  # None: "*"
    conditions: List[Tuple[str, str, List[str]]]  # (operator, key, values)


def _plan(actions, scope: Scope, parameter_path, services) -> List[_Statement]:
    def pick(names):
        return [a for a in actions if a.lower() in names]

    launch, tasks, listing = pick(LAUNCH), pick(TASKS), pick(LIST_TASKS)
    tag, service_actions = pick(TAG), pick(SERVICE_ACTIONS)
    deployment_actions = pick(SERVICE_DEPLOYMENT_ACTIONS)
    pass_role, logs, stacks = pick(PASS_ROLE), pick(LOGS), pick(STACKS)
    events = pick(EVENTS)
    ssm = [
        a
        for a in actions
        if a.lower().startswith("ssm:") and a.lower() not in NO_RESOURCE_LEVEL
    ]
    known = set(
        launch + tasks + listing + tag + service_actions + deployment_actions + pass_role
        + logs + stacks + ssm + events
    )
    unscoped = [a for a in actions if a not in known]

    in_clusters = ("ArnLike", "ecs:cluster", list(scope.clusters))
    plan = []
    if unscoped:
        plan.append(_Statement("NoResourceLevelPermissions", unscoped, None, []))
    if launch:
        plan.append(_Statement("LaunchTasks", launch, list(scope.families), [in_clusters]))
    if tasks:
        plan.append(_Statement("TasksInClusters", tasks, [f"{ECS_ARN}task/*"], [in_clusters]))
    if listing:
        plan.append(_Statement("ListTasksInClusters", listing, None, [in_clusters]))
    if tag:
        # the API names ECS puts in ecs:CreateAction (StringEquals is case-sensitive)
        created = sorted(CREATE_ACTIONS[a.lower()] for a in launch)
        if created:
            condition = [("StringEquals", "ecs:CreateAction", created)]
            plan.append(_Statement("TagTasksAtLaunch", tag, [f"{ECS_ARN}task/*"], condition))
        else:
            plan.append(_Statement("TagResources", tag, [f"{ECS_ARN}*"], []))
    if service_actions:
        plan.append(
            _Statement("ServicesInClusters", service_actions, list(scope.services), [in_clusters])
        )
    if deployment_actions:
        # the deployments of the services allowed: service/<cluster>/<name> ->
        # service-deployment/<cluster>/<name>/*; a short service ARN (no cluster) has no
        # deployment ARN of its own, its long form is already among the patterns
        deployments = sorted(
            {
                arn.replace(f"{ECS_ARN}service/", f"{ECS_ARN}service-deployment/", 1) + "/*"
                for arn in scope.services
                if arn.startswith(f"{ECS_ARN}service/")
                and (arn.count("/") >= 2 or arn == f"{ECS_ARN}service/*")
            }
        )
        plan.append(_Statement("ServiceDeployments", deployment_actions, deployments, []))
    if pass_role:
        condition = [("StringEquals", "iam:PassedToService", list(services))] if services else []
        plan.append(_Statement("PassRoles", pass_role, list(scope.pass_roles), condition))
    if logs:
        plan.append(_Statement("ReadTaskLogs", logs, list(scope.log_groups), []))
    if stacks:
        stack_arn = f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/*/*"
        plan.append(_Statement("ReadStacks", stacks, [stack_arn], []))
    if events:
        bus_arn = f"arn:{PARTITION}:events:*:{ACCOUNT}:event-bus/*"
        plan.append(_Statement("SendEvents", events, [bus_arn], []))
    if ssm:
        if parameter_path:
            arn = PARAMETER_ARN + parameter_path
            resources = [arn, arn + "/*"]
        else:
            resources = [PARAMETER_ARN + "/*"]
        plan.append(_Statement("RecordParameters", ssm, resources, []))
    return plan


def _value(value):
    # every value was validated: no '"', '\\' or '${' other than the AWS:: placeholders
    return f'Fn::Sub: "{value}"' if "${" in value else f'"{value}"'


def _render(plan: Sequence[_Statement], pad: str) -> str:
    lines: List[str] = []
    for stmt in plan:
        lines.append(f"{pad}- Sid: {stmt.sid}")
        lines.append(f"{pad}  Effect: Allow")
        lines.append(f"{pad}  Action:")
        lines.extend(f'{pad}  - "{a}"' for a in stmt.actions)
        if stmt.resources is None:
            lines.append(f'{pad}  Resource: "*"')
        else:
            lines.append(f"{pad}  Resource:")
            lines.extend(f"{pad}  - {_value(r)}" for r in stmt.resources)
        if stmt.conditions:
            lines.append(f"{pad}  Condition:")
            for operator, key, values in stmt.conditions:
                lines.append(f"{pad}    {operator}:")
                if len(values) == 1 and "${" not in values[0]:
                    lines.append(f"{pad}      {key}: {values[0]}")
                elif len(values) == 1:
                    lines.append(f"{pad}      {key}:")
                    lines.append(f"{pad}        {_value(values[0])}")
                else:
                    lines.append(f"{pad}      {key}:")
                    lines.extend(f"{pad}      - {_value(v)}" for v in values)
    return "".join(line + "\n" for line in lines)


def _sub_values(node):
    """The strings of a parsed Resource/Condition value, Fn::Sub unwrapped."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        return [node["Fn::Sub"]]
    if isinstance(node, list):
        return [v for item in node for v in _sub_values(item)]
    if isinstance(node, dict):
        return [v for item in node.values() for v in _sub_values(item)]
    return [repr(node)]


def account_confined(pattern: str) -> bool:
    """An ARN pattern of the role's own partition and account (Fn::Sub placeholders)."""
    match = _ARN.match(pattern)
    return bool(match) and match["partition"] == PARTITION and match["account"] == ACCOUNT


def check_confined(statements) -> None:
    """Every Resource is an ARN pattern of the account, or "*" for the actions that
    support no resource-level permission, or "*" under a condition that compares ARNs
    of the account (ListTasks with ecs:cluster)."""
    for statement in statements:
        resources = _sub_values(statement.get("Resource"))
        conditions = statement.get("Condition") or {}
        arn_conditions = [
            v for op, keys in conditions.items() if op.startswith("Arn") for v in _sub_values(keys)
        ]
        for resource in resources:
            if resource == "*":
                if statement.get("Sid") == "NoResourceLevelPermissions":
                    continue
                if arn_conditions and all(account_confined(v) for v in arn_conditions):
                    continue
                raise RoleError(
                    f"statement {statement.get('Sid')} allows {_actions(statement)} on "
                    "every resource, unconfined"
                )
            if not account_confined(resource):
                raise RoleError(f"resource {resource!r} is not confined to the account")


def _policy_chars(statements) -> int:
    """The policy's size as IAM counts it (no whitespace), placeholders at their
    longest values (aws-us-gov, a 12-digit account, ap-southeast-N)."""
    text = json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))
    text = re.sub(r'\{"Fn::Sub":("[^"]*")\}', r"\1", text)
    longest = ((PARTITION, "aws-us-gov"), (ACCOUNT, "1" * 12), (REGION, "ap-southeast-5"))
    for placeholder, value in longest:
        text = text.replace(placeholder, value)
    return len(re.sub(r"\s", "", text))


def rewrite_role(
    text: str,
    parameter_path: Optional[str] = None,
    pass_role_services: Union[str, Iterable[str], None] = (),
    execution_role: Optional[dict] = None,
) -> Rewrite:
    """resource-role.yaml text with the statements split as the module says.

    The text comes back unchanged when the policy denies (a schema without
    permissions), when the file is not shaped the way cfn writes it, or when nothing
    can be narrowed (every action unknown to this module).
    """
    parameter_path = normalize_parameter_path(parameter_path)
    if not isinstance(pass_role_services, (str, type(None))):
        pass_role_services = list(pass_role_services)
    services = normalize_services(pass_role_services)
    scope = normalize_execution_role(execution_role)

    match = _STATEMENTS.search(text)
    statements = policy_statements(yaml.safe_load(text))
    unchanged = Rewrite(text, (), (), (), ())
    if match is None or not statements:
        return unchanged
    if any(not isinstance(s, dict) or s.get("Effect") != "Allow" for s in statements):
        return unchanged

    # sorted case-insensitively, the same action once
    by_name: Dict[str, str] = {}
    for action in (a for s in statements for a in _actions(s)):
        by_name.setdefault(action.lower(), action)
    actions = [by_name[k] for k in sorted(by_name)]
    lowered = set(by_name)
    if not services and lowered & PASS_ROLE and lowered & LAUNCH:
        services = (ECS_TASKS_PRINCIPAL,)

    plan = _plan(actions, scope, parameter_path, services)
    unscoped = next((s.actions for s in plan if s.resources is None and not s.conditions), [])
    unknown = tuple(a for a in unscoped if a.lower() not in NO_RESOURCE_LEVEL)
    if len(plan) == 1 and plan[0].sid == "NoResourceLevelPermissions":
        return Rewrite(text, (), (), unknown, ())

    pad = " " * (len(match.group("indent")) + 2)
    result = text[: match.start("body")] + _render(plan, pad) + text[match.end("body") :]

    after = policy_statements(yaml.safe_load(result)) or []
    # the rewrite must grant exactly the actions it was given, each once
    if sorted(a for s in after for a in _actions(s)) != sorted(actions):
        raise RoleError("rewriting resource-role.yaml lost or duplicated an action")
    check_confined(after)
    size = _policy_chars(after)
    if size > MAX_POLICY_CHARS:
        raise RoleError(
            f"the role's policy would be about {size} characters, more than the "
            f"{MAX_POLICY_CHARS} IAM allows: use fewer, wider patterns in "
            f"settings.{EXECUTION_ROLE}"
        )

    relevant = {name for name, names in SETTING_ACTIONS.items() if lowered & names}
    return Rewrite(
        text=result,
        defaulted=tuple(n for n in SETTING_NAMES if n in relevant and n not in scope.given),
        unused=tuple(n for n in scope.given if n not in relevant),
        unscoped=unknown,
        pass_role_services=services if lowered & PASS_ROLE else (),
    )


def restrict_role(
    text: str,
    parameter_path: Optional[str] = None,
    pass_role_services: Union[str, Iterable[str], None] = (),
    execution_role: Optional[dict] = None,
) -> str:
    """The text of `rewrite_role`."""
    return rewrite_role(text, parameter_path, pass_role_services, execution_role).text
