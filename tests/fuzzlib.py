"""Fuzzing kvmspec: broken and random specs, and the contract every run must keep.

The contract (the "Robustness" issue): for any spec, `kvmspec validate` and
`kvmspec generate` either succeed, and then the generated headers compile
and the generated bindings import, or they exit 1 with `path:line:col:
error:` lines. Never a traceback, an internal error, a hang or another exit
status; and a failed `generate` leaves generated/ as it was.

Used by tests/test_fuzz.py (a bounded, reproducible run in CI) and by
benchmarks/fuzz_long.py (a long run). Cases come from two sources:

- mutations of one file of the real spec (`mutated_file`): drop, duplicate,
  retype, rename, renumber and move keys, out-of-range and huge numbers,
  hostile strings (non-ASCII, control characters, comment and docstring
  terminators, RST directives), deep nesting, and text-level damage;
- small random specs that are well formed by construction (`random_spec`):
  constants, flag sets, enums, structs and ioctls that must validate and
  generate, whose headers must compile and whose bindings must import and
  agree with the spec.

kvmspec runs in-process (cli.main), which is what makes hundreds of cases fit
in a CI budget; compiling and importing run only for successful cases.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import keyword
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from hypothesis import strategies as st

from kvmspec.cli import main

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "spec"
MANIFEST = "kvmspec.yaml"

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# One diagnostic line, a hint under it, or the closing count.
DIAGNOSTIC = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): \S")
HINT = re.compile(r"^    hint: ")
SUMMARY = re.compile(r"^kvmspec: \d+ error\(s\)$")


class Hang(BaseException):
    """A run took longer than its budget (a BaseException so kvmspec cannot swallow it)."""


@dataclass
class Run:
    args: tuple[str, ...]
    status: Any
    out: str
    err: str


@dataclass
class Outcome:
    """What one case did, and every way it broke the contract."""

    kind: str = ""
    validate: Optional[Run] = None
    generate: Optional[Run] = None
    problems: list[str] = field(default_factory=list)
    compiled: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def succeeded(self) -> bool:
        return self.generate is not None and self.generate.status == 0


@contextlib.contextmanager
def _time_limit(seconds: float):
    def expire(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(root: Path, *args: str, timeout: float = 60.0) -> Run:
    """kvmspec --root ROOT ARGS, in this process, with its output captured."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with _time_limit(timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status: Any = main(["--root", str(root), *args])
            except SystemExit as exc:  # main() returns; a SystemExit is itself a finding
                status = f"SystemExit({exc.code!r})"
    except Hang as exc:
        status = f"hang: {exc}"
    except BaseException as exc:  # noqa: BLE001 - anything escaping main() is a finding
        import traceback
        status = f"escaped {type(exc).__name__}: {exc}"
        err.write(traceback.format_exc())
    return Run(args, status, out.getvalue(), err.getvalue())


def contract_problems(run: Run) -> list[str]:
    """How one run breaks the contract: exit 0, or exit 1 with only diagnostics."""
    problems = []
    name = " ".join(run.args)
    text = run.out + run.err
    if "Traceback" in text:
        problems.append(f"{name}: traceback:\n{run.err[-3000:]}")
    if "internal error" in text:
        problems.append(f"{name}: internal error: {run.err.strip()[-2000:]}")
    if run.status not in (0, 1):
        problems.append(f"{name}: exit status {run.status!r}\n{run.err[-2000:]}")
    elif run.status == 1:
        lines = run.err.splitlines()
        if not any(DIAGNOSTIC.match(line) for line in lines):
            problems.append(f"{name}: exit 1 without a path:line:col: error: line:\n{run.err[-2000:]}")
        stray = [line for line in lines if not (DIAGNOSTIC.match(line) or HINT.match(line) or SUMMARY.match(line))]
        if stray:
            problems.append(f"{name}: exit 1 with lines that are not diagnostics: {stray[:5]!r}")
    return problems


