"""The `rust` language plugin for the CloudFormation CLI.

A Rust resource type is a Cargo project whose handler binary (named after the
project's `entrypoint`, `bootstrap` by default) speaks the CloudFormation
resource provider protocol 2.0.0 as a Lambda function on the `provided.al2023`
runtime. `cfn generate` writes the type's model from its schema (src/model/generated.rs,
see rpdk.rust.model); `cfn init` scaffolds a starting point from templates/.

- init:     records the runtime, entrypoint and settings in .rpdk-config and, unless
            the folder already holds a Cargo project (Cargo.toml), scaffolds a resource
            type that builds, answers every handler and passes `cfn test` (see
            `RustLanguagePlugin._scaffold`): Cargo.toml, src/main.rs, src/resource.rs,
            src/model.rs, schema.json (with <type>.json, the file cfn reads, a link to
            it), inputs/, README.md, .gitignore, and (by the generate step cfn init runs)
            src/model/generated.rs. A file that exists is never overwritten (unless
            `cfn init --force`), except the generic example schema cfn itself writes
            just before (a schema of your own is kept). The handler depends on the crates
            cfn-protocol and handler-kit, by path: RPDK_RUST_KIT_PATH (the folder holding
            them), else the crates/ of the repository this plugin is installed from.
- generate: `cfn generate` itself writes resource-role.yaml (Project.generate),
            then calls the plugin, then writes docs/ (Project.generate_docs). The
            plugin writes the model, src/model/generated.rs, from the schema (always
            anew: it is generated; src/model/codegen.json sets Rust types, see
            rpdk.rust.model), keeps its settings in .rpdk-config current and narrows the
            role's policy to the account (see rpdk.rust.role): SSM actions only on
            the `recordParameterPath` parameters, iam:PassRole only to the
            `passRoleToService` services and the `executionRole.passRoles` roles,
            ECS actions only on the `executionRole` clusters, task definition
            families and services, logs only from its `logGroups`.
- package:  builds the handler with `cargo lambda build` (profile `dist`, x86_64
            unless told otherwise, linked against glibc 2.34 at most, the glibc of
            provided.al2023), checks it (see `check_handler_zip`) and adds
            `handler.zip` (with `bootstrap` at its root, as the Go plugin does) plus
            the Rust sources to the package.

Settings (`.rpdk-config` -> `settings`), some with an environment override:

    architecture        x86_64 | arm64     RPDK_RUST_ARCHITECTURE  (default x86_64)
    cargoProfile        a Cargo profile    RPDK_RUST_CARGO_PROFILE (default dist)
    binary              the [[bin]] name   -                       (default: entrypoint)
    packageSources      true | false       -                       (default true)
    recordParameterPath an SSM path        -                       (default: none)
    passRoleToService   service principal(s) iam:PassRole is limited to (default:
                        ecs-tasks.amazonaws.com with ecs:RunTask/StartTask, else none)
    executionRole       {"clusters", "taskDefinitionFamilies", "passRoles",
                        "logGroups", "services": names or ARN patterns} (default:
                        everything of the account; see rpdk.rust.role)

The CloudFormation Registry runs handlers on x86_64 (RegisterType has no
architecture parameter; the Go and Python plugins build for amd64). arm64 is an
explicit opt-in that is NOT known to run in the Registry.

RPDK_RUST_HANDLER_ZIP=path packages a handler zip built elsewhere instead of
building one; it is checked the same way.
"""
import atexit
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess  # nosec
import sys
import zipfile
from pathlib import Path
from typing import NamedTuple

from rpdk.core.exceptions import SysExitRecommendedError
from rpdk.core.plugin_base import LanguagePlugin

from . import __version__, elf
from .model import MODEL_FILE, ModelError, load_settings, render_model
from .role import EXECUTION_ROLE, RoleError, rewrite_role

LOG = logging.getLogger(__name__)

LANGUAGE = "rust"
RUNTIME = "provided.al2023"
ENTRY_POINT = "bootstrap"
PROTOCOL_VERSION = "2.0.0"

# glibc of the provided.al2023 runtime: the newest GLIBC_x.y a handler may need
MAX_GLIBC = (2, 34)


class Arch(NamedTuple):
    triple: str  # Rust target triple
    e_machine: int  # ELF e_machine of its binaries
    interpreter: str  # glibc's dynamic loader on Amazon Linux 2023


