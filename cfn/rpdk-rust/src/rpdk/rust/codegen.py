"""The `rust` language plugin for the CloudFormation CLI.

A Rust resource type is a Cargo project whose handler binary (named after the
project's `entrypoint`, `bootstrap` by default) speaks the CloudFormation
resource provider protocol 2.0.0 as a Lambda function on the `provided.al2023`
runtime. This plugin writes no code: the Rust handler owns its model types.

- init:     records the runtime, entrypoint and settings in .rpdk-config; writes
            nothing else (an existing Cargo project is never scaffolded over).
- generate: nothing of its own. `cfn generate` itself writes resource-role.yaml
            (Project.generate) and docs/ (Project.generate_docs); the plugin only
            keeps the settings it needs in .rpdk-config up to date.
- package:  builds the handler with `cargo lambda build` (profile `dist`, arm64
            unless told otherwise) and adds `handler.zip` (with `bootstrap` at its
            root, as the Go plugin does) plus the Rust sources to the package.

Settings (`.rpdk-config` -> `settings`), each with an environment override:

    architecture   arm64 | x86_64       RPDK_RUST_ARCHITECTURE   (default arm64)
    cargoProfile   a Cargo profile      RPDK_RUST_CARGO_PROFILE  (default dist)
    binary         the [[bin]] name     -                        (default: entrypoint)
    packageSources true | false         -                        (default true)

RPDK_RUST_HANDLER_ZIP=path packages a handler zip built elsewhere instead of
building one (it must hold an executable `bootstrap` at its root).
"""
import atexit
import io
import logging
import os
import shutil
import stat
import subprocess  # nosec
import sys
import zipfile
from pathlib import Path

from rpdk.core.exceptions import SysExitRecommendedError
from rpdk.core.plugin_base import LanguagePlugin

from . import __version__

LOG = logging.getLogger(__name__)

LANGUAGE = "rust"
RUNTIME = "provided.al2023"
ENTRY_POINT = "bootstrap"
PROTOCOL_VERSION = "2.0.0"

ARCHITECTURES = {
    # settings value -> (cargo lambda flag, Rust target triple)
    "arm64": ("--arm64", "aarch64-unknown-linux-gnu"),
    "x86_64": ("--x86-64", "x86_64-unknown-linux-gnu"),
}
ARCH_ALIASES = {"aarch64": "arm64", "amd64": "x86_64", "x86-64": "x86_64"}
DEFAULT_SETTINGS = {
    "protocolVersion": PROTOCOL_VERSION,
    "architecture": "arm64",
    "cargoProfile": "dist",
}

HANDLER_ZIP = "handler.zip"
# Rust sources added to the package next to handler.zip (as the Go plugin adds its
# Go sources), so a submitted version records the code it was built from.
SOURCE_FILES = ("Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "build.rs")
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
        # resource-role.yaml and docs/ are written by cfn itself; nothing to
        # generate for Rust. Keep the settings this plugin relies on current.
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
        LOG.debug("Generate complete")

    # --------------------------------------------------------------- package

    def get_plugin_information(self, project):  # pylint: disable=unused-argument
        return {"plugin-tool-version": __version__, "plugin-name": LANGUAGE}

    def package(self, project, zip_file):
        LOG.info("Packaging Rust project")
        arch = self._architecture(project)
        prebuilt = os.environ.get("RPDK_RUST_HANDLER_ZIP")
        if prebuilt:
            handler_zip = self._check_handler_zip(Path(prebuilt).read_bytes(), prebuilt)
            binary_size = None
            LOG.warning("Packaging prebuilt handler %s", prebuilt)
        else:
            binary = self._build(project, arch)
            binary_size = binary.stat().st_size
            handler_zip = self._zip_handler(binary)

        zip_file.writestr(HANDLER_ZIP, handler_zip)
        if project.settings.get("packageSources", True):
            self._write_sources(project, zip_file)

        LOG.warning(
            "Rust handler (%s, profile %s): %s; %s %s bytes",
            arch,
            self._profile(project),
            f"bootstrap {binary_size} bytes" if binary_size is not None else "prebuilt",
            HANDLER_ZIP,
            len(handler_zip),
        )
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

    def _build(self, project, arch):
        env = self._tool_env()
        if not shutil.which("cargo", path=env["PATH"]):
            raise RustPluginError("cargo not found on PATH: install a Rust toolchain")
        if not shutil.which("cargo-lambda", path=env["PATH"]):
            raise RustPluginError(
                "cargo-lambda not found: pip install cargo-lambda (see cfn/requirements.txt)"
            )
        flag, triple = ARCHITECTURES[arch]
        self._check_target(triple, env)
        profile = self._profile(project)
        name = self._binary_name(project)
        lambda_dir = project.root / "target" / "lambda" / arch
        command = [
            "cargo",
            "lambda",
            "build",
            "--profile",
            profile,
            flag,
            "--bin",
            name,
            "--output-format",
            "binary",
            "--lambda-dir",
            str(lambda_dir),
        ]
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
            raise RustPluginError(f"cargo lambda build produced no {binary}")
        return binary

    @staticmethod
    def _check_target(triple, env):
        """cargo lambda needs the Rust standard library of the target."""
        if not shutil.which("rustup", path=env["PATH"]):
            return  # not a rustup toolchain: let cargo tell
        try:
            installed = subprocess.run(  # nosec
                ["rustup", "target", "list", "--installed"],
                env=env,
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
    def _check_handler_zip(data, name):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as handler:
                info = handler.getinfo("bootstrap")
        except (zipfile.BadZipFile, KeyError) as e:
            raise RustPluginError(f"{name} has no 'bootstrap' at its root") from e
        if not (info.external_attr >> 16) & 0o111:
            raise RustPluginError(f"'bootstrap' in {name} is not executable")
        return data

    @staticmethod
    def _write_sources(project, zip_file):
        root = project.root
        for name in SOURCE_FILES:
            path = root / name
            if path.is_file():
                zip_file.write(path, name)
        for top in SOURCE_DIRS:
            base = root / top
            if not base.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if d not in SOURCE_SKIP_DIRS)
                for filename in sorted(filenames):
                    path = Path(dirpath) / filename
                    zip_file.write(path, path.relative_to(root).as_posix())


def _report_package_size(path):
    try:
        size = os.path.getsize(path)
    except OSError:
        return
    print(f"Package {path}: {size} bytes ({size / 1048576:.2f} MiB)", file=sys.stderr)
