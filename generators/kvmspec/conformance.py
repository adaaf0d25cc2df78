"""Checking generated/ with a C compiler: the headers against the spec and the kernel's.

Runs the conformance programs that the tests generator emits:
kvm_conformance.c (static asserts of the spec's numbers) against the
generated headers and against a system include tree, and kvm_abi_dump.c
against both, comparing what the two header trees say.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # annotations only
    from .model import Version

ABI_FLAGS = {"x86_64": "-m64", "i386": "-m32"}
FACT = re.compile(r"^@kvmspec_fact_([0-9a-f]+) = .*?constant i64 (-?\d+)", re.M)


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str        # ok | failed | skipped
    detail: str = ""
    count: int = 0     # differences found
    details: tuple[str, ...] = ()


class NoCompiler(Exception):
    """No usable C compiler (an environment problem)."""


def generated_includes(root: Path, arch_dir: str = "arch/x86") -> list[str]:
    gen = root / "generated"
    return [f"-I{gen / 'include/uapi'}", f"-I{gen / arch_dir / 'include/uapi'}"]


def arch_dir(header_path: str) -> str:
    """arch/arm64 for arch/arm64/include/uapi/asm/kvm.h."""
    return header_path.split("/include/uapi/", 1)[0]


# Versioned clangs to try when the default one lacks a target (Debian 12's clang 14 has no LoongArch).
_CLANG_NAMES = ("clang", *(f"clang-{v}" for v in range(22, 15, -1)))


@functools.lru_cache(maxsize=None)
def _clang(triple: str | None = None) -> str:
    """The clang to use: the default one, or for `triple` the first installed one that knows it."""
    found = [cc for cc in (shutil.which(name) for name in _CLANG_NAMES) if cc is not None]
    if not found:
        raise NoCompiler("clang is needed to read headers of other architectures (install clang)")
    if triple is None:
        return found[0]
    for cc in found:
        probe = subprocess.run([cc, f"--target={triple}", "-E", "-x", "c", os.devnull],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            return cc
    raise NoCompiler(f"no installed clang knows the target {triple} (install a newer clang, e.g. clang-16)")


def base_include(abi) -> Path | None:
    """Debian's cross headers of the ABI (or of its stand-in), if installed."""
    for name in (abi.debian, abi.stand_in):
        if name and (Path("/usr") / name / "include" / "asm").is_dir():
            return Path("/usr") / name / "include"
    return None


def cross_base(abi) -> list[str]:
    """The include flags that give clang --target the ABI's own C and uapi base headers
    (linux/types.h, asm/ioctl.h, asm/ptrace.h ...): Debian's cross headers."""
    if abi.arch == "x86":
        return []   # the machine's own /usr/include
    resource = _resource_dir(_clang(abi.triple))
    base = base_include(abi)
    if base is None:
        # No cross headers: the tree being compiled must bring its own asm/ headers.
        return ["-nostdinc", f"-isystem{resource}/include"]
    return ["-nostdinc", f"-isystem{resource}/include", f"-isystem{base}"]


@functools.lru_cache(maxsize=None)
def _resource_dir(cc: str) -> str:
    """The builtin headers (stddef.h ...) of the clang `cc`."""
    return subprocess.run([cc, "-print-resource-dir"], capture_output=True, text=True).stdout.strip()


def ir_facts(abi, include_args: list[str], defines: list[str], source: Path) -> tuple[dict[str, str] | None, str]:
    """The facts of kvm_abi_dump.c as clang lays them out for `abi`, read from LLVM IR
    (no program is run, so any architecture works)."""
    try:
        base = cross_base(abi)
    except FileNotFoundError as exc:
        return None, str(exc)
    build = subprocess.run([_clang(abi.triple), f"--target={abi.triple}", "-std=gnu11", "-w", *include_args, *base, *defines,
                            "-S", "-emit-llvm", "-o", "-", str(source)], capture_output=True, text=True)
    if build.returncode != 0:
        return None, _first_error(build.stderr)
    facts = {}
    for hexkey, value in FACT.findall(build.stdout):
        key = bytes.fromhex(hexkey).decode()
        facts[key] = "yes" if key.startswith(("defined ", "removed-defined ")) else str(int(value) % (1 << 64))
    return facts, ""


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


