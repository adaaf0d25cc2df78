"""Reading the spec in two processes.

Reading the spec files is Python (fastyaml.py), as are the imports
`kvmspec generate` needs before it can build (the build, the checks, Jinja):
one CPU's work, about a fifth of a run, that a second CPU can share. So, as
soon as a command that builds the whole model starts (it has imported only
the YAML reader), it reads the manifest and forks a reader:

- the reader parses the spec files at the end of the manifest's list (with
  the outlines and document layouts), a share of the bytes (SHARE), packs
  their data into tuples (load.pack) and hands them over through a pipe;
- meanwhile the first process imports the build and parses the other files,
  then unpacks the reader's share, which takes about a third of the time
  parsing it would; if the share has not come when it is needed, the first
  process does other work first (while_waiting: pipeline.py loads the
  renderers).

Once it has handed its files over, the reader runs the input checks of the
whole spec (schema, text, unlisted files: what a build without checks leaves
out), on the second CPU while the first process builds the model, and
answers with its exit status.

The data is the same either way (positions and spellings included; a test
compares every file). A reader that fails, for any reason (a file with an
error, a kill), hands over nothing, and the first process reads those files
itself: what is wrong with them is reported exactly as one process reports
it. A reader that gives no answer to the input checks has the first process
run them.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .diagnostics import SpecError
from . import timeline
from .load import pack, read_spec_file, unpack

# The reader's share of the bytes. The first process imports the build
# before it parses its own share; when it needs the reader's files and they
# have not come, it imports the renderers and loads the templates meanwhile
# (pipeline.py), then unpacks them (a third of the time parsing them would
# take). After handing over, the reader parses the first process's share again
# for the input checks, which should end before the model is built. Side by
# side, fresh runs of generate, medians: 50% against 60%, 25 runs each, from
# scratch 646.9 ms against 667.7, --check 572.1 against 587.0 (a slow spell of
# the machine); 60% against 70% and 80%, 21 runs each: model built at 218 ms
# against 234 and 263; 60% against 40% (before the renderers were imported
# while waiting), 25 runs each: the run done at 520 ms against 552, and 40%
# left the input checks running past the build.
SHARE = 0.5
MANIFEST = "kvmspec.yaml"


def display(root: Path, path: Path) -> str:
    """A path as diagnostics show it (as the Builder shows it): relative to the repository."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class ReadAhead:
    """A reader process, and what it hands over."""

    def __init__(self, pid: int, fd: int, manifest_path: Path, manifest: Any, share: tuple[str, ...]) -> None:
        self.pid, self.fd = pid, fd
        self.manifest_path, self.manifest = manifest_path, manifest
        self.share = share              # paths (as str) the reader reads
        self.data: Optional[dict[str, Any]] = None
        self.answer: Optional[int] = None   # the reader's exit status, once it has ended
        # Work the first process can do before it needs the reader's files, run if they are
        # not there yet when it does (pipeline.py: importing the renderers).
        self.while_waiting: Optional[Callable[[], None]] = None

    @classmethod
    def start(cls, root: Path) -> Optional["ReadAhead"]:
        """A reader for the spec under root, or None where it would not help
        (one CPU, no fork, a manifest that does not read or lists no files)."""
        if not hasattr(os, "fork") or cpus() < 2:
            return None
        spec_dir = root / "spec"
        manifest_path = spec_dir / MANIFEST
        try:
            manifest = read_spec_file(manifest_path, display(root, manifest_path))
            names = [*manifest["files"], *(h["outline"] for h in manifest["headers"] if "outline" in h),
                     *manifest.get("documents", ())]
            sizes = [(str(spec_dir / name), os.stat(spec_dir / name).st_size) for name in names]
        except (SpecError, OSError, KeyError, TypeError, AttributeError, ValueError):
            return None   # the build reads it, and says what is wrong
        total = sum(size for _, size in sizes)
        share: list[str] = []
        taken = 0
        for path, size in reversed(sizes):   # the last ones: read after the first process's own
            if taken >= SHARE * total:
                break
            share.append(path)
            taken += size
        if not share:
            return None
        try:
            read_end, write_end = os.pipe()
            pid = os.fork()
        except OSError:
            return None
        if pid == 0:   # the reader
            os.close(read_end)
            _read(root, share, write_end, manifest_path, manifest)   # does not return
        os.close(write_end)
        timeline.mark(f"reader started: {len(share)} of {len(sizes)} files, {taken * 100 // max(total, 1)}% of the bytes")
        return cls(pid, read_end, manifest_path, manifest, tuple(share))

    def take(self, path: Path) -> Optional[Any]:
        """The data of a file the reader read (waiting for it the first time), or None."""
        key = str(path)
        if key not in self.share:
            return None
        if self.data is None:
            self.data = self._collect()
        return self.data.pop(key, None)

    def _collect(self) -> dict[str, Any]:
        waiting, self.while_waiting = self.while_waiting, None
        if waiting is not None and not select.select([self.fd], [], [], 0)[0]:
            waiting()
        chunks = []
        try:
            while True:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.fd)
            self.fd = -1
        try:
            packed = marshal.loads(b"".join(chunks))
        except (EOFError, ValueError, TypeError):   # it failed, or was killed, before handing over
            return {}
        data = {path: unpack(data, shown) for path, (shown, data) in packed.items()}
        timeline.mark("reader's files unpacked")
        return data

    def input_is_clean(self) -> Optional[bool]:
        """The answer of the reader's input checks (waiting for it): True if they
        found nothing, False if they found something, None if it gave none."""
        if self.data is None:
            self.data = self._collect()
        if self.pid:
            _, status = os.waitpid(self.pid, 0)
            self.pid = 0
            self.answer = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        return {0: True, 1: False}.get(self.answer) if self.answer is not None else None

    def stop(self) -> None:
        """End the reader if it is still at work (the command failed, or no longer needs it)."""
        if self.pid:
            end_process(self.pid)
            self.pid = 0
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.data is None:
            self.data = {}


