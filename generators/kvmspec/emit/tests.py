"""Conformance tests emitted from the spec.

- tests/kvm_conformance.c: `_Static_assert`s for every constant, ioctl number,
  size, alignment and offset, per ABI; it compiles only against headers
  that agree with the spec (the generated ones, or the kernel's, up to the
  release given by KVMSPEC_HEADERS_VERSION).
- tests/kvm_abi_dump.c: prints the same facts as the headers see them, so two
  header trees can be compared with each other without the spec in between.
- tests/test_kvm_uapi.py: pytest checks of the Python bindings against the spec.
"""

from __future__ import annotations

import functools
from typing import Optional

from ..layout import ABIS, HOST_ABIS, HOST_INDEXES, host
from ..model import Capability, Constant, Enum, ExitReason, FlagSet, Ioctl, Model, Record, Version
from ..valuetype import replace, value_type


@value_type
class Check:
    """One fact to check, gated by the release that introduced it."""

    kind: str             # value | size | align | offset | member_size | bitfield
    subject: str          # a C expression (macro name, `struct x`, ...)
    member: str           # for offsets, the member path
    values: tuple[Optional[int], ...]  # per ABI; None where that ABI's headers lack it
    version: Optional[Version]
    until: Optional[Version] = None   # removed from the headers in this release
    macro: bool = False                # the subject is a macro (so #ifdef can test for it)

    @property
    def for_generated(self) -> bool:
        """Whether the generated headers (the newest API) have it."""
        return self.until is None

    @property
    def same_on_all_abis(self) -> bool:
        return len(set(self.values)) == 1 and self.values[0] is not None

    @property
    def on_host(self) -> bool:
        """Whether x86 userspace (the bindings' tests) has it."""
        values = self.values
        return all([values[i] is not None for i in HOST_INDEXES])

    @property
    def measure(self) -> str:
        """The C expression whose value is the fact (both C programs use it)."""
        return _MEASURE[self.kind].format(self.subject, self.member)

    def expected(self, index: int):
        """The fact's value on ABIS[index] as kvm_conformance.c writes it: a macro's
        value as an integer literal of its type, a size or an offset as it is."""
        value = self.values[index]
        return c_literal(value) if self.kind == "value" else value

    @property
    def key(self) -> str:
        """The fact's name in kvm_abi_dump.c's output: kind, subject and member;
        "removed-" first for a fact of an item the newest API no longer has."""
        return ("" if self.until is None else "removed-") + self.kind + " " + self.subject + \
            ("." + self.member if self.member else "")


# The C expression of each kind of fact: {0} is the subject, {1} the member
# (that a "defined" macro is defined is its fact: the expression is its name).
_MEASURE = {"defined": "{0}", "value": "{0}", "size": "sizeof({0})", "align": "_Alignof({0})",
            "offset": "offsetof({0}, {1})", "member_size": "KVMSPEC_MEMBER_SIZE({0}, {1})"}


def _later(a: Optional[Version], b: Optional[Version]) -> Optional[Version]:
    if a is None:
        return b
    if b is None:
        return a
    return b if b.parts > a.parts else a


def _record_since(record: Record, known: dict) -> Optional[Version]:
    """The release from which the record has its present layout. `known`: the
    answers so far, by record (id), as the same records are asked about again
    and again (as members of others, through their fields)."""
    newest = known.get(id(record), known)
    if newest is not known:
        return newest
    newest = record.since if not record.inline else None
    fixed = _size_fixed_by(record)
    for f in record.fields:
        newest = _later(newest, f.since)
        if f.record is not None:
            inner = _record_since(f.record, known)
            if fixed is not None and f is not fixed:
                continue   # a member of a union whose size a reserved member fixes: the union kept its layout
            newest = _later(newest, inner)
    known[id(record)] = newest
    return newest


def _size_fixed_by(record: Record):
    """The reserved member that alone gives a union its size (kvm_nested_state.hdr's pad), if any."""
    if not record.is_union or not all(record.has_layout(abi) for abi in ABIS):
        return None
    for f in record.fields:
        if f.reserved and all(f.size(abi) == record.size(abi) for abi in ABIS):
            return f
    return None


