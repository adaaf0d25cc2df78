"""The kvmspec command line.

Exit status: 0 when everything is fine, 1 when the spec is invalid or a check
has findings (stale files, ...), 2 for usage or environment problems (no
repository, unreadable files, a missing compiler) and for internal errors
(bugs: one `kvmspec: internal error: ...` line); 130 when interrupted.
Problems in the spec are printed as `path:line:col: error: ...`; no
traceback reaches the user, whatever the spec holds.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from .diagnostics import SpecError
from .layout import ABIS, abis_of

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
kvmspec: the Linux KVM userspace API written once, as data.

The spec (spec/**/*.yaml) describes constants, flag sets, structs, ioctls and
capabilities; kvmspec checks it and generates, into generated/, the C uapi
headers, Python bindings (kvm_uapi), Documentation/virt/kvm/api.rst and
conformance tests.

Run without a command, kvmspec validates the spec, regenerates generated/,
checks the generated headers with a C compiler against the spec and against
the kernel's headers in /usr/include, and compares the spec with the last git
commit for compatibility breaks (kvmspec compat HEAD).
"""

EPILOG = """\
exit status:
  0  success
  1  the spec is invalid, or a check found problems (e.g. stale files)
  2  usage or environment problem (no spec here, unreadable files), or an
     internal error (a bug in kvmspec: one line saying so, no traceback)
"""


class UsageError(Exception):
    """A problem with how kvmspec was called or with its environment (exit 2)."""


def find_root(start: Path) -> Path:
    for candidate in (start, *start.parents):
        if (candidate / "spec" / "kvmspec.yaml").is_file():
            return candidate
    raise UsageError(f"no kvmspec repository at or above {start} (looked for spec/kvmspec.yaml); "
                     "run kvmspec inside one or pass --root DIR")


# Set by the command-line entry point: `kvmspec generate` may use two
# processes. Library callers (and the tests that call main()) use one.
PARALLEL = False


def _root(args: argparse.Namespace) -> Path:
    if args.root is not None:
        root = Path(args.root).resolve()
        if not (root / "spec" / "kvmspec.yaml").is_file():
            raise UsageError(f"{args.root}: not a kvmspec repository (no spec/kvmspec.yaml)")
        return root
    return find_root(Path.cwd().resolve())


def _model(root: Path):
    from .build import load_model
    return load_model(root)


def cmd_validate(args: argparse.Namespace) -> int:
    model = _model(_root(args))
    for warning in model.warnings:
        print(warning, file=sys.stderr)
    counts = {}
    for item in model.items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    print(f"spec is valid: {len(model.files)} files, {len(model.items)} items ({summary})")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from .readahead import reading_ahead
    root = _root(args)
    with reading_ahead(root, PARALLEL) as ahead:   # it reads beside the imports below
        return _generate(root, args.check, ahead)


def _generate(root: Path, check_only: bool, ahead) -> int:
    from .output import Check, Rewrite
    from .pipeline import generate_into

    if check_only:
        with Check(root) as check:
            generate_into(root, check, parallel=PARALLEL, ahead=ahead)
            stale, count = check.stale(), len(check.paths)
        if not stale:
            print(f"generated/ is up to date ({count} files)")
            return EXIT_OK
        for s in stale:
            print(f"{s.path}: {s.reason}", file=sys.stderr)
        print(f"kvmspec: {len(stale)} generated file(s) are stale; run `kvmspec generate`",
              file=sys.stderr)
        return EXIT_FINDINGS
    with Rewrite(root) as rewrite:   # each process writes what it renders
        generate_into(root, rewrite, parallel=PARALLEL, ahead=ahead)
        changed, count = rewrite.commit(), len(rewrite.paths)
    if changed:
        print(f"generated/: {len(changed)} of {count} files changed")
        for s in changed:
            print(f"  {s.reason:8} {s.path}")
    else:
        print(f"generated/ is up to date ({count} files)")
    return EXIT_OK


