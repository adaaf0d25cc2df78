"""C uapi headers, one per header in the manifest, at their kernel-tree paths.

A header defines its names in the order of its outline (the kernel's order,
spec/outline/*.yaml), or, for a header without one, in the order of the spec
files. `header_text(..., release=R)` is the header as it was at release R:
only what existed then, where it was then (the outline's since:/until:).
"""

from __future__ import annotations

import functools
from itertools import groupby
from typing import Optional

from ..model import Definition, Guard, Header, Model, NamedValue, Record, Version
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


@functools.lru_cache(maxsize=4)
def _set_values(model: Model) -> dict[str, tuple[Definition, NamedValue]]:
    """The values of the sets printed as #defines, by name: (set, value). Once per model
    (a view's), for all its headers."""
    return {v.name: (i, v) for i in model.items if _defines_values(i) for v in i.values}


class _Outline:
    """A header's outline resolved against the model: which values it places
    one by one, and where the values of a set it leaves out go."""

    def __init__(self, model: Model, header: Header, release: Optional[Version]) -> None:
        self.model, self.header, self.release = model, header, release
        own = model.items_of_header(header.name)
        self.own = {i.name: i for i in own}
        self.value_of = dict(_set_values(model))
        # Where several architectures' headers define a value (KVM_GUESTDBG_USE_SW_BP), this
        # header's own definition is the one its outline places.
        self.value_of.update({v.name: (i, v) for i in own if _defines_values(i) for v in i.values})
        entries = [e for s in header.outline for e in s.entries]
        # structs the header defines in a member's declaration (c_defines_type), not on their own
        self.defined_in_place = {f.record.name for i in self.own.values() if isinstance(i, Record)
                                 for r in i.records_within(every_field=True) for f in r.fields
                                 if f.c_defines_type and f.record is not None}
        self.named = {e.name for e in entries}
        self.taken = {e.name for e in entries if e.name in self.value_of}      # values placed one by one
        self.last_value_entry = {self.value_of[e.name][0].name: e for e in entries if e.name in self.value_of}

    def here(self, value_set: Definition) -> bool:
        """Whether this header holds a set's values in the view: a set that lived in
        another header at the release (s390's values in linux/kvm.h before 6.9) is
        printed there, not where the outline places it today."""
        return value_set.header == self.header.name

    def values_at(self, entry) -> tuple[Definition, tuple[NamedValue, ...]]:
        """The set of a value entry, and the values printed there: the value, and
        after the set's last placed value those of the set the outline leaves out."""
        item, value = self.value_of[entry.name]
        if not item.exists_at(self.release):
            return item, ()
        values = (value,) if value.exists_at(self.release) else ()
        if self.last_value_entry[item.name] is entry and item.name not in self.named:
            values += tuple(v for v in item.values if v.name not in self.taken and v.exists_at(self.release))
        return item, values

    def sections(self) -> list[Section]:
        """The header's definitions, in the order of its outline."""
        sections = []
        c_only = self.header.c_only
        self.c_from: Optional[int] = 0 if c_only is not None and c_only.after is None else None
        for section in self.header.outline:
            pieces: list[Piece] = []
            for entry in section.entries:
                if not entry.placed_at(self.release) or entry.within:
                    continue
                if entry.name in self.value_of and entry.name not in self.own:
                    item, values = self.values_at(entry)
                    if not values or not self.here(item):
                        continue
                    if pieces and pieces[-1].item is item and pieces[-1].values is not None:
                        pieces[-1] = Piece(item, pieces[-1].values + values)
                    else:
                        pieces.append(Piece(item, values))
                    continue
                item = self.own.get(entry.name) if entry.until is None else self.model.by_name.get(entry.name)
                if item is None or not item.exists_at(self.release) or item.name in self.defined_in_place:
                    continue
                piece = _whole(item, self.release, self.taken)
                if piece is not None:
                    pieces.append(piece)
            if pieces:
                sections.append(Section(section.comment, _runs(pieces)))
            if c_only is not None and self.c_from is None and any(e.name == c_only.after for e in section.entries):
                self.c_from = len(sections)
        return sections

    def inside(self) -> dict[int, list]:
        """{id(member): definitions} for what the outline defines inside a record's
        body (`within:`): before the member its path names, else before the member
        that holds the value's set, else before the first member. Keyed by identity:
        a member's hash is that of its whole content."""
        before: dict[int, list] = {}
        for entry in (e for s in self.header.outline for e in s.entries):
            if not entry.within or not entry.placed_at(self.release):
                continue
            name, _, path = entry.within.partition(".")
            record = self.model.by_name.get(name)
            if record is None or not record.exists_at(self.release):
                continue
            if entry.name in self.value_of:
                item, values = self.values_at(entry)
            else:                                  # a constant
                item = self.model.by_name.get(entry.name)
                if item is None:                   # not in this view (removed by then)
                    continue
                values = (item,) if item.exists_at(self.release) else ()
            member = record.field_at(path) if path else _holder(record, item, self.release)
            if member is None or not member.exists_at(self.release):
                member = next((f for f in record.fields if f.exists_at(self.release)), None)
            before.setdefault(id(member), []).extend(values)
        return before


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
    c_from: Optional[int] = None
    if header.outline:
        outline = _Outline(model, header, release)
        sections, inside = outline.sections(), outline.inside()
        c_from = outline.c_from
    else:
        sections, inside = file_sections(model, header, release), {}
    # the part only C reads: its #ifndef, opened before section c_from (with the includes)
    c_only = None if header.c_only is None else (header.c_only.macro_at(release), min(c_from or 0, len(sections)))

    def before(member) -> list:
        """What the header defines inside a record just before this member."""
        return inside.get(id(member), [])

    return env.get_template("c_header/header.h.j2").render(header=header, sections=sections, release=release,
                                                             before=before, source=SOURCE, c_only=c_only,
                                                             includes=header.includes_at(release))


def render_header(view, header, env) -> str:
    """One header as a view (an architecture at a release) has it: the view's items,
    each as it was then (values, fields, the header it lived in), in the outline's order."""
    return header_text(view.as_model(), header, env, None if view.newest else view.release)


class Generator:
    name = "c_header"

    def render(self, model: Model, env) -> dict[str, str]:
        from ..view import View
        view = View(model)   # the newest release, every architecture
        return {header.path: render_header(view, header, env) for header in view.headers()}
