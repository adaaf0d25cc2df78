"""Typed exits (Vcpu.run) and guest memory (Vm.add_memory) of kvm_uapi.api, on the real /dev/kvm.

The exit classes are generated from the spec's exit reasons and the kvm_run members they fill;
the data they decode comes from spec keys (counted_by on mmio.data and internal.data, buffer on
io.data_offset).
"""

from __future__ import annotations

import ctypes

import pytest

import kvm_uapi as K
from kvm_uapi import api as A
from kvm_uapi.api import (ExitReason, GuestMemory, HltExit, InternalErrorExit, IntrExit, IoExit, Kvm, MmioExit,
                          Vm)

from conftest import REPO, needs_kvm

RAM = 0x8000          # guest RAM from 0; 0x8000 and above is MMIO
CODE = 0x1000
PORT = 0x3F8

# real mode: mov dx, PORT; mov al, 'A'; out dx, al; in al, dx; mov [0x9000], al; mov ax, [0x9008];
# mov [0x500], ax; hlt
PROGRAM = bytes.fromhex("baf803" "b041" "ee" "ec" "a20090" "a10890" "a30005" "f4")


def real_mode_vcpu(vm: Vm, code: bytes) -> tuple[A.Vcpu, GuestMemory]:
    memory = vm.add_memory(0, RAM)
    memory.write(CODE, code)
    vcpu = vm.create_vcpu(0)
    vcpu.set_sregs(cs={"base": 0, "selector": 0, "limit": 0xFFFF, "type": 11, "present": 1, "s": 1})
    vcpu.set_regs(rip=CODE, rflags=2)
    return vcpu, memory


@pytest.fixture
def vm():
    try:
        kvm = Kvm()
    except OSError as exc:
        pytest.skip(f"/dev/kvm is not usable here: {exc}")
    with kvm, kvm.create_vm() as handle:
        yield handle


# ------------------------------------------------------------------ without the kernel


def test_every_exit_reason_of_the_spec_has_a_class_over_its_member():
    from kvmspec.build import load_model
    from kvmspec.model import ExitReason as SpecExit
    model = load_model(REPO)
    run = K.kvm_run()
    for e in model.of_kind(SpecExit):
        if not e.present:
            continue
        cls = A._EXIT_CLASSES[e.value][0]
        assert cls.exit_reason == e.value and cls.exit_reason.name == e.name.removeprefix("KVM_EXIT_")
        assert cls.__name__ in A.__all__
        if e.member is not None and isinstance(getattr(run, e.member), (ctypes.Structure, ctypes.Union)):
            assert issubclass(cls, type(getattr(run, e.member))), e.name
            assert A._EXIT_CLASSES[e.value][1] == type(run).__dict__[e.member].offset   # where ctypes has it


def test_an_exit_reason_the_spec_does_not_know_still_has_a_name():
    reason = ExitReason(4000)
    assert reason == 4000 and reason.name == "UNKNOWN_4000"
    assert A.UnlistedExit(reason).exit_reason is reason


# ------------------------------------------------------------------ exits of a real guest


def test_io_mmio_and_hlt_exits_carry_their_data(vm):
    vcpu, memory = real_mode_vcpu(vm, PROGRAM)
    seen = []
    while True:
        exit = vcpu.run()
        match exit:
            case IoExit(direction=K.KVM_EXIT_IO_OUT, port=port, size=1, data=data):
                seen.append(("out", port, bytes(data)))
            case IoExit(direction=K.KVM_EXIT_IO_IN, port=port, size=1):
                exit.data[:] = b"Z"       # what the guest's IN reads
                seen.append(("in", port))
            case MmioExit(phys_addr=address, is_write=1, data=data):
                seen.append(("mmio write", address, bytes(data)))
            case MmioExit(phys_addr=address, len=2):
                exit.data[:] = b"\x34\x12"   # what the guest's read gets
                seen.append(("mmio read", address))
            case HltExit():
                break
            case _:
                pytest.fail(f"unexpected exit {exit!r}")
    assert seen == [("out", PORT, b"A"), ("in", PORT), ("mmio write", 0x9000, b"Z"), ("mmio read", 0x9008)]
    assert memory.read(0x500, 2) == b"\x34\x12"
    assert vcpu.exit_reason is ExitReason.HLT and isinstance(vcpu.exit, HltExit)
    vcpu.close()


