"""A fast reader for the YAML that spec files are written in, with libyaml as
the reference it must agree with.

Spec files use a small part of YAML: block mappings and sequences, plain and
double-quoted scalars, literal (`|`) and a few folded (`>-`) blocks, flow
collections on one line, and comment lines. PyYAML's libyaml reader makes a
Python node and two marks for each of the spec's ~56,000 values before
fullyaml.py turns the nodes into data. This module reads that part of YAML
line by line instead (a block scalar is taken in one regular-expression
match), straight into the data load.py defines (Map, Seq, Int, scalars, with
the same positions and styles), and needs no PyYAML: every spec file in
86-94 ms of CPU against 117-133 ms (garbage collector off, as in kvmspec;
the least of 15 runs of reading them all), and a run does not import PyYAML.

It is a fast path, never a second definition of YAML: whatever it is not
certain to read exactly as libyaml does (anchors, tags, multi-line flow,
plain or quoted scalars, tabs, non-ASCII text, keys that are not plain
names, anything malformed, a value fullyaml's converter refuses) makes it
give up, and fullyaml.py reads the file and says what is wrong with it.
tests/test_fastyaml.py holds it to that: on every spec file, on each
construct and edge cases, on plain scalars of every YAML type, and on
thousands of damaged copies of pieces of spec files, parse_yaml gives the
same data or the same diagnostics with and without it.
"""

from __future__ import annotations

import re
from sys import intern
from itertools import repeat
from operator import sub
from typing import Any, Optional

from .load import Int, Map, Seq

MAX_DEPTH = 48   # deeper than any spec file: libyaml reads it (and load.py limits it)


class _GiveUp(Exception):
    """The text is not in the part of YAML this reader is sure of."""


# A mapping key: a plain name (then ':' and a space or the end of the line).
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.\-/]*")
# The first characters a plain scalar cannot start with (YAML indicators), and '-' / '?' / ':'
# (which may start one, but not here).
_NOT_PLAIN_START = frozenset(",[]{}#&*!|>'\"%@`?:-")
_PLAIN_START = frozenset(chr(c) for c in range(0x21, 0x7F)) - _NOT_PLAIN_START   # printable ASCII but those
# The first characters of plain scalars that YAML may read as something else
# than a string (a number, bool, null, ...): the others need no resolving.
_RESOLVABLE = frozenset("-+0123456789.yYnNtTfFoO~<=")
# Keys already found to be plain names YAML reads as strings, each to its interned self.
_NAMES: dict[str, str] = {}
# A double-quoted scalar whose only escapes are \" and \\ (the loop unrolled: runs of
# ordinary characters are one repeat, which the regular expression engine does fast).
_DQ = re.compile(r'"([^"\\]*(?:\\["\\][^"\\]*)*)"')
_DQ_ESCAPE = re.compile(r'\\(["\\])')
# In a flow collection: a key, and a plain scalar (no ':' at all, which could make a mapping of it).
_FLOW_KEY = re.compile(r"([A-Za-z_$][A-Za-z0-9_$.\-/]*): +")
_FLOW_PLAIN = re.compile(r"[^ ,\[\]{}#\"'&*!|>%@`?:\-][^,\[\]{}#:]*")
# The flow sequence most spec files use: plain words after '[', each after ', ', then ']'
# and the end of the line; read in one match (others are read node by node).
_WORD = r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*"
_WORDS = re.compile(r"\[(%s(?:, %s)*)?\] *\Z" % (_WORD, _WORD))
_SPACES = re.compile(r" *")
_SPACES_ONLY = re.compile(r"^ +$", re.M)
_FOLD = re.compile(r"\n(\n*)")


def _folded_break(m: re.Match) -> str:
    return m.group(1) or " "


def parse(text: str, path: str) -> Optional[Map]:
    """The data of a spec file's text, as load.parse_yaml gives it, or None
    when the text is not in the part of YAML read here (then libyaml reads it)."""
    if not _plain_text(text):
        return None
    try:
        return _Reader(text, path).document()
    except (_GiveUp, IndexError, ValueError, RecursionError):
        return None


def _plain_text(text: str) -> bool:
    """ASCII lines ending in \\n, without tabs: the only text read here."""
    return text.endswith("\n") and text.isascii() and "\t" not in text and "\r" not in text


