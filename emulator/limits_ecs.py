"""Documented ECS limits the API model does not carry, each with the page it comes from.

Registered with aws_model.rule; aws_rules.check runs them after the model checks."""

from __future__ import annotations

import json
import re

from aws_model import Context, Refusal, refuse, rule

IPE = "InvalidParameterException"

# ---- ECS: tags
@rule("ecs", source="RunTask/StartTask/CreateService/TagResource API reference, tags")
def _ecs_tags(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, RunTask, tags: "Do not use aws:, AWS:, or any upper or lowercase
    # combination of such as a prefix for either keys or values as it is reserved for Amazon Web
    # Services use." ECS's answer for a key: InvalidParameterException "Tag key must not start with
    # aws:" (observed from RegisterContainerInstance, aws/amazon-ecs-agent#1704); the wording for a
    # value and for RunTask is unverified.
    # Same page: "For each resource, each tag key must be unique, and each tag key can have only one
    # value." Whether ECS refuses a request repeating a key (rather than keeping one) is unverified;
    # we refuse it.
    tags = body.get("tags")
    if not isinstance(tags, list):
        return None
    seen: set[str] = set()
    for i, tag in enumerate(tags):
        if not isinstance(tag, dict):
            continue
        for member in ("key", "value"):
            text = tag.get(member)
            if isinstance(text, str) and text[:4].lower() == "aws:":
                return refuse(IPE, f"Tag {member} must not start with aws:", f"tags.{i + 1}.member.{member}",
                              "must not begin with aws: (any case)", len(text))
        key = tag.get("key")
        if isinstance(key, str):
            if key in seen:
                return refuse(IPE, "Tag keys must be unique.", f"tags.{i + 1}.member.key",
                              "each tag key must be unique", len(key))
            seen.add(key)
    return None


# ---- ECS: cluster names
CLUSTER_NAME = re.compile(r"[a-zA-Z0-9\-_]{1,255}")


@rule("ecs", source="observed: awslabs/amazon-ecs-nodejs-microservices#18; CreateCluster clusterName")
def _ecs_cluster_name(body: dict, ctx: Context, op: str) -> Refusal | None:
    # A `cluster` given by name must be a cluster name: ECS answers InvalidParameterException
    # "Cluster must match ^[a-zA-Z0-9\-_]{1,255}$, but was <value>" (observed on DescribeServices,
    # awslabs/amazon-ecs-nodejs-microservices#18). CreateCluster, clusterName: "Up to 255 letters
    # (uppercase and lowercase), numbers, underscores, and hyphens are allowed." (its refusal
    # wording is unverified; we use the observed one.)
    for member in ("cluster", "clusterName") if op == "CreateCluster" else ("cluster",):
        value = body.get(member)
        if isinstance(value, str) and not value.startswith("arn:") and not CLUSTER_NAME.fullmatch(value):
            return refuse(IPE, f"Cluster must match ^[a-zA-Z0-9\\-_]{{1,255}}$, but was {value}", member,
                          "must match ^[a-zA-Z0-9\\-_]{1,255}$ (or be an ARN)", len(value), value)
    return None


NAME_255 = re.compile(r"[a-zA-Z0-9_\-]{1,255}")


@rule("ecs", "CreateService", "RegisterTaskDefinition", source="CreateService serviceName; RegisterTaskDefinition family")
def _ecs_names(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, CreateService, serviceName and RegisterTaskDefinition, family: "Up to 255
    # letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed." The
    # refusal's wording is unverified.
    member = "serviceName" if op == "CreateService" else "family"
    value = body.get(member)
    if isinstance(value, str) and not NAME_255.fullmatch(value):
        return refuse(IPE, f"{member} must be up to 255 letters (uppercase and lowercase), numbers, underscores, "
                      "and hyphens.", member, "up to 255 of [a-zA-Z0-9_-]", len(value), value)
    return None


# ---- ECS: RunTask / StartTask
@rule("ecs", "RunTask", source="RunTask count")
def _ecs_count(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, RunTask, count: "You can specify up to 10 tasks for each call." (the model
    # has no range; the refusal's wording is unverified)
    count = body.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and not 1 <= count <= 10:
        return refuse(IPE, "Count must be between 1 and 10.", "count", "must be 1 to 10", None, count)
    return None


@rule("ecs", "StartTask", source="StartTask containerInstances")
def _ecs_start_instances(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, StartTask, containerInstances: "You can specify up to 10 container
    # instances." (wording of the refusal unverified)
    refs = body.get("containerInstances")
    if isinstance(refs, list) and not 1 <= len(refs) <= 10:
        text = "Container Instances cannot be empty." if not refs else "Container Instances cannot be more than 10."
        return refuse(IPE, text, "containerInstances", "must hold 1 to 10 items", len(refs))
    return None


@rule("ecs", "RunTask", "StartTask", source="RunTask/StartTask overrides; observed convox/rack#1906")
def _ecs_overrides(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, RunTask and StartTask, overrides: "A total of 8192 characters are allowed
    # for overrides. This limit includes the JSON formatting characters of the override structure."
    # ECS answers InvalidParameterException "Container Overrides length must be at most 8192"
    # (convox/rack#1906, artilleryio/artillery#2584). We count the characters of the overrides as
    # compact JSON, the way SDKs serialize them.
    overrides = body.get("overrides")
    if overrides is None:
        return None
    size = len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False))
    if size > 8192:
        return refuse(IPE, "Container Overrides length must be at most 8192", "overrides",
                      "at most 8192 characters of JSON", size)
    # RunTask, TaskOverride.ephemeralStorage.sizeInGiB: "The minimum supported value is 21 GiB and
    # the maximum supported value is 200 GiB." (wording of the refusal unverified)
    storage = overrides.get("ephemeralStorage") if isinstance(overrides, dict) else None
    size_gib = storage.get("sizeInGiB") if isinstance(storage, dict) else None
    if isinstance(size_gib, int) and not 21 <= size_gib <= 200:
        return refuse(IPE, "The ephemeral storage size must be between 21 and 200 GiB.",
                      "overrides.ephemeralStorage.sizeInGiB", "must be 21 to 200", None, size_gib)
    return None


STARTED_BY = re.compile(r"[A-Za-z0-9_/\-]*")


@rule("ecs", "RunTask", "StartTask", source="RunTask/StartTask startedBy; observed convox/rack#1727")
def _ecs_started_by(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, RunTask, startedBy: "Up to 128 letters (uppercase and lowercase), numbers,
    # hyphens (-), forward slash (/), and underscores (_) are allowed." StartTask: "Up to 36 ...".
    # ECS answers InvalidParameterException "startedBy longer than 36." (convox/rack#1727, when
    # RunTask's limit was 36). The character set is enforced as documented, although ECS accepted
    # "abc:def" in 2016 (boto/boto3#877); the refusal's wording for characters is unverified.
    value = body.get("startedBy")
    if not isinstance(value, str):
        return None
    limit = 128 if op == "RunTask" else 36
    if len(value) > limit:
        return refuse(IPE, f"startedBy longer than {limit}.", "startedBy", f"at most {limit} characters", len(value))
    if not STARTED_BY.fullmatch(value):
        return refuse(IPE, "startedBy contains invalid characters.", "startedBy",
                      "only letters, numbers, hyphens, forward slashes and underscores", len(value))
    return None


@rule("ecs", "RunTask", "CreateService", source="RunTask clientToken; CreateService clientToken")
def _ecs_client_token(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, RunTask, clientToken: "Up to 64 characters are allowed. The valid
    # characters are characters in the range of 33-126, inclusive." CreateService, clientToken:
    # "Up to 36 ASCII characters in the range of 33-126 (inclusive) are allowed." (wording of the
    # refusal unverified)
    token = body.get("clientToken")
    if not isinstance(token, str):
        return None
    limit = 64 if op == "RunTask" else 36
    if not 1 <= len(token) <= limit or any(not 33 <= ord(ch) <= 126 for ch in token):
        return refuse(IPE, f"clientToken must be 1 to {limit} characters in the range 33-126.", "clientToken",
                      f"1 to {limit} characters in the range 33-126", len(token))
    return None


@rule("ecs", "RunTask", source="RunTask propagateTags")
def _ecs_propagate_tags(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, RunTask, propagateTags: "An error will be received if you specify the
    # SERVICE option when running a task." (exception and wording unverified; InvalidParameterException)
    if body.get("propagateTags") == "SERVICE":
        return refuse(IPE, "propagateTags SERVICE is not supported for RunTask.", "propagateTags",
                      "SERVICE is refused when running a task", None, "SERVICE")
    return None


# ---- ECS: capacity provider strategy, placement, network
@rule("ecs", "RunTask", "CreateService", "UpdateService", source="RunTask launchType/capacityProviderStrategy; "
      "CapacityProviderStrategyItem; observed terraform-aws-modules/terraform-aws-ecs#27")
def _ecs_capacity_strategy(body: dict, ctx: Context, op: str) -> Refusal | None:
    strategy = body.get("capacityProviderStrategy")
    if not isinstance(strategy, list) or not strategy:
        return None
    # RunTask, launchType: "If a launchType is specified, the capacityProviderStrategy parameter
    # must be omitted." (wording of the refusal unverified)
    if body.get("launchType"):
        return refuse(IPE, "Specify either Launch Type or Capacity Provider Strategy, but not both.", "launchType",
                      "must be omitted with a capacityProviderStrategy")
    # RunTask, capacityProviderStrategy: "A capacity provider strategy can contain a maximum of 20
    # capacity providers."
    if len(strategy) > 20:
        return refuse(IPE, "A capacity provider strategy can contain a maximum of 20 capacity providers.",
                      "capacityProviderStrategy", "at most 20 items", len(strategy))
    items = [item for item in strategy if isinstance(item, dict)]
    # CapacityProviderStrategyItem, weight: "The default value is 0 if not specified ... At least
    # one capacity provider must have a weight greater than zero." ECS's words for a cluster's
    # default strategy: "There are no capacity providers with a weight value greater than zero
    # defined in the default capacity provider strategy. ..." (terraform-aws-modules/
    # terraform-aws-ecs#27); for a strategy in the request the wording is unverified.
    if not any(isinstance(i.get("weight"), int) and i["weight"] > 0 for i in items):
        return refuse(IPE, "There are no capacity providers with a weight value greater than zero defined in the "
                      "capacity provider strategy. At least one capacity provider must have a weight value "
                      "greater than zero specified.", "capacityProviderStrategy",
                      "at least one item needs weight > 0 (an omitted weight is 0)", len(strategy))
    # CapacityProviderStrategyItem, base: "Only one capacity provider in a capacity provider
    # strategy can have a base defined." (we read "defined" as base > 0, the default being 0;
    # wording of the refusal unverified)
    with_base = [i for i, item in enumerate(items) if isinstance(item.get("base"), int) and item["base"] > 0]
    if len(with_base) > 1:
        return refuse(IPE, "Only one capacity provider in a capacity provider strategy can have a base defined.",
                      f"capacityProviderStrategy.{with_base[1] + 1}.member.base", "only one item may have base > 0")
    return None


@rule("ecs", "RunTask", "CreateService", "UpdateService", source="RunTask placementConstraints/placementStrategy; "
      "PlacementConstraint expression")
def _ecs_placement(body: dict, ctx: Context, op: str) -> Refusal | None:
    # RunTask, placementConstraints: "You can specify up to 10 constraints for each task";
    # placementStrategy: "You can specify a maximum of 5 strategy rules for each task."
    # PlacementConstraint, expression: "The expression can have a maximum length of 2000
    # characters. You can't specify an expression if the constraint type is distinctInstance."
    # (wording of the refusals unverified)
    constraints = body.get("placementConstraints")
    if isinstance(constraints, list):
        if len(constraints) > 10:
            return refuse(IPE, "You can specify up to 10 placement constraints.", "placementConstraints",
                          "at most 10 items", len(constraints))
        for i, item in enumerate(constraints):
            if not isinstance(item, dict) or not isinstance(item.get("expression"), str):
                continue
            path = f"placementConstraints.{i + 1}.member.expression"
            if len(item["expression"]) > 2000:
                return refuse(IPE, "The expression can have a maximum length of 2000 characters.", path,
                              "at most 2000 characters", len(item["expression"]))
            if item.get("type") == "distinctInstance":
                return refuse(IPE, "You can't specify an expression if the constraint type is distinctInstance.",
                              path, "no expression with distinctInstance", len(item["expression"]))
    strategies = body.get("placementStrategy")
    if isinstance(strategies, list) and len(strategies) > 5:
        return refuse(IPE, "You can specify a maximum of 5 strategy rules.", "placementStrategy",
                      "at most 5 items", len(strategies))
    return None


@rule("ecs", "RunTask", "StartTask", "CreateService", "UpdateService", source="AwsVpcConfiguration subnets/securityGroups")
def _ecs_awsvpc(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, AwsVpcConfiguration: subnets "There's a limit of 16 subnets that can be
    # specified."; securityGroups "There's a limit of 5 security groups that can be specified."
    # (wording of the refusals unverified)
    network = body.get("networkConfiguration")
    awsvpc = network.get("awsvpcConfiguration") if isinstance(network, dict) else None
    if not isinstance(awsvpc, dict):
        return None
    for member, limit in (("subnets", 16), ("securityGroups", 5)):
        items = awsvpc.get(member)
        if isinstance(items, list) and len(items) > limit:
            return refuse(IPE, f"There's a limit of {limit} {member} that can be specified.",
                          f"networkConfiguration.awsvpcConfiguration.{member}", f"at most {limit} items", len(items))
    return None


# ---- ECS: describe / list / stop
@rule("ecs", "DescribeTasks", source="DescribeTasks tasks; observed convox/rack#1908")
def _ecs_describe_tasks(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, DescribeTasks, tasks: "A list of up to 100 task IDs or full ARN entries."
    # An empty list: InvalidParameterException "Tasks cannot be empty." (observed, convox/rack#1908);
    # the wording for more than 100 is unverified.
    tasks = body.get("tasks")
    if isinstance(tasks, list):
        if not tasks:
            return refuse(IPE, "Tasks cannot be empty.", "tasks", "at least 1 item", 0)
        if len(tasks) > 100:
            return refuse(IPE, "Tasks cannot have more than 100 elements", "tasks", "at most 100 items", len(tasks))
    return None


@rule("ecs", "DescribeServices", source="DescribeServices services")
def _ecs_describe_services(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, DescribeServices, services: "You may specify up to 10 services to describe
    # in a single operation." (wording unverified)
    services = body.get("services")
    if isinstance(services, list) and not 1 <= len(services) <= 10:
        return refuse(IPE, "Services cannot be empty." if not services else
                      "Services cannot have more than 10 elements", "services", "1 to 10 items", len(services))
    return None


@rule("ecs", "ListTasks", source="ListTasks startedBy/maxResults; observed aws/aws-sdk-go-v2#1893")
def _ecs_list_tasks(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, ListTasks, startedBy: "When you specify startedBy as the filter, it must be
    # the only filter that you use." ECS answers InvalidParameterException "cannot specify startedBy
    # with other arguments" when family or launchType come with it (aws/aws-sdk-go-v2#1893).
    # desiredStatus is accepted with startedBy: observed, not documented (Apache Airflow's ECS
    # operator has sent both since 2023 with no report of a refusal). daemonName is a filter too
    # (its refusal is unverified).
    if body.get("startedBy") is not None:
        for other in ("family", "containerInstance", "serviceName", "launchType", "daemonName"):
            if body.get(other) is not None:
                return refuse(IPE, "cannot specify startedBy with other arguments", other,
                              "not allowed together with startedBy")
    # ListTasks, maxResults: "This value can be between 1 and 100." (wording unverified)
    max_results = body.get("maxResults")
    if isinstance(max_results, int) and not isinstance(max_results, bool) and not 1 <= max_results <= 100:
        return refuse(IPE, "maxResults must be between 1 and 100.", "maxResults", "must be 1 to 100", None, max_results)
    return None


@rule("ecs", "StopTask", source="StopTask reason (earlier reference text)")
def _ecs_stop_reason(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, StopTask, reason, as published until the model text was shortened (e.g.
    # AWS SDK for Ruby v2 API reference, StopTaskRequest#reason): "Up to 255 characters are allowed
    # in this message." The current reference no longer states a limit; we keep the documented one
    # (wording of the refusal unverified).
    reason = body.get("reason")
    if isinstance(reason, str) and len(reason) > 255:
        return refuse(IPE, "Reason cannot be longer than 255 characters.", "reason", "at most 255 characters",
                      len(reason))
    return None


SHORT_SERVICE_ARN = re.compile(r"arn:[^:]+:ecs:[^:]+:\d+:service/[^/]+")


@rule("ecs", "TagResource", "UntagResource", source="TagResource resourceArn; observed aws/amazon-ecs-cli#735 et al.")
def _ecs_tag_short_service_arn(body: dict, ctx: Context, op: str) -> Refusal | None:
    # ECS API Reference, TagResource, resourceArn: "In order to tag a service that has the
    # following ARN format, you need to migrate the service to the long ARN ...
    # arn:aws:ecs:region:aws_account_id:service/service-name ... If you try to tag a service with a
    # short ARN, you receive an InvalidParameterException error." ECS's words: "Long arn format
    # must be used for tagging operations" (hashicorp/terraform-provider-aws#35867, boto/boto3#2473).
    arn = body.get("resourceArn")
    if isinstance(arn, str) and SHORT_SERVICE_ARN.fullmatch(arn):
        return refuse(IPE, "Long arn format must be used for tagging operations", "resourceArn",
                      "a service's long ARN (service/<cluster>/<name>)", len(arn))
    return None
