"""The value types (kvmspec.valuetype) behave like the dataclasses they stand for."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import field
from typing import Optional

import pytest

from kvmspec import valuetype


def both(order: bool = False):
    """A decorator making each class twice: as a value type and as the dataclass it mimics."""
    def make(body):
        def copy():
            namespace = {k: v for k, v in vars(body).items() if k not in ("__dict__", "__weakref__")}
            return type(body.__name__, (), namespace)
        return valuetype._make(copy(), order), dataclasses.dataclass(copy(), unsafe_hash=True, order=order)
    return make


@both(order=True)
class Version:
    parts: tuple[int, ...]
    exact: bool = True


@both()
class Entry:
    name: str
    doc: str
    mark: Optional[str] = field(default=None, compare=False)
    hidden: int = field(default=0, repr=False)
    tags: list = field(default_factory=list)


def test_construction_repr_and_equality_match_dataclasses():
    for cls in Entry:
        a = cls("A", "doc", mark="here", tags=[1])
        b = cls("A", doc="doc", mark="elsewhere")
        assert a.tags == [1] and b.tags == [] and b.hidden == 0 and b.mark == "elsewhere"
        assert cls("A", "doc").tags is not cls("A", "doc").tags    # a fresh default each time
    fast, slow = Entry
    args = ("X", "text")
    assert repr(fast(*args, mark="m")) == repr(slow(*args, mark="m")) == "Entry(name='X', doc='text', mark='m', tags=[])"
    with pytest.raises(TypeError):
        fast("only the name")
    with pytest.raises(TypeError):
        slow("only the name")


def test_compare_false_fields_do_not_count():
    for cls in Version:
        assert cls((6, 1)) == cls((6, 1)) and hash(cls((6, 1))) == hash(cls((6, 1)))
        assert cls((6, 1)) != cls((6, 1), False)
    fast, slow = Entry
    for cls in (fast, slow):
        x, y = cls("A", "d", mark="1", tags=[]), cls("A", "d", mark="2", tags=[])
        assert x == y and x != cls("B", "d", tags=[])
    assert fast("A", "d") != slow("A", "d")          # different classes are never equal
    assert fast("A", "d").__eq__(slow("A", "d")) is NotImplemented


def test_order_matches_dataclasses():
    fast, slow = Version
    pairs = [((5, 10), True, (6, 1), True), ((6, 1), False, (6, 1), True), ((6, 1), True, (6, 1), True)]
    for p, e, q, f in pairs:
        for name in ("__lt__", "__le__", "__gt__", "__ge__"):
            assert getattr(fast(p, e), name)(fast(q, f)) == getattr(slow(p, e), name)(slow(q, f)), (name, p, e, q, f)
    assert sorted([fast((6, 1)), fast((5, 4)), fast((5, 4), False)]) == [fast((5, 4), False), fast((5, 4)), fast((6, 1))]
    assert fast((6, 1)).__lt__(slow((6, 1))) is NotImplemented


def test_inherited_fields_come_first_and_a_default_cannot_precede_a_required_field():
    base = valuetype._make(type("Base", (), {"__annotations__": {"a": "int", "b": "int"}, "b": 2}), False)
    child = valuetype._make(type("Child", (base,), {"__annotations__": {"c": "int"}, "c": 3}), False)
    assert valuetype.value_fields(child) == ("a", "b", "c") and child(1).c == 3 and child(1, 5, 6).b == 5
    with pytest.raises(TypeError, match="non-default field 'd'"):
        valuetype._make(type("Bad", (base,), {"__annotations__": {"d": "int"}}), False)


def _fields_of_every_value_type(frozen: bool) -> dict[str, list[str]]:
    program = (
        "import json, kvmspec.model as m, kvmspec.expr as e, kvmspec.layout as l, kvmspec.valuetype as v\n"
        "out = {}\n"
        "for mod in (m, e, l):\n"
        "    for name, obj in vars(mod).items():\n"
        "        if isinstance(obj, type) and obj.__module__ == mod.__name__ and "
        "(hasattr(obj, '__value_fields__') or hasattr(obj, '__dataclass_fields__')):\n"
        "            out[mod.__name__ + '.' + name] = list(v.value_fields(obj))\n"
        "print(json.dumps(out))\n")
    env = {k: v for k, v in os.environ.items() if k != "KVMSPEC_FROZEN_MODEL"}
    if frozen:
        env["KVMSPEC_FROZEN_MODEL"] = "1"
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_every_model_class_has_the_fields_its_dataclass_has():
    fast, frozen = _fields_of_every_value_type(False), _fields_of_every_value_type(True)
    assert len(fast) > 40 and "kvmspec.model.Record" in fast
    assert fast == frozen


def test_replace_changes_only_the_named_fields():
    fast, slow = Entry
    a = fast("A", "doc", mark="m", hidden=3, tags=[1])
    b = valuetype.replace(a, doc="other")
    assert (b.name, b.doc, b.mark, b.hidden, b.tags) == ("A", "other", "m", 3, [1]) and a.doc == "doc"
    assert valuetype.replace(a) == a and valuetype.replace(a) is not a
    s = dataclasses.replace(slow("A", "doc", mark="m", hidden=3, tags=[1]), doc="other")
    assert vars(b) == vars(s)
