"""The decorator of kvmspec's value types (the model, expressions, layouts).

They are values: built once, compared and hashed by content, never changed.
Declared like dataclasses (annotated fields, defaults, `dataclasses.field`
with `default`, `default_factory`, `compare` and `repr`), they get the same
methods a dataclass with `unsafe_hash=True` (and `order=True` when asked)
would: `__init__`, `__repr__`, `__eq__`, `__hash__` and the comparisons.

They are not made by `dataclasses.dataclass`: on Python 3.11 it compiles every
method of every class separately, which was 15 ms of each `kvmspec` start
(half a dozen compilations for each of ~50 classes). Here only `__init__` is
compiled, once per class; the other methods are shared and read the class's
field names. With KVMSPEC_FROZEN_MODEL=1 in the environment they are real
frozen dataclasses instead, so that a run proves nothing assigns to them, and
that both kinds behave the same (tests/test_generate.py, tests/test_valuetype.py).
"""

from __future__ import annotations

import os
import sys
from operator import attrgetter
from types import CodeType, FunctionType
from typing import Any

FROZEN = os.environ.get("KVMSPEC_FROZEN_MODEL") == "1"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()   # no default (dataclasses' own, when that module is used)


class _Field:
    """What `field()` declares: dataclasses.Field's options that value types take."""

    __slots__ = ("default", "default_factory", "compare", "repr")

    def __init__(self, default: Any, default_factory: Any, compare: bool, repr: bool) -> None:
        self.default, self.default_factory, self.compare, self.repr = default, default_factory, compare, repr


def field(*, default: Any = MISSING, default_factory: Any = MISSING, compare: bool = True,
          repr: bool = True) -> Any:
    """dataclasses.field for value types, without importing dataclasses (and
    inspect, which it imports: 8 ms of every start) unless KVMSPEC_FROZEN_MODEL
    makes the value types real dataclasses."""
    if FROZEN:
        import dataclasses
        return dataclasses.field(**{k: v for k, v in (("default", default), ("default_factory", default_factory))
                                    if v is not MISSING}, compare=compare, repr=repr)
    return _Field(default, default_factory, compare, repr)


def _field_of(value: Any) -> Any:
    """The field declaration a class attribute is (ours, or dataclasses'), or None."""
    if isinstance(value, _Field):
        return value
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is not None and isinstance(value, dataclasses.Field):
        missing = dataclasses.MISSING
        return _Field(MISSING if value.default is missing else value.default,
                      MISSING if value.default_factory is missing else value.default_factory,
                      value.compare, value.repr)
    return None

_FACTORY = object()   # a parameter's default when its field has a default_factory


def value_type(cls=None, /, *, order: bool = False):
    def wrap(cls: type) -> type:
        if FROZEN:
            from dataclasses import dataclass
            return dataclass(cls, frozen=True, order=order)
        return _make(cls, order)
    return wrap if cls is None else wrap(cls)


def is_value(obj: Any) -> bool:
    """Whether obj is an instance of a value type."""
    if FROZEN:
        from dataclasses import is_dataclass
        return is_dataclass(obj) and not isinstance(obj, type)
    return hasattr(type(obj), "__value_fields__")


