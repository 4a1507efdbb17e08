#!/usr/bin/env python3
"""Converts the ecsTasks custom resources of a CloudFormation template to Org::ECS::TaskRun.

    .venv/bin/python cfn/ecstasks/convert.py INPUT [-o OUTPUT] [--report REPORT.json]
        [--service-token GLOB]... [--function LOGICAL_ID]... [--skip LOGICAL_ID]...
        [--remove-function] [--no-pin-timeout]

ecsTasks (lambda-ecs-tasks, Python 2.7) is a Lambda-backed custom resource that runs ECS
tasks. This script finds its resources (any `Custom::*` or
`AWS::CloudFormation::CustomResource` whose ServiceToken is the ecsTasks function), turns
each into `Org::ECS::TaskRun` with its properties mapped (PascalCase Overrides, real
booleans, ...) and `AdoptExisting: true`, so that deploying the converted template onto
the live stack runs no task: the new TaskRun takes its properties as the last successful
run. It names the function, role, log group (and whatever else only they used) for
removal in a later deployment. See cfn/ecstasks/README.md.

Exit status: 0 converted, or nothing to convert (said in the report); 1 something could
not be mapped (the output is still written, with what could not be mapped left in place
so that it does not validate until a person has looked; the report lists each);
2 the input is unreadable (missing, not YAML/JSON, not a template).
"""
from __future__ import annotations

import argparse
import copy
import fnmatch
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cfnyaml  # noqa: E402
from cfnyaml import Tagged, same  # noqa: E402

TASKRUN_TYPE = "Org::ECS::TaskRun"
ECS_TASKS_TIMEOUT_DEFAULT = 290  # ecsTasks' default (its Lambda ran at most 300 s)
TASKRUN_TIMEOUT_DEFAULT = 3600
TASKRUN_ATTRIBUTES = ("Id", "TaskArns", "Status", "StatusReason", "Tasks", "StartedAt", "FinishedAt", "Output")
LAMBDA_FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
CUSTOM_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"
# Resources that exist only to serve a function and may go with it: taken into the removal
# list only when nothing outside the list refers to them. Any other type is never removed.
SUPPORT_TYPES = (
    "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy",
    "AWS::Logs::LogGroup", "AWS::Logs::SubscriptionFilter", "AWS::Logs::MetricFilter",
    "AWS::Lambda::Permission", "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Version",
    "AWS::Lambda::Alias", "AWS::Lambda::Url",
)
RESOURCE_ATTRIBUTES_NOT_WALKED = ("Type", "Condition", "DeletionPolicy", "UpdateReplacePolicy", "DependsOn")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
ECS_TASKS_NAME = re.compile(r"ecs[-_ ]?tasks", re.IGNORECASE)
LAMBDA_ARN_SUB = re.compile(
    r"^arn:(?:aws[a-z-]*|\$\{AWS::Partition\}):lambda:(?:[a-z0-9-]+|\$\{AWS::Region\}):"
    r"(?:[0-9]{12}|\$\{AWS::AccountId\}):function:(.+)$"
)
SECRET = "(value not shown)"


# --- small helpers -----------------------------------------------------------------------


def is_intrinsic(value):
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(next(iter(value)), str)
        and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::"))
    )


def is_no_value(value):
    return isinstance(value, dict) and len(value) == 1 and value.get("Ref") == "AWS::NoValue"


def is_if(value):
    return (
        isinstance(value, dict)
        and len(value) == 1
        and isinstance(value.get("Fn::If"), list)
        and len(value["Fn::If"]) == 3
    )


def rebuild_if(original, branches):
    cond = original["Fn::If"][0]
    if isinstance(original, Tagged):
        return Tagged("Fn::If", [cond] + branches, original.tag, original.kind)
    return {"Fn::If": [cond] + branches}


def describe(value, limit=120):
    """A short one-line rendering of a template value for the report."""
    if isinstance(value, Tagged) and value.kind == "scalar":
        if value.key == "Fn::GetAtt" and isinstance(value.value, list):
            text = "%s %s" % (value.tag, ".".join(map(str, value.value)))
        else:
            text = "%s %s" % (value.tag, value.value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_text(value, params):
    """Text forms of a ServiceToken, for --service-token globs."""
    forms = []
    if isinstance(value, str):
        forms.append(value)
    elif isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if key == "Fn::ImportValue":
            for f in render_text(inner, params) or [describe(inner)]:
                forms.append("ImportValue:" + f)
        elif key == "Ref" and isinstance(inner, str):
            forms.append("Ref:" + inner)
            default = (params.get(inner) or {}).get("Default") if isinstance(params.get(inner), dict) else None
            if isinstance(default, str):
                forms.append(default)
        elif key == "Fn::Sub":
            text = inner if isinstance(inner, str) else (inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], str) else None)
            if text is not None:
                forms.append(text)
        elif key == "Fn::GetAtt":
            parts = inner if isinstance(inner, list) else str(inner).split(".", 1)
            forms.append("GetAtt:" + ".".join(map(str, parts)))
        elif key == "Fn::FindInMap" and isinstance(inner, list):
            forms.append("FindInMap:" + ".".join(describe(p) if not isinstance(p, str) else p for p in inner[:3]))
    if not forms:
        forms.append(describe(value, limit=10_000))
    return forms


def collect_refs(value, out):
    """Adds to `out` every name a value refers to: Ref, Fn::GetAtt and Fn::Sub variables."""
    if isinstance(value, dict):
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "Ref" and isinstance(inner, str):
                out.add(inner)
                return
            if key == "Fn::GetAtt":
                if isinstance(inner, str):
                    out.add(inner.split(".", 1)[0])
                    return
                if isinstance(inner, list) and inner:
                    if isinstance(inner[0], str):
                        out.add(inner[0])
                    for item in inner[1:]:
                        collect_refs(item, out)
                    return
            if key == "Fn::Sub":
                text, variables = None, {}
                if isinstance(inner, str):
                    text = inner
                elif isinstance(inner, list) and inner:
                    text = inner[0] if isinstance(inner[0], str) else None
                    if len(inner) > 1 and isinstance(inner[1], dict):
                        variables = inner[1]
                    for item in inner:
                        if not isinstance(item, str):
                            collect_refs(item, out)
                if text is not None:
                    for name in cfnyaml.sub_variables(text):
                        base = name.split(".", 1)[0]
                        if base not in variables:
                            out.add(base)
                return
        for item in value.values():
            collect_refs(item, out)
    elif isinstance(value, list):
        for item in value:
            collect_refs(item, out)


def depends_on_list(resource):
    dep = resource.get("DependsOn") if isinstance(resource, dict) else None
    if isinstance(dep, str):
        return [dep]
    if isinstance(dep, list):
        return [d for d in dep if isinstance(d, str)]
    return []


