"""The machinery of the request checks: the pinned API models (aws_models/), the walk of a request
body against its operation's input shape, the Refusal AWS answers, and the registry of the
documented limits the models lack (limits_ecs.py, limits_logs.py, limits_ssm.py; none yet for
EventBridge). The entry point, and which exception each service uses, is aws_rules.py."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import regex  # the models' patterns use \\p{L}-style classes, which `re` does not know

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.join(HERE, "aws_models")
MODEL_FILES = {"ecs": "ecs-2014-11-13.json", "events": "events-2015-10-07.json", "logs": "logs-2014-03-28.json",
               "ssm": "ssm-2014-11-06.json"}
# X-Amz-Target prefixes of the four services (the models' metadata.targetPrefix)
TARGET_PREFIXES = {"AmazonEC2ContainerServiceV20141113": "ecs", "AWSEvents": "events", "Logs_20140328": "logs",
                   "AmazonSSM": "ssm"}
# The exception a model constraint violation comes back as (see aws_rules.py).
# EventBridge: ValidationException, "The input fails to satisfy the constraints specified by an AWS
# service" (HTTP 400), per "Amazon EventBridge API Reference, Common Errors".
VALIDATION_EXCEPTION = {"ecs": "InvalidParameterException", "events": "ValidationException",
                        "logs": "InvalidParameterException", "ssm": "ValidationException"}
_MISSING = object()


@dataclass
class Violation:
    path: str  # the member, as AWS names it: tags.3.member.key
    rule: str  # the constraint it breaks (never the value)
    length: int | None = None  # of the offending value (characters, items or bytes), for reports
    value: Any = _MISSING  # for AWS's message only; _MISSING when it must not be shown


class Refusal(Exception):
    """A request AWS refuses: `code` is the exception name, `message` what AWS says (it may quote
    values, as AWS does), `violations` the offending members without their values."""

    def __init__(self, code: str, message: str, violations: list[Violation], status: int = 400,
                 extra: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.violations = violations
        self.status = status
        self.extra = extra or {}

    def safe_lines(self) -> list[str]:
        """One line per violation with member path, rule and length, never a value."""
        out = []
        for v in self.violations or [Violation("(request)", "refused")]:
            size = f" (length {v.length})" if v.length is not None else ""
            out.append(f"{v.path}: {v.rule}{size}")
        return out


# ---------------------------------------------------------------------- the models
class Model:
    def __init__(self, service: str):
        with open(os.path.join(MODELS_DIR, MODEL_FILES[service])) as f:
            data = json.load(f)
        self.service = service
        self.shapes: dict = data["shapes"]
        self.operations: dict = data["operations"]
        self._patterns: dict[str, Any] = {}

    def input_shape(self, operation: str) -> str | None:
        op = self.operations.get(operation)
        return (op.get("input") or {}).get("shape") if op else None

    def pattern(self, text: str) -> Any:
        compiled = self._patterns.get(text)
        if compiled is None:
            compiled = self._patterns[text] = regex.compile(text)
        return compiled


_MODELS: dict[str, Model] = {}


def model(service: str) -> Model:
    if service not in _MODELS:
        _MODELS[service] = Model(service)
    return _MODELS[service]


def service_of_target(target: str) -> tuple[str, str] | None:
    """("ecs", "RunTask") for "AmazonEC2ContainerServiceV20141113.RunTask"; None for others."""
    prefix, _, op = target.partition(".")
    service = TARGET_PREFIXES.get(prefix)
    return (service, op) if service and op else None


# ---------------------------------------------------------------------- model walk
class _TypeError(Exception):
    def __init__(self, path: str, expected: str):
        super().__init__(path)
        self.path = path
        self.expected = expected


def _json_type_ok(kind: str, value: Any) -> bool:
    if kind == "structure" or kind == "map":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("double", "float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "timestamp":  # epoch seconds in JSON protocols; ISO strings are read too
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    if kind == "blob":
        return isinstance(value, str)
    return True


def _scalar_rules(m: Model, shape: dict, value: Any) -> list[tuple[str, int | None]]:
    """The constraints of a scalar or a collection's size that `value` breaks."""
    kind = shape["type"]
    broken: list[tuple[str, int | None]] = []
    if kind in ("string", "list", "map", "blob"):
        size = len(value)
        if "min" in shape and size < shape["min"]:
            broken.append((f"Member must have length greater than or equal to {shape['min']}", size))
        if "max" in shape and size > shape["max"]:
            broken.append((f"Member must have length less than or equal to {shape['max']}", size))
    if kind in ("integer", "long", "double", "float"):
        if "min" in shape and value < shape["min"]:
            broken.append((f"Member must have value greater than or equal to {shape['min']}", None))
        if "max" in shape and value > shape["max"]:
            broken.append((f"Member must have value less than or equal to {shape['max']}", None))
    if kind == "string":
        if "pattern" in shape and not m.pattern(shape["pattern"]).fullmatch(value):
            broken.append((f"Member must satisfy regular expression pattern: {shape['pattern']}", len(value)))
        if "enum" in shape and value not in shape["enum"]:
            broken.append((f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]", len(value)))
    return broken


def _walk(m: Model, shape_name: str, value: Any, path: str, out: list[Violation], sensitive: bool) -> None:
    shape = m.shapes[shape_name]
    kind = shape["type"]
    if not _json_type_ok(kind, value):
        raise _TypeError(path or "(body)", kind)
    sensitive = sensitive or bool(shape.get("sensitive"))
    shown = _MISSING if sensitive else value
    for rule, size in _scalar_rules(m, shape, value):
        out.append(Violation(path, rule, size, shown))
    if kind == "structure":
        members = shape.get("members", {})
        for name in shape.get("required", []):
            if value.get(name) is None:
                out.append(Violation(_join(path, name), "Member must not be null", None, None))
        for name, member in members.items():
            item = value.get(name)
            if item is not None:
                _walk(m, member["shape"], item, _join(path, name), out, sensitive or bool(member.get("sensitive")))
    elif kind == "list":
        member = shape["member"]["shape"]
        for i, item in enumerate(value):
            if item is None:
                continue
            _walk(m, member, item, f"{path}.{i + 1}.member", out, sensitive)
    elif kind == "map":
        key_shape, value_shape = m.shapes[shape["key"]["shape"]], shape["value"]["shape"]
        key_rules: set[str] = set()
        value_rules: set[str] = set()
        for key, item in value.items():
            key_rules.update(rule for rule, _ in _scalar_rules(m, key_shape, key))
            if item is not None:
                inner: list[Violation] = []
                _walk(m, value_shape, item, path, inner, sensitive)
                value_rules.update(v.rule for v in inner)
        if key_rules:
            out.append(Violation(path, f"Map keys must satisfy constraint: [{', '.join(sorted(key_rules))}]",
                                 len(value), shown))
        if value_rules:
            out.append(Violation(path, f"Map value must satisfy constraint: [{', '.join(sorted(value_rules))}]",
                                 len(value), shown))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _java(value: Any) -> str:
    """A value as AWS's (Java) validation messages print it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java(v)}" for k, v in value.items()) + "}"
    return str(value)


def validation_message(violations: list[Violation], lower_names: bool = False) -> str:
    """AWS's wording: "2 validation errors detected: Value 'x' at 'a' failed to satisfy constraint:
    Member must ...; Value null at 'b' failed to satisfy constraint: Member must not be null".
    SSM names members in lowerCamelCase there ("at 'value'", its wire name being Value)."""
    parts = []
    for v in violations:
        path = ".".join(p[:1].lower() + p[1:] for p in v.path.split(".")) if lower_names else v.path
        if v.value is _MISSING:
            shown = "Value"
        elif v.value is None:
            shown = "Value null"
        else:
            shown = f"Value '{_java(v.value)}'"
        parts.append(f"{shown} at '{path}' failed to satisfy constraint: {v.rule}")
    n = len(violations)
    return f"{n} validation error{'s' if n != 1 else ''} detected: " + "; ".join(parts)


# ECS's own words for a tag key or value outside its character set (prefect-archive/prefect-aws#223).
ECS_TAG_CHARACTERS = ("Some tags contain invalid characters. Valid characters: UTF-8 letters, spaces, numbers "
                      "and _ . / = + - : @.")


def check_model(service: str, operation: str, body: Any) -> Refusal | None:
    m = model(service)
    shape = m.input_shape(operation)
    if shape is None:
        return None  # not an operation of the model (the service answers it; we do not guess)
    out: list[Violation] = []
    try:
        _walk(m, shape, body if body is not None else {}, "", out, False)
    except _TypeError as e:
        return Refusal("SerializationException", f"Unexpected JSON type at '{e.path}': expected {e.expected}",
                       [Violation(e.path, f"must be a JSON {e.expected}")])
    if not out:
        return None
    if service == "ecs" and all(".key" in v.path or ".value" in v.path for v in out) and all(
            "regular expression" in v.rule for v in out):
        return Refusal(VALIDATION_EXCEPTION[service], ECS_TAG_CHARACTERS, out)
    return Refusal(VALIDATION_EXCEPTION[service], validation_message(out, lower_names=service == "ssm"), out)


# ---------------------------------------------------------------------- documented limits
@dataclass
class Context:
    """What a few rules need besides the body."""
    region: str = "us-east-1"
    account: str = "123456789012"
    now_ms: int | None = None


@dataclass
class Rule:
    service: str
    operations: tuple[str, ...]  # () = every operation of the service
    check: Callable[[dict, Context, str], Refusal | None]
    source: str = field(default="")  # where it comes from, for the README table


RULES: list[Rule] = []


def rule(service: str, *operations: str, source: str = "") -> Callable:
    def register(fn: Callable) -> Callable:
        RULES.append(Rule(service, tuple(operations), fn, source))
        return fn
    return register


def refuse(code: str, message: str, path: str, rule_text: str, length: int | None = None,
           value: Any = _MISSING, **extra: Any) -> Refusal:
    return Refusal(code, message, [Violation(path, rule_text, length, value)], extra=extra or None)
