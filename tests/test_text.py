"""Text helpers of the generators."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings, strategies as st

from kvmspec.emit.text import _one_line, c_comment, docstring, fill_lines, rst_cell, rst_table

WORDS = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=30),
                 max_size=40)


@settings(max_examples=400, deadline=None)
@given(WORDS, st.integers(min_value=1, max_value=100), st.sampled_from(["", "  ", "- ", "      "]),
       st.sampled_from(["", "  ", "    "]))
def test_fill_lines_wraps_like_textwrap(words, width, first, rest):
    text = " ".join(words)
    expected = textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest,
                             break_long_words=False, break_on_hyphens=False)
    assert fill_lines(text.split(), width, first, rest) == expected


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=" ab-(1).\n\t\r\x0b\x0c\xa0\u2003\x1c", max_size=14), st.integers(min_value=1, max_value=12))
def test_a_cell_taken_as_one_line_is_what_fill_lines_makes_of_it(text, width):
    """rst_table's shortcut: a cell it does not split is one that fill_lines would give back whole."""
    if _one_line(text, width):
        assert fill_lines(text.split(), width) == [text]


def test_cells_of_one_line_are_taken_whole_and_others_are_not():
    assert _one_line("KVM_CAP_X86_DISABLE_EXITS, since 4.16", 60)
    for text in ("", " lead", "trail ", "two  spaces", "line\nbreak", "tab\there", "nb\xa0space", "x" * 61):
        assert not _one_line(text, 60), text


def test_c_comment_single_and_multi_line():
    assert c_comment("Short.") == "/* Short. */"
    long = c_comment("word " * 40)
    assert long.startswith("/*\n * word") and long.endswith("\n */")
    assert all(len(line) <= 78 for line in long.splitlines())


def test_docstring_escapes_quotes_and_backslashes():
    literal = docstring('Say """hi""" and \\n "quoted"')
    assert eval(literal) == 'Say """hi""" and \\n "quoted"'


def test_rst_table_wraps_the_last_column_and_marks_empty_first_cells():
    table = rst_table([["A", "x " * 50], ["", "short"]], ["Name", "Meaning"], last_width=20)
    lines = table.splitlines()
    assert lines[0].strip().startswith("====")
    assert any(line.strip().startswith("..") for line in lines)


@pytest.mark.parametrize("text", ["(56)", "-", "- x", "* y", "3.", "a)", "#.", "(b)"])
def test_table_cells_that_would_start_a_list_are_escaped(text):
    """A value like (56) in a table cell stays text: docutils reads the
    escaped cell as one paragraph, not as a list with an empty item."""
    import docutils.core
    cell = rst_cell(text)
    assert cell == "\\" + text
    table = rst_table([["KVM_X", text, "meaning"]], ["Name", "Value", "Meaning"])
    tree = docutils.core.publish_doctree(table, settings_overrides={"report_level": 5})
    entries = [e.astext() for e in tree.findall(lambda n: n.tagname == "entry")]
    assert text in entries
    assert not list(tree.findall(lambda n: n.tagname in ("bullet_list", "enumerated_list")))


@pytest.mark.parametrize("text", ["KVM_X", "-1", "(1 << 3)", "0.5", "x86, arm64", ""])
def test_table_cells_that_are_plain_text_are_left_alone(text):
    assert rst_cell(text) == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["word", " ", "\n", "\n\n", "\t", "- item", "  "]), max_size=30).map("".join))
def test_summary_is_the_first_paragraph_on_one_line(text):
    from kvmspec.emit.text import paragraphs, summary
    parts = paragraphs(text)
    assert summary(text) == (" ".join(parts[0].split()) if parts else "")


@pytest.mark.parametrize("damage", ["none", "truncated", "junk", "stale"])
def test_the_compiled_template_cache_gives_the_template_or_compiles_it_again(tmp_path, monkeypatch, damage):
    """environment() keeps compiled templates in files (read whole, then unmarshalled): a file that
    is cut short, not a cache file, or written for another source is compiled again, and every
    case renders what the template says."""
    import os

    import jinja2

    from kvmspec.emit import text

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "t.j2").write_text("{{ a }}+{{ b }}\n")
    monkeypatch.setattr(text, "TEMPLATES", templates)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def render() -> str:   # a new environment each time (environment() keeps the first one)
        return text.environment.__wrapped__().get_template("t.j2").render(a=1, b=2)

    assert render() == "1+2\n"   # compiled, and the file written
    cache_dir = tmp_path / "cache" / "kvmspec" / f"jinja-{text._COMPILER}"
    [cached] = list(cache_dir.iterdir())
    written = cached.read_bytes()
    compiles = []
    real_compile = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, *args, **kwargs: compiles.append(1) or real_compile(self, *args, **kwargs))
    if damage == "truncated":
        cached.write_bytes(written[: len(written) // 2])
    elif damage == "junk":
        cached.write_bytes(b"not a compiled template")
    elif damage == "stale":
        (templates / "t.j2").write_text("{{ a }}-{{ b }}\n")
    expected = "1-2\n" if damage == "stale" else "1+2\n"
    assert render() == expected
    assert len(compiles) == (0 if damage == "none" else 1)
    if damage != "none":   # written again, and read from the file the next time
        compiles.clear()
        assert render() == expected and not compiles
    assert os.listdir(cache_dir) == [cached.name]
