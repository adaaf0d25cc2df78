"""From checked spec data to the model: resolve names, evaluate, lay out.

`load_model(root)` reads `root/spec`, validates it against the schema, then
builds the frozen model, collecting every problem on the way (unknown
references, duplicate names, expressions that do not evaluate, bad
ordering). Rules that judge a finished model live in checks.py.
"""

from __future__ import annotations

import errno as errno_module
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from . import expr, schema
from .checks import check_identifier, check_model, check_text, plain_identifier
from .diagnostics import Diagnostic, Mark, Reporter, SpecError
from .layout import ABIS, NATIVE, SCALARS, Abi, Member, Scalar, ioc, record_layout
from .load import Int, Map, Seq, read_spec_file
from .spelling import NameIndex
from .model import (
    AbiException, Architecture, Capability, Constant, Definition, DocChapter, DocLayout, DocSection, Emission,
    EnableArg, Enum, ErrorCase,
    Example, ExitReason, ExternalMacro, ExternalType, Field, FlagSet, FunctionMacro, Guard, Header, HeaderDefect,
    Implementation,
    Ioctl, Lifecycle,
    Model, Move, NamedValue, OutlineEntry, OutlineSection, PastField, PastValue, Record, Scope, SpecFile,
    Validation, VERDICT_KINDS, Version,
)

MANIFEST = "kvmspec.yaml"
# Constants defined through others, one inside the other, at most this deep.
MAX_CHAIN = 100
# Top-level directories of generated/ that generators other than the C headers own.
OTHER_OUTPUTS = {"python", "tests", "documentation"}
KVMIO_NAME = "KVMIO"


@dataclass
class _Symbol:
    """A name in the C macro namespace whose value is an expression."""

    name: str
    text: str
    mark: Mark
    owner: Optional[Map] = None       # the item defining it
    c_enum: bool = False              # a C enumerator (type int) rather than a macro
    values: Optional[list] = None     # evaluated, per ABI
    busy: bool = False
    compute: Optional[Callable[[], Optional[list]]] = None  # for values that are not expressions
    unevaluable: bool = False          # refers to a macro its architectures' headers never define
    arches: tuple[str, ...] = ()       # where its definition is seen (ABIs of others get None)
    elsewhere: frozenset = frozenset()  # ABIs whose headers lack a macro it uses
    arch_dependent: bool = False       # its value may differ between ABIs of one evaluation class


def _text(value: Any) -> str:
    """An expression's text: integers as written in YAML, strings as they are."""
    if isinstance(value, Int):
        return value.text
    return str(value)


class NotDefinedHere(expr.ExprError):
    """An expression needs a macro that the headers of this ABI's architecture never define."""