def plain_string(value):
    """A literal string, or the string of a Fn::Sub without variables other than pseudo
    parameters, for comparing names; None otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1 and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"]
    return None


# --- the template ------------------------------------------------------------------------


class Unreadable(Exception):
    pass


class Template:
    def __init__(self, path):
        self.path = path
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                self.text = fh.read()
        except OSError as err:
            raise Unreadable("cannot read %s: %s" % (path, err.strerror or err)) from None
        except UnicodeDecodeError as err:
            raise Unreadable("%s is not UTF-8 text: %s" % (path, err)) from None
        self.format = None
        self.doc = None
        stripped = self.text.lstrip()
        if stripped.startswith("{"):
            try:
                self.data = json.loads(self.text, object_pairs_hook=self._json_object)
                self.format = "json"
            except ValueError as err:
                json_error = err
            else:
                json_error = None
            if self.format is None:
                try:
                    self.doc = cfnyaml.Document(self.text)
                except cfnyaml.YamlError:
                    raise Unreadable("%s is not valid JSON: %s" % (path, json_error)) from None
                self.data = self.doc.data
                self.format = "yaml"
        else:
            try:
                self.doc = cfnyaml.Document(self.text)
            except cfnyaml.YamlError as err:
                raise Unreadable("%s is not valid YAML: %s" % (path, err)) from None
            self.data = self.doc.data
            self.format = "yaml"
        if not isinstance(self.data, dict):
            raise Unreadable("%s is not a CloudFormation template (not a mapping at the top)" % path)
        resources = self.data.get("Resources")
        if not isinstance(resources, dict):
            raise Unreadable("%s is not a CloudFormation template (no Resources mapping)" % path)

    @staticmethod
    def _json_object(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise ValueError("duplicate key %r" % key)
            out[key] = value
        return out


# --- finding the ecsTasks resources -------------------------------------------------------


def ecs_tasks_function_reasons(resource):
    """Why a resource looks like the ecsTasks function (an empty list if it does not)."""
    if not isinstance(resource, dict) or resource.get("Type") not in LAMBDA_FUNCTION_TYPES:
        return []
    props = resource.get("Properties")
    if not isinstance(props, dict):
        return []
    reasons = []
    handler = props.get("Handler")
    if isinstance(handler, str) and handler.strip().startswith("ecs_tasks."):
        reasons.append("Handler is %s" % handler)
    for key in ("FunctionName", "Description"):
        text = plain_string(props.get(key))
        if text and ECS_TASKS_NAME.search(text):
            reasons.append("%s %r mentions ecsTasks" % (key, text))
    code = props.get("Code") if isinstance(props.get("Code"), dict) else {}
    for key in ("S3Key",):
        text = plain_string(code.get(key))
        if text and ECS_TASKS_NAME.search(text):
            reasons.append("Code.%s %r mentions ecsTasks" % (key, text))
    code_uri = props.get("CodeUri")
    text = plain_string(code_uri) if not isinstance(code_uri, dict) else plain_string(code_uri.get("Key"))
    if text and ECS_TASKS_NAME.search(text):
        reasons.append("CodeUri %r mentions ecsTasks" % text)
    return reasons


class Finder:
    def __init__(self, data, forced_functions=(), token_globs=()):
        self.resources = data["Resources"]
        self.params = data.get("Parameters") if isinstance(data.get("Parameters"), dict) else {}
        self.functions = {}  # logical ID -> reasons
        for name, res in self.resources.items():
            reasons = ecs_tasks_function_reasons(res)
            if name in forced_functions:
                reasons = ["named with --function"] + reasons
            if reasons:
                self.functions[name] = reasons
        self.token_globs = list(token_globs)

    def _type(self, name):
        res = self.resources.get(name)
        return res.get("Type") if isinstance(res, dict) else None

    def resolve(self, token):
        """(function logical ID or None, how) for a ServiceToken value."""
        if is_if(token):
            targets = set()
            hows = []
            for branch in token["Fn::If"][1:]:
                if is_no_value(branch):
                    continue
                fn, how = self.resolve(branch)
                targets.add(fn)
                hows.append(how)
            if len(targets) == 1 and None not in targets:
                return targets.pop(), "both branches of Fn::If: " + hows[0]
            return None, "Fn::If whose branches are not all one function"
        if isinstance(token, dict) and len(token) == 1:
            key, inner = next(iter(token.items()))
            if key == "Fn::GetAtt":
                parts = inner if isinstance(inner, list) else str(inner).split(".", 1)
                if len(parts) == 2 and parts[1] == "Arn" and self._type(parts[0]) in LAMBDA_FUNCTION_TYPES:
                    return parts[0], "Fn::GetAtt %s.Arn" % parts[0]
            if key == "Ref" and isinstance(inner, str) and self._type(inner) in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
                alias_props = self.resources[inner].get("Properties") or {}
                fn, how = self._function_of(alias_props.get("FunctionName"))
                if fn:
                    return fn, "Ref %s (%s of %s)" % (inner, self._type(inner).split("::")[-1], fn)
            if key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else (
                    (inner[0], inner[1] if len(inner) > 1 and isinstance(inner[1], dict) else {})
                    if isinstance(inner, list) and inner and isinstance(inner[0], str) else (None, {})
                )
                if text is not None:
                    m = re.fullmatch(r"\s*\$\{([^}!]+)\}\s*", text)
                    if m:
                        ref = m.group(1).strip()
                        if ref in variables:
                            fn, how = self.resolve(variables[ref])
                            if fn:
                                return fn, "Fn::Sub ${%s} = %s" % (ref, how)
                        else:
                            parts = ref.split(".", 1)
                            if len(parts) == 2 and parts[1] == "Arn" and self._type(parts[0]) in LAMBDA_FUNCTION_TYPES:
                                return parts[0], "Fn::Sub ${%s}" % ref
                    m = LAMBDA_ARN_SUB.match(text.strip())
                    if m:
                        wanted = m.group(1)
                        for name, res in self.resources.items():
                            if isinstance(res, dict) and res.get("Type") in LAMBDA_FUNCTION_TYPES:
                                fname = plain_string((res.get("Properties") or {}).get("FunctionName"))
                                if fname is not None and fname == wanted:
                                    return name, "Fn::Sub of the ARN of function %r (%s)" % (wanted, name)
        return None, None

    def _function_of(self, value):
        if isinstance(value, dict) and len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "Ref" and self._type(inner) in LAMBDA_FUNCTION_TYPES:
                return inner, "Ref"
            if key == "Fn::GetAtt":
                parts = inner if isinstance(inner, list) else str(inner).split(".", 1)
                if parts and self._type(parts[0]) in LAMBDA_FUNCTION_TYPES:
                    return parts[0], "GetAtt"
        return None, None

    def match_glob(self, token):
        forms = render_text(token, self.params)
        for glob in self.token_globs:
            for form in forms:
                if fnmatch.fnmatchcase(form, glob):
                    return glob, form
        return None, None

    def classify(self, name, resource, skipped=()):
        """("convert", function or None, how) or ("leave", None, why) for a custom
        resource; None for any other resource."""
        if not isinstance(resource, dict):
            return None
        rtype = resource.get("Type")
        if not isinstance(rtype, str) or not (rtype.startswith("Custom::") or rtype == CUSTOM_RESOURCE_TYPE):
            return None
        props = resource.get("Properties")
        token = props.get("ServiceToken") if isinstance(props, dict) else None
        if token is None:
            return ("leave", None, "no ServiceToken")
        if name in skipped:
            return ("leave", None, "named with --skip")
        fn, how = self.resolve(token)
        if fn is not None:
            if fn in self.functions:
                return ("convert", fn, "ServiceToken is %s, the ecsTasks function" % how)
            return ("leave", None, "ServiceToken is %s, not an ecsTasks function (name it with --function %s if it is one)" % (how, fn))
        glob, form = self.match_glob(token)
        if glob is not None:
            return ("convert", None, "ServiceToken %r matches --service-token %r" % (form, glob))
        hint = ""
        forms = render_text(token, self.params)
        if any(ECS_TASKS_NAME.search(f) for f in forms):
            hint = " - it mentions ecsTasks: rerun with --service-token %r to convert it" % forms[0]
        return ("leave", None, "ServiceToken %s is not a function of this template known as ecsTasks and matches no --service-token%s" % (describe(token), hint))


# --- mapping the properties ---------------------------------------------------------------


class Mapper:
    """Maps one ecsTasks resource's Properties; collects changes and problems."""

    def __init__(self, logical_id):
        self.logical_id = logical_id
        self.changes = []  # human-readable lines
        self.unmapped = []  # {"path", "value", "reason"}

    def problem(self, path, value, reason, secret=False):
        self.unmapped.append({"path": path, "value": SECRET if secret else describe(value, 200), "reason": reason})
        return value

    def change(self, text):
        self.changes.append(text)

    # ---- scalars

    def each(self, value, path, fn):
        """Applies fn to value, or to each branch of an Fn::If; AWS::NoValue and other
        intrinsics (resolved by CloudFormation at deploy time) are kept."""
        if is_if(value):
            return rebuild_if(value, [self.each(b, "%s(Fn::If branch %d)" % (path, i + 1), fn) for i, b in enumerate(value["Fn::If"][1:])])
        if is_no_value(value):
            return value
        return fn(value, path)

    def integer(self, value, path, lo, hi, what):
        def conv(v, p):
            if is_intrinsic(v):
                return v
            if isinstance(v, bool):
                return self.problem(p, v, "%s must be a whole number, not a boolean" % what)
            n = None
            if isinstance(v, int):
                n = v
            elif isinstance(v, float) and v.is_integer():
                n = int(v)
                self.change("%s: %r -> %d" % (p, v, n))
            elif isinstance(v, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", v):
                n = int(v)
                self.change("%s: %r (string) -> %d" % (p, v, n))
            if n is None:
                return self.problem(p, v, "%s must be a whole number" % what)
            if not lo <= n <= hi:
                return self.problem(p, v, "%s must be from %d to %d for TaskRun" % (what, lo, hi))
            return n

        return self.each(value, path, conv)

    def boolean(self, value, path):
        def conv(v, p):
            if is_intrinsic(v):
                return v
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.strip().lower() in ("true", "yes", "false", "no"):
                b = v.strip().lower() in ("true", "yes")
                self.change("%s: %r (string, read by ecsTasks as %s) -> %s" % (p, v, b, str(b).lower()))
                return b
            return self.problem(p, v, "ecsTasks took true/yes/false/no (any case); this is none of them")

        return self.each(value, path, conv)

    def string(self, value, path, what, secret=False, pattern=None, pattern_text=None):
        def conv(v, p):
            if is_intrinsic(v):
                return v
            if isinstance(v, bool):
                s = "true" if v else "false"
            elif isinstance(v, (int, float)):
                s = str(v)
            elif isinstance(v, str):
                s = v
            else:
                return self.problem(p, v, "%s must be a string" % what, secret=secret)
            if s is not v:
                self.change("%s: %s -> %s (string)" % (p, SECRET if secret else describe(v), SECRET if secret else json.dumps(s)))
            if pattern is not None and not pattern.match(s):
                return self.problem(p, v, "%s: %s" % (what, pattern_text), secret=secret)
            return s

        return self.each(value, path, conv)

    def string_list(self, value, path, what, min_items=0, max_items=None, unique=False, secret=False):
        def conv(v, p):
            if is_intrinsic(v):
                return v  # a list-valued intrinsic (Fn::Split, a List<> parameter): kept
            if isinstance(v, (str, int, float, bool)):
                self.change("%s: a single value -> a list of one" % p)
                v = [v]
            if not isinstance(v, list):
                return self.problem(p, v, "%s must be a list" % what, secret=secret)
            out = [self.string(item, "%s[%d]" % (p, i), what + " items", secret=secret) for i, item in enumerate(v)]
            if unique:
                seen, deduped = [], []
                for item in out:
                    if any(same(item, s) for s in seen):
                        self.change("%s: duplicate %s dropped (TaskRun wants unique items)" % (p, describe(item)))
                        continue
                    seen.append(item)
                    deduped.append(item)
                out = deduped
            if len(out) < min_items:
                return self.problem(p, v, "%s needs at least %d item(s) for TaskRun" % (what, min_items))
            if max_items is not None and len(out) > max_items:
                return self.problem(p, v, "%s takes at most %d items in TaskRun" % (what, max_items))
            return out

        return self.each(value, path, conv)

    # ---- structures

    def structure(self, value, path, what, fields, secret_values=False, required=()):
        """Maps a dict by `fields`: lower-cased source key -> (target key, fn(value, path)).
        Unknown keys are kept as they are (they then fail TaskRun's validation) and
        reported."""

        def conv(v, p):
            if is_intrinsic(v):
                return self.problem(p, v, "%s given by %s: the converter cannot see its keys to rename them; write it out" % (what, next(iter(v))))
            if not isinstance(v, dict):
                return self.problem(p, v, "%s must be a mapping" % what, secret=secret_values)
            out = {}
            for key, item in v.items():
                spec = fields.get(key.lower()) if isinstance(key, str) else None
                sub = "%s.%s" % (p, key)
                if spec is None:
                    self.problem(sub, item, "%s has no %r in TaskRun; left in place" % (what, key), secret=secret_values)
                    out[key] = item
                    continue
                target, fn = spec
                if target is None:  # known but not supported
                    self.problem(sub, item, fn, secret=secret_values)
                    out[key] = item
                    continue
                if target in out:
                    self.problem(sub, item, "%s given twice (as %r and another spelling)" % (target, key), secret=secret_values)
                    out[key] = item
                    continue
                if target != key:
                    self.change("%s -> %s" % (sub, target))
                out[target] = fn(item, sub)
            for req in required:
                if req not in out:
                    self.problem(p, SECRET if secret_values else v, "%s needs %s" % (what, req))
            return out

        return self.each(value, path, conv)

    def list_of(self, value, path, what, item_fn, max_items=None):
        def conv(v, p):
            if is_intrinsic(v):
                return self.problem(p, v, "%s given by %s: the converter cannot see its items to map them; write them out" % (what, next(iter(v))))
            if not isinstance(v, list):
                return self.problem(p, v, "%s must be a list" % what)
            if max_items is not None and len(v) > max_items:
                self.problem(p, "%d items" % len(v), "%s takes at most %d items in TaskRun" % (what, max_items))
            return [item_fn(item, "%s[%d]" % (p, i)) for i, item in enumerate(v)]

        return self.each(value, path, conv)

    # ---- ecsTasks properties

    def overrides(self, value, path):
        kv_fields = {
            "name": ("Name", lambda v, p: self.string(v, p, "an environment variable name")),
            "value": ("Value", lambda v, p: self.string(v, p, "an environment variable value", secret=True)),
        }
        env_file_fields = {
            "type": ("Type", lambda v, p: self.string(v, p, "an environment file type", pattern=re.compile(r"^s3$"), pattern_text="only s3 is supported")),
            "value": ("Value", lambda v, p: self.string(v, p, "an environment file ARN")),
        }
        req_fields = {
            "type": ("Type", lambda v, p: self.string(v, p, "a resource requirement type", pattern=re.compile(r"^GPU$"), pattern_text="only GPU (Elastic Inference is no longer available in ECS)")),
            "value": ("Value", lambda v, p: self.string(v, p, "a resource requirement value")),
        }
        container_fields = {
            "name": ("Name", lambda v, p: self.string(v, p, "a container name")),
            "command": ("Command", lambda v, p: self.string_list(v, p, "a command")),
            "environment": ("Environment", lambda v, p: self.list_of(v, p, "environment", lambda i, q: self.structure(i, q, "an environment variable", kv_fields, secret_values=True, required=("Name",)))),
            "environmentfiles": ("EnvironmentFiles", lambda v, p: self.list_of(v, p, "environmentFiles", lambda i, q: self.structure(i, q, "an environment file", env_file_fields, required=("Type", "Value")), max_items=10)),
            "cpu": ("Cpu", lambda v, p: self.integer(v, p, 0, 196608, "container cpu")),
            "memory": ("Memory", lambda v, p: self.integer(v, p, 4, 1048576, "container memory (MiB)")),
            "memoryreservation": ("MemoryReservation", lambda v, p: self.integer(v, p, 4, 1048576, "container memoryReservation (MiB)")),
            "resourcerequirements": ("ResourceRequirements", lambda v, p: self.list_of(v, p, "resourceRequirements", lambda i, q: self.structure(i, q, "a resource requirement", req_fields, required=("Type", "Value")))),
        }
        task_fields = {
            "containeroverrides": ("ContainerOverrides", lambda v, p: self.list_of(v, p, "containerOverrides", lambda i, q: self.structure(i, q, "a container override", container_fields, required=("Name",)), max_items=100)),
            "cpu": ("Cpu", lambda v, p: self.string(v, p, "task cpu")),
            "memory": ("Memory", lambda v, p: self.string(v, p, "task memory")),
            "taskrolearn": ("TaskRoleArn", lambda v, p: self.string(v, p, "taskRoleArn", pattern=ROLE_ARN, pattern_text="TaskRun wants a role ARN (arn:aws:iam::<account>:role/<name>)")),
            "executionrolearn": ("ExecutionRoleArn", lambda v, p: self.string(v, p, "executionRoleArn", pattern=ROLE_ARN, pattern_text="TaskRun wants a role ARN (arn:aws:iam::<account>:role/<name>)")),
            "ephemeralstorage": ("EphemeralStorage", lambda v, p: self.structure(v, p, "ephemeralStorage", {"sizeingib": ("SizeInGiB", lambda x, q: self.integer(x, q, 21, 200, "ephemeralStorage sizeInGiB"))}, required=("SizeInGiB",))),
            "inferenceacceleratoroverrides": (None, "Elastic Inference is no longer available in ECS and TaskRun has no such override; remove it"),
        }
        return self.structure(value, path, "Overrides", task_fields)

    def update_criteria(self, value, path):
        def criterion(v, p):
            if is_no_value(v):
                return v
            if is_if(v):
                return self.each(v, p, criterion)
            if is_intrinsic(v):
                return self.problem(p, v, "an UpdateCriteria item given by %s: write it out" % next(iter(v)))
            if not isinstance(v, dict):
                return self.problem(p, v, "an UpdateCriteria item must be a mapping with Container and EnvironmentKeys")
            out = {}
            both = "EnvironmentKeys" in v and "EnvironmentKey" in v
            for key, item in v.items():
                sub = "%s.%s" % (p, key)
                if key == "Container":
                    out["Container"] = self.string(item, sub, "Container")
                elif key == "EnvironmentKey" and both:
                    self.problem(sub, item, "both EnvironmentKey and EnvironmentKeys given: EnvironmentKeys is what ecsTasks read and is kept; this one is left in place")
                    out[key] = item
                elif key in ("EnvironmentKeys", "EnvironmentKey"):
                    if key == "EnvironmentKey":
                        self.change("%s -> EnvironmentKeys (the README's table said EnvironmentKey, the function read EnvironmentKeys)" % sub)
                    out["EnvironmentKeys"] = self.string_list(item, sub, "EnvironmentKeys", min_items=1, unique=True)
                else:
                    self.problem(sub, item, "an UpdateCriteria item has Container and EnvironmentKeys only; left in place")
                    out[key] = item
            if "Container" not in out:
                self.problem(p, v, "an UpdateCriteria item needs Container")
            if "EnvironmentKeys" not in out:
                self.problem(p, v, "an UpdateCriteria item needs EnvironmentKeys")
            return out

        def conv(v, p):
            if is_intrinsic(v):
                return self.problem(p, v, "UpdateCriteria given by %s: write it out" % next(iter(v)))
            if isinstance(v, dict):
                self.change("%s: a single criterion -> a list of one" % p)
                v = [v]
            if not isinstance(v, list):
                return self.problem(p, v, "UpdateCriteria must be a list")
            if not v:
                self.change("%s: empty list: same as none in both" % p)
            if len(v) > 20:
                self.problem(p, "%d items" % len(v), "TaskRun takes at most 20 UpdateCriteria")
            return [criterion(item, "%s[%d]" % (p, i)) for i, item in enumerate(v)]

        return self.each(value, path, conv)

    def triggers(self, value, path):
        def item(v, p):
            if is_intrinsic(v):
                return v
            if isinstance(v, (dict, list)) or v is None:
                return self.problem(p, v, "TaskRun's Triggers are strings; ecsTasks ignored this value, so it can be replaced by any string that changes when it should")
            return self.string(v, p, "a trigger")

        def conv(v, p):
            if is_intrinsic(v):
                return v
            if not isinstance(v, list):
                self.change("%s: a single value -> a list of one" % p)
                v = [v]
            return [self.each(x, "%s[%d]" % (p, i), item) for i, x in enumerate(v)]

        return self.each(value, path, conv)


def map_properties(logical_id, props, pin_timeout):
    """(new properties, mapping rows, changes, unmapped, notes, dropped keys)."""
    m = Mapper(logical_id)
    out = {}
    rows = []
    notes = []
    renamed = {}  # original key -> new key (None: removed)
    base = "Resources.%s.Properties" % logical_id

    def row(src, dst, value, note=""):
        rows.append({"ecsTasks": src, "TaskRun": dst, "value": value, "note": note})

    for key, value in props.items():
        path = "%s.%s" % (base, key)
        before = len(m.changes)
        if key == "ServiceToken":
            renamed[key] = None
            row(key, None, describe(value), "removed: a TaskRun is not a custom resource")
            continue
        if key == "ServiceTimeout":
            renamed[key] = None
            row(key, None, describe(value), "removed: CloudFormation's wait for a custom resource's answer; TaskRun's own limit is Timeout")
            continue
        if key in ("Cluster", "TaskDefinition"):
            new = m.string(value, path, key)
        elif key == "Count":
            new = m.integer(value, path, 0, 100, "Count")
        elif key == "Timeout":
            new = m.integer(value, path, 1, 127800, "Timeout")
            if is_if(new):
                branches = new["Fn::If"][1:]
                if any(is_no_value(b) for b in branches):
                    new = rebuild_if(new, [ECS_TASKS_TIMEOUT_DEFAULT if is_no_value(b) else b for b in branches]) if pin_timeout else new
                    if pin_timeout:
                        m.change("%s: AWS::NoValue branch -> %d (ecsTasks' default)" % (path, ECS_TASKS_TIMEOUT_DEFAULT))
        elif key == "PollInterval":
            new = m.integer(value, path, 1, 600, "PollInterval")
        elif key in ("RunOnUpdate", "RunOnRollback"):
            new = m.boolean(value, path)
        elif key == "UpdateCriteria":
            new = m.update_criteria(value, path)
        elif key == "Overrides":
            new = m.overrides(value, path)
        elif key == "Instances":
            if isinstance(value, list) and not value:
                renamed[key] = None
                row(key, None, "[]", "removed: an empty list is ecsTasks' default (no instances); TaskRun wants 1 to 10 or none")
                continue
            new = m.string_list(value, path, "Instances", min_items=1, max_items=10, unique=True)
        elif key == "Triggers":
            new = m.triggers(value, path)
        else:
            m.problem(path, value, "not an ecsTasks property: ecsTasks ignored unknown properties, TaskRun refuses them; left in place so the template does not validate until you remove or rename it")
            renamed[key] = key
            out[key] = value
            continue
        renamed[key] = key
        out[key] = new
        note = "; ".join(c[len(base) + 1:] if c.startswith(base + ".") else c for c in m.changes[before:])
        shown = "(Overrides: %d container override(s), values not shown)" % (
            len(new.get("ContainerOverrides", [])) if isinstance(new, dict) and isinstance(new.get("ContainerOverrides"), list) else 0
        ) if key == "Overrides" else describe(new)
        row(key, key, shown, note or "same")

    if "Cluster" not in props:
        m.problem(base, "(no Cluster)", "Cluster is required (by ecsTasks and TaskRun)")
    if "TaskDefinition" not in props:
        m.problem(base, "(no TaskDefinition)", "TaskDefinition is required (by ecsTasks and TaskRun)")

    if "Timeout" not in props:
        if pin_timeout:
            out["Timeout"] = ECS_TASKS_TIMEOUT_DEFAULT
            row("(Timeout absent)", "Timeout", str(ECS_TASKS_TIMEOUT_DEFAULT), "added: ecsTasks' default was %d s, TaskRun's is %d s; kept at %d so a hung task fails the deploy when it did before (raise it at will: a Timeout change alone runs nothing)" % (ECS_TASKS_TIMEOUT_DEFAULT, TASKRUN_TIMEOUT_DEFAULT, ECS_TASKS_TIMEOUT_DEFAULT))
        else:
            notes.append("Timeout absent: ecsTasks waited at most %d s, TaskRun waits %d s (--no-pin-timeout)" % (ECS_TASKS_TIMEOUT_DEFAULT, TASKRUN_TIMEOUT_DEFAULT))
    if "PollInterval" not in props:
        notes.append("PollInterval absent: TaskRun looks every second at first, then less often, at most every 15 s (ecsTasks polled at a fixed 10 to 30 s, depending on its version)")
    if "RunOnRollback" not in props:
        notes.append("RunOnRollback not set: TaskRun does not run the tasks in an update made by a rollback (ecsTasks ran them like any update); add RunOnRollback: true for the old behaviour")
    if "UpdateCriteria" in out and "Triggers" in out:
        notes.append("UpdateCriteria and Triggers both set: ecsTasks ignored Triggers and ran only when an UpdateCriteria value changed; TaskRun also runs when Triggers change")
    out["AdoptExisting"] = True
    row("(new)", "AdoptExisting", "true", "added: the CREATE made by deploying this onto the live stack runs no task and takes these properties as the last successful run")
    return out, rows, m.changes, m.unmapped, notes, renamed


# --- removal analysis ---------------------------------------------------------------------


def reference_graph(data, skip_depends_on=()):
    """refs: name -> set of resource names it refers to (resources and "Outputs.X")."""
    resources = data["Resources"]
    names = set(resources)
    refs = {}
    for name, res in resources.items():
        found = set()
        if isinstance(res, dict):
            for key, value in res.items():
                if key in RESOURCE_ATTRIBUTES_NOT_WALKED:
                    continue
                collect_refs(value, found)
            if name not in skip_depends_on:
                found.update(depends_on_list(res))
        refs[name] = found & names
    outputs = data.get("Outputs")
    if isinstance(outputs, dict):
        for oname, out in outputs.items():
            found = set()
            collect_refs(out, found)
            refs["Outputs." + oname] = found & names
    return refs


def parameter_users(data):
    params = data.get("Parameters") if isinstance(data.get("Parameters"), dict) else {}
    users = {p: set() for p in params}
    for name, res in data["Resources"].items():
        found = set()
        collect_refs(res, found)
        for p in found & set(params):
            users[p].add(name)
    for section in ("Outputs", "Conditions", "Rules", "Metadata"):
        block = data.get(section)
        if isinstance(block, dict):
            found = set()
            collect_refs(block, found)
            for p in found & set(params):
                users[p].add(section)
    # Fn::FindInMap / Conditions using Ref are covered by collect_refs above.
    return users


def removal_plan(data, roots, converted):
    """What may go with the ecsTasks functions `roots`: (remove, blocked, review), where
    remove is {name: why}, blocked {function: [referrers]} and review a list of
    resources only the removed ones use that the converter does not remove."""
    resources = data["Resources"]
    refs = reference_graph(data, skip_depends_on=converted)
    # The converted resources' DependsOn entries naming a function are dropped.
    for name in converted:
        res = resources.get(name)
        refs[name] |= {d for d in depends_on_list(res) if d in resources and d not in roots} if isinstance(res, dict) else set()
    referrers = {}
    for src, targets in refs.items():
        for t in targets:
            referrers.setdefault(t, set()).add(src)
    # A log group named /aws/lambda/<the function's name> goes with the function.
    links = {}
    for fn in roots:
        fname = plain_string(((resources[fn].get("Properties") or {}) if isinstance(resources[fn], dict) else {}).get("FunctionName"))
        if fname is None:
            continue
        for name, res in resources.items():
            if isinstance(res, dict) and res.get("Type") == "AWS::Logs::LogGroup":
                lg = plain_string((res.get("Properties") or {}).get("LogGroupName"))
                if lg is not None and lg == "/aws/lambda/" + fname:
                    links.setdefault(fn, set()).add(name)

    active = set(roots)
    while True:
        remove = {fn: "the ecsTasks function" for fn in active}
        changed = True
        while changed:
            changed = False
            for name, res in resources.items():
                if name in remove or not isinstance(res, dict) or res.get("Type") not in SUPPORT_TYPES:
                    continue
                users = referrers.get(name, set())
                linked = any(name in links.get(fn, ()) for fn in remove)
                connected = linked or bool(refs.get(name, set()) & set(remove)) or bool(users & set(remove))
                if connected and users <= set(remove):
                    by = sorted((users & set(remove)) | {fn for fn in remove if name in links.get(fn, ())} | (refs.get(name, set()) & set(remove)))
                    remove[name] = "%s used only by %s" % (res.get("Type"), ", ".join(by))
                    changed = True
        blocked = {}
        for fn in active:
            outside = sorted(referrers.get(fn, set()) - set(remove))
            if outside:
                blocked[fn] = outside
        if not blocked:
            break
        active -= set(blocked)
        if not active:
            remove = {}
            break
    all_blocked = {}
    for fn in roots:
        if fn not in active:
            all_blocked[fn] = sorted(referrers.get(fn, set()) - set(remove))
    review = []
    for name, res in resources.items():
        if name in remove or not isinstance(res, dict):
            continue
        users = referrers.get(name, set())
        if users and users <= set(remove) and name not in converted:
            review.append({"resource": name, "type": res.get("Type"), "used_by": sorted(users)})
    return remove, all_blocked, review


# --- output -------------------------------------------------------------------------------


def splice_yaml(doc, new_data, conversions, removals):
    """The new YAML text with only the converted and removed resources' lines changed, or
    None when the layout does not allow it. conversions: {name: renamed-properties map}."""
    entry = doc.mapping_entry(doc.node, "Resources")
    if entry is None or not doc.is_block_mapping(entry[1]):
        return None
    nl = doc.newline
    lines = doc.lines
    replacements = []
    header_line = entry[0].start_mark.line
    for name, k, v, first, last, gap in doc.entries(entry[1]):
        if name in removals:
            # with the comment lines right above it, at its indentation (its own)
            col = k.start_mark.column
            while first - 1 > header_line:
                line = lines[first - 1]
                text = line.lstrip(" ")
                if text.startswith("#") and len(line) - len(text) == col:
                    first -= 1
                else:
                    break
            replacements.append((first, last, []))
        elif name in conversions:
            block = _render_resource(doc, name, k, v, doc.data["Resources"][name], new_data["Resources"][name], conversions[name], nl)
            replacements.append((first, last, block))
    out = list(lines)
    for first, last, block in sorted(replacements, key=lambda r: r[0], reverse=True):
        out[first:last + 1] = block
    return "".join(out)


def _comment_for_added(key):
    if key == "AdoptExisting":
        return "# added by cfn/ecstasks/convert.py: deployed onto the live stack, this CREATE runs no task"
    if key == "Timeout":
        return "# ecsTasks' default (TaskRun's is %d)" % TASKRUN_TIMEOUT_DEFAULT
    return None


def _render_resource(doc, name, k, v, old, new, renamed, nl):
    col = k.start_mark.column
    if not doc.is_block_mapping(v) or v.start_mark.line == k.start_mark.line:
        return cfnyaml.dump_entry(name, new, col, newline=nl)
    lines = doc.lines
    entries = doc.entries(v)
    block = [lines[k.start_mark.line]] + lines[k.start_mark.line + 1:entries[0][3]]
    done = set()
    attr_col = entries[0][1].start_mark.column
    for aname, ak, av, first, last, gap in entries:
        done.add(aname)
        if aname not in new:
            pass
        elif aname == "Type":
            comment, ccol = doc.key_line_comment(ak, av)
            if comment is None:
                comment, ccol = "# was %s (ecsTasks)" % old.get("Type"), None
            block += cfnyaml.dump_entry("Type", new["Type"], ak.start_mark.column, comment=comment, newline=nl, comment_column=ccol)
        elif aname == "Properties":
            block += _render_properties(doc, ak, av, old.get("Properties"), new["Properties"], renamed, nl)
        elif same(old.get(aname), new[aname]) and doc.canonical(av):
            block += lines[first:last + 1]
        else:
            comment, ccol = doc.key_line_comment(ak, av)
            block += cfnyaml.dump_entry(aname, new[aname], ak.start_mark.column, comment=comment, newline=nl, comment_column=ccol)
        block += [lines[i] for i in gap]
    for aname, value in new.items():
        if aname not in done:
            block += cfnyaml.dump_entry(aname, value, attr_col, newline=nl)
    return block


def _drop_own_comments(block, column):
    """Removes from the end of `block` the comment lines at `column` that directly precede
    an entry being removed (no blank line between)."""
    while block:
        line = block[-1]
        text = line.lstrip(" ")
        if text.startswith("#") and len(line) - len(text) == column:
            block.pop()
        else:
            break


def _render_properties(doc, ak, av, old_props, new_props, renamed, nl):
    lines = doc.lines
    col = ak.start_mark.column
    if not doc.is_block_mapping(av) or av.start_mark.line == ak.start_mark.line or not isinstance(old_props, dict):
        comment, ccol = doc.key_line_comment(ak, av)
        return cfnyaml.dump_entry("Properties", new_props, col, comment=comment, newline=nl, comment_column=ccol)
    entries = doc.entries(av)
    block = [lines[ak.start_mark.line]] + lines[ak.start_mark.line + 1:entries[0][3]]
    pcol = entries[0][1].start_mark.column
    emitted = set()
    for pname, pk, pv, first, last, gap in entries:
        target = renamed.get(pname)
        if target is None or target not in new_props:
            # A removed property takes the comment lines right above it (its own) along.
            _drop_own_comments(block, pk.start_mark.column)
        if target is not None and target in new_props:
            value = new_props[target]
            emitted.add(target)
            if target == pname and same(old_props.get(pname), value) and doc.canonical(pv):
                block += lines[first:last + 1]
            else:
                comment, ccol = doc.key_line_comment(pk, pv)
                block += cfnyaml.dump_entry(target, value, pk.start_mark.column, comment=comment, newline=nl, comment_column=ccol)
        block += [lines[i] for i in gap]
    for key, value in new_props.items():
        if key not in emitted:
            block += cfnyaml.dump_entry(key, value, pcol, comment=_comment_for_added(key), newline=nl)
    return block


def write_output(template, new_data, conversions, removals):
    """(text, comments_kept: bool, how)."""
    if template.format == "json":
        indent = cfnyaml.detect_json_indent(template.text)
        text = json.dumps(new_data, indent=indent, ensure_ascii=False) + "\n"
        return text, None, "JSON, re-indented with %r" % (indent,)
    if not conversions and not removals:
        return template.text, True, "unchanged"
    text = splice_yaml(template.doc, new_data, conversions, removals)
    if text is not None:
        try:
            ok = same(cfnyaml.load(text), new_data)
        except cfnyaml.YamlError:
            ok = False
        if ok:
            return text, True, "only the converted (and removed) resources' lines rewritten; every other line as it was"
    return cfnyaml.dump(new_data), False, "whole template rewritten (its layout did not allow a line-level edit): comments lost"


# --- the run ------------------------------------------------------------------------------


def convert(template, *, token_globs=(), functions=(), skip=(), remove_function=False, pin_timeout=True):
    data = template.data
    resources = data["Resources"]
    finder = Finder(data, forced_functions=set(functions), token_globs=token_globs)
    new_data = copy.deepcopy(data)
    converted, left_alone, conversions = [], [], {}
    problems = 0
    for name, res in resources.items():
        if isinstance(name, str) and name.startswith("Fn::ForEach::"):
            left_alone.append({"resource": name, "type": None, "why": "Fn::ForEach blocks are not looked into"})
            continue
        verdict = finder.classify(name, res, skipped=set(skip))
        if verdict is None:
            continue
        action, fn, why = verdict
        if action == "leave":
            left_alone.append({"resource": name, "type": res.get("Type"), "why": why})
            continue
        props = res.get("Properties") if isinstance(res.get("Properties"), dict) else {}
        new_props, rows, changes, unmapped, notes, renamed = map_properties(name, props, pin_timeout)
        for path, text in _spelled_bools(template, name):
            where = ".".join(str(p) for p in path)
            changes.append("Resources.%s.Properties.%s: %s (YAML 1.1/Python spelling) -> %s" % (name, where, text, "true" if text.lower() in ("true", "yes", "on", "y") else "false"))
            for r in rows:
                if r["ecsTasks"] == path[0] and r["TaskRun"]:
                    extra = "%s written %s -> %s" % (where, text, "true" if text.lower() in ("true", "yes", "on", "y") else "false")
                    r["note"] = extra if r["note"] in ("", "same") else r["note"] + "; " + extra
        new_res = {}
        for key, value in new_data["Resources"][name].items():
            if key == "Type":
                new_res[key] = TASKRUN_TYPE
            elif key == "Properties":
                new_res[key] = new_props
            else:
                new_res[key] = value
        new_data["Resources"][name] = new_res
        conversions[name] = renamed
        problems += len(unmapped)
        converted.append({
            "resource": name,
            "from_type": res.get("Type"),
            "to_type": TASKRUN_TYPE,
            "function": fn,
            "why": why,
            "mapping": rows,
            "changes": changes,
            "unmapped": unmapped,
            "notes": notes,
        })

    # ecsTasks functions no custom resource uses any more can go.
    still_used = set()
    for name, res in new_data["Resources"].items():
        if isinstance(res, dict) and isinstance(res.get("Type"), str) and (res["Type"].startswith("Custom::") or res["Type"] == CUSTOM_RESOURCE_TYPE):
            fn, _ = finder.resolve((res.get("Properties") or {}).get("ServiceToken")) if isinstance(res.get("Properties"), dict) else (None, None)
            if fn:
                still_used.add(fn)
    roots = [fn for fn in finder.functions if fn not in still_used]
    converted_names = [c["resource"] for c in converted]
    remove, blocked, review = removal_plan(new_data, roots, converted_names)

    # DependsOn entries of converted resources naming what goes (or an ecsTasks function).
    depends_dropped = []
    for name in converted_names:
        res = new_data["Resources"][name]
        deps = depends_on_list(res)
        drop = [d for d in deps if d in remove or d in finder.functions]
        if not drop:
            continue
        keep = [d for d in deps if d not in drop]
        if not keep:
            del res["DependsOn"]
        elif isinstance(res["DependsOn"], str):
            res["DependsOn"] = keep[0]
        else:
            res["DependsOn"] = keep
        depends_dropped.append({"resource": name, "dropped": drop})
        for c in converted:
            if c["resource"] == name:
                c["changes"].append("DependsOn: %s dropped (a TaskRun does not need the ecsTasks function)" % ", ".join(drop))

    # What refers to the converted resources.
    ref_notes = []
    for name, res in list(new_data["Resources"].items()) + [("Outputs." + k, v) for k, v in (new_data.get("Outputs") or {}).items()]:
        _check_uses(res, name, set(converted_names), ref_notes)

    removed_now = []
    if remove_function and remove:
        for name in remove:
            del new_data["Resources"][name]
            removed_now.append(name)

    if removed_now:
        orphan_params = sorted(p for p, users in parameter_users(new_data).items() if not users)
    else:
        orphan_params = sorted(p for p, users in parameter_users(new_data).items() if users and users <= set(remove))

    renamed_for_splice = {n: conversions[n] for n in converted_names}
    text, comments_kept, how = write_output(template, new_data, renamed_for_splice, set(removed_now))

    status = "converted" if converted else "nothing-to-convert"
    if problems:
        status = "incomplete"
    exit_code = 1 if problems else 0
    report = {
        "input": template.path,
        "format": template.format,
        "status": status,
        "exit_code": exit_code,
        "ecs_tasks_functions": [{"resource": fn, "why": why} for fn, why in finder.functions.items()],
        "converted": converted,
        "left_alone": left_alone,
        "references_to_converted": ref_notes,
        "removal": {
            "mode": ("removed in this output (--remove-function)" if removed_now else "kept in this output") + (
                "" if not converted else ("; same deployment as the conversion" if removed_now else "; remove in a second deployment")),
            "why": (REMOVAL_RISK_NOW if removed_now else REMOVAL_WHY_LATER) if converted else REMOVAL_CLEANUP,
            "resources": [{"resource": n, "type": new_type(data, n), "why": why} for n, why in remove.items()],
            "removed_now": removed_now,
            "blocked": [{"function": fn, "referred_to_by": by} for fn, by in blocked.items()],
            "review": review,
            "parameters_left_unused": orphan_params,
            "depends_on_dropped": depends_dropped,
        },
        "output": {"comments_kept": comments_kept, "how": how},
        "steps": steps_text(converted, remove, removed_now, blocked),
    }
    return text, report


def _spelled_bools(template, name):
    """Booleans of a YAML resource's Properties written True/False/yes/... (YAML 1.1 and
    Python spellings), which the output writes true/false."""
    if template.doc is None:
        return []
    doc = template.doc
    res = doc.mapping_entry(doc.node, "Resources")
    res = res and doc.mapping_entry(res[1], name)
    props = res and doc.mapping_entry(res[1], "Properties")
    if not props:
        return []
    # Overrides' values are left out: environment values are not shown (the Mapper says
    # what it turned into strings without them).
    return [(path, text) for path, text in doc.noncanonical_bools(props[1]) if path[:1] != ("Overrides",)]


def new_type(data, name):
    res = data["Resources"].get(name)
    return res.get("Type") if isinstance(res, dict) else None


def _check_uses(value, where, converted, notes):
    """Notes Ref and Fn::GetAtt of converted resources (their values change)."""
    if isinstance(value, dict):
        if len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == "Ref" and inner in converted:
                notes.append({"at": where, "use": "Ref %s" % inner, "note": "was ecsTasks' physical ID (an MD5 of stack and logical ID); now the TaskRun's Id"})
                return
            if key == "Fn::GetAtt":
                parts = inner if isinstance(inner, list) else str(inner).split(".", 1)
                if parts and parts[0] in converted:
                    attr = parts[1] if len(parts) > 1 else ""
                    if isinstance(attr, str) and attr in TASKRUN_ATTRIBUTES:
                        notes.append({"at": where, "use": "Fn::GetAtt %s.%s" % (parts[0], attr), "note": "a TaskRun attribute"})
                    else:
                        notes.append({"at": where, "use": "Fn::GetAtt %s.%s" % (parts[0], attr), "note": "not a TaskRun attribute (%s): fix it before deploying" % ", ".join(TASKRUN_ATTRIBUTES)})
                    return
            if key == "Fn::Sub":
                text = inner if isinstance(inner, str) else (inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], str) else "")
                for var in cfnyaml.sub_variables(text):
                    parts = var.split(".", 1)
                    if parts[0] in converted:
                        if len(parts) == 1:
                            notes.append({"at": where, "use": "${%s}" % var, "note": "was ecsTasks' physical ID; now the TaskRun's Id"})
                        elif parts[1] not in TASKRUN_ATTRIBUTES:
                            notes.append({"at": where, "use": "${%s}" % var, "note": "not a TaskRun attribute: fix it before deploying"})
                        else:
                            notes.append({"at": where, "use": "${%s}" % var, "note": "a TaskRun attribute"})
        for item in value.values():
            _check_uses(item, where, converted, notes)
    elif isinstance(value, list):
        for item in value:
            _check_uses(item, where, converted, notes)


