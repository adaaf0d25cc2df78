#!/usr/bin/env python3
"""A long fuzzing run of kvmspec: the strategies of tests/test_fuzz.py, for many more cases.

    python benchmarks/fuzz_long.py [--cases N] [--minutes M] [--kind mutation|hostile|random|all]
                                   [--seed S] [--keep DIR]

Every case is a spec: one mutated file of the real spec, a hostile doc text,
or a small random well-formed spec. `kvmspec validate` and `kvmspec
generate` must either succeed, and then the headers compile and the
bindings import, or exit 1 with `path:line:col: error:` lines (see
tests/fuzzlib.py for the whole contract). The run stops after N cases or M
minutes, whichever comes first, prints what it did, keeps the spec of every
failing case under --keep, and exits 1 if any case failed.
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fuzzlib  # noqa: E402
from test_fuzz import hostile_text  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="stop after this many cases")
    parser.add_argument("--minutes", type=float, default=5.0, help="stop after this much time")
    parser.add_argument("--kind", choices=["mutation", "hostile", "random", "all"], default="all",
                        help="which cases to run (all: mutations, hostile texts, random specs in turn)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the run (default: random)")
    parser.add_argument("--keep", metavar="DIR", default="fuzz-failures",
                        help="where to keep the spec of each failing case (default: ./fuzz-failures)")
    args = parser.parse_args()
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    deadline = time.monotonic() + args.minutes * 60
    kinds = ["mutation", "hostile", "random"] if args.kind == "all" else [args.kind]

    tmp = tempfile.TemporaryDirectory(prefix="kvmspec-fuzz-long-")
    real = fuzzlib.Workspace(Path(tmp.name) / "real" / "repo")
    empty = fuzzlib.Workspace(Path(tmp.name) / "random" / "repo", copy_spec=False)
    counts: collections.Counter = collections.Counter()
    failures: list[tuple[str, list[str]]] = []
    keep = Path(args.keep)

    def record(kind: str, ws: fuzzlib.Workspace, what: str, outcome: fuzzlib.Outcome) -> None:
        counts["cases"] += 1
        counts[f"{kind} cases"] += 1
        counts["valid" if outcome.succeeded else "rejected"] += 1
        counts["compiled and imported"] += outcome.compiled
        if not outcome.ok:
            counts["FAILED"] += 1
            failures.append((what, outcome.problems))
            where = keep / f"case-{len(failures):04d}"
            shutil.copytree(ws.root / "spec", where / "spec", dirs_exist_ok=True)
            (where / "PROBLEMS.txt").write_text(what + "\n\n" + "\n\n".join(outcome.problems) + "\n")
            print(f"FAILED ({kind}): {what[:200]}\n  {outcome.problems[0][:500]}\n  kept in {where}", flush=True)

    def out_of_budget() -> bool:
        return time.monotonic() > deadline or counts["cases"] >= args.cases

    def one_case(kind: str, data: st.DataObject) -> None:
        # Draw first, whatever happens next: Hypothesis wants every example to draw alike.
        if kind == "random":
            spec = data.draw(fuzzlib.random_spec())
            if out_of_budget():
                return   # the rest of the batch passes without running
            fuzzlib.load_random_spec(empty, spec)
            try:
                outcome = empty.check("random", expect_success=True, extra_script=fuzzlib.random_spec_script(spec))
                record(kind, empty, "random spec", outcome)
            finally:
                empty.reset()
            return
        rel, description, text = data.draw(fuzzlib.mutated_file() if kind == "mutation" else hostile_text())
        if out_of_budget():
            return
        fuzzlib.write_case(real, rel, text)
        try:
            outcome = real.check(f"{rel}: {description}")
            record(kind, real, f"{rel}: {description}", outcome)
        finally:
            real.reset()

    def make_batch(kind: str, batch_seed: int):
        @seed(batch_seed)
        @settings(max_examples=10, deadline=None, database=None, derandomize=False, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), print_blob=False)
        @given(st.data())
        def batch(data):
            one_case(kind, data)
        return batch

    start = time.monotonic()
    print(f"kvmspec fuzz: seed {run_seed}, up to {args.cases} cases or {args.minutes} min, kinds: {', '.join(kinds)}",
          flush=True)
    rounds = 0
    while time.monotonic() < deadline and counts["cases"] < args.cases:
        for kind in kinds:
            # Each round runs a batch of each kind, so that a time limit still covers all kinds.
            make_batch(kind, run_seed + rounds)()
            rounds += 1
            if time.monotonic() > deadline:
                break
    elapsed = time.monotonic() - start
    tmp.cleanup()

    print(f"\n{counts['cases']} cases in {elapsed:.0f} s ({counts['cases'] / max(elapsed, 1e-9):.1f}/s), seed {run_seed}")
    for key in ("mutation cases", "hostile cases", "random cases", "valid", "rejected", "compiled and imported",
                "FAILED"):
        print(f"  {key:22} {counts[key]}")
    if failures:
        print(f"\n{len(failures)} failing case(s); specs kept in {keep}/")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
