"""`cfn generate` writes the Rust model (src/model/generated.rs) from the schema: the
Rust type of each JSON-schema shape, the names, lenient scalars, the read-only and
write-only names, the settings of src/model/codegen.json, and where it is written.
The crates' own tests (crates/cfn-protocol lenient.rs, src/model.rs of each type)
decode CloudFormation's strings with the generated models."""
import json
import re
import shutil
import subprocess  # nosec
from pathlib import Path

import pytest

from rpdk.rust.codegen import RustLanguagePlugin, RustPluginError
from rpdk.rust.model import (
    LENIENT,
    MODEL_FILE,
    SETTINGS_FILE,
    ModelError,
    load_settings,
    render_model,
    snake_case,
    type_name,
)

REPOSITORY = Path(__file__).resolve().parents[3]

SHAPES = {
    "typeName": "Org::Test::Shapes",
    "description": "Every shape.",
    "definitions": {
        "Item": {
            "type": "object",
            "description": "An item.",
            "properties": {
                "Name": {"type": "string"},
                "Nested": {
                    "type": "object",
                    "properties": {"Depth": {"type": "integer"}},
                },
            },
            "required": ["Name"],
        },
        "Label": {"type": "string", "maxLength": 10},
        "Tree": {
            "type": "object",
            "properties": {
                "Parent": {"$ref": "#/definitions/Tree"},
                "Children": {"type": "array", "items": {"$ref": "#/definitions/Tree"}},
            },
        },
    },
    "properties": {
        "Id": {"type": "string"},
        "Text": {"type": "string", "description": "Some text."},
        "Flag": {"type": "boolean"},
        "Small": {"type": "integer", "minimum": -5, "maximum": 100000},
        "Big": {"type": "integer", "minimum": 0},
        "Ratio": {"type": "number"},
        "Names": {"type": "array", "items": {"type": "string"}},
        "Counts": {"type": "array", "items": {"type": "integer"}},
        "Unique": {
            "type": "array",
            "insertionOrder": False,
            "uniqueItems": True,
            "items": {"type": "string"},
        },
        "Items": {"type": "array", "items": {"$ref": "#/definitions/Item"}},
        "Label": {"$ref": "#/definitions/Label"},
        "Free": {"type": "object"},
        "Limits": {
            "type": "object",
            "patternProperties": {"^[a-z]+$": {"type": "integer"}},
        },
        "Either": {"type": ["string", "integer"]},
        "Anything": {"type": "array"},
        "Inline": {
            "type": "object",
            "description": "An object of its own.",
            "properties": {"Mode": {"type": "string", "enum": ["ON", "OFF"]}},
            "required": ["Mode"],
        },
        "Tree": {"$ref": "#/definitions/Tree"},
    },
    "required": ["Text", "Flag", "Small"],
    "readOnlyProperties": ["/properties/Id"],
    "writeOnlyProperties": ["/properties/Text", "/properties/Inline/Mode"],
    "primaryIdentifier": ["/properties/Id"],
    "additionalProperties": False,
}


def fields(text, struct):
    """{field: (type, its attribute lines)} of one generated struct."""
    body = re.search(rf"pub struct {struct} \{{\n(.*?)\n\}}", text, re.S)
    assert body, f"no struct {struct}"
    found, attributes = {}, []
    for line in body.group(1).split("\n"):
        line = line.strip()
        if line.startswith("#["):
            attributes.append(line)
        elif line.startswith("pub "):
            name, rust = line[len("pub ") :].rstrip(",").split(": ", 1)
            found[name] = (rust, attributes)
            attributes = []
    return found


def types(text, struct):
    return {name: rust for name, (rust, _) in fields(text, struct).items()}


def test_each_json_schema_shape_has_its_rust_type():
    text = render_model(SHAPES)
    assert types(text, "ResourceModel") == {
        "id": "Option<String>",
        "text": "String",
        "flag": "bool",
        "small": "i32",
        "big": "Option<i64>",
        "ratio": "Option<f64>",
        "names": "Option<Vec<String>>",
        "counts": "Option<Vec<i64>>",
        "unique": "Option<Vec<String>>",
        "items": "Option<Vec<Item>>",
        "label": "Option<String>",
        "free": "Option<serde_json::Map<String, serde_json::Value>>",
        "limits": "Option<std::collections::BTreeMap<String, i64>>",
        "either": "Option<serde_json::Value>",
        "anything": "Option<Vec<serde_json::Value>>",
        "inline": "Option<Inline>",
        "tree": "Option<Tree>",
    }
    assert types(text, "Item") == {"name": "String", "nested": "Option<Nested>"}
    assert types(text, "Nested") == {"depth": "Option<i64>"}
    assert types(text, "Inline") == {"mode": "String"}
    # a model that holds itself needs a Box; in a Vec it does not
    assert types(text, "Tree") == {"parent": "Option<Box<Tree>>", "children": "Option<Vec<Tree>>"}
    # the root first, then every object in the order the flattener meets them
    assert re.findall(r"pub struct (\w+)", text)[0] == "ResourceModel"
    assert sorted(re.findall(r"pub struct (\w+)", text)) == [
        "Inline", "Item", "Nested", "ResourceModel", "Tree",
    ]  # fmt: skip


