"""cfn-lint rules for this project's CloudFormation Registry types.

Checks the properties of every resource whose type has a schema in cfn/registry-schemas/
(Org::ECS::TaskRun and Org::ECS::ServiceRestart, links to schema.json and
service-restart/schema.json) against that schema, and the attributes that Fn::GetAtt
(and ${Resource.Attribute} in Fn::Sub) asks of them:

    cfn-lint --append-rules cfn/cfnlint_taskrun -- template.yaml

cfn-lint 1.58.0 alone cannot: `--registry-schemas` makes the type known (no E3006), but
its property rules (E3002, E3003, E3012, ...) look schemas up through
ProviderSchemaManager.get_resource_schemas_by_regions(), which yields nothing for a
registry type, so no property of one is ever checked. These rules validate with the same
machinery as E3002 (a child of E1101 called for every resource, cfn-lint's intrinsic
function handling and condition scenarios) but with the type's own schema, and report
under their own ids (see RULE IDS in cfn/README.md).

cfn-lint loads this file standalone (`--append-rules DIR` imports each [A-Za-z1-9]*.py
under DIR as a top-level module), so it imports nothing from its own package.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import deque
from pathlib import Path
from typing import Any

from cfnlint.helpers import FUNCTIONS, is_function
from cfnlint.jsonschema import ValidationError, Validator
from cfnlint.jsonschema import _keywords as standard_keywords
from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.rules.jsonschema.CfnLintJsonSchema import CfnLintJsonSchema
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

# --- the schemas: the repository's own files, through the links in cfn/registry-schemas/ --

#: cfn/registry-schemas/: one link per type to its schema.json (never a copy).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "registry-schemas"

#: Where the rule ids are documented (the repository has no published URL).
DOCS = (Path(__file__).resolve().parent.parent / "README.md").as_uri() + "#rule-ids"


def _load_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not files:
        raise ImportError(
            f"cfnlint_taskrun: no resource schemas in {directory} (it should hold links to "
            "schema.json and service-restart/schema.json of the taskrun repository; pass "
            "--append-rules the cfn/cfnlint_taskrun directory of a checkout)"
        )
    for file in files:
        try:
            with open(file, encoding="utf-8") as fh:
                schema = json.load(fh)
        except (OSError, ValueError) as err:
            raise ImportError(
                f"cfnlint_taskrun: cannot read {file}: {err} (it is a symbolic link to the "
                "type's schema.json: a checkout made without links needs `git config "
                "core.symlinks true` and a fresh checkout)"
            ) from err
        schemas[schema["typeName"]] = schema
    return schemas


SCHEMAS = _load_schemas(SCHEMA_DIR)

# The type exists for cfn-lint's other rules too (no E3006 "Resource type ... does not
# exist"), as with `--registry-schemas cfn/registry-schemas`, which is thus not needed.
# cfn-lint loads --append-rules before --registry-schemas, and neither replaces the other.
PROVIDER_SCHEMA_MANAGER.load_registry_schemas(str(SCHEMA_DIR))
PROVIDER_SCHEMA_MANAGER.get_resource_types.cache_clear()


def _attributes(schema: dict[str, Any]) -> list[str]:
    """Fn::GetAtt's attributes of a registry type: its top-level read-only properties."""
    found = []
    for pointer in schema.get("readOnlyProperties", []):
        parts = pointer.split("/")
        if len(parts) == 3 and parts[1] == "properties":
            found.append(parts[2])
    return found


#: Words YAML 1.1 reads as booleans when unquoted (lower case).
_YAML11_WORDS = {"on", "off", "yes", "no", "true", "false", "y", "n"}


def _where(path) -> str:
    return "/".join(str(p) for p in path)


# --- the rules --------------------------------------------------------------------------


class _TaskRunRule(CloudFormationLintRule):
    """Common attributes (no id: cfn-lint skips a rule class without one)."""

    source_url = DOCS
    tags = ["resources", "properties", "taskrun"]


