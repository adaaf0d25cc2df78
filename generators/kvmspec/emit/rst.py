"""Documentation/virt/kvm/api.rst in the kernel's format, from the model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from ..model import (Capability, Constant, DocChapter, DocLayout, Enum, FlagSet, FunctionMacro, Ioctl, Model,
                     Record, Version)
from . import arch_pages, site
from .text import rendered_once, rst_ref


def referenced_records(record: Record) -> list[Record]:
    """The record and every named record it contains, innermost first, once each."""
    seen: list[Record] = []

    def visit(rec: Record) -> None:
        for f in rec.fields:
            if f.until is not None:
                continue   # dropped before the newest release (its type may be gone too)
            if f.record is not None:
                if f.record.inline:
                    visit(f.record)
                elif f.record not in seen:
                    visit(f.record)
        if not rec.inline and rec not in seen:
            seen.append(rec)

    visit(record)
    return seen


def value_sets(records: list[Record]) -> list[tuple[str, FlagSet | Enum]]:
    """(field path, flag set or enum) for every field of the records that has one."""
    found = []
    for rec in records:
        for path, f, _ in rec.walk():
            for value_set in f.value_sets:
                if all(v is not value_set for _, v in found):
                    found.append((f"{rec.name}.{path}", value_set))
    return found


# Pages of the site's API reference, by area: generic ioctls by the descriptor
# they are issued on, single-architecture ioctls by architecture.
AREAS = {
    "system": ("System ioctls",
               "Issued on the descriptor that opening /dev/kvm returns: they ask what the host "
               "supports and create VMs."),
    "vm": ("VM ioctls",
           "Issued on a VM descriptor (from KVM_CREATE_VM): memory, interrupt routing, "
           "devices and everything else that the whole guest shares."),
    "vcpu": ("vCPU ioctls",
             "Issued on a vCPU descriptor (from KVM_CREATE_VCPU): running the vCPU and saving and "
             "restoring its state. They are made by the thread that runs the vCPU."),
    "device": ("Device ioctls",
               "Issued on a device descriptor (from KVM_CREATE_DEVICE) to read and change "
               "the attributes of an in-kernel device."),
}


_MARKED = re.compile("\x00([^\x00]+)\x00")


def _marker(item) -> str:
    return f"\x00{item.name}\x00"


def site_ref(text: str, target) -> str:
    """A link to the site section of an exit reason (exit-NAME, run.rst) or a
    value set (vs-NAME, values.rst); ioctls and capabilities use rst_ref."""
    prefix = "exit" if target.kind == "exit" else "vs"
    return f":ref:`{text} <{prefix}-{target.name}>`"


def area(ioctl: Ioctl) -> str:
    """The site page of an ioctl: its architecture when it has exactly one,
    otherwise the descriptor it is (first) issued on."""
    if len(ioctl.arch) == 1:
        return ioctl.arch[0]
    return ioctl.scopes[0].scope if ioctl.scopes else "vm"


def documented_record(model: Model, ioctl: Ioctl) -> Optional[Record]:
    """The record an ioctl's section lists: its argument, or, when the ioctl's
    number is computed from another header's struct (an external type), the
    spec's record of that struct where it has one (kept after it moved)."""
    if ioctl.arg_record is not None:
        return ioctl.arg_record
    if ioctl.type_external is not None:
        record = model.by_name.get(ioctl.type_external.name.split()[-1])
        if isinstance(record, Record):
            return record
    return None


def other_arch_records(model: Model, ioctl: Ioctl, record: Optional[Record]) -> list[Record]:
    """The records of the same name that other architectures of the ioctl
    define (each architecture's struct kvm_regs for KVM_GET_REGS)."""
    if record is None:
        return []
    others = [r for r in model.variants.get(record.name, ()) if isinstance(r, Record) and r is not record
              and r.emitted and set(r.arch) & set(ioctl.arch) - set(record.arch)]
    return sorted(others, key=lambda r: model.position[id(r)]) if len(others) > 1 else others


def tables_of(model: Model, ioctl: Ioctl, order: dict[str, int]) -> Optional[Ioctl]:
    """The other ioctl of a save/restore pair on the same record, when it comes
    first in the document (`order`): its section has the field and value tables,
    this one refers to them instead of repeating them."""
    partner = model.by_name.get(ioctl.restores or ioctl.restored_by or "")
    if not isinstance(partner, Ioctl):
        return None
    mine, theirs = documented_record(model, ioctl), documented_record(model, partner)
    if mine is None or mine is not theirs:
        return None
    if order.get(partner.name, len(order)) < order.get(ioctl.name, len(order)):
        return partner
    return None


