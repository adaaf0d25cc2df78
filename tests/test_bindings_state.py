"""kvm_uapi.api against the real /dev/kvm: no state is lost without an error, and flexible arrays
size themselves.

- KVM_GET_MSRS and KVM_SET_MSRS stop at the first MSR they cannot handle and return how many
  they did (spec: `arg.partial`); the API raises KvmIncomplete naming that MSR, never a struct
  that claims more than was read.
- Keyword updates of a set ioctl with a save partner (spec: `pair.restores`) change only the
  fields they name.
- Getters of a flexible array the kernel fills (spec: `arg.fills`) size their buffer and
  return exactly the elements filled; setters take a sequence of structs, dicts or tuples.
"""

from __future__ import annotations

import ctypes

import pytest

import kvm_uapi as K
from kvm_uapi.api import Kvm, KvmIncomplete, sized

from conftest import needs_kvm

pytestmark = needs_kvm

MSR_IA32_TSC = 0x10
MSR_IA32_SYSENTER_CS = 0x174
MSR_IA32_SYSENTER_ESP = 0x175
NO_SUCH_MSR = 0xDEADBEEF


@pytest.fixture
def kvm():
    with Kvm() as handle:
        yield handle


@pytest.fixture
def vcpu(kvm):
    with kvm.create_vm() as vm, vm.create_vcpu(0) as handle:
        yield handle


def sregs_fields(sregs) -> dict:
    """Every field of a kvm_sregs, segments and tables flattened, as plain values (not the
    padding of kvm_dtable, which the kernel does not write)."""
    out = {}
    for name, ctype in sregs._fields_:
        value = getattr(sregs, name)
        if isinstance(value, ctypes.Structure):
            for sub, _ in value._fields_:
                if sub != "padding":
                    out[f"{name}.{sub}"] = getattr(value, sub)
        elif isinstance(value, ctypes.Array):
            out[name] = list(value)
        else:
            out[name] = value
    return out


# ------------------------------------------------------------------ read, modify, write


def test_set_sregs_with_a_keyword_keeps_every_other_register(vcpu):
    before = sregs_fields(vcpu.get_sregs())
    assert before["cs.limit"] == 0xFFFF   # the reset state has real-mode segments
    vcpu.set_sregs(cr0=before["cr0"] | 0x2)   # CR0.MP
    after = sregs_fields(vcpu.get_sregs())
    assert after["cr0"] == before["cr0"] | 0x2
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"cr0"}


def test_set_regs_with_a_keyword_keeps_rsp(vcpu):
    vcpu.set_regs(rsp=0x7000, rax=0x1234)
    vcpu.set_regs(rip=0x1000)
    regs = vcpu.get_regs()
    assert (regs.rip, regs.rsp, regs.rax) == (0x1000, 0x7000, 0x1234)


def test_a_whole_struct_still_sets_everything(vcpu):
    regs = K.kvm_regs(rip=0x2000, rflags=2)
    vcpu.set_regs(regs)
    assert vcpu.get_regs().rsp == 0


def test_keyword_struct_fields_take_dicts_and_tuples(vcpu):
    before = vcpu.get_sregs()
    vcpu.set_sregs(ds={"base": 0x1000, "selector": 0x100})   # a dict changes the fields it names
    sregs = vcpu.get_sregs()
    assert (sregs.ds.base, sregs.ds.selector) == (0x1000, 0x100)
    assert (sregs.ds.limit, sregs.ds.type, sregs.ds.present) == (before.ds.limit, before.ds.type, before.ds.present)
    assert sregs.cs.limit == 0xFFFF
    vcpu.set_sregs(es=(0x2000, 0xFFFF, 0x200, 3, 1, 0, 0, 1, 0, 0, 0, 0))   # a tuple is the whole segment
    es = vcpu.get_sregs().es
    assert (es.base, es.limit, es.selector, es.type, es.present, es.s) == (0x2000, 0xFFFF, 0x200, 3, 1, 1)
    with pytest.raises(TypeError, match="kvm_segment, a dict or a tuple"):
        vcpu.set_sregs(ds=5)
    with pytest.raises(ValueError, match="does not fit"):
        vcpu.set_sregs(ds={"selector": 1 << 16})


# ------------------------------------------------------------------ partial counts


def test_get_msrs_raises_naming_the_first_msr_not_read(vcpu):
    with pytest.raises(KvmIncomplete) as info:
        vcpu.get_msrs(entries=[{"index": MSR_IA32_TSC}, {"index": NO_SUCH_MSR}, {"index": MSR_IA32_SYSENTER_CS}])
    error = info.value
    assert (error.ioctl, error.done, error.requested) == ("KVM_GET_MSRS", 1, 3)
    assert "entries[1] (index=0xdeadbeef" in str(error)
    # what was read is there, and only that
    assert error.result.nmsrs == 1 and len(error.result.entries) == 1
    assert error.result.entries[0].index == MSR_IA32_TSC and error.result.entries[0].data != 0


def test_get_msrs_with_a_struct_of_ones_own_raises_too(vcpu):
    msrs = sized(K.kvm_msrs, 2)
    msrs.nmsrs = 2
    msrs.entries[0].index, msrs.entries[1].index = NO_SUCH_MSR, MSR_IA32_TSC
    with pytest.raises(KvmIncomplete, match="handled 0 of 2"):
        vcpu.get_msrs(msrs)