LINE_ERROR = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):\d+: (?:fatal )?error: (?P<message>.*)$", re.M)


def tolerant_facts(abi, include_args: list[str], source: Path) -> tuple[dict[str, str] | None, str, list[str]]:
    """ir_facts, but facts whose lines do not compile against the headers are set aside
    (and reported) instead of voiding the whole comparison: an old tree that lacks a
    field's parent, or a release whose uapi header leaked a kernel-internal macro."""
    text = source.read_text()
    lines = text.splitlines()
    dropped: list[str] = []
    for _ in range(4):
        facts, problem = ir_facts(abi, [*include_args, "-ferror-limit=0"], [], source)
        if facts is not None:
            return facts, "", dropped
        errors = [m for m in LINE_ERROR.finditer(problem_text(abi, include_args, source))
                  if Path(m["file"]).name == source.name]
        if not errors:
            return None, problem, dropped
        for m in errors:
            index = int(m["line"]) - 1
            if lines[index].startswith("KVMSPEC_FACT("):
                key = lines[index].split('"')[1]
                dropped.append(f"{key}: {m['message']}")
                lines[index] = "/* dropped: does not compile */"
            else:
                return None, problem, dropped
        source.write_text("\n".join(lines) + "\n")
    return None, "too many lines do not compile", dropped


def problem_text(abi, include_args: list[str], source: Path) -> str:
    """clang's every error message for the dump source."""
    build = subprocess.run([_clang(abi.triple), f"--target={abi.triple}", "-std=gnu11", "-w", "-ferror-limit=0",
                            *include_args, *cross_base(abi), "-fsyntax-only", str(source)],
                           capture_output=True, text=True)
    return build.stderr


def known_header_defects(model, arch: str, release) -> dict[str, str]:
    """The values whose kernel header at `release` is recorded (header_defects:) as not compiling
    in userspace: name -> a line that says what the kernel wrote and why it failed."""
    from .model import Constant, ValueSet
    out: dict[str, str] = {}
    for item in model.items:
        if arch not in item.active_on:
            continue
        entries = [item] if isinstance(item, Constant) else list(item.values) if isinstance(item, ValueSet) else []
        for entry in entries:
            for defect in getattr(entry, "header_defects", ()):
                if defect.covers(release):
                    out.setdefault(entry.name, f"{entry.name} was written {defect.wrote} "
                                               f"({defect.since.release} to before {defect.until.release}): {defect.reason}")
    return out