@dataclass
class TabulatedName:
    """A row of a section's table of names with a prefix: a constant, a value
    of an enum or flag set, or a function-like macro (`name(params)`)."""
    name: str
    expr: str
    arch: tuple[str, ...]
    since: Version
    doc: str
    arch_since: tuple = ()   # architectures that gained it after `since`, with their releases


def tabulated(model: Model, prefixes) -> dict[str, list[TabulatedName]]:
    """For each prefix, every emitted constant, enum or flag set value and
    function-like macro whose name starts with it, in spec order (a value
    set's values where the set is). The model's items are walked once for all
    the prefixes, and a row is made only for a name that matches one."""
    names: list[tuple[str, object, object]] = []   # (name, the constant, macro or value, its value set or None)
    for item in model.items:
        if not item.emitted:
            continue
        if isinstance(item, (Constant, FunctionMacro)):
            names.append((item.name, item, None))
        elif isinstance(item, (Enum, FlagSet)):
            names += [(v.name, v, item) for v in item.values if v.removed is None]

    def row(item, value_set) -> TabulatedName:
        if value_set is not None:
            return TabulatedName(item.name, item.expr, item.arch or value_set.arch, item.since, item.doc,
                                 item.arch_since if item.arch else value_set.arch_since)
        if isinstance(item, FunctionMacro):
            return TabulatedName(f"{item.name}({', '.join(item.params)})", item.body, item.arch,
                                 item.since, item.doc, item.arch_since)
        return TabulatedName(item.name, item.expr, item.arch, item.since, item.doc, item.arch_since)

    return {prefix: [row(item, value_set) for name, item, value_set in names if name.startswith(prefix)]
            for prefix in prefixes}


def listing(model: Model, ioctl: Ioctl) -> tuple[list[Record], list[tuple[str, FlagSet | Enum]]]:
    """The records an ioctl's section lists (its argument's and those within it), with their value sets."""
    arg = documented_record(model, ioctl)
    records = referenced_records(arg) if arg is not None else []
    return records, value_sets(records)


def removed_but_described(model: Model, layout: DocLayout) -> list:
    """The items api.rst's layout places that the newest headers no longer have, in the layout's order."""
    found: dict[str, object] = {}
    for chapter in layout.chapters:
        for section in chapter.sections:
            for name in section.names:
                item = model.by_name[name]
                if not (isinstance(item, (Ioctl, Capability)) and item.emitted):
                    found.setdefault(name, item)
    return list(found.values())


def listings_of(model: Model) -> dict[str, tuple[list[Record], list]]:
    """listing() of every ioctl the documentation describes: each emitted one, then
    the removed ones api.rst still describes."""
    layout = model.documents[-1] if model.documents else default_layout(model.title)
    out = {ioctl.name: listing(model, ioctl) for ioctl in model.ioctls if ioctl.emitted}
    out.update((i.name, listing(model, i)) for i in removed_but_described(model, layout) if isinstance(i, Ioctl))
    return out


def enabled_exits(cap: Capability, exits: list) -> list:
    """The exit reasons KVM_RUN reports only once `cap` is enabled."""
    return [e for e in exits if e.requires is cap]


@dataclass
class PlacedSection:
    """A section of the generated api.rst: its heading, the items it describes
    and the labels it carries (an item's label at its first section only)."""
    heading: str
    items: list
    labels: list[str]
    text: Optional[str] = None
    also: list = field(default_factory=list)   # records and value sets listed in full
    constants: list = field(default_factory=list)   # (prefix, constants) tabulated
    note: Optional[str] = None   # where the title names what no header defines


@dataclass
class PlacedChapter:
    heading: str
    text: Optional[str]
    sections: list[PlacedSection]


def default_layout(title: str) -> DocLayout:
    """The chapters of the kernel's api.rst without numbered sections, for a
    spec that has no document layout: every item is added in spec order."""
    chapters = (DocChapter("1.", "General description", text="general-description"),
                DocChapter("2.", "File descriptors", text="file-descriptors"),
                DocChapter("3.", "Extensions", text="extensions"),
                DocChapter("4.", "API description", holds="ioctl"),
                DocChapter("5.", "The kvm_run structure", text="kvm-run"),
                DocChapter("6.", "Capabilities that can be enabled on vCPUs", holds="vcpu-capability"),
                DocChapter("7.", "Capabilities that can be enabled on VMs", holds="vm-capability"),
                DocChapter("8.", "Other capabilities.", holds="capability"),
                DocChapter("9.", "Known KVM API problems", text="known-problems"))
    return DocLayout("api.rst", Version.parse("0.0"), chapters)


