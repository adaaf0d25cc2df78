"""Nothing an output needs can be missing: the real spec with one piece taken out.

Each case deletes one key (and its value) from one spec file, as an author's
slip would: the `value:` of a constant, the `array:` of a field, the `type:`
of an ioctl, a `c_guard:`, an `includes:` of a header... Then either
validation rejects the spec, with every problem at a real `path:line:col`
and no other exception, or the spec is still valid and then everything
printed from it must hold together:

- each generated header compiles on its own (C90, -Wall -Wextra -Werror);
- kvm_conformance.c compiles against them: every value, size and offset the
  model computed is what the compiler sees;
- kvm_abi_dump.c, built with them, prints what the headers say, and the
  generated Python bindings say the same for every value, size, alignment
  and offset.

Removals are grouped by shape (tests/removals.py); a run takes one of each
of a seeded sample of shapes, plus the pieces that size or number something.
KVMSPEC_REMOVALS=all takes one of every shape (about 230, a few minutes);
KVMSPEC_REMOVALS=N a sample of N shapes; KVMSPEC_REMOVAL_SEED another sample;
KVMSPEC_REMOVALS="shape:const value,ioctl type" every removal of those shapes.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kvmspec.build as build
import kvmspec.build.reading as build_reading
from conftest import REPO
from kvmspec import emit
from kvmspec.diagnostics import SpecError
from removals import Removal, removals

SEED = int(os.environ.get("KVMSPEC_REMOVAL_SEED", "16"))
SAMPLE = os.environ.get("KVMSPEC_REMOVALS", "28")

# Pieces that size or number something an output prints: always taken out.
NUMBERS = ("const value", "struct fields[].array", "struct fields[].type", "struct fields[].bits",
           "ioctl type", "ioctl nr", "ioctl dir", "enum values[].value", "flags values[].value",
           "capability value", "exit value", "struct fields[].c_guard",
           "manifest headers[].includes", "const c_guard", "struct abi_exemption")
# The issue's example: the constant that sizes kvm_xcrs.xcrs.
PINNED = {"const value": "KVM_MAX_XCRS.value"}

GENERATORS = tuple(g for g in emit.GENERATORS if g.name in ("c_header", "python", "tests"))
DIAGNOSTIC = re.compile(r"(spec/[\w/.-]+\.yaml):(\d+):(\d+): error: \S")


def chosen() -> list[Removal]:
    everything = removals(REPO / "spec")
    by_shape: dict[str, list[Removal]] = {}
    for r in everything:
        by_shape.setdefault(r.shape, []).append(r)
    rng = random.Random(SEED)
    if SAMPLE.startswith("shape:"):   # every removal of the shapes named
        return [r for shape in SAMPLE[len("shape:"):].split(",") for r in by_shape.get(shape.strip(), ())]
    shapes = sorted(by_shape)
    if SAMPLE != "all":
        rest = [s for s in shapes if s not in NUMBERS]
        shapes = [s for s in NUMBERS if s in by_shape] + sorted(rng.sample(rest, min(int(SAMPLE), len(rest))))
    picked = []
    for shape in shapes:
        group = by_shape[shape]
        pinned = [r for r in group if r.where == PINNED.get(shape)]
        picked.append(pinned[0] if pinned else rng.choice(group))
    return picked


CASES = chosen()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A copy of the repository's spec; the real files are parsed once and kept."""
    root = tmp_path_factory.mktemp("removal")
    shutil.copytree(REPO / "spec", root / "spec")
    return root


@pytest.fixture(scope="module", autouse=True)
def parsed_once():
    """Spec files whose text is unchanged are parsed once for all cases."""
    read = build_reading.read_spec_file
    originals = {str(p.relative_to(REPO / "spec")): p.read_bytes() for p in (REPO / "spec").rglob("*.yaml")}
    cache: dict[str, object] = {}

    def cached(path: Path, display: str):
        rel = display.removeprefix("spec/")
        if originals.get(rel) != path.read_bytes():
            return read(path, display)
        if rel not in cache:
            cache[rel] = read(path, display)
        return cache[rel]

    build_reading.read_spec_file = cached
    yield
    build_reading.read_spec_file = read


