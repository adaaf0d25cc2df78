"""The model seen from one architecture at one release.

The model holds every architecture and every release at once: an item exists
from `since` until `removed`, lived in other headers before its `moves`, and
constants, enum values and record fields carry their earlier forms. A view
answers "what did the headers of architecture A define in release R": which
items, in which header, with which value expressions and which fields. The
C header generator renders a view, so the generated headers of any release
come from the same templates as the newest ones.
"""

from __future__ import annotations

import functools
from typing import Optional

from .layout import ABI_INDEX, SCALARS, Abi, Layout, Member, record_layout
from .model import Constant, Definition, Field, Model, NamedValue, Record, ValueSet, Version
from .valuetype import replace


def newest_release(model: Model) -> Version:
    """The newest release the spec describes (the default view)."""
    return model.newest


def first_arch_release(model: Model, arch: str) -> Optional[Version]:
    """The first release whose headers had `arch`'s asm/kvm.h: the earliest `since` of an
    item that header defined when it was added (items moved in from linux/kvm.h later do
    not count). None when the spec describes no asm/kvm.h of `arch`. Before it, the
    architecture had no KVM and a header tree of it has nothing to compare."""
    return first_arch_releases(model).get(arch)


def first_arch_releases(model: Model) -> dict[str, Version]:
    """first_arch_release of every architecture that has one, in one walk of the items."""
    arch_of = {h.name: h.arch for h in model.headers if h.arch is not None and h.emit}
    first: dict[str, Version] = {}
    for item in model.items:
        if item.since is None:
            continue
        arch = arch_of.get(item.header_at(item.since))
        if arch is None:
            continue
        known = first.get(arch)
        if known is None or item.since.parts < known.parts:
            first[arch] = item.since
    return first