_TITLE_NAME = re.compile(r"\bKVM_[A-Z0-9_]*[A-Z0-9]\b")


def title_note(title: str, names: tuple[str, ...], model: Model) -> Optional[str]:
    """A sentence for a section whose title (the kernel's, kept as it is)
    names something no header defines: what the section's items are called."""
    unknown = [n for n in _TITLE_NAME.findall(title) if n not in model.by_name]
    if not unknown or not names:
        return None
    items = [model.by_name[n] for n in names]
    real = " and ".join(f"{i.kind} {i.name}" for i in items)
    return (f"The title keeps the kernel's api.rst's spelling, a name no header defines: the {real} "
            f"is meant.")


def next_number(chapter: DocChapter) -> int:
    """The number the kernel would give the chapter's next section."""
    return max((int(s.number.rstrip(".").split(".")[1]) for s in chapter.sections
                if s.number.rstrip(".").count(".") == 1), default=0) + 1


def api_chapters(layout: DocLayout, model: Model, kinds: dict[str, list]) -> list[PlacedChapter]:
    """The layout's chapters with their items; the items of a chapter's kind
    that no section names follow its last section, numbered on from it."""
    placed = {n for ch in layout.chapters for s in ch.sections for n in s.names}
    tables = tabulated(model, {p: None for ch in layout.chapters for s in ch.sections for p in s.constants})
    labelled: set[str] = set()
    chapters = []
    for chapter in layout.chapters:
        sections = []
        for s in chapter.sections:
            items = [model.by_name[n] for n in s.names]
            labels = [i.name for i in items if i.name not in labelled]
            labelled.update(labels)
            sections.append(PlacedSection(s.heading, items, labels, s.text, [model.by_name[n] for n in s.also],
                                          [(p, tables[p]) for p in s.constants], title_note(s.title, s.names, model)))
        if chapter.holds:
            number = next_number(chapter)
            prefix = chapter.number.rstrip(".")
            for item in kinds[chapter.holds]:
                if item.name not in placed:
                    labelled.add(item.name)
                    sections.append(PlacedSection(f"{prefix}.{number} {item.name}", [item], [item.name]))
                    number += 1
        chapters.append(PlacedChapter(chapter.heading, chapter.text, sections))
    return chapters