def steps_text(converted, remove, removed_now, blocked):
    if not converted:
        if removed_now:
            return [
                "1. Deploy this template as an update: it deletes %s. No ecsTasks custom resource "
                "is left in the template, so nothing calls the function any more and the deletion is "
                "an ordinary one." % ", ".join(sorted(removed_now)),
            ]
        if remove:
            return [
                "No ecsTasks custom resource is left: rerun with --remove-function (or delete %s by "
                "hand) and deploy that, once the conversion has been deployed." % ", ".join(sorted(remove)),
            ]
        return []
    names = ", ".join(c["resource"] for c in converted)
    steps = [
        "1. Deploy the converted template as an update of the live stack (a change set shows %s "
        "with Replacement: True). CloudFormation creates each TaskRun (AdoptExisting: no task runs; "
        "the properties become the last successful run) and then, in the cleanup phase, sends Delete "
        "for each old custom resource to the ecsTasks function, which is still there." % names,
        "2. Check: the stack is UPDATE_COMPLETE, the old custom resources are DELETE_COMPLETE in its "
        "events, and `aws ecs list-tasks --cluster <cluster> --started-by <TaskRun Id>` lists no task, "
        "running or (with --desired-status STOPPED) stopped (the Id is `Ref` of the TaskRun).",
    ]
    if remove and not removed_now:
        steps.append(
            "3. In a second deployment remove %s (rerun this converter on the converted template with "
            "--remove-function, or delete them by hand). Not in the first: the old custom resources' "
            "Delete still needs the function." % ", ".join(sorted(remove))
        )
    elif removed_now:
        steps.append(
            "3. (--remove-function) %s are already gone from this output and are deleted in the same "
            "update: see the removal risk in the report." % ", ".join(sorted(removed_now))
        )
    elif blocked:
        steps.append("3. The ecsTasks function is still referred to (see removal.blocked); remove those uses, then the function, in a later deployment.")
    steps.append(
        "%d. From then on a template change runs the tasks as TaskRun's rules say (RunOnUpdate, "
        "UpdateCriteria, Triggers): e.g. a new task definition revision runs the migration. "
        "AdoptExisting only acts on a CREATE made by an update; it may stay." % (len(steps) + 1)
    )
    return steps


