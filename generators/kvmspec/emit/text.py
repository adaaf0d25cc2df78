"""The Jinja2 environment shared by generators, and the text filters it offers.

Filters format; they never compute facts. Anything numeric a template shows
comes from the model.
"""

from __future__ import annotations

import functools
import io
import marshal
import os
import pickle
import re
import types
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache
import jinja2.compiler
import jinja2.runtime

from ..layout import HOST_ABIS as ABIS, IOC_MACROS, host
from ..model import Field, Ioctl, Item, NamedValue, Record, Version
from . import prose

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
REGENERATE = "kvmspec generate"


def fill_lines(words: list[str], width: int, first: str = "", rest: str = "") -> list[str]:
    """Greedy line filling: what textwrap.wrap does with break_long_words and
    break_on_hyphens off, for text already split into words, but much faster:
    the words are joined once and each line is cut at the last space that
    fits (a word longer than a line gets a line of its own)."""
    if not words:
        return []
    text = " ".join(words)
    pos, end = 0, len(text)
    prefix, avail = first, max(width - len(first), 0)
    if end <= avail:                      # the common case: it fits on one line
        return [prefix + text]
    lines: list[str] = []
    while end - pos > avail:
        cut = text.rfind(" ", pos, pos + avail + 1)
        if cut < 0:                       # the next word alone is longer than the line
            cut = text.find(" ", pos)
            if cut < 0:
                break
        lines.append(prefix + text[pos:cut])
        pos = cut + 1
        prefix, avail = rest, max(width - len(rest), 0)
    lines.append(prefix + text[pos:])
    return lines


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.strip().split("\n\n") if p.strip()]


def summary(text: str) -> str:
    """The first paragraph, as one line (paragraphs(text)[0], without splitting the rest)."""
    text = text.strip()
    end = text.find("\n\n")
    if end >= 0:
        text = text[:end]
    line = text.replace("\n", " ")
    # " ".join(text.split()), without splitting a text whose only white space is single
    # spaces and line breaks (isprintable() is false for every other white space).
    return line if line[-1:] != " " and "  " not in line and line.isprintable() else " ".join(line.split())


def wrap(text: str, width: int = 76, indent: str = "", first: str | None = None) -> str:
    """Re-flow each paragraph to `width` columns; keep blank lines between paragraphs."""
    out = []
    for para in paragraphs(text):
        if _is_preformatted(para):
            out.append("\n".join(indent + line for line in para.splitlines()))
        else:
            out.append("\n".join(fill_lines(para.split(), width, indent, indent)))
    result = "\n\n".join(out)
    if first is not None and result.startswith(indent):
        result = first + result[len(indent):]
    return result


def _is_preformatted(para: str) -> bool:
    lines = para.splitlines()
    return any(line.startswith(("  ", "- ", "* ", "|", "::", "..")) for line in lines[1:]) or \
        para.lstrip().startswith(("- ", "* ", ".. ", "::"))


def bullet(text: str, width: int = 74) -> str:
    """A `- ` list item, wrapped, continuation lines indented by two spaces."""
    return "\n".join(fill_lines(text.split(), width, "- ", "  "))


def c_comment(text: str, indent: str = "", width: int = 78) -> str:
    """A C block comment holding the text (kernel style)."""
    body = wrap(text, width=width - len(indent) - 3)
    if not body:
        return ""
    lines = body.splitlines()
    if len(lines) == 1 and len(lines[0]) + len(indent) + 6 <= width:
        return f"{indent}/* {lines[0]} */"
    inner = "\n".join(f"{indent} *" + (f" {line}" if line else "") for line in lines)
    return f"{indent}/*\n{inner}\n{indent} */"


def c_define(name: str, value: str, column: int = 40) -> str:
    """`#define NAME<tabs>VALUE`, aligned with tabs like the kernel's headers."""
    head = f"#define {name}"
    if not value:
        return head
    if len(head) >= column:
        return f"{head} {value}"
    tabs = (column - len(head) + 7) // 8
    return head + "\t" * tabs + value


