"""Sphinx directives that render kvmspec's own tables, so the docs cannot drift from the code.

``.. kvmspec-compat-rules::`` lists the rules of `kvmspec compat` from
kvmspec.compat.RULES: id, severity, what it catches, why, and the KVM example.

``.. kvmspec-audit-kinds::`` lists the kinds of finding of `kvmspec audit-docs`
from kvmspec.audit.KINDS (id, severity, meaning) as a table, and
``.. kvmspec-audit-outside::`` the name prefixes it leaves to headers outside
the spec (kvmspec.audit.OUTSIDE_PREFIXES).

``.. kvmspec-help:: [COMMAND]`` shows the --help text of the command line.

``.. kvmspec-abi-history::`` replays the release history of the spec through
the compatibility rules (kvmspec.compat.history) and lists what it finds per
release, with the reason the spec records for each break KVM shipped.

``.. kvm:records:: SECTION`` (written by the generated reference pages) names
the structs and unions a section shows, each followed by its fields
(``struct kvm_regs rax rbx ... rip``), so that the site's search finds them: each
struct and each field (``kvm_regs.rip``) becomes an object of the "kvm"
domain that leads to the section. The first section to show a struct is
where its search result leads.
"""

from __future__ import annotations

import re

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.domains import Domain, ObjType

from kvmspec.audit import KINDS, OUTSIDE_PREFIXES
from kvmspec.compat import RULES


class CompatRules(Directive):
    has_content = False

    def run(self) -> list[nodes.Node]:
        lines: list[str] = []
        for rule in RULES.values():
            title = f"``{rule.id}`` ({rule.severity})"
            lines += [title, "~" * len(title), "", f"**{rule.title}.** {rule.rationale}", "",
                      f"*Example:* {rule.example}", ""]
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(StringList(lines, source="kvmspec.compat.RULES"), self.content_offset,
                                container, match_titles=True)
        return container.children


NAME = re.compile(r"((?:__)?KVM_[A-Za-z0-9_]*\*?|:[A-Z][a-z]+:|--[a-z-]+)")


def _parse(directive: Directive, lines: list[str], source: str) -> list[nodes.Node]:
    container = nodes.section()
    container.document = directive.state.document
    directive.state.nested_parse(StringList(lines, source=source), directive.content_offset, container)
    return container.children


class AuditKinds(Directive):
    has_content = False

    def run(self) -> list[nodes.Node]:
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 22 10 68", "",
                 "   * - kind", "     - severity", "     - what it means"]
        for kind in KINDS.values():
            summary = NAME.sub(r"``\1``", kind.summary)
            lines += [f"   * - ``{kind.id}``", f"     - {kind.severity}", f"     - {summary}"]
        return _parse(self, lines, "kvmspec.audit.KINDS")


class AuditOutside(Directive):
    has_content = False

    def run(self) -> list[nodes.Node]:
        where: dict[str, list[str]] = {}
        for prefix, header in OUTSIDE_PREFIXES:
            where.setdefault(header, []).append(f"``{prefix}``")
        lines = [f"- {header}: {', '.join(prefixes)}" for header, prefixes in where.items()]
        return _parse(self, lines, "kvmspec.audit.OUTSIDE_PREFIXES")


class CliHelp(Directive):
    """``.. kvmspec-help:: [COMMAND]``: the --help text of kvmspec or one of its commands."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from kvmspec.cli import build_parser
        parser = build_parser()
        if self.arguments:
            action = next(a for a in parser._actions if getattr(a, "choices", None)
                          and self.arguments[0] in a.choices)
            parser = action.choices[self.arguments[0]]
        import os
        columns = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "80"   # the same text whatever terminal builds the docs
        try:
            text = parser.format_help()
        finally:
            if columns is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = columns
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def _first_sentences(text: str, at_least: int = 60) -> str:
    """The reason's opening sentences, enough for a table row (the spec holds the rest)."""
    out = ""
    for sentence in re.split(r"(?<=[.;:])\s+", text):
        out = f"{out} {sentence}".strip()
        if len(out) >= at_least:
            break
    return out


