"""The site's pages per architecture (generated/docs/arch/): what KVM offers a
VMM on one architecture.

Each architecture of the manifest gets an overview page (what it is, its
ABIs and how they differ, its asm/kvm.h) and, below it, the listings of its
view of the model (View(model, release, arch)): every ioctl it has, with the
number as encoded on its ABIs; the capabilities and exit reasons that apply to
it; the ONE_REG register ids its header names; and the records, value sets,
constants and macros of its header, with their sizes on its ABIs. Nothing
here asks which architecture it is: the differences are in the model (arch:
lists, the headers' architectures, per-ABI numbers and layouts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from ..layout import ABI_INDEX, NATIVE, Abi, abis_of
from ..model import Architecture, Capability, Constant, Enum, FlagSet, FunctionMacro, Ioctl, Model, Record, Version
from ..view import View, first_arch_releases
from . import site
from .text import hexnum, rst_ref

# The parent of the architecture pages, under docs/ (reference/ in the site).
OVERVIEW = "architectures"
FOLDER = "arch"


def arrivals(model: Model) -> Callable[[object, str], str]:
    """arrival(item, arch): the release in which `arch` got the item, as the pages write
    it: the later of the release its arch: list gives that architecture (the item's own
    since unless it names a later one) and the first release that had KVM on that
    architecture (an item older than riscv's port reached riscv with the port)."""
    ports = first_arch_releases(model)

    def arrival(item, arch: str) -> str:
        own = item.since_on(arch) or item.since
        port = ports.get(arch)
        return (port if port is not None and own.parts < port.parts else own).release
    return arrival


# What the pages' "Since" columns mean.
SINCE_NOTE = ('"Since" is the first release in which this architecture had the item: its own release '
              'where the spec gives one, else the item\'s, and never before KVM came to the architecture.')


def applies(item, arch: str) -> bool:
    """Whether KVM on `arch` implements the item: its `arch:` list names the
    architecture or is empty (every one). The headers of an architecture
    define more (linux/kvm.h defines every shared ioctl everywhere)."""
    return not item.arch or arch in item.arch


@dataclass
class Columns:
    """ABIs that agree on every value of a listing share one column."""
    groups: list[tuple[Abi, ...]]

    @property
    def titles(self) -> list[str]:
        return [", ".join(a.name for a in g) for g in self.groups]


def columns(abis: tuple[Abi, ...], values: Callable[[Abi], tuple]) -> Columns:
    """The ABIs grouped by the values they give (in the ABIs' order)."""
    groups: dict[tuple, list[Abi]] = {}
    for abi in abis:
        groups.setdefault(values(abi), []).append(abi)
    return Columns([tuple(g) for g in groups.values()])


@dataclass
class Facts:
    """Everything the pages of one architecture say, from its view of the model."""
    arch: Architecture
    header: object                      # the model's Header of its asm/kvm.h
    abis: tuple[Abi, ...]
    ioctls: list[Ioctl]                 # that it implements, in the model's order
    defined_only: list[Ioctl]           # its headers define them; KVM on it does not implement them
    capabilities: list[Capability]
    exits: list
    register_ids: list[Constant]        # complete ONE_REG ids of its architecture
    header_items: list                  # the rest of its own headers' items
    number_columns: Columns
    size_columns: Columns
    sizes: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)   # record -> ABI -> (size, align)
    reg_arch: Optional[int] = None      # the KVM_REG_<ARCH> bits of its register ids

    @property
    def name(self) -> str:
        return self.arch.name


def register_arch_bits(model: Model, arch: str) -> Optional[int]:
    """The architecture field of `arch`'s ONE_REG ids: the value of enum
    kvm_reg_arch named KVM_REG_<ARCH> (the kernel's naming), or None."""
    regs = model.by_name.get("kvm_reg_arch")
    if not isinstance(regs, Enum):
        return None
    value = regs.value_named(f"KVM_REG_{arch.upper()}")
    return value.value if value is not None else None