def _report_conformance(root: Path, system_include: Path | None, model=None) -> int:
    from .conformance import run_conformance
    outcomes = run_conformance(root, system_include, model)
    failed = 0
    for o in outcomes:
        detail = f": {o.detail}" if o.detail and o.status != "ok" else ""
        print(f"  {o.status:7} {o.name}{detail}")
        failed += o.status == "failed"
    return EXIT_FINDINGS if failed else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    root = _root(args)
    from .conformance import NoCompiler
    include = Path(args.system_include) if args.system_include else None
    if include is not None and not include.is_dir():
        raise UsageError(f"{args.system_include}: no such directory")
    print("conformance of generated/ (C compiler):")
    try:
        return _report_conformance(root, include)
    except NoCompiler as exc:
        raise UsageError(str(exc)) from None


def cmd_diff_header(args: argparse.Namespace) -> int:
    """Compare the spec's headers of a release and architecture with any tree of kernel
    headers: names both ways, values and layouts (field names included)."""
    from .conformance import (NoCompiler, arch_dir, base_include, compare_view, diff_names, header_tree,
                              known_header_defects)
    from .emit.tests import dump_source
    from .emit.text import environment
    from .view import View, first_arch_release, header_files, newest_release
    import tempfile

    root = _root(args)
    model = _model(root)
    arch = args.arch
    header = next((h for h in model.headers if h.arch == arch and h.emit), None)
    if header is None:
        raise UsageError(f"the spec has no asm/kvm.h for {arch} yet")
    # By default every ABI whose base headers (linux/types.h, asm/ioctl.h ...) are here:
    # Debian's cross headers of the ABI or of its stand-in, as `kvmspec check` uses them.
    abis = [abi for abi in ABIS if abi.name in args.abi] if args.abi else \
        [abi for abi in abis_of(arch) if abi.arch == "x86" or base_include(abi) is not None]
    if not abis:
        wanted = " or ".join(f"/usr/{name}/include" for abi in abis_of(arch)
                             for name in (abi.debian, abi.stand_in) if name)
        raise UsageError(f"no base headers for {arch} are installed ({wanted}; Debian: "
                         f"linux-libc-dev-<arch>-cross), or give --abi")
    if any(abi.arch != arch for abi in abis):
        raise UsageError(f"--abi must name ABIs of --arch {arch}")
    env = environment()
    findings = 0
    with tempfile.TemporaryDirectory(prefix="kvmspec-diff-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            tree = header_tree(Path(args.tree), arch_dir(header.path), tmp)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        if args.release is not None:
            release = _release_arg(args.release, model, newer_ok=True)
        elif tree.version is not None:
            release = _release_arg(f"{tree.version >> 16}.{(tree.version >> 8) & 0xFF}", model, newer_ok=True)
        else:
            raise UsageError(f"{args.tree} does not say its release (no linux/version.h, no Makefile): "
                             "give --release R")
        first = first_arch_release(model, arch)
        at = release if release is not None else newest_release(model)
        if first is not None and at.parts < first.parts:
            # The tree may still hold a linux/kvm.h (and a packager's stray asm/kvm.h).
            print(f"{args.tree}: Linux {at.release} has no KVM for {arch} (its asm/kvm.h came in "
                  f"{first.release}): nothing to compare")
            return EXIT_OK
        view = View(model, release, arch)
        print(f"spec vs {tree.description} (Linux {view.release.release}), {arch}")
        ours = tmp / "spec"
        for rel, text in header_files(model, release, arch, env).items():
            (ours / rel).parent.mkdir(parents=True, exist_ok=True)
            (ours / rel).write_text(text)
        dump = tmp / "kvm_abi_dump.c"
        dump.write_text(dump_source(view, env))
        try:
            diffs = diff_names(model, tree, arch, abis[0], view)
            for d in diffs:
                print(f"  {d.kind:12} {d.in_tree:5} in headers, {d.in_spec:5} in spec: "
                      f"{len(d.missing)} missing from the spec, {len(d.only_in_spec)} only in the spec")
                findings += len(d.missing) + len(d.only_in_spec)
            for abi in abis:
                removals = frozenset(n for d in diffs for n, mainline in d.backported if mainline.startswith("removed"))
                outcome = compare_view([f"-I{ours}"], tree, abi, dump, f"of {view.release.release}",
                                       known_header_defects(model, arch, view.release), view.release.release,
                                       removals)
                print(f"  {abi.name:12} {outcome.name.split(': ', 1)[1]}: {outcome.count} difference(s)"
                      + (f" ({outcome.detail})" if outcome.status == "failed" and not outcome.count else ""))
                findings += outcome.count + (outcome.status == "failed" and not outcome.count)
                for line in outcome.details:
                    print(f"    {line}" if line.startswith(("known defect", "set aside")) else f"    differs: {line}")
        except (NoCompiler, FileNotFoundError) as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(str(exc)) from None
    for d in diffs:
        for name, mainline in d.backported:
            print(f"    stable backport, not counted ({d.kind[:-1]}): {name} (mainline {mainline})")
        for name in d.missing:
            print(f"    missing from the spec ({d.kind[:-1]}): {name}")
        for name in d.only_in_spec:
            print(f"    only in the spec ({d.kind[:-1]}): {name}")
    print("no differences" if not findings else f"{findings} finding(s)")
    return EXIT_FINDINGS if findings else EXIT_OK


def _release_arg(text: Optional[str], model, newer_ok: bool = False):
    """A --release argument as a Version of the model (None: the newest). With newer_ok,
    a release after the spec's newest is taken as the newest, with a note: comparing
    such a tree shows what the spec still lacks."""
    from .model import Version
    from .view import newest_release
    if text is None:
        return None
    import re
    if not re.fullmatch(r"(2\.6\.\d+|[3-9]\.\d+|[1-9]\d\.\d+)", text):
        raise UsageError(f"--release {text}: give a kernel release such as 6.1 or 2.6.32")
    release = Version.parse(text)
    first = Version.parse("2.6.20")
    if newer_ok and release > newest_release(model):
        print(f"note: the spec describes releases up to {newest_release(model).release}; "
              f"comparing its newest view with Linux {release.release}")
        return None
    if release < first or release > newest_release(model):
        raise UsageError(f"--release {text}: the spec covers {first.release} to {newest_release(model).release}")
    return release


def cmd_headers(args: argparse.Namespace) -> int:
    """Write the KVM uapi headers of one architecture at one release, laid out like
    `make headers_install` (DIR/linux/kvm.h, DIR/asm/kvm.h)."""
    from .readahead import reading_ahead
    root = _root(args)
    with reading_ahead(root) as ahead:   # it reads beside the imports below
        return _headers(args, root, ahead)


def _headers(args: argparse.Namespace, root: Path, ahead) -> int:
    import tempfile
    from .emit.text import environment
    from .view import View, header_files, newest_release
    from .pipeline import render_checked
    arch = args.arch

    def render(model):
        release = _release_arg(args.release, model)
        if not any(h.arch == arch and h.emit for h in model.headers):
            raise UsageError(f"the spec has no asm/kvm.h for {arch} yet")
        shown = (release or newest_release(model)).release
        return header_files(model, release, arch, environment()), shown, len(View(model, release, arch).items)
    files, shown, items = render_checked(root, render, ahead)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    # Every file is written next to its place first, then renamed over it: a failure
    # leaves the old headers (or none), never half of them.
    staged = []
    try:
        for rel, text in files.items():
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".kvmspec-", dir=target.parent)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            staged.append((Path(tmp), target))
        for tmp, target in staged:
            os.replace(tmp, target)
    except OSError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"{arch} headers of Linux {shown} ({items} definitions) written to {out}: " +
          ", ".join(sorted(files)))
    return EXIT_OK


