"""What one revision of the spec must keep by itself, without a second revision to compare with.

These run with the other semantic checks (kvmspec validate, generate):

- every value a save ioctl emits without an opt-in is accepted by its restore
  ioctl on every release and implementation where the pair already worked
  before the value was first emitted (otherwise state saved on the new
  release cannot be restored on the older one), unless the spec records the
  shipped break under abi_exceptions;
- a capability that gates emitted values or exits (requires:) is opt-in,
  discoverable with KVM_CHECK_EXTENSION, and enabled on a descriptor that
  covers what it gates;
- valid_with names a flag of the same record, and abi_exceptions name rules.
"""

from __future__ import annotations

from typing import Iterator, Optional

from ..diagnostics import Diagnostic
from ..model import Capability, ExitReason, FlagSet, Ioctl, Model, ValueSet, Version
from .view import AbiView, emission_since, latest, validation_since


def _before(a: Optional[Version], b: Optional[Version]) -> bool:
    return a is not None and b is not None and a.parts < b.parts


def _previous(version: Version) -> str:
    return f"before {version.release}"


def check_restorable_emissions(model: Model) -> Iterator[Diagnostic]:
    view = AbiView(model)
    for save in model.ioctls:
        restore = model.by_name.get(save.restored_by) if save.restored_by else None
        if not isinstance(restore, Ioctl) or save.removed is not None:
            continue
        # the first release at which the pair works on each implementation
        start: dict[str, Version] = {}
        for e in save.emissions:
            if not e.values:
                continue
            since = latest(min((emission_since(save, e, v) for v in e.values), key=lambda v: v.parts),
                           restore.since)
            for impl in view.implementations(save, e.implementations):
                arch = view.implementation_arch.get(impl, "")
                # an architecture that gained the pair later (arch: [{s390: "3.17"}]) starts then
                since_here = latest(since, save.since_on(arch), restore.since_on(arch)) if arch else since
                if impl not in start or since_here.parts < start[impl].parts:
                    start[impl] = since_here
        for e in save.emissions:
            if e.requires is not None:
                continue
            validation = next((v for v in restore.validations if v.path == e.path), None)
            if validation is None:
                continue
            checked = validation_since(restore, validation)
            for value in e.values:
                first = emission_since(save, e, value)
                value_set = e.field.value_set_of(value.name)
                bits = isinstance(value_set, FlagSet)
                broken = []
                for impl in view.implementations(save, e.implementations):
                    if not view.applies(value, impl):
                        continue
                    arch = view.implementation_arch.get(impl, "")
                    window = latest(start.get(impl), checked)
                    # older releases that did not know the value at all
                    unknown_end = value.since if _before(value.since, first) else first
                    if _before(window, unknown_end) and \
                            validation.verdict("unknown_" + ("bits" if bits else "values"), impl, arch) == "rejected":
                        broken.append((impl, "unknown", window, unknown_end))
                        continue
                    # older releases that knew it as another implementation's value
                    foreign_start = latest(window, value.since)
                    if value.implementations and impl not in value.implementations and \
                            _before(foreign_start, first) and \
                            validation.verdict("foreign_" + ("bits" if bits else "values"), impl, arch) == "rejected":
                        broken.append((impl, "foreign", foreign_start, first))
                broken = [b for b in broken if not any(x.covers("unrestorable-state", first, b[0])
                                                       for x in value.abi_exceptions)]
                if not broken:
                    continue
                impls = ", ".join(b[0] or "every implementation" for b in broken)
                since, until = broken[0][2], broken[0][3]
                what = "an unknown" if broken[0][1] == "unknown" else "another implementation's"
                yield Diagnostic(
                    e.mark,
                    f"{save.name} emits {value.name} in {e.path} on {impls} from {first.release} without an "
                    f"opt-in, and {restore.name} of {since.release} up to {_previous(until)} rejects it there as "
                    f"{what} {'bit' if bits else 'value'}: state saved on {first.release} cannot be restored on "
                    f"an older kernel",
                    f"emit it in an entry of its own with requires: KVM_CAP_... (a capability enabled with "
                    f"KVM_ENABLE_CAP), or, for a break the kernel really shipped, record it on the value with "
                    f"abi_exceptions: [{{rule: unrestorable-state, since: \"{first.release}\", reason: ...}}]")


_COVERS = {"vm": {"vm", "vcpu"}, "vcpu": {"vcpu"}}


def check_opt_in_capabilities(model: Model) -> Iterator[Diagnostic]:
    gates: list[tuple[Capability, object, set[str], str]] = []
    for ioctl in model.ioctls:
        for e in ioctl.emissions:
            if e.requires is not None:
                gates.append((e.requires, e.mark, {s.scope for s in ioctl.scopes}, ioctl.name))
    for item in model.of_kind(ExitReason):
        if item.requires is not None:
            gates.append((item.requires, item.mark, {"vcpu"}, item.name))
    for cap, mark, scopes, user in gates:
        if not cap.opt_in:
            # (emissions get this diagnostic from checks.check_ioctl_semantics)
            if not isinstance(model.by_name.get(user), Ioctl):
                yield Diagnostic(mark, f"{cap.name} is not enabled with KVM_ENABLE_CAP, so it cannot gate "
                                       f"{user}", "add enable: to the capability, or remove requires:")
            continue
        if not cap.check:
            yield Diagnostic(mark, f"{user} is gated by {cap.name}, which KVM_CHECK_EXTENSION does not report: "
                                   f"userspace cannot discover it before enabling it",
                             f"list where KVM_CHECK_EXTENSION answers for {cap.name} (check: [system, vm])")
        if scopes and not scopes & _COVERS.get(cap.enable_scope or "", set()):
            yield Diagnostic(mark, f"{cap.name} is enabled on the {cap.enable_scope} descriptor, which does not "
                                   f"cover {user} (issued on the {', '.join(sorted(scopes))} descriptor)",
                             "enable the capability on the VM (it then covers every vCPU), or gate with a "
                             "capability of the right descriptor")


def check_valid_with(model: Model) -> Iterator[Diagnostic]:
    for record in model.records:
        names = None
        for path, f, _ in record.walk():
            if not f.valid_with:
                continue
            if names is None:
                names = {v.name for _, g, _ in record.walk() for vs in g.flag_sets for v in vs.values}
            if f.valid_with not in names:
                yield Diagnostic(f.mark, f"valid_with: {f.valid_with} is not a flag of a field of {record.c_type}",
                                 "name a bit of the flag set of the record's flags field")


def check_exception_rules(model: Model) -> Iterator[Diagnostic]:
    from .rules import RULES
    for item in model.items:
        excs = list(item.abi_exceptions)
        if isinstance(item, ValueSet):
            excs += [x for v in item.values for x in v.abi_exceptions]
        for x in excs:
            if x.rule not in RULES:
                yield Diagnostic(x.mark, f"abi_exceptions names rule {x.rule!r}, which kvmspec compat does not have",
                                 "use one of: " + ", ".join(sorted(RULES)))


INVARIANTS = (check_restorable_emissions, check_opt_in_capabilities, check_valid_with, check_exception_rules)
