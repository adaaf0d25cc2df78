"""Nothing half-written: generate either replaces generated/ completely or leaves it as it was.

Failures inside generators, kills at any moment, read-only trees, hostile
entries in generated/ and concurrent runs; tests/test_generate.py has the
basic cases (an invalid spec, a failing generator, a failing write).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fuzzlib
from conftest import REPO, run_kvmspec

NESTED = "spec/x86/nested-state.yaml"
# as many files as the committed generated/ holds
GENERATED_FILES = len(fuzzlib.tree_digest(REPO / "generated"))


def digest(scratch) -> dict[str, str]:
    return fuzzlib.tree_digest(scratch.root / "generated")


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".generated"))


def generate_process(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kvmspec", "--root", str(root), "generate", *extra]


@pytest.fixture
def two_versions(scratch, capsys):
    """The spec in two versions (a flag value changes), with the digest of each full output;
    generated/ holds the output of the first."""
    texts = [scratch.read(NESTED), scratch.read(NESTED).replace("value: 0x00000100", "value: 0x00000200")]
    digests = []
    for text in reversed(texts):
        scratch.write(NESTED, text)
        assert scratch.run("generate", capsys=capsys).status == 0
        digests.append(digest(scratch))
    digests.reverse()
    assert digests[0] != digests[1] and len(digests[0]) == GENERATED_FILES
    return texts, digests


# ------------------------------------------------------------------ failures inside kvmspec


@pytest.mark.parametrize("generator", ["c_header", "python", "rst", "tests"])
def test_an_exception_in_any_generator_changes_nothing(scratch, capsys, monkeypatch, two_versions, generator):
    texts, digests = two_versions
    scratch.write(NESTED, texts[1])
    from kvmspec.emit import GENERATORS
    gen = next(g for g in GENERATORS if g.name == generator)

    def broken(self, model, env):
        raise KeyError("simulated bug")

    monkeypatch.setattr(type(gen), "render", broken)
    result = scratch.run("generate", capsys=capsys)
    assert result.status == 2
    assert result.err.strip() == "kvmspec: internal error: KeyError: 'simulated bug' " \
                                 "(please report it with the spec that caused it)"
    assert "Traceback" not in result.out + result.err
    assert digest(scratch) == digests[0]
    assert leftovers(scratch.root) == []


def test_an_interruption_between_the_fallback_renames_is_repaired(scratch, capsys, monkeypatch, two_versions):
    """Without renameat2, generated/ is renamed away and the new tree renamed in: a run
    stopped between the two leaves only the old tree aside, and the next run puts it back."""
    texts, digests = two_versions
    scratch.write(NESTED, texts[1])
    from kvmspec import output
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def rename_then_stop(src, dst):
        calls.append((src, dst))
        real_rename(src, dst)
        if len(calls) == 1:
            raise KeyboardInterrupt   # as if killed right after the first rename

    monkeypatch.setattr(output.os, "rename", rename_then_stop)
    assert scratch.run("generate", capsys=capsys).status == 130
    monkeypatch.setattr(output.os, "rename", real_rename)
    assert not (scratch.root / "generated").exists()
    assert [p.startswith(output.OLD_PREFIX) for p in leftovers(scratch.root)] == [True]
    # generate --check reads nothing of the aside tree; generate puts it back, then writes
    result = scratch.run("generate", capsys=capsys)
    assert result.status == 0, result.err
    assert digest(scratch) == digests[1]
    assert leftovers(scratch.root) == []


def test_a_killed_generate_leaves_the_old_or_the_new_tree(scratch, two_versions):
    """SIGKILL at spread-out moments of a run: generated/ is always one complete output."""
    texts, digests = two_versions
    scratch.write(NESTED, texts[1])
    start = time.monotonic()
    subprocess.run(generate_process(scratch.root), check=True, capture_output=True, timeout=300)
    duration = time.monotonic() - start
    assert digest(scratch) == digests[1]
    current = 1
    seen = {"old": 0, "new": 0}
    for fraction in (0.15, 0.3, 0.45, 0.55, 0.65, 0.75, 0.85, 0.92, 1.0, 1.1):
        target = 1 - current
        scratch.write(NESTED, texts[target])
        proc = subprocess.Popen(generate_process(scratch.root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        now = digest(scratch)
        assert now in (digests[current], digests[target]), f"a mix after a kill at {fraction:.0%} of a run"
        seen["new" if now == digests[target] else "old"] += 1
        current = digests.index(now)
    print(f"kills left the old tree {seen['old']} times, the new one {seen['new']} times")
    # whatever the kills left aside, the next run clears it
    subprocess.run(generate_process(scratch.root), check=True, capture_output=True, timeout=300)
    assert digest(scratch) == digests[texts.index(scratch.read(NESTED))]
    assert leftovers(scratch.root) == []


# ------------------------------------------------------------------ the file system gets in the way


def _restricted(args: list[str]) -> list[str]:
    """Run args with file permissions enforced, even as root (which bypasses them)."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *args]