def tree_digest(directory: Path) -> dict[str, str]:
    """sha256 of every file under directory (caches left out), by relative path."""
    found = {}
    if not directory.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            p = Path(dirpath) / name
            found[p.relative_to(directory).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return dict(sorted(found.items()))


# ------------------------------------------------------------------ checking outputs


def _header_dirs(root: Path) -> list[str]:
    """-I options for every include/uapi tree under generated/ (as conformance.py does)."""
    gen = root / "generated"
    dirs = sorted({str(p.parent.parent) for p in gen.rglob("*.h")
                   if p.parent.parent.name == "uapi" or p.parent.name in ("linux", "asm")})
    return [f"-I{d}" for d in dirs]


def compile_headers(root: Path) -> list[str]:
    """gcc -fsyntax-only on a C file that includes every generated header of the host (x86):
    the shared ones and x86's asm/kvm.h; other architectures' need their own base headers."""
    gen = root / "generated"
    headers = sorted(h for h in gen.rglob("*.h")
                     if "arch" not in h.relative_to(gen).parts[:1] or h.relative_to(gen).parts[1] == "x86")
    if not headers:
        return []
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return []
    includes = [f"-I{gen / 'include/uapi'}", f"-I{gen / 'arch/x86/include/uapi'}"]
    source = "".join(f'#include "{h}"\n' for h in headers) + "int main(void) { return 0; }\n"
    proc = subprocess.run([cc, "-fsyntax-only", "-Werror", "-x", "c", *includes, "-"], input=source,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return [f"generated headers do not compile:\n{proc.stderr[-3000:]}"]
    return []


def import_bindings(root: Path, script: str = "") -> list[str]:
    """Import kvm_uapi (and its API module) from generated/python in a fresh interpreter."""
    python_dir = root / "generated" / "python"
    if not (python_dir / "kvm_uapi" / "__init__.py").is_file():
        return []
    code = "import kvm_uapi, kvm_uapi.api\n" + script
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(python_dir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, cwd=str(root))
    if proc.returncode != 0:
        return [f"generated bindings do not import:\n{proc.stderr[-3000:]}"]
    return []


# ------------------------------------------------------------------ a reusable scratch repository


class Workspace:
    """A scratch repository with a copy of the real spec, reused across cases.

    Each case writes its files, runs kvmspec, and `reset()` puts the real
    spec back (only the files the case touched), so a case costs no copy.
    """

    def __init__(self, root: Path, copy_spec: bool = True) -> None:
        self.root = root
        if copy_spec:
            shutil.copytree(SPEC, root / "spec")
        else:
            (root / "spec").mkdir(parents=True)
        self.touched: dict[Path, Optional[bytes]] = {}
        self.generated_digest: Optional[dict[str, str]] = None

    def write(self, rel: str, text: str | bytes) -> None:
        path = self.root / "spec" / rel
        if path not in self.touched:
            self.touched[path] = path.read_bytes() if path.is_file() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)

    def reset(self) -> None:
        for path, original in self.touched.items():
            if original is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(original)
        self.touched.clear()

    def check(self, kind: str = "", expect_success: bool = False, verify: bool = True,
              always_generate: bool = True, extra_script: str = "") -> Outcome:
        """Run validate and generate on the current spec and judge them."""
        outcome = Outcome(kind)
        before = self.generated_digest
        if before is None:
            before = self.generated_digest = tree_digest(self.root / "generated")
        outcome.validate = run_cli(self.root, "validate")
        outcome.problems += contract_problems(outcome.validate)
        if outcome.validate.status == 0 or always_generate:
            outcome.generate = run_cli(self.root, "generate")
            outcome.problems += contract_problems(outcome.generate)
            if outcome.generate.status != outcome.validate.status and not outcome.problems:
                outcome.problems.append(f"validate exited {outcome.validate.status} but generate "
                                        f"{outcome.generate.status}:\n{outcome.generate.err[-2000:]}")
        after = tree_digest(self.root / "generated")
        if outcome.succeeded:
            self.generated_digest = after
            leftovers = [p.name for p in self.root.iterdir() if p.name.startswith(".generated")]
            if leftovers:
                outcome.problems.append(f"generate left {leftovers} behind")
            outside = sorted(p.name for p in self.root.iterdir() if p.name not in ("spec", "generated"))
            if outside:
                outcome.problems.append(f"generate wrote outside generated/: {outside}")
            if verify:
                outcome.compiled = True
                outcome.problems += compile_headers(self.root)
                outcome.problems += import_bindings(self.root, extra_script)
        elif after != before:
            changed = sorted(set(after.items()) ^ set(before.items()))
            outcome.problems.append(f"a failed generate changed generated/: {changed[:5]}")
        if expect_success and not outcome.succeeded and not outcome.problems:
            run = outcome.generate or outcome.validate
            outcome.problems.append(f"a well-formed spec was rejected:\n{run.err[-3000:]}")
        return outcome


# ------------------------------------------------------------------ hostile values

HOSTILE_STRINGS = [
    "", " ", "\n", "*/", "/*", "a */ b", "/* a", '"""', "'''", '"', "trailing quote\"", "\\", "ends with \\",
    "\\n", "\\\n", "x\\", '\\"""', ".. raw:: html\n\n   <script>alert(1)</script>", ".. include:: /etc/passwd",
    "Text.\n\n.. raw:: latex\n\n   \\input{/etc/passwd}", ".. |x| raw:: html\n\n   <b>", "see :file:`/etc/passwd`",
    ".. csv-table::\n   :file: /etc/passwd", "`link <javascript:alert(1)>`_", "``", "`", "*", "**", "|x|",
    "_target_", "[1]_", "\x00", "nul\x00byte", "\x1b[31mred", "bell\x07", "cr\rlf", "\x0b\x0c", "\x7f",
    "\x85", "\u2028", "\u2029", "\u202e", "\u2066rtl\u2069", "\ufeff", "é", "Grüße", "日本語", "🙂", "\U0001f600" * 10,
    "a" * 5000, "word " * 2000, "{{ x }}", "{% raw %}", "${HOME}", "%s%n", "#", "#include <stdio.h>",
    "\n#include <stdio.h>\n", "\nimport os\n", "KVM_RUN", "kvm_run", "struct kvm_run", "__u64", "void *",
    "0x", "0x1g", "1e10", "5.10", "by 5.10", "2.6.99999", "99.99", "-", "- a\n- b", "a: b", "{a: 1}", "[1, 2]",
    "~", "null", "true", "yes", "NaN", ".inf", "-0", "0b101", "0o17", "1_000",
    # expressions that are deep, long, overflowing or expensive
    "+".join(["1"] * 1500), "(" * 300 + "1" + ")" * 300, "KVMIO << 40", "-(-2147483647-1)", "1/0", "1 % 0",
    "sizeof(struct kvm_run) * 999999999999", "(1 << 31) * 2", "0xffffffffffffffffffff", "KVMIO ? 1 : ",
    "_IOC(3, KVMIO, 1, 1 << 20)", "_BITUL(64)", "sizeof(struct nonexistent)", "1 +\n 2",
]

HOSTILE_INTS = [0, 1, -1, 2, 7, 8, 63, 64, 255, 256, 4095, 4096, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1,
                -(2**31), -(2**63), -(2**63) - 1, 10**30, -(10**30), 2**200, 2**4000]

C_KEYWORDS_SAMPLE = ["int", "struct", "union", "static", "volatile", "class", "new", "delete", "namespace",
                     "template", "this", "bool", "true", "_Bool", "typeof", "asm", "auto", "register"]
RESERVED_SAMPLE = ["ctypes", "enum", "Final", "ABI", "Capability", "Ioctl", "IOCTLS", "CAPABILITIES", "os", "errno",
                   "mmap", "Any", "Optional", "Mapping", "Kvm", "Vm", "Vcpu", "Device", "KvmError", "ExitReason",
                   "sized", "_abi", "_cast", "__path__", "__all__", "__init__", "_missing_", "mro", "_fields_",
                   "from_buffer", "_anon0", "__u32", "__u64", "_IOW", "_IOC", "KVMIO", "NULL", "flags", "pad",
                   "KVM_LAMBDA", "KVM_CLOSE", "KVM_EXIT_", "KVM_EXIT_None", "KVM_EXIT_True", "KVM_9", "kvm_",
                   "KVM_FILENO", "KVM_EXIT__missing_", "__LINUX_KVM_H", "_ASM_X86_KVM_H"]

IDENT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789"


def names_of(data: Any) -> list[str]:
    """Every string value of `name`-like keys in a data tree (to reuse as colliding names)."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str) and k in ("name", "const", "macro", "enum", "flags", "struct", "union",
                                                "ioctl", "capability", "exit", "field", "header"):
                    found.append(v)
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    visit(data)
    return found


def name_strategy(known: list[str]) -> st.SearchStrategy[str]:
    plain = st.text(IDENT_CHARS, min_size=1, max_size=12)
    variants = st.sampled_from(known).flatmap(lambda n: st.sampled_from(
        [n, n.upper(), n.lower(), n.swapcase(), n + "_", "_" + n, n[:-1] or n])) if known else plain
    return st.one_of(plain, variants, st.sampled_from(C_KEYWORDS_SAMPLE), st.sampled_from(keyword.kwlist),
                     st.sampled_from(RESERVED_SAMPLE), st.sampled_from(["", "2abc", "a-b", "a b", "é", "a.b", "$x"]))


def int_strategy() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(HOSTILE_INTS), st.integers(-(2**70), 2**70), st.integers(0, 300))


def string_strategy() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.text(max_size=40),
        st.text(st.characters(codec="utf-8"), max_size=20),
        st.builds(lambda a, b, c: a + b + c, st.text(max_size=10), st.sampled_from(HOSTILE_STRINGS), st.text(max_size=10)),
    )


def scalar_strategy(known: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(int_strategy(), string_strategy(), name_strategy(known), st.booleans(), st.none(),
                     st.floats(allow_nan=True, allow_infinity=True))


def value_strategy(known: list[str]) -> st.SearchStrategy[Any]:
    scalars = scalar_strategy(known)
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(IDENT_CHARS, min_size=1, max_size=8),
                                                                         inner, max_size=3)), max_leaves=6)


# ------------------------------------------------------------------ mutations of the real spec


def spec_files() -> list[str]:
    manifest = yaml.load((SPEC / MANIFEST).read_text(), Loader=_Loader)
    return [MANIFEST, *manifest["files"]]


_PARSED: dict[str, Any] = {}
_TEXT: dict[str, str] = {}


def original_text(rel: str) -> str:
    if rel not in _TEXT:
        _TEXT[rel] = (SPEC / rel).read_text()
    return _TEXT[rel]


def original_data(rel: str) -> Any:
    if rel not in _PARSED:
        _PARSED[rel] = yaml.load(original_text(rel), Loader=_Loader)
    return _PARSED[rel]


def all_paths(data: Any) -> list[tuple]:
    """Paths (tuples of keys and indexes) to every node except the root."""
    paths: list[tuple] = []

    def visit(node: Any, path: tuple) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                visit(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + (i,))
                visit(v, path + (i,))

    visit(data, ())
    return paths


def containers(data: Any) -> list[tuple]:
    found: list[tuple] = [()]
    for p in all_paths(data):
        if isinstance(get(data, p), (dict, list)):
            found.append(p)
    return found


def get(data: Any, path: tuple) -> Any:
    for step in path:
        data = data[step]
    return data


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _insert_key(mapping: dict, position: int, key: Any, value: Any) -> dict:
    items = list(mapping.items())
    items.insert(position, (key, value))
    mapping.clear()
    mapping.update(items)
    return mapping


def _rename_key(mapping: dict, old: Any, new: Any) -> None:
    items = [(new if k == old else k, v) for k, v in mapping.items()]
    mapping.clear()
    mapping.update(items)


SCHEMA_KEYS = ["name", "value", "doc", "since", "type", "fields", "values", "array", "bits", "flags", "enum",
               "reserved", "ioctl", "nr", "dir", "fd", "returns", "arg", "capability", "check", "answer", "kind",
               "struct", "union", "const", "macro", "params", "body", "exit", "member", "header", "arch",
               "c_guard", "deprecated", "removed", "replacement", "moved_to", "alias", "mask", "c_style",
               "abi_exemption", "reason", "implementations", "errors", "errno", "validates", "emits", "pair",
               "restores", "restored_by", "creates", "example", "enable", "scope", "args", "files", "headers",
               "path", "guard", "includes", "title", "items", "kvmspec", "architectures", "external_types",
               "external_macros", "size", "same_number_as", "pass", "flow", "default", "field", "unknown_bits",
               "nonzero", "requires", "setup", "c_define", "c_define_values", "counted_by", "size_from",
               "fills", "partial", "buffer", "bytes", "xyzzy", "<<", "Name", "NAME"]


@st.composite
def data_mutation(draw, rel: str) -> tuple[str, str]:
    """One structural mutation of a spec file, as (description, new YAML text)."""
    data = copy.deepcopy(original_data(rel))
    paths = all_paths(data)
    known = names_of(data)
    op = draw(st.sampled_from(["drop", "duplicate", "retype", "rename_key", "renumber", "rename_value",
                               "hostile_string", "move", "nest", "swap", "replace_subtree", "add_key",
                               "empty_container", "multi"]))
    ops = [op] if op != "multi" else draw(st.lists(st.sampled_from(
        ["drop", "duplicate", "retype", "renumber", "rename_value", "hostile_string", "move"]), min_size=2, max_size=4))
    done = []
    for op in ops:
        paths = all_paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = get(data, path[:-1]), path[-1]
        target = parent[key]
        if op == "drop":
            del parent[key]
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(target))
            else:  # a duplicate key can only be written as text; copy it under a near name
                _insert_key(parent, list(parent).index(key) + 1, draw(st.sampled_from(SCHEMA_KEYS)),
                            copy.deepcopy(target))
        elif op == "retype":
            parent[key] = draw(st.one_of(scalar_strategy(known), st.just([target]), st.just({"value": target}),
                                         st.just([]), st.just({})))
        elif op == "rename_key" and isinstance(parent, dict):
            new = draw(st.one_of(st.sampled_from(SCHEMA_KEYS), st.text(IDENT_CHARS, min_size=1, max_size=8)))
            if new not in parent:
                _rename_key(parent, key, new)
        elif op == "renumber":
            ints = [p for p in paths if isinstance(get(data, p), int) and not isinstance(get(data, p), bool)]
            if ints:
                path = draw(st.sampled_from(ints))
                get(data, path[:-1])[path[-1]] = draw(int_strategy())
        elif op == "rename_value":
            strs = [p for p in paths if isinstance(get(data, p), str)]
            if strs:
                path = draw(st.sampled_from(strs))
                get(data, path[:-1])[path[-1]] = draw(name_strategy(known))
        elif op == "hostile_string":
            strs = [p for p in paths if isinstance(get(data, p), str)]
            if strs:
                path = draw(st.sampled_from(strs))
                old = get(data, path)
                new = draw(string_strategy())
                where = draw(st.sampled_from(["replace", "prefix", "suffix", "middle"]))
                new = {"replace": new, "prefix": new + old, "suffix": old + new,
                       "middle": old[: len(old) // 2] + new + old[len(old) // 2:]}[where]
                get(data, path[:-1])[path[-1]] = new
        elif op == "move":
            dest_path = draw(st.sampled_from(containers(data)))
            dest = get(data, dest_path)
            if dest is target or path[: len(dest_path)] == dest_path and len(path) <= len(dest_path):
                continue
            if any(dest_path[:i] == path for i in range(len(path), len(dest_path) + 1)):
                continue  # into itself
            del parent[key]
            if isinstance(dest, list):
                dest.insert(draw(st.integers(0, len(dest))), target)
            elif key not in dest or isinstance(key, int):
                dest[key if isinstance(key, str) else "moved"] = target
        elif op == "nest":
            depth = draw(st.sampled_from([1, 2, 5, 30, 63, 64, 65, 100, 500]))
            value = target
            for i in range(depth):
                value = [value] if i % 2 else {"fields": value}
            parent[key] = value
        elif op == "swap":
            other = draw(st.sampled_from(paths))
            oparent, okey = get(data, other[:-1]), other[-1]
            try:
                if target is not oparent and get(data, other) is not parent:
                    parent[key], oparent[okey] = oparent[okey], target
            except (KeyError, IndexError, TypeError):
                pass
        elif op == "replace_subtree":
            parent[key] = draw(value_strategy(known))
        elif op == "add_key":
            containers_ = [p for p in containers(data) if isinstance(get(data, p), dict)]
            mapping = get(data, draw(st.sampled_from(containers_)))
            new = draw(st.sampled_from(SCHEMA_KEYS))
            if new not in mapping:
                _insert_key(mapping, draw(st.integers(0, len(mapping))), new, draw(value_strategy(known)))
        elif op == "empty_container":
            parent[key] = type(target)() if isinstance(target, (dict, list)) else None
        done.append(f"{op} at {'/'.join(map(str, path))[:80]}")
    return "; ".join(done) or "no-op", dump(data)


@st.composite
def text_mutation(draw, rel: str) -> tuple[str, str]:
    """Damage to the YAML text itself: characters, lines, indentation, truncation."""
    text = original_text(rel)
    lines = text.splitlines(keepends=True)
    op = draw(st.sampled_from(["insert_char", "delete_line", "duplicate_line", "swap_lines", "indent",
                               "insert_snippet", "truncate", "replace_char", "yaml_feature", "bytes",
                               "respell_int", "hostile_line"]))
    index = draw(st.integers(0, max(0, len(lines) - 1)))
    if op == "insert_char":
        pos = draw(st.integers(0, len(text)))
        ch = draw(st.one_of(st.characters(codec="utf-8"), st.sampled_from(list("\t\r\x00\x0b\x1b:[]{}&*!|>'\"#%@`\\-?,"))))
        text = text[:pos] + ch + text[pos:]
    elif op == "replace_char":
        pos = draw(st.integers(0, max(0, len(text) - 1)))
        ch = draw(st.sampled_from(list(":-[]{}'\"#\t x0\n")))
        text = text[:pos] + ch + text[pos + 1:]
    elif op == "delete_line":
        del lines[index]
        text = "".join(lines)
    elif op == "duplicate_line":  # usually a duplicate key
        lines.insert(index, lines[index] if lines else "\n")
        text = "".join(lines)
    elif op == "swap_lines" and len(lines) > 1:
        other = draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
        text = "".join(lines)
    elif op == "indent" and lines:
        shift = draw(st.sampled_from([-4, -2, -1, 1, 2, 4]))
        line = lines[index]
        lines[index] = (" " * shift + line) if shift > 0 else line[min(-shift, len(line) - len(line.lstrip(" "))):]
        text = "".join(lines)
    elif op == "insert_snippet":
        snippet = draw(st.sampled_from([
            "!!python/object/apply:os.system ['true']\n", "a: &x [1]\nb: *x\n", "<<: {a: 1}\n", "? [a]\n: b\n",
            "--- \n", "...\n", "%YAML 1.1\n", "%TAG ! tag:yaml.org,2002:python/\n", "x: !!binary aGk=\n",
            "x: !!set {a}\n", "x: !!omap [a: 1]\n", "x: !custom 1\n", "x: 2001-12-14\n", "\t- x\n",
            "x: |\n  */ broken\n", "\ufeffx: 1\n", "x: 0x1_0000\n", "x: 1.5\n", "x: .nan\n", "'': 1\n",
            "1: 1\n", "null: x\n", "true: x\n", "[a]: b\n",
        ]))
        indent = " " * draw(st.sampled_from([0, 2, 4, 6]))
        lines.insert(index, "".join(indent + line for line in snippet.splitlines(keepends=True)))
        text = "".join(lines)
    elif op == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif op == "yaml_feature":
        # an anchor on one value and an alias on another
        values = [i for i, line in enumerate(lines) if re.match(r"^\s+value: \S", line)]
        if len(values) >= 2:
            a, b = draw(st.sampled_from(values)), draw(st.sampled_from(values))
            lines[a] = lines[a].replace("value: ", "value: &v ", 1)
            lines[b] = re.sub(r"value: .*", "value: *v", lines[b]) if a != b else lines[b]
            text = "".join(lines)
    elif op == "respell_int":
        # YAML-only spellings of integers, and numbers written in other bases
        numbers = [m for m in re.finditer(r"(?<=: )(0x[0-9a-fA-F]+|[0-9]+)$", text, re.M)]
        if numbers:
            m = draw(st.sampled_from(numbers))
            value = int(m.group(), 0)
            spelled = draw(st.sampled_from([f"{value:_}", f"0b{value:b}", f"+{value}", f"-{value}", f"0{value:o}",
                                            f"0x_{value:x}", f"{value}:00", f"{value}.0", f"{value}e0", f"0o{value:o}",
                                            f"{value}u", f"{value}UL", f"'{value}'", f'"{hex(value)}"', "~", "0x"]))
            text = text[:m.start()] + spelled + text[m.end():]
    elif op == "hostile_line":
        # a hostile string in place of the text of a doc or title line
        docs = [i for i, line in enumerate(lines) if re.match(r"^\s*(doc|title|returns): \S", line)]
        if docs:
            i = draw(st.sampled_from(docs))
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {yaml_str(draw(string_strategy()))}\n"
            text = "".join(lines)
    elif op == "bytes":
        raw = draw(st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80", b"\xf4\x90\x80\x80"]))
        pos = draw(st.integers(0, len(text)))
        return f"{op}", text[:pos] + raw.decode("latin-1").encode("latin-1").decode("utf-8", "surrogateescape") \
            + text[pos:]
    return f"{op} near line {index + 1}", text


@st.composite
def mutated_file(draw, files: Optional[list[str]] = None) -> tuple[str, str, str]:
    """(file, description, new text) for one mutated file of the real spec."""
    files = files or spec_files()
    # The manifest shapes everything else (headers, paths, names): it gets a larger share.
    rel = draw(st.one_of(st.just(MANIFEST), st.sampled_from(files))) if MANIFEST in files else \
        draw(st.sampled_from(files))
    description, text = draw(st.one_of(data_mutation(rel), text_mutation(rel)))
    return rel, description, text


def write_case(ws: Workspace, rel: str, text: str) -> None:
    """Write a case's text; undecodable bytes travel as surrogate escapes."""
    ws.write(rel, text.encode("utf-8", "surrogateescape"))


# ------------------------------------------------------------------ random well-formed specs

SCALAR_BITS = {"__u8": 8, "__u16": 16, "__u32": 32, "__u64": 64, "__s8": 8, "__s16": 16, "__s32": 32, "__s64": 64}
UNSIGNED = ["__u8", "__u16", "__u32", "__u64"]

# Doc text that must survive every output: quotes, backslashes, non-ASCII, docstring quotes.
SAFE_DOC_PIECES = ["Sets up the thing.", "A value of \"quoted\" text.", "Back\\slash and \\n escapes.",
                   "Ends with a quote\"", "Ends with a backslash \\", "Triple \"\"\" quotes.", "Single 'quotes'.",
                   "Grüße, naïve café, 日本語, 🙂.", "Tabs\tinside.", "Percent %s and braces {x} {{y}}.",
                   "An asterisk * and a slash / apart.", "Hash # sign.", "Trailing spaces   ",
                   "Two\n\nparagraphs.", "A list:\n\n- one\n- two", "Literal ``code`` and *emphasis*."]


@dataclass
class RandomSpec:
    """A small spec that is valid by construction, and the facts to check in its bindings."""

    files: dict[str, str]
    constants: dict[str, int]
    sizes: dict[str, int]
    ioctls: list[str]


def _identifier(draw, prefix: str, used: set[str], upper: bool) -> str:
    while True:
        body = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" if upper else "abcdefghijklmnopqrstuvwxyz0123456789_",
                            min_size=1, max_size=10))
        name = prefix + body
        folded = name.lower()
        if folded in used or name.endswith("_") or "__" in name or name.lower().startswith("kvm_exit"):
            continue
        used.add(folded)
        return name


