"""The model: what the spec says, resolved and computed, ready for generators.

Every object is frozen. References are resolved to objects, expressions to
numbers, records to layouts (per ABI) and ioctls to their encoded numbers
(per ABI). Generators read only this; none of them re-reads YAML or
recomputes a layout.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator, Mapping, Optional, Union

from .diagnostics import Mark
from .layout import ABI_INDEX, ABIS, NATIVE, Abi, Layout, Scalar
from .valuetype import field, value_type

# ------------------------------------------------------------------ basics


_VERSIONS: dict = {}   # Version.parse's: text -> Version
# What the schema's `version` definition accepts as a release (a test holds the two
# to the same text): the build checks releases without reading the schema.
VERSION_PATTERN = r"^(2\.6\.[0-9]+|[3-9]\.[0-9]+|[1-9][0-9]\.[0-9]+)$"


# The text of each release, by its parts (Version.release): made once.
_RELEASE_TEXTS: dict[tuple[int, ...], str] = {}


@value_type(order=True)
class Version:
    """A mainline kernel release ("6.1", "2.6.32")."""

    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> "Version":
        version = _VERSIONS.get(text)   # a few dozen releases, written thousands of times
        if version is None:
            version = _VERSIONS[text] = cls(tuple(int(p) for p in text.split(".")))
        return version

    @property
    def release(self) -> str:
        text = _RELEASE_TEXTS.get(self.parts)   # outputs print a few dozen releases thousands of times
        if text is None:
            text = _RELEASE_TEXTS[self.parts] = ".".join(map(str, self.parts))
        return text

    def __str__(self) -> str:
        return self.release


def _native(values: tuple) -> Any:
    """A per-ABI value as x86_64 has it, or as the first ABI that has it."""
    value = values[_NATIVE_INDEX]
    if value is None:
        value = next((v for v in values if v is not None), None)
    return value


_NATIVE_INDEX = ABIS.index(NATIVE)


def _add(a: tuple, b: tuple) -> tuple:
    """Per-ABI offsets added up; None where either has none."""
    return tuple(x + y if x is not None and y is not None else None for x, y in zip(a, b))


@value_type
class Lifecycle:
    since: Version
    doc: str
    replacement: Optional[str] = None
    moved_to: Optional[str] = None   # removed from these headers because it moved to another one


@value_type
class AbiException:
    """A break of a compatibility rule that the kernel shipped anyway, and why."""

    rule: str                        # a kvmspec.compat rule id
    releases: tuple[Version, ...]    # the release(s) that shipped it
    reason: str
    mark: Mark = field(compare=False)
    implementations: tuple[str, ...] = ()   # empty: every implementation
    abis: tuple[str, ...] = ()              # layout breaks: the ABIs concerned (empty: every ABI)

    def covers(self, rule: str, release: Optional[Version] = None, implementation: str = "") -> bool:
        return rule == self.rule and \
            (release is None or any(release.parts == r.parts for r in self.releases)) and \
            (not implementation or not self.implementations or implementation in self.implementations)


@value_type
class Move:
    """The item was defined by `header` in the releases before `until`."""

    header: str
    until: Version
    c_guard: Optional["Guard"] = None     # the #ifdef it had there
    guard_on: tuple[str, ...] = ()        # architectures on which that #ifdef held


@value_type
class HeaderDefect:
    """A release range in which the kernel's own uapi header spelled a value so that userspace
    cannot compile it (a kernel-internal macro such as BIT() leaked into the header). The
    value itself is unchanged; diff-header reports the tree's failing line as this known
    defect instead of a finding."""

    since: Version
    until: Version
    wrote: str                       # the kernel's text of the value then
    reason: str
    mark: Mark = field(compare=False)

    def covers(self, release: Version) -> bool:
        return between(self.since, self.until, release)


@value_type
class PastValue:
    """The value (as written) a constant or named value had before `until`."""

    until: Version
    expr: str


@value_type
class PastField:
    """What differed about a field before `until` (None: the same as after)."""

    until: Version
    name: Optional[str] = None
    type: Optional[str] = None
    array: Optional[str] = None
    reserved: bool = False           # it was reserved bytes then (a field carved out of them later)


@value_type
class Guard:
    """`#ifdef NAME` (or `#ifndef NAME` when negated) around a definition."""

    name: str
    negated: bool = False

    @classmethod
    def parse(cls, text: str) -> "Guard":
        return cls(text.lstrip("!"), text.startswith("!"))

    @property
    def directive(self) -> str:
        return "#ifndef" if self.negated else "#ifdef"

    def __str__(self) -> str:
        return ("!" if self.negated else "") + self.name


@value_type
class ExternalMacro:
    """A macro that other architectures' headers define; never defined for x86."""

    name: str
    doc: str


