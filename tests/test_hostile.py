"""Hostile specs: YAML bombs, huge files, tags, text that tries to escape its output,
names that clash in the outputs, and paths that point outside the repository.

Each either produces a precise `path:line:col: error:` (exit 1) or, for text
that is merely awkward, output that still compiles, imports and parses with
the text intact.
"""

from __future__ import annotations

import ast
import re
import time
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

import fuzzlib
from conftest import REPO

NESTED = "spec/x86/nested-state.yaml"
DEBUG = "spec/x86/debug.yaml"
MANIFEST = "spec/kvmspec.yaml"


def errors_of(result) -> list[str]:
    return [line for line in result.err.splitlines() if ": error: " in line]


def expect_error(scratch, capsys, rel: str, message: str, line: int | None = None, col: int | None = None):
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1, result.out + result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    prefix = rel + ":" + (f"{line}:" if line is not None else "") + (f"{col}:" if col is not None else "")
    matching = [e for e in errors_of(result) if e.startswith(prefix) and message in e]
    assert matching, f"no error at {prefix} with {message!r} in:\n{result.err}"
    assert all(re.match(r"^[^:\s]+:\d+:\d+: error: ", e) for e in errors_of(result)), result.err
    return matching[0]


def add_items(scratch, rel: str, text: str) -> None:
    scratch.write(rel, scratch.read(rel).rstrip("\n") + "\n" + text)


def const(name: str, value: str = "1", doc: str = "A constant.") -> str:
    return f"  - const: {name}\n    value: {value}\n    since: \"6.1\"\n    doc: {doc}\n"


# ------------------------------------------------------------------ YAML bombs and big files


BILLION_LAUGHS = """\
header: x86
title: Laughs
doc: A billion of them.
items: []
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def validate_measured(scratch, capsys):
    """`kvmspec validate`, with its wall time and the peak of Python memory it allocated."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        result = scratch.run("validate", capsys=capsys)
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, elapsed, peak


def test_alias_bomb_is_refused_quickly_in_bounded_memory(scratch, capsys):
    scratch.write(DEBUG, BILLION_LAUGHS)
    result, elapsed, peak = validate_measured(scratch, capsys)
    assert result.status == 1
    assert f"{DEBUG}:5:4: error: YAML anchors and aliases are not allowed" in result.err
    assert elapsed < 20, elapsed          # generous: tracemalloc slows everything down
    assert peak < 200 * 2**20, peak       # the expanded document would be ~10^9 strings


def test_huge_file_is_refused_without_reading_it(scratch, capsys):
    path = scratch.path(DEBUG)
    with open(path, "r+b") as f:          # 1 GiB, sparse: cheap to make, ruinous to read
        f.truncate(2**30)
    result, elapsed, peak = validate_measured(scratch, capsys)
    assert result.status == 1
    assert f"{DEBUG}:1:1: error: file is larger than 4 MiB" in result.err
    assert elapsed < 20, elapsed
    assert peak < 64 * 2**20, peak


@pytest.mark.parametrize("text, message", [
    # libyaml without a nesting limit would overflow the C stack here
    ("header: [" + "[" * 100_000 + "]" * 100_001 + "\n", "nesting deeper than 64 levels"),
    ("header: x86\nx:\n" + " " * 2000 + "- 1\n", "indentation of 1000 columns or more"),
    ("header: x86\nx: " + "".join("\n" + "  " * i + f"k{i}:" for i in range(1, 80)) + " 1\n",
     "nesting deeper than 64 levels"),
])
def test_deep_nesting_is_refused(scratch, capsys, text, message):
    scratch.write(DEBUG, text)
    expect_error(scratch, capsys, DEBUG, message)


@pytest.mark.parametrize("character, line, col", [("\x1b", 4, 14), ("\x00", 4, 10), ("\x7f", 4, 1), ("\ufffe", 4, 20)])
def test_control_characters_in_the_file_are_located(scratch, capsys, character, line, col):
    text = scratch.read(DEBUG).splitlines(keepends=True)
    text[line - 1] = text[line - 1][: col - 1] + character + text[line - 1][col - 1:]
    scratch.write(DEBUG, "".join(text))
    expect_error(scratch, capsys, DEBUG, f"control character U+{ord(character):04X} is not allowed", line, col)