class Builder:
    def __init__(self, root: Path, check_input: bool = True, check_rules: bool = True,
                 check_invariants: bool = True) -> None:
        """The checks that do not change what is built can be left out: those
        of the input (schema, text, unlisted files) and the rules the finished
        model must follow (checks.check_model). kvmspec generate's two
        processes share them out (see pipeline.py). kvmspec compat leaves out
        the compatibility invariants (compat.invariants): it judges the same
        breaks between two revisions, and must give its verdict on them."""
        self.root = root
        self.checked = check_input
        self.check_rules = check_rules
        self.check_invariants = check_invariants
        self.spec_dir = root / "spec"
        self.report = Reporter()
        self.symbols: dict[str, _Symbol] = {}
        # Keys are names; a name that several architectures' headers define has a key per
        # definition (the first keeps the plain name, others are NAME@ARCH: see variants).
        self.items: dict[str, tuple[str, Map, SpecFile]] = {}   # key -> (kind, raw, file)
        self.variants: dict[str, dict[str, str]] = {}             # name -> {arch: key}
        self.key_arch: dict[str, str] = {}                        # key -> arch of its header
        self.context: list[Optional[str]] = []                    # arch of the item being built
        self.keys: list[str] = []                                 # key of the item being built
        self.key_of_raw: dict[int, str] = {}
        self.member_cache: dict[tuple, Member] = {}
        self.arch_touched = False   # the evaluation under way named something architecture-specific
        self.header_arch: dict[str, Optional[str]] = {}
        self.all_arches: tuple[str, ...] = ()
        self.order: dict[str, int] = {}                          # name -> emission position
        self.macros: dict[str, expr.FunctionMacro] = {}
        self.built: dict[str, Definition] = {}
        self.failed: set[str] = set()
        self.building: set[str] = set()
        self.parsed: dict[str, expr.Node] = {}
        self.evaluators: dict[str, expr.Evaluator] = {}
        self.macro_uses: list[tuple[Map, expr.Node]] = []
        # Definitions guarded by `#ifndef` of their own name: a header's default
        # for a macro that an architecture header may define first.
        self.fallbacks: list[tuple[str, Map, SpecFile]] = []
        self.external: set[str] = set()
        self.external_types: dict[str, ExternalType] = {}
        self.guard_uses: list[tuple[str, Mark]] = []
        self.defined_cache: dict[str, bool] = {}
        self.chain = 0   # constants being evaluated, one inside the other
        self.was_read: Any = None   # (manifest, files, listed paths), for input_is_clean
        self.name_indexes: dict[Any, NameIndex] = {}   # for "did you mean ...?", made when needed

    def error(self, mark: Mark, message: str, hint: str = "") -> None:
        self.report.error(mark, message, hint)

    def suggest(self, name: str, kinds: tuple[str, ...] = ()) -> str:
        """'did you mean X?' for an unknown name: the closest item of one of
        `kinds`, or with no kinds the closest name of a constant, value, ioctl,
        capability or exit (what an expression or a c_guard can name)."""
        index = self.name_indexes.get(kinds)
        if index is None:
            if kinds:
                names = [n for n, (kind, _, _) in self.items.items() if kind in kinds]
            else:
                names = [*self.symbols, *self.items, *self.external]
            index = self.name_indexes[kinds] = NameIndex(names)
        return index.suggestion(name)

    def unknown_hint(self, name: str, kinds: tuple[str, ...], otherwise: str) -> str:
        """The hint for an unknown name: a suggestion if one is close, then what else to do."""
        close = self.suggest(name, kinds)
        return f"{close} If not, {otherwise}" if close else otherwise

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # ------------------------------------------------------------ reading
    def read(self) -> tuple[Map, list[tuple[SpecFile, Map]]]:
        manifest_path = self.spec_dir / MANIFEST
        shown = self.display(manifest_path)
        if not manifest_path.is_file():
            raise SpecError([Diagnostic(Mark(shown, 1, 1), "no spec manifest here",
                                        "run kvmspec in a kvmspec repository or pass --root DIR")])
        manifest = read_spec_file(manifest_path, shown)
        problems = schema.check_manifest(manifest) if self.checked else []
        if problems:
            raise SpecError(problems)
        problems = check_text(manifest) + check_manifest_names(manifest) if self.checked else []
        files: list[tuple[SpecFile, Map]] = []
        header_names = {h["name"] for h in manifest["headers"]}
        listed = set()
        spec_dir = self.spec_dir.resolve()
        for index, rel in enumerate(manifest["files"]):
            path = self.spec_dir / rel
            resolved = path.resolve()
            listed.add(resolved)
            if not resolved.is_relative_to(spec_dir):
                problems.append(Diagnostic(manifest["files"].mark_of(index),
                                           f"spec file {rel!r} is outside spec/ (a symbolic link to {resolved})",
                                           "spec files live in the repository's spec/ directory; copy the file "
                                           "there instead of linking to it"))
                continue
            if not path.is_file():
                problems.append(Diagnostic(manifest["files"].mark_of(index),
                                           f"spec file {rel!r} does not exist",
                                           "create it or remove it from files:"))
                continue
            try:
                data = read_spec_file(path, self.display(path))
            except SpecError as exc:
                problems.extend(exc.diagnostics)
                continue
            file_problems = schema.check_spec_file(data) if self.checked else []
            if file_problems:
                problems.extend(file_problems)
                continue
            if data["header"] not in header_names:
                problems.append(Diagnostic(data.mark_of("header"), f"unknown header {data['header']!r}",
                                           "use one of: " + ", ".join(sorted(header_names))))
            if self.checked:
                problems.extend(check_text(data))
            spec_file = SpecFile(self.display(path), data["title"], data["doc"], data["header"])
            files.append((spec_file, data))
        self.outlines = {}
        for h in manifest["headers"]:
            if "outline" in h:
                data = self.read_outline(h, listed, spec_dir, problems)
                if data is not None:
                    self.outlines[h["name"]] = data
        self.documents: list[Map] = []
        for index, rel in enumerate(manifest.get("documents", ())):
            data = self.read_document(rel, manifest["documents"].mark_of(index), listed, spec_dir, problems)
            if data is not None:
                self.documents.append(data)
        if self.checked:
            problems.extend(self.unlisted_files(listed))
        self.was_read = (manifest, files, listed)
        if problems:
            raise SpecError(problems)
        return manifest, files

    def read_outline(self, h: Map, listed: set[Path], spec_dir: Path, problems: list[Diagnostic]) -> Optional[Map]:
        """The outline file a header of the manifest names (checked against the schema)."""
        rel = h["outline"]
        data = self.read_side_file(rel, listed, spec_dir, problems, Diagnostic(
            h.mark_of("outline"), f"outline file {rel!r} does not exist in spec/",
            "create it, or remove outline: from the header"))
        if data is None:
            return None
        found = schema.check_outline_file(data)
        if not found and self.checked:
            found = check_text(data)
        if not found and data["outline"] != h["name"]:
            found.append(Diagnostic(data.mark_of("outline"), f"this is the outline of header {data['outline']!r}, "
                                                             f"but header {h['name']!r} names it",
                                    f"write outline: {h['name']}"))
        if found:
            problems.extend(found)
            return None
        return data

    def read_side_file(self, rel: str, listed: set[Path], spec_dir: Path, problems: list[Diagnostic],
                       missing: Diagnostic) -> Optional[Map]:
        """A file the manifest names besides the spec files (an outline, a document
        layout), read; None after reporting why it cannot be (`missing` if absent)."""
        path = self.spec_dir / rel
        listed.add(path.resolve())
        if not path.resolve().is_relative_to(spec_dir) or not path.is_file():
            problems.append(missing)
            return None
        try:
            return read_spec_file(path, self.display(path))
        except SpecError as exc:
            problems.extend(exc.diagnostics)
            return None

    def read_document(self, rel: str, mark: Mark, listed: set[Path], spec_dir: Path,
                      problems: list[Diagnostic]) -> Optional[Map]:
        """A document layout file the manifest lists (checked against the schema)."""
        data = self.read_side_file(rel, listed, spec_dir, problems, Diagnostic(
            mark, f"document layout {rel!r} does not exist in spec/", "create it, or remove it from documents:"))
        if data is None:
            return None
        found = schema.check_document_layout(data)
        if not found and self.checked:
            found = check_text(data)
        if found:
            problems.extend(found)
            return None
        return data

    def resolve_documents(self, by_name: dict) -> tuple[DocLayout, ...]:
        """The document layouts, oldest release first, with every name checked
        against the kind of item its chapter holds."""
        kinds = {"ioctl": (Ioctl,), "vcpu-capability": (Capability,), "vm-capability": (Capability,),
                 "capability": (Capability,)}
        layouts = []
        for data in self.documents:
            chapters = []
            for chapter in data["chapters"]:
                holds = chapter.get("holds")
                sections = []
                for section in chapter.get("sections", ()):
                    names = section.get("names", ())
                    known = []
                    for index, name in enumerate(names):
                        item = by_name.get(name)
                        if item is not None and (not holds or isinstance(item, kinds[holds])):
                            known.append(name)
                        else:
                            what = f"no {holds.replace('-', ' ')} is named {name}" if holds else \
                                f"no ioctl or capability is named {name}"
                            self.error(names.mark_of(index), f"section {section['number']}: {what}",
                                       "name the spec item the section describes (the kernel's title "
                                       "may spell it differently)")
                    also = section.get("also", ())
                    listed = []
                    for index, name in enumerate(also):
                        if isinstance(by_name.get(name), (Record, Enum, FlagSet)):
                            listed.append(name)
                        else:
                            self.error(also.mark_of(index), f"section {section['number']}: no struct, union, "
                                                            f"enum or flag set is named {name}",
                                       "list records by name without 'struct' (kvm_regs), value sets by their name")
                    sections.append(DocSection(section["number"], section["title"], tuple(known),
                                               section.get("text"), tuple(listed), section.get("spelled"),
                                               self.constant_prefixes(section, by_name)))
                chapters.append(DocChapter(chapter["number"], chapter["title"], chapter.get("text"), holds,
                                           tuple(sections)))
            layouts.append(DocLayout(data["document"], Version.parse(data["release"]), tuple(chapters),
                                     data.mark_of("document").path))
        return tuple(sorted(layouts, key=lambda d: d.release.parts))

    def constant_prefixes(self, section: Map, by_name: dict) -> tuple[str, ...]:
        """The prefixes of constants a layout section tabulates; each must start some constant's name."""
        prefixes = section.get("constants", ())
        for index, prefix in enumerate(prefixes):
            if not any(name.startswith(prefix) and isinstance(item, Constant) for name, item in by_name.items()):
                self.error(prefixes.mark_of(index), f"section {section['number']}: no constant starts with {prefix}",
                           "write the common start of the constants' names, e.g. KVM_REG_PPC_")
        return tuple(prefixes)

    def unlisted_files(self, listed: set[Path]) -> list[Diagnostic]:
        problems = []
        for path in sorted(self.spec_dir.rglob("*.yaml")):
            if path.name == MANIFEST and path.parent == self.spec_dir:
                continue
            if "schema" in path.relative_to(self.spec_dir).parts[:1]:
                continue
            if path.resolve() not in listed:
                problems.append(Diagnostic(Mark(self.display(path), 1, 1),
                                           "spec file is not listed in spec/kvmspec.yaml",
                                           "add it to files: in the manifest, in emission order"))
        return problems

    def input_is_clean(self) -> bool:
        """After a build with check_input=False: whether the checks it left out
        (schema, text, unlisted files) find nothing in what it read. When they
        do, build again with them, which reports what they find."""
        manifest, files, listed = self.was_read
        if schema.check_manifest(manifest) or check_text(manifest) or check_manifest_names(manifest):
            return False
        for _, data in files:
            if schema.check_spec_file(data) or check_text(data):
                return False
        if any(check_text(data) for data in self.outlines.values()):
            return False
        return not self.unlisted_files(listed)

    # ------------------------------------------------------------ names
    def register(self, files: list[tuple[SpecFile, Map]]) -> None:
        position = 0
        first_seen: dict[str, list[tuple[Mark, Optional[str]]]] = {}
        successors = self.moved_definitions(files)

        def claim(name: str, mark: Mark, what: str, arch: Optional[str],
                  removed: Optional[Version] = None) -> Optional[str]:
            """The key of a new definition of `name` (None if it may not be defined again).
            Architecture headers may each define the same name (struct kvm_regs ...), and a
            definition that was removed may share its name with the one that replaced it
            (KVM_REG_SIZE left arm64's asm/kvm.h in 6.14 for linux/kvm.h): the removed one
            gets a key of its own that no name resolves to."""
            self.report.diagnostics.extend(check_identifier(name, mark, what))
            if removed is not None and any(since >= removed and (a is None or arch is None or a == arch)
                                           for a, since in successors.get(name, ())):
                key = f"{name}@until{removed.release}"
                if key not in self.items and key not in self.symbols:
                    if arch is not None:
                        self.key_arch[key] = arch
                    return key
            seen = first_seen.get(name)
            if seen is None:
                first_seen[name] = [(mark, arch)]
                if arch is not None:
                    self.key_arch[name] = arch
                return name
            if arch is None or any(a is None or a == arch for _, a in seen):
                self.error(mark, f"duplicate name {name!r}",
                           f"first defined at {seen[0][0]}; rename one of them (a default "
                           f"for another header's definition says c_guard: \"!{name}\"; only the "
                           f"headers of different architectures may define the same name)")
                return None
            seen.append((mark, arch))
            key = f"{name}@{arch}"
            self.key_arch[key] = arch
            table = self.variants.setdefault(name, {seen[0][1]: name})   # type: ignore[dict-item]
            table[arch] = key
            return key

        for spec_file, data in files:
            items = data["items"]
            for index, raw in enumerate(items):
                kind = schema.item_kind(raw)
                name = raw[kind]
                mark = raw.mark_of(kind)
                arch = self.header_arch.get(raw.get("header", spec_file.header))
                if "c_guard" in raw:
                    self.guard_uses.append((raw["c_guard"], raw.mark_of("c_guard")))
                if raw.get("c_guard") == f"!{name}":
                    self.report.diagnostics.extend(check_identifier(name, mark, kind))
                    self.fallbacks.append((kind, raw, spec_file))
                    self.order[f"!{name}"] = position
                    if arch is not None:
                        self.key_arch[f"!{name}"] = arch
                    position += 1
                    continue
                key = claim(name, mark, kind, arch, _removed_in(raw))
                if key is None:
                    continue
                self.items[key] = (kind, raw, spec_file)
                self.key_of_raw[id(raw)] = key
                self.order[key] = position
                position += 1
                if kind == "ioctl":
                    self.symbols[key] = _Symbol(name, name, raw.mark_of("ioctl"), raw,
                                                compute=lambda raw=raw, key=key: self.ioctl_symbol_values(raw, key),
                                                arch_dependent=True)   # powerpc and mips encode differently
                if kind == "const" and "value" in raw:
                    self.symbols[key] = _Symbol(name, _text(raw["value"]), raw.mark_of("value"), raw)
                elif kind == "const":   # defined without a value: only #ifdef can use it
                    self.symbols[key] = _Symbol(name, "", raw.mark_of("const"), raw,
                                                compute=lambda name=name, mark=raw.mark_of("const"):
                                                self.valueless(name, mark))
                elif kind in ("capability", "exit"):
                    self.symbols[key] = _Symbol(name, str(int(raw["value"])), raw.mark_of("value"), raw)
                elif kind in ("enum", "flags"):
                    c_enum = raw.get("c_style", "define") != "define"
                    for value in raw["values"]:
                        value_key = claim(value["name"], value.mark_of("name"), "value", arch,
                                          _removed_in(value) or _removed_in(raw))
                        if value_key is not None:
                            self.key_of_raw[id(value)] = value_key
                            self.symbols[value_key] = _Symbol(
                                value["name"], _text(value["value"]), value.mark_of("value"), raw, c_enum)
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
        for text, mark in self.guard_uses:
            guard = Guard.parse(text)
            if guard.name not in first_seen and guard.name not in self.external:
                self.error(mark, f"unknown macro {guard.name!r} in c_guard",
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
        for spec_file, data in files:
            for raw in data["items"]:
                kind = schema.item_kind(raw)
                arch = self.header_arch.get(raw.get("header", spec_file.header))
                since = Version.parse(raw["since"]) if isinstance(raw.get("since"), str) else None
                if since is None:
                    continue
                entries = [(raw[kind], raw)]
                if kind in ("enum", "flags"):
                    entries += [(v["name"], v) for v in raw.get("values", ()) if isinstance(v, dict)]
                for name, node in entries:
                    if _removed_in(raw) is None and _removed_in(node) is None:
                        node_since = Version.parse(node["since"]) if isinstance(node.get("since"), str) else since
                        live.setdefault(name, []).append((arch, node_since))
        return live

    def collect_field_guards(self, record: Map) -> None:
        """The c_guards of a record's fields, and of the records defined inline in it."""
        for f in record.get("fields", ()):
            if isinstance(f, Map):
                if "c_guard" in f:
                    self.guard_uses.append((f["c_guard"], f.mark_of("c_guard")))
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
            return frozenset(self.all_arches)
        guard = Guard.parse(text)
        defined = self.defined_on(guard.name)
        return frozenset(self.all_arches) - defined if guard.negated else defined

    def guard_holds(self, text: Optional[str], arch: str = NATIVE.arch) -> bool:
        return arch in self.guard_arches(text)

    def active_on(self, raw: Map, key: str) -> tuple[str, ...]:
        """Architectures whose userspace sees a definition: its header's, where its guard holds."""
        holds = self.guard_arches(raw.get("c_guard"))
        return tuple(a for a in self.arches_of_key(key) if a in holds)

    # ------------------------------------------------------------ expressions
    def expr_mark(self, mark: Mark, text: str, column: int) -> Mark:
        # A YAML scalar that is not quoted starts at the mark; quoted ones one later.
        return Mark(mark.path, mark.line, mark.col + column)

    def expr_error(self, mark: Mark, text: str, exc: expr.ExprError) -> None:
        shown = text if len(text) <= 80 else text[:60] + " ..."
        self.error(self.expr_mark(mark, text, exc.column), f"in {shown!r}: {exc.message}", exc.hint)

    def parse_expr(self, text: str, mark: Mark) -> Optional[expr.Node]:
        if text in self.parsed:
            return self.parsed[text]
        try:
            node = expr.parse(text)
        except expr.ExprError as exc:
            self.expr_error(mark, text, exc)
            return None
        self.parsed[text] = node
        return node

    def symbol_values(self, name: str) -> Optional[list[expr.Value]]:
        """The value of a named constant for every ABI (None if it cannot be had)."""
        sym = self.symbols.get(name)
        if sym is None:
            return None
        if sym.values is not None:
            return sym.values
        if sym.compute is not None:
            sym.values = sym.compute() or [None] * len(ABIS)  # type: ignore[list-item]
            return sym.values
        if sym.busy:
            self.error(sym.mark, f"{name} is defined in terms of itself",
                       "break the cycle: give one of the constants a plain number")
            sym.values = [None] * len(ABIS)  # type: ignore[list-item]
            return sym.values
        if self.chain >= MAX_CHAIN:
            self.error(sym.mark, f"{name} is defined through a chain of more than {MAX_CHAIN} other constants",
                       "give one of them a plain number")
            sym.values = [None] * len(ABIS)  # type: ignore[list-item]
            return sym.values
        sym.busy = True
        if self.chain == 0:
            self.refill()
        self.chain += 1
        try:
            values = self._evaluate_symbol(sym)
        finally:
            self.chain -= 1
        sym.busy = False
        sym.values = values
        return values

    def _evaluate_symbol(self, sym: _Symbol) -> list:
        outer = self.arch_touched
        try:
            return self._evaluate_symbol_per_abi(sym)
        finally:
            self.arch_touched = outer or sym.arch_dependent

    def _evaluate_symbol_per_abi(self, sym: _Symbol) -> list:
        name = sym.name
        node = self.parse_expr(sym.text, sym.mark)
        values: list = []
        missing = 0
        # An expression that names nothing architecture-specific has one value per
        # evaluation class (type sizes and ioctl encoding): evaluated once for each.
        shared: dict[tuple, Any] = {}
        for abi in ABIS:
            if node is None or abi.arch not in sym.arches:
                values.append(None)
                continue
            eval_class = abi.layout_class   # ioctl numbers (other encodings) count as arch-specific
            if eval_class in shared:
                values.append(shared[eval_class])
                continue
            self.arch_touched = False
            try:
                v = self.evaluator(abi).evaluate(node)
            except expr.Unavailable:   # a name it uses failed, and said so
                node = None
                values.append(None)
                continue
            except RecursionError:
                self.error(sym.mark, f"in {sym.text!r}: macros expand too deeply",
                           "simplify the macros this expression uses")
                node = None
                values.append(None)
                continue
            except NotDefinedHere:
                # Uses a macro that this architecture's headers never define (PAGE_SIZE,
                # ...): the definition exists, but code there cannot expand it.
                sym.arch_dependent = True
                missing += 1
                sym.elsewhere = sym.elsewhere | {abi.name}
                values.append(None)
                continue
            except expr.ExprError as exc:
                self.expr_error(sym.mark, sym.text, exc)
                node = None
                values.append(None)
                continue
            if v is None:
                values.append(None)
                continue
            if sym.c_enum:
                int_type = expr.int_types(abi.long_bits)["int"]
                if not int_type.holds(v.value):
                    self.error(sym.mark, f"{name} = {v.value} does not fit in a C enum (int)",
                               "use c_style: define for values beyond 32 bits")
                v = expr.Value(int_type.wrap(v.value), int_type)
            values.append(v)
            if self.arch_touched:
                sym.arch_dependent = True
            else:
                shared[eval_class] = v
        if missing and missing == sum(abi.arch in sym.arches for abi in ABIS):
            sym.unevaluable = True
        return values

    def evaluator(self, abi: Abi) -> expr.Evaluator:
        ev = self.evaluators.get(abi.name)
        if ev is None:
            index = ABIS.index(abi)

            def lookup(name: str) -> Optional[expr.Value]:
                key = self.key_on(name, abi.arch)
                if key is None:
                    raise NotDefinedHere(f"{name} is not defined for {abi.arch}")
                values = self.symbol_values(key)
                sym = self.symbols.get(key)
                if key in self.key_arch or name in self.variants or sym is None or sym.arch_dependent:
                    self.arch_touched = True
                if values is None and name in self.external:
                    raise NotDefinedHere(f"{name} is not defined for {abi.arch} (an external macro)")
                if values is None:
                    return None
                if values[index] is None:
                    if self.symbols[key].unevaluable:
                        raise NotDefinedHere(f"{name} cannot be expanded on {abi.arch}")
                    if self.symbols[key].text == "":
                        raise expr.ExprError(f"{name} is defined without a value",
                                             hint="only #ifdef (c_guard) can use it")
                    raise expr.Unavailable(f"{name} has no value (see the error reported for it)")
                return values[index]

            def sizeof(type_text: str) -> Optional[int]:
                if type_text in SCALARS:
                    return SCALARS[type_text].size(abi)
                kind, _, name = type_text.partition(" ")
                key = self.key_on(name, abi.arch)
                entry = self.items.get(key) if key is not None else None
                if entry is None or entry[0] != kind:
                    if name in self.variants or name in self.key_arch:
                        raise NotDefinedHere(f"{type_text} is not defined for {abi.arch}")
                    return None
                record = self.ensure(key, self.build_record_item, self.file_arch(entry[2]))
                if not isinstance(record, Record):
                    return None
                if key in self.key_arch or name in self.variants or \
                        record.layouts[index] is not record.layouts[_CLASS_REP[index]]:
                    self.arch_touched = True
                if record.layouts[index] is None:
                    raise NotDefinedHere(f"{type_text} has no layout on {abi.name}")
                return record.layouts[index].size

            def offsetof(type_text: str, path: tuple) -> "Optional[int | str]":
                kind, _, name = type_text.partition(" ")
                key = self.key_on(name, abi.arch)
                entry = self.items.get(key) if key is not None else None
                if entry is None or entry[0] != kind:
                    if name in self.variants or name in self.key_arch:
                        raise NotDefinedHere(f"{type_text} is not defined for {abi.arch}")
                    return None
                record = self.ensure(key, self.build_record_item, self.file_arch(entry[2]))
                if not isinstance(record, Record):
                    return None
                if key in self.key_arch or name in self.variants:
                    self.arch_touched = True
                if record.layouts[index] is None:
                    raise NotDefinedHere(f"{type_text} has no layout on {abi.name}")
                return member_offset(record, path, abi)

            def unknown_call(name: str) -> None:
                if name in self.external:
                    raise NotDefinedHere(f"{name}() is not defined by the KVM headers (an external macro)")

            ev = expr.Evaluator(abi.long_bits, lookup, self.macros, sizeof, offsetof, unknown_call,
                                suggest=self.suggest)
            self.evaluators[abi.name] = ev
        return ev

    def refill(self) -> None:
        """A new evaluation starts: it may take up to expr.MAX_STEPS operations."""
        for ev in self.evaluators.values():
            ev.budget = expr.MAX_STEPS

    def evaluate_text(self, text: str, mark: Mark) -> Optional[list[int]]:
        """Evaluate an expression for every ABI; None after reporting a problem."""
        node = self.parse_expr(text, mark)
        if node is None:
            return None
        if self.chain == 0:
            self.refill()
        result: list = []
        arches = self.context_arches()
        for abi in ABIS:
            if abi.arch not in arches:
                result.append(None)
                continue
            try:
                result.append(self.evaluator(abi).evaluate(node).value)
            except NotDefinedHere:
                result.append(None)
            except expr.Unavailable:   # reported where it failed
                return None
            except RecursionError:
                self.error(mark, f"in {text!r}: macros expand too deeply", "simplify the macros it uses")
                return None
            except expr.ExprError as exc:
                self.expr_error(mark, text, exc)
                return None
        return result

    # ------------------------------------------------------------ common keys
    def common(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]) -> dict:
        name = raw[kind]
        arch = raw.get("arch")
        arch_tuple = file_arch if arch is None else (() if arch == "all" else tuple(arch))
        header = raw.get("header", spec_file.header)
        if header not in self.header_names:
            self.error(raw.mark_of("header"), f"unknown header {header!r}",
                       "use one of: " + ", ".join(sorted(self.header_names)))
        self.check_arches(arch_tuple, raw, "arch")
        impls = tuple(raw.get("implementations", ()))
        self.check_implementations(impls, raw)
        if "c_guard" in raw:
            self.check_guard_order(raw["c_guard"], (name, header), raw.mark_of("c_guard"))
        return dict(
            name=name, doc=raw["doc"], since=Version.parse(raw["since"]), arch=arch_tuple,
            header=header, file=spec_file, mark=raw.mark_of(kind), implementations=impls,
            deprecated=self.lifecycle(raw, "deprecated"), removed=self.lifecycle(raw, "removed"),
            c_guard=Guard.parse(raw["c_guard"]) if "c_guard" in raw else None,
            active_on=(active_on := self.active_on(raw, self.current_key())),
            active=NATIVE.arch in active_on,
            abi_exceptions=self.abi_exceptions(raw),
            moves=self.moves(raw),
            guard_on=tuple(sorted(self.guard_arches(raw.get("c_guard")))),
        )

    def abi_exceptions(self, raw: Map) -> tuple[AbiException, ...]:
        out = []
        for index, entry in enumerate(raw.get("abi_exceptions", ())):
            impls = tuple(entry.get("implementations", ()))
            self.check_implementations(impls, entry)
            since = entry["since"]
            releases = tuple(Version.parse(v) for v in ([since] if isinstance(since, str) else since))
            out.append(AbiException(entry["rule"], releases, entry["reason"], raw["abi_exceptions"].mark_of(index),
                                    impls))
        return tuple(out)

    def moves(self, raw: Map) -> tuple[Move, ...]:
        moves = []
        for entry in raw.get("moved", ()):
            if entry["header"] not in self.header_names:
                self.error(entry.mark_of("header"), f"unknown header {entry['header']!r}",
                           "use one of: " + ", ".join(sorted(self.header_names)))
            guard = entry.get("c_guard")
            moves.append(Move(entry["header"], Version.parse(entry["until"]),
                              Guard.parse(guard) if guard else None,
                              tuple(sorted(self.guard_arches(guard))) if guard else ()))
        return tuple(sorted(moves, key=lambda m: m.until))

    @staticmethod
    def history(raw: Map) -> tuple[PastValue, ...]:
        return tuple(sorted((PastValue(Version.parse(h["until"]), _text(h["value"])) for h in raw.get("history", ())),
                            key=lambda h: h.until))

    def header_defects(self, raw: Map) -> tuple[HeaderDefect, ...]:
        """The header_defects: of a constant or value: release ranges in which the kernel's
        header spelled it with a macro userspace does not have."""
        out = []
        for entry in raw.get("header_defects", ()):
            since, until = Version.parse(entry["since"]), Version.parse(entry["until"])
            if not since.parts < until.parts:
                self.error(entry.mark_of("until"), f"header_defects: until {entry['until']} is not after "
                           f"since {entry['since']}", "until is the first release whose header was right")
            out.append(HeaderDefect(since, until, _text(entry["wrote"]), entry["reason"].strip(), entry.mark_of("since")))
        return tuple(sorted(out, key=lambda d: d.since))

    def lifecycle(self, raw: Map, key: str) -> Optional[Lifecycle]:
        data = raw.get(key)
        if data is None:
            return None
        replacement = data.get("replacement")
        if replacement is not None and self.key(replacement) not in self.items \
                and self.key(replacement) not in self.symbols:
            self.error(data.mark_of("replacement"), f"unknown replacement {replacement!r}",
                       self.unknown_hint(replacement, (), "name an item defined in the spec"))
        return Lifecycle(Version.parse(data["since"]), data["doc"], replacement, data.get("moved_to"))

    def check_arches(self, arches: tuple[str, ...], raw: Map, key: str) -> None:
        """Architectures named by raw[key] (or inherited, when raw has no such key)."""
        for a in arches:
            if a not in self.arch_names:
                self.error(raw.mark_of(key), f"unknown architecture {a!r}",
                           "use one of: " + ", ".join(sorted(self.arch_names)) + ", or all")

    def check_implementations(self, impls: tuple[str, ...], raw: Map) -> None:
        for i in impls:
            if i not in self.impl_names:
                self.error(raw.mark_of("implementations"), f"unknown implementation {i!r}",
                           "use one of: " + ", ".join(sorted(self.impl_names)))

    def reference(self, name: str, kinds: tuple[str, ...], mark: Mark, what: str,
                  user: Optional[str] = None) -> Optional[Definition]:
        """Resolve a reference to an item of one of `kinds`, reporting problems."""
        name = self.key(name)
        entry = self.items.get(name)
        if entry is None or entry[0] not in kinds:
            found = f" (it is a {entry[0]})" if entry else ""
            shown = name.partition("@")[0]
            self.error(mark, f"unknown {what} {shown!r}{found}",
                       self.unknown_hint(shown, kinds, f"define a {' or '.join(kinds)} named {shown!r}"))
            return None
        return self.built.get(name)

    # ------------------------------------------------------------ build
    def build(self) -> Model:
        manifest, files = self.read()
        self.arch_names = {a["name"] for a in manifest["architectures"]}
        externals = tuple(ExternalMacro(m["name"], m["doc"]) for m in manifest.get("external_macros", ()))
        self.external = {m.name for m in externals}
        external_types = tuple(ExternalType(t["name"], int(t["size"]), t["arch"], t["doc"])
                               for t in manifest.get("external_types", ()))
        self.external_types = {t.name: t for t in external_types}
        architectures = []
        self.impl_names: dict[str, str] = {}
        for a in manifest["architectures"]:
            impls = []
            for impl in a.get("implementations", ()):
                impls.append(Implementation(impl["name"], a["name"], impl["doc"]))
                self.impl_names[impl["name"]] = a["name"]
            architectures.append(Architecture(a["name"], a["doc"], tuple(impls)))
        headers = tuple(Header(h["name"], h["path"], h.get("guard", ""), h["doc"], tuple(h.get("includes", ())),
                               h.get("arch"), h.mark_of("name"), bool(h.get("emit", True)))
                        for h in manifest["headers"])
        self.header_names = {h.name for h in headers}
        self.header_arch = {h.name: h.arch for h in headers}
        self.all_arches = tuple(a.name for a in architectures)
        # <asm/kvm.h> is every architecture's own header.
        include_names: dict[str, set[str]] = {}
        for h in headers:
            include_names.setdefault(h.include_name, set()).add(h.name)
        self.header_includes = {h.name: {n for i in h.includes for n in include_names.get(i, ())
                                         if h.arch is None or self.header_arch[n] in (None, h.arch)}
                                for h in headers}
        self.register(files)
        for key, sym in self.symbols.items():
            sym.arches = self.arches_of_key(key)
        self.emit_order: dict[tuple[str, str], float] = {}   # (header, name) -> place in its outline
        self.member_paths: list[tuple[str, Mark]] = []   # outline within: RECORD.MEMBER, checked once built
        self.outline_warnings: list[Diagnostic] = []
        outlines = {name: self.resolve_outline(name, data) for name, data in self.outlines.items()}
        headers = tuple(Header(h.name, h.path, h.guard, h.doc, h.includes, h.arch, h.mark, h.emit,
                               outlines.get(h.name, ()),
                               self.outlines[h.name].path if h.name in self.outlines else "")
                        for h in headers)

        # Values, then records, then capabilities, then ioctls: each only
        # refers to kinds built before it.
        phases: list[tuple[tuple[str, ...], Callable]] = [
            (("const", "macro", "enum", "flags"), self.build_value_item),
            (("struct", "union"), self.build_record_item),
            (("capability",), self.build_capability),
            (("exit",), self.build_value_item),
            (("ioctl",), self.build_ioctl),
        ]
        self.file_arches = {}
        phase_of = {kind: index for index, (kinds, _) in enumerate(phases) for kind in kinds}
        in_phase: list[list[tuple[str, tuple[str, ...]]]] = [[] for _ in phases]   # in file order
        for spec_file, data in files:
            file_arch = data.get("arch")
            file_arch_t = self.file_arches[spec_file.path] = () if file_arch in (None, "all") else tuple(file_arch)
            for raw in data["items"]:
                kind = schema.item_kind(raw)
                key = self.key_of_raw.get(id(raw))
                if key is not None:
                    in_phase[phase_of[kind]].append((key, file_arch_t))
        for (_, build), entries in zip(phases, in_phase):
            for name, file_arch_t in entries:
                self.ensure(name, build, file_arch_t)
        fallback_items = []
        for kind, raw, spec_file in self.fallbacks:
            self.keys.append(f"!{raw[kind]}")
            self.context.append(self.key_arch.get(f"!{raw[kind]}"))
            item = self.build_value_item(kind, raw, spec_file, self.file_arches[spec_file.path]) \
                if kind in ("const", "macro") else None
            self.context.pop()
            self.keys.pop()
            if item is None and kind not in ("const", "macro"):
                self.error(raw.mark_of(kind), "only a const or macro can be a default (c_guard on its own name)")
            elif item is not None:
                fallback_items.append(item)
        for path, mark in self.member_paths:
            record, member = path.split(".", 1)
            built = self.built.get(record)
            if isinstance(built, Record) and built.field_at(member) is None:
                self.error(mark, f"{record} has no member {member!r}",
                           "write the path with dots through named members, e.g. kvm_run.io.direction")
        if self.failed and not self.report.diagnostics:
            # Every item that could not be built must have said why; an item
            # left out without a word would vanish from every output.
            for name in sorted(self.failed, key=self.order.__getitem__):
                kind, raw, _ = self.items[name]
                self.error(raw.mark_of(kind), f"{kind} {name} could not be built, and no check said why",
                           "a gap in kvmspec's checks: look at what it refers to (values, types, sizes), "
                           "and report this with the spec")
        self.report.raise_if_any()
        position = {id(i): self.order[key] for key, i in self.built.items()}
        position.update({id(i): self.order[f"!{i.name}"] for i in fallback_items})
        items = tuple(sorted([*self.built.values(), *fallback_items], key=lambda i: position[id(i)]))
        by_name = {key: item for key, item in self.built.items() if "@" not in key}
        variants = {}
        for name, table in self.variants.items():
            built = tuple(self.built[k] for k in table.values() if k in self.built)
            variants[name] = built
            native = self.built.get(table.get(NATIVE.arch, ""))
            if native is not None:
                by_name[name] = native
        released = Version.parse(manifest["released"]) if "released" in manifest else None
        documents = self.resolve_documents(by_name)   # errors are reported with the model's checks
        model = Model(manifest["title"], tuple(architectures), externals, external_types, headers,
                      tuple(f for f, _ in files), items, by_name, variants, tuple(self.outline_warnings),
                      released, documents)
        if released is not None and released.parts > model.newest.parts:
            self.error(manifest.mark_of("released"),
                       f"released: {released} is later than the newest release any item names ({model.newest})",
                       "set it to the newest mainline release that is out")
        if self.check_rules:
            self.report.diagnostics.extend(check_model(model, self.check_invariants))
        self.report.raise_if_any()
        return model

    def current_key(self) -> str:
        return self.keys[-1]

    def seen_everywhere(self, values: list, sym: Optional[_Symbol] = None) -> bool:
        """Whether a value was had on every ABI whose userspace sees the item being built
        (and has every macro it uses)."""
        if None not in values:
            return True
        arches = self.context_arches()
        elsewhere = sym.elsewhere if sym is not None else frozenset()
        return any(v is not None for v in values) and \
            all(v is not None for abi, v in zip(ABIS, values) if abi.arch in arches and abi.name not in elsewhere)

    def context_arches(self) -> tuple[str, ...]:
        """Architectures whose userspace sees the item being built."""
        return self.arches_of_key(self.keys[-1]) if self.keys else self.all_arches

    def ensure(self, name: str, build: Callable, file_arch: tuple[str, ...]) -> Optional[Definition]:
        """Build an item once (records are built on demand, in dependency order).
        `name` is the item's key (see self.items)."""
        if name in self.built or name in self.failed:
            return self.built.get(name)
        kind, raw, spec_file = self.items[name]
        self.building.add(name)
        self.keys.append(name)
        self.context.append(self.key_arch.get(name))
        try:
            item = build(kind, raw, spec_file, file_arch)
        finally:
            self.context.pop()
            self.keys.pop()
        self.building.discard(name)
        if item is None:
            self.failed.add(name)
        else:
            self.built[name] = item
        return item

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
        own = [(self.order[key], raw[kind], kind, raw) for key, (kind, raw, spec_file) in self.items.items()
               if raw.get("header", spec_file.header) == header and (_removed_in(raw) is None or key == raw[kind])]
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
        if name in self.items or self.key(name) in self.items:
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

    # ------------------------------------------------------------ values
    def build_value_item(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        if kind == "const" and "value" not in raw:
            return Constant(**common, expr="", values=())
        if kind == "const":
            if raw.get("c_guard") == f"!{raw['const']}":   # a default: evaluate its own text
                values = [None] * len(ABIS)
                node = self.parse_expr(_text(raw["value"]), raw.mark_of("value"))
                if node is not None:
                    numbers = self.evaluate_text(_text(raw["value"]), raw.mark_of("value"))
                    values = [expr.Value(n, None) for n in numbers] if numbers else values  # type: ignore[arg-type]
            else:
                values = self.symbol_values(self.current_key())
                if self.symbols[self.current_key()].unevaluable:
                    return Constant(**common, expr=_text(raw["value"]), values=())
            if values is None or not self.seen_everywhere(values, self.symbols.get(self.current_key())):
                return None
            return Constant(**common, expr=_text(raw["value"]), history=self.history(raw),
                            values=tuple(v.value if v is not None else None for v in values),
                            header_defects=self.header_defects(raw))
        if kind == "macro":
            return FunctionMacro(**common, params=tuple(raw["params"]), body=raw["body"])
        if kind == "exit":
            return ExitReason(**common, value=int(raw["value"]), member=raw.get("member"),
                              requires=self.reference(raw["requires"], ("capability",), raw.mark_of("requires"),
                                                      "capability") if "requires" in raw else None)
        scalar = SCALARS[raw["type"]]
        values = []
        for entry in raw["values"]:
            value_key = self.key_of_raw.get(id(entry)) or self.key(entry["name"])
            evaluated = self.symbol_values(value_key)
            if evaluated is None or not self.seen_everywhere(evaluated, self.symbols[value_key]):
                continue
            impls = tuple(entry.get("implementations", ()))
            self.check_implementations(impls, entry)
            arch = entry.get("arch")
            arch_t = () if arch in (None, "all") else tuple(arch)
            self.check_arches(arch_t, entry, "arch")
            values.append(NamedValue(
                name=entry["name"], expr=_text(entry["value"]),
                values=tuple(v.value if v is not None else None for v in evaluated),
                doc=entry.get("doc", ""), since=Version.parse(entry["since"]) if "since" in entry else common["since"],
                mark=entry.mark_of("name"), value_mark=entry.mark_of("value"),
                implementations=impls, arch=arch_t,
                deprecated=self.lifecycle(entry, "deprecated"), removed=self.lifecycle(entry, "removed"),
                alias=bool(entry.get("alias", False)), mask=bool(entry.get("mask", False)),
                c_define=bool(entry.get("c_define", True)), history=self.history(entry),
                abi_exceptions=self.abi_exceptions(entry), header_defects=self.header_defects(entry)))
        if kind == "enum":
            return Enum(**common, type=scalar, values=tuple(values), c_style=raw.get("c_style", "define"),
                        c_define_values=bool(raw.get("c_define_values", False)),
                        defines_until=Version.parse(raw["defines_until"]) if "defines_until" in raw else None)
        return FlagSet(**common, type=scalar, values=tuple(values))

    # ------------------------------------------------------------ records
    def build_record_item(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        exemption = raw.get("abi_exemption")
        return self.record(common, kind == "union", raw["fields"], raw.mark_of("fields"),
                           exemption["reason"] if exemption else None, inline=False,
                           owner=(raw[kind], common["header"]))

    def record(self, common: dict, is_union: bool, raw_fields: Seq, mark: Mark,
               exemption: Optional[str], inline: bool, owner: tuple[str, str],
               enclosing: tuple[dict, ...] = ()) -> Optional[Record]:
        """`enclosing`: the fields of the records an anonymous member belongs to, which its own
        fields may name (as C lets code name them)."""
        partial: list[dict] = []
        field_arches: list[frozenset] = []
        field_shapes: list[tuple[list, int, int]] = []   # (size and alignment per ABI, count, bits)
        # None for an ABI where a member's type is not defined (another architecture's struct)
        members_per_abi: list[Optional[list[Member]]] = [[] for _ in ABIS]
        ok = True
        for index, rf in enumerate(raw_fields):
            fmark = raw_fields.mark_of(index)
            fname = rf.get("name")
            if fname is not None and not plain_identifier(fname):
                self.report.diagnostics.extend(check_identifier(fname, rf.mark_of("name"), "field"))
            active_arches = self.guard_arches(rf.get("c_guard"))
            guard_arches = active_arches
            if "until" in rf:   # dropped before the newest release: not in its layout
                active_arches = frozenset()
            active = NATIVE.arch in active_arches
            if "c_guard" in rf:
                self.check_guard_order(rf["c_guard"], owner, rf.mark_of("c_guard"))
            info: dict[str, Any] = dict(name=fname, doc=rf.get("doc", ""), mark=fmark,
                                        reserved=bool(rf.get("reserved", False)),
                                        since=Version.parse(rf["since"]) if "since" in rf else None,
                                        deprecated=self.lifecycle(rf, "deprecated"),
                                        c_guard=Guard.parse(rf["c_guard"]) if "c_guard" in rf else None,
                                        c_comment=rf.get("c_comment", ""),
                                        c_join=bool(rf.get("c_join", False)),
                                        active=active, valid_with=rf.get("valid_with"),
                                        active_on=tuple(a for a in self.context_arches() if a in guard_arches),
                                        until=Version.parse(rf["until"]) if "until" in rf else None,
                                        history=tuple(sorted(
                                            (PastField(Version.parse(h["until"]), h.get("name"), h.get("type"),
                                                       _text(h["array"]) if "array" in h else None)
                                             for h in rf.get("history", ())), key=lambda h: h.until)))
            elem_sizes: list[Optional[tuple[int, int]]] = []
            if "type" in rf:
                type_text = rf["type"]
                if type_text in SCALARS:
                    scalar = SCALARS[type_text]
                    info["scalar"] = scalar
                    elem_sizes = scalar.placed
                else:
                    rkind, rname = type_text.split(" ", 1)
                    targets = self.record_references(rkind, rname, rf.mark_of("type"), owner)
                    if targets is None:
                        ok = False
                        continue
                    info["record"] = self.native_of(targets)
                    if len(set(map(id, targets))) > 1:
                        info["records"] = tuple(targets)
                    elem_sizes = [(t.layouts[i].size, t.layouts[i].align)
                                  if t is not None and t.layouts[i] is not None else None
                                  for i, t in enumerate(targets)]
            else:
                sub_kind = "struct" if "struct" in rf else "union"
                sub = rf[sub_kind]
                sub_common = dict(common, name="", mark=rf.mark_of(sub_kind), doc=rf.get("doc", ""))
                target = self.record(sub_common, sub_kind == "union", sub["fields"], sub.mark_of("fields"),
                                     exemption, inline=True, owner=owner,
                                     enclosing=(*partial, *enclosing) if fname is None else ())
                if target is None:
                    ok = False
                    continue
                info["record"] = target
                elem_sizes = [(l.size, l.align) if l is not None else None for l in target.layouts]
                if fname is None and "array" in rf:
                    self.error(rf.mark_of("array"), "an anonymous member cannot be an array",
                               "give the member a name")
            if rf.get("c_join") and (not partial or "type" not in rf or raw_fields[index - 1].get("type") != rf["type"]
                                     or "c_guard" in rf or "c_comment" in rf):
                self.error(rf.mark_of("c_join"), "c_join: only a field of the same type as the field before it "
                                                 "can share its declaration", "remove c_join:")
            if fname is None and "type" in rf:
                self.error(fmark, "only an inline struct or union member may be anonymous",
                           "add name: to the field")
                ok = False
                continue
            dims, dims_text, flexible = self.dimensions(rf, owner)
            if dims is None:
                ok = False
                continue
            info.update(dims=dims, dims_text=dims_text, flexible=flexible)
            if "counted_by" in rf:
                # a flexible array's count comes before it; a fixed array's count of elements in use
                # may come after it (mmio.len after mmio.data), so it is looked up once all are read
                if not flexible and not dims:
                    self.error(rf.mark_of("counted_by"), "counted_by is only for an array (array: N or flexible)",
                               "remove counted_by:")
                elif flexible and not self.integer_sibling(partial, rf["counted_by"]):
                    self.error(rf.mark_of("counted_by"), f"counted_by: {rf['counted_by']} is not an integer field "
                                                         "before the array in this record",
                               "name the field that holds the number of elements")
                else:
                    info["counted_by"] = rf["counted_by"]
                    info["_counted_mark"] = rf.mark_of("counted_by")
            if "buffer" in rf:
                self.buffer(rf, partial, info)
            bits = int(rf.get("bits", 0))
            if bits:
                if "scalar" not in info or info["scalar"].is_pointer or dims or flexible:
                    self.error(rf.mark_of("bits"), "only a plain integer field can be a bit-field",
                               "remove bits: or make the field an integer scalar")
                    ok = False
                    continue
                if bits > info["scalar"].size(ABIS[0]) * 8:
                    self.error(rf.mark_of("bits"),
                               f"a {info['scalar'].name} bit-field cannot be {bits} bits wide",
                               f"use at most {info['scalar'].size(ABIS[0]) * 8} bits or a wider type")
                    ok = False
                    continue
            info["bits"] = bits
            if "flags" in rf:
                names = [rf["flags"]] if isinstance(rf["flags"], str) else list(rf["flags"])
                info["flag_sets"] = tuple(s for s in (self.reference(n, ("flags",), rf.mark_of("flags"), "flag set")
                                                      for n in names) if s is not None)
            if "enum" in rf:
                info["enum"] = self.reference(rf["enum"], ("enum",), rf.mark_of("enum"), "enum")
            field_shapes.append((elem_sizes, 0 if flexible else _product(dims), bits))
            partial.append(info)
            field_arches.append(active_arches)
        for info in partial:
            counted_mark = info.pop("_counted_mark", None)
            if counted_mark is not None and not self.integer_sibling(partial, info["counted_by"]) \
                    and not self.integer_sibling(list(enclosing), info["counted_by"]):
                self.error(counted_mark, f"counted_by: {info['counted_by']} is not an integer field of this record",
                           "name the field that holds the number of elements in use")
                ok = False
        if not ok:
            return None
        if not partial and not self.empty_allowed(owner):
            self.error(mark, "a record needs at least one field")
            return None
        # Most records look the same to every architecture: then ABIs of one layout
        # class lay them out alike, and only one ABI of each class is computed.
        everywhere = frozenset(self.all_arches)
        uniform = all(a >= everywhere for a in field_arches) and \
            all(type(shape[0]) is tuple or all(shape[0][i] == shape[0][r] for i, r in enumerate(_CLASS_REP))
                for shape in field_shapes)
        computed = _CLASS_REPS if uniform else range(len(ABIS))
        member_of = self.member_cache
        for i in computed:
            arch = ABIS[i].arch
            members = members_per_abi[i]
            for (elems, count, bits), active_arches in zip(field_shapes, field_arches):
                if arch not in active_arches:
                    continue
                placed = elems[i]
                if placed is None:
                    members = None
                    break
                key = (placed, count, bits)
                member = member_of.get(key)
                if member is None:
                    member = member_of[key] = Member(placed[0], placed[1], count, bits)
                members.append(member)   # type: ignore[union-attr]
            members_per_abi[i] = members
        laid = {i: record_layout(members_per_abi[i], is_union) if members_per_abi[i] is not None else None
                for i in computed}
        layouts = tuple(laid[i] if i in laid else laid[_CLASS_REP[i]] for i in range(len(ABIS)))
        fields = []
        index = [0] * len(ABIS)
        for info, active_arches in zip(partial, field_arches):
            column: dict[int, tuple[Optional[int], Optional[int]]] = {}
            for i in computed:
                l = laid[i]
                if l is None or ABIS[i].arch not in active_arches:
                    column[i] = (None, None)
                    continue
                placement = l.placements[index[i]]
                column[i] = (placement.offset, placement.bit_offset)
                index[i] += 1
            placed_at = [column[i] if i in column else column[_CLASS_REP[i]] for i in range(len(ABIS))]
            offsets = [o for o, _ in placed_at]
            bit_offsets = [b for _, b in placed_at]
            if not info["active"] and all(o is None for o in offsets):
                fields.append(Field(**info))
                continue
            fields.append(Field(**info, offsets=tuple(offsets), bit_offsets=tuple(bit_offsets)))
        return Record(**common, is_union=is_union, fields=tuple(fields), layouts=layouts,
                      exemption=exemption, inline=inline)

    def empty_allowed(self, owner: tuple[str, str]) -> bool:
        """Architecture headers define empty structs (GNU C) for what they do not have,
        e.g. riscv's kvm_debug_exit_arch."""
        return self.header_arch.get(owner[1]) is not None

    @staticmethod
    def native_of(targets: list) -> Any:
        """What a member of per-ABI types shows where one is wanted: the native one, else the first."""
        native = targets[ABIS.index(NATIVE)]
        return native if native is not None else next(t for t in targets if t is not None)

    def owner_name(self, symbol: str) -> str:
        """The item that defines a symbol (an enum or flag value belongs to its set)."""
        symbol = self.key(symbol)
        if symbol in self.items:
            return symbol
        owner = self.symbols[symbol].owner
        kind = schema.item_kind(owner)
        return owner[kind]

    def record_references(self, rkind: str, rname: str, mark: Mark,
                          owner: tuple[str, str]) -> Optional[list[Optional[Record]]]:
        """The record a member's type names, per ABI: the definition each ABI's
        architecture has (None where it has none), or None after reporting a problem."""
        if self.context[-1] is None and (rname in self.variants or rname in self.key_arch):
            targets: list[Optional[Record]] = []
            for abi in ABIS:
                key = self.key_on(rname, abi.arch)
                targets.append(self.record_reference(rkind, key, mark, owner) if key is not None else None)
            if all(t is None for t in targets):
                return None
            return targets
        target = self.record_reference(rkind, self.key(rname), mark, owner)
        return None if target is None else [target] * len(ABIS)

    def record_reference(self, rkind: str, rname: str, mark: Mark, owner: tuple[str, str]) -> Optional[Record]:
        entry = self.items.get(rname)
        if entry is None or entry[0] not in ("struct", "union"):
            self.error(mark, f"unknown {rkind} {rname!r}",
                       self.unknown_hint(rname, ("struct", "union"), f"define {rkind} {rname} in the spec"))
            return None
        if entry[0] != rkind:
            self.error(mark, f"{rname} is a {entry[0]}, not a {rkind}", f"write '{entry[0]} {rname}'")
            return None
        if rname in self.building:
            self.error(mark, f"{rkind} {rname} contains itself",
                       "a record cannot contain itself; use a pointer-sized __u64 instead")
            return None
        if not self.check_visible(owner, rname, mark, f"{rkind} {rname}"):
            return None
        target = self.ensure(rname, self.build_record_item, self.file_arch(entry[2]))
        return target if isinstance(target, Record) else None

    def file_arch(self, spec_file: SpecFile) -> tuple[str, ...]:
        return self.file_arches.get(spec_file.path, ())

    def dimensions(self, rf: Map, owner: tuple[str, str]) -> tuple[Optional[tuple[int, ...]], tuple[str, ...], bool]:
        if "array" not in rf:
            return (), (), False
        raw = rf["array"]
        amark = rf.mark_of("array")
        if raw == "flexible":
            return (), (), True
        entries = list(raw) if isinstance(raw, list) else [raw]
        dims: list[int] = []
        texts: list[str] = []
        for entry in entries:
            if isinstance(entry, int):
                dims.append(int(entry))
                texts.append(_text(entry))
                continue
            if isinstance(entry, str):
                for used in expr.names(self.parse_expr(entry, amark) or expr.Num(0, "", "0", 0)):
                    if self.key(used.name) in self.order and self.key(used.name) in self.symbols:
                        if not self.check_visible(owner, self.owner_name(used.name), amark, used.name):
                            return None, (), False
            if isinstance(entry, str) and self.key(entry) in self.symbols:
                values = self.symbol_values(self.key(entry))
                seen = [v for abi, v in zip(ABIS, values or ()) if abi.arch in self.context_arches()]
                if values is None or not seen or any(v is None for v in seen):
                    self.no_value(self.key(entry), amark, "size an array")
                    return None, (), False
                numbers = {v.value for v in seen}
            elif isinstance(entry, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", entry):
                self.error(amark, f"unknown constant {entry!r} as array size",
                           self.unknown_hint(entry, ("const",), "define it with a const: item earlier in the spec"))
                return None, (), False
            else:
                evaluated = self.evaluate_text(entry, amark)
                if evaluated is None:
                    return None, (), False
                numbers = {n for n in evaluated if n is not None}
            if len(numbers) != 1 or min(numbers) < 1:
                self.error(amark, f"array size {entry} must be a positive number, the same on every ABI")
                return None, (), False
            dims.append(numbers.pop())
            texts.append(entry)
        if 0 in dims and len(dims) > 1:
            self.error(amark, "a zero-length array has a single dimension")
            return None, (), False
        return tuple(dims), tuple(texts), False

    # ------------------------------------------------------------ capabilities
    def build_capability(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        answer = raw["answer"]
        flags = None
        if "flags" in answer:
            flags = self.reference(answer["flags"], ("flags",), answer.mark_of("flags"), "flag set")
        enable = raw.get("enable")
        args = []
        if enable is not None:
            for index, arg in enumerate(enable.get("args", ())):
                arg_flags = self.reference(arg["flags"], ("flags",), arg.mark_of("flags"), "flag set") \
                    if "flags" in arg else None
                arg_enum = self.reference(arg["enum"], ("enum",), arg.mark_of("enum"), "enum") \
                    if "enum" in arg else None
                args.append(EnableArg(index, arg["doc"], arg_flags, arg_enum))
        return Capability(**common, value=int(raw["value"]), check=tuple(raw["check"]),
                          answer_kind=answer["kind"], answer_doc=answer.get("doc", ""),
                          answer_flags=flags,
                          enable_scope=enable["scope"] if enable else None,
                          enable_args=tuple(args), enable_doc=enable["doc"] if enable else "")

    # ------------------------------------------------------------ ioctls
    def ioctl_encoding(self, raw: Map, owner: tuple[str, str], report: bool):
        """(nr, dir, type text, scalar, record, numbers per ABI) of an ioctl, or None."""
        error = self.error if report else (lambda *args, **kwargs: None)
        nr = int(raw["nr"])
        if nr > 0xFF:
            error(raw.mark_of("nr"), f"ioctl number {nr:#x} does not fit in 8 bits",
                  "ioctl numbers within KVMIO go from 0x00 to 0xff")
        direction = raw["dir"]
        type_text = raw.get("type")
        type_scalar = type_record = None
        type_records: tuple = ()
        sizes: list[Optional[int]] = [0] * len(ABIS)
        if direction != "none" and type_text is None:
            error(raw.mark_of("dir"), f"an ioctl encoded with dir: {direction} needs a type",
                  "add type: (the argument type whose size the number encodes)")
        if direction == "none" and type_text is not None:
            error(raw.mark_of("type"), "an ioctl encoded with dir: none has no type",
                  "remove type:, or set dir: to r, w or rw")
        external = self.external_types.get(type_text) if type_text is not None else None
        if external is not None:
            sizes = [external.size] * len(ABIS)
        elif type_text is not None:
            type_scalar, records = self.type_references(type_text, raw.mark_of("type"), owner, report)
            if type_scalar is not None:
                sizes = [type_scalar.size(abi) for abi in ABIS]
            elif records is not None:
                type_record = self.native_of(records)
                if len(set(map(id, records))) > 1:
                    type_records = tuple(records)
                sizes = [r.layouts[i].size if r is not None and r.layouts[i] is not None else None
                         for i, r in enumerate(records)]
            elif not report:
                return None
            reported = False
            for abi, size in zip(ABIS, sizes):
                if size is not None and size > abi.ioc.size_max and abi.arch in self.context_arches() \
                        and not reported:
                    reported = True
                    error(raw.mark_of("type"), f"{type_text} is {size} bytes on {abi.name}, "
                                               f"more than an ioctl number can encode ({abi.ioc.size_max})",
                          "pass a pointer to a smaller header struct instead")
        kvmio = self.symbol_values(KVMIO_NAME)
        if kvmio is None:
            error(raw.mark_of("ioctl"), "ioctls need the constant KVMIO", "define const: KVMIO (the ioctl type byte)")
            return None
        # ABIs of architectures the manifest does not list have no KVMIO (and no numbers)
        if any(v is None for v, abi in zip(kvmio, ABIS) if abi.arch in self.all_arches):
            return None
        encoded: dict[tuple, int] = {}
        numbers_list: list[Optional[int]] = []
        for i, (abi, size) in enumerate(zip(ABIS, sizes)):
            if size is None or kvmio[i] is None:
                numbers_list.append(None)
                continue
            key = (abi.ioc, kvmio[i].value, size)
            number = encoded.get(key)
            if number is None:
                number = encoded[key] = ioc(direction, kvmio[i].value, nr & 0xFF, min(size, abi.ioc.size_max), abi)
            numbers_list.append(number)
        numbers = tuple(numbers_list)
        return nr, direction, type_text, type_scalar, type_record, numbers, external, type_records

    def no_value(self, name: str, mark: Mark, purpose: str) -> None:
        """Report at `mark`, where a number is needed, that the constant `name`
        has none: it is defined without a value, or with one that x86 cannot
        evaluate. (An expression that does not evaluate was reported where it
        is written.)"""
        sym = self.symbols[name]
        name = sym.name   # the C name (a key may say which architecture's definition it is)
        if sym.text == "" and sym.owner is not None and schema.item_kind(sym.owner) == "const":
            self.error(mark, f"{name} is defined without a value, so it cannot {purpose}",
                       f"add value: to const {name} (at {sym.mark}); a const without a value is "
                       "only for #ifdef tests (c_guard)")
        elif sym.unevaluable:
            self.error(mark, f"{name} has no value on x86 (it uses a macro only other architectures "
                             f"define), so it cannot {purpose}", "use a constant x86 defines")

    def valueless(self, name: str, mark: Mark) -> Optional[list]:
        """A macro defined without a value cannot appear in an expression."""
        return None

    def ioctl_symbol_values(self, raw: Map, key: str) -> Optional[list]:
        """An ioctl's number as the value of its macro (other macros may alias it)."""
        owner = (raw["ioctl"], raw.get("header", self.items[key][2].header))
        self.keys.append(key)
        self.context.append(self.key_arch.get(key))
        try:
            encoding = self.ioctl_encoding(raw, owner, report=False)
        finally:
            self.context.pop()
            self.keys.pop()
        if encoding is None:
            return None
        # _IOC() is unsigned long: it adds sizeof() of the type.
        return [expr.Value(n, expr.int_types(abi.long_bits)["unsigned long"]) if n is not None else None
                for n, abi in zip(encoding[5], ABIS)]

    def build_ioctl(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        name = raw["ioctl"]
        owner = (name, common["header"])
        encoding = self.ioctl_encoding(raw, owner, report=True)
        if encoding is None:
            return None
        nr, direction, type_text, type_scalar, type_record, numbers, type_external, type_records = encoding

        arg = raw.get("arg", Map(raw.path, raw._mark))
        arg_pass = arg.get("pass", "pointer" if type_text is not None else "none")
        flow = arg.get("flow")
        if arg_pass != "pointer" and flow is not None:
            self.error(arg.mark_of("flow"), f"an argument passed as {arg_pass} has no data flow",
                       "remove flow:, or set pass: pointer")
        if arg_pass == "pointer" and flow is None:
            flow = {"w": "in", "r": "out", "rw": "inout"}.get(direction)
            if flow is None:
                self.error(arg.mark_of("pass") if "pass" in arg else raw.mark_of("dir"),
                           "the data flow of the pointer argument is not known",
                           "add arg: {flow: in|out|inout}; the encoding (dir: none) does not say")
        arg_scalar, arg_record = type_scalar, type_record
        if "type" in arg:
            arg_scalar, records = self.type_references(arg["type"], arg.mark_of("type"), owner)
            arg_record = self.native_of(records) if records is not None else None
        scopes = []
        for index, entry in enumerate(raw["fd"]):
            if isinstance(entry, str):
                scopes.append(Scope(entry))
            else:
                cap = self.reference(entry["capability"], ("capability",), entry.mark_of("capability"),
                                     "capability")
                scopes.append(Scope(entry["scope"], cap))
        capability = None
        if raw.get("capability", "basic") != "basic":
            capability = self.reference(raw["capability"], ("capability",), raw.mark_of("capability"),
                                        "capability")
        errors = []
        for entry in raw.get("errors", ()):
            code = entry["errno"]
            if not hasattr(errno_module, code):
                self.error(entry.mark_of("errno"), f"unknown errno {code!r}",
                           "use a name from <errno.h> such as EINVAL, EFAULT, E2BIG")
            impls = tuple(entry.get("implementations", ()))
            self.check_implementations(impls, entry)
            errors.append(ErrorCase(code, entry["doc"], impls))
        # When the argument type itself could not be resolved, that was reported
        # already; do not add an error for every field path that depends on it.
        arg_failed = arg_record is None and arg_scalar is None and (type_text is not None or "type" in arg)
        validations: list[Validation] = []
        emissions: list[Emission] = []
        if not arg_failed:
            validations = [v for entry in raw.get("validates", ())
                           if (v := self.validation(entry, arg_record, name)) is not None]
            emissions = [e for entry in raw.get("emits", ())
                         if (e := self.emission(entry, arg_record, name)) is not None]
        creates = raw.get("creates")
        creates_field = None
        if isinstance(creates, dict):
            creates, creates_field = creates["scope"], creates["field"]
            if arg_record is None or arg_record.field_at(creates_field) is None:
                self.error(raw.mark_of("creates"), f"{name} has no argument field {creates_field!r} for the new "
                                                   "file descriptor",
                           field_hint(arg_record, creates_field, "name a field of the argument struct"))
        example = self.example(raw, arg_record, name) if "example" in raw else None
        size_from = None
        if "size_from" in arg:
            size_from = self.reference(arg["size_from"], ("capability",), arg.mark_of("size_from"), "capability")
            if arg_pass != "pointer":
                self.error(arg.mark_of("size_from"), "size_from needs a pointer argument", "remove size_from:")
        counts = {key: self.counted_array(arg, key, arg_record, arg_pass) for key in ("fills", "partial")
                  if key in arg}
        pair = raw.get("pair", {})
        for key in ("restores", "restored_by"):
            if key in pair:
                self.reference(pair[key], ("ioctl",), pair.mark_of(key), "ioctl")
        same = raw.get("same_number_as")
        if same is not None:
            self.reference(same, ("ioctl",), raw.mark_of("same_number_as"), "ioctl")
        return Ioctl(**common, nr=nr, dir=direction, type_text=type_text, type_scalar=type_scalar,
                     type_record=type_record, type_external=type_external, numbers=numbers,
                     type_records=type_records,
                     same_number_as=same,
                     scopes=tuple(scopes), capability=capability, arg_pass=arg_pass, arg_flow=flow,
                     arg_record=arg_record, arg_scalar=arg_scalar, arg_doc=arg.get("doc", ""),
                     arg_name=arg.get("name", "value"), arg_default=arg.get("default"), arg_size_from=size_from,
                     arg_fills=counts.get("fills"), arg_partial=counts.get("partial"),
                     creates=creates, creates_field=creates_field, example=example,
                     returns=raw["returns"], errors=tuple(errors), validations=tuple(validations),
                     emissions=tuple(emissions), restores=pair.get("restores"),
                     restored_by=pair.get("restored_by"))

    def counted_array(self, arg: Map, key: str, record: Optional[Record], arg_pass: str) -> Optional[str]:
        """The count field named by arg.fills / arg.partial: it must count the argument's flexible array."""
        name = arg[key]
        last = record.members[-1] if record is not None and record.members else None
        if arg_pass != "pointer" or last is None or not last.flexible or last.counted_by is None:
            self.error(arg.mark_of(key), f"{key}: needs a pointer to a struct whose flexible array has counted_by",
                       f"remove {key}:, or add counted_by: to the struct's flexible array")
            return None
        if name != last.counted_by:
            self.error(arg.mark_of(key), f"{key}: {name} is not the field that counts {record.name}.{last.name}"
                                         f" (counted_by: {last.counted_by})", f"write {key}: {last.counted_by}")
            return None
        return name

    @staticmethod
    def integer_sibling(fields: list[dict], name: str) -> bool:
        """Whether `name` is a plain integer field among `fields` (built so far)."""
        found = next((p for p in fields if p["name"] == name), None)
        return found is not None and "scalar" in found and not found["scalar"].is_pointer \
            and not found["dims"] and not found["flexible"]

    def buffer(self, rf: Map, siblings: list[dict], info: dict) -> None:
        """buffer: on an integer field: the data it locates, and its length over sibling fields."""
        spec = rf["buffer"]
        if "scalar" not in info or info["scalar"].is_pointer or info.get("dims") or info.get("flexible"):
            self.error(rf.mark_of("buffer"), "buffer: is only for a plain integer field (an offset)",
                       "remove buffer:")
            return
        try:
            tree = expr.parse(spec["bytes"])
        except expr.ExprError as exc:
            self.error(spec.mark_of("bytes"), f"bytes: {exc}", "write a C expression such as size * count")
            return
        known = {p["name"] for p in siblings if "scalar" in p and not p.get("dims") and not p.get("flexible")}
        unknown = sorted({n.name for n in expr.names(tree)} - known)
        if unknown:
            self.error(spec.mark_of("bytes"), f"bytes: {', '.join(unknown)} is not an integer field before "
                                              f"{rf['name']} in this record", "use the record's own fields")
            return
        info["buffer_name"], info["buffer_bytes"] = spec["name"], spec["bytes"]

    def example(self, raw: Map, record: Optional[Record], ioctl: str) -> Optional[Example]:
        data = raw["example"]
        fields = []
        for path, value in data.get("fields", {}).items():
            if record is None or record.field_at(path) is None:
                self.error(data["fields"].key_mark(path), f"{ioctl} has no argument field {path!r}",
                           field_hint(record, path, "name a field of the argument struct"))
                continue
            if isinstance(value, str) and not value.startswith("$"):
                values = self.symbol_values(value)
                if values is not None and any(v is None for v in values):
                    self.no_value(value, data["fields"].mark_of(path), "be an example value")
                    continue
                if values is None:
                    self.error(data["fields"].mark_of(path), f"unknown constant {value!r}",
                               self.unknown_hint(value, (), "use a number or a constant of the spec"))
                    continue
                value = values[0].value
            fields.append((path, int(value) if isinstance(value, int) else value))
        for index, setup in enumerate(data.get("setup", ())):
            self.reference(setup, ("ioctl",), data["setup"].mark_of(index), "ioctl")
        return Example(data.get("scope"), tuple(data.get("setup", ())), tuple(fields))

    def validation(self, entry: Map, record: Optional[Record], ioctl: str) -> Optional[Validation]:
        field = self.arg_field(record, entry, ioctl)
        if field is None:
            return None
        verdicts = []
        for vkind in VERDICT_KINDS:
            if vkind not in entry:
                continue
            verdict = entry[vkind]
            if isinstance(verdict, str):
                table: tuple[tuple[str, str], ...] = (("", verdict),)
            else:
                table = tuple(verdict.items())
                for where in verdict:
                    if where not in self.impl_names and where not in self.arch_names:
                        self.error(verdict.key_mark(where), f"unknown implementation or architecture {where!r}",
                                   "use one of: " + ", ".join(sorted(set(self.impl_names) | self.arch_names)))
            verdicts.append((vkind, table))
        return Validation(entry["field"], field, entry.mark_of("field"), entry.get("doc", ""), tuple(verdicts),
                          Version.parse(entry["since"]) if "since" in entry else None)

    def emission(self, entry: Map, record: Optional[Record], ioctl: str) -> Optional[Emission]:
        field = self.arg_field(record, entry, ioctl)
        if field is None:
            return None
        values = []
        for index, vname in enumerate(entry["values"]):
            value_set = field.value_set_of(vname)
            value = value_set.value_named(vname) if value_set is not None else None
            if value is None:
                sets = ", ".join(f"{vs.kind} {vs.name}" for vs in field.value_sets)
                where = sets or "no flag set or enum"
                close = NameIndex(v.name for vs in field.value_sets for v in vs.values).suggestion(vname)
                self.error(entry["values"].mark_of(index), f"{vname} is not a value of field {entry['field']} ({where})",
                           (f"{close} If not, list" if close else "list") + " only values of the field's flag set or enum")
                continue
            values.append(value)
        impls = tuple(entry.get("implementations", ()))
        self.check_implementations(impls, entry)
        requires = None
        if "requires" in entry:
            requires = self.reference(entry["requires"], ("capability",), entry.mark_of("requires"), "capability")
        return Emission(entry["field"], field, tuple(values), entry.mark_of("field"), impls, requires,
                        Version.parse(entry["since"]) if "since" in entry else None)

    def type_references(self, text: str, mark: Mark, owner: tuple[str, str],
                        report: bool = True) -> tuple[Optional[Scalar], Optional[list[Optional[Record]]]]:
        """An ioctl's type: a scalar, or the record per ABI (each architecture's own
        struct kvm_regs ...)."""
        if text in SCALARS:
            return SCALARS[text], None
        rkind, rname = text.split(" ", 1)
        if self.context[-1] is None and (rname in self.variants or rname in self.key_arch):
            records: list[Optional[Record]] = []
            for abi in ABIS:
                key = self.key_on(rname, abi.arch)
                records.append(self.type_reference(f"{rkind} {key}", mark, owner, report)[1]
                               if key is not None else None)
            return None, records if any(r is not None for r in records) else None
        scalar, record = self.type_reference(f"{rkind} {self.key(rname)}", mark, owner, report)
        return scalar, [record] * len(ABIS) if record is not None else None

    def type_reference(self, text: str, mark: Mark, owner: tuple[str, str],
                       report: bool = True) -> tuple[Optional[Scalar], Optional[Record]]:
        if text in SCALARS:
            return SCALARS[text], None
        rkind, rname = text.split(" ", 1)
        entry = self.items.get(rname)
        if entry is None or entry[0] != rkind:
            if report:
                self.error(mark, f"unknown {rkind} {rname!r}",
                           self.unknown_hint(rname, ("struct", "union"), f"define {rkind} {rname} in the spec, "
                                             "or list it under external_types: in the manifest"))
            return None, None
        # An ioctl macro only needs the type where it is expanded, so order does not matter.
        if report and not self.check_visible(owner, rname, mark, text, ordered=False):
            return None, None
        target = self.ensure(rname, self.build_record_item, self.file_arch(entry[2]))
        return None, target if isinstance(target, Record) else None

    def arg_field(self, record: Optional[Record], entry: Map, ioctl: str) -> Optional[Field]:
        path = entry["field"]
        if record is None:
            self.error(entry.mark_of("field"), f"{ioctl} has no struct argument to hold field {path!r}",
                       "give the ioctl a struct type, or remove this entry")
            return None
        found = record.field_at(path)
        if found is None:
            self.error(entry.mark_of("field"), f"{record.c_type} has no field {path!r}",
                       field_hint(record, path, "write the path with dots through named members, "
                                                "e.g. hdr.vmx.flags"))
        return found


def field_hint(record: Optional[Record], path: str, otherwise: str) -> str:
    """The hint for a field path the record does not have: the closest path it has, if any."""
    close = NameIndex(p for p, f, _ in record.deep_walk() if f.name).suggestion(path) if record else ""
    return f"{close} If not, {otherwise}" if close else otherwise


def check_manifest_names(manifest: Map) -> list[Diagnostic]:
    """Names the manifest defines are unique, and header paths stay inside generated/."""
    found: list[Diagnostic] = []

    def unique(entries: list[tuple[str, Mark]], what: str, fold: bool = False) -> None:
        first: dict[str, tuple[str, Mark]] = {}
        for name, mark in entries:
            key = name.casefold() if fold else name
            if key in first:
                other, where = first[key]
                same = "" if other == name else f" (it differs from {other!r} only by case)"
                found.append(Diagnostic(mark, f"duplicate {what} {name!r}{same}", f"the first is at {where}"))
            else:
                first[key] = (name, mark)

    architectures = manifest["architectures"]
    unique([(a["name"], a.mark_of("name")) for a in architectures], "architecture")
    unique([(i["name"], i.mark_of("name")) for a in architectures for i in a.get("implementations", ())],
           "implementation")
    unique([(m["name"], m.mark_of("name")) for m in manifest.get("external_macros", ())], "external macro")
    unique([(t["name"], t.mark_of("name")) for t in manifest.get("external_types", ())], "external type")
    headers = manifest["headers"]
    unique([(h["name"], h.mark_of("name")) for h in headers], "header name")
    unique([(h["guard"], h.mark_of("guard")) for h in headers if "guard" in h], "header guard")
    for h in headers:
        if "guard" not in h and h.get("emit", True):
            found.append(Diagnostic(h.mark_of("name"), f"header {h['name']} has no include guard",
                                    "add guard: (e.g. _ASM_X86_KVM_H), or emit: false for a header "
                                    "kvmspec only describes"))
    # Paths are compared case-insensitively: the tree must check out on any file system.
    unique([(h["path"], h.mark_of("path")) for h in headers], "header path", fold=True)
    paths = []
    for h in headers:
        parts = h["path"].split("/")
        if any(p in ("", ".", "..") for p in parts):
            found.append(Diagnostic(h.mark_of("path"), f"header path {h['path']!r} is not a plain path inside "
                                                       "generated/", "write it as in a kernel tree, e.g. "
                                                       "include/uapi/linux/kvm.h, without '.', '..' or '//'"))
        else:
            paths.append((h["path"], h.mark_of("path")))
    folded = {p.casefold() for p, _ in paths}
    for path, mark in paths:
        top = path.split("/", 1)[0].casefold()
        if top in OTHER_OUTPUTS:
            found.append(Diagnostic(mark, f"header path {path!r} is inside {top}/, where kvmspec writes "
                                          "other outputs", "put headers where a kernel tree has them, "
                                                           "under include/ or arch/"))
    for path, mark in paths:
        parent = path.casefold()
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in folded:
                found.append(Diagnostic(mark, f"header path {path!r} is inside another header's path {parent!r}",
                                        "a file cannot also be a directory; rename one of them"))
                break
    # An include cycle between generated headers has no order to emit them in.
    # asm/kvm.h is a header of each architecture: an architecture's header includes its
    # own; linux/kvm.h, of every architecture, includes each of them.
    by_include: dict[str, list[Map]] = {}
    for h in headers:
        by_include.setdefault(h["path"].split("include/uapi/", 1)[-1], []).append(h)
    state: dict[int, str] = {}

    def visit(h: Map) -> None:
        state[id(h)] = "visiting"
        for index, inc in enumerate(h.get("includes", ())):
            for target in by_include.get(inc, ()):
                if target is h or h.get("arch") is not None and target.get("arch") not in (None, h.get("arch")):
                    continue
                if state.get(id(target)) == "visiting":
                    found.append(Diagnostic(h["includes"].mark_of(index),
                                            f"header {h['name']} includes {inc}, which includes {h['name']} "
                                            "(directly or through other headers)",
                                            "generated headers cannot include each other in a cycle"))
                elif id(target) not in state:
                    visit(target)
        state[id(h)] = "done"

    for h in headers:
        if id(h) not in state:
            visit(h)
    return found


# For each ABI, the first ABI of its layout class (x86_64 for every LP64 ABI).
_CLASS_REP: tuple[int, ...] = tuple(next(j for j, other in enumerate(ABIS) if other.layout_class == abi.layout_class)
                                    for abi in ABIS)
_CLASS_REPS: tuple[int, ...] = tuple(sorted(set(_CLASS_REP)))


def _product(dims: tuple[int, ...]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


def load_model(root: Path, invariants: bool = True) -> Model:
    """Read, check and build the model of the spec under `root`, or raise SpecError
    (without the compatibility invariants when `invariants` is False)."""
    return Builder(root, check_invariants=invariants).build()


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