def compare_view(ours_include: list[str], tree: "HeaderTree", abi, dump: Path, label: str,
                 known: dict[str, str] | None = None, release_name: str = "",
                 backported_removals: frozenset[str] = frozenset()) -> Outcome:
    """Compare the facts of one view's dump with the headers written from the view and with a tree.
    `known`: values whose line in the tree is a recorded defect of the kernel's header (see
    known_header_defects): their failure to compile is listed, not counted."""
    # The spec's headers come first; the base headers they include (linux/types.h,
    # asm/ioctl.h ...) are the tree's own, so that both sides agree on those.
    # Both sides are read tolerantly: a fact whose line does not compile is set aside
    # and reported as a difference, unless the spec records it as a defect of the kernel's
    # header of that release (header_defects: a kernel-internal macro such as BIT_ULL
    # leaked into uapi): then it is listed as known and not counted. One that compiles on
    # neither side is the same on both: listed as set aside, not counted.
    ours_source = dump.with_name(f"spec-{dump.name}")
    ours_source.write_text(dump.read_text())
    ours, problem, ours_dropped = tolerant_facts(
        abi, [*ours_include, *(f for f in tree.flags if f.startswith("-I") or f.startswith("-idirafter"))],
        ours_source)
    if ours is None:
        return Outcome(f"{abi.name}: ABI dump with the spec's headers", "failed", problem)
    theirs_source = dump.with_name(f"tree-{dump.name}")
    theirs_source.write_text(dump.read_text())
    theirs, problem, dropped = tolerant_facts(abi, list(tree.flags), theirs_source)
    if theirs is None:
        return Outcome(f"{abi.name}: ABI dump with {tree.description}", "failed", problem)
    key_of = lambda d: d.split(": ", 1)[0]   # noqa: E731 - "value NAME: message" -> "value NAME"
    known = known or {}
    is_known = lambda d: key_of(d).startswith("value ") and key_of(d)[6:] in known  # noqa: E731
    both = {key_of(d) for d in dropped} & {key_of(d) for d in ours_dropped}
    differences = [f"'{k} {v}' != '{k} {theirs[k]}'" for k, v in ours.items() if k in theirs and theirs[k] != v]
    differences += [f"does not compile with the tree: {d}" for d in dropped if key_of(d) not in both and not is_known(d)]
    differences += [f"does not compile with the spec's headers: {d}" for d in ours_dropped if key_of(d) not in both]
    at = f" at {release_name}" if release_name else ""
    known_lines = tuple(f"known defect of the kernel's header{at}: {known[key_of(d)[6:]]}" for d in dropped if is_known(d))
    # A fact that compiles on neither side is the same on both (the spec's header of the release
    # reproduces the kernel's: an ioctl of linux/kvm.h whose struct this architecture lacks).
    set_aside = tuple(f"set aside, compiles with neither header: {d}" for d in dropped
                      if key_of(d) in both and not is_known(d))
    # A name a stable tree lacks because the series backported mainline's later removal
    # of it (see diff_names) has no facts there: not a difference.
    differences += [f"'{k} {v}' only with the spec's headers" for k, v in ours.items()
                    if k not in theirs and key_of(k) not in {key_of(d) for d in dropped}
                    and k.split(" ")[-1].split(".")[0] not in backported_removals]
    differences += [f"'{k} {v}' only with the tree" for k, v in theirs.items()
                    if k not in ours and k not in {key_of(d) for d in ours_dropped}]
    return Outcome(f"{abi.name}: the spec's headers {label} and {tree.description} agree on {len(ours)} facts",
                   "failed" if differences else "ok", "; ".join(differences[:5]), count=len(differences),
                   details=tuple(differences) + known_lines + set_aside)


def view_names(view) -> dict[str, set[str]]:
    """The macro, record and enumerator names the headers of a view define."""
    from .model import Capability, Constant, ExitReason, FlagSet, FunctionMacro, Ioctl, Record, ValueSet
    names: dict[str, set[str]] = {"macros": set(), "records": set(), "enumerators": set()}
    described_only = {h.name for h in view.model.headers if not h.emit}   # asm/ptrace.h ... are not KVM's
    for item in view.items:
        if item.header in described_only:
            continue
        if isinstance(item, (Constant, FunctionMacro, Ioctl, Capability, ExitReason)):
            names["macros"].add(item.name)
        elif isinstance(item, Record):
            names["records"].add(item.name)
        elif isinstance(item, ValueSet):
            for v in item.values:
                if not v.exists_at(view.release):   # the newest view keeps removed values; headers do not
                    continue
                if isinstance(item, FlagSet) or item.c_style == "define":
                    names["macros"].add(v.name)
                else:
                    names["enumerators"].add(v.name)
                    if item.c_define_values and v.c_define:
                        names["macros"].add(v.name)
    return names


