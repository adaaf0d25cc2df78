"""Fuzzing kvmspec with broken, hostile and random specs (see fuzzlib for the contract).

Bounded for CI: a fixed number of cases per property, derandomized and
without an example database, so every run tries the same cases. The counts
are printed at the end of the session (with -rA or -s) and stored in
FUZZ_COUNTS; benchmarks/fuzz_long.py runs the same strategies for longer.
"""

from __future__ import annotations

import copy
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzlib

pytestmark = pytest.mark.slow

# Cases per property; about 45 s together on a 2-core machine.
MUTATIONS = 110
HOSTILE_TEXTS = 30
RANDOM_SPECS = 120

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

FUZZ_COUNTS: dict[str, int] = {}


def _count(outcome: fuzzlib.Outcome) -> None:
    FUZZ_COUNTS["cases"] = FUZZ_COUNTS.get("cases", 0) + 1
    key = "valid" if outcome.succeeded else "rejected"
    FUZZ_COUNTS[key] = FUZZ_COUNTS.get(key, 0) + 1
    if outcome.compiled:
        FUZZ_COUNTS["compiled and imported"] = FUZZ_COUNTS.get("compiled and imported", 0) + 1


@pytest.fixture(scope="module", autouse=True)
def timing():
    start = time.monotonic()
    yield
    FUZZ_COUNTS["seconds"] = round(time.monotonic() - start)


def summary() -> str:
    """One line for the end of the test session (see conftest.pytest_terminal_summary)."""
    counts = dict(FUZZ_COUNTS)
    seconds = counts.pop("seconds", None)
    text = ", ".join(f"{n} {k}" for k, n in counts.items())
    return f"{text} in {seconds} s" if seconds is not None else text


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> fuzzlib.Workspace:
    """A scratch repository with the real spec, shared by the cases that mutate it."""
    return fuzzlib.Workspace(tmp_path_factory.mktemp("fuzz-real") / "repo")


@pytest.fixture(scope="module")
def empty(tmp_path_factory) -> fuzzlib.Workspace:
    """A scratch repository for small random specs."""
    return fuzzlib.Workspace(tmp_path_factory.mktemp("fuzz-random") / "repo", copy_spec=False)


def _judge(ws: fuzzlib.Workspace, what: str, **kwargs) -> None:
    try:
        outcome = ws.check(what, **kwargs)
    finally:
        ws.reset()
    _count(outcome)
    assert outcome.ok, f"{what}:\n" + "\n".join(outcome.problems)


@settings(FUZZ, max_examples=MUTATIONS)
@given(case=fuzzlib.mutated_file())
def test_mutated_real_spec_is_valid_or_precisely_rejected(real, case):
    rel, description, text = case
    fuzzlib.write_case(real, rel, text)
    _judge(real, f"{rel}: {description}")


@st.composite
def hostile_text(draw):
    """A hostile string in place of one doc, title or returns text of the real spec."""
    rel = draw(st.sampled_from(["kvmspec.yaml", "x86/nested-state.yaml", "x86/debug.yaml", "common/base.yaml"]))
    data = fuzzlib.original_data(rel)
    paths = [p for p in fuzzlib.all_paths(data) if p[-1] in ("doc", "title", "returns", "reason")
             and isinstance(fuzzlib.get(data, p), str)]
    path = draw(st.sampled_from(paths))
    text = draw(fuzzlib.string_strategy())
    mutated = copy.deepcopy(data)
    fuzzlib.get(mutated, path[:-1])[path[-1]] = text
    return rel, f"{'/'.join(map(str, path))} = {text[:60]!r}", fuzzlib.dump(mutated)


@settings(FUZZ, max_examples=HOSTILE_TEXTS)
@given(case=hostile_text())
def test_hostile_doc_text_is_escaped_or_rejected(real, case):
    rel, description, text = case
    fuzzlib.write_case(real, rel, text)
    _judge(real, f"{rel}: {description}")


@settings(FUZZ, max_examples=RANDOM_SPECS)
@given(spec=fuzzlib.random_spec())
def test_random_well_formed_spec_validates_generates_compiles_and_imports(empty, spec):
    fuzzlib.load_random_spec(empty, spec)
    _judge(empty, "random spec:\n" + spec.files["common/random.yaml"], expect_success=True,
           extra_script=fuzzlib.random_spec_script(spec))