def docstring(text: str, indent: str = "    ") -> str:
    """A Python triple-quoted string literal holding the text verbatim."""
    body = text.strip("\n").replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    lines = body.splitlines()
    if len(lines) <= 1:
        return f'"""{body}"""'
    rest = "\n".join((indent + line) if line.strip() else "" for line in lines[1:])
    return f'"""{lines[0]}\n{rest}\n{indent}"""'


def py_comment(text: str, indent: str = "") -> str:
    """The summary of a doc as `#:` comment lines (Sphinx attribute docs)."""
    return wrap(summary(text), width=78 - len(indent) - 3, indent=indent + "#: ")


def py_string(text: str) -> str:
    """A Python string literal (single line) for the text."""
    return repr(text)


def rst_heading(text: str, char: str, overline: bool = False) -> str:
    line = char * len(text)
    return f"{line}\n{text}\n{line}" if overline else f"{text}\n{line}"


# What reStructuredText reads as the start of a list when a table cell begins
# with it: "-", "* x", "(56)", "3.", "a)", "#.".
_LIST_START = re.compile(r"[-*+\u2022](?: |$)|\(?(?:[0-9]+|[a-zA-Z]|#)[.)](?: |$)|\((?:[0-9]+|[a-zA-Z]|#)\)(?: |$)")


# What a cell that _LIST_START matches starts with: one of these, or a letter and "." or ")".
_LIST_FIRST = frozenset("-*+\u2022(#0123456789")


_LIST_SECOND = frozenset((".", ")"))   # or its second character is one of these


def rst_cell(text: str) -> str:
    """The text as a table cell says it: a value like ``(56)`` or ``-`` is
    escaped so that it is not read as a list with an empty item."""
    if (text[:1] in _LIST_FIRST or text[1:2] in _LIST_SECOND) and _LIST_START.match(text):
        return "\\" + text
    return text


# _LIST_START for the cells of a column joined with NULs, a NUL before and after
# each: a cell's end, where $ matched, is the NUL after it (or a line break
# before that NUL).
_LIST_CELL = re.compile("\x00(?:" + _LIST_START.pattern.replace("$", "\n?\x00") + ")")


def _escaped(column: tuple[str, ...]) -> tuple[str, ...]:
    """rst_cell of every cell of a table's column: one search of the whole
    column finds whether any cell needs it (the rare one that does is escaped
    with all the others), rather than a call for each cell."""
    joined = "\x00".join(("", *column, ""))
    if joined.count("\x00") == len(column) + 1 and _LIST_CELL.search(joined) is None:
        return column
    return tuple(map(rst_cell, column))


def _one_line(text: str, width: int) -> bool:
    """Whether fill_lines would give the text back as one line unchanged: it
    fits, and its only white space is single spaces between words (tested
    without splitting it: isprintable() is false for every other white space)."""
    return 0 < len(text) <= width and text[0] != " " and text[-1] != " " and "  " not in text \
        and text.isprintable()


def rst_table(rows: list[list[str]], header: list[str] | None = None, indent: str = "  ",
              last_width: int = 60) -> str:
    """A reStructuredText simple table; the last column wraps onto continuation rows."""
    *lead, last = map(_escaped, zip(*([header] if header else []) + rows))   # the table's columns
    widths = [max(1, *map(len, column)) for column in lead]
    wrapped = [[c] if _one_line(c, last_width) else fill_lines(c.split(), last_width) or [""] for c in last]
    widths.append(max(1, *(len(line) for lines in wrapped for line in lines)))
    border = indent + "  ".join("=" * w for w in widths)
    if lead and "" in lead[0]:
        lead[0] = tuple(c or ".." for c in lead[0])   # an empty first cell would make its row a continuation row
    # A row: every column but the last padded to its width; a continuation row has only the last.
    row = ("".join(f"{{:<{w}}}  " for w in widths[:-1]) + "{}").format
    continued = indent + " " * sum(w + 2 for w in widths[:-1])

    out = [border]
    for index, (cells, lines) in enumerate(zip(zip(*lead, [lines[0] for lines in wrapped]), wrapped)):
        out.append((indent + row(*cells)).rstrip())
        for cont in lines[1:]:
            out.append((continued + cont).rstrip())
        if header and index == 0:
            out.append(border)
    out.append(border)
    return "\n".join(out)


