"""The Rust model of a resource type, generated from its schema (`cfn generate`).

As the Go plugin writes model.go, this writes `src/model/generated.rs`: one struct per
object of the schema, named and shaped by cloudformation-cli's own flattener and model
resolver (the root is `ResourceModel`, a definition keeps its name, an inline object
takes its property's), plus the names of the read-only and write-only properties.

Types: `string` is `String`, `boolean` `bool`, `number` `f64`, `integer` `i32` when its
`minimum` and `maximum` fit one (the width the AWS SDKs give bounded integers), else
`i64`; an array is a `Vec`, an object with `patternProperties` a `BTreeMap<String, _>`, a
free-form object a `serde_json::Map`, anything else (several types, no type)
`serde_json::Value`. Enums stay `String`. A property outside `required` is an `Option`.
Booleans, integers and numbers are read with `cfn_protocol::lenient::deserialize`, so a
model takes CloudFormation's strings ("5", "true") as well as native JSON, and writes
native JSON.

`src/model/codegen.json` (optional) departs from those defaults:

    {
      "rustTypes": {"/properties/Count": "u32"},
      "handWrittenDebug": ["/definitions/KeyValuePair"]
    }

`rustTypes` gives an integer or number property (by its JSON pointer in the schema) another
Rust type, which must hold every value the schema allows (`u32` needs a `minimum` of at
least 0 and a `maximum` up to u32::MAX); `handWrittenDebug` leaves `Debug` out of a
model's derives, for a hand-written one (one that hides secrets, say).
"""
import json
import re
from pathlib import Path

from rpdk.core.exceptions import ModelResolverError
from rpdk.core.jsonutils.flattener import JsonSchemaFlattener
from rpdk.core.jsonutils.resolver import (
    UNDEFINED,
    ContainerType,
    ModelResolver,
    base_class_from_ref,
)
from rpdk.core.jsonutils.utils import FlatteningError

MODEL_FILE = "src/model/generated.rs"
SETTINGS_FILE = "src/model/codegen.json"
BASE_MODEL = "ResourceModel"
LENIENT = "cfn_protocol::lenient::deserialize"

# Rust type -> (smallest, largest) value
INTEGER_TYPES = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}
NUMBER_TYPES = ("f64", "f32")
# i64 and u64 need no bound on their open side: serde_json reads no integer beyond them.
UNBOUNDED_BELOW = ("i64",)
UNBOUNDED_ABOVE = ("i64", "u64")

# Identifiers that cannot be raw (r#self is not valid Rust): they get a trailing _.
NOT_RAW = {"self", "Self", "super", "crate", "extern", "_"}
KEYWORDS = {
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "false",
    "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
}  # fmt: skip
# Type names the generated code itself uses: a model of that name would shadow them.
TAKEN_TYPE_NAMES = {"Option", "Vec", "String", "Box", "BTreeMap", "Self"}

WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
# A doc line starting with one of these would be Markdown structure, not text.
MARKDOWN_START = re.compile(r"^([-+*>#|=]|[0-9]+[.)]$|```)")
MAX_WIDTH = 100


class ModelError(Exception):
    """The schema (or src/model/codegen.json) cannot be made into a Rust model."""


def load_settings(root):
    """src/model/codegen.json of the project at `root`, or no settings."""
    path = Path(root) / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ModelError(f"{SETTINGS_FILE}: {e}") from e
    try:
        settings = json.loads(text)
    except ValueError as e:
        raise ModelError(f"{SETTINGS_FILE} is not JSON: {e}") from e
    if not isinstance(settings, dict):
        raise ModelError(f"{SETTINGS_FILE} must hold a JSON object")
    unknown = sorted(set(settings) - {"$comment", "rustTypes", "handWrittenDebug"})
    if unknown:
        raise ModelError(
            f"{SETTINGS_FILE}: unknown keys {', '.join(unknown)} "
            "(it takes rustTypes and handWrittenDebug)"
        )
    return settings