def compare_dumps(root: Path, tree: "HeaderTree", abi_name: str, tmp: Path, model=None) -> Outcome:
    """Compare what the generated headers and a tree say about every fact of the spec,
    as clang lays them out for one ABI."""
    from .layout import ABIS
    abi = next(a for a in ABIS if a.name == abi_name)
    source = root / "generated" / "tests" / "kvm_abi_dump.c"
    arch_include = "arch/x86"
    if model is not None:
        header = next((h for h in model.headers if h.arch == abi.arch and h.emit), None)
        if header is None:
            return Outcome(f"{abi.name}: the spec has no asm/kvm.h of {abi.arch}", "failed",
                           f"describe {abi.arch}'s asm/kvm.h in spec/{abi.arch}/")
        arch_include = arch_dir(header.path)
    # Both sides skip what is newer than the tree.
    defines = [f"-DKVMSPEC_HEADERS_VERSION={tree.version}"] if tree.version is not None else []
    # The generated headers are the newest API: they have nothing that was removed.
    ours_all, problem = ir_facts(abi, generated_includes(root, arch_include), [*defines, "-DKVMSPEC_NEWEST_API"],
                                 source)
    if ours_all is None:
        return Outcome(f"{abi.name}: ABI dump with generated headers", "failed", problem)
    theirs_all, problem = ir_facts(abi, list(tree.flags), defines, source)
    if theirs_all is None:
        return Outcome(f"{abi.name}: ABI dump with {tree.description}", "failed", problem)
    # Facts of items the newest API removed are only in older trees; conformance.c
    # checks them against the spec there.
    ours_facts = {k: v for k, v in ours_all.items() if not k.startswith("removed-")}
    theirs_facts = {k: v for k, v in theirs_all.items() if not k.startswith("removed-")}
    differences = [f"'{k} {v}' != '{k} {theirs_facts[k]}'" for k, v in ours_facts.items()
                   if k in theirs_facts and theirs_facts[k] != v]
    differences += [f"'{k} {v}' only with the generated headers" for k, v in ours_facts.items()
                    if k not in theirs_facts]
    differences += [f"'{k} {v}' only with the tree" for k, v in theirs_facts.items() if k not in ours_facts]
    return Outcome(f"{abi.name}: generated headers and {tree.description}{_release(tree.version)} agree on "
                   f"{len(ours_facts)} facts", "failed" if differences else "ok", "; ".join(differences[:5]),
                   count=len(differences), details=tuple(differences))


def _release(version: int | None) -> str:
    return f" ({version >> 16}.{(version >> 8) & 0xFF})" if version is not None else ""


def view_files(model, release, arch: str, tmp: Path, env) -> tuple[Path, Path]:
    """The spec's headers of `arch` at `release` and the dump program of that view, written
    under tmp: (include directory, kvm_abi_dump.c)."""
    from .emit.tests import dump_source
    from .view import View, header_files
    ours = tmp / f"spec-{arch}-{release.release if release else 'newest'}"
    for rel, text in header_files(model, release, arch, env).items():
        (ours / rel).parent.mkdir(parents=True, exist_ok=True)
        (ours / rel).write_text(text)
    dump = ours / "kvm_abi_dump.c"
    dump.write_text(dump_source(View(model, release, arch), env))
    return ours, dump


