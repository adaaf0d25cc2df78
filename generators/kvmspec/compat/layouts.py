"""Record layouts over the release history: the layout part of `kvmspec compat --history`.

At every transition R1 -> R2 and on every ABI, each record that userspace of
the ABI's architecture saw at both releases is laid out as it was at each
(`View.layout`): size, alignment, and every field's offset, size and name.
What userspace built for R1 meets on R2:

- a field that moved, changed size, was renamed or is gone (unless it was
  reserved bytes at R1) is a break: old binaries read and write other bytes,
  old sources no longer build;
- a record whose size changed is a break where an ioctl passes it, since the
  kernel copies sizeof() bytes of it and the ioctl number encodes that size
  (the number change is reported with it). A record that only lives inside
  another one (a union member, kvm_run's mapped page) is judged through its
  container: growth into a union's spare room, or at the end of kvm_run,
  changes nothing for old binaries;
- a field carved out of reserved bytes or padding, at the offsets it had, and
  an alignment change that moves nothing, are compatible.

A record's layout can only change at the releases its fields' history names
(since, until, history:) or those of the records and constants it uses, so
layouts are computed once per (record, layout class, span between those
releases) and shared by the ABIs of one layout class.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterator, Optional

from ..layout import ABIS, Abi
from ..model import Constant, Field, Ioctl, Model, Record, Version
from ..view import View, _model_indexes
from .rules import RULES, Finding


@dataclass(frozen=True)
class Place:
    """One field of a record as laid out on one ABI at one release."""

    key: tuple[int, ...]   # identity: the model's Field objects along the path (id)
    name: str              # dotted path, with the names it had then
    offset: int
    size: int
    reserved: bool         # reserved bytes then
    nested: bool           # of another (named) record's type, judged as a record of its own


@dataclass(frozen=True)
class Shape:
    size: int
    align: int
    places: tuple[Place, ...]

    def by_key(self) -> dict[tuple[int, ...], Place]:
        return {p.key: p for p in self.places}


def _then_reserved(f: Field, release: Version) -> bool:
    past = f.past(release)
    return f.reserved or (past is not None and past.reserved)


class LayoutHistory:
    """Layouts of the model's records at any release, computed once per span in which they cannot change."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._views: dict[tuple, View] = {}
        self._shapes: dict[tuple, Optional[Shape]] = {}
        self._points: dict[int, tuple[tuple[int, ...], ...]] = {}
        self._by_arch: dict[int, bool] = {}
        self.computed = 0   # layouts really computed (the rest came from the cache)

    def view(self, release: Version, arch: str) -> View:
        key = (release.parts, arch)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = View(self.model, release, arch)
        return view

    # ------------------------------------------------------------ when a layout can change
    def _nested(self, f: Field) -> list[Record]:
        """The named records a field's type is or was (every architecture's variant)."""
        names = set()
        if f.record is not None and not f.record.inline:
            names.add(f.record.name)
        for r in f.records:
            if r is not None and not r.inline:
                names.add(r.name)
        for h in f.history:
            if h.type is not None and h.type.startswith(("struct ", "union ")):
                names.add(h.type.split(" ", 1)[1])
        records = _model_indexes(self.model)[1]
        return [r for n in sorted(names) for r in records.get(n, ())]

    def change_points(self, record: Record) -> tuple[tuple[int, ...], ...]:
        """The releases (as version parts) at which the record's layout may differ from the release before."""
        key = id(record)
        if key in self._points:
            return self._points[key]
        self._points[key] = ()
        points: set[tuple[int, ...]] = set()
        by_arch = False

        def add(v: Optional[Version]) -> None:
            if v is not None:
                points.add(v.parts)

        for f in record.fields:
            add(f.since)
            add(f.until)
            by_arch = by_arch or f.c_guard is not None or bool(f.records)
            for h in f.history:
                add(h.until)
            for text in f.dims_text + tuple(h.array for h in f.history if h.array):
                constant = self.model.by_name.get(text)
                if isinstance(constant, Constant):
                    for h in constant.history:
                        add(h.until)
            if f.record is not None and f.record.inline:
                points.update(self.change_points(f.record))
                by_arch = by_arch or self._by_arch[id(f.record)]
            for nested in self._nested(f):
                by_arch = True
                points.update(self.change_points(nested))
                add(nested.since)
                add(nested.removed.since if nested.removed else None)
                for move in nested.moves:
                    add(move.until)
        self._by_arch[key] = by_arch
        self._points[key] = tuple(sorted(points))
        return self._points[key]

    # ------------------------------------------------------------ layouts
    def shape(self, record: Record, release: Version, abi: Abi) -> Optional[Shape]:
        """The record's layout on `abi` at `release` (None where a member's type was not defined)."""
        points = self.change_points(record)
        span = bisect.bisect_right(points, release.parts)
        key = (id(record), abi.layout_class, abi.arch if self._by_arch[id(record)] else None, span)
        if key not in self._shapes:
            self.computed += 1
            self._shapes[key] = self._shape(record, release, abi)
        return self._shapes[key]

    def _shape(self, record: Record, release: Version, abi: Abi) -> Optional[Shape]:
        view = self.view(release, abi.arch)
        layout = view.layout(record, abi)
        if layout is None:
            return None
        places: list[Place] = []
        self._walk(view, record, abi, 0, (), "", False, places)
        return Shape(layout.size, layout.align, tuple(places))

    def _walk(self, view: View, record: Record, abi: Abi, base: int, key: tuple[int, ...], prefix: str,
              reserved: bool, out: list[Place]) -> None:
        layout = view.layout(record, abi)
        members = view.members(record, abi)
        assert layout is not None and members is not None
        for (f, then, size, _, count), placed in zip(members, layout.placements):
            path = key + (id(f),)
            name = prefix + (then.name or "")
            res = reserved or _then_reserved(f, view.release)
            if f.record is not None and f.record.inline:
                self._walk(view, f.record, abi, base + placed.offset, path,
                           name + "." if then.name else prefix, res, out)
                continue
            out.append(Place(path, name, base + placed.offset, size * count, res,
                             then.record is not None))

    # ------------------------------------------------------------ who sees it, who passes it
    def sees(self, record: Record, release: Version, arch: str) -> bool:
        return self.view(release, arch).sees(record)

    def ioctls_passing(self, record: Record, abi: Abi) -> list[tuple[Ioctl, bool]]:
        """Ioctls that pass the record on `abi`: (ioctl, whether its number encodes the record's size)."""
        i = [a.name for a in ABIS].index(abi.name)
        out = []
        for ioctl in self.model.ioctls:
            typed = (ioctl.type_records[i] if ioctl.type_records else ioctl.type_record) is record
            if typed or ioctl.arg_record is record:
                out.append((ioctl, typed))
        return out


