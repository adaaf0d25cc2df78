"""`kvmspec diff-header`: the spec against a tree of kernel headers, names both ways plus every fact."""

from __future__ import annotations

import shutil

import pytest

from conftest import REPO, run_kvmspec

pytestmark = pytest.mark.slow


def system_headers_present() -> None:
    if not (shutil.which("gcc") and (REPO / "generated").is_dir()):
        pytest.skip("gcc is needed")
    from pathlib import Path
    if not Path("/usr/include/linux/kvm.h").exists():
        pytest.skip("the kernel's uapi headers are not installed (Debian: linux-libc-dev)")


def test_spec_covers_the_installed_headers_completely():
    system_headers_present()
    result = run_kvmspec("diff-header", "/usr/include", cwd=REPO)
    assert result.status == 0, result.out + result.err
    for kind in ("macros", "records", "enumerators"):
        line = next(l for l in result.out.splitlines() if l.strip().startswith(kind))
        assert "0 missing from the spec, 0 only in the spec" in line, line
    assert result.out.count(": 0 difference(s)") == 2
    assert result.out.rstrip().endswith("no differences")


def copy_of_system_headers(tmp_path):
    tree = tmp_path / "include"
    shutil.copytree("/usr/include/linux", tree / "linux")
    shutil.copytree("/usr/include/x86_64-linux-gnu/asm", tree / "asm")
    shutil.copytree("/usr/include/asm-generic", tree / "asm-generic")
    return tree


def test_names_and_values_that_disagree_are_reported(tmp_path):
    system_headers_present()
    tree = copy_of_system_headers(tmp_path)
    kvm_h = tree / "linux/kvm.h"
    text = kvm_h.read_text()
    text = text.replace("#define KVM_CAP_NESTED_STATE 157\n", "#define KVM_CAP_NESTED_STATE 157\n"
                                                              "#define KVM_CAP_INVENTED 999\n")
    text = text.replace("#define KVM_CAP_HLT\t  1\n", "")
    text = text.replace("#define KVM_CAP_EXCEPTION_PAYLOAD 164", "#define KVM_CAP_EXCEPTION_PAYLOAD 165")
    kvm_h.write_text(text)
    result = run_kvmspec("diff-header", str(tree), "--abi", "x86_64", cwd=REPO)
    assert result.status == 1
    assert "missing from the spec (macro): KVM_CAP_INVENTED" in result.out
    assert "only in the spec (macro): KVM_CAP_HLT" in result.out
    assert "differs: 'value KVM_CAP_EXCEPTION_PAYLOAD 164' != 'value KVM_CAP_EXCEPTION_PAYLOAD 165'" in result.out


def test_a_directory_without_headers_is_a_usage_error(tmp_path):
    result = run_kvmspec("diff-header", str(tmp_path), cwd=REPO)
    assert result.status == 2
    assert "no linux/kvm.h here" in result.err


def test_a_target_the_default_clang_lacks_uses_a_versioned_clang(monkeypatch):
    # Debian 12's clang (14) has no LoongArch; clang-16 has.
    import subprocess
    from types import SimpleNamespace
    from kvmspec import conformance

    installed = {"clang": "/usr/bin/clang", "clang-16": "/usr/bin/clang-16"}
    knows = {"/usr/bin/clang": {"riscv64-linux-gnu"}, "/usr/bin/clang-16": {"riscv64-linux-gnu", "loongarch64-linux-gnu"}}

    def run(cmd, **kwargs):
        target = next(a.split("=", 1)[1] for a in cmd if a.startswith("--target="))
        return SimpleNamespace(returncode=0 if target in knows[cmd[0]] else 1, stdout="", stderr="")

    monkeypatch.setattr(conformance.shutil, "which", installed.get)
    monkeypatch.setattr(subprocess, "run", run)
    conformance._clang.cache_clear()
    try:
        assert conformance._clang() == "/usr/bin/clang"
        assert conformance._clang("riscv64-linux-gnu") == "/usr/bin/clang"
        assert conformance._clang("loongarch64-linux-gnu") == "/usr/bin/clang-16"
        with pytest.raises(conformance.NoCompiler, match="sparc64"):
            conformance._clang("sparc64-linux-gnu")
    finally:
        conformance._clang.cache_clear()