def run_conformance(root: Path, system_include: Path | None, model=None) -> list[Outcome]:
    """Every compiler-based check of generated/, for each ABI whose architecture the spec
    describes and this machine can build: the conformance program against the generated
    headers and against the installed kernel headers of that architecture (x86: the
    system's; others: Debian's cross headers), and the facts of both compared."""
    from .emit.text import environment
    from .layout import ABIS
    from .model import Version
    if model is None:
        from .build import load_model
        model = load_model(root)
    conformance = root / "generated" / "tests" / "kvm_conformance.c"
    env = environment()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="kvmspec-check-") as tmp_name:
        tmp = Path(tmp_name)
        for abi in ABIS:
            header = next((h for h in model.headers if h.arch == abi.arch and h.emit), None)
            if header is None:
                continue
            installed = system_include if abi.arch == "x86" else Path("/usr") / abi.debian / "include"
            if abi.arch == "x86":
                cc = _compiler()
                problem = _abi_usable(cc, abi.name, [])
                if problem:
                    outcomes.append(Outcome(f"{abi.name}: conformance", "skipped", problem))
                    continue
                command = [cc, ABI_FLAGS[abi.name], "-std=gnu11", "-Wall", "-Wextra", "-Werror"]
            else:
                if base_include(abi) is None:
                    outcomes.append(Outcome(f"{abi.name}: conformance", "skipped",
                                            f"no {abi.arch} base headers in /usr/{abi.debian}/include "
                                            f"(Debian's linux-libc-dev-*-cross)"))
                    continue
                command = [_clang(abi.triple), f"--target={abi.triple}", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                           *cross_base(abi)]
            result = subprocess.run([*command, *generated_includes(root, arch_dir(header.path)), "-fsyntax-only",
                                     str(conformance)], capture_output=True, text=True)
            outcomes.append(Outcome(f"{abi.name}: generated headers match the spec",
                                    "ok" if result.returncode == 0 else "failed", _first_error(result.stderr)))
            tree = None
            if installed is not None:
                try:
                    tree = header_tree(installed, arch_dir(header.path))
                except FileNotFoundError:
                    tree = None
            if tree is None or tree.version is None:
                outcomes.append(Outcome(f"{abi.name}: system headers", "skipped",
                                        f"no kernel uapi headers with linux/version.h in {installed}"))
                continue
            result = subprocess.run([*command, *tree.flags, f"-DKVMSPEC_HEADERS_VERSION={tree.version}",
                                     "-fsyntax-only", str(conformance)], capture_output=True, text=True)
            outcomes.append(Outcome(f"{abi.name}: system headers{_release(tree.version)} match the spec",
                                    "ok" if result.returncode == 0 else "failed", _first_error(result.stderr)))
            release = Version.parse(f"{tree.version >> 16}.{(tree.version >> 8) & 0xFF}")
            ours, dump = view_files(model, release, abi.arch, tmp, env)
            outcomes.append(compare_view([f"-I{ours}"], tree, abi, dump, f"of {release.release}",
                                         known_header_defects(model, abi.arch, release), release.release))
    return outcomes


# ---------------------------------------------------------------- names in a header tree

@dataclass(frozen=True)
class HeaderTree:
    """Where a tree's KVM uapi headers are, and the compiler flags that find them."""

    flags: tuple[str, ...]
    version: int | None
    description: str


# asm/ headers that a kernel source tree generates at build time from asm-generic
# (generic-y): a tree as it is lacks them, so a shim directory supplies them.
GENERIC_ASM = ("types", "ioctl", "ioctls", "bitsperlong", "posix_types", "int-ll64", "param", "sockios",
               "socket", "errno", "fcntl", "unistd", "byteorder", "swab", "stat", "signal", "siginfo",
               "termbits", "termios", "resource", "poll", "mman", "msgbuf", "sembuf", "shmbuf", "statfs",
               "setup", "sve_context", "hwcap", "ucontext", "kvm_para", "auxvec")


def _source_shim(tmp: Path) -> Path:
    """Headers that complete a raw kernel source tree: each asm/X.h of asm-generic, an
    empty linux/compiler.h (raw uapi headers include it for __user and friends)."""
    shim = tmp / "shim"
    (shim / "asm").mkdir(parents=True, exist_ok=True)
    (shim / "linux").mkdir(parents=True, exist_ok=True)
    for name in GENERIC_ASM:
        (shim / "asm" / f"{name}.h").write_text(f"#include <asm-generic/{name}.h>\n")
    (shim / "linux" / "compiler.h").write_text(
        "/* kvmspec: stands in for the kernel's own: the annotations uapi headers used */\n"
        "#ifndef __user\n#define __user\n#endif\n#ifndef __force\n#define __force\n#endif\n"
        "#ifndef __iomem\n#define __iomem\n#endif\n")
    # The raw linux/stddef.h of 4.16 to 5.x includes it; headers_install drops the line.
    (shim / "linux" / "compiler_types.h").write_text("/* kvmspec: stands in for the kernel's own */\n")
    return shim


