"""What the spec says userspace meets at one release: the facts the compatibility rules compare.

An `AbiView` is one model seen at one release (or at its newest state): the
items that exist then, the values each save ioctl emits per implementation
and whether only after an opt-in, what each input ioctl rejects per
implementation, what each capability answers and how it is enabled, where
each ioctl can be issued, and which fields are only valid with a flag. Two
views of two revisions (kvmspec compat OLD NEW) or of two consecutive
releases of one revision (kvmspec compat --history) are compared by the same
rules.
"""

from __future__ import annotations

import functools
from typing import Iterable, Optional

from ..model import (Capability, Constant, Emission, ExitReason, Ioctl, Lifecycle, Model, NamedValue, Record,
                     Validation, ValueSet, Version)

GENERIC = ""    # where the spec names no architecture or implementation at all


def at_or_before(version: Optional[Version], release: Optional[Version]) -> bool:
    """Whether something that starts at `version` exists at `release` (None: the newest state)."""
    return version is None or release is None or version.parts <= release.parts


def latest(*versions: Optional[Version]) -> Optional[Version]:
    known = [v for v in versions if v is not None]
    return max(known, key=lambda v: v.parts) if known else None


def alive(since: Optional[Version], removed: Optional[Lifecycle], release: Optional[Version]) -> bool:
    if not at_or_before(since, release):
        return False
    if removed is None:
        return True
    return release is not None and release.parts < removed.since.parts


def emission_since(save: Ioctl, emission: Emission, value: NamedValue) -> Optional[Version]:
    return latest(save.since, emission.since, value.since)


def validation_since(ioctl: Ioctl, validation: Validation) -> Optional[Version]:
    return latest(ioctl.since, validation.field.since, validation.since)


