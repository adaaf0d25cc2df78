"""Rules a finished model must satisfy. Each check is named for its rule.

Every check returns diagnostics; none raises. `check_model` runs them all.
"""

from __future__ import annotations

import keyword
import re
from typing import Any, Callable, Iterable, Iterator, Optional

from .diagnostics import Diagnostic, Mark
from .layout import ABIS
from .load import Map, Seq
from .model import (
    Capability, Constant, Definition, Enum, ExitReason, Field, FlagSet, FunctionMacro, Ioctl, Model, Record, ValueSet,
    Version,
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


def plain_identifier(name: str) -> bool:
    """Whether check_identifier has nothing to say about the name."""
    return IDENTIFIER.match(name) is not None and name not in _SPECIAL_NAMES


def check_identifier(name: str, mark: Mark, what: str) -> list[Diagnostic]:
    if plain_identifier(name):   # nearly always
        return []
    if not IDENTIFIER.match(name):
        return [Diagnostic(mark, f"{what} {name!r} is not a valid C identifier",
                           "use letters, digits and '_', not starting with a digit")]
    if name in C_KEYWORDS or name in CXX_KEYWORDS:
        return [Diagnostic(mark, f"{what} {name!r} is a C or C++ keyword",
                           "pick another name; the headers must compile as C and C++")]
    if keyword.iskeyword(name):
        return [Diagnostic(mark, f"{what} {name!r} is a Python keyword",
                           "pick another name; the Python bindings use it as an attribute")]
    return [Diagnostic(mark, f"{what} {name!r} has a special meaning to ctypes", "pick another name")]


_SPECIAL_NAMES = frozenset({*C_KEYWORDS, *CXX_KEYWORDS, *keyword.kwlist, *CTYPES_RESERVED})


# ---------------------------------------------------------------- text

# Free text: printed into C comments, Python docstrings and comments, and api.rst.
DOC_KEYS = ("doc", "returns", "title", "reason", "moved_to", "comment", "c_comment")
# Text that must stay on one line (headings, table cells, comment lines).
ONE_LINE_KEYS = ("title", "moved_to", "comment", "c_comment")

# Characters no spec text may hold: control characters (tab and newline
# aside), line and paragraph separators (Python's splitlines() breaks on
# them), and invisible formatting that makes text read differently from what
# the compiler sees ("Trojan Source": bidirectional overrides and isolates).
_INVISIBLE = {0x061C: "arabic letter mark", 0x200E: "left-to-right mark", 0x200F: "right-to-left mark",
              0x2028: "line separator", 0x2029: "paragraph separator", 0xFEFF: "zero width no-break space"}
_INVISIBLE.update({c: "bidirectional override" for c in range(0x202A, 0x202F)})
_INVISIBLE.update({c: "bidirectional isolate" for c in range(0x2066, 0x206A)})
_BAD_CHAR = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff"
                       + "".join(chr(c) for c in sorted(_INVISIBLE)) + "]")

# reStructuredText that does more than format: directives (`.. raw::`,
# `.. include::`, `.. csv-table::` with :file:), substitution definitions,
# hyperlink targets, footnotes and citations, and interpreted-text roles.
# Doc text is prose; api.rst must not run or include anything because of it.
_RST_EXPLICIT = re.compile(r"^[ \t]*\.\.[ \t]+(?:\|[^|]+\|[ \t]+\S|_\S|\[[^\]]+\]|[A-Za-z0-9][\w.:+-]*[ \t]*::)", re.M)
_RST_ROLE = re.compile(r"(?<![\w`]):[A-Za-z0-9][\w.+-]*(?::[\w.+-]+)*:`|`:[A-Za-z0-9][\w.+-]*(?::[\w.+-]+)*:(?!\w)")


def _text_mark(mark: Mark, value: str, pos: int, style: str = "") -> Mark:
    """Where character `pos` of a scalar that starts at `mark` and is written in `style` is.

    Exact for one-line plain scalars and for the line within a literal block
    (|); otherwise the scalar's own start, since folding and escapes do not
    map characters to columns.
    """
    if style == "|":  # the block starts on the line after its indicator
        return Mark(mark.path, mark.line + 1 + value.count("\n", 0, pos), 1)
    if style == "" and "\n" not in value:
        return Mark(mark.path, mark.line, mark.col + pos)
    if style == "'" and "\n" not in value and "'" not in value:
        return Mark(mark.path, mark.line, mark.col + 1 + pos)
    return mark   # double quotes may hold escapes: point at the opening quote


def _char_name(ch: str) -> str:
    code = ord(ch)
    if code in _INVISIBLE:
        return f"U+{code:04X} ({_INVISIBLE[code]})"
    return f"control character U+{code:04X}"


