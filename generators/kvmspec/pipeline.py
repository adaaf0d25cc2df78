"""From spec/ to the text of every generated file, in one process or two.

With two CPUs, `kvmspec generate` reads the spec once and builds the model
once, without the checks of the input (schema, text, unlisted files), and
shares out the rest:

- a reader process (readahead.py) parses part of the spec while the parent
  imports and parses the rest; once it has handed its files over, it runs
  the input checks while the parent builds the model (the build alone leaves
  the second CPU idle). Without a reader, a child forked once everything is
  read runs them;
- once the model is built, a second child checks the rules of the finished
  model while the parent renders the documentation; then each takes the
  next generator from a queue they share (headers, bindings, tests) until
  none is left;
- each puts what it rendered into the sink as soon as it has it: writing
  generated/ (output.Rewrite) is shared too.

Nothing is read twice or built twice, and the work after the build is split
about evenly.

An input that the checks would reject may fail the unchecked build or give a
meaningless model: either way the answer is a build with every check, in one
process, which reports the problems exactly as `kvmspec validate` does (the
other processes are stopped first). The input checks answer with their exit
status alone; a process that gives no answer (killed) has the parent run
them. The second child's findings and the reports of its shares (what the
sink's put() returned) come back through an unlinked temporary file that it
fills and the parent reads once it has ended (a pipe would make the child
wait, 64 KiB at a time, for the parent). The sink takes either process's
share only once the child's checks are known to have passed. If a child ends
without a result (killed), the parent does its part; if the second fails with
an exception on a model that follows the rules, that is a bug and is reported
as one.
"""

from __future__ import annotations

import marshal
import os
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol, TypeVar

from .build import Builder
from .checks import check_model
from .diagnostics import Diagnostic, Mark, SpecError
from .model import Model
from .readahead import ReadAhead, cpus, end_process
from . import timeline

T = TypeVar("T")

# The parent renders the documentation first (the largest output: 150 pages
# to render and write), the child checks the model's rules first; then each
# takes the next of these from a queue they share until none is left, the
# largest first. Who is free first differs from run to run (writing files
# costs what the disk makes it cost), so neither process waits on a split
# fixed in advance.
FIRST_IN_PARENT = "rst"
QUEUE = ("tests", "arch_pages", "python", "c_header", "python_abis")


class Sink(Protocol):
    """Where the files go, a share at a time (output.Rewrite, output.Check, or
    a dict): put(files) renders nothing and may run in the forked child, so it
    returns plain data (a report) that marshal can carry; take(report) runs in
    the parent for every share, its own included."""

    def put(self, files: dict[str, str]) -> Any:  # pragma: no cover - protocol
        ...

    def take(self, report: Any) -> None:  # pragma: no cover - protocol
        ...


