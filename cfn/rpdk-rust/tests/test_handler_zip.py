"""check_handler_zip: what provided.al2023 can run as the handler, and the message
for each thing it cannot."""
import io
import os
import shutil
import subprocess
import zipfile
from types import SimpleNamespace

import pytest
from elf_fixtures import (
    EM_AARCH64,
    ET_EXEC,
    ET_REL,
    LD_AARCH64,
    make_elf,
    make_zip,
)

from rpdk.rust import elf
from rpdk.rust.codegen import RustLanguagePlugin, RustPluginError, check_handler_zip

NAME = "handler.zip"


def refused(data, arch="x86_64"):
    with pytest.raises(RustPluginError) as error:
        check_handler_zip(data, NAME, arch)
    return str(error.value)


# ------------------------------------------------------------------ accepted


def test_good_x86_64():
    summary = check_handler_zip(make_zip({"bootstrap": make_elf()}), NAME, "x86_64")
    assert "bootstrap at the root, mode 755" in summary
    assert "ELF 64-bit LSB ET_DYN x86_64 (x86_64)" in summary
    assert "needs GLIBC_2.34 at most (<= 2.34)" in summary
    assert f"bootstrap {len(make_elf())} bytes" in summary


def test_good_x86_64_exec_without_section_headers():
    # a binary stripped of its section headers: versions read from PT_DYNAMIC
    data = make_elf(elf_type=ET_EXEC, sections=False, needs={"libc.so.6": ["GLIBC_2.17"]})
    summary = check_handler_zip(make_zip({"bootstrap": data}), NAME, "x86_64")
    assert "ET_EXEC" in summary and "needs GLIBC_2.17 at most" in summary


def test_good_arm64_when_chosen():
    data = make_elf(machine=EM_AARCH64, interpreter=LD_AARCH64)
    assert "arm64 (arm64)" in check_handler_zip(make_zip({"bootstrap": data}), NAME, "arm64")


def test_static_binary_is_accepted():
    data = make_elf(interpreter=None, needs={})
    assert "statically linked" in check_handler_zip(make_zip({"bootstrap": data}), NAME, "x86_64")


def test_other_files_next_to_bootstrap_are_fine():
    data = make_zip({"bootstrap": make_elf(), "config/app.json": (b"{}", 0o644)})
    check_handler_zip(data, NAME, "x86_64")


# ------------------------------------------------------------------ refused


def test_wrong_machine():
    data = make_elf(machine=EM_AARCH64, interpreter=LD_AARCH64)
    message = refused(make_zip({"bootstrap": data}), "x86_64")
    assert message == (
        "'bootstrap' in handler.zip is built for arm64 (ELF e_machine 183), but the "
        "architecture is x86_64 (e_machine 62): build it for x86_64-unknown-linux-gnu, "
        "or set settings.architecture / RPDK_RUST_ARCHITECTURE to match"
    )


def test_x86_64_binary_for_arm64():
    message = refused(make_zip({"bootstrap": make_elf()}), "arm64")
    assert "built for x86_64 (ELF e_machine 62), but the architecture is arm64 (e_machine 183)" in message


def test_not_elf():
    message = refused(make_zip({"bootstrap": b"#!/bin/sh\nexec ./handler\n"}))
    assert message == (
        "'bootstrap' in handler.zip is not a Linux executable for Lambda: "
        "not an ELF file (it starts with b'#!/b')"
    )


def test_empty_bootstrap_is_not_elf():
    assert "not an ELF file (it starts with b'')" in refused(make_zip({"bootstrap": b""}))


def test_32_bit_and_big_endian():
    assert refused(make_zip({"bootstrap": make_elf(elf_class=1)})).endswith("a 32-bit ELF file")
    assert refused(make_zip({"bootstrap": make_elf(byte_order=2)})).endswith("a big-endian ELF file")


def test_truncated_elf():
    message = refused(make_zip({"bootstrap": make_elf()[:100]}))
    assert "is not a Linux executable for Lambda: a truncated" in message


def test_relocatable_object_is_not_executable():
    message = refused(make_zip({"bootstrap": make_elf(elf_type=ET_REL)}))
    assert "is an ELF ET_REL file, not an executable (ET_EXEC or ET_DYN)" in message


def test_missing_bootstrap():
    message = refused(make_zip({"README.md": (b"hi", 0o644)}))
    assert message == "handler.zip has no 'bootstrap' at its root; it holds README.md"


def test_bootstrap_in_a_folder():
    message = refused(make_zip({"target/lambda/bootstrap/bootstrap": make_elf()}))
    assert message == (
        "handler.zip has no 'bootstrap' at its root; found "
        "target/lambda/bootstrap/bootstrap: it must be at the root, not in a folder"
    )


def test_not_a_zip():
    assert refused(make_elf()).startswith("handler.zip is not a zip file")


def test_not_executable():
    message = refused(make_zip({"bootstrap": (make_elf(), 0o644)}))
    assert message == (
        "'bootstrap' in handler.zip is not executable (mode 644): Lambda runs it as a "
        "non-root user, so it needs read and execute bits for everyone (mode 755)"
    )


def test_executable_for_owner_only():
    assert "(mode 700)" in refused(make_zip({"bootstrap": (make_elf(), 0o700)}))


def test_no_unix_mode_bits():
    message = refused(make_zip({"bootstrap": (make_elf(), None)}))
    assert "records no Unix mode bits for it" in message


def test_glibc_too_new():
    data = make_elf(needs={"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.35", "GLIBC_2.36"]})
    message = refused(make_zip({"bootstrap": data}))
    assert message == (
        "'bootstrap' in handler.zip needs GLIBC_2.36, but provided.al2023 has glibc 2.34 "
        "(versions too new: GLIBC_2.35, GLIBC_2.36): link it against an older glibc, "
        "e.g. cargo lambda build --target x86_64-unknown-linux-gnu.2.34 (zig)"
    )


