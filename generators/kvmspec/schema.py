"""Checking spec data against the JSON Schema of the spec language.

The schema (spec/schema/kvmspec.schema.yaml) is what editors use. Here it is
applied piece by piece: the manifest, the shell of each spec file, then each
item against the definition of its kind, so that one bad item yields one
precise message instead of a failed `oneOf` over the whole file.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Iterable

from .diagnostics import Diagnostic, Mark
from .load import Map, Seq, read_spec_file
from .spelling import NameIndex

SCHEMA_PATH = Path(__file__).resolve().parent.parent.parent / "spec" / "schema" / "kvmspec.schema.yaml"

ITEM_KINDS = ("const", "macro", "enum", "flags", "struct", "union", "ioctl", "capability", "exit")

_HINTS = {
    "since": 'add since: "X.Y", the first mainline kernel release with this item',
    "doc": "add doc: a description in your own words",
}


@functools.lru_cache(maxsize=1)
def schema_document() -> dict:
    """The schema, read as spec files are (twice as fast as yaml.load; mappings
    and lists are dict and list subclasses that remember positions)."""
    return read_spec_file(SCHEMA_PATH, str(SCHEMA_PATH))


@functools.lru_cache(maxsize=1)
def _document() -> dict:
    """The schema plus `spec_file_shell`: a spec file whose items are only checked to be mappings."""
    doc = schema_document()
    defs = dict(doc["$defs"])
    shell = dict(defs["spec_file"])
    shell["properties"] = dict(shell["properties"], items={"type": "array", "items": {"type": "object"}})
    defs["spec_file_shell"] = shell
    return dict(doc, **{"$defs": defs})


@functools.lru_cache(maxsize=1)
def _compiler() -> Any:
    """One compiler for every definition: what they share ($defs they refer to) is compiled once."""
    from .fastschema import Compiler
    return Compiler(_document())


@functools.lru_cache(maxsize=None)
def _fast(definition: str) -> Any:
    return _compiler().ref(f"#/$defs/{definition}")


@functools.lru_cache(maxsize=None)
def _validator(definition: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    doc = _document()
    registry = Resource.from_contents(doc) @ Registry()
    return Draft202012Validator({"$ref": f"{doc['$id']}#/$defs/{definition}"}, registry=registry)


def _allowed_keys(definition: str) -> list[str]:
    defs = schema_document()["$defs"]
    keys: list[str] = []

    def collect(schema: dict) -> None:
        keys.extend(schema.get("properties", {}))
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            collect(defs[ref[len("#/$defs/"):]])
        for sub in schema.get("allOf", []):
            collect(sub)

    collect(defs[definition])
    return sorted(set(keys))


def _locate(data: Any, path: Iterable[Any]) -> tuple[Any, Any, Mark]:
    """Return (container, key, mark of the value) for a path into marked data."""
    parent, key = None, None
    node = data
    mark = getattr(data, "mark", Mark("?", 1, 1))
    for step in path:
        parent, key = node, step
        if isinstance(node, Map) and isinstance(step, str) and step in node:
            mark = node.mark_of(step)
            node = node[step]
        elif isinstance(node, Seq) and isinstance(step, int) and step < len(node):
            mark = node.mark_of(step)
            node = node[step]
        else:
            break
    return parent, key, mark


_UNEXPECTED = re.compile(r"'([^']*)'")

_PATTERN_WORDS = {
    "identifier": ("is not a valid C identifier", "use letters, digits and '_', not starting with a digit"),
    "version": ("is not a kernel release", 'write the release as "X.Y", such as "5.10"'),
    "spec_path": ("is not a path to a .yaml file inside spec/",
                  "write it relative to spec/, e.g. x86/vm.yaml: letters, digits, '_', '-' and '/', "
                  "no '..' and no leading '/'"),
    "header_path": ("is not a path to a .h file inside generated/",
                    "write it as in a kernel tree, e.g. include/uapi/linux/kvm.h, without a leading '/'"),
    "type_name": ("is not a known type",
                  'use __u8.. __u64, __s8.. __s64, char, int, long, "void *" or "struct NAME"/"union NAME"'),
}


def _likely_intended(error: Any) -> list:
    """The errors of the oneOf alternatives the author most likely meant: those that got
    deeper into the value (arch: [x86, {riscv: "6.x"}] is meant as a list, not as "all"),
    else those whose alternative has the value's type."""
    context = list(error.context)
    deeper = [e for e in context if len(e.absolute_path) > len(error.absolute_path)]
    if deeper:
        return deeper
    shaped = [e for e in context if e.validator not in ("type", "const")]
    return shaped or context