class _Files:
    """The sink of generate_files: the files themselves."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}

    def put(self, files: dict[str, str]) -> dict[str, str]:
        return files

    def take(self, report: dict[str, str]) -> None:
        for path in report:
            if path in self.files:
                raise AssertionError(f"two generators both write {path}")
        self.files.update(report)


def generate_files(root: Path, parallel: bool = False) -> dict[str, str]:
    """Every generated file of the spec under root, keyed by its path under
    generated/; raises SpecError when the spec is invalid."""
    files = _Files()
    generate_into(root, files, parallel)
    return dict(sorted(files.files.items()))


def generate_into(root: Path, sink: Sink, parallel: bool = False, ahead: Optional[ReadAhead] = None) -> None:
    """Every generated file of the spec under root, put into `sink`: with two
    processes, each puts the files it rendered (a Rewrite: writes them), the
    parent as soon as it has them; raises SpecError when the spec is invalid,
    before the sink has taken anything. `ahead`: a reader already started
    (readahead.py); without one, one is started here."""
    if not parallel or cpus() < 2 or not hasattr(os, "fork"):
        if ahead is not None:
            ahead.stop()
        return _checked_into(root, sink)
    if ahead is None:
        ahead = ReadAhead.start(root)
    if ahead is not None:   # Jinja and the generators load while the first process waits for the reader, if it does
        ahead.while_waiting = _prepare_renderers
    built = _build_unchecked(root, ahead)
    if built is None:   # the checked build says why
        return _checked_into(root, sink)
    _load_renderers()   # (if they have not) before the fork: both processes render
    _, model, inputs = built
    try:
        result = tempfile.TemporaryFile()
    except OSError:
        return _one_process(root, model, inputs, sink)
    with result:
        try:
            queue = _Queue(len(QUEUE))
        except OSError:
            return _one_process(root, model, inputs, sink)
        try:
            pid = os.fork()
        except OSError:
            queue.close()
            return _one_process(root, model, inputs, sink)
        if pid == 0:
            _child(model, result.fileno(), sink, queue)    # does not return
        try:
            mine: list = []
            failure = None
            try:
                mine = _render_into(model, sink, _names(FIRST_IN_PARENT, queue), "parent")
            except Exception as exc:   # perhaps because the model breaks a rule: decided in _combine
                failure = exc
            queue.close()
            # Asked only now: the checks may still be running, and nothing is taken before the answer.
            if not inputs.clean():
                raise _InputProblems
        except BaseException as exc:
            end_process(pid)
            queue.close()
            inputs.stop()
            if isinstance(exc, _InputProblems):
                return _checked_into(root, sink)   # raises SpecError, saying what they are
            raise
        os.waitpid(pid, 0)
        result.seek(0)   # the child wrote through the same open file, moving its offset
        _combine(model, sink, mine, failure, result.read())


def _load_renderers() -> None:
    from . import emit  # noqa: F401


def _prepare_renderers() -> None:
    """While the first process waits for the reader: every generator imported and
    every template loaded, which the render child then has from the fork."""
    from . import emit
    emit.generators()
    env = emit.environment()
    for name in env.list_templates():
        env.get_template(name)


class _Queue:
    """The generators left to render, as bytes in a pipe both processes
    inherit: reading one byte takes one generator, and no two readers get the
    same byte."""

    def __init__(self, count: int) -> None:
        self.read_end, write_end = os.pipe()
        try:
            os.write(write_end, bytes(range(count)))
        finally:
            os.close(write_end)   # once they are taken, reading gives the end of the file

    def take(self) -> Optional[int]:
        if self.read_end < 0:
            return None
        taken = os.read(self.read_end, 1)
        return taken[0] if taken else None

    def close(self) -> None:
        if self.read_end >= 0:
            os.close(self.read_end)
            self.read_end = -1


def _names(first: Optional[str], queue: _Queue) -> Iterator[str]:
    """The generators a process renders: its first, then what it takes from the queue."""
    if first is not None:
        yield first
    while (index := queue.take()) is not None:
        yield QUEUE[index]


def _render_into(model: Model, sink: Sink, names: Iterable[str], who: str) -> list[tuple[str, Any]]:
    """Render each generator named and put its files into the sink, as soon as
    each is rendered: (generator, the sink's report) of each."""
    from . import emit
    env = emit.environment_for(model)
    reports = []
    for name in names:
        files = emit.render(model, emit.generators({name}), env)
        timeline.mark(f"{who}: {name} rendered")
        reports.append((name, sink.put(files)))
        timeline.mark(f"{who}: {name} put")
    return reports


def _checked_into(root: Path, sink: Sink) -> None:
    """The files of a build with every check, in this process."""
    from . import emit
    sink.take(sink.put(emit.render_all(Builder(root).build())))


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
            end_process(self.pid)
            self.pid = 0


def _build_unchecked(root: Path, ahead: Optional[ReadAhead] = None) \
        -> tuple[Builder, Model, _Answer | _ReaderAnswer] | None:
    """The model built without the checks, with part of the spec read by
    `ahead` (which then checks the input), or the input checks started in a
    child as soon as everything is read; None if the build failed (on input
    the checks would reject, or that the build cannot take)."""
    builder = Builder(root, check_input=False, check_rules=False)
    builder.read_ahead = ahead
    if ahead is not None:   # the reader checks the input once it has handed its files over
        inputs: _Answer | _ReaderAnswer = _ReaderAnswer(ahead, builder)
    else:
        inputs = _input_checks(builder)
        builder.after_read = inputs.start
    try:
        return builder, builder.build(), inputs
    except Exception:
        inputs.stop()
        return None


class _ReaderAnswer:
    """The input checks' answer from the reader process (readahead.py), or
    from this process when the reader gave none."""

    def __init__(self, ahead: ReadAhead, builder: Builder) -> None:
        self.ahead, self.builder = ahead, builder

    def clean(self) -> bool:
        answer = self.ahead.input_is_clean()
        return answer if answer is not None else self.builder.input_is_clean()

    def stop(self) -> None:
        self.ahead.stop()


def _input_checks(builder: Builder) -> _Answer:
    """The checks of the input that the unchecked build left out, run in a
    child from the moment everything is read."""
    return _Answer(builder.input_is_clean)


def render_checked(root: Path, render: Callable[[Model], T], ahead: Optional[ReadAhead] = None) -> T:
    """render(model) of the spec under root, for a model that passes every
    check `kvmspec validate` makes; raises SpecError otherwise. With two CPUs,
    the input checks run beside the build and the model's rules beside the
    rendering, so that a command that needs a little of the model (one
    release's headers) does not wait for checks it can overlap."""
    if cpus() < 2 or not hasattr(os, "fork"):
        if ahead is not None:
            ahead.stop()
        return render(Builder(root).build())
    built = _build_unchecked(root, ahead if ahead is not None else ReadAhead.start(root))
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


def _one_process(root: Path, model: Model, inputs: _Answer, sink: Sink) -> None:
    from . import emit
    if not inputs.clean():
        return _checked_into(root, sink)   # raises SpecError
    diagnostics = check_model(model)
    if diagnostics:
        raise SpecError(diagnostics)
    sink.take(sink.put(emit.render_all(model)))


def _combine(model: Model, sink: Sink, mine: list, failure: Optional[Exception], data: bytes) -> None:
    """The parent's shares with the child's, or with its own rendering of what
    the child took when it ended without a result."""
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
    if ok is None:    # no result: what it took is rendered here
        done = {name for name, _ in mine}
        theirs = _render_into(model, sink, [name for name in emit.NAMES if name not in done], "parent")
    for _, report in [*mine, *theirs]:
        sink.take(report)
    timeline.mark("parent: every share taken")


def _child(model: Model, result_fd: int, sink: Sink, queue: _Queue) -> None:
    status = 0
    try:
        try:
            found = [(tuple(d.mark), d.message, d.hint, d.severity, d.rule) for d in check_model(model)]
            timeline.mark("child: model checked")
            reports = [] if found else _render_into(model, sink, _names(None, queue), "child")
            payload = marshal.dumps((True, found, reports))
        except OSError:   # writing its files: the parent does its part again, and says what fails
            payload = marshal.dumps((None, [], None))
        except BaseException:
            payload = marshal.dumps((False, [], traceback.format_exc()))
        view = memoryview(payload)
        while view:
            view = view[os.write(result_fd, view):]
    except BaseException:
        status = 1
    finally:
        os._exit(status)
