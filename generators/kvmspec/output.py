"""Writing generated/ all at once, and telling whether it is stale.

`write_generated` renders into a fresh directory beside generated/ and then
swaps the two with one renameat2(RENAME_EXCHANGE): readers see the old tree
or the new one, never a mix, and a failure or a kill before the swap leaves
generated/ as it was. Concurrent runs are serialised with flock on the
repository directory.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

GENERATED = "generated"
TEMP_PREFIX = ".generated.tmp-"
OLD_PREFIX = ".generated.old-"
IGNORED_DIRS = {"__pycache__", ".pytest_cache"}
IGNORED_SUFFIXES = (".pyc", ".pyo")
RENAME_EXCHANGE = 2
AT_FDCWD = -100


@dataclass(frozen=True)
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


def stale_files(root: Path, files: dict[str, str]) -> list[Stale]:
    """What differs between generated/ and what the spec produces."""
    directory = root / GENERATED
    present = existing_files(directory)
    stale = []
    for rel, text in files.items():
        path = present.get(rel)
        if path is None:
            stale.append(Stale(f"{GENERATED}/{rel}", "missing"))
        elif path.read_bytes() != text.encode("utf-8"):
            stale.append(Stale(f"{GENERATED}/{rel}", "differs"))
    for rel in sorted(set(present) - set(files)):
        stale.append(Stale(f"{GENERATED}/{rel}", "extra"))
    return stale


@contextmanager
def repository_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive flock on the repository directory."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False if the system cannot."""
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


def _remove_leftovers(root: Path) -> None:
    """Delete temporary trees of runs that were killed (we hold the lock)."""
    for entry in root.iterdir():
        if entry.name.startswith((TEMP_PREFIX, OLD_PREFIX)) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def write_generated(root: Path, files: dict[str, str]) -> list[Stale]:
    """Make generated/ hold exactly `files`; return what changed."""
    with repository_lock(root):
        _remove_leftovers(root)
        changes = stale_files(root, files)
        if not changes:
            return []
        target = root / GENERATED
        staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=root))
        try:
            for rel, text in files.items():
                path = staging / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode("utf-8"))
            os.chmod(staging, 0o755)
            if target.exists():
                if not _exchange(staging, target):
                    old = root / (OLD_PREFIX + staging.name[len(TEMP_PREFIX):])
                    os.rename(target, old)
                    os.rename(staging, target)
                    staging = old
            else:
                os.rename(staging, target)
                staging = None  # type: ignore[assignment]
        finally:
            if staging is not None and staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        _fsync_dir(root)
        return changes


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