def give_up_line(text: str) -> Optional[int]:
    """The line (from 1) at which parse() gives up on the text, None if it does
    not: for a test or a spec author to find the construct it does not read
    (the innermost line the reader was at)."""
    if not _plain_text(text):
        return 1
    try:
        _Reader(text, "").document()
    except (_GiveUp, IndexError, ValueError, RecursionError) as exc:
        line = 0
        tb = exc.__traceback__
        while tb is not None:   # the innermost frame that knows its line
            found = tb.tb_frame.f_locals.get("i")
            if isinstance(found, int):
                line = found
            tb = tb.tb_next
        return line + 1
    return None


# What YAML 1.1 (and so PyYAML's safe loader) reads a plain scalar as, when
# it is not a string: bools and nulls are words; numbers and timestamps are
# made of the characters below, so that a scalar with any other character
# after a first character that may start one is a string.
_BOOLS = {word: value for words, value in (("yes Yes YES true True TRUE on On ON", True),
                                           ("no No NO false False FALSE off Off OFF", False))
          for word in words.split()}
_NULLS = frozenset(("~", "null", "Null", "NULL"))
_NUMBER_START = frozenset("-+0123456789.")
_MAY_BE_NUMBER = re.compile(r"[-+0-9_.:eExXbabcdefABCDEFinfINFtTZ \t]*\Z")
# The integers both YAML and C read, and the same (YAML 1.1 reads 0X1F as a string).
_YAML_C_INT = re.compile(r"[-+]?(?:0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")


def _resolve(value: str) -> Any:
    """A plain scalar's value, as libyaml's tag resolution and fullyaml's
    converter give it; _GiveUp for what the converter refuses or may refuse."""
    first = value[0]
    if first in _NUMBER_START:
        if _YAML_C_INT.match(value):
            sign, digits = (-1, value[1:]) if first == "-" else (1, value[1:] if first == "+" else value)
            if digits[:2] == "0x":
                return Int(sign * int(digits[2:], 16), value)
            return Int(sign * int(digits, 8 if digits[0] == "0" else 10), value)
        if _MAY_BE_NUMBER.match(value):
            raise _GiveUp   # a float, a timestamp, 1_000, 0b101, 1:30 or 0X1F: refused, or not a number
        return value
    if first in "yYnNtTfFoO":
        if value in _BOOLS:
            return _BOOLS[value]
        if value in _NULLS:
            return None
        return value
    if first == "~" and value == "~":
        return None
    if (first == "<" and value == "<<") or (first == "=" and value == "="):
        raise _GiveUp   # a merge key or YAML's "value" indicator
    return value


def _quoted(body: str) -> str:
    return _DQ_ESCAPE.sub(r"\1", body) if "\\" in body else body


def _name(key: str) -> str:
    """A key not met before, interned (one object per name: less memory, and
    marshal shares it), if it is a plain name YAML reads as a string; _GiveUp if not."""
    if not _NAME.fullmatch(key) or _resolve(key) is not key:
        raise _GiveUp   # not a plain name, or a key YAML reads as a number, bool or null
    key = _NAMES[key] = intern(key)
    return key


def _plain_ends_early(text: str) -> bool:
    """Whether a plain scalar in block context stops before the end of its line:
    at a comment, or at a ': ' (or a ':' that ends it) libyaml would refuse."""
    return " #" in text or ":" in text and (": " in text or text[-1] == ":")