def _abi_list(abis: list[str]) -> str:
    return ", ".join(abis) if len(abis) < len(ABIS) else "every ABI"


def _renumbered(number: int, abi: Abi, size: int) -> int:
    """An ioctl number with another argument size."""
    shift = 16
    mask = ((1 << abi.ioc.size_bits) - 1) << shift
    return (number & ~mask) | (size << shift)


def compare(history: LayoutHistory, record: Record, old: Version, new: Version, abi: Abi) -> list[str]:
    """What userspace built for `old` meets in the record's layout on `new` (one ABI): the breaks."""
    before, after = history.shape(record, old, abi), history.shape(record, new, abi)
    if before is None or after is None or before == after:
        return []
    problems = []
    now, then = after.by_key(), before.by_key()
    # a field the model describes anew (moved into an anonymous union) is found by its name
    by_name = {p.name: p for p in after.places if p.key not in then}
    by_offset = {(p.offset, p.size): p for p in after.places if not p.reserved and p.key not in then}
    for p in before.places:
        if p.reserved:
            continue
        q = now.get(p.key) or by_name.get(p.name)
        if q is None:
            other = by_offset.get((p.offset, p.size))
            if other is not None:
                problems.append(f"{p.name} is now {other.name} (same bytes, another name: old sources no longer "
                                f"build)")
            else:
                problems.append(f"{p.name} is gone")
            continue
        if q.offset != p.offset:
            problems.append(f"{p.name} moved from offset {p.offset} to {q.offset}")
        elif q.size != p.size and not p.nested:
            problems.append(f"{p.name} changed size from {p.size} to {q.size}")
        if q.name != p.name and q.offset == p.offset:
            problems.append(f"{p.name} was renamed {q.name} (old sources no longer build)")
    if before.size != after.size:
        passing = [(i, typed) for i, typed in history.ioctls_passing(record, abi)
                   if i.exists_at(old) and i.exists_at(new) and (not i.arch or abi.arch in i.arch)]
        if passing:
            what = f"size {before.size} -> {after.size}"
            if before.align != after.align:
                what += f", alignment {before.align} -> {after.align}"
            numbers = []
            for ioctl, typed in passing:
                number = ioctl.number_on(abi)
                if typed and number is not None:
                    numbers.append(f"{ioctl.name} {_renumbered(number, abi, before.size):#x} -> "
                                   f"{_renumbered(number, abi, after.size):#x}")
            if numbers:
                what += " (the number of " + ", ".join(numbers) + " changed with it)"
            else:
                what += " (the kernel copies sizeof() of it for " + ", ".join(i.name for i, _ in passing) + ")"
            problems.insert(0, what)
    return problems


def layout_changes(history: LayoutHistory, old: Version, new: Version) -> Iterator[Finding]:
    """layout-changed findings of the transition old -> new, one per record and set of ABIs with the same breaks."""
    for record in history.model.records:
        if record.inline or not record.exists_at(old) or not record.exists_at(new):
            continue
        if new.parts not in history.change_points(record):
            continue
        groups: dict[tuple[str, ...], list[str]] = {}
        for abi in ABIS:
            if not history.sees(record, old, abi.arch) or not history.sees(record, new, abi.arch):
                continue
            problems = compare(history, record, old, new, abi)
            if problems:
                groups.setdefault(tuple(problems), []).append(abi.name)
        for problems, abis in groups.items():
            yield Finding(RULES["layout-changed"], record.mark,
                          f"{record.c_type} changed layout in {new.release} on {_abi_list(abis)}: "
                          f"{'; '.join(problems)}: userspace built for {old.release} and the kernel disagree "
                          f"about its bytes",
                          "keep the size and every existing offset; take new fields out of reserved bytes "
                          "(history: with reserved: true, or a shrinking pad array)",
                          subject=record.name, exceptions=tuple(record.abi_exceptions), abis=tuple(abis))