ARCHITECTURES = {
    "x86_64": Arch("x86_64-unknown-linux-gnu", elf.EM_X86_64, "/lib64/ld-linux-x86-64.so.2"),
    # opt-in only: not known to run in the CloudFormation Registry
    "arm64": Arch("aarch64-unknown-linux-gnu", elf.EM_AARCH64, "/lib/ld-linux-aarch64.so.1"),
}
ARCH_ALIASES = {"aarch64": "arm64", "amd64": "x86_64", "x86-64": "x86_64"}
DEFAULT_SETTINGS = {
    "protocolVersion": PROTOCOL_VERSION,
    "architecture": "x86_64",
    "cargoProfile": "dist",
}
ROLE_FILE = "resource-role.yaml"

HANDLER_ZIP = "handler.zip"
# Rust sources added to the package next to handler.zip (as the Go plugin adds its
# Go sources), so a submitted version records the code it was built from. They are
# taken from the Cargo workspace root and from the project's own folder (when the
# resource type lives in a workspace member below the root), with paths relative to
# the workspace root.
SOURCE_FILES = ("Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "rust-toolchain", "build.rs")
SOURCE_DIRS = ("src", "crates")
SOURCE_SKIP_DIRS = {"target", "__pycache__", ".git"}
# a fixed timestamp so that the same binary gives the same handler.zip bytes
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


# --- init: the scaffold of a new resource type (templates/, rendered by `render`)

TEMPLATES = Path(__file__).resolve().parent / "templates"
SCHEMA_FILE = "schema.json"
# (file in the project, its template); schema.json is written by _scaffold_schema
SCAFFOLD_FILES = (
    ("Cargo.toml", "Cargo.toml.tpl"),
    ("src/main.rs", "main.rs.tpl"),
    ("src/resource.rs", "resource.rs.tpl"),
    ("src/model.rs", "model.rs.tpl"),
    ("inputs/inputs_1_create.json", "inputs_1_create.json.tpl"),
    ("inputs/inputs_1_update.json", "inputs_1_update.json.tpl"),
    ("inputs/inputs_1_invalid.json", "inputs_1_invalid.json.tpl"),
    ("README.md", "README.md.tpl"),
    (".gitignore", "gitignore.tpl"),
)
# The folder holding the crates cfn-protocol and handler-kit the scaffold depends on.
KIT_PATH_ENV = "RPDK_RUST_KIT_PATH"
KIT_CRATES = ("cfn-protocol", "handler-kit")
KIT_DEFAULT_VERSION = "0.1.0"
# The arguments of `cfn init` itself, which rpdk.core passes to the plugin as its settings.
CLI_ARGUMENTS = (
    "version",
    "subparser_name",
    "verbose",
    "force",
    "type_name",
    "artifact_type",
    "endpoint_url",
    "region",
    "target_schemas",
    "profile",
)


class RustPluginError(SysExitRecommendedError):
    pass


class RustLanguagePlugin(LanguagePlugin):
    MODULE_NAME = __name__
    NAME = LANGUAGE
    RUNTIME = RUNTIME
    ENTRY_POINT = ENTRY_POINT
    TEST_ENTRY_POINT = ENTRY_POINT

    def __init__(self):
        self._protocol_version = PROTOCOL_VERSION
        # cfn init calls generate right after init: then the model is written only into
        # a project init scaffolded, and only when absent (init never overwrites a file).
        self._init_scaffolded = None

    # ------------------------------------------------------------------ init

    def init(self, project):
        LOG.debug("Init started")
        project.runtime = self.RUNTIME
        project.entrypoint = self.ENTRY_POINT
        project.test_entrypoint = self.TEST_ENTRY_POINT
        # `cfn init` hands its own command line over as settings: not the plugin's
        for name in CLI_ARGUMENTS:
            project.settings.pop(name, None)
        for key, value in DEFAULT_SETTINGS.items():
            project.settings.setdefault(key, value)
        project.settings["protocolVersion"] = self._protocol_version
        self._init_scaffolded = False
        if getattr(project, "artifact_type", "RESOURCE") != "RESOURCE":
            LOG.warning(
                "Only resource types are scaffolded: create the Cargo project with a "
                "[[bin]] named '%s' before 'cfn submit'",
                project.entrypoint,
            )
        elif not getattr(project, "type_name", None) or not project.root.is_dir():
            LOG.warning(
                "No type name or no folder %s: nothing scaffolded; create the Cargo "
                "project with a [[bin]] named '%s' before 'cfn submit'",
                project.root,
                self._binary_name(project),
            )
        elif (project.root / "Cargo.toml").is_file():
            LOG.warning(
                "%s already holds a Cargo project (Cargo.toml): nothing scaffolded; "
                "'cfn submit' builds its [[bin]] named '%s' (settings.binary)",
                project.root,
                self._binary_name(project),
            )
        else:
            self._scaffold(project)
            self._init_scaffolded = True
        LOG.debug("Init complete")

    def _scaffold(self, project):
        """Writes the files of a resource type that builds, answers every handler, passes
        `cfn test` and packs with `cfn submit`; an existing file is kept (unless
        `cfn init --force`)."""
        names = scaffold_names(project.type_name)
        project.settings.setdefault("binary", names.binary)
        project.settings.setdefault("recordParameterPath", names.record_path)
        kit, origin = kit_location()
        values = {
            "TYPE_NAME": project.type_name,
            "HYPHENATED": names.hyphenated,
            "PACKAGE": names.package,
            "BINARY": project.settings["binary"],
            "RECORD_PATH": project.settings["recordParameterPath"],
            "ID_FALLBACK": names.id_fallback,
            "KIT_DEPENDENCIES": kit_dependencies(kit, origin, project.root),
            "KIT_NOTE": kit_note(kit, origin),
        }
        written, kept = [], []
        for target, template in SCAFFOLD_FILES:
            done = _write_new(project, target, render(template, values))
            (written if done else kept).append(target)
        done = self._scaffold_schema(project, render("schema.json.tpl", values))
        (written if done else kept).append("schema.json")
        LOG.warning(
            "Scaffolded %s as a Rust project: %s%s; next: cargo build, cfn test, "
            "cfn submit --dry-run (see README.md)",
            project.type_name,
            ", ".join(written) or "nothing",
            f" (kept as they were: {', '.join(kept)})" if kept else "",
        )
        if kit is None:
            LOG.warning(
                "Cargo.toml: cfn-protocol and handler-kit come from crates.io: set %s to "
                "the folder holding them to build against a local copy",
                KIT_PATH_ENV,
            )

    @staticmethod
    def _scaffold_schema(project, text):
        """schema.json, and <type>.json (the schema cfn reads) as a link to it. cfn init
        writes its generic example to <type>.json just before calling the plugin: that
        one is replaced by the link, a schema of your own is kept (then schema.json, which
        the handler reads, links to it). Returns whether schema.json was written."""
        root = project.root
        ours = root / SCHEMA_FILE
        cfn_path = project.schema_path
        example = _core_example_schema(project)
        cfn_is_file = cfn_path.is_file() and not cfn_path.is_symlink()
        cfn_is_example = cfn_is_file and (
            project.overwrite_enabled
            or (example is not None and _read(cfn_path) == example)
        )
        own_cfn_schema = cfn_is_file and not cfn_is_example
        written = False
        if ours.exists() or ours.is_symlink():
            if project.overwrite_enabled and not own_cfn_schema:
                ours.unlink()
                project.overwrite(ours, text)
                written = True
            else:
                LOG.info("Keeping %s", ours)
        elif own_cfn_schema:
            LOG.warning(
                "Keeping your %s: %s links to it (the handler checks properties against it)",
                cfn_path.name,
                SCHEMA_FILE,
            )
            _link_or_copy(ours, cfn_path.name)
        else:
            project.overwrite(ours, text)
            written = True
        points_back = ours.is_symlink() and ours.resolve() == cfn_path.resolve()
        if not cfn_path.is_symlink() and not points_back and (
            cfn_is_example or not cfn_path.exists()
        ):
            cfn_path.unlink(missing_ok=True)
            _link_or_copy(cfn_path, SCHEMA_FILE)
        # cfn init renders resource-role.yaml and docs/ from project.schema right after
        # this: the schema now in place, not the example.
        try:
            project.schema = json.loads(_read(cfn_path))
        except (OSError, ValueError) as e:
            LOG.warning("Could not read %s back: %s", cfn_path, e)
        return written

    # -------------------------------------------------------------- generate

    def generate(self, project):
        # cfn has just written resource-role.yaml (Project.generate calls the
        # plugin after rendering it) and writes docs/ after this returns.
        LOG.debug("Generate started")
        need_to_write = False
        if project.settings.get("protocolVersion") != self._protocol_version:
            project.settings["protocolVersion"] = self._protocol_version
            need_to_write = True
        if project.runtime != self.RUNTIME:
            LOG.warning(
                "runtime is '%s' in .rpdk-config; a Rust 'bootstrap' handler needs "
                "an OS-only runtime such as '%s'",
                project.runtime,
                self.RUNTIME,
            )
        if need_to_write:
            project.write_settings()
        self._architecture(project)  # fail early on a bad setting
        self._write_model(project)
        self._restrict_role(project)
        LOG.debug("Generate complete")

    def _write_model(self, project):
        """src/model/generated.rs from the schema: rewritten by every `cfn generate`;
        during `cfn init`, written only into a scaffolded project, and kept if present."""
        during_init, self._init_scaffolded = self._init_scaffolded, None
        if getattr(project, "artifact_type", "RESOURCE") != "RESOURCE":
            return  # hooks and modules have no resource model
        if during_init is False:
            return
        try:
            text = render_model(project.schema, load_settings(project.root))
        except ModelError as e:
            raise RustPluginError(f"{MODEL_FILE}: {e}") from e
        if during_init:
            _write_new(project, MODEL_FILE, text)
            return
        path = project.root / MODEL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        project.overwrite(path, text)
        LOG.info("Wrote %s from the schema", MODEL_FILE)

    @staticmethod
    def _restrict_role(project):
        path = project.root / ROLE_FILE
        if getattr(project, "artifact_type", "RESOURCE") != "RESOURCE":
            return  # hooks have hook-role.yaml; modules have no role
        if not path.is_file():
            return
        settings = project.settings
        parameter_path = settings.get("recordParameterPath")
        text = path.read_text(encoding="utf-8")
        try:
            rewrite = rewrite_role(
                text,
                parameter_path,
                settings.get("passRoleToService"),
                settings.get(EXECUTION_ROLE),
            )
        except RoleError as e:
            raise RustPluginError(f"{ROLE_FILE}: {e} (.rpdk-config settings)") from e
        if not parameter_path and "ssm:" in text:
            LOG.warning(
                "settings.recordParameterPath is not set in .rpdk-config: %s allows "
                "the ssm actions on every parameter of the account",
                ROLE_FILE,
            )
        if "iam:PassRole" in text and not rewrite.pass_role_services:
            LOG.warning(
                "settings.passRoleToService is not set in .rpdk-config: %s allows "
                "iam:PassRole to any service",
                ROLE_FILE,
            )
        if rewrite.defaulted:
            LOG.warning(
                "%s: settings.%s.%s not set in .rpdk-config: the role may use any of "
                "them in the account (see the plugin README, 'The execution role')",
                ROLE_FILE,
                EXECUTION_ROLE,
                "/".join(rewrite.defaulted),
            )
        if rewrite.unused:
            LOG.warning(
                "%s: settings.%s.%s narrow none of the schema's handler permissions",
                ROLE_FILE,
                EXECUTION_ROLE,
                "/".join(rewrite.unused),
            )
        if rewrite.unscoped:
            LOG.warning(
                "%s: %s left on Resource \"*\" (rpdk.rust.role does not know their "
                "resources)",
                ROLE_FILE,
                ", ".join(rewrite.unscoped),
            )
        if rewrite.text != text:
            project.overwrite(path, rewrite.text)
            LOG.info("Narrowed the policy of %s to the settings of .rpdk-config", ROLE_FILE)

    # --------------------------------------------------------------- package

    def get_plugin_information(self, project):  # pylint: disable=unused-argument
        return {"plugin-tool-version": __version__, "plugin-name": LANGUAGE}

    def package(self, project, zip_file):
        LOG.info("Packaging Rust project")
        arch = self._architecture(project)
        prebuilt = os.environ.get("RPDK_RUST_HANDLER_ZIP")
        if prebuilt:
            LOG.warning("Packaging prebuilt handler %s", prebuilt)
            try:
                handler_zip = Path(prebuilt).read_bytes()
            except OSError as e:
                raise RustPluginError(
                    f"cannot read RPDK_RUST_HANDLER_ZIP {prebuilt}: {e}"
                ) from e
            name = prebuilt
        else:
            binary = self._build(project, arch)
            handler_zip = self._zip_handler(binary)
            name = f"{HANDLER_ZIP} (from {binary})"
        summary = check_handler_zip(handler_zip, name, arch)
        origin = "prebuilt" if prebuilt else f"profile {self._profile(project)}"
        LOG.warning("Checked %s (%s): %s", HANDLER_ZIP, origin, summary)

        zip_file.writestr(HANDLER_ZIP, handler_zip)
        if project.settings.get("packageSources", True):
            self._write_sources(project, zip_file)

        # `cfn submit --dry-run` writes the package to a named file, which cfn
        # closes after this returns: report its final size when cfn is done.
        package_path = getattr(zip_file.fp, "name", None)
        if isinstance(package_path, str):
            atexit.register(_report_package_size, os.path.abspath(package_path))

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _architecture(project):
        raw = (
            os.environ.get("RPDK_RUST_ARCHITECTURE")
            or project.settings.get("architecture")
            or DEFAULT_SETTINGS["architecture"]
        )
        arch = ARCH_ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if arch not in ARCHITECTURES:
            raise RustPluginError(
                f"Unknown architecture '{raw}' (settings.architecture or "
                f"RPDK_RUST_ARCHITECTURE): use one of {', '.join(ARCHITECTURES)}"
            )
        if arch != "x86_64":
            LOG.warning(
                "Architecture %s: the CloudFormation Registry most likely runs "
                "handlers on x86_64 only; an %s handler is not verified to run there",
                arch,
                arch,
            )
        return arch

    @staticmethod
    def _profile(project):
        return (
            os.environ.get("RPDK_RUST_CARGO_PROFILE")
            or project.settings.get("cargoProfile")
            or DEFAULT_SETTINGS["cargoProfile"]
        )

    @staticmethod
    def _binary_name(project):
        return project.settings.get("binary") or project.entrypoint or ENTRY_POINT

    @staticmethod
    def _tool_env():
        """PATH with this Python's scripts folder first, where pip puts cargo-lambda
        (and its zig), so that `cfn` run as .venv/bin/cfn finds them."""
        env = dict(os.environ)
        scripts = str(Path(sys.executable).parent)
        env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
        return env

    @staticmethod
    def build_command(profile, arch, name, lambda_dir):
        """cargo lambda build for `arch`, linked by zig against glibc MAX_GLIBC
        (the `<triple>.2.34` target of cargo-zigbuild; output still goes to
        target/<triple>/<profile>)."""
        target = f"{ARCHITECTURES[arch].triple}.{elf.version_str(MAX_GLIBC)}"
        return [
            "cargo",
            "lambda",
            "build",
            "--profile",
            profile,
            "--target",
            target,
            "--bin",
            name,
            "--output-format",
            "binary",
            "--lambda-dir",
            str(lambda_dir),
        ]

    def _build(self, project, arch):
        env = self._tool_env()
        if not shutil.which("cargo", path=env["PATH"]):
            raise RustPluginError("cargo not found on PATH: install a Rust toolchain")
        if not shutil.which("cargo-lambda", path=env["PATH"]):
            raise RustPluginError(
                "cargo-lambda not found: pip install cargo-lambda (see cfn/requirements.txt)"
            )
        self._check_target(ARCHITECTURES[arch].triple, env, project.root)
        profile = self._profile(project)
        name = self._binary_name(project)
        workspace_root, target_dir = cargo_workspace(project.root, env)
        if workspace_root != project.root:
            LOG.warning(
                "Project %s is a member of the Cargo workspace %s (target directory %s)",
                project.root,
                workspace_root,
                target_dir,
            )
        lambda_dir = target_dir / "lambda" / arch
        command = self.build_command(profile, arch, name, lambda_dir)
        LOG.warning("Building the Rust handler: %s", " ".join(command))
        try:
            subprocess.run(command, cwd=project.root, env=env, check=True)  # nosec
        except FileNotFoundError as e:
            raise RustPluginError("could not run cargo") from e
        except subprocess.CalledProcessError as e:
            raise RustPluginError(
                f"'{' '.join(command)}' failed with exit code {e.returncode}"
            ) from e
        binary = lambda_dir / name / "bootstrap"
        if not binary.is_file():
            raise RustPluginError(
                f"cargo lambda build produced no {binary} (is there a [[bin]] named "
                f"'{name}' in the package at {project.root}? settings.binary names it)"
            )
        return binary

    @staticmethod
    def _check_target(triple, env, cwd=None):
        """cargo lambda needs the Rust standard library of the target; the host's
        own target always has it."""
        try:
            version = subprocess.run(  # nosec
                ["rustc", "-vV"],
                env=env,
                cwd=cwd,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            version = ""
        hosts = [
            line.split(":", 1)[1].strip()
            for line in version.splitlines()
            if line.startswith("host:")
        ]
        if triple in hosts:
            return
        if not shutil.which("rustup", path=env["PATH"]):
            return  # not a rustup toolchain: let cargo tell
        try:
            installed = subprocess.run(  # nosec
                ["rustup", "target", "list", "--installed"],
                env=env,
                cwd=cwd,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            return
        if triple not in installed:
            raise RustPluginError(
                f"the Rust target {triple} is not installed: rustup target add {triple}"
            )

    @staticmethod
    def _zip_handler(binary):
        """handler.zip holds one file, `bootstrap`, executable, at its root."""
        buffer = io.BytesIO()
        info = zipfile.ZipInfo("bootstrap", date_time=ZIP_DATE)
        info.create_system = 3  # Unix, so that the mode bits below are honoured
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(buffer, mode="w") as handler:
            with binary.open("rb") as f:
                handler.writestr(info, f.read(), compresslevel=9)
        return buffer.getvalue()

    @staticmethod
    def _write_sources(project, zip_file):
        for path, arcname in source_files(project.root):
            zip_file.write(path, arcname)


# ------------------------------------------------------------------ scaffold


class ScaffoldNames(NamedTuple):
    hyphenated: str  # as cfn names <type>.json and the package: org-service-resource
    package: str  # the Cargo package
    binary: str  # its [[bin]] (settings.binary)
    record_path: str  # the SSM path of its records (settings.recordParameterPath)
    id_fallback: str  # the readable part of an Id when the logical ID has none


def scaffold_names(type_name):
    parts = type_name.split("::")
    hyphenated = "-".join(parts).lower()
    # a Cargo package name may not begin with a digit; type name parts may
    package = hyphenated if hyphenated[:1].isalpha() else f"type-{hyphenated}"
    return ScaffoldNames(
        hyphenated=hyphenated,
        package=package,
        binary=f"{package}-bootstrap",
        record_path=f"/{hyphenated}/records",
        id_fallback=re.sub(r"[^A-Za-z0-9]", "", parts[-1]) or "Resource",
    )


def render(template, values):
    """The text of templates/`template` with every @NAME@ replaced by values[NAME]."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise RustPluginError(f"template {template}: no value for {', '.join(left)}")
    return text


def kit_location():
    """(folder holding cfn-protocol/ and handler-kit/, where it was found) or (None,
    None): RPDK_RUST_KIT_PATH, else the crates/ of the repository this plugin's source
    sits in (cfn/rpdk-rust/src/rpdk/rust/ of the repository)."""
    configured = os.environ.get(KIT_PATH_ENV)
    if configured:
        folder = Path(configured).expanduser().resolve()
        missing = [c for c in KIT_CRATES if not (folder / c / "Cargo.toml").is_file()]
        if missing:
            raise RustPluginError(
                f"{KIT_PATH_ENV}={configured}: no {', '.join(f'{c}/Cargo.toml' for c in missing)} "
                "there (it names the folder holding the crates cfn-protocol and handler-kit)"
            )
        return folder, KIT_PATH_ENV
    for parent in Path(__file__).resolve().parents:
        folder = parent / "crates"
        if all((folder / c / "Cargo.toml").is_file() for c in KIT_CRATES):
            return folder, "repository"
    return None, None


def crate_version(manifest):
    """The version in a Cargo.toml's [package] table, or KIT_DEFAULT_VERSION."""
    try:
        text = manifest.read_text(encoding="utf-8")
    except OSError:
        return KIT_DEFAULT_VERSION
    package = re.search(r"^\[package\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = package and re.search(r'^version\s*=\s*"([^"]+)"', package.group(1), re.M)
    return found.group(1) if found else KIT_DEFAULT_VERSION


def kit_dependencies(kit, origin, project_root):
    """The [dependencies] lines of cfn-protocol and handler-kit (feature aws)."""
    features = {"handler-kit": ', features = ["aws"]'}
    if kit is None:
        lines = [
            "# cfn-protocol and handler-kit from crates.io (cfn init found no local copy; "
            f"{KIT_PATH_ENV} names one)."
        ]
        for crate in KIT_CRATES:
            lines.append(
                f'{crate} = {{ version = "{KIT_DEFAULT_VERSION}"{features.get(crate, "")} }}'
            )
        return "\n".join(lines)
    project_root = Path(project_root).resolve()
    repository = kit.parent
    # relative inside the repository that holds the crates, else absolute
    base = (
        Path(os.path.relpath(kit, project_root))
        if project_root == repository or repository in project_root.parents
        else kit
    )
    if origin == KIT_PATH_ENV:
        lines = [f"# cfn-protocol and handler-kit by path ({KIT_PATH_ENV} when cfn init ran),"]
    else:
        lines = [
            "# cfn-protocol and handler-kit by path (the crates/ of the repository the rust",
            f"# plugin was installed from; {KIT_PATH_ENV} names another folder),",
        ]
    lines.append(
        "# with the version they are published under: without `path`, Cargo takes them "
        "from crates.io."
    )
    for crate in KIT_CRATES:
        path = json.dumps((base / crate).as_posix())
        version = crate_version(kit / crate / "Cargo.toml")
        lines.append(
            f'{crate} = {{ version = "{version}", path = {path}{features.get(crate, "")} }}'
        )
    return "\n".join(lines)


def kit_note(kit, origin):
    if kit is None:
        return "Cargo.toml takes them from crates.io."
    if origin == KIT_PATH_ENV:
        return f"Cargo.toml takes them by path from `{kit}` ({KIT_PATH_ENV})."
    return (
        f"Cargo.toml takes them by path from `{kit}`, the repository the rust plugin was "
        f"installed from (`{KIT_PATH_ENV}=DIR cfn init` names another folder)."
    )


def _read(path):
    return Path(path).read_text(encoding="utf-8")


def _write_new(project, relative, text):
    """Writes project.root/`relative` unless it exists (or `cfn init --force`)."""
    path = project.root / relative
    if (path.exists() or path.is_symlink()) and not project.overwrite_enabled:
        LOG.info("Keeping %s", path)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    project.overwrite(path, text)
    return True


def _core_example_schema(project):
    """The text cfn init writes to <type>.json just before calling the plugin (its
    example schema, Project._write_example_schema), or None if unknown."""
    if not isinstance(getattr(project, "schema", None), dict):
        return None
    return json.dumps(project.schema, indent=4) + "\n"


def _link_or_copy(link, target_name):
    """`link` -> `target_name` (in the same folder); a copy where links are refused."""
    try:
        link.symlink_to(target_name)
    except OSError:
        shutil.copyfile(link.parent / target_name, link)


# ----------------------------------------------------------- Cargo workspace


def _declares_workspace(manifest):
    try:
        text = manifest.read_text(encoding="utf-8")
    except OSError:
        return False
    try:
        import tomllib  # Python 3.11+

        return "workspace" in tomllib.loads(text)
    except ImportError:
        return bool(re.search(r"^\s*\[workspace(\.[A-Za-z0-9_-]+)*\]", text, re.M))
    except ValueError:
        return False


def find_workspace_root(start):
    """The nearest folder from `start` upwards whose Cargo.toml declares a
    [workspace] (Cargo's own rule), or `start` itself; the search stops at the
    top of a git repository."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        manifest = folder / "Cargo.toml"
        if manifest.is_file() and _declares_workspace(manifest):
            return folder
        if (folder / ".git").exists():
            break
    return start


def cargo_workspace(root, env=None):
    """(workspace root, target directory) as Cargo resolves them for `root`
    (CARGO_TARGET_DIR and build.target-dir included)."""
    command = ["cargo", "metadata", "--no-deps", "--format-version", "1"]
    try:
        result = subprocess.run(  # nosec
            command, cwd=root, env=env, check=True, capture_output=True, text=True
        )
        metadata = json.loads(result.stdout)
        return Path(metadata["workspace_root"]), Path(metadata["target_directory"])
    except subprocess.CalledProcessError as e:
        raise RustPluginError(
            f"'{' '.join(command)}' failed in {root}: {(e.stderr or '').strip()}"
        ) from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RustPluginError(f"could not read the Cargo metadata of {root}: {e}") from e


def source_files(project_root):
    """(path, name in the package) of the Rust sources, sorted, without duplicates:
    the workspace root's manifests, lock file, toolchain file and crates/, and the
    project folder's own manifest, build.rs, src/ and crates/. Names are relative
    to the workspace root, so a member in a subfolder keeps its place."""
    project_root = Path(project_root).resolve()
    workspace = find_workspace_root(project_root)
    bases = [workspace] if workspace == project_root else [workspace, project_root]
    found = {}
    for base in bases:
        names = SOURCE_FILES if base == project_root else SOURCE_FILES[:4]
        for name in names:
            path = base / name
            if path.is_file():
                found.setdefault(path.relative_to(workspace).as_posix(), path)
        dirs = SOURCE_DIRS if base == project_root else ("crates",)
        for top in dirs:
            folder = base / top
            if not folder.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = sorted(d for d in dirnames if d not in SOURCE_SKIP_DIRS)
                for filename in sorted(filenames):
                    path = Path(dirpath) / filename
                    found.setdefault(path.relative_to(workspace).as_posix(), path)
    return [(path, name) for name, path in sorted(found.items())]


# ---------------------------------------------------------- handler checks


def check_handler_zip(data, name, arch):
    """Refuses (RustPluginError) a handler zip that provided.al2023 cannot run as
    an `arch` Lambda: `bootstrap` must be at its root, a regular file readable and
    executable by everyone (Lambda runs it as a non-root user), a 64-bit
    little-endian ELF executable for `arch`, and either static or dynamically
    linked with glibc's loader and needing no GLIBC_x.y newer than MAX_GLIBC.
    Returns a one-line summary of what was checked."""
    expected = ARCHITECTURES[arch]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as handler:
            names = handler.namelist()
            try:
                info = handler.getinfo("bootstrap")
            except KeyError:
                info = None
            binary = handler.read(info) if info is not None else b""
    except (zipfile.BadZipFile, OSError) as e:
        raise RustPluginError(f"{name} is not a zip file ({e})") from e
    except (RuntimeError, ValueError, zipfile.LargeZipFile) as e:
        raise RustPluginError(f"cannot read 'bootstrap' from {name}: {e}") from e
    if info is None:
        nested = [n for n in names if n.rsplit("/", 1)[-1] == "bootstrap"]
        hint = (
            f"; found {', '.join(nested[:3])}: it must be at the root, not in a folder"
            if nested
            else f"; it holds {', '.join(names[:5]) or 'nothing'}"
        )
        raise RustPluginError(f"{name} has no 'bootstrap' at its root{hint}")

    mode = info.external_attr >> 16
    file_type = stat.S_IFMT(mode)
    if info.create_system != 3 or not mode:
        raise RustPluginError(
            f"'bootstrap' in {name} is not executable: the zip records no Unix mode "
            "bits for it (made on a non-Unix system?); Lambda needs mode 755"
        )
    if file_type and file_type != stat.S_IFREG:
        raise RustPluginError(
            f"'bootstrap' in {name} is not a regular file (a symbolic link or a "
            "folder?); Lambda needs the executable itself"
        )
    if stat.S_IMODE(mode) & 0o555 != 0o555:
        raise RustPluginError(
            f"'bootstrap' in {name} is not executable (mode {stat.S_IMODE(mode):o}): "
            "Lambda runs it as a non-root user, so it needs read and execute bits "
            "for everyone (mode 755)"
        )

    try:
        info_elf = elf.inspect(binary)
    except elf.ElfError as e:
        raise RustPluginError(
            f"'bootstrap' in {name} is not a Linux executable for Lambda: {e}"
        ) from e
    if info_elf.machine != expected.e_machine:
        raise RustPluginError(
            f"'bootstrap' in {name} is built for {info_elf.machine_name} (ELF "
            f"e_machine {info_elf.machine}), but the architecture is {arch} "
            f"(e_machine {expected.e_machine}): build it for {expected.triple}, or "
            "set settings.architecture / RPDK_RUST_ARCHITECTURE to match"
        )
    if info_elf.elf_type not in (elf.ET_EXEC, elf.ET_DYN):
        raise RustPluginError(
            f"'bootstrap' in {name} is an ELF {info_elf.type_name} file, not an "
            "executable (ET_EXEC or ET_DYN)"
        )
    needed_glibc = info_elf.max_glibc
    if info_elf.interpreter is None and info_elf.version_needs:
        raise RustPluginError(
            f"'bootstrap' in {name} needs shared libraries but has no program "
            "interpreter: it is a shared library, not an executable"
        )
    if info_elf.interpreter is not None and info_elf.interpreter != expected.interpreter:
        raise RustPluginError(
            f"'bootstrap' in {name} uses the program interpreter "
            f"{info_elf.interpreter}, which provided.al2023 does not have (glibc's is "
            f"{expected.interpreter}): build it for {expected.triple}, or link it "
            "statically"
        )
    if needed_glibc is not None and needed_glibc > MAX_GLIBC:
        too_new = [
            "GLIBC_" + elf.version_str(v) for v in info_elf.glibc_versions if v > MAX_GLIBC
        ]
        raise RustPluginError(
            f"'bootstrap' in {name} needs GLIBC_{elf.version_str(needed_glibc)}, but "
            f"{RUNTIME} has glibc {elf.version_str(MAX_GLIBC)} (versions too new: "
            f"{', '.join(too_new)}): link it against an older glibc, e.g. cargo lambda "
            f"build --target {expected.triple}.{elf.version_str(MAX_GLIBC)} (zig)"
        )

    if info_elf.interpreter is None:
        linking = "statically linked"
    elif needed_glibc is None:
        linking = "dynamically linked, no GLIBC version needed"
    else:
        linking = (
            f"dynamically linked, needs GLIBC_{elf.version_str(needed_glibc)} at most "
            f"(<= {elf.version_str(MAX_GLIBC)})"
        )
    return (
        f"bootstrap at the root, mode {stat.S_IMODE(mode):o}, ELF 64-bit LSB "
        f"{info_elf.type_name} {info_elf.machine_name} ({arch}), {linking}; "
        f"bootstrap {info.file_size} bytes, {HANDLER_ZIP} {len(data)} bytes"
    )


def _report_package_size(path):
    try:
        size = os.path.getsize(path)
    except OSError:
        return
    print(f"Package {path}: {size} bytes ({size / 1048576:.2f} MiB)", file=sys.stderr)
