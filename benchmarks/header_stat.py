"""How far the generated C headers are from the kernel's, as a line diff.

The kernel's header may be the installed form (/usr/include) or the raw form
of a kernel tree (include/uapi/...): the raw one is first put through what
headers_install does. Both are then reduced to what a compiler reads:
comments are stripped,
backslash-continued lines joined, whitespace that separates no two words
removed and the rest shrunk to one space, blank lines dropped. Then a line
diff (difflib) is taken; a changed block of k kernel lines replaced by m
lines counts max(k, m) changed lines. The figure is changed lines / kernel
lines (issue 13 asks for at most 2%).

The spec describes many releases; the header compared is the view of the
model at the kernel's release (items present then: since <= R, not removed
by R), rendered by the same code as generated/.

    python benchmarks/header_stat.py                  # 6.1 against /usr/include
    python benchmarks/header_stat.py --release 6.10 \\
        --linux /tmp/ref/linux/kvm.h --asm /tmp/ref/asm/kvm.h
    python benchmarks/header_stat.py --show linux     # the diff itself

Exit status 0 when every figure is within --limit (default 2%), 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "generators")]

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_SPACE = re.compile(r"\s+")
# A space matters only between two characters that could form one word.
_USELESS_SPACE = re.compile(r"(?<=[^\w]) | (?=[^\w])")


def installed_form(text: str) -> str:
    """What headers_install makes of a header of the kernel tree (include/uapi):
    no __user and friends, no <linux/compiler.h>, and the `__KERNEL__`
    conditionals resolved for userspace (unifdef -U__KERNEL__). An installed
    header (/usr/include) comes out unchanged."""
    text = re.sub(r"\b(__user|__force|__iomem)\b ?", "", text)
    out: list[str] = []
    stack: list[tuple[bool, bool]] = []    # (directive dropped, contents kept) per open conditional
    for line in text.splitlines():
        directive = line.strip().replace(" ", "")
        if re.match(r"#include<linux/compiler\.h>", directive):
            continue
        keeping = all(kept for _, kept in stack)
        if directive.startswith(("#ifndef__KERNEL__", "#if!defined(__KERNEL__)")):
            stack.append((True, True))
            continue
        if directive.startswith(("#ifdef__KERNEL__", "#ifdefined(__KERNEL__)")):
            stack.append((True, False))
            continue
        if directive.startswith("#if"):
            stack.append((False, True))
        elif directive.startswith("#else") and stack and stack[-1][0]:
            stack[-1] = (True, not stack[-1][1])
            continue
        elif directive.startswith("#endif") and stack:
            dropped, _ = stack.pop()
            if dropped:
                continue
        if keeping:
            out.append(line)
    return "\n".join(out) + "\n"


def normalised_lines(text: str) -> list[str]:
    """The header as a compiler reads it, one logical line each, without blanks."""
    text = _COMMENT.sub(" ", text).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = _SPACE.sub(" ", line).strip()
        if line:
            out.append(_USELESS_SPACE.sub("", line))
    return out


@dataclass
class Figure:
    kernel_lines: int
    our_lines: int
    changed: int          # sum over changed blocks of max(kernel side, our side)
    removed: int          # kernel lines not in ours
    added: int            # our lines not in the kernel's

    @property
    def percent(self) -> float:
        return 100.0 * self.changed / max(self.kernel_lines, 1)


def diff_figure(kernel: str, ours: str) -> Figure:
    a, b = normalised_lines(installed_form(kernel)), normalised_lines(ours)
    changed = removed = added = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            changed += max(i2 - i1, j2 - j1)
            removed += i2 - i1
            added += j2 - j1
    return Figure(len(a), len(b), changed, removed, added)


def unified(kernel: str, ours: str, name: str) -> str:
    return "\n".join(difflib.unified_diff(normalised_lines(installed_form(kernel)), normalised_lines(ours),
                                          f"kernel/{name}", f"kvmspec/{name}", n=1, lineterm=""))


def rendered_headers(release: str | None) -> dict[str, str]:
    """{header name: text} of the spec's headers at a release (None: the newest view,
    which generated/ holds), each rendered as `kvmspec headers --release R` writes it:
    from the view of its own architecture at that release."""
    from kvmspec.build import load_model
    from kvmspec.emit.c_header import render_header
    from kvmspec.emit.text import environment
    from kvmspec.model import Version
    from kvmspec.view import View

    model = load_model(REPO)
    view = Version.parse(release) if release else None
    env = environment()
    return {h.name: render_header(View(model, view, h.arch), h, env) for h in model.headers if h.emit}


# Where the kernel's headers of a release are on this machine: Debian's linux-libc-dev of
# 6.1 (the system's own, and the cross packages), and the 7.3 tree in /work/refs.
HEADERS = ("linux", "x86", "arm64", "riscv", "s390", "ppc", "mips", "loongarch")
DEBIAN_TRIPLES = {"x86": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "riscv": "riscv64-linux-gnu",
                  "s390": "s390x-linux-gnu", "ppc": "powerpc64le-linux-gnu", "mips": "mips64el-linux-gnuabi64",
                  "loongarch": "loongarch64-linux-gnu"}
# Directory names of one architecture's include tree in a tree of trees: ours (Debian's
# linux-libc-dev trees in /work/refs) and Zig's (its bundled headers).
TREE_DIRS = {"x86": ("x86", "x86_64"), "arm64": ("arm64", "aarch64"), "riscv": ("riscv", "riscv64"),
             "s390": ("s390", "s390x"), "ppc": ("ppc", "powerpc"), "mips": ("mips",),
             "loongarch": ("loongarch",)}
KNOWN_TREES = {"6.1": None, "7.3": Path("/work/refs/debian-7.3")}   # None: the Debian system paths


def debian_6_1() -> dict[str, Path]:
    """The kernel's 6.1 headers as Debian installs them (loongarch had no KVM in 6.1)."""
    refs = {"linux": Path("/usr/include/linux/kvm.h"), "x86": Path("/usr/include/x86_64-linux-gnu/asm/kvm.h")}
    for arch in HEADERS[2:]:
        refs[arch] = Path(f"/usr/{DEBIAN_TRIPLES[arch]}/include/asm/kvm.h")
    return refs