def _side(arg: str, root: Path, tmp: Path, label: str) -> tuple[Path, str]:
    """A spec to compare: a directory (a repository or its spec/) or a git revision of `root`."""
    from .compat import extract_revision
    path = Path(arg)
    if path.is_dir():
        if (path / "spec" / "kvmspec.yaml").is_file():
            return path.resolve(), str(path)
        if (path / "kvmspec.yaml").is_file():
            return path.resolve().parent, str(path)
        raise UsageError(f"{arg}: not a kvmspec repository or spec directory")
    dest = tmp / label
    dest.mkdir()
    extract_revision(root, arg, dest)
    return dest, arg


def _compat_findings(root: Path, old_arg: str, new_arg: Optional[str]):
    import tempfile
    from .build import load_model
    from .compat import compare
    with tempfile.TemporaryDirectory(prefix="kvmspec-compat-") as tmp:
        old_root, old_label = _side(old_arg, root, Path(tmp), "old")
        new_root, new_label = (root, "working tree") if new_arg is None else _side(new_arg, root, Path(tmp), "new")
        # the invariants of one revision (kvmspec validate) would stop a verdict on the same breaks
        old_model = load_model(old_root, invariants=False)
        new_model = load_model(new_root, invariants=False)
        return old_label, new_label, compare(old_model, new_model)


