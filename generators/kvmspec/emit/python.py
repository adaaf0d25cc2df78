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
from ..model import ExitReason, Field, FunctionMacro, Ioctl, Item, Model, Record
from ..valuetype import value_type
from .text import rendered_once


@value_type
class PyField:
    name: str
    ctype: str
    bits: int
    field: Field
    annotation: str = "int"          # what reading the field gives, for type checkers


@value_type
class TypedField:
    """A field whose integer reads as its flag set or enum (a property replaces ctypes' descriptor)."""

    record_class: str
    name: str
    value_set: str


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
    promoted: tuple[PyField, ...] = ()   # fields of anonymous members, reachable from this class


def _annotation(f: Field, record_class: str | None) -> str:
    """The type a read of the field gives: int (or its flag set / enum), bytes, a record, a ctypes array."""
    if record_class is not None:
        element = record_class
    elif f.scalar is not None and f.scalar.name == "char" and f.is_array:
        return "bytes"
    elif f.scalar is not None and f.scalar.is_pointer:
        element = "int | None"
    elif len(f.flag_sets) == 1 and f.flag_sets[0].present and not f.is_array and not f.bits:
        element = f.flag_sets[0].name
    elif f.enum is not None and f.enum.present and not f.is_array and not f.bits:
        element = f.enum.name
    else:
        element = "int"
    if not f.is_array:
        return element
    item = record_class if record_class is not None else f.scalar.ctype  # type: ignore[union-attr]
    if f.flexible:
        return f"ctypes.Array[{item}]"
    for _ in f.dims:
        item = f"ctypes.Array[{item}]"
    return item


def typed_fields(classes: dict[str, list[PyClass]]) -> list[TypedField]:
    """Fields that read as their flag set or enum: plain (not array, not bit-field) fields of one value set."""
    out = []
    for cls_list in classes.values():
        for cls in cls_list:
            for pf in cls.fields + cls.promoted:
                if pf.annotation not in ("int", "bytes") and pf.field.record is None and not pf.field.is_array \
                        and not pf.annotation.startswith(("ctypes.", "int |")):
                    out.append(TypedField(cls.name, pf.name, pf.annotation))
    return out


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
            fields.append(PyField(name, _ctype(f, inner_class), f.bits, f, _annotation(f, inner_class)))
        promoted: list[PyField] = []
        for pf in fields:
            if pf.name in anonymous:
                inner = next(c for c in out if c.name == pf.ctype)
                promoted.extend(p for p in inner.fields + inner.promoted if p.name not in inner.anonymous)
        out.append(PyClass(class_name, rec, "ctypes.Union" if rec.is_union else "ctypes.Structure",
                           tuple(fields), tuple(anonymous), doc, public, tuple(promoted)))

    visit(record, record.name, True, record.doc)
    return out


def python_function(macro: FunctionMacro) -> tuple[list[tuple[str, str]], str]:
    """A function-like macro as Python: its parameters with their types (str for a member
    name passed to offsetof, else int), and its body."""
    body = expr.parse(macro.body)

    def names_member(n: expr.Node, param: str) -> bool:
        if isinstance(n, expr.Offsetof):
            return n.member.partition(".")[0] == param
        return any(names_member(c, param) for c in expr._children(n))
    params = [(p, "str" if names_member(body, p) else "int") for p in macro.params]
    return params, expr.to_python(body, macro.params)


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
    kind: str                    # none | value | record | scalar | run
    capability: Optional[str]    # capability to check first
    record: Optional[str] = None
    scalar: Optional[Scalar] = None
    reads_with: Optional[str] = None   # keyword updates start from what this method returns (read-modify-write)


SCOPE_CLASSES = {"system": "Kvm", "vm": "Vm", "vcpu": "Vcpu", "device": "Device"}

# The ioctl that runs a vCPU: its method returns the typed exit that kvm_run reports.
RUN_IOCTL = "KVM_RUN"
# The record whose exit union the exit reasons' members belong to (as checks.py says).
RUN_RECORD = "kvm_run"


def bindings_arches(model: Model) -> frozenset[str]:
    """The architectures the bindings are for: the host's (x86), if the model describes its asm
    header; the other architectures' headers are described for C, not bound."""
    from ..layout import HOST_ABIS
    return frozenset(h.arch for h in model.headers if h.arch) & {abi.arch for abi in HOST_ABIS}


def for_bindings(item: Item, arches: frozenset[str]) -> bool:
    """Whether an item concerns the bindings' architecture (an empty arch list means every one)."""
    return item.present and (not item.arch or bool(arches & set(item.arch)))


