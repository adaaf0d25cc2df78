"""Auditing a hand-written api.rst against the spec: `kvmspec audit-docs`.

`audit_docs(model, text, path)` reads a document in the kernel's format
(Documentation/virt/kvm/api.rst: numbered sections `4.N KVM_FOO` with field
lists `:Capability:`, `:Architectures:`, `:Type:`, `:Parameters:`) and reports,
against the spec:

- identifiers the document names that no spec item defines (typos, renamed
  names), with the closest spec name;
- names the spec has as removed from, or deprecated in, the API;
- ioctls and capabilities of the spec that have no section in the document;
- section fields that state something the spec contradicts.

Everything here is a pure function of the model and the text; the CLI only
reads the file and prints.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

from .diagnostics import Diagnostic, Mark
from .spelling import NameIndex
from .model import Capability, Ioctl, Lifecycle, Model, ValueSet, Version
from .valuetype import is_value, value_fields


# ------------------------------------------------------------------ kinds of finding


@dataclass(frozen=True)
class Kind:
    id: str
    severity: str          # error | warning
    summary: str


# Errors: the document states something wrong (a name that does not exist, a
# fact the spec contradicts). Warnings: the document is incomplete, or uses
# names that are on their way out; fixing them is worthwhile but the text is
# not wrong.
KINDS: dict[str, Kind] = {k.id: k for k in (
    Kind("unknown-name", "error",
         "The document names an identifier that no spec item defines, in a part of the API the spec "
         "describes (a typo or a renamed name); the message suggests the closest spec name."),
    Kind("unknown-prefix", "warning",
         "A wildcard or prefix (KVM_FOO_*, KVM_FOO_) that no spec name and no header outside the spec "
         "starts with."),
    Kind("removed-name", "warning",
         "A name the spec has as removed from the API, used only in sections that do not say it is gone "
         "(reported once per name, at its first use); names removed after the document's kernel version "
         "are not reported."),
    Kind("deprecated-name", "warning",
         "A name the spec has as deprecated, used only in sections that do not say it is deprecated, "
         "obsolete or replaced (reported once per name, at its first use)."),
    Kind("newer-than-document", "warning",
         "A name the spec dates after the --kernel-version given: either the spec's date for it is "
         "wrong or the version is."),
    Kind("capability-mismatch", "error",
         "The :Capability: field names none of the capabilities the spec gates the ioctl with "
         "(\"basic\" means none)."),
    Kind("arch-mismatch", "error",
         "The :Architectures: field lists an architecture on which the spec does not have the ioctl "
         "or capability."),
    Kind("arch-omitted", "warning",
         "The :Architectures: field leaves out an architecture on which the spec has the ioctl or "
         "capability (architectures that KVM did not support at the document's version are ignored)."),
    Kind("type-mismatch", "error",
         "The :Type: (or a capability's :Target:) names a file descriptor the spec does not issue the "
         "ioctl on, or enable the capability on."),
    Kind("type-omitted", "warning",
         "The :Type: field leaves out a file descriptor on which the spec always allows the ioctl."),
    Kind("parameters-mismatch", "error",
         "The :Parameters: field names another struct than the spec's argument, or none where the spec "
         "passes an argument (or a struct where it passes none or an integer)."),
    Kind("direction-mismatch", "warning",
         "The :Parameters: field gives the opposite direction, (in) against (out), for the struct the spec "
         "passes; often the document describes the data behind a pointer in the struct rather than the "
         "struct itself. (in/out against in or out is not reported.)"),
    Kind("no-section", "warning",
         "An ioctl or capability of the spec with no section of its own; the document only mentions it "
         "in passing (a capability named in the :Capability: field of a section counts as documented)."),
    Kind("undocumented", "warning",
         "An ioctl or capability of the spec that the document never mentions (reported at the spec "
         "item, since the document has no place for it)."),
)}


def finding(kind: str, mark: Mark, message: str) -> Diagnostic:
    return Diagnostic(mark, message, severity=KINDS[kind].severity, rule=kind)


def finding_json(d: Diagnostic) -> dict:
    return {"path": d.mark.path, "line": d.mark.line, "column": d.mark.col, "severity": d.severity,
            "kind": d.rule, "message": d.message}


# ------------------------------------------------------------------ what lives outside the spec

# Prefixes of names that other headers define: other architectures' asm/kvm.h,
# x86's asm/kvm_para.h and the kernel's internal headers. The spec describes
# linux/kvm.h and the x86 asm/kvm.h only, so it cannot judge these names.
OUTSIDE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("KVM_REG_ARM_", "the arm64 asm/kvm.h"), ("KVM_REG_ARM64_", "the arm64 asm/kvm.h"),
    ("KVM_ARM_VCPU_", "the arm64 asm/kvm.h"), ("KVM_ARM_DEVICE_", "the arm64 asm/kvm.h"),
    ("KVM_ARM_IRQ_", "the arm64 asm/kvm.h"), ("KVM_ARM_TARGET_", "the arm64 asm/kvm.h"),
    ("KVM_ARM64_", "the arm64 asm/kvm.h"), ("KVM_DEV_ARM_", "the arm64 asm/kvm.h"),
    ("KVM_VGIC_", "the arm64 asm/kvm.h"), ("KVM_SPSR_", "the arm64 asm/kvm.h"),
    ("KVM_PSCI_", "the arm64 asm/kvm.h"), ("KVM_DEBUG_ARCH_", "the arm64 asm/kvm.h"),
    ("KVM_SYSTEM_EVENT_RESET_FLAG_PSCI_", "the arm64 asm/kvm.h"),
    ("KVM_S390_VM_", "the s390 asm/kvm.h"), ("KVM_DEV_FLIC_", "the s390 asm/kvm.h"),
    ("KVM_REG_PPC_", "the powerpc asm/kvm.h"), ("KVM_SREGS_", "the powerpc asm/kvm.h"),
    ("KVM_PPC_PVINFO_", "the powerpc asm/kvm.h"), ("KVM_DEV_XICS_", "the powerpc asm/kvm.h"),
    ("KVM_DEV_XIVE_", "the powerpc asm/kvm.h"), ("KVM_XICS_", "the powerpc asm/kvm.h"),
    ("KVM_REG_MIPS_", "the mips asm/kvm.h"),
    ("KVM_REG_RISCV_", "the riscv asm/kvm.h"), ("KVM_RISCV_", "the riscv asm/kvm.h"),
    ("KVM_REG_LOONGARCH_", "the loongarch asm/kvm.h"), ("KVM_LOONGARCH_", "the loongarch asm/kvm.h"),
    ("KVM_FEATURE_", "asm/kvm_para.h"), ("KVM_HC_", "asm/kvm_para.h"), ("KVM_CPUID_", "asm/kvm_para.h"),
    ("KVM_HINTS_", "asm/kvm_para.h"), ("KVM_ASYNC_PF_", "asm/kvm_para.h"),
    ("KVM_REQ_", "the kernel's internal headers"),
)

# Namespaces that only linux/kvm.h uses: the spec has every name in them, so an
# unknown name there is wrong whatever architecture the text is about.
SPEC_NAMESPACES = ("KVM_CAP_", "KVM_EXIT_")

# Architectures that KVM gained late; a document older than that cannot list them.
ARCH_SINCE = {"riscv": (5, 16), "loongarch": (6, 7)}

ARCH_WORDS = {
    "x86": "x86", "x86_64": "x86", "x86-64": "x86", "i386": "x86", "amd64": "x86",
    "arm64": "arm64", "arm": "arm64", "aarch64": "arm64",
    "s390": "s390", "s390x": "s390",
    "ppc": "ppc", "powerpc": "ppc", "ppc64": "ppc", "ppc64le": "ppc",
    "mips": "mips", "riscv": "riscv", "risc-v": "riscv", "loongarch": "loongarch",
}

SCOPE_WORDS = {"system": "system", "vm": "vm", "vcpu": "vcpu", "device": "device"}

CLOSE = 0.8        # similarity above which an unknown name is taken for a misspelling of a spec name
FOREIGN_CLOSE = 0.9  # the same, in text about architectures whose header the spec does not describe


# ------------------------------------------------------------------ the spec side


@dataclass(frozen=True)
class Known:
    """A name the spec defines (an item, or a value of an enum or flag set)."""

    name: str
    kind: str
    arch: tuple[str, ...]
    since: Version
    removed: Optional[Lifecycle]
    deprecated: Optional[Lifecycle]


class SpecNames:
    """Every name the spec knows, and how it knows it."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.arches = tuple(a.name for a in model.architectures)
        # the architectures whose own header the spec describes
        self.described_arches = frozenset(h.arch for h in model.headers if h.arch)
        self.defined: dict[str, Known] = {}
        self.guards: set[str] = set()
        for item in model.items:
            self.defined[item.name] = Known(item.name, item.kind, item.arch, item.since, item.removed,
                                            item.deprecated)
            if item.c_guard is not None:
                self.guards.add(item.c_guard.name)
            if isinstance(item, ValueSet):
                for v in item.values:
                    self.defined[v.name] = Known(v.name, "value", v.arch or item.arch, v.since, v.removed,
                                                 v.deprecated)
        self.external: dict[str, str] = {}
        for m in model.external_macros:
            self.external[m.name] = "a macro the spec leaves to other headers"
        self.external_arch: dict[str, str] = {}
        for t in model.external_types:
            self.external[t.name.split()[-1]] = f"defined by the {t.arch} asm/kvm.h"
            self.external_arch[t.name.split()[-1]] = t.arch
        for g in self.guards:
            if g not in self.defined:
                self.external[g] = "a guard macro the spec uses"
        self.index = NameIndex(set(self.defined) | {n for n in self.external if n.islower()})
        self._families: dict[str, list[str]] = {}
        for n in self.defined:
            if not n.islower() and "_" in n:
                self._families.setdefault(n.rsplit("_", 1)[0], []).append(n)
        self._prose: Optional[frozenset[str]] = None

    def close(self, name: str) -> list[tuple[float, str]]:
        """Up to three spec names that look like `name`, with their similarity,
        best first (the matcher `kvmspec validate` uses too: spelling.py)."""
        return self.index.close(name)

    def family(self, name: str) -> list[str]:
        """Spec names that differ from `name` only in the last word (KVM_VM_MIPS_AUTO for KVM_VM_MIPS_X)."""
        head = name.rsplit("_", 1)[0]
        return self._families.get(head, []) if head.count("_") >= 2 else []

    @property
    def prose(self) -> frozenset[str]:
        """KVM names that the spec's own text mentions without defining them."""
        if self._prose is None:
            found: set[str] = set()
            for text in _texts(self.model):
                if "KVM_" in text:
                    found.update(m.name for m in scan_names(text) if not m.prefix)
                if "struct kvm_" in text or "union kvm_" in text:
                    found.update(m.name for m in scan_names(text) if m.struct)
            self._prose = frozenset(n for n in found if n not in self.defined)
        return self._prose


