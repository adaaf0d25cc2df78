"""The spec's history against Debian's own uapi headers of two releases, every architecture.

.ci/run downloads Debian's linux-libc-dev 6.12 (trixie) and 7.3 (trixie-backports) and unpacks
them, one include tree per architecture, into $KVMSPEC_CI_REFS (default ~/.cache/kvmspec/refs)
with benchmarks/reference_trees.sh. Each tree is compared with `kvmspec diff-header` through
benchmarks/history_check.py, as the full history check does, and must give no finding. Without
the trees the tests skip.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from conftest import REPO

REFS = Path(os.environ.get("KVMSPEC_CI_REFS", Path.home() / ".cache" / "kvmspec" / "refs"))
ARCHES = ("x86", "arm64", "riscv", "s390", "ppc", "mips", "loongarch")
ABIS = {"x86": {"x86_64", "i386"}, "arm64": {"arm64"}, "riscv": {"riscv64"}, "s390": {"s390x"},
        "ppc": {"ppc64le", "ppc64"}, "mips": {"mips64"}, "loongarch": {"loongarch64"}}


def history_check():
    spec = importlib.util.spec_from_file_location("history_check", REPO / "benchmarks" / "history_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["history_check"] = module   # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("release", ["6.12", "7.3"])
@pytest.mark.parametrize("arch", ARCHES)
def test_debian_headers_agree_with_the_spec(release, arch):
    tree = REFS / f"debian-{release}" / arch
    if not (tree / "linux" / "kvm.h").is_file():
        pytest.skip(f"no Debian {release} headers for {arch} in {REFS} (.ci/run downloads them)")
    check = history_check()
    result = check.run_tree(check.Tree("debian", None, arch, tree))
    assert result.release_shown == release, result.output
    # Every ABI was really compared (a tree that failed to compile has no facts) ...
    assert set(result.facts) == ABIS[arch], result.output
    assert all(n > 1000 for n in result.facts.values()), result.output
    # ... and nothing differs: no value, layout or name.
    assert result.findings == 0, result.output
    assert not any(result.diffs.values()) and result.missing == 0 and result.only_in_spec == 0, result.output
