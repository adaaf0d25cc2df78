"""Spec revisions to compare: a git revision's spec/ written out to a directory."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path
from typing import Optional


class RevisionError(Exception):
    """A git revision that cannot be read (exit status 2)."""


def git_root(path: Path) -> Optional[Path]:
    result = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                            capture_output=True, text=True)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def extract_revision(root: Path, rev: str, dest: Path) -> Path:
    """Write spec/ as it is at `rev` of the repository containing `root` into dest; return dest."""
    top = git_root(root)
    if top is None:
        raise RevisionError(f"{root} is not in a git repository, so {rev!r} cannot be a revision")
    check = subprocess.run(["git", "-C", str(top), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RevisionError(f"{rev!r} is neither a directory nor a git revision of {top}")
    prefix = root.resolve().relative_to(top.resolve()).as_posix()
    spec_path = f"{prefix}/spec" if prefix != "." else "spec"
    archive = subprocess.run(["git", "-C", str(top), "archive", "--format=tar", check.stdout.strip(), spec_path],
                             capture_output=True)
    if archive.returncode != 0:
        raise RevisionError(f"revision {rev} has no {spec_path}/: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        for member in tar.getmembers():
            if not (member.isfile() or member.isdir()):
                continue
            rel = Path(member.name).relative_to(prefix) if prefix != "." else Path(member.name)
            target = dest / rel
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    return dest