def _check_string(value: str, mark: Mark, key: Any, found: list[Diagnostic], style: str = "") -> None:
    bad = _BAD_CHAR.search(value)
    if bad is not None:
        found.append(Diagnostic(_text_mark(mark, value, bad.start(), style), f"text contains {_char_name(bad.group())}",
                                "remove it: the generated C, Python and reStructuredText would carry it "
                                "invisibly, or break on it"))
        return
    if key not in DOC_KEYS:
        return
    if key in ONE_LINE_KEYS and "\n" in value.rstrip("\n"):
        found.append(Diagnostic(mark, f"{key} must be a single line",
                                "it is printed as a heading and on comment lines; put more text in doc:"))
        return
    for token in ("*/", "/*"):
        pos = value.find(token)
        if pos >= 0:
            found.append(Diagnostic(
                _text_mark(mark, value, pos, style),
                f"doc text contains {token!r}, which would "
                f"{'end' if token == '*/' else 'nest'} the C comment it is printed in",
                "reword it, e.g. write '* /' or describe the pattern in words"))
            return
    m = _RST_EXPLICIT.search(value) or _RST_ROLE.search(value)
    if m is not None:
        what = "a reStructuredText role" if m.re is _RST_ROLE else "reStructuredText explicit markup"
        found.append(Diagnostic(
            _text_mark(mark, value, m.start() + len(m.group()) - len(m.group().lstrip()), style),
            f"doc text contains {what} ({m.group().strip()!r})",
            "doc text is prose: directives, roles, targets and substitutions could pull files or raw "
            "markup into api.rst; use plain text, ``literals`` and *emphasis*"))


# Anything _check_string could object to: most strings have none of it.
_SUSPECT = re.compile(_BAD_CHAR.pattern[:-1] + "]|\\*/|/\\*|\\.\\.|:`|`:")


def check_text(data: Any) -> list[Diagnostic]:
    """Every string of a spec file or the manifest is printable text, and doc text
    cannot escape what it is printed in: a C comment, or api.rst prose."""
    return [] if _unsuspicious(data) else _check_text_exactly(data)


def _check_text_exactly(data: Any) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    suspect = _SUSPECT.search
    stack: list[tuple[Any, Any]] = [(data, None)]
    while stack:   # no recursion, and little work per string: this sees every one
        node, key = stack.pop()
        if isinstance(node, Map):
            for k, value in node.items():
                if suspect(k):
                    _check_string(k, node.key_mark(k), None, found)
                if type(value) is str:
                    if suspect(value) or (k in ONE_LINE_KEYS and "\n" in value.rstrip("\n")):
                        _check_string(value, node.mark_of(k), k, found, node.style_of(k))
                elif isinstance(value, (Map, Seq)):
                    stack.append((value, k))
        elif isinstance(node, Seq):
            for index, value in enumerate(node):
                if type(value) is str:
                    if suspect(value):
                        _check_string(value, node.mark_of(index), key, found)
                elif isinstance(value, (Map, Seq)):
                    stack.append((value, key))
    return sorted(found)


def _unsuspicious(data: Any) -> bool:
    """Whether check_text would find nothing, decided cheaply: the strings are
    only collected, and searched all at once, joined by newlines (which keep
    neighbours from forming a match, and start a line as each string does).
    Nearly every file passes; the others get the exact check."""
    strings: list[str] = []
    add = strings.append
    stack: list[Any] = [data] if type(data) is Map or type(data) is Seq else []
    while stack:
        node = stack.pop()
        if type(node) is Map:
            strings.extend(node)   # the keys
            if not node.keys().isdisjoint(ONE_LINE_KEYS):
                for key in ONE_LINE_KEYS:
                    value = node.get(key)
                    if type(value) is str and "\n" in value.rstrip("\n"):
                        return False
            values: Any = node.values()
        else:
            values = node
        for value in values:
            kind = type(value)
            if kind is str:
                add(value)
            elif kind is Map or kind is Seq:
                stack.append(value)
    text = "\n".join(strings)
    if text.isascii():   # then the bad characters are the ASCII controls but tab and newline
        if text.encode("ascii").translate(None, _TEXT_ASCII):
            return False
    elif _BAD_CHAR.search(text):
        return False
    if "*/" in text or "/*" in text or ":`" in text or "`:" in text:
        return False
    return not (".. " in text or "..\t" in text) or _RST_EXPLICIT.search(text) is None


