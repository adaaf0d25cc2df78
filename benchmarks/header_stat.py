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
    """{header name: text} of the spec's headers at a release (None: the newest view)."""
    from kvmspec.build import load_model
    from kvmspec.emit import c_header
    from kvmspec.emit.text import environment
    from kvmspec.model import Version

    model = load_model(REPO)
    view = Version.parse(release) if release else None
    env = environment()
    return {h.name: c_header.header_text(model, h, env, release=view) for h in model.headers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default="6.1", help="the kernel release of the reference headers")
    parser.add_argument("--linux", default="/usr/include/linux/kvm.h", help="the kernel's linux/kvm.h")
    parser.add_argument("--asm", default="/usr/include/x86_64-linux-gnu/asm/kvm.h",
                        help="the kernel's x86 asm/kvm.h")
    parser.add_argument("--limit", type=float, default=2.0, help="the largest acceptable figure, in percent")
    parser.add_argument("--show", choices=["linux", "x86"], help="print the normalised diff of one header")
    args = parser.parse_args(argv)
    from kvmspec.diagnostics import SpecError
    try:
        ours = rendered_headers(args.release)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 1
    references = {"linux": Path(args.linux), "x86": Path(args.asm)}
    worst = 0.0
    for name, path in references.items():
        if not path.is_file():
            print(f"{path}: no such file", file=sys.stderr)
            return 2
        kernel = path.read_text()
        if args.show == name:
            print(unified(kernel, ours[name], path.name))
        fig = diff_figure(kernel, ours[name])
        worst = max(worst, fig.percent)
        print(f"{name:5} {args.release:>5}  {fig.percent:5.2f}% changed  ({fig.changed} of {fig.kernel_lines} "
              f"kernel lines; {fig.removed} removed, {fig.added} added; ours has {fig.our_lines})  vs {path}")
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
