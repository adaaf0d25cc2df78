"""Rules a finished model must satisfy. Each check is named for its rule.

Every check returns diagnostics; none raises. `check_model` runs them all.
"""

from __future__ import annotations

import keyword
import re
from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator

from .diagnostics import Diagnostic, Mark
from .layout import ABIS
from .load import Map, Seq
from .model import (
    Capability, Definition, Enum, ExitReason, Field, FlagSet, Ioctl, Model, Record, ValueSet,
)

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic
_Imaginary _Noreturn _Static_assert _Thread_local asm typeof
""".split())

# The headers are also compiled as C++, so C++ keywords cannot be member names.
CXX_KEYWORDS = frozenset("""
alignas alignof and and_eq bitand bitor bool catch char16_t char32_t char8_t class compl
concept consteval constexpr constinit const_cast co_await co_return co_yield decltype delete
dynamic_cast explicit export false friend mutable namespace new noexcept not not_eq nullptr
operator or or_eq private protected public reinterpret_cast requires static_assert
static_cast template this thread_local throw true try typeid typename using virtual wchar_t
xor xor_eq
""".split())

# Attribute names that ctypes gives a meaning to on Structure and Union.
CTYPES_RESERVED = frozenset({"_fields_", "_pack_", "_anonymous_", "_align_", "_layout_", "_swappedbytes_"})

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_identifier(name: str, mark: Mark, what: str) -> Iterator[Diagnostic]:
    if not IDENTIFIER.match(name):
        yield Diagnostic(mark, f"{what} {name!r} is not a valid C identifier",
                         "use letters, digits and '_', not starting with a digit")
    elif name in C_KEYWORDS or name in CXX_KEYWORDS:
        yield Diagnostic(mark, f"{what} {name!r} is a C or C++ keyword",
                         "pick another name; the headers must compile as C and C++")
    elif keyword.iskeyword(name):
        yield Diagnostic(mark, f"{what} {name!r} is a Python keyword",
                         "pick another name; the Python bindings use it as an attribute")
    elif name in CTYPES_RESERVED:
        yield Diagnostic(mark, f"{what} {name!r} has a special meaning to ctypes",
                         "pick another name")


# ---------------------------------------------------------------- doc text

DOC_KEYS = ("doc", "returns")


def check_doc_text(data: Any) -> list[Diagnostic]:
    """Doc text must not end or open a C comment: it is printed inside one."""
    found: list[Diagnostic] = []

    def visit(node: Any) -> None:
        if isinstance(node, Map):
            for key, value in node.items():
                if key in DOC_KEYS and isinstance(value, str):
                    for token in ("*/", "/*"):
                        pos = value.find(token)
                        if pos >= 0:
                            line = node.mark_of(key).line + value.count("\n", 0, pos) + (
                                1 if _is_block(value, node.mark_of(key)) else 0)
                            found.append(Diagnostic(
                                Mark(node.mark_of(key).path, line, 1),
                                f"doc text contains {token!r}, which would "
                                f"{'end' if token == '*/' else 'nest'} the C comment it is printed in",
                                "reword it, e.g. write '* /' or describe the pattern in words"))
                            break
                else:
                    visit(value)
        elif isinstance(node, Seq):
            for value in node:
                visit(value)

    visit(data)
    return found


def _is_block(value: str, mark: Mark) -> bool:
    # Block scalars (| and >) start on the line after the key; plain ones on it.
    return "\n" in value


# ---------------------------------------------------------------- the model


def check_value_sets(model: Model) -> Iterator[Diagnostic]:
    """Values fit their type; enum values are distinct; flag bits do not overlap."""
    for item in model.of_kind(ValueSet):
        seen: dict[int, str] = {}
        owner_bits: dict[int, str] = {}
        for v in item.values:
            if not item.type.holds(v.value, ABIS[0]):
                yield Diagnostic(v.value_mark, f"{v.name} = {v.value:#x} does not fit in {item.type.name}",
                                 f"the {item.kind} {item.name} is a {item.type.name}; "
                                 "use a smaller value or a wider type")
                continue
            if v.alias or v.removed is not None:
                continue
            if isinstance(item, Enum):
                if v.value in seen:
                    yield Diagnostic(v.value_mark, f"{v.name} has the same value ({v.value}) as {seen[v.value]} "
                                             f"in enum {item.name}",
                                     "give it a value of its own, or mark it alias: true")
                seen.setdefault(v.value, v.name)
                continue
            if v.mask:
                continue
            if v.value == 0:
                yield Diagnostic(v.value_mark, f"flag {v.name} has no bits set",
                                 "a flag needs at least one bit; mark it mask: true if it names "
                                 "the empty set on purpose")
                continue
            for bit in v.bits:
                if bit in owner_bits:
                    yield Diagnostic(v.value_mark, f"flag {v.name} overlaps {owner_bits[bit]} "
                                             f"(both set bit {bit}) in flag set {item.name}",
                                     "give it a bit no other flag of the set uses, or mark it "
                                     "mask: true if it names a group of bits")
                    break
            for bit in v.bits:
                owner_bits.setdefault(bit, v.name)


def _field_sets(record: Record) -> Iterator[tuple[str, Field]]:
    for path, f, _ in record.walk():
        if f.value_sets:
            yield path, f


def check_field_types(model: Model) -> Iterator[Diagnostic]:
    """A field holding flags or an enum is an integer that can hold every value of the set.

    Several flag sets in one field (generic and architecture bits) may not share a bit.
    """
    for record in model.records:
        for path, f in _field_sets(record):
            if len(f.flag_sets) > 1:
                owner: dict[int, str] = {}
                for fs in f.flag_sets:
                    for v in fs.values:
                        if v.removed is not None or v.mask:
                            continue
                        for bit in v.bits:
                            if bit in owner and owner[bit] != fs.name:
                                yield Diagnostic(f.mark, f"field {record.name}.{path} holds flag sets "
                                                         f"{owner[bit]} and {fs.name}, which both use bit {bit}",
                                                 "give the sets of one field distinct bits")
                            owner.setdefault(bit, fs.name)
            for value_set in f.value_sets:
                yield from _check_fits(record, path, f, value_set)


def _check_fits(record: Record, path: str, f: Field, value_set: ValueSet) -> Iterator[Diagnostic]:
    if f.scalar is None or f.scalar.is_pointer:
        actual = f.scalar.name if f.scalar else "a record"
        yield Diagnostic(f.mark, f"field {record.name}.{path} is {actual}, which cannot hold "
                                 f"{value_set.kind} {value_set.name}", "attach the set to an integer field")
        return
    bits = f.bits or f.scalar.bits(ABIS[0])
    too_big = [v for v in value_set.values
               if v.removed is None and not (0 <= v.value < (1 << bits) or
                                             f.scalar.signed and -(1 << (bits - 1)) <= v.value < 0)]
    if too_big:
        yield Diagnostic(f.mark, f"field {record.name}.{path} ({f.scalar.name}"
                                 f"{':' + str(f.bits) if f.bits else ''}) cannot hold {too_big[0].name} "
                                 f"= {too_big[0].value:#x} of {value_set.kind} {value_set.name}",
                         "use a wider field type, or a set whose values fit")


def check_layouts(model: Model) -> Iterator[Diagnostic]:
    """New records are 64-bit clean: no implicit padding, same layout on every ABI."""
    for record in model.records:
        problems = []
        for abi, layout in zip(ABIS, record.layouts):
            for offset, size in layout.holes:
                problems.append(f"{size} byte(s) of implicit padding at offset {offset} on {abi.name}")
        problems.extend(_inline_holes(record))
        if not record.same_on_all_abis:
            sizes = ", ".join(f"{l.size} bytes on {abi.name}" for abi, l in zip(ABIS, record.layouts))
            problems.append(f"layout differs between ABIs ({sizes}{_first_difference(record)})")
        if problems and record.exemption is None:
            yield Diagnostic(record.mark, f"{record.c_type} is not 64-bit clean: " + "; ".join(problems),
                             "add explicit padding (a reserved __u8/__u32 field) or use __u64 for "
                             "pointers; an existing kernel struct keeps its layout with "
                             "abi_exemption: {reason: ...}")
        elif not problems and record.exemption is not None:
            yield Diagnostic(record.mark, f"{record.c_type} has an abi_exemption but does not need one",
                             "remove abi_exemption: the layout is the same everywhere")
        for rec in _records_within(record):
            for f in rec.fields:
                if f.flexible and (rec.is_union or f is not rec.fields[-1]):
                    yield Diagnostic(f.mark, f"flexible array {f.name} must be the last member of a struct",
                                     "move it to the end; inside a union use array: 0")
                elif f.flexible and len(rec.fields) == 1:
                    yield Diagnostic(f.mark, f"flexible array {f.name} cannot be the only member",
                                     "add the field that says how many elements follow")


def _records_within(record: Record) -> Iterator[Record]:
    yield record
    for f in record.fields:
        if f.record is not None and f.record.inline:
            yield from _records_within(f.record)


def _inline_holes(record: Record) -> Iterator[str]:
    for path, f, _ in record.walk():
        if f.record is not None and f.record.inline:
            for abi, layout in zip(ABIS, f.record.layouts):
                for offset, size in layout.holes:
                    yield f"{size} byte(s) of implicit padding inside {path or 'an anonymous member'} " \
                          f"on {abi.name}"


def _first_difference(record: Record) -> str:
    for path, f, offsets in record.walk():
        if len(set(offsets)) > 1:
            where = ", ".join(f"{o} on {abi.name}" for abi, o in zip(ABIS, offsets))
            return f"; {path or 'an anonymous member'} is at offset {where}"
    return ""


def check_unique_numbers(model: Model) -> Iterator[Diagnostic]:
    """Capability numbers, exit reasons and ioctl numbers are unique."""
    for kind, what in ((Capability, "capability number"), (ExitReason, "exit reason")):
        seen: dict[int, Definition] = {}
        for item in model.of_kind(kind):
            if item.value in seen:
                yield Diagnostic(item.mark, f"{item.name} reuses {what} {item.value} of {seen[item.value].name}",
                                 "numbers are never reused; take the next free one")
            else:
                seen[item.value] = item
    for index, abi in enumerate(ABIS):
        seen_ioctl: dict[int, Ioctl] = {}
        for ioctl in model.ioctls:
            number = ioctl.numbers[index]
            other = seen_ioctl.get(number)
            if other is None:
                seen_ioctl[number] = ioctl
            elif other.name != ioctl.same_number_as and ioctl.name != other.same_number_as:
                yield Diagnostic(ioctl.mark, f"{ioctl.name} has the same ioctl number as {other.name} "
                                             f"({number:#010x} on {abi.name})",
                                 "use a free nr, or say same_number_as: if the kernel really does this")
                break


def check_ioctl_semantics(model: Model) -> Iterator[Diagnostic]:
    by_name = model.by_name
    for ioctl in model.ioctls:
        for v in ioctl.validations:
            f = v.field
            for kind, _table in v.verdicts:
                if kind in ("unknown_bits", "foreign_bits") and f.flags is None:
                    yield Diagnostic(v.mark, f"{kind} needs a field with a flag set, and {v.path} has none",
                                     f"add flags: to the field, or use nonzero: for a reserved field")
                if kind in ("unknown_values", "foreign_values") and f.enum is None:
                    yield Diagnostic(v.mark, f"{kind} needs a field with an enum, and {v.path} has none",
                                     "add enum: to the field")
        for key, reverse in (("restores", "restored_by"), ("restored_by", "restores")):
            partner_name = getattr(ioctl, key)
            if partner_name is None:
                continue
            partner = by_name.get(partner_name)
            if isinstance(partner, Ioctl) and getattr(partner, reverse) != ioctl.name:
                yield Diagnostic(ioctl.mark, f"{ioctl.name} says it is {key.replace('_', ' ')} "
                                             f"{partner_name}, but {partner_name} does not say the reverse",
                                 f"add pair: {{{reverse}: {ioctl.name}}} to {partner_name}")
        for emission in ioctl.emissions:
            if emission.requires is not None and not emission.requires.opt_in:
                yield Diagnostic(emission.mark, f"{emission.requires.name} is not enabled with "
                                                "KVM_ENABLE_CAP, so it cannot gate what the kernel emits",
                                 "add enable: to the capability, or remove requires:")
        if ioctl.same_number_as is not None:
            other = by_name.get(ioctl.same_number_as)
            if isinstance(other, Ioctl) and other.numbers != ioctl.numbers:
                yield Diagnostic(ioctl.mark, f"{ioctl.name} says it has the same number as "
                                             f"{other.name}, but the numbers differ",
                                 "remove same_number_as:")


def check_implementation_scope(model: Model) -> Iterator[Diagnostic]:
    """Implementations named by an item belong to the item's architectures."""
    impl_arch = {impl.name: impl.arch for impl in model.implementations()}
    for item in model.items:
        if item.arch:
            for impl in item.implementations:
                if impl in impl_arch and impl_arch[impl] not in item.arch:
                    yield Diagnostic(item.mark, f"implementation {impl} is not on the "
                                                f"architectures of {item.name} ({', '.join(item.arch)})",
                                     "add its architecture to arch:, or remove the implementation")


