"""A fast yes/no JSON Schema check for the subset of draft 2020-12 the spec language uses.

jsonschema is thorough and its errors are good, but it is slow: checking the
whole spec with it costs several times more than reading the YAML. Valid
input is the common case, so kvmspec first asks this compiled predicate,
and only when it says "invalid" runs jsonschema to explain why. Compiling
refuses any keyword it does not implement, so the schema cannot silently
outgrow it; a test checks that both agree on valid and broken specs.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Predicate = Callable[[Any], bool]

# Keywords that only annotate.
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "default", "examples", "$defs"}


def _is_type(name: str) -> Predicate:
    if name == "object":
        return lambda x: isinstance(x, dict)
    if name == "array":
        return lambda x: isinstance(x, list)
    if name == "string":
        return lambda x: isinstance(x, str)
    if name == "integer":
        return lambda x: isinstance(x, int) and not isinstance(x, bool)
    if name == "number":
        return lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)
    if name == "boolean":
        return lambda x: isinstance(x, bool)
    if name == "null":
        return lambda x: x is None
    raise NotImplementedError(f"type {name!r}")


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return type(a) in (int, float) and type(b) in (int, float) and a == b or a == b


def _json_key(item: Any) -> Any:
    """A hashable key under which JSON-equal scalars meet (1 == 1.0, true != 1), or None."""
    if isinstance(item, bool):
        return ("bool", item)
    if isinstance(item, int):
        return ("number", item)
    if isinstance(item, float):
        if item != item:          # NaN equals nothing
            return ("nan", id(item))
        return ("number", int(item)) if item.is_integer() else ("number", item)
    if isinstance(item, str):
        return ("string", item)
    if item is None:
        return ("null",)
    return None


def _unique(items: list) -> bool:
    """No two items are JSON-equal; linear for scalars (a hostile list can be long)."""
    seen: set = set()
    rest = []
    for item in items:
        key = _json_key(item)
        if key is None:
            rest.append(item)
        elif key in seen:
            return False
        else:
            seen.add(key)
    return all(not _same(a, b) for i, a in enumerate(rest) for b in rest[i + 1:])


class Compiler:
    def __init__(self, document: dict) -> None:
        self.document = document
        self.cache: dict[str, Predicate] = {}

    def ref(self, pointer: str) -> Predicate:
        if not pointer.startswith("#/$defs/"):
            raise NotImplementedError(f"$ref {pointer!r}")
        name = pointer[len("#/$defs/"):]
        if name not in self.cache:
            cell: list[Predicate] = []
            self.cache[name] = lambda x: cell[0](x)   # a recursive $ref reaches this first
            cell.append(self.compile(self.document["$defs"][name]))
            self.cache[name] = cell[0]
        return self.cache[name]

    def property_names(self, schema: dict) -> set[str]:
        """Keys that `properties` of this schema and its static parts ($ref, allOf) evaluate."""
        names = set(schema.get("properties", {}))
        if "$ref" in schema:
            names |= self.property_names(self.document["$defs"][schema["$ref"][len("#/$defs/"):]])
        for sub in schema.get("allOf", ()):
            names |= self.property_names(sub)
        return names

    def compile(self, schema: Any) -> Predicate:
        if schema is True:
            return lambda x: True
        if schema is False:
            return lambda x: False
        checks: list[Predicate] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS:
                continue
            if key == "$ref":
                checks.append(self.ref(value))
            elif key == "type":
                if isinstance(value, list):
                    tests = [_is_type(t) for t in value]
                    checks.append(lambda x, tests=tests: any(t(x) for t in tests))
                else:
                    checks.append(_is_type(value))
            elif key == "enum":
                if all(isinstance(o, str) for o in value):
                    strings = frozenset(value)
                    checks.append(lambda x, strings=strings: isinstance(x, str) and x in strings)
                else:
                    checks.append(lambda x, options=value: any(_same(x, o) for o in options))
            elif key == "const":
                checks.append(lambda x, c=value: _same(x, c))
            elif key == "pattern":
                search = re.compile(value).search
                checks.append(lambda x, search=search: not isinstance(x, str) or search(x) is not None)
            elif key == "minLength":
                checks.append(lambda x, n=value: not isinstance(x, str) or len(x) >= n)
            elif key == "minimum":
                checks.append(lambda x, n=value: not _is_type("number")(x) or x >= n)
            elif key == "maximum":
                checks.append(lambda x, n=value: not _is_type("number")(x) or x <= n)
            elif key == "required":
                if len(value) == 1:
                    checks.append(lambda x, k=value[0]: not isinstance(x, dict) or k in x)
                else:
                    checks.append(lambda x, keys=frozenset(value): not isinstance(x, dict) or keys <= x.keys())
            elif key == "properties":
                props = {name: self.compile(sub) for name, sub in value.items()}

                def properties(x, props=props):
                    if isinstance(x, dict):
                        get = props.get
                        for k, v in x.items():
                            check = get(k)
                            if check is not None and not check(v):
                                return False
                    return True
                checks.append(properties)
            elif key == "additionalProperties":
                known = set(schema.get("properties", {}))
                sub = self.compile(value)
                checks.append(lambda x, known=known, sub=sub: not isinstance(x, dict) or
                              all(sub(v) for k, v in x.items() if k not in known))
            elif key == "unevaluatedProperties":
                if value is not False:
                    raise NotImplementedError("unevaluatedProperties other than false")
                # Every key must be named by `properties` of this schema or of the
                # subschemas it is composed of ($ref, allOf); if one of those fails,
                # the whole schema fails anyway.
                known = frozenset(self.property_names(schema))
                checks.append(lambda x, known=known: not isinstance(x, dict) or x.keys() <= known)
            elif key == "propertyNames":
                sub = self.compile(value)
                checks.append(lambda x, sub=sub: not isinstance(x, dict) or all(sub(k) for k in x))
            elif key == "minProperties":
                checks.append(lambda x, n=value: not isinstance(x, dict) or len(x) >= n)
            elif key == "maxProperties":
                checks.append(lambda x, n=value: not isinstance(x, dict) or len(x) <= n)
            elif key == "items":
                sub = self.compile(value)

                def items(x, sub=sub):
                    if isinstance(x, list):
                        for v in x:
                            if not sub(v):
                                return False
                    return True
                checks.append(items)
            elif key == "minItems":
                checks.append(lambda x, n=value: not isinstance(x, list) or len(x) >= n)
            elif key == "maxItems":
                checks.append(lambda x, n=value: not isinstance(x, list) or len(x) <= n)
            elif key == "uniqueItems":
                if value:
                    checks.append(lambda x: not isinstance(x, list) or _unique(x))
            elif key == "oneOf":
                subs = [self.compile(s) for s in value]
                checks.append(self.one_of(value, subs))
            elif key == "anyOf":
                subs = [self.compile(s) for s in value]
                checks.append(lambda x, subs=subs: any(s(x) for s in subs))
            elif key == "allOf":
                subs = [self.compile(s) for s in value]
                checks.append(lambda x, subs=subs: all(s(x) for s in subs))
            elif key == "if":
                test = self.compile(value)
                then = self.compile(schema.get("then", True))
                orelse = self.compile(schema.get("else", True))
                checks.append(lambda x, test=test, then=then, orelse=orelse: then(x) if test(x) else orelse(x))
            elif key in ("then", "else"):
                continue
            else:
                raise NotImplementedError(f"JSON Schema keyword {key!r}")
        if len(checks) == 1:
            return checks[0]

        def every(x, checks=tuple(checks)):
            for check in checks:
                if not check(x):
                    return False
            return True
        return every

    @staticmethod
    def one_of(branches: list, subs: list[Predicate]) -> Predicate:
        """oneOf; when every branch requires a key of its own (the item kinds:
        const, enum, ioctl, ...), a mapping with exactly one of those keys can
        only match that branch, so only it is evaluated."""
        def generic(x):
            return sum(1 for s in subs if s(x)) == 1
        keys = [b.get("required") if isinstance(b, dict) else None for b in branches]
        if not all(isinstance(k, list) and len(k) == 1 for k in keys) or \
                len({k[0] for k in keys}) != len(keys):
            return generic
        by_key = {k[0]: sub for k, sub in zip(keys, subs)}

        def dispatch(x):
            if not isinstance(x, dict):
                return generic(x)
            found = [k for k in x if k in by_key]
            if len(found) == 1:
                return by_key[found[0]](x)
            return bool(found) and generic(x)
        return dispatch


def compile_definition(document: dict, definition: str) -> Predicate:
    return Compiler(document).ref(f"#/$defs/{definition}")
