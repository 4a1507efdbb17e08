"""A second resource type in a subfolder of the repository, as a member of the
root's Cargo workspace: build command, binary location and packaged sources.
cargo is stubbed; the layout is a temporary fake repository."""
import io
import json
import subprocess
import zipfile
from types import SimpleNamespace

import pytest
from elf_fixtures import make_elf

from rpdk.rust import codegen
from rpdk.rust.codegen import (
    RustLanguagePlugin,
    RustPluginError,
    find_workspace_root,
    source_files,
)

ROOT_MANIFEST = """\
[package]
name = "taskrun"
version = "0.1.0"

[workspace]
members = [".", "crates/cfn-protocol", "service-restart"]

[[bin]]
name = "bootstrap"
path = "src/main.rs"
"""
MEMBER_MANIFEST = """\
[package]
name = "service-restart"
version = "0.1.0"

[[bin]]
name = "service-restart-bootstrap"
path = "src/main.rs"
"""


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    files = {
        ".git/HEAD": "ref: refs/heads/main\n",
        "Cargo.toml": ROOT_MANIFEST,
        "Cargo.lock": "version = 4\n",
        "rust-toolchain.toml": "[toolchain]\nchannel = \"stable\"\n",
        ".rpdk-config": "{}",
        "src/main.rs": "fn main() {}\n",
        "crates/cfn-protocol/Cargo.toml": "[package]\nname = \"cfn-protocol\"\n",
        "crates/cfn-protocol/src/lib.rs": "\n",
        "crates/cfn-protocol/target/debug/junk": "x",
        "target/debug/bootstrap": "x",
        "service-restart/.rpdk-config": "{}",
        "service-restart/Cargo.toml": MEMBER_MANIFEST,
        "service-restart/src/main.rs": "fn main() {}\n",
        "service-restart/src/handler/mod.rs": "\n",
        "service-restart/docs/README.md": "docs\n",
        "service-restart/target/stray": "x",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # a Cargo workspace above the repository must not be taken for its root
    (tmp_path / "Cargo.toml").write_text("[workspace]\nmembers = []\n")
    return root


def test_workspace_root(repo):
    assert find_workspace_root(repo) == repo
    assert find_workspace_root(repo / "service-restart") == repo
    assert find_workspace_root(repo / "crates" / "cfn-protocol") == repo


def test_workspace_root_of_a_standalone_crate(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "Cargo.toml").write_text(MEMBER_MANIFEST)
    assert find_workspace_root(tmp_path) == tmp_path.resolve()


def test_workspace_declared_by_a_subtable_only(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "Cargo.toml").write_text('[workspace.package]\nversion = "1.0.0"\n')
    (tmp_path / "member").mkdir()
    (tmp_path / "member" / "Cargo.toml").write_text(MEMBER_MANIFEST)
    assert find_workspace_root(tmp_path / "member") == tmp_path.resolve()


def test_sources_of_the_root_project(repo):
    assert [name for _path, name in source_files(repo)] == [
        "Cargo.lock",
        "Cargo.toml",
        "crates/cfn-protocol/Cargo.toml",
        "crates/cfn-protocol/src/lib.rs",
        "rust-toolchain.toml",
        "src/main.rs",
    ]


def test_sources_of_the_subfolder_project(repo):
    listed = source_files(repo / "service-restart")
    assert [name for _path, name in listed] == [
        "Cargo.lock",
        "Cargo.toml",
        "crates/cfn-protocol/Cargo.toml",
        "crates/cfn-protocol/src/lib.rs",
        "rust-toolchain.toml",
        "service-restart/Cargo.toml",
        "service-restart/src/handler/mod.rs",
        "service-restart/src/main.rs",
    ]
    assert all(path.is_file() for path, _name in listed)


class FakeCargo:
    """Answers the commands the plugin runs; `cargo lambda build` writes the
    binary where cargo lambda would (under --lambda-dir)."""

    def __init__(self, workspace_root, target_dir, host="x86_64-unknown-linux-gnu"):
        self.workspace_root = workspace_root
        self.target_dir = target_dir
        self.host = host
        self.calls = []

    def __call__(self, command, cwd=None, env=None, check=False, **kwargs):
        self.calls.append((list(command), cwd))
        out = ""
        if command[:2] == ["cargo", "metadata"]:
            out = json.dumps(
                {
                    "workspace_root": str(self.workspace_root),
                    "target_directory": str(self.target_dir),
                }
            )
        elif command[:2] == ["rustc", "-vV"]:
            out = f"rustc 1.95.0\nbinary: rustc\nhost: {self.host}\nrelease: 1.95.0\n"
        elif command[:2] == ["rustup", "target"]:
            out = f"{self.host}\n"
        elif command[:3] == ["cargo", "lambda", "build"]:
            lambda_dir = command[command.index("--lambda-dir") + 1]
            name = command[command.index("--bin") + 1]
            binary = codegen.Path(lambda_dir) / name / "bootstrap"
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_bytes(make_elf())
        else:  # pragma: no cover
            raise AssertionError(f"unexpected command {command}")
        return subprocess.CompletedProcess(command, 0, stdout=out, stderr="")


@pytest.fixture
def fake_cargo(monkeypatch, repo):
    cargo = FakeCargo(repo, repo / "target")
    monkeypatch.setattr(codegen.subprocess, "run", cargo)
    monkeypatch.setattr(codegen.shutil, "which", lambda name, path=None: f"/usr/bin/{name}")
    for name in ("RPDK_RUST_HANDLER_ZIP", "RPDK_RUST_ARCHITECTURE", "RPDK_RUST_CARGO_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return cargo


def member_project(repo, **settings):
    return SimpleNamespace(
        root=repo / "service-restart",
        entrypoint="bootstrap",
        settings={"architecture": "x86_64", "cargoProfile": "dist", **settings},
    )


def build_calls(cargo):
    return [(c, cwd) for c, cwd in cargo.calls if c[:3] == ["cargo", "lambda", "build"]]


def test_subfolder_project_builds_and_packages(repo, fake_cargo):
    project = member_project(repo, binary="service-restart-bootstrap")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        RustLanguagePlugin().package(project, package)

    [(command, cwd)] = build_calls(fake_cargo)
    assert cwd == repo / "service-restart"
    assert command == [
        "cargo", "lambda", "build",
        "--profile", "dist",
        "--target", "x86_64-unknown-linux-gnu.2.34",
        "--bin", "service-restart-bootstrap",
        "--output-format", "binary",
        "--lambda-dir", str(repo / "target" / "lambda" / "x86_64"),
    ]  # fmt: skip
    # the binary is taken from the workspace's target/, not a target/ of the member
    binary = repo / "target" / "lambda" / "x86_64" / "service-restart-bootstrap" / "bootstrap"
    assert binary.is_file()
    assert not (repo / "service-restart" / "target" / "lambda").exists()

    with zipfile.ZipFile(buffer) as package:
        names = package.namelist()
        with zipfile.ZipFile(io.BytesIO(package.read("handler.zip"))) as handler:
            assert handler.namelist() == ["bootstrap"]
            assert handler.read("bootstrap") == binary.read_bytes()
    assert names == [
        "handler.zip",
        "Cargo.lock",
        "Cargo.toml",
        "crates/cfn-protocol/Cargo.toml",
        "crates/cfn-protocol/src/lib.rs",
        "rust-toolchain.toml",
        "service-restart/Cargo.toml",
        "service-restart/src/handler/mod.rs",
        "service-restart/src/main.rs",
    ]


def test_custom_target_dir_is_honoured(repo, fake_cargo, tmp_path):
    fake_cargo.target_dir = tmp_path / "elsewhere"
    project = member_project(repo, binary="service-restart-bootstrap", packageSources=False)
    with zipfile.ZipFile(io.BytesIO(), "w") as package:
        RustLanguagePlugin().package(project, package)
    [(command, _cwd)] = build_calls(fake_cargo)
    assert command[command.index("--lambda-dir") + 1] == str(tmp_path / "elsewhere" / "lambda" / "x86_64")


def test_host_target_needs_no_rustup(repo, fake_cargo):
    RustLanguagePlugin()._check_target("x86_64-unknown-linux-gnu", {"PATH": "/usr/bin"})
    assert not [c for c, _ in fake_cargo.calls if c[0] == "rustup"]


def test_other_target_must_be_installed(repo, fake_cargo):
    with pytest.raises(RustPluginError, match="rustup target add aarch64-unknown-linux-gnu"):
        RustLanguagePlugin()._check_target("aarch64-unknown-linux-gnu", {"PATH": "/usr/bin"})


def test_arm64_opt_in_builds_for_aarch64(repo, fake_cargo, monkeypatch, caplog):
    fake_cargo.host = "aarch64-unknown-linux-gnu"  # so that the target is "installed"
    monkeypatch.setenv("RPDK_RUST_ARCHITECTURE", "arm64")
    project = member_project(repo, binary="service-restart-bootstrap", packageSources=False)
    with zipfile.ZipFile(io.BytesIO(), "w") as package, pytest.raises(RustPluginError) as error:
        # the fake build writes an x86_64 binary: the check catches it
        RustLanguagePlugin().package(project, package)
    [(command, _cwd)] = build_calls(fake_cargo)
    assert "aarch64-unknown-linux-gnu.2.34" in command
    assert "but the architecture is arm64" in str(error.value)
    assert any("not verified to run there" in r.getMessage() for r in caplog.records)


def test_missing_binary_is_reported(repo, fake_cargo, monkeypatch):
    def build_nothing(command, **kwargs):
        if command[:3] == ["cargo", "lambda", "build"]:
            return subprocess.CompletedProcess(command, 0, stdout="", stderr="")
        return FakeCargo.__call__(fake_cargo, command, **kwargs)

    monkeypatch.setattr(codegen.subprocess, "run", build_nothing)
    project = member_project(repo, binary="service-restart-bootstrap")
    with zipfile.ZipFile(io.BytesIO(), "w") as package, pytest.raises(RustPluginError) as error:
        RustLanguagePlugin().package(project, package)
    assert "[[bin]] named 'service-restart-bootstrap'" in str(error.value)


def test_default_architecture_is_x86_64(monkeypatch):
    monkeypatch.delenv("RPDK_RUST_ARCHITECTURE", raising=False)
    project = SimpleNamespace(settings={})
    assert RustLanguagePlugin._architecture(project) == "x86_64"
    assert codegen.DEFAULT_SETTINGS["architecture"] == "x86_64"
    init = SimpleNamespace(settings={}, root=codegen.Path("/nonexistent"), entrypoint=None)
    RustLanguagePlugin().init(init)
    assert init.settings["architecture"] == "x86_64"