class UnknownProperty(_TaskRunRule):
    id = "E9002"
    shortdesc = "Org::ECS property is not in the type's schema"
    description = (
        "A property of Org::ECS::TaskRun or Org::ECS::ServiceRestart (or of one of its "
        "objects) that the type's schema does not define: a misspelt name, or a property "
        "of another resource type."
    )


class MissingRequired(_TaskRunRule):
    id = "E9003"
    shortdesc = "Org::ECS required property is missing"
    description = "A property the type's schema requires is absent."


class WrongType(_TaskRunRule):
    id = "E9004"
    shortdesc = "Org::ECS property value has the wrong type"
    description = (
        "A value of the wrong JSON type. As CloudFormation passes scalars as strings, and "
        "the handlers convert them as the schema says, an integer may be written 5 or "
        "'5', a boolean true or 'true' (any case); a string property takes any scalar."
    )

    # Replaces the `type` keyword while this rule's parent validates: the handlers'
    # coercion (crates/cfn-protocol/src/lenient.rs), no more, no less lenient.
    def type(self, validator: Validator, types: Any, instance: Any, schema: Any):
        types = types if isinstance(types, list) else [types]
        if any(_is_type(validator, t, instance) for t in types):
            return
        wanted = " or ".join(types)
        yield ValidationError(f"{instance!r} is not of type {wanted}")


_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _is_type(validator: Validator, wanted: str, value: Any) -> bool:
    if wanted in ("object", "array", "null"):
        return validator.is_type(value, wanted)
    if isinstance(value, (dict, list)) or value is None:
        return False
    if wanted == "string":
        return True
    if wanted == "boolean":
        if isinstance(value, bool):
            return True
        return isinstance(value, str) and value.strip().lower() in ("true", "false")
    if isinstance(value, bool):
        return False
    if wanted == "integer":
        if isinstance(value, float):  # 5.0 is read as 5 (up to 2^53, where floats stay exact)
            return math.isfinite(value) and value == int(value) and abs(value) <= 2**53
        if isinstance(value, str):
            if not _INTEGER.fullmatch(value.strip()):
                return False
            value = int(value.strip())
        return isinstance(value, int) and -(2**63) <= value < 2**63  # an i64
    if wanted == "number":
        if isinstance(value, (int, float)):
            return isinstance(value, int) or math.isfinite(value)
        return isinstance(value, str) and bool(_FLOAT.fullmatch(value.strip()))
    return False


class OutOfRange(_TaskRunRule):
    id = "E9005"
    shortdesc = "Org::ECS number is out of range"
    description = "A number below the schema's minimum or above its maximum."


class BadLength(_TaskRunRule):
    id = "E9006"
    shortdesc = "Org::ECS string or list has the wrong length"
    description = "A string or a list shorter or longer than the schema allows."


class NotAllowed(_TaskRunRule):
    id = "E9007"
    shortdesc = "Org::ECS value is not one of the allowed values"
    description = "A value outside the schema's enum (the values are case sensitive)."


class NoMatch(_TaskRunRule):
    id = "E9008"
    shortdesc = "Org::ECS string does not match the pattern"
    description = "A string that does not match the schema's pattern."


class AnyOfRule(_TaskRunRule):
    id = "E9009"
    shortdesc = "Org::ECS properties break a rule of the type"
    description = (
        "Properties that together break one of the type's anyOf rules (for "
        "Org::ECS::TaskRun: LaunchType and CapacityProviderStrategy exclude each other); "
        "the message is the rule's description in the schema."
    )

    # Replaces `anyOf`: the schema describes each rule; a failing rule says that, and not
    # "... is not valid under any of the given schemas" followed by every branch's errors.
    def anyOf(self, validator: Validator, any_of: Any, instance: Any, schema: Any):
        for err in standard_keywords.anyOf(validator, any_of, instance, schema):
            if not getattr(err, "unknown", False):
                said = []
                for branch in any_of:
                    text = branch.get("description") if isinstance(branch, dict) else None
                    if text and text not in said:
                        said.append(text)
                if said:
                    err.message = " / ".join(said)
                else:
                    err.message = "the properties match none of the schema's anyOf rules"
                err.context = []
            yield err


