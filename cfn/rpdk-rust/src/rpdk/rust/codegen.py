"""The `rust` language plugin for the CloudFormation CLI.

A Rust resource type is a Cargo project whose handler binary (named after the
project's `entrypoint`, `bootstrap` by default) speaks the CloudFormation
resource provider protocol 2.0.0 as a Lambda function on the `provided.al2023`
runtime. This plugin writes no code: the Rust handler owns its model types.

- init:     records the runtime, entrypoint and settings in .rpdk-config; writes
            nothing else (an existing Cargo project is never scaffolded over).
- generate: `cfn generate` itself writes resource-role.yaml (Project.generate),
            then calls the plugin, then writes docs/ (Project.generate_docs). The
            plugin keeps its settings in .rpdk-config current and narrows the
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

    # ------------------------------------------------------------------ init

    def init(self, project):
        LOG.debug("Init started")
        project.runtime = self.RUNTIME
        project.entrypoint = self.ENTRY_POINT
        project.test_entrypoint = self.TEST_ENTRY_POINT
        for key, value in DEFAULT_SETTINGS.items():
            project.settings.setdefault(key, value)
        project.settings["protocolVersion"] = self._protocol_version
        if not (project.root / "Cargo.toml").is_file():
            LOG.warning(
                "No Cargo.toml in %s: create the Cargo project with a [[bin]] named "
                "'%s' before 'cfn submit'",
                project.root,
                project.entrypoint,
            )
        LOG.debug("Init complete")

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
        self._restrict_role(project)
        LOG.debug("Generate complete")

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