def checks(model: Model) -> list[Check]:
    """Facts to check, including those of removed items (for header trees older than the removal)."""
    out: list[Check] = []
    described_only = {h.name for h in model.headers if not h.emit}
    seen_by_arches: dict = {}   # active_on -> on which ABIs the item's #ifdef holds (None: all)
    record_since: dict = {}     # _record_since's answers
    firsts_of: dict = {}        # (moved item (id), architectures) -> _first_sights
    for item in model.items:
        active_on = item.active_on
        if not active_on or (isinstance(item, Ioctl) and item.type_external is not None):
            continue   # its #ifdef holds nowhere, or no code can expand it
        if item.header in described_only:
            continue   # asm/ptrace.h ...: the installed one, of whatever release, is what kvm.h uses
        first = len(out)
        seen = seen_by_arches.get(active_on, seen_by_arches)
        if seen is seen_by_arches:
            seen = tuple(abi.arch in active_on for abi in ABIS)
            seen = seen_by_arches[active_on] = None if all(seen) else seen
        _item_checks(item, out, seen, item.removed.since if item.removed is not None else None, record_since)
        # A moved item, or one under the #ifdef of a moved macro (KVM_CAP_SET_GUEST_DEBUG
        # under __KVM_HAVE_GUEST_DEBUG), reaches each architecture from its own release.
        mover = item if item.moves else _moved_guard(model, item)
        if mover is not None:
            key = (id(mover), active_on)
            sights = firsts_of.get(key)
            if sights is None:
                sights = firsts_of[key] = _first_sights(model, mover, active_on)
            out[first:] = [part for c in out[first:] for part in _split_by_first_sight(c, *sights)]
    return out


def _moved_guard(model: Model, item):
    """The moved item whose definition the item's #ifdef tests, if any."""
    guard = item.c_guard
    if guard is None or guard.negated:
        return None
    found = model.by_name.get(guard.name)
    return found if found is not None and getattr(found, "moves", ()) else None


def _first_sights(model: Model, item, arches: tuple[str, ...]) -> tuple[list, tuple[Optional[int], ...]]:
    """A moved item reaches some architectures only when it moves into a header they see
    (__KVM_HAVE_GUEST_DEBUG: in x86's asm/kvm.h until 6.9, then in linux/kvm.h for all).
    The releases it may first be seen in (its own, then each move's end), and for each
    ABI of the architectures asked about (in ABIS order) the position among them of the
    first release from which it sees the item (None if it never does, or is not asked about)."""
    starts = list(dict.fromkeys([item.since, *(m.until for m in item.moves)]))

    def first_sight(arch: str) -> Optional[int]:
        for n, start in enumerate(starts):
            if any(model.header(h).arch in (None, arch) for h in item.headers_at(start)):
                return n
        return None

    by_arch = {arch: first_sight(arch) for arch in arches}
    return starts, tuple(by_arch.get(abi.arch) for abi in ABIS)


def _split_by_first_sight(check: Check, starts: list, first_sights: tuple[Optional[int], ...]) -> list[Check]:
    """The check of a moved item, as one check per first release (see _first_sights),
    each for the ABIs that see the item from then on."""
    values = check.values
    firsts = [f if v is not None else None for v, f in zip(values, first_sights)]
    parts = []
    for start in dict.fromkeys(f for f in firsts if f is not None):
        part = tuple([v if f == start else None for v, f in zip(values, firsts)])
        parts.append(replace(check, values=part, version=_later(check.version, starts[start])))
    return parts


def _item_checks(item, out: list[Check], seen: Optional[tuple[bool, ...]] = None,
                 removed: Optional[Version] = None, record_since: Optional[dict] = None) -> None:
    """The item's facts, appended to `out`. `seen`: on which ABIs (in ABIS order) the
    item's #ifdef holds (None: all), its values elsewhere being None; a fact with no
    value on any ABI is left out. `removed`: the release that removed the item, which
    is then that of each of its facts. `record_since`: _record_since's answers so far."""
    known = {} if record_since is None else record_since

    def add(kind: str, subject: str, member: str, values: tuple, since: Optional[Version],
            until: Optional[Version] = None, macro: bool = False) -> None:
        if seen is not None:
            values = tuple([v if ok else None for v, ok in zip(values, seen)])
        if None in values and values.count(None) == len(values):
            return
        out.append(Check(kind, subject, member, values, since, removed or until, macro))

    if isinstance(item, Constant) and not item.values:
        add("defined", item.name, "", (1,) * len(ABIS), item.since)
    elif isinstance(item, Constant):
        add("value", item.name, "", item.values, item.since, macro=True)
    elif isinstance(item, (Enum, FlagSet)):
        is_macro = item.c_style == "define"
        newest_before = None   # in a C enum, later values may count on earlier ones
        for v in item.values:
            vsince = v.since
            if not is_macro:
                newest_before = _later(newest_before, v.since)
                vsince = newest_before
            add("value", v.name, "", v.values, vsince, v.removed.since if v.removed is not None else None,
                macro=is_macro or (item.c_define_values and v.c_define))
    elif isinstance(item, (Capability, ExitReason)):
        add("value", item.name, "", (item.value,) * len(ABIS), item.since, macro=True)
    elif isinstance(item, Ioctl):
        add("value", item.name, "", item.numbers, item.since, macro=True)
    elif isinstance(item, Record):
        since = _record_since(item, known)
        ctype = item.c_type
        layouts = item.layouts
        add("size", ctype, "", tuple([l.size if l is not None else None for l in layouts]), since)
        add("align", ctype, "", tuple([l.align if l is not None else None for l in layouts]), since)
        padding_since = None   # padding named later moves the fields after it on some ABI
        before = None          # a field added before another may have moved it (taken from reserved bytes)
        for path, f, offsets in item.walk():
            if f.reserved and f.since is not None:
                padding_since = _later(padding_since, f.since)
            if not f.name:
                continue
            field_since = _later(_later(_later(item.since, f.since), padding_since), before)
            before = _later(before, f.since)
            if f.history:      # its name, type or size changed: check it as it is since the last change
                field_since = _later(field_since, f.history[-1].until)
            if f.bits:
                add("bitfield", ctype, path, tuple([f.bits if o is not None else None for o in offsets]),
                    field_since)
                continue
            add("offset", ctype, path, offsets, field_since)
            if not f.flexible and f.count:   # sizeof a zero-length array is not valid C++ (nor in newer headers)
                # a member of another record's type has its size from when that record got its layout
                size_since = _later(field_since, _record_since(f.record, known)) if f.record is not None \
                    else field_since
                add("member_size", ctype, path, _member_sizes(f, offsets), size_since)


