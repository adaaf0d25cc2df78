"""Value items (constants, flag sets, enums, exit reasons, macros) and capabilities."""

from __future__ import annotations


from .. import expr
from ..layout import ABIS, SCALARS
from ..load import Map
from ..model import (
    Capability, Constant, EnableArg, Enum, ExitReason, FlagSet, FunctionMacro, NamedValue, SpecFile, Version,
)
from .common import _text


class ValuesMixin:
    # ------------------------------------------------------------ values
    def build_value_item(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        if kind == "const" and "value" not in raw:
            return Constant(**common, expr="", values=())
        if kind == "const":
            if raw.get("c_guard") == f"!{raw['const']}":   # a default: evaluate its own text
                values = [None] * len(ABIS)
                node = self.parse_expr(_text(raw["value"]), raw.mark_of("value"))
                if node is not None:
                    numbers = self.evaluate_text(_text(raw["value"]), raw.mark_of("value"))
                    values = [expr.Value(n, None) for n in numbers] if numbers else values  # type: ignore[arg-type]
            else:
                values = self.symbol_values(self.current_key())
                if self.symbols[self.current_key()].unevaluable:
                    return Constant(**common, expr=_text(raw["value"]), history=self.history(raw), values=())
            if values is None or not self.seen_everywhere(values, self.symbols.get(self.current_key())):
                return None
            return Constant(**common, expr=_text(raw["value"]), history=self.history(raw) if "history" in raw else (),
                            values=tuple(v.value if v is not None else None for v in values),
                            header_defects=self.header_defects(raw) if "header_defects" in raw else ())
        if kind == "macro":
            return FunctionMacro(**common, params=tuple(raw["params"]), body=raw["body"])
        if kind == "exit":
            return ExitReason(**common, value=int(raw["value"]), member=raw.get("member"),
                              requires=self.reference(raw["requires"], ("capability",), raw.mark_of("requires"),
                                                      "capability") if "requires" in raw else None)
        scalar = SCALARS[raw["type"]]
        values = []
        for entry in raw["values"]:
            value_key = self.key_of_raw.get(id(entry)) or self.key(entry["name"])
            evaluated = self.symbol_values(value_key)
            if evaluated is None or not self.seen_everywhere(evaluated, self.symbols[value_key]):
                continue
            impls = tuple(entry.get("implementations", ()))
            if impls:
                self.check_implementations(impls, entry)
            value_since = Version.parse(entry["since"]) if "since" in entry else common["since"]
            arch_t, arch_since = self.arch_releases(entry, (), value_since) if "arch" in entry else ((), ())
            values.append(NamedValue(
                name=entry["name"], expr=_text(entry["value"]),
                values=tuple(v.value if v is not None else None for v in evaluated),
                doc=entry.get("doc", ""), since=value_since,
                mark=entry.mark_of("name"), value_mark=entry.mark_of("value"),
                implementations=impls, arch=arch_t, arch_since=arch_since,
                deprecated=self.lifecycle(entry, "deprecated") if "deprecated" in entry else None,
                removed=self.lifecycle(entry, "removed") if "removed" in entry else None,
                alias=bool(entry.get("alias", False)), mask=bool(entry.get("mask", False)),
                c_define=bool(entry.get("c_define", True)), c_explicit=bool(entry.get("c_explicit", False)),
                history=self.history(entry) if "history" in entry else (),
                abi_exceptions=self.abi_exceptions(entry) if "abi_exceptions" in entry else (),
                header_defects=self.header_defects(entry) if "header_defects" in entry else ()))
        if kind == "enum":
            return Enum(**common, type=scalar, values=tuple(values), c_style=raw.get("c_style", "define"),
                        c_define_values=bool(raw.get("c_define_values", False)),
                        defines_until=Version.parse(raw["defines_until"]) if "defines_until" in raw else None)
        return FlagSet(**common, type=scalar, values=tuple(values))


    # ------------------------------------------------------------ capabilities
    def build_capability(self, kind: str, raw: Map, spec_file: SpecFile, file_arch: tuple[str, ...]):
        common = self.common(kind, raw, spec_file, file_arch)
        answer = raw["answer"]
        flags = None
        if "flags" in answer:
            flags = self.reference(answer["flags"], ("flags",), answer.mark_of("flags"), "flag set")
        enable = raw.get("enable")
        args = []
        if enable is not None:
            for index, arg in enumerate(enable.get("args", ())):
                arg_flags = self.reference(arg["flags"], ("flags",), arg.mark_of("flags"), "flag set") \
                    if "flags" in arg else None
                arg_enum = self.reference(arg["enum"], ("enum",), arg.mark_of("enum"), "enum") \
                    if "enum" in arg else None
                args.append(EnableArg(index, arg["doc"], arg_flags, arg_enum))
        return Capability(**common, value=int(raw["value"]), check=tuple(raw["check"]),
                          answer_kind=answer["kind"], answer_doc=answer.get("doc", ""),
                          answer_flags=flags,
                          enable_scope=enable["scope"] if enable else None,
                          enable_args=tuple(args), enable_doc=enable["doc"] if enable else "")