def snake_case(name):
    """A property name as a Rust field: EnableECSManagedTags -> enable_ecs_managed_tags.
    A lone capital that ends a word belongs to it (SizeInGiB -> size_in_gib); a keyword
    becomes a raw identifier (Type -> r#type)."""
    words = []
    for match in WORD.finditer(name):
        word = match.group(0)
        lone_capital = len(word) == 1 and word.isupper()
        follows_lowercase = words and match.start() > 0 and name[match.start() - 1].islower()
        if lone_capital and follows_lowercase:
            words[-1] += word
        else:
            words.append(word)
    ident = "_".join(w.lower() for w in words) or "field"
    if ident[0].isdigit():
        ident = f"_{ident}"
    if ident in NOT_RAW:
        return f"{ident}_"
    if ident in KEYWORDS:
        return f"r#{ident}"
    return ident


def type_name(name):
    """A model name as a Rust type: its letters and digits, each part capitalised."""
    parts = re.findall(r"[A-Za-z0-9]+", name)
    ident = "".join(p[0].upper() + p[1:] for p in parts) or "Model"
    if ident[0].isdigit():
        ident = f"Model{ident}"
    if ident in TAKEN_TYPE_NAMES:
        ident = f"{ident}Model"
    return ident


def pointer(path):
    """A schema path (tuple) as a JSON pointer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _original(schema, path):
    """The subschema of the unflattened schema at `path`, or {}: the flattener drops the
    description of a property that is a $ref."""
    node = schema
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return node if isinstance(node, dict) else {}


def render_model(schema, settings=None):
    """The text of src/model/generated.rs for `schema` (a resource schema, as a dict)."""
    settings = settings or {}
    try:
        flattened = JsonSchemaFlattener(schema).flatten_schema()
        resolved = ModelResolver(flattened, BASE_MODEL).resolve_models()
    except (FlatteningError, ModelResolverError) as e:
        raise ModelError(f"the schema cannot be made into models: {e}") from e
    except (KeyError, TypeError, ValueError) as e:  # cloudformation-cli's own limits
        raise ModelError(f"the schema cannot be made into models ({type(e).__name__}: {e})") from e

    names = {
        path: BASE_MODEL if path == () else base_class_from_ref(path) for path in flattened
    }
    rust_names = {}
    for path, name in names.items():
        rust = type_name(name)
        if rust in rust_names.values():
            other = next(p for p, n in rust_names.items() if n == rust)
            raise ModelError(
                f"the models at {pointer(other) or '#'} and {pointer(path)} would both be "
                f"the Rust type {rust}"
            )
        rust_names[path] = rust
    by_name = {name: path for path, name in names.items()}

    overrides = dict(settings.get("rustTypes") or {})
    hand_debug = list(settings.get("handWrittenDebug") or [])
    unknown_debug = [p for p in hand_debug if p not in {pointer(path) for path in flattened}]
    if unknown_debug:
        raise ModelError(
            f"{SETTINGS_FILE}: handWrittenDebug names no model of the schema: "
            f"{', '.join(unknown_debug)}"
        )

    generator = _Generator(schema, flattened, resolved, names, rust_names, by_name, overrides)
    structs = [
        generator.struct(path, pointer(path) in hand_debug) for path in flattened
    ]
    unused = sorted(set(overrides) - generator.used_overrides)
    if unused:
        raise ModelError(
            f"{SETTINGS_FILE}: rustTypes names no integer or number property of the "
            f"schema: {', '.join(unused)}"
        )

    type_name_of_schema = schema.get("typeName", "the resource type")
    lines = [
        "// @generated by `cfn generate` (the rust plugin of the CloudFormation CLI) from the",
        f"// schema of {type_name_of_schema}: do not edit, `cfn generate` rewrites it. To change",
        f"// the model, change schema.json (and the generator's settings, {SETTINGS_FILE})",
        "// and run `cfn generate` in the type's folder.",
        "",
        f"//! The resource model of {type_name_of_schema}, as its schema declares it.",
        "",
        "// A handler need not read every property the schema declares.",
        "#![allow(dead_code)]",
        "",
    ]
    lines += _names_const(
        "READ_ONLY",
        _property_names(schema, "readOnlyProperties"),
        "The properties CloudFormation never takes from a template "
        "(`readOnlyProperties`): the handlers set them.",
    )
    lines.append("")
    lines += _names_const(
        "WRITE_ONLY",
        _property_names(schema, "writeOnlyProperties"),
        "The properties no handler returns (`writeOnlyProperties`).",
    )
    for struct in structs:
        lines.append("")
        lines += struct
    return "\n".join(lines) + "\n"


def _property_names(schema, key):
    """The names (paths below /properties/) of a list of property pointers."""
    found = []
    for entry in schema.get(key) or []:
        if isinstance(entry, str) and entry.startswith("/properties/"):
            found.append(entry[len("/properties/"):])
    return found


def _names_const(name, values, doc):
    lines = _doc(doc, 0)
    head = f"pub const {name}: [&str; {len(values)}] = ["
    items = [json.dumps(v, ensure_ascii=False) for v in values]
    one_line = head + ", ".join(items) + "];"
    if len(one_line) <= MAX_WIDTH:
        return lines + [one_line]
    return lines + [head] + [f"    {item}," for item in items] + ["];"]


def _doc(text, indent):
    """`text` as /// lines wrapped to the page, no line starting as Markdown would."""
    pad = " " * indent + "/// "
    width = MAX_WIDTH - 8 - len(pad)
    words = " ".join(str(text).split()).replace("```", "'''").split(" ")
    lines, current = [], []
    for word in words:
        if current and len(" ".join(current + [word])) > width:
            if MARKDOWN_START.match(word) and len(current) > 1:
                carried = current.pop()
                lines.append(current)
                current = [carried]
            else:
                lines.append(current)
                current = []
        current.append(word)
    if current:
        lines.append(current)
    return [(pad + " ".join(line)).rstrip() for line in lines if line != [""]]