@pytest.mark.parametrize("spelled", ["1_024", "0b1000", "0x_400", "17:04"])
def test_integers_only_yaml_can_read_are_refused(scratch, capsys, spelled):
    scratch.replace(NESTED, "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: 0x1000",
                    f"  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: {spelled}")
    line = scratch.line_of(NESTED, f"value: {spelled}")
    expect_error(scratch, capsys, NESTED, f"{spelled!r} is an integer only in YAML", line, 12)


# ------------------------------------------------------------------ tags construct nothing


@pytest.mark.parametrize("tagged", [
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/object:os.system {{}}",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!binary aGVsbG8=",
    "!!set {{a, b}}",
    "!!timestamp 2001-12-14",
    "!!omap [a: 1]",
    "!custom 1",
    "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
])
def test_no_yaml_tag_constructs_anything(scratch, capsys, tmp_path, tagged):
    marker = tmp_path / "constructed"
    scratch.replace(NESTED, "    value: 0x1000\n    since: \"5.8\"",
                    f"    value: {tagged.format(marker=marker)}\n    since: \"5.8\"")
    line = scratch.line_of(NESTED, tagged.split()[0].split("[")[0])
    expect_error(scratch, capsys, NESTED, "explicit YAML tag", line)
    assert not marker.exists()


def test_tag_directive_constructs_nothing(scratch, capsys, tmp_path):
    marker = tmp_path / "constructed"
    scratch.write(DEBUG, f"%TAG !p! tag:yaml.org,2002:python/object/apply:\n---\n"
                         f"header: !p!os.system ['touch {marker}']\ntitle: T\ndoc: D\nitems: []\n")
    expect_error(scratch, capsys, DEBUG, "explicit YAML tag", 3)
    assert not marker.exists()


# ------------------------------------------------------------------ text in the outputs

# Text that is awkward in some output but allowed: it must come out intact.
AWKWARD = [
    'Three quotes """ in the middle.',
    'Ends with a quote"',
    "Ends with a backslash \\",
    "Backslash escapes \\n \\x00 \\N{BULLET} \\u1234 are not escapes here.",
    "Single ''' quotes.",
    'Quote then backslash "\\',
    "Jinja {{ x }} {% raw %} and printf %s %n.",
    "Grüße, naïve café, 日本語, 🙂.",
    "# not a comment; // not one either",
    "An asterisk * and a slash / apart.",
]


def _docutils_tree(rst: str):
    """Parse generated api.rst with docutils, with Sphinx's roles stubbed."""
    from docutils import nodes, utils
    from docutils.core import publish_doctree
    from docutils.parsers.rst import roles

    def stub(name, rawtext, text, lineno, inliner, options=None, content=None):
        return [nodes.literal(rawtext, utils.unescape(text))], []

    roles.register_local_role("ref", stub)
    return publish_doctree(rst, settings_overrides={
        "report_level": 5, "halt_level": 5, "file_insertion_enabled": False, "raw_enabled": False,
        "warning_stream": False})


def _generate_and_load(scratch, capsys, script: str = "") -> str:
    result = scratch.run("generate", capsys=capsys)
    assert result.status == 0, result.err
    assert fuzzlib.compile_headers(scratch.root) == []
    assert fuzzlib.import_bindings(scratch.root, script) == []
    return scratch.read("generated/Documentation/virt/kvm/api.rst")


def _assert_rst_is_harmless(rst: str, *texts: str) -> None:
    from docutils import nodes
    tree = _docutils_tree(rst)
    assert not list(tree.findall(nodes.raw))
    errors = [m for m in tree.findall(nodes.system_message) if m["level"] >= 3]
    assert not errors, [m.astext()[:300] for m in errors]
    flat = " ".join(tree.astext().split())
    shown = [text for text in texts if " ".join(text.split()[:2]) in " ".join(rst.split())]
    assert shown, "none of the texts made it into api.rst"
    for text in shown:   # not every doc is shown in api.rst; those that are are whole
        # RST reads backslashes as escapes; every word must still be there.
        for word in text.replace("\\", " ").split():
            assert word.strip("*`") in flat, word