def test_an_exit_is_a_live_view_reused_by_the_next_exit_of_its_reason(vm):
    vcpu, _ = real_mode_vcpu(vm, bytes.fromhex("baf803" "b041" "ee" "b042" "ee" "f4"))
    first = vcpu.run()
    assert isinstance(first, IoExit) and bytes(first.data) == b"A"
    second = vcpu.run()
    assert second is first and bytes(second.data) == b"B"
    assert repr(second) == ("IoExit(direction=<kvm_exit_io_direction.KVM_EXIT_IO_OUT: 1>, size=1, port=1016, "
                            "count=1, data_offset=4096, data=b'B')")
    vcpu.close()


def test_code_in_unbacked_memory_is_an_internal_error_with_its_data(vm):
    vcpu, _ = real_mode_vcpu(vm, bytes.fromhex("ea00900000"))   # jmp 0:0x9000, where no memory is
    exit = vcpu.run()
    assert isinstance(exit, InternalErrorExit), exit
    assert exit.suberror is K.KVM_INTERNAL_ERROR_EMULATION
    assert exit.data.format == "Q" and len(exit.data) == exit.ndata <= 16
    vcpu.close()


def test_immediate_exit_is_an_intr_exit_not_an_exception(vm):
    vcpu, _ = real_mode_vcpu(vm, PROGRAM)
    vcpu.kvm_run.immediate_exit = 1
    exit = vcpu.run()
    assert isinstance(exit, IntrExit) and exit.exit_reason is ExitReason.INTR
    vcpu.kvm_run.immediate_exit = 0
    assert isinstance(vcpu.run(), IoExit)
    vcpu.close()


def test_run_of_a_closed_vcpu_says_it_is_closed(vm):
    vcpu, _ = real_mode_vcpu(vm, PROGRAM)
    vcpu.run()
    vcpu.close()
    with pytest.raises(ValueError, match="Vcpu is closed"):
        vcpu.run()


# ------------------------------------------------------------------ guest memory


def test_guest_memory_reads_and_writes_at_guest_physical_addresses(vm):
    high = vm.add_memory(0x100000, 0x2000)
    low = vm.add_memory(0, 0x1000)
    assert (low.slot, high.slot) == (1, 0)
    assert vm.memory == (low, high)
    high.write(0x100ffe, b"abcd")
    assert high.read(0x100ffe, 4) == b"abcd"
    view = high[0x100ffe:0x101002]
    assert isinstance(view, memoryview) and not view.readonly and bytes(view) == b"abcd"
    view[0:1] = b"X"
    assert high.read(0x100ffe, 1) == b"X"
    high[0x101000:0x101002] = b"yz"
    assert high.read(0x100ffe, 4) == b"Xbyz"
    assert ctypes.string_at(high.address(0x100ffe), 4) == b"Xbyz"
    assert 0x101fff in high and 0x102000 not in high and len(high) == 0x2000
    del view


@pytest.mark.parametrize("gpa,size", [(0x0fff, 2), (0x1000, 1), (0, 0x1001)])
def test_guest_memory_refuses_addresses_outside_it(vm, gpa, size):
    memory = vm.add_memory(0, 0x1000)
    with pytest.raises(ValueError, match="outside guest memory"):
        memory.read(gpa, size)


def test_add_memory_refuses_unaligned_and_overlapping_ranges(vm):
    with pytest.raises(ValueError, match="multiples of the page size"):
        vm.add_memory(0x800, 0x1000)
    vm.add_memory(0, 0x4000)
    with pytest.raises(ValueError, match="overlaps"):
        vm.add_memory(0x3000, 0x1000)
    with pytest.raises(ValueError, match="overlaps"):
        vm.add_memory(0x10000, 0x1000, slot=0)


def test_guest_memory_is_released_with_its_vm(vm):
    memory = vm.add_memory(0, 0x1000)
    vm.close()
    assert memory.closed
    with pytest.raises(ValueError, match="released"):
        memory.read(0, 1)


def test_closing_guest_memory_frees_its_slot(vm):
    memory = vm.add_memory(0, 0x1000)
    memory.close()
    assert memory.closed and vm.memory == ()
    assert vm.add_memory(0, 0x1000).slot == 0


def test_add_memory_uses_user_memory_region2_where_the_kernel_has_it(vm, monkeypatch):
    calls = []
    for name in ("set_user_memory_region", "set_user_memory_region2"):
        original = getattr(Vm, name)
        monkeypatch.setattr(Vm, name, lambda self, *a, _n=name, _o=original, **kw: calls.append(_n) or _o(self, *a, **kw))
    vm.add_memory(0, 0x1000)
    has_region2 = bool(vm.check_extension(K.KVM_CAP_USER_MEMORY2))
    assert calls == ["set_user_memory_region2" if has_region2 else "set_user_memory_region"]
