"""Reading spec files: YAML text -> plain data that remembers where it came from.

libyaml (PyYAML's C parser) composes each file into nodes; this module turns
the nodes into dicts, lists and scalars, and records the position of every
key and value so that later stages can say `file:line:col`. It refuses what
a spec never needs and an attacker could abuse: anchors and aliases (alias
bombs), explicit tags (object construction), duplicate or non-string keys,
very large files and very deep nesting.
"""

from __future__ import annotations

import re
from itertools import chain
from pathlib import Path
from typing import Any, Iterator, NoReturn

import yaml

from .diagnostics import Diagnostic, Mark, SpecError

try:  # libyaml's parser when PyYAML was built with it
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python fallback
    _Base = yaml.SafeLoader

_IMPLICIT = {first: tuple(resolvers) for first, resolvers in _Base.yaml_implicit_resolvers.items()}
assert None not in _IMPLICIT and not _Base.yaml_path_resolvers  # what resolve() below relies on


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """The safe loader, with the tag resolution of plain scalars done in one
    table lookup: the parser asks for every one of the spec's ~30,000 nodes,
    and PyYAML's general resolve() (path resolvers, wildcard resolvers) is a
    tenth of the time of loading the spec. Same tags as SafeLoader's."""

    def descend_resolver(self, current_node, current_index):  # no path resolvers: nothing to track
        pass

    def ascend_resolver(self):
        pass

    def resolve(self, kind, value, implicit, _scalar=yaml.ScalarNode, _sequence=yaml.SequenceNode,
                _implicit=_IMPLICIT, _none=(), _str=_STR, _seq=_SEQ, _map=_MAP):   # names bound once: called per node
        if kind is _scalar:
            if implicit[0]:
                for tag, regexp in _implicit.get(value[:1], _none):
                    if regexp.match(value):
                        return tag
            return _str
        return _seq if kind is _sequence else _map

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64

_C_INT = re.compile(r"[-+]?(?:0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*)\Z")

_ScalarNode, _SequenceNode, _MappingNode = yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode


class Map(dict):
    """A YAML mapping with the positions of its keys and values.

    A position is a plain (line, column) tuple, both from 0, turned into a
    `Mark` only when a diagnostic needs one: most never do.
    """

    __slots__ = ("path", "_mark", "_keys", "_values", "_styles")

    def __init__(self, path: str, position: tuple[int, int]) -> None:
        super().__init__()
        self.path = path
        self._mark = position
        self._keys: dict[str, tuple[int, int]] = {}
        self._values: dict[str, tuple[int, int]] = {}
        self._styles: dict[str, str] | None = None   # of quoted and block scalar values

    def style_of(self, key: str) -> str:
        """How the scalar value of `key` is written: '' (plain), '"', "'", '|' or '>'."""
        return (self._styles or {}).get(key, "")

    @property
    def mark(self) -> Mark:
        line, column = self._mark
        return _new_mark(Mark, (self.path, line + 1, column + 1))

    def mark_of(self, key: str) -> Mark:
        """Where the value of `key` starts (the mapping itself if absent)."""
        line, column = self._values.get(key, self._mark)
        return _new_mark(Mark, (self.path, line + 1, column + 1))

    def key_mark(self, key: str) -> Mark:
        line, column = self._keys.get(key, self._mark)
        return _new_mark(Mark, (self.path, line + 1, column + 1))


class Seq(list):
    """A YAML sequence with the position of each element."""

    __slots__ = ("path", "_mark", "_items")

    def __init__(self, path: str, position: tuple[int, int]) -> None:
        super().__init__()
        self.path = path
        self._mark = position
        self._items: list[tuple[int, int]] = []

    @property
    def mark(self) -> Mark:
        return _mark(self.path, self._mark)

    def mark_of(self, index: int) -> Mark:
        return _mark(self.path, self._items[index] if 0 <= index < len(self._items) else self._mark)


class Int(int):
    """An integer that remembers how it was written (0x1000, 0xAE, 12)."""

    text: str

    def __new__(cls, value: int, text: str) -> "Int":
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __getnewargs__(self) -> tuple[int, str]:  # copy and pickle keep the spelling
        return int(self), self.text


# Marks are made by the thousand (every item and field records where it is):
# tuple.__new__ makes one without the Python-level __new__ of a NamedTuple.
_new_mark = tuple.__new__


def _mark(path: str, position: tuple[int, int]) -> Mark:
    return _new_mark(Mark, (path, position[0] + 1, position[1] + 1))