def _describe(error: Any, data: Any, definition: str) -> Diagnostic | None:
    path = list(error.absolute_path)
    container, key, mark = _locate(data, path)
    node = error.instance
    validator = error.validator
    if validator == "oneOf" and error.context:
        alternatives = error.validator_value
        if all(set(alt) == {"required"} for alt in alternatives):
            names = ", ".join(alt["required"][0] for alt in alternatives)
            return Diagnostic(mark, f"needs exactly one of: {names}",
                              "a field has a scalar type (type:) or an inline struct:/union:")
        from jsonschema.exceptions import best_match
        return _describe(best_match(_likely_intended(error)), data, definition)
    if validator == "required":
        missing = [k for k in error.validator_value if not (isinstance(node, dict) and k in node)]
        name = missing[0] if missing else "?"
        return Diagnostic(mark, f"missing required key {name!r}", _HINTS.get(name, f"add {name}:"))
    if validator in ("additionalProperties", "unevaluatedProperties"):
        if validator == "additionalProperties":
            props = set(error.schema.get("properties", {}))
            extra = sorted(k for k in node if k not in props) if isinstance(node, dict) else []
        else:
            # A key counts as unevaluated when its own subschema failed; that
            # failure is reported on its own, so only truly unknown keys remain.
            allowed_here = set(_allowed_keys(definition))
            extra = [k for k in _UNEXPECTED.findall(error.message) if k not in allowed_here]
            if not extra:
                return None
        bad = extra[0] if extra else "?"
        if isinstance(node, Map) and bad in node:
            mark = node.key_mark(bad)
        allowed = sorted(error.schema.get("properties", {})) if validator == "additionalProperties" \
            else _allowed_keys(definition)
        close = NameIndex(allowed).suggestion(bad)
        return Diagnostic(mark, f"unknown key {bad!r}", (f"{close} " if close else "")
                          + "allowed keys here: " + ", ".join(allowed))
    if validator == "maxProperties" and error.validator_value == 1:
        return Diagnostic(mark, "one key expected here, found " + str(len(node)),
                          "write one entry per architecture: [x86, {riscv: \"6.10\"}, {loongarch: \"6.11\"}]")
    if validator == "uniqueItems":
        return Diagnostic(mark, "an entry of this list is repeated", "list each entry once")
    if validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return Diagnostic(mark, f"{node!r} is not allowed here", f"use one of: {choices}")
    if validator == "const":
        return Diagnostic(mark, f"{node!r} is not allowed here", f"the only valid value is {error.validator_value!r}")
    if validator == "type":
        expected = error.validator_value
        found = {dict: "mapping", list: "list", str: "string", bool: "boolean", type(None): "nothing"}.get(
            type(node), "integer" if isinstance(node, int) else type(node).__name__)
        if isinstance(expected, list):
            expected = " or ".join(expected)
        expected = {"object": "a mapping", "array": "a list", "integer": "an integer",
                    "string": "a string", "boolean": "true or false"}.get(expected, expected)
        return Diagnostic(mark, f"expected {expected}, found {found}")
    if validator in ("minimum", "maximum"):
        limit = error.validator_value
        word = "less" if validator == "minimum" else "more"
        return Diagnostic(mark, f"{node} is {word} than {limit}, the {validator} here",
                          error.schema.get("description", "").strip().split("\n")[0])
    if validator == "pattern":
        if isinstance(node, str) and node.startswith("by ") \
                and error.validator_value == schema_document()["$defs"]["version"].get("pattern"):
            return Diagnostic(mark, f"{node!r} is not an exact release",
                              f'give the first mainline release that had it, e.g. "{node[3:]}" if that '
                              "is when it appeared; \"by X.Y\" (present by then) is not accepted")
        for def_name, (what, hint) in _PATTERN_WORDS.items():
            if error.validator_value == schema_document()["$defs"][def_name].get("pattern"):
                return Diagnostic(mark, f"{node!r} {what}", hint)
        return Diagnostic(mark, f"{node!r} does not have the expected form",
                          error.schema.get("description", "").strip().split("\n")[0])
    return Diagnostic(mark, error.message)


def _errors(definition: str, data: Any) -> list[Diagnostic]:
    if _fast(definition)(data):
        return []
    validator = _validator(definition)
    found = []
    for error in validator.iter_errors(data):
        diagnostic = _describe(error, data, definition)
        if diagnostic is not None:
            found.append(diagnostic)
    return found


def item_kind(item: Any) -> str | None:
    """The kind of an item: its first key (`- struct: kvm_regs` is a struct)."""
    if isinstance(item, dict) and item:
        first = next(iter(item))
        if first in ITEM_KINDS:
            return first
    return None


def check_manifest(data: Any) -> list[Diagnostic]:
    return _errors("manifest", data)


def check_outline_file(data: Any) -> list[Diagnostic]:
    return _errors("outline_file", data)


def check_document_layout(data: Any) -> list[Diagnostic]:
    return _errors("document_layout", data)


def check_spec_file(data: Any) -> list[Diagnostic]:
    """Check the file's top level, then each item against its kind."""
    problems = _errors("spec_file_shell", data)
    if problems or not isinstance(data, Map):
        return problems
    items = data.get("items")
    for index, item in enumerate(items):
        kind = item_kind(item)
        if kind is None:
            problems.append(Diagnostic(items.mark_of(index), "item does not start with its kind",
                                       "make the first key one of: " + ", ".join(ITEM_KINDS)
                                       + " (its value is the item's name)"))
            continue
        problems.extend(_errors(kind, item))
    return problems