def _member_sizes(f, offsets: tuple) -> tuple[Optional[int], ...]:
    """The field's size (Field.size) on each ABI that has it (an offset), None elsewhere:
    read from its scalar's or record's sizes, without a method call per ABI."""
    count = f.count
    if f.scalar is not None:
        return tuple([size * count if o is not None else None for size, o in zip(f.scalar.sizes, offsets)])
    records = f.records or (f.record,) * len(offsets)
    return tuple([r.layouts[i].size * count if o is not None else None
                  for i, (r, o) in enumerate(zip(records, offsets))])


def version_code(version: Optional[Version]) -> str:
    """`KERNEL_VERSION(a, b, c)` as a number, the form <linux/version.h> uses."""
    if version is None:
        return "0"
    parts = (list(version.parts) + [0, 0, 0])[:3]
    return hex((parts[0] << 16) + (parts[1] << 8) + parts[2])


def version_test(check: Check) -> str:
    """The #if condition that selects header trees which should have the fact."""
    return _version_test(check.version, check.until)


@functools.lru_cache(maxsize=None)   # a few dozen releases for thousands of checks
def _version_test(version: Optional[Version], until: Optional[Version]) -> str:
    parts = []
    if version is not None:
        parts.append(f"KVMSPEC_HEADERS_VERSION >= {version_code(version)} /* {version.release} */")
    if until is not None:
        parts.append(f"KVMSPEC_HEADERS_VERSION < {version_code(until)} /* removed in {until.release} */")
        parts.append("!defined(KVMSPEC_NEWEST_API)")
    return " && ".join(parts)


# The #if test of each ABI, in ABIS order.
_ABI_TESTS = tuple(f"({abi.predefined})" for abi in ABIS)


def abi_condition(check: Check) -> str:
    """The #if condition selecting the ABIs whose headers have the fact ("" for all)."""
    values = check.values
    if None not in values:
        return ""
    return " || ".join([test for test, v in zip(_ABI_TESTS, values) if v is not None])


def release_conditions(facts: list[Check]) -> list[str]:
    """version_test of each fact: worked out once per pair of releases (objects: the
    model's releases are shared), not per fact."""
    known: dict = {}
    out = []
    for c in facts:
        pair = (id(c.version), id(c.until))
        condition = known.get(pair)
        if condition is None:
            condition = known[pair] = version_test(c)
        out.append(condition)
    return out


def runs(keyed) -> list:
    """(key, x) pairs in runs of one key, each run once under its key: [(key, [x, ...]), ...].
    The facts run under their #if conditions this way: consecutive facts mostly share
    them (the members of a record, the values of a set)."""
    out: list = []
    last = run = None
    for key, x in keyed:
        if key != last or run is None:
            last, run = key, [x]
            out.append((key, run))
        else:
            run.append(x)
    return out


def dump_facts(facts: list[Check], conditions: Optional[list[str]] = None) -> list[tuple[str, str, list]]:
    """The facts as kvm_abi_dump.c prints them, in runs under one ABI condition and one
    release condition (conditions: release_conditions(facts), if already worked out):
    (ABI condition, release condition, facts), each fact (key, the macro whose #ifdef
    it needs or "", the C expression of its value)."""
    keyed = [((abi_condition(c), condition),
              (c.key, c.subject if c.macro or c.kind == "defined" else "", "1" if c.kind == "defined" else c.measure))
             for c, condition in zip(facts, conditions or release_conditions(facts))]
    return [(where, condition, run) for (where, condition), run in runs(keyed)]


