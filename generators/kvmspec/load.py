"""Reading spec files: YAML text -> plain data that remembers where it came from.

The data is dicts, lists and scalars (Map, Seq, Int, str, bool, None) that
record the position of every key and value, so that later stages can say
`file:line:col`. This module checks the text first (size, characters, tabs,
nesting); fastyaml.py then reads it, or, where it gives up, libyaml
(fullyaml.py), which refuses what a spec never needs and an attacker could
abuse: anchors and aliases (alias bombs), explicit tags (object
construction), duplicate or non-string keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn


from .diagnostics import Diagnostic, Mark, SpecError


MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64

C_INT = re.compile(r"[-+]?(?:0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*)\Z")



class Map(dict):
    """A YAML mapping with the positions of its keys and values.

    The positions are one flat sequence of numbers, four for each key in the
    mapping's order: the line and column (from 0) of the key, then of its
    value; they become a `Mark` only when one is asked for.
    """

    __slots__ = ("path", "_mark", "_pos", "_styles")

    def __init__(self, path: str, position: tuple[int, int]) -> None:
        super().__init__()
        self.path = path
        self._mark = position
        self._pos: list[int] | tuple[int, ...] = []
        self._styles: dict[str, str] | None = None   # of quoted and block scalar values

    def style_of(self, key: str) -> str:
        """How the scalar value of `key` is written: '' (plain), '"', "'", '|' or '>'."""
        return (self._styles or {}).get(key, "")

    @property
    def mark(self) -> Mark:
        return _mark(self.path, self._mark)

    def _position(self, key: str, which: int) -> tuple[int, int]:
        """The position of `key` (which=0) or of its value (which=2); the mapping's if absent."""
        try:
            at = list(self).index(key) * 4 + which
        except ValueError:
            return self._mark
        pos = self._pos
        return (pos[at], pos[at + 1]) if at + 1 < len(pos) else self._mark

    def mark_of(self, key: str) -> Mark:
        """Where the value of `key` starts (the mapping itself if absent)."""
        return _mark(self.path, self._position(key, 2))

    def key_mark(self, key: str) -> Mark:
        return _mark(self.path, self._position(key, 0))


class Seq(list):
    """A YAML sequence with the position of each element: two numbers for
    each, line and column from 0, in one flat sequence."""

    __slots__ = ("path", "_mark", "_pos")

    def __init__(self, path: str, position: tuple[int, int]) -> None:
        super().__init__()
        self.path = path
        self._mark = position
        self._pos: list[int] | tuple[int, ...] = []

    @property
    def mark(self) -> Mark:
        return _mark(self.path, self._mark)

    def mark_of(self, index: int) -> Mark:
        pos = self._pos
        if 0 <= index and 2 * index + 1 < len(pos):
            return _mark(self.path, (pos[2 * index], pos[2 * index + 1]))
        return _mark(self.path, self._mark)


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




# Keys whose values are prose (descriptions), in spec files and in the schema.
TEXT_KEYS = frozenset({"doc", "returns", "title", "reason", "moved_to", "description"})




# What YAML lets a stream hold (YAML 1.1, 5.1): no C0 controls but tab and
# line breaks, no DEL, C1 controls, surrogates or non-characters.
_NOT_YAML = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]"   # compiled when
# a text is not plain ASCII (7 ms: a class of every code point, which a run of ASCII files never needs)
_YAML_ASCII = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])   # the ASCII characters it allows


def position_of(text: str, index: int) -> tuple[int, int]:
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
        line, _ = position_of(text, index)
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
                line, col = position_of(text, index)
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
    bad = None if clean else re.search(_NOT_YAML, text)
    if bad is not None:
        line, col = position_of(text, bad.start())
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
    from . import fullyaml   # PyYAML, imported when it is needed
    return fullyaml.parse(text, path)


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

def pack(data: Any) -> Any:
    """A file's data (Map, Seq, Int, str, bool, None) as tuples and scalars
    that marshal can carry, positions and spellings included; unpack() gives
    back data equal in every respect. Tuples stand for the three kinds the
    parser makes (the data itself never holds one)."""
    kind = type(data)
    if kind is Map:
        return (0, *data._mark, tuple(data), tuple([v if type(v) is str else pack(v) for v in data.values()]),
                tuple(data._pos), data._styles)
    if kind is Seq:
        return (1, *data._mark, tuple([v if type(v) is str else pack(v) for v in data]), tuple(data._pos))
    if kind is Int:
        return (2, int(data), data.text)
    return data


def unpack(packed: Any, path: str) -> Any:
    """The data pack() packed, from a file shown as `path`."""
    if type(packed) is not tuple:
        return packed
    tag = packed[0]
    if tag == 0:
        _, line, column, keys, values, positions, styles = packed
        result = Map(path, (line, column))
        result.update(zip(keys, [v if type(v) is not tuple else unpack(v, path) for v in values]))
        result._pos = positions
        result._styles = styles
        return result
    if tag == 1:
        _, line, column, items, positions = packed
        result_seq = Seq(path, (line, column))
        result_seq.extend([v if type(v) is not tuple else unpack(v, path) for v in items])
        result_seq._pos = positions
        return result_seq
    return Int(packed[1], packed[2])


from . import fastyaml  # noqa: E402  (it builds on the classes above)