def test_awkward_doc_text_is_carried_intact_into_every_output(scratch, capsys):
    """Each awkward text replaces one doc of the nested-state spec: items, fields, values,
    an errno and a title; then the headers compile, the bindings import with every text in
    a docstring, and api.rst parses with every word in it and no raw markup."""
    text = scratch.read(NESTED)
    docs = list(re.finditer(r"^(\s+)doc: ([A-Z][^\"'|>\n]*)$", text, re.M))
    # only docs of items the newest headers and bindings still have (not of removed ones)
    docs = [m for m in docs if "\n    removed:" not in text[text.rfind("\n  - ", 0, m.start()):m.start()]]
    assert len(docs) >= len(AWKWARD)
    pieces, last = [], 0
    for m, awkward in zip(docs, AWKWARD):
        pieces += [text[last:m.start()], f"{m.group(1)}doc: {fuzzlib.yaml_str(awkward)}"]
        last = m.end()
    scratch.write(NESTED, "".join(pieces) + text[last:])
    scratch.replace(DEBUG, 'title: "x86 guest debugging"', f"title: {fuzzlib.yaml_str(AWKWARD[0])}")
    check = f"""import enum, inspect, kvm_uapi as K
texts = {AWKWARD!r}
docs = [K.__doc__]
for name in dir(K):
    obj = getattr(K, name)
    docs.append(getattr(obj, "__doc__", "") or "")
    if inspect.isclass(obj) and issubclass(obj, enum.Enum):
        docs += [m.__doc__ or "" for m in obj]
# enum values and constants are documented in #: comments
source = open(K.__file__, encoding="utf-8").read().splitlines()
docs += [line.strip().lstrip("#:").strip() for line in source if line.strip().startswith("#")]
flat = " ".join(" ".join(docs).split())
for text in texts:
    assert " ".join(text.split()) in flat, text
"""
    rst = _generate_and_load(scratch, capsys, check)
    _assert_rst_is_harmless(rst, *AWKWARD)
    assert "x86 guest debugging" not in scratch.read("generated/python/kvm_uapi/__init__.py")


ESCAPES = [
    ("Ends the comment */ early.", "doc text contains '*/'"),
    ("Opens /* a comment.", "doc text contains '/*'"),
    ("Text.\n\n.. raw:: html\n\n   <script>alert(1)</script>\n", "reStructuredText explicit markup ('.. raw::')"),
    ("Text.\n\n.. include:: /etc/passwd\n", "reStructuredText explicit markup ('.. include::')"),
    ("Text.\n\n.. csv-table::\n   :file: /etc/passwd\n", "reStructuredText explicit markup ('.. csv-table::')"),
    ("Text.\n\n.. |x| raw:: html\n\n   <b>\n", "reStructuredText explicit markup ('.. |x| r')"),
    ("See :file:`/etc/passwd` here.", "a reStructuredText role (':file:`')"),
    ("See `/etc/passwd`:file: here.", "a reStructuredText role ('`:file:')"),
    ("Colour \x1b[31m red.", "text contains control character U+001B"),
    ("A nul \x00 byte.", "text contains control character U+0000"),
    ("Reversed \u202e text.", "text contains U+202E (bidirectional override)"),
    ("A line\u2028separator.", "text contains U+2028 (line separator)"),
]
# Every text in an item's doc; a few in the other places doc text goes.
WHERE = [("item doc", *e) for e in ESCAPES] + [(where, *ESCAPES[i]) for where in
                                               ("returns", "manifest header doc", "exemption reason")
                                               for i in (0, 2, 8)]


@pytest.mark.parametrize("where, text, message", WHERE)
def test_doc_text_that_would_escape_its_output_is_refused(scratch, capsys, where, text, message):
    quoted = fuzzlib.yaml_str(text)
    if where == "item doc":
        rel, old, new = NESTED, "    doc: Size in bytes of the VMCB image in the SVM data area.", f"    doc: {quoted}"
    elif where == "returns":
        rel, old, new = NESTED, "    returns: |\n      0 on success, -1 with errno set on error.\n    errors:\n      - errno: E2BIG", \
            f"    returns: {quoted}\n    errors:\n      - errno: E2BIG"
    elif where == "manifest header doc":
        rel = MANIFEST
        old = "    doc: |\n      x86-specific KVM userspace API: register files, events and the\n" \
              "      nested virtualization state of VMX and SVM.\n"
        new = f"    doc: {quoted}\n"
    else:
        rel = NESTED
        old = "  - struct: kvm_svm_nested_state_hdr\n    since: \"5.8\"\n"
        new = old + f"    abi_exemption:\n      reason: {quoted}\n"
    scratch.replace(rel, old, new)
    line = scratch.line_of(rel, quoted)   # double-quoted: the error points at the scalar
    col = scratch.column_of(rel, quoted)
    expect_error(scratch, capsys, rel, message, line, col)