def hexnum(value: int, digits: int = 0) -> str:
    if value < 0:
        return str(value)
    return f"{value:#0{digits + 2}x}" if digits else f"{value:#x}"


def arch_list(item: "Item | NamedValue | tuple[str, ...]") -> str:
    """An item's architectures as the docs write them, each that gained it after the item's
    since with its release: "x86, arm64, riscv (since 6.10)"; "all" for every one."""
    if isinstance(item, tuple):
        return ", ".join(item) if item else "all"
    later = dict(item.arch_since)
    return ", ".join(f"{a} (since {later[a]})" if a in later else a for a in item.arch) if item.arch else "all"


def arch_releases(item: "Item | NamedValue") -> str:
    """The architectures that gained an item or value after its since, with their releases
    ("riscv 6.10, loongarch 6.11"), or ""."""
    return ", ".join(f"{a} {r}" for a, r in item.arch_since)


# How the documentation marks a release that is not out yet (after the manifest's `released:`).
UNRELEASED = "not yet released"


def since(item: Item | Field) -> str:
    v: Version | None = item.since
    return v.release if v is not None else ""


@jinja2.pass_environment
def release_of(env: jinja2.Environment, item: Item | Field) -> str:
    """The item's release (`since`); one after the model's newest released one
    (the `released` global the generators set) says it is not out yet."""
    v: Version | None = item.since
    if v is None:
        return ""
    text = v.release
    released: Version | None = env.globals.get("released")
    if released is not None and v.parts > released.parts:
        return f"{text} ({UNRELEASED})"
    return text


def rst_ref(item: Item) -> str:
    """A link to the item's section; items without one (removed from these
    headers) are named with where they went."""
    if item.removed is None:
        return f":ref:`{item.name} <api-{item.name}>`"
    if item.removed.moved_to:
        return f"{item.name} (moved to {item.removed.moved_to} in {item.removed.since})"
    return f"{item.name} (removed in {item.removed.since})"


def ioctl_macro(ioctl: Ioctl) -> str:
    if ioctl.dir == "none":
        return f"{IOC_MACROS['none']}(KVMIO, {ioctl.nr:#04x})"
    return f"{IOC_MACROS[ioctl.dir]}(KVMIO, {ioctl.nr:#04x}, {ioctl.type_text})"


def c_member_declarator(f: Field) -> str:
    """`name[4]`, `name[KVM_X]`, `name[]`, `name : 3` for one field."""
    name = f.name or ""
    if f.flexible:
        return f"{name}[]"
    suffix = "".join(f"[{d}]" for d in f.dims_text)
    if f.bits:
        suffix += f":{f.bits}"
    return name + suffix


def c_field_decl(f: Field) -> str:
    """A member declaration without the semicolon: `__u8 pad[120]`, `void *p`."""
    ctype = f.scalar.name if f.scalar is not None else f.record.c_type  # type: ignore[union-attr]
    sep = "" if ctype.endswith("*") else " "
    return f"{ctype}{sep}{c_member_declarator(f)}"


def hexkey(key: str) -> str:
    """A fact's key spelled as an identifier (see kvm_abi_dump.c)."""
    return key.encode().hex()


def c_declarations(fields, release=None) -> list[list[Field]]:
    """The fields that exist at a release, one list per C declaration: a field
    with c_join shares the declaration of the one before it."""
    lines: list[list[Field]] = []
    for f in fields:
        if not f.exists_at(release):
            continue
        if f.c_join and lines:
            lines[-1].append(f)
        else:
            lines.append([f])
    return lines


def rendered_once(render: Any) -> Any:
    """render (a template's macro) as a function that renders each object once in a
    run, by identity: what several sections or pages print the same (a value set's
    table, an ioctl's doc) is then made once and reused."""
    done: dict[int, str] = {}

    def once(obj: Any) -> str:
        text = done.get(id(obj))
        if text is None:
            text = done[id(obj)] = str(render(obj))
        return text
    return once


def abi_names() -> list[str]:
    return [abi.name for abi in ABIS]


