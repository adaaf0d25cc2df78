"""The YAML loader: the same tags as PyYAML's SafeLoader, faster; and no text that YAML cut at a comment."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from kvmspec.diagnostics import SpecError
from kvmspec.fullyaml import _Loader
from kvmspec.load import parse_yaml

SAMPLES = ["", "~", "null", "Null", "NULL", "true", "False", "yes", "No", "on", "OFF", "0", "-1", "+12", "0x1F",
           "0o17", "0b101", "1_000", "1.5", ".inf", "-.Inf", ".nan", "1e3", "2024-01-01", "2001-12-14t21:59:43.10-05:00",
           "<<", "=", "name", "KVM_CAP_X86_TRIPLE_FAULT_EVENT", "5.10", "0x00000200", "nope", "t", "y"]


def tags(loader, text: str) -> list[str]:
    node = yaml.compose(text, Loader=loader)
    return [n.tag for n in node.value] if node is not None else []


def document(values: list[str]) -> str:
    return "".join(f"- {v}\n" if v else "-\n" for v in values)


def test_plain_scalars_get_safe_loader_tags():
    assert tags(_Loader, document(SAMPLES)) == tags(yaml.SafeLoader, document(SAMPLES))


def test_quoted_and_block_scalars_are_strings():
    text = "- '0x10'\n- \"true\"\n- |\n  null\n- >\n  12\n"
    assert tags(_Loader, text) == ["tag:yaml.org,2002:str"] * 4


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.text(alphabet="0123456789abcdefxXoOtTnNyY+-._:~ ", min_size=1, max_size=12)
                .map(str.strip).filter(lambda s: s and not s.startswith(("-", ":", "? ")) and ": " not in s
                                       and not s.endswith(":") and " #" not in s),
                min_size=1, max_size=20))
def test_random_plain_scalars_resolve_like_safe_loader(values):
    text = document(values)
    try:
        expected = tags(yaml.SafeLoader, text)
    except yaml.YAMLError:
        return
    assert tags(_Loader, text) == expected


# ------------------------------------------------------------------ text that YAML would cut


def cut_errors(text: str) -> list[str]:
    try:
        parse_yaml(text, "f.yaml")
    except SpecError as exc:
        return [str(d) for d in exc.diagnostics]
    return []


@pytest.mark.parametrize("key", ["doc", "returns", "title", "reason", "moved_to", "description"])
def test_plain_text_followed_by_a_comment_sign_is_an_error(key):
    line = f"  {key}: The guest takes a #GP here."
    errors = cut_errors(f"item:\n{line}\n")
    col = line.index("#") + 1
    assert len(errors) == 1 and errors[0].startswith(f"f.yaml:2:{col}: error: {key} text is cut at ' #'")
    assert "ends with 'The guest takes a'" in errors[0]


def test_a_comment_line_inside_a_plain_text_is_an_error():
    errors = cut_errors("item:\n  doc: The first line\n    # and what YAML drops\n  since: x\n")
    assert len(errors) == 1 and errors[0].startswith("f.yaml:3:5: error: doc text is cut before line 3")


@pytest.mark.parametrize("text", [
    'item:\n  doc: "The guest takes a #GP here."\n',
    "item:\n  doc: 'The guest takes a #GP here.'\n",
    "item:\n  doc: |\n    The guest takes a #GP here.\n",
    "item:\n  doc: The guest#GP is no comment.\n",
    "item:\n  const: KVM_X   # a comment after a name is fine\n  doc: Text.\n",
    "item:\n  doc: Text.\n  # a comment at the key's indentation\n  since: x\n",
    "item:\n  doc: Text.\n# a comment at the margin\n",
])
def test_quoted_block_and_names_are_not_cut(text):
    assert cut_errors(text) == []


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.text(alphabet="abcXYZ.,()#", min_size=1, max_size=6), min_size=1, max_size=8),
       st.integers(min_value=0, max_value=7))
def test_a_plain_doc_keeps_its_text_or_is_an_error(words, where):
    """Whatever the words, validation never lets a doc lose part of its text silently."""
    words = [w for w in words if not w.startswith("#")] or ["x"]
    text = " ".join(words[:where] + ["#" + words[-1]] + words[where:])
    source = f"item:\n  doc: {text}\n"
    try:
        data = parse_yaml(source, "f.yaml")
    except SpecError as exc:
        assert any("text is cut" in str(d) for d in exc.diagnostics) or "invalid YAML" in str(exc)
        return
    assert data["item"]["doc"] == text
