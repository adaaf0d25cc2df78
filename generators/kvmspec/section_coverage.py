"""How much of a reference api.rst each section of ours covers: `kvmspec doc-coverage`.

Both documents are split into their numbered chapters and sections ("4.68
KVM_SET_ONE_REG", "2. File descriptors"); a section's text runs to the next
numbered heading. For each section of the reference (the kernel's api.rst),
its identifiers are the KVM_* names, the struct and union names and the
members its C listings declare; the section's coverage is the share of them
that our section with the same heading (number and title) also mentions
(a name the kernel misspells counts when ours mentions the real one:
KERNEL_MISSPELLINGS).
Everything here is a pure function of the two texts.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

_UNDERLINE = re.compile(r"([=\-])\1{2,}")
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)?\.?) +(\S.*?)\s*$")
# A numbered section the kernel wrote without an underline (6.1's 7.18): a
# lone line "N.M KVM_NAME" between blank lines.
_BARE = re.compile(r"^\d+\.\d+ KVM_[A-Z0-9_]+$")
# A KVM_ name; not a family ("KVM_REG_ARM_*", "KVM_SET/GET_...", "KVM_CAP_xyz").
_KVM_NAME = re.compile(r"\bKVM_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_*(/])")
# A struct or union by name; C names have an underscore, which keeps out
# prose ("the struct passed to").
_RECORD = re.compile(r"\b(?:struct|union)\s+([a-z][a-z0-9]*_[a-z0-9_]*)")
_SCALAR = (r"(?:__[us](?:8|16|32|64)|__u128|__uint128_t|__kernel_\w+|u(?:8|16|32|64)|s(?:8|16|32|64)"
           r"|(?:unsigned\s+)?(?:char|short|int|long(?:\s+long)?)|bool|void|size_t|uint\d+_t|int\d+_t"
           r"|(?:struct|union)\s+\w+)")
# Names the kernel's 6.1 api.rst misspells, with the name the headers define
# (and our api.rst uses): a reference section that mentions the misspelling
# is covered where ours mentions the real name. A tuple of section numbers
# limits an entry to those sections, where the kernel copied a name from a
# neighbouring section (kvm_reinject_control for kvm_ppc_resize_hpt).
KERNEL_MISSPELLINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "KVM_CAP_PPC_RADIX_MMU": ("KVM_CAP_PPC_MMU_RADIX", ()),
    "KVM_CAP_PPC_HASH_MMU_V3": ("KVM_CAP_PPC_MMU_HASH_V3", ()),
    "KVM_CAP_PPC_MULTITCE": ("KVM_CAP_SPAPR_MULTITCE", ()),
    "KVM_CAP_IRQCHIP_SPLIT": ("KVM_CAP_SPLIT_IRQCHIP", ()),
    "KVM_CAP_STATS_BINARY_FD": ("KVM_CAP_BINARY_STATS_FD", ()),
    "KVM_RUN_BUS_LOCK": ("KVM_RUN_X86_BUS_LOCK", ()),
    "KVM_EXIT_BUS_LOCK": ("KVM_EXIT_X86_BUS_LOCK", ()),
    "KVM_EXIT_PAPR": ("KVM_EXIT_PAPR_HCALL", ()),
    "KVM_EXIT_DIRTY_LOG_FULL": ("KVM_EXIT_DIRTY_RING_FULL", ()),
    "KVM_INTERNAL_ERROR": ("KVM_EXIT_INTERNAL_ERROR", ()),
    "KVM_SYSTEM_EVENT": ("KVM_EXIT_SYSTEM_EVENT", ()),
    "KVM_VM_S390_UNCONTROL": ("KVM_VM_S390_UCONTROL", ()),
    "KVM_STATE_NESTED_VMX_SMM_GUEST_MODE": ("KVM_STATE_NESTED_SMM_GUEST_MODE", ()),
    "KVM_STATE_NESTED_VMX_SMM_VMXON": ("KVM_STATE_NESTED_SMM_VMXON", ()),
    "KVM_PV_VM_SET_SEC_PARMS": ("KVM_PV_SET_SEC_PARMS", ()),
    "KVM_PV_VM_UNPACK": ("KVM_PV_UNPACK", ()),
    "KVM_PV_VM_VERIFY": ("KVM_PV_VERIFY", ()),
    "KVM_SET_MSR": ("KVM_SET_MSRS", ()),
    "KVM_CONFIG_TLB": ("KVM_CAP_SW_TLB", ()),
    "KVM_VM_MIPS_DEFAULT": ("KVM_VM_MIPS_AUTO", ()),
    "KVM_IRQ_LEVEL": ("KVM_IRQ_LINE", ("4.25",)),
    "KVM_CAP_X86_IOAPIC_POLARITY_IGNORED": ("KVM_CAP_IOAPIC_POLARITY_IGNORED", ()),
    "padding": ("padding2", ("4.8", "4.117")),
    "KVM_REQ_START_MIGRATION": ("KVM_S390_VM_MIGRATION_START", ()),
    "KVM_S390_CMMA_SIZE_MAX": ("KVM_S390_SKEYS_MAX", ()),
    "mask": ("psw_mask", ("5",)),
    "KVM_LAST_CPU": ("KVM_CAP_LAST_CPU", ()),
    "kvm_vcpu_event": ("kvm_vcpu_events", ()),
    "kvm_arm_device_address": ("kvm_arm_device_addr", ()),
    "kvm_reinject_control": ("kvm_ppc_resize_hpt", ("4.102", "4.103")),
}
_MEMBER = re.compile(rf"^\s*{_SCALAR}\s+\**\s*([a-z_][a-z0-9_]*)\s*(?:\[[^\]]*\]\s*)*(?::\s*\d+\s*)?;")


@dataclass
class Section:
    heading: str          # "4.68 KVM_SET_ONE_REG", as printed
    line: int
    text: str = ""


@dataclass
class Coverage:
    heading: str
    line: int
    identifiers: list[str]
    missing: list[str]
    found: bool           # whether the other document has a section with this heading
    by_number: bool = False   # found by its number alone: the other document spells the title otherwise

    @property
    def share(self) -> float:
        if not self.identifiers:
            return 1.0 if self.found else 0.0
        return 1 - len(self.missing) / len(self.identifiers)


@dataclass
class Report:
    sections: list[Coverage] = field(default_factory=list)

    def shares(self) -> list[float]:
        return [c.share for c in self.sections]

    def below(self, goal: float) -> list[Coverage]:
        return [c for c in self.sections if c.share < goal]

    def summary(self, goal: float) -> str:
        shares = self.shares()
        if not shares:
            return "doc-coverage: the reference has no numbered sections"
        absent = sum(1 for c in self.sections if not c.found)
        retitled = sum(1 for c in self.sections if c.by_number)
        return (f"doc-coverage: {len(shares)} sections, min {min(shares):.1%}, median "
                f"{statistics.median(shares):.1%}, mean {statistics.fmean(shares):.1%}; "
                f"{len(self.below(goal))} below {goal:.0%}; {absent} without a section of the same heading"
                + (f", {retitled} matched by number (title spelt otherwise)" if retitled else ""))

    def as_json(self, goal: float) -> dict:
        shares = self.shares()
        return {"sections": [{"heading": c.heading, "line": c.line, "identifiers": len(c.identifiers),
                              "missing": c.missing, "found": c.found, "by_number": c.by_number, "coverage": round(c.share, 4)}
                             for c in self.sections],
                "min": min(shares, default=0.0), "median": statistics.median(shares) if shares else 0.0,
                "below": len(self.below(goal)), "goal": goal}


def split_sections(text: str) -> list[Section]:
    """The numbered chapters and sections of an api.rst, each with its text
    (to the next numbered heading)."""
    lines = text.split("\n")
    sections: list[Section] = []
    body: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        nxt = lines[index + 1] if index + 1 < len(lines) else ""
        underlined = _UNDERLINE.fullmatch(nxt) is not None and len(nxt) >= len(line.rstrip()) > 0
        bare = _BARE.match(line) is not None and (index == 0 or not lines[index - 1].strip()) and not nxt.strip()
        match = _NUMBERED.match(line) if underlined or bare else None
        if match:
            if sections:
                sections[-1].text = "\n".join(body)
            sections.append(Section(f"{match.group(1)} {match.group(2)}", index + 1))
            body = [line]   # the heading is part of the section: its title names the items
            index += 2 if underlined else 1
            continue
        body.append(line)
        index += 1
    if sections:
        sections[-1].text = "\n".join(body)
    return sections


def identifiers(text: str) -> list[str]:
    """KVM_* names, struct/union names and declared members, once each, in order of appearance."""
    found = dict.fromkeys(_KVM_NAME.findall(text))
    found.update(dict.fromkeys(_RECORD.findall(text)))
    for line in text.split("\n"):
        m = _MEMBER.match(line)
        if m:
            found[m.group(1)] = None
    return list(found)


def mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def covered(ours: str, name: str, heading: str) -> bool:
    """Whether our section text mentions `name` of the reference section
    `heading`, or the real name of a known kernel misspelling."""
    if mentions(ours, name):
        return True
    real, sections = KERNEL_MISSPELLINGS.get(name, ("", ()))
    number = heading.split(" ")[0].rstrip(".")
    return bool(real) and (not sections or number in sections) and mentions(ours, real)


def _key(heading: str) -> str:
    number, _, title = heading.partition(" ")
    return f"{number.rstrip('.')} {title.rstrip('.').strip()}"


def coverage(reference: str, ours: str) -> Report:
    """For each numbered section of `reference`, which of its identifiers our
    section of the same heading leaves out. Repeated headings pair in order."""
    theirs = split_sections(reference)
    mine: dict[str, list[Section]] = {}
    for s in split_sections(ours):
        mine.setdefault(_key(s.heading), []).append(s)
    used: dict[str, int] = {}
    report = Report()
    for s in theirs:
        key = _key(s.heading)
        n = used.get(key, 0)
        used[key] = n + 1
        candidates = mine.get(key, [])
        by_number = False
        if not candidates:
            # A title spelt otherwise (a misspelt name corrected): the section
            # of the same number, when only one section of ours has it.
            number = key.split(" ")[0]
            same = [v[0] for k, v in mine.items() if k.split(" ")[0] == number and len(v) == 1]
            if len(same) == 1 and sum(1 for t in theirs if _key(t.heading).split(" ")[0] == number) == 1:
                candidates, by_number = same, True
        other = candidates[min(n, len(candidates) - 1)].text if candidates else None
        names = identifiers(s.text)
        missing = names if other is None else [i for i in names if not covered(other, i, s.heading)]
        report.sections.append(Coverage(s.heading, s.line, names, missing, other is not None, by_number))
    return report
