"""Spec texts with one piece taken out: every key of every mapping of the real spec.

A removal deletes one key and its value from one file's text, keeping the
rest byte for byte (comments, quoting, layout), as an author's slip would.
Removals are grouped by shape, the item kind and the path of the key within
the item with list positions left out and members of inline records taken
for members (`struct fields[].array`, `ioctl arg.flow`,
`manifest headers[].includes`): tests/test_missing_pieces.py takes removals
of many shapes, so every kind of piece is taken out somewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kvmspec.load import read_spec_file
from kvmspec.schema import ITEM_KINDS

# Members of inline records have the shape of members of the record around them.
_INLINE = re.compile(r"fields\[\]\.(?:(?:struct|union)\.fields\[\]\.)+")


@dataclass(frozen=True)
class Removal:
    file: str          # relative to spec/
    shape: str         # e.g. "struct fields[].array"
    where: str         # e.g. "kvm_xcrs.fields[2].array", for messages
    line: int          # 1-based line of the key
    start: int         # text[start:end] is deleted
    end: int

    def apply(self, text: str) -> str:
        return text[:self.start] + text[self.end:]

    def __str__(self) -> str:
        return f"spec/{self.file}:{self.line}: without {self.where}"


def _cut(text: str, mapping: yaml.MappingNode, index: int) -> tuple[int, int] | None:
    """The span that removes pair `index` of a block mapping, or None if the
    removal cannot be written as a deletion (the only key of an item)."""
    key, value = mapping.value[index]
    line_start = text.rfind("\n", 0, key.start_mark.index) + 1
    before = text[line_start:key.start_mark.index]
    first_of_item = before.strip() != ""     # "- name: x": the key follows the dash
    if index + 1 < len(mapping.value):
        following = mapping.value[index + 1][0]
        if first_of_item:
            return key.start_mark.index, following.start_mark.index
        return line_start, text.rfind("\n", 0, following.start_mark.index) + 1
    if first_of_item:
        return None
    end = value.end_mark.index
    if end > 0 and text[end - 1] != "\n":     # a scalar that ends within its line
        newline = text.find("\n", end)
        end = len(text) if newline < 0 else newline + 1
    return line_start, end


def _walk(text: str, node, shape: list[str], where: list[str], out: list, file: str) -> None:
    if isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _walk(text, child, shape[:-1] + [shape[-1] + "[]"] if shape else ["[]"],
                  where[:-1] + [f"{where[-1]}[{i}]"] if where else [f"[{i}]"], out, file)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    for index, (key, value) in enumerate(node.value):
        name = key.value
        if not node.flow_style:
            span = _cut(text, node, index)
            if span is not None:
                path = _INLINE.sub("fields[].", ".".join([*shape[1:], name]))
                out.append(Removal(file, f"{shape[0]} {path}", ".".join([*where, name]),
                                   key.start_mark.line + 1, *span))
        _walk(text, value, shape + [name], where + [name], out, file)


def removals(spec: Path) -> list[Removal]:
    """Every removal of the spec under `spec` (the manifest and the files it lists)."""
    manifest = read_spec_file(spec / "kvmspec.yaml", "kvmspec.yaml")
    found: list[Removal] = []
    for rel in ["kvmspec.yaml", *manifest["files"]]:
        text = (spec / rel).read_text()
        root = yaml.compose(text, Loader=yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader)
        if rel == "kvmspec.yaml":
            _walk(text, root, ["manifest"], [], found, rel)
            continue
        for index, (key, value) in enumerate(root.value):
            if key.value != "items":
                span = _cut(text, root, index)
                if span is not None:
                    found.append(Removal(rel, f"file {key.value}", key.value, key.start_mark.line + 1, *span))
                continue
            for item in value.value:
                kind, name = item.value[0][0].value, item.value[0][1].value
                assert kind in ITEM_KINDS, kind
                _walk(text, item, [kind], [str(name)], found, rel)
    return found