class _CodeGenerator(jinja2.compiler.CodeGenerator):
    """Jinja's compiler, with `a.b` compiled to Python's own attribute lookup.

    Jinja turns every `a.b` into a call of Environment.getattr, which tries
    the attribute and then the item `a["b"]`, and gives an Undefined when
    both fail. Our templates read attributes of the model's objects only, and
    with StrictUndefined a missing one is an error either way, so Python's
    getattr does the same job without a Python function call per lookup
    (rendering every output took 8% less: 314 ms against 340 ms in one
    process). A dict read as `a.b` fails with AttributeError (write a["b"])."""

    def visit_Getattr(self, node, frame) -> None:
        self.write("getattr(")
        self.visit(node.node, frame)
        self.write(f", {node.attr!r})")


_PLAIN_CALLABLES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)


class _Context(jinja2.runtime.Context):
    """Jinja's template context, with a shorter way to call a plain function.

    Every call in a template goes through Context.call, which asks the
    callable whether it wants the context or the environment passed first
    (twice, for callable objects) before calling it. A Python function or
    class that does not ask (no jinja_pass_arg) is called at once; macros,
    which do ask, and everything else take Jinja's way."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's spelling)
        if type(__obj) in _PLAIN_CALLABLES and getattr(__obj, "jinja_pass_arg", None) is None:
            if kwargs:
                kwargs.pop("_loop_vars", None)
                kwargs.pop("_block_vars", None)
            try:
                return __obj(*args, **kwargs)
            except StopIteration:
                return __self.environment.undefined("value was undefined because a callable raised a "
                                                    "StopIteration exception")
        return jinja2.runtime.Context.call(__self, __obj, *args, **kwargs)


# The compiled form of a template depends on the compiler above: a change to
# it needs a new name, which is part of the cache's directory.
_COMPILER = "getattr-1"


class _FileBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's cache of compiled templates in files, each file read at once. Jinja
    unmarshals a template's code from the open file, and marshal.load reads a file
    object (or a BytesIO) a few bytes per method call: ten times slower than
    marshal.loads of the bytes (the tests generator's 4 templates loaded in 33.6M
    instructions instead of 1.6M, callgrind)."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            with open(self._get_cache_filename(bucket), "rb") as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return
        # What Bucket.load_bytecode reads: the magic header, the source's checksum, the code.
        header = io.BytesIO(data)
        if header.read(len(jinja2.bccache.bc_magic)) != jinja2.bccache.bc_magic or \
                pickle.load(header) != bucket.checksum:
            bucket.reset()
            return
        try:
            bucket.code = marshal.loads(memoryview(data)[header.tell():])
        except (EOFError, ValueError, TypeError):
            bucket.reset()


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (keyed by template source and by our
    compiler, _COMPILER), like .pyc files."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "kvmspec", "jinja-" + _COMPILER)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return None
    return _FileBytecodeCache(directory)


_INT_LITERAL = re.compile(r"^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")


def int_literal(expr: str, default: int) -> int:
    """The number an expression spells if it is an integer literal (as an older release
    wrote a value), else `default`."""
    match = _INT_LITERAL.match(str(expr).strip())
    return int(match.group(1), 0) if match else default


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        bytecode_cache=_bytecode_cache(),
        auto_reload=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.code_generator_class = _CodeGenerator
    env.context_class = _Context
    env.filters.update(
        wrap=wrap, bullet=bullet, rstrip=lambda text: str(text).rstrip(), summary=summary, c_comment=c_comment, c_define=c_define, docstring=docstring,
        py_string=py_string, py_comment=py_comment, rst_heading=rst_heading, hexnum=hexnum, arch_list=arch_list, arch_releases=arch_releases,
        since=since, release_of=release_of, ioctl_macro=ioctl_macro, c_member_declarator=c_member_declarator,
        c_field_decl=c_field_decl, rst_ref=rst_ref,
        paragraphs=paragraphs, host=host, hexkey=hexkey, pyrepr=repr, c_declarations=c_declarations,
        int_literal=int_literal,
    )
    env.filters.update(prose.FILTERS)
    env.globals.update(rst_table=rst_table, abi_names=abi_names, REGENERATE=REGENERATE,
                       Record=Record, released=None, UNRELEASED=UNRELEASED)
    env.tests.update(record=lambda x: isinstance(x, Record))
    return env