def value_fields(obj: Any) -> tuple[str, ...]:
    """The field names of a value type (class or instance), in declaration order."""
    cls = obj if isinstance(obj, type) else type(obj)
    if FROZEN:
        from dataclasses import fields
        return tuple(f.name for f in fields(cls))
    return cls.__value_fields__


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of a value with some fields changed (dataclasses.replace)."""
    return type(obj)(**{**{name: getattr(obj, name) for name in value_fields(obj)}, **changes})


class _FieldSpec:
    __slots__ = ("name", "default", "factory", "compare", "repr")

    def __init__(self, name: str, default: Any, factory: Any, compare: bool, repr: bool) -> None:
        self.name, self.default, self.factory, self.compare, self.repr = name, default, factory, compare, repr


def _make(cls: type, order: bool) -> type:
    specs: dict[str, _FieldSpec] = {}
    for base in reversed(cls.__mro__[1:]):
        for spec in base.__dict__.get("__value_specs__", ()):
            specs[spec.name] = spec
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, MISSING)
        declared = _field_of(value)
        if declared is not None:
            spec = _FieldSpec(name, declared.default, declared.default_factory, declared.compare, declared.repr)
            if declared.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, declared.default)
        else:
            spec = _FieldSpec(name, value, MISSING, True, True)
        specs[name] = spec
    ordered = tuple(specs.values())

    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    defaults = []
    seen_default = False
    for index, spec in enumerate(ordered):
        if spec.factory is not MISSING:
            namespace[f"_f{index}"] = spec.factory
            defaults.append(_FACTORY)
        elif spec.default is not MISSING:
            defaults.append(spec.default)
        elif seen_default:
            raise TypeError(f"{cls.__name__}: non-default field {spec.name!r} follows a field with a default")
        else:
            continue
        seen_default = True
    template = _init_template(tuple(spec.factory is not MISSING for spec in ordered))
    names = {f"_p{index}": spec.name for index, spec in enumerate(ordered)}
    code = template.replace(co_varnames=tuple(names.get(n, n) for n in template.co_varnames),
                            co_names=tuple(names.get(n, n) for n in template.co_names))
    init = FunctionType(code, namespace, "__init__", tuple(defaults) or None)
    init.__qualname__ = f"{cls.__qualname__}.__init__"

    compared = tuple(s.name for s in ordered if s.compare)
    cls.__value_specs__ = ordered
    cls.__value_fields__ = tuple(s.name for s in ordered)
    cls.__value_repr__ = tuple(s.name for s in ordered if s.repr)
    cls.__value_key__ = attrgetter(*compared) if compared else _no_key
    cls.__match_args__ = cls.__value_fields__
    cls.__init__ = init
    cls.__repr__ = _repr
    cls.__eq__ = _eq
    cls.__hash__ = _hash
    if order:
        cls.__lt__, cls.__le__, cls.__gt__, cls.__ge__ = _lt, _le, _gt, _ge
    return cls


_TEMPLATES: dict[tuple[bool, ...], CodeType] = {}


def _init_template(factories: tuple[bool, ...]) -> CodeType:
    """The code of `__init__` for fields that have a default_factory or not
    (`factories`), their names written _p0, _p1 ...: each class renames them to
    its fields. A few dozen classes share a score of shapes: each is compiled
    once, where compiling an `__init__` for every class was 4 ms of each start."""
    code = _TEMPLATES.get(factories)
    if code is None:
        params = "".join(f", _p{i}" for i in range(len(factories)))
        body = [f"  self._p{i} = _f{i}() if _p{i} is _FACTORY else _p{i}" if factory else f"  self._p{i} = _p{i}"
                for i, factory in enumerate(factories)]
        source = f"def __init__(self{params}):\n" + ("\n".join(body) or "  pass") + "\n"
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        code = _TEMPLATES[factories] = namespace["__init__"].__code__
    return code


def _no_key(obj: Any) -> tuple[()]:
    return ()


def _repr(self: Any) -> str:
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__value_repr__)
    return f"{type(self).__qualname__}({fields})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__value_key__
        return key(self) == key(other)
    return NotImplemented


def _hash(self: Any) -> int:
    # A value never changes, so its hash is worked out once: hashing a record
    # hashes its fields and the records they hold, which the checks and the
    # generators do for the same records again and again. (The cached hash
    # must not outlive the process, as string hashes differ between runs:
    # nothing pickles the model.)
    cached = self.__dict__
    found = cached.get("__value_hash__")
    if found is None:
        found = cached["__value_hash__"] = hash(self.__value_key__(self))
    return found


def _lt(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__value_key__
        return key(self) < key(other)
    return NotImplemented


def _le(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__value_key__
        return key(self) <= key(other)
    return NotImplemented


def _gt(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__value_key__
        return key(self) > key(other)
    return NotImplemented


def _ge(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        key = self.__value_key__
        return key(self) >= key(other)
    return NotImplemented