def test_fields_keep_their_json_names_and_optional_ones_may_be_absent():
    model = fields(render_model(SHAPES), "ResourceModel")
    _, attributes = model["text"]
    assert attributes == ['#[serde(rename = "Text")]']
    _, attributes = model["big"]
    assert attributes == [
        '#[serde(rename = "Big")]',
        '#[serde(default, skip_serializing_if = "Option::is_none")]',
        f'#[serde(deserialize_with = "{LENIENT}")]',
    ]


def test_booleans_integers_and_numbers_are_read_leniently():
    model = fields(render_model(SHAPES), "ResourceModel")
    lenient = {
        name for name, (_, attributes) in model.items() if any(LENIENT in a for a in attributes)
    }
    assert lenient == {"flag", "small", "big", "ratio", "counts", "limits"}


def test_derives_and_docs():
    text = render_model(SHAPES)
    assert text.count(
        "#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]"
    ) == 5
    assert "/// An object of its own.\n#[derive(" in text  # an inline object: its property's
    assert "    /// Some text.\n" in text
    assert "Allowed values: ON, OFF." in text


def test_read_only_and_write_only_names():
    text = render_model(SHAPES)
    assert 'pub const READ_ONLY: [&str; 1] = ["Id"];' in text
    assert 'pub const WRITE_ONLY: [&str; 2] = ["Text", "Inline/Mode"];' in text
    bare = render_model({"typeName": "A::B::C", "properties": {"Id": {"type": "string"}}})
    assert "pub const READ_ONLY: [&str; 0] = [];" in bare
    assert "pub const WRITE_ONLY: [&str; 0] = [];" in bare


def test_the_header_says_generated_and_how_to_regenerate():
    head = render_model(SHAPES).split("\n")[:5]
    assert head[0].startswith("// @generated by `cfn generate`")
    assert "do not edit" in " ".join(head)
    assert "run `cfn generate`" in " ".join(head)


@pytest.mark.parametrize(
    "name, field",
    [
        ("Name", "name"),
        ("TaskRoleArn", "task_role_arn"),
        ("EnableECSManagedTags", "enable_ecs_managed_tags"),
        ("AwsvpcConfiguration", "awsvpc_configuration"),
        ("SizeInGiB", "size_in_gib"),
        ("S3Bucket", "s3_bucket"),
        ("Ipv6Address", "ipv6_address"),
        ("ID", "id"),
        ("Type", "r#type"),
        ("Match", "r#match"),
        ("Self", "self_"),
        ("2Fast", "_2_fast"),
        ("with-dash", "with_dash"),
    ],
)
def test_field_names(name, field):
    assert snake_case(name) == field


@pytest.mark.parametrize(
    "name, rust",
    [
        ("Tag", "Tag"),
        ("awsVpc", "AwsVpc"),
        ("my-thing", "MyThing"),
        ("Option", "OptionModel"),
        ("String", "StringModel"),
        ("3D", "Model3D"),
    ],
)
def test_type_names(name, rust):
    assert type_name(name) == rust


def test_names_that_would_collide_are_refused():
    schema = {
        "typeName": "A::B::C",
        "properties": {"FooBar": {"type": "string"}, "Foo_Bar": {"type": "string"}},
    }
    with pytest.raises(ModelError, match="FooBar and Foo_Bar .* Rust field foo_bar"):
        render_model(schema)


def test_codegen_json_sets_integer_types_and_hand_written_debug():
    settings = {
        "rustTypes": {
            "/properties/Small": "i32",
            "/properties/Big": "u64",
            "/properties/Ratio": "f32",
            # the inline object Nested sits below Item's properties in the schema
            "/definitions/Item/properties/Nested/properties/Depth": "i64",
        },
        "handWrittenDebug": ["/definitions/Item"],
    }
    text = render_model(SHAPES, settings)
    model = types(text, "ResourceModel")
    assert (model["small"], model["big"], model["ratio"]) == ("i32", "Option<u64>", "Option<f32>")
    item = re.search(r"(#\[derive[^\n]*\])\npub struct Item ", text).group(1)
    assert item == "#[derive(Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]"


@pytest.mark.parametrize(
    "rust_types, message",
    [
        ({"/properties/Small": "u32"}, "u32 cannot hold .* minimum of at least 0"),
        ({"/properties/Small": "i16"}, "i16 cannot hold .* maximum of at most 32767"),
        ({"/properties/Big": "u32"}, "maximum of at most 4294967295 .schema: none"),
        ({"/properties/Big": "usize"}, "usize is not a Rust integer type"),
        ({"/properties/Ratio": "i32"}, "i32 is not a Rust float type"),
        ({"/properties/Text": "u8"}, "names no integer or number property .*/properties/Text"),
        ({"/properties/Nope": "u8"}, "names no integer or number property"),
    ],
)
def test_codegen_json_refuses_a_type_that_cannot_hold_the_schema(rust_types, message):
    with pytest.raises(ModelError, match=message):
        render_model(SHAPES, {"rustTypes": rust_types})


