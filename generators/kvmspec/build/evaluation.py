"""Evaluating expressions per ABI (shared by ABIs of one layout class where possible)."""

from __future__ import annotations

from typing import Any, Optional

from .. import expr
from ..diagnostics import Mark
from ..layout import ABIS, SCALARS, Abi
from ..model import Record
from .common import _CLASS_REP, MAX_CHAIN, _Symbol, NotDefinedHere, member_offset


class EvaluationMixin:
    # ------------------------------------------------------------ expressions
    def expr_mark(self, mark: Mark, text: str, column: int) -> Mark:
        # A YAML scalar that is not quoted starts at the mark; quoted ones one later.
        return Mark(mark.path, mark.line, mark.col + column)

    def expr_error(self, mark: Mark, text: str, exc: expr.ExprError) -> None:
        shown = text if len(text) <= 80 else text[:60] + " ..."
        self.error(self.expr_mark(mark, text, exc.column), f"in {shown!r}: {exc.message}", exc.hint)

    def parse_expr(self, text: str, mark: Mark) -> Optional[expr.Node]:
        if text in self.parsed:
            return self.parsed[text]
        try:
            node = expr.parse(text)
        except expr.ExprError as exc:
            self.expr_error(mark, text, exc)
            return None
        self.parsed[text] = node
        return node

    def symbol_values(self, name: str) -> Optional[list[expr.Value]]:
        """The value of a named constant for every ABI (None if it cannot be had)."""
        sym = self.symbols.get(name)
        if sym is None:
            return None
        if sym.values is not None:
            return sym.values
        if sym.compute is not None:
            sym.values = sym.compute() or [None] * len(ABIS)  # type: ignore[list-item]
            return sym.values
        if sym.busy:
            self.error(sym.mark, f"{name} is defined in terms of itself",
                       "break the cycle: give one of the constants a plain number")
            sym.values = [None] * len(ABIS)  # type: ignore[list-item]
            return sym.values
        if self.chain >= MAX_CHAIN:
            self.error(sym.mark, f"{name} is defined through a chain of more than {MAX_CHAIN} other constants",
                       "give one of them a plain number")
            sym.values = [None] * len(ABIS)  # type: ignore[list-item]
            return sym.values
        sym.busy = True
        if self.chain == 0:
            self.refill()
        self.chain += 1
        try:
            values = self._evaluate_symbol(sym)
        finally:
            self.chain -= 1
        sym.busy = False
        sym.values = values
        return values

    def _evaluate_symbol(self, sym: _Symbol) -> list:
        outer = self.arch_touched
        try:
            return self._evaluate_symbol_per_abi(sym)
        finally:
            self.arch_touched = outer or sym.arch_dependent

    def _evaluate_symbol_per_abi(self, sym: _Symbol) -> list:
        name = sym.name
        node = self.parsed.get(sym.text)
        if node is None:
            node = self.parse_expr(sym.text, sym.mark)
        values: list = []
        missing = 0
        # An expression that names nothing architecture-specific has one value per
        # evaluation class (type sizes and ioctl encoding): evaluated once for each.
        shared: dict[tuple, Any] = {}
        for abi, eval_class in zip(ABIS, _CLASS_REP):   # ioctl numbers (other encodings) count as arch-specific
            if node is None or abi.arch not in sym.arches:
                values.append(None)
                continue
            if eval_class in shared:
                values.append(shared[eval_class])
                continue
            self.arch_touched = False
            try:
                v = self.evaluator(abi).evaluate(node)
            except expr.Unavailable:   # a name it uses failed, and said so
                node = None
                values.append(None)
                continue
            except RecursionError:
                self.error(sym.mark, f"in {sym.text!r}: macros expand too deeply",
                           "simplify the macros this expression uses")
                node = None
                values.append(None)
                continue
            except NotDefinedHere:
                # Uses a macro that this architecture's headers never define (PAGE_SIZE,
                # ...): the definition exists, but code there cannot expand it.
                sym.arch_dependent = True
                missing += 1
                sym.elsewhere = sym.elsewhere | {abi.name}
                values.append(None)
                continue
            except expr.ExprError as exc:
                self.expr_error(sym.mark, sym.text, exc)
                node = None
                values.append(None)
                continue
            if v is None:
                values.append(None)
                continue
            if sym.c_enum:
                int_type = expr.INT
                if not int_type.holds(v.value):
                    self.error(sym.mark, f"{name} = {v.value} does not fit in a C enum (int)",
                               "use c_style: define for values beyond 32 bits")
                v = expr.Value(int_type.wrap(v.value), int_type)
            values.append(v)
            if self.arch_touched:
                sym.arch_dependent = True
            else:
                shared[eval_class] = v
        if missing and missing == sum(abi.arch in sym.arches for abi in ABIS):
            sym.unevaluable = True
        return values

    def evaluator(self, abi: Abi) -> expr.Evaluator:
        ev = self.evaluators.get(abi.name)
        if ev is None:
            index = ABIS.index(abi)

            def lookup(name: str) -> Optional[expr.Value]:
                key = self.key_on(name, abi.arch)
                if key is None:
                    raise NotDefinedHere(f"{name} is not defined for {abi.arch}")
                values = self.symbol_values(key)
                sym = self.symbols.get(key)
                if key in self.key_arch or name in self.variants or sym is None or sym.arch_dependent:
                    self.arch_touched = True
                if values is None and name in self.external:
                    raise NotDefinedHere(f"{name} is not defined for {abi.arch} (an external macro)")
                if values is None:
                    return None
                if values[index] is None:
                    if self.symbols[key].unevaluable:
                        raise NotDefinedHere(f"{name} cannot be expanded on {abi.arch}")
                    if self.symbols[key].text == "":
                        raise expr.ExprError(f"{name} is defined without a value",
                                             hint="only #ifdef (c_guard) can use it")
                    raise expr.Unavailable(f"{name} has no value (see the error reported for it)")
                return values[index]

            def laid_out(type_text: str, size_only: bool) -> Optional[Record]:
                """The record a sizeof() or offsetof() names, as this ABI's architecture defines it."""
                kind, _, name = type_text.partition(" ")
                key = self.key_on(name, abi.arch)
                entry = self.items.get(key) if key is not None else None
                if entry is None or entry[0] != kind:
                    if name in self.variants or name in self.key_arch:
                        raise NotDefinedHere(f"{type_text} is not defined for {abi.arch}")
                    return None
                record = self.ensure(key, self.build_record_item, self.file_arch(entry[2]))
                if not isinstance(record, Record):
                    return None
                # a size may differ between ABIs of one class where a member's type does
                if key in self.key_arch or name in self.variants or \
                        size_only and record.layouts[index] is not record.layouts[_CLASS_REP[index]]:
                    self.arch_touched = True
                if record.layouts[index] is None:
                    raise NotDefinedHere(f"{type_text} has no layout on {abi.name}")
                return record

            def sizeof(type_text: str) -> Optional[int]:
                if type_text in SCALARS:
                    return SCALARS[type_text].size(abi)
                record = laid_out(type_text, True)
                return record.layouts[index].size if record is not None else None

            def offsetof(type_text: str, path: tuple) -> "Optional[int | str]":
                record = laid_out(type_text, False)
                return member_offset(record, path, abi) if record is not None else None

            def unknown_call(name: str) -> None:
                if name in self.external:
                    raise NotDefinedHere(f"{name}() is not defined by the KVM headers (an external macro)")

            ev = expr.Evaluator(abi.long_bits, lookup, self.macros, sizeof, offsetof, unknown_call,
                                suggest=self.suggest)
            self.evaluators[abi.name] = ev
        return ev

    def refill(self) -> None:
        """A new evaluation starts: it may take up to expr.MAX_STEPS operations."""
        for ev in self.evaluators.values():
            ev.budget = expr.MAX_STEPS

    def evaluate_text(self, text: str, mark: Mark) -> Optional[list[int]]:
        """Evaluate an expression for every ABI; None after reporting a problem."""
        node = self.parse_expr(text, mark)
        if node is None:
            return None
        if self.chain == 0:
            self.refill()
        result: list = []
        arches = self.context_arches()
        for abi in ABIS:
            if abi.arch not in arches:
                result.append(None)
                continue
            try:
                result.append(self.evaluator(abi).evaluate(node).value)
            except NotDefinedHere:
                result.append(None)
            except expr.Unavailable:   # reported where it failed
                return None
            except RecursionError:
                self.error(mark, f"in {text!r}: macros expand too deeply", "simplify the macros it uses")
                return None
            except expr.ExprError as exc:
                self.expr_error(mark, text, exc)
                return None
        return result
