"""`kvmspec probe`: check what the spec says against the running kernel.

For every capability: what KVM_CHECK_EXTENSION answers on /dev/kvm and on a
VM, and whether that fits the spec (scopes, answer kind). For every ioctl
whose spec says that bad input is rejected (unknown flag bits, non-zero
reserved fields): whether the kernel really rejects it. Every probe runs on
a throwaway VM or vCPU created for it. Capability numbers that the kernel
answers but the spec lacks are listed too.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .layout import ABIS, NATIVE
from .model import Capability, Field, Ioctl, Model, Record, Validation

_libc = ctypes.CDLL(None, use_errno=True)
_ioctl = _libc.ioctl
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
_ioctl.restype = ctypes.c_int

EXTRA_BYTES = 1 << 16      # room behind variable-sized records (flexible arrays, data areas)


class ProbeUnavailable(Exception):
    """/dev/kvm is missing or cannot be opened (exit status 2)."""


@dataclass
class CapabilityAnswer:
    name: str
    value: int
    system: Optional[int]
    vm: Optional[int]
    problems: list[str] = field(default_factory=list)


@dataclass
class RejectionProbe:
    ioctl: str
    field: str
    rule: str              # unknown_bits | nonzero
    outcome: str           # confirmed | disagrees | inconclusive | skipped
    detail: str


@dataclass
class ProbeReport:
    kernel: str
    implementation: str
    api_version: int
    capabilities: list[CapabilityAnswer]
    unknown_capabilities: dict[int, int]           # number -> answer, for numbers the spec lacks
    rejections: list[RejectionProbe]

    @property
    def disagreements(self) -> list[str]:
        out = [f"{c.name}: {p}" for c in self.capabilities for p in c.problems]
        out += [f"{r.ioctl}: {r.field}: {r.detail}" for r in self.rejections if r.outcome == "disagrees"]
        out += [f"capability number {n} answers {v} on /dev/kvm but the spec has no such capability"
                for n, v in sorted(self.unknown_capabilities.items())]
        return out


def _raw(fd: int, request: int, arg: int) -> int:
    result = _ioctl(fd, request, arg)
    if result == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def implementation() -> str:
    """Which x86 implementation runs KVM here (vmx, svm), from the loaded modules."""
    for module, name in (("kvm_intel", "vmx"), ("kvm_amd", "svm")):
        if Path(f"/sys/module/{module}").exists():
            return name
    others = sorted(p.name for p in Path("/sys/module").glob("kvm_*")) if Path("/sys/module").exists() else []
    return others[0] if others else "unknown"


class Session:
    """Throwaway VMs and vCPUs for probing."""

    def __init__(self, model: Model, path: str) -> None:
        self.model = model
        self.num = {i.name: i for i in model.ioctls}
        try:
            self.kvm = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise ProbeUnavailable(f"{path} cannot be opened ({exc.strerror}): this host cannot run KVM "
                                   f"guests for this user") from None
        self.fds: list[int] = []

    def release(self) -> None:
        """Close every throwaway VM and vCPU made so far."""
        for fd in reversed(self.fds):
            os.close(fd)
        self.fds.clear()

    def close(self) -> None:
        self.release()
        os.close(self.kvm)

    def ioctl(self, fd: int, name: str, arg: int = 0) -> int:
        return _raw(fd, self.num[name].number, arg)

    def vm(self) -> int:
        fd = self.ioctl(self.kvm, "KVM_CREATE_VM", 0)
        self.fds.append(fd)
        return fd

    def vcpu(self) -> tuple[int, int]:
        vm = self.vm()
        fd = self.ioctl(vm, "KVM_CREATE_VCPU", 0)
        self.fds.append(fd)
        return vm, fd

    def check(self, fd: int, number: int) -> Optional[int]:
        try:
            return self.ioctl(fd, "KVM_CHECK_EXTENSION", number)
        except OSError:
            return None


def probe_capabilities(session: Session) -> tuple[list[CapabilityAnswer], dict[int, int]]:
    model = session.model
    vm = session.vm()
    vm_scope = bool(session.check(session.kvm, model.by_name["KVM_CAP_CHECK_EXTENSION_VM"].value))
    answers = []
    known = set()
    for cap in model.of_kind(Capability):
        known.add(cap.value)
        if not cap.active:
            continue
        successor = next((c for c in model.of_kind(Capability) if c is not cap and c.value == cap.value
                          and c.removed is None), None)
        if cap.removed is not None and successor is not None:
            continue   # an old name of a number another capability carries now (KVM_CAP_X86_GUEST_MWAIT)
        system = session.check(session.kvm, cap.value)
        on_vm = session.check(vm, cap.value) if vm_scope else None
        answer = CapabilityAnswer(cap.name, cap.value, system, on_vm)
        for scope, value in (("system", system), ("vm", on_vm)):
            if value and scope not in cap.check:
                answer.problems.append(f"answers {value} on the {scope} descriptor, where the spec says "
                                       f"KVM_CHECK_EXTENSION does not report it")
            if value and cap.answer_kind == "boolean" and value != 1:
                answer.problems.append(f"answers {value} on the {scope} descriptor; the spec says boolean")
        if (system or on_vm) and cap.removed is not None:
            answer.problems.append("the kernel reports it, but the spec says it was removed")
        if cap.arch and "x86" not in cap.arch and (system or on_vm):
            answer.problems.append(f"answers on x86, but the spec lists only {', '.join(cap.arch)}")
        answers.append(answer)
    unknown = {}
    for number in range(0, max(known) + 65):
        if number not in known:
            value = session.check(session.kvm, number)
            if value:
                unknown[number] = value
    return answers, unknown


def _writer(record: Record):
    """path -> (offset, size, field) for the native ABI."""
    index = ABIS.index(NATIVE)
    return {path: (offsets[index], f.size(NATIVE) if not f.is_array else f.element_size(NATIVE), f)
            for path, f, offsets in record.deep_walk() if f.name}


def _set(buffer: ctypes.Array, offset: int, size: int, value: int) -> None:
    buffer[offset:offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def _get(buffer: ctypes.Array, offset: int, size: int) -> int:
    return int.from_bytes(bytes(buffer[offset:offset + size]), "little")


def _unknown_bit(f: Field, size: int) -> Optional[int]:
    mask = 0
    for fs in f.flag_sets:
        mask |= fs.mask
    for bit in range(8 * size - 1, -1, -1):
        if not mask >> bit & 1:
            return 1 << bit
    return None


def rejection_claims(ioctl: Ioctl, impl: str) -> tuple[list[tuple[Validation, str]], Optional[str]]:
    """What the spec says this x86 host's kernel rejects in the ioctl's input,
    and the descriptor (vm or vcpu) to send the probe to; ([], None) when
    there is nothing to probe."""
    if not ioctl.present or ioctl.arg_record is None or not ioctl.validations:
        return [], None
    if ioctl.arch and "x86" not in ioctl.arch:
        return [], None
    scopes = [s.scope for s in ioctl.scopes]
    if "vcpu" not in scopes and "vm" not in scopes:
        return [], None
    rules = [(v, kind) for v in ioctl.validations for kind in ("unknown_bits", "nonzero")
             if v.verdict(kind, impl, "x86") == "rejected"]
    return rules, ("vcpu" if "vcpu" in scopes else "vm") if rules else None


def probe_ioctl(session: Session, ioctl: Ioctl, impl: str) -> list[RejectionProbe]:
    """Probe every rejection claim of one ioctl on throwaway descriptors."""
    rules, scope = rejection_claims(ioctl, impl)
    if not rules:
        return []
    try:
        return _probe_ioctl(session, ioctl, rules, scope)
    finally:
        session.release()


def probe_rejections(session: Session, impl: str) -> list[RejectionProbe]:
    return [r for ioctl in session.model.ioctls for r in probe_ioctl(session, ioctl, impl)]


def _probe_ioctl(session: Session, ioctl: Ioctl, rules: list[tuple[Validation, str]], scope: str) -> list[RejectionProbe]:
    record = ioctl.arg_record
    assert record is not None
    layout = _writer(record)
    size = record.size(NATIVE) + EXTRA_BYTES

    example = ioctl.example
    if example is not None and example.scope is not None:
        scope = example.scope
    keep: list = []   # host memory and eventfds of example inputs, alive until the probe ends

    def target() -> int:
        vm, vcpu = session.vcpu() if scope == "vcpu" else (session.vm(), -1)
        fd = vcpu if scope == "vcpu" else vm
        cap = ioctl.capability
        if cap is not None and not session.check(vm, cap.value):
            raise LookupError(f"the kernel does not report {cap.name}")
        for setup in example.setup if example is not None else ():
            session.ioctl(vm, setup, 0)
        return fd

    def baseline(fd: int) -> ctypes.Array:
        buffer = (ctypes.c_char * size)()
        for path, value in example.fields if example is not None else ():
            offset, width, _ = layout[path]
            if value == "$eventfd":
                value = os.eventfd(0)
                session.fds.append(value)
            elif value == "$memory":
                page = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
                keep.append(page)
                value = ctypes.addressof(ctypes.c_char.from_buffer(page))
            _set(buffer, offset, width, int(value))
        if ioctl.restores:
            # what the kernel itself saved is a valid input for the restore side
            saver = session.model.by_name[ioctl.restores]
            if "size" in layout:
                offset, width, _ = layout["size"]
                _set(buffer, offset, width, size)
            _raw(fd, saver.number, ctypes.addressof(buffer))
        return buffer

    out = []
    try:
        fd = target()
        buffer = baseline(fd)
        _raw(fd, ioctl.number, ctypes.addressof(buffer))
    except LookupError as exc:
        return [RejectionProbe(ioctl.name, v.path, kind, "skipped", str(exc)) for v, kind in rules]
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "?")
        return [RejectionProbe(ioctl.name, v.path, kind, "inconclusive",
                               f"no valid input to start from: the unchanged input fails with {name}")
                for v, kind in rules]
    for validation, kind in rules:
        where = layout.get(validation.path)
        if where is None:
            out.append(RejectionProbe(ioctl.name, validation.path, kind, "skipped",
                                      "the field is inside an array; not probed"))
            continue
        offset, width, f = where
        session.release()
        fd = target()
        buffer = baseline(fd)
        if kind == "unknown_bits":
            bit = _unknown_bit(f, width)
            if bit is None:
                out.append(RejectionProbe(ioctl.name, validation.path, kind, "skipped", "no unused bit"))
                continue
            _set(buffer, offset, width, _get(buffer, offset, width) | bit)
            what = f"bit {bit:#x} (defined by no flag of the field)"
        else:
            _set(buffer, offset, width, 1)
            what = "a non-zero reserved field"
        try:
            _raw(fd, ioctl.number, ctypes.addressof(buffer))
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                out.append(RejectionProbe(ioctl.name, validation.path, kind, "confirmed", f"{what}: EINVAL"))
            else:
                out.append(RejectionProbe(ioctl.name, validation.path, kind, "inconclusive",
                                          f"{what}: {errno.errorcode.get(exc.errno or 0, '?')}, not EINVAL"))
            continue
        out.append(RejectionProbe(ioctl.name, validation.path, kind, "disagrees",
                                  f"{what} was accepted, but the spec says it is rejected"))
    return out


def run_probe(model: Model, path: str = "/dev/kvm") -> ProbeReport:
    if not os.path.exists(path):
        raise ProbeUnavailable(f"{path} does not exist: this host has no KVM (load kvm_intel or kvm_amd, "
                               f"or run on a machine with virtualization enabled)")
    session = Session(model, path)
    try:
        try:
            version = session.ioctl(session.kvm, "KVM_GET_API_VERSION")
        except OSError as exc:
            raise ProbeUnavailable(f"{path} is not a KVM device: KVM_GET_API_VERSION failed "
                                   f"({exc.strerror})") from None
        impl = implementation()
        capabilities, unknown = probe_capabilities(session)
        session.release()
        rejections = probe_rejections(session, impl)
    finally:
        session.close()
    return ProbeReport(os.uname().release, impl, version, capabilities, unknown, rejections)
