"""Reading a YAML file with libyaml (PyYAML's C parser): the reference reader.

fastyaml reads the spec's files in most cases; what it gives up on is read
here, and so is every text the tests hold it to. libyaml composes the text
into nodes; this module turns the nodes into the data load.py defines (Map,
Seq, Int, scalars, with their positions), and refuses what a spec never
needs and an attacker could abuse: anchors and aliases (alias bombs),
explicit tags (object construction), duplicate or non-string keys, and
integers C would read otherwise.

Importing PyYAML takes ~12 ms, which a run whose files fastyaml reads does
not pay: load.py imports this module when it needs it.
"""

from __future__ import annotations

from typing import Any

import yaml

from .diagnostics import Diagnostic, Mark, SpecError
from .load import C_INT, MAX_DEPTH, TEXT_KEYS, Int, Map, Seq, position_of

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


_ScalarNode, _SequenceNode, _MappingNode = yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode
_scalar_constructor = yaml.constructor.SafeConstructor()


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
            positions = result._pos
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
                if key in result:
                    self.error(key_node, f"duplicate key {key!r}",
                               f"the first {key!r} is at line {result.key_mark(key).line}; keep one")
                    continue
                m, v = key_node.start_mark, value_node.start_mark
                positions += (m.line, m.column, v.line, v.column)
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
            positions = result_seq._pos
            convert = self.convert
            plain = seen is None
            for item in node.value:
                m = item.start_mark
                positions += (m.line, m.column)
                if plain and item.tag == _STR and type(item) is _ScalarNode:
                    result_seq.append(item.value)
                else:
                    result_seq.append(convert(item, depth + 1))
            return result_seq
        # other scalars
        if tag == _INT:
            text = node.value.strip()
            if not C_INT.match(text):
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


def parse(text: str, path: str) -> Any:
    """The data of a YAML document, or SpecError saying what is wrong with it
    (once load.parse_yaml's own checks of the text have passed)."""
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
        line, col = position_of(text, index)
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