def test_codegen_json_refuses_an_unknown_model_or_key(tmp_path):
    with pytest.raises(ModelError, match="handWrittenDebug names no model .*/definitions/Nope"):
        render_model(SHAPES, {"handWrittenDebug": ["/definitions/Nope"]})
    (tmp_path / "src" / "model").mkdir(parents=True)
    (tmp_path / SETTINGS_FILE).write_text('{"rustType": {}}', encoding="utf-8")
    with pytest.raises(ModelError, match="unknown keys rustType"):
        load_settings(tmp_path)
    (tmp_path / SETTINGS_FILE).write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match="not JSON"):
        load_settings(tmp_path)
    assert load_settings(tmp_path / "elsewhere") == {}


def test_a_schema_the_resolver_refuses_is_a_model_error():
    schema = {
        "typeName": "A::B::C",
        "definitions": {"Thing": {"type": "object", "properties": {"A": {"type": "string"}}}},
        "properties": {
            "Thing": {"type": "object", "properties": {"B": {"type": "string"}}},
            "Other": {"$ref": "#/definitions/Thing"},
        },
    }
    with pytest.raises(ModelError, match="Model name conflict"):
        render_model(schema)


def test_doc_lines_fit_the_page_and_never_start_markdown():
    words = "word " * 30
    schema = {
        "typeName": "A::B::C",
        "properties": {
            "P": {
                "type": "string",
                # wrapped as is, a line would start with "-", "1." or "#": a list or a heading
                "description": f"{words}- not a list {words}1. nor this {words}# nor a heading",
            }
        },
    }
    text = render_model(schema)
    for line in text.split("\n"):
        assert len(line) <= 100, line
        doc = re.match(r"\s*/// (.*)", line)
        if doc:
            assert not re.match(r"([-+*#>]|[0-9]+[.)]) ", doc.group(1)), line


def model_sources():
    yield "shapes", render_model(SHAPES)
    for folder in (REPOSITORY, REPOSITORY / "service-restart"):
        schema = folder / "schema.json"
        if schema.is_file():
            yield folder.name, render_model(
                json.loads(schema.read_text(encoding="utf-8")), load_settings(folder)
            )


@pytest.mark.skipif(shutil.which("rustfmt") is None, reason="no rustfmt")
def test_the_generated_code_is_rustfmt_clean(tmp_path):
    for name, text in model_sources():
        path = tmp_path / f"{name}.rs"
        path.write_text(text, encoding="utf-8")
        result = subprocess.run(  # nosec
            ["rustfmt", "--edition", "2021", "--check", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"


# ------------------------------------------------------------- where it is written


def project(root, schema):
    root.mkdir(parents=True, exist_ok=True)

    def overwrite(path, contents):
        path.write_text(contents, encoding="utf-8")

    from types import SimpleNamespace  # pylint: disable=import-outside-toplevel

    return SimpleNamespace(
        root=root,
        settings={"protocolVersion": "2.0.0", "architecture": "x86_64"},
        runtime="provided.al2023",
        artifact_type="RESOURCE",
        schema=schema,
        overwrite=overwrite,
        overwrite_enabled=False,
        write_settings=lambda: None,
    )


def test_generate_always_rewrites_the_model(tmp_path):
    proj = project(tmp_path / "thing", SHAPES)
    path = proj.root / MODEL_FILE
    path.parent.mkdir(parents=True)
    path.write_text("// edited by hand\n", encoding="utf-8")
    RustLanguagePlugin().generate(proj)
    assert path.read_text(encoding="utf-8") == render_model(SHAPES)


def test_generate_reads_codegen_json_and_names_its_errors(tmp_path):
    proj = project(tmp_path / "thing", SHAPES)
    (proj.root / "src" / "model").mkdir(parents=True)
    (proj.root / SETTINGS_FILE).write_text(
        json.dumps({"rustTypes": {"/properties/Big": "u64"}}), encoding="utf-8"
    )
    RustLanguagePlugin().generate(proj)
    assert "pub big: Option<u64>," in (proj.root / MODEL_FILE).read_text(encoding="utf-8")
    (proj.root / SETTINGS_FILE).write_text(
        json.dumps({"rustTypes": {"/properties/Big": "u8"}}), encoding="utf-8"
    )
    with pytest.raises(RustPluginError, match=f"{MODEL_FILE}: {SETTINGS_FILE}: rustTypes"):
        RustLanguagePlugin().generate(proj)


def test_a_hook_gets_no_model(tmp_path):
    proj = project(tmp_path / "hook", SHAPES)
    proj.artifact_type = "HOOK"
    RustLanguagePlugin().generate(proj)
    assert not (proj.root / "src").exists()
