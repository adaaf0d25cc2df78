"""C uapi headers, one per header in the manifest, at their kernel-tree paths.

A header defines its names in the order of its outline (the kernel's order,
spec/outline/*.yaml), or, for a header without one, in the order of the spec
files. `header_text(..., release=R)` is the header as it was at release R:
only what existed then, where it was then.
"""

from __future__ import annotations

from itertools import groupby
from typing import Optional

from ..model import Definition, Guard, Header, Model, NamedValue, Version
from ..valuetype import value_type

SOURCE = "spec/kvmspec.yaml"


@value_type
class Piece:
    """An item printed whole (values None), or some values of a flag set or
    enum that is printed as #defines."""

    item: Definition
    values: Optional[tuple[NamedValue, ...]] = None


@value_type
class Run:
    """Consecutive pieces under the same #ifdef (guard None: none)."""

    guard: Optional[Guard]
    pieces: tuple[Piece, ...]


@value_type
class Section:
    """Definitions printed without blank lines between them, under an optional comment."""

    comment: str
    runs: tuple[Run, ...]


def _defines_values(item: Definition) -> bool:
    return item.kind in ("flags", "enum") and getattr(item, "c_style", "") == "define"


def _runs(pieces: list[Piece]) -> tuple[Run, ...]:
    return tuple(Run(guard, tuple(group)) for guard, group in groupby(pieces, key=lambda p: p.item.c_guard))


def _whole(item: Definition, release: Optional[Version], taken: set[str] = frozenset()) -> Optional[Piece]:
    """The item as one piece (without the values printed elsewhere), or None if nothing is left."""
    if not _defines_values(item):
        return Piece(item)
    values = tuple(v for v in item.values if v.name not in taken and v.exists_at(release))
    return Piece(item, values) if values else None


def _holder(record, value_set: Definition, release: Optional[Version]):
    """The first member (depth first) of a record that holds values of the set, or None."""
    for f in record.fields:
        if not f.exists_at(release):
            continue
        if any(vs.name == value_set.name for vs in f.value_sets):
            return f
        if f.record is not None and f.record.inline:
            found = _holder(f.record, value_set, release)
            if found is not None:
                return found
    return None


def _inside(model: Model, header: Header, release: Optional[Version], value_of: dict) -> dict:
    """{id(member): values} for the values the outline defines inside a record's body:
    printed before the member that holds their set (else before the first member)."""
    entries = [e for s in header.outline for e in s.entries]
    named = {e.name for e in entries}
    taken = {e.name for e in entries if e.name in value_of}
    last_value_entry = {value_of[e.name][0].name: e for e in entries if e.name in value_of}
    before: dict = {}
    for entry in (e for e in entries if e.within and e.placed_at(release)):
        name, _, path = entry.within.partition(".")
        record = model.by_name.get(name)
        if record is None or not record.exists_at(release):
            continue
        if entry.name in value_of:
            item, value = value_of[entry.name]
            values = [value] if value.exists_at(release) and item.exists_at(release) else []
            if last_value_entry[item.name] is entry and item.name not in named and item.exists_at(release):
                values += [v for v in item.values if v.name not in taken and v.exists_at(release)]
        else:                                  # a constant
            item = model.by_name[entry.name]
            values = [item] if item.exists_at(release) else []
        member = record.field_at(path) if path else _holder(record, item, release)
        if member is None or not member.exists_at(release):
            member = next((f for f in record.fields if f.exists_at(release)), None)
        # keyed by identity: a member's hash is that of its whole content
        before.setdefault(id(member), []).extend(values)
    return before


def outline_sections(model: Model, header: Header, release: Optional[Version]) -> list[Section]:
    """The header's definitions at a release, in the order of its outline."""
    own = {i.name: i for i in model.items_of_header(header.name)}
    value_of: dict[str, tuple[Definition, NamedValue]] = {}
    for item in model.items:
        if _defines_values(item):
            for v in item.values:
                value_of[v.name] = (item, v)
    entries = [e for s in header.outline for e in s.entries]
    named = {e.name for e in entries}
    taken = {e.name for e in entries if e.name in value_of}          # values placed one by one
    last_value_entry = {value_of[e.name][0].name: e for e in entries if e.name in value_of}

    sections = []
    for section in header.outline:
        pieces: list[Piece] = []
        for entry in section.entries:
            if not entry.placed_at(release) or entry.within:
                continue
            if entry.name in value_of and entry.name not in own:
                item, value = value_of[entry.name]
                if not item.exists_at(release):
                    continue
                values = (value,) if value.exists_at(release) else ()
                if last_value_entry[item.name] is entry and item.name not in named:
                    # the set's values the outline does not place follow its last placed one
                    values += tuple(v for v in item.values if v.name not in taken and v.exists_at(release))
                if not values:
                    continue
                if pieces and pieces[-1].item is item and pieces[-1].values is not None:
                    pieces[-1] = Piece(item, pieces[-1].values + values)
                else:
                    pieces.append(Piece(item, values))
                continue
            item = own.get(entry.name) if entry.until is None else model.by_name.get(entry.name)
            if item is None or not item.exists_at(release):
                continue
            piece = _whole(item, release, taken)
            if piece is not None:
                pieces.append(piece)
        if pieces:
            sections.append(Section(section.comment, _runs(pieces)))
    return sections


def file_sections(model: Model, header: Header, release: Optional[Version]) -> list[Section]:
    """A header without an outline: its items in spec order, one section per spec file."""
    items = [i for i in model.items_of_header(header.name) if i.exists_at(release)]
    sections = []
    for spec_file, group in groupby(items, key=lambda i: i.file):
        pieces = [p for p in (_whole(i, release) for i in group) if p is not None]
        if pieces:
            sections.append(Section(spec_file.title, _runs(pieces)))
    return sections


def header_text(model: Model, header: Header, env, release: Optional[Version] = None) -> str:
    """The text of one header at a release (None: the newest view, which generated/ holds)."""
    sections = (outline_sections if header.outline else file_sections)(model, header, release)
    value_of = {v.name: (i, v) for i in model.items if _defines_values(i) for v in i.values}
    inside = _inside(model, header, release, value_of) if header.outline else {}

    def before(member) -> list:
        """What the header defines inside a record just before this member."""
        return inside.get(id(member), [])

    return env.get_template("c_header/header.h.j2").render(header=header, sections=sections,
                                                             release=release, before=before, source=SOURCE)


class Generator:
    name = "c_header"

    def render(self, model: Model, env) -> dict[str, str]:
        return {header.path: header_text(model, header, env) for header in model.headers}
