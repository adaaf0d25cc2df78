"""Generators: each turns the model into files, {path under generated/: text}.

A generator is a module with a `Generator` class that has a `name` and a
`render(model, env)` method; its templates live in templates/<name>/. To add
an output, add a module and a template folder and list the class here.
"""

from __future__ import annotations

from typing import Protocol

from ..model import Model
from . import c_header, python, rst, tests
from .text import environment


class Generator(Protocol):
    name: str

    def render(self, model: Model, env) -> dict[str, str]:  # pragma: no cover - protocol
        ...


GENERATORS: tuple[Generator, ...] = (
    c_header.Generator(),
    python.Generator(),
    rst.Generator(),
    tests.Generator(),
)


# Set by the command-line entry point: render in two processes. Library
# callers (and the tests that call kvmspec in-process) render in one.
PARALLEL = False


def _render(model: Model, gens: tuple[Generator, ...]) -> dict[str, str]:
    env = environment()
    files: dict[str, str] = {}
    for gen in gens:
        for path, text in gen.render(model, env).items():
            if path in files:
                raise AssertionError(f"{gen.name} and another generator both write {path}")
            files[path] = text
    return files


def _render_forked(model: Model, gens: tuple[Generator, ...]) -> dict[str, str] | None:
    """Render the generators in two processes that share the model (fork: no
    copy, no pickling), about halving the time on two or more CPUs. None when
    the system cannot fork."""
    import marshal
    import os
    import traceback
    half = {"python", "tests"}
    mine = tuple(g for g in gens if g.name not in half)
    theirs = tuple(g for g in gens if g.name in half)
    if not mine or not theirs:
        return None
    try:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # the child: render its half, send it, and leave without cleanup
        status = 0
        try:
            os.close(read_fd)
            try:
                payload = marshal.dumps((True, _render(model, theirs)))
            except BaseException:
                payload = marshal.dumps((False, traceback.format_exc()))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        files = _render(model, mine)
    finally:
        with os.fdopen(read_fd, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
    try:
        ok, result = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        raise RuntimeError("the rendering process ended without a result") from None
    if not ok:
        raise RuntimeError(f"rendering failed in the second process:\n{result}")
    for path in result:
        if path in files:
            raise AssertionError(f"two generators both write {path}")
    files.update(result)
    return files


def render_all(model: Model, only: tuple[str, ...] = ()) -> dict[str, str]:
    """Every generated file, keyed by its path relative to generated/."""
    gens = tuple(g for g in GENERATORS if not only or g.name in only)
    files = None
    if PARALLEL and len(gens) > 1 and _cpus() > 1:
        files = _render_forked(model, gens)
    if files is None:
        files = _render(model, gens)
    return dict(sorted(files.items()))


def _cpus() -> int:
    import os
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