# The ASCII characters spec text may hold: the printable ones, tab and newline
# (deleting them from the text and finding nothing left is a tenth of the time of isprintable()).
_TEXT_ASCII = bytes([0x09, 0x0A, *range(0x20, 0x7F)])


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


# Records within records, named or inline: the kernel's deepest is 4 levels.
MAX_RECORD_DEPTH = 32


def check_nesting(model: Model) -> Iterator[Diagnostic]:
    """Records nest at most MAX_RECORD_DEPTH deep (reported once, where the limit is crossed)."""
    depth: dict[int, int] = {}
    for record in model.records:
        stack: list[tuple[Record, bool]] = [(record, False)]
        while stack:   # no recursion: a hostile spec may nest thousands deep
            rec, expanded = stack.pop()
            if id(rec) in depth:
                continue
            inner = [f.record for f in rec.fields if f.record is not None]
            if expanded:
                depth[id(rec)] = 1 + max((depth[id(r)] for r in inner), default=0)
            else:
                stack.append((rec, True))
                stack.extend((r, False) for r in inner if id(r) not in depth)
        if depth[id(record)] == MAX_RECORD_DEPTH + 1:
            yield Diagnostic(record.mark, f"{record.c_type} nests records {MAX_RECORD_DEPTH + 1} levels deep",
                             f"keep records within {MAX_RECORD_DEPTH} levels of nesting")


def _max_object_size(abi) -> int:
    return (1 << (abi.pointer_bits - 1)) - 1   # PTRDIFF_MAX: C's limit on an object


def check_layouts(model: Model) -> Iterator[Diagnostic]:
    """New records are 64-bit clean: no implicit padding, same layout on every ABI."""
    for record in model.records:
        seen = record.abis_seen
        too_big = [(abi, record.layout(abi).size) for abi in seen
                   if record.layout(abi).size > _max_object_size(abi)]
        if too_big:
            abi, size = too_big[-1]
            yield Diagnostic(record.mark, f"{record.c_type} is {size} bytes on {abi.name}, more than an object "
                                          f"can be there ({_max_object_size(abi)} bytes)",
                             "make its arrays smaller")
            continue
        problems = []
        for abi in _distinct(record, seen):
            for offset, size in record.layout(abi).holes:
                problems.append(f"{size} byte(s) of implicit padding at offset {offset} on {abi.name}")
        problems.extend(_inline_holes(record))
        if not record.same_on_all_abis:
            sizes = ", ".join(f"{record.layout(abi).size} bytes on {abi.name}" for abi in seen)
            problems.append(f"layout differs between ABIs ({sizes}{_first_difference(record)})")
        if problems and record.exemption is None:
            yield Diagnostic(record.mark, f"{record.c_type} is not 64-bit clean: " + "; ".join(problems),
                             "add explicit padding (a reserved __u8/__u32 field) or use __u64 for "
                             "pointers; an existing kernel struct keeps its layout with "
                             "abi_exemption: {reason: ...}")
        elif not problems and record.exemption is not None:
            yield Diagnostic(record.mark, f"{record.c_type} has an abi_exemption but does not need one",
                             "remove abi_exemption: the layout is the same everywhere")
        for rec in record.records_within(every_field=True):
            for f in rec.fields:
                if f.flexible and (rec.is_union or f is not rec.fields[-1]):
                    yield Diagnostic(f.mark, f"flexible array {f.name} must be the last member of a struct",
                                     "move it to the end; inside a union use array: 0")
                elif f.flexible and len(rec.fields) == 1:
                    yield Diagnostic(f.mark, f"flexible array {f.name} cannot be the only member",
                                     "add the field that says how many elements follow")


def _distinct(record: Record, seen: tuple) -> list:
    """One ABI of each layout per architecture: the LP64 ABIs lay a record out alike."""
    out, keys = [], set()
    for abi in seen:
        key = (abi.arch, record.layout(abi))
        if key not in keys:
            keys.add(key)
            out.append(abi)
    return out


def _inline_holes(record: Record) -> Iterator[str]:
    seen = record.abis_seen
    for path, f, _ in record.walk():
        if f.record is not None and f.record.inline:
            for abi in _distinct(f.record, tuple(a for a in seen if f.record.has_layout(a))):
                layout = f.record.layout(abi)
                for offset, size in layout.holes:
                    yield f"{size} byte(s) of implicit padding inside {path or 'an anonymous member'} " \
                          f"on {abi.name}"


def _first_difference(record: Record) -> str:
    seen = {abi.name for abi in record.abis_seen}
    for path, f, offsets in record.walk():
        shown = [(abi, o) for abi, o in zip(ABIS, offsets) if abi.name in seen and o is not None]
        if len({o for _, o in shown}) > 1:
            where = ", ".join(f"{o} on {abi.name}" for abi, o in shown)
            return f"; {path or 'an anonymous member'} is at offset {where}"
    return ""