@pytest.mark.parametrize("key, rel, old", [
    ("title", DEBUG, 'title: "x86 guest debugging"'),
    ("title", MANIFEST, "title: The Linux KVM userspace API"),
])
def test_titles_are_one_line(scratch, capsys, tmp_path, key, rel, old):
    marker = tmp_path / "pwned"
    hostile = fuzzlib.yaml_str(f"Debugging\nimport os; os.system('touch {marker}')")
    scratch.replace(rel, old, f"{key}: {hostile}")
    expect_error(scratch, capsys, rel, f"{key} must be a single line", scratch.line_of(rel, f"{key}: "))
    assert not marker.exists()


def test_moved_to_is_one_line(scratch, capsys):
    rel = "spec/common/s390.yaml"
    scratch.replace(rel, "  - const: KVM_S390_GET_SKEYS_NONE\n",
                    "  - const: KVM_S390_GET_SKEYS_NONE\n    removed:\n      since: \"6.9\"\n"
                    "      moved_to: \"s390\\n* - x\"\n      doc: Gone.\n")
    expect_error(scratch, capsys, rel, "moved_to must be a single line", scratch.line_of(rel, 'moved_to: "s390'))


def test_expressions_stay_on_one_line(scratch, capsys):
    scratch.replace(NESTED, "  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: 0x1000",
                    '  - const: KVM_STATE_NESTED_SVM_VMCB_SIZE\n    value: "(0x1000\\n#include <stdio.h>\\n)"')
    expect_error(scratch, capsys, NESTED, "an expression must be on one line",
                 scratch.line_of(NESTED, 'value: "(0x1000'))


def test_signed_overflow_in_an_expression_is_an_error(scratch, capsys):
    add_items(scratch, NESTED, const("KVM_EXAMPLE_BIG", '"(0x10000 * 0x10000)"'))
    expect_error(scratch, capsys, NESTED, "65536 * 65536 overflows int (32 bits)",
                 scratch.line_of(NESTED, "(0x10000 * 0x10000)"))


def test_shift_into_the_sign_bit_is_accepted_but_not_beyond(scratch, capsys):
    add_items(scratch, NESTED, const("KVM_EXAMPLE_SIGN", '"(1 << 31)"') + const("KVM_EXAMPLE_OUT", '"(2 << 31)"'))
    expect_error(scratch, capsys, NESTED, "2 << 31 overflows int", scratch.line_of(NESTED, "(2 << 31)"))
    assert ":" + str(scratch.line_of(NESTED, "(1 << 31)")) + ":" not in scratch.run("validate", capsys=capsys).err


# ------------------------------------------------------------------ names that clash in the outputs


def test_macros_differing_only_by_case_are_refused_naming_both(scratch, capsys):
    add_items(scratch, NESTED, const("KVM_EXAMPLE_FLAG") + const("KVM_Example_Flag"))
    error = expect_error(scratch, capsys, NESTED, "'KVM_Example_Flag' differs from 'KVM_EXAMPLE_FLAG'",
                         scratch.line_of(NESTED, "const: KVM_Example_Flag"), 12)
    assert f"{NESTED}:{scratch.line_of(NESTED, 'const: KVM_EXAMPLE_FLAG')}:12" in error


def test_types_differing_only_by_case_are_refused(scratch, capsys):
    add_items(scratch, NESTED, """\
  - struct: KVM_VMX_NESTED_STATE_HDR
    since: "6.1"
    doc: Clashes with struct kvm_vmx_nested_state_hdr in Python docs and for readers.
    fields:
      - {name: a, type: __u64, doc: A.}
""")
    expect_error(scratch, capsys, NESTED, "'KVM_VMX_NESTED_STATE_HDR' differs from 'kvm_vmx_nested_state_hdr'",
                 scratch.line_of(NESTED, "struct: KVM_VMX_NESTED_STATE_HDR"))


def test_a_struct_and_a_macro_may_share_a_name_up_to_case(scratch, capsys):
    # The kernel does this everywhere: struct kvm_run and KVM_RUN.
    add_items(scratch, NESTED, const("KVM_VMX_NESTED_STATE_HDR"))
    assert scratch.run("validate", capsys=capsys).status == 0


def _rename_ioctl(scratch, new: str) -> None:
    text = scratch.read("spec/x86/registers.yaml").replace("KVM_GET_DEBUGREGS", new)
    scratch.write("spec/x86/registers.yaml", text)


