"""Small ELF files and handler zips made in the tests themselves.

`make_elf` lays out a minimal 64-bit ELF: the header, PT_LOAD/PT_INTERP/
PT_DYNAMIC program headers, a `.dynstr` string table, a `.gnu.version_r`
(SHT_GNU_verneed) section listing the symbol versions it needs, and a dynamic
segment pointing at both (for the reader's fallback when section headers are
gone). It runs nowhere; it only has to look like a linked binary to a parser.
"""
import io
import stat
import struct
import zipfile

EM_X86_64 = 62
EM_AARCH64 = 183
ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
LD_X86_64 = "/lib64/ld-linux-x86-64.so.2"
LD_AARCH64 = "/lib/ld-linux-aarch64.so.1"

DEFAULT_NEEDS = {"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.28", "GLIBC_2.34"]}


def make_elf(
    machine=EM_X86_64,
    elf_type=ET_DYN,
    interpreter=LD_X86_64,
    needs=None,
    sections=True,
    elf_class=2,
    byte_order=1,
):
    needs = DEFAULT_NEEDS if needs is None else needs
    phnum = 1 + (interpreter is not None) + bool(needs)
    offset = 64 + 56 * phnum

    interp = (interpreter.encode() + b"\0") if interpreter is not None else b""
    interp_off = offset
    offset += len(interp)

    dynstr = bytearray(b"\0")

    def add_str(text):
        pos = len(dynstr)
        dynstr.extend(text.encode() + b"\0")
        return pos

    verneed = bytearray()
    files = list(needs.items())
    for index, (library, versions) in enumerate(files):
        size = 16 + 16 * len(versions)
        is_last = index == len(files) - 1
        verneed += struct.pack(
            "<HHIII", 1, len(versions), add_str(library), 16, 0 if is_last else size
        )
        for number, version in enumerate(versions):
            last_aux = number == len(versions) - 1
            verneed += struct.pack(
                "<IHHII", 0x0D696910, 0, 2 + number, add_str(version), 0 if last_aux else 16
            )

    dynstr_off = offset
    offset += len(dynstr)
    offset = (offset + 7) & ~7
    verneed_off = offset
    offset += len(verneed)
    offset = (offset + 7) & ~7
    dynamic = b""
    if needs:
        dynamic = struct.pack(
            "<qQqQqQqQqQ",
            5, dynstr_off,  # DT_STRTAB (vaddr == file offset: one PT_LOAD at 0)
            10, len(dynstr),  # DT_STRSZ
            0x6FFFFFFE, verneed_off,  # DT_VERNEED
            0x6FFFFFFF, len(files),  # DT_VERNEEDNUM
            0, 0,  # DT_NULL
        )
    dynamic_off = offset
    offset += len(dynamic)
    offset = (offset + 7) & ~7
    shoff = offset
    shnum = 3 if sections and needs else 0
    total = shoff + 64 * shnum

    phdrs = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, total, total, 0x1000)  # PT_LOAD
    if interpreter is not None:
        phdrs += struct.pack("<IIQQQQQQ", 3, 4, interp_off, interp_off, interp_off, len(interp), len(interp), 1)
    if needs:
        phdrs += struct.pack("<IIQQQQQQ", 2, 6, dynamic_off, dynamic_off, dynamic_off, len(dynamic), len(dynamic), 8)

    ident = b"\x7fELF" + bytes([elf_class, byte_order, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", elf_type, machine, 1, 0x1000, 64, shoff if shnum else 0, 0, 64, 56, phnum, 64 if shnum else 0, shnum, 0
    )
    out = bytearray(header + phdrs)
    out += interp
    out += dynstr
    out += bytes(verneed_off - len(out))
    out += verneed
    out += bytes(dynamic_off - len(out))
    out += dynamic
    out += bytes(shoff - len(out))
    if shnum:
        out += bytes(64)  # SHN_UNDEF
        out += struct.pack("<IIQQQQIIQQ", 0, 3, 2, dynstr_off, dynstr_off, len(dynstr), 0, 0, 1, 0)
        out += struct.pack(
            "<IIQQQQIIQQ", 0, 0x6FFFFFFE, 2, verneed_off, verneed_off, len(verneed), 1, len(files), 8, 0
        )
    assert len(out) == total
    return bytes(out)


def make_zip(entries):
    """entries: {name: data} or {name: (data, mode)}; mode None = no Unix mode."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in entries.items():
            data, mode = value if isinstance(value, tuple) else (value, 0o755)
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            if mode is None:
                info.create_system = 0
                info.external_attr = 0
            else:
                info.create_system = 3
                info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, data)
    return buffer.getvalue()