REMOVAL_WHY_LATER = (
    "Why a second deployment: changing Type replaces each custom resource. CloudFormation "
    "creates the TaskRun during the update and deletes the old custom resource only in the "
    "cleanup phase (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS), by sending a Delete request to the "
    "ServiceToken the old resource was created with, and waiting for the function's answer at "
    "the pre-signed S3 URL. Resources removed from the template are deleted in that same "
    "cleanup phase. CloudFormation orders those deletions by the dependencies it knows of "
    "(here the ServiceToken's Fn::GetAtt/Fn::Sub); when it does not know of one (a ServiceToken "
    "given as a literal ARN, an ImportValue or a parameter) nothing keeps the function, its role "
    "or its log group alive until the Delete is answered. A Delete sent to a function that is "
    "gone (or that can no longer assume its deleted role) gets no answer: CloudFormation waits "
    "for the custom resource timeout (one hour unless ServiceTimeout says less), then marks the "
    "old resource DELETE_FAILED; a cleanup failure does not roll the stack back, but the stack "
    "sits in cleanup meanwhile and the ecsTasks delete (which stops tasks it started that still "
    "run) never happens. Keeping the function for one deployment takes that risk away; "
    "removing it afterwards is an ordinary update (a python2.7 function can still be deleted)."
)

