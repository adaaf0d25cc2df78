"""The spec's history against every reference header tree: one `kvmspec diff-header` run per
tree and architecture, summed up as a table of release x ABI.

A reference directory (default $KVMSPEC_REFS, else /work/refs; benchmarks/reference_trees.sh
builds one from public sources) is read in this layout:

    bionic/INDEX                 lines "<release> <commit> <version>"
    bionic/<release>/<arch>      AOSP bionic's libc/kernel/uapi (arch: x86 arm64 riscv);
                                 no linux/version.h, so --release comes from the directory name
    debian-<release>/<arch>      Debian's linux-libc-dev (arch: x86 arm64 riscv s390 ppc mips loongarch)
    linux-<release>/<zigarch>    Zig's bundled headers (x86 aarch64 riscv s390x powerpc mips loongarch)

Further trees may be named on the command line as PATH, ARCH=PATH or ARCH=PATH@RELEASE
(without ARCH the directory name says it: x86tree -> x86; without RELEASE linux/version.h does).

    python benchmarks/history_check.py                      # every tree under the default directory
    python benchmarks/history_check.py --arch x86 /tmp/hdr/v4.14/x86tree
    python benchmarks/history_check.py --refs /tmp/refs --timing

For each tree the table gives, per ABI, the facts compared (macro values, sizes, offsets ...)
and the differences among them, and the names the tree has that the spec lacks (or the
reverse). Exit status 1 on any finding (or a run that failed), 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Directory names of architectures in the reference trees -> kvmspec's --arch.
ARCH_NAMES = {
    "x86": "x86", "x86tree": "x86", "x86_64": "x86", "arm64": "arm64", "aarch64": "arm64",
    "riscv": "riscv", "s390": "s390", "s390x": "s390", "ppc": "ppc", "powerpc": "ppc",
    "mips": "mips", "loongarch": "loongarch",
}
# Extra arguments an architecture needs (no Debian cross headers for LoongArch).
ARCH_ARGS = {"loongarch": ["--abi", "loongarch64"]}

AGREE = re.compile(r"^  (?P<abi>\S+)\s+the spec's headers .* agree on (?P<facts>\d+) facts: (?P<diffs>\d+) difference")
NAMES = re.compile(r"^  (?P<kind>\w+)\s+\d+ in headers,\s+\d+ in spec: (?P<missing>\d+) missing from the spec, "
                   r"(?P<only>\d+) only in the spec")
FINDINGS = re.compile(r"^(?P<n>\d+) finding\(s\)$|^no differences$")


@dataclass
class Tree:
    label: str          # where it comes from: "bionic", "debian", "zig", "extra"
    release: str | None  # None: linux/version.h says
    arch: str
    path: Path


@dataclass
class Result:
    tree: Tree
    facts: dict[str, int] = field(default_factory=dict)
    diffs: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    only_in_spec: int = 0
    findings: int | None = None   # None: the run failed
    seconds: float = 0.0
    output: str = ""
    release_shown: str = ""


def _release_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)) or (0,)


def reference_trees(refs: Path, arches: set[str] | None) -> list[Tree]:
    """Every tree under `refs`, in the layout of the module's docstring."""
    trees: list[Tree] = []
    index = refs / "bionic" / "INDEX"
    if index.is_file():
        for line in index.read_text().splitlines():
            if not line.strip():
                continue
            release = line.split()[0]
            for sub in sorted((refs / "bionic" / release).iterdir()) if (refs / "bionic" / release).is_dir() else []:
                if sub.name in ARCH_NAMES and sub.is_dir():
                    trees.append(Tree("bionic", release, ARCH_NAMES[sub.name], sub))
    for top in sorted(refs.glob("debian-*")) + sorted(refs.glob("linux-*")):
        if not top.is_dir():
            continue
        label = "debian" if top.name.startswith("debian-") else "zig"
        for sub in sorted(top.iterdir()):
            if sub.name in ARCH_NAMES and sub.is_dir():
                trees.append(Tree(label, None, ARCH_NAMES[sub.name], sub))
    return [t for t in trees if arches is None or t.arch in arches]


def extra_tree(text: str) -> Tree:
    """PATH, ARCH=PATH or ARCH=PATH@RELEASE."""
    arch, _, rest = text.rpartition("=")
    path_text, _, release = rest.partition("@")
    path = Path(path_text)
    if not arch:
        arch = ARCH_NAMES.get(path.name, "")
        if not arch:
            raise SystemExit(f"{text}: say the architecture (ARCH=PATH): the directory name {path.name!r} does not")
    if not path.is_dir():
        raise SystemExit(f"{path}: no such directory")
    return Tree("extra", release or None, arch, path)


