"""The generated C headers: they compile as uapi headers must, and agree with the kernel's.

- Each header compiles on its own, as the kernel's header test does it
  (`-std=c90 -Wall -Wextra -Werror`), with gcc, g++ (C++17), clang and gcc -m32.
- generated/tests/kvm_conformance.c (static asserts of every value, size and
  offset of the spec) compiles against the generated headers and against the
  system's, for x86_64 and i386; against a tampered copy it does not.
- generated/tests/kvm_abi_dump.c prints what the headers say; its output
  with the generated headers equals its output with the system's.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

GENERATED = REPO / "generated"
INCLUDES = [f"-I{GENERATED / 'include/uapi'}", f"-I{GENERATED / 'arch/x86/include/uapi'}"]
SYSTEM_HEADER = Path("/usr/include/linux/kvm.h")
VERSION_HEADER = Path("/usr/include/linux/version.h")

pytestmark = pytest.mark.slow


def compile_c(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


@functools.lru_cache(maxsize=None)
def compiler_problem(compiler: str, *flags: str) -> str | None:
    """Why this compiler cannot be used here, or None if it can."""
    if shutil.which(compiler) is None:
        return f"{compiler} is not installed"
    language = "c++" if compiler.endswith("++") else "c"
    probe = subprocess.run([compiler, *flags, "-x", language, "-fsyntax-only", "-"],
                           input="#include <linux/types.h>\n#include <stddef.h>\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"{compiler} {' '.join(flags)} cannot compile against the system headers " \
               f"(for -m32, install gcc-multilib): {probe.stderr.strip()[:200]}"
    return None


def need(compiler: str, *flags: str) -> None:
    problem = compiler_problem(compiler, *flags)
    if problem:
        pytest.skip(problem)


def system_version() -> str:
    if not SYSTEM_HEADER.exists() or not VERSION_HEADER.exists():
        pytest.skip("the kernel's uapi headers are not installed (Debian: linux-libc-dev)")
    match = re.search(r"#define LINUX_VERSION_CODE (\d+)", VERSION_HEADER.read_text())
    assert match, "LINUX_VERSION_CODE not found"
    return match.group(1)


COMPILERS = [
    pytest.param(["gcc", "-std=c90"], id="gcc-c90"),
    pytest.param(["gcc", "-std=c90", "-m32"], id="gcc-c90-m32"),
    pytest.param(["g++", "-std=c++17"], id="g++-c++17"),
    pytest.param(["clang", "-std=c90"], id="clang-c90"),
]


@pytest.mark.parametrize("header", ["linux/kvm.h", "asm/kvm.h"])
@pytest.mark.parametrize("command", COMPILERS)
def test_header_compiles_on_its_own(command, header, tmp_path):
    need(command[0], *command[1:])
    language = "c++" if command[0].endswith("++") else "c"
    source = tmp_path / f"use.{'cc' if language == 'c++' else 'c'}"
    source.write_text(f"#include <{header}>\nint kvmspec_unused;\n")
    result = compile_c([*command, "-Wall", "-Wextra", "-Werror", *INCLUDES, "-fsyntax-only",
                        str(source)], tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("bits", ["64", "32"])
def test_conformance_against_generated_headers(bits, tmp_path):
    need("gcc", f"-m{bits}")
    result = compile_c(["gcc", f"-m{bits}", "-std=gnu11", "-Wall", "-Wextra", "-Werror", *INCLUDES,
                        "-fsyntax-only", str(GENERATED / "tests/kvm_conformance.c")], tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("bits", ["64", "32"])
def test_conformance_against_system_headers(bits, tmp_path):
    version = system_version()
    need("gcc", f"-m{bits}")
    result = compile_c(["gcc", f"-m{bits}", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                        f"-DKVMSPEC_HEADERS_VERSION={version}", "-fsyntax-only",
                        str(GENERATED / "tests/kvm_conformance.c")], tmp_path)
    assert result.returncode == 0, result.stderr


def test_conformance_detects_a_wrong_header(tmp_path):
    need("gcc")
    tampered = tmp_path / "include"
    shutil.copytree(GENERATED / "include/uapi", tampered / "uapi")
    shutil.copytree(GENERATED / "arch/x86/include/uapi", tampered / "arch")
    asm = tampered / "arch/asm/kvm.h"
    asm.write_text(asm.read_text().replace("__u8 pad[120];", "__u8 pad[112];"))
    result = compile_c(["gcc", "-std=gnu11", f"-I{tampered / 'uapi'}", f"-I{tampered / 'arch'}",
                        "-fsyntax-only", str(GENERATED / "tests/kvm_conformance.c")], tmp_path)
    assert result.returncode != 0
    assert "sizeof(struct kvm_nested_state) is 128" in result.stderr


def dump(bits: str, include_args: list[str], defines: list[str], tmp_path: Path) -> list[str]:
    """The facts kvm_abi_dump.c reads from the headers, as clang lays them out (LLVM IR)."""
    from kvmspec.conformance import ir_facts
    from kvmspec.layout import I386, X86_64
    facts, problem = ir_facts(X86_64 if bits == "64" else I386, include_args, defines,
                              GENERATED / "tests/kvm_abi_dump.c")
    assert facts is not None, problem
    return [f"{key} {value}" if not key.split(" ", 1)[0].endswith("defined") else key
            for key, value in facts.items()]


@pytest.mark.parametrize("bits", ["64", "32"])
def test_generated_and_system_headers_agree(bits, tmp_path):
    version = system_version()
    need("clang", f"--target={'x86_64' if bits == '64' else 'i386'}-linux-gnu")
    # Both sides are asked about the system headers' release: items added later
    # are skipped on both. The generated headers are the newest API, so items
    # removed since that release are only in the system headers ("removed-"
    # lines); they are set aside and must be ones the spec marks as removed.
    ours = dump(bits, INCLUDES, [f"-DKVMSPEC_HEADERS_VERSION={version}", "-DKVMSPEC_NEWEST_API"],
                tmp_path)
    everything = dump(bits, [], [f"-DKVMSPEC_HEADERS_VERSION={version}"], tmp_path)
    theirs = [line for line in everything if not line.startswith("removed-")]
    removed = [line for line in everything if line.startswith("removed-")]
    assert not any(line.startswith("removed-") for line in ours)
    if int(version) < 0x60800:  # the KVM_TRC_* macros went away in 6.8
        assert "removed-value KVM_TRC_SHIFT 16" in removed
    assert len(ours) == len(theirs)
    assert ours == theirs
    expected_ioctl = "value KVM_GET_NESTED_STATE 3229658814"
    assert expected_ioctl in ours
    assert "size struct kvm_nested_state 128" in ours
    assert any(line.startswith("offset struct kvm_nested_state.hdr.vmx ") for line in ours)


def test_check_command_passes_on_this_repository():
    from conftest import run_kvmspec
    need("gcc")
    result = run_kvmspec("check", cwd=REPO)
    assert result.status == 0, result.out + result.err
    assert "ok      x86_64: generated headers match the spec" in result.out


def test_check_command_finds_a_kernel_tree_that_disagrees(tmp_path):
    from conftest import run_kvmspec
    system_version()
    need("gcc")
    tree = tmp_path / "include"
    shutil.copytree("/usr/include/linux", tree / "linux")
    shutil.copytree("/usr/include/x86_64-linux-gnu/asm", tree / "asm")
    shutil.copytree("/usr/include/asm-generic", tree / "asm-generic")
    kvm_h = tree / "linux/kvm.h"
    kvm_h.write_text(kvm_h.read_text().replace("#define KVM_CAP_NESTED_STATE 157",
                                               "#define KVM_CAP_NESTED_STATE 158"))
    result = run_kvmspec("check", "--system-include", str(tree), cwd=REPO)
    assert result.status == 1, result.out + result.err
    assert "failed  x86_64: system headers (6.1) match the spec" in result.out
    assert "KVM_CAP_NESTED_STATE is 157" in result.out
    assert "'value KVM_CAP_NESTED_STATE 157' != 'value KVM_CAP_NESTED_STATE 158'" in result.out


def test_headers_of_an_invalid_spec_report_what_validate_reports_and_write_nothing(scratch, tmp_path):
    """`kvmspec headers` builds without the checks and runs them beside the
    build and the rendering: a spec they reject still fails, with validate's
    diagnostics, and nothing is written."""
    from conftest import run_kvmspec
    nested = "spec/x86/nested-state.yaml"
    original = (REPO / nested).read_text()
    for old, new in (("value: 0x00000100", "value: 0x00000002"),                      # a model rule
                     ("(nested virtualization), the", "(nested */ virtualization), the")):  # a text check
        assert old in original
        scratch.write(nested, original.replace(old, new, 1))
        validate = run_kvmspec("--root", str(scratch.root), "validate")
        out = tmp_path / "out"
        result = run_kvmspec("--root", str(scratch.root), "headers", "--release", "6.1", "--arch", "x86",
                             "--out", str(out))
        assert validate.status == 1 and result.status == 1
        assert result.err == validate.err
        assert not out.exists()
