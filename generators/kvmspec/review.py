"""`kvmspec review PATCH`: what a posted uapi patch changes, read back through the compiler and judged
against the spec.

A reviewer on the list gets a patch, not YAML. The patch (a diff, a mail or
an mbox) is applied to a temporary tree laid out like the kernel's, holding
the generated headers of the newest release. Both trees are then read back
through the C compiler, for x86_64 and i386: every macro's value, every
record's size, and the offset and size of every member of the records the
patch touches. Each new or changed name is mapped to the spec's items (a new
bit of a known flag set, a field in what were reserved bytes, a grown record
and the ioctl numbers it renumbers, a new capability, exit reason or ioctl),
and the rules that need no semantic annotation of the new item give their
findings; the spec's annotations of the existing items (which ioctls
validate the field, which save ioctl emits into it, which capabilities
answer with the flag set) turn into the questions a reviewer must ask.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from .conformance import ABI_FLAGS, NoCompiler, _abi_usable, _compiler
from .model import ExitReason, FlagSet, Ioctl, Model, Record, ValueSet

HEADERS = ("include/uapi/linux/kvm.h", "arch/x86/include/uapi/asm/kvm.h")
UAPI = re.compile(r"^(include/uapi/linux/kvm\.h|arch/[a-z0-9_]+/include/uapi/asm/kvm\.h)$")
KVMIO = 0xAE
LEVELS = ("error", "warning", "question", "note")


class ReviewError(Exception):
    """The patch cannot be reviewed (it does not apply, or touches no uapi header): exit status 2."""


@dataclass(frozen=True)
class Remark:
    level: str          # error | warning | question | note
    rule: str           # a compat rule id, or a kind of remark
    line: int           # in the patch file
    message: str

    def render(self, patch_name: str) -> str:
        return f"{patch_name}:{self.line}: {self.level}: [{self.rule}] {self.message}"

    def as_json(self) -> dict:
        return {"line": self.line, "level": self.level, "rule": self.rule, "message": self.message}


@dataclass
class Review:
    patch: str
    files: list[str]
    skipped: list[str]
    remarks: list[Remark] = field(default_factory=list)
    abis: tuple[str, ...] = ()

    def count(self, level: str) -> int:
        return sum(1 for r in self.remarks if r.level == level)


# ------------------------------------------------------------------ the patch


def patch_text(raw: bytes) -> str:
    """The diff text of a patch file, a mail or an mbox (mail bodies decoded, quoted-printable included)."""
    text = raw.decode("utf-8", errors="replace")
    if not re.match(r"(From |Return-Path:|Received:|Date:|Subject:|Message-I[Dd]:|From:)", text):
        return text
    chunks = re.split(r"(?m)^From \S+ .*\n", text) if text.startswith("From ") else [text]
    bodies = []
    for chunk in chunks:
        if not chunk.strip():
            continue
        message = email.message_from_string(chunk, policy=email.policy.default)
        for part in message.walk():
            if part.get_content_maintype() == "text":
                payload = part.get_payload(decode=True)
                if payload is not None:
                    bodies.append(payload.decode(part.get_content_charset() or "utf-8", errors="replace"))
    return "\n".join(bodies) if bodies else text


def touched_files(diff: str) -> list[str]:
    names = []
    for m in re.finditer(r"(?m)^\+\+\+ (?:b/)?(\S+)", diff):
        if m.group(1) != "/dev/null" and m.group(1) not in names:
            names.append(m.group(1))
    return names


def _apply(diff: str, tree: Path, files: list[str]) -> None:
    git = shutil.which("git")
    attempts = []
    if git:
        attempts.append([git, "apply", "-C1", "--unidiff-zero", "--whitespace=nowarn",
                         *(f"--include={f}" for f in files)])
    if shutil.which("patch"):
        attempts.append(["patch", "-p1", "-F2", "-s", "-N", "--no-backup-if-mismatch", "-r", "-", "--dry-run"])
    if not attempts:
        raise ReviewError("neither git nor patch is installed (install git)")
    problem = ""
    for command in attempts:
        result = subprocess.run(command, cwd=tree, input=diff, capture_output=True, text=True)
        if result.returncode == 0:
            if command[0] == "patch":   # dry run succeeded: apply for real
                subprocess.run(command[:-1], cwd=tree, input=diff, capture_output=True, text=True, check=True)
            return
        problem = problem or (result.stderr or result.stdout).strip().splitlines()[0:1]
    detail = problem[0] if problem else "unknown reason"
    raise ReviewError(f"the patch does not apply to the generated headers of the newest release: {detail}")


# ------------------------------------------------------------------ reading headers through the compiler


@dataclass
class Facts:
    """What one header tree says on one ABI."""

    macros: dict[str, str]                       # object-like macros of the KVM headers: name -> body
    values: dict[str, int]                       # those that are integer constants
    bodies: dict[str, str]                       # "struct x" -> its declaration text
    sizes: dict[str, int]                        # "struct x" -> sizeof
    members: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # record -> member -> off, size


def _includes(tree: Path) -> list[str]:
    return [f"-I{tree / 'include/uapi'}", f"-I{tree / 'arch/x86/include/uapi'}"]


def _preprocessed(cc: str, tree: Path, abi: str) -> tuple[dict[str, str], dict[str, str]]:
    result = subprocess.run([cc, ABI_FLAGS[abi], *_includes(tree), "-E", "-dD", "-x", "c", "-"],
                            input="#include <linux/kvm.h>\n", capture_output=True, text=True)
    if result.returncode != 0:
        first = next((l for l in result.stderr.splitlines() if "error" in l), result.stderr.strip())
        raise ReviewError(f"the patched headers do not compile: {first.replace(str(tree) + '/', '')}")
    macros: dict[str, str] = {}
    code: list[str] = []
    current = ""
    for line in result.stdout.splitlines():
        marker = re.match(r'# \d+ "([^"]+)"', line)
        if marker:
            current = marker.group(1)
            continue
        if not current.endswith(("linux/kvm.h", "asm/kvm.h")):
            continue
        define = re.match(r"#define (\w+)(\(?)\s*(.*)", line)
        if define:
            if not define.group(2) and define.group(3).strip():
                macros[define.group(1)] = define.group(3).strip()
        elif not line.startswith("#"):
            code.append(line)
    text = "\n".join(code)
    bodies = {}
    for m in re.finditer(r"\b(struct|union)\s+(\w+)\s*\{", text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        bodies[f"{m.group(1)} {m.group(2)}"] = " ".join(text[m.end():i].split())
    return macros, bodies


def member_names(body: str) -> list[str]:
    """Members reachable by name from a record body: its named members, and those of anonymous ones."""
    names: list[str] = []
    depth, start, i = 0, 0, 0
    statements = []
    while i < len(body):
        c = body[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ";" and depth == 0:
            statements.append(body[start:i].strip())
            start = i + 1
        i += 1
    for st in statements:
        if "{" in st:
            inner = st[st.index("{") + 1:st.rindex("}")]
            tail = st[st.rindex("}") + 1:].strip()
            name = re.match(r"(\w+)", tail)
            if name:
                names.append(name.group(1))
            else:
                names.extend(member_names(inner))
            continue
        st = re.sub(r"__attribute__\s*\(\(.*?\)\)", "", st)
        for decl in st.split(","):
            m = re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*(:\s*\d+)?\s*$", decl.strip())
            if m and not m.group(3):
                names.append(m.group(1))
    return names


def _evaluate(cc: str, tree: Path, abi: str, lines: list[tuple[str, str]], tmp: Path) -> dict[str, tuple[int, ...]]:
    """key -> numbers, for each (key, printf arguments) that compiles; lines that do not are dropped."""
    live = list(lines)
    for _ in range(8):
        source = ["#include <linux/kvm.h>", "#include <stdio.h>", "#include <stddef.h>",
                  "int main(void) {"]
        offset = len(source) + 1
        for key, expr in live:
            source.append(f'  printf("%s %llu %llu\\n", "{key}", {expr});')
        source.append("  return 0;\n}")
        program = tmp / f"facts-{abi}.c"
        program.write_text("\n".join(source) + "\n")
        exe = tmp / f"facts-{abi}"
        build = subprocess.run([cc, ABI_FLAGS[abi], "-w", "-std=gnu11", *_includes(tree), "-o", str(exe),
                                str(program)], capture_output=True, text=True)
        if build.returncode == 0:
            out = subprocess.run([str(exe)], capture_output=True, text=True).stdout
            result = {}
            for row in out.splitlines():
                key, a, b = row.rsplit(" ", 2)
                result[key] = (int(a), int(b))
            return result
        # an error inside a header names the program's line in its "in expansion of macro" note
        bad = {int(n) for n in re.findall(rf"{re.escape(program.name)}:(\d+):\d+:", build.stderr)}
        if not bad:
            raise ReviewError(f"the compiler cannot read the patched headers: "
                              f"{next((l for l in build.stderr.splitlines() if 'error' in l), '?')}")
        live = [entry for n, entry in enumerate(live, start=offset) if n not in bad]
    return {}


def read_facts(cc: str, tree: Path, abi: str, tmp: Path, detail: Iterable[str] = ()) -> Facts:
    macros, bodies = _preprocessed(cc, tree, abi)
    lines = [(f"v {name}", f"(unsigned long long)({name}), 0ULL") for name in sorted(macros)]
    lines += [(f"s {rec}", f"(unsigned long long)sizeof({rec}), 0ULL") for rec in sorted(bodies)]
    for rec in detail:
        if rec not in bodies:
            continue
        for m in member_names(bodies[rec]):
            lines.append((f"m {rec}.{m}", f"(unsigned long long)offsetof({rec}, {m}), "
                                          f"(unsigned long long)sizeof((({rec} *)0)->{m})"))
    tmp.mkdir(parents=True, exist_ok=True)
    got = _evaluate(cc, tree, abi, lines, tmp)
    facts = Facts(macros, {}, bodies, {})
    for key, (a, b) in got.items():
        kind, name = key.split(" ", 1)
        if kind == "v":
            facts.values[name] = a
        elif kind == "s":
            facts.sizes[name] = a
        else:
            rec, member = name.rsplit(".", 1)
            facts.members.setdefault(rec, {})[member] = (a, b)
    return facts


# ------------------------------------------------------------------ judging


def _tokens(name: str) -> list[str]:
    return name.split("_")


def _common_prefix(names: list[str]) -> list[str]:
    parts = [_tokens(n) for n in names]
    out = []
    for group in zip(*parts):
        if all(g == group[0] for g in group):
            out.append(group[0])
        else:
            break
    return out


def owning_set(model: Model, name: str) -> Optional[ValueSet]:
    """The flag set or enum whose values are named like `name` (longest common name prefix, at least 2 words)."""
    best, best_len = None, 1
    tokens = _tokens(name)
    for vs in model.of_kind(ValueSet):
        names = [v.name for v in vs.values if v.removed is None]
        if not names:
            continue
        prefix = _common_prefix(names) if len(names) > 1 else _tokens(names[0])[:-1]
        if len(prefix) > best_len and tokens[:len(prefix)] == prefix and len(tokens) > len(prefix):
            best, best_len = vs, len(prefix)
    return best


def _ioc(number: int) -> Optional[tuple[str, int, int]]:
    """(direction, nr, size) of an x86 ioctl number of KVMIO, or None."""
    if (number >> 8) & 0xFF != KVMIO or number >> 32:
        return None
    direction = {0: "_IO", 1: "_IOW", 2: "_IOR", 3: "_IOWR"}[(number >> 30) & 3]
    return direction, number & 0xFF, (number >> 16) & 0x3FFF


class Reviewer:
    def __init__(self, model: Model, diff: str, old: dict[str, Facts], new: dict[str, Facts],
                 original: str = "", release=None) -> None:
        self.model, self.diff, self.old, self.new = model, diff, old, new
        self.release = release   # the tree the patch was written for (None: the newest)
        self.remarks: list[Remark] = []
        # lines are those of the file as given (a mail's body starts after its headers) unless its body
        # had to be decoded; then those of the decoded diff
        source = original if original and diff in original else diff
        self.added_lines = [(n, l[1:]) for n, l in enumerate(source.splitlines(), start=1)
                            if l.startswith("+") and not l.startswith("+++")]
        self.native = "x86_64" if "x86_64" in new else next(iter(new))
        self.new_values: dict[str, ValueSet] = {}     # new bits or values of known sets, by name

    def line_of(self, name: str) -> int:
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        return next((n for n, text in self.added_lines if pattern.search(text)), 1)

    def add(self, level: str, rule: str, name: str, message: str) -> None:
        self.remarks.append(Remark(level, rule, self.line_of(name), message))

    def run(self) -> list[Remark]:
        new, old = self.new[self.native], self.old[self.native]
        added = [n for n in new.macros if n not in old.macros]
        removed = [n for n in old.macros if n not in new.macros]
        new_caps = [n for n in added if n.startswith("KVM_CAP_") and n in new.values]
        new_exits = [n for n in added if n.startswith("KVM_EXIT_") and n in new.values and new.values[n] < 0x10000
                     and "_FLAG" not in n and not owning_set(self.model, n)]
        # KVM_EXIT_ARM_SEA_FLAG_GPA_VALID belongs to KVM_EXIT_ARM_SEA, it is no exit reason of its own
        new_exits = [n for n in new_exits if not any(n != o and n.startswith(o + "_") for o in new_exits)]
        for name in added:
            if name in new_caps:
                self.capability(name, new.values[name], new_exits)
            elif name in new_exits:
                self.exit_reason(name, new.values[name], new_caps)
            elif name in new.values and _ioc(new.values[name]) is not None:
                self.new_ioctl(name, new.values[name])
            else:
                self.new_value(name, new.values.get(name))
        for name in removed:
            item = self.model.by_name.get(name)
            if item is not None and item.deprecated is None:
                self.add("error", "removed-without-deprecation", name,
                         f"{name} ({item.kind} of the spec) is removed without having been deprecated: userspace "
                         f"that uses it no longer builds")
        self.changed_values()
        self.records()
        order = {level: i for i, level in enumerate(LEVELS)}
        return sorted(self.remarks, key=lambda r: (r.line, order[r.level], r.message))

    # ------------------------------------------------------------ values
    def changed_values(self) -> None:
        renumbered = self._renumbered_by_records()
        for abi, new in self.new.items():
            old = self.old[abi]
            for name, value in new.values.items():
                before = old.values.get(name)
                if before is None or before == value or name in renumbered:
                    continue
                self.add("error", "value-changed", name,
                         f"{name} changes from {before:#x} to {value:#x} on {abi}: binaries built against the "
                         f"old header use the old number")
                renumbered.add(name)

    def new_value(self, name: str, value: Optional[int]) -> None:
        vs = owning_set(self.model, name)
        if vs is None:
            self.add("note", "new-constant", name,
                     f"new constant {name}" + (f" = {value:#x}" if value is not None else "") +
                     ": no flag set or enum of the spec is named like it")
            return
        if value is None:
            self.add("note", "new-constant", name, f"new {name} in {vs.kind} {vs.name}, not an integer constant")
            return
        what = "bit" if isinstance(vs, FlagSet) else "value"
        clash = [v.name for v in vs.values if v.removed is None and not v.mask and self.had(v) and
                 ((v.value & value) if isinstance(vs, FlagSet) else v.value == value)]
        if clash:
            self.add("error", "meaning-reused", name,
                     f"{name} = {value:#x} reuses {'bits' if isinstance(vs, FlagSet) else 'the value'} of "
                     f"{', '.join(clash)} in {vs.kind} {vs.name}: old userspace and saved state give it the old "
                     f"meaning")
        else:
            self.add("note", "new-value", name, f"new {what} {name} = {value:#x} of {vs.kind} {vs.name}")
            self.new_values[name] = vs
        self.uses_of(name, vs, what)

    def uses_of(self, name: str, vs: ValueSet, what: str) -> None:
        """The questions the spec's annotations of the set's uses raise."""
        unknown = "unknown_bits" if isinstance(vs, FlagSet) else "unknown_values"
        plural = "bits" if isinstance(vs, FlagSet) else "values"
        for ioctl in self.model.ioctls:
            for v in ioctl.validations:
                if vs not in v.field.value_sets:
                    continue
                rejecting, ignoring = self._impls(ioctl, v, unknown)
                save = self.model.by_name.get(ioctl.restores) if ioctl.restores else None
                if rejecting and isinstance(save, Ioctl):
                    self.add("question", "unrestorable-state", name,
                             f"{ioctl.name} rejects unknown {plural} in {v.path} on {', '.join(rejecting)}: if "
                             f"{save.name} emits {name}, it must be opt-in (emitted only after userspace enabled a "
                             f"capability with KVM_ENABLE_CAP), or state saved on this kernel cannot be restored "
                             f"on older ones")
                elif rejecting:
                    self.add("question", "undiscoverable-uapi", name,
                             f"{ioctl.name} rejects unknown {plural} in {v.path} on {', '.join(rejecting)}: older "
                             f"kernels fail with EINVAL when userspace passes {name}; which capability tells "
                             f"userspace that it is accepted?")
                if ignoring:
                    self.add("question", "not-opt-in", name,
                             f"{ioctl.name} ignores unknown {plural} in {v.path} on {', '.join(ignoring)}: older "
                             f"kernels silently drop {name}; is that harmless, or must userspace check a "
                             f"capability first?")
                if vs.implementations or any(x.implementations for x in vs.values):
                    foreign = v.verdict("foreign_" + plural)
                    table = dict(next((t for k, t in v.verdicts if k == "foreign_" + plural), ()))
                    if table or foreign:
                        how = ", ".join(f"{k} {val}" for k, val in table.items()) or foreign
                        self.add("question", "implementations", name,
                                 f"which implementations define {name}? {ioctl.name} treats other "
                                 f"implementations' {plural} in {v.path} as: {how}")
            for e in ioctl.emissions:
                if vs in e.field.value_sets and e.requires is None and ioctl.restored_by:
                    pass   # covered by the restore side's question
        for cap in self.model.capabilities:
            if cap.answer_flags is vs:
                self.add("question", "capability-meaning-changed", name,
                         f"KVM_CHECK_EXTENSION({cap.name}) answers with {vs.name} bits: does this kernel report "
                         f"{name} there, so that userspace can tell it is supported?")
            for arg in cap.enable_args:
                if arg.flags is vs or arg.enum is vs:
                    self.add("question", "validation-tightened", name,
                             f"KVM_ENABLE_CAP({cap.name}) takes {vs.name} in args[{arg.index}]: does it accept "
                             f"{name}, and what do older kernels do with it (the spec says: "
                             f"{' '.join(arg.doc.split())})")

    def _impls(self, ioctl: Ioctl, v, kind: str) -> tuple[list[str], list[str]]:
        impls = [i.name for i in self.model.implementations() if not ioctl.arch or i.arch in ioctl.arch]
        impls = impls or [""]
        rejecting = [i or "every architecture" for i in impls if v.verdict(kind, i) == "rejected"]
        ignoring = [i or "every architecture" for i in impls if v.verdict(kind, i) == "ignored"]
        return rejecting, ignoring

    def had(self, thing) -> bool:
        """Whether the release the patch was written for had it (the spec may know it from later)."""
        return self.release is None or thing.exists_at(self.release)

    # ------------------------------------------------------------ capabilities, exits, ioctls
    def capability(self, name: str, value: int, new_exits: list[str]) -> None:
        taken = next((c for c in self.model.capabilities if c.value == value and self.had(c)), None)
        if taken is not None:
            self.add("error", "meaning-reused", name,
                     f"capability number {value} of {name} is already {taken.name}: userspace built against "
                     f"either header asks for the other feature")
            return
        highest = max(c.value for c in self.model.capabilities if self.had(c))
        note = "" if value == highest + 1 else f" (the spec's highest is {highest}: another series may take it)"
        self.add("note", "new-capability", name, f"new capability {name} = {value}{note}")
        self.add("question", "undiscoverable-uapi", name,
                 f"where does KVM_CHECK_EXTENSION answer for {name} (system, VM, vCPU descriptor), what does the "
                 f"answer mean (boolean, count, bitmask), and is it opt-in with KVM_ENABLE_CAP (on which "
                 f"descriptor, with which arguments)?")

    def exit_reason(self, name: str, value: int, new_caps: list[str]) -> None:
        taken = next((e for e in self.model.of_kind(ExitReason) if e.value == value and self.had(e)), None)
        if taken is not None:
            self.add("error", "meaning-reused", name,
                     f"exit reason {value} of {name} is already {taken.name}: userspace handles it as the other "
                     f"exit")
            return
        self.add("note", "new-exit", name, f"new exit reason {name} = {value}")
        gate = f" ({', '.join(new_caps)} in this patch?)" if new_caps else ""
        self.add("question", "not-opt-in", name,
                 f"KVM_RUN reports {name} to userspace that may not know it: which capability must userspace "
                 f"enable first{gate}, so that old userspace never gets it?")

    def new_ioctl(self, name: str, number: int) -> None:
        direction, nr, size = _ioc(number)  # type: ignore[misc]
        same = [i.name for i in self.model.ioctls if i.removed is None and i.nr == nr]
        clash = [i.name for i in self.model.ioctls if i.number == number]
        if clash:
            self.add("error", "meaning-reused", name, f"{name} has the number {number:#x} of {', '.join(clash)}")
        self.add("note", "new-ioctl", name,
                 f"new ioctl {name} = {direction}(KVMIO, {nr:#x}, {size} bytes)"
                 + (f"; nr {nr:#x} is also used by {', '.join(same)} (different direction or size)" if same else ""))
        self.add("question", "undiscoverable-uapi", name,
                 f"which capability tells userspace that {name} is available, and on which descriptor is it "
                 f"issued?")

    # ------------------------------------------------------------ records
    def _renumbered_by_records(self) -> set[str]:
        out = set()
        for abi, new in self.new.items():
            old = self.old[abi]
            for rec, size in new.sizes.items():
                if rec in old.sizes and old.sizes[rec] != size:
                    name = rec.split(" ", 1)[1]
                    record = self.model.by_name.get(name)
                    for i in self.model.ioctls:
                        if isinstance(record, Record) and (i.type_record is record):
                            out.add(i.name)
        return out

    def records(self) -> None:
        new, old = self.new[self.native], self.old[self.native]
        changed = sorted(r for r in new.bodies if r in old.bodies and new.bodies[r] != old.bodies[r])
        for rec in sorted(r for r in new.bodies if r not in old.bodies):
            self.add("note", "new-record", rec.split()[1], f"new {rec} ({new.sizes.get(rec, '?')} bytes on "
                                                           f"{self.native})")
        for rec in changed:
            self.record(rec)

    def record(self, rec: str) -> None:
        name = rec.split(" ", 1)[1]
        model_rec = self.model.by_name.get(name)
        for abi, new in self.new.items():
            old = self.old[abi]
            before, after = old.members.get(rec, {}), new.members.get(rec, {})
            reserved = {f.name for f in model_rec.members if f.reserved} if isinstance(model_rec, Record) else set()
            for m, (off, size) in before.items():
                if m in reserved:
                    continue   # reserved space may shrink or move: the fields taken from it are judged below
                if m in after and after[m][0] != off:
                    self.add("error", "layout-changed", m,
                             f"{rec}.{m} moves from offset {off} to {after[m][0]} on {abi}: old binaries and the "
                             f"kernel disagree about its bytes")
                elif m not in after:
                    self.add("error", "layout-changed", name, f"{rec}.{m} is gone on {abi}")
            if old.sizes.get(rec) != new.sizes.get(rec):
                self.grown(rec, model_rec, abi, old.sizes.get(rec), new.sizes.get(rec))
        new, old = self.new[self.native], self.old[self.native]
        for m in [m for m in new.members.get(rec, {}) if m not in old.members.get(rec, {})]:
            self.new_member(rec, model_rec, m, *new.members[rec][m])

    def grown(self, rec: str, record, abi: str, before, after) -> None:
        added = [m for m in self.new[abi].members.get(rec, {}) if m not in self.old[abi].members.get(rec, {})]
        name = added[0] if added else rec.split(" ", 1)[1]
        users = [i for i in self.model.ioctls if isinstance(record, Record) and i.type_record is record]
        if users:
            numbers = "; ".join(f"{i.name} {self.old[abi].values.get(i.name, 0):#x} -> "
                                f"{self.new[abi].values.get(i.name, 0):#x}" for i in users)
            self.add("error", "layout-changed", name,
                     f"{rec} grows from {before} to {after} bytes on {abi}, which renumbers the ioctls that "
                     f"encode it: {numbers}")
            return
        containers = self._containers(record)
        kept = [c for c in containers if self.old[abi].sizes.get(f"struct {c[0].name}",
                                                                 self.old[abi].sizes.get(f"union {c[0].name}")) ==
                self.new[abi].sizes.get(f"struct {c[0].name}", self.new[abi].sizes.get(f"union {c[0].name}"))]
        if containers and len(kept) == len(containers):
            where = ", ".join(f"{c[0].c_type}.{c[1]}" for c in containers)
            if abi == self.native:
                self.add("note", "layout", name,
                         f"{rec} grows from {before} to {after} bytes on {abi} inside {where}, whose size does "
                         f"not change: no ioctl number changes")
        else:
            self.add("error", "layout-changed", name, f"{rec} grows from {before} to {after} bytes on {abi}")

    def _containers(self, record) -> list[tuple[Record, str, tuple[int, ...]]]:
        """(record, path, offsets) of every place another record embeds `record`."""
        out = []
        if not isinstance(record, Record):
            return out
        for other in self.model.records:
            if other.inline:
                continue
            for path, f, offs in other.walk():
                if f.record is record and f.name:
                    out.append((other, path, offs))
        return out

    def new_member(self, rec: str, record, member: str, offset: int, size: int) -> None:
        """A field that was not there: which bytes it takes, and whether old kernels checked them."""
        old = self.old[self.native].members.get(rec, {})
        reserved = set()
        if isinstance(record, Record):
            reserved = {f.name for f in record.members if f.reserved and f.name}
        overlapped = [m for m, (o, s) in old.items() if o < offset + size and offset < o + s]
        same_size = self.old[self.native].sizes.get(rec) == self.new[self.native].sizes.get(rec)
        if overlapped and same_size and all(old[m][0] == offset for m in overlapped):
            # it shares its offset with every member it overlaps: a new member of a union
            union = max(old[m][1] for m in overlapped)
            fits = "fits" if size <= union else "does not fit"
            self.add("note" if size <= union else "error", "layout", member,
                     f"new {rec}.{member} ({size} bytes) is a new member of the union at offset {offset} "
                     f"(with {', '.join(overlapped[:3])}{', ...' if len(overlapped) > 3 else ''}) and {fits} in "
                     f"its {union} bytes; {rec} keeps its size")
            return
        if overlapped and all(m in reserved for m in overlapped):
            self.reserved_bytes(member, rec, record, [(record, m) for m in overlapped], offset, size)
            return
        if overlapped:
            self.add("error", "layout-changed", member,
                     f"new {rec}.{member} overlaps {', '.join(overlapped)}, which are not reserved")
            return
        old_size = self.old[self.native].sizes.get(rec, 0)
        if offset >= old_size:
            places = []
            for container, path, offs in self._containers(record):
                base = offs[0]
                for cpath, f, coffs in container.walk():
                    if f.reserved and f.name and coffs[0] < base + offset + size and base + offset < coffs[0] + \
                            f.size():
                        places.append((container, cpath))
            if places:
                self.reserved_bytes(member, rec, record, places, offset, size)
            else:
                self.add("note", "layout", member, f"new {rec}.{member} at offset {offset} ({size} bytes)")

    def _gates(self, containers) -> list[str]:
        """New bits of this patch in flag fields of the containers that their input ioctls reject as unknown."""
        out = []
        for name, vs in self.new_values.items():
            for ioctl in self.model.ioctls:
                if ioctl.arg_record not in containers:
                    continue
                for v in ioctl.validations:
                    if vs in v.field.value_sets and self._impls(ioctl, v, "unknown_bits")[0]:
                        out.append(name)
        return list(dict.fromkeys(out))

    def reserved_bytes(self, member: str, rec: str, record, places, offset: int, size: int) -> None:
        unchecked, checked = [], []
        for container, path in places:
            for ioctl in self.model.ioctls:
                if ioctl.arg_record is not container or ioctl.arg_flow not in ("in", "inout") or ioctl.restored_by:
                    continue
                v = next((x for x in ioctl.validations if x.path == path), None)
                impls = [i.name for i in self.model.implementations() if not ioctl.arch or i.arch in ioctl.arch]
                bad = [i for i in impls or [""] if v is None or v.verdict("nonzero", i) != "rejected"]
                (unchecked if bad else checked).append(ioctl.name)
        where = ", ".join(f"{c.c_type}.{p}" for c, p in places)
        if unchecked:
            gates = self._gates([c for c, _ in places])
            gate = ""
            if gates:
                gate = (f"; is it read only when {' or '.join(gates)} (new in this patch, rejected as unknown by "
                        f"older kernels) is set?")
            self.add("warning" if gates else "error", "reserved-field-reused", member,
                     f"new {rec}.{member} takes {size} byte{'s' * (size != 1)} of reserved space ({where}) "
                     f"that {', '.join(dict.fromkeys(unchecked))} never checked for zero: old userspace may have "
                     f"left anything there{gate}"
                     + ("" if gates else "; gate it with a new flag that older kernels reject"))
        elif checked:
            self.add("note", "layout", member,
                     f"new {rec}.{member} takes reserved bytes ({where}) that {', '.join(checked)} checked for "
                     f"zero: old userspace left them zero")


# ------------------------------------------------------------------ the command


def review(root: Path, model: Model, patch: Path, release=None) -> Review:
    """Review a patch against the generated headers of the newest release, or against the
    headers of `release` as the spec has them (a patch posted for an older tree)."""
    raw = patch.read_bytes()
    diff = patch_text(raw)
    files = touched_files(diff)
    uapi = [f for f in files if UAPI.match(f)]
    ours = [f for f in uapi if f in HEADERS]
    if not files:
        raise ReviewError(f"{patch}: no diff found (give a patch, a mail or an mbox)")
    if not uapi:
        raise ReviewError(f"{patch}: touches no KVM uapi header (include/uapi/linux/kvm.h or "
                          f"arch/*/include/uapi/asm/kvm.h); it changes {', '.join(files[:4])}")
    if not ours:
        raise ReviewError(f"{patch}: touches only {', '.join(uapi)}, which the spec does not generate "
                          f"(it has linux/kvm.h and x86's asm/kvm.h)")
    try:
        cc = _compiler()
    except NoCompiler as exc:
        raise ReviewError(str(exc)) from None
    abis = tuple(a for a in ABI_FLAGS if _abi_usable(cc, a, []) is None) or ("x86_64",)
    with tempfile.TemporaryDirectory(prefix="kvmspec-review-") as tmp:
        base, patched = Path(tmp) / "base", Path(tmp) / "patched"
        then = None
        if release is not None:
            from .emit.text import environment
            from .view import header_files
            rendered = header_files(model, release, "x86", environment())
            then = {"include/uapi/linux/kvm.h": rendered["linux/kvm.h"],
                    "arch/x86/include/uapi/asm/kvm.h": rendered["asm/kvm.h"]}
        for tree in (base, patched):
            for rel in HEADERS:
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                if then is not None:
                    (tree / rel).write_text(then[rel])
                else:
                    shutil.copyfile(root / "generated" / rel, tree / rel)
        _apply(diff, patched, ours)
        old, new = {}, {}
        for abi in abis:
            o = read_facts(cc, base, abi, Path(tmp) / "o")
            n = read_facts(cc, patched, abi, Path(tmp) / "n")
            changed = [r for r in n.bodies if r in o.bodies and n.bodies[r] != o.bodies[r]]
            if changed:
                o = read_facts(cc, base, abi, Path(tmp) / "o", changed)
                n = read_facts(cc, patched, abi, Path(tmp) / "n", changed)
            old[abi], new[abi] = o, n
    result = Review(str(patch), ours, [f for f in uapi if f not in ours], abis=abis)
    result.remarks = Reviewer(model, diff, old, new, raw.decode("utf-8", errors="replace"), release).run()
    return result
