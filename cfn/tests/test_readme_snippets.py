"""Every CloudFormation fragment in the root README.md, linted with the documented command:

    cfn-lint --append-rules cfn/cfnlint_taskrun -- template.yaml

    .venv/bin/python -m pytest -q -p no:cacheprovider cfn/tests/test_readme_snippets.py

Which blocks: a fenced code block whose info string is `yaml`, `yml` or empty, and whose
text has a `Resources:` line or a resource `Type: Org::ECS::TaskRun`-like line (three
`::`-separated names). A block marked with `<!-- cfn-lint: skip -->` on the line just
before its fence (a deliberate counter-example, say) is left out.

How a fragment is made whole (only what it lacks is added; its own lines are kept verbatim,
so a finding maps back to a README line):
- a template (it has Resources, Parameters, Outputs... at its top level): as it is;
- a map of resources (`Name: {Type: ..., Properties: ...}` entries): put under
  `Resources:` (indented by 2);
- one resource (`Type:` and `Properties:` at its top level): put under
  `Resources:` / `Fragment:` (indented by 4);
then every name it uses but does not define is added:
- `!Ref X` / `${X}`: a parameter X, of type CommaDelimitedList where the property's schema
  (the type's schema.json, or cfn-lint's for AWS types) wants a list, Number where it wants
  a number, else String;
- `!GetAtt X.Attr` / `${X.Attr}` / `DependsOn: X`: a resource X of type Custom::Placeholder
  (a custom resource: it has every attribute);
- a condition (`Condition: C`, `!If [C, ...]`): C, equal to a parameter CSwitch ("true" or
  "false"), so that conditions stay independent of one another;
- `!FindInMap [M, K1, K2]`: mapping M with K1/K2 holding a value the property's schema
  accepts (its first enum value, its minimum, else "placeholder").
A finding is reported at its README line (or as "in a line the test added").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from taskrun_lint import REPO, lint

README = REPO / "README.md"

TEMPLATE_SECTIONS = (
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Resources",
    "Outputs",
)
SKIP_MARK = "<!-- cfn-lint: skip -->"
_RESOURCE_TYPE = re.compile(
    r"^\s*(-\s+)?Type:\s*[\"']?[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+", re.MULTILINE
)
_RESOURCES = re.compile(r"^\s*Resources:\s*(#.*)?$", re.MULTILINE)
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


@dataclass
class Block:
    fence_line: int  # README line of the opening fence
    info: str
    lines: list[str]  # the content, fence indentation removed
    skip: bool

    @property
    def first_line(self) -> int:
        return self.fence_line + 1

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def is_cloudformation(self) -> bool:
        return self.info.lower() in ("yaml", "yml", "") and bool(
            _RESOURCES.search(self.text) or _RESOURCE_TYPE.search(self.text)
        )


def blocks(text: str) -> list[Block]:
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        skip = i > 0 and lines[i - 1].strip() == SKIP_MARK
        body = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        found.append(Block(i + 1, m["info"], body, skip))
        i = j + 1
    return found


ALL_BLOCKS = blocks(README.read_text())
FRAGMENTS = [b for b in ALL_BLOCKS if b.is_cloudformation() and not b.skip]


# --- making a fragment whole ------------------------------------------------------------


def _decode(text: str):
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.loads(text)


def _schemas() -> dict[str, dict]:
    found = {}
    for link in sorted((REPO / "cfn" / "registry-schemas").glob("*.json")):
        schema = json.loads(link.read_text())
        found[schema["typeName"]] = schema
    return found


REGISTRY = _schemas()


def _schema_at(template: dict, path: list) -> dict | None:
    """The schema of the resource property at `path` ($ref resolved), if known."""
    if len(path) < 4 or path[0] != "Resources" or path[2] != "Properties":
        return None
    resource = template.get("Resources", {}).get(path[1])
    type_name = resource.get("Type") if isinstance(resource, dict) else None
    if not isinstance(type_name, str):
        return None
    schema = REGISTRY.get(type_name)
    if schema is None:
        try:
            from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", type_name).schema
        except Exception:  # noqa: BLE001 - unknown type: no schema, fall back
            return None

    def resolve(node):
        for _ in range(20):
            if isinstance(node, dict) and "$ref" in node:
                ref = node["$ref"]
                if not ref.startswith("#/"):
                    return None
                node = schema
                for part in ref[2:].split("/"):
                    node = node.get(part, {})
            else:
                break
        return node

    node: Any = schema
    for seg in path[3:]:
        node = resolve(node)
        if not isinstance(node, dict):
            return None
        node = node.get("items") if isinstance(seg, int) else node.get("properties", {}).get(seg)
        if node is None:
            return None
    node = resolve(node)
    return node if isinstance(node, dict) else None


def _type_at(template: dict, path: list) -> str | None:
    """The JSON type the schema of the resource property at `path` declares, if known."""
    kind = (_schema_at(template, path) or {}).get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    return kind


def _placeholder(schema: dict | None) -> Any:
    """A value that `schema` (a property's, if known) accepts, for a mapping's entry."""
    schema = schema or {}
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return "true"
    if kind == "array":
        return ["placeholder"] * max(1, schema.get("minItems", 1))
    return "placeholder"


@dataclass
class Wanted:
    refs: dict[str, str] = field(default_factory=dict)  # name -> parameter type
    resources: set[str] = field(default_factory=set)
    conditions: set[str] = field(default_factory=set)
    mappings: dict[str, tuple] = field(default_factory=dict)  # name -> (key, key, value)


def _wanted(template: dict) -> Wanted:
    wanted = Wanted()

    def ref(name, path):
        if not isinstance(name, str) or name.startswith("AWS::"):
            return
        kind = _type_at(template, path)
        param = {"array": "CommaDelimitedList", "integer": "Number", "number": "Number"}.get(
            kind or "", "String"
        )
        wanted.refs.setdefault(name, param)

    def sub(text, variables):
        for var in re.findall(r"\$\{([^!}][^}]*)\}", text):
            var = var.strip()
            if var in variables:
                continue
            if "." in var:
                wanted.resources.add(var.split(".", 1)[0])
            elif not var.startswith("AWS::"):
                wanted.refs.setdefault(var, "String")

    def walk(node, path):
        if isinstance(node, dict):
            if len(node) == 1:
                (key, value), = node.items()
                if key == "Ref":
                    ref(value, path)
                elif key == "Fn::GetAtt":
                    if isinstance(value, str) and "." in value:
                        wanted.resources.add(value.split(".", 1)[0])
                    elif isinstance(value, list) and value and isinstance(value[0], str):
                        wanted.resources.add(value[0])
                elif key == "Fn::Sub":
                    if isinstance(value, str):
                        sub(value, {})
                    elif isinstance(value, list) and value and isinstance(value[0], str):
                        sub(value[0], value[1] if len(value) > 1 and isinstance(value[1], dict) else {})
                elif key == "Fn::If" and isinstance(value, list) and value:
                    if isinstance(value[0], str):
                        wanted.conditions.add(value[0])
                elif key == "Fn::FindInMap" and isinstance(value, list) and len(value) == 3:
                    if all(isinstance(v, str) for v in value):
                        entry = _placeholder(_schema_at(template, path))
                        wanted.mappings.setdefault(value[0], (value[1], value[2], entry))
                elif key == "Condition" and isinstance(value, str) and path[:1] == ["Conditions"]:
                    wanted.conditions.add(value)
            for key, value in node.items():
                walk(value, path + [key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, path + [index])

    walk(template, [])
    resources = template.get("Resources")
    for resource in (resources.values() if isinstance(resources, dict) else []):
        if not isinstance(resource, dict):
            continue
        depends = resource.get("DependsOn", [])
        for name in depends if isinstance(depends, list) else [depends]:
            if isinstance(name, str):
                wanted.resources.add(name)
        if isinstance(resource.get("Condition"), str):
            wanted.conditions.add(resource["Condition"])
    for section, names in (
        ("Parameters", None),
        ("Resources", None),
    ):
        defined = template.get(section)
        if isinstance(defined, dict):
            for name in defined:
                wanted.refs.pop(name, None)
                if section == "Resources":
                    wanted.resources.discard(name)
    for name in wanted.resources:
        wanted.refs.pop(name, None)
    for section, have in (("Conditions", wanted.conditions), ("Mappings", wanted.mappings)):
        defined = template.get(section)
        if isinstance(defined, dict):
            for name in list(have):
                if name in defined:
                    have.discard(name) if isinstance(have, set) else have.pop(name)
    return wanted


@dataclass
class Whole:
    text: str
    readme_lines: list[int | None]  # README line of each template line (None: added)
    notes: list[str]


def make_whole(block: Block) -> Whole:
    lines = list(block.lines)
    numbers: list[int | None] = [block.first_line + i for i in range(len(lines))]
    notes: list[str] = []
    try:
        parsed = _decode(block.text)
    except Exception:  # noqa: BLE001 - cfn-lint reports the syntax error with its line
        return Whole(block.text, numbers, ["does not parse as YAML: linted as it is"])

    def indent(by: int):
        nonlocal lines
        lines = [(" " * by + line) if line.strip() else line for line in lines]

    if isinstance(parsed, dict) and any(k in TEMPLATE_SECTIONS for k in parsed):
        notes.append("a template: linted as it is")
    elif isinstance(parsed, dict) and isinstance(parsed.get("Type"), str):
        indent(4)
        lines = ["Resources:", "  Fragment:"] + lines
        numbers = [None, None] + numbers
        notes.append("one resource: put under Resources:/Fragment:")
    elif (
        isinstance(parsed, dict)
        and parsed
        and all(isinstance(v, dict) and "Type" in v for v in parsed.values())
    ):
        indent(2)
        lines = ["Resources:"] + lines
        numbers = [None] + numbers
        notes.append("resources: put under Resources:")
    else:
        raise AssertionError(
            f"README.md line {block.fence_line}: this YAML block looks like CloudFormation "
            "but is neither a template, a map of resources nor one resource; make it one, "
            f"or mark it with {SKIP_MARK} on the line before its fence"
        )

    template = _decode("\n".join(lines) + "\n")
    wanted = _wanted(template)
    additions: dict[str, list[str]] = {}
    placeholder = {
        "Type": "Custom::Placeholder",
        "Properties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:placeholder"},
    }
    for name in sorted(wanted.refs):
        additions.setdefault("Parameters", []).append(f"{name}: {json.dumps({'Type': wanted.refs[name]})}")
    for name in sorted(wanted.resources):
        additions.setdefault("Resources", []).append(f"{name}: {json.dumps(placeholder)}")
    for name in sorted(wanted.conditions):
        # one switch parameter each: conditions independent of one another
        switch = f"{name}Switch"
        additions.setdefault("Parameters", []).append(
            f'{switch}: {{"Type": "String", "AllowedValues": ["true", "false"]}}'
        )
        additions.setdefault("Conditions", []).append(
            f'{name}: {{"Fn::Equals": [{{"Ref": "{switch}"}}, "true"]}}'
        )
    for name, (first, second, entry) in sorted(wanted.mappings.items()):
        additions.setdefault("Mappings", []).append(
            f"{name}: {json.dumps({first: {second: entry}})}"
        )
    if wanted.refs:
        notes.append(
            "added parameters "
            + ", ".join(f"{n} ({t})" for n, t in sorted(wanted.refs.items()))
        )
    if wanted.resources:
        notes.append("added Custom::Placeholder resources " + ", ".join(sorted(wanted.resources)))
    if wanted.conditions:
        notes.append("added conditions " + ", ".join(sorted(wanted.conditions)))
    if wanted.mappings:
        notes.append("added mappings " + ", ".join(sorted(wanted.mappings)))

    for section, entries in additions.items():
        header = next(
            (i for i, line in enumerate(lines) if re.match(rf"^{section}:\s*(#.*)?$", line)),
            None,
        )
        if header is None:
            lines += [f"{section}:"] + ["  " + e for e in entries]
            numbers += [None] * (1 + len(entries))
            continue
        child = 2
        for line in lines[header + 1 :]:
            if line.strip() and not line.lstrip().startswith("#"):
                width = len(line) - len(line.lstrip())
                child = width if width > 0 else 2
                break
        lines[header + 1 : header + 1] = [" " * child + e for e in entries]
        numbers[header + 1 : header + 1] = [None] * len(entries)
    return Whole("\n".join(lines) + "\n", numbers, notes)


# --- the tests ----------------------------------------------------------------------------


def test_the_readme_has_cloudformation_fragments():
    assert FRAGMENTS, (
        "no CloudFormation block found in README.md (```yaml blocks with Resources: or a "
        "resource Type:): has the fence style changed?"
    )


@pytest.fixture(scope="module")
def linted(tmp_path_factory):
    """Every fragment made whole, all linted by one run of the documented command."""
    directory = tmp_path_factory.mktemp("readme")
    wholes, paths = {}, {}
    for block in FRAGMENTS:
        whole = make_whole(block)
        path = directory / f"README-line-{block.fence_line}.yaml"
        path.write_text(whole.text)
        wholes[block.fence_line], paths[block.fence_line] = whole, path
    result = lint(*paths.values()) if paths else None
    return wholes, paths, result


@pytest.mark.parametrize("block", FRAGMENTS, ids=[f"README.md:{b.fence_line}" for b in FRAGMENTS])
def test_readme_fragment_lints_clean(block, linted):
    wholes, paths, result = linted
    whole, path = wholes[block.fence_line], paths[block.fence_line]
    mine = [f for f in result.findings if Path(f.file).name == path.name]
    if not mine and result.returncode != 0 and not result.findings:
        pytest.fail("cfn-lint failed without findings:\n" + result.report())
    if not mine:
        return
    end = block.fence_line + len(block.lines) + 1
    report = [
        f"README.md lines {block.fence_line}-{end} (```{block.info} block; "
        + "; ".join(whole.notes)
        + f"; linted as {path}):"
    ]
    for f in mine:
        at = whole.readme_lines[f.line - 1] if 0 < f.line <= len(whole.readme_lines) else None
        where = f"README.md:{at}" if at else f"(in a line the test added, {path.name}:{f.line})"
        report.append(f"  {where}: {f.rule} {f.message}")
        if at:
            report.append(f"      | {README.read_text().splitlines()[at - 1].rstrip()}")
    pytest.fail("\n".join(report), pytrace=False)


SAMPLE = '''\
# A README

```yaml
Parameters:
  Stage: {Type: String, AllowedValues: [dev, prod]}

Resources:
  Migrate:
    Type: Org::ECS::TaskRun
    Condition: IsProd
    Properties:
      Cluster: !Ref Cluster
      TaskDefinition: !GetAtt TaskDefinition.TaskDefinitionArn
      Countt: 3
      Timeout: !FindInMap [Sizes, small, Timeout]
      NetworkConfiguration:
        AwsvpcConfiguration: {Subnets: !Ref Subnets}
      Triggers: [!Ref Stage, !If [IsDev, a, b]]
```

<!-- cfn-lint: skip -->
```yaml
Resources:
  Wrong: {Type: Org::ECS::TaskRun}
```

- a list item with an indented fence:

  ```yaml
  Type: Org::ECS::ServiceRestart
  Properties:
    Service: !Sub "${ClusterName}/api"
    Timeout: -5
  ```

```
plain text with Type: in it
```
'''


def test_fragments_are_made_whole_and_findings_map_to_readme_lines(tmp_path):
    found = blocks(SAMPLE)
    assert [(b.fence_line, b.is_cloudformation(), b.skip) for b in found] == [
        (3, True, False),
        (22, True, True),
        (29, True, False),
        (36, False, False),
    ]
    sample_lines = SAMPLE.splitlines()
    expected = {
        3: ("E9002", sample_lines.index("      Countt: 3") + 1),
        29: ("E9005", sample_lines.index("    Timeout: -5") + 1),
    }
    wholes, paths = {}, []
    for block in (found[0], found[2]):
        whole = make_whole(block)
        path = tmp_path / f"L{block.fence_line}.yaml"
        path.write_text(whole.text)
        wholes[path.name] = (block, whole)
        paths.append(path)
    assert "added parameters Cluster (String), Subnets (CommaDelimitedList)" in wholes["L3.yaml"][1].notes
    result = lint(*paths)
    got = {}
    for f in result.findings:
        block, whole = wholes[Path(f.file).name]
        assert block.fence_line not in got, result.report()
        got[block.fence_line] = (f.rule, whole.readme_lines[f.line - 1])
    assert got == expected, result.report() + "\n" + "\n".join(w.text for _, w in wholes.values())
