"""`cfn init` with the rust plugin: the scaffold of a new resource type (Cargo.toml,
src/, schema.json with <type>.json linked to it, inputs/, README.md, .gitignore), what
it keeps, and where its Cargo.toml takes cfn-protocol and handler-kit from.
Nothing here runs cargo: scripts/scaffold-check.sh builds, tests and packs a scaffold."""
import json
import re
from pathlib import Path

import pytest
import yaml

from rpdk.core.project import Project
from rpdk.rust import codegen
from rpdk.rust.codegen import (
    KIT_PATH_ENV,
    SCAFFOLD_FILES,
    RustPluginError,
    kit_dependencies,
    kit_location,
    render,
    scaffold_names,
)

TYPE_NAME = "Scaffold::Test::Thing"
SCHEMA_LINK = "scaffold-test-thing.json"
REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """A folder with the two crates (manifests only), named by RPDK_RUST_KIT_PATH."""
    folder = tmp_path / "elsewhere" / "crates"  # not the repository of the project
    for crate, version in (("cfn-protocol", "0.3.1"), ("handler-kit", "0.4.2")):
        (folder / crate).mkdir(parents=True)
        (folder / crate / "Cargo.toml").write_text(
            f'[package]\nname = "{crate}"\nversion = "{version}"\n\n'
            '[dependencies]\nserde = { version = "1" }\n',
            encoding="utf-8",
        )
    monkeypatch.setenv(KIT_PATH_ENV, str(folder))
    return folder


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "thing"
    folder.mkdir()
    return folder


def init(root, overwrite=False, settings=None):
    """What `cfn init` does for a resource type: Project.init, then generate and docs."""
    project = Project(overwrite_enabled=overwrite, root=root)
    project.init(TYPE_NAME, "rust", settings)
    project.generate()
    project.generate_docs()
    return project


def rpdk_config(root):
    return json.loads((root / ".rpdk-config").read_text(encoding="utf-8"))


def test_scaffolds_every_file_of_a_resource_type(root, kit):
    init(root, settings={"type_name": TYPE_NAME, "force": False, "verbose": 0})

    for target, _template in SCAFFOLD_FILES:
        assert (root / target).is_file(), target
    schema = json.loads((root / "schema.json").read_text(encoding="utf-8"))
    assert schema["typeName"] == TYPE_NAME
    assert schema["primaryIdentifier"] == ["/properties/Id"]
    assert "/properties/Id" in schema["readOnlyProperties"]
    assert set(schema["handlers"]) == {"create", "read", "update", "delete", "list"}
    # cfn reads <type>.json: a link to schema.json, as in the repository's own types
    assert (root / SCHEMA_LINK).is_symlink()
    assert (root / SCHEMA_LINK).resolve() == (root / "schema.json").resolve()

    config = rpdk_config(root)
    assert config["runtime"] == "provided.al2023"
    assert config["entrypoint"] == "bootstrap"
    # the settings `generate` and `package` read, and none of cfn init's own arguments
    assert config["settings"] == {
        "protocolVersion": "2.0.0",
        "architecture": "x86_64",
        "cargoProfile": "dist",
        "binary": "scaffold-test-thing-bootstrap",
        "recordParameterPath": "/scaffold-test-thing/records",
    }

    cargo = (root / "Cargo.toml").read_text(encoding="utf-8")
    assert 'name = "scaffold-test-thing"' in cargo
    assert 'name = "scaffold-test-thing-bootstrap"' in cargo  # the [[bin]] settings.binary names
    assert "[profile.dist]" in cargo  # the profile `package` builds with
    assert "[workspace]" in cargo
    assert f'cfn-protocol = {{ version = "0.3.1", path = "{(kit / "cfn-protocol").as_posix()}" }}' in cargo
    assert (
        f'handler-kit = {{ version = "0.4.2", path = "{(kit / "handler-kit").as_posix()}", '
        'features = ["aws"] }' in cargo
    )
    assert KIT_PATH_ENV in cargo

    resource = (root / "src" / "resource.rs").read_text(encoding="utf-8")
    assert f'pub const TYPE_NAME: &str = "{TYPE_NAME}";' in resource
    assert 'pub const RECORD_PATH: &str = "/scaffold-test-thing/records";' in resource
    assert 'include_str!("../schema.json")' in resource
    main = (root / "src" / "main.rs").read_text(encoding="utf-8")
    assert "handler_kit::lambda::main(" in main and "mod resource;" in main

    inputs = {
        name: json.loads((root / "inputs" / f"inputs_1_{name}.json").read_text(encoding="utf-8"))
        for name in ("create", "update", "invalid")
    }
    assert inputs["create"]["Name"] == inputs["update"]["Name"]
    assert inputs["create"] != inputs["update"]
    assert inputs["invalid"]["Name"] == ""  # breaks minLength
    assert "/target/" in (root / ".gitignore").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert TYPE_NAME in readme and "cfn submit --dry-run" in readme