def cmd_compat_history(args: argparse.Namespace, root: Path) -> int:
    """Replay every release transition of the spec through the rules (kvmspec compat --history)."""
    import json
    from .compat.history import replay, report_lines
    from .model import Version
    if args.old is not None or args.base is not None:
        raise UsageError("--history reads one revision (the working tree, or --root); give no OLD, NEW or --base")
    since = None
    if args.since is not None:
        if not re.fullmatch(r"[0-9]+\.[0-9]+(\.[0-9]+)?", args.since):
            raise UsageError(f"--since {args.since!r}: give a release such as 5.8")
        since = Version.parse(args.since)
    history = replay(_model(root), since)
    unexplained = history.unexplained()
    errors = sum(1 for _, f in unexplained if f.level == "error")
    if args.format == "json":
        print(json.dumps({
            "releases": [r.release for r in history.releases],
            "transitions": len(history.transitions), "seconds": round(history.seconds, 3),
            "errors": errors, "unexplained": len(unexplained),
            "findings": [dict(f.as_json(), old=t.old.release, release=t.new.release,
                              explained=(exc.reason if (exc := f.explanation(t.new)) else None))
                         for t in history.transitions for f in t.findings],
            "undated": sum(len(t.undated) for t in history.transitions)}, indent=2))
    else:
        for line in report_lines(history):
            print(line)
        first, last = history.releases[0].release, history.releases[-1].release
        print(f"kvmspec compat --history: {len(history.transitions)} transitions ({first} to {last}), "
              f"{len(history.findings)} finding(s), {len(history.findings) - len(unexplained)} explained by "
              f"the spec, {errors} error(s), in {history.seconds:.2f} s")
    return EXIT_FINDINGS if errors else EXIT_OK


def cmd_compat(args: argparse.Namespace) -> int:
    import json
    from .compat import RevisionError
    root = _root(args)
    if args.history:
        return cmd_compat_history(args, root)
    if args.since is not None:
        raise UsageError("--since only goes with --history")
    if args.base is not None:
        if args.old is not None:
            raise UsageError("give either --base REV or OLD [NEW], not both")
        old_arg, new_arg = args.base, None
    else:
        old_arg, new_arg = args.old or "HEAD", args.new
    try:
        old_label, new_label, findings = _compat_findings(root, old_arg, new_arg)
    except RevisionError as exc:
        raise UsageError(str(exc)) from None
    errors = sum(1 for f in findings if f.level == "error")
    warnings = len(findings) - errors
    if args.format == "json":
        print(json.dumps({"old": old_label, "new": new_label, "errors": errors, "warnings": warnings,
                          "findings": [f.as_json() for f in findings]}, indent=2))
    else:
        for f in findings:
            print(f)
        print(f"kvmspec compat {old_label} -> {new_label}: {errors} error(s), {warnings} warning(s)")
    return EXIT_FINDINGS if errors else EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    """Review a posted uapi patch against the spec (kvmspec review PATCH)."""
    import json
    from .review import ReviewError, review
    root = _root(args)
    patch = Path(args.patch)
    if not patch.is_file():
        raise UsageError(f"{args.patch}: no such file")
    model = _model(root)
    try:
        result = review(root, model, patch, _release_arg(args.release, model))
    except ReviewError as exc:
        raise UsageError(str(exc)) from None
    counts = {level: result.count(level) for level in ("error", "warning", "question", "note")}
    if args.format == "json":
        print(json.dumps({"patch": result.patch, "headers": result.files, "not_reviewed": result.skipped,
                          "abis": list(result.abis), **{f"{k}s": v for k, v in counts.items()},
                          "remarks": [r.as_json() for r in result.remarks]}, indent=2))
    else:
        newest = args.release or max((i.since for i in model.items), key=lambda v: v.parts).release
        print(f"review of {args.patch} against the generated headers of {newest} "
              f"({', '.join(result.files)}; read back with the compiler for {', '.join(result.abis)}):")
        for r in result.remarks:
            print(r.render(args.patch))
        for f in result.skipped:
            print(f"{args.patch}: note: [not-reviewed] {f}: the spec does not generate this header")
        print(f"kvmspec review: {counts['error']} error(s), {counts['warning']} warning(s), "
              f"{counts['question']} question(s), {counts['note']} note(s)")
    return EXIT_FINDINGS if counts["error"] else EXIT_OK


