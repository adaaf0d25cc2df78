"""Header outlines: the kernel's order of definitions, and what each header may see."""

from __future__ import annotations

from typing import Any, Optional

from .. import schema
from ..diagnostics import Diagnostic, Mark
from ..load import Map
from ..model import OutlineEntry, OutlineSection, Version
from .common import _removed_in


class OutlinesMixin:
    # ------------------------------------------------------------ outlines
    def resolve_outline(self, header: str, data: Map) -> tuple[OutlineSection, ...]:
        """A header's outline with its names checked, and every definition of
        the header it leaves out placed after the definition that precedes it
        in the spec (each with a warning). Sets self.emit_order for the header
        (by key: an architecture header's names are its own definitions)."""
        self.context.append(self.header_arch.get(header))
        try:
            return self._resolve_outline(header, data)
        finally:
            self.context.pop()

    def _resolve_outline(self, header: str, data: Map) -> tuple[OutlineSection, ...]:
        path = data.path
        sections: list[list] = []          # [comment, [OutlineEntry]]
        current: dict[str, Mark] = {}      # names placed in the newest view -> where
        for section in data["sections"]:
            names = section["names"]
            entries = []
            for index, raw in enumerate(names):
                entry = self.outline_entry(raw, names.mark_of(index))
                target = self.outline_target(entry, header)
                if target is None:
                    continue
                if entry.until is None:
                    if entry.name in current:
                        self.error(entry.mark, f"{entry.name} is placed twice in the outline of header {header}",
                                   f"the other place is {current[entry.name]}; remove one, or give the older "
                                   "one until: (the release it moved)")
                        continue
                    current[entry.name] = entry.mark
                entries.append(entry)
            sections.append([section.get("comment", ""), entries])

        # Definitions of this header the outline leaves out, in spec order.
        def placed(name: str, kind: str, raw: Map) -> bool:
            if name in current:
                return True
            return kind in ("enum", "flags") and raw.get("c_style", "define") == "define" and \
                any(v["name"] in current for v in raw["values"])

        # By the C name: a definition another architecture's header repeats has a key of
        # its own (kvm_sync_regs@x86), but the outline names it as the kernel does.
        own = list(self.items_by_header().get(header, ()))
        own += [(self.order[f"!{raw[kind]}"], raw[kind], kind, raw) for kind, raw, spec_file in self.fallbacks
                if raw.get("header", spec_file.header) == header]
        previous: Optional[str] = None
        after: dict[Optional[str], list[OutlineEntry]] = {}
        for _, name, kind, raw in sorted(own, key=lambda t: t[0]):
            if placed(name, kind, raw):
                previous = name
                continue
            mark = raw.mark_of(kind)
            where = f"after {previous}" if previous else "first"
            self.outline_warnings.append(Diagnostic(
                mark, f"{kind} {name} is not in the outline of header {header} ({path}); it is emitted {where}",
                f"add it to {path} where the kernel's header defines it", severity="warning"))
            after.setdefault(previous, []).append(OutlineEntry(name, mark))
            current[name] = mark
        if None in after:
            sections.insert(0, ["", after.pop(None)])
        for section in sections:
            entries = []
            for entry in section[1]:
                entries.append(entry)
                if entry.until is None:
                    entries.extend(after.pop(entry.name, ()))
            section[1] = entries
        position = 0
        for section in sections:
            for entry in section[1]:
                if entry.until is None:
                    owner = self.owner_name(entry.name) if entry.name not in self.items else entry.name
                    self.emit_order.setdefault((header, owner), position)
                    position += 1
        return tuple(OutlineSection(comment, tuple(entries)) for comment, entries in sections)

    def items_by_header(self) -> dict[str, list[tuple[int, str, str, Map]]]:
        """(place, C name, kind, raw) of each definition, by the header it is in (of the
        definitions of a removed name, the one under the plain name), made once."""
        cached = getattr(self, "_items_by_header", None)
        if cached is None:
            cached = self._items_by_header = {}
            for key, (kind, raw, spec_file) in self.items.items():
                if _removed_in(raw) is None or key == raw[kind]:
                    cached.setdefault(raw.get("header", spec_file.header), []).append(
                        (self.order[key], raw[kind], kind, raw))
        return cached

    def outline_entry(self, raw: Any, mark: Mark) -> OutlineEntry:
        if isinstance(raw, str):
            return OutlineEntry(raw, mark)
        since, until = raw.get("since"), raw.get("until")
        within = raw.get("within")
        record = (within or "").split(".", 1)[0]
        name = raw["name"]
        if within is not None and (record not in self.items or self.items[record][0] not in ("struct", "union")
                                   or name not in self.symbols
                                   or name in self.items and self.items[name][0] != "const"):
            self.error(raw.mark_of("within"), f"within: {within} needs a struct or union of the spec, and "
                                              f"{name} a constant or a value of a flag set or enum",
                       "name the record (and, after a dot, the member) in whose body the kernel defines "
                       "it, or remove within:")
            within = None
        elif within is not None and "." in within:
            self.member_paths.append((within, raw.mark_of("within")))
        return OutlineEntry(raw["name"], raw.mark_of("name"), Version.parse(since) if since else None,
                            Version.parse(until) if until else None, within)

    def variant_headers(self, name: str) -> set[str]:
        """The headers of the definitions of a name that several architectures' headers define
        (for a value: the headers of the sets that hold it)."""
        def header_of_key(key: str) -> Optional[str]:
            if key not in self.items:
                return None
            _, raw, spec_file = self.items[key]
            return raw.get("header", spec_file.header)

        homes = set()
        for key in self.variants.get(name, {}).values():
            if key in self.items:
                homes.add(header_of_key(key))
            elif key in self.symbols and self.symbols[key].owner is not None:
                homes.add(header_of_key(self.key_of_raw.get(id(self.symbols[key].owner), "")))
        return homes - {None}

    def outline_target(self, entry: OutlineEntry, header: str) -> Optional[str]:
        """The header the entry's name belongs to, or None after reporting why it cannot be placed."""
        name = entry.name
        if self.key(name) in self.items:   # (not a same-named value of this architecture's set)
            home = self.header_of(name)
            fallback = f"!{name}" in self.order and any(
                raw[kind] == name and raw.get("header", spec_file.header) == header
                for kind, raw, spec_file in self.fallbacks)
            if fallback:
                home = header
        elif self.key(name) in self.symbols and self.symbols[self.key(name)].owner is not None \
                and self.key(name) not in self.items:
            owner = self.symbols[self.key(name)].owner
            kind = schema.item_kind(owner)
            if owner.get("c_style", "define") != "define":
                self.error(entry.mark, f"{name} is a value of the C enum {owner[kind]}, which is printed whole",
                           f"name the enum {owner[kind]} instead")
                return None
            home = self.header_of(owner[kind])
        else:   # a warning: removing or renaming an item must not need a second edit to stay valid
            self.outline_warnings.append(Diagnostic(
                entry.mark, f"unknown name {name!r} in the outline of header {header}; it is skipped",
                "name an item of the spec, or a value of a flag set or enum defined value by value; "
                "remove the entry if the item is gone", severity="warning"))
            return None
        if home != header and header in self.variant_headers(name):
            home = header   # another architecture's header defines the name first (kvm_regs)
        if home != header and entry.until is None:
            self.error(entry.mark, f"{name} belongs to header {home!r}, not {header!r}",
                       "an entry for a definition that has moved to another header says until: "
                       "(the release it moved); otherwise remove it")
            return None
        return home

    def header_of(self, name: str) -> str:
        kind, raw, spec_file = self.items[self.key(name)]
        return raw.get("header", spec_file.header)

    def check_visible(self, user: tuple[str, str], target: str, mark: Mark, what: str,
                      ordered: bool = True) -> bool:
        """Whether C code of `user` (name, header) can use `target`, reporting if not."""
        target_header = self.header_of(target)
        if target_header == user[1]:
            # the outline's order where it places both (names), else the spec's (keys)
            if (user[1], target) in self.emit_order and (user[1], user[0]) in self.emit_order:
                order, first, second = self.emit_order, (user[1], target), (user[1], user[0])
            else:
                order, first, second = self.order, self.key(target), self.key(user[0])
            if not ordered or order[first] < order[second]:  # type: ignore[index]
                return True
            where = f"in the outline {self.outlines[user[1]].path}" if order is self.emit_order else \
                "in the spec (files are emitted in the order of files: in spec/kvmspec.yaml)"
            self.error(mark, f"{what} must be defined before it is used here",
                       f"move its definition earlier {where}")
            return False
        if target_header in self.header_includes.get(user[1], ()):
            return True
        self.error(mark, f"{what} is defined in header {target_header!r}, which header "
                         f"{user[1]!r} does not include",
                   "move one of the two definitions, or set header: on it")
        return False