def value_on(item, abi: Abi) -> Optional[int]:
    values = getattr(item, "values", ())
    return values[ABI_INDEX[abi.name]] if values and not isinstance(item, (Enum, FlagSet)) else None


def facts(model: Model, arch: Architecture, release: Optional[Version] = None) -> Facts:
    view = View(model, release, arch.name)
    abis = abis_of(arch.name)
    header = next((h for h in model.headers if h.arch == arch.name and h.emit), None)
    # The view's items (view.items), each made as it was (View.item_at) only when a page
    # shows it: the ioctls, capabilities and exit reasons, and the items of the
    # architecture's own headers (an item's header in the view is its home then, the
    # header it has if it never moved). The records and sets of linux/kvm.h are most of
    # the view and none of the pages.
    own_headers = {h.name for h in model.headers if h.arch == arch.name}
    ioctls, caps, exits, own = [], [], [], []
    for i in view.visible:
        if not i.emitted:
            continue
        if isinstance(i, Ioctl):
            ioctls.append(view.then(i))
        elif isinstance(i, Capability):
            if applies(i, arch.name):
                caps.append(view.then(i))
        elif i.kind == "exit" and applies(i, arch.name):
            exits.append(view.then(i))
        if (view.home(i) if i.moves else i.header) in own_headers:
            own.append(view.then(i))
    implemented = [i for i in ioctls if applies(i, arch.name)]
    caps.sort(key=lambda c: c.value)
    exits.sort(key=lambda e: e.value)
    reg_arch = register_arch_bits(model, arch.name)
    mask = model.by_name.get("KVM_REG_ARCH_MASK")
    arch_mask = mask.value if isinstance(mask, Constant) else 0

    def is_register_id(i) -> bool:
        v = value_on(i, abis[0]) if isinstance(i, Constant) else None
        return reg_arch is not None and v is not None and v >= 0 and arch_mask and v & arch_mask == reg_arch

    register_ids, rest = [], []
    for i in own:
        if is_register_id(i):
            register_ids.append(i)
        elif isinstance(i, (Record, Enum, FlagSet, Constant, FunctionMacro)) and (not isinstance(i, Record) or i.name):
            rest.append(i)
    sizes: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rest:
        if isinstance(r, Record):
            per_abi = {}
            for abi in abis:
                layout = view.layout(r, abi)
                if layout is not None:
                    per_abi[abi.name] = (layout.size, layout.align)
            sizes[r.name] = per_abi
    records = [r for r in rest if isinstance(r, Record)]
    return Facts(
        arch=arch, header=header, abis=abis, ioctls=implemented,
        defined_only=[i for i in ioctls if not applies(i, arch.name)],
        capabilities=caps, exits=exits, register_ids=register_ids, header_items=rest,
        number_columns=columns(abis, lambda abi: tuple(i.number_on(abi) for i in implemented)),
        size_columns=columns(abis, lambda abi: tuple(sizes[r.name].get(abi.name) for r in records)),
        sizes=sizes, reg_arch=reg_arch)


# ------------------------------------------------------------------ facts said in words

def ioc_text(abi: Abi) -> str:
    ioc = abi.ioc
    bits = max(ioc.dir_none, ioc.dir_read, ioc.dir_write, ioc.dir_read | ioc.dir_write).bit_length()
    return (f"{bits}-bit direction (none {ioc.dir_none}, read {ioc.dir_read}, "
            f"write {ioc.dir_write}), {ioc.size_bits}-bit size")


def abi_rows(f: Facts) -> list[list[str]]:
    return [[abi.name, f"{abi.long_bits}-bit long, {abi.pointer_bits}-bit pointers",
             f"{abi.u64_align} bytes", "big-endian" if abi.big_endian else "little-endian", ioc_text(abi),
             f"``{abi.triple}``"] for abi in f.abis]