@pytest.mark.skipif(SAMPLE.startswith("shape:"), reason="KVMSPEC_REMOVALS names the shapes to take")
def test_the_sample_covers_the_numbers_and_the_issues_example():
    shapes = {r.shape for r in CASES}
    assert set(NUMBERS) <= shapes
    assert any(r.where == "KVM_MAX_XCRS.value" for r in CASES)
    assert len(CASES) >= len(NUMBERS) + min(int(SAMPLE) if SAMPLE != "all" else 28, 28)


@pytest.mark.parametrize("removal", CASES, ids=[r.shape.replace(" ", ":") for r in CASES])
def test_a_missing_piece_is_an_error_or_changes_nothing_that_matters(removal, scratch, tmp_path):
    path = scratch / "spec" / removal.file
    original = path.read_text()
    path.write_text(removal.apply(original))
    try:
        try:
            model = build.load_model(scratch)
        except SpecError as exc:
            assert exc.diagnostics, removal
            for d in exc.diagnostics:
                assert_precise(str(d), scratch)
            return
        files = emit.render(model, GENERATORS)
    finally:
        path.write_text(original)
    out = tmp_path / "generated"
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    assert_outputs_agree(out, str(removal))


def assert_precise(text: str, root: Path) -> None:
    """A diagnostic names a spec file and a position inside it."""
    m = DIAGNOSTIC.match(text)
    assert m, text
    lines = (root / m.group(1)).read_text().count("\n") + 1
    assert 1 <= int(m.group(2)) <= lines and int(m.group(3)) >= 1, text


@functools.lru_cache(maxsize=1)
def compiler() -> str:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (Debian: apt-get install gcc)")
    return "gcc"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_outputs_agree(out: Path, case: str) -> None:
    cc = compiler()
    includes = [f"-I{out / 'include/uapi'}", f"-I{out / 'arch/x86/include/uapi'}"]
    source = out / "use.c"
    source.write_text("#include <linux/kvm.h>\n#include <asm/kvm.h>\nint kvmspec_unused;\n")
    result = run([cc, "-std=c90", "-Wall", "-Wextra", "-Werror", *includes, "-fsyntax-only", str(source)], out)
    assert result.returncode == 0, f"{case}: the headers do not compile\n{result.stderr[:2000]}"
    result = run([cc, "-std=gnu11", *includes, "-fsyntax-only", str(out / "tests/kvm_conformance.c")], out)
    assert result.returncode == 0, f"{case}: the headers disagree with the model\n{result.stderr[:2000]}"
    # the dump's facts as clang lays them out for x86_64 (read from LLVM IR)
    from kvmspec.conformance import ir_facts
    from kvmspec.layout import X86_64
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (Debian: apt-get install clang)")
    read, problem = ir_facts(X86_64, includes, ["-DKVMSPEC_NEWEST_API"], out / "tests/kvm_abi_dump.c")
    assert read is not None, f"{case}: the ABI dump does not build\n{problem}"
    facts = [f"{key} {value}" for key, value in read.items() if not key.startswith(("defined", "removed-"))]
    bindings = load_bindings(out / "python/kvm_uapi")
    checked, differences = compare(facts, bindings)
    assert not differences, f"{case}: headers and bindings differ: " + "; ".join(differences[:10])
    assert checked > 1000, f"{case}: only {checked} facts compared"


def load_bindings(package: Path):
    """The generated kvm_uapi package under a name of its own (each case has its own)."""
    name = f"kvm_uapi_removal_{abs(hash(str(package)))}"
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
    return module


def compare(facts: list[str], bindings) -> tuple[int, list[str]]:
    """How many of the dump's facts the bindings state equally, and those they do not."""
    checked, differences = 0, []
    for line in facts:
        what, *rest = line.split()
        if what == "value":
            name, number = rest[0], int(rest[1])
            ours = getattr(bindings, name, None)
            got = None if ours is None else int(ours)
        elif what in ("size", "align", "offset", "member_size"):
            record, _, member = rest[1].partition(".")
            number = int(rest[2])
            cls = getattr(bindings, record, None)
            if cls is None:
                differences.append(f"{rest[0]} {record} is not in the bindings")
                continue
            if member and "." in member:
                continue   # a member of an inline record: its class is private
            if what == "size":
                got = ctypes.sizeof(cls)
            elif what == "align":
                got = ctypes.alignment(cls)
            else:
                descriptor = getattr(cls, member, None)
                got = None if descriptor is None else (descriptor.offset if what == "offset" else descriptor.size)
        else:
            continue
        if got != number:
            differences.append(f"{line!r}, bindings: {got}")
        checked += 1
    return checked, differences
