"""The site's pages per architecture (generated/docs/arch/): every architecture
of the manifest has one, reachable from the index, listing its ioctls with the
numbers its own _IOC layout gives them, its records with their sizes on its
ABIs, and its ONE_REG register ids.

The expected numbers, sizes and ids are the kernel's, computed here from its
rules (the _IOC macros of asm-generic, powerpc and mips; the C layout of the
structs) rather than taken from the model."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

ARCHES = ("x86", "arm64", "s390", "ppc", "mips", "riscv", "loongarch")
# arch/powerpc and arch/mips define their own asm/ioctl.h: 3 direction bits
# (none 1, read 2, write 4) above a 13-bit size; the others use asm-generic's
# 2 bits (write 1, read 2) above a 14-bit size.
THREE_BIT_IOC = ("ppc", "mips")
KVMIO = 0xAE


def ioc(arch: str, direction: str, nr: int, size: int) -> int:
    if arch in THREE_BIT_IOC:
        bits = {"none": 1, "r": 2, "w": 4, "rw": 6}[direction]
        return bits << 29 | size << 16 | KVMIO << 8 | nr
    bits = {"none": 0, "w": 1, "r": 2, "rw": 3}[direction]
    return bits << 30 | size << 16 | KVMIO << 8 | nr


@pytest.fixture(scope="module")
def model():
    from kvmspec.build import load_model
    return load_model(REPO)


@pytest.fixture(scope="module")
def pages(model) -> dict[str, str]:
    """The site's pages as the rst and arch_pages generators render them, by name under docs/."""
    from kvmspec import emit
    files = emit.render(model, emit.generators({"rst", "arch_pages"}))
    return {path[len("docs/"):-len(".rst")]: text for path, text in files.items() if path.startswith("docs/")}


def parts(pages: dict[str, str], name: str) -> list[str]:
    """A page and its continuation parts (name, name-2, ...)."""
    return [text for page, text in pages.items() if page == name or re.fullmatch(re.escape(name) + r"-\d+", page)]


def tables(text: str) -> list[list[list[str]]]:
    """The rows (lists of cells, header row first) of every list-table of a page."""
    found: list[list[list[str]]] = []
    for line in text.splitlines():
        if line.startswith(".. list-table::"):
            found.append([])
        elif line.startswith("   * - "):
            found[-1].append([line[len("   * - "):]])
        elif line.startswith("     - ") and found and found[-1]:
            found[-1][-1].append(line[len("     - "):])
    return found


def rows_by_first(texts: list[str], header: str) -> dict[str, dict[str, str]]:
    """Rows of the tables whose first column is `header`, keyed by the name in
    their first cell, as {column title: cell}."""
    out = {}
    for text in texts:
        for table in tables(text):
            if table and table[0][0] == header:
                for row in table[1:]:
                    name = re.search(r"`+(?:struct |union )?([A-Za-z_0-9]+)", row[0]).group(1)
                    out[name] = dict(zip(table[0], row))
    return out


def toctree(text: str) -> list[str]:
    entries, inside = [], False
    for line in text.splitlines():
        if line.startswith(".. toctree::"):
            inside = True
        elif inside and line.startswith("   ") and not line.strip().startswith(":"):
            entries.append(line.strip())
        elif inside and line and not line.startswith(" "):
            inside = False
    return entries


def test_every_architecture_has_a_page_reachable_from_the_index(model, pages):
    assert [a.name for a in model.architectures] == list(ARCHES)
    assert "architectures" in toctree(pages["index"])
    assert toctree(pages["architectures"]) == [f"arch/{a}" for a in ARCHES]
    for arch in ARCHES:
        children = toctree(pages[f"arch/{arch}"])
        assert f"{arch}/ioctls" in children and f"{arch}/header" in children, (arch, children)
        for child in children:
            assert f"arch/{child}" in pages, (arch, child)


@pytest.mark.parametrize("arch", ARCHES)
def test_ioctl_pages_list_what_the_architecture_implements_with_its_own_numbers(model, pages, arch):
    rows = rows_by_first(parts(pages, f"arch/{arch}/ioctls"), "Ioctl")
    implemented = {i.name for i in model.ioctls if i.removed is None and (not i.arch or arch in i.arch)}
    assert set(rows) == implemented
    # the same ioctl, another number where the _IOC layout differs
    one_reg = rows["KVM_GET_ONE_REG"]          # _IOW(KVMIO, 0xab, struct kvm_one_reg), 16 bytes
    run = rows["KVM_RUN"]                      # _IO(KVMIO, 0x80)
    numbers = [k for k in one_reg if k.startswith("Number")]
    for column in numbers:
        assert int(one_reg[column].strip("`"), 16) == ioc(arch, "w", 0xAB, 16), (arch, one_reg)
        assert int(run[column].strip("`"), 16) == ioc(arch, "none", 0x80, 0), (arch, run)
    assert ":ref:`KVM_GET_ONE_REG <api-KVM_GET_ONE_REG>`" == one_reg["Ioctl"]
    if arch in THREE_BIT_IOC:
        assert int(one_reg[numbers[0]].strip("`"), 16) != ioc("x86", "w", 0xAB, 16)


