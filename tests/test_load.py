"""The YAML loader: the same tags as PyYAML's SafeLoader, faster."""

from __future__ import annotations

import yaml
from hypothesis import given, settings, strategies as st

from kvmspec.load import _Loader

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
