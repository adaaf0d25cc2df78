"""Python bindings: the `kvm_uapi` package (ctypes records, IntEnum/IntFlag, ioctls).

This module only decides Python names (inline records become private
classes named after their path); sizes and offsets come from the model and
ctypes computes the same layout on its own, which the generated conformance
test checks.
"""

from __future__ import annotations

from typing import Optional

from .. import expr
from ..layout import HOST_ABIS as ABIS, Scalar, host
from ..model import ExitReason, Field, FunctionMacro, Ioctl, Model, Record
from ..valuetype import value_type
from .prose import used_by


@value_type
class PyField:
    name: str
    ctype: str
    bits: int
    field: Field


@value_type
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


def macro_param_type(macro: FunctionMacro, param: str) -> str:
    """The Python type of a macro parameter: str for a member name passed to offsetof, else int."""
    def names_member(n: expr.Node) -> bool:
        if isinstance(n, expr.Offsetof):
            return n.member.partition(".")[0] == param
        return any(names_member(c) for c in expr._children(n))
    return "str" if names_member(expr.parse(macro.body)) else "int"


def _abi_literal(values: tuple[int, ...], fmt: str = "{:#x}") -> str:
    values = host(values)
    if len(set(values)) == 1:
        return fmt.format(values[0]) if values[0] >= 0 else str(values[0])
    args = ", ".join(f"{abi.name}={fmt.format(v) if v >= 0 else v}" for abi, v in zip(ABIS, values))
    return f"_abi({args})"


@value_type
class PyMethod:
    """One method of the high-level API: an ioctl on one kind of descriptor."""

    name: str
    ioctl: Ioctl
    kind: str                    # none | value | record | scalar
    capability: Optional[str]    # capability to check first
    record: Optional[str] = None
    scalar: Optional[Scalar] = None


SCOPE_CLASSES = {"system": "Kvm", "vm": "Vm", "vcpu": "Vcpu", "device": "Device"}


def api_methods(model: Model) -> dict[str, list[PyMethod]]:
    """Methods of each API class, named after their ioctls (KVM_GET_REGS -> get_regs)."""
    classes: dict[str, list[PyMethod]] = {c: [] for c in SCOPE_CLASSES.values()}
    for ioctl in model.ioctls:
        if not ioctl.present or ioctl.name.startswith("__") or ioctl.deprecated is not None:
            continue
        if ioctl.arg_pass == "pointer" and ioctl.arg_record is None and ioctl.arg_scalar is None:
            continue
        name = ioctl.name.lower().removeprefix("kvm_")
        if ioctl.arg_pass == "none":
            kind, record, scalar = "none", None, None
        elif ioctl.arg_pass == "value":
            kind, record, scalar = "value", None, ioctl.arg_scalar
        elif ioctl.arg_record is not None:
            kind, record, scalar = "record", ioctl.arg_record.name, None
        else:
            kind, record, scalar = "scalar", None, ioctl.arg_scalar
        for scope in ioctl.scopes:
            cap = scope.capability or ioctl.capability
            classes[SCOPE_CLASSES[scope.scope]].append(
                PyMethod(name, ioctl, kind, cap.name if cap is not None else None, record, scalar))
    return classes


@value_type
class FieldRule:
    """How the API checks one scalar field (or scalar array) of an input record."""

    name: str
    bits: int
    signed: bool
    count: int                       # 1 for a plain field
    flags_mask: Optional[int]        # known bits when the field holds flag sets
    flags_name: str
    enum_values: tuple[int, ...]     # allowed values when the field holds an enum
    enum_name: str


def field_rules(record: Record) -> list[FieldRule]:
    rules = []
    for f in record.members:
        if f.scalar is None or f.scalar.is_pointer or f.flexible or f.name is None or f.scalar.name == "char":
            continue
        mask = None
        if f.flag_sets:
            mask = 0
            for fs in f.flag_sets:
                mask |= fs.mask
        enum_values = tuple(sorted({v.value for v in f.enum.values if v.removed is None})) if f.enum else ()
        rules.append(FieldRule(f.name, f.bits or f.scalar.bits(ABIS[0]), f.scalar.signed, f.count if f.dims else 1,
                               mask, " and ".join(fs.name for fs in f.flag_sets), enum_values,
                               f.enum.name if f.enum else ""))
    return rules


@value_type
class CountRule:
    """A flexible array whose element count is in another field: the buffer must have room."""

    count_field: str
    array: str
    offset: int      # of the array, on the running ABI's layout (x86_64 and i386 agree for these)
    element: int     # size of one element


def count_rule(record: Record) -> Optional[CountRule]:
    last = record.members[-1] if record.members else None
    if last is None or not last.flexible or last.counted_by is None:
        return None
    return CountRule(last.counted_by, last.name or "", last.offsets[0], last.element_size())


def creates_class(ioctl: Ioctl) -> str:
    """The API class wrapping the descriptor an ioctl creates."""
    return {"vm": "Vm", "vcpu": "Vcpu", "device": "Device", "fd": "FileDescriptor"}[ioctl.creates or "fd"]


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
            abi_literal=_abi_literal, abis=ABIS, python_expr=python_expr,
            macro_param_type=macro_param_type)
        support = env.get_template("python/_support.py.j2").render()
        methods = api_methods(model)
        records = sorted({m.record for ms in methods.values() for m in ms if m.record})
        error_ioctls = list({m.ioctl.name: m.ioctl for ms in methods.values() for m in ms}.values())
        counted = {r: rule for r in records if (rule := count_rule(model.by_name[r])) is not None}
        api = env.get_template("python/api.py.j2").render(
            model=model, methods=methods, rules={r: field_rules(model.by_name[r]) for r in records}, counted=counted,
            error_ioctls=error_ioctls, creates_class=creates_class,
            creates_type=lambda i: creates_class(i),
            exits=[e for e in model.of_kind(ExitReason) if e.present], sources=sources, used=used, abis=ABIS)
        return {
            "python/kvm_uapi/__init__.py": module,
            "python/kvm_uapi/_support.py": support,
            "python/kvm_uapi/_runtime.py": env.get_template("python/_runtime.py.j2").render(),
            "python/kvm_uapi/api.py": api,
            "python/kvm_uapi/py.typed": "",
        }
