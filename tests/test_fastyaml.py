"""fastyaml reads the spec's YAML exactly as libyaml does, or gives up.

The property that matters is end to end: load.parse_yaml with the fast path
and without it (libyaml alone) give the same data, positions, styles and
spellings included, or the same diagnostics. It is checked on every spec
file, on edge cases of each construct, and on thousands of damaged copies of
spec files. Each check also counts how often the fast path answered, so that
a fast path that gives up on everything cannot pass them.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conftest import REPO, same_data
from kvmspec import fastyaml
from kvmspec.diagnostics import SpecError
from kvmspec.load import parse_yaml


def every_spec_file() -> list[Path]:
    """The spec's files, its schema included."""
    return sorted((REPO / "spec").rglob("*.yaml"))


def outcome(text: str, fast: bool):
    """What parse_yaml gives: ('data', data) or ('error', diagnostics as text)."""
    try:
        return "data", parse_yaml(text, "spec/f.yaml", fast=fast)
    except SpecError as exc:
        return "error", [str(d) for d in exc.diagnostics]


def agree(text: str) -> bool:
    """parse_yaml gives the same with and without the fast path; True if the
    fast path gave the answer (it did not give up)."""
    fast, slow = outcome(text, True), outcome(text, False)
    assert fast[0] == slow[0], (text, fast, slow)
    if fast[0] == "error":
        assert fast[1] == slow[1], text
    else:
        assert same_data(fast[1], slow[1]), text
    return fastyaml.parse(text, "spec/f.yaml") is not None