def test_generate_renders_the_role_and_docs_from_the_scaffolded_schema(root, kit):
    init(root)
    role = yaml.safe_load((root / "resource-role.yaml").read_text(encoding="utf-8"))
    statements = role["Resources"]["ExecutionRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    actions = sorted(a for s in statements for a in s["Action"])
    assert actions == [
        "ssm:DeleteParameter",
        "ssm:GetParameter",
        "ssm:GetParametersByPath",
        "ssm:PutParameter",
    ]
    text = (root / "resource-role.yaml").read_text(encoding="utf-8")
    assert "parameter/scaffold-test-thing/records/*" in text  # narrowed to the records
    assert "initech" not in text
    docs = (root / "docs" / "README.md").read_text(encoding="utf-8")
    assert "Name" in docs and "TPS" not in docs


def test_never_overwrites_a_file_that_exists(root, kit):
    mine = {
        "src/main.rs": "fn main() {}\n",
        "README.md": "# mine\n",
        "inputs/inputs_1_create.json": '{"Name": "mine"}\n',
        ".gitignore": "mine\n",
        "schema.json": '{"typeName": "Scaffold::Test::Thing", "mine": true}\n',
    }
    for name, text in mine.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")

    init(root)

    for name, text in mine.items():
        assert (root / name).read_text(encoding="utf-8") == text, name
    assert (root / "src" / "resource.rs").is_file()  # absent ones are written
    assert (root / "inputs" / "inputs_1_update.json").is_file()
    # cfn's own example schema was replaced by the link to (the kept) schema.json
    assert (root / SCHEMA_LINK).is_symlink()
    assert json.loads((root / SCHEMA_LINK).read_text(encoding="utf-8"))["mine"] is True


def test_keeps_a_type_schema_of_your_own(root, kit):
    own = {
        "typeName": TYPE_NAME,
        "description": "mine",
        "properties": {"Id": {"type": "string"}},
        "primaryIdentifier": ["/properties/Id"],
        "readOnlyProperties": ["/properties/Id"],
        "additionalProperties": False,
    }
    text = json.dumps(own, indent=2) + "\n"
    (root / SCHEMA_LINK).write_text(text, encoding="utf-8")

    init(root)

    assert not (root / SCHEMA_LINK).is_symlink()
    assert (root / SCHEMA_LINK).read_text(encoding="utf-8") == text
    # the handler reads schema.json: it is your schema too
    assert (root / "schema.json").is_symlink()
    assert json.loads((root / "schema.json").read_text(encoding="utf-8")) == own


def test_force_writes_the_scaffold_again(root, kit):
    (root / "README.md").write_text("# mine\n", encoding="utf-8")
    init(root, overwrite=True)
    assert TYPE_NAME in (root / "README.md").read_text(encoding="utf-8")


def test_an_existing_cargo_project_is_not_scaffolded(root, kit):
    (root / "Cargo.toml").write_text('[package]\nname = "mine"\n', encoding="utf-8")
    init(root)
    assert (root / "Cargo.toml").read_text(encoding="utf-8") == '[package]\nname = "mine"\n'
    assert not (root / "src").exists()
    assert not (root / "schema.json").exists()
    assert "binary" not in rpdk_config(root)["settings"]


def test_a_kit_path_without_the_crates_is_refused(root, monkeypatch, tmp_path):
    monkeypatch.setenv(KIT_PATH_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(RustPluginError, match="handler-kit/Cargo.toml"):
        kit_location()


def test_the_kit_defaults_to_the_crates_of_this_repository(monkeypatch):
    monkeypatch.delenv(KIT_PATH_ENV, raising=False)
    if not (REPOSITORY / "crates" / "handler-kit" / "Cargo.toml").is_file():
        pytest.skip("the plugin is not in the repository of the crates")
    folder, origin = kit_location()
    assert folder == REPOSITORY / "crates"
    assert origin == "repository"


def test_kit_dependencies_are_relative_inside_the_repository(tmp_path):
    kit = tmp_path / "repo" / "crates"
    for crate in ("cfn-protocol", "handler-kit"):
        (kit / crate).mkdir(parents=True)
        (kit / crate / "Cargo.toml").write_text(
            f'[package]\nname = "{crate}"\nversion = "0.1.0"\n', encoding="utf-8"
        )
    inside = tmp_path / "repo" / "types" / "thing"
    inside.mkdir(parents=True)
    lines = kit_dependencies(kit, "repository", inside)
    assert 'path = "../../crates/handler-kit"' in lines
    outside = kit_dependencies(kit, "repository", tmp_path / "elsewhere")
    assert f'path = "{(kit / "handler-kit").as_posix()}"' in outside
    published = kit_dependencies(None, None, inside)
    assert 'handler-kit = { version = "0.1.0", features = ["aws"] }' in published
    assert "path" not in published.split("\n", 1)[1]


def test_names_follow_the_type_name():
    names = scaffold_names("Scaffold::Check::Thing")
    assert names.hyphenated == "scaffold-check-thing"
    assert names.package == "scaffold-check-thing"
    assert names.binary == "scaffold-check-thing-bootstrap"
    assert names.record_path == "/scaffold-check-thing/records"
    assert names.id_fallback == "Thing"
    # a Cargo package name may not begin with a digit
    assert scaffold_names("1Org::Svc::Res").package == "type-1org-svc-res"


def test_every_template_renders_completely():
    values = {
        name: f"<{name}>"
        for name in (
            "TYPE_NAME",
            "HYPHENATED",
            "PACKAGE",
            "BINARY",
            "RECORD_PATH",
            "ID_FALLBACK",
            "KIT_DEPENDENCIES",
            "KIT_NOTE",
        )
    }
    templates = sorted(p.name for p in codegen.TEMPLATES.iterdir())
    assert sorted({t for _, t in SCAFFOLD_FILES} | {"schema.json.tpl"}) == templates
    for template in templates:
        text = render(template, values)
        assert not re.search(r"@[A-Z_]+@", text), template
    with pytest.raises(RustPluginError, match="no value for @BINARY@, @TYPE_NAME@"):
        render("main.rs.tpl", {})


def test_cfn_init_on_the_command_line(root, kit, monkeypatch):
    from rpdk.core.cli import main  # pylint: disable=import-outside-toplevel

    monkeypatch.chdir(root)
    main(args_in=["init", "--type-name", TYPE_NAME, "--artifact-type", "RESOURCE"])
    config = rpdk_config(root)
    assert config["language"] == "rust"
    assert config["settings"]["binary"] == "scaffold-test-thing-bootstrap"
    assert "type_name" not in config["settings"]  # cfn init's own arguments stay out
    assert (root / "src" / "resource.rs").is_file()
    assert (root / SCHEMA_LINK).is_symlink()
