"""Reading the spec in two processes.

libyaml parses a spec file in C, but turning its nodes into data is Python,
as are the imports `kvmspec generate` needs before it can read (the build,
the checks, Jinja): one CPU's work, about a third of a run, that a second CPU
can share. So, as soon as a command that builds the whole model starts (it
has imported only the YAML reader), it reads the manifest and forks a reader:

- the reader parses the spec files at the end of the manifest's list (with
  the outlines and document layouts), 40% of the bytes, packs their data
  into tuples (load.pack) and hands them over through a pipe;
- meanwhile the first process imports the rest of kvmspec and parses the
  other files, then unpacks the reader's share, which takes 40% of the time
  parsing it would.

The data is the same either way (positions and spellings included; a test
compares every file). A reader that fails, for any reason (a file with an
error, a kill), hands over nothing, and the first process reads those files
itself: what is wrong with them is reported exactly as one process reports
it.
"""

from __future__ import annotations

import marshal
import os
import signal
from pathlib import Path
from typing import Any, Optional

from .diagnostics import SpecError
from . import timeline
from .load import pack, read_spec_file, unpack

# The reader's share of the bytes. Packing a file's data takes the reader
# about 40% of the time parsing it did, and unpacking the first process 40%:
# with the imports the first process does meanwhile, the two are done at
# about the same time with 40% (KVMSPEC_TIMELINE=1, 10 runs each: the spec
# was read at 171 ms without a reader, 149 ms with 35%, 150 ms with 50%,
# 179 ms with 60%).
SHARE = 0.4
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
            _read(root, share, write_end)   # does not return
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
        chunks = []
        try:
            while True:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.fd)
            _, status = os.waitpid(self.pid, 0)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            return {}
        try:
            packed = marshal.loads(b"".join(chunks))
        except (EOFError, ValueError, TypeError):
            return {}
        data = {path: unpack(data, shown) for path, (shown, data) in packed.items()}
        timeline.mark("reader's files unpacked")
        return data

    def stop(self) -> None:
        """End the reader if its data is not wanted (the command failed before reading)."""
        if self.data is None:
            self.data = {}
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(self.fd)
            os.waitpid(self.pid, 0)


def _read(root: Path, share: list[str], fd: int) -> None:
    status = 1
    try:
        packed = {}
        for path in share:
            shown = display(root, Path(path))
            packed[path] = (shown, pack(read_spec_file(Path(path), shown)))
        payload = memoryview(marshal.dumps(packed))
        timeline.mark("reader: its files read and packed")
        while payload:
            payload = payload[os.write(fd, payload):]
        status = 0
    except BaseException:   # an error in a file, or anything else: the first process reads them all
        pass
    finally:
        os._exit(status)


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