_scalar_constructor = yaml.constructor.SafeConstructor()


# Keys whose values are prose (descriptions), in spec files and in the schema.
TEXT_KEYS = frozenset({"doc", "returns", "title", "reason", "moved_to", "description"})


def _ends(node: Any) -> str:
    return f"so the text ends with {' '.join(node.value.split()[-4:])!r}"


def _cut_hint(key: str) -> str:
    return (f"write the text as a block ({key}: | and the text on the next lines, indented) or in quotes; "
            "or, if a comment is meant, put it on a line of its own, indented as the key")


class _Converter:
    def __init__(self, path: str, anchors: bool = True, text: str = "") -> None:
        self.path = path
        self.errors: list[Diagnostic] = []
        self.seen: set[int] | None = set() if anchors else None
        # The file's text, when it has a comment that could follow a plain scalar.
        self.text = text if " #" in text or "\t#" in text else ""

    def check_cut(self, key: str, key_column: int, node: Any) -> None:
        """A plain text scalar followed by ` #`, or by a more indented line that
        starts with '#': YAML took that for a comment, and the text ends
        mid-sentence (or loses its last lines). Only the characters right
        after the scalar are looked at, and the blank lines after it (each
        run of them once, by the scalar before it)."""
        end = node.end_mark
        text, size = self.text, len(self.text)
        pos = end.index
        while pos < size and text[pos] in " \t":
            pos += 1
        if pos < size and text[pos] == "#":
            if pos > end.index:
                self.errors.append(Diagnostic(
                    Mark(self.path, end.line + 1, end.column + pos - end.index + 1),
                    f"{key} text is cut at ' #': YAML reads '#' after a space as the start of a comment, "
                    f"{_ends(node)}", _cut_hint(key)))
            return
        line = end.line + 1
        while pos < size and text[pos] in "\r\n":   # the scalar ends its line: look at the next ones
            if text[pos] == "\n":
                line += 1
            pos += 1
            start = pos
            while pos < size and text[pos] == " ":
                pos += 1
            if pos < size and text[pos] == "#" and pos - start > key_column:
                self.errors.append(Diagnostic(
                    Mark(self.path, line, pos - start + 1),
                    f"{key} text is cut before line {line}: YAML reads a line that starts with '#' as a "
                    f"comment, {_ends(node)}", _cut_hint(key)))
                return

    def error(self, node: Any, message: str, hint: str = "") -> None:
        m = node.start_mark
        self.errors.append(Diagnostic(Mark(self.path, m.line + 1, m.column + 1), message, hint))

    def convert(self, node: Any, depth: int = 0) -> Any:
        # An alias makes the composer hand out the same node twice; expanding
        # it would let a small file become a huge one ("billion laughs").
        # Without an anchor (&) in the file there can be no alias.
        seen = self.seen
        if seen is not None:
            before = len(seen)
            seen.add(id(node))
            if len(seen) == before:
                self.error(node, "YAML anchors and aliases are not allowed in spec files",
                           "write the value out where it is needed")
                return None
        tag = node.tag
        if tag == _STR:                      # the common case, first
            return node.value
        if depth > MAX_DEPTH:
            self.error(node, f"nesting deeper than {MAX_DEPTH} levels",
                       "a spec never needs this much nesting; flatten the structure")
            return None
        cls = type(node)
        if cls is _MappingNode:
            if tag != _MAP:
                self.error(node, f"explicit YAML tag {tag!r} is not allowed",
                           "remove the tag; spec files hold plain mappings, lists and scalars")
            m = node.start_mark
            result = Map(self.path, (m.line, m.column))
            keys, values = result._keys, result._values
            convert = self.convert
            plain = seen is None   # no alias possible: a string value needs no convert()
            for key_node, value_node in node.value:
                if key_node.tag != _STR or type(key_node) is not _ScalarNode:
                    if type(key_node) is _ScalarNode and key_node.value == "<<":
                        self.error(key_node, "YAML merge keys (<<) are not allowed",
                                   "write the keys out in this mapping")
                    else:
                        self.error(key_node, "mapping keys must be plain strings",
                                   "quote the key or rename it")
                    continue
                key = key_node.value
                if key in keys:
                    self.error(key_node, f"duplicate key {key!r}",
                               f"the first {key!r} is at line {result.key_mark(key).line}; keep one")
                    continue
                m = key_node.start_mark
                keys[key] = (m.line, m.column)
                m = value_node.start_mark
                values[key] = (m.line, m.column)
                if type(value_node) is _ScalarNode:
                    if self.text and not value_node.style and key in TEXT_KEYS:
                        self.check_cut(key, key_node.start_mark.column, value_node)
                    if value_node.style:
                        if result._styles is None:
                            result._styles = {}
                        result._styles[key] = value_node.style
                    if plain and value_node.tag == _STR:
                        result[key] = value_node.value
                        continue
                result[key] = convert(value_node, depth + 1)
            return result
        if cls is _SequenceNode:
            if tag != _SEQ:
                self.error(node, f"explicit YAML tag {tag!r} is not allowed",
                           "remove the tag; spec files hold plain mappings, lists and scalars")
            m = node.start_mark
            result_seq = Seq(self.path, (m.line, m.column))
            marks = result_seq._items
            convert = self.convert
            plain = seen is None
            for item in node.value:
                m = item.start_mark
                marks.append((m.line, m.column))
                if plain and item.tag == _STR and type(item) is _ScalarNode:
                    result_seq.append(item.value)
                else:
                    result_seq.append(convert(item, depth + 1))
            return result_seq
        # other scalars
        if tag == _INT:
            text = node.value.strip()
            if not _C_INT.match(text):
                # YAML 1.1 also reads 1_000, 0b101 and 1:30 as integers; C does not,
                # and the spelling is emitted as written.
                self.error(node, f"{text!r} is an integer only in YAML",
                           "write it as C does: decimal, 0x hexadecimal or 0 octal, without '_' or ':'")
                return None
            try:
                value = _scalar_constructor.construct_yaml_int(node)
            except (ValueError, yaml.YAMLError):
                self.error(node, f"{node.value!r} is not an integer")
                return None
            return Int(value, text)
        if tag == _BOOL:
            return _scalar_constructor.construct_yaml_bool(node)
        if tag == _NULL:
            return None
        if tag == _FLOAT:
            self.error(node, f"{node.value!r} is a floating-point number",
                       'quote it if it is a version ("5.10"); spec values are integers or strings')
            return node.value
        self.error(node, f"explicit YAML tag {tag!r} is not allowed",
                   "remove the tag; spec files hold plain mappings, lists and scalars")
        return None