def _renamed(old: Definition, new: Definition) -> bool:
    """Whether `new` is `old` under a later name: old was removed, naming new as its
    replacement, no later than new appeared (the kernel renamed it, keeping the number)."""
    for a, b in ((old, new), (new, old)):
        if a.removed is not None and a.removed.replacement == b.name \
                and b.since is not None and a.removed.since.parts <= b.since.parts:
            return True
    return False


def check_unique_numbers(model: Model) -> Iterator[Diagnostic]:
    """Capability numbers, exit reasons and ioctl numbers are unique."""
    for kind, what in ((Capability, "capability number"), (ExitReason, "exit reason")):
        seen: dict[int, Definition] = {}
        for item in model.of_kind(kind):
            if item.value in seen and _renamed(seen[item.value], item):
                seen[item.value] = item
            elif item.value in seen:
                yield Diagnostic(item.mark, f"{item.name} reuses {what} {item.value} of {seen[item.value].name}",
                                 "numbers are never reused; take the next free one")
            else:
                seen[item.value] = item
    for index, abi in enumerate(ABIS):
        seen_ioctl: dict[int, Ioctl] = {}
        for ioctl in model.ioctls:
            number = ioctl.numbers[index]
            if number is None or abi.arch not in ioctl.active_on:
                continue
            other = seen_ioctl.get(number)
            if other is None:
                seen_ioctl[number] = ioctl
            elif _apart(other, ioctl, abi.arch):
                continue   # one was gone before the other came to this architecture
            elif other.name != ioctl.same_number_as and ioctl.name != other.same_number_as:
                yield Diagnostic(ioctl.mark, f"{ioctl.name} has the same ioctl number as {other.name} "
                                             f"({number:#010x} on {abi.name})",
                                 "use a free nr, or say same_number_as: if the kernel really does this")
                break


def _apart(a: Ioctl, b: Ioctl, arch: str) -> bool:
    """Whether two ioctls never existed together: one was removed no later than the
    other appeared (ia64's KVM_IA64_VCPU_SET_STACK, gone in 3.19, and
    KVM_SET_GUEST_DEBUG, which riscv, loongarch and mips encode the same way)."""
    return (a.removed is not None and a.removed.since <= b.since) or \
        (b.removed is not None and b.removed.since <= a.since)