class AbiView:
    def __init__(self, model: Model, release: Optional[Version] = None) -> None:
        self.model, self.release = model, release
        self._kinds: dict[type, list] = {}

    @property
    def label(self) -> str:
        return self.release.release if self.release is not None else "newest"

    def exists(self, since: Optional[Version], removed: Optional[Lifecycle] = None) -> bool:
        return alive(since, removed, self.release)

    # ------------------------------------------------------------ items
    @functools.cached_property
    def items(self) -> dict[str, object]:
        """By name; where several architectures' headers define a name, x86's definition."""
        out: dict[str, object] = {}
        for i in self.model.items:
            if (i.active or i.active_on) and self.exists(i.since, i.removed):
                other = out.get(i.name)
                if other is None or (i.active and not getattr(other, "active", False)):
                    out[i.name] = i
        return out

    def ioctl(self, name: Optional[str]) -> Optional[Ioctl]:
        item = self.items.get(name) if name else None
        return item if isinstance(item, Ioctl) else None

    def of_kind(self, kind: type) -> list:
        found = self._kinds.get(kind)
        if found is None:
            found = self._kinds[kind] = [i for i in self.items.values() if isinstance(i, kind)]
        return found

    @functools.cached_property
    def capabilities(self) -> dict[str, Capability]:
        return {c.name: c for c in self.of_kind(Capability)}

    @functools.cached_property
    def exits(self) -> dict[str, ExitReason]:
        return {e.name: e for e in self.of_kind(ExitReason)}

    @functools.cached_property
    def values(self) -> dict[str, dict[int, NamedValue]]:
        """Value set -> number -> the value that exists at this release."""
        out: dict[str, dict[int, NamedValue]] = {}
        for vs in self.of_kind(ValueSet):
            out[vs.name] = {v.value: v for v in vs.values
                            if not v.mask and self.exists(v.since, v.removed)}
        return out

    @functools.cached_property
    def changing(self) -> dict[str, tuple[object, object]]:
        """Name -> (owner item, constant or value) of the values that changed over the releases (history:)."""
        out = {}
        for item in self.items.values():
            if isinstance(item, Constant) and item.history:
                out[item.name] = (item, item)
            elif isinstance(item, ValueSet):
                for v in item.values:
                    if v.history and self.exists(v.since, v.removed):
                        out[v.name] = (item, v)
        return out

    def number(self, value) -> Optional[int]:
        """The number of a constant or named value at this release, where its expression is a plain one."""
        expr = value.expr_at(self.release) if self.release is not None else value.expr
        try:
            return int(expr, 0)
        except ValueError:
            pass
        other = self.model.by_name.get(expr)
        if isinstance(other, Constant) and other.history == ():
            try:
                return other.value
            except (IndexError, TypeError):
                return None
        for vs in self.of_kind(ValueSet):
            found = vs.value_named(expr)
            if found is not None and not found.history:
                return found.value
        return None

    def deprecated(self, item) -> bool:
        return item.deprecated is not None and at_or_before(item.deprecated.since, self.release)

    # ------------------------------------------------------------ implementations
    @functools.cached_property
    def implementation_arch(self) -> dict[str, str]:
        """Implementation -> its architecture; an architecture without named implementations is its own."""
        out = {a.name: a.name for a in self.model.architectures if not a.implementations}
        out.update({impl.name: impl.arch for impl in self.model.implementations()})
        return out

    def implementations(self, item, listed: Iterable[str] = ()) -> tuple[str, ...]:
        """Implementations an item (or one of its entries, `listed`) applies to: the named ones of its
        architectures, and the architecture itself where it has none."""
        listed = tuple(listed) or tuple(item.implementations)
        if listed:
            return listed
        arches = self.arches(item)
        out: list[str] = []
        for a in self.model.architectures:
            if a.name in arches:
                out.extend([i.name for i in a.implementations] or [a.name])
        return tuple(out)

    def arches(self, item) -> tuple[str, ...]:
        """The architectures that have an item (or a value) at this release: those of its arch:
        list (every one when it has none) from the release it gives each."""
        return tuple(a.name for a in self.model.architectures
                     if (since := item.since_on(a.name)) is not None and at_or_before(since, self.release))

    def applies(self, value: NamedValue, impl: str) -> bool:
        """Whether a value can occur on an implementation (its arch: and implementations: allow it)."""
        arch = self.implementation_arch.get(impl, "")
        if value.arch and arch not in self.arches(value):
            return False
        named = impl != arch
        return not (value.implementations and named and impl not in value.implementations)

    # ------------------------------------------------------------ save and restore
    @functools.cached_property
    def emitted(self) -> dict[tuple[str, str, str], dict[int, tuple[NamedValue, Optional[str], Emission]]]:
        """(save ioctl, field path, implementation) -> number -> (value, capability it requires, emission)."""
        out: dict = {}
        for save in self.of_kind(Ioctl):
            for emission in save.emissions:
                for value in emission.values:
                    if not self.exists(emission_since(save, emission, value), value.removed):
                        continue
                    req = emission.requires.name if emission.requires is not None else None
                    for impl in self.implementations(save, emission.implementations):
                        if not self.applies(value, impl):
                            continue
                        slot = out.setdefault((save.name, emission.path, impl), {})
                        # a value emitted both with and without opt-in counts as emitted without
                        if value.value not in slot or req is None:
                            slot[value.value] = (value, req, emission)
        return out

    @functools.cached_property
    def validations(self) -> dict[tuple[str, str], Validation]:
        out = {}
        for ioctl in self.of_kind(Ioctl):
            for v in ioctl.validations:
                if self.exists(validation_since(ioctl, v)):
                    out[(ioctl.name, v.path)] = v
        return out

    def verdict(self, ioctl: str, path: str, kind: str, impl: str) -> Optional[str]:
        validation = self.validations.get((ioctl, path))
        if validation is None:
            return None
        return validation.verdict(kind, impl, self.implementation_arch.get(impl, ""))

    def field_exists(self, ioctl: Ioctl, path: str) -> bool:
        record = ioctl.arg_record
        found = record.field_at(path) if record is not None else None
        return found is not None and self.field_alive(found)

    def field_alive(self, f) -> bool:
        """Whether a field is in its record at this release (from since, until it was dropped)."""
        until = getattr(f, "until", None)
        return self.exists(f.since) and (until is None or self.release is None or self.release.parts < until.parts)

    # ------------------------------------------------------------ fields valid with a flag
    @functools.cached_property
    def valid_with(self) -> dict[tuple[str, str], tuple[str, object]]:
        """(record, field path) -> (flag, field) for fields that are only valid with a flag bit."""
        out = {}
        for record in self.of_kind(Record):
            for path, f, _ in record.walk():
                if f.name and f.valid_with and self.field_alive(f):
                    out[(record.name, path)] = (f.valid_with, f)
        return out


def releases(model: Model) -> tuple[Version, ...]:
    """Every release the spec names (since, removed, deprecated, shipped breaks), oldest first."""
    seen: dict[tuple[int, ...], Version] = {}

    def add(v: Optional[Version]) -> None:
        if v is not None and v.parts not in seen:
            seen[v.parts] = Version(v.parts)

    for item in model.items:
        add(item.since)
        for _, r in item.arch_since:   # an architecture gains it
            add(r)
        for life in (item.deprecated, item.removed):
            add(life.since if life else None)
        for exc in item.abi_exceptions:
            for r in exc.releases:
                add(r)
        for h in getattr(item, "history", ()):
            add(h.until)
        if isinstance(item, ValueSet):
            for v in item.values:
                add(v.since)
                for _, r in v.arch_since:
                    add(r)
                for h in v.history:
                    add(h.until)
                add(v.removed.since if v.removed else None)
                add(v.deprecated.since if v.deprecated else None)
        if isinstance(item, Record):
            for path, f, _ in item.walk():
                add(f.since)
            for inner in item.records_within(every_field=True):   # what changed its layout
                for f in inner.fields:
                    add(f.since)
                    add(f.until)
                    for h in f.history:
                        add(h.until)
        if isinstance(item, Ioctl):
            for e in item.emissions:
                add(e.since)
            for v in item.validations:
                add(v.since)
    return tuple(seen[k] for k in sorted(seen))