REMOVAL_CLEANUP = (
    "No custom resource of this template uses the ecsTasks function any more, so once the "
    "stack runs this template nothing sends the function a request: removing it and what "
    "only it used is an ordinary update. Deploy it only after the converted template has been "
    "deployed: onto a stack that still has the ecsTasks custom resources it would convert and "
    "remove in one update, as --remove-function does (see cfn/ecstasks/README.md)."
)

REMOVAL_RISK_NOW = (
    "--remove-function: the function and what only it used are deleted in the same update "
    "as the old custom resources. This relies on CloudFormation deleting each old custom "
    "resource (and getting the function's answer) before the function, its role and its "
    "log group: true only for the dependencies it knows of. If it goes wrong the old "
    "resource ends DELETE_FAILED after up to an hour of waiting (the stack stays "
    "UPDATE_COMPLETE; the orphaned custom resource costs nothing, but ecsTasks' Delete never "
    "ran). Use it when the ServiceToken is a Fn::GetAtt or Fn::Sub of the function in this "
    "template and you accept that wait as the worst case."
)


def format_report(report, globs=False):
    out = []
    w = out.append
    w("ecsTasks -> Org::ECS::TaskRun: %s (%s)" % (report["input"], report["format"]))
    fns = report["ecs_tasks_functions"]
    if fns:
        for f in fns:
            w("  ecsTasks function %s: %s" % (f["resource"], "; ".join(f["why"])))
    else:
        w("  no ecsTasks function in this template")
    if not report["converted"]:
        w("")
        w("Nothing to convert: no custom resource's ServiceToken is an ecsTasks function%s." % (
            " or matches --service-token" if globs else ""))
    for c in report["converted"]:
        w("")
        w("%s: %s -> %s" % (c["resource"], c["from_type"], c["to_type"]))
        w("  found: %s" % c["why"])
        width = max([len(r["ecsTasks"]) for r in c["mapping"]] + [8])
        for r in c["mapping"]:
            dst = r["TaskRun"] or "(removed)"
            w("  %-*s -> %-14s %s" % (width, r["ecsTasks"], dst, r["value"]))
            if r["note"] and r["note"] != "same":
                w("  %-*s    %s" % (width, "", r["note"]))
        for ch in c["changes"]:
            if ch.startswith("DependsOn"):
                w("  %s" % ch)
        for n in c["notes"]:
            w("  note: %s" % n)
        for u in c["unmapped"]:
            w("  NOT MAPPED %s = %s: %s" % (u["path"], u["value"], u["reason"]))
    if report["left_alone"]:
        w("")
        w("Left alone:")
        for la in report["left_alone"]:
            w("  %s (%s): %s" % (la["resource"], la["type"], la["why"]))
    if report["references_to_converted"]:
        w("")
        w("Uses of the converted resources:")
        for r in report["references_to_converted"]:
            w("  %s: %s - %s" % (r["at"], r["use"], r["note"]))
    rem = report["removal"]
    w("")
    if rem["resources"]:
        w("To remove - %s:" % rem["mode"])
        for r in rem["resources"]:
            w("  %s (%s): %s" % (r["resource"], r["type"], r["why"]))
        w("  " + rem["why"])
    else:
        w("Nothing to remove.")
    for b in rem["blocked"]:
        w("  ecsTasks function %s stays: referred to by %s" % (b["function"], ", ".join(b["referred_to_by"])))
    for r in rem["review"]:
        w("  review: %s (%s) is used only by %s; not removed by the converter" % (r["resource"], r["type"], ", ".join(r["used_by"])))
    if rem["parameters_left_unused"]:
        w("  parameters used only by what is removed (left in place, since removing a parameter changes how the stack is deployed): %s" % ", ".join(rem["parameters_left_unused"]))
    if report["steps"]:
        w("")
        w("Steps:")
        for s in report["steps"]:
            w("  " + s)
    w("")
    w("Output: %s%s" % (report.get("output_path") or "(not written)", " - " + report["output"]["how"] if report["output"]["how"] else ""))
    if report["status"] == "incomplete":
        n = sum(len(c["unmapped"]) for c in report["converted"])
        w("NOT READY: %d value(s) could not be mapped; they are left in place, so the template fails validation until they are fixed (exit 1)." % n)
    elif report["status"] == "converted":
        w("Converted %d resource(s)." % len(report["converted"]))
    else:
        w("Nothing converted.")
    return "\n".join(out) + "\n"