class _Generator:
    def __init__(self, schema, flattened, resolved, names, rust_names, by_name, overrides):
        self.schema = schema
        self.flattened = flattened
        self.resolved = resolved
        self.names = names
        self.rust_names = rust_names
        self.by_name = by_name
        self.overrides = overrides
        self.used_overrides = set()
        self.inline_edges = self._inline_edges()

    def _inline_edges(self):
        """model path -> the model paths its fields hold directly (not in a Vec or map):
        a cycle of those needs a Box."""
        edges = {}
        for path in self.flattened:
            targets = set()
            for resolved in self.resolved[self.names[path]].values():
                if resolved.container == ContainerType.MODEL:
                    targets.add(self.by_name[resolved.type])
            edges[path] = targets
        return edges

    def _reaches(self, start, goal):
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            if node in seen:
                continue
            seen.add(node)
            stack.extend(self.inline_edges.get(node, ()))
        return False

    def struct(self, path, hand_debug):
        sub_schema = self.flattened[path]
        name = self.rust_names[path]
        original = _original(self.schema, path) if path else self.schema
        required = set(sub_schema.get("required") or [])
        description = original.get("description") or sub_schema.get("description")
        lines = _doc(description, 0) if description else []
        derives = ["Debug", "Clone", "Default", "PartialEq"]
        if hand_debug:
            derives.remove("Debug")
        lines.append(
            f"#[derive({', '.join(derives)}, serde::Deserialize, serde::Serialize)]"
        )
        lines.append(f"pub struct {name} {{")
        fields = {}
        for prop, resolved in self.resolved[self.names[path]].items():
            prop_path = path + ("properties", prop)
            field = snake_case(prop)
            if field in fields:
                raise ModelError(
                    f"the properties {fields[field]} and {prop} of {pointer(path) or '#'} "
                    f"would both be the Rust field {field}"
                )
            fields[field] = prop
            flat_schema = sub_schema["properties"][prop]
            rust, lenient = self.rust_type(resolved, flat_schema, prop_path)
            if resolved.container == ContainerType.MODEL:
                target = self.by_name[resolved.type]
                if self._reaches(target, path):
                    rust = f"Box<{rust}>"
            optional = prop not in required
            if optional:
                rust = f"Option<{rust}>"
            doc = _original(self.schema, prop_path).get("description") or flat_schema.get(
                "description"
            )
            allowed = _enum_values(flat_schema)
            if doc or allowed:
                text = doc or ""
                if allowed:
                    text += f" Allowed values: {', '.join(allowed)}."
                lines += _doc(text.strip(), 4)
            lines.append(f"    #[serde(rename = {json.dumps(prop, ensure_ascii=False)})]")
            if optional:
                lines.append('    #[serde(default, skip_serializing_if = "Option::is_none")]')
            if lenient:
                lines.append(f'    #[serde(deserialize_with = "{LENIENT}")]')
            lines.append(f"    pub {field}: {rust},")
        lines.append("}")
        return lines

    def rust_type(self, resolved, flat_schema, prop_path):
        """(Rust type, whether its scalars are read leniently)."""
        container = resolved.container
        if container == ContainerType.MODEL:
            return self.rust_names[self.by_name[resolved.type]], False
        if container == ContainerType.MULTIPLE:
            return "serde_json::Value", False
        if container in (ContainerType.LIST, ContainerType.SET):
            items = flat_schema.get("items") if isinstance(flat_schema, dict) else None
            inner, lenient = self.rust_type(resolved.type, items or {}, prop_path)
            return f"Vec<{inner}>", lenient
        if container == ContainerType.DICT:
            values = resolved.type
            if values.container == ContainerType.PRIMITIVE and values.type == UNDEFINED:
                if flat_schema.get("type") == "object":
                    return "serde_json::Map<String, serde_json::Value>", False
                return "serde_json::Value", False
            patterns = list((flat_schema.get("patternProperties") or {}).values())
            inner, lenient = self.rust_type(values, patterns[0] if patterns else {}, prop_path)
            return f"std::collections::BTreeMap<String, {inner}>", lenient
        return self.primitive(resolved.type, flat_schema, prop_path)

    def primitive(self, json_type, flat_schema, prop_path):
        where = pointer(prop_path)
        override = self.overrides.get(where)
        if json_type == "string":
            return "String", False
        if json_type == "boolean":
            return "bool", True
        if json_type == "number":
            if override is not None:
                self.used_overrides.add(where)
                if override not in NUMBER_TYPES:
                    raise ModelError(
                        f"{SETTINGS_FILE}: rustTypes {where}: {override} is not a Rust "
                        f"float type for a number ({', '.join(NUMBER_TYPES)})"
                    )
                return override, True
            return "f64", True
        if json_type == "integer":
            if override is not None:
                self.used_overrides.add(where)
                _check_integer_override(where, override, flat_schema)
                return override, True
            return _default_integer(flat_schema), True
        return "serde_json::Value", False