def header_tree(path: Path, arch_include: str = "arch/x86", shim_dir: Path | None = None) -> HeaderTree:
    """An installed include directory (/usr/include, `make headers_install` output) or a kernel source tree
    (its include/uapi and the architecture's arch/A/include/uapi)."""
    path = path.resolve()
    if (path / "include/uapi/linux/kvm.h").is_file() and (path / arch_include / "include/uapi/asm/kvm.h").is_file():
        flags: tuple[str, ...] = (f"-I{path / 'include/uapi'}", f"-I{path / arch_include / 'include/uapi'}",
                                  "-D__user=", "-D__force=", "-D__iomem=")
        if shim_dir is not None:
            flags += (f"-idirafter{_source_shim(shim_dir)}",)
        return HeaderTree(flags, _source_tree_version(path), f"kernel source tree {path}")
    if not (path / "linux/kvm.h").is_file():
        raise FileNotFoundError(f"{path}: no linux/kvm.h here (give an include directory or a kernel source tree)")
    flags = () if path == Path("/usr/include") else (f"-I{path}",)
    if shim_dir is not None:
        # Installed headers of some releases (3.x) still include <linux/compiler.h>, which
        # headers_install did not ship; the shim is searched last, so a tree's own wins.
        flags += (f"-idirafter{_source_shim(shim_dir)}",)
    return HeaderTree(flags, headers_version(path), f"installed headers in {path}")