def test_x86_ioctl_numbers_differ_between_its_abis_where_the_argument_size_does(pages):
    rows = rows_by_first(parts(pages, "arch/x86/ioctls"), "Ioctl")
    # _IOWR(KVMIO, 0xba, unsigned long): 8 bytes on x86_64, 4 on i386
    op = rows["KVM_MEMORY_ENCRYPT_OP"]
    assert int(op["Number (x86_64)"].strip("`"), 16) == ioc("x86", "rw", 0xBA, 8)
    assert int(op["Number (i386)"].strip("`"), 16) == ioc("x86", "rw", 0xBA, 4)
    # the ppc page has one number per ioctl: ppc64 and ppc64le encode alike
    ppc = rows_by_first(parts(pages, "arch/ppc/ioctls"), "Ioctl")["KVM_GET_ONE_REG"]
    assert [k for k in ppc if k.startswith("Number")] == ["Number (ppc64le, ppc64)"]


# sizeof and alignof of struct kvm_regs (riscv: struct kvm_riscv_core) on each ABI,
# from the kernel's definitions: x86 18 __u64; arm64 user_pt_regs (34 __u64),
# sp_el1, elr_el1, spsr[5], then the 16-byte aligned user_fpsimd_state (528);
# s390 gprs[16]; ppc 49 __u64; mips gpr[32], hi, lo, pc; loongarch gpr[32], pc;
# riscv user_regs_struct (32 longs) and mode.
REGS = {
    "x86": ("kvm_regs", {"x86_64": "144 / 8", "i386": "144 / 4"}),
    "arm64": ("kvm_regs", {"": "864 / 16"}),
    "s390": ("kvm_regs", {"": "128 / 8"}),
    "ppc": ("kvm_regs", {"ppc64le, ppc64": "392 / 8"}),
    "mips": ("kvm_regs", {"": "280 / 8"}),
    "loongarch": ("kvm_regs", {"": "264 / 8"}),
    "riscv": ("kvm_riscv_core", {"": "264 / 8"}),
}


@pytest.mark.parametrize("arch", ARCHES)
def test_header_pages_give_record_sizes_on_each_abi(pages, arch):
    name, expected = REGS[arch]
    rows = rows_by_first(parts(pages, f"arch/{arch}/header"), "Record")
    row = rows[name]
    sizes = {k.removeprefix("Size / align").strip(" ()"): v for k, v in row.items() if k.startswith("Size")}
    assert sizes == expected, (arch, row)


# ONE_REG ids as the kernel builds them: the architecture in bits 63..56
# (KVM_REG_PPC 0x10..., KVM_REG_S390 0x50..., KVM_REG_ARM64 0x60..., KVM_REG_MIPS
# 0x70..., KVM_REG_LOONGARCH 0x90...), log2 of the size in bits 55..52.
REG_ARCH = {"ppc": 0x1, "s390": 0x5, "arm64": 0x6, "mips": 0x7, "riscv": 0x8, "loongarch": 0x9}
U32, U64 = 2, 3


def reg_id(arch: str, size_log2: int, rest: int) -> int:
    return REG_ARCH[arch] << 60 | size_log2 << 52 | rest


def arm64_sys_reg(op0, op1, crn, crm, op2) -> int:
    return reg_id("arm64", U64, 0x13 << 16 | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2)


KNOWN_IDS = {
    "ppc": ("KVM_REG_PPC_HIOR", reg_id("ppc", U64, 0x1), 8),
    "s390": ("KVM_REG_S390_TODPR", reg_id("s390", U32, 0x1), 4),
    "arm64": ("KVM_REG_ARM_TIMER_CTL", arm64_sys_reg(3, 3, 14, 3, 1), 8),
    "mips": ("KVM_REG_MIPS_COUNT_CTL", reg_id("mips", U64, 0x20000), 8),
    "loongarch": ("KVM_REG_LOONGARCH_COUNTER", reg_id("loongarch", U64, 0x20001), 8),
}


@pytest.mark.parametrize("arch", sorted(KNOWN_IDS))
def test_register_id_pages_list_ids_of_the_architecture_with_their_sizes(pages, arch):
    rows = rows_by_first(parts(pages, f"arch/{arch}/register-ids"), "Register id")
    assert rows
    for name, row in rows.items():
        value = int(row["Value"].strip("`"), 16)
        assert value >> 60 == REG_ARCH[arch] and value >> 56 & 0xF == 0, (name, row)
        assert int(row["Bytes"]) == 1 << (value >> 52 & 0xF), (name, row)
    name, value, size = KNOWN_IDS[arch]
    assert int(rows[name]["Value"].strip("`"), 16) == value and int(rows[name]["Bytes"]) == size


def test_riscv_shows_how_its_register_ids_are_built(pages):
    """riscv names no complete id: its header page gives the register types
    (bits 31..24 of an id) and the macros that number the registers."""
    assert not parts(pages, "arch/riscv/register-ids")
    text = "\n".join(parts(pages, "arch/riscv/header"))
    sets = rows_by_first([text], "Value set")
    assert "``KVM_REG_RISCV_CORE`` 0x2000000" in sets["kvm_reg_riscv_type"]["Values"]
    macros = rows_by_first([text], "Macro")
    assert "KVM_REG_RISCV_CORE_REG" in macros