class _Reader:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        lines = self.lines = text.split("\n")[:-1]
        # Done by the line in C: what each line holds after its indentation, and the indentation.
        self.stripped = stripped = list(map(str.lstrip, lines, repeat(" ")))
        self.indents = list(map(sub, map(len, lines), map(len, stripped)))
        self.end = len(lines)

    def next_content(self, i: int) -> int:
        """The first line from i that holds more than blanks or a comment (self.end if none)."""
        stripped, end = self.stripped, self.end
        while i < end and stripped[i][:1] in "#":   # '' (blank) or '#'
            i += 1
        return i

    def document(self) -> Map:
        first = self.next_content(0)
        if first >= self.end or self.indents[first] != 0:
            raise _GiveUp
        data, end = self.mapping(first, 0, 0)
        if self.next_content(end) != self.end:
            raise _GiveUp
        return data

    # ------------------------------------------------------------ block mapping
    def mapping(self, i: int, n: int, depth: int) -> tuple[Map, int]:
        """The block mapping whose keys start at column n, from line i (whose
        first n characters may be '- ' and spaces: a mapping in a sequence item).
        The values that fit on their key's line are read here, the others by the
        methods below (a method call for each value would cost as much as reading it)."""
        if depth > MAX_DEPTH:
            raise _GiveUp
        lines, stripped, indents, end = self.lines, self.stripped, self.indents, self.end
        result = Map(self.path, (i, n))
        positions = result._pos   # key line, key column, value line, value column, for each key
        names, plain_start, resolvable = _NAMES, _PLAIN_START, _RESOLVABLE
        while True:
            line = lines[i]
            colon = line.find(":", n)
            if colon < 0:
                raise _GiveUp
            key = line[n:colon]
            key = names.get(key) or _name(key)
            if key in result:
                raise _GiveUp   # the converter says which
            rest = line[colon + 1:]
            if rest:
                if rest[0] != " ":
                    raise _GiveUp   # a ':' not followed by a space ends no key
                rest = rest.lstrip(" ")
            col = len(line) - len(rest)
            first = rest[:1]
            if first in plain_start or first == "-" and rest[1:2] not in ("", " "):
                # a plain scalar, the most common value
                if _plain_ends_early(rest):
                    raise _GiveUp
                positions += (i, n, i, col)
                i += 1
                j = i
                while j < end and not lines[j]:
                    j += 1
                if j < end and indents[j] > n:
                    raise _GiveUp   # it goes on, or a comment cuts it (see ends_here)
                rest = rest.rstrip(" ")
                result[key] = _resolve(rest) if first in resolvable else rest
            elif first == '"':
                positions += (i, n, i, col)
                result[key] = self.double_quoted(line, col, i, n)
                if result._styles is None:
                    result._styles = {}
                result._styles[key] = '"'
                i += 1
            elif first == "[" or first == "{":
                positions += (i, n, i, col)
                result[key] = self.flow(line, col, i, n)
                i += 1
            elif first == "|" or first == ">":
                positions += (i, n, i, col)
                result[key], i = self.block_scalar(i, col, n)
                if result._styles is None:
                    result._styles = {}
                result._styles[key] = first
            elif first and first != "#":
                raise _GiveUp   # an indicator: an anchor, alias, tag, single quote, ...
            else:
                # the value is on the lines below, or there is none
                j = i + 1
                while j < end and stripped[j][:1] in "#":
                    j += 1
                if j < end and (indents[j] > n or (indents[j] == n and lines[j].startswith("-", n))):
                    c = indents[j]
                    positions += (i, n, j, c)
                    if lines[j].startswith("-", c) and lines[j][c + 1:c + 2] in ("", " "):
                        result[key], i = self.sequence(j, c, depth + 1)
                    elif c > n:
                        result[key], i = self.mapping(j, c, depth + 1)
                    else:
                        raise _GiveUp
                else:   # null; with a comment after it, the converter may find a text cut short
                    if first or j > i + 1 and any(indents[k] > n for k in range(i + 1, j) if lines[k]):
                        raise _GiveUp
                    positions += (i, n, i, n + len(key) + 1)
                    result[key] = None
                    i += 1
            while i < end and stripped[i][:1] in "#":   # next_content
                i += 1
            if i >= end or indents[i] < n:
                return result, i
            if indents[i] > n:
                raise _GiveUp

    # ------------------------------------------------------------ scalars
    def scalar(self, i: int, col: int, n: int) -> Any:
        """A value written on line i from column col to the end of the line (a
        quoted or plain scalar, a flow collection), in a node at column n."""
        line = self.lines[i]
        first = line[col]
        if first == '"':
            return self.double_quoted(line, col, i, n)
        if first == "[" or first == "{":
            return self.flow(line, col, i, n)
        return self.plain(line, col, i, n)

    def plain(self, line: str, col: int, i: int, n: int) -> Any:
        if line[col] in _NOT_PLAIN_START and not (line[col] == "-" and line[col + 1:col + 2] not in ("", " ")):
            raise _GiveUp
        text = line[col:]
        if _plain_ends_early(text):
            raise _GiveUp
        self.ends_here(i, n)
        return _resolve(text.rstrip(" "))

    def double_quoted(self, line: str, col: int, i: int, n: int) -> str:
        value, close = self.quoted(line, col)
        self.after_value(line, close + 1)
        self.ends_here(i, n)
        return value

    @staticmethod
    def quoted(line: str, col: int) -> tuple[str, int]:
        """The double-quoted scalar at line[col]: its value, and where its closing quote is."""
        close = line.find('"', col + 1)
        value = line[col + 1:close]
        if close < 0 or "\\" in value:   # no end on this line, or escapes: the regular expression reads it
            m = _DQ.match(line, col)
            if m is None:
                raise _GiveUp   # goes on to the next line, or an escape not read here
            return _quoted(m.group(1)), m.end() - 1
        return value, close

    def after_value(self, line: str, pos: int) -> None:
        """Only blanks, or blanks and a comment, may follow a value on its line."""
        rest = line[pos:]
        if rest.strip(" ") and not (rest[0] == " " and rest.lstrip(" ").startswith("#")):
            raise _GiveUp

    def ends_here(self, i: int, n: int) -> None:
        """A value on one line ends there: the next line that is not empty may not
        be indented further than its key, not even a comment (libyaml would read
        on, or refuse it, or the converter finds a text cut by a comment)."""
        self.block_end(i + 1, n)

    def block_scalar(self, i: int, col: int, n: int) -> tuple[str, int]:
        """A literal (|) or folded (>) block scalar whose header is at column col
        of line i, in a node at column n: its text and the line after it."""
        header = self.lines[i][col:].rstrip(" ")
        if header not in ("|", "|-", ">", ">-"):
            raise _GiveUp   # an indentation digit, keep chomping (+), or a comment
        lines, indents, end = self.lines, self.indents, self.end
        j = i + 1
        while j < end and not lines[j]:
            j += 1
        if j < end and not self.stripped[j]:
            raise _GiveUp   # a line of spaces: libyaml's rules for them are not followed here
        c = indents[j] if j < end else 0
        if c <= n:   # nothing is indented further: an empty block
            self.block_end(j, n)
            return "", j
        # The block: every line that is empty or indented by c or more.
        k = j + 1
        while k < end and (indents[k] >= c or not lines[k]):
            k += 1
        raw = "\n" + "\n".join(lines[i + 1:k])
        if " \n" in raw or raw[-1] == " ":   # a line may be all spaces
            if _SPACES_ONLY.search(raw):
                raise _GiveUp
        # Each line that is not empty loses its first c spaces (each starts with them).
        body = raw.replace("\n" + " " * c, "\n")[1:].rstrip("\n")
        if header[0] == ">":
            body = self.folded(body)
        if len(header) == 1:   # clip: one line break at the end
            body += "\n"
        if k < end and indents[k] > n:
            raise _GiveUp   # (block_end: line k is not empty)
        return body, k

    def block_end(self, k: int, n: int) -> None:
        """After a value that ends before line k (a block scalar, a value on one
        line): the next line that is not empty may not be indented further than
        the node the value belongs to."""
        lines, end = self.lines, self.end
        while k < end and not lines[k]:
            k += 1
        if k < end and self.indents[k] > n:
            raise _GiveUp

    @staticmethod
    def folded(body: str) -> str:
        """Folding: a line break between two lines of text becomes a space, and of
        a run of line breaks the first is dropped."""
        if "\n " in body or body.startswith((" ", "\n")):
            raise _GiveUp   # more-indented lines and leading line breaks are kept: not read here
        return _FOLD.sub(_folded_break, body)

    def flow(self, line: str, col: int, i: int, n: int) -> Any:
        """A flow sequence or mapping that starts at column col of line i and ends on it."""
        words = _WORDS.match(line, col)
        if words is not None:   # [word, word, ...]: the words are plain scalars
            value = Seq(self.path, (i, col))
            if words.group(1):
                positions = value._pos
                at = col + 1
                for word in words.group(1).split(", "):
                    positions += (i, at)
                    at += len(word) + 2
                    value.append(_resolve(word) if word[0] in _RESOLVABLE else word)
        else:
            value, pos, _ = self.flow_node(line, col, i, 0)
            self.after_value(line, pos)
        self.ends_here(i, n)
        return value

    def flow_node(self, line: str, pos: int, i: int, depth: int) -> tuple[Any, int, str]:
        """The flow node at line[pos]: its value, where it ends, and its style."""
        if depth > MAX_DEPTH:
            raise _GiveUp
        first = line[pos]
        if first == "[":
            result_seq = Seq(self.path, (i, pos))
            positions = result_seq._pos
            pos = _SPACES.match(line, pos + 1).end()
            if line[pos] == "]":
                return result_seq, pos + 1, ""
            while True:
                positions += (i, pos)
                value, pos, _ = self.flow_node(line, pos, i, depth + 1)
                result_seq.append(value)
                pos = self.flow_next(line, pos, "]")
                if pos < 0:
                    return result_seq, -pos, ""
        if first == "{":
            result = Map(self.path, (i, pos))
            positions = result._pos
            pos = _SPACES.match(line, pos + 1).end()
            if line[pos] == "}":
                return result, pos + 1, ""
            while True:
                m = _FLOW_KEY.match(line, pos)
                if m is None:
                    raise _GiveUp
                key = m.group(1)
                key = _NAMES.get(key) or _name(key)
                if key in result:
                    raise _GiveUp
                positions += (i, pos, i, m.end())
                pos = m.end()
                value, pos, style = self.flow_node(line, pos, i, depth + 1)
                result[key] = value
                if style:
                    if result._styles is None:
                        result._styles = {}
                    result._styles[key] = style
                pos = self.flow_next(line, pos, "}")
                if pos < 0:
                    return result, -pos, ""
        if first == '"':
            value, close = self.quoted(line, pos)
            return value, close + 1, '"'
        m = _FLOW_PLAIN.match(line, pos)
        if m is None:
            raise _GiveUp
        return _resolve(m.group().rstrip(" ")), m.end(), ""

    @staticmethod
    def flow_next(line: str, pos: int, close: str) -> int:
        """After an entry of a flow collection: where the next starts, or minus
        where the collection ends."""
        pos = _SPACES.match(line, pos).end()
        sign = line[pos]
        if sign == close:
            return -(pos + 1)
        if sign != ",":
            raise _GiveUp
        pos = _SPACES.match(line, pos + 1).end()
        if line[pos] in "]}":
            raise _GiveUp   # a comma before the end: not read here
        return pos

    # ------------------------------------------------------------ block sequence
    def sequence(self, i: int, m: int, depth: int) -> tuple[Seq, int]:
        """The block sequence whose '-' are at column m, from line i."""
        if depth > MAX_DEPTH:
            raise _GiveUp
        lines, stripped, indents = self.lines, self.stripped, self.indents
        result = Seq(self.path, (i, m))
        positions = result._pos
        end = self.end
        names = _NAMES
        while True:
            line = lines[i]
            if not line.startswith("-", m):
                raise _GiveUp
            if len(line) == m + 1:
                # the item is on the lines below, or there is none
                j = self.next_content(i + 1)
                if j < end and indents[j] > m:
                    if lines[j].startswith("-", indents[j]):
                        raise _GiveUp
                    positions += (j, indents[j])
                    value, i = self.mapping(j, indents[j], depth + 1)
                else:
                    positions += (i, m + 1)
                    value = None
                    i += 1
            else:
                if line[m + 1] != " ":
                    raise _GiveUp
                rest = line[m + 2:].lstrip(" ")
                if not rest or rest[0] == "#":
                    raise _GiveUp
                col = len(line) - len(rest)
                first = rest[0]
                positions += (i, col)
                if first == "-" or first in "|>":
                    raise _GiveUp
                colon = rest.find(":")
                if colon > 0 and rest[colon + 1:colon + 2] in ("", " ") and (
                        rest[:colon] in names or _NAME.fullmatch(rest, 0, colon)):
                    value, i = self.mapping(i, col, depth + 1)   # a key: a mapping starts here
                else:
                    value = self.scalar(i, col, m)
                    i += 1
            result.append(value)
            while i < end and stripped[i][:1] in "#":   # next_content
                i += 1
            if i >= end or indents[i] < m or (indents[i] == m and not lines[i].startswith("-", m)):
                return result, i   # (the last: a sequence at its key's column, followed by the next key)
            if indents[i] > m:
                raise _GiveUp