def test_read_only_files_and_directories_in_generated_are_replaced(scratch, two_versions):
    texts, digests = two_versions
    scratch.write(NESTED, texts[1])
    python = scratch.root / "generated/python/kvm_uapi"
    (python / "__init__.py").chmod(0o444)
    python.chmod(0o555)
    (scratch.root / "generated").chmod(0o555)
    try:
        proc = subprocess.run(_restricted(generate_process(scratch.root)), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert digest(scratch) == digests[1]
        assert leftovers(scratch.root) == []   # the old read-only tree is gone too
    finally:
        for p in (scratch.root / "generated", python):
            if p.exists():
                p.chmod(0o755)


def test_a_read_only_repository_is_an_environment_problem(scratch, two_versions):
    texts, digests = two_versions
    scratch.write(NESTED, texts[1])
    scratch.root.chmod(0o555)
    try:
        proc = subprocess.run(_restricted(generate_process(scratch.root)), capture_output=True, text=True, timeout=300)
    finally:
        scratch.root.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("kvmspec: error: ") and "Permission denied" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert digest(scratch) == digests[0]
    assert leftovers(scratch.root) == []


def test_fifos_and_links_in_generated_are_neither_read_nor_followed(scratch, two_versions, tmp_path):
    texts, digests = two_versions
    outside = tmp_path / "outside.h"
    outside.write_text("/* not ours */\n")
    header = scratch.root / "generated/include/uapi/linux/kvm.h"
    header.unlink()
    header.symlink_to(outside)
    fifo = scratch.root / "generated/tests/kvm_abi_dump.c"
    fifo.unlink()
    os.mkfifo(fifo)
    check = subprocess.run(generate_process(scratch.root, "--check"), capture_output=True, text=True, timeout=60)
    assert check.returncode == 1
    assert "generated/include/uapi/linux/kvm.h: differs" in check.stderr
    assert "generated/tests/kvm_abi_dump.c: differs" in check.stderr
    run = subprocess.run(generate_process(scratch.root), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert digest(scratch) == digests[0]
    assert outside.read_text() == "/* not ours */\n"


def test_generated_as_a_link_elsewhere_is_replaced_not_written_through(scratch, two_versions, tmp_path):
    texts, digests = two_versions
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(scratch.root / "generated"), elsewhere)
    (scratch.root / "generated").symlink_to(elsewhere)
    scratch.write(NESTED, texts[1])
    run = subprocess.run(generate_process(scratch.root), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert not (scratch.root / "generated").is_symlink()
    assert digest(scratch) == digests[1]
    assert fuzzlib.tree_digest(elsewhere) == digests[0]


# ------------------------------------------------------------------ concurrent runs


def test_concurrent_runs_leave_one_complete_output(scratch, two_versions):
    """Two runs at once on different versions of the spec: the result is one of the two outputs."""
    texts, digests = two_versions
    path = scratch.path(NESTED)
    for _ in range(3):
        path.with_suffix(".a").write_text(texts[0])
        path.with_suffix(".b").write_text(texts[1])
        os.replace(path.with_suffix(".a"), path)     # each run reads the file once, whole
        first = subprocess.Popen(generate_process(scratch.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.replace(path.with_suffix(".b"), path)
        second = subprocess.Popen(generate_process(scratch.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for proc in (first, second):
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        assert digest(scratch) in digests
        assert leftovers(scratch.root) == []
    # and --check, which reads under a shared lock, agrees with the spec afterwards
    result = run_kvmspec("--root", str(scratch.root), "generate", "--check")
    assert result.status in (0, 1)
    assert (result.status == 0) == (digest(scratch) == digests[1])