@value_type
class ExternalType:
    """A struct that only another architecture's header defines; known by its size."""

    name: str             # "struct kvm_vcpu_init"
    size: int
    arch: str
    doc: str


@value_type
class Architecture:
    name: str
    doc: str
    implementations: tuple["Implementation", ...]


@value_type
class Implementation:
    name: str
    arch: str
    doc: str


@value_type
class OutlineEntry:
    """One name in a header's outline: an item, or a value of a flag set or
    enum defined value by value; with a release range when the name sat here
    only for a while (before it moved to another header, or after it came)."""

    name: str
    mark: Mark = field(compare=False)
    since: Optional[Version] = None      # here from this release on
    until: Optional[Version] = None      # here before this release only
    # defined inside a record's body: "kvm_run" (before the member holding the
    # value's set) or "kvm_xen_hvm_attr.u.shared_info.hva" (before that member)
    within: Optional[str] = None

    def placed_at(self, release: Optional[Version]) -> bool:
        """Whether the name sits here at a release (None: the newest one)."""
        return between(self.since, self.until, release)


@value_type
class OutlineSection:
    """A run of definitions printed without blank lines between them, after an
    optional one-line comment."""

    comment: str
    entries: tuple[OutlineEntry, ...]


@value_type
class IncludeRange:
    """A header an uapi header includes, in the releases it did (since/until None: always)."""

    name: str
    since: Optional[Version] = None
    until: Optional[Version] = None

    def at(self, release: Optional[Version]) -> bool:
        return between(self.since, self.until, release)


@value_type
class COnly:
    """The part of a header only C reads (#ifndef __ASSEMBLER__): from the section after
    `after` (None: the whole header) to the end; the includes open it."""

    macro: str
    after: Optional[str] = None
    history: tuple[tuple[Version, str], ...] = ()     # (until, macro) of earlier releases
    mark: Optional[Mark] = field(default=None, compare=False)   # of `after`, or of c_only

    def macro_at(self, release: Optional[Version]) -> str:
        return next((m for until, m in self.history if release is not None and release < until), self.macro)


@value_type
class Header:
    name: str
    path: str            # relative to generated/, e.g. include/uapi/linux/kvm.h
    guard: str
    doc: str
    includes: tuple[str, ...]
    arch: Optional[str] = None
    mark: Optional[Mark] = field(default=None, compare=False)   # of its entry in the manifest
    emit: bool = True    # False: another uapi header kvmspec describes but does not write
    outline: tuple[OutlineSection, ...] = ()   # the kernel's order of definitions; () for spec order
    outline_file: str = ""                      # where the outline is written, e.g. spec/outline/linux.yaml
    include_ranges: tuple[IncludeRange, ...] = ()   # includes with the releases they were in (() : includes)
    c_only: Optional[COnly] = None              # the #ifndef __ASSEMBLER__ part, from the outline

    def includes_at(self, release: Optional[Version]) -> tuple[str, ...]:
        """The headers it includes at a release (None: the newest), in order."""
        if not self.include_ranges:
            return self.includes
        return tuple(r.name for r in self.include_ranges if r.at(release))

    @property
    def include_name(self) -> str:
        """How C code includes it: asm/kvm.h for arch/x86/include/uapi/asm/kvm.h."""
        return self.path.split("include/uapi/", 1)[-1]


@value_type
class SpecFile:
    path: str            # as shown to users, e.g. spec/x86/nested-state.yaml
    title: str
    doc: str
    header: str


