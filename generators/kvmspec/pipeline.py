"""From spec/ to the text of every generated file, in one process or two.

Reading and building the model is most of the time of `kvmspec generate` and
cannot be split, so with two CPUs it is done twice in parallel rather than
shared: the process forks before reading. Both build the same model; the
checks that change nothing that is built are shared out (the parent checks
the input, the child the rules of the finished model), and so is rendering.
Only the child's findings and finished text are sent back, through an
unlinked temporary file that the child fills and the parent reads once the
child has ended (a pipe would make the child wait, 64 KiB at a time, until
the parent had finished its own part). The child's digest of the bytes it
read must equal the parent's; if it does not (a spec file changed in
between) or the child failed, the parent does the child's part.
"""

from __future__ import annotations

import marshal
import os
import signal
import tempfile
import traceback
from pathlib import Path

from .build import Builder
from .checks import check_model
from .diagnostics import Diagnostic, Mark, SpecError
from .model import Model

# Rendered by the child; the parent renders the rest (headers and documentation).
CHILD_GENERATORS = frozenset({"python", "tests"})


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
    try:
        result = tempfile.TemporaryFile()
    except OSError:
        return emit.render_all(Builder(root).build())
    with result:
        try:
            pid = os.fork()
        except OSError:
            return emit.render_all(Builder(root).build())
        if pid == 0:
            _child(root, result.fileno())    # does not return
        try:
            builder = Builder(root, check_rules=False)
            model = builder.build()
            files: dict[str, str] = {}
            failure = None
            try:
                files = emit.render(model, tuple(g for g in emit.GENERATORS if g.name not in CHILD_GENERATORS))
            except Exception as exc:   # perhaps because the model breaks a rule: decided in _combine
                failure = exc
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        os.waitpid(pid, 0)
        result.seek(0)   # the child wrote through the same open file, moving its offset
        return _combine(builder, model, files, failure, result.read())


def _combine(builder: Builder, model: Model, files: dict[str, str], failure: Exception | None,
             data: bytes) -> dict[str, str]:
    """The parent's files with the child's, or with its own rendering of the
    child's part when the child failed or read another spec."""
    from . import emit
    try:
        ok, digest, found, theirs = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        ok, digest, found, theirs = False, b"", [], "the second process ended without a result"
    same_input = digest == builder.digest.digest()
    if ok and same_input:
        diagnostics = [Diagnostic(Mark(*mark), message, hint, severity, rule)
                       for mark, message, hint, severity, rule in found]
    else:
        diagnostics = check_model(model)
    if diagnostics:
        raise SpecError(diagnostics)
    if failure is not None:
        raise failure
    if not ok and same_input:   # the same model, and it follows the rules: a bug
        raise RuntimeError(f"the second process failed:\n{theirs}")
    if not (ok and same_input):
        theirs = emit.render(model, tuple(g for g in emit.GENERATORS if g.name in CHILD_GENERATORS))
    for path in theirs:
        if path in files:
            raise AssertionError(f"two generators both write {path}")
    files.update(theirs)
    return dict(sorted(files.items()))


def _child(root: Path, result_fd: int) -> None:
    status = 0
    try:
        digest = b""
        try:
            from . import emit
            builder = Builder(root, check_input=False, check_rules=False)
            model = builder.build()
            digest = builder.digest.digest()
            found = [(tuple(d.mark), d.message, d.hint, d.severity, d.rule) for d in check_model(model)]
            files = {} if found else \
                emit.render(model, tuple(g for g in emit.GENERATORS if g.name in CHILD_GENERATORS))
            payload = marshal.dumps((True, digest, found, files))
        except BaseException:
            payload = marshal.dumps((False, digest, [], traceback.format_exc()))
        view = memoryview(payload)
        while view:
            view = view[os.write(result_fd, view):]
    except BaseException:
        status = 1
    finally:
        os._exit(status)
