"""The kvm_uapi bindings: what their docstrings say, and that they drive the real /dev/kvm."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os

import pytest

import kvm_uapi as K

KVM_CREATE_VCPU = 0xAE41  # _IO(KVMIO, 0x41); not part of the spec slice yet


def test_set_nested_state_docstring_says_what_is_rejected_and_what_it_restores():
    doc = " ".join(K.KVM_SET_NESTED_STATE.__doc__.split())
    assert "flags: Bits outside the flag set are rejected (EINVAL)" in doc
    assert "bits that belong to another implementation are rejected (EINVAL) by svm " \
           "and silently ignored by vmx" in doc
    assert "Restores state saved by KVM_GET_NESTED_STATE" in doc


def test_get_nested_state_docstring_names_its_restore_partner_and_emitted_bits():
    doc = " ".join(K.KVM_GET_NESTED_STATE.__doc__.split())
    assert "Saves state that KVM_SET_NESTED_STATE restores" in doc
    assert "flags (svm): KVM_STATE_NESTED_GUEST_MODE, KVM_STATE_NESTED_RUN_PENDING, " \
           "KVM_STATE_NESTED_GIF_SET" in doc
    assert K.KVM_GET_NESTED_STATE.restored_by == "KVM_SET_NESTED_STATE"
    assert K.KVM_SET_NESTED_STATE.restores == "KVM_GET_NESTED_STATE"


def test_struct_docstring_lists_fields_with_offsets():
    doc = K.kvm_nested_state.__doc__
    assert "- hdr.vmx: struct kvm_vmx_nested_state_hdr, offset 8, since 5.2." in doc
    assert "Used by:" in doc and "KVM_SET_NESTED_STATE (struct kvm_nested_state (in))" in doc


def test_flag_sets_are_intflags_and_combine():
    combined = K.KVM_STATE_NESTED_GUEST_MODE | K.KVM_STATE_NESTED_RUN_PENDING
    assert isinstance(combined, K.kvm_nested_state_flags)
    assert int(combined) == 3
    assert K.kvm_nested_state_format(1) is K.KVM_STATE_NESTED_FORMAT_SVM


def test_ioctl_numbers_are_plain_ints_with_metadata():
    assert K.KVM_ENABLE_CAP == 0x4068AEA3
    assert K.KVM_ENABLE_CAP.arg_type is K.kvm_enable_cap
    assert K.KVM_ENABLE_CAP.scopes == ("vcpu", "vm")
    assert repr(K.KVM_ENABLE_CAP) == "<Ioctl KVM_ENABLE_CAP 0x4068aea3>"


# ------------------------------------------------------------------ the real kernel


@pytest.fixture
def kvm():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        pytest.skip(f"/dev/kvm is not usable here: {exc.strerror}")
    yield fd
    os.close(fd)


@pytest.fixture
def vm(kvm):
    fd = fcntl.ioctl(kvm, K.KVM_CREATE_VM, 0)
    yield fd
    os.close(fd)


def test_api_version_matches(kvm):
    assert fcntl.ioctl(kvm, K.KVM_GET_API_VERSION) == K.KVM_API_VERSION


def test_capabilities_answer_at_the_scopes_the_spec_names(kvm, vm):
    for cap in K.CAPABILITIES.values():
        answers = {}
        if "system" in cap.check:
            answers["system"] = fcntl.ioctl(kvm, K.KVM_CHECK_EXTENSION, int(cap))
        if "vm" in cap.check:
            answers["vm"] = fcntl.ioctl(vm, K.KVM_CHECK_EXTENSION, int(cap))
        assert all(a >= 0 for a in answers.values())
        if cap.answer == "boolean":
            assert set(answers.values()) <= {0, 1}, (cap.name, answers)


def test_enable_cap_rejects_nonzero_flags_as_the_spec_says(kvm, vm):
    if not fcntl.ioctl(vm, K.KVM_CHECK_EXTENSION, int(K.KVM_CAP_EXCEPTION_PAYLOAD)):
        pytest.skip("KVM_CAP_EXCEPTION_PAYLOAD is not offered by this host")
    request = K.kvm_enable_cap(cap=K.KVM_CAP_EXCEPTION_PAYLOAD, flags=1)
    request.args[0] = 1
    with pytest.raises(OSError) as info:
        fcntl.ioctl(vm, K.KVM_ENABLE_CAP, request)
    assert info.value.errno == errno.EINVAL
    request.flags = 0
    assert fcntl.ioctl(vm, K.KVM_ENABLE_CAP, request) == 0


def test_nested_state_round_trip_or_documented_error(kvm, vm):
    vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    try:
        size = fcntl.ioctl(vm, K.KVM_CHECK_EXTENSION, int(K.KVM_CAP_NESTED_STATE))
        buffer = (ctypes.c_uint8 * max(size, ctypes.sizeof(K.kvm_nested_state)))()
        state = K.kvm_nested_state.from_buffer(buffer)
        state.size = len(buffer)
        if size == 0:
            # No nested virtualization: the spec says the ioctl fails with EINVAL.
            with pytest.raises(OSError) as info:
                fcntl.ioctl(vcpu, K.KVM_GET_NESTED_STATE, buffer)
            assert info.value.errno == errno.EINVAL
            assert "EINVAL" in K.KVM_GET_NESTED_STATE.__doc__
            return
        fcntl.ioctl(vcpu, K.KVM_GET_NESTED_STATE, buffer)
        assert state.size <= size
        emitted = K.kvm_nested_state_flags(state.flags)
        fcntl.ioctl(vcpu, K.KVM_SET_NESTED_STATE, buffer)
        state.flags = int(emitted) | 0x4000  # a bit no implementation defines
        with pytest.raises(OSError) as info:
            fcntl.ioctl(vcpu, K.KVM_SET_NESTED_STATE, buffer)
        assert info.value.errno == errno.EINVAL
    finally:
        os.close(vcpu)