@value_type
class Item:
    """Fields every definition has."""

    name: str
    doc: str
    since: Version
    arch: tuple[str, ...]            # empty means every architecture
    header: str
    file: SpecFile
    mark: Mark = field(compare=False)
    implementations: tuple[str, ...] = ()
    deprecated: Optional[Lifecycle] = None
    removed: Optional[Lifecycle] = None
    c_guard: Optional[Guard] = None
    active: bool = True              # x86 userspace sees it (in active_on)
    active_on: tuple[str, ...] = ()  # architectures whose headers define it (its guard holds)
    abi_exceptions: tuple[AbiException, ...] = ()
    moves: tuple[Move, ...] = ()     # earlier headers, oldest first
    guard_on: tuple[str, ...] = ()   # architectures on which its c_guard holds (whatever its header)
    arch_since: tuple[tuple[str, Version], ...] = ()   # architectures that gained it after `since`

    kind = "item"

    def since_on(self, arch: str) -> Optional[Version]:
        """The first release in which architecture `arch` has the item (None: never)."""
        return since_on(self.arch, self.arch_since, self.since, arch)

    def header_at(self, release: Optional[Version]) -> str:
        """The header that defined the item in `release` (None: the newest; the first,
        if several did)."""
        return self.headers_at(release)[0]

    def headers_at(self, release: Optional[Version]) -> tuple[str, ...]:
        """Every header that defined the item in `release` (None: the newest): moves with
        the same `until` say that several architectures' headers defined it alike
        (__KVM_HAVE_GUEST_DEBUG in the asm/kvm.h of each architecture with guest
        debugging, until 6.9)."""
        for move in self.moves:
            if release is not None and release < move.until:
                return tuple(m.header for m in self.moves if m.until == move.until)
        return (self.header,)

    def move_at(self, release: Optional[Version]) -> Optional["Move"]:
        """The earlier home the item had in `release`, if it was elsewhere then."""
        for move in self.moves:
            if release is not None and release < move.until:
                return move
        return None

    def exists_at(self, release: Optional[Version]) -> bool:
        """Whether the headers of a release define it (None: the newest view)."""
        return exists_at(self.since, self.removed, release)

    @property
    def emitted(self) -> bool:
        """Whether the item appears in headers (removed ones do not)."""
        return self.removed is None

    @property
    def present(self) -> bool:
        """Whether x86 userspace sees the definition (emitted, and its guard holds)."""
        return self.removed is None and self.active

    def present_on(self, arch: str) -> bool:
        """Whether userspace of `arch` sees the definition."""
        return self.removed is None and arch in self.active_on


def since_on(arch_list: tuple[str, ...], arch_since: tuple[tuple[str, Version], ...], since: Version,
             arch: str) -> Optional[Version]:
    """The first release in which architecture `arch` had something whose arch: list is
    `arch_list` (empty: every architecture), with later releases for some architectures in
    `arch_since`, and which exists from `since` (None: `arch` never has it)."""
    if arch_list and arch not in arch_list:
        return None
    return next((r for a, r in arch_since if a == arch), since)


def exists_at(since: Optional[Version], removed: Optional[Lifecycle], release: Optional[Version]) -> bool:
    """Whether something added in `since` and perhaps removed is there at a release
    (None: the newest view, where only removal counts)."""
    return between(since, removed.since if removed is not None else None, release)


def between(since: Optional[Version], until: Optional[Version], release: Optional[Version]) -> bool:
    """Whether `release` is from `since` on and before `until` (either None: no bound).
    Release None is the newest view, where only an end counts."""
    if release is None:
        return until is None
    return (since is None or since.parts <= release.parts) and (until is None or release.parts < until.parts)


# ------------------------------------------------------------------ values


@value_type
class Constant(Item):
    expr: str = ""                   # as written in the spec
    values: tuple[Optional[int], ...] = ()     # per ABI, in ABIS order; None where not defined
    history: tuple[PastValue, ...] = ()        # earlier values, oldest first
    header_defects: tuple[HeaderDefect, ...] = ()   # releases whose kernel header did not compile it

    kind = "const"

    def expr_at(self, release: Version) -> str:
        return next((h.expr for h in self.history if release < h.until), self.expr)

    @property
    def value(self) -> int:
        return _native(self.values)


@value_type
class FunctionMacro(Item):
    params: tuple[str, ...] = ()
    body: str = ""

    kind = "macro"


