"""The pages of the documentation site (generated/docs/, docs/reference/ in the
site) and which items each one holds.

Every listing of the reference (the ioctls of an area, the capabilities, the
constants and value sets, the exit reasons, the releases) is one page while it
is short. A long one becomes an overview page with one page per group below it
(the spec file an ioctl comes from, the architecture a capability or value set
belongs to, a kernel series), and a group that is still too long is cut into
parts. The groups come from the model, so a new architecture or spec file gets
its pages without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable, Sequence

# How much one page may hold, in lines of its reStructuredText: about a dozen
# screens of the rendered page (tests/test_browser.py measures the pages).
BUDGET = 480


@dataclass
class Group:
    """Items that belong on one page (or on consecutive parts of one)."""

    slug: str
    title: str
    items: list
    # names the parts of a group cut in pieces: (title, items, n, of) -> title
    part_title: Callable[[str, list, int, int], str] | None = None
    # neighbours that stay on one part: (item, next item) -> bool
    bond: Callable[[object, object], bool] | None = None


@dataclass
class Page:
    name: str                    # path under docs/ without ".rst": "x86", "x86/registers"
    title: str
    items: list
    children: list["Page"] = field(default_factory=list)


def cut(items: Sequence, size: Callable[[object], int], budget: int = BUDGET,
        bond: Callable[[object, object], bool] | None = None) -> list[list]:
    """Consecutive runs of the items, each within the budget (an item larger
    than the budget has a run of its own). Two neighbours that `bond` holds
    together (a save ioctl and its restore ioctl) start the next run together
    rather than be cut apart."""
    runs: list[list] = [[]]
    used = 0
    for item in items:
        cost = size(item)
        if runs[-1] and used + cost > budget:
            carried = []
            if bond is not None and len(runs[-1]) > 1 and bond(runs[-1][-1], item) \
                    and size(runs[-1][-1]) + cost <= budget:
                carried = [runs[-1].pop()]
            runs.append(carried)
            used = sum(size(i) for i in carried)
        runs[-1].append(item)
        used += cost
    return [run for run in runs if run]


def numbered_part(title: str, items: list, n: int, of: int) -> str:
    return f"{title} (part {n} of {of})"


def paginate(name: str, title: str, groups: list[Group], size: Callable[[object], int],
             budget: int = BUDGET) -> Page:
    """One page holding every item when they fit the budget; otherwise an
    overview page whose children are the groups, each cut into parts as needed."""
    everything = [item for g in groups for item in g.items]
    if sum(size(item) for item in everything) <= budget:
        return Page(name, title, everything)
    children = []
    for g in groups:
        runs = cut(g.items, size, budget, g.bond)
        for n, run in enumerate(runs, 1):
            child_title = g.title if len(runs) == 1 else (g.part_title or numbered_part)(g.title, run, n, len(runs))
            children.append(Page(f"{name}/{g.slug}" + (f"-{n}" if n > 1 else ""), child_title, run))
    return Page(name, title, [], children)


def slugs(paths: Sequence[str]) -> dict[str, str]:
    """A short page name for each spec file: its stem, or folder-stem where two
    files share a stem."""
    stems = [PurePosixPath(p).stem for p in paths]
    return {p: (s if stems.count(s) == 1 else f"{PurePosixPath(p).parent.name}-{s}")
            for p, s in zip(paths, stems)}


def topic_title(title: str, area: str) -> str:
    """A spec file's title on the page of an area: "x86 CPUID" under x86 is "CPUID"."""
    if title.lower().startswith(area.lower() + " ") and len(title) > len(area) + 1:
        rest = title[len(area) + 1:]
        return rest[0].upper() + rest[1:]
    return title


def by_topic(area_key: str, items: list, files: Sequence,
             bond: Callable[[object, object], bool] | None = None) -> list[Group]:
    """The items grouped by the spec file they come from, in the manifest's order."""
    names = slugs([f.path for f in files])
    groups = []
    for f in files:
        mine = [i for i in items if i.file.path == f.path]
        if mine:
            groups.append(Group(names[f.path], topic_title(f.title, area_key), mine, bond=bond))
    return groups


def by_architecture(items: list, architectures: Sequence, shared: list[tuple[str, str, Callable]],
                    noun: str) -> list[Group]:
    """Items of a single architecture grouped by it (in the model's order of
    architectures); the others by the `shared` rules, (slug, title, test)."""
    groups = []
    rest = [i for i in items if len(i.arch) != 1]
    for slug, title, test in shared:
        mine = [i for i in rest if test(i)]
        if mine:
            groups.append(Group(slug, title, mine))
    for a in architectures:
        mine = [i for i in items if tuple(i.arch) == (a.name,)]
        if mine:
            groups.append(Group(a.name, f"{a.name} {noun}", mine))
    return groups


def number_range(title: str, items: list, n: int, of: int) -> str:
    return f"{title}, numbers {items[0].value} to {items[-1].value}"


def series_of(version) -> str:
    """The kernel series of a release: "2.6" for 2.6.x, otherwise the major number."""
    parts = version.parts
    return "2.6" if parts[:2] == (2, 6) else str(parts[0])
