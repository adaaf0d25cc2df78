"""Writing generated/ all at once, and telling whether it is stale.

A Rewrite writes the files into a fresh directory beside generated/ and then
swaps the two with one renameat2(RENAME_EXCHANGE): readers see the old tree
or the new one, never a mix, and a failure or a kill before the swap leaves
generated/ as it was. The files may come in shares, each written by the
process that rendered it (kvmspec generate renders in two). Concurrent runs
are serialised with flock on the repository directory.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import timeline
from .valuetype import value_type

GENERATED = "generated"
TEMP_PREFIX = ".generated.tmp-"
OLD_PREFIX = ".generated.old-"
IGNORED_DIRS = {"__pycache__", ".pytest_cache"}
IGNORED_SUFFIXES = (".pyc", ".pyo")
RENAME_EXCHANGE = 2
AT_FDCWD = -100


@value_type
class Stale:
    path: str      # relative to the repository root
    reason: str    # missing | differs | extra


def existing_files(directory: Path) -> dict[str, Path]:
    """Files under directory (relative path -> path), ignoring caches."""
    found: dict[str, Path] = {}
    if not directory.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS and not d.endswith(".egg-info"))
        for name in filenames:
            if name.endswith(IGNORED_SUFFIXES):
                continue
            full = Path(dirpath) / name
            found[full.relative_to(directory).as_posix()] = full
    return found


def _same_content(path: Path, data: bytes) -> bool:
    """Whether path is a regular file holding exactly data (never follows links or opens FIFOs)."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:   # unreadable: it will be replaced
        return False


def _safe_relative(rel: str) -> bool:
    parts = rel.split("/")
    return not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


@contextmanager
def repository_lock(root: Path, shared: bool = False) -> Iterator[None]:
    """Hold an flock on the repository directory (exclusive unless `shared`)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False if the system cannot."""
    import ctypes   # only needed here, when generated/ exists

    try:
        # The C library is already loaded into the interpreter; find_library
        # would run ldconfig and a compiler to find it again.
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove_tree(path: Path) -> None:
    """rmtree that also empties read-only directories (the tree is ours to delete)."""
    def retry(function, name, _exc) -> None:
        try:
            os.chmod(os.path.dirname(name), 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
                shutil.rmtree(name, ignore_errors=True)
            else:
                function(name)
        except OSError:
            pass

    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        elif sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=retry)
        else:
            shutil.rmtree(path, onerror=retry)
    except OSError:
        pass


def _remove_leftovers(root: Path) -> None:
    """Delete temporary trees of runs that were killed (we hold the lock).

    A run killed between the two renames of the fallback swap leaves no
    generated/ but the complete old tree: put that back first.
    """
    target = root / GENERATED
    entries = sorted(root.iterdir())
    if not os.path.lexists(target):
        old = [e for e in entries if e.name.startswith(OLD_PREFIX) and e.is_dir() and not e.is_symlink()]
        if old:
            os.rename(old[0], target)
    for entry in entries:
        if entry.name.startswith((TEMP_PREFIX, OLD_PREFIX)) and os.path.lexists(entry):
            _remove_tree(entry)


