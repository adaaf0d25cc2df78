"""Python bindings: the `kvm_uapi` package (ctypes records, IntEnum/IntFlag, ioctls).

This module only decides Python names (inline records become private
classes named after their path); sizes and offsets come from the model and
ctypes computes the same layout on its own, which the generated conformance
test checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layout import ABIS
from .. import expr
from ..model import Field, FunctionMacro, Model, Record
from .prose import used_by


@dataclass(frozen=True)
class PyField:
    name: str
    ctype: str
    bits: int
    field: Field


@dataclass(frozen=True)
class PyClass:
    """One ctypes class: a spec record, or an inline record inside one."""

    name: str
    record: Record
    base: str                 # ctypes.Structure or ctypes.Union
    fields: tuple[PyField, ...]
    anonymous: tuple[str, ...]
    doc: str
    public: bool


def _ctype(f: Field, record_class: str | None) -> str:
    base = record_class if record_class is not None else f.scalar.ctype  # type: ignore[union-attr]
    if f.flexible:
        return f"{base} * 0"
    for d in reversed(f.dims):
        base = f"{base} * {d}"
    return base


def py_classes(record: Record) -> list[PyClass]:
    """The classes for one record, inner ones first, in definition order."""
    out: list[PyClass] = []

    def visit(rec: Record, class_name: str, public: bool, doc: str) -> None:
        fields = []
        anonymous = []
        anon_index = 0
        for f in rec.members:
            inner_class = None
            name = f.name
            if name is None:
                name = f"_anon{anon_index}"
                anon_index += 1
                anonymous.append(name)
            if f.record is not None and f.record.inline:
                inner_class = f"_{class_name.lstrip('_')}__{name.lstrip('_')}"
                visit(f.record, inner_class, False, f.doc)
            elif f.record is not None:
                inner_class = f.record.name
            fields.append(PyField(name, _ctype(f, inner_class), f.bits, f))
        out.append(PyClass(class_name, rec, "ctypes.Union" if rec.is_union else "ctypes.Structure",
                           tuple(fields), tuple(anonymous), doc, public))

    visit(record, record.name, True, record.doc)
    return out


def python_expr(macro: FunctionMacro) -> str:
    """The body of a function-like macro as Python."""
    return expr.to_python(expr.parse(macro.body), macro.params)


def _abi_literal(values: tuple[int, ...], fmt: str = "{:#x}") -> str:
    if len(set(values)) == 1:
        return fmt.format(values[0]) if values[0] >= 0 else str(values[0])
    args = ", ".join(f"{abi.name}={fmt.format(v) if v >= 0 else v}" for abi, v in zip(ABIS, values))
    return f"_abi({args})"


class Generator:
    name = "python"

    def render(self, model: Model, env) -> dict[str, str]:
        items = [i for i in model.c_order() if i.present]
        classes = {r.name: py_classes(r) for r in model.records if r.present}
        ioctls = [i for i in model.ioctls if i.present]
        used = {r.name: used_by(r, ioctls) for r in model.records}
        sources = list(dict.fromkeys(i.file.path for i in items))
        module = env.get_template("python/__init__.py.j2").render(
            model=model, items=items, classes=classes, used=used, sources=sources,
            abi_literal=_abi_literal, abis=ABIS, python_expr=python_expr)
        support = env.get_template("python/_support.py.j2").render()
        return {
            "python/kvm_uapi/__init__.py": module,
            "python/kvm_uapi/_support.py": support,
            "python/kvm_uapi/py.typed": "",
        }