@value_type
class NamedValue:
    """One member of an enum or flag set."""

    name: str
    expr: str
    values: tuple[int, ...]          # per ABI
    doc: str
    since: Version
    mark: Mark = field(compare=False)          # of the name
    value_mark: Mark = field(compare=False)    # of the value
    implementations: tuple[str, ...] = ()
    arch: tuple[str, ...] = ()
    deprecated: Optional[Lifecycle] = None
    removed: Optional[Lifecycle] = None
    alias: bool = False
    mask: bool = False
    c_define: bool = True            # C enum values: also #define NAME NAME (with c_define_values)
    c_explicit: bool = False         # C enum values: written out (= 0) though C would give it anyway
    abi_exceptions: tuple[AbiException, ...] = ()
    history: tuple[PastValue, ...] = ()
    arch_since: tuple[tuple[str, Version], ...] = ()   # architectures that gained it after `since`
    header_defects: tuple[HeaderDefect, ...] = ()   # releases whose kernel header did not compile it

    def since_on(self, arch: str) -> Optional[Version]:
        """The first release in which architecture `arch` has the value by its own arch: list
        (None: never); View.has also weighs its set's."""
        return since_on(self.arch, self.arch_since, self.since, arch)

    def expr_at(self, release: Optional[Version]) -> str:
        return next((h.expr for h in self.history if release is not None and release < h.until), self.expr)

    def exists_at(self, release: Optional[Version]) -> bool:
        return exists_at(self.since, self.removed, release)

    @property
    def value(self) -> int:
        return _native(self.values)

    @property
    def bits(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.value.bit_length()) if self.value >> i & 1) \
            if self.value >= 0 else ()


@value_type
class ValueSet(Item):
    type: Scalar = None  # type: ignore[assignment]
    values: tuple[NamedValue, ...] = ()
    c_style: str = "define"          # define | enum | anonymous_enum (flag sets: define)
    c_define_values: bool = False    # C enum whose values are also #defined to themselves
    defines_until: Optional[Version] = None   # a C enum only from this release; #defines before

    def value_named(self, name: str) -> Optional[NamedValue]:
        return next((v for v in self.values if v.name == name), None)


@value_type
class Enum(ValueSet):
    kind = "enum"


@value_type
class FlagSet(ValueSet):
    kind = "flags"

    @property
    def mask(self) -> int:
        m = 0
        for v in self.values:
            if v.removed is None and v.value > 0:
                m |= v.value
        return m


# ------------------------------------------------------------------ records