def c_literal(value: int) -> str:
    if value < 0:
        return f"({value}LL)"
    return f"{value:#x}ULL" if value > 0x7FFFFFFF else str(value)


def dump_source(view, env) -> str:
    """kvm_abi_dump.c for one view (an architecture at a release): every fact of the items
    its headers define then, with no release gating (the facts are those of the release)."""
    facts: list[Check] = []
    described_only = {h.name for h in view.model.headers if not h.emit}
    for item in view.items:
        if isinstance(item, Ioctl) and item.type_external is not None:
            continue   # no code can expand it
        if item.header in described_only:
            continue   # asm/ptrace.h ...: the installed one, of whatever release, is what kvm.h uses
        _item_checks(item, facts)
    seen = [i for i, abi in enumerate(ABIS) if view.arch is None or abi.arch == view.arch]
    everywhere = (1,) * len(ABIS)
    # A fact the view's ABIs cannot have (an ioctl on another architecture's struct) is left out.
    facts = [replace(c, values=everywhere, version=None, until=None) for c in facts
             if c.kind != "bitfield" and any(i < len(c.values) and c.values[i] is not None for i in seen)]
    return env.get_template("tests/kvm_abi_dump.c.j2").render(
        runs=dump_facts(facts), sources=[f.path for f in view.model.files])


class Generator:
    name = "tests"

    @staticmethod
    def sections(facts: list[Check], conditions: Optional[list[str]] = None) -> list[tuple[str, int, bool, list]]:
        """The C conformance program's sections: (title, ABI index, shared, runs of
        assertions under one release condition ("", release condition, assertions;
        see runs), each assertion (kind, C expression, expected value)): facts the
        same on every ABI first, then those of each ABI. conditions:
        release_conditions(facts), if already worked out."""
        shared: list = []                  # (release condition, assertion) pairs
        apart: list = [[] for _ in ABIS]   # the same for each ABI
        for c, condition in zip(facts, conditions or release_conditions(facts)):
            kind, measure = c.kind, c.measure
            if c.same_on_all_abis:
                shared.append((condition, (kind, measure, c.expected(0))))
                continue
            for i, v in enumerate(c.values):
                if v is not None:
                    apart[i].append((condition, (kind, measure, c.expected(i))))
        return [("The same on every ABI.", 0, True, [("", *r) for r in runs(shared)])] + \
            [(abi.name, i, False, [("", *r) for r in runs(apart[i])]) for i, abi in enumerate(ABIS)]

    @staticmethod
    def host_fields(records: list[Record]) -> list[tuple[str, str, tuple, tuple, int]]:
        """Every named field of the records as test_kvm_uapi.py checks it: (record,
        field path, offset and size on each host ABI, bit-field width (size 0))."""
        return [(r.name, path, host(offsets), tuple([0 if f.bits else f.size(abi) for abi in HOST_ABIS]), f.bits)
                for r in records for path, f, offsets in r.walk() if f.name]

    def render(self, model: Model, env) -> dict[str, str]:
        all_checks = checks(model)
        facts = [c for c in all_checks if c.kind != "bitfield"]   # C cannot take the size or offset of a bit-field
        described_only = {h.name for h in model.headers if not h.emit}
        records = [r for r in model.records if r.present and r.header not in described_only]
        conditions = release_conditions(facts)
        context = dict(model=model, abis=ABIS, host_abis=HOST_ABIS,
                       runs=dump_facts(facts, conditions), abi_sections=self.sections(facts, conditions),
                       host_values=[c for c in all_checks if c.kind == "value" and c.for_generated and c.on_host],
                       records=records, host_fields=self.host_fields(records), sources=[f.path for f in model.files])
        return {
            "tests/kvm_conformance.c": env.get_template("tests/kvm_conformance.c.j2").render(**context),
            "tests/kvm_abi_dump.c": env.get_template("tests/kvm_abi_dump.c.j2").render(**context),
            "tests/test_kvm_uapi.py": env.get_template("tests/test_kvm_uapi.py.j2").render(**context),
            "tests/test_live_kvm.py": env.get_template("tests/test_live_kvm.py.j2").render(
                pairs=[i for i in model.ioctls if i.present and i.restored_by and i.arg_record is not None
                       and [s.scope for s in i.scopes] == ["vcpu"] and i.arg_flow in ("out", "inout")
                       and (not i.arch or "x86" in i.arch)
                       and isinstance(model.by_name.get(i.restored_by), Ioctl)
                       and model.by_name[i.restored_by].present],
                caps=[c for c in model.capabilities if c.present], **context),
        }
