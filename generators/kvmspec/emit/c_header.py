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


class Generator:
    name = "c_header"

    def render(self, model: Model, env) -> dict[str, str]:
        template = env.get_template("c_header/header.h.j2")
        out = {}
        for header in model.headers:
            if not header.emit:
                continue
            items = [i for i in model.items_of_header(header.name) if i.emitted]
            sources = list(dict.fromkeys(i.file.path for i in items))
            out[header.path] = template.render(header=header, sections=sections(items), sources=sources)
        return out