@st.composite
def random_spec(draw) -> RandomSpec:
    used: set[str] = {"kvmio", "kvm_run"}
    doc = lambda: draw(st.sampled_from(SAFE_DOC_PIECES))  # noqa: E731
    since = lambda: draw(st.sampled_from(['"2.6.20"', '"5.10"', '"4.19"', '"6.18"']))  # noqa: E731
    constants: dict[str, int] = {"KVMIO": 0xAE}
    items: list[str] = ["""\
  - const: KVMIO
    value: 0xAE
    since: "2.6.20"
    doc: The ioctl type of KVM.
"""]
    # constants, some defined in terms of earlier ones
    for _ in range(draw(st.integers(0, 4))):
        name = _identifier(draw, "KVM_C_", used, True)
        small = sorted(n for n, v in constants.items() if v < 2**22)   # so that << 8 stays an int
        if small and draw(st.booleans()):
            other = draw(st.sampled_from(small))
            shift = draw(st.integers(0, 8))
            value, text = (constants[other] << shift), f'"({other} << {shift})"'
        else:
            value = draw(st.integers(0, 2**31 - 1))
            text = draw(st.sampled_from([str(value), hex(value)]))
        constants[name] = value
        items.append(f"  - const: {name}\n    value: {text}\n    since: {since()}\n    doc: {yaml_str(doc())}\n")
    # flag sets and enums
    sets: list[tuple[str, str, str]] = []   # (kind, name, type)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["flags", "enum"]))
        ctype = draw(st.sampled_from(UNSIGNED))
        name = _identifier(draw, "kvm_set_", used, False)
        bits = SCALAR_BITS[ctype]
        if kind == "flags":
            chosen = draw(st.lists(st.integers(0, bits - 1), min_size=1, max_size=5, unique=True))
            values = [(1 << b) for b in chosen]
        else:
            values = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=5, unique=True))
        lines = [f"  - {kind}: {name}\n    type: {ctype}\n    since: {since()}\n    doc: {yaml_str(doc())}\n    values:\n"]
        for v in values:
            vname = _identifier(draw, "KVM_V_", used, True)
            constants[vname] = v
            lines.append(f"      - name: {vname}\n        value: {hex(v)}\n        doc: {yaml_str(doc())}\n")
        items.append("".join(lines))
        sets.append((kind, name, ctype))
    # structs, 64-bit clean by construction: fields in 8-byte groups
    sizes: dict[str, int] = {}
    structs: list[str] = []
    flexible: set[str] = set()
    for _ in range(draw(st.integers(0, 3))):
        name = _identifier(draw, "kvm_s_", used, False)
        fields = []
        field_names: set[str] = set()
        size = 0
        for _ in range(draw(st.integers(1, 4))):
            fname = _identifier(draw, "f_", field_names, False)
            choice = draw(st.sampled_from(["u64", "u32pair", "array", "set", "nested", "union", "bits"]))
            nestable = [x for x in structs if x not in flexible]
            if choice == "nested" and nestable:
                inner = draw(st.sampled_from(nestable))
                fields.append(f"      - {{name: {fname}, type: struct {inner}, doc: {yaml_str(doc())}}}\n")
                size += sizes[inner]
            elif choice == "u32pair":
                second = _identifier(draw, "g_", field_names, False)
                fields.append(f"      - {{name: {fname}, type: __u32, doc: {yaml_str(doc())}}}\n")
                fields.append(f"      - {{name: {second}, type: __u32, reserved: true, doc: Padding.}}\n")
                size += 8
            elif choice == "array":
                count = draw(st.integers(1, 64))
                fields.append(f"      - {{name: {fname}, type: __u64, array: {count}, doc: {yaml_str(doc())}}}\n")
                size += 8 * count
            elif choice == "set" and sets:
                kind, set_name, ctype = draw(st.sampled_from(sets))
                fields.append(f"      - {{name: {fname}, type: __u64, {kind}: {set_name}, doc: {yaml_str(doc())}}}\n")
                size += 8
            elif choice == "union":   # an anonymous union: its members are the struct's
                second = _identifier(draw, "g_", field_names, False)
                fields.append(f"      - union:\n          fields:\n"
                              f"            - {{name: {fname}, type: __u64, doc: {yaml_str(doc())}}}\n"
                              f"            - {{name: {second}, type: __u32, array: 2, doc: {yaml_str(doc())}}}\n"
                              f"        doc: {yaml_str(doc())}\n")
                size += 8
            elif choice == "bits":
                width = draw(st.integers(1, 63))
                second = _identifier(draw, "g_", field_names, False)
                fields.append(f"      - {{name: {fname}, type: __u64, bits: {width}, doc: {yaml_str(doc())}}}\n")
                fields.append(f"      - {{name: {second}, type: __u64, bits: {64 - width}, doc: Rest.}}\n")
                size += 8
            else:
                fields.append(f"      - {{name: {fname}, type: __u64, doc: {yaml_str(doc())}}}\n")
                size += 8
        if draw(st.booleans()) and draw(st.booleans()):   # a counted flexible array at the end
            count, pad, array = (_identifier(draw, p, field_names, False) for p in ("n_", "p_", "e_"))
            fields.append(f"      - {{name: {count}, type: __u32, doc: How many follow.}}\n"
                          f"      - {{name: {pad}, type: __u32, reserved: true, doc: Padding.}}\n"
                          f"      - {{name: {array}, type: __u64, array: flexible, counted_by: {count}, doc: Entries.}}\n")
            size += 8
            flexible.add(name)
        items.append(f"  - struct: {name}\n    since: {since()}\n    doc: {yaml_str(doc())}\n    fields:\n"
                     + "".join(fields))
        structs.append(name)
        sizes[name] = size
    for number in draw(st.lists(st.integers(0, 2**31 - 1), max_size=2, unique=True)):
        name = _identifier(draw, "KVM_CAP_R_", used, True)
        check = draw(st.sampled_from(["[]", "[system]", "[system, vm]", "[vcpu]"]))
        items.append(f"  - capability: {name}\n    value: {number}\n    since: {since()}\n    check: {check}\n"
                     f"    answer: {{kind: {draw(st.sampled_from(['boolean', 'count', 'size']))}}}\n"
                     f"    doc: {yaml_str(doc())}\n")
        constants[name] = number
    if draw(st.booleans()):
        name = _identifier(draw, "KVM_M_", used, True)
        items.append(f"  - macro: {name}\n    params: [x, y]\n    body: \"(((x) << 8) | (y))\"\n"
                     f"    since: {since()}\n    doc: {yaml_str(doc())}\n")
    # ioctls on distinct numbers
    ioctls = []
    numbers = draw(st.lists(st.integers(0, 255), max_size=4, unique=True))
    for nr in numbers:
        name = _identifier(draw, "KVM_I_", used, True)
        target = draw(st.sampled_from(["none", *(["struct"] if structs else []), "scalar", "value"]))
        scope = draw(st.sampled_from(["system", "vm", "vcpu"]))
        body = f"  - ioctl: {name}\n    nr: {hex(nr)}\n"
        if target == "none":
            body += "    dir: none\n"
        elif target == "value":
            body += "    dir: none\n    arg: {pass: value, name: amount, default: 0}\n"
        elif target == "struct":
            small = [s for s in structs if sizes[s] < 16384]
            if not small:
                body += "    dir: none\n"
            else:
                body += f"    dir: {draw(st.sampled_from(['r', 'w', 'rw']))}\n    type: struct {draw(st.sampled_from(small))}\n"
        else:
            body += f"    dir: {draw(st.sampled_from(['r', 'w', 'rw']))}\n    type: {draw(st.sampled_from(UNSIGNED))}\n"
        body += f"    fd: [{scope}]\n    since: {since()}\n    doc: {yaml_str(doc())}\n    returns: {yaml_str(doc())}\n"
        items.append(body)
        ioctls.append(name)
    manifest = textwrap.dedent("""\
        kvmspec: 1
        title: A random spec
        architectures:
          - name: x86
            doc: x86.
        headers:
          - name: linux
            path: include/uapi/linux/kvm.h
            guard: __LINUX_KVM_H
            doc: The generic header.
            includes: [linux/types.h, linux/ioctl.h]
        files:
          - common/random.yaml
        """)
    title = yaml_str(draw(st.sampled_from(["Random items", "Grüße", 'Quotes "here"'])))
    spec_file = f"header: linux\ntitle: {title}\ndoc: {yaml_str(doc())}\nitems:\n" + "".join(items)
    return RandomSpec({MANIFEST: manifest, "common/random.yaml": spec_file}, constants, sizes, ioctls)


