"""Generators: each turns the model into files, {path under generated/: text}.

A generator is a module with a `Generator` class that has a `name` and a
`render(model, env)` method; its templates live in templates/<name>/. To add
an output, add a module and a template folder and list the class here.
"""

from __future__ import annotations

from typing import Protocol

from ..model import Model
from . import c_header, python, python_abis, rst, tests
from .text import environment


class Generator(Protocol):
    name: str

    def render(self, model: Model, env) -> dict[str, str]:  # pragma: no cover - protocol
        ...


GENERATORS: tuple[Generator, ...] = (
    c_header.Generator(),
    python.Generator(),
    python_abis.Generator(),
    rst.Generator(),
    tests.Generator(),
)


def render(model: Model, gens: tuple[Generator, ...]) -> dict[str, str]:
    """The files of some generators, keyed by their path under generated/."""
    env = environment()
    files: dict[str, str] = {}
    for gen in gens:
        for path, text in gen.render(model, env).items():
            if path in files:
                raise AssertionError(f"{gen.name} and another generator both write {path}")
            files[path] = text
    return files


def render_all(model: Model, only: tuple[str, ...] = ()) -> dict[str, str]:
    """Every generated file, keyed by its path relative to generated/."""
    files = render(model, tuple(g for g in GENERATORS if not only or g.name in only))
    return dict(sorted(files.items()))