class _Sink:
    """Where generated files go, a share at a time: put() may run in a forked
    child (it returns plain data, which marshal carries), take() runs in the
    process that holds the sink and gets every share's report, its own too."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.present: dict[str, Path] = {}
        self.paths: set[str] = set()
        self.changes: list[Stale] = []

    def put(self, files: dict[str, str]) -> tuple:   # pragma: no cover - see the subclasses
        raise NotImplementedError

    def take(self, report: tuple) -> None:
        changes, paths = report[0], report[1]
        for path in paths:
            if path in self.paths:
                raise AssertionError(f"two generators both write {path}")
        self.paths.update(paths)
        self.changes += [Stale(path, reason) for path, reason in changes]

    def stale(self) -> list[Stale]:
        """What differs, by path, then what generated/ holds that nothing generates."""
        return sorted(self.changes, key=lambda s: s.path) + \
            [Stale(f"{GENERATED}/{rel}", "extra") for rel in sorted(set(self.present) - self.paths)]

    def _compare(self, files: dict[str, str]) -> list[tuple[str, str]]:
        changes = []
        for rel, text in files.items():
            path = self.present.get(rel)
            if path is None:
                changes.append((f"{GENERATED}/{rel}", "missing"))
            elif not _same_content(path, text.encode("utf-8")):
                changes.append((f"{GENERATED}/{rel}", "differs"))
        return changes


class Check(_Sink):
    """Comparing generated/ with what the spec produces, under a shared lock (a
    concurrent generate cannot swap the tree mid-read)."""

    def __enter__(self) -> "Check":
        self._lock = repository_lock(self.root, shared=True)
        self._lock.__enter__()
        self.present = existing_files(self.root / GENERATED)
        return self

    def __exit__(self, *exc) -> None:
        self._lock.__exit__(*exc)

    def put(self, files: dict[str, str]) -> tuple:
        return self._compare(files), sorted(files)


class Rewrite(_Sink):
    """A rewrite of generated/, under the repository's lock.

    Each share of the files is written into a staging directory beside
    generated/ by the process that rendered it (two processes write at once),
    unless nothing in that share changed: then it waits in memory, and is
    written only if another share changed. commit() swaps the staging
    directory in with one renameat2(RENAME_EXCHANGE), when anything changed;
    leaving the `with` block without a commit (an error, a kill) leaves
    generated/ as it was and removes the staging directory."""

    def __enter__(self) -> "Rewrite":
        self._lock = repository_lock(self.root)
        self._lock.__enter__()
        try:
            _remove_leftovers(self.root)
            self.present = existing_files(self.root / GENERATED)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        # made when the first share is written, by whichever process writes it
        self.staging = self.root / (TEMP_PREFIX + os.urandom(6).hex())
        self.waiting: dict[str, str] = {}
        return self

    def __exit__(self, *exc) -> None:
        try:
            if os.path.lexists(self.staging):
                _remove_tree(self.staging)
        finally:
            self._lock.__exit__(*exc)

    def put(self, files: dict[str, str]) -> tuple:
        unsafe = [rel for rel in files if not _safe_relative(rel)]
        if unsafe:  # the spec checks make this impossible; never write outside generated/
            raise ValueError(f"refusing to write outside {GENERATED}/: {unsafe[0]!r}")
        changes = self._compare(files)
        if changes:
            self._write(files)
        return changes, sorted(files), None if changes else files

    def take(self, report: tuple) -> None:
        super().take(report)
        if report[2]:
            self.waiting.update(report[2])

    def _write(self, files: dict[str, str]) -> None:
        staging = self.staging
        try:
            os.mkdir(staging, 0o700)
        except FileExistsError:
            pass
        for directory in sorted({os.path.dirname(rel) for rel in files} - {""}):
            os.makedirs(staging / directory, exist_ok=True)
        for rel, text in files.items():
            (staging / rel).write_bytes(text.encode("utf-8"))

    def commit(self) -> list[Stale]:
        """Swap the new tree in if anything changed; what changed."""
        changes = self.stale()
        if not changes:
            return []
        self._write(self.waiting)
        staging, target = self.staging, self.root / GENERATED
        if not os.path.lexists(staging):   # nothing generated, and generated/ had files
            os.mkdir(staging, 0o700)
        os.chmod(staging, 0o755)
        if target.exists():
            if not _exchange(staging, target):
                old = self.root / (OLD_PREFIX + staging.name[len(TEMP_PREFIX):])
                os.rename(target, old)
                os.rename(staging, target)
                self.staging = old   # removed on leaving the with block
        else:
            os.rename(staging, target)
        _fsync_dir(self.root)
        timeline.mark("generated/ swapped in")
        return changes


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
