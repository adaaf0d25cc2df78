"""Generators: each turns the model into files, {path under generated/: text}.

A generator is a module with a `Generator` class that has a `name` (the
module's) and a `render(model, env)` method; its templates live in
templates/<name>/. To add an output, add a module and a template folder and
list its name in NAMES. A module is imported when its generator is first
wanted: a command that renders two headers does not load the documentation
generators, and `generate`'s two processes each load their own.
"""

from __future__ import annotations

import importlib
from typing import Any, Optional, Protocol

from ..model import Model
from .text import environment

# Every generator, in the order their files are rendered.
NAMES = ("c_header", "python", "python_abis", "rst", "arch_pages", "tests")


class Generator(Protocol):
    name: str

    def render(self, model: Model, env) -> dict[str, str]:  # pragma: no cover - protocol
        ...


def generators(names: Optional[Any] = None) -> tuple[Generator, ...]:
    """The generators named (every one by default), in NAMES order."""
    return tuple(importlib.import_module(f".{name}", __name__).Generator()
                 for name in NAMES if names is None or name in names)


def __getattr__(name: str) -> Any:
    if name == "GENERATORS":   # every generator (imports every module)
        return generators()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def environment_for(model: Model):
    """The Jinja environment the generators render the model with."""
    env = environment()
    env.globals["released"] = model.released   # what `since` marks as not yet released
    return env


def render(model: Model, gens: tuple[Generator, ...], env=None) -> dict[str, str]:
    """The files of some generators, keyed by their path under generated/ (rendered
    with `env`, by default a new environment_for(model))."""
    env = env if env is not None else environment_for(model)
    files: dict[str, str] = {}
    for gen in gens:
        for path, text in gen.render(model, env).items():
            if path in files:
                raise AssertionError(f"{gen.name} and another generator both write {path}")
            files[path] = text
    return files


def render_all(model: Model, only: tuple[str, ...] = ()) -> dict[str, str]:
    """Every generated file, keyed by its path relative to generated/."""
    files = render(model, generators(only or None))
    return dict(sorted(files.items()))