def _texts(model: Model) -> Iterator[str]:
    """Every string in the model (docs, returns, errors, ...), each object visited once."""
    seen: set[int] = set()
    stack: list[object] = [*model.items, *model.files]
    while stack:
        obj = stack.pop()
        if isinstance(obj, str):
            yield obj
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (tuple, list)):
            stack.extend(obj)
        elif is_value(obj):
            for name in value_fields(obj):
                if name != "mark":
                    stack.append(getattr(obj, name))


# ------------------------------------------------------------------ reading the document

PLAIN_NAME_RE = re.compile(r"(?<![A-Za-z0-9_])(?:__)?KVM_[A-Z0-9_]*[A-Z0-9]")
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])(?:(?:struct|union)\s+(?P<struct>kvm_[a-z0-9_]+)"
                      r"|(?P<name>(?:__)?KVM_[A-Z0-9_]*))")
BRACE_RE = re.compile(r"\{([A-Z0-9_, ]*)\}([A-Z0-9_]*)")
PAREN_RE = re.compile(r"\(([A-Z0-9]+)\)([A-Z0-9_]+)")
SLASH_RE = re.compile(r"(?:/(?!_*KVM_)_?[A-Z0-9][A-Z0-9_]*)+")
UNDERLINE_RE = re.compile(r"([=\-~^\"'`#*+.:_])\1{2,}\s*$")
SECTION_RE = re.compile(r"(\d+)\.(\d+)\.?\s+\S")
LABEL_RE = re.compile(r"\.\. _api-([A-Za-z0-9_]+):\s*$")
CHAPTER_RE = re.compile(r"(\d+)\.\s+\S")
FIELD_RE = re.compile(r":([A-Za-z][A-Za-z ]*):(\s*)(.*)$")
# a few sections of the kernel's file drop a colon: "Architectures: x86", ":Capability KVM_CAP_X"
LOOSE_FIELD_RE = re.compile(r"(?::(?P<a>Capability|Architectures|Type|Target|Parameters|Returns)\s+"
                            r"|(?P<b>Capability|Architectures|Type|Target|Parameters|Returns):\s*)(?P<value>.*)$")