class View:
    """The items of the headers that userspace of `arch` (None: every architecture) saw
    in `release`, each as it was then."""

    def __init__(self, model: Model, release: Optional[Version] = None, arch: Optional[str] = None) -> None:
        self.model = model
        self.release = release if release is not None else newest_release(model)
        self.arch = arch
        self.newest = self.release >= newest_release(model)
        self._layouts: dict[tuple, Optional[Layout]] = {}
        self._records: dict[tuple[str, str], Optional[Record]] = {}
        self._members: dict[tuple, Optional[list]] = {}
        self._made: dict[int, Definition] = {}
        # Whether the view has each header: linux/kvm.h and its architecture's (every one without)
        self._shown = {h.name: arch is None or h.arch in (None, arch) for h in model.headers}

    @functools.cached_property
    def items(self) -> list[Definition]:
        """Every item of the view, in emission order, as it was in the release."""
        return [self.item_at(i) for i in self.visible]

    @functools.cached_property
    def visible(self) -> list[Definition]:
        """The model's items that the view sees (sees()), in emission order, as the model
        has them (items: as they were in the release)."""
        if self.arch is None:
            if self.newest:   # sees() written out: every item not removed
                return [i for i in self.model.items if i.removed is None]
            return [i for i in self.model.items if self.sees(i)]
        # an item that never moved, in a header of another architecture, is not seen (most of them)
        shown = self._shown
        return [i for i in self.model.items if (i.moves or shown[i.header]) and self.sees(i)]

    def sees(self, item: Definition) -> bool:
        if self.newest:
            if item.removed is not None:
                return False
        elif not item.exists_at(self.release):
            return False
        if self.arch is None:
            return True
        if not item.moves:   # most items: home() and guard_holds() written out
            return self._shown[item.header] and (item.c_guard is None or self.guard_holds(item))
        if self.home(item) is None:
            return False
        move = item.move_at(self.release)
        if move is not None and move.c_guard is not None:   # the #ifdef it had in its old header
            return self.arch in move.guard_on
        return self.guard_holds(item)

    # ------------------------------------------------------------ availability
    def has(self, thing: "Definition | NamedValue", arch: Optional[str] = None,
            owner: Optional[ValueSet] = None) -> bool:
        """Whether architecture `arch` (by default the view's; None: any) has an item, or a
        value of the set `owner`, at the view's release: what its arch: list says
        ({riscv: "6.10"}: from 6.10 on), within its since and removal. A value without an
        arch: list of its own is on its set's architectures, from their releases."""
        if not thing.exists_at(self.release):
            return False
        arch = arch if arch is not None else self.arch
        if arch is None:
            return True
        since = self.since_on(thing, arch, owner)
        return since is not None and since.parts <= self.release.parts

    @staticmethod
    def since_on(thing: "Definition | NamedValue", arch: str, owner: Optional[ValueSet] = None) -> Optional[Version]:
        """The first release in which `arch` has an item or a value of `owner` (None: never)."""
        own = thing.since_on(arch)
        if owner is None or own is None:
            return own
        from_set = owner.since_on(arch)
        if from_set is None:   # a value of its own architecture in a set that does not name it
            return None if not thing.arch else own
        return max(own, from_set)

    def arches_of(self, thing: "Definition | NamedValue", owner: Optional[ValueSet] = None) -> tuple[str, ...]:
        """The architectures that have an item (or a value of `owner`) at the view's release."""
        return tuple(a.name for a in self.model.architectures if self.has(thing, a.name, owner))

    def guard_holds(self, item: Definition) -> bool:
        """Whether the item's #ifdef (#ifndef) holds in this view: whether the view sees a
        definition of the macro in this release. A macro the spec does not define (an
        external one) is as the model says."""
        guard = item.c_guard
        if guard is None:
            return True
        definitions = [i for i in self._by_name.get(guard.name, ()) if i is not item]
        if not definitions:
            return not item.guard_on or self.arch in item.guard_on
        return any(self.sees(i) for i in definitions) != guard.negated

    @functools.cached_property
    def _by_name(self) -> dict[str, list[Definition]]:
        """Definitions by name, leaving out defaults (an item guarded by #ifndef of its own name)."""
        return _model_indexes(self.model)[0]

    def home(self, item: Definition) -> Optional[str]:
        """The header of the view that defined the item in its release (None: no header of its architecture)."""
        if not item.moves:   # most items: one header in every release
            header = item.header
            return header if self.arch is None or self._shown[header] else None
        return next((h for h in item.headers_at(self.release) if self.arch is None or self._shown[h]), None)

    def items_of_header(self, header: str) -> list[Definition]:
        return list(self._by_header.get(header, ()))

    @functools.cached_property
    def _by_header(self) -> dict[str, list[Definition]]:
        """The items of the view by their header then, in emission order (items_of_header)."""
        index: dict[str, list[Definition]] = {}
        for i in self.items:
            index.setdefault(i.header, []).append(i)
        return index

    def as_model(self) -> "ViewModel":
        """The view in the model's shape, for code written against a model (one per view:
        the headers of a view are each rendered from it)."""
        return self._as_model

    @functools.cached_property
    def _as_model(self) -> "ViewModel":
        return ViewModel(self)

    def headers(self) -> list:
        """The headers the view writes: linux/kvm.h, and the asm/kvm.h of its architecture
        (of every architecture when the view has none)."""
        return [h for h in self.model.headers if h.emit and (self.arch is None or h.arch in (None, self.arch))]

    # ------------------------------------------------------------ items as they were
    def item_at(self, item: Definition) -> Definition:
        if self.newest and not item.moves and self.arch in (None, "x86"):
            return self._fields_at(item) if isinstance(item, Record) else item
        header = self.home(item) or item.header_at(self.release)
        if isinstance(item, Constant):
            item = self._expr_at(item)
        elif isinstance(item, ValueSet):
            values = tuple([self._expr_at(v) for v in item.values if v.exists_at(self.release)])
            if len(values) != len(item.values) or any(a is not b for a, b in zip(values, item.values)):
                item = replace(item, values=values)
            until = getattr(item, "defines_until", None)
            if until is not None and self.release < until:   # plain #defines before it became an enum
                item = replace(item, c_style="define", c_define_values=False)
        elif isinstance(item, Record):
            item = self._fields_at(item)
        if header != item.header:
            move = item.move_at(self.release)
            item = replace(item, header=header, c_guard=move.c_guard if move is not None else item.c_guard)
        return item

    def _expr_at(self, thing: "Constant | NamedValue") -> "Constant | NamedValue":
        """A constant or value with the expression it had in the release (itself if unchanged)."""
        if not thing.history:
            return thing
        expr = thing.expr_at(self.release)
        return thing if expr == thing.expr else replace(thing, expr=expr)

    def _fields_at(self, record: Record) -> Record:
        fields = []
        changed = False
        for f in record.fields:
            if not f.exists_at(self.release) or (self.arch is not None and not self._field_on(f, self.arch)):
                changed = True
                continue
            # most fields are as they always were: no history and no inline record (field_at's own test)
            new = f if not f.history and (f.record is None or not f.record.inline) else self.field_at(f)
            if self.arch is not None and not new.active:
                new = replace(new, active=True)   # in an architecture's view, what it sees is active
            changed = changed or new is not f
            fields.append(new)
        return replace(record, fields=tuple(fields)) if changed else record

    def field_at(self, f: Field) -> Field:
        if f.record is not None and f.record.inline:
            inner = self._fields_at(f.record)
            if inner is not f.record:
                f = replace(f, record=inner)
        past = f.past(self.release) if f.history else None
        if past is None:
            return f
        changes: dict = {}
        if past.name is not None:
            changes["name"] = past.name
        if past.array is not None:
            changes["dims_text"] = (past.array,)
            changes["flexible"] = past.array == "flexible"
        if past.type is not None:
            if past.type in SCALARS:
                changes.update(scalar=SCALARS[past.type], record=None)
            else:
                name = past.type.split(" ", 1)[1]
                target = self.model.lookup(name, self.arch or "x86") or self.model.by_name.get(name)
                changes.update(scalar=None, record=target)
        return replace(f, **changes)


    # ------------------------------------------------------------ layouts then
    def record(self, name: str, arch: str) -> Optional[Record]:
        """The record `name` as the view has it, in the headers of `arch`."""
        key = (name, arch)
        if key in self._records:
            return self._records[key]
        found = None
        for candidate in _model_indexes(self.model)[1].get(name, ()):
            if not self.sees(candidate):
                continue
            item = self.then(candidate)
            home = self.model.header(item.header).arch
            if home == arch:
                found = item
                break
            if home is None and found is None:
                found = item
        self._records[key] = found
        return found

    def then(self, item: Definition) -> Definition:
        """item_at, once per item and view (layouts are cached by the identity of the record)."""
        made = self._made.get(id(item))
        if made is None:
            made = self._made[id(item)] = self.item_at(item)
        return made

    @staticmethod
    def _field_on(f: Field, arch: str) -> bool:
        """Whether architecture `arch` has the field of a record it sees. Only a field's own
        #ifdef takes it away: a record that an architecture's header holds today but
        linux/kvm.h held for everyone before (kvm_ppc_pvinfo until 6.9) has its fields on
        every architecture that saw it then."""
        return f.c_guard is None or arch in f.active_on

    def layout(self, record: "Record | str", abi: Abi) -> Optional[Layout]:
        """The layout of a record on `abi` as it was at the view's release: the
        C layout rules applied to the fields it had then (None if a member's type
        was not defined there)."""
        if isinstance(record, str):
            found = self.record(record, abi.arch)
            if found is None:
                return None
            record = found
        key = (id(record), abi.name)
        if key in self._layouts:
            return self._layouts[key]
        self._layouts[key] = None   # a record cannot contain itself
        members = self.members(record, abi)
        if members is None:
            return None
        layout = self._layouts[key] = record_layout([Member(size, align, count, then.bits)
                                                     for _, then, size, align, count in members], record.is_union)
        return layout

    def members(self, record: Record, abi: Abi) -> Optional[list[tuple[Field, Field, int, int, int]]]:
        """The members of a record on `abi` at the view's release, in order, each as
        (the model's field, the field as it was then, element size, alignment, element
        count); None if a member's type was not defined there. Inline records are laid
        out (and cached) under the model's own record, which lives as long as the model."""
        key = (id(record), abi.name)
        if key in self._members:
            return self._members[key]
        self._members[key] = None
        members = []
        for f in record.fields:
            if not f.exists_at(self.release) or not self._field_on(f, abi.arch):   # not there then, or
                continue                                                       # its #ifdef does not hold
            then = self.field_at(f)
            if then.scalar is not None:
                size, align = then.scalar.size(abi), then.scalar.align(abi)
            else:
                assert then.record is not None and f.record is not None
                inner = self.layout(f.record if f.record.inline else then.record.name, abi)
                if inner is None:
                    return None
                size, align = inner.size, inner.align
            count = 0 if then.flexible else self._count(f, abi)
            if count is None:
                return None
            members.append((f, then, size, align, count))
        self._members[key] = members
        return members

    def _count(self, f: Field, abi: Abi) -> Optional[int]:
        """Elements of an array field then: its dimensions, or its earlier size (a
        number or a constant's name) where its history says so."""
        past = f.past(self.release) if f.history else None
        if past is None or past.array is None:
            n = 1
            for d in f.dims:
                n *= d
            return n
        text = past.array
        if text.isdigit() or text.lower().startswith("0x"):
            return int(text, 0)
        constant = self.model.by_name.get(text)
        if isinstance(constant, Constant) and constant.values:
            value = constant.values[ABI_INDEX[abi.name]]
            if constant.history:
                then = constant.expr_at(self.release)
                if then.isdigit() or then.lower().startswith("0x"):
                    return int(then, 0)
            return value
        return None


