"""The fast schema predicate and jsonschema agree: valid specs pass both, broken ones fail both."""

from __future__ import annotations

import pytest

from conftest import REPO
from kvmspec import schema
from kvmspec.fastschema import Compiler
from kvmspec.load import read_spec_file

SPEC_FILES = sorted(p for p in (REPO / "spec").rglob("*.yaml")
                    if "schema" not in p.parts and "outline" not in p.parts and "documents" not in p.parts
                    and p.name != "kvmspec.yaml")
OUTLINE_FILES = sorted((REPO / "spec/outline").glob("*.yaml"))


def plain(data):
    """Marked loader data as plain dicts, lists and scalars."""
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def both(definition: str, data) -> tuple[bool, bool]:
    fast = schema._fast(definition)(data)
    slow = schema._validator(definition).is_valid(data)
    return fast, slow


def items():
    for path in SPEC_FILES:
        data = read_spec_file(path, str(path))
        for item in data["items"]:
            yield schema.item_kind(item), item


def test_whole_schema_compiles():
    doc = schema._document()
    compiler = Compiler(doc)
    for definition in doc["$defs"]:
        compiler.ref(f"#/$defs/{definition}")


def test_real_spec_is_valid_for_both():
    manifest = read_spec_file(REPO / "spec/kvmspec.yaml", "spec/kvmspec.yaml")
    assert both("manifest", manifest) == (True, True)
    count = 0
    for kind, item in items():
        assert both(kind, item) == (True, True), item
        count += 1
    assert count > 20


def test_real_outlines_are_valid_for_both_and_broken_ones_for_neither():
    assert OUTLINE_FILES
    for path in OUTLINE_FILES:
        data = plain(read_spec_file(path, str(path)))
        assert both("outline_file", data) == (True, True), path
        broken = dict(data, sections=[{"names": [{"name": "KVM_X"}]}])      # a mapping needs a bound
        assert both("outline_file", broken) == (False, False)
        broken = dict(data, sections=[{"comment": "two\nlines", "names": ["KVM_X"]}])
        assert both("outline_file", broken) == (False, False)


MUTATIONS = [
    lambda d: d.pop(next(k for k in ("since", "doc") if k in d)),           # missing required key
    lambda d: d.__setitem__("bogus", 1),                                    # unknown key
    lambda d: d.__setitem__("since", 5.10),                                 # wrong type
    lambda d: d.__setitem__("since", "five"),                               # pattern
    lambda d: d.__setitem__("arch", []),                                    # minItems
    lambda d: d.__setitem__("arch", ["x86", "x86"]),                        # uniqueItems
    lambda d: d.__setitem__("deprecated", {"since": "5.1"}),               # nested required
    lambda d: d.__setitem__("c_guard", "!!X"),                              # pattern
    lambda d: d.__setitem__("header", 7),                                   # type
]


@pytest.mark.parametrize("mutation", range(len(MUTATIONS)))
def test_broken_items_fail_both(mutation):
    checked = 0
    for kind, item in items():
        broken = plain(item)
        MUTATIONS[mutation](broken)
        assert both(kind, broken) == (False, False), (kind, broken)
        checked += 1
    assert checked


@pytest.mark.parametrize("kind,field,value", [
    ("struct", "fields", [{"name": "a", "type": "__u33"}]),
    ("struct", "fields", [{"name": "a", "struct": {"fields": []}}]),
    ("struct", "fields", [{"name": "a", "type": "__u8", "struct": {"fields": [{"type": "__u8"}]}}]),
    ("ioctl", "dir", "inout"),
    ("ioctl", "fd", [{"scope": "vm"}]),
    ("ioctl", "validates", [{"field": "flags"}]),
    ("ioctl", "pair", {"restores": "A", "restored_by": "B"}),
    ("capability", "answer", {"kind": "boolean", "extra": 1}),
    ("capability", "enable", {"scope": "device", "doc": "x"}),
    ("flags", "values", []),
])
def test_specific_breakages_fail_both(kind, field, value):
    for k, item in items():
        if k == kind:
            broken = plain(item)
            broken[field] = value
            assert both(kind, broken) == (False, False), broken
            return
    pytest.fail(f"no {kind} in the spec")


def schema_properties(node, path="$"):
    """(path, subschema) of every property the schema declares, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield f"{path}.{name}", sub
                    yield from schema_properties(sub, f"{path}.{name}")
            else:
                yield from schema_properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from schema_properties(value, f"{path}[{index}]")


def test_every_property_and_definition_has_a_description():
    """Editors show a key's own description on hover and in completion: a key
    that only refers to a shared definition would show that definition's
    generic words (a `since:` of a deprecation would read "A mainline kernel
    release")."""
    document = schema.schema_document()
    properties = list(schema_properties(document))
    undescribed = [path for path, sub in properties
                   if not (isinstance(sub, dict) and str(sub.get("description", "")).strip())]
    assert not undescribed, "properties without a description: " + ", ".join(undescribed)
    undescribed_defs = [name for name, sub in document["$defs"].items() if not sub.get("description")]
    assert not undescribed_defs, "definitions without a description: " + ", ".join(undescribed_defs)
    assert len(properties) >= 150


def test_the_description_check_sees_a_missing_description():
    document = {"$defs": {"a": {"properties": {"x": {"$ref": "#/$defs/b"}, "y": {"description": "Y."}}}}}
    assert [p for p, sub in schema_properties(document) if "description" not in sub] == ["$/$defs/a.x"]