def test_glibc_too_new_in_a_second_library_and_without_sections():
    data = make_elf(
        sections=False,
        needs={"libgcc_s.so.1": ["GCC_3.0"], "libc.so.6": ["GLIBC_2.17", "GLIBC_2.38"]},
    )
    assert "needs GLIBC_2.38, but provided.al2023 has glibc 2.34" in refused(make_zip({"bootstrap": data}))


def test_versions_compare_as_numbers():
    # 2.4 < 2.34 < 2.100 (not as strings)
    data = make_elf(needs={"libc.so.6": ["GLIBC_2.4", "GLIBC_2.100"]})
    assert "needs GLIBC_2.100" in refused(make_zip({"bootstrap": data}))


def test_musl_interpreter():
    data = make_elf(interpreter="/lib/ld-musl-x86_64.so.1", needs={"libc.so": ["GLIBC_2.2.5"]})
    message = refused(make_zip({"bootstrap": data}))
    assert "uses the program interpreter /lib/ld-musl-x86_64.so.1, which provided.al2023 does not have" in message


def test_shared_library():
    message = refused(make_zip({"bootstrap": make_elf(interpreter=None)}))
    assert "needs shared libraries but has no program interpreter" in message


# ------------------------------------------- real binaries made by gcc, if any

HELLO = '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'
# arc4random arrived in glibc 2.36: a binary calling it needs GLIBC_2.36
NEWER = '#include <stdlib.h>\nint main(void) { return (int)(arc4random() & 1); }\n'


def compile_c(tmp_path, source, name):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler")
    if os.uname().machine != "x86_64":
        pytest.skip("not an x86_64 host")
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / name
    result = subprocess.run([gcc, "-O1", "-o", str(out), str(src)], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"gcc could not build {name}: {result.stderr.strip()[:200]}")
    return out.read_bytes()


def test_gcc_binary(tmp_path):
    data = compile_c(tmp_path, HELLO, "hello")
    info = elf.inspect(data)
    assert info.machine == elf.EM_X86_64 and info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    if info.max_glibc > (2, 34):
        pytest.skip(f"this host's glibc makes even hello need {info.max_glibc}")
    assert "dynamically linked" in check_handler_zip(make_zip({"bootstrap": data}), NAME, "x86_64")


def test_gcc_binary_with_glibc_2_36(tmp_path):
    data = compile_c(tmp_path, NEWER, "newer")
    assert "needs GLIBC_2.36" in refused(make_zip({"bootstrap": data}))


def test_gcc_binary_with_patched_version_string(tmp_path):
    data = compile_c(tmp_path, HELLO, "hello")
    versions = elf.inspect(data).glibc_versions
    old = ("GLIBC_" + elf.version_str(versions[-1])).encode()
    new = b"GLIBC_9." + b"9" * (len(old) - len(b"GLIBC_9."))
    assert data.count(old) >= 1
    patched = data.replace(old, new)
    assert f"needs {new.decode()}" in refused(make_zip({"bootstrap": patched}))


# --------------------------------------------------------- through package()


def fake_project(tmp_path, **settings):
    return SimpleNamespace(root=tmp_path, settings=settings, entrypoint="bootstrap")


def test_package_refuses_a_bad_prebuilt_zip(tmp_path, monkeypatch):
    prebuilt = tmp_path / "prebuilt.zip"
    prebuilt.write_bytes(make_zip({"bootstrap": (make_elf(), 0o644)}))
    monkeypatch.setenv("RPDK_RUST_HANDLER_ZIP", str(prebuilt))
    monkeypatch.delenv("RPDK_RUST_ARCHITECTURE", raising=False)
    with zipfile.ZipFile(io.BytesIO(), "w") as package, pytest.raises(RustPluginError) as error:
        RustLanguagePlugin().package(fake_project(tmp_path), package)
    assert str(error.value).startswith(f"'bootstrap' in {prebuilt} is not executable (mode 644)")


def test_package_refuses_a_prebuilt_zip_for_the_other_architecture(tmp_path, monkeypatch):
    prebuilt = tmp_path / "prebuilt.zip"
    prebuilt.write_bytes(make_zip({"bootstrap": make_elf()}))
    monkeypatch.setenv("RPDK_RUST_HANDLER_ZIP", str(prebuilt))
    monkeypatch.setenv("RPDK_RUST_ARCHITECTURE", "arm64")
    with zipfile.ZipFile(io.BytesIO(), "w") as package, pytest.raises(RustPluginError) as error:
        RustLanguagePlugin().package(fake_project(tmp_path), package)
    assert "but the architecture is arm64" in str(error.value)


def test_package_takes_a_good_prebuilt_zip_and_logs_the_check(tmp_path, monkeypatch, caplog):
    handler = make_zip({"bootstrap": make_elf()})
    prebuilt = tmp_path / "prebuilt.zip"
    prebuilt.write_bytes(handler)
    monkeypatch.setenv("RPDK_RUST_HANDLER_ZIP", str(prebuilt))
    monkeypatch.delenv("RPDK_RUST_ARCHITECTURE", raising=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        RustLanguagePlugin().package(fake_project(tmp_path, packageSources=False), package)
    with zipfile.ZipFile(buffer) as package:
        assert package.namelist() == ["handler.zip"]
        assert package.read("handler.zip") == handler
    checked = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Checked handler.zip")]
    assert len(checked) == 1
    assert "x86_64" in checked[0] and "GLIBC_2.34 at most" in checked[0]