def _source_tree_version(root: Path) -> int | None:
    makefile = root / "Makefile"
    if not makefile.is_file():
        return None
    text = makefile.read_text(errors="replace")
    parts = [re.search(rf"^{key}\s*=\s*(\d+)", text, re.M) for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL")]
    if not all(parts):
        return None
    a, b, c = (int(m.group(1)) for m in parts)  # type: ignore[union-attr]
    return (a << 16) + (b << 8) + min(c, 255)


def _is_kvm_header(path: str) -> bool:
    return path.endswith(("linux/kvm.h", "asm/kvm.h"))


def header_names(tree: HeaderTree, abi=None, guards: frozenset = frozenset()) -> dict[str, set[str]]:
    """The macro, record and enumerator names that a tree's KVM headers define."""
    from .layout import NATIVE
    abi = abi or NATIVE
    result = subprocess.run([_clang(abi.triple), f"--target={abi.triple}", *tree.flags, *cross_base(abi),
                             "-E", "-dD", "-x", "c", "-"],
                            input="#include <linux/kvm.h>\n", capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"the preprocessor failed on {tree.description}: {_first_error(result.stderr)}")
    macros: set[str] = set()
    chunks: list[str] = []
    current = ""
    for line in result.stdout.splitlines():
        marker = re.match(r'# \d+ "([^"]+)"', line)
        if marker:
            current = marker.group(1)
            continue
        if not _is_kvm_header(current):
            continue
        define = re.match(r"#define (\w+)", line)
        if define:
            macros.add(define.group(1))
        elif not line.startswith("#"):
            chunks.append(line)
    text = "\n".join(chunks)
    records = set(re.findall(r"\b(?:struct|union)\s+(\w+)\s*\{", text))
    enumerators: set[str] = set()
    for body in re.findall(r"\benum\s*\w*\s*\{(.*?)\}", text, re.S):
        for entry in body.split(","):
            name = entry.split("=")[0].strip()
            if name:
                enumerators.add(name)
    guards = set(guards) | {m for m in macros if re.fullmatch(r"_+(LINUX|ASM_X86)_KVM_H", m)}
    return {"macros": macros - guards, "records": records, "enumerators": enumerators}


def spec_names(model, version: int | None, arch: str = "x86") -> dict[str, set[str]]:
    """What the spec says a tree of the given release defines."""
    from .model import Capability, Constant, ExitReason, FlagSet, FunctionMacro, Ioctl, Record, ValueSet

    def code(v) -> int:
        parts = (list(v.parts) + [0, 0, 0])[:3]
        return (parts[0] << 16) + (parts[1] << 8) + parts[2]

    def known(since, removed=None) -> bool:
        """Present in a tree of `version`: added by then and not yet removed."""
        if removed is not None and (version is None or version >= code(removed.since)):
            return False
        return version is None or since is None or code(since) <= version

    names: dict[str, set[str]] = {"macros": set(), "records": set(), "enumerators": set()}
    described_only = {h.name for h in model.headers if not h.emit}   # asm/ptrace.h ... are not KVM's
    for item in model.items:
        if arch not in item.active_on or not known(item.since, item.removed) or item.header in described_only:
            continue
        if isinstance(item, Ioctl) and item.type_external is not None:
            pass  # defined by linux/kvm.h although x86 code cannot expand it
        if isinstance(item, (Constant, FunctionMacro, Ioctl, Capability, ExitReason)):
            names["macros"].add(item.name)
        elif isinstance(item, Record):
            names["records"].add(item.name)
        elif isinstance(item, ValueSet):
            for v in item.values:
                if not known(v.since, v.removed):
                    continue
                if isinstance(item, FlagSet) or item.c_style == "define":
                    names["macros"].add(v.name)
                else:
                    names["enumerators"].add(v.name)
                    if item.c_define_values and v.c_define:
                        names["macros"].add(v.name)
    return names


@dataclass(frozen=True)
class NameDiff:
    kind: str
    in_tree: int
    in_spec: int
    missing: tuple[str, ...]       # the tree defines them, the spec does not
    only_in_spec: tuple[str, ...]  # the spec says the tree should define them
    # Names of a stable tree (X.Y.Z, Z > 0) that mainline added after X.Y, or names it
    # lacks that mainline removed after X.Y: backports to the stable series, explained
    # by the spec's own release (or removal) of them; not counted.
    backported: tuple[tuple[str, str], ...] = ()   # (name, mainline release)


def mainline_releases(model, arch: str) -> dict[str, "Version"]:
    """The mainline release of every name the spec defines for `arch` (items and their values)."""
    from .model import ValueSet
    out: dict = {}
    for item in model.items:
        if arch not in item.active_on:
            continue
        out.setdefault(item.name, item.since)
        if isinstance(item, ValueSet):
            for v in item.values:
                out.setdefault(v.name, v.since or item.since)
    return out


def mainline_removals(model, arch: str) -> dict[str, "Version"]:
    """The mainline release that removed each name the spec defines for `arch` (items and values)."""
    from .model import ValueSet
    out: dict = {}
    for item in model.items:
        if arch not in item.active_on:
            continue
        if item.removed is not None:
            out.setdefault(item.name, item.removed.since)
        if isinstance(item, ValueSet):
            for v in item.values:
                if v.removed is not None:
                    out.setdefault(v.name, v.removed.since)
    return out


def diff_names(model, tree: HeaderTree, arch: str = "x86", abi=None, view=None) -> list[NameDiff]:
    guards = frozenset(h.guard for h in model.headers if h.guard)
    theirs = header_names(tree, abi, guards)
    ours = view_names(view) if view is not None else spec_names(model, tree.version, arch)
    # A stable release (sublevel > 0) may carry names that mainline added later.
    release = view.release if view is not None else None
    stable = tree.version is not None and tree.version & 0xFF != 0 and release is not None
    later: dict = {}
    gone: dict = {}   # removed by a later mainline release: a stable series may have backported the removal
    if stable:
        later = {name: since for name, since in mainline_releases(model, arch).items()
                 if since is not None and since.parts > release.parts}
        gone = {name: since for name, since in mainline_removals(model, arch).items()
                if since.parts > release.parts}
    diffs = []
    for kind in ("macros", "records", "enumerators"):
        missing = sorted(theirs[kind] - ours[kind])
        only = sorted(ours[kind] - theirs[kind])
        backported = tuple((n, later[n].release) for n in missing if n in later)
        backported += tuple((n, f"removed in {gone[n].release}") for n in only if n in gone)
        diffs.append(NameDiff(kind, len(theirs[kind]), len(ours[kind]),
                              tuple(n for n in missing if n not in later),
                              tuple(n for n in only if n not in gone), backported))
    return diffs