@value_type
class Field:
    name: Optional[str]              # None for an anonymous struct/union member
    doc: str
    mark: Mark = field(compare=False)
    scalar: Optional[Scalar] = None  # exactly one of scalar / record is set
    record: Optional["Record"] = None
    dims: tuple[int, ...] = ()       # array dimensions; () for a plain member
    dims_text: tuple[str, ...] = ()  # as written (numbers or constant names)
    flexible: bool = False           # C99 flexible array member
    bits: int = 0                    # bit-field width
    flag_sets: tuple[FlagSet, ...] = ()   # e.g. generic and x86 KVM_GUESTDBG_* bits in one field
    enum: Optional[Enum] = None
    reserved: bool = False
    since: Optional[Version] = None
    deprecated: Optional[Lifecycle] = None
    c_guard: Optional[Guard] = None
    active: bool = True              # inactive fields (guard false on x86) take no space
    c_comment: str = ""              # a short label the header prints above the member ("in", "KVM_EXIT_IO")
    c_join: bool = False             # declared on the line of the field before it (`__u64 rax, rbx;`)
    c_defines_type: bool = False     # the header defines its struct type in the declaration (`struct t {...} m;`)
    counted_by: Optional[str] = None # array: the sibling field holding its element count (in use)
    buffer_name: Optional[str] = None   # an offset of data elsewhere in the mapping, shown as this name
    buffer_bytes: Optional[str] = None  # ... whose length is this C expression over sibling fields
    valid_with: Optional[str] = None # the flag bit that says whether the field holds a value
    offsets: tuple[Optional[int], ...] = ()    # per ABI, byte offset in the enclosing record
    bit_offsets: tuple[Optional[int], ...] = ()
    active_on: tuple[str, ...] = ()  # architectures whose headers have the field (its guard holds)
    records: tuple[Optional["Record"], ...] = ()   # per ABI, when its type is each architecture's own
    until: Optional[Version] = None  # dropped in this release
    history: tuple[PastField, ...] = ()

    def exists_at(self, release: Optional[Version]) -> bool:
        """Whether the field was in the record in `release` (None: the newest view)."""
        return between(self.since, self.until, release)

    def past(self, release: Optional[Version]) -> Optional[PastField]:
        """How the field differed in `release`, if it did."""
        return next((h for h in self.history if release is not None and release < h.until), None)

    def record_at(self, abi: Abi) -> Optional["Record"]:
        """The member's record type as `abi` has it (struct kvm_sync_regs differs per architecture)."""
        return self.records[ABI_INDEX[abi.name]] if self.records else self.record

    @property
    def flags(self) -> Optional[FlagSet]:
        """The field's flag set (the first one, when it holds bits of several)."""
        return self.flag_sets[0] if self.flag_sets else None

    @property
    def value_sets(self) -> tuple["ValueSet", ...]:
        return self.flag_sets + ((self.enum,) if self.enum is not None else ())

    def value_set_of(self, name: str) -> Optional["ValueSet"]:
        """The flag set or enum of this field that has a value called `name`."""
        return next((vs for vs in self.value_sets if vs.value_named(name) is not None), None)

    @property
    def count(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return 0 if self.flexible else n

    @property
    def is_array(self) -> bool:
        return bool(self.dims) or self.flexible

    def offset(self, abi: Abi = NATIVE) -> int:
        return self.offsets[ABI_INDEX[abi.name]]   # type: ignore[return-value]

    def element_size(self, abi: Abi = NATIVE) -> int:
        if self.scalar is not None:
            return self.scalar.size(abi)
        record = self.record_at(abi)
        assert record is not None
        return record.size(abi)

    def size(self, abi: Abi = NATIVE) -> int:
        return self.element_size(abi) * self.count


@value_type
class Record(Item):
    """A struct or union; anonymous inline records have name ''."""

    is_union: bool = False
    fields: tuple[Field, ...] = ()
    layouts: tuple[Optional[Layout], ...] = ()      # per ABI; None where a member's type is undefined
    exemption: Optional[str] = None        # reason it may break the 64-bit-clean rules
    inline: bool = False                   # defined inside another record

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "union" if self.is_union else "struct"

    @property
    def c_type(self) -> str:
        return f"{self.kind} {self.name}" if self.name else self.kind

    def layout(self, abi: Abi = NATIVE) -> Layout:
        layout = self.layouts[ABI_INDEX[abi.name]]
        assert layout is not None, f"{self.c_type} has no layout on {abi.name}"
        return layout

    def has_layout(self, abi: Abi) -> bool:
        return self.layouts[ABI_INDEX[abi.name]] is not None

    def size(self, abi: Abi = NATIVE) -> int:
        return self.layout(abi).size

    def align(self, abi: Abi = NATIVE) -> int:
        return self.layout(abi).align

    @property
    def abis_seen(self) -> tuple[Abi, ...]:
        """The ABIs whose userspace sees the record, laid out."""
        return tuple(abi for abi, l in zip(ABIS, self.layouts)
                     if l is not None and (not self.active_on or abi.arch in self.active_on))

    @property
    def same_on_all_abis(self) -> bool:
        """Same size and offsets on every ABI of each architecture (alignment may differ:
        __u64 aligns to 4 on i386). Architectures differ on purpose (#ifdef members)."""
        by_arch: dict[str, list[Layout]] = {}
        for abi in self.abis_seen:
            by_arch.setdefault(abi.arch, []).append(self.layout(abi))
        return all(l.size == laid[0].size and
                   [p.bit_offset for p in l.placements] == [p.bit_offset for p in laid[0].placements]
                   for laid in by_arch.values() for l in laid[1:]) and \
            all(f.record.same_on_all_abis for f in self.members if f.record is not None and f.record.inline)

    @functools.cached_property
    def members(self) -> tuple[Field, ...]:
        """The fields x86 userspace sees (those whose guard holds)."""
        return tuple(f for f in self.fields if f.active)

    def records_within(self, every_field: bool = False) -> Iterator["Record"]:
        """This record, then the inline records of its fields, depth first:
        those of the fields x86 userspace sees, or with every_field of all."""
        yield self
        for f in self.fields if every_field else self.members:
            if f.record is not None and f.record.inline:
                yield from f.record.records_within(every_field)

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Field, tuple[int, ...]]]:
        """Every active field, depth first, with its dotted path and offsets from this record."""
        if not prefix:
            return iter(self._walked)
        top = prefix.rstrip(".")   # the path of an unnamed member
        return ((prefix + path if path else top, f, offsets) for path, f, offsets in self._walked)

    @functools.cached_property
    def _walked(self) -> tuple[tuple[str, Field, tuple[int, ...]], ...]:
        """walk() without a prefix, worked out once: the checks, the tests and the
        documentation walk the same records many times."""
        out = []
        for f in self.members:
            path = f.name or ""
            out.append((path, f, f.offsets))
            if f.record is not None and f.record.inline:
                # members of an array of inline records are named through element 0
                inner = f"{path}{'[0]' if f.is_array else ''}." if path else ""
                offsets = f.offsets
                for sub_path, sub, sub_offsets in f.record.walk(inner):
                    out.append((sub_path, sub, _add(offsets, sub_offsets)))
        return tuple(out)

    def deep_walk(self, prefix: str = "", base: tuple[int, ...] = ()) -> Iterator[tuple[str, Field, tuple[int, ...]]]:
        """Like walk(), but also through members whose type is another named record (not arrays)."""
        base = base or tuple(0 for _ in self.layouts)
        for path, f, offsets in self.walk(prefix):
            absolute = _add(base, offsets)
            yield path, f, absolute
            if f.record is not None and not f.record.inline and not f.is_array and f.name:
                yield from f.record.deep_walk(f"{path}.", absolute)

    def field_at(self, path: str) -> Optional[Field]:
        """The field named by a dotted path (through named and anonymous members)."""
        for p, f, _ in self.walk():
            if p == path and f.name:
                return f
        # descend into members of named record types, e.g. hdr.vmx.flags
        head, _, rest = path.partition(".")
        for f in self.members:
            if f.name is None and f.record is not None:
                found = f.record.field_at(path)
                if found is not None:
                    return found
            elif f.name == head and rest and f.record is not None:
                return f.record.field_at(rest)
        return None