def default_output_path(path, fmt):
    root, ext = os.path.splitext(path)
    return "%s.taskrun%s" % (root, ext or (".json" if fmt == "json" else ".yaml"))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="convert.py",
        description="Convert ecsTasks custom resources (lambda-ecs-tasks) to Org::ECS::TaskRun.",
    )
    parser.add_argument("input", help="CloudFormation template, YAML or JSON")
    parser.add_argument("-o", "--output", help="where to write the converted template ('-': stdout, the report then goes to stderr); default INPUT with .taskrun before its extension")
    parser.add_argument("--report", help="also write the report as JSON to this file")
    parser.add_argument("--service-token", action="append", default=[], metavar="GLOB",
                        help="convert custom resources whose ServiceToken matches this glob (fnmatch, case-sensitive): a literal ARN as written, ImportValue:<export name>, Ref:<parameter> or the parameter's Default, Fn::Sub's string; repeatable")
    parser.add_argument("--function", action="append", default=[], metavar="LOGICAL_ID",
                        help="treat this Lambda function of the template as the ecsTasks function even if its Handler/name do not say so; repeatable")
    parser.add_argument("--skip", action="append", default=[], metavar="LOGICAL_ID", help="leave this custom resource alone; repeatable")
    parser.add_argument("--remove-function", action="store_true",
                        help="drop the ecsTasks function and what only it used from the output (same deployment; see the report for the risk)")
    parser.add_argument("--no-pin-timeout", dest="pin_timeout", action="store_false",
                        help="when Timeout is absent, leave it absent (TaskRun's 3600 s) instead of writing ecsTasks' 290")
    args = parser.parse_args(argv)

    try:
        template = Template(args.input)
    except Unreadable as err:
        print("convert.py: %s" % err, file=sys.stderr)
        if args.report:
            _write_json(args.report, {"input": args.input, "status": "unreadable", "exit_code": 2, "error": str(err)})
        return 2

    text, report = convert(
        template,
        token_globs=args.service_token,
        functions=args.function,
        skip=args.skip,
        remove_function=args.remove_function,
        pin_timeout=args.pin_timeout,
    )
    out_path = args.output or default_output_path(args.input, template.format)
    report_stream = sys.stdout
    if out_path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        report_stream = sys.stderr
        report["output_path"] = "(stdout)"
    else:
        with open(out_path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        report["output_path"] = out_path
    report_stream.write(format_report(report, globs=bool(args.service_token)))
    if args.report:
        _write_json(args.report, report)
    return report["exit_code"]


def _write_json(path, data):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")


if __name__ == "__main__":
    sys.exit(main())
