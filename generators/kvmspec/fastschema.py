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
from typing import Any, Callable, Optional

Predicate = Callable[[Any], bool]

# Keywords that only annotate.
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "default", "examples", "$defs"}


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


# The JSON kinds of values, as `type` names them ("number" is both integer and float);
# "other" is a Python value JSON has no kind for (only a schema without `type` accepts it).
_TYPE_KINDS = {"object": {"object"}, "array": {"array"}, "string": {"string"}, "integer": {"integer"},
               "number": {"integer", "float"}, "boolean": {"boolean"}, "null": {"null"}}
_ANY_KIND = frozenset({"object", "array", "string", "integer", "float", "boolean", "null", "other"})


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int):
        return "integer"
    if isinstance(x, float):
        return "float"
    if isinstance(x, str):
        return "string"
    if isinstance(x, dict):
        return "object"
    if isinstance(x, list):
        return "array"
    return "null" if x is None else "other"


def _value_kinds(value: Any) -> set[str]:
    """The kinds of value a const (or an enum entry) equals: a number equals the other kind of number."""
    kind = _kind(value)
    return {"integer", "float"} if kind in ("integer", "float") else {kind}


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


class Compiler:
    """Compiles a schema into one predicate per schema node: the checks a
    keyword makes on one kind of value (a mapping's keys and properties, a
    list's items, a string's pattern) are made together, after one test of the
    value's kind, since a predicate call costs more than most checks."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.cache: dict[str, Predicate] = {}
        self.ref_kinds: dict[str, frozenset[str]] = {}

    def definition(self, pointer: str) -> dict:
        if not pointer.startswith("#/$defs/"):
            raise NotImplementedError(f"$ref {pointer!r}")
        return self.document["$defs"][pointer[len("#/$defs/"):]]

    def ref(self, pointer: str) -> Predicate:
        name = pointer[len("#/$defs/"):]
        if name not in self.cache:
            schema = self.definition(pointer)
            cell: list[Predicate] = []
            self.cache[name] = lambda x: cell[0](x)   # a recursive $ref reaches this first
            cell.append(self.compile(schema))
            self.cache[name] = cell[0]
        return self.cache[name]

    def property_names(self, schema: dict) -> set[str]:
        """Keys that `properties` of this schema and its static parts ($ref, allOf) evaluate."""
        names = set(schema.get("properties", {}))
        if "$ref" in schema:
            names |= self.property_names(self.definition(schema["$ref"]))
        for sub in schema.get("allOf", ()):
            names |= self.property_names(sub)
        return names

    def kinds(self, schema: Any, seen: tuple[str, ...] = ()) -> frozenset[str]:
        """The kinds of value the schema may accept (a superset: only what it
        surely rejects is left out)."""
        if schema is True or schema is False:
            return _ANY_KIND if schema else frozenset()
        result = set(_ANY_KIND)
        for key, value in schema.items():
            if key == "type":
                result &= set().union(*(_TYPE_KINDS[t] for t in (value if isinstance(value, list) else [value])))
            elif key == "const":
                result &= _value_kinds(value)
            elif key == "enum":
                result &= set().union(*map(_value_kinds, value))
            elif key == "$ref" and value not in seen:
                if value not in self.ref_kinds:   # (a superset whatever `seen` was: kept)
                    self.ref_kinds[value] = self.kinds(self.definition(value), seen + (value,))
                result &= self.ref_kinds[value]
            elif key == "allOf":
                for sub in value:
                    result &= self.kinds(sub, seen)
            elif key in ("anyOf", "oneOf"):
                result &= set().union(*(self.kinds(sub, seen) for sub in value))
        return frozenset(result)

    def compile(self, schema: Any) -> Predicate:
        if schema is True:
            return _always
        if schema is False:
            return _never
        allowed = set(_ANY_KIND)       # the kinds `type` (and a string enum) let through
        mapping: dict[str, Any] = {}   # keywords on mappings, lists, strings, numbers
        array: dict[str, Any] = {}
        text: dict[str, Any] = {}
        number: list[Predicate] = []
        checks: list[Predicate] = []   # the others, on any value
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in ("then", "else"):
                continue
            if key == "$ref":
                checks.append(self.ref(value))
            elif key == "type":
                for name in (value if isinstance(value, list) else [value]):
                    if name not in _TYPE_KINDS:
                        raise NotImplementedError(f"type {name!r}")
                allowed &= self.kinds({"type": value})
            elif key == "enum":
                if all(isinstance(o, str) for o in value):
                    allowed &= {"string"}
                    text["enum"] = frozenset(value)
                else:
                    checks.append(lambda x, options=value: any(_same(x, o) for o in options))
            elif key == "const":
                checks.append(lambda x, c=value: _same(x, c))
            elif key in ("pattern", "minLength"):
                text[key] = value
            elif key == "minimum":
                number.append(lambda x, n=value: x >= n)
            elif key == "maximum":
                number.append(lambda x, n=value: x <= n)
            elif key in ("required", "properties", "additionalProperties", "unevaluatedProperties",
                         "propertyNames", "minProperties", "maxProperties"):
                mapping[key] = value
            elif key in ("items", "minItems", "maxItems", "uniqueItems"):
                array[key] = value
            elif key == "oneOf":
                checks.append(self.one_of(value, [self.compile(s) for s in value]))
            elif key == "anyOf":
                checks.append(lambda x, subs=[self.compile(s) for s in value]: any(s(x) for s in subs))
            elif key == "allOf":
                checks.append(lambda x, subs=[self.compile(s) for s in value]: all(s(x) for s in subs))
            elif key == "if":
                test = self.compile(value)
                then = self.compile(schema.get("then", True))
                orelse = self.compile(schema.get("else", True))
                checks.append(lambda x, test=test, then=then, orelse=orelse: then(x) if test(x) else orelse(x))
            else:
                raise NotImplementedError(f"JSON Schema keyword {key!r}")
        base = self.kind_checks(schema, allowed, mapping, array, text, number)
        if base is not None:
            checks.insert(0, base)
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]

        def every(x, checks=tuple(checks)):
            for check in checks:
                if not check(x):
                    return False
            return True
        return every

    def kind_checks(self, schema: dict, allowed: set[str], mapping: dict, array: dict, text: dict,
                    number: list[Predicate]) -> Optional[Predicate]:
        """One predicate for the kinds of value allowed and the keywords on each
        kind; None if the schema has none of them."""
        if len(allowed) == 1:   # one kind of value: its test and its checks in one call
            kind = next(iter(allowed))
            if kind == "object":
                return self.mapping_check(schema, mapping, typed=True)
            if kind == "array":
                return self.array_check(array, typed=True)
            if kind == "string":
                return _text_check(text, typed=True)
        if allowed == _ANY_KIND and not (mapping or array or text or number):
            return None
        on_mapping = self.mapping_check(schema, mapping, typed=False) if mapping else None
        on_array = self.array_check(array, typed=False) if array else None
        on_text = _text_check(text, typed=False) if text else None
        on_number = (lambda x, checks=tuple(number): all(c(x) for c in checks)) if number else None
        obj, seq, string = "object" in allowed, "array" in allowed, "string" in allowed
        integer, real = "integer" in allowed, "float" in allowed
        boolean, null, other = "boolean" in allowed, "null" in allowed, "other" in allowed

        def of_kind(x):
            if isinstance(x, dict):
                return obj and (on_mapping is None or on_mapping(x))
            if isinstance(x, list):
                return seq and (on_array is None or on_array(x))
            if isinstance(x, str):
                return string and (on_text is None or on_text(x))
            if isinstance(x, bool):
                return boolean
            if isinstance(x, int):
                return integer and (on_number is None or on_number(x))
            if isinstance(x, float):
                return real and (on_number is None or on_number(x))
            return null if x is None else other
        return of_kind

    def mapping_check(self, schema: dict, keywords: dict, typed: bool) -> Predicate:
        """The keywords on mappings: required keys, the keys allowed, the value
        of each key, the number of keys and their names. `typed`: other values
        fail (else they pass)."""
        required = frozenset(keywords.get("required", ()))
        props = {name: self.compile(sub) for name, sub in keywords.get("properties", {}).items()}
        closed: frozenset[str] | None = None   # the only keys allowed
        if keywords.get("unevaluatedProperties", True) is not True:
            if keywords["unevaluatedProperties"] is not False:
                raise NotImplementedError("unevaluatedProperties other than false")
            # Every key must be named by `properties` of this schema or of the
            # subschemas it is composed of ($ref, allOf); if one of those fails,
            # the whole schema fails anyway.
            closed = frozenset(self.property_names(schema))
        other: Optional[Predicate] = None       # the check of a key `properties` does not name
        if "additionalProperties" in keywords:
            other = self.compile(keywords["additionalProperties"])
            if other is _never:
                closed = frozenset(props) if closed is None else closed & frozenset(props)
            if other is _never or other is _always:
                other = None
        names = self.compile(keywords["propertyNames"]) if "propertyNames" in keywords else None
        least, most = keywords.get("minProperties", 0), keywords.get("maxProperties")
        get = props.get

        def on_mapping(x):
            if not isinstance(x, dict):
                return not typed
            if required and not required <= x.keys() or closed is not None and not x.keys() <= closed:
                return False
            if props or other is not None:
                for k, v in x.items():
                    check = get(k, other)
                    if check is not None and not check(v):
                        return False
            if least and len(x) < least or most is not None and len(x) > most:
                return False
            return names is None or all(names(k) for k in x)
        return on_mapping

    def array_check(self, keywords: dict, typed: bool) -> Predicate:
        """The keywords on lists: the length, unique items, each item. `typed`:
        other values fail (else they pass)."""
        each = self.compile(keywords["items"]) if "items" in keywords else None
        least, most = keywords.get("minItems", 0), keywords.get("maxItems")
        unique = keywords.get("uniqueItems", False)

        def on_array(x):
            if not isinstance(x, list):
                return not typed
            if least and len(x) < least or most is not None and len(x) > most or unique and not _unique(x):
                return False
            if each is not None:
                for v in x:
                    if not each(v):
                        return False
            return True
        return on_array

    def one_of(self, branches: list, subs: list[Predicate]) -> Predicate:
        """oneOf. When every branch requires a key of its own (the item kinds:
        const, enum, ioctl, ...), a mapping with exactly one of those keys can
        only match that branch, so only it is evaluated; when no two branches
        accept the same kind of value (a string, or a list), only the branch of
        the value's kind is."""
        def generic(x):
            return sum(1 for s in subs if s(x)) == 1
        keys = [b.get("required") if isinstance(b, dict) else None for b in branches]
        if all(isinstance(k, list) and len(k) == 1 for k in keys) and len({k[0] for k in keys}) == len(keys):
            by_key = {k[0]: sub for k, sub in zip(keys, subs)}

            def dispatch(x):
                if not isinstance(x, dict):
                    return generic(x)
                found = [k for k in x if k in by_key]
                if len(found) == 1:
                    return by_key[found[0]](x)
                return bool(found) and generic(x)
            return dispatch
        kinds = [self.kinds(b) for b in branches]
        if sum(map(len, kinds)) != len(set().union(*kinds)) or any("other" in k for k in kinds):
            return generic   # two branches may accept the same value
        owner = {kind: sub for of_branch, sub in zip(kinds, subs) for kind in of_branch}
        by_type: dict[type, Predicate] = {}   # the branch for each Python type met

        def by_kind(x):
            branch = by_type.get(type(x))
            if branch is None:
                kind = _kind(x)
                if kind == "other":
                    return generic(x)
                branch = by_type[type(x)] = owner.get(kind, _never)
            return branch(x)
        return by_kind


def _text_check(keywords: dict, typed: bool) -> Predicate:
    """The keywords on strings: the strings allowed (a string enum), the least
    length, a pattern. `typed`: other values fail (else they pass)."""
    strings = keywords.get("enum")
    least = keywords.get("minLength", 0)
    search = re.compile(keywords["pattern"]).search if "pattern" in keywords else None

    def on_text(x):
        if not isinstance(x, str):
            return not typed
        return (strings is None or x in strings) and len(x) >= least and (search is None or search(x) is not None)
    return on_text
