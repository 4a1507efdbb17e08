"""Documented SSM Parameter Store limits the API model does not carry, each with the page it comes from."""

from __future__ import annotations

import re

from aws_model import Context, Refusal, Violation, refuse, rule, validation_message

IPE = "InvalidParameterException"

# ---- SSM Parameter Store
SSM_NAME_MESSAGE = ('Parameter name: can\'t be prefixed with "ssm" (case-insensitive). If formed as a path, it '
                    'can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of '
                    'letters, numbers and the following 3 symbols .-_')
SSM_NAME_CHARS = re.compile(r"[a-zA-Z0-9_.\-/]+")
STANDARD_VALUE = 4096
ADVANCED_VALUE = 8192


def _ssm_name_problem(name: str, creating: bool) -> str | None:
    # SSM API Reference, PutParameter, Name: "Parameter names can include only the following
    # symbols and letters: a-zA-Z0-9_.- In addition, the slash character ( / ) is used to delineate
    # hierarchies"; "Parameter names can't contain spaces."; "A parameter name can't be prefixed
    # with "aws" or "ssm" (case-insensitive)."; "For parameters in a hierarchy, you must include a
    # leading forward slash character (/)". AWS answers all of these with the ValidationException
    # message SSM_NAME_MESSAGE (aws-ia/terraform-aws-control_tower_account_factory#467,
    # boto/boto3#1499 for a name with spaces, localstack/localstack#7712 for GetParameter).
    # The prefix rule is read for the first path segment (so "/aws-x/..." is refused too, the
    # stricter reading; unverified which one SSM applies) and only when creating: GetParameter
    # reads AWS's public parameters under /aws/service/.
    stripped = name.strip(" ")  # "The service removes any spaces specified for the beginning or end"
    if not SSM_NAME_CHARS.fullmatch(stripped):
        return "only a-zA-Z0-9_.- and / (no spaces)"
    if "/" in stripped and not stripped.startswith("/"):
        return "a hierarchy must begin with /"
    if "//" in stripped or (stripped.endswith("/") and len(stripped) > 1):
        return "empty path segment"
    if creating and stripped.lstrip("/")[:3].lower() in ("aws", "ssm"):
        return "must not begin with aws or ssm (any case)"
    return None


@rule("ssm", "PutParameter", source="PutParameter Name/Value/Tier/Tags; parameter-store-advanced-parameters; "
      "observed aws-ia/terraform-aws-control_tower_account_factory#467, hashicorp/terraform-provider-aws#18521")