def asm_guards() -> dict[str, str]:
    """The include guard of each architecture's asm/kvm.h, from the spec's manifest."""
    import yaml
    manifest = yaml.safe_load((ROOT / "spec" / "kvmspec.yaml").read_text())
    return {h["arch"]: h["guard"] for h in manifest.get("headers", ())
            if h.get("arch") and h.get("guard") and h.get("path", "").endswith("asm/kvm.h")}


def has_kvm(tree: Tree, guards: dict[str, str]) -> bool:
    """Whether the tree has the architecture's own asm/kvm.h: a release before KVM came to
    the architecture has none (or, in some bundles, another architecture's)."""
    asm = tree.path / "asm" / "kvm.h"
    guard = guards.get(tree.arch)
    return asm.is_file() and (guard is None or guard in asm.read_text(errors="replace"))


def run_tree(tree: Tree) -> Result:
    command = [sys.executable, "-m", "kvmspec", "diff-header", str(tree.path), "--arch", tree.arch,
               *ARCH_ARGS.get(tree.arch, [])]
    if tree.release:
        command += ["--release", tree.release]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "generators"), str(ROOT / "generated" / "python"),
                                         env.get("PYTHONPATH", "")])
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    result = Result(tree, seconds=time.monotonic() - started, output=run.stdout + run.stderr)
    for line in run.stdout.splitlines():
        if m := AGREE.match(line):
            result.facts[m["abi"]] = int(m["facts"])
            result.diffs[m["abi"]] = int(m["diffs"])
        elif m := NAMES.match(line):
            result.missing += int(m["missing"])
            result.only_in_spec += int(m["only"])
        elif m := FINDINGS.match(line):
            result.findings = int(m["n"] or 0)
        elif line.startswith("spec vs ") and "(Linux " in line:
            result.release_shown = line.split("(Linux ", 1)[1].split(")", 1)[0]
    if run.returncode not in (0, 1):
        result.findings = None
    return result


def table(results: list[Result]) -> str:
    abis = list(dict.fromkeys(abi for r in results for abi in r.facts))
    head = ["release", "source", "arch"] + [f"{abi} facts/diffs" for abi in abis] + ["missing", "only-spec", "findings"]
    rows = []
    for r in results:
        rows.append([r.tree.release or r.release_shown or "?", r.tree.label, r.tree.arch]
                    + [f"{r.facts[abi]}/{r.diffs[abi]}" if abi in r.facts else "-" for abi in abis]
                    + [str(r.missing), str(r.only_in_spec), "FAILED" if r.findings is None else str(r.findings)])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("extra", nargs="*", metavar="TREE",
                        help="further trees: PATH, ARCH=PATH or ARCH=PATH@RELEASE")
    parser.add_argument("--refs", type=Path, default=Path(os.environ.get("KVMSPEC_REFS", "/work/refs")),
                        help="reference directory (default: $KVMSPEC_REFS or /work/refs)")
    parser.add_argument("--arch", action="append", help="only these architectures (repeatable)")
    parser.add_argument("--no-refs", action="store_true", help="only the trees named on the command line")
    parser.add_argument("--timing", action="store_true", help="add the seconds each diff-header run took")
    parser.add_argument("--verbose", action="store_true", help="print diff-header's report of every tree with findings")
    args = parser.parse_args(argv)
    arches = set(args.arch) if args.arch else None
    trees = [] if args.no_refs else (reference_trees(args.refs, arches) if args.refs.is_dir() else [])
    trees += [t for t in map(extra_tree, args.extra) if arches is None or t.arch in arches]
    if not trees:
        print(f"no reference trees under {args.refs} (build them with benchmarks/reference_trees.sh)", file=sys.stderr)
        return 1
    guards = asm_guards()
    without_kvm = [t for t in trees if not has_kvm(t, guards)]
    results = []
    for tree in trees:
        if tree not in without_kvm:
            results.append(run_tree(tree))
    results.sort(key=lambda r: (r.tree.arch, _release_key(r.tree.release or r.release_shown), r.tree.label))
    print(table(results))
    bad = [r for r in results if r.findings != 0]
    if args.timing:
        total = sum(r.seconds for r in results)
        print(f"\n{len(results)} diff-header runs in {total:.1f} s "
              f"(mean {total / len(results):.2f} s, max {max(r.seconds for r in results):.2f} s)")
    if args.verbose:
        for r in bad:
            print(f"\n== {r.tree.path} ({r.tree.arch})\n{r.output.rstrip()}")
    for t in without_kvm:
        print(f"skipped, no KVM asm/kvm.h of {t.arch} there: {t.path}")
    print(f"\n{len(results)} trees, {len(bad)} with findings" if bad else f"\n{len(results)} trees, no findings")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