def abi_differences(model: Model, f: Facts) -> list[str]:
    """Sentences on what differs between the architecture's ABIs, and between
    its ioctl numbers and those of the reference ABI (x86_64)."""
    said = []
    if len(f.abis) > 1:
        for a, b in zip(f.abis, f.abis[1:]):
            what = []
            if a.layout_class != b.layout_class:
                what.append(f"type sizes and alignments ({a.name}: {a.long_bits}-bit long and pointers, "
                            f"__u64 aligned to {a.u64_align}; {b.name}: {b.long_bits}-bit, aligned to {b.u64_align})")
            if a.big_endian != b.big_endian:
                what.append("byte order")
            if a.ioc != b.ioc:
                what.append("the _IOC layout")
            if what:
                said.append(f"{a.name} and {b.name} differ in " + " and ".join(what) + ".")
            else:
                said.append(f"{a.name} and {b.name} do not differ.")
        sized = [r for r, per in f.sizes.items() if len({size for size, _ in per.values()}) > 1]
        aligned = [r for r, per in f.sizes.items() if len(set(per.values())) > 1 and r not in sized]
        if sized:
            said.append(f"{len(sized)} records of the header have another size on each: "
                        + ", ".join(f"``{r}``" for r in sized) + ".")
        if aligned:
            said.append(f"{len(aligned)} more have the same size but another alignment (a record that "
                        "embeds one may then lay out differently).")
        ioctls = [i for i in f.ioctls if len({i.number_on(abi) for abi in f.abis}) > 1]
        if ioctls:
            said.append(f"{len(ioctls)} ioctl numbers differ between them, because the size of the "
                        "argument is part of the number: " + ", ".join(rst_ref(i) for i in ioctls) + ".")
    else:
        said.append(f"{f.abis[0].name} is the only ABI of its userspace.")
    abi = f.abis[0]
    if abi.ioc != NATIVE.ioc:
        text = (f"Its _IOC layout ({abi.ioc.name}) is not the {NATIVE.ioc.name} one of {NATIVE.name}, so its "
                f"ioctl numbers differ from {NATIVE.name}'s, even for ioctls without an argument")
        examples = [next((i for i in f.ioctls if (i.dir == "none") == plain and i.number_on(abi) != i.number_on(NATIVE)),
                         None) for plain in (True, False)]
        examples = [i for i in examples if i is not None]
        if examples:
            text += ": " + " and ".join(f"{rst_ref(i)} is ``{hexnum(i.number_on(abi))}`` here, "
                                        f"``{hexnum(i.number_on(NATIVE))}`` on {NATIVE.name}" for i in examples)
        said.append(text + ".")
    else:
        mismatched = [i for i in f.ioctls if i.number_on(abi) != i.number_on(NATIVE)]
        if abi.arch != NATIVE.arch and mismatched:
            said.append(f"It encodes ioctls as x86_64 does ({abi.ioc.name}); {len(mismatched)} numbers still "
                        "differ from x86_64's because the argument has another size: "
                        + ", ".join(rst_ref(i) for i in mismatched) + ".")
        elif abi.arch != NATIVE.arch:
            said.append(f"It encodes ioctls as x86_64 does ({abi.ioc.name}) and every ioctl it shares with "
                        "x86_64 has the same number.")
    return said


def number_cell(i: Ioctl, abis: tuple[Abi, ...]) -> str:
    n = i.number_on(abis[0])
    return f"``{hexnum(n, 8)}``" if n is not None else "(not defined)"


def descriptor(i: Ioctl) -> str:
    return ", ".join(dict.fromkeys(s.scope for s in i.scopes)) or "vm"


def value_text(item, abis: tuple[Abi, ...]) -> str:
    """A constant's value on the architecture's ABIs (each where they differ), or its expression."""
    values = {abi.name: value_on(item, abi) for abi in abis}
    if any(v is None for v in values.values()):
        return f"``{item.expr}``" if item.expr else "(defined, no value)"
    if len(set(values.values())) == 1:
        v = next(iter(values.values()))
        return f"``{hexnum(v) if v > 9 else v}``"
    return "; ".join(f"{name}: ``{hexnum(v)}``" for name, v in values.items())