# ------------------------------------------------------------------ ioctls


@value_type
class Scope:
    scope: str                        # system | vm | vcpu | device
    capability: Optional["Capability"] = None


@value_type
class ErrorCase:
    errno: str
    doc: str
    implementations: tuple[str, ...] = ()


VERDICT_KINDS = ("unknown_bits", "foreign_bits", "unknown_values", "foreign_values", "nonzero")


@value_type
class Validation:
    """What the kernel does with bad input in one field of the argument."""

    path: str
    field: Field
    mark: Mark = field(compare=False)
    doc: str = ""
    # verdict kind -> ((where, verdict), ...); where is "" (everywhere), an
    # implementation or an architecture
    verdicts: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    since: Optional[Version] = None  # first release making the checks (None: as old as ioctl and field)

    def verdict(self, kind: str, implementation: str = "", arch: str = "") -> Optional[str]:
        for k, entries in self.verdicts:
            if k == kind:
                table = dict(entries)
                for key in (implementation, arch, ""):
                    if key in table:
                        return table[key]
        return None


@value_type
class Emission:
    """Values the kernel itself writes into one output field."""

    path: str
    field: Field
    values: tuple[NamedValue, ...]
    mark: Mark = field(compare=False)
    implementations: tuple[str, ...] = ()
    requires: Optional["Capability"] = None
    since: Optional[Version] = None  # first release emitting them (None: as old as ioctl and value)


@value_type
class Example:
    """A valid call of an ioctl (see `example:` in the spec language)."""

    scope: Optional[str]
    setup: tuple[str, ...]
    fields: tuple[tuple[str, object], ...]   # path -> int or "$eventfd" / "$memory"