@pytest.mark.parametrize("name, message", [
    ("KVM_LAMBDA", "would become the Python API method 'lambda', a Python keyword"),
    ("KVM_9", "would become the Python API method '9', which is not a Python identifier"),
    ("KVM_CLOSE", "would become the Python API method 'close', an attribute the API classes already have"),
    ("KVM_FILENO", "would become the Python API method 'fileno', an attribute the API classes already have"),
])
def test_ioctls_whose_api_method_cannot_exist(scratch, capsys, name, message):
    _rename_ioctl(scratch, name)
    expect_error(scratch, capsys, "spec/x86/registers.yaml", f"{name} {message}",
                 scratch.line_of("spec/x86/registers.yaml", f"ioctl: {name}"))


def test_ioctls_whose_api_methods_collide_are_refused_naming_both(scratch, capsys):
    _rename_ioctl(scratch, "GET_REGS")   # and KVM_GET_REGS: both get_regs()
    error = expect_error(scratch, capsys, "spec/x86/registers.yaml",
                         "GET_REGS and KVM_GET_REGS", scratch.line_of("spec/x86/registers.yaml", "ioctl: GET_REGS"))
    assert "would both become the Python API method 'get_regs'" in error


@pytest.mark.parametrize("old, new, message", [
    ("exit: KVM_EXIT_DEBUG", "exit: KVM_EXIT_None", "would become ExitReason.None, a Python keyword"),
    ("exit: KVM_EXIT_DEBUG", "exit: KVM_EXIT_", "would become ExitReason.(empty), which is not a Python identifier"),
    ("exit: KVM_EXIT_DEBUG", "exit: KVM_EXIT__missing_", "a name Python's enum reserves"),
    ("exit: KVM_EXIT_HLT", "exit: HLT", "exits HLT and KVM_EXIT_HLT"),
])
def test_exit_reasons_whose_enum_member_cannot_exist(scratch, capsys, old, new, message):
    run = "spec/common/run.yaml"
    scratch.replace(run, old + "\n", new + "\n")
    # a second exit that becomes ExitReason.HLT, after the first
    if new == "exit: HLT":
        scratch.replace(run, "  - exit: KVM_EXIT_IO\n", "  - exit: KVM_EXIT_HLT\n    value: 99\n    since: \"6.1\"\n"
                                                     "    doc: Clashes.\n  - exit: KVM_EXIT_IO\n")
        expect_error(scratch, capsys, run, message, scratch.line_of(run, "exit: HLT\n"))
        return
    expect_error(scratch, capsys, run, message, scratch.line_of(run, new + "\n"))


@pytest.mark.parametrize("name, message", [
    ("ctypes", "'ctypes' is a name the generated Python bindings already use"),
    ("IOCTLS", "'IOCTLS' is a name the generated Python bindings already use"),
    ("Kvm", "'Kvm' is a name the generated Python bindings already use"),
    ("errno", "'errno' is a name the generated Python bindings already use"),
    ("__path__", "'__path__' has a form Python reserves"),
    ("_ignore_", "'_ignore_' has a form Python reserves"),
    ("__u32", "'__u32' is a name the generated C headers use"),
    ("_IOWR", "'_IOWR' is a name the generated C headers use"),
    ("_ASM_X86_KVM_H", "'_ASM_X86_KVM_H' is the include guard of arch/x86/include/uapi/asm/kvm.h"),
    ("_kvm_nested_state__hdr", "is the name of the Python class of an inline member of struct kvm_nested_state"),
])
def test_names_the_outputs_already_use(scratch, capsys, name, message):
    add_items(scratch, NESTED, const(name))
    expect_error(scratch, capsys, NESTED, message, scratch.line_of(NESTED, f"const: {name}"))


@pytest.mark.parametrize("field, message", [
    ("from_buffer", "field 'from_buffer' has a name the ctypes class of struct kvm_example needs"),
    ("_anon0", "field '_anon0' has a name the ctypes class"),
    ("__init__", "field '__init__' has a name the ctypes class"),
    ("KVM_STATE_NESTED_SVM_VMCB_SIZE", "field 'KVM_STATE_NESTED_SVM_VMCB_SIZE' has the name of the macro"),
])
def test_fields_the_outputs_cannot_carry(scratch, capsys, field, message):
    add_items(scratch, NESTED, f"""\
  - struct: kvm_example
    since: "6.1"
    doc: An example.
    fields:
      - {{name: {field}, type: __u64, doc: A field.}}
""")
    expect_error(scratch, capsys, NESTED, message, scratch.line_of(NESTED, f"name: {field},"))


