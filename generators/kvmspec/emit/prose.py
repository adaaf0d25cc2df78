"""Sentences about model facts that several outputs print the same way.

The api.rst sections, the Python docstrings and the C comments all say
"which fd", "what it validates", "what it pairs with" in the same words;
these filters are the one place those words are built.
"""

from __future__ import annotations

from ..model import Capability, Emission, Field, Ioctl, Validation

SCOPE_WORDS = {"system": "system ioctl", "vm": "vm ioctl", "vcpu": "vcpu ioctl", "device": "device ioctl"}
FLOW_WORDS = {"in": "in", "out": "out", "inout": "in/out"}
WHAT = {
    "unknown_bits": "bits outside the flag set",
    "foreign_bits": "bits that belong to another implementation",
    "unknown_values": "values outside the enum",
    "foreign_values": "values that belong to another implementation",
    "nonzero": "a non-zero value",
}
VERDICT_WORDS = {"rejected": "rejected (EINVAL)", "ignored": "silently ignored"}


def ioctl_type(ioctl: Ioctl) -> str:
    """`vcpu ioctl`, or `system ioctl, vm ioctl (with KVM_CAP_CHECK_EXTENSION_VM)`."""
    parts = []
    for scope in ioctl.scopes:
        text = SCOPE_WORDS[scope.scope]
        if scope.capability is not None and scope.capability is not ioctl.capability:
            text += f" (with {scope.capability.name})"
        parts.append(text)
    return ", ".join(parts)


def ioctl_capability(ioctl: Ioctl) -> str:
    return ioctl.capability.name if ioctl.capability is not None else "basic"


def ioctl_parameters(ioctl: Ioctl) -> str:
    if ioctl.arg_pass == "none":
        return "none"
    if ioctl.arg_pass == "value":
        return "an integer passed as the ioctl argument (see below)"
    target = ioctl.arg_record.c_type if ioctl.arg_record is not None else \
        (ioctl.arg_scalar.name if ioctl.arg_scalar is not None else "a buffer")
    return f"{target} ({FLOW_WORDS.get(ioctl.arg_flow or '', '?')})"


def encoding_note(ioctl: Ioctl) -> str:
    """Say so when the encoded direction disagrees with the real data flow."""
    if not ioctl.encoding_disagrees:
        return ""
    from ..layout import IOC_MACROS
    real = FLOW_WORDS.get(ioctl.arg_flow or "", "none") if ioctl.arg_pass == "pointer" else ioctl.arg_pass
    return (f"The number is encoded with {IOC_MACROS[ioctl.dir]}, but the data really flows "
            f"{real}; the encoding is kept because changing it would change the ioctl number.")


def _where(table: tuple[tuple[str, str], ...]) -> str:
    if len(table) == 1 and table[0][0] == "":
        return VERDICT_WORDS[table[0][1]]
    by_verdict: dict[str, list[str]] = {}
    for where, verdict in table:
        by_verdict.setdefault(verdict, []).append(where or "everywhere else")
    return " and ".join(f"{VERDICT_WORDS[v]} by {', '.join(ws)}" for v, ws in by_verdict.items())


def validation_sentence(v: Validation) -> str:
    """`flags: bits outside the flag set are rejected (EINVAL); ...`"""
    parts = [f"{WHAT[kind]} {'is' if kind == 'nonzero' else 'are'} {_where(table)}"
             for kind, table in v.verdicts]
    text = "; ".join(parts)
    if text:
        text = text[0].upper() + text[1:] + "."
    if v.doc:
        text = f"{text} {' '.join(v.doc.split())}".strip()
    return text


def emission_sentence(e: Emission) -> str:
    names = ", ".join(v.name for v in e.values)
    who = f" ({', '.join(e.implementations)})" if e.implementations else ""
    gate = f", only after {e.requires.name} was enabled" if e.requires is not None else ""
    return f"{e.path}{who}: {names}{gate}"


def pair_sentence(ioctl: Ioctl) -> str:
    if ioctl.restored_by:
        return (f"Saves state that {ioctl.restored_by} restores. What one kernel saves must be "
                f"accepted by {ioctl.restored_by} on any kernel that userspace may migrate to.")
    if ioctl.restores:
        return f"Restores state saved by {ioctl.restores}."
    return ""


def field_type(f: Field) -> str:
    if f.record is not None and f.record.inline:
        base = f.record.kind if f.name else f"anonymous {f.record.kind}"
    elif f.record is not None:
        base = f.record.c_type
    else:
        base = f.scalar.name  # type: ignore[union-attr]
    if f.flexible:
        return f"{base}[]"
    if f.dims:
        return base + "".join(f"[{d}]" for d in f.dims_text)
    if f.bits:
        return f"{base}:{f.bits}"
    return base


def capability_target(cap: Capability) -> str:
    return {"vm": "VM", "vcpu": "vCPU"}.get(cap.enable_scope or "", "")


def capability_checked(cap: Capability) -> str:
    words = {"system": "/dev/kvm", "vm": "VM", "vcpu": "vCPU", "device": "device"}
    return ", ".join(words[c] for c in cap.check) if cap.check else "not reported"


def ioctl_numbers(ioctl) -> str:
    """The ioctl's number on the ABIs of the architectures that have it; where those
    disagree (another _IOC layout, another struct size), each number says whose it is."""
    from ..layout import ABIS, abis_of
    groups: dict[int, list] = {}
    for abi, number in zip(ABIS, ioctl.numbers):
        if number is None or (ioctl.arch and abi.arch not in ioctl.arch):
            continue
        groups.setdefault(number, []).append(abi)
    if len(groups) <= 1:
        return next((f"{n:#x}" for n in groups), "")

    def who(abis: list) -> str:
        """Architectures whose every ABI has the number; single ABIs otherwise."""
        names: list[str] = []
        for abi in abis:
            whole = all(a in abis for a in abis_of(abi.arch))
            name = abi.arch if whole else abi.name
            if name not in names:
                names.append(name)
        return ", ".join(names)
    return "; ".join(f"{n:#x} ({who(abis)})" for n, abis in groups.items())


FILTERS = dict(
    ioctl_numbers=ioctl_numbers, ioctl_type=ioctl_type, ioctl_capability=ioctl_capability, ioctl_parameters=ioctl_parameters,
    encoding_note=encoding_note, validation_sentence=validation_sentence,
    emission_sentence=emission_sentence, pair_sentence=pair_sentence, field_type=field_type,
    capability_target=capability_target, capability_checked=capability_checked,
)
