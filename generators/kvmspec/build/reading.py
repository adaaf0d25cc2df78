"""Reading the spec: the manifest, its files, outlines and document layouts, and input checks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .. import schema
from ..checks import check_text
from ..diagnostics import Diagnostic, Mark, SpecError
from ..layout import ABIS
from ..load import Map, read_spec_file
from .. import timeline
from ..model import (
    COnly, Capability, Constant, DocChapter, DocLayout, DocSection, Enum, FlagSet, IncludeRange, Ioctl, Record, SpecFile, Version,
)
from ..readahead import MANIFEST
from .common import OTHER_OUTPUTS


class ReadingMixin:
    # ------------------------------------------------------------ reading
    def read(self) -> tuple[Map, list[tuple[SpecFile, Map]]]:
        manifest_path = self.spec_dir / MANIFEST
        shown = self.display(manifest_path)
        if not manifest_path.is_file():
            raise SpecError([Diagnostic(Mark(shown, 1, 1), "no spec manifest here",
                                        "run kvmspec in a kvmspec repository or pass --root DIR")])
        ahead = self.read_ahead
        if ahead is not None and ahead.manifest_path == manifest_path:
            manifest = ahead.manifest   # read before the reader was started
        else:
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
                data = self.read_file(path)
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
        timeline.mark("spec read")
        if self.after_read is not None:
            self.after_read()
        return manifest, files

    def read_outline(self, h: Map, listed: set[Path], spec_dir: Path, problems: list[Diagnostic]) -> Optional[Map]:
        """The outline file a header of the manifest names (checked against the schema)."""
        rel = h["outline"]
        data = self.read_side_file(rel, listed, spec_dir, problems, Diagnostic(
            h.mark_of("outline"), f"outline file {rel!r} does not exist in spec/",
            "create it, or remove outline: from the header"))
        if data is None:
            return None
        found = (schema.check_outline_file(data) or check_text(data)) if self.checked else []
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
            return self.read_file(path)
        except SpecError as exc:
            problems.extend(exc.diagnostics)
            return None

    def read_file(self, path: Path) -> Map:
        """One file's data: from the reader process if it read the file, else read here."""
        data = self.read_ahead.take(path) if self.read_ahead is not None else None
        return data if data is not None else read_spec_file(path, self.display(path))

    def read_document(self, rel: str, mark: Mark, listed: set[Path], spec_dir: Path,
                      problems: list[Diagnostic]) -> Optional[Map]:
        """A document layout file the manifest lists (checked against the schema)."""
        data = self.read_side_file(rel, listed, spec_dir, problems, Diagnostic(
            mark, f"document layout {rel!r} does not exist in spec/", "create it, or remove it from documents:"))
        if data is None:
            return None
        found = (schema.check_document_layout(data) or check_text(data)) if self.checked else []
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
                                               section.get("text"), tuple(listed),
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
        (schema, text, unlisted files) find nothing in what it read, outlines and
        document layouts included. When they do, build again with them, which
        reports what they find."""
        manifest, files, listed = self.was_read
        if schema.check_manifest(manifest) or check_text(manifest) or check_manifest_names(manifest):
            return False
        for _, data in files:
            if schema.check_spec_file(data) or check_text(data):
                return False
        if any(schema.check_outline_file(data) or check_text(data) for data in self.outlines.values()):
            return False
        if any(schema.check_document_layout(data) or check_text(data) for data in self.documents):
            return False
        return not self.unlisted_files(listed)


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
        for index, inc in enumerate(_include_names(h)):
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


# ------------------------------------------------------------ header shape (includes, c_only)
def _include_names(h: Map) -> tuple[str, ...]:
    """Every header a manifest header includes in some release (for what its C code can see)."""
    return tuple(i if isinstance(i, str) else i["name"] for i in h.get("includes", ()))


def _include_ranges(h: Map) -> tuple[IncludeRange, ...]:
    """The includes of a manifest header with their releases; () when none has since/until."""
    if all(isinstance(i, str) for i in h.get("includes", ())):
        return ()
    return tuple(IncludeRange(i) if isinstance(i, str) else
                 IncludeRange(i["name"], Version.parse(i["since"]) if "since" in i else None,
                              Version.parse(i["until"]) if "until" in i else None)
                 for i in h["includes"])


def _c_only(outline: Optional[Map]) -> Optional[COnly]:
    """The #ifndef __ASSEMBLER__ part an outline describes, if any."""
    if outline is None or "c_only" not in outline:
        return None
    raw = outline["c_only"]
    return COnly(raw["macro"], raw.get("after"),
                 tuple((Version.parse(e["until"]), e["macro"]) for e in raw.get("history", ())),
                 raw.mark_of("after") if "after" in raw else outline.mark_of("c_only"))