def _read_document(name: str) -> str:
    """The text of the api.rst to audit; a missing or unreadable file is a usage problem."""
    path = Path(name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a directory, not an api.rst file") from None
    except PermissionError:
        raise UsageError(f"{name}: cannot be read (permission denied)") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text (invalid byte at offset {exc.start})") from None


def cmd_audit_docs(args: argparse.Namespace) -> int:
    import json
    from .audit import audit_docs, parse_version
    version = None
    if args.kernel_version is not None:
        try:
            version = parse_version(args.kernel_version)
        except ValueError as exc:
            raise UsageError(f"--kernel-version: {exc}") from None
    text = _read_document(args.document)
    model = _model(_root(args))
    report = audit_docs(model, text, args.document, version)
    if args.format == "json":
        print(json.dumps(report.as_json(), indent=2))
    else:
        for f in report.findings:
            print(f)
        print(report.summary())
    return EXIT_FINDINGS if report.errors else EXIT_OK


def cmd_doc_coverage(args: argparse.Namespace) -> int:
    import json
    from .section_coverage import coverage
    reference = _read_document(args.reference)
    ours_path = args.ours or str(_root(args) / "generated" / "Documentation" / "virt" / "kvm" / "api.rst")
    ours = _read_document(ours_path)
    report = coverage(reference, ours)
    goal = args.goal / 100
    if args.format == "json":
        print(json.dumps(report.as_json(goal), indent=2))
    else:
        for c in sorted(report.sections, key=lambda c: c.share):
            if c.share >= goal and not args.all:
                continue
            where = " (no section with this heading)" if not c.found else \
                " (matched by number; title spelt otherwise)" if c.by_number else ""
            shown = ", ".join(c.missing[:12]) + (" ..." if len(c.missing) > 12 else "")
            print(f"{args.reference}:{c.line}: {c.heading}: {c.share:.1%} of {len(c.identifiers)}{where}"
                  + (f"; missing: {shown}" if c.missing else ""))
        print(report.summary(goal))
    return EXIT_FINDINGS if args.check and report.below(goal) else EXIT_OK


def _fill(*paragraphs: str) -> str:
    import textwrap
    return "\n\n".join(textwrap.fill(p, width=78) for p in paragraphs)


def _lazy_epilog(parser: argparse.ArgumentParser, make: Callable[[], str]) -> None:
    """Give the parser its epilog when its help is formatted, not when it is built."""
    original = parser.format_help

    def format_help() -> str:
        if parser.epilog is None:
            parser.epilog = make()
        return original()
    parser.format_help = format_help  # type: ignore[method-assign]


def _audit_epilog() -> str:
    import textwrap
    from .audit import KINDS
    lines = ["findings (path:line:col: error|warning: [kind] message):"]
    for kind in KINDS.values():
        lines.append(f"  {kind.id} ({kind.severity})")
        lines += textwrap.wrap(kind.summary, width=76, initial_indent="      ", subsequent_indent="      ")
    lines += ["", "Errors are things the document gets wrong; warnings are gaps and names on their way out.",
              "", EPILOG.replace("a check found problems (e.g. stale files)", "an error-level finding")
              .replace("(no spec here, unreadable files)", "(no spec here, a missing or unreadable document)")]
    return "\n".join(lines)


def cmd_probe(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict
    from .probe import ProbeUnavailable, run_probe
    model = _model(_root(args))
    try:
        report = run_probe(model, args.device)
    except ProbeUnavailable as exc:
        print(f"kvmspec: {exc}", file=sys.stderr)
        return EXIT_USAGE
    disagreements = report.disagreements
    if args.json:
        print(json.dumps(dict(asdict(report), disagreements=disagreements), indent=2))
        return EXIT_FINDINGS if disagreements else EXIT_OK
    answered = [c for c in report.capabilities if c.system or c.vm]
    outcomes: dict[str, int] = {}
    for r in report.rejections:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    print(f"kernel {report.kernel}, implementation {report.implementation}, KVM API {report.api_version}")
    print(f"capabilities: {len(report.capabilities)} in the spec, {len(answered)} reported "
          f"({sum(1 for c in report.capabilities if c.system)} on /dev/kvm, "
          f"{sum(1 for c in report.capabilities if c.vm)} on a VM)")
    print("rejection claims: " + (", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "none to probe"))
    for r in report.rejections:
        if args.verbose or r.outcome != "confirmed":
            print(f"  {r.outcome:12} {r.ioctl} {r.field} ({r.rule}): {r.detail}")
    if report.unknown_capabilities:
        print("capability numbers the kernel answers but the spec lacks: "
              + ", ".join(str(n) for n in sorted(report.unknown_capabilities)))
    print(f"{len(disagreements)} disagreement(s) between the spec and this kernel")
    for d in disagreements:
        print(f"  {d}")
    return EXIT_FINDINGS if disagreements else EXIT_OK


def cmd_default(args: argparse.Namespace) -> int:
    """Validate, regenerate, check the headers with a C compiler, and judge compatibility with HEAD."""
    from .conformance import NoCompiler
    args.check = False
    status = cmd_generate(args)
    if status != EXIT_OK:
        return status
    root = _root(args)
    print("conformance of generated/ (C compiler):")
    try:
        status = _report_conformance(root, Path("/usr/include"))
    except NoCompiler as exc:
        print(f"  skipped: {exc}")
    return max(status, _report_compat_with_head(root))


def _report_compat_with_head(root: Path) -> int:
    """The compatibility verdict of the working tree against the last commit, when there is one."""
    from .compat import RevisionError, git_root
    print("compatibility with HEAD (kvmspec compat):")
    if git_root(root) is None:
        print("  skipped: not a git repository")
        return EXIT_OK
    try:
        _, _, findings = _compat_findings(root, "HEAD", None)
    except RevisionError as exc:
        print(f"  skipped: {exc}")
        return EXIT_OK
    except SpecError as exc:
        print(f"  skipped: the spec at HEAD is not valid ({len(exc.diagnostics)} problem(s))")
        return EXIT_OK
    for f in findings:
        print(f"  {f}")
    errors = sum(1 for f in findings if f.level == "error")
    print(f"  {errors} error(s), {len(findings) - errors} warning(s)")
    return EXIT_FINDINGS if errors else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kvmspec", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", metavar="DIR",
                        help="the repository to work on (its spec/ in, its generated/ out); "
                             "default: the one containing the current directory")
    parser.set_defaults(func=cmd_default)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("validate", help="check the spec and report every problem",
                       description="Load every spec file, check it against the schema and "
                                   "check its meaning (references, duplicates, values, layouts). "
                                   "Print each problem as path:line:col: error: ...; exit 1 if any.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("generate", help="write generated/ from the spec (or --check it)",
                       description="Render every output (C headers, Python bindings, api.rst, "
                                   "conformance tests) and replace generated/ in one atomic step. "
                                   "Output is byte-identical from run to run. With --check, write "
                                   "nothing: list the files that differ and exit 1 if any do.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true",
                   help="do not write; exit 1 and list stale files if generated/ is out of date")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("check", help="compile the conformance tests against generated and system headers",
                       description="Compile generated/tests/kvm_conformance.c (static asserts of every value, "
                                   "size and offset of the spec) against the generated headers and against a "
                                   "system include tree, for x86_64 and i386 where the compiler can, and compare "
                                   "what the two header trees say with generated/tests/kvm_abi_dump.c. Items "
                                   "newer than the system headers (their linux/version.h) are skipped there.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system-include", metavar="DIR", default="/usr/include",
                   help="include tree with the kernel's uapi headers (default: /usr/include)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("diff-header", help="compare the spec with a tree of kernel headers",
                       description="Compare the spec with the KVM uapi headers of TREE (an include directory "
                                   "such as /usr/include or `make headers_install` output, or a kernel source "
                                   "tree): the macro, struct/union and enumerator names each side has that the "
                                   "other lacks, and every macro value and record size, alignment and field "
                                   "offset, laid out by clang for each ABI of the architecture (--arch; x86: "
                                   "x86_64 and i386). Items newer than the tree's release are left out. Exit 1 "
                                   "on any difference.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tree", nargs="?", default="/usr/include", metavar="TREE",
                   help="include directory or kernel source tree (default: /usr/include)")
    p.add_argument("--arch", default="x86", choices=[a for a in dict.fromkeys(abi.arch for abi in ABIS)],
                   help="architecture whose headers TREE holds (default: x86)")
    p.add_argument("--release", metavar="R",
                   help="the tree's kernel release (default: read from linux/version.h or the Makefile; "
                        "required for a directory that has neither)")
    p.add_argument("--abi", action="append", choices=[abi.name for abi in ABIS],
                   help="ABI to compare (repeatable; default: every ABI of --arch whose base headers, or "
                        "those of its stand-in ABI, are installed)")
    p.set_defaults(func=cmd_diff_header)

    p = sub.add_parser("headers", help="write the uapi headers of one architecture at one release",
                       description="Write the KVM uapi headers that the spec says an architecture had at a "
                                   "release, laid out as `make headers_install` lays them out: DIR/linux/kvm.h "
                                   "and DIR/asm/kvm.h. Items appear as they were then: added or not yet "
                                   "removed, in the header that defined them then, with the values and "
                                   "fields of that release.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--release", metavar="R", help="kernel release, e.g. 6.1 (default: the newest the spec has)")
    p.add_argument("--arch", default="x86", choices=[a for a in dict.fromkeys(abi.arch for abi in ABIS)],
                   help="architecture (default: x86)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write linux/ and asm/ into")
    p.set_defaults(func=cmd_headers)

    p = sub.add_parser("compat", help="find ABI breaks between two revisions of the spec",
                       description="Compare two revisions of the spec and report what the change breaks for "
                                   "userspace: changed numbers and layouts, removals without deprecation, "
                                   "reused numbers, state that older kernels cannot restore, reserved space "
                                   "given a meaning although old kernels did not check it, uAPI that cannot "
                                   "be discovered, behaviour that is not opt-in, records that are not 64-bit "
                                   "clean. OLD and NEW are spec directories (or repositories) or git revisions "
                                   "of this repository; NEW defaults to the working tree and OLD to HEAD. "
                                   "Findings read path:line:col: error|warning: [rule] ...; exit 1 on any error.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", nargs="?", metavar="OLD", help="the older spec: directory or git revision (default HEAD)")
    p.add_argument("new", nargs="?", metavar="NEW", help="the newer spec (default: the working tree)")
    p.add_argument("--base", metavar="REV", help="compare the working tree with this git revision")
    p.add_argument("--history", action="store_true",
                   help="replay every release transition the spec records (since, removed, deprecated) through "
                        "the rules, and say for each finding whether the spec records it as a shipped break")
    p.add_argument("--since", metavar="X.Y", help="with --history: only transitions to this release and later")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=cmd_compat)

    p = sub.add_parser("review", help="review a posted patch to the KVM uapi headers against the spec",
                       description=_fill(
                           "Apply a patch (a diff, a mail or an mbox) that touches include/uapi/linux/kvm.h or "
                           "arch/x86/include/uapi/asm/kvm.h to a temporary copy of the generated headers of the "
                           "newest release, read both trees back through the C compiler (every macro value, "
                           "record size and the members of changed records, for x86_64 and i386), and map "
                           "each new or changed name to the spec: a new bit of a known flag set, a field in "
                           "reserved bytes, a grown record and the ioctl numbers it renumbers, a new "
                           "capability, exit reason or ioctl.",
                           "Remarks read PATCH:LINE: error|warning|question|note: [rule] ..., LINE being the "
                           "patch line that adds the name. Questions are what the spec's annotations of the "
                           "existing items ask of the new one (e.g. a restore ioctl that rejects unknown bits "
                           "of the field). Exit 1 on any error, 2 when the patch does not apply or touches no "
                           "KVM uapi header."),
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("patch", metavar="PATCH", help="the patch, mail or mbox to review")
    p.add_argument("--release", metavar="R",
                   help="the release the patch was written against (default: the newest the spec has)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("audit-docs", help="check a hand-written api.rst against the spec",
                       description=_fill(
                           "Read a document in the kernel's Documentation/virt/kvm/api.rst format and report, "
                           "against the spec: identifiers it names that no spec item defines (with the closest "
                           "spec name), names the spec has as removed or deprecated, ioctls and capabilities of "
                           "the spec that have no section in it, and sections whose :Capability:, "
                           ":Architectures:, :Type: (or :Target:) or :Parameters: field disagrees with the spec.",
                           "Only ioctls and capabilities that existed at the document's kernel version count as "
                           "missing: give the version with --kernel-version, or kvmspec infers it from the "
                           "newest name the document uses. Names that belong to headers the spec does not "
                           "describe (other architectures' asm/kvm.h, asm/kvm_para.h) are counted, not "
                           "reported. Exit 1 when any finding is an error."),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _lazy_epilog(p, _audit_epilog)   # the kinds come from kvmspec.audit: imported only for --help
    p.add_argument("document", metavar="PATH", help="the api.rst to audit")
    p.add_argument("--kernel-version", metavar="X.Y",
                   help="the kernel release the document belongs to, e.g. 6.1 (default: inferred)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=cmd_audit_docs)

    p = sub.add_parser("doc-coverage", help="how much of a reference api.rst each section of ours covers",
                       description=_fill(
                           "Split a reference api.rst (the kernel's) and ours into numbered chapters and "
                           "sections, and for each section of the reference print the share of its identifiers "
                           "(KVM_* names, struct and union names, members its C listings declare) that our "
                           "section with the same number and title also mentions, worst first, then the "
                           "distribution (min, median, how many below the goal).",
                           "Sections at or above the goal are listed only with --all. Exit 1 with --check when "
                           "any section is below the goal."),
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", metavar="REFERENCE", help="the reference api.rst, e.g. the kernel's")
    p.add_argument("ours", metavar="OURS", nargs="?",
                   help="the api.rst to measure (default: generated/Documentation/virt/kvm/api.rst)")
    p.add_argument("--goal", type=float, default=95.0, metavar="PERCENT", help="the goal per section (default 95)")
    p.add_argument("--all", action="store_true", help="list every section, not only those below the goal")
    p.add_argument("--check", action="store_true", help="exit 1 when a section is below the goal")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.set_defaults(func=cmd_doc_coverage)

    p = sub.add_parser("probe", help="check the spec against the running kernel through /dev/kvm",
                       description="Ask the running kernel, through /dev/kvm, what KVM_CHECK_EXTENSION answers for "
                                   "every capability of the spec (on /dev/kvm and on a VM), which capability numbers "
                                   "it answers that the spec lacks, and whether it really rejects the bad input that "
                                   "the spec says it rejects (unknown flag bits, non-zero reserved fields), probing "
                                   "only throwaway VMs and vCPUs it creates. Exit 1 when the spec and the kernel "
                                   "disagree, 2 when /dev/kvm is missing or cannot be opened.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--verbose", action="store_true", help="also list the rejection claims that were confirmed")
    p.add_argument("--device", default="/dev/kvm", help="the KVM device (default: /dev/kvm)")
    p.set_defaults(func=cmd_probe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SpecError as exc:
        for d in exc.diagnostics:
            print(d, file=sys.stderr)
        errors = sum(1 for d in exc.diagnostics if d.severity == "error")
        print(f"kvmspec: {errors} error(s)", file=sys.stderr)
        return EXIT_FINDINGS
    except UsageError as exc:
        print(f"kvmspec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (kvmspec ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kvmspec: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kvmspec: interrupted", file=sys.stderr)
        return 130

    except Exception as exc:  # a bug in kvmspec: say so in one line, no traceback
        print(f"kvmspec: internal error: {type(exc).__name__}: {exc} "
              "(please report it with the spec that caused it)", file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    """The `kvmspec` command. A run is short and makes a large graph of objects
    that lives until the end, so the cyclic garbage collector has nothing to
    reclaim: it is turned off, and the process ends without tearing the graph
    down (os._exit after flushing the output), which is a third of the time of
    a `kvmspec generate`."""
    global PARALLEL
    gc.disable()
    PARALLEL = True
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    entry()
