"""Sphinx directives that render kvmspec's own tables, so the docs cannot drift from the code.

``.. kvmspec-compat-rules::`` lists the rules of `kvmspec compat` from
kvmspec.compat.RULES: id, severity, what it catches, why, and the KVM example.
``.. kvmspec-help:: [COMMAND]`` shows the --help text of the command line.
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


def setup(app):
    app.add_directive("kvmspec-compat-rules", CompatRules)
    app.add_directive("kvmspec-help", CliHelp)
    return {"version": "1", "parallel_read_safe": True}
