"""From spec/ to the text of every generated file, in one process or two.

With two CPUs, `kvmspec generate` reads the spec once and builds the model
once, without the checks of the input (schema, text, unlisted files), and
shares out the rest:

- as soon as everything is read, a first child runs the input checks on what
  was read while the parent builds the model (the build alone leaves the
  second CPU idle);
- once the model is built, a second child checks the rules of the finished
  model and renders the bindings and tests, while the parent renders the
  headers and documentation.

Nothing is read twice or built twice, and the work after the build is split
about evenly.

An input that the checks would reject may fail the unchecked build or give a
meaningless model: either way the answer is a build with every check, in one
process, which reports the problems exactly as `kvmspec validate` does (the
children are stopped first). The input checks answer with their exit status
alone. The second child's findings and files come back through an unlinked
temporary file that it fills and the parent reads once it has ended (a pipe
would make the child wait, 64 KiB at a time, for the parent). If a child ends
without a result (killed), the parent does its part; if the second fails with
an exception on a model that follows the rules, that is a bug and is reported
as one.
"""

from __future__ import annotations

import marshal
import os
import signal
import tempfile
import traceback
from pathlib import Path
from typing import Callable, TypeVar

from .build import Builder
from .checks import check_model
from .diagnostics import Diagnostic, Mark, SpecError
from .model import Model

T = TypeVar("T")

# Rendered by the second child; the parent renders the rest (headers, documentation, the
# bindings): about the same time on each side, with the model checks in the child.
CHILD_GENERATORS = frozenset({"python", "python_abis", "tests"})


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def generate_files(root: Path, parallel: bool = False) -> dict[str, str]:
    """Every generated file of the spec under root, keyed by its path under
    generated/; raises SpecError when the spec is invalid."""
    from . import emit
    if not parallel or cpus() < 2 or not hasattr(os, "fork"):
        return emit.render_all(Builder(root).build())
    built = _build_unchecked(root)
    if built is None:   # the checked build says why
        return emit.render_all(Builder(root).build())
    builder, model, inputs = built
    try:
        result = tempfile.TemporaryFile()
    except OSError:
        return _one_process(root, builder, model, inputs)
    with result:
        try:
            pid = os.fork()
        except OSError:
            return _one_process(root, builder, model, inputs)
        if pid == 0:
            _child(model, result.fileno())    # does not return
        try:
            if not inputs.clean():
                raise _InputProblems
            files: dict[str, str] = {}
            failure = None
            try:
                files = emit.render(model, emit.generators(set(emit.NAMES) - CHILD_GENERATORS))
            except Exception as exc:   # perhaps because the model breaks a rule: decided in _combine
                failure = exc
        except BaseException as exc:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            inputs.stop()
            if isinstance(exc, _InputProblems):
                return emit.render_all(Builder(root).build())   # raises SpecError, saying what they are
            raise
        os.waitpid(pid, 0)
        result.seek(0)   # the child wrote through the same open file, moving its offset
        return _combine(model, files, failure, result.read())


class _Answer:
    """A yes-or-no check run in a child: its exit status is the answer (0:
    nothing found, 1: something found). Without a child (fork failed, or it
    was killed) the parent runs the check itself when it needs the answer."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self.check = check
        self.pid = 0
        self.answer: bool | None = None

    def start(self) -> None:
        try:
            pid = os.fork()
        except OSError:
            return
        if pid == 0:
            status = 2
            try:
                status = 0 if self.check() else 1
            finally:
                os._exit(status)
        self.pid = pid

    def clean(self) -> bool:
        if self.answer is None:
            if self.pid:
                _, status = os.waitpid(self.pid, 0)
                self.pid = 0
                if os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1):
                    self.answer = os.WEXITSTATUS(status) == 0
            if self.answer is None:
                self.answer = self.check()
        return self.answer

    def stop(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0


def _build_unchecked(root: Path) -> tuple[Builder, Model, _Answer] | None:
    """The model built without the checks, with the input checks started in a
    child as soon as everything is read; None if the build failed (on input
    the checks would reject, or that the build cannot take)."""
    builder = Builder(root, check_input=False, check_rules=False)
    inputs = _input_checks(builder)
    builder.after_read = inputs.start
    try:
        return builder, builder.build(), inputs
    except Exception:
        inputs.stop()
        return None


def _input_checks(builder: Builder) -> _Answer:
    """The checks of the input that the unchecked build left out, run in a
    child from the moment everything is read."""
    return _Answer(builder.input_is_clean)


def render_checked(root: Path, render: Callable[[Model], T]) -> T:
    """render(model) of the spec under root, for a model that passes every
    check `kvmspec validate` makes; raises SpecError otherwise. With two CPUs,
    the input checks run beside the build and the model's rules beside the
    rendering, so that a command that needs a little of the model (one
    release's headers) does not wait for checks it can overlap."""
    if cpus() < 2 or not hasattr(os, "fork"):
        return render(Builder(root).build())
    built = _build_unchecked(root)
    if built is None:   # the checked build says why
        return render(Builder(root).build())
    _, model, inputs = built
    rules = _Answer(lambda: not check_model(model))
    rules.start()
    failure: Exception | None = None
    try:
        result = render(model)
    except Exception as exc:   # perhaps because the model breaks a rule: decided below
        failure = exc
    if not inputs.clean() or not rules.clean():
        rules.stop()
        return render(Builder(root).build())   # raises SpecError, saying what the checks found
    if failure is not None:
        raise failure
    return result


class _InputProblems(Exception):
    """The input checks found something (the checked build will say what)."""


def _one_process(root: Path, builder: Builder, model: Model, inputs: _Answer) -> dict[str, str]:
    from . import emit
    if not inputs.clean():
        return emit.render_all(Builder(root).build())   # raises SpecError
    diagnostics = check_model(model)
    if diagnostics:
        raise SpecError(diagnostics)
    return emit.render_all(model)


def _combine(model: Model, files: dict[str, str], failure: Exception | None, data: bytes) -> dict[str, str]:
    """The parent's files with the child's, or with its own rendering of the
    child's part when the child ended without a result."""
    from . import emit
    try:
        ok, found, theirs = marshal.loads(data)
    except (EOFError, ValueError, TypeError):   # it was killed before it wrote (out of memory, a signal)
        ok, found, theirs = None, [], None
    if ok:
        diagnostics = [Diagnostic(Mark(*mark), message, hint, severity, rule)
                       for mark, message, hint, severity, rule in found]
    else:   # it failed or ended without a result: the model is checked here
        diagnostics = check_model(model)
    if diagnostics:
        raise SpecError(diagnostics)
    if failure is not None:
        raise failure
    if ok is False:   # an exception in it, on a model that follows the rules: a bug
        raise RuntimeError(f"the second process failed:\n{theirs}")
    if ok is None:    # no result: its part is rendered here
        theirs = emit.render(model, emit.generators(CHILD_GENERATORS))
    for path in theirs:
        if path in files:
            raise AssertionError(f"two generators both write {path}")
    files.update(theirs)
    return dict(sorted(files.items()))


def _child(model: Model, result_fd: int) -> None:
    status = 0
    try:
        try:
            from . import emit
            found = [(tuple(d.mark), d.message, d.hint, d.severity, d.rule) for d in check_model(model)]
            files = {} if found else \
                emit.render(model, emit.generators(CHILD_GENERATORS))
            payload = marshal.dumps((True, found, files))
        except BaseException:
            payload = marshal.dumps((False, [], traceback.format_exc()))
        view = memoryview(payload)
        while view:
            view = view[os.write(result_fd, view):]
    except BaseException:
        status = 1
    finally:
        os._exit(status)