def tree_references(tree: Path) -> dict[str, Path]:
    """{header: path} of a tree: one include tree (TREE/linux/kvm.h, TREE/asm/kvm.h: the
    architecture is read from the asm header's include guard), or a tree of them, one per
    architecture (TREE/<arch>/...: /work/refs/debian-7.3, or Zig's names)."""
    refs: dict[str, Path] = {}
    if (tree / "asm/kvm.h").is_file() or (tree / "linux/kvm.h").is_file():
        refs["linux"] = tree / "linux/kvm.h"
        arch = arch_of(tree / "asm/kvm.h")
        if arch:
            refs[arch] = tree / "asm/kvm.h"
        return refs
    for arch, names in TREE_DIRS.items():
        for name in names:
            if (tree / name / "asm/kvm.h").is_file():
                refs.setdefault("linux", tree / name / "linux/kvm.h")
                refs[arch] = tree / name / "asm/kvm.h"
                break
    return refs


_GUARDS = {"_ASM_X86_KVM_H": "x86", "__ARM_KVM_H__": "arm64", "__LINUX_KVM_RISCV_H": "riscv",
           "__LINUX_KVM_S390_H": "s390", "__LINUX_KVM_POWERPC_H": "ppc", "__LINUX_KVM_MIPS_H": "mips",
           "__UAPI_ASM_LOONGARCH_KVM_H": "loongarch"}


def arch_of(asm: Path) -> str | None:
    """The architecture of an asm/kvm.h, by its include guard."""
    if not asm.is_file():
        return None
    match = re.search(r"^#ifndef\s+(\w+)", asm.read_text(), re.M)
    return _GUARDS.get(match.group(1)) if match else None


def tree_release(tree: Path) -> str | None:
    """X.Y of a tree, from any linux/version.h in it."""
    for version in sorted(tree.glob("linux/version.h")) + sorted(tree.glob("*/linux/version.h")):
        text = version.read_text()
        major = re.search(r"LINUX_VERSION_MAJOR\s+(\d+)", text)
        minor = re.search(r"LINUX_VERSION_PATCHLEVEL\s+(\d+)", text)
        if major and minor:
            return f"{major.group(1)}.{minor.group(1)}"
        code = re.search(r"LINUX_VERSION_CODE\s+(\d+)", text)
        if code:
            return f"{int(code.group(1)) >> 16}.{(int(code.group(1)) >> 8) & 255}"
    return None


def set_aside(lines: list[str], names: set[str]) -> list[str]:
    """The normalised lines without those that name one of `names`, and without the
    whole definition of a record so named (items one release added that the spec is
    known to lack, counted apart)."""
    if not names:
        return lines
    word = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")
    out: list[str] = []
    depth = 0
    for line in lines:
        if depth:
            depth += line.count("{") - line.count("}")
            continue
        if word.search(line):
            if re.match(r"(struct|union)\s+\w+\s*\{", line):
                depth = line.count("{") - line.count("}")
            continue
        out.append(line)
    return out


@dataclass
class Row:
    header: str
    release: str
    path: Path
    figure: Figure | None        # None: the kernel had no such header then
    pending: int = 0             # changed lines the set-aside names explain


def measure(release: str, refs: dict[str, Path], ours: dict[str, str], pending: set[str],
            show: str | None) -> list[Row]:
    rows = []
    for name in HEADERS:
        if name not in refs:
            continue
        path = refs[name]
        if not path.is_file():
            rows.append(Row(name, release, path, None))
            continue
        kernel = path.read_text()
        if show == name:
            print(unified(kernel, ours[name], f"{release}/{path.name}"))
        fig = diff_figure(kernel, ours[name])
        row = Row(name, release, path, fig)
        if pending:
            a = set_aside(normalised_lines(installed_form(kernel)), pending)
            b = set_aside(normalised_lines(ours[name]), pending)
            row.pending = fig.changed - _changed(a, b)
        rows.append(row)
    return rows


