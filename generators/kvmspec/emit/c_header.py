"""C uapi headers, one per header in the manifest, at their kernel-tree paths."""

from __future__ import annotations

from itertools import groupby

from ..model import Definition, Model, SpecFile
from ..valuetype import value_type


@value_type
class Section:
    """A run of consecutive items from one spec file."""

    file: SpecFile
    items: tuple[Definition, ...]


def sections(items: list[Definition]) -> list[Section]:
    return [Section(f, tuple(group)) for f, group in groupby(items, key=lambda i: i.file)]


def render_header(view, header, env) -> str:
    """One header as the view (an architecture at a release) has it."""
    items = view.items_of_header(header.name)
    sources = list(dict.fromkeys(i.file.path for i in items))
    return env.get_template("c_header/header.h.j2").render(header=header, sections=sections(items), sources=sources)


class Generator:
    name = "c_header"

    def render(self, model: Model, env) -> dict[str, str]:
        from ..view import View
        view = View(model)   # the newest release, every architecture
        return {header.path: render_header(view, header, env) for header in view.headers()}