# What YAML lets a stream hold (YAML 1.1, 5.1): no C0 controls but tab and
# line breaks, no DEL, C1 controls, surrogates or non-characters.
_NOT_YAML = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_YAML_ASCII = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])   # the ASCII characters it allows


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


# libyaml's composer recurses in C once per level of nesting, and the libyaml
# of some PyYAML builds (6.0.3 with libyaml 0.2.5) has no limit: a file of
# 100,000 "[" overflows the C stack and kills the interpreter. Nesting that
# deep needs many flow openers or deep indentation; files with neither are
# passed on untouched, others are scanned first.
_SUSPICIOUS_OPENERS = 1000
_MAX_INDENT = 1000


def _refuse_deep_nesting(text: str, path: str) -> None:
    if "\n" + " " * _MAX_INDENT in text:
        index = text.index("\n" + " " * _MAX_INDENT) + 1
        line, _ = _position(text, index)
        _raise(Mark(path, line, 1), f"indentation of {_MAX_INDENT} columns or more",
               "a spec never needs this much nesting; flatten the structure")
    if text.count("[") + text.count("{") < _SUSPICIOUS_OPENERS:
        return
    depth = 0
    quote = ""
    previous = "\n"
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line, col = _position(text, index)
                _raise(Mark(path, line, col), f"nesting deeper than {MAX_DEPTH} levels",
                       "a spec never needs this much nesting; flatten the structure")
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char in "'\"" and previous in " \t\n[{,:":
            quote = char
        previous = char


