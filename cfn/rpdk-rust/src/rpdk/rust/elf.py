"""Just enough of an ELF reader, in pure Python, to vet a Lambda `bootstrap`.

It reads the ELF header (class, byte order, type, machine), the program headers
(PT_INTERP, PT_DYNAMIC) and the symbol version requirements: the section
SHT_GNU_verneed (`.gnu.version_r`) with the string table it links to
(`.dynstr`), or, for a binary without section headers, DT_VERNEED/DT_STRTAB of
the dynamic segment. No objdump or readelf is needed.
"""
import re
import struct
from typing import NamedTuple, Optional, Tuple, FrozenSet

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1

ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
ET_EXEC = 2
ET_DYN = 3

EM_386 = 3
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_NAMES = {
    EM_386: "i386",
    EM_ARM: "arm",
    EM_X86_64: "x86_64",
    EM_AARCH64: "arm64",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    243: "riscv",
}

PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3

SHT_GNU_VERNEED = 0x6FFFFFFE

DT_NULL = 0
DT_STRTAB = 5
DT_STRSZ = 10
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF

GLIBC_VERSION = re.compile(r"^GLIBC_(\d+(?:\.\d+)+)$")


class ElfError(ValueError):
    """The data is not an ELF file this module can read; the message says why."""


class ElfInfo(NamedTuple):
    elf_type: int
    machine: int
    interpreter: Optional[str]
    dynamic: bool
    # every version needed from any library, e.g. {"GLIBC_2.34", "GCC_3.0"}
    version_needs: FrozenSet[str]

    @property
    def type_name(self):
        return ET_NAMES.get(self.elf_type, f"type {self.elf_type}")

    @property
    def machine_name(self):
        return EM_NAMES.get(self.machine, f"machine {self.machine}")

    @property
    def glibc_versions(self) -> Tuple[Tuple[int, ...], ...]:
        """The GLIBC_x.y[.z] versions required, as sorted tuples of ints."""
        found = set()
        for name in self.version_needs:
            match = GLIBC_VERSION.match(name)
            if match:
                found.add(tuple(int(part) for part in match.group(1).split(".")))
        return tuple(sorted(found))

    @property
    def max_glibc(self) -> Optional[Tuple[int, ...]]:
        versions = self.glibc_versions
        return versions[-1] if versions else None


def version_str(version):
    return ".".join(str(part) for part in version)


def read_ident(data):
    """(class, byte order) of an ELF file, or ElfError when it is not one."""
    if len(data) < 16 or data[:4] != ELF_MAGIC:
        raise ElfError(f"not an ELF file (it starts with {bytes(data[:4])!r})")
    return data[4], data[5]


def inspect(data) -> ElfInfo:
    """Reads a 64-bit little-endian ELF file (the only kind Lambda runs)."""
    elf_class, byte_order = read_ident(data)
    if elf_class != ELFCLASS64:
        raise ElfError(
            "a 32-bit ELF file" if elf_class == 1 else f"ELF class {elf_class}"
        )
    if byte_order != ELFDATA2LSB:
        raise ElfError(
            "a big-endian ELF file" if byte_order == 2 else f"ELF data {byte_order}"
        )
    try:
        return _inspect64(memoryview(data))
    except struct.error as e:
        raise ElfError(f"a truncated or corrupt ELF file ({e})") from e


def _inspect64(data):
    (
        e_type,
        e_machine,
        _version,
        _entry,
        e_phoff,
        e_shoff,
        _flags,
        _ehsize,
        e_phentsize,
        e_phnum,
        e_shentsize,
        e_shnum,
        e_shstrndx,
    ) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
    del e_shstrndx  # sections are found by type, not by name

    segments = []  # (p_type, p_offset, p_vaddr, p_filesz)
    for i in range(e_phnum if e_phentsize else 0):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, e_phoff + i * e_phentsize
        )
        segments.append((p_type, p_offset, p_vaddr, p_filesz))

    interpreter = None
    for p_type, p_offset, _vaddr, p_filesz in segments:
        if p_type == PT_INTERP:
            raw = _slice(data, p_offset, p_filesz)
            interpreter = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    dynamic = any(seg[0] == PT_DYNAMIC for seg in segments)

    sections = []  # (sh_type, sh_link, sh_offset, sh_size, sh_info)
    for i in range(e_shnum if e_shentsize else 0):
        (
            _name,
            sh_type,
            _flags,
            _addr,
            sh_offset,
            sh_size,
            sh_link,
            sh_info,
        ) = struct.unpack_from("<IIQQQQII", data, e_shoff + i * e_shentsize)
        sections.append((sh_type, sh_link, sh_offset, sh_size, sh_info))

    needs = set()
    verneed = [s for s in sections if s[0] == SHT_GNU_VERNEED]
    if verneed:
        for _type, link, offset, size, count in verneed:
            if link >= len(sections):
                raise ElfError("a .gnu.version_r section linked to no string table")
            _t, _l, str_offset, str_size, _i = sections[link]
            strings = _slice(data, str_offset, str_size)
            needs.update(_read_verneed(data, offset, count, strings, limit=offset + size))
    elif not sections and dynamic:
        needs.update(_verneed_from_dynamic(data, segments))
    return ElfInfo(e_type, e_machine, interpreter, dynamic, frozenset(needs))


def _slice(data, offset, size):
    if offset + size > len(data):
        raise ElfError("a truncated ELF file (a section or segment ends past its end)")
    return bytes(data[offset : offset + size])


def _cstr(strings, offset):
    if offset >= len(strings):
        raise ElfError("a version name outside its string table")
    return strings[offset : strings.index(b"\0", offset)].decode("utf-8", "replace")


def _read_verneed(data, offset, count, strings, limit=None):
    """Names of the Elf64_Vernaux entries of `count` Elf64_Verneed records."""
    names = []
    entry = offset
    for _ in range(count):
        if limit is not None and entry + 16 > limit:
            raise ElfError("a .gnu.version_r entry past the end of its section")
        _vn_version, vn_cnt, _vn_file, vn_aux, vn_next = struct.unpack_from(
            "<HHIII", data, entry
        )
        aux = entry + vn_aux
        for _ in range(vn_cnt):
            _hash, _flags, _other, vna_name, vna_next = struct.unpack_from(
                "<IHHII", data, aux
            )
            names.append(_cstr(strings, vna_name))
            if not vna_next:
                break
            aux += vna_next
        if not vn_next:
            break
        entry += vn_next
    return names


def _verneed_from_dynamic(data, segments):
    """The same list, for a binary stripped of its section headers."""
    tags = {}
    for p_type, p_offset, _vaddr, p_filesz in segments:
        if p_type != PT_DYNAMIC:
            continue
        for pos in range(p_offset, p_offset + p_filesz - 15, 16):
            d_tag, d_val = struct.unpack_from("<qQ", data, pos)
            if d_tag == DT_NULL:
                break
            tags.setdefault(d_tag, d_val)
    if DT_VERNEED not in tags or DT_STRTAB not in tags:
        return []

    def file_offset(vaddr):
        for p_type, p_offset, p_vaddr, p_filesz in segments:
            if p_type == PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
                return p_offset + (vaddr - p_vaddr)
        raise ElfError(f"a dynamic address {vaddr:#x} outside every loaded segment")

    str_offset = file_offset(tags[DT_STRTAB])
    strings = _slice(data, str_offset, tags.get(DT_STRSZ, len(data) - str_offset))
    return _read_verneed(
        data, file_offset(tags[DT_VERNEED]), tags.get(DT_VERNEEDNUM, 0), strings
    )
