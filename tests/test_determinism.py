"""generated/ is byte-identical whatever the hash seed, locale, time zone, template cache,
the order in which spec files were created on disk, or the order a directory lists them in."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest

import fuzzlib
from conftest import REPO, run_kvmspec

pytestmark = pytest.mark.slow


def committed() -> dict[str, str]:
    tree = fuzzlib.tree_digest(REPO / "generated")
    return {k: v for k, v in tree.items() if ".pytest_cache" not in k}


def copy_spec(dest: Path, order: str, seed: int = 0) -> None:
    """Copy spec/ creating files (and directories) in the given order: sorted, reversed or shuffled."""
    files = sorted(p.relative_to(REPO / "spec") for p in (REPO / "spec").rglob("*") if p.is_file())
    if order == "reversed":
        files.reverse()
    elif order == "shuffled":
        random.Random(seed).shuffle(files)
    for rel in files:
        (dest / "spec" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "spec" / rel, dest / "spec" / rel)


# Each run varies several things at once; together they cover every value of each.
RUNS = {
    "seed 0, C locale, UTC": dict(env={"PYTHONHASHSEED": "0", "LC_ALL": "C", "TZ": "UTC"}, order="sorted"),
    "seed 1, C.UTF-8, far time zone, cold template cache": dict(
        env={"PYTHONHASHSEED": "1", "LC_ALL": "C.UTF-8", "TZ": "Pacific/Kiritimati"}, order="sorted", cold=True),
    "seed 12345, missing locale, files created in reverse": dict(
        env={"PYTHONHASHSEED": "12345", "LC_ALL": "", "LANG": "de_DE.UTF-8"}, order="reversed"),
    "random seed, files created shuffled, in tmpfs": dict(
        env={"PYTHONHASHSEED": "random", "LC_ALL": "C.UTF-8"}, order="shuffled", tmpfs=True),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_generate_is_byte_identical(tmp_path, name):
    run = RUNS[name]
    base = tmp_path
    if run.get("tmpfs"):
        if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
            pytest.skip("no writable tmpfs at /dev/shm")
        base = Path(tempfile.mkdtemp(prefix="kvmspec-det-", dir="/dev/shm"))
    try:
        root = base / "repo"
        copy_spec(root, run["order"], seed=len(name))
        env = dict(run["env"])
        if run.get("cold"):
            env["XDG_CACHE_HOME"] = str(tmp_path / "empty-cache")
        result = run_kvmspec("--root", str(root), "generate", env=env)
        assert result.status == 0, result.err
        assert fuzzlib.tree_digest(root / "generated") == committed()
    finally:
        if base is not tmp_path:
            shutil.rmtree(base, ignore_errors=True)


class _Listing:
    """os.scandir's result with its entries in another order."""

    def __init__(self, entries):
        self.entries = iter(entries)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.entries)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_directory_listing_order_does_not_matter(scratch, capsys, monkeypatch, order):
    real_scandir, real_listdir = os.scandir, os.listdir
    rng = random.Random(7)

    def arrange(items):
        items = list(items)
        if order == "reversed":
            items.reverse()
        else:
            rng.shuffle(items)
        return items

    monkeypatch.setattr(os, "scandir", lambda path=".": _Listing(arrange(real_scandir(path))))
    monkeypatch.setattr(os, "listdir", lambda path=".": arrange(real_listdir(path)))
    result = scratch.run("generate", capsys=capsys)
    monkeypatch.undo()
    assert result.status == 0, result.err
    assert fuzzlib.tree_digest(scratch.root / "generated") == committed()


def test_validate_output_is_identical_across_hash_seeds(tmp_path):
    """Diagnostics come in the same order too."""
    root = tmp_path / "repo"
    copy_spec(root, "sorted")
    nested = root / "spec/x86/nested-state.yaml"
    nested.write_text(nested.read_text().replace("value: 0x00000100", "value: 0x00000101")
                      .replace("flags: kvm_vmx_nested_state_flags", "flags: kvm_vmx_nested_flags", 1))
    outputs = {run_kvmspec("--root", str(root), "validate", env={"PYTHONHASHSEED": seed}).err
               for seed in ("0", "99", "random")}
    assert len(outputs) == 1
    assert outputs.pop().count(": error: ") == 2