BRACKET_RE = re.compile(r"\[([A-Za-z0-9_ ,/-]+)\]")


@dataclass(frozen=True)
class Mention:
    name: str
    line: int
    col: int
    prefix: bool = False          # a wildcard or prefix (KVM_CAP_*, KVM_REG_MIPS_FCR_)
    struct: bool = False          # written as `struct kvm_foo`


@dataclass
class DocField:
    name: str
    value: str
    line: int
    col: int


@dataclass
class Section:
    title: str
    line: int
    number: str                   # "4.35"
    names: tuple[str, ...]        # the KVM names of the heading, in order
    fields: dict[str, DocField] = field(default_factory=dict)
    arches: Optional[frozenset[str]] = None    # from :Architectures:, when it parses
    labels: tuple[str, ...] = ()  # names of the ``.. _api-NAME:`` labels right above the heading


@dataclass
class Region:
    """Lines from one heading to the next, with the architectures the text there is about."""

    line: int
    section: Optional[Section]
    arches: Optional[frozenset[str]]


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def scan_names(text: str, known: frozenset[str] = frozenset()) -> list[Mention]:
    """Every KVM identifier of the text, with abbreviations spelled out.

    `KVM_SET_CPUID{,2}`, `KVM_(UN)REGISTER_COALESCED_MMIO`,
    `KVM_SET/GET/HAS_DEVICE_ATTR` and `KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR/_CURRENT`
    become the names they abbreviate (the last two forms only when the
    expansion gives names; see `_expand_slashes`). `KVM_CAP_*` and names that
    end in `_` are prefixes.
    """
    starts = _line_starts(text)
    out: list[Mention] = []
    for m in TOKEN_RE.finditer(text):
        line_index = bisect.bisect_right(starts, m.start()) - 1
        line, col = line_index + 1, m.start() - starts[line_index] + 1
        if m.group("struct"):
            out.append(Mention(m.group("struct"), line, col + m.start("struct") - m.start(), struct=True))
            continue
        token, end = m.group("name"), m.end()
        rest = text[end:end + 200]
        if rest.startswith("{") and (b := BRACE_RE.match(rest)):
            out.extend(Mention(token + alt.strip() + b.group(2), line, col) for alt in b.group(1).split(","))
        elif token == "KVM_" and rest.startswith("(") and (p := PAREN_RE.match(rest)):
            out.append(Mention(token + p.group(2), line, col))
            out.append(Mention(token + p.group(1) + p.group(2), line, col))
        elif rest.startswith("*") or token.endswith("_"):
            out.append(Mention(token, line, col, prefix=True))
        elif rest.startswith("/") and (s := SLASH_RE.match(rest)):
            out.extend(Mention(n, line, col) for n in _expand_slashes(token, s.group(0)[1:].split("/"), known))
        else:
            out.append(Mention(token, line, col))
    return out


def _expand_slashes(token: str, alts: list[str], known: frozenset[str]) -> list[str]:
    """`KVM_SET/GET/HAS_DEVICE_ATTR` or `KVM_X_ADDR/_CURRENT/DATA`: the names meant.

    Two readings: the alternatives replace the first word after the common
    prefix and share the suffix of the last one (KVM_SET_DEVICE_ATTR,
    KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR), or they replace the end of the
    first, complete name (..._RUNSTATE_ADDR, ..._RUNSTATE_CURRENT). The reading
    that gives more names the spec defines wins; the spellings an expansion
    cannot pin down are left alone rather than reported.
    """
    alts = [a.lstrip("_") for a in alts if a.strip("_")]
    # reading A: shared suffix
    last = alts[-1]
    reading_a: list[str] = []
    if "_" in last:
        suffix = "_" + last.split("_", 1)[1]
        base = token.rsplit("_", 1)[0] + "_"
        reading_a = [token + suffix] + [base + a + suffix for a in alts[:-1]] + [base + last]
    # reading B: each alternative replaces the last words of the full name
    parts = token.split("_")
    reading_b = [token]
    for alt in alts:
        options = ("_".join(parts[:len(parts) - k]) + "_" + alt for k in range(1, len(parts) - 1))
        hit = next((o for o in options if o in known), None)
        if hit is not None:
            reading_b.append(hit)
    score_a = sum(n in known for n in reading_a)
    score_b = sum(n in known for n in reading_b)
    if score_a == 0 and score_b == 0:
        return [token]
    chosen = reading_a if score_a > score_b else reading_b
    return [n for n in chosen if n in known or n == token]