def test_two_members_with_one_name_through_an_anonymous_member(scratch, capsys):
    add_items(scratch, NESTED, """\
  - struct: kvm_example
    since: "6.1"
    doc: An example.
    fields:
      - {name: control, type: __u64, doc: A field.}
      - union:
          fields:
            - {name: control, type: __u64, doc: "The same name, seen through the anonymous union."}
            - {name: other, type: __u64, doc: Another.}
        doc: Anonymous.
""")
    expect_error(scratch, capsys, NESTED, "struct kvm_example has two members named 'control'",
                 scratch.line_of(NESTED, "- {name: control, type: __u64, doc: \"The same"))


def test_python_reserved_names_follow_the_templates():
    """Every top-level name of the generated modules is a spec name or in PYTHON_RESERVED."""
    from kvmspec.build import load_model
    from kvmspec.checks import PYTHON_RESERVED
    from kvmspec.emit.python import exit_class_name, py_classes
    from kvmspec.model import ExitReason
    model = load_model(REPO)
    spec_names = {i.name for i in model.items} | {v.name for i in model.items for v in getattr(i, "values", ())
                                                   if hasattr(v, "name")}
    private_classes = {c.name for r in model.records for c in py_classes(r)}
    private_classes |= {exit_class_name(e) for e in model.of_kind(ExitReason)}   # IoExit, HltExit...
    for module in ("__init__.py", "api.py"):
        tree = ast.parse((REPO / "generated/python/kvm_uapi" / module).read_text())
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                continue
            for name in names:
                if name in spec_names or name in private_classes or name.startswith("_E_") or name == "__all__":
                    continue
                assert name in PYTHON_RESERVED, f"{module} defines {name}; add it to checks.PYTHON_RESERVED"


# ------------------------------------------------------------------ paths


@pytest.mark.parametrize("entry", ["../outside.yaml", "/etc/passwd.yaml", "x86/../../outside.yaml", "x86//vm.yaml"])
def test_manifest_files_cannot_leave_spec(scratch, capsys, entry):
    scratch.replace(MANIFEST, "  - x86/nested-state.yaml\n", f"  - x86/nested-state.yaml\n  - {entry}\n")
    expect_error(scratch, capsys, MANIFEST, "is not a path to a .yaml file inside spec/",
                 scratch.line_of(MANIFEST, f"  - {entry}\n"), 5)