def test_set_msrs_raises_naming_the_first_msr_not_written(vcpu):
    with pytest.raises(KvmIncomplete) as info:
        vcpu.set_msrs(entries=[(MSR_IA32_SYSENTER_CS, 0, 0x10), (NO_SUCH_MSR, 0, 1), (MSR_IA32_SYSENTER_ESP, 0, 7)])
    assert (info.value.done, info.value.requested) == (1, 3)
    assert "entries[1] (index=0xdeadbeef" in str(info.value)
    values = {e.index: e.data for e in vcpu.get_msrs(entries=[(MSR_IA32_SYSENTER_CS,), (MSR_IA32_SYSENTER_ESP,)]).entries}
    assert values == {MSR_IA32_SYSENTER_CS: 0x10, MSR_IA32_SYSENTER_ESP: 0}   # the kernel stopped at the bad one


def test_msrs_round_trip_through_sequences(vcpu):
    assert vcpu.set_msrs(entries=[{"index": MSR_IA32_SYSENTER_CS, "data": 0x8},
                                  K.kvm_msr_entry(index=MSR_IA32_SYSENTER_ESP, data=0x9000)]) == 2
    msrs = vcpu.get_msrs(entries=[(MSR_IA32_SYSENTER_CS,), (MSR_IA32_SYSENTER_ESP,)])
    assert msrs.nmsrs == len(msrs.entries) == 2
    assert [(e.index, e.data) for e in msrs.entries] == [(MSR_IA32_SYSENTER_CS, 0x8), (MSR_IA32_SYSENTER_ESP, 0x9000)]


def test_a_sequence_and_a_disagreeing_count_are_refused(vcpu):
    with pytest.raises(ValueError, match="leave nmsrs out"):
        vcpu.set_msrs(nmsrs=3, entries=[(MSR_IA32_SYSENTER_CS, 0, 1)])
    with pytest.raises(TypeError, match="sequence"):
        vcpu.set_msrs(entries=5)
    with pytest.raises(ValueError, match="named fields"):
        vcpu.set_msrs(entries=[(1, 2, 3, 4)])


# ------------------------------------------------------------------ self-sizing getters


def test_supported_cpuid_sizes_itself(kvm):
    cpuid = kvm.get_supported_cpuid()
    assert cpuid.nent == len(cpuid.entries) > 0
    leaves = {e.function for e in cpuid.entries}
    assert 0 in leaves and 1 in leaves


def test_msr_index_list_sizes_itself(kvm):
    listing = kvm.get_msr_index_list()
    assert listing.nmsrs == len(listing.indices) > 0
    assert MSR_IA32_TSC in list(listing.indices)
    # every listed MSR is readable: KVM_GET_MSRS handles them all (else KvmIncomplete)
    msrs = kvm.create_vm().create_vcpu(0).get_msrs(entries=[(i,) for i in listing.indices])
    assert msrs.nmsrs == listing.nmsrs


def test_cpuid2_of_a_vcpu_sizes_itself_after_set_cpuid2(kvm, vcpu):
    supported = kvm.get_supported_cpuid()
    vcpu.set_cpuid2(entries=list(supported.entries))
    table = vcpu.get_cpuid2()
    assert table.nent == len(table.entries) == supported.nent


def test_self_sizing_refuses_a_count_of_ones_own(kvm):
    with pytest.raises(TypeError, match="sizes entries itself"):
        kvm.get_supported_cpuid(nent=3)


def test_a_getter_retries_with_the_count_the_kernel_asks_for(kvm, monkeypatch):
    """KVM_GET_MSR_INDEX_LIST writes the count it needs on E2BIG: one retry, with that count."""
    from kvm_uapi import api as A
    rooms = []
    original = A.Kvm._call

    def counting(self, request, arg, name, meanings):
        if name == "KVM_GET_MSR_INDEX_LIST":
            rooms.append(K.kvm_msr_list.from_address(arg).nmsrs)
        return original(self, request, arg, name, meanings)

    monkeypatch.setattr(A, "_FILL_START", 1)
    monkeypatch.setattr(A.Kvm, "_call", counting)
    listing = kvm.get_msr_index_list()
    assert listing.nmsrs > 1
    assert rooms == [1, listing.nmsrs]


def test_a_getter_doubles_its_room_when_the_kernel_does_not_say(kvm, monkeypatch):
    """KVM_GET_SUPPORTED_CPUID leaves nent alone on E2BIG: the room doubles until the table fits."""
    from kvm_uapi import api as A
    rooms = []
    original = A.Kvm._call

    def counting(self, request, arg, name, meanings):
        if name == "KVM_GET_SUPPORTED_CPUID":
            rooms.append(K.kvm_cpuid2.from_address(arg).nent)
        return original(self, request, arg, name, meanings)

    monkeypatch.setattr(A, "_FILL_START", 4)
    monkeypatch.setattr(A.Kvm, "_call", counting)
    cpuid = kvm.get_supported_cpuid()
    assert rooms == [4 << i for i in range(len(rooms))] and rooms[-1] >= cpuid.nent > rooms[-2]
