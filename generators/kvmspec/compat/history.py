"""`kvmspec compat --history`: the compatibility rules over every release transition the spec records.

The spec dates its items, values, fields, emissions and validations (since,
removed, deprecated). Seen at two consecutive releases, it says what the
kernel changed between them; the rules over meaning then say which of those
changes broke userspace or saved state. Each finding is either a break the
kernel really shipped, recorded in the spec under abi_exceptions with its
reason (explained), or an error in the spec's history to fix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from ..model import Model, Version
from .layouts import LayoutHistory, layout_changes
from .meaning import meaning
from .rules import RULES, Finding
from .view import AbiView, releases


@dataclass(frozen=True)
class Transition:
    old: Version
    new: Version
    findings: tuple[Finding, ...]
    undated: tuple[Finding, ...] = ()   # changes whose release the spec only bounds ("by X")


@dataclass
class History:
    releases: tuple[Version, ...]
    transitions: list[Transition] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def findings(self) -> list[tuple[Version, Finding]]:
        return [(t.new, f) for t in self.transitions for f in t.findings]

    def unexplained(self) -> list[tuple[Version, Finding]]:
        return [(r, f) for r, f in self.findings if f.explanation(r) is None]

    @property
    def errors(self) -> int:
        return sum(1 for r, f in self.unexplained() if f.level == "error")


def removals(old: AbiView, new: AbiView) -> list[Finding]:
    """Names userspace used at `old` that are gone at `new` without a deprecation period."""
    out = []
    for name, item in old.items.items():
        if name in new.items or old.deprecated(item):
            continue
        removed = item.removed
        if removed is not None and removed.moved_to is not None:
            continue
        out.append(Finding(RULES["removed-without-deprecation"], item.mark,
                           f"{item.kind} {name} was removed in {new.label} without having been deprecated "
                           f"first: userspace that used it no longer builds",
                           "deprecate it (deprecated: {since, doc}) at least one release before removed:",
                           subject=name, exceptions=tuple(item.abi_exceptions)))
    return out


def value_changes(old: AbiView, new: AbiView) -> list[Finding]:
    """Constants and values whose number changed between the releases (their history: says so)."""
    out = []
    for name, (owner, value) in new.changing.items():
        if name not in old.changing:
            continue
        before, after = old.number(value), new.number(value)
        if before is None or after is None or before == after:
            continue
        out.append(Finding(RULES["value-changed"], value.mark if hasattr(value, "mark") else owner.mark,
                           f"{name} changed from {before} to {after} in {new.label}: binaries built against the "
                           f"older header use {before}",
                           "give a new meaning a new name and number; never change a number userspace compiled in",
                           subject=name, exceptions=tuple(value.abi_exceptions)))
    return out


def discoverability(old: AbiView, new: AbiView) -> list[Finding]:
    """New capabilities that KVM_CHECK_EXTENSION does not report."""
    out = []
    for name, cap in new.capabilities.items():
        if name not in old.capabilities and not cap.check:
            out.append(Finding(RULES["undiscoverable-uapi"], cap.mark,
                               f"capability {name} ({new.label}) is not reported by KVM_CHECK_EXTENSION anywhere",
                               "list where KVM_CHECK_EXTENSION answers for it (check: [system, vm])",
                               subject=name, exceptions=tuple(cap.abi_exceptions)))
    return out


def replay(model: Model, since: Optional[Version] = None) -> History:
    """Compare the views of the model at every pair of consecutive releases (from `since` on)."""
    start = time.perf_counter()
    rels = releases(model)
    history = History(rels)
    views = [AbiView(model, r) for r in rels]
    layouts = LayoutHistory(model)
    for old, new in zip(views, views[1:]):
        if since is not None and new.release.parts < since.parts:
            continue
        found = meaning(old, new) + removals(old, new) + value_changes(old, new) + discoverability(old, new) + \
            list(layout_changes(layouts, old.release, new.release))
        found.sort(key=lambda f: (f.rule.id, f.mark.path, f.mark.line, f.mark.col))
        # every release in the spec is exact ("by X.Y" is refused), so every finding is dated
        history.transitions.append(Transition(old.release, new.release, tuple(found), ()))
    history.seconds = time.perf_counter() - start
    return history


def report_lines(history: History) -> list[str]:
    """The history as text: per release, each finding and whether the spec explains it; then per rule."""
    lines = []
    per_rule: dict[str, list[int]] = {}
    for t in history.transitions:
        for f in t.findings:
            exc = f.explanation(t.new)
            counts = per_rule.setdefault(f.rule.id, [0, 0])
            counts[0] += 1
            counts[1] += exc is not None
            verdict = "explained" if exc is not None else f.level
            lines.append(f"{f.mark}: {t.old.release} -> {t.new.release}: {verdict}: [{f.rule.id}] {f.message}")
            if exc is not None:
                lines.append(f"    shipped break recorded at {exc.mark}: {' '.join(exc.reason.split())}")
            else:
                lines.append(f"    fix the spec's history, or record the break: {f.remedy}")
    undated = sum(len(t.undated) for t in history.transitions)
    if undated:
        lines.append(f"not judged: {undated} change(s) whose release the spec gives only as \"by X\" "
                     f"(an upper bound), so no transition can be blamed for them")
    lines.append("")
    lines.append("per rule:")
    for rule in RULES:
        n, explained = per_rule.get(rule, [0, 0])
        lines.append(f"  {rule:28} {n:3} finding(s), {explained} explained")
    return lines