class AbiHistory(Directive):
    """``.. kvmspec-abi-history::``: kvmspec compat --history of the spec the site is built from.

    Options: ``:summary:`` gives the counts alone (per rule), no table; ``:from: X.Y`` and
    ``:before: X.Y`` limit the table to the transitions into releases in that range (the
    findings of a long history are split over several pages)."""

    has_content = False
    option_spec = {"summary": directives.flag, "from": directives.unchanged, "before": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        from pathlib import Path
        from kvmspec.build import load_model
        from kvmspec.compat.history import replay
        from kvmspec.model import Version
        root = Path(self.state.document.settings.env.srcdir).resolve().parent
        history = _replayed(root, load_model, replay)
        findings = history.findings
        low = Version.parse(self.options["from"]) if "from" in self.options else None
        high = Version.parse(self.options["before"]) if "before" in self.options else None
        shown = [(r, f) for r, f in findings
                 if (low is None or r.parts >= low.parts) and (high is None or r.parts < high.parts)]
        explained = [(r, f) for r, f in shown if f.explanation(r) is not None]
        lines: list[str] = []
        if "summary" in self.options:
            first, last = history.releases[0].release, history.releases[-1].release
            lines += [f"The spec dates its items in {len(history.releases)} releases, from {first} to {last}: "
                      f"{len(history.transitions)} transitions. The rules find {len(findings)} break(s) of "
                      f"userspace or saved state in them, {len(explained)} of which the spec records as "
                      f"shipped with a reason.", "", "Breaks per rule:", ""]
        else:
            lines += [f"{len(shown)} break(s) in these releases, {len(explained)} of them recorded as shipped "
                      f"with a reason.", ""]
            lines += [".. list-table::", "   :header-rows: 1", "   :widths: 10 18 30 42", "",
                      "   * - release", "     - rule", "     - what changed", "     - why KVM shipped it"]
            for release, f in shown:
                exc = f.explanation(release)
                why = _first_sentences(" ".join(exc.reason.split())) if exc is not None \
                    else "**not explained: an error of the spec**"
                what = NAME.sub(r"``\1``", f.message.split(":")[0])
                if exc is not None:
                    why = NAME.sub(r"``\1``", why)
                lines += [f"   * - {release.release}", f"     - ``{f.rule.id}``", f"     - {what}",
                          f"     - {why}"]
            lines += ["", "Breaks per rule in these releases:", ""]
        for rule in RULES:
            n = sum(1 for _, f in shown if f.rule.id == rule)
            if n:
                lines.append(f"- ``{rule}``: {n}")
        return _parse(self, lines, "kvmspec.compat.history")


_REPLAYED: dict = {}


def _replayed(root, load_model, replay):
    """The history replay of the spec under root, once per site build (several pages show parts)."""
    if root not in _REPLAYED:
        _REPLAYED[root] = replay(load_model(root))
    return _REPLAYED[root]


class Records(Directive):
    required_arguments = 1      # the section (an ioctl's name), for the anchor
    has_content = True

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        anchor = "records-" + nodes.make_id(self.arguments[0])
        target = nodes.target("", "", ids=[anchor])
        objects = env.domaindata["kvm"]["objects"]
        words = " ".join(self.content).split()
        record = None
        for n, word in enumerate(words):
            if word in ("struct", "union") and n + 1 < len(words):
                continue
            if n > 0 and words[n - 1] in ("struct", "union"):
                record = word
                objects.setdefault(record, (env.docname, anchor, words[n - 1]))
            elif record is not None:
                objects.setdefault(f"{record}.{word}", (env.docname, anchor, "field"))
        return [target]


class KvmDomain(Domain):
    """Structs, unions and their fields, for the search (no cross-reference roles)."""

    name = "kvm"
    label = "KVM"
    object_types = {"struct": ObjType("struct", "struct"), "union": ObjType("union", "union"),
                    "field": ObjType("field", "field")}
    directives = {"records": Records}
    initial_data: dict = {"objects": {}}   # name -> (docname, anchor, kind)

    def get_objects(self):
        for name, (docname, anchor, kind) in sorted(self.data["objects"].items()):
            yield name, name, kind, docname, anchor, 1

    def clear_doc(self, docname: str) -> None:
        for name, (doc, _, _) in list(self.data["objects"].items()):
            if doc == docname:
                del self.data["objects"][name]

    def merge_domaindata(self, docnames, otherdata) -> None:
        for name, value in otherdata["objects"].items():
            if value[0] in docnames:
                self.data["objects"].setdefault(name, value)

    def resolve_xref(self, env, fromdocname, builder, typ, target, node, contnode):
        return None

    def resolve_any_xref(self, env, fromdocname, builder, target, node, contnode):
        return []


_CELL = re.compile(r"(<td\b[^>]*>)(.*?)(</td>)", re.S)
_TEXT = re.compile(r"(^|>)([^<]*)")


def breakable(html: str) -> str:
    """The HTML with a line-break opportunity (<wbr>) after each underscore in
    the text (not the tags) of table cells: a narrow column then breaks
    KVM_CAP_IOAPIC_POLARITY_IGNORED at its underscores rather than anywhere,
    and copied text is unchanged."""
    def text(m: re.Match) -> str:
        return m.group(1) + m.group(2).replace("_", "_<wbr>")

    return _CELL.sub(lambda m: m.group(1) + _TEXT.sub(text, m.group(2)) + m.group(3), html)


def break_identifiers(app, pagename, templatename, context, doctree) -> None:
    if "body" in context:
        context["body"] = breakable(context["body"])
    if context.get("toc"):   # the page's table of contents: links to its sections
        context["toc"] = _TEXT.sub(lambda m: m.group(1) + m.group(2).replace("_", "_<wbr>"), context["toc"])


def setup(app):
    app.connect("html-page-context", break_identifiers)
    app.add_domain(KvmDomain)
    app.add_directive("kvmspec-compat-rules", CompatRules)
    app.add_directive("kvmspec-audit-kinds", AuditKinds)
    app.add_directive("kvmspec-audit-outside", AuditOutside)
    app.add_directive("kvmspec-help", CliHelp)
    app.add_directive("kvmspec-abi-history", AbiHistory)
    return {"version": "1", "parallel_read_safe": True}
