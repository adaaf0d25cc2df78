"""Sphinx directives that render kvmspec's own tables, so the docs cannot drift from the code.

``.. kvmspec-compat-rules::`` lists the rules of `kvmspec compat` from
kvmspec.compat.RULES: id, severity, what it catches, why, and the KVM example.
"""

from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

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


def setup(app):
    app.add_directive("kvmspec-compat-rules", CompatRules)
    return {"version": "1", "parallel_read_safe": True}