def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar for any text."""
    return yaml.dump(text, Dumper=_Dumper, default_style='"', width=10**9, allow_unicode=True).strip().removesuffix("...").strip()


def random_spec_script(spec: RandomSpec) -> str:
    """Python run in the bindings' interpreter: constants, sizes and ioctls agree with the spec."""
    lines = ["import ctypes, kvm_uapi as K"]
    for name, value in spec.constants.items():
        lines.append(f"assert int(K.{name}) == {value}, ({name!r}, K.{name})")
    for name, size in spec.sizes.items():
        lines.append(f"assert ctypes.sizeof(K.{name}) == {size}, ({name!r}, ctypes.sizeof(K.{name}))")
    for name in spec.ioctls:
        lines.append(f"assert K.IOCTLS[{name!r}] == K.{name}")
    return "\n".join(lines) + "\n"


def load_random_spec(ws: Workspace, spec: RandomSpec) -> None:
    for rel, text in spec.files.items():
        ws.write(rel, text)


def temporary_workspace(copy_spec: bool = True) -> tuple[Workspace, tempfile.TemporaryDirectory]:
    tmp = tempfile.TemporaryDirectory(prefix="kvmspec-fuzz-")
    return Workspace(Path(tmp.name) / "repo", copy_spec), tmp