class Generator:
    name = "rst"

    def render(self, model: Model, env) -> dict[str, str]:
        ioctls = [i for i in model.ioctls if i.emitted]
        caps = [c for c in model.capabilities if c.emitted]
        exits = [e for e in model.items if e.kind == "exit" and e.emitted]
        value_sets_all = [i for i in model.items if isinstance(i, (Enum, FlagSet)) and i.emitted]
        listings = {ioctl.name: listing(model, ioctl) for ioctl in ioctls}
        shown_sets = {id(vs) for records, sets in listings.values() for _, vs in sets}
        other_sets = [i for i in value_sets_all if id(i) not in shown_sets]
        sources = list(dict.fromkeys(f.path for f in model.files))
        constants = [i for i in model.items if isinstance(i, Constant) and i.emitted]

        # Every section body is rendered once; api.rst and the site pages give
        # it their own heading and label.
        # api.rst names other items; the site links them.
        # Every value set's table is rendered once too, the first time it is
        # wanted (most sets are listed by a section of api.rst and again on
        # the site's pages of value sets).
        table_of = rendered_once(lambda value_set: sections.value_table(value_set))
        sections = env.get_template("rst/sections.j2").make_module({"table_of": table_of})
        run_record = model.by_name.get("kvm_run")
        run = run_record if isinstance(run_record, Record) else None
        run_records = referenced_records(run) if run is not None else []
        run_body = str(sections.run_body(run, exits, run_records[:-1], value_sets(run_records)))

        vcpu_caps = [c for c in caps if c.enable_scope == "vcpu"]
        vm_caps = [c for c in caps if c.enable_scope == "vm"]
        other_caps = [c for c in caps if c.enable_scope is None]
        layout = model.documents[-1] if model.documents else default_layout(model.title)
        chapters = api_chapters(layout, model, {"ioctl": ioctls, "vcpu-capability": vcpu_caps,
                                                "vm-capability": vm_caps, "capability": other_caps})
        order: dict[str, int] = {}
        for chapter in chapters:
            for section in chapter.sections:
                for item in section.items:
                    order.setdefault(item.name, len(order))

        # The bodies are rendered once, with a marker where another item is
        # named; each output then puts its own form of the name there.
        marked_ioctls = {i.name: str(sections.ioctl_body(i, *listings[i.name], _marker, tables_of(model, i, order),
                                                         other_arch_records(model, i, documented_record(model, i))))
                         for i in ioctls}
        marked_caps = {c.name: str(sections.cap_body(c, model.gated_by(c), _marker, enabled_exits(c, exits)))
                       for c in caps}

        def bodies(link) -> dict:
            def replace(text: str) -> str:
                return _MARKED.sub(lambda m: link(model.by_name[m.group(1)]), text)
            return dict(model=model, sources=sources, run_body=run_body, table_of=table_of, listing=sections.listing,
                        ioctl_bodies={k: replace(v) for k, v in marked_ioctls.items()},
                        cap_bodies={k: replace(v) for k, v in marked_caps.items()})

        out = {}
        for item in removed_but_described(model, layout):   # removed items the kernel still describes
            name = item.name
            if isinstance(item, Ioctl):
                listings[name] = listing(model, item)
                marked_ioctls[name] = str(sections.ioctl_body(item, *listings[name], _marker, tables_of(model, item, order),
                                                              other_arch_records(model, item,
                                                                                 documented_record(model, item))))
            else:
                marked_caps[name] = str(sections.cap_body(item, model.gated_by(item), _marker,
                                                          enabled_exits(item, exits)))
        out["Documentation/virt/kvm/api.rst"] = env.get_template("rst/api.rst.j2").render(
            chapters=chapters, layout=layout, constants=constants, other_sets=other_sets, exits=exits,
            **bodies(lambda item: item.name))
        common = bodies(rst_ref)

        # The site: docs/reference is a link to generated/docs.
        set_of = {id(v): vs for vs in value_sets_all for v in vs.values}
        emissions: dict[int, list] = {}   # id of a capability -> the emissions it enables
        for ioctl in model.ioctls:
            for e in ioctl.emissions:
                emissions.setdefault(id(e.requires), []).append(e)
        gates = {c.name: self.gates(model, c, exits, set_of, emissions.get(id(c), [])) for c in caps}
        out.update(self.site(model, env, common, ioctls, caps, exits, constants, value_sets_all, gates,
                             self.releases(model, set_of), listings))
        return out

    @staticmethod
    def site(model: Model, env, common: dict, ioctls: list, caps: list, exits: list, constants: list,
             value_sets: list, gates: dict, releases: list, listings: dict) -> dict[str, str]:
        """The pages of the site, {path under generated/: text}: one page per
        listing, or an overview and the pages of its groups (emit/site.py)."""
        order = {f.path: n for n, f in enumerate(model.files)}
        out: dict[str, str] = {}

        def sources(items) -> list[str]:
            paths = {i.file.path for i in items if getattr(i, "file", None) is not None}
            return sorted(paths or order, key=order.__getitem__)

        def lines(text: str) -> int:
            return text.count("\n") + 4

        def write(page: site.Page, template: str, context, intro: str = "", links=None) -> None:
            """The page, or its overview and children; context(items) -> what the template lists."""
            if page.children:
                everything = [i for child in page.children for i in child.items]
                out[f"docs/{page.name}.rst"] = env.get_template("rst/site/overview.rst.j2").render(
                    common, title=page.title, intro=intro, children=page.children, links=links,
                    sources=sources(everything))
            for part in page.children or [page]:
                out[f"docs/{part.name}.rst"] = env.get_template(f"rst/site/{template}").render(
                    common, title=part.title, intro="" if page.children else intro,
                    sources=sources(part.items), **context(part.items))

        # ioctls: one listing per area (descriptor, or the single architecture);
        # a save ioctl and the ioctl that restores its state stay on one page
        def saved_and_restored(a: Ioctl, b: Ioctl) -> bool:
            return a.restored_by == b.name or b.restores == a.name

        by_area: dict[str, list[Ioctl]] = {}
        for i in ioctls:
            by_area.setdefault(area(i), []).append(i)
        arches = {a.name: a for a in model.architectures}
        keys = [k for k in list(AREAS) + list(arches) if k in by_area]
        tops = []
        for key in keys + sorted(set(by_area) - set(keys)):
            if key in AREAS:
                title, intro = AREAS[key]
            else:
                about = f" ({arches[key].doc.rstrip('.')})" if key in arches and arches[key].doc else ""
                title, intro = (f"{key} ioctls", f"Ioctls that exist only on {key}{about}; ioctls shared by "
                                f"several architectures are on the pages of their descriptor.")
            page = site.paginate(key, title, site.by_topic(key, by_area[key], model.files, saved_and_restored),
                                 lambda i: lines(common["ioctl_bodies"][i.name]))
            write(page, "area.rst.j2", lambda items: dict(ioctls=items, listings=listings), intro, links=rst_ref)
            tops.append(key)

        # kvm_run, then the exit reasons by number
        exits = sorted(exits, key=lambda e: e.value)
        run_record = model.by_name.get("kvm_run")
        run = run_record if isinstance(run_record, Record) else None
        fields = list(run.walk()) if run is not None else []
        title = f"The fields of {run.c_type}" if run else "The fields of kvm_run"
        page = site.paginate("run-fields", title, [site.Group("fields", title, fields)], lambda f: 3)
        write(page, "run-fields.rst.j2", lambda items: dict(run=run, fields=items))
        out["docs/run.rst"] = env.get_template("rst/site/run.rst.j2").render(
            common, run=run, exits=exits, sources=sources(exits + ([run] if run else [])))
        page = site.paginate("exit-reasons", "Exit reasons",
                             [site.Group("numbers", "Exit reasons", exits, site.number_range)],
                             lambda e: lines(e.doc) + 8)
        write(page, "exits.rst.j2", lambda items: dict(exits=items),
              "Each exit reason KVM_RUN can report in kvm_run.exit_reason, by number.")
        tops += ["run", "run-fields", "exit-reasons"]

        # capabilities: by architecture, the others by where they are enabled
        shared = [("enabled-on-vcpus", "Capabilities that can be enabled on vCPUs", lambda c: c.enable_scope == "vcpu"),
                  ("enabled-on-vms", "Capabilities that can be enabled on VMs", lambda c: c.enable_scope == "vm"),
                  ("host", "Capabilities that report what the host supports", lambda c: c.enable_scope is None)]
        groups = site.by_architecture(sorted(caps, key=lambda c: c.value), model.architectures, shared, "capabilities")
        for g in groups:
            g.part_title = site.number_range
        page = site.paginate("capabilities", "Capabilities", groups, lambda c: lines(common["cap_bodies"][c.name]))
        write(page, "capabilities.rst.j2", lambda items: dict(caps=items), env.get_template(
            "rst/site/capabilities-intro.j2").render(), links=rst_ref)
        page = site.paginate("capability-index", "Capability index",
                             [site.Group("numbers", "Capability index", sorted(caps, key=lambda c: c.value),
                                         site.number_range)], lambda c: 5)
        write(page, "capability-index.rst.j2", lambda items: dict(caps=items, gates=gates),
              env.get_template("rst/site/capability-index-intro.j2").render())
        tops += ["capabilities", "capability-index"]

        # constants, then flag sets and enumerations by architecture
        groups = ([site.Group("constants", "Constants", constants)] if constants else []) + site.by_architecture(
            value_sets, model.architectures,
            [("common", "Flag sets and enumerations of several architectures", lambda v: True)],
            "flag sets and enumerations")
        page = site.paginate("values", "Constants and value sets", groups,
                             lambda v: 6 * len(v.values) + 12 if isinstance(v, (Enum, FlagSet)) else 7)
        write(page, "values.rst.j2", lambda items: dict(
            constants=[i for i in items if isinstance(i, Constant)],
            sets=[i for i in items if isinstance(i, (Enum, FlagSet))]))

        # releases, newest first, by kernel series
        groups: list[site.Group] = []
        for release in releases:
            series = site.series_of(release[0])
            slug = "linux-" + series.replace(".", "-")
            if not groups or groups[-1].slug != slug:
                groups.append(site.Group(slug, f"Linux {series}.x", []))
            groups[-1].items.append(release)
        page = site.paginate("versions", "By kernel version", groups, lambda r: (4 * (len(r[1]) + len(r[2]))) // 3 + 6)
        write(page, "versions.rst.j2", lambda items: dict(releases=items, released=model.released))
        tops += ["values", "versions"]

        tops.append(arch_pages.OVERVIEW)   # what KVM offers on each architecture (its own generator)

        out["docs/index.rst"] = env.get_template("rst/site/index.rst.j2").render(
            common, pages=tops, sources=sources(model.items))
        return out

    @staticmethod
    def gates(model: Model, cap: Capability, exits: list, set_of: dict, emissions: list) -> list[str]:
        """Links to what the capability makes available: ioctls, values the
        kernel emits only once it is enabled (`emissions` that require it), and exit reasons."""
        links = [rst_ref(i) for i in model.gated_by(cap)]
        for e in emissions:
            links += [site_ref(v.name, set_of[id(v)]) if id(v) in set_of else v.name for v in e.values]
        links += [site_ref(e.name, e) for e in exits if e.requires is cap]
        return list(dict.fromkeys(links))

    @staticmethod
    def releases(model: Model, set_of: dict) -> list[tuple[Version, list[str], list[str], list[str]]]:
        """(release, what it added, changed and removed), newest first, as RST list entries."""
        entries: dict[tuple, tuple[Version, list[str], list[str], list[str]]] = {}   # by the release's parts
        added, changed, removed = 1, 2, 3   # where an entry keeps each list

        def add(column: int, v: Version, text: str) -> None:
            entry = entries.get(v.parts)
            if entry is None:
                entry = entries[v.parts] = (v, [], [], [])
            entry[column].append(text)

        for item in model.items:
            if isinstance(item, (Ioctl, Capability)):
                text = rst_ref(item) if item.emitted else f"``{item.name}``"
                what = "ioctl" if isinstance(item, Ioctl) else "capability"
            elif item.kind == "exit" or isinstance(item, (Enum, FlagSet)):
                text = site_ref(item.name, item) if item.emitted else f"``{item.name}``"
                what = "exit reason" if item.kind == "exit" else \
                    "flag set" if isinstance(item, FlagSet) else "enum"
            elif isinstance(item, Record):
                if not item.name:
                    continue
                text, what = f"``{item.c_type}``", ""
            else:
                text, what = f"``{item.name}``", item.kind
            label = f"{text} ({what})" if what else text
            since = item.since.parts
            add(added, item.since, label)
            for move in item.moves:
                add(changed, move.until, f"{label} moved from the {move.header} header to the {item.header_at(move.until)} "
                                         f"header")
            history = getattr(item, "history", ())
            if history:
                for before, after in zip(history, [*history[1:], None]):
                    now = after.expr if after is not None else item.expr   # type: ignore[attr-defined]
                    add(changed, before.until, f"{label}: ``{before.expr}`` became ``{now}``")
            if item.removed is not None:
                add(removed, item.removed.since, label + (f", moved to {item.removed.moved_to}"
                                                          if item.removed.moved_to else ""))
            if isinstance(item, (Enum, FlagSet)):
                for v in item.values:
                    if v.since.parts != since:
                        add(added, v.since, f"``{v.name}`` (in {text})")
                    if v.removed is not None and item.removed is None:
                        add(removed, v.removed.since, f"``{v.name}`` (in {text})")
                    if v.history:
                        for before, after in zip(v.history, [*v.history[1:], None]):
                            now = after.expr if after is not None else v.expr
                            add(changed, before.until, f"``{v.name}`` (in {text}): ``{before.expr}`` became ``{now}``")
            elif isinstance(item, Record):
                c_type = item.c_type
                for path, f, _ in item.walk():
                    if f.since is not None and f.name and f.since.parts != since:
                        add(added, f.since, f"field ``{path}`` of ``{c_type}``")
                for rec in item.records_within(every_field=True):
                    for f in rec.fields:
                        if f.until is None and not f.history:
                            continue
                        where = f"``{f.name}`` of ``{c_type}``" if f.name else f"a member of ``{c_type}``"
                        if f.until is not None:
                            add(removed, f.until, f"field {where}")
                        for past in f.history:
                            was = ", ".join(part for part in (
                                f"named ``{past.name}``" if past.name else "",
                                f"of type ``{past.type}``" if past.type else "",
                                f"``[{past.array}]``" if past.array else "") if part)
                            add(changed, past.until, f"field {where}, before: {was}")
        return [entries[key] for key in sorted(entries, reverse=True)]