def check_ioctl_semantics(model: Model) -> Iterator[Diagnostic]:
    by_name = model.by_name
    for ioctl in model.ioctls:
        for v in ioctl.validations:
            f = v.field
            for kind, _table in v.verdicts:
                if kind in ("unknown_bits", "foreign_bits") and f.flags is None:
                    yield Diagnostic(v.mark, f"{kind} needs a field with a flag set, and {v.path} has none",
                                     "add flags: to the field, or use nonzero: for a reserved field")
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
            # the same number on some ABI: the kernel reused it there (struct sizes differ elsewhere)
            if isinstance(other, Ioctl) and not any(a is not None and a == b
                                                    for a, b in zip(other.numbers, ioctl.numbers)):
                yield Diagnostic(ioctl.mark, f"{ioctl.name} says it has the same number as "
                                             f"{other.name}, but the numbers differ on every ABI",
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


# ---------------------------------------------------------------- names in the outputs

# Names the generated Python modules define or import at top level besides the
# spec's own (kvm_uapi/__init__.py, and api.py, which star-imports it): a spec
# item of that name would shadow them. tests/test_hostile.py keeps this in
# step with the templates.
PYTHON_RESERVED = frozenset("""
ABI CAPABILITIES Capability Final IOCTLS Ioctl ctypes enum _abi _aligned_u64 _cast _cdiv
Any Device ExitReason FileDescriptor Kvm KvmError KvmUnsupported Mapping Optional Vcpu Vm
errno mmap os sized annotations _runtime _support _Descriptor _EXIT_CLASSES
_RULES _COUNTED _check_fields _check_room _fcntl_ioctl _record _set_fields _set_array _element _incomplete
_FILL_START _FILL_LIMIT _shown _is_sequence _read_as OpenIntEnum Iterable Union RecordLike KvmIncomplete GuestMemory
Exit UnlistedExit _offsetof
""".split())

# Attributes of the API classes (Kvm, Vm, Vcpu, Device) besides the ioctl methods.
API_ATTRIBUTES = frozenset("""
close closed fileno kvm_run exit_reason exit path kvm vm _fd _caps _map _run _call _failed
_closed _answer _require _check_extension _fill add_memory memory _memory _mem _reason _exits _map_run
_exit_view
""".split())

# Class attributes of ctypes records: a field of that name would hide them.
CTYPES_ATTRIBUTES = frozenset({"from_buffer", "from_buffer_copy", "from_address", "from_param", "in_dll"})

# Names the generated C headers use but do not define: a macro of that name
# would rewrite them (the uapi types, the ioctl encoding macros, GCC keywords).
C_RESERVED = frozenset("""
__u8 __s8 __u16 __s16 __u32 __s32 __u64 __s64 __aligned_u64 __le16 __le32 __le64 __be16 __be32
__be64 _IO _IOR _IOW _IOWR _IOC _IOC_NONE _IOC_READ _IOC_WRITE __attribute__ __extension__
__inline__ __asm__ __typeof__ __signed__ __restrict
""".split())

_ANON_FIELD = re.compile(r"_anon[0-9]+\Z")
# Kinds whose C names are macros; the others name types (struct/union/enum tags, Python classes).
MACRO_KINDS = ("const", "macro", "ioctl", "capability", "exit")


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _is_sunder(name: str) -> bool:
    """Enum reserves _names_ like these (_missing_, _ignore_, ...)."""
    return len(name) > 2 and name[0] == name[-1] == "_" and name[1] != "_" and name[-2] != "_"


def api_method_name(ioctl_name: str) -> str:
    """The high-level API method of an ioctl: KVM_GET_REGS -> get_regs."""
    return ioctl_name.lower().removeprefix("kvm_")


def exit_member_name(exit_name: str) -> str:
    """The ExitReason member of an exit reason: KVM_EXIT_HLT -> HLT."""
    return exit_name.removeprefix("KVM_EXIT_")


def _names(model: Model) -> Iterator[tuple[str, str, Mark]]:
    """(name, kind, mark) of every item and every enum or flag value."""
    for item in model.items:
        yield item.name, item.kind, item.mark
        if isinstance(item, (Enum, FlagSet)):
            for v in item.values:
                yield v.name, "value", v.mark


def check_case_clashes(model: Model) -> Iterator[Diagnostic]:
    """Two macros, or two types, whose names differ only by case.

    api.rst labels and references ignore case, the Python API lowercases
    ioctl names into method names, and a reader cannot tell KVM_FOO from
    KVM_Foo. A struct and a macro may share a name up to case (struct
    kvm_run and KVM_RUN): the kernel does that everywhere.
    """
    # One walk over the names, for both namespaces; the macros' clashes are reported first.
    firsts: tuple[dict[str, tuple[str, Mark]], dict[str, tuple[str, Mark]]] = ({}, {})
    clashes: tuple[list[Diagnostic], list[Diagnostic]] = ([], [])
    for name, kind, mark in _names(model):
        namespace = 0 if kind in MACRO_KINDS or kind == "value" else 1
        first = firsts[namespace]
        key = name.casefold()
        if key in first and first[key][0] != name:
            other, where = first[key]
            clashes[namespace].append(Diagnostic(mark, f"{name!r} differs from {other!r} ({where}) only by case",
                                                 "names that differ only by case clash in api.rst labels and "
                                                 "in the Python API; rename one of them"))
        else:
            first.setdefault(key, (name, mark))
    yield from clashes[0]
    yield from clashes[1]


def check_output_names(model: Model) -> Iterator[Diagnostic]:
    """Names that the generated C or Python would turn into something else."""
    from .emit.python import py_classes

    macros: dict[str, Mark] = {}
    names: dict[str, Mark] = {}   # every name (the last mark of a name given twice)
    for name, kind, mark in _names(model):
        names[name] = mark
        if kind in MACRO_KINDS or kind == "value":
            macros.setdefault(name, mark)
        if name in C_RESERVED or name.startswith("_IOC_"):
            yield Diagnostic(mark, f"{name!r} is a name the generated C headers use from <linux/types.h> "
                                   "or <linux/ioctl.h>", "pick another name; a definition of it would "
                                                        "rewrite every use")
        elif name in PYTHON_RESERVED:
            yield Diagnostic(mark, f"{name!r} is a name the generated Python bindings already use",
                             "pick another name; kvm_uapi would shadow its own " + name)
        elif _is_dunder(name) or _is_sunder(name):
            yield Diagnostic(mark, f"{name!r} has a form Python reserves (__name__ or _name_)",
                             "pick another name; Python and its enum module give such names a meaning")
        elif kind == "value" and name == "mro":
            yield Diagnostic(mark, "'mro' cannot be a member of a Python enum", "pick another name")
    for header in model.headers:
        if header.guard in macros:
            yield Diagnostic(macros[header.guard], f"{header.guard!r} is the include guard of "
                                                   f"{header.path}", "pick another name")

    # Private ctypes classes of inline records are named after their path.
    for record in model.records:
        for cls in py_classes(record)[:-1]:
            if cls.name in names:
                yield Diagnostic(names[cls.name], f"{cls.name!r} is the name of the Python class of an inline "
                                                  f"member of {record.c_type}", "pick another name")
        for rec in record.records_within(every_field=True):
            for f in rec.fields:
                if f.name is None:
                    continue
                if f.name in macros:
                    yield Diagnostic(f.mark, f"field {f.name!r} has the name of the macro {f.name} "
                                             f"({macros[f.name]}), which would replace it in C",
                                     "rename the field or the macro")
                elif f.name in CTYPES_ATTRIBUTES or _ANON_FIELD.match(f.name) or _is_dunder(f.name) \
                        or _is_sunder(f.name):
                    yield Diagnostic(f.mark, f"field {f.name!r} has a name the ctypes class of "
                                             f"{record.c_type} needs for itself", "rename the field")

    # The high-level API: one method per ioctl, one ExitReason member per exit.
    methods: dict[str, Ioctl] = {}
    for ioctl in model.ioctls:
        if ioctl.name.startswith("__"):
            continue
        method = api_method_name(ioctl.name)
        problem = _python_name_problem(method)
        if problem is None and method in API_ATTRIBUTES:
            problem = "an attribute the API classes already have"
        if problem is not None:
            yield Diagnostic(ioctl.mark, f"{ioctl.name} would become the Python API method {method!r}, "
                                         f"{problem}", "rename the ioctl")
        elif method in methods:
            other = methods[method]
            if other.name.casefold() == ioctl.name.casefold():
                continue   # check_case_clashes reports these
            yield Diagnostic(ioctl.mark, f"{ioctl.name} and {other.name} ({other.mark}) would both become "
                                         f"the Python API method {method!r}", "rename one of them")
        else:
            methods[method] = ioctl
    members: dict[str, ExitReason] = {}
    for item in model.of_kind(ExitReason):
        member = exit_member_name(item.name)
        problem = _python_name_problem(member)
        if problem is None and (_is_sunder(member) or member == "mro"):
            problem = "a name Python's enum reserves"
        if problem is not None:
            yield Diagnostic(item.mark, f"exit {item.name} would become ExitReason.{member or '(empty)'}, "
                                        f"{problem}", "name exit reasons KVM_EXIT_<WORD>")
        elif member in members:
            other = members[member]
            yield Diagnostic(item.mark, f"exits {item.name} and {other.name} ({other.mark}) would both "
                                        f"become ExitReason.{member}", "rename one of them")
        else:
            members[member] = item


def _python_name_problem(name: str) -> str | None:
    if not name.isidentifier() or not name.isascii():
        return "which is not a Python identifier"
    if keyword.iskeyword(name):
        return "a Python keyword"
    if _is_dunder(name):
        return "a name Python reserves"
    return None


def _absence(item: Definition) -> str:
    if item.removed is not None:
        return f"removed in {item.removed.since}"
    if item.c_guard is not None:
        return f"guarded by {item.c_guard.directive} {item.c_guard.name}, which does not hold for x86"
    return "not defined for x86"


def check_references_present(model: Model) -> Iterator[Diagnostic]:
    """What x86 userspace sees (headers, bindings) only uses what it also sees."""
    def dropped_within(rec: Record, until: Optional[Version], out: dict) -> dict:
        """id of each inline record -> the release its enclosing dropped field went (None: kept)."""
        for f in rec.fields:
            end = f.until or until
            if f.record is not None and f.record.inline:
                out[id(f.record)] = end
                dropped_within(f.record, end, out)
        return out

    for record in model.records:
        if not record.present:
            continue
        dropped = dropped_within(record, None, {})
        for rec in record.records_within(every_field=True):
            for f in rec.members:
                target = f.record
                until = f.until or dropped.get(id(rec))
                if target is not None and target.removed is not None and until is not None \
                        and until.parts <= target.removed.since.parts:
                    continue   # the field went no later than its type: no header has one without the other
                if target is not None and not target.inline and not target.present:
                    yield Diagnostic(f.mark, f"field {f.name} of {record.c_type} is a {target.c_type}, which is "
                                             f"{_absence(target)}", "restore it, or remove the field")
    for ioctl in model.ioctls:
        if not ioctl.present:
            continue
        for record in dict.fromkeys(r for r in (ioctl.type_record, ioctl.arg_record) if r is not None):
            if not record.present:
                yield Diagnostic(ioctl.mark, f"{ioctl.name} passes a {record.c_type}, which is {_absence(record)}",
                                 "list the struct under external_types: in the manifest if another "
                                 "architecture's header defines it, or remove the ioctl too")
        for cap in dict.fromkeys(c for c in (ioctl.capability, ioctl.arg_size_from,
                                             *(s.capability for s in ioctl.scopes)) if c is not None):
            if not cap.present:
                yield Diagnostic(ioctl.mark, f"{ioctl.name} needs {cap.name}, which is {_absence(cap)}",
                                 "name a capability that exists, or remove the ioctl too")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_expressions_present(model: Model) -> Iterator[Diagnostic]:
    """A value or array size that the headers print uses no name they leave out.

    A removed definition is not in the generated headers: a constant whose
    value names it would not compile. (Names under a guard that x86 does not
    define are the builder's concern: it cannot evaluate them.)
    """
    gone: dict[str, tuple[str, Any]] = {}   # name -> (what, its item or value)
    for item in model.items:
        if item.removed is not None:
            gone[item.name] = (f"{item.kind} {item.name}", item)
        if isinstance(item, (Enum, FlagSet)):
            for v in item.values:
                if v.removed is not None or item.removed is not None:
                    gone[v.name] = (f"value {v.name}", v if v.removed is not None else item)
    if not gone:
        return

    def uses(text: str) -> Iterator[str]:
        for name in _NAME.findall(text):
            if name in gone:
                yield name

    def problem(mark: Mark, user: str, name: str) -> Diagnostic:
        what, target = gone[name]
        return Diagnostic(mark, f"{user} uses {what}, which is removed in {target.removed.since} and so "
                                "missing from the generated headers",
                          f"mark it removed too, or write it without {name}")

    for item in model.items:
        if not item.present:
            continue
        if isinstance(item, Constant):
            for name in uses(item.expr):
                yield problem(item.mark, f"const {item.name}", name)
        elif isinstance(item, (Enum, FlagSet)):
            for v in item.values:
                if v.removed is None:
                    for name in uses(v.expr):
                        yield problem(v.value_mark, f"value {v.name}", name)
        elif isinstance(item, Record):
            for rec in item.records_within():
                for f in rec.members:
                    for text in f.dims_text:
                        for name in uses(str(text)):
                            yield problem(f.mark, f"the array size of {item.c_type}.{f.name}", name)


def check_member_names(model: Model) -> Iterator[Diagnostic]:
    """Member names are unique in a record, counting those of anonymous members (C11)."""
    def visible(rec: Record, since: Optional[Version] = None, until: Optional[Version] = None
                ) -> Iterator[tuple[Field, Optional[Version], Optional[Version]]]:
        """Named members with the releases they exist in (an anonymous member's bound theirs)."""
        for f in rec.fields:
            f_since = max((v for v in (f.since, since) if v is not None), key=lambda v: v.parts, default=None)
            f_until = min((v for v in (f.until, until) if v is not None), key=lambda v: v.parts, default=None)
            if f.name is not None:
                yield f, f_since, f_until
            elif f.record is not None:
                yield from visible(f.record, f_since, f_until)

    def apart(a: tuple, b: tuple) -> bool:
        """Whether two members never exist in the same release."""
        return any(x[2] is not None and y[1] is not None and x[2].parts <= y[1].parts for x, y in ((a, b), (b, a)))

    for record in model.records:
        for rec in record.records_within(every_field=True):
            seen: dict[str, tuple] = {}
            for entry in visible(rec):
                f = entry[0]
                other_entry = seen.get(f.name)
                other = other_entry[0] if other_entry is not None else None
                # Fields under opposite guards may share a name: only one is compiled;
                # so may fields that never exist in the same release.
                if other is not None and not _exclusive(other, f) and not apart(other_entry, entry):
                    yield Diagnostic(f.mark, f"{record.c_type} has two members named {f.name!r} "
                                             f"(the other at {other.mark})", "rename one of them")
                else:
                    seen.setdefault(f.name, entry)


def _exclusive(a: Field, b: Field) -> bool:
    return a.c_guard is not None and b.c_guard is not None and a.c_guard.name == b.c_guard.name \
        and a.c_guard.negated != b.c_guard.negated


# Where the names that generated headers use without defining come from.
TYPES_HEADER, IOCTL_HEADER = "linux/types.h", "linux/ioctl.h"
# Macros of other uapi headers that values may be written with, and their headers.
_MACRO_HEADERS = ((re.compile(r"\b(_BITULL?|_ULL?|_AC)\s*\("), "linux/const.h"),
                  (re.compile(r"\b__GENMASK(_ULL)?\s*\("), "linux/bits.h"))


def _expressions(item: Definition) -> Iterator[str]:
    """The C expressions an item's definition prints."""
    if isinstance(item, Constant):
        yield item.expr
    elif isinstance(item, FunctionMacro):
        yield item.body
    elif isinstance(item, (FlagSet, Enum)):
        yield from (v.expr for v in item.values if v.removed is None)


def _reachable_includes(model: Model, header) -> set[str]:
    """Everything a header includes, directly or through other generated headers."""
    by_include = {h.path.split("include/uapi/", 1)[-1]: h for h in model.headers}
    seen: set[str] = set()
    todo = list(header.includes)
    while todo:
        inc = todo.pop()
        if inc in seen:
            continue
        seen.add(inc)
        if inc in by_include:
            todo.extend(by_include[inc].includes)
    return seen


def check_header_includes(model: Model) -> Iterator[Diagnostic]:
    """A header includes <linux/types.h> if it uses __u32 and friends, <linux/ioctl.h> if it
    has ioctls, <linux/const.h> if a value is written with _BITUL() and friends: so that
    it compiles, and its macros expand, on its own (as the kernel's uapi header test wants)."""
    # A macro the manifest lists as external is, by definition, one the header leaves to
    # its includer (arm64's asm/kvm.h uses __GENMASK without including <linux/bits.h>).
    external = {m.name for m in model.external_macros}
    for header in model.headers:
        reachable = _reachable_includes(model, header)
        needs: dict[str, Definition] = {}
        for item in model.items_of_header(header.name):
            if not item.emitted:
                continue
            if isinstance(item, Ioctl):
                needs.setdefault(IOCTL_HEADER, item)
            elif isinstance(item, Record):
                for rec in item.records_within(every_field=True):
                    if any(f.scalar is not None and f.scalar.name.startswith("__") for f in rec.fields):
                        needs.setdefault(TYPES_HEADER, item)
            for text in _expressions(item):
                if "(" not in text:
                    continue   # no macro call: most values are numbers
                for pattern, include in _MACRO_HEADERS:
                    if any(m.group(0).split("(")[0].strip() not in external for m in pattern.finditer(text)):
                        needs.setdefault(include, item)
        for include, item in needs.items():
            if include not in reachable:
                what = {TYPES_HEADER: "uses the types of", IOCTL_HEADER: "has ioctls, which need"}.get(
                    include, "writes values with macros of")
                yield Diagnostic(header.mark or item.mark,
                                 f"header {header.name} {what} <{include}> but does not include it "
                                 f"({item.name}, at {item.mark}, is the first to need it)",
                                 f"add {include} to includes: of header {header.name}")


def check_header_arch(model: Model) -> Iterator[Diagnostic]:
    """An item in an architecture header exists on that architecture."""
    for item in model.items:
        header = model.header(item.header)
        if header.arch and item.arch and header.arch not in item.arch:
            yield Diagnostic(item.mark, f"{item.name} is emitted into {header.path}, but its "
                                        f"architectures ({', '.join(item.arch)}) do not include {header.arch}",
                             "fix arch:, or emit it into another header with header:")


def check_c_only_start(model: Model) -> Iterator[Diagnostic]:
    """The C-only part of a header (outline c_only: after:) starts after a name its outline places."""
    for header in model.headers:
        c_only = header.c_only
        if c_only is None or c_only.after is None:
            continue
        if not any(e.name == c_only.after for s in header.outline for e in s.entries):
            yield Diagnostic(c_only.mark, f"c_only: after: {c_only.after} is not a name of the outline of "
                                          f"header {header.name}",
                             "name the last definition before the header's #ifndef __ASSEMBLER__, or leave "
                             "after: out for a header that is C only as a whole")


CHECKS: tuple[Callable[[Model], Iterable[Diagnostic]], ...] = (
    check_c_only_start,
    check_nesting,
    check_value_sets,
    check_field_types,
    check_layouts,
    check_unique_numbers,
    check_ioctl_semantics,
    check_implementation_scope,
    check_exit_members,
    check_header_arch,
    check_case_clashes,
    check_output_names,
    check_references_present,
    check_expressions_present,
    check_member_names,
    check_header_includes,
)


def check_model(model: Model, invariants: bool = True) -> list[Diagnostic]:
    """Every rule a model must follow, with (by default) the compatibility invariants of one revision."""
    from .compat.invariants import INVARIANTS
    found: list[Diagnostic] = []
    for check in CHECKS + (INVARIANTS if invariants else ()):
        found.extend(check(model))
    return found