def _bounds(flat_schema):
    """(smallest, largest) integer the schema allows; None where unbounded."""
    low = flat_schema.get("minimum")
    exclusive_low = flat_schema.get("exclusiveMinimum")
    high = flat_schema.get("maximum")
    exclusive_high = flat_schema.get("exclusiveMaximum")
    lows = [v for v in (low,) if _is_number(v)] + [
        v + 1 for v in (exclusive_low,) if _is_number(v)
    ]
    highs = [v for v in (high,) if _is_number(v)] + [
        v - 1 for v in (exclusive_high,) if _is_number(v)
    ]
    return (max(lows) if lows else None, min(highs) if highs else None)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _default_integer(flat_schema):
    low, high = _bounds(flat_schema)
    smallest, largest = INTEGER_TYPES["i32"]
    if low is not None and high is not None and smallest <= low and high <= largest:
        return "i32"
    return "i64"


def _check_integer_override(where, rust, flat_schema):
    if rust not in INTEGER_TYPES:
        raise ModelError(
            f"{SETTINGS_FILE}: rustTypes {where}: {rust} is not a Rust integer type "
            f"({', '.join(INTEGER_TYPES)})"
        )
    smallest, largest = INTEGER_TYPES[rust]
    low, high = _bounds(flat_schema)
    if rust not in UNBOUNDED_BELOW and (low is None or low < smallest):
        raise ModelError(
            f"{SETTINGS_FILE}: rustTypes {where}: {rust} cannot hold every value the "
            f"schema allows: it needs a minimum of at least {smallest} (schema: "
            f"{'none' if low is None else low})"
        )
    if rust not in UNBOUNDED_ABOVE and (high is None or high > largest):
        raise ModelError(
            f"{SETTINGS_FILE}: rustTypes {where}: {rust} cannot hold every value the "
            f"schema allows: it needs a maximum of at most {largest} (schema: "
            f"{'none' if high is None else high})"
        )


def _enum_values(flat_schema):
    """The allowed values of a string enum (or of an array's items), for the docs."""
    if not isinstance(flat_schema, dict):
        return []
    values = flat_schema.get("enum")
    if values is None and isinstance(flat_schema.get("items"), dict):
        values = flat_schema["items"].get("enum")
    if not isinstance(values, list):
        return []
    return [str(v) for v in values]