@value_type
class Ioctl(Item):
    nr: int = 0
    dir: str = "none"                       # encoded direction: none | r | w | rw
    type_text: Optional[str] = None          # the encoded type as written
    type_scalar: Optional[Scalar] = None
    type_record: Optional[Record] = None
    type_external: Optional[ExternalType] = None
    numbers: tuple[Optional[int], ...] = ()  # per ABI; None where the type is not defined
    type_records: tuple[Optional[Record], ...] = ()   # per ABI, when each architecture has its own type
    same_number_as: Optional[str] = None
    scopes: tuple[Scope, ...] = ()
    capability: Optional["Capability"] = None  # None means basic
    arg_pass: str = "none"                   # none | value | pointer
    arg_flow: Optional[str] = None           # in | out | inout
    arg_record: Optional[Record] = None      # the real argument type when a record
    arg_scalar: Optional[Scalar] = None
    arg_doc: str = ""
    arg_name: str = "value"                  # for plain-integer arguments
    arg_default: Optional[int] = None
    arg_size_from: Optional["Capability"] = None   # whose answer is the buffer's size in bytes
    arg_fills: Optional[str] = None          # count field of the flexible array the kernel fills (E2BIG: grow)
    arg_partial: Optional[str] = None        # count field of the flexible array; returns how many were handled
    creates: Optional[str] = None            # vm | vcpu | device | fd: a new file descriptor
    creates_field: Optional[str] = None      # ... returned in this field of the argument
    example: Optional[Example] = None
    returns: str = ""
    errors: tuple[ErrorCase, ...] = ()
    validations: tuple[Validation, ...] = ()
    emissions: tuple[Emission, ...] = ()
    restores: Optional[str] = None           # name of the save ioctl this one consumes
    restored_by: Optional[str] = None

    kind = "ioctl"

    @property
    def present(self) -> bool:
        """An ioctl on another architecture's struct cannot be expanded by x86 code."""
        return super().present and self.type_external is None and \
            (not self.numbers or self.numbers[_NATIVE_INDEX] is not None)

    @property
    def number(self) -> int:
        return _native(self.numbers)

    def number_on(self, abi: Abi) -> Optional[int]:
        return self.numbers[ABI_INDEX[abi.name]] if self.numbers else None

    @property
    def c_macro(self) -> str:
        from .layout import IOC_MACROS
        return IOC_MACROS[self.dir]

    @property
    def encoding_disagrees(self) -> bool:
        """The encoded direction says something other than the real data flow."""
        if self.arg_pass != "pointer":
            return self.dir != "none" and self.arg_pass == "none"
        expected = {"w": "in", "r": "out", "rw": "inout"}.get(self.dir)
        return expected != self.arg_flow


# ------------------------------------------------------------------ capabilities


@value_type
class EnableArg:
    index: int
    doc: str
    flags: Optional[FlagSet] = None
    enum: Optional[Enum] = None


@value_type
class Capability(Item):
    value: int = 0
    check: tuple[str, ...] = ()
    answer_kind: str = "boolean"
    answer_doc: str = ""
    answer_flags: Optional[FlagSet] = None
    enable_scope: Optional[str] = None       # vm | vcpu when opt-in with KVM_ENABLE_CAP
    enable_args: tuple[EnableArg, ...] = ()
    enable_doc: str = ""

    kind = "capability"

    @property
    def opt_in(self) -> bool:
        return self.enable_scope is not None


@value_type
class ExitReason(Item):
    value: int = 0
    member: Optional[str] = None
    requires: Optional["Capability"] = None   # reported only after this capability was enabled

    kind = "exit"


Definition = Union[Constant, FunctionMacro, Enum, FlagSet, Record, Ioctl, Capability, ExitReason]


# ------------------------------------------------------------------ the whole spec


@value_type
class DocSection:
    """A numbered section of a document layout: the ioctls or capabilities it
    describes (`names`), or a text of our own (`text`, a template name)."""
    number: str
    title: str
    names: tuple[str, ...] = ()
    text: Optional[str] = None
    also: tuple[str, ...] = ()        # records and value sets listed in full besides the items'
    constants: tuple[str, ...] = ()   # prefixes of constants the section tabulates

    @property
    def heading(self) -> str:
        return f"{self.number} {self.title}"


@value_type
class DocChapter:
    number: str
    title: str
    text: Optional[str] = None
    holds: Optional[str] = None       # ioctl | vcpu-capability | vm-capability | capability
    sections: tuple[DocSection, ...] = ()

    @property
    def heading(self) -> str:
        return f"{self.number} {self.title}"


@value_type
class DocLayout:
    """The chapters and sections of the kernel's api.rst at one release."""
    document: str
    release: Version
    chapters: tuple[DocChapter, ...]
    path: str = ""