class NotUnique(_TaskRunRule):
    id = "E9010"
    shortdesc = "Org::ECS list has duplicate items"
    description = "A list whose items the schema requires to be unique has duplicates."


class UnknownAttribute(_TaskRunRule):
    id = "E9011"
    shortdesc = "Org::ECS resource has no such attribute"
    description = (
        "Fn::GetAtt (or ${Resource.Attribute} in Fn::Sub) of an attribute that the "
        "Org::ECS type does not return (its attributes are its read-only properties)."
    )

    def match(self, cfn):
        matches = []
        resources = cfn.template.get("Resources", {})
        if not isinstance(resources, dict):
            return matches

        def check(path, name, attribute):
            resource = resources.get(name)
            if not isinstance(resource, dict):
                return  # cfn-lint's own E1010 reports a missing resource
            schema = SCHEMAS.get(resource.get("Type"))
            if schema is None:
                return
            known = _attributes(schema)
            if attribute in known:
                return
            hint = difflib.get_close_matches(attribute, known, n=1)
            hint_text = f"did you mean {hint[0]!r}? " if hint else ""
            matches.append(
                RuleMatch(
                    path,
                    f"{_where(path)}: {schema['typeName']} {name!r} has no attribute "
                    f"{attribute!r} ({hint_text}its attributes: {', '.join(known)})",
                )
            )

        for found in cfn.search_deep_keys("Fn::GetAtt"):
            path, value = list(found[:-1]), found[-1]
            if isinstance(value, str) and "." in value:
                name, attribute = value.split(".", 1)
            elif (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, str) for v in value)
            ):
                name, attribute = value
            else:
                continue
            check(path, name, attribute)

        for found in cfn.search_deep_keys("Fn::Sub"):
            path, value = list(found[:-1]), found[-1]
            variables: dict = {}
            if isinstance(value, list) and value and isinstance(value[0], str):
                if len(value) > 1 and isinstance(value[1], dict):
                    variables = value[1]
                value = value[0]
            if not isinstance(value, str):
                continue
            for variable in re.findall(r"\$\{([^!}][^}]*)\}", value):
                variable = variable.strip()
                if variable in variables or "." not in variable:
                    continue
                name, attribute = variable.split(".", 1)
                check(path, name, attribute)
        return matches


class ReadOnlyProperty(_TaskRunRule):
    id = "W9001"
    shortdesc = "Org::ECS read-only property set in the template"
    description = (
        "A property the resource sets itself (Status, Output, Id, ...): read it with "
        "Fn::GetAtt; a value written in the template is not passed to the handler."
    )