class _Own:
    """The reader's own files, for its input checks (a Builder's read_ahead)."""

    def __init__(self, manifest_path: Path, manifest: Any, data: dict[str, Any]) -> None:
        self.manifest_path, self.manifest, self.data = manifest_path, manifest, data

    def take(self, path: Path) -> Optional[Any]:
        return self.data.pop(str(path), None)


@contextmanager
def reading_ahead(root: Path, wanted: bool = True) -> Iterator[Optional[ReadAhead]]:
    """A reader for the spec under root while the block runs (None where it would not
    help, or is not `wanted`), ended with the block if it is still at work."""
    ahead = ReadAhead.start(root) if wanted else None
    try:
        yield ahead
    finally:
        if ahead is not None:
            ahead.stop()


def _read(root: Path, share: list[str], fd: int, manifest_path: Path, manifest: Any) -> None:
    """The reader: its share of the files, handed over; then the input checks of
    the whole spec (schema, text, unlisted files), answered by its exit status:
    0 nothing found, 1 something found (or a file of its share does not read)."""
    status = 2
    try:
        data = {}
        try:
            for path in share:
                data[path] = read_spec_file(Path(path), display(root, Path(path)))
            payload = memoryview(marshal.dumps({path: (display(root, Path(path)), pack(value))
                                                for path, value in data.items()}))
            timeline.mark("reader: its files read and packed")
            while payload:
                payload = payload[os.write(fd, payload):]
        except SpecError:   # the first process reads them all, and the checked build says why
            status = 1
            return
        finally:
            os.close(fd)   # the first process reads to the end of the pipe
        from .build import Builder
        builder = Builder(root, check_input=True, check_rules=False)
        builder.read_ahead = _Own(manifest_path, manifest, data)
        try:
            builder.read()
            status = 0
        except SpecError:
            status = 1
        timeline.mark("reader: input checked")
    except BaseException:   # anything else: the first process runs the checks itself
        status = 2
    finally:
        os._exit(status)


def end_process(pid: int) -> None:
    """Kill a child process that may still be at work, and reap it."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
