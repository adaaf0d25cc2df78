"""kvm_uapi.abis: every ABI's records as ctypes classes, laid out as clang lays out the
spec's headers for that ABI (clang --target, read from LLVM IR), member by member."""

from __future__ import annotations

import ctypes
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import REPO
from kvm_uapi import abis
from kvmspec.layout import ABIS

pytestmark = pytest.mark.slow


def described(abi) -> bool:
    return any(h.arch == abi.arch and h.emit for h in _model().headers)


_MODEL = []


def _model():
    if not _MODEL:
        from kvmspec.build import load_model
        _MODEL.append(load_model(REPO))
    return _MODEL[0]


def clang_facts(abi) -> dict[str, str]:
    """What clang says of the spec's newest headers of the ABI's architecture."""
    from kvmspec.conformance import base_include, ir_facts, view_files
    from kvmspec.emit.text import environment
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed")
    if abi.arch != "x86" and base_include(abi) is None:
        pytest.skip(f"no base uapi headers for {abi.name} (Debian's linux-libc-dev-*-cross)")
    with tempfile.TemporaryDirectory() as tmp:
        ours, dump = view_files(_model(), None, abi.arch, Path(tmp), environment())
        facts, problem = ir_facts(abi, [f"-I{ours}"], [], dump)
    assert facts is not None, problem
    return facts


def member_offsets(cls, prefix: str = "", base: int = 0):
    """(dotted path, offset, ctypes type) of every named member, through anonymous and
    nested records the way the spec's facts name them."""
    for name, ctype in cls._fields_:
        if name.startswith(("_pad_", "_size", "_bits_")):
            continue
        offset = base + getattr(cls, name).offset
        anonymous = name in getattr(cls, "_anonymous_", ())
        path = prefix.rstrip(".") if anonymous else f"{prefix}{name}"
        if not anonymous:
            yield path, offset, ctype
        inner = ctype
        element = False
        while hasattr(inner, "_length_"):
            inner, element = inner._type_, True
        # inline records (their C name is a path inside the parent) are walked into;
        # members of a named record type are that record's own facts
        if isinstance(inner, type) and hasattr(inner, "_fields_") and "." in inner.__qualname__.split(".", 1)[1]:
            inner_prefix = f"{path}[0]." if element else (f"{path}." if path else "")
            yield from member_offsets(inner, inner_prefix, offset)


def test_every_abi_is_offered():
    assert set(abis.ABI_NAMES) == {abi.name for abi in ABIS}
    with pytest.raises(ValueError, match="unknown ABI 'vax'"):
        abis.abi("vax")
    with pytest.raises(AttributeError, match="has no KVM definition"):
        abis.abi("x86_64").KVM_NO_SUCH_THING


def test_ioctl_numbers_differ_where_the_encoding_does():
    assert abis.abi("x86_64").KVM_CREATE_VCPU == 0xAE41
    assert abis.abi("ppc64le").KVM_CREATE_VCPU == 0x2000AE41
    assert abis.abi("mips64").KVM_CREATE_VCPU == 0x2000AE41
    assert abis.abi("arm64").KVM_CREATE_VCPU == 0xAE41


def test_big_endian_abis_read_big_endian_data():
    s390x = abis.abi("s390x")
    region = s390x.kvm_userspace_memory_region.from_buffer_copy(
        (7).to_bytes(4, "big") + (1).to_bytes(4, "big") + (0x1000).to_bytes(8, "big") * 3)
    assert (region.slot, region.flags, region.guest_phys_addr) == (7, 1, 0x1000)
    assert s390x.big_endian and not abis.abi("arm64").big_endian


def test_big_endian_unions_inside_records_read_big_endian_data():
    # ppc64's kvm_sregs holds unions (u, u.e.impl) inside a struct: ctypes must accept them
    # in a big-endian record and read their members big-endian, as the little-endian ABI
    # reads the same bytes little-endian.
    sregs = {}
    for name, order in (("ppc64", "big"), ("ppc64le", "little")):
        cls = abis.abi(name).kvm_sregs
        raw = bytearray(ctypes.sizeof(cls))
        raw[0:4] = (0x004E1202).to_bytes(4, order)                     # pvr
        raw[8 + 256:8 + 260] = (0x1FF).to_bytes(4, order)             # u.e.features
        raw[8:12] = (0xABCD).to_bytes(4, order)                        # u.e.impl.fsl.features
        sregs[name] = cls.from_buffer_copy(bytes(raw))
    for s in sregs.values():
        assert (s.pvr, s.u.e.features, s.u.e.impl.fsl.features) == (0x004E1202, 0x1FF, 0xABCD)


@pytest.mark.parametrize("abi", ABIS, ids=lambda a: a.name)
def test_records_are_laid_out_as_clang_lays_them_out(abi):
    if not described(abi):
        pytest.skip(f"the spec has no asm/kvm.h of {abi.arch} yet")
    facts = clang_facts(abi)
    bindings = abis.abi(abi.name)
    checked = 0
    for name in bindings.records:
        cls = getattr(bindings, name)
        kind = "union" if issubclass(cls, (ctypes.Union, ctypes.BigEndianUnion)) else "struct"
        size = facts.get(f"size {kind} {name}")
        if size is None:
            continue   # a record the dump leaves out (an #ifdef that does not hold here)
        assert ctypes.sizeof(cls) == int(size), f"{abi.name}: sizeof({kind} {name})"
        for path, offset, _ in member_offsets(cls):
            expected = facts.get(f"offset {kind} {name}.{path}")
            if expected is not None:
                assert offset == int(expected), f"{abi.name}: offsetof({kind} {name}, {path})"
                checked += 1
    assert checked > 100