@pytest.mark.parametrize("path", every_spec_file(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_spec_file_is_read_fast_and_as_libyaml_reads_it(path):
    text = path.read_text()
    line = fastyaml.give_up_line(text)
    assert line is None, (f"fastyaml gives up at or after line {line}: the file still reads right (libyaml "
                          "reads it), but kvmspec runs slower; write it as the other spec files are written, "
                          "or teach fastyaml.py the construct (tests/test_fastyaml.py holds it to libyaml)")
    assert agree(text)


def test_where_the_fast_path_gives_up_is_told():
    assert fastyaml.give_up_line("a: 1\nb: &x 2\nc: 3\n") == 2
    assert fastyaml.give_up_line("a:\n  - x\n  - y: \"z\n") == 3
    assert fastyaml.give_up_line("a: 1\n") is None


# Each construct the spec uses, read by the fast path (a spec that uses them must not fall back).
READ_FAST = [
    "a: 1\nb: x\n",
    "a: 0x10\nb: -3\nc: 017\nd: 0\ne: +5\n",
    "a: true\nb: False\nc: null\nd: ~\ne: yes\n",
    "a:\nb:\n  c: 1\n",
    'a: "quoted # not a comment"\nb: "with \\"escapes\\" and \\\\"\n',
    'a: "x"   # a comment\n',
    "a: [1, x, \"y\", 0x2]\nb: []\nc: [ ]\n",
    "a: {b: 1, c: \"d\", e: [f, g]}\nf: {}\n",
    "a: [x, {b: \"1\"}, y]\n",
    "items:\n  - a: 1\n    b: 2\n  - c: 3\n",
    "items:\n- a\n- b\nnext: 1\n",
    "items:\n  -\n    a: 1\n  - x\n",
    "doc: |\n  one\n\n  two\n    indented\n\nnext: 1\n",
    "doc: |-\n  text\n",
    "doc: >-\n  one\n  two\n\n  three\n",
    "doc: >\n  one\n  two\n",
    "doc: |\n  #define X 1\n  text\n",
    "a: |\nb: 1\n",
    "# a comment\na: 1\n# between\nb:\n  # comment before\n  c: 1\n",
    "a: text without colons, with commas and [brackets]\n",
    "key.with-dots/and_slashes: 1\n$ref: x\n",
    "a:\n  - {until: \"6.9\", value: 3}\n  - {name: x, doc: The next instruction address.}\n",
]


@pytest.mark.parametrize("text", READ_FAST)
def test_the_constructs_of_the_spec_are_read_fast(text):
    assert agree(text)


# Plain scalars YAML 1.1 reads as something else than a string, and strings close to them.
SCALARS = ["~", "null", "Null", "NULL", "nul", "true", "False", "TRUE", "tRUE", "yes", "No", "on", "OFF", "oN", "y",
           "n", "t", "0", "-0", "+0", "-1", "+12", "0x1F", "0X1F", "+0x1f", "-0x10", "0777", "08", "0o17", "0b101",
           "1_000", "1.5", ".5", ".", "-.", ".inf", "-.Inf", ".nan", "1e3", "1e+3", "2024-01-01", "2024-1-1 1:00:00",
           "2001-12-14t21:59:43.10-05:00", "1:30", "190:20:30", "<<", "<", "<<x", "=", "==", "~x", "-x", "-foo",
           "32-bit registers", "0xfoo", "1 2", "12 ", "name", "KVM_CAP_X86_TRIPLE_FAULT_EVENT", "5.10", "0x00000200"]


@pytest.mark.parametrize("value", SCALARS)
def test_a_plain_scalar_means_what_it_means_to_libyaml(value):
    agree(f"a: {value}\nb:\n  - {value}\n")
    agree(f"a: [{value}, x]\nb: {{c: {value}}}\n")


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789abcdefxXoOtTnNyYeEiIZ+-._:~<= ", min_size=1, max_size=12))
def test_random_plain_scalars_mean_what_they_mean_to_libyaml(value):
    agree(f"a: {value}\n")


# Edge cases: the fast path may give up on them, but may never differ.
EDGES = [
    "", "\n", "# only a comment\n", "a: 1", "a: 1\r\nb: 2\r\n", "a:\t1\n", "\ta: 1\n", "a: é\n",
    "---\na: 1\n", "a: 1\n...\n", "%YAML 1.1\n---\na: 1\n", "- a\n- b\n", "x\n", "  a: 1\n",
    "a: 1\na: 2\n", "a: 1\n b: 2\n", "a: 1\n  b: 2\n", "a:\n  b: 1\n c: 2\n", "a: b: c\n", "a: b:\n",
    "a: x #c\n", "a: x\n  # c\n", "a:\n  # c\nb: 1\n", "doc: #x y\n", "doc:\n   # x\n", "doc: x\n   # cut\n",
    "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: !x 1\n", "<<: {a: 1}\n", "? a\n: 1\n", "1: a\n", "true: a\n",
    "null: a\n", "yes: a\n", "a: 1.5\n", "a: 1_000\n", "a: 0b101\n", "a: 1:30\n", "a: 0x\n", "a: 09\n",
    "a: 2001-12-14\n", "a: .inf\n", "a: -\n", "a: - x\n", "a: -x\n", "a: -1\n", "a: ?x\n", "a: :x\n",
    "a: %x\n", "a: @x\n", "a: `x\n", "a: |x\n", "a: >x\n", "a: '\n", "a: 'x'\n", "a: 'x''y'\n",
    'a: "x\n', 'a: "x\\ny"\n', 'a: "x\\ty"\n', 'a: "x" y\n', 'a: "x"y\n', 'a: "x"\n  b: 1\n',
    'a: "multi\n  line"\n', "a: multi\n  line\n", "a: x\n\n  y\n", "a: x\n  \nb: 1\n",
    "a: [x\n", "a: [x,\n  y]\n", "a: [x, ]\n", "a: [x,, y]\n", "a: [,x]\n", "a: [x y, z]\n", "a: [x: y]\n",
    "a: [x:y]\n", "a: [\"x\", [y, [z]]]\n", "a: [x] y\n", "a: [x] # c\n", "a: [x]\n  b: 1\n", "a: [x]#c\n",
    "a: {x}\n", "a: {x: }\n", "a: {x: 1,}\n", "a: {x:1}\n", "a: {x: 1, x: 2}\n", "a: {1: x}\n", "a: {x: y: z}\n",
    "a: {x: [1, 2], y: {z: w}}\n", "a: {x: \"1\", y: 'z'}\n", "a: {x: -1}\n", "a: {x: #c}\n",
    "a: |\n  x\n y\n", "a: |\n  x\n   y\n", "a: |\n   x\n  y\n", "a: |\n\n\n  x\n", "a: |\n    \n  x\n",
    "a: |\n  x\n  \n  y\n", "a: |\n  x\n    \n", "a: |+\n  x\n\n", "a: |2\n   x\n", "a: | # c\n  x\n",
    "a: |\n  x\n\n\n", "a: |-\n  x\n\n\nb: 1\n", "a: |\n  x\n b: 1\n", "a: |\n  x\n # c\nb: 1\n",
    "a: |\n  x\n# c\nb: 1\n", "a: >\n  x\n   y\n  z\n", "a: >\n  x\n\n\n  y\n", "a: >-\n\n  x\n",
    "a: |\n", "a: |\nb: |\n  x\n", "a:\n  |\n  x\n", "items:\n  - |\n    x\n", "items:\n  - >\n    x\n",
    "items:\n  - - x\n", "items:\n  -x\n", "items:\n  - \n", "items:\n  -   a: 1\n      b: 2\n",
    "items:\n  - a: 1\n   b: 2\n", "items:\n  - a: 1\n     b: 2\n", "items:\n  - a\n  b: 1\n",
    "items:\n  - a\n - b\n", "items:\n  - a\n   - b\n", "items:\n- a\n  - b\n", "items:\n  - a # c\n",
    "items:\n  - \"a\" # c\n", "items:\n  - [a] # c\n", "items:\n  -\n  - a\n", "items:\n  -\nb: 1\n",
    "items:\n  -\n    - a\n", "items:\n  - a:\n    - b\n", "items:\n  - a:\n      - b\n", "items:\n  - a: |\n      x\n",
    "items:\n  - a: 1\n\n  - b: 2\n", "items:\n  # c\n  - a\n", "a:\n- b\n- c\nd:\n  - e\n", "a:\n-\n",
    "a: x  \n", "a:   x\n", "a:    \n", "a: 'x' \n", "a:  \"x\"  \n", "a: \"\"\n", "a: [\"\"]\n",
    "a: b # c: d\n", "a: x#y\n", "a: x:y\n", "a: x :y\n", "a: x, y\n", "a: {x}y\n", "a: [x]]\n",
    "a:\n\n  b: 1\n", "a:\n  b: 1\n\n\n", "a: 1\n\n# end\n", "a: 1\n  \n", "a: 1\n \nb: 2\n",
]


@pytest.mark.parametrize("text", EDGES)
def test_an_edge_case_is_read_as_libyaml_reads_it_or_left_to_libyaml(text):
    agree(text)


# ------------------------------------------------------------ damaged copies of spec files

_INSERTS = [" #x", "# x", ": ", ":", "- ", "-", "'", '"', "[", "]", "{", "}", ",", "&a ", "*a", "!", "|", ">",
            "?", "%", "@", "\\", "\t", " ", "  ", "\n", "\n  ", "x", "0x1", "1.5", "yes", "null", "~", "é"]


def mutate(lines: list[str], rng: random.Random) -> list[str]:
    lines = list(lines)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if not lines:
            break
        i = rng.randrange(len(lines))
        op = rng.randrange(9)
        line = lines[i]
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, line)
        elif op == 2 and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == 3:
            lines[i] = " " * rng.choice((1, 2, 4)) + line
        elif op == 4:
            cut = len(line) - len(line.lstrip(" "))
            lines[i] = line[min(cut, rng.choice((1, 2, 4))):]
        elif op == 5:
            at = rng.randrange(len(line) + 1)
            lines[i] = line[:at] + rng.choice(_INSERTS) + line[at:]
        elif op == 6 and line:
            at = rng.randrange(len(line))
            lines[i] = line[:at] + line[at + 1:]
        elif op == 7:
            lines.insert(i, rng.choice(("", " ", "   ", "#", "  # c", "-", "x:")))
        elif op == 8 and i + 1 < len(lines):
            lines[i:i + 2] = [line + " " + lines[i + 1].lstrip(" ")]
    return lines


def piece_of(lines: list[str], rng: random.Random) -> list[str]:
    """Up to 60 lines of a spec file from a random node on, moved to the left
    edge (under a key if the node is a sequence item): a document of its own."""
    start = rng.randrange(len(lines))
    while start < len(lines) and lines[start].strip()[:1] in ("", "#"):
        start += 1
    if start == len(lines):
        return []
    column = len(lines[start]) - len(lines[start].lstrip(" "))
    piece = []
    for line in lines[start:start + 60]:
        if line.strip() and len(line) - len(line.lstrip(" ")) < column:
            break
        piece.append(line[column:])
    if piece[0].startswith("-"):
        piece = ["items:"] + [f"  {line}" if line else line for line in piece]
    return piece


def test_damaged_copies_of_spec_files_are_read_as_libyaml_reads_them():
    """3,000 pieces of spec files, each damaged one to three times: the fast
    path agrees with libyaml on every one, and it answered for many of them
    (the damage often leaves valid YAML)."""
    rng = random.Random(20261206)
    files = [p.read_text().split("\n") for p in every_spec_file()]
    answered = 0
    tried = 3000
    for _ in range(tried):
        text = "\n".join(mutate(piece_of(rng.choice(files), rng), rng)) + "\n"
        answered += agree(text)
    assert answered > tried // 4, f"the fast path answered only {answered} of {tried}"