class RegistryTypeProperties(CfnLintJsonSchema):
    """E3002 for this project's registry types."""

    id = "E9001"
    shortdesc = "Org::ECS resource properties are invalid"
    description = (
        "Validates the properties of Org::ECS::TaskRun and Org::ECS::ServiceRestart "
        "resources against the types' own schemas (schema.json, "
        "service-restart/schema.json). Violations are reported under E9002-E9010 and "
        "W9001; E9001 itself covers any other schema keyword."
    )
    source_url = DOCS
    tags = ["resources", "properties", "taskrun"]

    def __init__(self):
        super().__init__(keywords=["Resources/*"], all_matches=True)
        self.rule_set = {
            "additionalProperties": "E9002",
            "required": "E9003",
            "type": "E9004",
            "minimum": "E9005",
            "maximum": "E9005",
            "exclusiveMinimum": "E9005",
            "exclusiveMaximum": "E9005",
            "minLength": "E9006",
            "maxLength": "E9006",
            "minItems": "E9006",
            "maxItems": "E9006",
            "enum": "E9007",
            "pattern": "E9008",
            "anyOf": "E9009",
            "uniqueItems": "E9010",
            "readOnly": "W9001",
        }
        self.child_rules = dict.fromkeys(list(self.rule_set.values()))

    def validate(self, validator: Validator, _, instance: Any, schema: Any):
        if not validator.is_type(instance, "object"):
            return
        type_name = instance.get("Type")
        if not isinstance(type_name, str) or type_name not in SCHEMAS:
            return
        properties = instance.get("Properties", {})
        # Not an object: cfn-lint's E3002 says so, whatever the type.
        if not validator.is_type(properties, "object"):
            return
        # !Ref AWS::NoValue as the whole Properties: E3002 says so, whatever the type.
        if is_function(properties) == ("Ref", "AWS::NoValue"):
            return
        type_schema = SCHEMAS[type_name]

        resolved_conditions = {}
        if validator.is_type(instance.get("Condition"), "string"):
            resolved_conditions = {instance.get("Condition"): True}
        resource_path = list(validator.context.path.path)
        validator = validator.evolve(
            context=validator.context.evolve(
                functions=list(FUNCTIONS),
                strict_types=False,
                conditions=validator.context.conditions.evolve(resolved_conditions),
                path=validator.context.path.evolve(
                    cfn_path=deque(["Resources", type_name, "Properties"]),
                ).descend(path="Properties"),
            ),
            function_filter=validator.function_filter.evolve(
                add_cfn_lint_keyword=False,
            ),
        )
        validator = self.extend_validator(
            validator, type_schema, validator.context.evolve()
        )
        base = resource_path + ["Properties"]
        for err in self._validate(validator, properties):
            self._explain(err, base, type_name)
            err.path.appendleft("Properties")
            yield err

        read_only = self.child_rules.get("W9001")
        if read_only is not None:
            attributes = _attributes(type_schema)
            for key in properties:
                if key in attributes:
                    yield ValidationError(
                        f"{_where(base + [key])}: read-only property of {type_name}, set "
                        f"by the resource (read it with !GetAtt {resource_path[-1]}.{key}); "
                        "the value here is not passed to the handler",
                        path=deque(["Properties", key]),
                        rule=read_only,
                        validator="readOnly",
                    )

    def _explain(self, err: ValidationError, base: list, type_name: str) -> None:
        """Names the property path in the message of an error of this rule's ids."""
        for sub in err.context:
            self._explain(sub, base, type_name)
        ours = set(self.rule_set.values()) | {self.id}
        if err.rule is None or getattr(err.rule, "id", None) not in ours:
            return  # an intrinsic function's own rule (E1010, E1019, ...): its message
        path = [p for p in err.path]
        where = _where(base + path)
        odd_keys = []
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            odd_keys = [k for k in err.instance if not isinstance(k, str)]
        if odd_keys:
            # YAML 1.1 (cfn-lint's reader, and CloudFormation's) reads an unquoted On, Off,
            # Yes, No, True or False as a boolean, a number as a number: never as the name
            # of a property such as RetryPolicy's On. (cfn-lint's own message here is an
            # exception raised by its additionalProperties on such a key.)
            shown = ", ".join(repr(k) for k in odd_keys)
            known = [k for k in (err.schema or {}).get("properties", {}) or {}]
            names = [k for k in known if k.lower() in _YAML11_WORDS]
            err.message = (
                f"{where}: a key of this object is read as {shown}, not as a property "
                f"name: YAML reads an unquoted On, Off, Yes, No, True or False as a boolean; "
                + (
                    f"quote the property name ({', '.join(repr(n) for n in names)})"
                    if names
                    else "quote the key"
                )
            )
            err.rule = self.child_rules.get("E9002") or err.rule
        elif err.validator == "additionalProperties" and path:
            extra = path[-1]
            known = list((err.schema or {}).get("properties", {}) or {})
            hint = difflib.get_close_matches(str(extra), known, n=1, cutoff=0.6)
            err.message = f"{where}: unknown property {extra!r} of {type_name}" + (
                f" (did you mean {hint[0]!r}?)" if hint else ""
            )
        elif err.validator == "required":
            match = re.match(r"'(.*)' is a required property", err.message)
            name = match.group(1) if match else "?"
            err.message = f"{_where(base + path + [name])}: required property of {type_name} is missing"
        else:
            err.message = f"{where}: {err.message}"