def _changed(a: list[str], b: list[str]) -> int:
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2
               in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if tag != "equal")


def table(rows: list[Row], pending: bool) -> str:
    head = f"{'header':10} {'release':>7} {'changed':>8} {'lines':>11} {'removed':>7} {'added':>5}"
    head += f" {'pending':>7} {'without':>8}" if pending else ""
    out = [head + "  kernel header", "-" * (len(head) + 15)]
    for r in rows:
        if r.figure is None:
            out.append(f"{r.header:10} {r.release:>7} {'-':>8} {'':>11} {'':>7} {'':>5}"
                       + (f" {'':>7} {'':>8}" if pending else "") + f"  {r.path}: none (no KVM then)")
            continue
        f = r.figure
        line = (f"{r.header:10} {r.release:>7} {f.percent:7.2f}% {f'{f.changed}/{f.kernel_lines}':>11} "
                f"{f.removed:>7} {f.added:>5}")
        if pending:
            rest = 100.0 * (f.changed - r.pending) / max(f.kernel_lines, 1)
            line += f" {r.pending:>7} {rest:7.2f}%"
        out.append(line + f"  {r.path}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Without --release, --tree, --linux or --asm: every header at 6.1 (Debian's "
               "/usr/include and /usr/<triple>/include) and at 7.3 (/work/refs/debian-7.3).")
    parser.add_argument("--release", help="the kernel release of the reference headers (default: the tree's "
                        "linux/version.h; without a tree, 6.1 and 7.3, whose trees are known)")
    parser.add_argument("--tree", type=Path, help="a tree of the kernel's installed headers: one include tree "
                        "(TREE/linux/kvm.h, TREE/asm/kvm.h) or one per architecture (TREE/<arch>/...)")
    parser.add_argument("--linux", type=Path, help="the kernel's linux/kvm.h (with --asm: only these two)")
    parser.add_argument("--asm", type=Path, help="the kernel's asm/kvm.h (its architecture is read from "
                        "its include guard)")
    parser.add_argument("--header", action="append", choices=HEADERS, metavar="NAME",
                        help=f"measure only this header (repeatable; one of {', '.join(HEADERS)})")
    parser.add_argument("--pending", default="", metavar="NAMES",
                        help="comma-separated names the kernel has and the spec does not yet: "
                             "count apart how many changed lines they explain")
    parser.add_argument("--limit", type=float, default=2.0, help="the largest acceptable figure, in percent")
    parser.add_argument("--show", choices=HEADERS, metavar="NAME",
                        help="print the normalised diff of one header (linux, x86, arm64, ...)")
    args = parser.parse_args(argv)
    from kvmspec.diagnostics import SpecError

    plans: list[tuple[str, dict[str, Path]]] = []
    if args.linux or args.asm:
        refs = {}
        if args.linux:
            refs["linux"] = args.linux
        if args.asm:
            refs[arch_of(args.asm) or "x86"] = args.asm
        plans.append((args.release or "6.1", refs))
    elif args.tree:
        if not args.tree.is_dir():
            print(f"{args.tree}: no such directory", file=sys.stderr)
            return 2
        release = args.release or tree_release(args.tree)
        if release is None:
            print(f"{args.tree}: no linux/version.h says its release; pass --release", file=sys.stderr)
            return 2
        refs = tree_references(args.tree)
        if not refs:
            print(f"{args.tree}: no linux/kvm.h or asm/kvm.h in it", file=sys.stderr)
            return 2
        plans.append((release, refs))
    else:
        for release in ([args.release] if args.release else list(KNOWN_TREES)):
            if release not in KNOWN_TREES:
                print(f"no known tree of release {release}; pass --tree DIR (or --linux/--asm)", file=sys.stderr)
                return 2
            tree = KNOWN_TREES[release]
            plans.append((release, debian_6_1() if tree is None else tree_references(tree)))
    pending = {n.strip() for n in args.pending.split(",") if n.strip()}
    rows: list[Row] = []
    for release, refs in plans:
        if args.header:
            refs = {k: v for k, v in refs.items() if k in args.header}
        missing = [str(p) for k, p in refs.items() if not p.is_file() and not (k == "loongarch" and release == "6.1")]
        if missing:
            print("\n".join(f"{p}: no such file" for p in missing), file=sys.stderr)
            return 2
        try:
            ours = rendered_headers(release)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            return 1
        rows += measure(release, refs, ours, pending, args.show)
    print(table(rows, bool(pending)))
    worst = max((r.figure.percent for r in rows if r.figure is not None), default=0.0)
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
