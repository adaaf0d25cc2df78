"""The rules over meaning: what userspace, or saved state, of one view meets in the other.

Each rule takes two `AbiView`s, `old` and `new` (two revisions at their
newest state, or one revision at two consecutive releases), and returns
findings per implementation: for every implementation that an item applies
to, what the old side did and what the new side does.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

from ..diagnostics import Mark
from ..model import FlagSet, Ioctl, NamedValue
from .rules import RULES, Finding
from .view import GENERIC, AbiView


def _finding(rule: str, mark: Mark, message: str, remedy: str, subject, impls=(), severity: str = "") -> Finding:
    return Finding(RULES[rule], mark, message, remedy, severity, getattr(subject, "name", ""),
                   tuple(getattr(subject, "abi_exceptions", ())), tuple(impls))


def _impl_list(impls) -> str:
    return ", ".join(i or "every implementation" for i in impls)


def _kind_of(view: AbiView, value: NamedValue, field_sets, impl: str) -> str:
    """How the restore side of `view` classifies `value` on `impl`: unknown, foreign or own."""
    for vs in field_sets:
        known = view.values.get(vs.name, {}).get(value.value)
        if known is not None:
            if known.implementations and impl and impl not in known.implementations:
                return "foreign"
            return "own"
    return "unknown"


# ------------------------------------------------------------------ saved state


def saved_state(old: AbiView, new: AbiView) -> Iterator[Finding]:
    """unrestorable-state, not-opt-in and opt-in-dropped: values a save ioctl newly emits by default."""
    groups: dict[tuple, dict] = {}
    for (save_name, path, impl), emitted in new.emitted.items():
        save = new.ioctl(save_name)
        if save is None or not save.restored_by or old.ioctl(save_name) is None:
            continue    # a new ioctl: userspace that calls it knows what it emits
        if not any(k[0] == save_name and k[2] == impl for k in old.emitted) or \
                not old.field_exists(old.ioctl(save_name), path):
            continue    # new on this implementation, or a new field: old kernels never saw such state
        before = old.emitted.get((save_name, path, impl), {})
        for number, (value, requires, emission) in emitted.items():
            was = before.get(number)
            if was is not None:
                if was[1] is not None and requires != was[1]:
                    key = ("opt-in-dropped", save_name, path, value.name, was[1], requires)
                    groups.setdefault(key, {"emission": emission, "value": value, "impls": []})["impls"].append(impl)
                continue
            if requires is not None:
                continue
            kind = _kind_of(old, value, emission.field.value_sets, impl)
            verdict_kind = ("unknown_" if kind == "unknown" else "foreign_") + \
                ("bits" if isinstance(emission.field.value_set_of(value.name), FlagSet) else "values")
            verdict = old.verdict(save.restored_by, path, verdict_kind, impl) if kind != "own" else None
            if old.ioctl(save.restored_by) is None:
                verdict = None
            key = ("default", save_name, path, value.name)
            slot = groups.setdefault(key, {"emission": emission, "value": value, "rejecting": [], "ignoring": []})
            slot["rejecting" if verdict == "rejected" else "ignoring"].append(impl)
    for key, slot in groups.items():
        save = new.ioctl(key[1])
        emission, value = slot["emission"], slot["value"]
        path = key[2]
        if key[0] == "opt-in-dropped":
            old_req, req = key[4], key[5]
            now = "without any opt-in" if req is None else f"only after {req} instead"
            yield _finding("opt-in-dropped", emission.mark,
                           f"{save.name} emitted {value.name} in {path} only after {old_req} was enabled and now "
                           f"emits it {now} on {_impl_list(slot['impls'])}: userspace that never enabled "
                           f"{old_req} gets state it does not expect, and {save.restored_by} rejects it on older "
                           f"kernels and on VMs without {old_req} (migration and restore fail)",
                           f"keep emitting {value.name} only after {old_req} was enabled (requires: {old_req}); "
                           f"a new default needs a new capability, as KVM_CAP_EXCEPTION_PAYLOAD and "
                           f"KVM_CAP_X86_TRIPLE_FAULT_EVENT kept theirs", value, slot["impls"])
            continue
        rejecting, ignoring = slot["rejecting"], slot["ignoring"]
        if rejecting:
            others = [i.name for i in new.model.implementations()
                      if i.name not in rejecting and (not save.arch or i.arch in save.arch)]
            spared = ""
            if others:
                spared = "; not affected: " + ", ".join(
                    f"{o} ({'ignores it' if o in ignoring else 'does not emit it'})" for o in others)
            yield _finding("unrestorable-state", emission.mark,
                           f"{save.name} now emits {value.name} in {path} on {_impl_list(rejecting)}, and "
                           f"{save.restored_by} on older kernels rejects it as unknown with EINVAL there: state "
                           f"saved on a new kernel cannot be restored on an old one (migration to an older host "
                           f"fails){spared}",
                           f"emit {value.name} only after userspace enabled a new capability with KVM_ENABLE_CAP "
                           f"(requires: KVM_CAP_...), as KVM_CAP_EXCEPTION_PAYLOAD and "
                           f"KVM_CAP_X86_TRIPLE_FAULT_EVENT do", value, rejecting)
        else:
            yield _finding("not-opt-in", emission.mark,
                           f"{save.name} now emits {value.name} in {path} by default ({_impl_list(ignoring)}); "
                           f"userspace that does not know it saves and restores state it cannot interpret",
                           "emit it only after a capability was enabled with KVM_ENABLE_CAP", value, ignoring)


# ------------------------------------------------------------------ validation

_WHAT = {"unknown_bits": "unknown bits", "foreign_bits": "bits of other implementations",
         "unknown_values": "unknown values", "foreign_values": "values of other implementations",
         "nonzero": "non-zero bytes"}


def validation_tightened(old: AbiView, new: AbiView) -> Iterator[Finding]:
    for (ioctl_name, path), validation in new.validations.items():
        ioctl, before = new.ioctl(ioctl_name), old.ioctl(ioctl_name)
        if ioctl is None or before is None or not old.field_exists(before, path):
            continue    # a new ioctl or a new field: nothing old userspace could have sent
        for kind, _ in validation.verdicts:
            had = set(old.implementations(before))   # an architecture that gains the ioctl has no old users
            tightened = [impl for impl in new.implementations(ioctl) if impl in had
                         and new.verdict(ioctl_name, path, kind, impl) == "rejected"
                         and old.verdict(ioctl_name, path, kind, impl) != "rejected"]
            if not tightened:
                continue
            yield _finding("validation-tightened", validation.mark,
                           f"{ioctl_name} now rejects {_WHAT[kind]} in {path} with EINVAL on "
                           f"{_impl_list(tightened)}, where it used to ignore them: userspace that left them "
                           f"set worked and now fails"
                           + (f", and state that {ioctl.restores} saved there cannot be restored"
                              if ioctl.restores else ""),
                           "keep ignoring them for existing userspace; check only input that old userspace "
                           "cannot produce (behind a new flag or capability it opts into)", ioctl, tightened)


# ------------------------------------------------------------------ capabilities


def capability_meaning(old: AbiView, new: AbiView) -> Iterator[Finding]:
    for name, cap in new.capabilities.items():
        before = old.capabilities.get(name)
        if before is None:
            continue
        changes = []
        if cap.answer_kind != before.answer_kind:
            changes.append(f"KVM_CHECK_EXTENSION answers a {cap.answer_kind} instead of a {before.answer_kind}")
        elif _name(cap.answer_flags) != _name(before.answer_flags):
            changes.append(f"its answer's bits are {_name(cap.answer_flags) or 'unnamed'} instead of "
                           f"{_name(before.answer_flags) or 'unnamed'}")
        lost = [s for s in before.check if s not in cap.check]
        if lost:
            changes.append(f"KVM_CHECK_EXTENSION no longer answers for it on the {', '.join(lost)} descriptor")
        if before.enable_scope != cap.enable_scope:
            if before.enable_scope is None:
                changes.append(f"it must now be enabled with KVM_ENABLE_CAP on the {cap.enable_scope} "
                               f"descriptor, where it used to be on by default")
            elif cap.enable_scope is None:
                changes.append("KVM_ENABLE_CAP no longer accepts it")
            else:
                changes.append(f"KVM_ENABLE_CAP takes it on the {cap.enable_scope} descriptor instead of the "
                               f"{before.enable_scope} descriptor")
        elif cap.enable_scope is not None:
            if len(cap.enable_args) < len(before.enable_args):
                changes.append(f"KVM_ENABLE_CAP takes {len(cap.enable_args)} argument(s) instead of "
                               f"{len(before.enable_args)}")
            for a, b in zip(before.enable_args, cap.enable_args):
                if _name(a.flags) != _name(b.flags) or _name(a.enum) != _name(b.enum):
                    changes.append(f"args[{a.index}] holds {_name(b.flags) or _name(b.enum) or 'a plain value'} "
                                   f"instead of {_name(a.flags) or _name(a.enum) or 'a plain value'}")
        if changes:
            yield _finding("capability-meaning-changed", cap.mark,
                           f"capability {name} changed meaning: {'; '.join(changes)}: userspace built for the "
                           f"old meaning misreads it or fails to enable it",
                           "keep this capability as it was and give the new meaning a new capability number, "
                           "as KVM_CAP_DISABLE_QUIRKS2 did for KVM_CAP_DISABLE_QUIRKS", cap)


def _name(item) -> Optional[str]:
    return item.name if item is not None else None


# ------------------------------------------------------------------ ioctls


def ioctl_moved(old: AbiView, new: AbiView) -> Iterator[Finding]:
    for ioctl in new.of_kind(Ioctl):
        before = old.ioctl(ioctl.name)
        if before is None:
            continue
        changes = []
        scopes = {s.scope for s in ioctl.scopes}
        lost = [s.scope for s in before.scopes if s.scope not in scopes]
        if lost:
            changes.append(f"it is no longer available on the {', '.join(lost)} descriptor")
        # each side's architectures at its release: one that gains the ioctl later is not lost before
        old_arches, new_arches = set(old.arches(before)), set(new.arches(ioctl))
        if old_arches - new_arches:
            changes.append(f"it left architecture {', '.join(sorted(old_arches - new_arches))}")
        old_impls = set(old.implementations(before)) - {GENERIC}
        new_impls = set(new.implementations(ioctl)) - {GENERIC}
        if old_impls - new_impls and not old_arches - new_arches:
            changes.append(f"implementation {', '.join(sorted(old_impls - new_impls))} no longer has it")
        if ioctl.dir != before.dir:
            changes.append(f"its encoded direction changed ({before.c_macro} -> {ioctl.c_macro}), which changes "
                           f"its number ({before.number:#x} -> {ioctl.number:#x})")
        elif before.encoding_disagrees and not ioctl.encoding_disagrees and before.arg_flow != ioctl.arg_flow:
            changes.append(f"its data flow changed ({before.arg_flow} -> {ioctl.arg_flow})")
        if changes:
            yield _finding("ioctl-moved", ioctl.mark,
                           f"ioctl {ioctl.name}: {'; '.join(changes)}: userspace that issues it as before fails",
                           "keep it where it was (add new descriptors, as KVM_GET_SUPPORTED_HV_CPUID gained the "
                           "system descriptor next to the vCPU one), and keep its encoding even where it "
                           "disagrees with the data flow", ioctl)


# ------------------------------------------------------------------ validity


def validity_dropped(old: AbiView, new: AbiView) -> Iterator[Finding]:
    for name, exit_reason in new.exits.items():
        before = old.exits.get(name)
        if before is None:
            # while no capability could be enabled, nothing could be opt-in
            if exit_reason.requires is None and any(c.opt_in for c in old.capabilities.values()):
                yield _finding("not-opt-in", exit_reason.mark,
                               f"new exit reason {name} is not behind an opt-in capability: old userspace that "
                               f"gets it does not know how to handle it",
                               "report it only to userspace that enabled a capability for it (requires: "
                               "KVM_CAP_...)", exit_reason)
            continue
        if before.requires is not None and (exit_reason.requires is None or
                                            exit_reason.requires.name != before.requires.name):
            now = "without any opt-in" if exit_reason.requires is None else \
                f"after {exit_reason.requires.name} instead"
            yield _finding("validity-dropped", exit_reason.mark,
                           f"exit reason {name} was reported only after {before.requires.name} was enabled and "
                           f"is now reported {now}: userspace that never enabled it gets an exit it cannot "
                           f"handle (KVM_RUN returns an exit reason it does not know)",
                           f"keep reporting {name} only after {before.requires.name} was enabled", exit_reason)
    for (record, path), (flag, f) in old.valid_with.items():
        now = new.valid_with.get((record, path))
        rec = new.items.get(record)
        if rec is None or (now is not None and now[0] == flag):
            continue
        field = rec.field_at(path) if hasattr(rec, "field_at") else None
        if field is None:
            continue
        what = "no flag" if now is None else now[0]
        yield _finding("validity-dropped", field.mark,
                       f"field {record}.{path} was only valid with {flag} and now with {what}: the kernel reads "
                       f"bytes that userspace which does not set {flag} never meant as a value",
                       f"keep reading {path} only when {flag} is set (valid_with: {flag})", rec)


MEANING_RULES: tuple[Callable[[AbiView, AbiView], Iterator[Finding]], ...] = (
    saved_state, validation_tightened, capability_meaning, ioctl_moved, validity_dropped)


def meaning(old: AbiView, new: AbiView) -> list[Finding]:
    found: list[Finding] = []
    for rule in MEANING_RULES:
        found.extend(rule(old, new))
    return found