@value_type
class Model:
    title: str
    architectures: tuple[Architecture, ...]
    external_macros: tuple[ExternalMacro, ...]
    external_types: tuple[ExternalType, ...]
    headers: tuple[Header, ...]
    files: tuple[SpecFile, ...]
    items: tuple[Definition, ...]            # in emission order
    by_name: Mapping[str, Definition] = field(compare=False, repr=False)   # x86's where several
    # names that several architectures' headers define, with each definition
    variants: Mapping[str, tuple[Definition, ...]] = field(default_factory=dict, compare=False, repr=False)
    # Findings that do not stop generation (an item its header's outline does not place)
    warnings: tuple = field(default=(), compare=False, repr=False)
    # The newest release that is out (manifest `released:`); None: all of them are.
    released: Optional[Version] = None

    def is_released(self, version: Optional[Version]) -> bool:
        """Whether `version` is out; a later one is merged for a release to come."""
        return version is None or self.released is None or version.parts <= self.released.parts
    # Layouts of the kernel's api.rst, oldest release first
    documents: tuple = field(default=(), compare=False, repr=False)

    def lookup(self, name: str, arch: str) -> Optional[Definition]:
        """The definition of `name` that userspace of `arch` sees."""
        for item in self.variants.get(name, ()):
            if arch in item.active_on:
                return item
        item = self.by_name.get(name)
        return item if item is not None and (not item.active_on or arch in item.active_on) else None

    def items_on(self, arch: str) -> list[Definition]:
        """The items userspace of `arch` sees, in emission order."""
        return [i for i in self.items if arch in i.active_on]

    @functools.cached_property
    def _kinds(self) -> dict[type, list]:
        index: dict[type, list] = {}
        for item in self.items:
            for cls in type(item).__mro__:
                index.setdefault(cls, []).append(item)
        return index

    def of_kind(self, kind: type) -> list:
        return list(self._kinds.get(kind, ()))

    @functools.cached_property
    def position(self) -> dict[int, int]:
        """Each item's place in emission order, by id()."""
        return {id(item): n for n, item in enumerate(self.items)}

    @property
    def ioctls(self) -> list[Ioctl]:
        return self.of_kind(Ioctl)

    @property
    def capabilities(self) -> list[Capability]:
        return self.of_kind(Capability)

    @property
    def records(self) -> list[Record]:
        return self.of_kind(Record)

    def header(self, name: str) -> Header:
        return self._headers[name]

    @functools.cached_property
    def _headers(self) -> dict[str, Header]:
        return {h.name: h for h in self.headers}

    @functools.cached_property
    def newest(self) -> Version:
        """The newest release the spec describes."""
        return max((i.since for i in self.items), default=Version.parse("2.6.20"))

    def items_of_header(self, name: str) -> list[Definition]:
        return [i for i in self.items if i.header == name]

    def headers_in_include_order(self) -> list[Header]:
        """Headers such that each comes after the headers it includes."""
        # <asm/kvm.h> is every architecture's own header: each comes before linux/kvm.h.
        include_name: dict[str, list[Header]] = {}
        for h in self.headers:
            include_name.setdefault(h.include_name, []).append(h)
        done: list[Header] = []

        def visit(h: Header) -> None:
            if h in done:
                return
            for inc in h.includes:
                for target in include_name.get(inc, ()):
                    if target is not h:
                        visit(target)
            done.append(h)

        for h in self.headers:
            visit(h)
        return done

    def c_order(self) -> list[Definition]:
        """Items in the order a C compiler sees them: included headers first."""
        return [i for h in self.headers_in_include_order() for i in self.items_of_header(h.name)]

    def implementations(self) -> list[Implementation]:
        return [impl for a in self.architectures for impl in a.implementations]

    @functools.cached_property
    def _gates(self) -> dict[str, list[Ioctl]]:
        gates: dict[str, list[Ioctl]] = {}
        for i in self.ioctls:
            for cap in dict.fromkeys([i.capability, *(s.capability for s in i.scopes)]):
                if cap is not None:
                    gates.setdefault(cap.name, []).append(i)
        return gates

    def gated_by(self, cap: Capability) -> list[Ioctl]:
        """Ioctls that the capability makes available (on any descriptor)."""
        return list(self._gates.get(cap.name, ()))