def named_values(vs, abis: tuple[Abi, ...]) -> str:
    """The values of a flag set or enumeration, each with its value on the first ABI."""
    index = ABI_INDEX[abis[0].name]
    return ", ".join(f"``{v.name}`` {hexnum(v.values[index]) if v.values[index] > 9 else v.values[index]}"
                     for v in vs.values)


def register_size(model: Model, value: int) -> str:
    """The size of a register id's register in bytes, from its KVM_REG_SIZE field."""
    mask, shift = model.by_name.get("KVM_REG_SIZE_MASK"), model.by_name.get("KVM_REG_SIZE_SHIFT")
    if not isinstance(mask, Constant) or not isinstance(shift, Constant):
        return ""
    return str(1 << ((value & mask.value) >> shift.value))


# ------------------------------------------------------------------ pages

@dataclass
class FileSection:
    """The items of one spec file on a header page, by kind."""
    file: object
    title: str
    headers: list[str] = field(default_factory=list)
    records: list = field(default_factory=list)
    sets: list = field(default_factory=list)
    constants: list = field(default_factory=list)
    macros: list = field(default_factory=list)

    def add(self, item, header: str) -> None:
        if header not in self.headers:
            self.headers.append(header)
        kind = {Record: self.records, Enum: self.sets, FlagSet: self.sets, Constant: self.constants,
                FunctionMacro: self.macros}
        kind[type(item)].append(item)


# What the rendered page spends, in the budget's lines (site.BUDGET: about 25
# pixels each): a table row, the heading and the paragraph of a spec file's
# section, and a table's rubric and header row.
ROW = 2
SECTION = 6
TABLE = 4