_INDEXES: dict[int, tuple[Model, tuple[dict, dict]]] = {}


def _model_indexes(model: Model) -> tuple[dict[str, list[Definition]], dict[str, list[Record]]]:
    """Per model, shared by its views: definitions by name (leaving out defaults, items
    guarded by #ifndef of their own name), and records by name, in the model's order."""
    entry = _INDEXES.get(id(model))
    if entry is not None and entry[0] is model:
        return entry[1]
    by_name: dict[str, list[Definition]] = {}
    records: dict[str, list[Record]] = {}
    for i in model.items:
        if not (i.c_guard is not None and i.c_guard.negated and i.c_guard.name == i.name):
            by_name.setdefault(i.name, []).append(i)
        if isinstance(i, Record):
            records.setdefault(i.name, []).append(i)
    if len(_INDEXES) >= 4:   # a few models at a time (compat compares two)
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(model)] = (model, (by_name, records))
    return by_name, records


class ViewModel:
    """A view that answers as a model does: its items (as they were at its release),
    by name and by header; everything else is the model's."""

    def __init__(self, view: View, only_view: bool = False) -> None:
        self._view = view
        self.items = view.items
        own = {i.name: i for i in view.items}
        # only_view: names the release did not have are unknown (a review of a patch for it)
        self.by_name = own if only_view else {**view.model.by_name, **own}

    def items_of_header(self, header: str) -> list[Definition]:
        return self._view.items_of_header(header)

    def of_kind(self, kind: type) -> list:
        return [i for i in self.items if isinstance(i, kind)]

    @property
    def capabilities(self) -> list:
        from .model import Capability
        return self.of_kind(Capability)

    @property
    def ioctls(self) -> list:
        from .model import Ioctl
        return self.of_kind(Ioctl)

    @property
    def records(self) -> list:
        return self.of_kind(Record)

    def __getattr__(self, name: str):
        return getattr(self._view.model, name)


def header_files(model: Model, release: Optional[Version], arch: str, env) -> dict[str, str]:
    """The KVM uapi headers of `arch` at `release`, as `make headers_install` lays them out
    (linux/kvm.h, asm/kvm.h). Each header is the same text on every architecture that
    has it, so each is rendered from the view of its own architecture (linux/kvm.h:
    of all, with their #ifdef blocks)."""
    from .emit.c_header import render_header
    out = {}
    for header in View(model, release, arch).headers():
        out[header.include_name] = render_header(View(model, release, header.arch), header, env)
    return out