def test_a_symlinked_spec_file_cannot_leave_spec(scratch, capsys, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("header: x86\ntitle: Outside\ndoc: Not part of the repository.\nitems: []\n")
    scratch.path("spec/x86/outside.yaml").symlink_to(outside)
    scratch.replace(MANIFEST, "  - x86/nested-state.yaml\n", "  - x86/nested-state.yaml\n  - x86/outside.yaml\n")
    expect_error(scratch, capsys, MANIFEST, "spec file 'x86/outside.yaml' is outside spec/",
                 scratch.line_of(MANIFEST, "x86/outside.yaml"), 5)


def test_a_symlinked_directory_cannot_leave_spec(scratch, capsys, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "more.yaml").write_text("header: x86\ntitle: More\ndoc: Elsewhere.\nitems: []\n")
    scratch.path("spec/ext").symlink_to(tmp_path / "elsewhere")
    scratch.replace(MANIFEST, "  - x86/nested-state.yaml\n", "  - x86/nested-state.yaml\n  - ext/more.yaml\n")
    expect_error(scratch, capsys, MANIFEST, "spec file 'ext/more.yaml' is outside spec/",
                 scratch.line_of(MANIFEST, "ext/more.yaml"))


def test_a_symlinked_spec_directory_is_fine(tmp_path, capsys):
    # The whole spec/ may be a link (a second checkout sharing the spec).
    root = tmp_path / "repo"
    root.mkdir()
    (root / "spec").symlink_to(REPO / "spec")
    from kvmspec.cli import main
    assert main(["--root", str(root), "validate"]) == 0


@pytest.mark.parametrize("path, message", [
    ("a/../../include/uapi/asm/kvm.h", "is not a plain path inside generated/"),
    ("arch/x86/include/uapi/./asm/kvm.h", "is not a plain path inside generated/"),
    ("/usr/include/asm/kvm.h", "is not a path to a .h file inside generated/"),
    ("include/uapi/LINUX/KVM.h", "duplicate header path 'include/uapi/LINUX/KVM.h' (it differs from"),
    ("include/uapi/linux/kvm.h/asm/kvm.h", "is inside another header's path"),
    ("python/kvm_uapi/asm/kvm.h", "is inside python/, where kvmspec writes other outputs"),
])
def test_header_paths_stay_inside_generated(scratch, capsys, path, message):
    scratch.replace(MANIFEST, "path: arch/x86/include/uapi/asm/kvm.h", f"path: {path}")
    expect_error(scratch, capsys, MANIFEST, message, scratch.line_of(MANIFEST, f"path: {path}"), 11)
    result = scratch.run("generate", capsys=capsys)
    assert result.status == 1
    assert sorted(p.name for p in scratch.root.iterdir()) == ["spec"]


def test_headers_including_each_other_are_refused(scratch, capsys):
    scratch.replace(MANIFEST, "      - linux/ioctl.h\n      - {name: linux/stddef.h",
                    "      - linux/ioctl.h\n      - linux/kvm.h\n      - {name: linux/stddef.h")
    expect_error(scratch, capsys, MANIFEST, "includes linux/kvm.h, which includes x86",
                 scratch.line_of(MANIFEST, "      - linux/kvm.h\n"))


def test_a_header_must_include_what_it_uses(scratch, capsys):
    scratch.replace(MANIFEST, "      - linux/types.h\n      - linux/ioctl.h\n", "      - linux/ioctl.h\n")
    expect_error(scratch, capsys, MANIFEST, "header x86 uses the types of <linux/types.h> but does not include it",
                 scratch.line_of(MANIFEST, "  - name: x86\n    path:"))


def test_a_header_whose_values_use_bitull_must_include_const_h(scratch, capsys):
    """asm/kvm.h of 6.1 wrote KVM_PMU_MASKED_ENTRY_EXCLUDE with _BITULL without including
    <linux/const.h>: a file including it alone could not use the macro."""
    scratch.replace(MANIFEST, '      - {name: linux/const.h, since: "6.7"}    # _BITULL(0) in KVM_EXIT_HYPERCALL_LONG_MODE\n',
                    "")
    expect_error(scratch, capsys, MANIFEST, "header x86 writes values with macros of <linux/const.h> but does not "
                 "include it", scratch.line_of(MANIFEST, "  - name: x86\n    path:"))


@pytest.mark.parametrize("key", ["guard", "name"])
def test_header_guards_and_names_are_unique(scratch, capsys, key):
    value = {"guard": "__LINUX_KVM_H", "name": "linux"}[key]
    old = {"guard": "guard: _ASM_X86_KVM_H", "name": "  - name: x86\n    path:"}[key]
    new = {"guard": f"guard: {value}", "name": f"  - name: {value}\n    path:"}[key]
    scratch.replace(MANIFEST, old, new)
    expect_error(scratch, capsys, MANIFEST, f"duplicate header {key} {value!r}")


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize("kind, value, message", [
    ("capability", 2**31, "2147483648 is more than 2147483647"),
    ("exit", 2**32, "4294967296 is more than 4294967295"),
])
def test_numbers_beyond_their_c_type(scratch, capsys, kind, value, message):
    extra = "    check: [system]\n    answer: {kind: boolean}\n" if kind == "capability" else ""
    add_items(scratch, NESTED, f"  - {kind}: KVM_{kind.upper()}_EXAMPLE\n    value: {value}\n    since: \"6.1\"\n"
                               f"    doc: Too big.\n{extra}")
    expect_error(scratch, capsys, NESTED, message, scratch.line_of(NESTED, f"value: {value}"), 12)


@pytest.mark.parametrize("array", ["0x1000000000000000", "[0x100000, 0x100000, 0x100000]", "0x80000000"])
def test_records_larger_than_an_object_can_be(scratch, capsys, array):
    add_items(scratch, NESTED, f"""\
  - struct: kvm_example
    since: "6.1"
    doc: Too big to exist.
    fields:
      - {{name: a, type: __u8, array: {array}, doc: Many bytes.}}
""")
    expect_error(scratch, capsys, NESTED, "struct kvm_example is", scratch.line_of(NESTED, "struct: kvm_example"))
    assert "more than an object can be there" in scratch.run("validate", capsys=capsys).err


def test_records_nested_thousands_deep_are_refused_once(scratch, capsys):
    chain = "".join(f"""\
  - struct: kvm_chain{i}
    since: "6.1"
    doc: Link {i}.
    fields:
      - {{name: a, type: __u64, doc: A.}}
""" + (f"      - {{name: b, type: struct kvm_chain{i - 1}, doc: B.}}\n" if i else "") for i in range(1500))
    add_items(scratch, NESTED, chain)
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1, result.err
    assert errors_of(result) == [f"{NESTED}:{scratch.line_of(NESTED, 'struct: kvm_chain32')}:13: error: "
                                 "struct kvm_chain32 nests records 33 levels deep"]


def test_a_long_flat_expression_is_refused_not_a_recursion_error(scratch, capsys):
    flat = "+".join(["1"] * 2000)
    add_items(scratch, NESTED, const("KVM_EXAMPLE_FLAT", f'"{flat}"'))
    error = expect_error(scratch, capsys, NESTED, "expression is nested more than 100 levels deep",
                         scratch.line_of(NESTED, "1+1+1"))
    assert len(error) < 300


def test_a_long_chain_of_constants_is_refused_not_a_recursion_error(scratch, capsys):
    # each defined by the next: evaluating the first needs all the others
    chain = "".join(const(f"KVM_LINK_{i}", f'"(KVM_LINK_{i + 1} + 1)"') for i in range(1000)) + const("KVM_LINK_1000")
    add_items(scratch, NESTED, chain)
    result = scratch.run("validate", capsys=capsys)
    assert result.status == 1 and "RecursionError" not in result.err
    errors = errors_of(result)
    assert errors and all("is defined through a chain of more than 100 other constants" in e for e in errors)
    assert len(errors) < 20


def test_long_lists_are_checked_in_linear_time(scratch, capsys):
    # uniqueItems used to compare every pair: 30000 entries took a minute
    scratch.replace(MANIFEST, "  - x86/sev.yaml\n", "  - x86/sev.yaml\n" + "".join(f"  - x/f{i}.yaml\n" for i in range(30000)))
    start = time.monotonic()
    result = scratch.run("validate", capsys=capsys)
    assert time.monotonic() - start < 30
    assert result.status == 1 and result.err.rstrip().endswith("kvmspec: 30000 error(s)")


def test_macros_that_blow_up_are_refused_not_a_hang(scratch, capsys):
    nested = "DOUBLE(" * 30 + "1" + ")" * 30   # 2^30 additions once expanded
    add_items(scratch, NESTED, """\
  - macro: DOUBLE
    params: [x]
    body: "((x) + (x))"
    since: "6.1"
    doc: Twice its argument.
""" + const("KVM_EXAMPLE_HUGE", f'"{nested}"'))
    start = time.monotonic()
    expect_error(scratch, capsys, NESTED, "expression expands to more than 100000 operations",
                 scratch.line_of(NESTED, "DOUBLE(DOUBLE("))
    assert time.monotonic() - start < 30


# check_text decides most files with one search over all their strings; the
# exact per-string check runs only when that search finds something. The
# quick answer must never hide a finding.
_TRICKY = st.lists(st.sampled_from(list("ab .:`*/_|[]\t\n\x00\x1f\x7f\x85\u2028\u202e\ufeffé") + [".. ", "::", "*/", "/*", ":ref:`", "`:x:", ".. raw::", "..\t_t", "|s|"]),
                   max_size=30).map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["doc", "title", "moved_to", "name", "returns", "x"]), _TRICKY),
                min_size=1, max_size=6),
       st.lists(_TRICKY, max_size=3))
def test_the_quick_text_check_never_hides_a_finding(pairs, listed):
    from kvmspec import checks
    from kvmspec.load import Map, Seq

    start = (0, 0)   # a position: line and column

    root = Map("spec/x.yaml", start)
    inner = Map("spec/x.yaml", start)
    for key, value in pairs:
        inner._pos += (0, 0, 0, 0)   # of the key and of its value
        inner[key] = value
    items = Seq("spec/x.yaml", start)
    for value in [inner, *listed]:
        items._pos += start
        items.append(value)
    root._pos += (0, 0, 0, 0)
    root["items"] = items
    exact = checks._check_text_exactly(root)
    if checks._unsuspicious(root):
        assert exact == []
    assert checks.check_text(root) == exact