def check_exit_members(model: Model) -> Iterator[Diagnostic]:
    run = model.by_name.get("kvm_run")
    for item in model.of_kind(ExitReason):
        if item.member is None:
            continue
        if not isinstance(run, Record) or run.field_at(item.member) is None:
            yield Diagnostic(item.mark, f"exit {item.name} names member {item.member!r}, "
                                        "which struct kvm_run does not have",
                             "name a member of kvm_run's exit union")


def check_header_arch(model: Model) -> Iterator[Diagnostic]:
    """An item in an architecture header exists on that architecture."""
    for item in model.items:
        header = model.header(item.header)
        if header.arch and item.arch and header.arch not in item.arch:
            yield Diagnostic(item.mark, f"{item.name} is emitted into {header.path}, but its "
                                        f"architectures ({', '.join(item.arch)}) do not include {header.arch}",
                             "fix arch:, or emit it into another header with header:")


CHECKS: tuple[Callable[[Model], Iterable[Diagnostic]], ...] = (
    check_value_sets,
    check_field_types,
    check_layouts,
    check_unique_numbers,
    check_ioctl_semantics,
    check_implementation_scope,
    check_exit_members,
    check_header_arch,
)


def check_model(model: Model) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for check in CHECKS:
        found.extend(check(model))
    return found