def parse_arches(text: str, every: Iterable[str]) -> Optional[frozenset[str]]:
    """The architectures a field or heading names; None when it names none recognisably."""
    every = frozenset(every)
    words = re.findall(r"[a-z0-9_]+(?:-[a-z0-9]+)?", text.lower())
    named = {ARCH_WORDS[w] for w in words if w in ARCH_WORDS} & every
    if "except" in words:
        return every - named
    if named:
        return frozenset(named)
    if "all" in words or "any" in words:
        return every
    if words and words[0] == "none":
        return frozenset()
    return None


def parse_scopes(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", text.lower())
    return {SCOPE_WORDS[w] for w in words if w in SCOPE_WORDS}


@dataclass
class Document:
    lines: list[str]
    sections: list[Section]            # numbered sections that name KVM identifiers
    regions: list[Region]
    mentions: list[Mention]

    def __post_init__(self) -> None:
        self._region_lines = [r.line for r in self.regions]

    def region_at(self, line: int) -> Optional[Region]:
        i = bisect.bisect_right(self._region_lines, line) - 1
        return self.regions[i] if i >= 0 else None

    def region_end(self, line: int) -> int:
        """The last line of the region that contains `line`."""
        i = bisect.bisect_right(self._region_lines, line)
        return self._region_lines[i] - 1 if i < len(self._region_lines) else len(self.lines)


def _labels_above(lines: list[str], index: int) -> tuple[str, ...]:
    """The names of the ``.. _api-NAME:`` labels (kvmspec's api.rst puts one per
    item above its section) between the heading at `index` and the text before."""
    labels: list[str] = []
    i = index - 1
    while i >= 0 and (not lines[i].strip() or LABEL_RE.match(lines[i])):
        m = LABEL_RE.match(lines[i])
        if m:
            labels.insert(0, m.group(1))
        i -= 1
    return tuple(labels)


def read_document(text: str, every_arch: Iterable[str], known: frozenset[str] = frozenset()) -> Document:
    every_arch = frozenset(every_arch)
    lines = text.splitlines()
    sections: list[Section] = []
    regions: list[Region] = []
    current: Optional[Section] = None        # the numbered section we are in
    current_arches: Optional[frozenset[str]] = None
    for i in range(len(lines) - 1):
        title, under = lines[i], lines[i + 1]
        if not title.strip() or title[0].isspace() or not UNDERLINE_RE.fullmatch(under) \
                or UNDERLINE_RE.fullmatch(title.strip()):
            continue
        line = i + 1
        title = title.strip()
        if SECTION_RE.match(title) and under[0] in "-=~":
            names = tuple(dict.fromkeys(m.name for m in scan_names(title, known)
                                        if not m.prefix and not m.struct))
            current = Section(title, line, title.split()[0].rstrip("."), names, labels=_labels_above(lines, i))
            current.fields = _fields(lines, i + 2)
            arch_field = current.fields.get("Architectures")
            current.arches = parse_arches(arch_field.value, every_arch) if arch_field else None
            if not names:   # "9.1. x86": a numbered part about an architecture
                current.arches = parse_arches(title.split(None, 1)[1], every_arch)
            current_arches = current.arches
            if names:
                sections.append(current)
            regions.append(Region(line, current, current_arches))
        elif CHAPTER_RE.match(title) and under[0] in "=-":
            current, current_arches = None, None
            regions.append(Region(line, None, None))
        else:   # a sub-heading: "X86:", "For arm64:", "Logical read/write:"
            sub = parse_arches(title, every_arch) if len(title.split()) <= 3 else None
            regions.append(Region(line, current, sub if sub else current_arches))
    return Document(lines, sections, regions, scan_names(text, known))


def _fields(lines: list[str], start: int) -> dict[str, DocField]:
    """The field list right after a heading (blank lines may come first)."""
    fields: dict[str, DocField] = {}
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    last: Optional[DocField] = None
    while i < len(lines):
        text = lines[i]
        m = FIELD_RE.match(text)
        loose = None if m else LOOSE_FIELD_RE.match(text)
        if m:
            last = DocField(m.group(1).strip(), m.group(3).strip(), i + 1, m.start(3) + 1)
            fields.setdefault(last.name, last)
        elif loose:
            last = DocField(loose.group("a") or loose.group("b"), loose.group("value").strip(), i + 1,
                            loose.start("value") + 1)
            fields.setdefault(last.name, last)
        elif last is not None and text[:1].isspace() and text.strip():
            last.value = f"{last.value} {text.strip()}"
        else:
            break
        i += 1
    return fields


# ------------------------------------------------------------------ the audit


@dataclass
class AuditReport:
    path: str
    kernel_version: Optional[str]
    version_basis: str                 # "given", or how it was inferred
    findings: list[Diagnostic]
    lines: int
    sections: int                      # numbered sections that name ioctls or capabilities
    identifiers: int                   # distinct names checked
    mentions: int                      # occurrences checked
    unknown: list[str]                 # distinct names reported as unknown
    outside: list[str]                 # distinct names left to headers the spec does not describe
    missing_ioctls: list[str]
    missing_capabilities: list[str]
    never_mentioned_ioctls: list[str]
    never_mentioned_capabilities: list[str]
    considered_ioctls: int
    considered_capabilities: int
    field_disagreements: int

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    def summary(self) -> str:
        version = f"Linux {self.kernel_version} ({self.version_basis})" if self.kernel_version else \
            "no kernel version (all current spec items considered)"
        return (f"kvmspec audit-docs {self.path} against {version}: {self.lines} lines, {self.sections} sections "
                f"read, {self.identifiers} identifiers checked ({self.mentions} uses), "
                f"{len(self.unknown)} unknown identifiers, "
                f"{len(self.outside)} left to headers outside the spec, "
                f"{len(self.missing_ioctls)} of {self.considered_ioctls} ioctls without a section "
                f"({len(self.never_mentioned_ioctls)} never mentioned), "
                f"{len(self.missing_capabilities)} of {self.considered_capabilities} capabilities without a "
                f"section ({len(self.never_mentioned_capabilities)} never mentioned), "
                f"{self.field_disagreements} field disagreements; "
                f"{self.errors} error(s), {self.warnings} warning(s)")

    def as_json(self) -> dict:
        return {
            "path": self.path, "kernel_version": self.kernel_version, "version_basis": self.version_basis,
            "errors": self.errors, "warnings": self.warnings,
            "summary": {
                "lines": self.lines, "sections": self.sections, "identifiers": self.identifiers,
                "identifier_uses": self.mentions, "unknown_identifiers": len(self.unknown),
                "outside_spec": len(self.outside),
                "ioctls_considered": self.considered_ioctls,
                "missing_ioctl_sections": len(self.missing_ioctls),
                "ioctls_never_mentioned": len(self.never_mentioned_ioctls),
                "capabilities_considered": self.considered_capabilities,
                "missing_capability_sections": len(self.missing_capabilities),
                "capabilities_never_mentioned": len(self.never_mentioned_capabilities),
                "field_disagreements": self.field_disagreements,
            },
            "unknown_identifiers": self.unknown,
            "outside_spec": self.outside,
            "missing_ioctl_sections": self.missing_ioctls,
            "missing_capability_sections": self.missing_capabilities,
            "findings": [finding_json(f) for f in self.findings],
        }


def parse_version(text: str) -> Version:
    """`6.1`, `6.1.192`, `v6.1-rc3` or `2.6.24`: the release (major.minor, or 2.6.x for old ones)."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[.\-+~].*)?", text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a kernel version such as 6.1")
    parts = (int(m.group(1)), int(m.group(2)))
    if parts[0] < 3 and m.group(3) is not None:     # 2.6.24 is a release, 6.1.24 a stable update
        parts += (int(m.group(3)),)
    return Version(parts)


def audit_docs(model: Model, text: str, path: str = "api.rst",
               kernel_version: Optional[Version] = None) -> AuditReport:
    return _Audit(model, text, path, kernel_version).run()


class _Audit:
    def __init__(self, model: Model, text: str, path: str, version: Optional[Version]) -> None:
        self.model, self.path = model, path
        self.spec = SpecNames(model)
        self.doc = read_document(text, self.spec.arches, frozenset(self.spec.defined))
        self._headings = {s.line: s for s in self.doc.sections}
        self.given = version is not None
        self.version = version
        self.version_basis = "given"
        self.findings: list[Diagnostic] = []
        self.unknown: set[str] = set()
        self.outside: set[str] = set()
        self.misspelt: dict[str, Mention] = {}    # spec name -> first document name that misspells it
        self.field_disagreements = 0

    def mark(self, line: int, col: int) -> Mark:
        return Mark(self.path, line, col)

    def add(self, kind: str, mark: Mark, message: str) -> None:
        self.findings.append(finding(kind, mark, message))

    def run(self) -> AuditReport:
        if self.version is None:
            self._infer_version()
        self.check_names()
        self.check_fields()
        missing = self.check_sections()
        doc_findings = sorted(f for f in self.findings if f.mark.path == self.path)
        spec_findings = sorted(f for f in self.findings if f.mark.path != self.path)
        names = {m.name for m in self.doc.mentions}
        return AuditReport(
            self.path, self.version.release if self.version else None, self.version_basis,
            doc_findings + spec_findings, len(self.doc.lines), len(self.doc.sections), len(names),
            len(self.doc.mentions), sorted(self.unknown), sorted(self.outside), *missing,
            self.field_disagreements)

    # -------------------------------------------------------------- the document's version

    def _infer_version(self) -> None:
        """The newest release the spec dates any name of the document to."""
        newest: Optional[tuple[tuple[int, ...], str]] = None
        for m in self.doc.mentions:
            known = self.spec.defined.get(m.name)
            if known is None or m.prefix:
                continue
            key = (known.since.parts, m.name)
            if newest is None or key[0] > newest[0]:
                newest = key
        if newest is None:
            self.version_basis = "none"
            return
        self.version = Version(newest[0])
        self.version_basis = (f"inferred from {newest[1]}, the newest name it uses (since {self.version}); "
                              "pass --kernel-version to override")

    def _at_version(self, since: Version) -> bool:
        return self.version is None or since.parts <= self.version.parts

    def _removed_at_version(self, removed: Optional[Lifecycle]) -> bool:
        return removed is not None and (self.version is None or removed.since.parts <= self.version.parts)

    # -------------------------------------------------------------- 1. names

    def check_names(self) -> None:
        reported_once: set[tuple[str, str]] = set()
        counts: dict[str, int] = {}
        for m in self.doc.mentions:
            counts[m.name] = counts.get(m.name, 0) + 1
        for m in self.doc.mentions:
            if m.prefix:
                self._check_prefix(m)
                continue
            known = self.spec.defined.get(m.name)
            if known is not None:
                self._check_known(m, known, reported_once, counts)
                continue
            if m.name in self.spec.external:
                continue
            if self._kept_title(m):
                continue
            self._check_unknown(m)

    def _kept_title(self, m: Mention) -> bool:
        """Whether the name is in a heading whose labels say which spec item
        the section describes, and is that item's name misspelt: a title kept
        as the kernel spells it (8.3 KVM_CAP_PPC_RADIX_MMU above the label of
        KVM_CAP_PPC_MMU_RADIX), not a name the text uses."""
        section = self._headings.get(m.line)
        if section is None or not section.labels:
            return False
        close = self.spec.close(m.name)
        return bool(close) and close[0][0] >= CLOSE and close[0][1] in section.labels

    def _check_prefix(self, m: Mention) -> None:
        p = m.name
        if p in ("KVM_", "__KVM_") or any(n.startswith(p) for n in self.spec.defined) \
                or any(n.startswith(p) for n in self.spec.prose) \
                or any(p.startswith(o) or o.startswith(p) for o, _ in OUTSIDE_PREFIXES):
            return
        self.add("unknown-prefix", self.mark(m.line, m.col),
                 f"no spec name starts with {p} (used as a prefix or wildcard)")

    def _check_known(self, m: Mention, known: Known, once: set[tuple[str, str]], counts: dict[str, int]) -> None:
        if known.removed is not None:
            if known.removed.moved_to is not None or not self._removed_at_version(known.removed):
                return
            if ("removed", m.name) in once:
                return
            once.add(("removed", m.name))
            if any(self._says_deprecated(other.line) for other in self.doc.mentions if other.name == m.name):
                return
            more = counts[m.name] - 1
            replacement = f"; use {known.removed.replacement}" if known.removed.replacement else ""
            self.add("removed-name", self.mark(m.line, m.col),
                     f"{m.name} ({known.kind}) was removed from the API in {known.removed.since}{replacement}"
                     + (f" (used {more} more time(s))" if more else ""))
            return
        if self.given and not self._at_version(known.since) and ("newer", m.name) not in once:
            once.add(("newer", m.name))
            self.add("newer-than-document", self.mark(m.line, m.col),
                     f"the spec dates {m.name} ({known.kind}) to {known.since}, after this document's "
                     f"{self.version}")
        if known.deprecated is not None and self._at_version(known.deprecated.since) \
                and ("deprecated", m.name) not in once:
            once.add(("deprecated", m.name))
            if any(self._says_deprecated(other.line) for other in self.doc.mentions if other.name == m.name):
                return
            replacement = f"; use {known.deprecated.replacement}" if known.deprecated.replacement else ""
            self.add("deprecated-name", self.mark(m.line, m.col),
                     f"{m.name} ({known.kind}) is deprecated since {known.deprecated.since}{replacement}, "
                     "and the document never says so where it uses it")

    def _says_deprecated(self, line: int) -> bool:
        """Whether the section (or sub-section) around a line says its subject is on the way out."""
        region = self.doc.region_at(line)
        start = region.line if region else 1
        end = self.doc.region_end(line)
        text = " ".join(self.doc.lines[start - 1:end]).lower()
        return any(w in text for w in ("deprecated", "obsolete", "replaced by", "superseded", "no longer",
                                       "legacy", "removed", "dropped", "is gone"))

    def _check_unknown(self, m: Mention) -> None:
        name = m.name
        if not name.startswith(SPEC_NAMESPACES) and (
                any(name.startswith(p) for p, _ in OUTSIDE_PREFIXES) or name in self.spec.prose):
            self.outside.add(name)
            return
        close = self.spec.close(name)
        if not name.startswith(SPEC_NAMESPACES):
            arches = self._context_arches(m.line)
            if arches and not arches & self.spec.described_arches \
                    and not any(self._on(n, arches) for n in self.spec.family(name)):
                # text about architectures whose own header the spec does not describe:
                # only a near miss of a spec name that exists there is a misspelling,
                # or a name of a family the spec has there (KVM_VM_MIPS_*)
                close = [(score, c) for score, c in close if score >= FOREIGN_CLOSE and self._on(c, arches)]
                if not close:
                    self.outside.add(name)
                    return
        self.unknown.add(name)
        what = f"struct {name}" if m.struct else name
        prefix = "struct " if m.struct else ""
        if close and close[0][0] >= CLOSE:
            self.misspelt.setdefault(close[0][1], m)
            others = [prefix + c for _, c in close[1:]]
            hint = f"did you mean {prefix}{close[0][1]}" + (f" (or {', '.join(others)})" if others else "") + "?"
        elif close:
            hint = "the nearest spec names are " + ", ".join(prefix + c for _, c in close)
        else:
            hint = "no spec name is close"
        self.add("unknown-name", self.mark(m.line, m.col), f"{what} is not defined by the spec; {hint}")

    def _on(self, name: str, arches: frozenset[str]) -> bool:
        """Whether the spec has `name` on any of these architectures."""
        known = self.spec.defined.get(name)
        if known is None:
            return self.spec.external_arch.get(name) in arches
        return not known.arch or bool(set(known.arch) & arches)

    def _context_arches(self, line: int) -> Optional[frozenset[str]]:
        """The architectures the text at a line is about: a `[arm64]` note on the line, the
        sub-heading ("For arm64:") or the section's :Architectures:."""
        region = self.doc.region_at(line)
        text = self.doc.lines[line - 1] if 0 < line <= len(self.doc.lines) else ""
        for b in BRACKET_RE.finditer(text):
            words = re.findall(r"[a-z0-9_]+(?:-[a-z0-9]+)?", b.group(1).lower())
            if words and all(w in ARCH_WORDS for w in words):
                return frozenset(ARCH_WORDS[w] for w in words)
        return region.arches if region is not None else None

    # -------------------------------------------------------------- 2. sections

    def _exists(self, item) -> bool:
        if not self._at_version(item.since):
            return False
        if item.removed is None:
            return True
        return self.version is not None and item.removed.since.parts > self.version.parts

    def check_sections(self) -> tuple[list[str], list[str], list[str], list[str], int, int]:
        headed = {n for s in self.doc.sections for n in (*s.names, *s.labels)}
        cap_fields: set[str] = set()
        for s in self.doc.sections:
            f = s.fields.get("Capability")
            if f is not None:
                cap_fields.update(PLAIN_NAME_RE.findall(f.value))
        first: dict[str, Mention] = {}
        for m in self.doc.mentions:
            if not m.prefix and not m.struct:
                first.setdefault(m.name, m)
        result: dict[str, tuple[list[str], list[str], int]] = {}
        for label, items in (("ioctl", self.model.ioctls), ("capability", self.model.capabilities)):
            # __KVM_DEPRECATED_* only reserve the numbers of retired ioctls
            considered = [i for i in items if self._exists(i) and not i.name.startswith("__")]
            missing: list[str] = []
            never: list[str] = []
            for item in considered:
                if item.name in headed or (label == "capability" and item.name in cap_fields):
                    continue
                missing.append(item.name)
                arch = ", ".join(item.arch) if item.arch else "all architectures"
                status = ""
                if item.deprecated is not None and self._at_version(item.deprecated.since):
                    status = f", deprecated since {item.deprecated.since}"
                where = f"{label}, {arch}, since {item.since}{status}"
                mention = first.get(item.name)
                if mention is None:
                    never.append(item.name)
                    typo = self.misspelt.get(item.name)
                    hint = f"; the document's {typo.name} (line {typo.line}) looks like a misspelling of it" \
                        if typo is not None else ": no section documents it"
                    self.add("undocumented", item.mark, f"{item.name} ({where}) is never mentioned in {self.path}{hint}")
                else:
                    region = self.doc.region_at(mention.line)
                    inside = f" (in {region.section.title})" if region and region.section else ""
                    self.add("no-section", self.mark(mention.line, mention.col),
                             f"{item.name} ({where}) has no section of its own; the document only mentions "
                             f"it in passing, first here{inside}")
            result[label] = (missing, never, len(considered))
        (mi, ni, ci), (mc, nc, cc) = result["ioctl"], result["capability"]
        return mi, mc, ni, nc, ci, cc

    # -------------------------------------------------------------- 3. fields

    def _resolve(self, name: str) -> Optional[str]:
        """The spec name a document name stands for: itself, or the spec name it misspells."""
        if name in self.spec.defined or name in self.spec.external:
            return name
        close = self.spec.close(name)
        if close and close[0][0] >= CLOSE:
            return close[0][1]
        return None

    def check_fields(self) -> None:
        for s in self.doc.sections:
            resolved = [self._resolve(n) for n in s.names]
            items = [self.model.by_name[n] for n in resolved if n is not None and n in self.model.by_name]
            ioctls = [i for i in items if isinstance(i, Ioctl)]
            caps = [i for i in items if isinstance(i, Capability)]
            if ioctls:
                self._check_capability(s, ioctls)
                self._check_arches(s, ioctls)
                self._check_type(s, ioctls)
                self._check_parameters(s, ioctls)
            elif caps:
                self._check_arches(s, caps)
                self._check_cap_target(s, caps)

    def _disagree(self, kind: str, f: DocField, message: str) -> None:
        self.field_disagreements += 1
        self.add(kind, self.mark(f.line, f.col), message)

    @staticmethod
    def _names(items) -> str:
        return " / ".join(i.name for i in items)

    def _check_capability(self, s: Section, ioctls: list[Ioctl]) -> None:
        f = s.fields.get("Capability")
        if f is None:
            return
        words = re.findall(r"[a-z]+", f.value.lower())
        doc: set[str] = set()
        if "basic" in words or (words[:1] == ["none"]):
            doc.add("basic")
        for n in PLAIN_NAME_RE.findall(f.value):
            if n.startswith("KVM_CAP_"):
                r = self._resolve(n)
                if r is not None:
                    doc.add(r)
        if not doc:
            return
        spec: set[str] = set()
        for i in ioctls:
            spec.add(i.capability.name if i.capability else "basic")
            for sc in i.scopes:
                if sc.capability is not None:
                    spec.add(sc.capability.name)
        if doc & spec:
            return
        said = ", ".join(sorted(doc))
        wanted = " or ".join(sorted(spec))
        self._disagree("capability-mismatch", f,
                       f"{s.number} {self._names(ioctls)}: :Capability: says {said}; the spec gates it with {wanted}"
                       if spec != {"basic"} else
                       f"{s.number} {self._names(ioctls)}: :Capability: says {said}; the spec has it as basic "
                       "(no capability needed)")

    def _existing_arches(self, arches: Iterable[str]) -> frozenset[str]:
        """Leave out architectures that KVM did not support yet at the document's version."""
        if self.version is None:
            return frozenset(arches)
        return frozenset(a for a in arches if self.version.parts >= ARCH_SINCE.get(a, (0,)))

    def _check_arches(self, s: Section, items) -> None:
        f = s.fields.get("Architectures")
        if f is None or s.arches is None:
            return
        doc = self._existing_arches(s.arches)
        spec = self._existing_arches(a for i in items for a in (i.arch or self.spec.arches))
        # An ioctl whose argument is a struct of the architecture's own asm/kvm.h
        # (struct kvm_regs, kvm_sregs, kvm_vcpu_events, ...) exists under the same
        # name on architectures whose header the spec does not describe; the spec
        # only speaks for the ones it describes.
        per_arch = any(isinstance(i, Ioctl) and _arg_record_header(i) not in (None, "linux") for i in items)
        judged = spec | (frozenset(self.spec.arches) - self.spec.described_arches if per_arch else frozenset())
        extra, omitted = sorted(doc - judged), sorted(spec - doc)
        spec_text = ", ".join(sorted(spec)) or "none"
        if extra:
            self._disagree("arch-mismatch", f,
                           f"{s.number} {self._names(items)}: :Architectures: lists {', '.join(extra)}, where the "
                           f"spec does not have it (spec: {spec_text})")
        elif omitted:
            self._disagree("arch-omitted", f,
                           f"{s.number} {self._names(items)}: :Architectures: leaves out {', '.join(omitted)} "
                           f"(spec: {spec_text})")

    def _check_type(self, s: Section, ioctls: list[Ioctl]) -> None:
        f = s.fields.get("Type")
        if f is None:
            return
        doc = parse_scopes(f.value)
        if not doc:
            return
        every = {sc.scope for i in ioctls for sc in i.scopes}
        always = {sc.scope for i in ioctls for sc in i.scopes if sc.capability is None}
        extra, omitted = sorted(doc - every), sorted(always - doc)
        spec_text = ", ".join(self._scope_text(i) for i in ioctls)
        if extra:
            self._disagree("type-mismatch", f,
                           f"{s.number} {self._names(ioctls)}: :Type: says {', '.join(extra)} ioctl; the spec "
                           f"issues it on {spec_text}")
        elif omitted:
            self._disagree("type-omitted", f,
                           f"{s.number} {self._names(ioctls)}: :Type: leaves out {', '.join(omitted)} (the spec "
                           f"issues it on {spec_text})")

    @staticmethod
    def _scope_text(i: Ioctl) -> str:
        return ", ".join(sc.scope + (f" (with {sc.capability.name})" if sc.capability else "") for sc in i.scopes)

    def _check_cap_target(self, s: Section, caps: list[Capability]) -> None:
        for label in ("Target", "Type"):
            f = s.fields.get(label)
            if f is None:
                continue
            doc = parse_scopes(f.value)
            if not doc:
                continue
            if label == "Target":
                spec = {c.enable_scope for c in caps if c.enable_scope}
                if not spec:
                    self._disagree("type-mismatch", f,
                                   f"{s.number} {self._names(caps)}: :Target: says {', '.join(sorted(doc))}; the "
                                   "spec has no KVM_ENABLE_CAP for it (not opt-in)")
                elif not doc & spec:
                    self._disagree("type-mismatch", f,
                                   f"{s.number} {self._names(caps)}: :Target: says {', '.join(sorted(doc))}; the "
                                   f"spec enables it on {', '.join(sorted(spec))}")
            else:
                spec = {sc for c in caps for sc in (*c.check, c.enable_scope) if sc}
                if spec and not doc & spec:
                    self._disagree("type-mismatch", f,
                                   f"{s.number} {self._names(caps)}: :Type: says {', '.join(sorted(doc))}; the spec "
                                   f"checks or enables it on {', '.join(sorted(spec))}")

    def _check_parameters(self, s: Section, ioctls: list[Ioctl]) -> None:
        f = s.fields.get("Parameters")
        if f is None:
            return
        value = f.value.strip()
        doc_none = re.fullmatch(r"(?i)none\W*", value) is not None
        sm = re.search(r"\b(?:struct|union)\s+([a-z_][a-z0-9_]*)\s*(\(([^)]*)\))?", value)
        if not doc_none and sm is None:
            return            # prose or a plain integer: nothing to compare reliably
        doc_struct = self._resolve(sm.group(1)) if sm else None
        if sm and doc_struct is None:
            doc_struct = sm.group(1)
        doc_flow = _flow(sm.group(3)) if sm and sm.group(3) else None
        problems: list[str] = []
        directions: list[str] = []
        for i in ioctls:
            spec_struct = _arg_struct(i)
            if doc_none:
                if i.arg_pass == "none":
                    return
                problems.append(f"{i.name} takes {_arg_text(i)}")
            elif spec_struct is None or spec_struct != doc_struct:
                problems.append(f"{i.name} takes {_arg_text(i)}")
            elif doc_flow in ("in", "out") and i.arg_flow in ("in", "out") and doc_flow != i.arg_flow:
                directions.append(f"{i.name} takes {_arg_text(i)}")
            else:
                return        # one ioctl of the section agrees (in/out against in or out is a matter of detail)
        if directions:
            self._disagree("direction-mismatch", f,
                           f"{s.number} {self._names(ioctls)}: :Parameters: says {value}; the spec says "
                           + "; ".join(directions) + " (the kernel may still read or write memory that the "
                           "struct points to)")
        elif problems:
            self._disagree("parameters-mismatch", f,
                           f"{s.number} {self._names(ioctls)}: :Parameters: says {value}; the spec says "
                           + "; ".join(problems))


FLOW_TEXT = {"in": "in", "out": "out", "inout": "in/out"}


def _flow(text: str) -> Optional[str]:
    words = set(re.findall(r"[a-z]+", text.lower()))
    if "inout" in words or {"in", "out"} <= words:
        return "inout"
    if "in" in words:
        return "in"
    if "out" in words:
        return "out"
    return None


def _arg_record_header(i: Ioctl) -> Optional[str]:
    record = i.arg_record or i.type_record
    return record.header if record is not None and i.arg_pass == "pointer" else None


def _arg_struct(i: Ioctl) -> Optional[str]:
    if i.arg_pass != "pointer":
        return None
    if i.arg_record is not None:
        return i.arg_record.name
    if i.arg_scalar is not None:
        return None
    if i.type_record is not None:
        return i.type_record.name
    if i.type_external is not None:
        return i.type_external.name.split()[-1]
    return None


def _arg_text(i: Ioctl) -> str:
    if i.arg_pass == "none":
        return "no argument"
    if i.arg_pass == "value":
        return "an integer argument"
    flow = f" ({FLOW_TEXT[i.arg_flow]})" if i.arg_flow else ""
    struct = _arg_struct(i)
    if struct is not None:
        record = i.arg_record or i.type_record
        kind = record.kind if record is not None else "struct"
        return f"{kind} {struct}{flow}"
    scalar = i.arg_scalar.name if i.arg_scalar is not None else (i.type_text or "a pointer")
    return f"a pointer to {scalar}{flow}"
