"""Ioctls: encodings per ABI, arguments, examples, validations and emissions."""

from __future__ import annotations

import errno as errno_module
from typing import Optional

from .. import expr, schema
from ..diagnostics import Mark
from ..layout import ABIS, SCALARS, Scalar, ioc
from ..load import Map
from ..spelling import NameIndex
from ..model import (
    Emission, ErrorCase, Example, Field, Ioctl, Record, Scope, SpecFile, Validation, VERDICT_KINDS, Version,
)
from .common import KVMIO_NAME, field_hint


class IoctlsMixin:
    # ------------------------------------------------------------ ioctls
    def ioctl_encoding(self, raw: Map, owner: tuple[str, str], report: bool):
        """(nr, dir, type text, scalar, record, numbers per ABI) of an ioctl, or None."""
        error = self.error if report else (lambda *args, **kwargs: None)
        nr = int(raw["nr"])
        if nr > 0xFF:
            error(raw.mark_of("nr"), f"ioctl number {nr:#x} does not fit in 8 bits",
                  "ioctl numbers within KVMIO go from 0x00 to 0xff")
        direction = raw["dir"]
        type_text = raw.get("type")
        type_scalar = type_record = None
        type_records: tuple = ()
        sizes: list[Optional[int]] = [0] * len(ABIS)
        if direction != "none" and type_text is None:
            error(raw.mark_of("dir"), f"an ioctl encoded with dir: {direction} needs a type",
                  "add type: (the argument type whose size the number encodes)")
        if direction == "none" and type_text is not None:
            error(raw.mark_of("type"), "an ioctl encoded with dir: none has no type",
                  "remove type:, or set dir: to r, w or rw")
        external = self.external_types.get(type_text) if type_text is not None else None
        if external is not None:
            sizes = [external.size] * len(ABIS)
        elif type_text is not None:
            type_scalar, records = self.type_references(type_text, raw.mark_of("type"), owner, report)
            if type_scalar is not None:
                sizes = [type_scalar.size(abi) for abi in ABIS]
            elif records is not None:
                type_record = self.native_of(records)
                if len(set(map(id, records))) > 1:
                    type_records = tuple(records)
                sizes = [r.layouts[i].size if r is not None and r.layouts[i] is not None else None
                         for i, r in enumerate(records)]
            elif not report:
                return None
            reported = False
            for abi, size in zip(ABIS, sizes):
                if size is not None and size > abi.ioc.size_max and abi.arch in self.context_arches() \
                        and not reported:
                    reported = True
                    error(raw.mark_of("type"), f"{type_text} is {size} bytes on {abi.name}, "
                                               f"more than an ioctl number can encode ({abi.ioc.size_max})",
                          "pass a pointer to a smaller header struct instead")
        kvmio = self.symbol_values(KVMIO_NAME)
        if kvmio is None:
            error(raw.mark_of("ioctl"), "ioctls need the constant KVMIO", "define const: KVMIO (the ioctl type byte)")
            return None
        # ABIs of architectures the manifest does not list have no KVMIO (and no numbers)
        if any(v is None for v, abi in zip(kvmio, ABIS) if abi.arch in self.all_arches):
            return None
        encoded: dict[tuple, int] = {}
        numbers_list: list[Optional[int]] = []
        for i, (abi, size) in enumerate(zip(ABIS, sizes)):
            if size is None or kvmio[i] is None:
                numbers_list.append(None)
                continue
            key = (abi.ioc, kvmio[i].value, size)
            number = encoded.get(key)
            if number is None:
                number = encoded[key] = ioc(direction, kvmio[i].value, nr & 0xFF, min(size, abi.ioc.size_max), abi)
            numbers_list.append(number)
        numbers = tuple(numbers_list)
        return nr, direction, type_text, type_scalar, type_record, numbers, external, type_records

    def no_value(self, name: str, mark: Mark, purpose: str) -> None:
        """Report at `mark`, where a number is needed, that the constant `name`
        has none: it is defined without a value, or with one that x86 cannot
        evaluate. (An expression that does not evaluate was reported where it
        is written.)"""
        sym = self.symbols[name]
        name = sym.name   # the C name (a key may say which architecture's definition it is)
        if sym.text == "" and sym.owner is not None and schema.item_kind(sym.owner) == "const":
            self.error(mark, f"{name} is defined without a value, so it cannot {purpose}",
                       f"add value: to const {name} (at {sym.mark}); a const without a value is "
                       "only for #ifdef tests (c_guard)")
        elif sym.unevaluable:
            self.error(mark, f"{name} has no value on x86 (it uses a macro only other architectures "
                             f"define), so it cannot {purpose}", "use a constant x86 defines")

    def valueless(self, name: str, mark: Mark) -> Optional[list]:
        """A macro defined without a value cannot appear in an expression."""
        return None

    def ioctl_symbol_values(self, raw: Map, key: str) -> Optional[list]:
        """An ioctl's number as the value of its macro (other macros may alias it)."""
        owner = (raw["ioctl"], raw.get("header", self.items[key][2].header))
        self.keys.append(key)
        self.context.append(self.key_arch.get(key))
        try:
            encoding = self.ioctl_encoding(raw, owner, report=False)
        finally:
            self.context.pop()
            self.keys.pop()
        if encoding is None:
            return None
        # _IOC() is unsigned long: it adds sizeof() of the type.
        return [expr.Value(n, expr.int_types(abi.long_bits)["unsigned long"]) if n is not None else None
                for n, abi in zip(encoding[5], ABIS)]

    def build_ioctl(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        name = raw["ioctl"]
        owner = (name, common["header"])
        encoding = self.ioctl_encoding(raw, owner, report=True)
        if encoding is None:
            return None
        nr, direction, type_text, type_scalar, type_record, numbers, type_external, type_records = encoding

        arg = raw.get("arg", Map(raw.path, raw._mark))
        arg_pass = arg.get("pass", "pointer" if type_text is not None else "none")
        flow = arg.get("flow")
        if arg_pass != "pointer" and flow is not None:
            self.error(arg.mark_of("flow"), f"an argument passed as {arg_pass} has no data flow",
                       "remove flow:, or set pass: pointer")
        if arg_pass == "pointer" and flow is None:
            flow = {"w": "in", "r": "out", "rw": "inout"}.get(direction)
            if flow is None:
                self.error(arg.mark_of("pass") if "pass" in arg else raw.mark_of("dir"),
                           "the data flow of the pointer argument is not known",
                           "add arg: {flow: in|out|inout}; the encoding (dir: none) does not say")
        arg_scalar, arg_record = type_scalar, type_record
        if "type" in arg:
            arg_scalar, records = self.type_references(arg["type"], arg.mark_of("type"), owner)
            arg_record = self.native_of(records) if records is not None else None
        scopes = []
        for index, entry in enumerate(raw["fd"]):
            if isinstance(entry, str):
                scopes.append(Scope(entry))
            else:
                cap = self.reference(entry["capability"], ("capability",), entry.mark_of("capability"),
                                     "capability")
                scopes.append(Scope(entry["scope"], cap))
        capability = None
        if raw.get("capability", "basic") != "basic":
            capability = self.reference(raw["capability"], ("capability",), raw.mark_of("capability"),
                                        "capability")
        errors = []
        for entry in raw.get("errors", ()):
            code = entry["errno"]
            if not hasattr(errno_module, code):
                self.error(entry.mark_of("errno"), f"unknown errno {code!r}",
                           "use a name from <errno.h> such as EINVAL, EFAULT, E2BIG")
            impls = tuple(entry.get("implementations", ()))
            self.check_implementations(impls, entry)
            errors.append(ErrorCase(code, entry["doc"], impls))
        # When the argument type itself could not be resolved, that was reported
        # already; do not add an error for every field path that depends on it.
        arg_failed = arg_record is None and arg_scalar is None and (type_text is not None or "type" in arg)
        validations: list[Validation] = []
        emissions: list[Emission] = []
        if not arg_failed:
            validations = [v for entry in raw.get("validates", ())
                           if (v := self.validation(entry, arg_record, name)) is not None]
            emissions = [e for entry in raw.get("emits", ())
                         if (e := self.emission(entry, arg_record, name)) is not None]
        creates = raw.get("creates")
        creates_field = None
        if isinstance(creates, dict):
            creates, creates_field = creates["scope"], creates["field"]
            if arg_record is None or arg_record.field_at(creates_field) is None:
                self.error(raw.mark_of("creates"), f"{name} has no argument field {creates_field!r} for the new "
                                                   "file descriptor",
                           field_hint(arg_record, creates_field, "name a field of the argument struct"))
        example = self.example(raw, arg_record, name) if "example" in raw else None
        size_from = None
        if "size_from" in arg:
            size_from = self.reference(arg["size_from"], ("capability",), arg.mark_of("size_from"), "capability")
            if arg_pass != "pointer":
                self.error(arg.mark_of("size_from"), "size_from needs a pointer argument", "remove size_from:")
        counts = {key: self.counted_array(arg, key, arg_record, arg_pass) for key in ("fills", "partial")
                  if key in arg}
        pair = raw.get("pair", {})
        for key in ("restores", "restored_by"):
            if key in pair:
                self.reference(pair[key], ("ioctl",), pair.mark_of(key), "ioctl")
        same = raw.get("same_number_as")
        if same is not None:
            self.reference(same, ("ioctl",), raw.mark_of("same_number_as"), "ioctl")
        return Ioctl(**common, nr=nr, dir=direction, type_text=type_text, type_scalar=type_scalar,
                     type_record=type_record, type_external=type_external, numbers=numbers,
                     type_records=type_records,
                     same_number_as=same,
                     scopes=tuple(scopes), capability=capability, arg_pass=arg_pass, arg_flow=flow,
                     arg_record=arg_record, arg_scalar=arg_scalar, arg_doc=arg.get("doc", ""),
                     arg_name=arg.get("name", "value"), arg_default=arg.get("default"), arg_size_from=size_from,
                     arg_fills=counts.get("fills"), arg_partial=counts.get("partial"),
                     creates=creates, creates_field=creates_field, example=example,
                     returns=raw["returns"], errors=tuple(errors), validations=tuple(validations),
                     emissions=tuple(emissions), restores=pair.get("restores"),
                     restored_by=pair.get("restored_by"))

    def counted_array(self, arg: Map, key: str, record: Optional[Record], arg_pass: str) -> Optional[str]:
        """The count field named by arg.fills / arg.partial: it must count the argument's flexible array."""
        name = arg[key]
        last = record.members[-1] if record is not None and record.members else None
        if arg_pass != "pointer" or last is None or not last.flexible or last.counted_by is None:
            self.error(arg.mark_of(key), f"{key}: needs a pointer to a struct whose flexible array has counted_by",
                       f"remove {key}:, or add counted_by: to the struct's flexible array")
            return None
        if name != last.counted_by:
            self.error(arg.mark_of(key), f"{key}: {name} is not the field that counts {record.name}.{last.name}"
                                         f" (counted_by: {last.counted_by})", f"write {key}: {last.counted_by}")
            return None
        return name

    @staticmethod
    def integer_sibling(fields: list[dict], name: str) -> bool:
        """Whether `name` is a plain integer field among `fields` (built so far)."""
        found = next((p for p in fields if p["name"] == name), None)
        return found is not None and "scalar" in found and not found["scalar"].is_pointer \
            and not found["dims"] and not found["flexible"]

    def buffer(self, rf: Map, siblings: list[dict], info: dict) -> None:
        """buffer: on an integer field: the data it locates, and its length over sibling fields."""
        spec = rf["buffer"]
        if "scalar" not in info or info["scalar"].is_pointer or info.get("dims") or info.get("flexible"):
            self.error(rf.mark_of("buffer"), "buffer: is only for a plain integer field (an offset)",
                       "remove buffer:")
            return
        try:
            tree = expr.parse(spec["bytes"])
        except expr.ExprError as exc:
            self.error(spec.mark_of("bytes"), f"bytes: {exc}", "write a C expression such as size * count")
            return
        known = {p["name"] for p in siblings if "scalar" in p and not p.get("dims") and not p.get("flexible")}
        unknown = sorted({n.name for n in expr.names(tree)} - known)
        if unknown:
            self.error(spec.mark_of("bytes"), f"bytes: {', '.join(unknown)} is not an integer field before "
                                              f"{rf['name']} in this record", "use the record's own fields")
            return
        info["buffer_name"], info["buffer_bytes"] = spec["name"], spec["bytes"]

    def example(self, raw: Map, record: Optional[Record], ioctl: str) -> Optional[Example]:
        data = raw["example"]
        fields = []
        for path, value in data.get("fields", {}).items():
            if record is None or record.field_at(path) is None:
                self.error(data["fields"].key_mark(path), f"{ioctl} has no argument field {path!r}",
                           field_hint(record, path, "name a field of the argument struct"))
                continue
            if isinstance(value, str) and not value.startswith("$"):
                values = self.symbol_values(value)
                if values is not None and any(v is None for v in values):
                    self.no_value(value, data["fields"].mark_of(path), "be an example value")
                    continue
                if values is None:
                    self.error(data["fields"].mark_of(path), f"unknown constant {value!r}",
                               self.unknown_hint(value, (), "use a number or a constant of the spec"))
                    continue
                value = values[0].value
            fields.append((path, int(value) if isinstance(value, int) else value))
        for index, setup in enumerate(data.get("setup", ())):
            self.reference(setup, ("ioctl",), data["setup"].mark_of(index), "ioctl")
        return Example(data.get("scope"), tuple(data.get("setup", ())), tuple(fields))

    def validation(self, entry: Map, record: Optional[Record], ioctl: str) -> Optional[Validation]:
        field = self.arg_field(record, entry, ioctl)
        if field is None:
            return None
        verdicts = []
        for vkind in VERDICT_KINDS:
            if vkind not in entry:
                continue
            verdict = entry[vkind]
            if isinstance(verdict, str):
                table: tuple[tuple[str, str], ...] = (("", verdict),)
            else:
                table = tuple(verdict.items())
                for where in verdict:
                    if where not in self.impl_names and where not in self.arch_names:
                        self.error(verdict.key_mark(where), f"unknown implementation or architecture {where!r}",
                                   "use one of: " + ", ".join(sorted(set(self.impl_names) | self.arch_names)))
            verdicts.append((vkind, table))
        return Validation(entry["field"], field, entry.mark_of("field"), entry.get("doc", ""), tuple(verdicts),
                          Version.parse(entry["since"]) if "since" in entry else None)

    def emission(self, entry: Map, record: Optional[Record], ioctl: str) -> Optional[Emission]:
        field = self.arg_field(record, entry, ioctl)
        if field is None:
            return None
        values = []
        for index, vname in enumerate(entry["values"]):
            value_set = field.value_set_of(vname)
            value = value_set.value_named(vname) if value_set is not None else None
            if value is None:
                sets = ", ".join(f"{vs.kind} {vs.name}" for vs in field.value_sets)
                where = sets or "no flag set or enum"
                close = NameIndex(v.name for vs in field.value_sets for v in vs.values).suggestion(vname)
                self.error(entry["values"].mark_of(index), f"{vname} is not a value of field {entry['field']} ({where})",
                           (f"{close} If not, list" if close else "list") + " only values of the field's flag set or enum")
                continue
            values.append(value)
        impls = tuple(entry.get("implementations", ()))
        self.check_implementations(impls, entry)
        requires = None
        if "requires" in entry:
            requires = self.reference(entry["requires"], ("capability",), entry.mark_of("requires"), "capability")
        return Emission(entry["field"], field, tuple(values), entry.mark_of("field"), impls, requires,
                        Version.parse(entry["since"]) if "since" in entry else None)

    def type_references(self, text: str, mark: Mark, owner: tuple[str, str],
                        report: bool = True) -> tuple[Optional[Scalar], Optional[list[Optional[Record]]]]:
        """An ioctl's type: a scalar, or the record per ABI (each architecture's own
        struct kvm_regs ...)."""
        if text in SCALARS:
            return SCALARS[text], None
        rkind, rname = text.split(" ", 1)
        if self.context[-1] is None and (rname in self.variants or rname in self.key_arch):
            records: list[Optional[Record]] = []
            for abi in ABIS:
                key = self.key_on(rname, abi.arch)
                records.append(self.type_reference(f"{rkind} {key}", mark, owner, report)[1]
                               if key is not None else None)
            return None, records if any(r is not None for r in records) else None
        scalar, record = self.type_reference(f"{rkind} {self.key(rname)}", mark, owner, report)
        return scalar, [record] * len(ABIS) if record is not None else None

    def type_reference(self, text: str, mark: Mark, owner: tuple[str, str],
                       report: bool = True) -> tuple[Optional[Scalar], Optional[Record]]:
        if text in SCALARS:
            return SCALARS[text], None
        rkind, rname = text.split(" ", 1)
        entry = self.items.get(rname)
        if entry is None or entry[0] != rkind:
            if report:
                self.error(mark, f"unknown {rkind} {rname!r}",
                           self.unknown_hint(rname, ("struct", "union"), f"define {rkind} {rname} in the spec, "
                                             "or list it under external_types: in the manifest"))
            return None, None
        # An ioctl macro only needs the type where it is expanded, so order does not matter.
        if report and not self.check_visible(owner, rname, mark, text, ordered=False):
            return None, None
        target = self.ensure(rname, self.build_record_item, self.file_arch(entry[2]))
        return None, target if isinstance(target, Record) else None

    def arg_field(self, record: Optional[Record], entry: Map, ioctl: str) -> Optional[Field]:
        path = entry["field"]
        if record is None:
            self.error(entry.mark_of("field"), f"{ioctl} has no struct argument to hold field {path!r}",
                       "give the ioctl a struct type, or remove this entry")
            return None
        found = record.field_at(path)
        if found is None:
            self.error(entry.mark_of("field"), f"{record.c_type} has no field {path!r}",
                       field_hint(record, path, "write the path with dots through named members, "
                                                "e.g. hdr.vmx.flags"))
        return found
