"""Checking generated/ with a C compiler: the headers against the spec and the kernel's.

Runs the conformance programs that the tests generator emits:
kvm_conformance.c (static asserts of the spec's numbers) against the
generated headers and against a system include tree, and kvm_abi_dump.c
against both, comparing what the two header trees say.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ABI_FLAGS = {"x86_64": "-m64", "i386": "-m32"}


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str        # ok | failed | skipped
    detail: str = ""


class NoCompiler(Exception):
    """No usable C compiler (an environment problem)."""


def generated_includes(root: Path) -> list[str]:
    gen = root / "generated"
    return [f"-I{gen / 'include/uapi'}", f"-I{gen / 'arch/x86/include/uapi'}"]


def headers_version(include_dir: Path) -> int | None:
    """LINUX_VERSION_CODE of an installed include tree, if it has one."""
    version = include_dir / "linux" / "version.h"
    if not version.is_file():
        return None
    match = re.search(r"#define\s+LINUX_VERSION_CODE\s+(\d+)", version.read_text())
    return int(match.group(1)) if match else None


def _compiler() -> str:
    cc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if cc is None:
        raise NoCompiler("no C compiler found (install gcc)")
    return cc


def _abi_usable(cc: str, abi: str, include_args: list[str]) -> str | None:
    probe = subprocess.run([cc, ABI_FLAGS[abi], *include_args, "-x", "c", "-fsyntax-only", "-"],
                           input="#include <linux/types.h>\n#include <stddef.h>\n#include <stdio.h>\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"{cc} {ABI_FLAGS[abi]} cannot build programs here (install gcc-multilib)"
    return None


def _first_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "error" in line]
    return (lines[0] if lines else stderr.strip().splitlines()[-1] if stderr.strip() else "").strip()


def run_conformance(root: Path, system_include: Path | None) -> list[Outcome]:
    """Every compiler-based check of generated/, for each ABI this machine can build."""
    cc = _compiler()
    gen_tests = root / "generated" / "tests"
    ours = generated_includes(root)
    version = headers_version(system_include) if system_include is not None else None
    # /usr/include is searched anyway; another tree (e.g. `make headers_install`
    # output) is put in front of it.
    theirs = [f"-I{system_include}"] if system_include not in (None, Path("/usr/include")) else []
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="kvmspec-check-") as tmp:
        for abi in ABI_FLAGS:
            problem = _abi_usable(cc, abi, [])
            if problem:
                outcomes.append(Outcome(f"{abi}: conformance", "skipped", problem))
                continue
            flags = [ABI_FLAGS[abi], "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
            result = subprocess.run([cc, *flags, *ours, "-fsyntax-only", str(gen_tests / "kvm_conformance.c")],
                                    capture_output=True, text=True)
            outcomes.append(Outcome(f"{abi}: generated headers match the spec",
                                    "ok" if result.returncode == 0 else "failed", _first_error(result.stderr)))
            if version is None:
                outcomes.append(Outcome(f"{abi}: system headers", "skipped",
                                        f"no kernel uapi headers with linux/version.h in {system_include}"))
                continue
            release = f"{version >> 16}.{(version >> 8) & 0xFF}"
            result = subprocess.run([cc, *flags, *theirs, f"-DKVMSPEC_HEADERS_VERSION={version}",
                                     "-fsyntax-only", str(gen_tests / "kvm_conformance.c")],
                                    capture_output=True, text=True)
            outcomes.append(Outcome(f"{abi}: system headers ({release}) match the spec",
                                    "ok" if result.returncode == 0 else "failed", _first_error(result.stderr)))
            dumps = []
            # Both sides skip what is newer than the system headers.
            defines = [f"-DKVMSPEC_HEADERS_VERSION={version}"]
            for name, include_args in (("generated", ours), ("system", theirs)):
                exe = Path(tmp) / f"dump-{abi}-{name}"
                build = subprocess.run([cc, ABI_FLAGS[abi], "-std=gnu11", *include_args, *defines, "-o", str(exe),
                                        str(gen_tests / "kvm_abi_dump.c")], capture_output=True, text=True)
                if build.returncode != 0:
                    dumps.append(None)
                    outcomes.append(Outcome(f"{abi}: ABI dump with {name} headers", "failed",
                                            _first_error(build.stderr)))
                    continue
                dumps.append(subprocess.run([str(exe)], capture_output=True, text=True).stdout.splitlines())
            if None not in dumps:
                differences = [f"{a!r} != {b!r}" for a, b in zip(*dumps) if a != b]
                if len(dumps[0]) != len(dumps[1]):
                    differences.append(f"{len(dumps[0])} facts with generated headers, {len(dumps[1])} with system")
                outcomes.append(Outcome(f"{abi}: generated and system ({release}) headers agree on "
                                        f"{len(dumps[0])} facts", "failed" if differences else "ok",
                                        "; ".join(differences[:5])))
    return outcomes