def read_partner(ioctl: Ioctl, model: Model) -> Optional[Ioctl]:
    """The ioctl that reads what this one writes, when a keyword update can start from it: the
    save half of its save/restore pair, filling the same fixed-size struct with no input."""
    partner = model.by_name.get(ioctl.restores or "")
    if not isinstance(partner, Ioctl) or partner.arg_flow != "out" or ioctl.arg_flow != "in":
        return None
    record = ioctl.arg_record
    if record is None or partner.arg_record is not record or partner.arg_size_from is not None:
        return None
    if any(f.flexible for f in record.members):
        return None
    return partner


def api_methods(model: Model) -> dict[str, list[PyMethod]]:
    """Methods of each API class, named after their ioctls (KVM_GET_REGS -> get_regs): every ioctl
    of the bindings' architecture that the headers define, deprecated ones included."""
    classes: dict[str, list[PyMethod]] = {c: [] for c in SCOPE_CLASSES.values()}
    arches = bindings_arches(model)
    for ioctl in model.ioctls:
        if not for_bindings(ioctl, arches) or ioctl.name.startswith("__"):
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
        if ioctl.name == RUN_IOCTL:
            kind = "run"
        partner = read_partner(ioctl, model)
        for scope in ioctl.scopes:
            cap = scope.capability or ioctl.capability
            reads_with = None
            if partner is not None and any(s.scope == scope.scope for s in partner.scopes):
                reads_with = partner.name.lower().removeprefix("kvm_")
            classes[SCOPE_CLASSES[scope.scope]].append(
                PyMethod(name, ioctl, kind, cap.name if cap is not None else None, record, scalar, reads_with))
    return classes


def rule_classes(methods: dict[str, list[PyMethod]], classes: dict[str, list[PyClass]]) -> list[PyClass]:
    """The classes whose fields the API checks: the records of the methods' arguments and every
    record inside them (array elements, nested members), so that dicts and tuples are checked too."""
    by_name = {c.name: c for cls_list in classes.values() for c in cls_list}
    todo = sorted({m.record for ms in methods.values() for m in ms if m.record})
    seen: dict[str, PyClass] = {}
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen[name] = by_name[name]
        todo.extend(f.ctype.split(" * ")[0] for f in by_name[name].fields if f.field.record is not None)
    return [seen[n] for n in sorted(seen)]


@value_type
class ExitView:
    """Data of an exit that a plain field does not show: the elements of an array in use, or a
    buffer elsewhere in kvm_run located by an offset field."""

    name: str
    doc: str
    offset: int = 0               # counted array: its offset in kvm_run
    count_field: str = ""         # counted array: the field saying how many elements are in use
    capacity: int = 0
    element: int = 1              # element size in bytes
    format: str = "B"             # memoryview format of an element
    offset_field: str = ""        # buffer: the field holding its offset from the start of kvm_run
    length: str = ""              # buffer: its length in bytes, a Python expression over locals
    length_fields: tuple[str, ...] = ()


@value_type
class PyExit:
    """The class of one exit reason: a view of the member of kvm_run it fills (if any)."""

    name: str
    exit: ExitReason
    base: Optional[str]            # the ctypes class of the member
    offset: int                    # of the member in kvm_run (-1 when it fills none)
    fields: tuple[str, ...]        # the member's named fields, as __match_args__
    views: tuple[ExitView, ...]


_FORMATS = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h", (4, False): "I", (4, True): "i",
            (8, False): "Q", (8, True): "q"}


def exit_class_name(exit: ExitReason) -> str:
    """KVM_EXIT_SYSTEM_EVENT -> SystemEventExit."""
    return "".join(w.capitalize() for w in exit.name.removeprefix("KVM_EXIT_").split("_")) + "Exit"