def parse_yaml(text: str, path: str, fast: bool = True) -> Any:
    """Parse one YAML document into Map/Seq/scalars, or raise SpecError.
    `fast`: try fastyaml first (libyaml reads what it gives up on); without
    it, libyaml reads the text (the reference the tests hold fastyaml to)."""
    if len(text) > MAX_FILE_BYTES:
        _raise(Mark(path, 1, 1), f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB",
               "split it into several spec files")
    # Spec files are ASCII: deleting every allowed byte and finding nothing left
    # is a tenth of the time of the regular expression (which finds the culprit).
    clean = text.isascii() and not text.encode("ascii").translate(None, _YAML_ASCII)
    bad = None if clean else _NOT_YAML.search(text)
    if bad is not None:
        line, col = _position(text, bad.start())
        _raise(Mark(path, line, col), f"control character U+{ord(bad.group()):04X} is not allowed in a YAML file",
               "spec files are text: no control characters besides tab and line breaks")
    if "\t" in text:
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.lstrip(" ")
            if stripped.startswith("\t"):
                raise SpecError([Diagnostic(Mark(path, lineno, len(line) - len(stripped) + 1),
                                            "tab used for indentation",
                                            "YAML indents with spaces only")])
    _refuse_deep_nesting(text, path)
    data = fastyaml.parse(text, path) if fast else None   # None: libyaml reads it, and says what is wrong
    if data is not None:
        return data
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        mark = Mark(path, m.line + 1, m.column + 1) if m else Mark(path, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError([Diagnostic(mark, f"invalid YAML: {problem}",
                                    "check indentation, quoting and colons near this position")]) from None
    except yaml.reader.ReaderError as exc:  # position counts UTF-8 bytes
        index = len(text.encode("utf-8")[: exc.position].decode("utf-8", "ignore"))
        line, col = _position(text, index)
        raise SpecError([Diagnostic(Mark(path, line, col), f"invalid YAML: {exc.reason}")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([Diagnostic(Mark(path, 1, 1), f"invalid YAML: {' '.join(str(exc).split())}")]) from None
    except RecursionError:
        raise SpecError([Diagnostic(Mark(path, 1, 1), "YAML nesting is too deep",
                                    f"keep nesting under {MAX_DEPTH} levels")]) from None
    if node is None:
        raise SpecError([Diagnostic(Mark(path, 1, 1), "file is empty",
                                    "a spec file needs at least header, title, doc and items")])
    conv = _Converter(path, anchors="&" in text, text=text)
    data = conv.convert(node)
    if conv.errors:
        raise SpecError(conv.errors)
    return data


def read_spec_file(path: Path, display: str) -> Any:
    """Read and parse one file; `display` is the path shown in diagnostics."""
    try:
        with open(path, "rb") as f:   # never more than the limit, whatever the file is
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError([Diagnostic(Mark(display, 1, 1), f"cannot read file: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        _raise(Mark(display, 1, 1), f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB",
               "split it into several spec files")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        _raise(Mark(display, line, 1), "file is not valid UTF-8", "save the file as UTF-8")
    return parse_yaml(text, display)


def _raise(mark: Mark, message: str, hint: str) -> NoReturn:
    raise SpecError([Diagnostic(mark, message, hint)])


# ---------------------------------------------------------------- handing data to another process

def _flat(positions: Any) -> tuple:
    """Positions as one flat tuple: line, column, line, column, ..."""
    return tuple(chain.from_iterable(positions))


def _positions(flat: tuple) -> Iterator[tuple[int, int]]:
    pairs = iter(flat)
    return zip(pairs, pairs)


def pack(data: Any) -> Any:
    """A file's data (Map, Seq, Int, str, bool, None) as tuples and scalars
    that marshal can carry, positions and spellings included; unpack() gives
    back data equal in every respect. Tuples stand for the three kinds the
    parser makes (the data itself never holds one)."""
    kind = type(data)
    if kind is Map:
        keys = tuple(data)
        return (0, *data._mark, keys,
                tuple([v if type(v) is str else pack(v) for v in data.values()]),
                _flat(map(data._keys.__getitem__, keys)), _flat(map(data._values.__getitem__, keys)),
                data._styles)
    if kind is Seq:
        return (1, *data._mark,
                tuple([v if type(v) is str else pack(v) for v in data]), _flat(data._items))
    if kind is Int:
        return (2, int(data), data.text)
    return data


def unpack(packed: Any, path: str) -> Any:
    """The data pack() packed, from a file shown as `path`."""
    if type(packed) is not tuple:
        return packed
    tag = packed[0]
    if tag == 0:
        _, line, column, keys, values, key_marks, value_marks, styles = packed
        result = Map(path, (line, column))
        result.update(zip(keys, [v if type(v) is not tuple else unpack(v, path) for v in values]))
        result._keys.update(zip(keys, _positions(key_marks)))
        result._values.update(zip(keys, _positions(value_marks)))
        result._styles = styles
        return result
    if tag == 1:
        _, line, column, items, marks = packed
        result_seq = Seq(path, (line, column))
        result_seq.extend([v if type(v) is not tuple else unpack(v, path) for v in items])
        result_seq._items.extend(_positions(marks))
        return result_seq
    return Int(packed[1], packed[2])


from . import fastyaml  # noqa: E402  (it builds on the classes above)
