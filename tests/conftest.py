"""Shared fixtures: a scratch copy of the repository's spec, and ways to run kvmspec."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvmspec.cli import main

REPO = Path(__file__).resolve().parent.parent


def same_data(a, b) -> bool:
    """Equal spec data (load.Map, Seq, Int, scalars), and equal in what
    diagnostics and outputs read from it: positions, styles, spellings."""
    from kvmspec.load import Int, Map, Seq
    if type(a) is not type(b):
        return False
    if isinstance(a, Map):
        return list(a) == list(b) and a.path == b.path and a.mark == b.mark and \
            all(a.mark_of(k) == b.mark_of(k) and a.key_mark(k) == b.key_mark(k) and a.style_of(k) == b.style_of(k)
                and same_data(a[k], b[k]) for k in a)
    if isinstance(a, Seq):
        return len(a) == len(b) and a.path == b.path and a.mark == b.mark and \
            all(a.mark_of(i) == b.mark_of(i) and same_data(x, y) for i, (x, y) in enumerate(zip(a, b)))
    if isinstance(a, Int):
        return int(a) == int(b) and a.text == b.text
    return a == b


@dataclass
class Result:
    status: int
    out: str
    err: str


class Scratch:
    """A throw-away kvmspec repository holding a copy of the real spec."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(REPO / "spec", root / "spec")

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> str:
        return self.path(rel).read_text()

    def write(self, rel: str, text: str) -> None:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def replace(self, rel: str, old: str, new: str) -> None:
        text = self.read(rel)
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
        self.write(rel, text.replace(old, new))

    def line_of(self, rel: str, needle: str) -> int:
        """1-based line of the first occurrence of needle."""
        text = self.read(rel)
        index = text.index(needle)
        return text.count("\n", 0, index) + 1

    def column_of(self, rel: str, needle: str) -> int:
        text = self.read(rel)
        index = text.index(needle)
        return index - (text.rfind("\n", 0, index) + 1) + 1

    def run(self, *args: str, capsys) -> Result:
        status = main(["--root", str(self.root), *args])
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    def tree(self) -> dict[str, bytes]:
        gen = self.root / "generated"
        return {p.relative_to(gen).as_posix(): p.read_bytes()
                for p in sorted(gen.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return Scratch(tmp_path / "repo")


def run_kvmspec(*args: str, cwd: Path | None = None, env: dict | None = None) -> Result:
    """Run kvmspec as a separate process, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "kvmspec", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The Sphinx site, built once per test session with -W -n (warnings are
    errors, every cross-reference must resolve)."""
    out = tmp_path_factory.mktemp("html")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-b", "html",
                             str(REPO / "docs"), str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr
    return out


@pytest.fixture
def output_dir(request) -> Path:
    """A folder that keeps what a test leaves for people to look at
    (tests/_output/<test name>/, or under $KVMSPEC_TEST_OUTPUT)."""
    base = Path(os.environ.get("KVMSPEC_TEST_OUTPUT", REPO / "tests/_output"))
    folder = base / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def pytest_terminal_summary(terminalreporter):
    """How many fuzz cases ran (tests/test_fuzz.py), when they did."""
    import sys
    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and fuzz.FUZZ_COUNTS.get("cases"):
        terminalreporter.write_sep("-", "fuzz cases")
        terminalreporter.write_line(fuzz.summary())


def kvm_unusable(device: str = "/dev/kvm") -> str | None:
    """Why the KVM device cannot be used here, or None when it can."""
    if not os.path.exists(device):
        return f"{device} does not exist on this host"
    if not os.access(device, os.R_OK | os.W_OK):
        return f"{device} is not readable and writable by this user"
    return None


needs_kvm = pytest.mark.skipif(kvm_unusable() is not None, reason=str(kvm_unusable()))


def assert_two_processes_report_as_one(root: Path) -> None:
    """generate with two processes raises the SpecError of a checked build in one
    process, diagnostic for diagnostic (and there is one)."""
    from kvmspec import pipeline
    from kvmspec.build import load_model
    from kvmspec.diagnostics import SpecError
    with pytest.raises(SpecError) as serial:
        load_model(root)
    with pytest.raises(SpecError) as parallel:
        pipeline.generate_files(root, parallel=True)
    assert [str(d) for d in parallel.value.diagnostics] == [str(d) for d in serial.value.diagnostics]
    assert serial.value.diagnostics