def exit_classes(model: Model, classes: dict[str, list[PyClass]]) -> list[PyExit]:
    """One class per exit reason, over the kvm_run member that the spec says it fills."""
    by_name = {c.name: c for cls_list in classes.values() for c in cls_list}

    def members(cls: PyClass, base: int) -> dict[str, tuple[PyField, int]]:
        out: dict[str, tuple[PyField, int]] = {}
        for pf in cls.fields:
            at = base + pf.field.offsets[0]
            if pf.name in cls.anonymous:
                out.update(members(by_name[pf.ctype], at))
            else:
                out[pf.name] = (pf, at)
        return out

    run_members = members(by_name[RUN_RECORD], 0) if RUN_RECORD in by_name else {}
    out = []
    for e in model.of_kind(ExitReason):
        if not e.present:
            continue
        found = run_members.get(e.member or "")
        if found is None or found[0].field.record is None or found[0].field.is_array:
            out.append(PyExit(exit_class_name(e), e, None, -1, (), ()))
            continue
        pf, offset = found
        member = by_name[pf.ctype]
        inner = members(member, offset)
        views = []
        for name, (f, at) in inner.items():
            fld = f.field
            if fld.counted_by and not fld.flexible and fld.scalar is not None and fld.counted_by in inner:
                size = fld.scalar.size(ABIS[0])
                views.append(ExitView(name, f"The elements of {name} in use ({fld.counted_by} of them).",
                                      offset=at, count_field=fld.counted_by, capacity=fld.count, element=size,
                                      format=_FORMATS[(size, fld.scalar.signed)]))
            if fld.buffer_name and fld.buffer_bytes:
                tree = expr.parse(fld.buffer_bytes)
                used = tuple(dict.fromkeys(n.name for n in expr.names(tree)))
                views.append(ExitView(fld.buffer_name, f"The data that {name} locates ({fld.buffer_bytes} bytes).",
                                      offset_field=name, length=expr.to_python(tree), length_fields=used))
        view_names = {v.name for v in views}
        fields = tuple(n for n, (f, _) in inner.items() if not f.field.reserved and not n.startswith("_"))
        fields += tuple(v.name for v in views if v.name not in fields)
        out.append(PyExit(exit_class_name(e), e, member.name, offset, fields, tuple(views)))
        assert view_names <= set(fields)
    return out


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


def used_by(model: Model, ioctls: list[Ioctl]) -> dict[str, list[Ioctl]]:
    """The ioctls whose argument (or type) is each record the bindings have, by record
    name, in the order of `ioctls`: one walk of the ioctls for every record."""
    users: dict[int, list[Ioctl]] = {}
    for i in ioctls:
        for record in (i.arg_record, i.type_record):
            if record is not None:
                found = users.setdefault(id(record), [])
                if not found or found[-1] is not i:   # once when it is both
                    found.append(i)
    return {r.name: users.get(id(r), []) for r in model.records if r.present}


class Generator:
    name = "python"

    def render(self, model: Model, env) -> dict[str, str]:
        # an ioctl's doc is the same in the module's Ioctl and in each of its API methods
        ioctl_doc = rendered_once(env.get_template("python/docs.j2").make_module().ioctl_doc)
        items = [i for i in model.c_order() if i.present]
        classes = {r.name: py_classes(r) for r in model.records if r.present}
        ioctls = [i for i in model.ioctls if i.present]
        used = used_by(model, ioctls)
        sources = list(dict.fromkeys(i.file.path for i in items))
        module = env.get_template("python/__init__.py.j2").render(
            model=model, items=items, classes=classes, used=used, sources=sources,
            abi_literal=_abi_literal, abis=ABIS, python_function=python_function, ioctl_doc=ioctl_doc,
            typed_fields=typed_fields(classes))
        support = env.get_template("python/_support.py.j2").render()
        methods = api_methods(model)
        error_ioctls = list({m.ioctl.name: m.ioctl for ms in methods.values() for m in ms}.values())
        checked = rule_classes(methods, classes)
        exits = exit_classes(model, classes)
        run = model.by_name.get(RUN_RECORD)
        exit_reason = run.field_at("exit_reason") if isinstance(run, Record) and run.present else None
        imported = {"CAPABILITIES", "KVM_CHECK_EXTENSION", "KVM_CAP_CHECK_EXTENSION_VM"}
        imported |= {RUN_RECORD} if exit_reason is not None else set()
        imported |= {m.ioctl.name for ms in methods.values() for m in ms}
        imported |= {m.record for ms in methods.values() for m in ms if m.record}
        imported |= {c.name for c in checked} | {x.base for x in exits if x.base}
        defined = {i.name for i in items} | {c.name for cls_list in classes.values() for c in cls_list}
        imported &= defined | {"CAPABILITIES"}
        counted = {c.name: rule for c in checked if (rule := count_rule(c.record)) is not None}
        api = env.get_template("python/api.py.j2").render(
            model=model, methods=methods, rules={c.name: field_rules(c.record) for c in checked}, counted=counted,
            exit_classes=exits, imported=sorted(imported),
            run_exit_reason_offset=exit_reason.offsets[0] if exit_reason is not None else None,
            error_ioctls=error_ioctls, creates_class=creates_class, ioctl_doc=ioctl_doc,
            creates_type=lambda i: creates_class(i),
            exits=[e for e in model.of_kind(ExitReason) if e.present], sources=sources, used=used, abis=ABIS)
        return {
            "python/kvm_uapi/__init__.py": module,
            "python/kvm_uapi/_support.py": support,
            "python/kvm_uapi/_runtime.py": env.get_template("python/_runtime.py.j2").render(),
            "python/kvm_uapi/api.py": api,
            "python/kvm_uapi/py.typed": "",
        }
