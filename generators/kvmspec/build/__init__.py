"""From checked spec data to the model: resolve names, evaluate, lay out.

`load_model(root)` reads `root/spec`, validates it against the schema, then
builds the frozen model, collecting every problem on the way (unknown
references, duplicate names, expressions that do not evaluate, bad
ordering). Rules that judge a finished model live in checks.py.
"""


from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from .. import expr, schema
from ..checks import check_model
from ..diagnostics import Diagnostic, Mark, Reporter
from ..layout import ABIS, NATIVE, Member
from ..load import Map
from ..readahead import ReadAhead, display
from .. import timeline
from ..spelling import NameIndex
from ..model import (
    AbiException, Architecture, Definition, ExternalMacro, ExternalType, Guard, Header, HeaderDefect, Implementation,
    Lifecycle, Model, Move, PastValue, Record, SpecFile, Version,
)

from .common import _Symbol, _text
from .reading import ReadingMixin, _c_only, _include_names, _include_ranges
from .names import NamesMixin
from .evaluation import EvaluationMixin
from .outlines import OutlinesMixin
from .values import ValuesMixin
from .records import RecordsMixin
from .ioctls import IoctlsMixin


class Builder(ReadingMixin, NamesMixin, EvaluationMixin, OutlinesMixin, ValuesMixin, RecordsMixin, IoctlsMixin):
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
        self.everywhere: frozenset = frozenset()          # all_arches, as guard_arches gives them
        self.everywhere_sorted: tuple[str, ...] = ()     # and sorted
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
        self.guard_uses: list[tuple[str, Map]] = []   # (c_guard, the mapping that has it)
        self.defined_cache: dict[str, bool] = {}
        self.chain = 0   # constants being evaluated, one inside the other
        self.was_read: Any = None   # (manifest, files, listed paths), for input_is_clean
        # Called once everything is read, before the build (pipeline.py starts the input checks there).
        self.after_read: Optional[Callable[[], None]] = None
        # A second process reading part of the spec (readahead.py), or None.
        self.read_ahead: Optional[ReadAhead] = None
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
        return display(self.root, path)

    # ------------------------------------------------------------ common keys
    def common(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]) -> dict:
        name = raw[kind]
        since = Version.parse(raw["since"])
        arch_tuple, arch_since = self.arch_releases(raw, file_arch, since)
        header = raw.get("header", spec_file.header)
        if header not in self.header_names:
            self.error(raw.mark_of("header"), f"unknown header {header!r}",
                       "use one of: " + ", ".join(sorted(self.header_names)))
        impls = tuple(raw.get("implementations", ()))
        if impls:
            self.check_implementations(impls, raw)
        key = self.current_key()
        if "c_guard" not in raw:   # most items: seen wherever their header is
            c_guard, active_on, guard_on = None, self.arches_of_key(key), self.everywhere_sorted
            if active_on is not self.all_arches:   # a header of one architecture (listed, or not seen)
                active_on = tuple(a for a in active_on if a in self.everywhere)
        else:
            guard_text = raw["c_guard"]
            self.check_guard_order(guard_text, (name, header), raw.mark_of("c_guard"))
            c_guard, active_on = Guard.parse(guard_text), self.active_on(raw, key)
            guard_on = tuple(sorted(self.guard_arches(guard_text)))
        # (lifecycle, abi_exceptions and moves of a key that is absent, called only where it is there)
        return dict(
            name=name, doc=raw["doc"], since=since, arch=arch_tuple,
            header=header, file=spec_file, mark=raw.mark_of(kind), implementations=impls,
            deprecated=self.lifecycle(raw, "deprecated") if "deprecated" in raw else None,
            removed=self.lifecycle(raw, "removed") if "removed" in raw else None,
            c_guard=c_guard, active_on=active_on, active=NATIVE.arch in active_on,
            abi_exceptions=self.abi_exceptions(raw) if "abi_exceptions" in raw else (),
            moves=self.moves(raw) if "moved" in raw else (),
            guard_on=guard_on,
            arch_since=arch_since,
        )

    def abi_exceptions(self, raw: Map) -> tuple[AbiException, ...]:
        out = []
        for index, entry in enumerate(raw.get("abi_exceptions", ())):
            impls = tuple(entry.get("implementations", ()))
            self.check_implementations(impls, entry)
            since = entry["since"]
            releases = tuple(Version.parse(v) for v in ([since] if isinstance(since, str) else since))
            out.append(AbiException(entry["rule"], releases, entry["reason"], raw["abi_exceptions"].mark_of(index),
                                    impls, self.exception_abis(entry)))
        return tuple(out)

    def exception_abis(self, entry: Map) -> tuple[str, ...]:
        """The ABIs an abi_exceptions entry is limited to (abis:), each one that layout.py knows."""
        from ..layout import ABI_INDEX
        abis = tuple(entry.get("abis", ()))
        for index, name in enumerate(abis):
            if name not in ABI_INDEX:
                self.error(entry["abis"].mark_of(index), f"unknown ABI {name!r}",
                           "use one of: " + ", ".join(ABI_INDEX))
        return abis

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
            out.append(HeaderDefect(since, until, _text(entry["wrote"]), entry["reason"].strip(),
                                    entry.mark_of("since")))
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
        headers = tuple(Header(h["name"], h["path"], h.get("guard", ""), h["doc"], _include_names(h),
                               h.get("arch"), h.mark_of("name"), bool(h.get("emit", True)),
                               include_ranges=_include_ranges(h))
                        for h in manifest["headers"])
        self.header_names = {h.name for h in headers}
        self.header_arch = {h.name: h.arch for h in headers}
        self.all_arches = tuple(a.name for a in architectures)
        self.everywhere = frozenset(self.all_arches)
        self.everywhere_sorted = tuple(sorted(self.everywhere))
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
                               self.outlines[h.name].path if h.name in self.outlines else "",
                               h.include_ranges, _c_only(self.outlines.get(h.name)))
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
        timeline.mark("model built")
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


def load_model(root: Path, invariants: bool = True) -> Model:
    """Read, check and build the model of the spec under `root`, or raise SpecError
    (without the compatibility invariants when `invariants` is False)."""
    return Builder(root, check_invariants=invariants).build()