def header_costs(items: list) -> dict[int, int]:
    """The cost of each item of a header page (by id): its row, and the section of
    its spec file and the table of its kind where it is the first of them."""
    costs: dict[int, int] = {}
    seen_files: set[str] = set()
    seen_tables: set[tuple[str, type]] = set()
    for i in items:
        cost = ROW + (len(i.values) // 2 if isinstance(i, (Enum, FlagSet)) else 0) + \
            (len(i.body) // 40 if isinstance(i, FunctionMacro) else 0)
        if i.file.path not in seen_files:
            seen_files.add(i.file.path)
            cost += SECTION + len(i.file.doc) // 85
        kind = (i.file.path, Enum if isinstance(i, FlagSet) else type(i))
        if kind not in seen_tables:
            seen_tables.add(kind)
            cost += TABLE
        costs[id(i)] = cost
    return costs


def render(model: Model, env, common: dict, listings: dict) -> tuple[list[str], dict[str, str]]:
    """The architecture pages, {path under generated/: text}, and the top pages
    (for the index's table of contents)."""
    out: dict[str, str] = {}
    order = {f.path: n for n, f in enumerate(model.files)}
    all_facts = [facts(model, a) for a in model.architectures]
    arrival = arrivals(model)
    used_by: dict[str, list[str]] = {}
    for name, (records, _) in listings.items():
        for r in records:
            used_by.setdefault(r.name, []).append(name)
    used_by_refs = {r: [rst_ref(model.by_name[n]) for n in names] for r, names in used_by.items()}

    def sources(items) -> list[str]:
        paths = {i.file.path for i in items if getattr(i, "file", None) is not None}
        return sorted(paths or order, key=order.__getitem__)

    def template(name: str):
        return env.get_template(f"rst/site/{name}")

    tops = []
    for f in all_facts:
        base = f"{FOLDER}/{f.name}"
        children: list[site.Page] = []

        def add(slug: str, title: str, items: list, size: Callable, bond=None) -> list[site.Page]:
            runs = site.cut(items, size, site.BUDGET, bond)
            pages = []
            for n, run in enumerate(runs, 1):
                t = title if len(runs) == 1 else site.numbered_part(title, run, n, len(runs))
                pages.append(site.Page(f"{base}/{slug}" + (f"-{n}" if n > 1 else ""), t, run))
            children.extend(pages)
            return pages

        # ioctls: shared ones, then the architecture's own, each in the model's order
        own = [i for i in f.ioctls if tuple(i.arch) == (f.name,)]
        shared = [i for i in f.ioctls if tuple(i.arch) != (f.name,)]
        tagged = [("shared", i) for i in shared] + [("own", i) for i in own]
        for page in add("ioctls", f"{f.name}: ioctls", tagged, lambda t: ROW):
            out[f"docs/{page.name}.rst"] = template("arch-ioctls.rst.j2").render(
                common, since_note=SINCE_NOTE, title=page.title, facts=f, arch=f.name,
                shared=[i for k, i in page.items if k == "shared"], own=[i for k, i in page.items if k == "own"],
                columns=f.number_columns, arrival=arrival, hexnum=hexnum, descriptor=descriptor,
                sources=sources([i for _, i in page.items]))

        tagged = [("cap", c) for c in f.capabilities] + [("exit", e) for e in f.exits]
        for page in add("capabilities", f"{f.name}: capabilities and exit reasons", tagged, lambda t: ROW):
            out[f"docs/{page.name}.rst"] = template("arch-capabilities.rst.j2").render(
                common, since_note=SINCE_NOTE, title=page.title, arch=f.name, arrival=arrival,
                caps=[c for k, c in page.items if k == "cap"], exits=[e for k, e in page.items if k == "exit"],
                sources=sources([i for _, i in page.items]))

        if f.register_ids:
            for page in add("register-ids", f"{f.name}: ONE_REG register ids", f.register_ids, lambda c: ROW):
                out[f"docs/{page.name}.rst"] = template("arch-register-ids.rst.j2").render(
                    common, since_note=SINCE_NOTE, title=page.title, arch=f.name, ids=page.items, arrival=arrival,
                    value=lambda c: value_on(c, f.abis[0]), hexnum=hexnum,
                    size=lambda c: register_size(model, value_on(c, f.abis[0])),
                    reg_arch=f.reg_arch, sources=sources(page.items))

        # the header: its items by spec file, each file a section
        items = sorted(f.header_items, key=lambda i: order[i.file.path])
        costs = header_costs(items)
        for page in add("header", f"{f.name}: asm/kvm.h", items, lambda i: costs[id(i)]):
            sections: list[FileSection] = []
            for i in page.items:
                if not sections or sections[-1].file is not i.file:
                    sections.append(FileSection(i.file, site.topic_title(i.file.title, f.name)))
                sections[-1].add(i, model.header(i.header).include_name)
            out[f"docs/{page.name}.rst"] = template("arch-header.rst.j2").render(
                common, since_note=SINCE_NOTE, title=page.title, arch=f.name, sections=sections, facts=f,
                columns=f.size_columns, arrival=arrival, value=lambda c: value_text(c, f.abis),
                named_values=lambda vs: named_values(vs, f.abis),
                used_by=used_by_refs,
                sources=sources(page.items))

        out[f"docs/{base}.rst"] = template("arch.rst.j2").render(
            common, title=f"KVM on {f.name}", facts=f, abi_rows=abi_rows(f),
            differences=abi_differences(model, f), children=children,
            sources=sources(f.ioctls + f.header_items + f.register_ids))
        tops.append(base)

    out[f"docs/{OVERVIEW}.rst"] = template("architectures.rst.j2").render(
        common, all_facts=all_facts, pages=tops,
        sources=sources([i for f in all_facts for i in f.ioctls + f.header_items]))
    return [OVERVIEW], out


class Generator:
    """The architecture pages of the site (docs/arch/), a generator of their
    own so that generate's two processes can share the site out."""

    name = "arch_pages"

    def render(self, model: Model, env) -> dict[str, str]:
        from .rst import listings_of
        return render(model, env, {"model": model}, listings_of(model))[1]
