"""Pieces every part of the builder shares: symbols, small helpers, layout lookups."""

from __future__ import annotations

from typing import Any, Callable, Optional

from .. import expr
from ..diagnostics import Mark
from ..layout import ABIS, Abi
from ..load import Int, Map
from ..spelling import NameIndex
from ..model import Field, Record, Version


# Constants defined through others, one inside the other, at most this deep.
MAX_CHAIN = 100
# Top-level directories of generated/ that generators other than the C headers own.
OTHER_OUTPUTS = {"python", "tests", "documentation"}
KVMIO_NAME = "KVMIO"


class _Symbol:
    """A name in the C macro namespace whose value is an expression. (A plain
    class: it is filled in as the build evaluates it.)"""

    __slots__ = ("name", "text", "at", "at_key", "owner", "c_enum", "values", "busy", "compute", "unevaluable",
                 "arches", "elsewhere", "arch_dependent")

    def __init__(self, name: str, text: str, at: Map, at_key: str, owner: Optional[Map] = None,
                 c_enum: bool = False,
                 values: Optional[list] = None, busy: bool = False,
                 compute: Optional[Callable[[], Optional[list]]] = None, unevaluable: bool = False,
                 arches: tuple[str, ...] = (), elsewhere: frozenset = frozenset(),
                 arch_dependent: bool = False) -> None:
        self.name = name
        self.text = text
        self.at, self.at_key = at, at_key      # where it is defined: at.mark_of(at_key)
        self.owner = owner                      # the item defining it
        self.c_enum = c_enum                    # a C enumerator (type int) rather than a macro
        self.values = values                    # evaluated, per ABI
        self.busy = busy
        self.compute = compute                  # for values that are not expressions
        self.unevaluable = unevaluable          # refers to a macro its architectures' headers never define
        self.arches = arches                    # where its definition is seen (ABIs of others get None)
        self.elsewhere = elsewhere              # ABIs whose headers lack a macro it uses
        self.arch_dependent = arch_dependent    # its value may differ between ABIs of one evaluation class

    @property
    def mark(self) -> Mark:
        """Where it is defined (made only for a diagnostic: thousands of symbols need none)."""
        return self.at.mark_of(self.at_key)

    def __repr__(self) -> str:
        return f"_Symbol({self.name!r}, {self.text!r})"


def _text(value: Any) -> str:
    """An expression's text: integers as written in YAML, strings as they are."""
    if isinstance(value, Int):
        return value.text
    return str(value)


class NotDefinedHere(expr.ExprError):
    """An expression needs a macro that the headers of this ABI's architecture never define."""



def field_hint(record: Optional[Record], path: str, otherwise: str) -> str:
    """The hint for a field path the record does not have: the closest path it has, if any."""
    close = NameIndex(p for p, f, _ in record.deep_walk() if f.name).suggestion(path) if record else ""
    return f"{close} If not, {otherwise}" if close else otherwise


def _product(dims: tuple[int, ...]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def member_offset(record: Record, path: tuple, abi: Abi) -> "int | str":
    """The byte offset of the member `path` (names and subscripts) names in `record`,
    or what is wrong with the path."""
    offset = 0
    current: Optional[Record] = record
    pending: tuple[int, ...] = ()     # dimensions of the array member reached, not yet subscripted
    element = 0                        # size of one element of that array
    for step in path:
        if isinstance(step, int):
            if not pending:
                return f"{step} subscripts a member that is not an array"
            if not 0 <= step < pending[0] and not (len(pending) == 1 and pending[0] == 0):
                return f"subscript {step} is outside the array of {pending[0]}"
            stride = element
            for d in pending[1:]:
                stride *= d
            offset += step * stride
            pending = pending[1:]
            continue
        if pending:
            return f"{step!r} follows an array member without a subscript"
        if current is None:
            return f"{step!r} names a member of something that is not a struct or union"
        found = _find_member(current, step, abi)
        if found is None:
            return f"{current.c_type} has no member {step!r}"
        fld, at = found
        offset += at
        current = fld.record_at(abi)
        pending = (0,) if fld.flexible else fld.dims
        element = fld.element_size(abi)
    return offset   # a whole array member: the offset of its first element


def _find_member(record: Record, name: str, abi: Abi) -> "Optional[tuple[Field, int]]":
    """A member of `record` by name, looking into anonymous members, with its offset."""
    index = ABIS.index(abi)
    for fld in record.fields:
        if not fld.active:
            continue
        if not fld.offsets or fld.offsets[index] is None:   # not on this architecture
            continue
        if fld.name == name:
            return fld, fld.offsets[index]
        if fld.name is None and fld.record_at(abi) is not None:
            inner = _find_member(fld.record_at(abi), name, abi)
            if inner is not None:
                return inner[0], fld.offsets[index] + inner[1]
    return None


def _removed_in(raw: Any) -> Optional[Version]:
    """The release that removed an item or value, if the spec says one did."""
    removed = raw.get("removed") if isinstance(raw, dict) else None
    since = removed.get("since") if isinstance(removed, dict) else None
    return Version.parse(since) if isinstance(since, str) else None


# For each ABI, the first ABI of its layout class (x86_64 for every LP64 ABI).
_CLASS_REP: tuple[int, ...] = tuple(next(j for j, other in enumerate(ABIS) if other.layout_class == abi.layout_class)
                                    for abi in ABIS)
_CLASS_REPS: tuple[int, ...] = tuple(sorted(set(_CLASS_REP)))