def _ssm_put(body: dict, ctx: Context, op: str) -> Refusal | None:
    name = body.get("Name")
    if isinstance(name, str):
        problem = _ssm_name_problem(name, creating=True)
        if problem:
            return refuse("ValidationException", SSM_NAME_MESSAGE, "Name", problem, len(name), name)
        # PutParameter, Name: "Parameter hierarchies are limited to a maximum depth of fifteen
        # levels." Modelled error HierarchyLevelLimitExceededException ("A hierarchy can have a
        # maximum of 15 levels."; the message wording is unverified).
        levels = len([part for part in name.strip(" ").split("/") if part])
        if levels > 15:
            return refuse("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels.",
                          "Name", "at most 15 levels", levels)
        # PutParameter, Name: "The maximum length for a parameter name that you specify is 1011
        # characters. This count of 1011 characters includes the characters in the ARN that precede
        # the name you specify" (e.g. arn:aws:ssm:us-east-2:111122223333:parameter/). Wording unverified.
        prefix = f"arn:{_partition(ctx.region)}:ssm:{ctx.region}:{ctx.account}:parameter"
        prefix += "" if name.strip(" ").startswith("/") else "/"
        if len(prefix) + len(name.strip(" ")) > 1011:
            return refuse("ValidationException", "Parameter name is too long: with the ARN before it, a parameter "
                          "name can have at most 1011 characters.", "Name", "ARN prefix + name at most 1011 characters",
                          len(name))
    # PutParameter, Tags: "To add tags to an existing Systems Manager parameter, use the
    # AddTagsToResource operation." With Overwrite, SSM answers ValidationException "Invalid
    # request: tags and overwrite can't be used together. ..." (the wording moto 5.2.5 reproduces;
    # the facts review lists "Overwrite: true without Tags (the two cannot be combined)").
    if body.get("Overwrite") is True and body.get("Tags"):
        return refuse("ValidationException", "Invalid request: tags and overwrite can't be used together. To create a "
                      "parameter with tags, please remove overwrite flag. To update tags for an existing parameter, "
                      "please use AddTagsToResource or RemoveTagsFromResource.", "Tags", "not with Overwrite true",
                      len(body["Tags"]))
    value = body.get("Value")
    if not isinstance(value, str):
        return None
    # PutParameter, Value: the model (botocore 1.44.5) gives no minimum length, but SSM refuses an
    # empty value: ValidationException "1 validation error detected: Value at 'value' failed to
    # satisfy constraint: Member must have length greater than or equal to 1"
    # (ministryofjustice/modernisation-platform#8116).
    if not value:
        return refuse("ValidationException", validation_message(
            [Violation("Value", "Member must have length greater than or equal to 1")], lower_names=True),
            "Value", "Member must have length greater than or equal to 1", 0)
    # PutParameter, Value: "Standard parameters have a value limit of 4 KB. Advanced parameters have
    # a value limit of 8 KB." Tier: "If you don't specify a tier in a request, Parameter Store
    # assigns the tier based on the current Parameter Store default tier configuration. The default
    # tier when you begin using Parameter Store is the standard-parameter tier." With
    # Intelligent-Tiering, "The content size of the parameter is more than 4 KB" makes it Advanced
    # (terraform-provider-aws#25174 acceptance tests create such parameters; an earlier report of a
    # refusal, #18521, was the provider's own default). AWS's message for a Standard value over the
    # limit: "Standard tier parameters support a maximum parameter value of 4096 characters. ..."
    # (terraform-provider-aws#18521). The doc says KB, the message characters: we count UTF-8 bytes,
    # the stricter reading. The message above 8 KB is unverified.
    size = len(value.encode())
    tier = body.get("Tier") or "Standard"
    limit = STANDARD_VALUE if tier == "Standard" else ADVANCED_VALUE
    if size > limit:
        if limit == STANDARD_VALUE:
            text = ("Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger "
                    "parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, "
                    "see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
        else:
            text = "Advanced tier parameters support a maximum parameter value of 8192 characters."
        return refuse("ValidationException", text, "Value", f"at most {limit} bytes for tier {tier}", size)
    # PutParameter, Value: "Parameters can't be referenced or nested in the values of other
    # parameters. You can't include values wrapped in double brackets {{}} or {{ssm:parameter-name}}
    # in a parameter value." (exception and wording unverified; ValidationException)
    if re.search(r"\{\{.*?\}\}", value, re.S):
        return refuse("ValidationException", "Parameter value can't include values wrapped in double brackets {{}}.",
                      "Value", "no {{...}} in the value", size)
    return None


@rule("ssm", "GetParameter", "DeleteParameter", source="GetParameter/DeleteParameter Name; observed localstack/localstack#7712")
def _ssm_name(body: dict, ctx: Context, op: str) -> Refusal | None:
    name = body.get("Name")
    if not isinstance(name, str) or name.startswith("arn:"):
        return None
    if op == "GetParameter":
        # GetParameter, Name: "To query by parameter label, use "Name": "name:label". To query by
        # parameter version, use "Name": "name:version"."
        name = name.split(":", 1)[0]
    problem = _ssm_name_problem(name, creating=False)
    if problem:
        return refuse("ValidationException", SSM_NAME_MESSAGE, "Name", problem, len(name), name)
    return None


@rule("ssm", "GetParametersByPath", source="GetParametersByPath Path")
def _ssm_path(body: dict, ctx: Context, op: str) -> Refusal | None:
    # SSM API Reference, GetParametersByPath, Path: "Hierarchies start with a forward slash (/).
    # ... A parameter name hierarchy can have a maximum of 15 levels." (wording unverified)
    path = body.get("Path")
    if not isinstance(path, str):
        return None
    if not path.startswith("/") or _ssm_name_problem(path.rstrip("/") or "/", creating=False):
        return refuse("ValidationException", "The parameter doesn't meet the parameter name requirements. The parameter "
                      "name must begin with a forward slash \"/\".", "Path", "a path beginning with /", len(path), path)
    levels = len([part for part in path.split("/") if part])
    if levels > 15:
        return refuse("ValidationException", "A hierarchy can have a maximum of 15 levels.", "Path",
                      "at most 15 levels", levels)
    return None


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
