"""Problems found in a spec, reported as `path:line:col: error: ...`.

Checks never raise on the first problem: they append a Diagnostic to a
list, and the CLI prints them all at the end. SpecError carries such a list
across layers that cannot go on (a file that is not YAML at all).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from .valuetype import value_type


class Mark(NamedTuple):
    """A position in a spec file; line and column count from 1."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@value_type(order=True)
class Diagnostic:
    mark: Mark
    message: str
    hint: str = ""
    severity: str = "error"
    rule: str = ""

    def __str__(self) -> str:
        rule = f"[{self.rule}] " if self.rule else ""
        text = f"{self.mark}: {self.severity}: {rule}{self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class SpecError(Exception):
    """Raised with every diagnostic collected when a stage cannot continue."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(set(diagnostics))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class Reporter:
    """Collects diagnostics; `error()` never raises."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, mark: Mark, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(mark, message, hint))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            raise SpecError(self.diagnostics)
