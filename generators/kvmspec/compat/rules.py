"""The ABI guard: what a change from one revision of the spec to another breaks, and for whom.

`compare(old, new)` walks two models and applies the rules in RULES. Each
finding names its rule, the place in the new spec (or the old one, for what
was removed), what breaks, for whom, and the remedy KVM uses.

The rules over meaning (`MEANING_RULES`) compare two `AbiView`s: what
userspace built for, or state saved on, one side meets on the other, per
implementation. `compare` applies them to the newest state of two revisions,
`kvmspec.compat.history` to consecutive releases of one revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..diagnostics import Mark
from ..layout import HOST_ABIS as ABIS, host
from ..model import (AbiException, Capability, Constant, Definition, ExitReason, Field, FlagSet, Ioctl, Model,
                     Record, ValueSet, Version)
from .view import GENERIC, AbiView


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str          # error | warning
    title: str
    rationale: str
    example: str


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("value-changed", "error",
         "A number that userspace compiled in changed",
         "Constants, enum values, flag bits, capability numbers, exit reasons and ioctl numbers are "
         "compiled into every VMM. A new value breaks each binary built against the old header, "
         "silently: it asks for something else.",
         "An ioctl number is part of the ABI: when struct kvm_nested_state gained its data union in "
         "5.2, the union was declared with zero length precisely so that KVM_GET_NESTED_STATE and "
         "KVM_SET_NESTED_STATE kept their numbers."),
    Rule("removed-without-deprecation", "error",
         "A name disappeared without a deprecation period",
         "Source code that uses the name stops compiling, and a removed number invites reuse. KVM "
         "keeps retired names defined (the __KVM_DEPRECATED_* ioctl numbers, KVM_EXIT_DCR) and marks "
         "them deprecated first.",
         "When PCI device assignment was removed in 4.12, the KVM_ASSIGN_* ioctls and their structs "
         "stayed in the header, documented as deprecated."),
    Rule("layout-changed", "error",
         "A struct or union changed size, alignment, field offset or field type",
         "Userspace passes these records by pointer; the kernel and old binaries would read "
         "different bytes. The ioctl number encodes the argument's size, so a size change also "
         "changes every ioctl that passes the record. New fields must take the place of reserved "
         "space, leaving size and every existing offset unchanged.",
         "KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE (5.8) added flags and preemption_timer_deadline "
         "to kvm_vmx_nested_state_hdr inside the 120-byte header union, whose size did not change."),
    Rule("meaning-reused", "error",
         "A flag bit or capability number now means something else",
         "Old userspace and old saved state still use the value with its old meaning; a kernel that "
         "gives it a new one misreads them. Numbers are never reused.",
         "When the semantics of manual dirty-log protection changed in 5.3, the new behaviour got a "
         "new capability, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (168), instead of changing what "
         "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT meant."),
    Rule("unrestorable-state", "error",
         "Saved state that an older kernel refuses to restore",
         "A save ioctl's output is restored by its pair, possibly on another host running an older "
         "kernel (migration back, fleet rollback). If the save side starts emitting a value that the "
         "old restore side rejects as unknown, that migration fails. The value must only be emitted "
         "once userspace has opted in, since userspace then knows not to migrate to an older host.",
         "March 2026, nested SVM guest PAT: KVM_STATE_NESTED_GPAT_VALID in kvm_nested_state.flags, "
         "emitted by KVM_GET_NESTED_STATE on SVM, is rejected as an unknown flag by older kernels' "
         "KVM_SET_NESTED_STATE. KVM's remedy is an opt-in capability, as with "
         "KVM_CAP_EXCEPTION_PAYLOAD and KVM_CAP_X86_TRIPLE_FAULT_EVENT."),
    Rule("reserved-field-reused", "error",
         "Reserved space given a meaning although old kernels never checked it",
         "If an input field was reserved and the kernel did not reject non-zero values, old "
         "userspace may have left anything there. A new kernel that interprets those bytes acts on "
         "garbage. Only space that old kernels checked for zero can be given a meaning, or the new "
         "field must be gated by a flag that old userspace cannot have set.",
         "The first posting of the nested SVM guest PAT series put a flags word into the SVM part of "
         "the kvm_nested_state header; it was moved because nothing guaranteed those bytes were zero."),
    Rule("undiscoverable-uapi", "error",
         "New uAPI that userspace cannot discover",
         "Userspace must be able to ask whether the running kernel has a feature before using it; "
         "KVM_CHECK_EXTENSION is how. New ioctls need a capability, and a capability that "
         "KVM_CHECK_EXTENSION does not report is of no use.",
         "KVM_GET_MSR_FEATURE_INDEX_LIST arrived together with KVM_CAP_GET_MSR_FEATURES, so that "
         "userspace can tell whether to call it."),
    Rule("not-opt-in", "warning",
         "New behaviour or kernel-emitted state that is on by default",
         "Old userspace does not know the new values or exits; if the kernel produces them "
         "unasked, old userspace mishandles them (an unknown exit reason ends the VM). Such changes "
         "are enabled with KVM_ENABLE_CAP by userspace that understands them.",
         "Triple faults became part of the saved vCPU events in 6.0 only for userspace that enables "
         "KVM_CAP_X86_TRIPLE_FAULT_EVENT; user-space MSR exits need KVM_CAP_X86_USER_SPACE_MSR."),
    Rule("not-64-bit-clean", "error",
         "A new record that is not 64-bit clean",
         "A record with implicit padding or a different layout on x86_64 and i386 needs compat code "
         "in the kernel and leaks uninitialised bytes. Only records that predate the rule may keep "
         "such a layout (with an abi_exemption); new ones may not.",
         "The SEV command structs use pointers stored in __u64 but leave implicit padding, so their "
         "i386 layout differs; new interfaces such as kvm_userspace_memory_region2 are padded explicitly."),
    Rule("opt-in-dropped", "error",
         "Values that were emitted only after an opt-in are emitted without it (or after another one)",
         "Userspace that never enabled the capability does not expect the value in saved state, and "
         "restore ioctls reject it until the capability is enabled, on older kernels and on VMs "
         "(or kernels) without the feature. Making it the default is as unrestorable as a new bit.",
         "KVM_VCPUEVENT_VALID_PAYLOAD (4.20) is emitted by KVM_GET_VCPU_EVENTS only after "
         "KVM_CAP_EXCEPTION_PAYLOAD was enabled, and KVM_VCPUEVENT_VALID_TRIPLE_FAULT (6.0) only after "
         "KVM_CAP_X86_TRIPLE_FAULT_EVENT: both stayed opt-in."),
    Rule("validation-tightened", "error",
         "Input that was ignored is now rejected",
         "A restore or configuration ioctl that starts rejecting bits, values or reserved bytes it "
         "used to ignore breaks every VMM that left them set, and makes state saved by an old kernel "
         "(or built by old userspace) fail on the new one. New checks belong to new flags, fields or "
         "capabilities that only new userspace uses.",
         "6.0 made KVM_X86_SET_MSR_FILTER reject unknown bits in the flags of its ranges and "
         "KVM_CAP_X86_USER_SPACE_MSR unknown bits of its argument, knowingly, while both were young; "
         "KVM_CAP_DISABLE_QUIRKS2 (5.19) rejects unknown quirks where KVM_CAP_DISABLE_QUIRKS kept "
         "ignoring them."),
    Rule("capability-meaning-changed", "error",
         "A capability answers, is checked or is enabled differently",
         "Userspace reads the answer of KVM_CHECK_EXTENSION as the kind the capability had when it "
         "was built (a boolean, a count, a bitmask), asks for it on the descriptors it could ask on, "
         "and enables it with KVM_ENABLE_CAP on the descriptor and with the arguments it knew. A new "
         "meaning needs a new capability number.",
         "KVM_CAP_DISABLE_QUIRKS2 (5.19) answers with the bitmask of quirks that can be disabled and "
         "rejects unknown ones; KVM_CAP_DISABLE_QUIRKS kept its boolean answer and its lax argument."),
    Rule("ioctl-moved", "error",
         "An ioctl is no longer available where userspace issues it",
         "An ioctl that leaves a descriptor kind (system, VM, vCPU), an architecture or an "
         "implementation fails with ENOTTY or EINVAL for userspace that issues it there, and its "
         "encoded direction, even when it disagrees with the real data flow, is part of its number.",
         "KVM_GET_SUPPORTED_HV_CPUID became available on the system descriptor in 5.11 "
         "(KVM_CAP_SYS_HYPERV_CPUID) and stayed available on the vCPU; KVM_SET_IRQCHIP keeps its _IOR "
         "encoding."),
    Rule("validity-dropped", "error",
         "A field or exit lost the flag or capability that said it is valid",
         "A field that the kernel only reads when a KVM_*_VALID_* bit is set may hold anything in "
         "buffers of userspace that does not know the bit; an exit that is reported only after "
         "userspace enabled a capability reaches userspace that cannot handle it once the capability "
         "is no longer required.",
         "kvm_vcpu_events.exception_payload is only read with KVM_VCPUEVENT_VALID_PAYLOAD (4.20); "
         "KVM_EXIT_X86_BUS_LOCK (5.12) is only reported after KVM_CAP_X86_BUS_LOCK_EXIT was enabled."),
)}


@dataclass(frozen=True)
class Finding:
    rule: Rule
    mark: Mark
    message: str
    remedy: str
    severity: str = ""
    subject: str = ""                                  # the item or value the finding is about
    exceptions: tuple[AbiException, ...] = ()           # the shipped breaks the spec records on it
    implementations: tuple[str, ...] = ()
    abis: tuple[str, ...] = ()                          # layout findings: the ABIs whose layout changed

    @property
    def level(self) -> str:
        return self.severity or self.rule.severity

    def explanation(self, release: Optional[Version]) -> Optional[AbiException]:
        """The recorded shipped break that explains this finding at `release`, if any."""
        for exc in self.exceptions:
            if all(exc.covers(self.rule.id, release, impl) for impl in self.implementations or (GENERIC,)) and \
                    (not exc.abis or all(abi in exc.abis for abi in self.abis)):
                return exc
        return None

    def __str__(self) -> str:
        return f"{self.mark}: {self.level}: [{self.rule.id}] {self.message}; {self.remedy}"

    def as_json(self) -> dict:
        return {"path": self.mark.path, "line": self.mark.line, "column": self.mark.col,
                "severity": self.level, "rule": self.rule.id, "message": self.message,
                "remedy": self.remedy}


# ------------------------------------------------------------------ indexes


@dataclass(frozen=True)
class Named:
    """Something userspace refers to by name, with its value(s)."""

    name: str
    kind: str
    values: tuple[int, ...]
    mark: Mark
    deprecated: bool
    removed: bool
    owner: Optional[Definition] = None     # the item (for values: their set)
    moved: bool = False                    # removed here because it moved to another header


def _named(model: Model) -> dict[str, Named]:
    out: dict[str, Named] = {}
    for item in model.items:
        if not item.active_on:   # its #ifdef holds on no architecture
            continue
        values: tuple[int, ...] = ()
        if isinstance(item, Constant):
            values = host(item.values)
        elif isinstance(item, (Capability, ExitReason)):
            values = (item.value,) * len(ABIS)
        elif isinstance(item, Ioctl):
            values = host(item.numbers)
        out[item.name] = Named(item.name, item.kind, values, item.mark, item.deprecated is not None,
                               item.removed is not None, item,
                               item.removed is not None and item.removed.moved_to is not None)
        if isinstance(item, ValueSet):
            for v in item.values:
                # a value goes (or moves) with its set (KVM_PPC_PVINFO_FLAGS_EV_IDLE, 6.9)
                out[v.name] = Named(v.name, "value", host(v.values), v.mark, v.deprecated is not None,
                                    v.removed is not None or item.removed is not None, item,
                                    item.removed is not None and item.removed.moved_to is not None)
    return out


def _implementations(model: Model, item: Definition, listed: tuple[str, ...]) -> tuple[str, ...]:
    if listed:
        return listed
    arches = item.arch or tuple(a.name for a in model.architectures)
    return tuple(i.name for a in model.architectures if a.name in arches for i in a.implementations)


class Comparison:
    def __init__(self, old: Model, new: Model) -> None:
        self.old, self.new = old, new
        self.old_named, self.new_named = _named(old), _named(new)
        self.findings: list[Finding] = []

    def old_of(self, item) -> Optional[Definition]:
        """The old definition of a new item: of the same header where several architectures'
        headers define the name (arm64's struct kvm_vcpu_events is not x86's)."""
        variants = self.old.variants.get(item.name)
        if variants:
            return next((v for v in variants if v.header == item.header), None)
        old = self.old.by_name.get(item.name)
        if old is not None and old.header != item.header and self.new.variants.get(item.name):
            return None   # another architecture's header now defines the name too
        return old

    def add(self, rule: str, mark: Mark, message: str, remedy: str, severity: str = "") -> None:
        self.findings.append(Finding(RULES[rule], mark, message, remedy, severity))

    def run(self) -> list[Finding]:
        self.removed_and_changed()
        self.reused_numbers()
        self.layouts()
        self.reserved_space()
        self.discoverability()
        self.clean_records()
        from .meaning import meaning
        self.findings.extend(meaning(AbiView(self.old), AbiView(self.new)))
        return sorted(self.findings, key=lambda f: (f.mark.path, f.mark.line, f.mark.col, f.rule.id))

    # -------------------------------------------------------------- names and numbers
    def removed_and_changed(self) -> None:
        for name, old in self.old_named.items():
            if old.removed:
                continue
            new = self.new_named.get(name)
            if new is None or new.removed:
                if old.deprecated or (new is not None and new.moved):
                    continue   # deprecated first, or moved to the header of the architecture that has it
                mark = new.mark if new is not None else old.mark
                what = "removed" if new is not None else "no longer in the spec"
                self.add("removed-without-deprecation", mark,
                         f"{old.kind} {name} is {what} without having been deprecated: userspace that "
                         f"uses it no longer builds",
                         "keep it and mark it deprecated (deprecated: {since, doc, replacement}) for at "
                         "least one release; a renamed item keeps its old name as well")
                continue
            # compared where both sides have a value (an architecture's own item has none on x86)
            changed = [(abi, a, b) for abi, a, b in zip(ABIS, old.values, new.values)
                       if a is not None and b is not None and a != b]
            if changed and not (new.kind == "ioctl" and self._ioctl_size_change(name)):
                diffs = ", ".join(f"{a:#x} -> {b:#x} on {abi.name}" for abi, a, b in changed)
                self.add("value-changed", new.mark,
                         f"{new.kind} {name} changed value ({diffs}): binaries built against the old "
                         f"header use the old number", "restore the old value; give a new meaning a new name "
                         "and a new number")

    def _ioctl_size_change(self, name: str) -> bool:
        """An ioctl whose number changed because its argument changed size is reported with the record."""
        old, new = self.old_named[name].owner, self.new_named[name].owner
        # a size change is reported with the record, a direction change by ioctl-moved
        return isinstance(old, Ioctl) and isinstance(new, Ioctl) and old.nr == new.nr and \
            (old.dir != new.dir or old.type_text == new.type_text)

    def reused_numbers(self) -> None:
        for kind in (Capability,):
            old_by_value = {i.value: i for i in self.old.of_kind(kind) if i.removed is None}
            new_by_name = {i.name: i for i in self.new.of_kind(kind) if i.removed is None}
            for item in self.new.of_kind(kind):
                before = old_by_value.get(item.value)
                kept = before is not None and before.name in new_by_name and \
                    new_by_name[before.name].value == item.value   # e.g. a name the number had earlier
                if before is not None and before.name != item.name and not kept:
                    self.add("meaning-reused", item.mark,
                             f"capability number {item.value} was {before.name} and is now {item.name}: "
                             f"userspace built against the old header asks for the old feature",
                             "keep the old name on this number; give the new feature the next free number")
        for new_set in self.new.of_kind(FlagSet):
            old_set = self.old_of(new_set)
            if not isinstance(old_set, FlagSet):
                continue
            for v in new_set.values:
                if v.removed is not None or v.mask:
                    continue
                for ov in old_set.values:
                    if ov.removed is None and not ov.mask and ov.name != v.name and ov.value & v.value \
                            and ov.name not in {x.name for x in new_set.values if x.removed is None}:
                        self.add("meaning-reused", v.mark,
                                 f"bit {ov.value & v.value:#x} of {new_set.name} was {ov.name} and is now "
                                 f"{v.name}: old userspace and state saved by old kernels give it the old "
                                 f"meaning", "never reuse a bit; take a free one and deprecate the old name")

    # -------------------------------------------------------------- layouts
    def layouts(self) -> None:
        for new_rec in self.new.records:
            old_rec = self.old_of(new_rec)
            if not isinstance(old_rec, Record) or not old_rec.active or not new_rec.active:
                continue
            problems = []
            # A record that only lives inside unions may grow into the union's spare
            # room (kvm_svm_nested_state_hdr inside kvm_nested_state.hdr); the union
            # itself is checked as part of its own record.
            # An ABI where the old record had no layout (a member's type was not defined there:
            # kvm_run on ppc64 before the spec had the powerpc asm/kvm.h) gains one; that
            # changes nothing for old binaries.
            changed = any(ol is not None and (nl is None or ol.size != nl.size or ol.align != nl.align)
                          for ol, nl in zip(host(old_rec.layouts), host(new_rec.layouts)))
            if changed and self._size_matters(new_rec):   # (asked only when it matters: it walks every record)
                for abi, ol, nl in zip(ABIS, old_rec.layouts, new_rec.layouts):
                    if ol is None:
                        continue
                    if nl is None:
                        problems.append(f"no layout on {abi.name} any more")
                        continue
                    if ol.size != nl.size:
                        problems.append(f"size {ol.size} -> {nl.size} on {abi.name}")
                    if ol.align != nl.align:
                        problems.append(f"alignment {ol.align} -> {nl.align} on {abi.name}")
            new_fields = {path: (f, offs) for path, f, offs in new_rec.walk() if f.name}
            for path, f, offs in old_rec.walk():
                if not f.name or f.reserved:
                    continue
                match = new_fields.get(path)
                if match is None:
                    problems.append(f"field {path} is gone")
                    continue
                nf, noffs = match
                # An ABI on which only one side lays the record out (an architecture whose
                # header the spec just began to describe) has nothing to compare.
                moved = [(abi, a, b) for abi, a, b in zip(ABIS, offs, noffs) if a is not None and b is not None and a != b]
                if moved:
                    where = ", ".join(f"{a} -> {b} on {abi.name}" for abi, a, b in moved)
                    problems.append(f"field {path} moved ({where})")
                if _field_type(nf) != _field_type(f):
                    problems.append(f"field {path} changed type ({_field_type(f)} -> {_field_type(nf)})")
            if not problems:
                continue
            users = [i for i in self.new.ioctls if i.type_record is new_rec or i.arg_record is new_rec]
            renumbered = [i for i in users if i.name in self.old_named and
                          self.old_named[i.name].values != host(i.numbers)]
            also = ""
            if renumbered:
                also = "; it also changes the number of " + ", ".join(
                    f"{i.name} ({self.old_named[i.name].values[0]:#x} -> {i.number:#x})" for i in renumbered)
            elif users:
                also = "; ioctls passing it: " + ", ".join(i.name for i in users)
            self.add("layout-changed", new_rec.mark,
                     f"{new_rec.c_type} changed layout ({'; '.join(problems)}): old binaries and the "
                     f"kernel disagree about its bytes{also}",
                     "keep size and existing offsets; add fields in reserved space (shrink a pad array) "
                     "and say with a flag whether they are valid")

    def _size_matters(self, record: Record) -> bool:
        if any(i.type_record is record or i.arg_record is record for i in self.new.ioctls):
            return True
        for other in self.new.records:
            for container in other.records_within():
                for f in container.members:
                    if f.record is record and (not container.is_union or f.is_array):
                        return True
        return not any(f.record is record for other in self.new.records
                       for container in other.records_within() for f in container.members)

    # -------------------------------------------------------------- reserved space
    def reserved_space(self) -> None:
        for new_rec in self.new.records:
            old_rec = self.old_of(new_rec)
            if not isinstance(old_rec, Record) or not old_rec.active:
                continue
            old_reserved = [(path, f, offs) for path, f, offs in old_rec.deep_walk()
                            if f.name and f.reserved and not f.record]
            old_paths = {path for path, f, _ in old_rec.deep_walk() if f.name}
            for path, f, offs in new_rec.deep_walk():
                if not f.name or f.reserved or path in old_paths or f.record is not None:
                    continue
                for rpath, rf, roffs in old_reserved:
                    size = f.size()
                    if offs[0] < roffs[0] + rf.size() and roffs[0] < offs[0] + size:
                        unchecked = self._unchecked_inputs(old_rec, rpath)
                        if unchecked:
                            self.add("reserved-field-reused", f.mark,
                                     f"new field {new_rec.name}.{path} uses bytes that were reserved "
                                     f"({rpath}) and that older kernels did not check for zero in "
                                     f"{', '.join(unchecked)}: old userspace may have left anything there",
                                     "put the field where old kernels rejected non-zero values, or make it "
                                     "valid only together with a new flag bit that old kernels rejected")
                        break

    def _unchecked_inputs(self, record: Record, path: str) -> list[str]:
        """Input ioctls of the old spec that pass the record without checking `path` for zero."""
        out = []
        for ioctl in self.old.ioctls:
            # a save ioctl (one with a restore partner) writes the record; it reads at most its size
            if ioctl.arg_record is not record or ioctl.arg_flow not in ("in", "inout") or ioctl.restored_by:
                continue
            validation = next((v for v in ioctl.validations if v.path == path), None)
            impls = _implementations(self.old, ioctl, ())
            unchecked = [i for i in impls or ("",) if validation is None or
                         validation.verdict("nonzero", i) != "rejected"]
            if unchecked:
                label = ioctl.name + (f" ({', '.join(unchecked)})" if unchecked != [""] else "")
                out.append(label)
        return out

    # -------------------------------------------------------------- discoverability
    def discoverability(self) -> None:
        for ioctl in self.new.ioctls:
            if ioctl.name in self.old_named or not ioctl.emitted:
                continue
            if ioctl.capability is None and all(s.capability is None for s in ioctl.scopes):
                self.add("undiscoverable-uapi", ioctl.mark,
                         f"new ioctl {ioctl.name} is not tied to a capability: userspace cannot tell "
                         f"whether the running kernel has it",
                         "add a capability that KVM_CHECK_EXTENSION reports and name it in capability:")
        for cap in self.new.capabilities:
            if cap.name in self.old_named:
                continue
            if not cap.check:
                self.add("undiscoverable-uapi", cap.mark,
                         f"new capability {cap.name} is not reported by KVM_CHECK_EXTENSION anywhere",
                         "list where KVM_CHECK_EXTENSION answers for it (check: [system, vm])")

    def clean_records(self) -> None:
        for rec in self.new.records:
            # New uapi, not a record the spec only now describes: one of another architecture
            # (not in old_named, which holds what x86 sees) or one the kernel shipped in a
            # release the old spec already covered (ppc's kvm_create_spapr_tce of 3.1).
            if rec.name in self.old_named or self.old_of(rec) is not None or rec.since <= self.old.newest:
                continue
            if rec.exemption is not None:
                self.add("not-64-bit-clean", rec.mark,
                         f"new {rec.c_type} claims an abi_exemption, which only records that predate "
                         f"the rule may have", "remove the exemption and make the layout explicit: the "
                         "same on x86_64 and i386, with reserved fields instead of implicit padding")


def _field_type(f: Field) -> str:
    base = f.scalar.name if f.scalar is not None else (f.record.c_type if f.record and not f.record.inline
                                                       else "inline")
    return base + "".join(f"[{d}]" for d in f.dims) + (f":{f.bits}" if f.bits else "") + \
        ("[]" if f.flexible else "")


def compare(old: Model, new: Model) -> list[Finding]:
    return Comparison(old, new).run()


