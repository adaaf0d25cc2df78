"""Registering names and telling which architectures' headers define and see them."""

from __future__ import annotations

import re
from typing import Optional

from .. import expr, schema
from ..checks import check_identifier, plain_identifier
from ..diagnostics import Mark
from ..layout import NATIVE
from ..load import Map, Seq
from ..spelling import did_you_mean
from ..model import VERSION_PATTERN, Guard, SpecFile, Version
from .common import _Symbol, _text, _removed_in

_RELEASE = re.compile(VERSION_PATTERN)


class NamesMixin:
    # ------------------------------------------------------------ names
    def register(self, files: list[tuple[SpecFile, Map]]) -> None:
        position = 0
        # name -> (where, key: the mark of the definition, made when a diagnostic needs it; arch) of each
        first_seen: dict[str, list[tuple[Map, str, Optional[str]]]] = {}
        successors = self.moved_definitions(files)

        def claim(name: str, at: Map, at_key: str, what: str, arch: Optional[str],
                  removed: Optional[Version] = None) -> Optional[str]:
            """The key of a new definition of `name` (None if it may not be defined again).
            Architecture headers may each define the same name (struct kvm_regs ...), and a
            definition that was removed may share its name with the one that replaced it
            (KVM_REG_SIZE left arm64's asm/kvm.h in 6.14 for linux/kvm.h): the removed one
            gets a key of its own that no name resolves to."""
            if not plain_identifier(name):
                self.report.diagnostics.extend(check_identifier(name, at.mark_of(at_key), what))
            if removed is not None and any(since >= removed and (a is None or arch is None or a == arch)
                                           for a, since in successors.get(name, ())):
                key = f"{name}@until{removed.release}"
                if key not in self.items and key not in self.symbols:
                    if arch is not None:
                        self.key_arch[key] = arch
                    return key
            seen = first_seen.get(name)
            if seen is None:
                first_seen[name] = [(at, at_key, arch)]
                if arch is not None:
                    self.key_arch[name] = arch
                return name
            if arch is None or any(a is None or a == arch for _, _, a in seen):
                self.error(at.mark_of(at_key), f"duplicate name {name!r}",
                           f"first defined at {seen[0][0].mark_of(seen[0][1])}; rename one of them (a default "
                           f"for another header's definition says c_guard: \"!{name}\"; only the "
                           f"headers of different architectures may define the same name)")
                return None
            seen.append((at, at_key, arch))
            key = f"{name}@{arch}"
            self.key_arch[key] = arch
            table = self.variants.setdefault(name, {seen[0][2]: name})   # type: ignore[dict-item]
            table[arch] = key
            return key

        for spec_file, data in files:
            items = data["items"]
            for index, raw in enumerate(items):
                kind = schema.item_kind(raw)
                name = raw[kind]
                arch = self.header_arch.get(raw.get("header", spec_file.header))
                if "c_guard" in raw:
                    self.guard_uses.append((raw["c_guard"], raw))
                if raw.get("c_guard") == f"!{name}":
                    self.report.diagnostics.extend(check_identifier(name, raw.mark_of(kind), kind))
                    self.fallbacks.append((kind, raw, spec_file))
                    self.order[f"!{name}"] = position
                    if arch is not None:
                        self.key_arch[f"!{name}"] = arch
                    position += 1
                    continue
                key = claim(name, raw, kind, kind, arch, _removed_in(raw))
                if key is None:
                    continue
                self.items[key] = (kind, raw, spec_file)
                self.key_of_raw[id(raw)] = key
                self.order[key] = position
                position += 1
                if kind == "ioctl":
                    self.symbols[key] = _Symbol(name, name, raw, "ioctl", raw,
                                                compute=lambda raw=raw, key=key: self.ioctl_symbol_values(raw, key),
                                                arch_dependent=True)   # powerpc and mips encode differently
                if kind == "const" and "value" in raw:
                    self.symbols[key] = _Symbol(name, _text(raw["value"]), raw, "value", raw)
                elif kind == "const":   # defined without a value: only #ifdef can use it
                    self.symbols[key] = _Symbol(name, "", raw, "const", raw,
                                                compute=lambda name=name, raw=raw:
                                                self.valueless(name, raw.mark_of("const")))
                elif kind in ("capability", "exit"):
                    self.symbols[key] = _Symbol(name, str(int(raw["value"])), raw, "value", raw)
                elif kind in ("enum", "flags"):
                    c_enum = raw.get("c_style", "define") != "define"
                    for value in raw["values"]:
                        value_key = claim(value["name"], value, "name", "value", arch,
                                          _removed_in(value) or _removed_in(raw))
                        if value_key is not None:
                            self.key_of_raw[id(value)] = value_key
                            self.symbols[value_key] = _Symbol(
                                value["name"], _text(value["value"]), value, "value", raw, c_enum)
                            self.order[value_key] = position
                elif kind == "macro":
                    try:
                        body = expr.parse(raw["body"])
                    except expr.ExprError as exc:
                        self.expr_error(raw.mark_of("body"), raw["body"], exc)
                        continue
                    self.macros[name] = expr.FunctionMacro(tuple(raw["params"]), body)
                    self.macro_uses.append((raw, body))

        for fspec, data in files:
            for raw in data["items"]:
                if "struct" in raw or "union" in raw:
                    self.collect_field_guards(raw)
        for text, where in self.guard_uses:
            guard = Guard.parse(text)
            if guard.name not in first_seen and guard.name not in self.external:
                self.error(where.mark_of("c_guard"), f"unknown macro {guard.name!r} in c_guard",
                           self.unknown_hint(guard.name, (), "name a macro of the spec, or list it under "
                                             "external_macros: in the manifest if another architecture's "
                                             "header defines it"))
        for kind, raw, spec_file in self.fallbacks:
            name = raw[kind]
            if name not in self.items:
                self.error(raw.mark_of("c_guard"), f"{name} is a default for a definition that "
                                                   "does not exist", "remove c_guard:, or define it")
                continue
            # The default (#ifndef NAME) must come after the definition, or C sees both.
            here = raw.get("header", spec_file.header)
            there = self.header_of(name)
            if not (there == here and self.order[name] < self.order[f"!{name}"]
                    or there in self.header_includes.get(here, ())):
                default = f"its default (c_guard: \"!{name}\" at {raw.mark_of('c_guard')})"
                where = f"after {default} in header {here!r}" if there == here else \
                    f"in header {there!r}, which the header of {default}, {here!r}, does not include"
                real_kind, real, _ = self.items[name]
                self.error(real.mark_of(real_kind), f"{name} is defined {where}, so C would define it twice",
                           "define it before the default, or in a header that the default's header "
                           "includes (header:)")

        # Macro bodies may use names defined anywhere in the spec.
        for raw, body in self.macro_uses:
            used = [n for n in expr.names(body, self.macros)
                    if n.name not in raw["params"] and n.name not in expr.BUILTIN_MACROS]
            for n in used:
                if n.name not in first_seen:
                    self.error(self.expr_mark(raw.mark_of("body"), raw["body"], n.pos),
                               f"unknown name {n.name!r} in macro body",
                               self.unknown_hint(n.name, (), "define it in the spec, or make it a parameter"))

    def moved_definitions(self, files: list[tuple[SpecFile, Map]]) -> dict[str, list]:
        """Names with a definition that is not removed: (architecture, since) of each."""
        live: dict[str, list] = {}
        header_arch = self.header_arch
        for spec_file, data in files:
            for raw in data["items"]:
                since_text = raw.get("since")
                if not isinstance(since_text, str) or "removed" in raw and _removed_in(raw) is not None:
                    continue
                kind = schema.item_kind(raw)
                arch = header_arch.get(raw.get("header", spec_file.header))
                since = Version.parse(since_text)
                live.setdefault(raw[kind], []).append((arch, since))
                if kind in ("enum", "flags"):
                    for value in raw.get("values", ()):
                        if isinstance(value, dict) and ("removed" not in value or _removed_in(value) is None):
                            value_since = value.get("since")
                            live.setdefault(value["name"], []).append(
                                (arch, Version.parse(value_since) if isinstance(value_since, str) else since))
        return live

    def collect_field_guards(self, record: Map) -> None:
        """The c_guards of a record's fields, and of the records defined inline in it."""
        for f in record.get("fields", ()):
            if isinstance(f, Map):
                if "c_guard" in f:
                    self.guard_uses.append((f["c_guard"], f))
                for inline in ("struct", "union"):
                    if isinstance(f.get(inline), Map):
                        self.collect_field_guards(f[inline])

    def check_guard_order(self, text: str, user: tuple[str, str], mark: Mark) -> None:
        """#ifdef sees only what was defined before it (or by an included header)."""
        guard = Guard.parse(text)
        if guard.name == user[0] or guard.name not in self.symbols and guard.name not in self.items:
            return
        self.check_visible(user, self.owner_name(guard.name), mark, f"the c_guard macro {guard.name}")

    # ------------------------------------------------------------ architectures
    def key(self, name: str, arch: Optional[str] = None) -> str:
        """The key of the definition of `name` that code of `arch` sees (by default: the
        architecture of the item being built, else the native one)."""
        table = self.variants.get(name)
        if table is None:
            return name
        if arch is None:
            arch = self.context[-1] if self.context and self.context[-1] else NATIVE.arch
        return table.get(arch) or next(iter(table.values()))

    def key_on(self, name: str, arch: str) -> Optional[str]:
        """The key of the definition of `name` that code of exactly `arch` sees, if any."""
        table = self.variants.get(name)
        if table is None:
            home = self.key_arch.get(name)
            return name if home is None or home == arch else None
        return table.get(arch)

    def arches_of_key(self, key: str) -> tuple[str, ...]:
        """Where a definition can be seen: its header's architecture, or everywhere."""
        home = self.key_arch.get(key)
        return (home,) if home is not None else self.all_arches

    def defined_on(self, name: str) -> frozenset:
        """The architectures whose headers define macro `name` (where its guard holds)."""
        cached = self.defined_cache.get(name)
        if cached is not None:
            return cached
        self.defined_cache[name] = frozenset()  # breaks cycles
        result: set[str] = set()
        for key in (self.variants[name].values() if name in self.variants else (name,)):
            entry = self.items.get(key)
            sym = self.symbols.get(key)
            owner = entry[1] if entry else (sym.owner if sym else None)
            if owner is not None:
                result |= set(self.arches_of_key(key)) & self.guard_arches(owner.get("c_guard"))
        self.defined_cache[name] = frozenset(result)
        return self.defined_cache[name]

    def guard_arches(self, text: Optional[str]) -> frozenset:
        """The architectures on which `#ifdef`/`#ifndef` text holds."""
        if text is None:
            return self.everywhere
        guard = Guard.parse(text)
        defined = self.defined_on(guard.name)
        return self.everywhere - defined if guard.negated else defined

    def guard_holds(self, text: Optional[str], arch: str = NATIVE.arch) -> bool:
        return arch in self.guard_arches(text)

    def arch_releases(self, raw: Map, default: tuple[str, ...], since: Version
                      ) -> tuple[tuple[str, ...], tuple[tuple[str, Version], ...]]:
        """The architectures of raw's arch: list (without one: `default`; "all": every one,
        written ()), and those written {ARCH: RELEASE}, which gained the item after `since`,
        each with its release."""
        listed = raw.get("arch")
        if listed is None or listed == "all" or not isinstance(listed, Seq):
            return (default if listed is None else ()), ()
        names: list[str] = []
        later: list[tuple[str, Version]] = []
        for index, entry in enumerate(listed):
            mark = listed.mark_of(index)
            name, release = entry, None
            if isinstance(entry, Map):
                if len(entry) != 1:
                    continue   # the schema reports it
                name, release = next(iter(entry.items()))
                mark = entry.key_mark(name)
            if not isinstance(name, str):
                continue
            if name not in self.arch_names:
                close = did_you_mean(name, self.arch_names)
                self.error(mark, f"unknown architecture {name!r}", (f"{close} " if close else "") +
                           "use one of: " + ", ".join(sorted(self.arch_names)) + ", or all")
                continue
            if name in names:
                self.error(mark, f"architecture {name!r} is listed twice", "list each architecture once")
                continue
            names.append(name)
            if release is None:
                continue
            if not isinstance(release, str) or not _RELEASE.match(release):
                continue   # the schema reports it: not a release
            version = Version.parse(release)
            if version.parts < since.parts:
                self.error(entry.mark_of(name), f"{name} cannot have it from {release}: that is before the "
                           f"item's own since ({since})",
                           f"give {name} a release from {since} on, or an earlier since: to the item")
            elif version.parts == since.parts:
                self.error(entry.mark_of(name), f"{name} has it from {release}, the item's own since",
                           f"write plain {name}: an architecture without a release has the item from its since")
            else:
                later.append((name, version))
        return tuple(names), tuple(later)

    def active_on(self, raw: Map, key: str) -> tuple[str, ...]:
        """Architectures whose userspace sees a definition: its header's, where its guard holds."""
        holds = self.guard_arches(raw.get("c_guard"))
        return tuple(a for a in self.arches_of_key(key) if a in holds)
